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
#include "migration.h"
#include "sandbox.h"
#include "syscall_filter.h"

#include "hv/hv.h"

#include <jansson.h>
#include <malloc.h>

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
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define CONSOLE_ESCAPE 0x1d /* Ctrl-] */

enum on_reboot { ON_REBOOT_RESTART, ON_REBOOT_EXIT };

struct run_args {
    const char *kernel, *initrd, *cmdline, *firmware;
    uint64_t kernel_fd, initrd_fd, firmware_fd; /* 0: open the path */
    const char *restore_state, *restore_memory;   /* a snapshot to start from */
    uint64_t restore_state_fd, restore_memory_fd;
    uint64_t incoming_fd, incoming_timeout; /* a live migration's target: listening socket */
    int mode;
    uint64_t vcpus, memory;
    int on_reboot;
    bool stats, timing, help;
    const char *control, *console_log, *exit_file; /* worker mode (the daemon's) */
    uint64_t fence_after_ms;
    uint64_t sandbox_uid;
    struct vmmd_opt_list cgroups, disks, nics;
};

static const char *const mode_choices[] = {"full", "pv", NULL};
static const char *const reboot_choices[] = {"restart", "exit", NULL};

#define OFF(f) offsetof(struct run_args, f)
static const struct vmmd_opt run_options[] = {
    {.name = "kernel",
     .type = VMMD_OPT_STRING,
     .offset = OFF(kernel),
     .metavar = "PATH",
     .help = "bzImage or ELF64 kernel to boot (or --firmware)"},
    {.name = "initrd",
     .type = VMMD_OPT_STRING,
     .offset = OFF(initrd),
     .metavar = "PATH",
     .help = "initial ramdisk"},
    {.name = "kernel-fd",
     .type = VMMD_OPT_UINT,
     .offset = OFF(kernel_fd),
     .metavar = "FD",
     .help = "read the kernel from this inherited descriptor; --kernel then only names it",
     .min = 3,
     .max = INT32_MAX},
    {.name = "initrd-fd",
     .type = VMMD_OPT_UINT,
     .offset = OFF(initrd_fd),
     .metavar = "FD",
     .help = "read the initrd from this inherited descriptor",
     .min = 3,
     .max = INT32_MAX},
    {.name = "cmdline",
     .type = VMMD_OPT_STRING,
     .offset = OFF(cmdline),
     .metavar = "STR",
     .help = "kernel command line"},
    {.name = "firmware",
     .type = VMMD_OPT_STRING,
     .offset = OFF(firmware),
     .metavar = "PATH",
     .help = "instead of --kernel: PC firmware to start in, which boots the first disk "
             "(/usr/share/seabios/bios-256k.bin)"},
    {.name = "firmware-fd",
     .type = VMMD_OPT_UINT,
     .offset = OFF(firmware_fd),
     .metavar = "FD",
     .help = "read the firmware from this inherited descriptor; --firmware then only names it",
     .min = 3,
     .max = INT32_MAX},
    {.name = "restore-state",
     .type = VMMD_OPT_STRING,
     .offset = OFF(restore_state),
     .metavar = "PATH",
     .help = "start where this snapshot's state file left the VM (with --restore-memory; the "
             "other options must describe the same machine)"},
    {.name = "restore-memory",
     .type = VMMD_OPT_STRING,
     .offset = OFF(restore_memory),
     .metavar = "PATH",
     .help = "the snapshot's memory file, mapped copy-on-write"},
    {.name = "restore-state-fd",
     .type = VMMD_OPT_UINT,
     .offset = OFF(restore_state_fd),
     .metavar = "FD",
     .help = "read the state file from this inherited descriptor",
     .min = 3,
     .max = INT32_MAX},
    {.name = "restore-memory-fd",
     .type = VMMD_OPT_UINT,
     .offset = OFF(restore_memory_fd),
     .metavar = "FD",
     .help = "map the memory file from this inherited descriptor",
     .min = 3,
     .max = INT32_MAX},
    {.name = "incoming-fd",
     .type = VMMD_OPT_UINT,
     .offset = OFF(incoming_fd),
     .metavar = "FD",
     .help = "the target of a live migration: accept the source on this inherited listening "
             "socket (the ticket it must show comes in VMMD_MIGRATION_TICKET), receive the VM and "
             "run it",
     .min = 3,
     .max = INT32_MAX},
    {.name = "fence-after",
     .type = VMMD_OPT_UINT,
     .offset = OFF(fence_after_ms),
     .metavar = "MS",
     .help = "with --control: stop the VM when no client (its daemon) has been connected for "
             "MS milliseconds, so that a cluster may start it elsewhere (self-fencing)",
     .min = 100,
     .max = 3600000},
    {.name = "incoming-timeout",
     .type = VMMD_OPT_UINT,
     .offset = OFF(incoming_timeout),
     .metavar = "S",
     .help = "with --incoming-fd: give up when no source has connected after S seconds "
             "(default 60)",
     .min = 1,
     .max = 86400},
    {.name = "mode",
     .type = VMMD_OPT_CHOICE,
     .offset = OFF(mode),
     .metavar = "MODE",
     .help = "virtualization mode, default pv",
     .choices = mode_choices},
    {.name = "vcpus",
     .type = VMMD_OPT_UINT,
     .offset = OFF(vcpus),
     .metavar = "N",
     .help = "virtual CPUs, default 1",
     .min = 1,
     .max = HV_MAX_VCPUS},
    {.name = "memory",
     .type = VMMD_OPT_UINT,
     .offset = OFF(memory),
     .metavar = "MIB",
     .help = "guest memory in MiB, default 256",
     .min = HV_MIN_MEMORY_MIB,
     .max = HV_MAX_MEMORY_MIB},
    {.name = "disk",
     .type = VMMD_OPT_LIST,
     .offset = OFF(disks),
     .metavar = "PATH[,ro][,fd=FD][,LIMIT=N]",
     .help = "raw disk image (repeatable): virtio-blk in pv mode, IDE in full mode; fd= uses "
             "that inherited descriptor of PATH; LIMIT: I/O limits bytes_per_s, ops_per_s, "
             "burst_bytes, burst_ops"},
    {.name = "nic",
     .type = VMMD_OPT_LIST,
     .offset = OFF(nics),
     .metavar = "tap=NAME|bridge=NAME[,mac=MAC][,LIMIT=N]",
     .help = "network interface (repeatable; virtio-net in pv mode, an e1000 in full mode) over a "
             "tap device, or over a new tap added to a bridge; LIMIT as for --disk, each "
             "direction"},
    {.name = "on-reboot",
     .type = VMMD_OPT_CHOICE,
     .offset = OFF(on_reboot),
     .metavar = "WHAT",
     .help = "when the guest reboots: restart it (default) or exit with status 3",
     .choices = reboot_choices},
    {.name = "stats",
     .type = VMMD_OPT_FLAG,
     .offset = OFF(stats),
     .help = "print exit counters to stderr at the end"},
    {.name = "timing",
     .type = VMMD_OPT_FLAG,
     .offset = OFF(timing),
     .help = "print CLOCK_MONOTONIC ns of start, first guest exit and end to stderr"},
    {.name = "control",
     .type = VMMD_OPT_STRING,
     .offset = OFF(control),
     .metavar = "PATH",
     .help = "worker mode: serve the control socket at PATH; the console goes to the "
             "buffer, the log and attached clients instead of stdin/stdout"},
    {.name = "console-log",
     .type = VMMD_OPT_STRING,
     .offset = OFF(console_log),
     .metavar = "PATH",
     .help = "also write the console to PATH (capped at 1 MiB, one .1 kept)"},
    {.name = "exit-file",
     .type = VMMD_OPT_STRING,
     .offset = OFF(exit_file),
     .metavar = "PATH",
     .help = "write why the VM ended, as JSON, to PATH before exiting"},
    {.name = "sandbox-uid",
     .type = VMMD_OPT_UINT,
     .offset = OFF(sandbox_uid),
     .metavar = "ID",
     .help = "once its files are open, run in a sandbox as uid and gid ID: own namespaces, "
             "an empty root, no capabilities, system call filters (needs root)",
     .min = 1,
     .max = UINT32_MAX - 1},
    {.name = "cgroup",
     .type = VMMD_OPT_LIST,
     .offset = OFF(cgroups),
     .metavar = "DIR",
     .help = "join this cgroup (its cgroup.procs) before the guest runs (repeatable: one per "
             "cgroup v1 hierarchy)"},
    {.name = "help", .type = VMMD_OPT_FLAG, .offset = OFF(help), .help = "show this help"},
    {.name = NULL},
};
#undef OFF

