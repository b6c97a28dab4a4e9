/*
 * GET /v1/vms/{id}/console?tail=N: the last N bytes of the serial console,
 * from the worker's ring buffer while it runs, from its log file after.
 * With "Upgrade: websocket" it becomes the interactive console instead: a
 * WebSocket (RFC 6455) bridged to the worker's control socket in attach
 * mode, keystrokes to the UART and output back as binary frames.
 */
#include "routes.h"
#include "log.h"
#include "strbuf.h"
#include "supervisor.h"
#include "common/websocket.h"
#include "vmmd/worker_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define WS_IN_BUF (64 * 1024)
/*
 * Nothing on the loop may wait for a socket: what a side of the bridge
 * cannot take at once waits in its queue and goes out when the loop says
 * the socket is writable. A peer that lets its queue pass this bound (a
 * client that does not read, or sends PINGs without reading the PONGs) has
 * its session ended; that is all it can cost the daemon.
 */
#define WS_QUEUE_MAX (1024 * 1024)
/* A session that ends cleanly gets this long to flush its last frames. */
#define WS_LINGER_MS 2000

/* One side of the bridge: its socket and what waits to be written to it. */
struct ws_peer {
    int fd;
    uv_poll_t poll;
    struct strbuf out; /* out.buf[off..out.len) is still to go */
    size_t off;
};

struct ws_session {
    struct ws_session *next; /* in sessions, once upgraded */
    bool upgraded;
    struct vmmd_daemon *d;
    struct MHD_UpgradeResponseHandle *urh;
    struct ws_peer client, worker;
    uv_timer_t linger;
    unsigned open_handles;
    unsigned refs; /* the HTTP request and, once upgraded, the session */
    bool closing;  /* reading nothing more, flushing to the client, then ending */
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

static void drop_ref(struct ws_session *s)
{
    if (--s->refs)
        return;
    free(s->client.out.buf);
    free(s->worker.out.buf);
    free(s);
}

static void on_session_handle_closed(uv_handle_t *h)
{
    struct ws_session *s = h->data;

    if (--s->open_handles == 0)
        drop_ref(s);
}

/* Ends the session now; whatever is still queued is dropped. */
static void end_session(struct ws_session *s)
{
    if (s->ending)
        return;
    s->ending = true;
    unlink_session(s);
    uv_close((uv_handle_t *)&s->client.poll, on_session_handle_closed);
    uv_close((uv_handle_t *)&s->worker.poll, on_session_handle_closed);
    uv_close((uv_handle_t *)&s->linger, on_session_handle_closed);
    close(s->worker.fd);
    MHD_upgrade_action(s->urh, MHD_UPGRADE_ACTION_CLOSE);
}

static size_t queued(const struct ws_peer *p)
{
    return p->out.len - p->off;
}

static void on_io(uv_poll_t *h, int status, int events);

/* Watches a peer for what the session needs from it now. */
static void watch(struct ws_session *s, struct ws_peer *p)
{
    int events = UV_DISCONNECT;

    if (!s->closing)
        events |= UV_READABLE;
    if (queued(p))
        events |= UV_WRITABLE;
    uv_poll_start(&p->poll, events, on_io);
}

/* Writes what the socket takes without waiting; -1 if the peer is gone. */
static int flush(struct ws_peer *p)
{
    while (queued(p)) {
        ssize_t n = send(p->fd, p->out.buf + p->off, queued(p), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            p->off += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        else
            return -1;
    }
    if (p->off == p->out.len)
        p->off = p->out.len = 0;
    else if (p->off > p->out.len / 2) { /* keep the buffer from creeping forward */
        memmove(p->out.buf, p->out.buf + p->off, queued(p));
        p->out.len -= p->off;
        p->off = 0;
    }
    return 0;
}

/* Queues bytes for a peer and writes what its socket takes now; -1 ends the session. */
static int peer_send(struct ws_session *s, struct ws_peer *p, const void *a, size_t alen,
                     const void *b, size_t blen)
{
    bool idle = queued(p) == 0;

    if (queued(p) + alen + blen > WS_QUEUE_MAX) {
        log_info("console WebSocket: %s fell %zu bytes behind, ending the session",
                 p == &s->client ? "the client" : "the worker", queued(p));
        return -1;
    }
    if (strbuf_append(&p->out, a, alen) || strbuf_append(&p->out, b, blen))
        return -1;
    /* A peer with a queue already waits for writable: its order is kept by not jumping it. */
    if (idle && flush(p))
        return -1;
    watch(s, p);
    return 0;
}

static int send_frame(struct ws_session *s, uint8_t opcode, const uint8_t *payload, size_t len)
{
    uint8_t hdr[10];
    size_t h = ws_frame_header(opcode, len, hdr);

    return peer_send(s, &s->client, hdr, h, payload, len);
}

static void on_linger(uv_timer_t *t)
{
    end_session(t->data);
}

/* Ends the session once the client has had what is queued for it (or after WS_LINGER_MS). */
static void finish_session(struct ws_session *s)
{
    if (s->ending || s->closing)
        return;
    if (!queued(&s->client)) {
        end_session(s);
        return;
    }
    s->closing = true;
    watch(s, &s->client);
    uv_poll_stop(&s->worker.poll);
    uv_timer_start(&s->linger, on_linger, WS_LINGER_MS, 0);
}

/* Handles every whole frame in the input buffer; returns false to stop reading. */
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
            if (peer_send(s, &s->worker, payload, f.payload_len, NULL, 0))
                return false;
            break;
        case WS_OP_PING:
            if (send_frame(s, WS_OP_PONG, payload, f.payload_len))
                return false;
            break;
        case WS_OP_CLOSE:
            if (send_frame(s, WS_OP_CLOSE, payload, f.payload_len < 2 ? 0 : 2) == 0)
                finish_session(s);
            return false;
        default:
            break;
        }
        size_t used = f.header_len + f.payload_len;
        memmove(s->in, s->in + used, s->in_len - used);
        s->in_len -= used;
    }
}

