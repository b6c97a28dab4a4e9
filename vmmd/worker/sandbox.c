/* The worker's sandbox (see sandbox.h). */
#include "sandbox.h"
#include "common/errbuf.h"
#include "syscall_filter.h"
#include "vmmd/worker_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>
#include <linux/capability.h>

#define WORKER_NOFILE_MAX 1024 /* a VM's devices and eventfds take a few dozen at most */

static bool entered;
static int monitor_pipe = -1; /* reads EOF once the monitor is gone */
static pid_t host_pid;        /* this process's pid outside its PID namespace */
static volatile pid_t child_pid;

static void forward_signal(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

/* The monitor: holds nothing, passes signals on, ends as the worker did. */
static _Noreturn void monitor(pid_t child, int death_pipe)
{
    struct sigaction sa;
    int status = 0;

    child_pid = child;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = forward_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* Everything but stdio and the pipe whose end tells the child we are gone. */
    syscall(SYS_close_range, 3, (unsigned)death_pipe - 1, 0);
    syscall(SYS_close_range, (unsigned)death_pipe + 1, ~0u, 0);
    syscall_filter_install_monitor();
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/*
 * The child dies with the monitor. The kernel clears this on every change of
 * uid, so it is set again after sandbox_enter() changes it; and the monitor
 * may have died before it was set at all: then the pipe says so.
 */
static int die_with_monitor(void)
{
    struct pollfd pfd = {.fd = monitor_pipe, .events = POLLIN};

    if (monitor_pipe < 0)
        return 0;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || poll(&pfd, 1, 0) != 0)
        return -1;
    return 0;
}

int sandbox_fork(char *err, size_t errlen)
{
    int death[2];
    pid_t pid;

    if (pipe2(death, O_CLOEXEC) < 0)
        return vmmd_errf(err, errlen, -errno, "pipe: %s", strerror(errno));
    /* A raw clone: glibc's fork() cannot ask for namespaces. The process is
     * single-threaded here, so the child may run on a copy of this stack. */
    pid = (pid_t)syscall(SYS_clone, WORKER_NAMESPACES | SIGCHLD, NULL, NULL, NULL, NULL);
    if (pid < 0) {
        int e = errno;
        close(death[0]);
        close(death[1]);
        return vmmd_errf(err, errlen, -e, "cannot create the sandbox's namespaces: %s",
                         strerror(e));
    }
    if (pid > 0) {
        close(death[0]);
        monitor(pid, death[1]);
    }
    close(death[1]);
    monitor_pipe = death[0];
    if (die_with_monitor() < 0)
        _exit(1);
    /* getpid() says 1 now; the host's /proc, still mounted, says who we are outside. */
    char self[32] = "";
    if (readlink("/proc/self", self, sizeof(self) - 1) > 0)
        host_pid = (pid_t)atoi(self);
    return 0;
}

/* An empty tmpfs, read-only, as /: the host's tree is unmounted from this namespace. */
static int empty_root(const char *dir, char *err, size_t errlen)
{
    const unsigned long ro = MS_NOSUID | MS_NODEV | MS_NOEXEC;

    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return vmmd_errf(err, errlen, -errno, "cannot make the mounts private: %s",
                         strerror(errno));
    if (mount("vmmd-sandbox", dir, "tmpfs", ro, "size=16k,nr_inodes=4,mode=0555") < 0)
        return vmmd_errf(err, errlen, -errno, "cannot mount the empty root on %s: %s", dir,
                         strerror(errno));
    if (chdir(dir) < 0)
        return vmmd_errf(err, errlen, -errno, "cannot enter %s: %s", dir, strerror(errno));
    /* pivot_root(".", "."): the old root ends up stacked on the new one, then goes. */
    if (syscall(SYS_pivot_root, ".", ".") == 0) {
        if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
            return vmmd_errf(err, errlen, -errno, "cannot drop the old root: %s", strerror(errno));
    } else if (errno == EINVAL) {
        /* The host runs from its initramfs, which cannot be pivoted away from: move the
         * empty root over / and chroot into it. Without capabilities and without a
         * descriptor outside, there is no way back. */
        if (mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
            return vmmd_errf(err, errlen, -errno, "cannot move into the empty root: %s",
                             strerror(errno));
    } else {
        return vmmd_errf(err, errlen, -errno, "cannot pivot into the empty root: %s",
                         strerror(errno));
    }
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | ro, NULL) < 0)
        return vmmd_errf(err, errlen, -errno, "cannot make the root read-only: %s",
                         strerror(errno));
    return 0;
}

int sandbox_limit_process(char *err, size_t errlen)
{
    const struct rlimit none = {0, 0}, files = {WORKER_NOFILE_MAX, WORKER_NOFILE_MAX};

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
        setrlimit(RLIMIT_CORE, &none) < 0 || setrlimit(RLIMIT_NOFILE, &files) < 0)
        return vmmd_errf(err, errlen, -errno, "cannot restrict the worker: %s", strerror(errno));
    return 0;
}

/* No capabilities now or ever: the bounding set goes before the uid changes. */
static int drop_privileges(const struct sandbox_config *c, char *err, size_t errlen)
{
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return vmmd_errf(err, errlen, -errno, "cannot drop capability %d: %s", cap,
                             strerror(errno));
    if (setgroups(0, NULL) < 0 || setresgid(c->gid, c->gid, c->gid) < 0 ||
        setresuid(c->uid, c->uid, c->uid) < 0)
        return vmmd_errf(err, errlen, -errno, "cannot become uid %u gid %u: %s", (unsigned)c->uid,
                         (unsigned)c->gid, strerror(errno));
    if (getuid() != c->uid || geteuid() != c->uid || getgid() != c->gid)
        return vmmd_errf(err, errlen, -EPERM, "still privileged after setresuid");
    return 0;
}

/* Sanitizer runtimes: told before the sandbox closes /proc, and no leak check at exit
 * (it would ptrace the threads, which the filters forbid). */
extern void __sanitizer_sandbox_on_notify(void *args) __attribute__((weak));

int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
    return entered;
}

int sandbox_enter(const struct sandbox_config *c, char *err, size_t errlen)
{
    const struct rlimit threads = {c->max_threads, c->max_threads};
    int rc;

    if (c->uid == 0 || c->gid == 0)
        return vmmd_errf(err, errlen, -EINVAL, "a sandboxed worker never runs as root");
    if (__sanitizer_sandbox_on_notify)
        __sanitizer_sandbox_on_notify(NULL);
    if ((rc = empty_root(c->root_dir, err, errlen)))
        return rc;
    if (sethostname("vmmd-worker", 11) < 0)
        return vmmd_errf(err, errlen, -errno, "sethostname: %s", strerror(errno));
    /* Threads count against the uid's process limit, and the uid is this VM's alone. */
    if (setrlimit(RLIMIT_NPROC, &threads) < 0)
        return vmmd_errf(err, errlen, -errno, "cannot limit threads: %s", strerror(errno));
    if ((rc = drop_privileges(c, err, errlen)))
        return rc;
    /* Changing uid makes the process dumpable again, and forgets the death signal. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || die_with_monitor() < 0)
        return vmmd_errf(err, errlen, -errno, "prctl: %s", strerror(errno));
    if (monitor_pipe >= 0)
        close(monitor_pipe);
    monitor_pipe = -1;
    entered = true;
    return 0;
}

pid_t sandbox_host_pid(void)
{
    return host_pid ? host_pid : getpid();
}
