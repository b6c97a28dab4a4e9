/*
 * GET /v1/vms[?state=S][&limit=N&after=NAME]: the VM list, whole or in
 * keyset pages ordered by name.
 *
 * Rendering is off the loop. Measured on the sanitizer build with 4096 VMs
 * of 4 KiB command lines (an 18 MB answer): rendering it on the loop took
 * 1.1 s, and GET /v1/host waited 0.6-1.1 s behind it while another client
 * alternated PATCH and list (every PATCH invalidates the cache). A page of
 * 1000 such VMs would still hold the loop for a quarter of that. So every
 * list that is not in the cache is read and rendered on libuv's thread pool,
 * through a second, read-only SQLite connection (d->db_reader): WAL gives it
 * a consistent snapshot while the loop's connection commits, and the list,
 * its total and the newest event id come from the same read transaction.
 * The loop only queues the work and hands the bytes to MHD. One render runs
 * at a time (the reader is one connection); requests wait, suspended, in a
 * queue, and all that asked for the same list are answered by one render.
 *
 * The whole list per state filter stays cached until the next committed
 * change (d->generation), so dashboards polling it cost no render at all;
 * cached bytes are shared, reference-counted, by the responses sending them.
 */
#include "routes.h"
#include "cluster.h"
#include "lifecycle.h"
#include "strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A rendered list, shared by the cache and the responses sending it (loop thread only). */
struct list_body {
    unsigned refs;
    int64_t last_event_id; /* the newest event the list reflects */
    uint64_t total;        /* VMs matching the filter, over all pages */
    bool more;             /* a paged list: VMs remain after this page */
    char last_name[DB_NAME_MAX + 1];
    char *json;
    size_t len;
};

struct list_query {
    int slot;          /* 0: all states; else 1 + enum vmmd_state */
    const char *state; /* the state's static name, NULL for all */
    size_t limit;      /* 0: the whole list */
    char after[DB_NAME_MAX + 1];
};

struct list_waiter {
    struct list_waiter *next;
    struct http_request *req; /* NULL once the client went away */
    struct list_query q;
    uint64_t generation; /* d->generation when the request came */
};

struct list_job {
    uv_work_t work;
    struct vmmd_daemon *d;
    struct list_query q;
    const char *member; /* in a cluster: this member's name, added to each local VM */
    json_t *remote;     /* in a cluster: the other members' VMs, by name (the job's own) */
    uint64_t generation; /* when the job was queued: its snapshot is at least this new */
    struct list_body *body;
    int rc;
    char error[256];
};

static struct {
    struct list_body *cache[VMMD_STATE_COUNT + 2]; /* all, each state, unknown */
    uint64_t cache_generation[VMMD_STATE_COUNT + 2];
    struct list_waiter *head, **tail;
    bool rendering;
} lists = {.tail = &lists.head};

static void body_unref(void *cls)
{
    struct list_body *b = cls;

    if (b && --b->refs == 0) {
        free(b->json);
        free(b);
    }
}

static bool same_query(const struct list_query *a, const struct list_query *b)
{
    return a->slot == b->slot && a->limit == b->limit && strcmp(a->after, b->after) == 0;
}

static void respond_body(struct http_request *req, const struct list_query *q, struct list_body *b)
{
    struct MHD_Response *resp;
    char num[24], link[160];

    resp = MHD_create_response_from_buffer_with_free_callback_cls(b->len, b->json, body_unref, b);
    if (!resp) {
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        return;
    }
    b->refs++;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    /*
     * Every change commits its event in the same transaction and the loop is
     * the only writer, so a client that follows /v1/events?since=<this> from
     * here misses nothing and sees nothing twice.
     */
    snprintf(num, sizeof(num), "%lld", (long long)b->last_event_id);
    MHD_add_response_header(resp, "Vmmd-Last-Event-Id", num);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)b->total);
    MHD_add_response_header(resp, "Vmmd-Total-Count", num);
    if (b->more) { /* RFC 8288; names and states need no escaping in a URL */
        snprintf(link, sizeof(link), "</v1/vms?limit=%zu&after=%s%s%s>; rel=\"next\"", q->limit,
                 b->last_name, q->state ? "&state=" : "", q->state ? q->state : "");
        MHD_add_response_header(resp, "Link", link);
    }
    http_respond_mhd(req, 200, resp);
}

