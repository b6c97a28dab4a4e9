/*
 * GET /v1/vms/{id}/console?tail=N: the last N bytes of the serial console,
 * from the worker's ring buffer while it runs, from its log file after.
 */
#include "routes.h"
#include "supervisor.h"
#include "worker_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAIL_DEFAULT 65536
#define TAIL_MAX     (1024 * 1024)

struct console_req {
    struct http_request *req;
};

static void on_tail(struct vmmd_daemon *d, void *ctx, json_t *reply, const uint8_t *extra,
                    size_t extra_len, const char *error)
{
    struct http_request *req = ctx;

    (void)d;
    if (!reply)
        http_respond_error(req, API_ERR_CONFLICT, "console unavailable: %s", error);
    else
        http_respond_bytes(req, 200, "text/plain; charset=utf-8", extra, extra_len);
}

/* The tail of the console log a stopped VM's worker left behind. */
static void tail_from_log(struct vmmd_daemon *d, struct http_request *req, const char *id,
                          size_t want)
{
    char *dir = supervisor_vm_dir(d->sup, id);
    char path[4096];
    struct stat st;
    char *buf = NULL;
    ssize_t n = 0;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "", WORKER_CONSOLE_LOG);
    free(dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &st) == 0) {
        size_t size = (size_t)st.st_size, len = size < want ? size : want;
        buf = malloc(len + 1);
        if (buf)
            n = pread(fd, buf, len, (off_t)(size - len));
    }
    if (fd >= 0)
        close(fd);
    http_respond_bytes(req, 200, "text/plain; charset=utf-8", buf ? buf : "", n > 0 ? (size_t)n : 0);
    free(buf);
}

void route_vm_console(struct vmmd_daemon *d, struct http_request *req,
                      const struct route_match *m)
{
    const char *tail = http_query(req, "tail");
    struct db_vm vm = {0};
    long long want = TAIL_DEFAULT;
    char *end;

    if (tail) {
        errno = 0;
        want = strtoll(tail, &end, 10);
        if (errno || *end || end == tail || want < 0 || want > TAIL_MAX) {
            http_respond_error(req, API_ERR_BAD_REQUEST, "tail: must be 0 to %d bytes", TAIL_MAX);
            return;
        }
    }
    if (routes_load_vm(d, req, m->id, &vm))
        return;
    if (supervisor_command(d->sup, vm.id, json_pack("{s:s, s:I}", "cmd", "console", "tail",
                                                    (json_int_t)want),
                           on_tail, req) == 0)
        http_suspend(req);
    else
        tail_from_log(d, req, vm.id, (size_t)want);
    db_vm_clear(&vm);
}
