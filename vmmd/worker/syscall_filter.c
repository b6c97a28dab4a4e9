/* The worker's system call allowlists (see syscall_filter.h). */
#include "syscall_filter.h"
#include "common/errbuf.h"

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <seccomp.h>

enum filter_class { CLASS_CONTROL, CLASS_VCPU, CLASS_IO, CLASS_COUNT };

/* Above every x86-64 system call number the kernel has today. */
#define SYSCALL_NAMES 512

static struct sock_fprog programs[CLASS_COUNT];
static int report_fd = -1;
static char *syscall_names[SYSCALL_NAMES];

/* What every thread does: memory, locks, signals, time, I/O on descriptors it holds. */
static const int common_calls[] = {
    SCMP_SYS(read),        SCMP_SYS(write),           SCMP_SYS(readv),
    SCMP_SYS(writev),      SCMP_SYS(pread64),         SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),      SCMP_SYS(pwritev),         SCMP_SYS(preadv2),
    SCMP_SYS(pwritev2),    SCMP_SYS(fsync),           SCMP_SYS(fdatasync),
    SCMP_SYS(ftruncate),   SCMP_SYS(copy_file_range), SCMP_SYS(lseek),
    SCMP_SYS(sendto),      SCMP_SYS(sendmsg),         SCMP_SYS(close),
    SCMP_SYS(mmap),        SCMP_SYS(munmap),          SCMP_SYS(mprotect),
    SCMP_SYS(madvise),     SCMP_SYS(mremap),          SCMP_SYS(brk),
    SCMP_SYS(futex),       SCMP_SYS(rt_sigreturn),    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(sigaltstack), SCMP_SYS(restart_syscall), SCMP_SYS(exit),
    SCMP_SYS(exit_group),  SCMP_SYS(clock_gettime),   SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),   SCMP_SYS(gettid),          SCMP_SYS(getpid),
    SCMP_SYS(sched_yield), SCMP_SYS(getrandom),       SCMP_SYS(epoll_ctl),
};

/* The main thread: the control socket, building the VM, starting its threads. */
static const int control_calls[] = {
    SCMP_SYS(clone),
    SCMP_SYS(clone3),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(prctl),
    SCMP_SYS(seccomp),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(epoll_create1),
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(eventfd2),
    SCMP_SYS(signalfd4),
    SCMP_SYS(accept4),
    SCMP_SYS(recvfrom),
    SCMP_SYS(recvmsg),
    SCMP_SYS(shutdown),
    SCMP_SYS(getsockopt),
    SCMP_SYS(setsockopt),
    SCMP_SYS(fcntl),
    SCMP_SYS(dup),
    SCMP_SYS(dup3),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(getrlimit),
    SCMP_SYS(prlimit64),
    SCMP_SYS(tgkill),
    SCMP_SYS(getuid),
};

/* A device I/O thread waits on its queues' eventfds and its tap. */
static const int io_calls[] = {SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(tgkill)};

/* A vCPU thread stops the others (a kick) when the guest powers off. */
static const int vcpu_calls[] = {SCMP_SYS(tgkill)};

/* ioctls, by class: creating the VM is the control thread's alone. */
static const unsigned long vm_runtime_ioctls[] = {
    KVM_IRQ_LINE,
    KVM_IRQFD,
    KVM_IOEVENTFD,
    KVM_SET_GSI_ROUTING,
};
static const unsigned long vcpu_ioctls[] = {KVM_RUN, KVM_GET_SREGS, KVM_GET_LAPIC};
static const unsigned long control_ioctls[] = {
    KVM_GET_API_VERSION,
    KVM_CHECK_EXTENSION,
    KVM_GET_VCPU_MMAP_SIZE,
    KVM_CREATE_VM,
    KVM_SET_IDENTITY_MAP_ADDR,
    KVM_SET_TSS_ADDR,
    KVM_SET_USER_MEMORY_REGION,
    KVM_CREATE_IRQCHIP,
    KVM_CREATE_PIT2,
    KVM_CREATE_VCPU,
    KVM_GET_SUPPORTED_CPUID,
    KVM_SET_CPUID2,
    KVM_SET_REGS,
    KVM_SET_SREGS,
    KVM_SET_FPU,
    KVM_SET_LAPIC,
    TUNGETIFF,
    TCGETS,
    TCSETS,
    TCSETSW,
    TCSETSF,
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int allow_calls(scmp_filter_ctx ctx, const int *calls, size_t n)
{
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0);
    return rc;
}

