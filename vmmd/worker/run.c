/*
 * `vmmd run`: builds one VM from flags, connects its serial console to
 * stdin/stdout (raw mode on a terminal; Ctrl-] quits), and waits for it.
 * The worker processes of the daemon run this same path, and the TCG lab
 * drives it, so its flags and exit statuses are a stable interface.
 */
#include "run.h"
#include "console_buffer.h"
#include "device_args.h"
#include "common/options.h"
#include "worker_control.h"

#include "hv/hv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define CONSOLE_ESCAPE 0x1d /* Ctrl-] */

enum on_reboot { ON_REBOOT_RESTART, ON_REBOOT_EXIT };

struct run_args {
    const char *kernel, *initrd, *cmdline;
    uint64_t kernel_fd, initrd_fd; /* 0: open the path */
    int mode;
    uint64_t vcpus, memory;
    int on_reboot;
    bool stats, timing, help;
    const char *control, *console_log, *exit_file; /* worker mode (the daemon's) */
    struct vmmd_opt_list disks, nics;
};

static const char *const mode_choices[] = {"full", "pv", NULL};
static const char *const reboot_choices[] = {"restart", "exit", NULL};

#define OFF(f) offsetof(struct run_args, f)
static const struct vmmd_opt run_options[] = {
    {.name = "kernel", .type = VMMD_OPT_STRING, .offset = OFF(kernel), .metavar = "PATH",
     .help = "bzImage or ELF64 kernel to boot", .required = 1},
    {.name = "initrd", .type = VMMD_OPT_STRING, .offset = OFF(initrd), .metavar = "PATH",
     .help = "initial ramdisk"},
    {.name = "kernel-fd", .type = VMMD_OPT_UINT, .offset = OFF(kernel_fd), .metavar = "FD",
     .help = "read the kernel from this inherited descriptor; --kernel then only names it",
     .min = 3, .max = INT32_MAX},
    {.name = "initrd-fd", .type = VMMD_OPT_UINT, .offset = OFF(initrd_fd), .metavar = "FD",
     .help = "read the initrd from this inherited descriptor", .min = 3, .max = INT32_MAX},
    {.name = "cmdline", .type = VMMD_OPT_STRING, .offset = OFF(cmdline), .metavar = "STR",
     .help = "kernel command line"},
    {.name = "mode", .type = VMMD_OPT_CHOICE, .offset = OFF(mode), .metavar = "MODE",
     .help = "virtualization mode, default pv", .choices = mode_choices},
    {.name = "vcpus", .type = VMMD_OPT_UINT, .offset = OFF(vcpus), .metavar = "N",
     .help = "virtual CPUs, default 1", .min = 1, .max = HV_MAX_VCPUS},
    {.name = "memory", .type = VMMD_OPT_UINT, .offset = OFF(memory), .metavar = "MIB",
     .help = "guest memory in MiB, default 256", .min = HV_MIN_MEMORY_MIB,
     .max = HV_MAX_MEMORY_MIB},
    {.name = "disk", .type = VMMD_OPT_LIST, .offset = OFF(disks), .metavar = "PATH[,ro][,fd=FD]",
     .help = "raw disk image (repeatable): virtio-blk in pv mode, IDE in full mode; fd= uses "
             "that inherited descriptor of PATH"},
    {.name = "nic", .type = VMMD_OPT_LIST, .offset = OFF(nics),
     .metavar = "tap=NAME|bridge=NAME[,mac=MAC]",
     .help = "network interface (repeatable; pv mode: virtio-net) over a tap device, or over a "
             "new tap added to a bridge"},
    {.name = "on-reboot", .type = VMMD_OPT_CHOICE, .offset = OFF(on_reboot), .metavar = "WHAT",
     .help = "when the guest reboots: restart it (default) or exit with status 3",
     .choices = reboot_choices},
    {.name = "stats", .type = VMMD_OPT_FLAG, .offset = OFF(stats),
     .help = "print exit counters to stderr at the end"},
    {.name = "timing", .type = VMMD_OPT_FLAG, .offset = OFF(timing),
     .help = "print CLOCK_MONOTONIC ns of start, first guest exit and end to stderr"},
    {.name = "control", .type = VMMD_OPT_STRING, .offset = OFF(control), .metavar = "PATH",
     .help = "worker mode: serve the control socket at PATH; the console goes to the "
             "buffer, the log and attached clients instead of stdin/stdout"},
    {.name = "console-log", .type = VMMD_OPT_STRING, .offset = OFF(console_log),
     .metavar = "PATH", .help = "also write the console to PATH (capped at 1 MiB, one .1 kept)"},
    {.name = "exit-file", .type = VMMD_OPT_STRING, .offset = OFF(exit_file), .metavar = "PATH",
     .help = "write why the VM ended, as JSON, to PATH before exiting"},
    {.name = "help", .type = VMMD_OPT_FLAG, .offset = OFF(help), .help = "show this help"},
    {.name = NULL},
};
#undef OFF

