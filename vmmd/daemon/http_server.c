/*
 * libmicrohttpd on the libuv loop (see http_server.h). MHD's access handler
 * is called several times per request: first with the headers, then with
 * each piece of the body, then once more with no data. On the first call
 * the request is admitted or refused (token, route, declared length) before
 * a byte of its body is read; then we collect the body (up to API_BODY_MAX),
 * dispatch on the last call, and queue the response on that call or, for a
 * suspended request, on the call after the resume.
 *
 * What MHD 0.9.75 (Debian 12) answers itself, before any call reaches us:
 * headers over MHD_OPTION_CONNECTION_MEMORY_LIMIT get its 431 (a small HTML
 * body, then the connection closes), and a Content-Length that is not a
 * number or does not fit 64 bits gets its 400 or 413 with the status block
 * written twice (its parse_connection_headers() error path is re-entered;
 * fixed upstream in 1.0.0). The application is never called for those, so
 * neither can be problem+json here.
 *
 * On TCP every client is a stranger until its headers are in: MHD keeps at
 * most max_per_ip connections per address (the rest are closed as they are
 * accepted), and each connection has header_timeout from its accept (or
 * from the answer to its previous request) to deliver a request's complete
 * headers. MHD's own timeout only counts silence, so a client that trickles
 * a byte every few seconds would hold its slot forever; the deadline here
 * is absolute, kept per connection from MHD_OPTION_NOTIFY_CONNECTION and
 * enforced by a sweep every DEADLINE_SWEEP_MS that shuts the socket down
 * (MHD then sees the end of the stream and closes the connection itself).
 */
#include "http_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "log.h"
#include "tls.h"

#define DEADLINE_SWEEP_MS 250

http_observe_fn http_observer;

/* One TCP connection (MHD's socket context), in the server's list while it is open. */
struct http_conn {
    struct http_conn *prev, *next;
    int fd;
    uint64_t deadline_ns; /* complete headers due by then; 0 while a request is served */
    bool upgraded;        /* a WebSocket now: no more requests, no deadline */
    int client_cert;      /* -1 not checked yet, 0 refused, 1 verified */
};

struct http_server {
    struct vmmd_daemon *d;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    uv_idle_t idle;  /* runs MHD again next loop pass while a body streams in */
    bool body_moved; /* the last MHD_run handed a route some of a body */
    uv_timer_t sweep;
    char *token;
    char *cluster_token; /* the cluster's secret: other members' requests */
    http_dispatch_fn admit, dispatch;
    unsigned active;
    bool want_suspend_pending;
    enum http_listener listener;
    bool client_certs;          /* TLS with --tls-client-ca */
    uint64_t header_timeout_ns; /* 0: no deadline (the Unix socket) */
    struct http_conn conns;     /* list head of open TCP connections */
    unsigned deadline_closes;   /* connections shut down at their header deadline */
    unsigned zero_timeouts;     /* MHD asked to run again at once this many times in a row */
    unsigned busy;              /* requests under way (http_request.busy) */
};

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool http_token_matches(const struct http_request *req, const char *candidate)
{
    return !req->srv->token ||
           (candidate && (access_token_equal(candidate, req->srv->token) ||
                          (req->srv->cluster_token &&
                           access_token_equal(candidate, req->srv->cluster_token))));
}

enum http_listener http_listener_of(const struct http_request *req)
{
    return req->srv->listener;
}

static bool bearer_ok(struct http_request *req)
{
    const char *auth =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

    if (!req->srv->token)
        return true;
    return auth && strncmp(auth, "Bearer ", 7) == 0 && http_token_matches(req, auth + 7);
}

static void run_mhd(struct http_server *srv);

static void on_poll(uv_poll_t *handle, int status, int events)
{
    struct http_server *srv = handle->data;

    (void)status;
    (void)events;
    srv->zero_timeouts = 0;
    run_mhd(srv);
}

static void on_timer(uv_timer_t *timer)
{
    run_mhd(timer->data);
}

