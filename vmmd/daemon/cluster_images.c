/*
 * Images as cluster objects (see cluster_images.h). The definition is what
 * a copy is checked against: its size and the sha256 of the raw bytes a
 * member serves (for a raw import the source's digest, which is the same
 * bytes; a qcow2 import's file is hashed once it is converted). A copy is
 * downloaded into the pool's hidden ".part" file on the thread pool (libcurl
 * blocks) and only renamed into place and recorded once it matched, so a
 * bad holder leaves nothing behind. Volume requests for an image being
 * copied wait on the one copy.
 */
#include "cluster_images.h"
#include "cluster.h"
#include "cluster_forward.h"
#include "daemon.h"
#include "etcd.h"
#include "http_server.h"
#include "image_import.h"
#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KEY_MAX           256
#define CONNECT_TIMEOUT_S 10
#define STALL_TIMEOUT_S   30 /* a copy that moves no byte for this long is given up */
#define SOURCE_PREFIX     "cluster:"

struct waiter {
    struct waiter *next;
    struct api_volume_def def;
    storage_done_fn done;
    void *ctx;
};

/* A copy of one image coming from another member. */
struct fetch {
    struct fetch *next;
    struct cluster_images *ci;
    struct vmmd_daemon *d;
    uv_work_t work;
    char name[DB_NAME_MAX + 1];
    char sha256[65]; /* the definition's */
    uint64_t size;
    json_t *holders; /* members to try, in order */
    size_t tried;
    char from[DB_NAME_MAX + 1]; /* the member being tried */
    struct cluster_peer peer; /* the member being tried, and the path */
    char part[PATH_MAX];
    int fd;
    uint64_t start_ms;
    struct waiter *waiters;
    /* the thread's outcome */
    struct image_hash *hash;
    uint64_t got;
    bool too_long, write_failed;
    char got_sha256[65];
    char error[CURL_ERROR_SIZE + 64];
    char why[512]; /* the failures of the members tried before */
    enum api_error_kind why_kind;
};

