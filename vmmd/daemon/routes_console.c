/*
 * GET /v1/vms/{id}/console?tail=N: the last N bytes of the serial console,
 * from the worker's ring buffer while it runs, from its log file after.
 * With "Upgrade: websocket" it becomes the interactive console instead: a
 * WebSocket (RFC 6455) bridged to the worker's control socket in attach
 * mode, keystrokes to the UART and output back as binary frames.
 */
#include "routes.h"
#include "log.h"
#include "supervisor.h"
#include "common/websocket.h"
#include "vmmd/worker_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define WS_IN_BUF (64 * 1024)
#define WS_SEND_TIMEOUT_MS 1000

struct ws_session {
    struct ws_session *next; /* in sessions, once upgraded */
    bool upgraded;
    struct vmmd_daemon *d;
    struct MHD_UpgradeResponseHandle *urh;
    int client_fd, worker_fd;
    uv_poll_t client_poll, worker_poll;
    unsigned open_handles;
    unsigned refs; /* the HTTP request and, once upgraded, the session */
    bool ending;
    size_t in_len;
    uint8_t in[WS_IN_BUF];
};

static struct ws_session *sessions;

static void unlink_session(struct ws_session *s)
{
    struct ws_session **pp = &sessions;

    while (*pp && *pp != s)
        pp = &(*pp)->next;
    if (*pp)
        *pp = s->next;
}

/* Connects to the worker's control socket and switches it to attach mode;
 * the stream starts with the last `tail` bytes the guest printed. */
static int attach_worker(struct vmmd_daemon *d, const char *vm_id, size_t tail)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = 1};
    char *dir = supervisor_vm_dir(d->sup, vm_id), reply[256], cmd[64];
    ssize_t n;
    int fd, cmd_len;

    if (!dir)
        return -ENOMEM;
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s", dir, WORKER_CONTROL_SOCKET);
    free(dir);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cmd_len = snprintf(cmd, sizeof(cmd), "{\"cmd\":\"attach\",\"tail\":%zu}\n", tail);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        send(fd, cmd, (size_t)cmd_len, MSG_NOSIGNAL) != cmd_len) {
        close(fd);
        return -ECONNREFUSED;
    }
    /* The reply is one short line; the console stream starts right after it. */
    for (size_t len = 0; len < sizeof(reply) - 1; len++) {
        n = recv(fd, reply + len, 1, 0);
        if (n != 1) {
            close(fd);
            return -EIO;
        }
        if (reply[len] == '\n') {
            reply[len] = 0;
            if (!strstr(reply, "\"ok\":true")) {
                close(fd);
                return -EBUSY;
            }
            fcntl(fd, F_SETFL, O_NONBLOCK);
            return fd;
        }
    }
    close(fd);
    return -EIO;
}

static void drop_ref(struct ws_session *s)
{
    if (--s->refs == 0)
        free(s);
}

static void on_session_handle_closed(uv_handle_t *h)
{
    struct ws_session *s = h->data;

    if (--s->open_handles == 0)
        drop_ref(s);
}

static void end_session(struct ws_session *s)
{
    if (s->ending)
        return;
    s->ending = true;
    unlink_session(s);
    uv_close((uv_handle_t *)&s->client_poll, on_session_handle_closed);
    uv_close((uv_handle_t *)&s->worker_poll, on_session_handle_closed);
    close(s->worker_fd);
    MHD_upgrade_action(s->urh, MHD_UPGRADE_ACTION_CLOSE);
}

/* Sends all of buf, waiting a bounded time for a slow client. */
static int send_bounded(int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, WS_SEND_TIMEOUT_MS) <= 0)
            return -1; /* a client this slow loses its session, not the daemon its loop */
    }
    return 0;
}

static int send_frame(int fd, uint8_t opcode, const uint8_t *payload, size_t len)
{
    uint8_t hdr[10];
    size_t h = ws_frame_header(opcode, len, hdr);

    return send_bounded(fd, hdr, h) || send_bounded(fd, payload, len) ? -1 : 0;
}

/* Handles every whole frame in the input buffer; returns false to end the session. */
static bool consume_frames(struct ws_session *s)
{
    for (;;) {
        struct ws_frame f;
        int rc = ws_parse_frame(s->in, s->in_len, true, &f);
        if (rc == 0)
            return s->in_len < sizeof(s->in);
        if (rc < 0)
            return false;
        const uint8_t *payload = s->in + f.header_len;
        switch (f.opcode) {
        case WS_OP_TEXT:
        case WS_OP_BINARY:
        case WS_OP_CONT:
            if (send_bounded(s->worker_fd, payload, f.payload_len))
                return false;
            break;
        case WS_OP_PING:
            send_frame(s->client_fd, WS_OP_PONG, payload, f.payload_len);
            break;
        case WS_OP_CLOSE:
            send_frame(s->client_fd, WS_OP_CLOSE, payload, f.payload_len < 2 ? 0 : 2);
            return false;
        default:
            break;
        }
        size_t used = f.header_len + f.payload_len;
        memmove(s->in, s->in + used, s->in_len - used);
        s->in_len -= used;
    }
}

