/* vmmd-daemon's entry point: `vmmd [serve] ...` and `vmmd routes` land here (see main.c). */
#include "daemon.h"

#include <string.h>

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "routes") == 0) {
        vmmd_print_routes();
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return vmmd_serve_main(argc - 2, argv + 2);
    return vmmd_serve_main(argc - 1, argv + 1);
}