static const char run_usage[] =
    "usage: vmmd run --kernel PATH [--initrd PATH] [--cmdline STR] [--mode full|pv]\n"
    "                [--vcpus N] [--memory MIB] [--disk PATH[,ro]]... [--nic tap=NAME|bridge=NAME[,mac=MAC]]...\n"
    "                [--on-reboot restart|exit]\n"
    "\n"
    "Runs one VM in the foreground. Its serial console (COM1) is stdin/stdout; on a\n"
    "terminal, Ctrl-] quits. Exit status: 0 when the guest powers off, the value a\n"
    "test guest writes to the debug-exit port, 1 on a setup error or a guest crash\n"
    "(triple fault), 2 on a usage error, 3 when the guest reboots with --on-reboot=exit.";

struct terminal {
    bool raw;
    struct termios saved;
};

static void terminal_raw(struct terminal *t)
{
    struct termios raw;

    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &t->saved) < 0)
        return;
    raw = t->saved;
    cfmakeraw(&raw);
    raw.c_oflag |= OPOST | ONLCR; /* our own messages still start at column 0 */
    if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
        t->raw = true;
}

static void terminal_restore(struct terminal *t)
{
    if (t->raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
    t->raw = false;
}

enum loop_end { LOOP_VM_STOPPED, LOOP_ESCAPE, LOOP_SIGNAL };

/* Console input the UART could not take yet: the guest reads slower than we type. */
struct pending_input {
    uint8_t buf[512];
    size_t off, len;
};

/* Forwards console input and serves the control socket until the VM stops,
 * the user escapes, or a signal arrives. */
static enum loop_end console_loop(struct worker_ctx *ctx, struct control_server *ctl, int sig_fd,
                                  bool *stdin_open, bool tty, int *signo)
{
    struct pending_input in = {.len = 0};

    for (;;) {
        bool want_stdin = *stdin_open && in.len == 0;
        struct pollfd fds[3 + 1 + CONTROL_MAX_CLIENTS] = {
            {.fd = hv_vm_stopped_fd(ctx->vm), .events = POLLIN},
            {.fd = sig_fd, .events = POLLIN},
            {.fd = want_stdin ? STDIN_FILENO : -1, .events = POLLIN},
        };
        int nctl = ctl ? control_server_pollfds(ctl, fds + 3) : 0;

        /* With input pending, retry every 10 ms instead of reading more. */
        if (poll(fds, (nfds_t)(3 + nctl), in.len ? 10 : -1) < 0) {
            if (errno == EINTR)
                continue;
            return LOOP_VM_STOPPED;
        }
        if (fds[0].revents)
            return LOOP_VM_STOPPED;
        if (fds[1].revents) {
            struct signalfd_siginfo si;
            if (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
                *signo = (int)si.ssi_signo;
                return LOOP_SIGNAL;
            }
        }
        if (fds[2].revents) {
            ssize_t n = read(STDIN_FILENO, in.buf, sizeof(in.buf));
            if (n <= 0) {
                *stdin_open = false; /* EOF: the guest keeps running without input */
                continue;
            }
            if (tty && memchr(in.buf, CONSOLE_ESCAPE, (size_t)n))
                return LOOP_ESCAPE;
            in.off = 0;
            in.len = (size_t)n;
        }
        if (in.len) {
            size_t taken = hv_vm_console_input(ctx->vm, in.buf + in.off, in.len);
            in.off += taken;
            in.len -= taken;
        }
        if (ctl)
            control_server_handle(ctl, fds + 3, nctl, ctx);
    }
}

static void print_device_stats(const char *kind, unsigned i, const void *stats,
                               const struct hv_stat_field *f)
{
    fprintf(stderr, "vmmd: %s%u", kind, i);
    for (; f->name; f++)
        fprintf(stderr, " %s=%llu", f->name, (unsigned long long)hv_stat_value(stats, f));
    fputc('\n', stderr);
}

static void print_stats(struct hv_vm *vm, const struct run_args *a)
{
    struct hv_vm_stats st;

    hv_vm_get_stats(vm, &st);
    if (a->stats) {
        fprintf(stderr, "vmmd: exits");
        for (int k = 0; k < HV_EXIT_KIND_COUNT; k++)
            fprintf(stderr, " %s=%llu", hv_exit_kind_name(k), (unsigned long long)st.exits[k]);
        fprintf(stderr, " writes_ignored=%llu uptime_ms=%llu\n",
                (unsigned long long)st.io_writes_ignored,
                (unsigned long long)(st.uptime_ns / 1000000));
        for (unsigned i = 0; i < st.nr_disks; i++)
            print_device_stats("disk", i, &st.disks[i], hv_disk_stat_fields);
        for (unsigned i = 0; i < st.nr_nics; i++)
            print_device_stats("net", i, &st.nics[i], hv_nic_stat_fields);
    }
    if (a->timing) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        fprintf(stderr, "vmmd-timing: start_ns=%llu first_exit_ns=%llu end_ns=%llu\n",
                (unsigned long long)st.start_ns, (unsigned long long)st.first_exit_ns,
                (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec);
    }
}

/* Writes the exit file atomically, so the daemon never reads half of one. */
static void write_exit_file(const char *path, const char *reason, const char *detail, int status)
{
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "{\"reason\":\"%s\",\"status\":%d,\"detail\":\"", reason, status);
    for (const char *p = detail; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', f);
        fputc((unsigned char)*p < 0x20 ? ' ' : *p, f);
    }
    fprintf(f, "\"}\n");
    if (fclose(f) == 0)
        rename(tmp, path);
}

