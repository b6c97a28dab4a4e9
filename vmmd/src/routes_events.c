/*
 * GET /v1/events: server-sent events from the event table. A client names
 * the last id it saw (?since= or Last-Event-ID) and gets everything after
 * it from SQLite, then live events as they are committed. Streams pull from
 * the store when the client has room, so a slow reader holds no backlog in
 * the daemon: it just reads older rows, however far behind it is.
 */
#include "routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH         64
#define SSE_BUF_LIMIT (64 * 1024)

struct sse_client {
    struct event_stream *es;
    struct sse_client *next;
    struct http_request *req;
    int64_t last_id;
    char *buf;
    size_t len, off, cap;
    bool waiting; /* suspended until the next event */
    bool ended;
};

struct event_stream {
    struct vmmd_daemon *d;
    struct sse_client *clients;
};

static int append_event(void *opaque, const struct db_event *ev)
{
    struct sse_client *c = opaque;
    int need = snprintf(NULL, 0, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)ev->id, ev->type,
                        ev->data_json);

    if (c->len + (size_t)need + 1 > c->cap) {
        size_t cap = c->len + (size_t)need + 1 + 4096;
        char *grown = realloc(c->buf, cap);
        if (!grown)
            return -ENOMEM;
        c->buf = grown;
        c->cap = cap;
    }
    snprintf(c->buf + c->len, c->cap - c->len, "id: %lld\nevent: %s\ndata: %s\n\n",
             (long long)ev->id, ev->type, ev->data_json);
    c->len += (size_t)need;
    c->last_id = ev->id;
    return c->len > SSE_BUF_LIMIT;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct sse_client *c = cls;
    size_t n;

    (void)pos;
    if (c->ended)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (c->off == c->len) {
        c->off = c->len = 0;
        db_events_since(c->es->d->db, c->last_id, BATCH, append_event, c);
        if (c->len == 0) {
            c->waiting = true;
            c->req->suspended = true;
            MHD_suspend_connection(c->req->conn);
            return 0;
        }
    }
    n = c->len - c->off < max ? c->len - c->off : max;
    memcpy(out, c->buf + c->off, n);
    c->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    struct sse_client *c = cls;
    struct sse_client **pp = &c->es->clients;

    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
    free(c->buf);
    free(c);
}

void route_events(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    const char *since = http_query(req, "since");
    const char *last = http_header(req, "Last-Event-ID");
    struct sse_client *c;
    struct MHD_Response *resp;
    char *end;

    (void)m;
    c = calloc(1, sizeof(*c));
    if (!c) {
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        return;
    }
    c->es = d->events;
    c->req = req;
    c->last_id = db_last_event_id(d->db);
    if (since || last) {
        const char *v = since ? since : last;
        long long id = strtoll(v, &end, 10);
        if (*end || end == v || id < 0) {
            free(c);
            http_respond_error(req, API_ERR_BAD_REQUEST, "since: must be an event id (a number)");
            return;
        }
        c->last_id = id;
    }
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, c, sse_free);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    c->next = d->events->clients;
    d->events->clients = c;
    http_respond_mhd(req, 200, resp);
}

void event_stream_notify(struct event_stream *es)
{
    for (struct sse_client *c = es->clients; c; c = c->next) {
        if (c->waiting) {
            c->waiting = false;
            http_resume_stream(c->req);
        }
    }
}

void event_stream_close_all(struct event_stream *es)
{
    for (struct sse_client *c = es->clients; c; c = c->next) {
        c->ended = true;
        if (c->waiting) {
            c->waiting = false;
            http_resume_stream(c->req);
        }
    }
}

struct event_stream *event_stream_create(struct vmmd_daemon *d)
{
    struct event_stream *es = calloc(1, sizeof(*es));

    if (es)
        es->d = d;
    return es;
}

void event_stream_destroy(struct event_stream *es)
{
    free(es);
}
