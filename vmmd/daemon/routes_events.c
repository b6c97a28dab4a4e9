/*
 * GET /v1/events: server-sent events from the event table. A client names
 * the last id it saw (?since= or Last-Event-ID) and gets everything after
 * it from SQLite, then live events as they are committed. Streams pull from
 * the store when the client has room, so a slow reader holds no backlog in
 * the daemon and never blocks the loop. A reader that falls too far behind
 * (event_policy.h) is disconnected: its EventSource reconnects with
 * Last-Event-ID and replays the rest from the store, losing nothing.
 *
 * Retention (--events-max-age, --events-max-count) prunes the oldest events
 * from a timer, a bounded batch per loop iteration. A client whose position
 * is older than the oldest event kept, at connect or because it fell behind
 * while the history it was replaying got pruned, gets an `events.reset`
 * event saying so, then the events that are kept: never a silent gap.
 * A reset rather than a 410: an EventSource can read neither the status nor
 * the body of a refused stream, and stops reconnecting after one.
 */
#include "routes.h"
#include "cluster.h"
#include "event_policy.h"
#include "log.h"
#include "strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH         64
#define SSE_BUF_LIMIT (64 * 1024)
/*
 * The kernel's send buffer for a stream (Linux doubles it). Events come from
 * the store whenever the socket has room, so a large buffer would only be a
 * backlog hidden from the lag check.
 */
#define SSE_SNDBUF (32 * 1024)
/* EventSource waits this long before it reconnects, e.g. after a drop. */
#define SSE_RETRY_MS 1000
/*
 * A waiting stream gets a comment line this often: it keeps proxies from
 * closing an idle stream, and a write is how a suspended connection whose
 * client has gone is noticed (MHD does not watch suspended sockets).
 */
#define SSE_KEEPALIVE_MS 15000
/* Events deleted per transaction: a few milliseconds of the loop at most. */
#define PRUNE_BATCH 1000
/* The age check runs this often (or at a quarter of --events-max-age, if shorter). */
#define PRUNE_INTERVAL_MS 60000
#define PRUNE_MIN_INTERVAL_MS 250
#define PRUNE_SOON_MS 100

struct sse_client {
    struct event_stream *es;
    struct sse_client *next;
    struct http_request *req;
    int64_t last_id;   /* the last event put in out */
    int64_t sent_id;   /* the last event all of whose bytes went out */
    int64_t joined_id; /* the newest event when the client connected */
    uint64_t progress_ms; /* it last took data, or last fell behind */
    struct strbuf out; /* what goes to the client next, from off on */
    size_t off;
    bool local;     /* ?local=1: this daemon's own events only */
    bool waiting;   /* suspended until the next event */
    bool keepalive; /* send a comment line at the next read */
    bool ended;
};