static void on_client(uv_poll_t *p, int status, int events)
{
    struct ws_session *s = p->data;
    ssize_t n;

    (void)events;
    if (status < 0) {
        end_session(s);
        return;
    }
    n = recv(s->client_fd, s->in + s->in_len, sizeof(s->in) - s->in_len, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        end_session(s);
        return;
    }
    if (n > 0) {
        s->in_len += (size_t)n;
        if (!consume_frames(s))
            end_session(s);
    }
}

static void on_worker(uv_poll_t *p, int status, int events)
{
    struct ws_session *s = p->data;
    uint8_t buf[4096];
    ssize_t n;

    (void)events;
    if (status < 0) {
        end_session(s);
        return;
    }
    n = recv(s->worker_fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        send_frame(s->client_fd, WS_OP_CLOSE, (const uint8_t *)"\x03\xe8", 2);
        end_session(s);
        return;
    }
    if (n > 0 && send_frame(s->client_fd, WS_OP_BINARY, buf, (size_t)n))
        end_session(s);
}

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *req_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh)
{
    struct ws_session *s = cls;

    (void)conn;
    (void)req_cls;
    s->upgraded = true;
    s->refs++;
    s->next = sessions;
    sessions = s;
    s->urh = urh;
    s->client_fd = sock;
    if (extra_in_size && extra_in_size <= sizeof(s->in)) {
        memcpy(s->in, extra_in, extra_in_size);
        s->in_len = extra_in_size;
    }
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
    uv_poll_init(s->d->loop, &s->client_poll, sock);
    uv_poll_init(s->d->loop, &s->worker_poll, s->worker_fd);
    s->client_poll.data = s->worker_poll.data = s;
    s->open_handles = 2;
    uv_poll_start(&s->client_poll, UV_READABLE | UV_DISCONNECT, on_client);
    uv_poll_start(&s->worker_poll, UV_READABLE | UV_DISCONNECT, on_worker);
    if (s->in_len && !consume_frames(s))
        end_session(s);
}

/* The request ended: if it never became a WebSocket, its session dies with it. */
static void ws_request_done(void *stream)
{
    struct ws_session *s = stream;

    if (!s->upgraded)
        close(s->worker_fd);
    drop_ref(s);
}

void routes_console_close_all(void)
{
    while (sessions)
        end_session(sessions);
}

static bool header_has(struct http_request *req, const char *name, const char *token)
{
    const char *v = http_header(req, name);

    return v && strcasestr(v, token);
}

/* Upgrades to the interactive console. */
static void console_websocket(struct vmmd_daemon *d, struct http_request *req,
                              const struct db_vm *vm, size_t tail)
{
    const char *key = http_header(req, "Sec-WebSocket-Key");
    const char *version = http_header(req, "Sec-WebSocket-Version");
    struct ws_session *s;
    struct MHD_Response *resp;
    char accept[29];
    int fd;

    if (!key || !version || strcmp(version, "13") != 0 || strlen(key) > 64) {
        http_respond_error(req, API_ERR_BAD_REQUEST,
                           "a WebSocket upgrade needs Sec-WebSocket-Key and version 13");
        return;
    }
    if (!supervisor_has_worker(d->sup, vm->id)) {
        http_respond_error(req, API_ERR_CONFLICT, "VM '%s' is %s: no console to attach to",
                           vm->name, vm->state);
        return;
    }
    fd = attach_worker(d, vm->id, tail);
    if (fd < 0) {
        http_respond_error(req, API_ERR_CONFLICT, "cannot attach to the console of '%s': %s",
                           vm->name, strerror(-fd));
        return;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        return;
    }
    s->d = d;
    s->worker_fd = fd;
    s->refs = 1;
    ws_accept_key(key, accept);
    req->stream = s;
    req->stream_done = ws_request_done;
    resp = MHD_create_response_for_upgrade(on_upgrade, s);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    http_respond_mhd(req, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    log_info("vm %s: console attached over WebSocket", vm->name);
}

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
    bool upgrade = header_has(req, "Upgrade", "websocket") && header_has(req, "Connection", "upgrade");
    struct db_vm vm = {0};
    /* A WebSocket starts live unless asked for history (at most the worker's ring). */
    long long want = upgrade ? 0 : TAIL_DEFAULT, max = upgrade ? WORKER_CONSOLE_TAIL_MAX : TAIL_MAX;
    char *end;

    if (tail) {
        errno = 0;
        want = strtoll(tail, &end, 10);
        if (errno || *end || end == tail || want < 0 || want > max) {
            http_respond_error(req, API_ERR_BAD_REQUEST, "tail: must be 0 to %lld bytes", max);
            return;
        }
    }
    if (routes_load_vm(d, req, m->id, &vm))
        return;
    if (upgrade) {
        console_websocket(d, req, &vm, (size_t)want);
        db_vm_clear(&vm);
        return;
    }
    if (supervisor_command(d->sup, vm.id, json_pack("{s:s, s:I}", "cmd", "console", "tail",
                                                    (json_int_t)want),
                           on_tail, req) == 0)
        http_suspend(req);
    else
        tail_from_log(d, req, vm.id, (size_t)want);
    db_vm_clear(&vm);
}
