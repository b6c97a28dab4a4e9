/*
 * The worker's system call policy, compiled into seccomp-bpf programs at
 * build time: this host tool runs libseccomp once and writes the programs
 * and a table of system call names as C arrays (syscall_filters.h), so a
 * worker installs its filters without building them (no libseccomp at run
 * time, nothing on the path from spawn to the guest's first instruction).
 * Usage: syscall_policy_gen > syscall_filters.h
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <seccomp.h>

/* Above every x86-64 system call number the kernel has today. */
#define SYSCALL_NAMES 512

/* What every thread does: memory, locks, signals, time, I/O on descriptors it holds
 * (timerfd_settime: a device waiting for its I/O limits, or a limit changing, arms a timer). */
static const int common_calls[] = {
    SCMP_SYS(read),        SCMP_SYS(write),           SCMP_SYS(readv),
    SCMP_SYS(writev),      SCMP_SYS(pread64),         SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),      SCMP_SYS(pwritev),         SCMP_SYS(preadv2),
    SCMP_SYS(pwritev2),    SCMP_SYS(fsync),           SCMP_SYS(fdatasync),
    SCMP_SYS(ftruncate),   SCMP_SYS(copy_file_range), SCMP_SYS(lseek),
    SCMP_SYS(sendto),      SCMP_SYS(sendmsg),         SCMP_SYS(close),
    SCMP_SYS(mmap),        SCMP_SYS(munmap),          SCMP_SYS(mprotect),
    SCMP_SYS(madvise),     SCMP_SYS(mremap),          SCMP_SYS(brk),
    SCMP_SYS(mincore),
    SCMP_SYS(futex),       SCMP_SYS(rt_sigreturn),    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(sigaltstack), SCMP_SYS(restart_syscall), SCMP_SYS(exit),
    SCMP_SYS(exit_group),  SCMP_SYS(clock_gettime),   SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),   SCMP_SYS(gettid),          SCMP_SYS(getpid),
    SCMP_SYS(sched_yield), SCMP_SYS(getrandom),       SCMP_SYS(epoll_ctl),
    SCMP_SYS(timerfd_settime),
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
    SCMP_SYS(timerfd_create),
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
/* virtio-net's I/O thread tells its tap which offloads the guest negotiated. The process's
 * (control) filter stays in force under a thread's own, so it allows these too. */
static const unsigned long io_ioctls[] = {TUNSETOFFLOAD};
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
    /* Snapshots: the whole vCPU and VM state, read and written by the control thread while
     * the vCPUs are parked. */
    KVM_GET_CPUID2,
    KVM_GET_MP_STATE,
    KVM_SET_MP_STATE,
    KVM_GET_REGS,
    KVM_GET_FPU,
    KVM_GET_XSAVE,
    KVM_SET_XSAVE,
    KVM_GET_XCRS,
    KVM_SET_XCRS,
    KVM_GET_DEBUGREGS,
    KVM_SET_DEBUGREGS,
    KVM_GET_MSR_INDEX_LIST,
    KVM_GET_MSRS,
    KVM_SET_MSRS,
    KVM_GET_VCPU_EVENTS,
    KVM_SET_VCPU_EVENTS,
    KVM_GET_TSC_KHZ,
    KVM_SET_TSC_KHZ,
    KVM_GET_IRQCHIP,
    KVM_SET_IRQCHIP,
    KVM_GET_PIT2,
    KVM_SET_PIT2,
    KVM_GET_CLOCK,
    KVM_SET_CLOCK,
    KVM_KVMCLOCK_CTRL,
    /* Live migration: dirty logging on the RAM slots. */
    KVM_GET_DIRTY_LOG,
    TUNGETIFF,
    TCGETS,
    TCSETS,
    TCSETSW,
    TCSETSF,
};

/* The sandbox's monitor only waits and forwards signals; the rest is a sanitizer
 * runtime's way out. */
