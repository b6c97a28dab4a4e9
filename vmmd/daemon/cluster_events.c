/* Copies the other members' events into this member's stream (cluster_events.h). */
#include "cluster_events.h"
#include "cluster.h"
#include "cluster_forward.h"
#include "daemon.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_BYTES (1u << 20) /* an event's data line; more is not one of ours */
#define RETRY_MS       1000
/* The stream sends a keepalive every 15 s: this long without a byte is a dead connection. */
#define SILENT_S 45

/* An event read by a relay, on its way to the loop. */
struct relayed {
    struct relayed *next;
    char member[DB_NAME_MAX + 1], member_id[65];
    int64_t origin_id;
    unsigned gen; /* the relay's generation when it read the event */
    bool start;   /* no event: the position the member's stream started from */
    char type[32];
    char *data;
};

struct peer {
    struct cluster_events *ce;
    struct peer *next;
    char name[DB_NAME_MAX + 1], id[65];
    struct cluster_peer call; /* its address (no path), pin, our credentials */
    pthread_t thread;
    bool started;
    atomic_bool stop, done;
    /* A copy failed on the loop: the loop bumps gen (after resync_to, its position in the
     * store); the relay starts again from there and the loop drops what it read before. */
    atomic_uint gen;
    atomic_llong resync_to;
    bool seen; /* still followed after this sync */
    /* the relay thread's own */
    int64_t pos; /* the member's last event id handled */
    unsigned thread_gen;
    char *line;
    size_t len, cap;
    bool overflow;
    int64_t id_field;
    char type[32];
    char *data;
    bool failing; /* logged once per run of failures */
};

struct cluster_events {
    struct vmmd_daemon *d;
    struct cluster *c;
    struct peer *peers, *stopping;
    uv_async_t wake;
    pthread_mutex_t lock;
    struct relayed *queue, **tail;
    unsigned long long copied;
};

static void peer_free(struct peer *p)
{
    cluster_peer_clear(&p->call);
    free(p->line);
    free(p->data);
    free(p);
}

/* ---- the relay thread ---- */

static void post(struct peer *p, bool start)
{
    struct cluster_events *ce = p->ce;
    struct relayed *e = calloc(1, sizeof(*e));

    if (!e)
        return;
    snprintf(e->member, sizeof(e->member), "%s", p->name);
    snprintf(e->member_id, sizeof(e->member_id), "%s", p->id);
    e->origin_id = p->id_field;
    e->gen = p->thread_gen;
    e->start = start;
    if (!start) {
        snprintf(e->type, sizeof(e->type), "%s", p->type);
        e->data = p->data;
        p->data = NULL;
    }
    pthread_mutex_lock(&ce->lock);
    *ce->tail = e;
    ce->tail = &e->next;
    pthread_mutex_unlock(&ce->lock);
    uv_async_send(&ce->wake);
}

/* One line of the stream (without its end). A blank one ends an event. */
static void stream_line(struct peer *p, char *line)
{
    if (!line[0]) {
        if (p->id_field > p->pos && p->type[0] && p->data)
            post(p, false);
        else if (p->id_field > 0 && !p->type[0] && !p->data)
            post(p, true);
        if (p->id_field > p->pos)
            p->pos = p->id_field;
        p->id_field = 0;
        p->type[0] = 0;
        free(p->data);
        p->data = NULL;
    } else if (strncmp(line, "id: ", 4) == 0) {
        p->id_field = strtoll(line + 4, NULL, 10);
    } else if (strncmp(line, "event: ", 7) == 0) {
        snprintf(p->type, sizeof(p->type), "%s", line + 7);
    } else if (strncmp(line, "data: ", 6) == 0) {
        free(p->data);
        p->data = strdup(line + 6);
    }
}

static size_t stream_bytes(char *bytes, size_t size, size_t n, void *userp)
{
    struct peer *p = userp;
    size_t len = size * n;

    for (size_t i = 0; i < len; i++) {
        if (bytes[i] == '\n') {
            if (p->len && p->line[p->len - 1] == '\r')
                p->len--;
            if (p->line)
                p->line[p->len] = 0;
            if (!p->overflow)
                stream_line(p, p->line ? p->line : (char[]){0});
            p->len = 0;
            p->overflow = false;
            continue;
        }
        if (p->len + 2 > p->cap) {
            size_t cap = p->cap ? p->cap * 2 : 4096;
            char *grown = cap <= LINE_MAX_BYTES ? realloc(p->line, cap) : NULL;
            if (!grown) {
                p->overflow = true; /* the line is dropped, the stream goes on */
                continue;
            }
            p->line = grown;
            p->cap = cap;
        }
        p->line[p->len++] = bytes[i];
    }
    return len;
}