static void read_client(struct ws_session *s)
{
    ssize_t n = recv(s->client.fd, s->in + s->in_len, sizeof(s->in) - s->in_len, MSG_DONTWAIT);

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        end_session(s);
    else if (n > 0) {
        s->in_len += (size_t)n;
        if (!consume_frames(s) && !s->closing)
            end_session(s);
    }
}

static void read_worker(struct ws_session *s)
{
    uint8_t buf[4096];
    ssize_t n = recv(s->worker.fd, buf, sizeof(buf), MSG_DONTWAIT);

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        /* The VM stopped: say so with a normal closure after the last of its output. */
        if (send_frame(s, WS_OP_CLOSE, (const uint8_t *)"\x03\xe8", 2) == 0)
            finish_session(s);
        else
            end_session(s);
    } else if (n > 0 && send_frame(s, WS_OP_BINARY, buf, (size_t)n)) {
        end_session(s);
    }
}

static void on_io(uv_poll_t *h, int status, int events)
{
    struct ws_session *s = h->data;
    struct ws_peer *p = h == &s->client.poll ? &s->client : &s->worker;

    if (status < 0 || (events & UV_WRITABLE && flush(p))) {
        end_session(s);
        return;
    }
    if (events & UV_READABLE && !s->closing) {
        if (p == &s->client)
            read_client(s);
        else
            read_worker(s);
    }
    if (s->ending)
        return;
    if (s->closing && !queued(&s->client))
        end_session(s);
    else if (!s->closing || p == &s->client)
        watch(s, p);
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
    s->client.fd = sock;
    if (extra_in_size && extra_in_size <= sizeof(s->in)) {
        memcpy(s->in, extra_in, extra_in_size);
        s->in_len = extra_in_size;
    }
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
    uv_poll_init(s->d->loop, &s->client.poll, sock);
    uv_poll_init(s->d->loop, &s->worker.poll, s->worker.fd);
    uv_timer_init(s->d->loop, &s->linger);
    s->client.poll.data = s->worker.poll.data = s->linger.data = s;
    s->open_handles = 3;
    watch(s, &s->client);
    watch(s, &s->worker);
    if (s->in_len && !consume_frames(s) && !s->closing)
        end_session(s);
}