struct run_result {
    enum hv_stop_reason reason;
    int status;
    char detail[256];
    struct hv_vm *stopped_vm; /* destroyed by the caller, see vmmd_run_main() */
};

/* Runs the VM once, until it stops for any reason. */
static void run_once(const struct run_args *a, const struct hv_vm_config *cfg, int sig_fd,
                     bool *stdin_open, struct worker_ctx *ctx, struct control_server *ctl,
                     struct run_result *res)
{
    struct terminal term = {0};
    struct hv_vm *vm;
    char err[256] = "";
    enum loop_end end;
    int signo = 0, rc;

    rc = hv_vm_create(cfg, &vm, err, sizeof(err));
    if (rc == 0 && (rc = hv_vm_start(vm))) {
        snprintf(err, sizeof(err), "cannot start vCPUs: %s", strerror(-rc));
        hv_vm_destroy(vm);
    }
    if (rc) {
        snprintf(res->detail, sizeof(res->detail), "%s", err[0] ? err : strerror(-rc));
        fprintf(stderr, "vmmd: %s\n", res->detail);
        res->reason = HV_STOP_ERROR;
        res->status = VMMD_RUN_EXIT_FAILURE;
        return;
    }
    ctx->vm = vm;
    ctx->boots++;
    ctx->paused = false;
    if (!ctl)
        terminal_raw(&term);
    end = console_loop(ctx, ctl, sig_fd, stdin_open, term.raw, &signo);
    terminal_restore(&term);
    if (end != LOOP_VM_STOPPED)
        hv_vm_request_stop(vm);
    res->reason = hv_vm_wait(vm);
    print_stats(vm, a);
    snprintf(res->detail, sizeof(res->detail), "%s", hv_vm_stop_detail(vm));

