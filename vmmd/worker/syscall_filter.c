/*
 * The worker's system call allowlists (see syscall_filter.h). The programs
 * come compiled from syscall_policy.c at build time (syscall_filters.h).
 */
#include "syscall_filter.h"
#include "common/errbuf.h"
#include "syscall_filters.h"

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#define PROGRAM(f)                                                                                 \
    {                                                                                              \
        .len = sizeof(f) / sizeof((f)[0]), .filter = (struct sock_filter *)(f)                     \
    }

static const struct sock_fprog control_program = PROGRAM(filter_control),
                               vcpu_program = PROGRAM(filter_vcpu), io_program = PROGRAM(filter_io),
                               monitor_program = PROGRAM(filter_monitor);
static int report_fd = -1;

static void append(char *buf, size_t cap, size_t *len, const char *s)
{
    while (*s && *len + 1 < cap)
        buf[(*len)++] = *s++;
    buf[*len] = 0;
}

/* Async-signal-safe: only writes what was prepared, then ends the process. */
static void on_sigsys(int sig, siginfo_t *info, void *uctx)
{
    char name[24], msg[160], json[224];
    const char *known;
    size_t len = 0, jlen = 0;
    int nr = info->si_syscall;

    (void)sig;
    (void)uctx;
    known = nr >= 0 && nr < SYSCALL_NAMES ? syscall_names[nr] : NULL;
    if (!known) {
        /* The number, in decimal, by hand. */
        char digits[12];
        int n = 0;
        unsigned v = (unsigned)nr;
        do
            digits[n++] = (char)('0' + v % 10);
        while ((v /= 10) && n < 11);
        for (int i = 0; i < n; i++)
            name[i] = digits[n - 1 - i];
        name[n] = 0;
        known = name;
    }
    append(msg, sizeof(msg), &len, "vmmd: seccomp: syscall ");
    append(msg, sizeof(msg), &len, known);
    append(msg, sizeof(msg), &len, " is not allowed, the worker ends\n");
    (void)!write(STDERR_FILENO, msg, len);
    /* Where it came from, for the worker's log (backtrace() was warmed up at prepare). */
    void *frames[24];
    backtrace_symbols_fd(frames, backtrace(frames, 24), STDERR_FILENO);
    if (report_fd >= 0) {
        append(json, sizeof(json), &jlen,
               "{\"reason\":\"seccomp\",\"status\":1,\"detail\":\"syscall ");
        append(json, sizeof(json), &jlen, known);
        append(json, sizeof(json), &jlen, "\"}\n");
        (void)!pwrite(report_fd, json, jlen, 0);
    }
    syscall(SYS_exit_group, 1);
}

int syscall_filter_prepare(int exit_fd, char *err, size_t errlen)
{
    struct sigaction sa;
    void *frame;

    report_fd = exit_fd;
    /* backtrace() loads the unwinder on its first call: now, not in the handler. */
    backtrace(&frame, 1);
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigfillset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0)
        return vmmd_errf(err, errlen, -errno, "sigaction(SIGSYS): %s", strerror(errno));
    return 0;
}

static int install(const struct sock_fprog *prog)
{
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0 ? -errno : 0;
}

int syscall_filter_install_process(char *err, size_t errlen)
{
    int rc = install(&control_program);

    if (rc)
        return vmmd_errf(err, errlen, rc, "cannot install the system call filter: %s",
                         strerror(-rc));
    return 0;
}

void syscall_filter_thread_start(void *opaque, enum hv_thread_kind kind)
{
    (void)opaque;
    prctl(PR_SET_NAME, kind == HV_THREAD_VCPU ? "vmmd-vcpu" : "vmmd-io", 0, 0, 0);
    if (install(kind == HV_THREAD_VCPU ? &vcpu_program : &io_program)) {
        static const char msg[] = "vmmd: cannot narrow a thread's system call filter\n";
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        syscall(SYS_exit_group, 1);
    }
}

void syscall_filter_install_monitor(void)
{
    /* Best effort: the monitor holds nothing a filter would protect. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
        install(&monitor_program);
}