/* The request ended: if it never became a WebSocket, its session dies with it. */
static void ws_request_done(void *stream)
{
    struct ws_session *s = stream;

    if (!s->upgraded)
        close(s->worker.fd);
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

/* Answers the upgrade once the worker has taken the attach: fd is its control socket. */
static void upgrade(struct vmmd_daemon *d, struct http_request *req, const char *name,
                    const char *accept, int fd)
{
    struct ws_session *s = calloc(1, sizeof(*s));
    struct MHD_Response *resp;

    if (!s) {
        close(fd);
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        return;
    }
    s->d = d;
    s->worker.fd = fd;
    s->refs = 1;
    req->stream = s;
    req->stream_done = ws_request_done;
    resp = MHD_create_response_for_upgrade(on_upgrade, s);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    http_respond_mhd(req, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    log_info("vm %s: console attached over WebSocket", name);
}

/*
 * Attaching to a worker's console without waiting on the loop: connect and
 * send the attach command (a fresh Unix socket takes a short line at once, or
 * the worker is not accepting and the attach fails), then its one-line reply
 * comes through a uv_poll, all of it under one deadline. A worker that never
 * answers, or trickles bytes, costs the daemon nothing but this request.
 */
#define ATTACH_TIMEOUT_MS 1000
#define ATTACH_REPLY_MAX  256

struct attach {
    struct vmmd_daemon *d;
    struct http_request *req;
    char name[DB_NAME_MAX + 1];
    char accept[29];
    int fd;
    uv_poll_t poll;
    uv_timer_t timer;
    unsigned open_handles;
};

static void on_attach_handle_closed(uv_handle_t *h)
{
    struct attach *a = h->data;

    if (--a->open_handles == 0)
        free(a);
}

/* rc 0: the worker took it (the socket goes to the session); else why not. */
static void attach_done(struct attach *a, int rc)
{
    /* Closed first: the session watches the same socket with a poll of its own. */
    uv_close((uv_handle_t *)&a->poll, on_attach_handle_closed);
    uv_close((uv_handle_t *)&a->timer, on_attach_handle_closed);
    if (rc == 0) {
        upgrade(a->d, a->req, a->name, a->accept, a->fd);
        return;
    }
    close(a->fd);
    http_respond_error(a->req, API_ERR_CONFLICT, "cannot attach to the console of '%s': %s",
                       a->name, rc == -ETIMEDOUT ? "its worker did not answer in time"
                                                 : strerror(-rc));
}

static void on_attach_timeout(uv_timer_t *t)
{
    attach_done(t->data, -ETIMEDOUT);
}

static void on_attach_readable(uv_poll_t *p, int status, int events)
{
    struct attach *a = p->data;
    char reply[ATTACH_REPLY_MAX];
    char *nl;
    ssize_t n;

    (void)events;
    if (status < 0) {
        attach_done(a, -EIO);
        return;
    }
    /* Peek, so that nothing of the console stream after the line is taken here. */
    n = recv(a->fd, reply, sizeof(reply) - 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        attach_done(a, n == 0 ? -ECONNRESET : -errno);
        return;
    }
    reply[n] = 0;
    nl = memchr(reply, '\n', (size_t)n);
    if (!nl) {
        if (n == sizeof(reply) - 1)
            attach_done(a, -EPROTO); /* no line this long is a reply */
        return;
    }
    if (recv(a->fd, reply, (size_t)(nl - reply) + 1, MSG_DONTWAIT) != nl - reply + 1) {
        attach_done(a, -EIO);
        return;
    }
    *nl = 0;
    attach_done(a, strstr(reply, "\"ok\":true") ? 0 : -EBUSY);
}

static int connect_worker(struct vmmd_daemon *d, const char *vm_id, size_t tail)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char *dir = supervisor_vm_dir(d->sup, vm_id), cmd[64];
    int fd, len;

    if (!dir)
        return -ENOMEM;
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s", dir, WORKER_CONTROL_SOCKET);
    free(dir);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    len = snprintf(cmd, sizeof(cmd), "{\"cmd\":\"attach\",\"tail\":%zu}\n", tail);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        send(fd, cmd, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) != len) {
        int e = errno == EAGAIN ? EBUSY : errno; /* a full backlog: not accepting */
        close(fd);
        return -e;
    }
    return fd;
}

/* Upgrades to the interactive console, once the worker has answered. */
static void console_websocket(struct vmmd_daemon *d, struct http_request *req,
                              const struct db_vm *vm, size_t tail)
{
    const char *key = http_header(req, "Sec-WebSocket-Key");
    const char *version = http_header(req, "Sec-WebSocket-Version");
    struct attach *a;
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
    fd = connect_worker(d, vm->id, tail);
    a = fd >= 0 ? calloc(1, sizeof(*a)) : NULL;
    if (!a) {
        if (fd >= 0)
            close(fd);
        http_respond_error(req, API_ERR_CONFLICT, "cannot attach to the console of '%s': %s",
                           vm->name, strerror(fd < 0 ? -fd : ENOMEM));
        return;
    }
    a->d = d;
    a->req = req;
    a->fd = fd;
    snprintf(a->name, sizeof(a->name), "%s", vm->name);
    ws_accept_key(key, a->accept);
    uv_poll_init(d->loop, &a->poll, fd);
    uv_timer_init(d->loop, &a->timer);
    a->poll.data = a->timer.data = a;
    a->open_handles = 2;
    uv_poll_start(&a->poll, UV_READABLE, on_attach_readable);
    uv_timer_start(&a->timer, on_attach_timeout, ATTACH_TIMEOUT_MS, 0);
    http_suspend(req);
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
    fd = supervisor_open_run_file(path, O_RDONLY, 0);
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