static int allow_ioctls(scmp_filter_ctx ctx, const unsigned long *reqs, size_t n)
{
    int rc = 0;

    /* The request is an unsigned int in the kernel: compare the low 32 bits only. */
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, reqs[i] & 0xffffffffu));
    return rc;
}

/* Builds one class's program: its calls and ioctls, and nothing else. */
static int build(enum filter_class cls, struct sock_fprog *out)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    int rc, mem;
    off_t size;

    if (!ctx)
        return -ENOMEM;
    rc = allow_calls(ctx, common_calls, COUNT(common_calls));
    if (!rc)
        rc = allow_ioctls(ctx, vm_runtime_ioctls, COUNT(vm_runtime_ioctls));
    if (!rc && cls == CLASS_CONTROL)
        rc = allow_calls(ctx, control_calls, COUNT(control_calls)) ?:
             allow_ioctls(ctx, control_ioctls, COUNT(control_ioctls)) ?:
             allow_ioctls(ctx, vcpu_ioctls, COUNT(vcpu_ioctls));
    if (!rc && cls == CLASS_VCPU)
        rc = allow_calls(ctx, vcpu_calls, COUNT(vcpu_calls))
                 ?: allow_ioctls(ctx, vcpu_ioctls, COUNT(vcpu_ioctls));
    if (!rc && cls == CLASS_IO)
        rc = allow_calls(ctx, io_calls, COUNT(io_calls));
    /* libseccomp 2.5 exports to a descriptor only: a memfd, read back. */
    mem = rc ? -1 : memfd_create("seccomp", MFD_CLOEXEC);
    if (!rc && mem < 0)
        rc = -errno;
    if (!rc)
        rc = seccomp_export_bpf(ctx, mem);
    if (!rc && ((size = lseek(mem, 0, SEEK_END)) <= 0 || size % sizeof(struct sock_filter)))
        rc = -EIO;
    if (!rc) {
        out->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
        out->filter = malloc((size_t)size);
        if (!out->filter || pread(mem, out->filter, (size_t)size, 0) != size)
            rc = -EIO;
    }
    if (mem >= 0)
        close(mem);
    seccomp_release(ctx);
    return rc;
}

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
    int rc;

    for (int cls = 0; cls < CLASS_COUNT; cls++)
        if (!programs[cls].filter && (rc = build((enum filter_class)cls, &programs[cls])))
            return vmmd_errf(err, errlen, rc, "cannot build the system call filters: %s",
                             strerror(-rc));
    for (int nr = 0; nr < SYSCALL_NAMES; nr++)
        if (!syscall_names[nr])
            syscall_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    report_fd = exit_fd;
    /* backtrace() loads the unwinder on its first call: now, not in the handler. */
    void *frame;
    backtrace(&frame, 1);
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigfillset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0)
        return vmmd_errf(err, errlen, -errno, "sigaction(SIGSYS): %s", strerror(errno));
    return 0;
}

static int install(enum filter_class cls)
{
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &programs[cls]) < 0 ? -errno : 0;
}

int syscall_filter_install_process(char *err, size_t errlen)
{
    int rc = install(CLASS_CONTROL);

    if (rc)
        return vmmd_errf(err, errlen, rc, "cannot install the system call filter: %s",
                         strerror(-rc));
    return 0;
}

void syscall_filter_thread_start(void *opaque, enum hv_thread_kind kind)
{
    enum filter_class cls = kind == HV_THREAD_VCPU ? CLASS_VCPU : CLASS_IO;

    (void)opaque;
    prctl(PR_SET_NAME, kind == HV_THREAD_VCPU ? "vmmd-vcpu" : "vmmd-io", 0, 0, 0);
    if (install(cls)) {
        static const char msg[] = "vmmd: cannot narrow a thread's system call filter\n";
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        syscall(SYS_exit_group, 1);
    }
}

void syscall_filter_install_monitor(void)
{
    /* Memory and signal-stack calls: what a sanitizer runtime does on its way out. */
    static const int calls[] = {
        SCMP_SYS(wait4),          SCMP_SYS(kill),
        SCMP_SYS(rt_sigreturn),   SCMP_SYS(restart_syscall),
        SCMP_SYS(write),          SCMP_SYS(exit_group),
        SCMP_SYS(exit),           SCMP_SYS(sigaltstack),
        SCMP_SYS(rt_sigprocmask), SCMP_SYS(mmap),
        SCMP_SYS(munmap),         SCMP_SYS(madvise),
    };
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);

    /* Best effort: the monitor holds nothing a filter would protect. */
    if (ctx && allow_calls(ctx, calls, COUNT(calls)) == 0 &&
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
        seccomp_load(ctx);
    if (ctx)
        seccomp_release(ctx);
}
