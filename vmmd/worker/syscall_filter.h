/*
 * The worker's system call allowlists (seccomp-bpf, built with libseccomp).
 * One per thread class: the control thread (the worker's main thread: the
 * control socket, building and rebuilding the VM, starting threads), vCPU
 * threads (KVM_RUN and the device models behind exits) and device I/O
 * threads (virtqueues, disk and tap I/O). The control list goes on the whole
 * process before the guest runs; each vCPU and I/O thread narrows it further
 * when it starts. A call outside its list never runs: the thread gets
 * SIGSYS, whose handler writes "seccomp: syscall NAME" to the exit file and
 * stderr, and the whole worker exits (the VM goes to `crashed`).
 */
#ifndef VMMD_SYSCALL_FILTER_H
#define VMMD_SYSCALL_FILTER_H

#include <stddef.h>

#include "hv/hv.h"

/*
 * Builds the three programs while files can still be opened, and installs
 * the SIGSYS handler, which reports to exit_fd (an empty file, or -1).
 * 0 or -errno with err filled.
 */
int syscall_filter_prepare(int exit_fd, char *err, size_t errlen);

/* The control list, on the calling (still only) thread and all it starts. */
int syscall_filter_install_process(char *err, size_t errlen);

/* hv_vm_config.thread_start: names the thread and narrows its list to its class
 * (the process dies rather than run a thread unfiltered). */
void syscall_filter_thread_start(void *opaque, enum hv_thread_kind kind);

/* The sandbox monitor's own list: it only waits and forwards signals. */
void syscall_filter_install_monitor(void);

#endif