static const char run_usage[] =
    "usage: vmmd run --kernel PATH [--initrd PATH] [--cmdline STR] [--mode full|pv]\n"
    "                [--vcpus N] [--memory MIB] [--disk PATH[,ro][,LIMIT=N]]...\n"
    "                [--nic tap=NAME|bridge=NAME[,mac=MAC][,LIMIT=N]]...\n"
    "       vmmd run --firmware PATH --disk PATH[,ro][,LIMIT=N] [--mode full|pv] ...\n"
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

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Self-fencing: a cluster restarts a VM marked "ha" elsewhere once its member's lease has
 * expired; by then this copy must have stopped. Its daemon keeps a connection open while it
 * runs, so a worker left alone for fence_after_ms (the daemon killed, or cut off from etcd
 * and gone) stops the VM. A daemon restarted sooner adopts it as before.
 */
static void check_fence(struct worker_ctx *ctx, const struct control_server *ctl)
{
    uint64_t now;

    if (!ctx->fence_after_ms || ctx->fenced)
        return;
    now = mono_ms();
    if (control_server_clients(ctl)) {
        ctx->lonely_since_ms = 0;
        return;
    }
    if (!ctx->lonely_since_ms)
        ctx->lonely_since_ms = now;
    if (now - ctx->lonely_since_ms >= ctx->fence_after_ms) {
        fprintf(stderr, "vmmd: no daemon for %llu ms: stopping the VM (fenced)\n",
                (unsigned long long)(now - ctx->lonely_since_ms));
        ctx->fenced = true;
        hv_vm_request_stop(ctx->vm);
    }
}

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

        /* With input pending, retry every 10 ms instead of reading more; fencing looks at
         * the clock every 100 ms. */
        int timeout = in.len ? 10 : ctx->fence_after_ms ? 100 : -1;
        if (ctl)
            check_fence(ctx, ctl);
        if (poll(fds, (nfds_t)(3 + nctl), timeout) < 0) {
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

/*
 * Writes why the VM ended to the exit file, opened (empty) at start: a
 * sandboxed worker can no longer open it. The daemon reads it only once the
 * worker is gone, so one write is all it can see.
 */
static void write_exit_file(int fd, const char *reason, const char *detail, int status)
{
    char json[512];
    size_t len;

    len = (size_t)snprintf(json, sizeof(json) - 4, "{\"reason\":\"%s\",\"status\":%d,\"detail\":\"",
                           reason, status);
    for (const char *p = detail; *p && len < sizeof(json) - 5; p++) {
        if (*p == '"' || *p == '\\')
            json[len++] = '\\';
        json[len++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    }
    len += (size_t)snprintf(json + len, sizeof(json) - len, "\"}\n");
    if (pwrite(fd, json, len, 0) == (ssize_t)len)
        (void)!ftruncate(fd, (off_t)len);
}

/* The exit file, empty: a regular file, never a FIFO or a symlink planted in its place. */
static int open_exit_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    struct stat st;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || ftruncate(fd, 0) < 0) {
        close(fd);
        return -EINVAL;
    }
    return fd;
}