static void waiter_gone(void *stream)
{
    struct list_waiter *w = stream;

    w->req = NULL;
}

/* Answers and frees every waiter for q that came no later than generation; NULL b: 500. */
static void answer_waiters(const struct list_query *q, uint64_t generation, struct list_body *b,
                           const char *error)
{
    struct list_waiter **pp = &lists.head, *w;

    while ((w = *pp)) {
        if (w->req && (!same_query(&w->q, q) || w->generation > generation)) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        if (w->req) {
            w->req->stream = NULL;
            w->req->stream_done = NULL;
            if (b)
                respond_body(w->req, q, b);
            else
                http_respond_error(w->req, API_ERR_INTERNAL, "store: %s",
                                   error ? error : "unknown error");
        }
        free(w);
    }
    lists.tail = pp; /* the loop ran to the end */
}

static int append_json(const char *buffer, size_t size, void *data)
{
    return strbuf_append(data, buffer, size) ? -1 : 0;
}

/* On the thread pool: reads one snapshot through the reader and renders it. */
static void render_work(uv_work_t *work)
{
    struct list_job *job = work->data;
    struct db_store *db = job->d->db_reader;
    const struct list_query *q = &job->q;
    struct strbuf out = {0};
    struct db_vm *vms = NULL;
    size_t n = 0, shown;
    uint64_t total = 0;
    int rc;

    job->body = calloc(1, sizeof(*job->body));
    if (!job->body) {
        job->rc = -ENOMEM;
        return;
    }
    rc = db_read_begin(db);
    if (!rc)
        rc = db_vm_count(db, q->state, &total);
    /* One more than asked: whether it comes says whether another page follows. */
    if (!rc)
        rc = db_vm_list_page(db, q->state, q->after, q->limit ? q->limit + 1 : 0, &vms, &n);
    if (!rc)
        job->body->last_event_id = db_last_event_id(db);
    if (rc)
        snprintf(job->error, sizeof(job->error), "%s", db_last_error(db));
    db_read_end(db);
    if (rc) {
        job->rc = rc;
        return;
    }
    /* The other members' VMs that pass the filter, merged by name with the local page. */
    json_t *remote = job->remote ? job->remote : json_array(), *rv;
    size_t r = 0, shown_n = 0, remote_n = json_array_size(remote);
    for (size_t i = 0; i < remote_n; i++) {
        rv = json_array_get(remote, i);
        const char *name = json_string_value(json_object_get(rv, "name"));
        const char *st = json_string_value(json_object_get(rv, "state"));
        if (!name || (q->state && (!st || strcmp(st, q->state))))
            json_array_set_new(remote, i, json_null());
        else if (q->after[0] && strcmp(name, q->after) <= 0)
            json_array_set_new(remote, i, json_null());
        else
            total++;
    }
    size_t l = 0;
    const char *last = NULL;
    strbuf_append(&out, "[", 1);
    while (!out.oom && (!q->limit || shown_n < q->limit)) {
        json_t *vm;
        while (r < remote_n && json_is_null(json_array_get(remote, r)))
            r++;
        rv = r < remote_n ? json_array_get(remote, r) : NULL;
        if (l >= n && !rv)
            break;
        if (l < n && (!rv || strcmp(vms[l].name, json_string_value(json_object_get(rv, "name"))) < 0)) {
            vm = api_vm_to_json(&vms[l]);
            if (vm && job->member)
                json_object_set_new(vm, "member", json_string(job->member));
            last = vms[l++].name;
        } else {
            vm = json_incref(rv);
            last = json_string_value(json_object_get(rv, "name"));
            r++;
        }
        if (shown_n++)
            strbuf_append(&out, ",", 1);
        if (!vm || json_dump_callback(vm, append_json, &out, JSON_COMPACT))
            out.oom = true;
        json_decref(vm);
    }
    while (r < remote_n && json_is_null(json_array_get(remote, r)))
        r++;
    shown = shown_n;
    job->body->total = total;
    job->body->more = l < n || r < remote_n;
    if (shown && last)
        snprintf(job->body->last_name, sizeof(job->body->last_name), "%s", last);
    if (!job->remote)
        json_decref(remote);
    strbuf_append(&out, "]", 1);
    db_vm_list_free(vms, n);
    if (out.oom) {
        free(out.buf);
        job->rc = -ENOMEM;
        snprintf(job->error, sizeof(job->error), "out of memory");
        return;
    }
    job->body->json = out.buf;
    job->body->len = out.len;
}