struct event_stream {
    struct vmmd_daemon *d;
    struct sse_client *clients;
    int64_t newest_id; /* the last event committed while the daemon runs */
    int64_t oldest_id; /* the oldest event kept (db_events_oldest_id), after each prune */
    uv_timer_t timer;  /* keepalives and the stall check */
    uv_timer_t prune_timer;
    uint64_t prune_interval_ms;
    bool prune_failing; /* logged once per run of failures */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * In a cluster every event says which member recorded it: "origin" leads its
 * data (copies of other members' events carry theirs). A member's relay of
 * this member's events asks for ?local=1: its own events only.
 */
static int append_event(void *opaque, const struct db_event *ev)
{
    struct sse_client *c = opaque;
    struct cluster *cl = c->es->d->cluster;
    const char *origin = ev->origin[0] ? ev->origin : cl ? cluster_member_name(cl) : NULL;
    const char *data = ev->data_json;
    int rc;

    if (c->local && ev->origin[0]) {
        c->last_id = ev->id;
        return 0;
    }
    if (origin && data[0] == '{')
        rc = strbuf_printf(&c->out, "id: %lld\nevent: %s\ndata: {\"origin\":\"%s\"%s%s\n\n",
                           (long long)ev->id, ev->type, origin, data[1] == '}' ? "" : ",",
                           data + 1);
    else
        rc = strbuf_printf(&c->out, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)ev->id,
                           ev->type, data);
    if (rc)
        return -ENOMEM;
    c->last_id = ev->id;
    return c->out.len > SSE_BUF_LIMIT;
}

/*
 * Events after the client's position were pruned: say so once, and go on
 * from the oldest kept. The reset carries the id just before that one, so an
 * EventSource that reconnects later resumes after it.
 */
static void append_reset(struct sse_client *c, int64_t oldest)
{
    strbuf_printf(&c->out,
                  "id: %lld\nevent: events.reset\ndata: {\"since\":%lld,\"oldest\":%lld,"
                  "\"detail\":\"events after %lld and before %lld are no longer kept; list the "
                  "current state again\"}\n\n",
                  (long long)(oldest - 1), (long long)c->last_id, (long long)oldest,
                  (long long)c->last_id, (long long)oldest);
    c->last_id = oldest - 1;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct sse_client *c = cls;
    size_t n;

    (void)pos;
    if (c->ended)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (c->off == c->out.len) {
        c->off = c->out.len = 0;
        int64_t before;
        if (c->last_id < c->es->oldest_id - 1)
            append_reset(c, c->es->oldest_id);
        /* A local stream skips copies of others' events: a skipped batch is no end (a few per
         * read, so that a long run of copies does not hold the loop; the next read goes on). */
        int batches = 0;
        do {
            before = c->last_id;
            db_events_since(c->es->d->db, c->last_id, BATCH, append_event, c);
        } while (c->out.len == 0 && c->last_id != before && !c->out.oom && ++batches < 16);
        /* Skipped ones count as sent: the lag check must not see them as a backlog. */
        if (c->out.len == 0)
            c->sent_id = c->last_id;
        /* More may follow the cap: a comment line, so that MHD reads on instead of waiting. */
        if (c->out.len == 0 && batches == 16)
            strbuf_printf(&c->out, ":\n\n");
        if (c->out.len == 0 && c->keepalive)
            strbuf_printf(&c->out, ": keepalive\n\n");
        c->keepalive = false;
        if (c->out.oom)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (c->out.len == 0) {
            c->waiting = true;
            c->req->suspended = true;
            MHD_suspend_connection(c->req->conn);
            return 0;
        }
    }
    n = c->out.len - c->off < max ? c->out.len - c->off : max;
    memcpy(out, c->out.buf + c->off, n);
    c->off += n;
    if (c->off == c->out.len)
        c->sent_id = c->last_id;
    c->progress_ms = mono_ms();
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
    free(c->out.buf);
    free(c);
}

static int connection_fd(struct http_request *req)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);

    return info ? info->connect_fd : -1;
}

void route_events(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    const char *since = http_query(req, "since");
    const char *last = http_header(req, "Last-Event-ID");
    const char *local = http_query(req, "local");
    int sndbuf = SSE_SNDBUF, fd;
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
    c->joined_id = c->last_id = db_last_event_id(d->db);
    if (since || last) {
        /* An EventSource resumes with Last-Event-ID and the URL it began with: the header is newer. */
        const char *v = last ? last : since;
        long long id;
        errno = 0;
        id = strtoll(v, &end, 10);
        if (errno || *end || end == v || id < 0) {
            free(c);
            http_respond_error(req, API_ERR_BAD_REQUEST, "since: must be an event id (a number)");
            return;
        }
        c->last_id = id;
    }
    if (local && strcmp(local, "0") && strcmp(local, "1")) {
        free(c);
        http_respond_error(req, API_ERR_BAD_REQUEST, "local: must be 0 or 1");
        return;
    }
    c->local = local && local[0] == '1';
    c->sent_id = c->last_id;
    c->progress_ms = mono_ms();
    /* A local stream (a member's relay) starts with the position it starts from: an id alone,
     * no event, so the relay knows where it is before the first event comes. */
    if (strbuf_printf(&c->out, "retry: %d\n\n", SSE_RETRY_MS) ||
        (c->local && strbuf_printf(&c->out, "id: %lld\n\n", (long long)c->last_id))) {
        free(c->out.buf);
        free(c);
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        return;
    }
    if ((fd = connection_fd(req)) >= 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, c, sse_free);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    c->next = d->events->clients;
    d->events->clients = c;
    http_respond_stream(req, 200, resp);
}

/*
 * Cuts a client off. Its socket may be full, so MHD may never call sse_read
 * again to end the stream: shutting the socket down makes MHD see the
 * connection end and free it. What the kernel already holds still reaches
 * the client before the end of the stream.
 */
