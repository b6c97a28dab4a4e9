/* vmmd's entry point: picks the subcommand. */
#include "daemon.h"
#include "run.h"

#include <fcntl.h>
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

int main(int argc, char **argv)
{
    ensure_std_fds();
    /* No command, or options first: the daemon, as in `vmmd --listen ...`. */
    if (argc < 2 || (strncmp(argv[1], "--", 2) == 0 && strcmp(argv[1], "--version") != 0 &&
                     strcmp(argv[1], "--help") != 0))
        return vmmd_serve_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return vmmd_serve_main(argc - 2, argv + 2);
    if (strcmp(argv[1], "routes") == 0) {
        vmmd_print_routes();
        return 0;
    }
    if (strcmp(argv[1], "run") == 0)
        return vmmd_run_main(argc - 2, argv + 2);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("vmmd %s\n", VMMD_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "vmmd: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