static int check_stop(void *userp, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    struct peer *p = userp;

    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&p->stop) || atomic_load(&p->gen) != p->thread_gen ? 1 : 0;
}

static void *follow(void *arg)
{
    struct peer *p = arg;
    char url[1024], errbuf[CURL_ERROR_SIZE];

    while (!atomic_load(&p->stop)) {
        struct curl_slist *h = NULL;
        long status = 0;
        CURLcode rc;
        CURL *c;

        if (p->pos > 0)
            snprintf(url, sizeof(url), "%s/v1/events?local=1&since=%lld", p->call.url,
                     (long long)p->pos);
        else
            snprintf(url, sizeof(url), "%s/v1/events?local=1", p->call.url);
        errbuf[0] = 0;
        c = cluster_peer_easy(&p->call, &h, errbuf);
        if (c) {
            curl_easy_setopt(c, CURLOPT_URL, url);
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, stream_bytes);
            curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
            curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
            curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, check_stop);
            curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
            curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)SILENT_S);
            rc = curl_easy_perform(c);
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
            if (!atomic_load(&p->stop) && !p->failing && (rc != CURLE_OK || status != 200))
                log_warn("cluster: the events of member %s cannot be followed: %s", p->name,
                         status && status != 200 ? "refused" : errbuf[0] ? errbuf
                                                                          : curl_easy_strerror(rc));
            p->failing = rc != CURLE_OK || status != 200;
            curl_easy_cleanup(c);
        }
        curl_slist_free_all(h);
        p->len = 0;
        p->id_field = 0;
        p->type[0] = 0;
        if (atomic_load(&p->gen) != p->thread_gen) {
            p->thread_gen = atomic_load(&p->gen);
            p->pos = atomic_load(&p->resync_to);
            continue; /* at once: nothing is wrong with the member */
        }
        for (int i = 0; i < RETRY_MS / 100 && !atomic_load(&p->stop); i++)
            nanosleep(&(struct timespec){.tv_nsec = 100 * 1000000L}, NULL);
    }
    atomic_store(&p->done, true);
    return NULL;
}

/* ---- on the loop ---- */

/* A copied event into the table; membership events are each member's own to see. */
static struct peer *peer_by_id(struct cluster_events *ce, const char *member_id)
{
    for (struct peer *p = ce->peers; p; p = p->next)
        if (!strcmp(p->id, member_id))
            return p;
    return NULL;
}

/* A copy failed: the member's relay goes back to the position in the store. */
static void resync(struct cluster_events *ce, struct peer *p)
{
    int64_t pos;

    if (!p || db_event_relay_position(ce->d->db, p->id, &pos))
        return;
    atomic_store(&p->resync_to, pos);
    atomic_fetch_add(&p->gen, 1);
}

static void store(struct cluster_events *ce, struct relayed *e)
{
    struct peer *p = peer_by_id(ce, e->member_id);
    struct db_event ev = {0};
    json_t *data;
    const char *vm;
    char *text;
    int64_t id;
    int rc;

    if (p && e->gen != atomic_load(&p->gen))
        return; /* read before a failed copy: read again from the store's position */
    if (e->start) {
        if (db_event_relay_start(ce->d->db, e->member_id, e->origin_id))
            log_warn("cluster: cannot record where member %s's events start: %s", e->member,
                     db_last_error(ce->d->db));
        return;
    }
    /* A reset says the member's own stream has a gap; this one has none to report. */
    if (strncmp(e->type, "cluster.member_", 15) == 0 || strcmp(e->type, "events.reset") == 0)
        return;
    data = json_loads(e->data ? e->data : "", 0, NULL);
    if (!json_is_object(data)) {
        log_warn("cluster: member %s sent event %lld that is not a JSON object; dropped",
                 e->member, (long long)e->origin_id);
        json_decref(data);
        return;
    }
    json_object_del(data, "origin"); /* the stream puts it back from the column */
    vm = json_string_value(json_object_get(data, "id"));
    if (vm && strlen(vm) == DB_ID_LEN && strncmp(e->type, "vm.", 3) == 0)
        snprintf(ev.vm_id, sizeof(ev.vm_id), "%s", vm);
    snprintf(ev.type, sizeof(ev.type), "%s", e->type);
    text = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    ev.data_json = text;
    rc = text ? db_event_relay(ce->d->db, e->member_id, e->member, e->origin_id, &ev, &id)
              : -ENOMEM;
    free(text);
    if (rc == 0) {
        ce->copied++;
        vmmd_event_committed(ce->d, id);
    } else if (rc != -EALREADY) {
        log_warn("cluster: cannot copy event %lld of member %s: %s; reading on from the last "
                 "one copied",
                 (long long)e->origin_id, e->member,
                 rc == -ENOMEM ? "out of memory" : db_last_error(ce->d->db));
        resync(ce, p);
    }
}

