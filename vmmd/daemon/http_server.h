/*
 * libmicrohttpd driven from the daemon's libuv loop: MHD runs in epoll mode
 * without threads of its own, its epoll fd is watched with uv_poll, so every
 * request handler runs on the loop thread that owns the daemon's state.
 * Handlers answer at once or suspend the request and answer later (a VM
 * start waits for its worker); either way through http_respond_*().
 */
#ifndef VMMD_HTTP_SERVER_H
#define VMMD_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>
#include <uv.h>

#include "api/api.h"

struct vmmd_daemon;
struct http_server;
struct http_conn;
struct vmmd_tls;

enum http_listener { HTTP_LISTENER_UNIX, HTTP_LISTENER_TCP, HTTP_LISTENER_TLS };

struct http_request {
    struct http_server *srv;
    struct MHD_Connection *conn;
    struct http_conn *hconn; /* the TCP connection's deadline state; NULL on the Unix socket */
    const char *method;
    const char *url;
    char *body;
    size_t body_len;
    bool too_large; /* a chunked body went over API_BODY_MAX: answered 413, not dispatched */
    bool bearer_ok;  /* no token needed, or a valid "Authorization: Bearer" came */
    bool encoded_nul; /* the raw URI holds %00: refused before routing */
    bool routed;
    bool suspended;
    struct MHD_Response *response; /* ready to queue */
    unsigned status;
    uint64_t start_ns;
    const char *route; /* route template, for metrics */
    const void *route_entry; /* the application's route, from admit to dispatch */
    bool closed;       /* the client went away: do not respond */
    void *stream;      /* SSE/WebSocket state owned by the route */
    /* Set by admit for a body the route takes piece by piece as it arrives (an
     * image upload) instead of one collected in memory: no API_BODY_MAX. A sink
     * that answers ends the request with the rest of the body unread (the client
     * may see a reset); one that must be heard keeps reading until dispatch. */
    void (*body_sink)(struct http_request *req, const char *data, size_t len);
    void (*stream_done)(void *stream); /* called when the request ends, if set */
    /* Under way (read, answered, being sent): MHD runs again at once while any is not
     * suspended. Never an event stream (http_respond_stream) nor a WebSocket, which last as
     * long as they like. */
    bool busy;
};

typedef void (*http_dispatch_fn)(struct vmmd_daemon *d, struct http_request *req);

struct http_server_opts {
    enum http_listener listener;
    const char *token;           /* TCP: the bearer token; NULL on the Unix socket */
    const char *cluster_token;   /* TCP: also accepted: the cluster's secret (other members) */
    const struct vmmd_tls *tls;  /* HTTP_LISTENER_TLS: certificate, key, client CA */
    unsigned max_per_ip;         /* TCP: connections one address may hold */
    unsigned header_timeout_s;   /* TCP: to deliver complete headers */
};

/* Serves the API on an already listening socket. With a non-NULL token (TCP)
 * each request says in bearer_ok whether it carried "Authorization: Bearer
 * <token>"; the application decides which routes need it. admit is called
 * with the headers, before any of the body is read, and answers to refuse
 * (401, 404, ...) or leaves the request be; a declared body over
 * API_BODY_MAX is then refused with 413. dispatch is called with the whole
 * body and answers, or suspends and answers later. With a client CA, a
 * request whose connection brought no certificate it signed is refused
 * with 403 before admit. */
int http_server_start(struct vmmd_daemon *d, uv_loop_t *loop, int listen_fd,
                      const struct http_server_opts *opts, http_dispatch_fn admit,
                      http_dispatch_fn dispatch, struct http_server **out);
/* Stops accepting; requests in flight finish. */
void http_server_quiesce(struct http_server *srv);
unsigned http_server_active(const struct http_server *srv);
/* Connections shut down because their headers were not complete in time. */
unsigned http_server_deadline_closes(const struct http_server *srv);
void http_server_destroy(struct http_server *srv);

/* Responses; each consumes what it is given. */
void http_respond_json(struct http_request *req, unsigned status, json_t *body);
void http_respond_problem(struct http_request *req, const struct api_error *err);
void http_respond_error(struct http_request *req, enum api_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void http_respond_bytes(struct http_request *req, unsigned status, const char *content_type,
                        const void *data, size_t len);
void http_respond_empty(struct http_request *req, unsigned status);
void http_respond_mhd(struct http_request *req, unsigned status, struct MHD_Response *resp);
/* An answer that never ends by itself (server-sent events): the server does not hurry it. */
void http_respond_stream(struct http_request *req, unsigned status, struct MHD_Response *resp);
void http_add_header(struct http_request *req, const char *name, const char *value);
/* The handler will answer later. */
void http_suspend(struct http_request *req);
/* For streaming responses whose reader suspended the connection. */
void http_resume_stream(struct http_request *req);

/* True when the server has no token or candidate is it (compared in constant time). */
bool http_token_matches(const struct http_request *req, const char *candidate);

/* Which listener the request came in on (for the Origin check). */
enum http_listener http_listener_of(const struct http_request *req);

const char *http_query(struct http_request *req, const char *key);
const char *http_header(struct http_request *req, const char *name);

/* Called once per finished request with its route, status and latency (metrics). */
typedef void (*http_observe_fn)(struct vmmd_daemon *d, const char *method, const char *route,
                                unsigned status, uint64_t ns);
extern http_observe_fn http_observer;

#endif