static void drop_client(struct sse_client *c, uint64_t lag, uint64_t stalled_ms)
{
    int fd = connection_fd(c->req);

    c->ended = true;
    c->es->d->metrics.event_clients_dropped++;
    log_info("event stream: dropping a client %llu events behind, stalled for %llu ms",
             (unsigned long long)lag, (unsigned long long)stalled_ms);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

/* Wakes the clients waiting for an event (or a keepalive), drops those too far behind. */
static void visit_clients(struct event_stream *es, bool keepalive)
{
    struct event_lag_policy policy = {.max_lag = es->d->cfg->events_max_lag,
                                      .max_stall_ms = EVENT_STALL_MS_DEFAULT};
    uint64_t now = mono_ms();

    for (struct sse_client *c = es->clients; c; c = c->next) {
        if (c->ended)
            continue;
        if (c->waiting) {
            c->waiting = false;
            c->keepalive = keepalive;
            c->progress_ms = now;
            http_resume_stream(c->req);
            continue;
        }
        uint64_t lag = event_client_lag(es->newest_id, c->sent_id, c->joined_id);
        uint64_t stalled = now - c->progress_ms;
        if (event_client_should_drop(&policy, lag, stalled))
            drop_client(c, lag, stalled);
    }
}

/*
 * One batch of retention. A full batch means there may be more: the next
 * batch runs on the next loop iteration, after whatever requests wait.
 */
static void on_prune(uv_timer_t *t)
{
    struct event_stream *es = t->data;
    const struct vmmd_config *cfg = es->d->cfg;
    struct timespec now;
    size_t deleted = 0;
    int64_t before, oldest;
    int rc;

    clock_gettime(CLOCK_REALTIME, &now);
    before = ((int64_t)now.tv_sec - (int64_t)cfg->events_max_age_s) * 1000 +
             now.tv_nsec / 1000000;
    rc = db_events_prune(es->d->db, before, cfg->events_max_count, PRUNE_BATCH, &deleted);
    if (rc) {
        /* A full disk can refuse even a delete (the WAL grows): try again next time. */
        if (!es->prune_failing)
            log_warn("events: cannot prune old events: %s", db_last_error(es->d->db));
        es->prune_failing = true;
    } else {
        if (es->prune_failing)
            log_info("events: pruning works again");
        es->prune_failing = false;
    }
    oldest = db_events_oldest_id(es->d->db);
    if (oldest > 0)
        es->oldest_id = oldest;
    if (deleted)
        log_debug("events: pruned %zu; the oldest kept is now %lld", deleted,
                  (long long)es->oldest_id);
    uv_timer_start(&es->prune_timer, on_prune, deleted == PRUNE_BATCH ? 0 : es->prune_interval_ms,
                   0);
}

/*
 * Past the count cap: prune within PRUNE_SOON_MS rather than at the next
 * tick. Not at once: under a burst of writes that would be one more
 * transaction per event; this way it is one per PRUNE_SOON_MS, and the table
 * is back at the cap as soon as the burst ends.
 */
static void prune_soon(struct event_stream *es, int64_t event_id)
{
    if (event_id - es->oldest_id + 1 > (int64_t)es->d->cfg->events_max_count &&
        uv_timer_get_due_in(&es->prune_timer) > PRUNE_SOON_MS)
        uv_timer_start(&es->prune_timer, on_prune, PRUNE_SOON_MS, 0);
}

void event_stream_notify(struct event_stream *es, int64_t event_id)
{
    es->newest_id = event_id;
    prune_soon(es, event_id);
    visit_clients(es, false);
}

static void on_timer(uv_timer_t *t)
{
    visit_clients(t->data, true);
}

unsigned event_stream_clients(const struct event_stream *es)
{
    unsigned n = 0;

    for (const struct sse_client *c = es->clients; c; c = c->next)
        n += !c->ended;
    return n;
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

    if (!es)
        return NULL;
    es->d = d;
    uv_timer_init(d->loop, &es->timer);
    es->timer.data = es;
    uv_timer_start(&es->timer, on_timer, SSE_KEEPALIVE_MS, SSE_KEEPALIVE_MS);
    uv_unref((uv_handle_t *)&es->timer); /* housekeeping: it keeps no loop alive */
    /* The store opens later: the first prune, before the loop serves anyone, reads it. */
    es->oldest_id = 1;
    es->prune_interval_ms = d->cfg->events_max_age_s * 1000 / 4;
    if (es->prune_interval_ms > PRUNE_INTERVAL_MS)
        es->prune_interval_ms = PRUNE_INTERVAL_MS;
    if (es->prune_interval_ms < PRUNE_MIN_INTERVAL_MS)
        es->prune_interval_ms = PRUNE_MIN_INTERVAL_MS;
    uv_timer_init(d->loop, &es->prune_timer);
    es->prune_timer.data = es;
    uv_timer_start(&es->prune_timer, on_prune, 0, 0); /* what a previous run left */
    uv_unref((uv_handle_t *)&es->prune_timer);
    return es;
}

static void free_after_close(uv_handle_t *h)
{
    free(h->data);
}

void event_stream_destroy(struct event_stream *es)
{
    if (!es)
        return;
    /* Handles close in order: the prune timer's callback runs before the one that frees. */
    uv_close((uv_handle_t *)&es->prune_timer, NULL);
    uv_close((uv_handle_t *)&es->timer, free_after_close);
}