struct cluster_images {
    json_t *defined;     /* names defined at the last poll -> whether this member held a copy
                            (deleted when the name goes) */
    json_t *kept;        /* copies kept for their volumes (logged once) */
    json_t *deleted;     /* name -> the revision of a definition deleted here, until polls agree */
    json_t *unpublished; /* this member's imports etcd did not take: defined once it answers */
    struct fetch *fetches;
    atomic_bool stopping; /* the daemon stops: copies in flight give up */
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct cluster_images *state(struct vmmd_daemon *d)
{
    struct cluster_images *ci = d->cluster_images;

    if (ci || !(ci = calloc(1, sizeof(*ci))))
        return ci;
    ci->defined = json_object();
    ci->kept = json_object();
    ci->deleted = json_object();
    ci->unpublished = json_object();
    d->cluster_images = ci;
    return ci;
}

void cluster_images_stop(struct vmmd_daemon *d)
{
    struct cluster_images *ci = d->cluster_images;
    struct api_error err;

    if (!ci)
        return;
    atomic_store(&ci->stopping, true);
    /* Answered now, while the HTTP server still runs; the copies end on their own (within
     * a second: they check the flag), and find no one waiting. */
    for (struct fetch *f = ci->fetches; f; f = f->next) {
        api_fail(&err, API_ERR_UNAVAILABLE, "vmmd is stopping: image '%s' was not copied here",
                 f->name);
        for (struct waiter *w = f->waiters, *next; w; w = next) {
            next = w->next;
            w->done(w->ctx, (unsigned)api_error_status(err.kind), NULL, &err);
            free(w);
        }
        f->waiters = NULL;
    }
}

void cluster_images_free(struct vmmd_daemon *d)
{
    struct cluster_images *ci = d->cluster_images;

    if (!ci)
        return;
    json_decref(ci->defined);
    json_decref(ci->kept);
    json_decref(ci->deleted);
    json_decref(ci->unpublished);
    free(ci);
    d->cluster_images = NULL;
}

/* The cluster's definition of name (borrowed), or NULL; one this member deleted is gone at
 * once, not a poll later (read-your-writes). */
static json_t *definition(struct vmmd_daemon *d, const char *name)
{
    json_t *obj = json_object_get(cluster_objects(d->cluster, "images"), name);
    json_t *gone = d->cluster_images ? json_object_get(d->cluster_images->deleted, name) : NULL;

    if (gone && json_integer_value(gone) == json_integer_value(json_object_get(obj, "rev")))
        return NULL;
    return json_object_get(obj, "value");
}

int cluster_images_check_name(struct vmmd_daemon *d, const char *name, struct api_error *err)
{
    json_t *def = d->cluster ? definition(d, name) : NULL;

    if (!def)
        return 0;
    return api_fail(err, API_ERR_CONFLICT, "image '%s' exists in the cluster (member %s)", name,
                    json_string_value(json_object_get(def, "member")) ?: "?");
}

/* ---- the definition ------------------------------------------------------------ */

struct publish {
    char name[DB_NAME_MAX + 1];
    struct vmmd_daemon *d;
    uv_work_t work;
    int fd;
    char sha256[65];
    uint64_t size_bytes;
    int rc;
};

/* An import completed while etcd was out of reach: the next poll that finds the cluster
 * writable defines it (lost if the daemon stops before: it stays this member's own). */
static void publish_later(struct vmmd_daemon *d, const char *name)
{
    struct cluster_images *ci = state(d);

    if (ci)
        json_object_set_new(ci->unpublished, name, json_true());
}

static void published(void *arg, const struct etcd_reply *r)
{
    struct publish *p = arg;

    if (r->rc && r->rc != -ECANCELED)
        publish_later(p->d, p->name);
    if (r->rc == 0 && r->succeeded)
        log_info("image %s: defined in the cluster", p->name);
    else if (r->rc == 0)
        log_warn("image %s: the cluster defines another image of that name; this member's "
                 "copy stays its own",
                 p->name);
    else if (r->rc != -ECANCELED)
        log_warn("image %s: not defined in the cluster yet (%s); again once etcd answers", p->name,
                 r->error);
    free(p);
}

static void publish_put(struct publish *p)
{
    struct vmmd_daemon *d = p->d;
    char k[KEY_MAX], *text;
    json_t *def;
    struct timespec ts;

    if (!d->cluster || p->rc) {
        if (p->rc)
            log_warn("image %s: hashing its file: %s; not defined in the cluster", p->name,
                     strerror(-p->rc));
        free(p);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    def = json_pack("{s:s,s:s,s:I,s:s,s:I,s:s}", "name", p->name, "format", "raw", "size_bytes",
                    (json_int_t)p->size_bytes, "sha256", p->sha256, "created_ms",
                    (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, "member",
                    cluster_member_name(d->cluster));
    text = json_dumps(def, JSON_COMPACT);
    json_decref(def);
    cluster_key(d->cluster, k, sizeof(k), "images", p->name);
    /* Put if absent: two members importing one name at once, the first one wins. */
    if (!text ||
        etcd_txn(cluster_etcd(d->cluster), json_pack("[o]", etcd_cmp_absent(k)),
                 json_pack("[o]", etcd_op_put(k, text, 0)), json_array(), published, p) < 0) {
        log_warn("image %s: cannot define it in the cluster now; again once etcd answers", p->name);
        publish_later(d, p->name);
        free(p);
    }
    free(text);
}

/* A qcow2 import's digest is of the qcow2: the raw file is what members copy, so its own. */
static void hash_work(uv_work_t *w)
{
    struct publish *p = w->data;
    struct image_hash *h = image_hash_new();
    char buf[1 << 16];
    ssize_t n;

    if (!h) {
        p->rc = -ENOMEM;
    } else {
        while ((n = read(p->fd, buf, sizeof(buf))) > 0)
            image_hash_update(h, buf, (size_t)n);
        p->rc = n < 0 ? -errno : 0;
        image_hash_finish(h, p->sha256);
    }
    close(p->fd);
}

static void hash_done(uv_work_t *w, int status)
{
    struct publish *p = w->data;

    if (status)
        p->rc = -ECANCELED;
    publish_put(p);
}

void cluster_images_ready(struct vmmd_daemon *d, const struct db_image *img)
{
    struct api_error err;
    struct publish *p;
    uint64_t size;

    /* A copy of the cluster's (or a name someone else took meanwhile) is not defined again. */
    if (!d->cluster || definition(d, img->name) || !(p = calloc(1, sizeof(*p))))
        return;
    snprintf(p->name, sizeof(p->name), "%s", img->name);
    p->d = d;
    p->size_bytes = img->size_bytes;
    if (strcmp(img->format, "raw") == 0 && img->sha256[0]) {
        memcpy(p->sha256, img->sha256, sizeof(p->sha256));
        publish_put(p);
        return;
    }
    p->work.data = p;
    if (storage_image_open(d->storage, img->name, &p->fd, &size, &err) ||
        uv_queue_work(d->loop, &p->work, hash_work, hash_done)) {
        log_warn("image %s: cannot hash it for the cluster", img->name);
        free(p);
    }
}

/* ---- the view -------------------------------------------------------------------- */

/* The members that hold a ready copy of name, sorted: this one from its store, the others
 * from their heartbeats. */
static json_t *holders_of(struct vmmd_daemon *d, const char *name, bool here)
{
    return cluster_members_listing(d->cluster, "images", name, here);
}

/* A definition as an Image, for a member that holds no copy of it. */
static json_t *defined_view(const char *name, json_t *def)
{
    char source[DB_NAME_MAX + 16];
    time_t t = (time_t)(json_integer_value(json_object_get(def, "created_ms")) / 1000);
    json_int_t size = json_integer_value(json_object_get(def, "size_bytes"));
    const char *sha = json_string_value(json_object_get(def, "sha256"));
    struct tm tm;
    char when[40];

    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    snprintf(source, sizeof(source), SOURCE_PREFIX "%s",
             json_string_value(json_object_get(def, "member")) ?: "?");
    return json_pack("{s:s,s:n,s:s,s:s,s:I,s:i,s:I,s:s?,s:s,s:n,s:n,s:[],s:s}", "name", name,
                     "pool", "state", "ready", "format", "raw", "size_bytes", size,
                     "allocated_bytes", 0, "source_bytes", size, "sha256", sha, "source", source,
                     "progress", "error", "volumes", "created_at", when);
}

/*
 * Whether a ready local image of this name and source is a copy of the cluster's definition
 * def: one copied from a member, or the import that defined it. Another import of the name
 * here (it lost the race to define it) is this member's own and no copy to give anyone.
 */
static bool holds_copy(struct vmmd_daemon *d, const char *source, json_t *def)
{
    const char *definer = json_string_value(json_object_get(def, "member"));

    return !def || strncmp(source, SOURCE_PREFIX, strlen(SOURCE_PREFIX)) == 0 ||
           (definer && strcmp(definer, cluster_member_name(d->cluster)) == 0);
}

/* One image of the cluster's view: local (this member's JSON of it, stolen) or NULL. */
static json_t *cluster_view(struct vmmd_daemon *d, const char *name, json_t *def, json_t *local)
{
    bool here = local &&
                strcmp(json_string_value(json_object_get(local, "state")) ?: "", "ready") == 0 &&
                holds_copy(d, json_string_value(json_object_get(local, "source")) ?: "", def);
    json_t *o = local ? local : defined_view(name, def);

    if (def) {
        json_object_set_new(o, "members", holders_of(d, name, here));
        json_object_set(o, "member", json_object_get(def, "member"));
    }
    return o;
}

json_t *cluster_images_json(struct vmmd_daemon *d, const char *name, struct api_error *err)
{
    json_t *defs = cluster_objects(d->cluster, "images"), *local, *out, *item, *entry;
    const char *n;
    size_t i;

    if (name) {
        json_t *def = definition(d, name);
        struct api_error lerr;

        local = storage_images_json(d->storage, name, def ? &lerr : err);
        if (!def || (!local && lerr.kind != API_ERR_NOT_FOUND)) {
            if (!local && def)
                *err = lerr;
            return local;
        }
        if (!(out = cluster_view(d, name, def, local)))
            api_fail(err, API_ERR_INTERNAL, "out of memory");
        return out;
    }
    if (!(local = storage_images_json(d->storage, NULL, err)))
        return NULL;
    out = json_array();
    /* This member's images in their order (by name), each with the cluster's view... */
    json_array_foreach(local, i, item)
    {
        n = json_string_value(json_object_get(item, "name"));
        json_array_append_new(out, cluster_view(d, n, definition(d, n), json_incref(item)));
    }
    /* ...then the cluster's that it holds no copy of. */
    json_object_foreach(defs, n, entry)
    {
        bool have = false;

        json_array_foreach(local, i, item)
        {
            have |= strcmp(json_string_value(json_object_get(item, "name")), n) == 0;
        }
        if (!have && definition(d, n))
            json_array_append_new(out, cluster_view(d, n, definition(d, n), NULL));
    }
    json_decref(local);
    return out;
}

void cluster_images_not_here(struct vmmd_daemon *d, const char *name, struct api_error *err)
{
    json_t *def = d->cluster ? definition(d, name) : NULL, *holders;
    char list[256] = "";
    size_t i;
    json_t *m;

    if (!def)
        return;
    holders = holders_of(d, name, false);
    json_array_foreach(holders, i, m)
    {
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                 json_string_value(m));
    }
    json_decref(holders);
    api_fail(err, API_ERR_NOT_FOUND, "member %s holds no copy of image '%s'; %s%s",
             cluster_member_name(d->cluster), name, list[0] ? "members that do: " : "none does",
             list);
}

/* ---- deleting ---------------------------------------------------------------------- */

struct delete_req {
    struct http_request *req;
    struct vmmd_daemon *d;
    char name[DB_NAME_MAX + 1];
    json_int_t rev;
};

static void deleted(void *arg, const struct etcd_reply *r)
{
    struct delete_req *dr = arg;
    struct http_request *req = dr->req;
    struct cluster_images *ci = r->rc == 0 && dr->d->cluster ? state(dr->d) : NULL;

    if (ci)
        json_object_set_new(ci->deleted, dr->name, json_integer(dr->rev));
    free(dr);
    if (r->rc == 0)
        http_respond_empty(req, 204);
    else
        http_respond_error(req, API_ERR_UNAVAILABLE,
                           "the image's definition was not deleted from the cluster: %s",
                           r->error ? r->error : "etcd did not answer");
}

bool cluster_images_delete(struct vmmd_daemon *d, struct http_request *req, const char *name)
{
    struct api_error err;
    struct delete_req *dr;
    char k[KEY_MAX];

    if (!d->cluster || !definition(d, name))
        return false;
    if (!(dr = calloc(1, sizeof(*dr)))) {
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        return true;
    }
    dr->req = req;
    dr->d = d;
    snprintf(dr->name, sizeof(dr->name), "%s", name);
    dr->rev = json_integer_value(
        json_object_get(json_object_get(cluster_objects(d->cluster, "images"), name), "rev"));
    /* This member's copy first: one with volumes is refused (409) as stand-alone. */
    if (storage_image_delete(d->storage, name, &err) && err.kind != API_ERR_NOT_FOUND) {
        free(dr);
        http_respond_problem(req, &err);
        return true;
    }
    cluster_key(d->cluster, k, sizeof(k), "images", name);
    if (etcd_delete(cluster_etcd(d->cluster), k, false, deleted, dr) < 0) {
        free(dr);
        http_respond_error(req, API_ERR_UNAVAILABLE, "cannot reach etcd to delete image '%s'",
                           name);
    } else
        http_suspend(req);
    return true;
}

void cluster_images_poll(struct vmmd_daemon *d)
{
    struct cluster_images *ci = state(d);
    json_t *defs = d->cluster ? cluster_objects(d->cluster, "images") : NULL, *v, *todo;
    struct db_image *img = NULL;
    struct api_error err;
    const char *name, *why;
    void *tmp;
    size_t n = 0;

    /* The polls while joining come before d->cluster is set: nothing is served yet. */
    if (!ci || !d->cluster)
        return;
    /* A copy goes with its definition: one that held the definition's bytes at the last look
     * (the defining import, or a copy), or one copied from another member (its source says
     * so); never an import of this member's own that is not defined yet, nor one that lost
     * its name to another member's import (other bytes). */
    if (db_image_list(d->db, &img, &n) == 0)
        for (size_t i = 0; i < n; i++) {
            if (strcmp(img[i].state, "ready") || json_object_get(defs, img[i].name) ||
                (!json_is_true(json_object_get(ci->defined, img[i].name)) &&
                 strncmp(img[i].source, SOURCE_PREFIX, strlen(SOURCE_PREFIX))))
                continue;
            if (storage_image_delete(d->storage, img[i].name, &err) == 0) {
                log_info("image %s: deleted in the cluster, so its copy here goes", img[i].name);
                json_object_del(ci->kept, img[i].name);
            } else if (!json_object_get(ci->kept, img[i].name)) {
                log_warn("image %s: deleted in the cluster, but the copy here stays: %s",
                         img[i].name, err.detail);
                json_object_set_new(ci->kept, img[i].name, json_true());
            }
        }
    json_object_clear(ci->defined);
    json_object_foreach(defs, name, v) json_object_set_new(ci->defined, name, json_false());
    for (size_t i = 0; i < n; i++)
        if (json_object_get(defs, img[i].name) && !strcmp(img[i].state, "ready") &&
            holds_copy(d, img[i].source, definition(d, img[i].name)))
            json_object_set_new(ci->defined, img[i].name, json_true());
    free(img);
    /* A deletion this member made is hidden until the polls stop showing that revision. */
    json_object_foreach_safe(ci->deleted, tmp, name, v)
    {
        json_t *now = json_object_get(json_object_get(defs, name), "rev");

        if (json_integer_value(v) != json_integer_value(now))
            json_object_del(ci->deleted, name);
    }
    if (cluster_read_only(d->cluster, &why) || !json_object_size(ci->unpublished))
        return;
    /* Taken off the list as a whole: a failure puts a name back for the next poll. */
    todo = ci->unpublished;
    ci->unpublished = json_object();
    json_object_foreach(todo, name, v)
    {
        struct db_image one;

        if (db_image_get(d->db, name, &one) == 0 && strcmp(one.state, "ready") == 0)
            cluster_images_ready(d, &one); /* nothing if the name is defined meanwhile */
    }
    json_decref(todo);
}

json_t *cluster_images_held(struct vmmd_daemon *d)
{
    json_t *out = json_array();
    struct db_image *img = NULL;
    size_t n = 0;

    /* While joining d->cluster is not set yet: nothing to compare with. */
    if (d->cluster && db_image_list(d->db, &img, &n) == 0)
        for (size_t i = 0; i < n; i++)
            if (strcmp(img[i].state, "ready") == 0 &&
                holds_copy(d, img[i].source, definition(d, img[i].name)))
                json_array_append_new(out, json_string(img[i].name));
    free(img);
    return out;
}

/* ---- realising: a copy from another member ----------------------------------------- */

static size_t fetch_write(char *data, size_t size, size_t nmemb, void *userp)
{
    struct fetch *f = userp;
    size_t len = size * nmemb;

    /* More than the definition says is not the image: stop before it fills the pool. */
    if (f->got + len > f->size) {
        f->too_long = true;
        return 0;
    }
    if (image_write_sparse(f->fd, data, len, (off_t)f->got) < 0) {
        f->write_failed = true;
        snprintf(f->error, sizeof(f->error), "writing the copy: %s", strerror(errno));
        return 0;
    }
    image_hash_update(f->hash, data, len);
    f->got += len;
    return len;
}

static int fetch_check_stop(void *userp, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    struct fetch *f = userp;

    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&f->ci->stopping) ? 1 : 0;
}

static void fetch_work(uv_work_t *w)
{
    struct fetch *f = w->data;
    struct curl_slist *h = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *c = cluster_peer_easy(&f->peer, &h, errbuf);
    CURLcode rc;

    if (!c) {
        snprintf(f->error, sizeof(f->error), "out of memory");
        return;
    }
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)STALL_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, fetch_check_stop);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, f);
    rc = curl_easy_perform(c);
    if (rc != CURLE_OK && !f->too_long && !f->write_failed)
        snprintf(f->error, sizeof(f->error), "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    /* The file gets its full length at the end: trailing zeros stay a hole. */
    if (rc == CURLE_OK && (ftruncate(f->fd, (off_t)f->got) < 0 || fsync(f->fd) < 0))
        snprintf(f->error, sizeof(f->error), "writing the copy: %s", strerror(errno));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    image_hash_finish(f->hash, f->got_sha256);
    f->hash = NULL;
}