static void on_wake(uv_async_t *a)
{
    struct cluster_events *ce = a->data;
    struct relayed *list;

    pthread_mutex_lock(&ce->lock);
    list = ce->queue;
    ce->queue = NULL;
    ce->tail = &ce->queue;
    pthread_mutex_unlock(&ce->lock);
    while (list) {
        struct relayed *next = list->next;
        store(ce, list);
        free(list->data);
        free(list);
        list = next;
    }
}

static void stop_peer(struct cluster_events *ce, struct peer *p)
{
    atomic_store(&p->stop, true);
    p->next = ce->stopping;
    ce->stopping = p;
}

/* Threads that have ended are joined (at once: they are done) and freed. */
static void reap(struct cluster_events *ce, bool wait)
{
    struct peer **pp = &ce->stopping;

    while (*pp) {
        struct peer *p = *pp;
        if (!wait && !atomic_load(&p->done)) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        if (p->started)
            pthread_join(p->thread, NULL);
        peer_free(p);
    }
}

static struct peer *start_peer(struct cluster_events *ce, const char *name, const char *id)
{
    struct peer *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->ce = ce;
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->id, sizeof(p->id), "%s", id);
    if (db_event_relay_position(ce->d->db, id, &p->pos))
        p->pos = 0;
    if (cluster_peer_init(ce->c, name, "", &p->call) ||
        pthread_create(&p->thread, NULL, follow, p)) {
        log_warn("cluster: cannot follow member %s's events: out of resources", name);
        peer_free(p);
        return NULL;
    }
    p->started = true;
    return p;
}

static bool same_peer(const struct peer *p, const char *id, const char *url, const char *pin)
{
    return !strcmp(p->id, id) && !strcmp(p->call.url, url) &&
           (pin ? p->call.pin && !strcmp(p->call.pin, pin) : !p->call.pin);
}

void cluster_events_sync(struct cluster_events *ce, json_t *members, json_t *alive,
                         const char *self)
{
    const char *name;
    json_t *rec;
    struct peer **pp;

    for (struct peer *p = ce->peers; p; p = p->next)
        p->seen = false;
    json_object_foreach(members, name, rec)
    {
        const char *id = json_string_value(json_object_get(rec, "id")), *url, *pin;
        struct peer *p;

        if (!strcmp(name, self) || !id || !json_object_get(alive, name) ||
            !cluster_member_address(ce->c, name, &url, &pin))
            continue;
        for (p = ce->peers; p && strcmp(p->name, name); p = p->next)
            ;
        if (p && same_peer(p, id, url, pin)) {
            p->seen = true;
            continue;
        }
        if ((p = start_peer(ce, name, id))) {
            p->seen = true;
            p->next = ce->peers;
            ce->peers = p;
        }
    }
    /* Gone offline, removed, or moved to a new address: stopped. */
    for (pp = &ce->peers; *pp;) {
        struct peer *p = *pp;
        if (p->seen) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        stop_peer(ce, p);
    }
    reap(ce, false);
}

unsigned long long cluster_events_copied(const struct cluster_events *ce)
{
    return ce->copied;
}

struct cluster_events *cluster_events_new(struct vmmd_daemon *d, struct cluster *c)
{
    struct cluster_events *ce = calloc(1, sizeof(*ce));

    if (!ce)
        return NULL;
    ce->d = d;
    ce->c = c;
    ce->tail = &ce->queue;
    pthread_mutex_init(&ce->lock, NULL);
    uv_async_init(d->loop, &ce->wake, on_wake);
    ce->wake.data = ce;
    uv_unref((uv_handle_t *)&ce->wake);
    return ce;
}

static void freed(uv_handle_t *h)
{
    struct cluster_events *ce = h->data;

    pthread_mutex_destroy(&ce->lock);
    free(ce);
}

void cluster_events_free(struct cluster_events *ce)
{
    if (!ce)
        return;
    while (ce->peers) {
        struct peer *p = ce->peers;
        ce->peers = p->next;
        stop_peer(ce, p);
    }
    reap(ce, true);
    on_wake(&ce->wake); /* what came before the end is kept */
    uv_close((uv_handle_t *)&ce->wake, freed);
}
