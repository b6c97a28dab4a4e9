/*
 * The web dashboard's static files: GET / is its index.html, GET
 * /assets/{file} every other file, from the dashboard directory (the
 * installed share/vmmd/dashboard, the build tree's copy, or --dashboard-dir).
 * Files are opened relative to that directory with O_NOFOLLOW, after the
 * name has passed static_file_name_ok(): one segment, no "..", no dot files.
 * Names are not content-hashed, so every answer says "no-cache" and carries
 * an ETag: a browser revalidates and gets 304 for what it has.
 */
#include "routes.h"
#include "static_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * connect-src 'self' covers the event stream and, in current browsers, the
 * console's same-origin WebSocket; the terminal widget writes <style>
 * elements of its own, hence the inline styles.
 */
#define DASHBOARD_CSP                                                                              \
    "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; "          \
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

static void serve_file(struct vmmd_daemon *d, struct http_request *req, const char *name)
{
    const char *type = static_file_type(name);
    char etag[STATIC_FILE_ETAG_LEN];
    struct MHD_Response *resp;
    struct stat st;
    int fd;

    if (d->dashboard_dir_fd < 0) {
        http_respond_error(req, API_ERR_NOT_FOUND,
                           "the dashboard is not installed here (see --dashboard-dir)");
        return;
    }
    if (!static_file_name_ok(name) || !type) {
        http_respond_error(req, API_ERR_NOT_FOUND, "no such dashboard file");
        return;
    }
    fd = openat(d->dashboard_dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        http_respond_error(req, API_ERR_NOT_FOUND, "no such dashboard file: %s", name);
        return;
    }
    static_file_etag((uint64_t)st.st_size, (int64_t)st.st_mtim.tv_sec * 1000000000 +
                                               st.st_mtim.tv_nsec, etag);
    if (static_file_etag_matches(http_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        close(fd);
        http_respond_empty(req, MHD_HTTP_NOT_MODIFIED);
    } else {
        /* MHD owns fd from here and sends it with sendfile(). */
        resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
        if (!resp) {
            close(fd);
            http_respond_error(req, API_ERR_INTERNAL, "cannot send %s", name);
            return;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        http_respond_mhd(req, MHD_HTTP_OK, resp);
    }
    http_add_header(req, MHD_HTTP_HEADER_ETAG, etag);
    http_add_header(req, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    http_add_header(req, "X-Content-Type-Options", "nosniff");
    if (strcmp(type, "text/html; charset=utf-8") == 0) {
        http_add_header(req, "Content-Security-Policy", DASHBOARD_CSP);
        http_add_header(req, "Referrer-Policy", "no-referrer");
    }
}

void route_dashboard_index(struct vmmd_daemon *d, struct http_request *req,
                           const struct route_match *m)
{
    (void)m;
    serve_file(d, req, "index.html");
}

void route_dashboard_asset(struct vmmd_daemon *d, struct http_request *req,
                           const struct route_match *m)
{
    serve_file(d, req, m->file);
}