static void fetch_free(struct fetch *f)
{
    for (struct fetch **p = &f->ci->fetches; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    for (struct waiter *w = f->waiters, *next; w; w = next) {
        next = w->next;
        free(w);
    }
    if (f->fd >= 0)
        close(f->fd);
    image_hash_free(f->hash);
    json_decref(f->holders);
    cluster_peer_clear(&f->peer);
    free(f);
}

/* Every waiting volume request gets err. */
static void fetch_fail(struct fetch *f, const struct api_error *err)
{
    for (struct waiter *w = f->waiters; w; w = w->next)
        w->done(w->ctx, (unsigned)api_error_status(err->kind), NULL, err);
    fetch_free(f);
}

/* The image is here: each waiting request makes its volume. */
static void fetch_succeeded(struct vmmd_daemon *d, struct fetch *f)
{
    struct api_error err;

    for (struct waiter *w = f->waiters; w; w = w->next)
        if (storage_volume_create(d->storage, &w->def, w->done, w->ctx, &err))
            w->done(w->ctx, (unsigned)api_error_status(err.kind), NULL, &err);
    fetch_free(f);
}

static void fetch_done(uv_work_t *w, int status);

/* Starts the copy from the next holder; false when none is left (f->why says what failed). */
static bool fetch_next(struct vmmd_daemon *d, struct fetch *f)
{
    struct api_error err;
    char path[DB_NAME_MAX + 64];
    int rc;

    snprintf(path, sizeof(path), "/v1/images/%s/content", f->name);
    while (f->tried < json_array_size(f->holders)) {
        const char *m = json_string_value(json_array_get(f->holders, f->tried++));

        cluster_peer_clear(&f->peer);
        if ((rc = cluster_peer_init(d->cluster, m, path, &f->peer)) == -EHOSTUNREACH) {
            snprintf(f->why + strlen(f->why), sizeof(f->why) - strlen(f->why),
                     "%s%s: offline or without an address", f->why[0] ? "; " : "", m);
            continue;
        }
        if (rc)
            return false;
        snprintf(f->from, sizeof(f->from), "%s", m);
        if (f->fd >= 0) {
            close(f->fd);
            unlink(f->part);
        }
        f->fd = -1;
        f->got = 0;
        f->too_long = f->write_failed = false;
        f->error[0] = 0;
        image_hash_free(f->hash);
        if (!(f->hash = image_hash_new()))
            return false;
        if (storage_image_part_open(d->storage, f->name, f->size, f->part, &f->fd, &err)) {
            f->why_kind = err.kind;
            snprintf(f->why + strlen(f->why), sizeof(f->why) - strlen(f->why), "%s%s",
                     f->why[0] ? "; " : "", err.detail);
            return false;
        }
        if (uv_queue_work(d->loop, &f->work, fetch_work, fetch_done))
            return false;
        log_info("image %s: copying %llu bytes from member %s", f->name,
                 (unsigned long long)f->size, m);
        return true;
    }
    return false;
}

static void fetch_done(uv_work_t *w, int status)
{
    struct fetch *f = w->data;
    struct vmmd_daemon *d = f->d;
    struct api_error err = {0};
    char source[DB_NAME_MAX + 16];
    uint64_t ms = now_ms() - f->start_ms;

    close(f->fd);
    f->fd = -1;
    if (status == UV_ECANCELED || !d->cluster) {
        unlink(f->part);
        api_fail(&err, API_ERR_UNAVAILABLE, "vmmd is stopping: image '%s' was not copied here",
                 f->name);
        fetch_fail(f, &err);
        return;
    }
    if (f->too_long || (!f->error[0] && f->got != f->size)) {
        unlink(f->part);
        api_fail(&err, API_ERR_BAD_GATEWAY,
                 "the copy of image '%s' from member %s has %s%llu bytes, the cluster's "
                 "definition %llu; nothing was kept",
                 f->name, f->from, f->too_long ? "more than " : "", (unsigned long long)f->got,
                 (unsigned long long)f->size);
        fetch_fail(f, &err);
        return;
    }
    if (!f->error[0] && strcmp(f->got_sha256, f->sha256) != 0) {
        unlink(f->part);
        api_fail(&err, API_ERR_BAD_GATEWAY,
                 "the copy of image '%s' from member %s has sha256 %s, the cluster's definition "
                 "%s; nothing was kept",
                 f->name, f->from, f->got_sha256, f->sha256);
        fetch_fail(f, &err);
        return;
    }
    if (f->error[0]) {
        unlink(f->part);
        log_warn("image %s: copying it from member %s: %s", f->name, f->from, f->error);
        snprintf(f->why + strlen(f->why), sizeof(f->why) - strlen(f->why), "%s%s: %s",
                 f->why[0] ? "; " : "", f->from, f->error);
        if (fetch_next(d, f))
            return;
        api_fail(&err, f->why_kind, "image '%s' could not be copied here: %s; nothing was kept",
                 f->name, f->why);
        fetch_fail(f, &err);
        return;
    }
    snprintf(source, sizeof(source), SOURCE_PREFIX "%s", f->from);
    if (storage_image_adopt(d->storage, f->name, f->part, f->size, f->got_sha256, source, &err)) {
        fetch_fail(f, &err);
        return;
    }
    log_info("image %s: copied from member %s (%llu bytes in %llu ms)", f->name, f->from,
             (unsigned long long)f->size, (unsigned long long)ms);
    vmmd_event(d, "image.realised", "",
               json_pack("{s:s,s:s,s:s,s:I,s:I}", "image", f->name, "member",
                   cluster_member_name(d->cluster), "from", f->from, "bytes", (json_int_t)f->size,
                   "ms", (json_int_t)ms));
    fetch_succeeded(d, f);
}

/* Who to copy name from: the member that defined it first (it has it unless it deleted its
 * copy), then the other holders. */
static json_t *sources_of(struct vmmd_daemon *d, const char *name, json_t *def)
{
    json_t *all = holders_of(d, name, false), *out = json_array(), *v;
    const char *first = json_string_value(json_object_get(def, "member"));
    size_t i;

    if (first && cluster_names_have(all, first))
        json_array_append_new(out, json_string(first));
    json_array_foreach(all, i, v)
    {
        if (!first || strcmp(json_string_value(v), first) != 0)
            json_array_append(out, v);
    }
    json_decref(all);
    return out;
}

int cluster_images_volume_create(struct vmmd_daemon *d, const struct api_volume_def *def,
                                 storage_done_fn done, void *ctx, struct api_error *err)
{
    struct cluster_images *ci;
    struct db_image img;
    struct db_volume vol;
    struct waiter *w;
    struct fetch *f;
    json_t *idef;
    const char *sha;
    json_int_t size;

    if (!d->cluster || !def->image[0] || db_image_get(d->db, def->image, &img) != -ENOENT ||
        !(idef = definition(d, def->image)))
        return storage_volume_create(d->storage, def, done, ctx, err);
    /* Refused before a byte is copied for it. */
    if (db_volume_get(d->db, def->name, &vol) == 0)
        return api_fail(err, API_ERR_CONFLICT, "name: a volume named '%s' exists", def->name);
    if (!(ci = state(d)) || !(w = calloc(1, sizeof(*w))))
        return api_fail(err, API_ERR_INTERNAL, "out of memory");
    w->def = *def;
    w->done = done;
    w->ctx = ctx;
    for (f = ci->fetches; f && strcmp(f->name, def->image) != 0; f = f->next)
        ;
    if (f) { /* already coming: this request waits for the same copy */
        w->next = f->waiters;
        f->waiters = w;
        return 0;
    }
    sha = json_string_value(json_object_get(idef, "sha256"));
    size = json_integer_value(json_object_get(idef, "size_bytes"));
    if (!sha || strlen(sha) != 64 || size <= 0) {
        free(w);
        return api_fail(err, API_ERR_BAD_GATEWAY,
                        "image: the cluster's definition of '%s' has no valid size or sha256",
                        def->image);
    }
    if (!(f = calloc(1, sizeof(*f)))) {
        free(w);
        return api_fail(err, API_ERR_INTERNAL, "out of memory");
    }
    f->ci = ci;
    f->d = d;
    f->work.data = f;
    f->fd = -1;
    f->waiters = w;
    f->why_kind = API_ERR_BAD_GATEWAY;
    f->start_ms = now_ms();
    f->size = (uint64_t)size;
    snprintf(f->name, sizeof(f->name), "%s", def->image);
    snprintf(f->sha256, sizeof(f->sha256), "%s", sha);
    f->holders = sources_of(d, def->image, idef);
    f->next = ci->fetches;
    ci->fetches = f;
    if (!json_array_size(f->holders)) {
        api_fail(err, API_ERR_UNAVAILABLE,
                 "image: '%s' is defined in the cluster (member %s) but no online member holds "
                 "a copy",
                 def->image, json_string_value(json_object_get(idef, "member")) ?: "?");
        f->waiters = NULL;
        free(w);
        fetch_free(f);
        return -1;
    }
    if (!fetch_next(d, f)) {
        api_fail(err, f->why_kind, "image: '%s' could not be copied here: %s", def->image,
                 f->why[0] ? f->why : "out of memory");
        f->waiters = NULL;
        free(w);
        fetch_free(f);
        return -1;
    }
    return 0;
}