/*
 * MHD 0.9.75 in epoll mode keeps a TLS connection whose handshake stalled
 * mid-record (a client that sent part of a ClientHello) on its "ready"
 * list: GnuTLS reads the socket itself, so MHD never sees the EAGAIN that
 * would take it off, and MHD_get_timeout says 0 for as long as that client
 * likes. A timer restarted at 0 from its own callback runs again within the
 * same uv_run pass, so that would starve the loop outright. Every real event
 * arrives through the epoll fd (on_poll) anyway; the timer only has to
 * retry, so after two immediate retries it backs off to at most 16 ms until
 * the next event, and the header deadline ends the stalled client.
 */
static uint64_t retry_delay_ms(struct http_server *srv, MHD_UNSIGNED_LONG_LONG timeout)
{
    if (timeout > 0) {
        srv->zero_timeouts = 0;
        return timeout;
    }
    if (++srv->zero_timeouts <= 2)
        return 0;
    return 1u << (srv->zero_timeouts - 2 < 4 ? srv->zero_timeouts - 2 : 4);
}

static void on_idle(uv_idle_t *idle)
{
    uv_idle_stop(idle);
    run_mhd(idle->data);
}

/*
 * A large body (an image upload) arrives 32 KiB (the connection's memory)
 * per MHD_run, the rest still in the socket, where MHD's edge-triggered epoll
 * will not report it again: while a run moved body bytes, MHD runs again on
 * the next loop pass (an idle handle, which lets the loop's other events in
 * between) instead of after the stalled-client backoff. The same while any
 * request is under way: over TLS MHD reads a request and writes its answer
 * a record per run, and with the backoff a 100 KB answer took 50 ms on
 * loopback instead of 5. A stalled handshake has no request yet; suspended
 * requests, event streams and WebSockets are not counted: none of them keeps
 * the loop spinning (only a stalled handshake beside an answer being sent
 * does, until one of them ends).
 */
static void run_mhd(struct http_server *srv)
{
    MHD_UNSIGNED_LONG_LONG timeout;

    srv->body_moved = false;
    MHD_run(srv->mhd);
    if ((srv->body_moved || srv->busy) && MHD_get_timeout(srv->mhd, &timeout) == MHD_YES &&
        timeout == 0) {
        srv->zero_timeouts = 0;
        uv_timer_stop(&srv->timer);
        uv_idle_start(&srv->idle, on_idle);
        return;
    }
    if (MHD_get_timeout(srv->mhd, &timeout) == MHD_YES)
        uv_timer_start(&srv->timer, on_timer, retry_delay_ms(srv, timeout), 0);
    else
        uv_timer_stop(&srv->timer);
}

/* Resumed connections are processed by the next MHD_run: make it happen now. */
static void kick(struct http_server *srv)
{
    srv->zero_timeouts = 0;
    uv_timer_start(&srv->timer, on_timer, 0, 0);
}

/* A request is counted busy (srv->busy) while it is not suspended: a suspended one waits. */
static void set_suspended(struct http_request *req, bool suspended)
{
    if (req->suspended == suspended)
        return;
    req->suspended = suspended;
    if (req->busy && suspended)
        req->srv->busy--;
    else if (req->busy)
        req->srv->busy++;
}

/* It never counts again (an event stream, a WebSocket). */
static void never_busy(struct http_request *req)
{
    if (req->busy && !req->suspended)
        req->srv->busy--;
    req->busy = false;
}

static void set_response(struct http_request *req, unsigned status, struct MHD_Response *resp)
{
    if (req->response) /* a handler answered twice: keep the first */
        MHD_destroy_response(resp);
    else {
        req->response = resp;
        req->status = status;
    }
    if (req->suspended) {
        set_suspended(req, false);
        MHD_resume_connection(req->conn);
        kick(req->srv);
    }
}

void http_respond_stream(struct http_request *req, unsigned status, struct MHD_Response *resp)
{
    never_busy(req);
    http_respond_mhd(req, status, resp);
}

void http_respond_mhd(struct http_request *req, unsigned status, struct MHD_Response *resp)
{
    set_response(req, status, resp);
}

void http_respond_bytes(struct http_request *req, unsigned status, const char *content_type,
                        const void *data, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);

    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    set_response(req, status, resp);
}

void http_respond_empty(struct http_request *req, unsigned status)
{
    http_respond_bytes(req, status, NULL, "", 0);
}

void http_respond_json(struct http_request *req, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);

    json_decref(body);
    if (!text) {
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        return;
    }
    http_respond_bytes(req, status, "application/json", text, strlen(text));
    free(text);
}