struct run_result {
    enum hv_stop_reason reason;
    int status;
    char detail[256];
    struct hv_vm *stopped_vm; /* destroyed by the caller, see vmmd_run_main() */
    bool migrated;            /* it stopped because it runs on a migration's target now */
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

    struct hv_vm_config incoming = *cfg;
    int source = -1;

    /* A migration's target: its first boot is the VM the source sends. */
    incoming.incoming = a->incoming_fd && ctx->boots == 0;
    rc = hv_vm_create(&incoming, &vm, err, sizeof(err));
    if (rc == 0 && incoming.incoming) {
        source = mig_receive(vm, (int)a->incoming_fd, ctx->ticket, (unsigned)a->vcpus,
                             (a->incoming_timeout ? a->incoming_timeout : 60) * 1000, err,
                             sizeof(err));
        if (source < 0) {
            rc = source;
            hv_vm_destroy(vm);
        }
    }
    if (rc == 0 && (rc = hv_vm_start(vm))) {
        snprintf(err, sizeof(err), "cannot start vCPUs: %s", strerror(-rc));
        hv_vm_destroy(vm);
    }
    if (source >= 0)
        mig_answer(source, rc, err);
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
    if (ctx->migration) {
        struct mig_progress p;
        mig_send_join(ctx->migration);
        mig_send_progress(ctx->migration, &p);
        if (p.phase == MIG_DONE) {
            res->migrated = true;
            snprintf(res->detail, sizeof(res->detail),
                     "migrated: %u rounds, %llu bytes sent, %.3f ms downtime", p.round,
                     (unsigned long long)p.bytes_sent, (double)p.downtime_us / 1000.0);
        }
    }

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

/* Joins the cgroups the daemon made for this VM; the sandbox's processes inherit them. */
static int join_cgroups(const struct vmmd_opt_list *dirs, char *err, size_t errlen)
{
    for (unsigned i = 0; i < dirs->count; i++) {
        char path[PATH_MAX];
        int fd, rc = 0;

        snprintf(path, sizeof(path), "%s/cgroup.procs", dirs->items[i]);
        fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || write(fd, "0\n", 2) != 2)
            rc = -errno;
        if (fd >= 0)
            close(fd);
        if (rc) {
            snprintf(err, errlen, "cannot join cgroup %s: %s", dirs->items[i], strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* The worker's files, open before the sandbox: afterwards no path can be opened. */
struct vm_files {
    int kvm, kernel, initrd, firmware, restore_state, restore_memory;
    int disks[VMMD_OPT_LIST_MAX], taps[VMMD_OPT_LIST_MAX];
};

static int open_file(const char *what, const char *path, int flags, char *err, size_t errlen)
{
    int fd = open(path, flags | O_CLOEXEC);

    if (fd < 0)
        snprintf(err, errlen, "cannot open %s%s%s: %s", what ? what : "", what ? " " : "", path,
                 strerror(errno));
    return fd;
}

/* A file named by path unless the caller already handed its descriptor over. */
static int open_unless_given(const char *what, const char *path, int flags, bool *has_fd, int *fd,
                             int *owned, char *err, size_t errlen)
{
    if (*has_fd)
        return 0;
    if ((*owned = *fd = open_file(what, path, flags, err, errlen)) < 0)
        return -1;
    *has_fd = true;
    return 0;
}

/*
 * Everything the VM needs, open before the sandbox closes: /dev/kvm, the taps
 * (a tap made for a bridge then also lives across reboots), and every path
 * not already given as a descriptor. libhvcore then opens nothing itself.
 */
static int open_vm_files(const struct run_args *a, struct hv_vm_config *cfg,
                         struct hv_disk_config *disks, struct hv_nic_config *nics,
                         struct vm_files *f, char *err, size_t errlen)
{
    char name[16];
    bool kvm_given = false, state_given = a->restore_state_fd != 0,
         memory_given = a->restore_memory_fd != 0;

    if (open_unless_given(NULL, "/dev/kvm", O_RDWR, &kvm_given, &cfg->kvm_fd, &f->kvm, err, errlen))
        return -1;
    cfg->kvm_has_fd = true;
    for (unsigned i = 0; i < cfg->nr_nics; i++) {
        if ((f->taps[i] = nics[i].fd = hv_tap_open(&nics[i], name, err, errlen)) < 0)
            return -1;
        nics[i].has_fd = true;
    }
    if (cfg->firmware &&
        open_unless_given("firmware", cfg->firmware, O_RDONLY, &cfg->firmware_has_fd,
                          &cfg->firmware_fd, &f->firmware, err, errlen))
        return -1;
    if ((cfg->kernel && open_unless_given("kernel", cfg->kernel, O_RDONLY, &cfg->kernel_has_fd,
                                          &cfg->kernel_fd, &f->kernel, err, errlen)) ||
        (cfg->initrd && open_unless_given("initrd", cfg->initrd, O_RDONLY, &cfg->initrd_has_fd,
                                          &cfg->initrd_fd, &f->initrd, err, errlen)))
        return -1;
    cfg->restore_state_fd = (int)a->restore_state_fd;
    cfg->restore_mem_fd = (int)a->restore_memory_fd;
    if (cfg->restore_has_fd &&
        (open_unless_given("snapshot state", a->restore_state, O_RDONLY, &state_given,
                           &cfg->restore_state_fd, &f->restore_state, err, errlen) ||
         open_unless_given("snapshot memory", a->restore_memory, O_RDONLY, &memory_given,
                           &cfg->restore_mem_fd, &f->restore_memory, err, errlen)))
        return -1;
    for (unsigned i = 0; i < cfg->nr_disks; i++)
        if (open_unless_given("disk image", disks[i].path, disks[i].readonly ? O_RDONLY : O_RDWR,
                              &disks[i].has_fd, &disks[i].fd, &f->disks[i], err, errlen))
            return -1;
    return 0;
}

static void close_vm_files(struct vm_files *f)
{
    int *fds = (int *)f;

    for (size_t i = 0; i < sizeof(*f) / sizeof(int); i++)
        if (fds[i] > 0)
            close(fds[i]);
}

/* Into the sandbox: namespaces and a monitor, the empty root, the VM's ids, the filters. */
static int enter_sandbox(const struct run_args *a, int exit_fd, char *err, size_t errlen)
{
    char root[PATH_MAX] = "/tmp";
    struct sandbox_config sc = {
        .uid = (uid_t)a->sandbox_uid,
        .gid = (gid_t)a->sandbox_uid,
        .root_dir = root,
        /* vCPUs, one I/O thread per virtio device (console, rng, disks) and NIC, spare. */
        .max_threads = (unsigned)a->vcpus + 2 + a->disks.count + a->nics.count + 8,
    };
    const char *slash = a->control ? strrchr(a->control, '/') : NULL;
    int rc;

    /* Files libraries read once, on first use: now, while they can. jansson seeds its hash
     * from /dev/urandom; the RTC's gmtime_r() loads the time zone (/etc/localtime). */
    json_object_seed(0);
    tzset();
    /* The VM's run directory, when it has one, is where its empty root is mounted. */
    if (slash && slash != a->control)
        snprintf(root, sizeof(root), "%.*s", (int)(slash - a->control), a->control);
    if ((rc = sandbox_fork(err, errlen)) || (rc = sandbox_enter(&sc, err, errlen)) ||
        (rc = syscall_filter_prepare(exit_fd, err, errlen)) ||
        (rc = syscall_filter_install_process(err, errlen)))
        return rc;
    return 0;
}

int vmmd_run_main(int argc, char **argv)
{
    struct run_args a = {.mode = HV_MODE_PV,
                         .vcpus = HV_DEFAULT_VCPUS,
                         .memory = HV_DEFAULT_MEMORY,
                         .on_reboot = ON_REBOOT_RESTART};
    struct hv_vm_config cfg;
    struct hv_disk_config disks[VMMD_OPT_LIST_MAX];
    struct hv_nic_config nics[VMMD_OPT_LIST_MAX];
    char disk_args[VMMD_OPT_LIST_MAX][PATH_MAX + 160], nic_args[VMMD_OPT_LIST_MAX][256];
    struct console_buffer console;
    struct control_server ctl = {.listen_fd = -1};
    struct worker_ctx ctx = {0};
    struct run_result res = {0};
    struct vm_files files;
    char err[256];
    sigset_t sigs;
    bool stdin_open = true;
    int sig_fd, rc, exit_fd = -1;

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
    ctx.fence_after_ms = a.control ? a.fence_after_ms : 0;
    if (!a.kernel == !a.firmware || (a.firmware && (a.initrd || a.cmdline || !a.disks.count))) {
        fprintf(stderr, "vmmd run: %s\n",
                !a.kernel && !a.firmware ? "--kernel or --firmware is required"
                : a.kernel && a.firmware ? "--kernel and --firmware exclude each other"
                : !a.disks.count         ? "--firmware boots from a disk: give --disk"
                                 : "--initrd and --cmdline go with --kernel, not --firmware");
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
    memset(&files, -1, sizeof(files));
    if (a.exit_file && (exit_fd = open_exit_file(a.exit_file)) < 0) {
        fprintf(stderr, "vmmd: exit file %s: %s\n", a.exit_file, strerror(-exit_fd));
        return VMMD_RUN_EXIT_FAILURE;
    }
    if ((a.control || a.sandbox_uid) && sandbox_limit_process(err, sizeof(err)))
        fprintf(stderr, "vmmd: %s\n", err);
    if (a.control) {
        /* A worker: no terminal, the daemon talks to it through the control socket. */
        stdin_open = false;
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
    /* Live limit changes land in the configuration too, so a guest reboot keeps them. */
    ctx.disks = disks;
    ctx.nr_disks = a.disks.count;
    ctx.nics = nics;
    ctx.nr_nics = a.nics.count;
    ctx.vcpus = (unsigned)a.vcpus;
    if (a.incoming_fd) {
        /* From the environment, not argv: other users can read a process's command line. */
        const char *ticket = getenv("VMMD_MIGRATION_TICKET");
        if (mig_ticket_parse(ticket, ctx.ticket)) {
            fprintf(stderr, "vmmd run: --incoming-fd needs VMMD_MIGRATION_TICKET (64 hex digits)\n");
            return VMMD_RUN_EXIT_USAGE;
        }
        unsetenv("VMMD_MIGRATION_TICKET");
    }
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
        .firmware = a.firmware,
        .firmware_has_fd = a.firmware_fd != 0,
        .firmware_fd = (int)a.firmware_fd,
        .console_write = console_buffer_write,
        .console_opaque = &console,
        .disks = disks,
        .nr_disks = a.disks.count,
        .nics = nics,
        .nr_nics = a.nics.count,
        .thread_start = a.sandbox_uid ? syscall_filter_thread_start : NULL,
        .restore_has_fd = true,
    };
    if (!(a.restore_state || a.restore_state_fd) != !(a.restore_memory || a.restore_memory_fd)) {
        fprintf(stderr, "vmmd run: a restore needs both the state and the memory file\n");
        return VMMD_RUN_EXIT_USAGE;
    }
    cfg.restore_has_fd = a.restore_state || a.restore_state_fd;
    /*
     * glibc reads /proc/sys/vm/overcommit_memory the first time it shrinks a thread's heap,
     * which the sandbox forbids (a migration's send thread died of it after freeing its
     * bitmaps): threads' heaps are never trimmed, and big blocks are always mapped.
     */
    mallopt(M_TRIM_THRESHOLD, INT32_MAX);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    if (open_vm_files(&a, &cfg, disks, nics, &files, err, sizeof(err)) ||
        join_cgroups(&a.cgroups, err, sizeof(err)) ||
        (a.sandbox_uid && enter_sandbox(&a, exit_fd, err, sizeof(err)))) {
        fprintf(stderr, "vmmd: %s\n", err);
        if (exit_fd >= 0)
            write_exit_file(exit_fd, "error", err, VMMD_RUN_EXIT_FAILURE);
        return VMMD_RUN_EXIT_FAILURE;
    }

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
        if (res.reason != HV_STOP_REBOOT || a.on_reboot != ON_REBOOT_RESTART || ctx.exit_on_reboot)
            break;
        hv_vm_destroy(res.stopped_vm);
        cfg.restore_has_fd = false; /* a reboot boots the kernel or firmware again */
        fprintf(stderr, "vmmd: guest rebooted, restarting it\n");
    }
    /* A shutdown request (Ctrl-Alt-Del) that ended in a reboot is a clean power off. */
    if (res.reason == HV_STOP_REBOOT && ctx.exit_on_reboot) {
        res.reason = HV_STOP_POWEROFF;
        res.status = VMMD_RUN_EXIT_OK;
    }
    if (exit_fd >= 0)
        write_exit_file(exit_fd,
                        res.migrated ? "migrated"
                        : ctx.fenced ? "fenced"
                                     : exit_reason_name(res.reason),
                        res.detail, res.status);
    if (a.control)
        control_server_close(&ctl);
    /*
     * The daemon learns the VM has stopped from the control socket's EOF, so the
     * socket closes before the VM is torn down: its vCPUs are already gone, and
     * KVM's irqchip teardown (~20 ms) no longer delays the answer to `stop`.
     */
    hv_vm_destroy(res.stopped_vm);
    free(ctx.migration);
    close(sig_fd);
    close_vm_files(&files);
    console_buffer_destroy(&console);
    if (exit_fd >= 0)
        close(exit_fd);
    return res.status;
}