static const int monitor_calls[] = {
    SCMP_SYS(wait4),          SCMP_SYS(kill),
    SCMP_SYS(rt_sigreturn),   SCMP_SYS(restart_syscall),
    SCMP_SYS(write),          SCMP_SYS(exit_group),
    SCMP_SYS(exit),           SCMP_SYS(sigaltstack),
    SCMP_SYS(rt_sigprocmask), SCMP_SYS(mmap),
    SCMP_SYS(munmap),         SCMP_SYS(madvise),
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

enum filter_class { CLASS_CONTROL, CLASS_VCPU, CLASS_IO, CLASS_MONITOR };

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

/* One class's program as a C array named name. */
static int emit(enum filter_class cls, const char *name)
{
    /* A worker's forbidden call traps (its handler reports it); the monitor's kills. */
    scmp_filter_ctx ctx =
        seccomp_init(cls == CLASS_MONITOR ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_TRAP);
    struct sock_filter *prog = NULL;
    off_t size = 0;
    int rc, mem = -1;

    if (!ctx)
        return -ENOMEM;
    /* A binary tree of system call numbers instead of a chain: fewer instructions per call,
     * and the kernel's per-filter cache of allowed calls is built faster at install. */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (rc)
        goto out;
    if (cls == CLASS_MONITOR) {
        rc = allow_calls(ctx, monitor_calls, COUNT(monitor_calls));
    } else {
        rc = allow_calls(ctx, common_calls, COUNT(common_calls))
                 ?: allow_ioctls(ctx, vm_runtime_ioctls, COUNT(vm_runtime_ioctls));
        if (!rc && cls == CLASS_CONTROL)
            rc = allow_calls(ctx, control_calls, COUNT(control_calls)) ?:
                 allow_ioctls(ctx, control_ioctls, COUNT(control_ioctls)) ?:
                 allow_ioctls(ctx, vcpu_ioctls, COUNT(vcpu_ioctls)) ?:
                 allow_ioctls(ctx, io_ioctls, COUNT(io_ioctls));
        if (!rc && cls == CLASS_VCPU)
            rc = allow_calls(ctx, vcpu_calls, COUNT(vcpu_calls))
                     ?: allow_ioctls(ctx, vcpu_ioctls, COUNT(vcpu_ioctls));
        if (!rc && cls == CLASS_IO)
            rc = allow_calls(ctx, io_calls, COUNT(io_calls))
                     ?: allow_ioctls(ctx, io_ioctls, COUNT(io_ioctls));
    }
    /* libseccomp 2.5 exports to a descriptor only: a memfd, read back. */
    if (!rc && (mem = memfd_create("seccomp", MFD_CLOEXEC)) < 0)
        rc = -errno;
    if (!rc)
        rc = seccomp_export_bpf(ctx, mem);
    if (!rc && ((size = lseek(mem, 0, SEEK_END)) <= 0 || size % sizeof(*prog)))
        rc = -EIO;
    if (!rc && (!(prog = malloc((size_t)size)) || pread(mem, prog, (size_t)size, 0) != size))
        rc = -EIO;
    if (!rc) {
        printf("static const struct sock_filter %s[] = {\n", name);
        for (size_t i = 0; i < (size_t)size / sizeof(*prog); i++)
            printf("    {0x%04x, %u, %u, 0x%08x},\n", prog[i].code, prog[i].jt, prog[i].jf,
                   prog[i].k);
        printf("};\n\n");
    }
out:
    free(prog);
    if (mem >= 0)
        close(mem);
    seccomp_release(ctx);
    return rc;
}

int main(void)
{
    int rc;

    printf("/* Generated by syscall_policy_gen (vmmd/worker/syscall_policy.c): do not edit. */\n"
           "#include <linux/filter.h>\n\n#define SYSCALL_NAMES %d\n\n",
           SYSCALL_NAMES);
    if ((rc = emit(CLASS_CONTROL, "filter_control")) || (rc = emit(CLASS_VCPU, "filter_vcpu")) ||
        (rc = emit(CLASS_IO, "filter_io")) || (rc = emit(CLASS_MONITOR, "filter_monitor"))) {
        fprintf(stderr, "syscall_policy_gen: %s\n", strerror(-rc));
        return 1;
    }
    printf("static const char *const syscall_names[SYSCALL_NAMES] = {\n");
    for (int nr = 0; nr < SYSCALL_NAMES; nr++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        if (name)
            printf("    [%d] = \"%s\",\n", nr, name);
        free(name);
    }
    printf("};\n");
    return fflush(stdout) == 0 ? 0 : 1;
}