void http_respond_problem(struct http_request *req, const struct api_error *err)
{
    char *text = api_problem_json(err);

    http_respond_bytes(req, (unsigned)api_error_status(err->kind), "application/problem+json",
                       text ? text : "{}", text ? strlen(text) : 2);
    free(text);
}

void http_respond_error(struct http_request *req, enum api_error_kind kind, const char *fmt, ...)
{
    struct api_error err = {.kind = kind};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err.detail, sizeof(err.detail), fmt, ap);
    va_end(ap);
    http_respond_problem(req, &err);
}

void http_add_header(struct http_request *req, const char *name, const char *value)
{
    if (req->response)
        MHD_add_response_header(req->response, name, value);
}

void http_suspend(struct http_request *req)
{
    req->srv->want_suspend_pending = true;
}

void http_resume_stream(struct http_request *req)
{
    if (req->suspended) {
        set_suspended(req, false);
        MHD_resume_connection(req->conn);
        kick(req->srv);
    }
}

const char *http_query(struct http_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/*
 * MHD hands the access handler a percent-decoded path, where an encoded NUL
 * would end the string early ("/assets/app.js%00.html" would arrive as
 * "/assets/app.js"). This callback sees the URI as it came, before any of
 * that: the request starts here, and remembers whether it holds a %00.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct http_server *srv = cls;
    struct http_request *req = calloc(1, sizeof(*req));

    if (!req)
        return NULL;
    req->srv = srv;
    req->busy = true;
    srv->busy++;
    req->conn = conn;
    req->start_ns = mono_ns();
    req->encoded_nul = strstr(uri, "%00") != NULL;
    if (srv->header_timeout_ns) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        req->hconn = ci ? ci->socket_context : NULL;
    }
    srv->active++;
    return req;
}

static uint64_t next_deadline(const struct http_server *srv)
{
    return mono_ns() + srv->header_timeout_ns;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *srv = cls;
    struct http_conn *c = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c = calloc(1, sizeof(*c));
        if (!c)
            return; /* untracked: MHD's inactivity timeout still ends it */
        c->fd = ci ? ci->connect_fd : -1;
        c->deadline_ns = next_deadline(srv);
        c->client_cert = -1;
        c->next = srv->conns.next;
        c->prev = &srv->conns;
        srv->conns.next->prev = c;
        srv->conns.next = c;
        *socket_context = c;
    } else if (c) {
        c->prev->next = c->next;
        c->next->prev = c->prev;
        free(c);
        *socket_context = NULL;
    }
}

/* Shuts down the connections whose headers are overdue. */
static void on_sweep(uv_timer_t *timer)
{
    struct http_server *srv = timer->data;
    uint64_t now = mono_ns();

    for (struct http_conn *c = srv->conns.next; c != &srv->conns; c = c->next) {
        if (c->upgraded || !c->deadline_ns || c->deadline_ns > now || c->fd < 0)
            continue;
        c->deadline_ns = 0; /* once: the close is MHD's to make */
        srv->deadline_closes++;
        shutdown(c->fd, SHUT_RDWR);
        log_debug("closed a TCP connection that sent no complete request headers within %llu s",
                  (unsigned long long)(srv->header_timeout_ns / 1000000000ull));
    }
}

/* A body comes with the request (its size may be unknown: chunked). */
static bool has_body(struct http_request *req)
{
    const char *len = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);

    return http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING) || (len && strcmp(len, "0") != 0);
}

/* MHD has checked that a Content-Length is a number that fits 64 bits. */
static bool declared_too_large(struct http_request *req)
{
    const char *len = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);

    return len && strtoull(len, NULL, 10) > API_BODY_MAX;
}

/* Verified once per connection: the certificate cannot change within it. */
static bool client_cert_ok(struct http_request *req)
{
    const union MHD_ConnectionInfo *ci;
    bool ok;

    if (req->hconn && req->hconn->client_cert >= 0)
        return req->hconn->client_cert;
    ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    ok = ci && vmmd_tls_client_cert_ok(ci->tls_session);
    if (req->hconn)
        req->hconn->client_cert = ok;
    return ok;
}

