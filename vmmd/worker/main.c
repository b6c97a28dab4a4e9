/*
 * vmmd's entry point. This binary is small on purpose: `vmmd run` (the
 * foreground VM, and every daemon worker) links only libhvcore and jansson,
 * so a worker starts in about a millisecond and costs little memory. The
 * daemon's commands (`vmmd`, `vmmd serve`, `vmmd routes`) are the sibling
 * binary vmmd-daemon, which this one execs.
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A closed stdin/stdout/stderr would let /dev/kvm or an eventfd become fd 0-2. */
static void ensure_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) < 0) {
            int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
            if (null >= 0 && null != fd) {
                dup2(null, fd);
                close(null);
            }
        }
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: vmmd [command] [options]\n\n"
                 "Commands:\n"
                 "  serve      run the daemon (the default; see vmmd serve --help)\n"
                 "  run        run one VM in the foreground (see vmmd run --help)\n"
                 "  routes     print the API's routes\n"
                 "  version    print the version\n");
}

/* Runs vmmd-daemon from this binary's directory with the same arguments. */
static int exec_daemon(char **argv)
{
    char self[PATH_MAX], path[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    if (n <= 0) {
        fprintf(stderr, "vmmd: cannot find my own binary: %s\n", strerror(errno));
        return 1;
    }
    self[n] = 0;
    slash = strrchr(self, '/');
    *slash = 0;
    snprintf(path, sizeof(path), "%s/vmmd-daemon", self);
    argv[0] = path;
    execv(path, argv);
    fprintf(stderr, "vmmd: cannot run %s: %s\n", path, strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    ensure_std_fds();
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return vmmd_run_main(argc - 2, argv + 2);
    if (argc >= 2 && (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)) {
        printf("vmmd %s\n", VMMD_VERSION);
        return 0;
    }
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
        usage(stdout);
        return 0;
    }
    /* No command, options first (`vmmd --listen ...`), serve or routes: the daemon. */
    if (argc < 2 || strncmp(argv[1], "--", 2) == 0 || strcmp(argv[1], "serve") == 0 ||
        strcmp(argv[1], "routes") == 0)
        return exec_daemon(argv);
    fprintf(stderr, "vmmd: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