    switch (end == LOOP_VM_STOPPED ? res->reason : HV_STOP_REQUESTED) {
    case HV_STOP_POWEROFF:
        res->status = hv_vm_exit_code(vm);
        break;
    case HV_STOP_REBOOT:
        res->status = VMMD_RUN_EXIT_REBOOT;
        break;
    case HV_STOP_REQUESTED:
        if (end == LOOP_SIGNAL) {
            fprintf(stderr, "vmmd: stopped by signal %d (%s)\n", signo, strsignal(signo));
            snprintf(res->detail, sizeof(res->detail), "stopped by signal %d", signo);
            res->status = 128 + signo;
        } else if (end == LOOP_ESCAPE) {
            fprintf(stderr, "vmmd: console escape, VM stopped\n");
            res->status = VMMD_RUN_EXIT_OK;
        } else {
            res->status = VMMD_RUN_EXIT_OK; /* "stop" on the control socket */
        }
        res->reason = HV_STOP_REQUESTED;
        break;
    default:
        fprintf(stderr, "vmmd: %s: %s\n", hv_stop_reason_name(res->reason), res->detail);
        res->status = VMMD_RUN_EXIT_FAILURE;
        break;
    }
    ctx->vm = NULL;
    res->stopped_vm = vm;
}

static const char *exit_reason_name(enum hv_stop_reason r)
{
    return r == HV_STOP_REQUESTED ? "stopped" : hv_stop_reason_name(r);
}

/* A worker's open files: its VM's devices and eventfds take a few dozen at most. */
#define WORKER_NOFILE_MAX 1024

/*
 * The first steps of the worker sandbox, before the guest runs: nothing it
 * executes can gain privileges (no setuid, no file capabilities), it leaves
 * no core dump with guest memory in it, and it holds a bounded number of
 * descriptors. (Its own uid, namespaces and seccomp are to come.)
 */
static int worker_restrict(void)
{
    struct rlimit none = {0, 0}, files = {WORKER_NOFILE_MAX, WORKER_NOFILE_MAX};

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || setrlimit(RLIMIT_CORE, &none) < 0 ||
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || setrlimit(RLIMIT_NOFILE, &files) < 0)
        return -errno;
    return 0;
}