/*
 * The first call, with the headers: what can be refused without the body is
 * refused now, so that no client without the token makes the daemon read,
 * let alone keep, a body. A refused request with a body is answered at once,
 * which makes MHD skip the body and close the connection after the answer;
 * one without a body is answered on the last call, keeping the connection.
 */
static void admit_request(struct http_server *srv, struct http_request *req)
{
    if (req->hconn)
        req->hconn->deadline_ns = 0; /* the headers are in: the request has what it needs */
    req->bearer_ok = bearer_ok(req);
    if (srv->client_certs && !client_cert_ok(req))
        http_respond_error(req, API_ERR_FORBIDDEN,
                           "this endpoint needs a TLS client certificate signed by the "
                           "daemon's client CA (--tls-client-ca)");
    else if (req->encoded_nul)
        http_respond_error(req, API_ERR_BAD_REQUEST, "the URL holds an encoded NUL (%%00)");
    else
        srv->admit(srv->d, req);
    if (!req->response && !req->body_sink && declared_too_large(req))
        http_respond_error(req, API_ERR_PAYLOAD_TOO_LARGE,
                           "request body over %d bytes (Content-Length: %s)", API_BODY_MAX,
                           http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH));
    req->routed = req->response != NULL;
}

static enum MHD_Result queue_response(struct http_request *req)
{
    enum MHD_Result ret = MHD_queue_response(req->conn, req->status, req->response);

    if (req->status == MHD_HTTP_SWITCHING_PROTOCOLS)
        never_busy(req); /* a WebSocket: MHD hands the socket over */

    MHD_destroy_response(req->response);
    req->response = NULL;
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct http_server *srv = cls;
    struct http_request *req = *con_cls;

