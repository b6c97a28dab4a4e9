/*
 * The worker's sandbox. A worker opens everything its VM needs first
 * (/dev/kvm, disks, taps, console log, exit file, control socket); then,
 * before the guest's first instruction, it moves into new PID, mount, IPC,
 * UTS and network namespaces with an empty read-only root, becomes the VM's
 * own unprivileged uid and gid with no capabilities, and caps its resources.
 * From then on no path on the host can be opened at all: a guest that takes
 * over a device model holds only what its own VM already had.
 */
#ifndef VMMD_SANDBOX_H
#define VMMD_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct sandbox_config {
    uid_t uid; /* the VM's own ids: never 0, never shared with another VM */
    gid_t gid;
    const char *root_dir; /* an existing directory the empty root is mounted on */
    unsigned max_threads; /* RLIMIT_NPROC: every thread counts */
};

/* Every worker, sandboxed or not: no new privileges, not dumpable, no core
 * dumps (guest memory), a cap on descriptors. */
int sandbox_limit_process(char *err, size_t errlen);

/*
 * Splits the worker in two. The parent stays outside, as a monitor that
 * holds nothing, forwards SIGINT/SIGTERM/SIGHUP, waits for the child and
 * exits as it did: this call never returns in the parent. The child, pid 1
 * of a new PID namespace and in new mount, IPC, UTS and network namespaces,
 * returns 0 and dies with the parent. -errno (nothing changed) on failure.
 */
int sandbox_fork(char *err, size_t errlen);

/* In the child of sandbox_fork(): the empty root, the ids, the limits. */
int sandbox_enter(const struct sandbox_config *c, char *err, size_t errlen);

/* This process's pid as the host sees it (getpid() is 1 inside the sandbox). */
pid_t sandbox_host_pid(void);

#endif