int vmmd_run_main(int argc, char **argv)
{
    struct run_args a = {.mode = HV_MODE_PV, .vcpus = HV_DEFAULT_VCPUS,
                         .memory = HV_DEFAULT_MEMORY, .on_reboot = ON_REBOOT_RESTART};
    struct hv_vm_config cfg;
    struct hv_disk_config disks[VMMD_OPT_LIST_MAX];
    struct hv_nic_config nics[VMMD_OPT_LIST_MAX];
    char disk_args[VMMD_OPT_LIST_MAX][PATH_MAX], nic_args[VMMD_OPT_LIST_MAX][128];
    struct console_buffer console;
    struct control_server ctl = {.listen_fd = -1};
    struct worker_ctx ctx = {0};
    struct run_result res = {0};
    char err[256];
    sigset_t sigs;
    bool stdin_open = true;
    int sig_fd, rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            vmmd_opts_help(stdout, run_usage, run_options);
            return 0;
        }
    }
    if (vmmd_opts_parse(run_options, &a, argc, argv, err, sizeof(err))) {
        fprintf(stderr, "vmmd run: %s\n", err);
        return VMMD_RUN_EXIT_USAGE;
    }
    for (unsigned i = 0; i < a.disks.count || i < a.nics.count; i++) {
        int bad = 0;
        if (i < a.disks.count) {
            snprintf(disk_args[i], sizeof(disk_args[i]), "%s", a.disks.items[i]);
            bad = vmmd_parse_disk_arg(disk_args[i], &disks[i], err, sizeof(err));
        }
        if (!bad && i < a.nics.count) {
            snprintf(nic_args[i], sizeof(nic_args[i]), "%s", a.nics.items[i]);
            bad = vmmd_parse_nic_arg(nic_args[i], &nics[i], err, sizeof(err));
        }
        if (bad) {
            fprintf(stderr, "vmmd run: %s\n", err);
            return VMMD_RUN_EXIT_USAGE;
        }
    }
    if (a.control) {
        /* A worker: no terminal, the daemon talks to it through the control socket. */
        stdin_open = false;
        if ((rc = worker_restrict()))
            fprintf(stderr, "vmmd: cannot restrict the worker: %s\n", strerror(-rc));
        if ((rc = control_server_open(&ctl, a.control))) {
            fprintf(stderr, "vmmd: control socket %s: %s\n", a.control, strerror(-rc));
            return VMMD_RUN_EXIT_FAILURE;
        }
    }
    if ((rc = console_buffer_init(&console, a.console_log, WORKER_CONSOLE_LOG_MAX,
                                  a.control ? -1 : STDOUT_FILENO))) {
        fprintf(stderr, "vmmd: console log %s: %s\n", a.console_log, strerror(-rc));
        return VMMD_RUN_EXIT_FAILURE;
    }
    ctx.console = &console;
    cfg = (struct hv_vm_config){
        .mode = (enum hv_mode)a.mode,
        .vcpus = (unsigned)a.vcpus,
        .memory_mib = a.memory,
        .kernel = a.kernel,
        .initrd = a.initrd,
        .kernel_has_fd = a.kernel_fd != 0,
        .kernel_fd = (int)a.kernel_fd,
        .initrd_has_fd = a.initrd_fd != 0,
        .initrd_fd = (int)a.initrd_fd,
        .cmdline = a.cmdline,
        .console_write = console_buffer_write,
        .console_opaque = &console,
        .disks = disks,
        .nr_disks = a.disks.count,
        .nics = nics,
        .nr_nics = a.nics.count,
    };

    /* Signals arrive through a signalfd; vCPU threads inherit the blocked mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);
    if (sig_fd < 0) {
        fprintf(stderr, "vmmd: signalfd: %s\n", strerror(errno));
        return VMMD_RUN_EXIT_FAILURE;
    }
    for (;;) {
        res.stopped_vm = NULL;
        run_once(&a, &cfg, sig_fd, &stdin_open, &ctx, a.control ? &ctl : NULL, &res);
        if (res.reason != HV_STOP_REBOOT || a.on_reboot != ON_REBOOT_RESTART ||
            ctx.exit_on_reboot)
            break;
        hv_vm_destroy(res.stopped_vm);
        fprintf(stderr, "vmmd: guest rebooted, restarting it\n");
    }
    /* A shutdown request (Ctrl-Alt-Del) that ended in a reboot is a clean power off. */
    if (res.reason == HV_STOP_REBOOT && ctx.exit_on_reboot) {
        res.reason = HV_STOP_POWEROFF;
        res.status = VMMD_RUN_EXIT_OK;
    }
    if (a.exit_file)
        write_exit_file(a.exit_file, exit_reason_name(res.reason), res.detail, res.status);
    if (a.control)
        control_server_close(&ctl);
    /*
     * The daemon learns the VM has stopped from the control socket's EOF, so the
     * socket closes before the VM is torn down: its vCPUs are already gone, and
     * KVM's irqchip teardown (~20 ms) no longer delays the answer to `stop`.
     */
    hv_vm_destroy(res.stopped_vm);
    close(sig_fd);
    console_buffer_destroy(&console);
    return res.status;
}