    (void)version;
    if (!req) {
        req = on_uri(srv, "", conn);
        if (!req)
            return MHD_NO;
        *con_cls = req;
    }
    if (!req->url) {
        req->url = url;
        req->method = method;
        admit_request(srv, req);
        return req->response && has_body(req) ? queue_response(req) : MHD_YES;
    }
    if (*upload_size)
        srv->body_moved = true;
    if (*upload_size && req->body_sink) {
        if (!req->response)
            req->body_sink(req, upload_data, *upload_size);
        *upload_size = 0;
        if (!req->response)
            return MHD_YES;
        req->routed = true; /* answered mid-body: the route is done with it */
        return queue_response(req);
    }
    if (*upload_size) {
        if (!req->too_large && req->body_len + *upload_size <= API_BODY_MAX) {
            char *grown = realloc(req->body, req->body_len + *upload_size + 1);
            if (!grown)
                return MHD_NO;
            req->body = grown;
            memcpy(req->body + req->body_len, upload_data, *upload_size);
            req->body_len += *upload_size;
            req->body[req->body_len] = 0;
        } else {
            /* Chunked, so not refused with the headers: discard the rest, answer 413 at the end. */
            req->too_large = true;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (!req->routed) {
        req->routed = true;
        srv->want_suspend_pending = false;
        if (req->too_large)
            http_respond_error(req, API_ERR_PAYLOAD_TOO_LARGE, "request body over %d bytes",
                               API_BODY_MAX);
        else
            srv->dispatch(srv->d, req);
        if (!req->response && srv->want_suspend_pending) {
            set_suspended(req, true);
            MHD_suspend_connection(conn);
            return MHD_YES;
        }
        if (!req->response)
            http_respond_error(req, API_ERR_INTERNAL, "the handler gave no answer");
    }
    if (!req->response)
        return MHD_YES; /* resumed without an answer yet */
    return queue_response(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;
    struct http_request *req = *con_cls;

    (void)conn;
    (void)toe;
    if (!req)
        return;
    never_busy(req);
    if (req->stream_done)
        req->stream_done(req->stream);
    /* No method: the connection ended inside the headers, before a request was made. */
    if (http_observer && req->method)
        http_observer(srv->d, req->method, req->route ? req->route : "unmatched", req->status,
                      mono_ns() - req->start_ns);
    if (req->hconn) {
        /* The next request on a kept-alive connection has its own deadline; a WebSocket none. */
        if (req->status == MHD_HTTP_SWITCHING_PROTOCOLS)
            req->hconn->upgraded = true;
        else if (!req->hconn->upgraded)
            req->hconn->deadline_ns = next_deadline(srv);
    }
    if (req->response)
        MHD_destroy_response(req->response);
    free(req->body);
    free(req);
    *con_cls = NULL;
    srv->active--;
}

int http_server_start(struct vmmd_daemon *d, uv_loop_t *loop, int listen_fd,
                      const struct http_server_opts *opts, http_dispatch_fn admit,
                      http_dispatch_fn dispatch, struct http_server **out)
{
    struct http_server *srv = calloc(1, sizeof(*srv));
    const union MHD_DaemonInfo *info;
    const struct vmmd_tls *tls = opts->tls;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_TURBO;
    struct MHD_OptionItem tcp_opts[] = {
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)opts->max_per_ip, NULL},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, NULL},
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, tls ? tls->cert_pem : NULL},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, tls ? tls->key_pem : NULL},
        {tls && tls->client_ca_pem ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0,
         tls ? tls->client_ca_pem : NULL},
        {MHD_OPTION_END, 0, NULL},
    };

    if (!srv)
        return -ENOMEM;
    srv->d = d;
    srv->admit = admit;
    srv->dispatch = dispatch;
    srv->listener = opts->listener;
    srv->conns.next = srv->conns.prev = &srv->conns;
    srv->token = opts->token ? strdup(opts->token) : NULL;
    srv->cluster_token = opts->cluster_token ? strdup(opts->cluster_token) : NULL;
    /* MHD hands NOTIFY_CONNECTION's cls as the option item's pointer. */
    tcp_opts[1].ptr_value = srv;
    if (opts->listener != HTTP_LISTENER_UNIX)
        srv->header_timeout_ns = (uint64_t)opts->header_timeout_s * 1000000000ull;
    if (tls) {
        flags |= MHD_USE_TLS;
        srv->client_certs = tls->client_ca_pem != NULL;
    }
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_LISTEN_SOCKET, listen_fd,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
        /* Its default, said here: headers beyond it get MHD's 431. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
        srv, MHD_OPTION_ARRAY, opts->listener == HTTP_LISTENER_UNIX ? &tcp_opts[5] : tcp_opts,
        MHD_OPTION_END);
    if (!srv->mhd)
        goto err_srv;
    info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info)
        goto err_mhd;
    uv_poll_init(loop, &srv->poll, info->epoll_fd);
    srv->poll.data = srv;
    uv_timer_init(loop, &srv->timer);
    srv->timer.data = srv;
    uv_idle_init(loop, &srv->idle);
    srv->idle.data = srv;
    uv_timer_init(loop, &srv->sweep);
    srv->sweep.data = srv;
    if (srv->header_timeout_ns)
        uv_timer_start(&srv->sweep, on_sweep, DEADLINE_SWEEP_MS, DEADLINE_SWEEP_MS);
    uv_poll_start(&srv->poll, UV_READABLE, on_poll);
    run_mhd(srv);
    *out = srv;
    return 0;

err_mhd:
    MHD_stop_daemon(srv->mhd);
err_srv:
    free(srv->token);
    free(srv->cluster_token);
    free(srv);
    return -EIO;
}

void http_server_quiesce(struct http_server *srv)
{
    MHD_socket fd = MHD_quiesce_daemon(srv->mhd);

    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

unsigned http_server_active(const struct http_server *srv)
{
    return srv->active;
}

unsigned http_server_deadline_closes(const struct http_server *srv)
{
    return srv->deadline_closes;
}

static void free_after_close(uv_handle_t *h)
{
    struct http_server *srv = h->data;

    if (h == (uv_handle_t *)&srv->timer) {
        free(srv->token);
    free(srv->cluster_token);
        free(srv);
    }
}

void http_server_destroy(struct http_server *srv)
{
    uv_poll_stop(&srv->poll);
    uv_timer_stop(&srv->timer);
    uv_timer_stop(&srv->sweep);
    uv_idle_stop(&srv->idle);
    MHD_stop_daemon(srv->mhd);
    uv_close((uv_handle_t *)&srv->poll, NULL);
    uv_close((uv_handle_t *)&srv->idle, NULL);
    uv_close((uv_handle_t *)&srv->sweep, NULL);
    uv_close((uv_handle_t *)&srv->timer, free_after_close);
}