static void start_next(struct vmmd_daemon *d);

static void render_done(uv_work_t *work, int status)
{
    struct list_job *job = work->data;
    struct vmmd_daemon *d = job->d;
    struct list_body *b = job->body;

    lists.rendering = false;
    if (status == 0 && job->rc == 0) {
        b->refs = 1; /* the job's, until the waiters hold theirs */
        /* Cacheable only if nothing was committed while it rendered: then the snapshot is
         * exactly this generation. */
        if (!job->q.limit && d->generation == job->generation) {
            body_unref(lists.cache[job->q.slot]);
            lists.cache[job->q.slot] = b;
            lists.cache_generation[job->q.slot] = job->generation;
            b->refs++;
        }
        answer_waiters(&job->q, job->generation, b, NULL);
        body_unref(b);
    } else {
        answer_waiters(&job->q, job->generation, NULL,
                       job->rc ? (job->error[0] ? job->error : strerror(-job->rc))
                               : uv_strerror(status));
        if (b)
            free(b->json);
        free(b);
    }
    json_decref(job->remote);
    free(job);
    start_next(d);
}

static struct list_body *cached(struct vmmd_daemon *d, const struct list_query *q)
{
    if (q->limit || !lists.cache[q->slot] || lists.cache_generation[q->slot] != d->generation)
        return NULL;
    return lists.cache[q->slot];
}

/* Answers what the cache can, then starts a render for the oldest waiter left. */
static void start_next(struct vmmd_daemon *d)
{
    struct list_waiter *w;
    struct list_job *job;
    struct list_body *b;

    while (!lists.rendering && (w = lists.head)) {
        if (!w->req) { /* the client went away */
            lists.head = w->next;
            if (!lists.head)
                lists.tail = &lists.head;
            free(w);
            continue;
        }
        if ((b = cached(d, &w->q))) {
            answer_waiters(&w->q, d->generation, b, NULL);
            continue;
        }
        job = calloc(1, sizeof(*job));
        if (job) {
            job->work.data = job;
            job->d = d;
            job->q = w->q;
            job->generation = d->generation;
            if (d->cluster) {
                job->member = cluster_member_name(d->cluster);
                job->remote = cluster_remote_vms(d->cluster);
            }
            if (uv_queue_work(d->loop, &job->work, render_work, render_done) == 0) {
                lists.rendering = true;
                return;
            }
            json_decref(job->remote);
            free(job);
        }
        answer_waiters(&w->q, d->generation, NULL, "cannot queue the render");
    }
}

void route_vms_list(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    const char *state = http_query(req, "state"), *after = http_query(req, "after");
    struct list_query q = {0};
    struct list_waiter *w;
    struct list_body *b;
    struct api_error err;

    (void)m;
    if (state && d->cluster && strcmp(state, "unknown") == 0) {
        /* Only other members' VMs are ever unknown (this member is never offline to itself). */
        q.slot = VMMD_STATE_COUNT + 1;
        q.state = "unknown";
    } else if (state) {
        int st = vmmd_state_parse(state);
        if (st < 0) {
            http_respond_error(req, API_ERR_BAD_REQUEST,
                               "state: '%s' is not one of stopped, starting, running, paused, "
                               "stopping, crashed",
                               state);
            return;
        }
        q.slot = st + 1;
        q.state = vmmd_state_name((enum vmmd_state)st);
    }
    if (api_parse_list_page(http_query(req, "limit"), after, &q.limit, &err)) {
        http_respond_problem(req, &err);
        return;
    }
    if (after)
        snprintf(q.after, sizeof(q.after), "%s", after);
    if ((b = cached(d, &q))) {
        respond_body(req, &q, b);
        return;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        return;
    }
    w->req = req;
    w->q = q;
    w->generation = d->generation;
    *lists.tail = w;
    lists.tail = &w->next;
    req->stream = w;
    req->stream_done = waiter_gone;
    http_suspend(req);
    start_next(d);
}
