/* Storage pools, images and volumes (see storage.h). */
#include "storage.h"
#include "cluster_images.h"
#include "daemon.h"
#include "file_clone.h"
#include "image_import.h"
#include "lifecycle.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MIB                  (1ull << 20)
#define MAX_POOLS            (VMMD_OPT_LIST_MAX + 2)
#define PROGRESS_INTERVAL_MS 250 /* at most four progress events a second per import */
#define DEFAULT_IMAGE_POOL   "images"
#define DEFAULT_VOLUME_POOL  "volumes"

struct pool {
    char name[DB_NAME_MAX + 1];
    char *dir; /* canonical */
    bool reflink;
};

enum job_kind { JOB_IMPORT, JOB_VOLUME };

struct job {
    struct job *next;
    struct storage *s;
    uv_work_t work;
    enum job_kind kind;
    char name[DB_NAME_MAX + 1];
    const struct pool *pool;
    char final[PATH_MAX];
    uint64_t last_reported;
    /* JOB_IMPORT */
    struct image_job ij;
    bool src_is_part; /* an upload's file, removed once converted */
    /* JOB_VOLUME */
    struct db_volume vol;
    char src[PATH_MAX]; /* the image, "" for an empty volume */
    int dst_fd;
    enum file_clone_kind clone;
    int rc;
    storage_done_fn done;
    void *ctx;
};

struct storage_upload {
    struct storage_upload *next;
    struct storage *s;
    char name[DB_NAME_MAX + 1];
    const struct pool *pool;
    enum api_image_format format;
    int fd;
    char part[PATH_MAX];
    struct image_hash *hash;
    uint64_t expected, got, last_reported;
};

struct storage {
    struct vmmd_daemon *d;
    struct pool pools[MAX_POOLS];
    size_t n_pools;
    char *import_dirs[2 * VMMD_OPT_LIST_MAX];
    char *pool_dirs[MAX_POOLS];
    struct api_limits import_limits, pool_limits;
    struct job *jobs;
    struct storage_upload *uploads;
    uv_timer_t progress;
    uint64_t import_bytes_total;
};

/* ---- helpers ------------------------------------------------------------ */

static void committed(struct storage *s, int64_t ev)
{
    if (ev)
        vmmd_event_committed(s->d, ev);
}

static const struct pool *pool_find(struct storage *s, const char *name)
{
    for (size_t i = 0; i < s->n_pools; i++)
        if (strcmp(s->pools[i].name, name) == 0)
            return &s->pools[i];
    return NULL;
}

/* The pool a request names, or its default; 422 listing the pools when there is none. */
static const struct pool *pool_pick(struct storage *s, const char *name, const char *dflt,
                                    struct api_error *err)
{
    const struct pool *p = pool_find(s, name && name[0] ? name : dflt);
    char names[512] = "";

    if (p)
        return p;
    for (size_t i = 0; i < s->n_pools; i++)
        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "",
                 s->pools[i].name);
    api_fail(err, API_ERR_UNPROCESSABLE, "pool: no pool named '%s' (pools: %s)", name, names);
    return NULL;
}

static void file_path(char out[PATH_MAX], const struct pool *p, const char *name, const char *ext)
{
    snprintf(out, PATH_MAX, "%s/%s.%s", p->dir, name, ext);
}

/* A file being written: hidden, and never mistaken for a finished one. */
static void part_path(char out[PATH_MAX], const struct pool *p, const char *name, const char *ext)
{
    snprintf(out, PATH_MAX, "%s/.%s.%s.part", p->dir, name, ext);
}

static uint64_t pool_free_bytes(const struct pool *p)
{
    struct statvfs st;

    return statvfs(p->dir, &st) < 0 ? 0 : (uint64_t)st.f_bavail * st.f_frsize;
}

static uint64_t path_allocated_bytes(const char *path)
{
    struct stat st;

    return stat(path, &st) < 0 ? 0 : (uint64_t)st.st_blocks * 512;
}

static int no_room(struct api_error *err, const struct pool *p, uint64_t need)
{
    return api_fail(err, API_ERR_INSUFFICIENT_STORAGE,
                    "pool '%s' has %llu bytes free, %llu are needed", p->name,
                    (unsigned long long)pool_free_bytes(p), (unsigned long long)need);
}

static int store_failed(struct storage *s, struct api_error *err, int rc, const char *what)
{
    return api_fail(err, rc == -ENOSPC ? API_ERR_INSUFFICIENT_STORAGE : API_ERR_UNAVAILABLE,
                    "%s: the state store failed (%s: %s); nothing was changed", what, strerror(-rc),
                    db_last_error(s->d->db));
}

static struct job *job_of(struct storage *s, enum job_kind kind, const char *name)
{
    for (struct job *j = s->jobs; j; j = j->next)
        if (j->kind == kind && strcmp(j->name, name) == 0)
            return j;
    return NULL;
}

static struct storage_upload *upload_of(struct storage *s, const char *name)
{
    for (struct storage_upload *u = s->uploads; u; u = u->next)
        if (strcmp(u->name, name) == 0)
            return u;
    return NULL;
}

static void unlink_job(struct storage *s, struct job *job)
{
    for (struct job **p = &s->jobs; *p; p = &(*p)->next)
        if (*p == job) {
            *p = job->next;
            return;
        }
}

/* ---- JSON --------------------------------------------------------------- */

/* The names of the volumes (vols, n of them) cloned from image, as a JSON array. */
static json_t *volumes_of(const struct db_volume *vols, size_t n, const char *image)
{
    json_t *names = json_array();

    for (size_t i = 0; i < n; i++)
        if (strcmp(vols[i].image, image) == 0)
            json_array_append_new(names, json_string(vols[i].name));
    return names;
}

/* An image with what only the daemon knows: its file's size, progress, volumes (of vols). */
static json_t *image_json(struct storage *s, const struct db_image *img,
                          const struct db_volume *vols, size_t nvols)
{
    const struct pool *p = pool_find(s, img->pool);
    struct storage_upload *u = upload_of(s, img->name);
    struct job *j = job_of(s, JOB_IMPORT, img->name);
    json_t *progress = json_null();
    char path[PATH_MAX] = "";

    if (p)
        file_path(path, p, img->name, "img");
    if (strcmp(img->state, "importing") == 0 && (u || j))
        progress = json_pack("{s:I,s:I}", "done_bytes",
                             (json_int_t)(u ? u->got : atomic_load(&j->ij.done)), "total_bytes",
                             (json_int_t)(u ? u->expected : atomic_load(&j->ij.total)));
    return json_pack(
        "{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:s?,s:s,s:o,s:s?,s:o,s:o}", "name", img->name, "pool",
        img->pool, "state", img->state, "format", img->format, "size_bytes",
        (json_int_t)img->size_bytes, "allocated_bytes",
        (json_int_t)(path[0] && strcmp(img->state, "ready") == 0 ? path_allocated_bytes(path) : 0),
        "source_bytes", (json_int_t)img->source_bytes, "sha256",
        img->sha256[0] ? img->sha256 : NULL, "source", img->source, "progress", progress, "error",
        img->error[0] ? img->error : NULL, "volumes", volumes_of(vols, nvols, img->name),
        "created_at", api_timestamp_json(img->created_at));
}

/* One image by name, with the volumes cloned from it; NULL (err) when the store cannot say. */
static json_t *image_json_named(struct storage *s, const char *name, struct api_error *err)
{
    struct db_image img;
    struct db_volume *vols = NULL;
    size_t n = 0;
    json_t *o = NULL;
    int rc = db_image_get(s->d->db, name, &img);

    if (rc == -ENOENT)
        api_fail(err, API_ERR_NOT_FOUND, "no image named '%s'", name);
    else if (rc || (rc = db_volume_list(s->d->db, &vols, &n)))
        store_failed(s, err, rc, "reading the image");
    else
        o = image_json(s, &img, vols, n);
    free(vols);
    return o;
}

static json_t *volume_json(struct storage *s, const struct db_volume *v)
{
    const struct pool *p = pool_find(s, v->pool);
    json_t *vms = json_array();
    struct db_vm_ref *users = NULL;
    size_t n = 0;
    char path[PATH_MAX] = "";

    if (p)
        file_path(path, p, v->name, "vol");
    if (db_volume_users(s->d->db, v->name, &users, &n) == 0)
        for (size_t i = 0; i < n; i++)
            json_array_append_new(vms,
                                  json_pack("{s:s,s:s}", "id", users[i].id, "name", users[i].name));
    free(users);
    return json_pack("{s:s,s:s,s:I,s:I,s:s?,s:s,s:b,s:o,s:o}", "name", v->name, "pool", v->pool,
                     "size_mib", (json_int_t)v->size_mib, "allocated_bytes",
                     (json_int_t)(path[0] ? path_allocated_bytes(path) : 0), "image",
                     v->image[0] ? v->image : NULL, "clone", v->clone, "readonly", v->readonly,
                     "vms", vms, "created_at", api_timestamp_json(v->created_at));
}

json_t *storage_images_json(struct storage *s, const char *name, struct api_error *err)
{
    struct db_image *all = NULL;
    struct db_volume *vols = NULL;
    size_t n = 0, nvols = 0;
    json_t *arr = NULL;
    int rc;

    if (name)
        return image_json_named(s, name, err);
    /* The volumes once for the whole list, not once per image. */
    if ((rc = db_image_list(s->d->db, &all, &n)) ||
        (rc = db_volume_list(s->d->db, &vols, &nvols))) {
        store_failed(s, err, rc, "listing the images");
    } else {
        arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, image_json(s, &all[i], vols, nvols));
    }
    free(all);
    free(vols);
    return arr;
}

json_t *storage_volumes_json(struct storage *s, const char *name, struct api_error *err)
{
    struct db_volume one, *all = NULL;
    size_t n = 0;
    json_t *arr;
    int rc;

    if (name) {
        rc = db_volume_get(s->d->db, name, &one);
        if (rc == -ENOENT)
            api_fail(err, API_ERR_NOT_FOUND, "no volume named '%s'", name);
        else if (rc)
            store_failed(s, err, rc, "reading the volume");
        return rc ? NULL : volume_json(s, &one);
    }
    if ((rc = db_volume_list(s->d->db, &all, &n))) {
        store_failed(s, err, rc, "listing the volumes");
        return NULL;
    }
    arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, volume_json(s, &all[i]));
    free(all);
    return arr;
}

struct pool_usage {
    uint64_t used; /* bytes its images' and volumes' files take on disk */
    size_t images, volumes;
};

/* Every pool's usage (u[i] for s->pools[i]), from one read of the images and volumes. */
static void pools_usage(struct storage *s, struct pool_usage u[MAX_POOLS])
{
    struct db_image *img = NULL;
    struct db_volume *vol = NULL;
    size_t ni = 0, nv = 0;
    char path[PATH_MAX];

    memset(u, 0, MAX_POOLS * sizeof(*u));
    if (db_image_list(s->d->db, &img, &ni))
        ni = 0;
    if (db_volume_list(s->d->db, &vol, &nv))
        nv = 0;
    for (size_t k = 0; k < s->n_pools; k++) {
        const struct pool *p = &s->pools[k];

        for (size_t i = 0; i < ni; i++)
            if (strcmp(img[i].pool, p->name) == 0) {
                file_path(path, p, img[i].name, "img");
                u[k].used += path_allocated_bytes(path);
                u[k].images++;
            }
        for (size_t i = 0; i < nv; i++)
            if (strcmp(vol[i].pool, p->name) == 0) {
                file_path(path, p, vol[i].name, "vol");
                u[k].used += path_allocated_bytes(path);
                u[k].volumes++;
            }
    }
    free(img);
    free(vol);
}

json_t *storage_pools_json(struct storage *s)
{
    json_t *pools = json_array(), *dirs = json_array();
    struct pool_usage u[MAX_POOLS];

    pools_usage(s, u);
    for (size_t i = 0; i < s->n_pools; i++) {
        const struct pool *p = &s->pools[i];
        struct statvfs st;
        uint64_t size = 0;

        if (statvfs(p->dir, &st) == 0)
            size = (uint64_t)st.f_blocks * st.f_frsize;
        json_array_append_new(pools, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:b}", "name", p->name,
                                               "path", p->dir, "size_bytes", (json_int_t)size,
                                               "free_bytes", (json_int_t)pool_free_bytes(p),
                                               "used_bytes", (json_int_t)u[i].used, "images",
                                               (json_int_t)u[i].images, "volumes",
                                               (json_int_t)u[i].volumes, "reflink", p->reflink));
    }
    for (size_t i = 0; i < s->import_limits.n_image_dirs; i++)
        json_array_append_new(dirs, json_string(s->import_limits.image_dirs[i]));
    return json_pack("{s:o,s:o}", "pools", pools, "import_dirs", dirs);
}

/* ---- progress ------------------------------------------------------------ */

static void report_progress(struct storage *s, const char *name, uint64_t done, uint64_t total,
                            uint64_t *last)
{
    json_t *data;
    char *text;
    int64_t ev = 0;

    if (done == *last)
        return;
    s->import_bytes_total += done - (*last < done ? *last : done);
    *last = done;
    data = json_pack("{s:s,s:I,s:I}", "name", name, "done_bytes", (json_int_t)done, "total_bytes",
                     (json_int_t)total);
    text = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    /* Progress is advice: a store that cannot take it now loses one report, not the import. */
    if (text && db_event_insert(s->d->db, "image.import_progress", NULL, text, &ev) == 0)
        committed(s, ev);
    free(text);
}

static void on_progress(uv_timer_t *t)
{
    struct storage *s = t->data;

    for (struct job *j = s->jobs; j; j = j->next)
        if (j->kind == JOB_IMPORT)
            report_progress(s, j->name, atomic_load(&j->ij.done), atomic_load(&j->ij.total),
                            &j->last_reported);
    for (struct storage_upload *u = s->uploads; u; u = u->next)
        report_progress(s, u->name, u->got, u->expected, &u->last_reported);
}

/* ---- imports -------------------------------------------------------------- */

static void import_work(uv_work_t *w)
{
    struct job *job = w->data;

    image_job_run(&job->ij);
}

static void image_finish(struct storage *s, struct db_image *img, const char *event)
{
    int64_t ev = 0;
    int rc = db_image_update(s->d->db, img, event, &ev);

    if (rc)
        log_error("image %s: recording that it is %s: %s", img->name, img->state,
                  db_last_error(s->d->db));
    committed(s, ev);
    if (!rc && event && strcmp(event, "image.ready") == 0)
        cluster_images_ready(s->d, img); /* defined in the cluster (nothing stand-alone) */
}

static void import_done(uv_work_t *w, int status)
{
    struct job *job = w->data;
    struct storage *s = job->s;
    struct db_image img;

    unlink_job(s, job);
    if (job->src_is_part)
        unlink(job->ij.src);
    if (status == UV_ECANCELED && !job->ij.rc) {
        job->ij.rc = -ECANCELED;
        snprintf(job->ij.error, sizeof(job->ij.error), "the daemon stopped during the import");
    }
    /* qemu-img made its file with the umask's mode: pool files are the daemon's alone. */
    if (!job->ij.rc && (chmod(job->ij.dst, 0600) < 0 || rename(job->ij.dst, job->final) < 0)) {
        job->ij.rc = -errno;
        snprintf(job->ij.error, sizeof(job->ij.error), "renaming into place: %s", strerror(errno));
        unlink(job->ij.dst);
    }
    report_progress(s, job->name, atomic_load(&job->ij.done), atomic_load(&job->ij.total),
                    &job->last_reported);
    if (db_image_get(s->d->db, job->name, &img) == 0) {
        if (job->ij.rc) {
            snprintf(img.state, sizeof(img.state), "failed");
            snprintf(img.error, sizeof(img.error), "%s", job->ij.error);
            log_warn("image %s: import failed: %s", job->name, job->ij.error);
        } else {
            snprintf(img.state, sizeof(img.state), "ready");
            img.size_bytes = job->ij.size_bytes;
            if (job->ij.sha256[0]) {
                memcpy(img.sha256, job->ij.sha256, sizeof(img.sha256));
                img.source_bytes = job->ij.source_bytes;
            }
            log_info("image %s: imported (%llu bytes)", job->name,
                     (unsigned long long)img.size_bytes);
        }
        image_finish(s, &img, job->ij.rc ? "image.failed" : "image.ready");
    }
    free(job);
}

static struct job *job_new(struct storage *s, enum job_kind kind, const char *name,
                           const struct pool *p)
{
    struct job *job = calloc(1, sizeof(*job));

    if (!job)
        return NULL;
    job->s = s;
    job->kind = kind;
    job->pool = p;
    job->dst_fd = -1;
    job->work.data = job;
    snprintf(job->name, sizeof(job->name), "%s", name);
    return job;
}

/* Starts the conversion or copy of src into the pool's image file for img (already recorded). */
static int start_import(struct storage *s, const struct pool *p, const char *name, int src_fd,
                        const char *src, enum api_image_format format, uint64_t virtual_size,
                        bool hashed, uint64_t src_size, struct api_error *err)
{
    struct job *job = job_new(s, JOB_IMPORT, name, p);

    if (!job) {
        close(src_fd);
        return api_fail(err, API_ERR_INTERNAL, "out of memory");
    }
    job->ij.src_fd = src_fd;
    snprintf(job->ij.src, sizeof(job->ij.src), "%s", src);
    part_path(job->ij.dst, p, name, format == API_IMAGE_QCOW2 ? "raw" : "img");
    file_path(job->final, p, name, "img");
    job->ij.format = format;
    job->ij.hash_source = !hashed;
    job->ij.virtual_size = virtual_size;
    job->src_is_part = hashed; /* only an upload arrives hashed */
    atomic_store(&job->ij.total,
                 (hashed ? 0 : src_size) + (format == API_IMAGE_QCOW2 ? virtual_size : 0));
    if (uv_queue_work(s->d->loop, &job->work, import_work, import_done)) {
        close(src_fd);
        free(job);
        return api_fail(err, API_ERR_INTERNAL, "cannot start the import");
    }
    job->next = s->jobs;
    s->jobs = job;
    return 0;
}

/* A name no image has and no upload or import is using; 409 otherwise. */
static int image_name_free(struct storage *s, const char *name, struct api_error *err)
{
    struct db_image img;
    int rc = db_image_get(s->d->db, name, &img);

    if (rc == 0)
        return api_fail(err, API_ERR_CONFLICT, "name: an image named '%s' exists (%s)", name,
                        img.state);
    if (rc != -ENOENT)
        return store_failed(s, err, rc, "reading the images");
    return 0;
}

static int record_image(struct storage *s, const struct pool *p, const char *name,
                        enum api_image_format format, const char *source, struct api_error *err)
{
    struct db_image img = {0};
    int64_t ev = 0;
    int rc;

    snprintf(img.name, sizeof(img.name), "%s", name);
    snprintf(img.pool, sizeof(img.pool), "%s", p->name);
    snprintf(img.state, sizeof(img.state), "importing");
    snprintf(img.format, sizeof(img.format), "%s", api_image_format_name(format));
    snprintf(img.source, sizeof(img.source), "%s", source);
    rc = db_image_insert(s->d->db, &img, &ev);
    if (rc == -EEXIST)
        return api_fail(err, API_ERR_CONFLICT, "name: an image named '%s' exists", name);
    if (rc)
        return store_failed(s, err, rc, "recording the image");
    committed(s, ev);
    return 0;
}

static void forget_image(struct storage *s, const char *name)
{
    int64_t ev = 0;

    if (db_image_delete(s->d->db, name, &ev) == 0)
        committed(s, ev);
}

static int probe_qcow2(int fd, uint64_t *virtual_size, struct api_error *err)
{
    char why[300];
    int rc = image_qcow2_probe(fd, virtual_size, why, sizeof(why));

    if (rc)
        return api_fail(err, rc == -ENOENT ? API_ERR_UNAVAILABLE : API_ERR_UNPROCESSABLE, "%s",
                        why);
    return 0;
}

int storage_image_import(struct storage *s, const struct api_image_def *def, json_t **out,
                         struct api_error *err)
{
    const struct pool *p = pool_pick(s, def->pool, DEFAULT_IMAGE_POOL, err);
    enum api_image_format format = def->format;
    uint64_t virtual_size = 0;
    struct stat st;
    int fd;

    if (!p || image_name_free(s, def->name, err))
        return -1;
    /* Opened beneath an import directory with no symlink on the way: the file checked is
     * the file read, by the daemon and by qemu-img, which gets the descriptor. */
    if (api_open_beneath("path", def->path, &s->import_limits, false, false, &fd, err))
        return -1;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return api_fail(err, API_ERR_UNPROCESSABLE, "path: %s: %s", def->path, strerror(errno));
    }
    if (format == API_IMAGE_AUTO)
        format = image_detect_format(fd);
    if (format == API_IMAGE_QCOW2 && probe_qcow2(fd, &virtual_size, err)) {
        close(fd);
        return -1;
    }
    /* Data takes at most what it takes in the source; holes stay holes. */
    if ((uint64_t)st.st_blocks * 512 > pool_free_bytes(p)) {
        close(fd);
        return no_room(err, p, (uint64_t)st.st_blocks * 512);
    }
    if (record_image(s, p, def->name, format, def->path, err)) {
        close(fd);
        return -1;
    }
    if (start_import(s, p, def->name, fd, def->path, format, virtual_size, false,
                     (uint64_t)st.st_size, err)) {
        forget_image(s, def->name);
        return -1;
    }
    log_info("image %s: importing %s (%s) into pool %s", def->name, def->path,
             api_image_format_name(format), p->name);
    *out = image_json_named(s, def->name, err);
    return 0;
}

int storage_image_delete(struct storage *s, const char *name, struct api_error *err)
{
    struct db_image img;
    struct db_volume *v = NULL;
    const struct pool *p;
    char users[512] = "", path[PATH_MAX];
    json_t *names, *item;
    size_t n = 0, i;
    int64_t ev = 0;
    int rc = db_image_get(s->d->db, name, &img);

    if (rc == -ENOENT)
        return api_fail(err, API_ERR_NOT_FOUND, "no image named '%s'", name);
    if (rc)
        return store_failed(s, err, rc, "reading the image");
    if (strcmp(img.state, "importing") == 0)
        return api_fail(err, API_ERR_CONFLICT, "image '%s' is still importing", name);
    if ((rc = db_volume_list(s->d->db, &v, &n)))
        return store_failed(s, err, rc, "reading the volumes");
    names = volumes_of(v, n, name);
    free(v);
    json_array_foreach(names, i, item)
        snprintf(users + strlen(users), sizeof(users) - strlen(users), "%s%s", users[0] ? ", " : "",
                 json_string_value(item));
    json_decref(names);
    if (users[0])
        return api_fail(err, API_ERR_CONFLICT,
                        "image '%s' is used by volumes: %s (delete them first)", name, users);
    if ((rc = db_image_delete(s->d->db, name, &ev)))
        return store_failed(s, err, rc, "deleting the image");
    committed(s, ev);
    if ((p = pool_find(s, img.pool))) {
        file_path(path, p, name, "img");
        unlink(path);
    }
    log_info("image %s: deleted", name);
    return 0;
}

int storage_image_open(struct storage *s, const char *name, int *fd, uint64_t *size,
                       struct api_error *err)
{
    const struct pool *p;
    struct db_image img;
    struct stat st;
    char path[PATH_MAX];
    int rc = db_image_get(s->d->db, name, &img);

    if (rc == -ENOENT)
        return api_fail(err, API_ERR_NOT_FOUND, "no image named '%s'", name);
    if (rc)
        return store_failed(s, err, rc, "reading the image");
    if (strcmp(img.state, "ready") != 0)
        return api_fail(err, API_ERR_CONFLICT, "image '%s' is %s, not ready", name, img.state);
    if (!(p = pool_find(s, img.pool)))
        return api_fail(err, API_ERR_CONFLICT, "the pool of image '%s' (%s) is gone", name,
                        img.pool);
    file_path(path, p, name, "img");
    if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(*fd, &st) < 0) {
        rc = errno;
        if (*fd >= 0)
            close(*fd);
        return api_fail(err, API_ERR_INTERNAL, "opening image '%s': %s", name, strerror(rc));
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

int storage_image_part_open(struct storage *s, const char *name, uint64_t size,
                            char part[PATH_MAX], int *fd, struct api_error *err)
{
    const struct pool *p = pool_find(s, DEFAULT_IMAGE_POOL);

    if (image_name_free(s, name, err))
        return -1;
    /* Data takes at most its size; holes stay holes. */
    if (size > pool_free_bytes(p))
        return no_room(err, p, size);
    part_path(part, p, name, "img");
    if ((*fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
        return api_fail(err, errno == EEXIST ? API_ERR_CONFLICT : API_ERR_INTERNAL,
                        errno == EEXIST ? "image '%s' is being copied here"
                                        : "cannot create the image file for '%s'",
                        name);
    return 0;
}

int storage_image_adopt(struct storage *s, const char *name, const char *part, uint64_t size,
                        const char *sha256, const char *source, struct api_error *err)
{
    const struct pool *p = pool_find(s, DEFAULT_IMAGE_POOL);
    struct db_image img = {0};
    char final[PATH_MAX];
    int64_t ev = 0;
    int rc;

    file_path(final, p, name, "img");
    if (rename(part, final) < 0) {
        rc = errno;
        unlink(part);
        return api_fail(err, API_ERR_INTERNAL, "renaming into place: %s", strerror(rc));
    }
    snprintf(img.name, sizeof(img.name), "%s", name);
    snprintf(img.pool, sizeof(img.pool), "%s", p->name);
    snprintf(img.state, sizeof(img.state), "ready");
    snprintf(img.format, sizeof(img.format), "raw");
    snprintf(img.sha256, sizeof(img.sha256), "%s", sha256);
    snprintf(img.source, sizeof(img.source), "%s", source);
    img.size_bytes = img.source_bytes = size;
    if ((rc = db_image_insert(s->d->db, &img, &ev))) {
        unlink(final);
        if (rc == -EEXIST)
            return api_fail(err, API_ERR_CONFLICT, "name: an image named '%s' exists", name);
        return store_failed(s, err, rc, "recording the image");
    }
    committed(s, ev);
    return 0;
}

/* ---- uploads -------------------------------------------------------------- */

struct storage_upload *storage_upload_begin(struct storage *s, const struct api_image_def *def,
                                            const char *content_length, struct api_error *err)
{
    const struct pool *p = pool_pick(s, def->pool, DEFAULT_IMAGE_POOL, err);
    struct storage_upload *u;
    uint64_t expected;
    char *end;

    if (!p)
        return NULL;
    if (!content_length) {
        api_fail(err, API_ERR_BAD_REQUEST,
                 "an upload needs a Content-Length (a chunked body cannot be checked for room "
                 "before it is stored)");
        return NULL;
    }
    expected = strtoull(content_length, &end, 10);
    if (*end || expected == 0) {
        api_fail(err, API_ERR_BAD_REQUEST, "an upload of an empty image: Content-Length is 0");
        return NULL;
    }
    if (image_name_free(s, def->name, err))
        return NULL;
    if (expected > pool_free_bytes(p)) {
        no_room(err, p, expected);
        return NULL;
    }
    u = calloc(1, sizeof(*u));
    if (!u || !(u->hash = image_hash_new())) {
        free(u);
        api_fail(err, API_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    u->s = s;
    u->pool = p;
    u->format = def->format;
    u->expected = expected;
    snprintf(u->name, sizeof(u->name), "%s", def->name);
    part_path(u->part, p, def->name, "img");
    u->fd = open(u->part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (u->fd < 0) {
        api_fail(err, errno == EEXIST ? API_ERR_CONFLICT : API_ERR_INTERNAL,
                 errno == EEXIST ? "name: an upload of '%s' is in progress"
                                 : "cannot create the image file for '%s'",
                 def->name);
        image_hash_free(u->hash);
        free(u);
        return NULL;
    }
    if (record_image(s, p, def->name,
                     def->format == API_IMAGE_QCOW2 ? API_IMAGE_QCOW2 : API_IMAGE_RAW, "upload",
                     err)) {
        close(u->fd);
        unlink(u->part);
        image_hash_free(u->hash);
        free(u);
        return NULL;
    }
    u->next = s->uploads;
    s->uploads = u;
    return u;
}

int storage_upload_write(struct storage_upload *u, const void *data, size_t len,
                         struct api_error *err)
{

    if (u->got + len > u->expected)
        return api_fail(err, API_ERR_BAD_REQUEST, "the body is longer than its Content-Length");
    image_hash_update(u->hash, data, len);
    /* The file gets its full length at the end: trailing zeros stay a hole. */
    if (image_write_sparse(u->fd, data, len, (off_t)u->got) < 0) {
        int e = errno;

        if (e == ENOSPC || e == EDQUOT)
            return api_fail(err, API_ERR_INSUFFICIENT_STORAGE,
                            "pool '%s' ran out of room after %llu of %llu bytes; nothing was "
                            "kept",
                            u->pool->name, (unsigned long long)u->got,
                            (unsigned long long)u->expected);
        return api_fail(err, API_ERR_INTERNAL, "writing the image: %s", strerror(e));
    }
    u->got += len;
    return 0;
}

static void upload_unlink(struct storage_upload *u)
{
    for (struct storage_upload **p = &u->s->uploads; *p; p = &(*p)->next)
        if (*p == u) {
            *p = u->next;
            return;
        }
}

void storage_upload_abort(struct storage_upload *u)
{
    if (!u)
        return;
    upload_unlink(u);
    close(u->fd);
    unlink(u->part);
    image_hash_free(u->hash);
    forget_image(u->s, u->name);
    log_info("image %s: upload abandoned after %llu of %llu bytes; nothing kept", u->name,
             (unsigned long long)u->got, (unsigned long long)u->expected);
    free(u);
}

int storage_upload_finish(struct storage_upload *u, unsigned *status, json_t **out,
                          struct api_error *err)
{
    struct storage *s = u->s;
    enum api_image_format format = u->format;
    struct db_image img;
    uint64_t virtual_size = 0;
    char final[PATH_MAX];
    int rfd;

    if (u->got != u->expected) {
        api_fail(err, API_ERR_BAD_REQUEST, "the body ended after %llu of %llu bytes",
                 (unsigned long long)u->got, (unsigned long long)u->expected);
        goto fail;
    }
    if (ftruncate(u->fd, (off_t)u->got) < 0 || fsync(u->fd) < 0) {
        api_fail(err, errno == ENOSPC ? API_ERR_INSUFFICIENT_STORAGE : API_ERR_INTERNAL,
                 "writing the image: %s", strerror(errno));
        goto fail;
    }
    rfd = open(u->part, O_RDONLY | O_CLOEXEC);
    if (rfd < 0) {
        api_fail(err, API_ERR_INTERNAL, "reading the upload back: %s", strerror(errno));
        goto fail;
    }
    if (format == API_IMAGE_AUTO)
        format = image_detect_format(rfd);
    if (format != API_IMAGE_QCOW2)
        close(rfd);
    else if (probe_qcow2(rfd, &virtual_size, err)) {
        close(rfd);
        goto fail;
    }
    if (db_image_get(s->d->db, u->name, &img)) {
        if (format == API_IMAGE_QCOW2)
            close(rfd);
        api_fail(err, API_ERR_INTERNAL, "the image's row is gone");
        goto fail;
    }
    image_hash_finish(u->hash, img.sha256);
    u->hash = NULL;
    img.source_bytes = u->got;
    snprintf(img.format, sizeof(img.format), "%s", api_image_format_name(format));
    upload_unlink(u);
    close(u->fd);
    if (format == API_IMAGE_QCOW2) {
        /* Recorded with the digest, then converted on the pool. */
        image_finish(s, &img, NULL);
        if (start_import(s, u->pool, u->name, rfd, u->part, format, virtual_size, true, u->got,
                         err)) {
            unlink(u->part);
            forget_image(s, u->name);
            free(u);
            return -1;
        }
        *status = 202;
    } else {
        file_path(final, u->pool, u->name, "img");
        if (rename(u->part, final) < 0) {
            api_fail(err, API_ERR_INTERNAL, "renaming into place: %s", strerror(errno));
            unlink(u->part);
            forget_image(s, u->name);
            free(u);
            return -1;
        }
        snprintf(img.state, sizeof(img.state), "ready");
        img.size_bytes = u->got;
        image_finish(s, &img, "image.ready");
        *status = 201;
    }
    s->import_bytes_total += u->got - u->last_reported;
    log_info("image %s: uploaded %llu bytes (%s)", u->name, (unsigned long long)u->got,
             api_image_format_name(format));
    free(u);
    *out = image_json_named(s, img.name, err);
    return 0;
fail:
    storage_upload_abort(u);
    return -1;
}

/* ---- volumes -------------------------------------------------------------- */

static void volume_work(uv_work_t *w)
{
    struct job *job = w->data;
    uint64_t size = job->vol.size_mib * MIB;
    int src;

    if (!job->src[0]) {
        job->rc = ftruncate(job->dst_fd, (off_t)size) < 0 ? -errno : 0;
        return;
    }
    src = open(job->src, O_RDONLY | O_CLOEXEC);
    if (src < 0) {
        job->rc = -errno;
        return;
    }
    job->rc = file_clone(src, job->dst_fd, size, true, &job->clone);
    close(src);
    if (!job->rc && fsync(job->dst_fd) < 0)
        job->rc = -errno;
}

static void volume_done(uv_work_t *w, int status)
{
    struct job *job = w->data;
    struct storage *s = job->s;
    struct api_error err = {0};
    char part[PATH_MAX];
    int64_t ev = 0;
    int rc;

    unlink_job(s, job);
    close(job->dst_fd);
    part_path(part, job->pool, job->name, "vol");
    if (status == UV_ECANCELED)
        job->rc = -ECANCELED;
    snprintf(job->vol.clone, sizeof(job->vol.clone), "%s",
             !job->src[0] ? "empty" : file_clone_kind_name(job->clone));
    if (job->rc) {
        api_fail(&err, job->rc == -ENOSPC ? API_ERR_INSUFFICIENT_STORAGE : API_ERR_INTERNAL,
                 "making volume '%s': %s; nothing was kept", job->name, strerror(-job->rc));
    } else if (rename(part, job->final) < 0) {
        job->rc = -errno;
        api_fail(&err, API_ERR_INTERNAL, "renaming into place: %s", strerror(errno));
    } else if ((rc = db_volume_insert(s->d->db, &job->vol, &ev))) {
        job->rc = rc;
        unlink(job->final);
        if (rc == -EEXIST)
            api_fail(&err, API_ERR_CONFLICT, "name: a volume named '%s' exists", job->name);
        else if (rc == -ENOENT)
            api_fail(&err, API_ERR_CONFLICT, "image: '%s' was deleted meanwhile", job->vol.image);
        else
            store_failed(s, &err, rc, "recording the volume");
    }
    if (job->rc) {
        unlink(part);
        job->done(job->ctx, (unsigned)api_error_status(err.kind), NULL, &err);
    } else {
        committed(s, ev);
        db_volume_get(s->d->db, job->name, &job->vol); /* its timestamps */
        log_info("volume %s: %llu MiB in pool %s (%s)", job->name,
                 (unsigned long long)job->vol.size_mib, job->pool->name, job->vol.clone);
        job->done(job->ctx, 201, volume_json(s, &job->vol), NULL);
    }
    free(job);
}

int storage_volume_create(struct storage *s, const struct api_volume_def *def, storage_done_fn done,
                          void *ctx, struct api_error *err)
{
    const struct pool *p = pool_pick(s, def->pool, DEFAULT_VOLUME_POOL, err), *ip = NULL;
    struct db_volume existing;
    struct db_image img;
    struct job *job;
    uint64_t size_mib = def->size_mib, need = 0;
    char part[PATH_MAX];
    int rc;

    if (!p)
        return -1;
    rc = db_volume_get(s->d->db, def->name, &existing);
    if (rc == 0)
        return api_fail(err, API_ERR_CONFLICT, "name: a volume named '%s' exists", def->name);
    if (rc != -ENOENT)
        return store_failed(s, err, rc, "reading the volumes");
    if (def->image[0]) {
        rc = db_image_get(s->d->db, def->image, &img);
        if (rc == -ENOENT)
            return api_fail(err, API_ERR_UNPROCESSABLE, "image: no image named '%s'", def->image);
        if (rc)
            return store_failed(s, err, rc, "reading the image");
        if (strcmp(img.state, "ready") != 0)
            return api_fail(err, API_ERR_CONFLICT, "image: '%s' is %s, not ready", def->image,
                            img.state);
        if (!(ip = pool_find(s, img.pool)))
            return api_fail(err, API_ERR_CONFLICT, "image: the pool of '%s' (%s) is gone",
                            def->image, img.pool);
        uint64_t min_mib = (img.size_bytes + MIB - 1) / MIB;
        if (!size_mib)
            size_mib = min_mib ? min_mib : 1;
        if (size_mib < min_mib)
            return api_fail(err, API_ERR_UNPROCESSABLE,
                            "size_mib: %llu is smaller than image '%s' (%llu MiB)",
                            (unsigned long long)size_mib, def->image, (unsigned long long)min_mib);
    }
    job = job_new(s, JOB_VOLUME, def->name, p);
    if (!job)
        return api_fail(err, API_ERR_INTERNAL, "out of memory");
    if (ip) {
        file_path(job->src, ip, def->image, "img");
        /* A reflink costs nothing; a sparse copy takes what the image's data takes. */
        need = p->reflink && ip == p ? 0 : path_allocated_bytes(job->src);
    }
    if (need > pool_free_bytes(p)) {
        free(job);
        return no_room(err, p, need);
    }
    part_path(part, p, def->name, "vol");
    job->dst_fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (job->dst_fd < 0) {
        rc = errno;
        free(job);
        return api_fail(err, rc == EEXIST ? API_ERR_CONFLICT : API_ERR_INTERNAL,
                        rc == EEXIST ? "name: volume '%s' is being made" : "cannot create '%s'",
                        def->name);
    }
    file_path(job->final, p, def->name, "vol");
    snprintf(job->vol.name, sizeof(job->vol.name), "%s", def->name);
    snprintf(job->vol.pool, sizeof(job->vol.pool), "%s", p->name);
    snprintf(job->vol.image, sizeof(job->vol.image), "%s", def->image);
    job->vol.size_mib = size_mib;
    job->vol.readonly = def->readonly;
    job->done = done;
    job->ctx = ctx;
    if (uv_queue_work(s->d->loop, &job->work, volume_work, volume_done)) {
        close(job->dst_fd);
        unlink(part);
        free(job);
        return api_fail(err, API_ERR_INTERNAL, "cannot start the copy");
    }
    job->next = s->jobs;
    s->jobs = job;
    return 0;
}

/* "a, b" of the VM names in users (those running only, with running_only). */
static bool vm_names(struct storage *s, const struct db_vm_ref *users, size_t n, bool running_only,
                     char *out, size_t size)
{
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (running_only) {
            struct db_vm vm;
            int st;

            if (db_vm_get(s->d->db, users[i].id, &vm))
                continue;
            st = vmmd_state_parse(vm.state);
            db_vm_clear(&vm);
            if (st < 0 || !vmmd_state_has_worker((enum vmmd_state)st))
                continue;
        }
        snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? ", " : "", users[i].name);
    }
    return out[0] != 0;
}

int storage_volume_resize(struct storage *s, const char *name, uint64_t size_mib, json_t **out,
                          struct api_error *err)
{
    struct db_volume v;
    struct db_vm_ref *users = NULL;
    const struct pool *p;
    char names[512], path[PATH_MAX];
    size_t n = 0;
    int64_t ev = 0;
    int rc = db_volume_get(s->d->db, name, &v);

    if (rc == -ENOENT)
        return api_fail(err, API_ERR_NOT_FOUND, "no volume named '%s'", name);
    if (rc)
        return store_failed(s, err, rc, "reading the volume");
    if (size_mib < v.size_mib)
        return api_fail(err, API_ERR_UNPROCESSABLE,
                        "size_mib: volumes only grow (volume '%s' has %llu MiB)", name,
                        (unsigned long long)v.size_mib);
    if ((rc = db_volume_users(s->d->db, name, &users, &n)))
        return store_failed(s, err, rc, "reading the VMs");
    bool busy = vm_names(s, users, n, true, names, sizeof(names));
    free(users);
    if (busy)
        return api_fail(err, API_ERR_CONFLICT,
                        "volume '%s' is in use by running VM %s: stop it to grow the volume", name,
                        names);
    if (!(p = pool_find(s, v.pool)))
        return api_fail(err, API_ERR_CONFLICT, "the pool of volume '%s' (%s) is gone", name,
                        v.pool);
    if (size_mib > v.size_mib) {
        file_path(path, p, name, "vol");
        if (truncate(path, (off_t)(size_mib * MIB)) < 0)
            return api_fail(err,
                            errno == EFBIG || errno == ENOSPC ? API_ERR_INSUFFICIENT_STORAGE
                                                              : API_ERR_INTERNAL,
                            "growing volume '%s': %s", name, strerror(errno));
        if ((rc = db_volume_resize(s->d->db, name, size_mib, &ev))) {
            if (truncate(path, (off_t)(v.size_mib * MIB)) < 0)
                log_error("volume %s: shrinking back after a failed resize: %s", name,
                          strerror(errno));
            return store_failed(s, err, rc, "recording the size");
        }
        committed(s, ev);
        v.size_mib = size_mib;
        log_info("volume %s: grown to %llu MiB", name, (unsigned long long)size_mib);
    }
    *out = volume_json(s, &v);
    return 0;
}

int storage_volume_delete(struct storage *s, const char *name, struct api_error *err)
{
    struct db_volume v;
    struct db_vm_ref *users = NULL;
    const struct pool *p;
    char names[512], path[PATH_MAX];
    size_t n = 0;
    int64_t ev = 0;
    int rc = db_volume_get(s->d->db, name, &v);

    if (rc == -ENOENT)
        return api_fail(err, API_ERR_NOT_FOUND, "no volume named '%s'", name);
    if (rc)
        return store_failed(s, err, rc, "reading the volume");
    if ((rc = db_volume_users(s->d->db, name, &users, &n)))
        return store_failed(s, err, rc, "reading the VMs");
    bool used = vm_names(s, users, n, false, names, sizeof(names));
    free(users);
    if (used)
        return api_fail(err, API_ERR_CONFLICT,
                        "volume '%s' is attached to VMs: %s (remove it from their disks first)",
                        name, names);
    if ((rc = db_volume_delete(s->d->db, name, &ev)))
        return store_failed(s, err, rc, "deleting the volume");
    committed(s, ev);
    if ((p = pool_find(s, v.pool))) {
        file_path(path, p, name, "vol");
        unlink(path);
    }
    log_info("volume %s: deleted", name);
    return 0;
}

/* ---- VM disks ------------------------------------------------------------- */

/* Whether path is a pool's own file (<pool dir>/<name>.img or .vol). */
static bool is_pool_file(struct storage *s, const char *path)
{
    const char *slash = strrchr(path, '/'), *dot;

    if (!slash)
        return false;
    dot = strrchr(slash, '.');
    if (!dot || (strcmp(dot, ".img") != 0 && strcmp(dot, ".vol") != 0 && strcmp(dot, ".part") != 0))
        return false;
    for (size_t i = 0; i < s->n_pools; i++)
        if (strlen(s->pools[i].dir) == (size_t)(slash - path) &&
            strncmp(s->pools[i].dir, path, (size_t)(slash - path)) == 0)
            return true;
    return false;
}

static int check_volume_disk(struct storage *s, const struct db_vm *vm, size_t i, const char *name,
                             struct api_error *err)
{
    struct db_volume v;
    struct db_vm_ref *users = NULL;
    size_t n = 0;
    int rc = db_volume_get(s->d->db, name, &v);

    if (rc == -ENOENT)
        return api_fail(err, API_ERR_UNPROCESSABLE, "disks[%zu].volume: no volume named '%s'", i,
                        name);
    if (rc)
        return store_failed(s, err, rc, "reading the volume");
    /* A read-only volume is attached read-only wherever it is (storage_resolve_disks). */
    if (v.readonly)
        return 0;
    if ((rc = db_volume_users(s->d->db, name, &users, &n)))
        return store_failed(s, err, rc, "reading the VMs");
    rc = 0;
    for (size_t j = 0; j < n && !rc; j++)
        if (strcmp(users[j].id, vm->id) != 0)
            rc = api_fail(err, API_ERR_CONFLICT,
                          "disks[%zu].volume: volume '%s' is attached to VM '%s'; a volume "
                          "that is not read-only belongs to one VM at a time",
                          i, name, users[j].name);
    free(users);
    return rc;
}

int storage_check_vm(struct storage *s, const struct db_vm *vm, struct api_error *err)
{
    json_t *disks = json_loads(vm->disks_json ? vm->disks_json : "[]", 0, NULL), *item;
    size_t i;
    int rc = 0;

    json_array_foreach(disks, i, item)
    {
        const char *vol = json_string_value(json_object_get(item, "volume"));
        const char *path = json_string_value(json_object_get(item, "path"));

        if (vol)
            rc = check_volume_disk(s, vm, i, vol, err);
        else if (path && is_pool_file(s, path))
            rc = api_fail(err, API_ERR_UNPROCESSABLE,
                          "disks[%zu].path: %s is a storage pool's file: name the volume "
                          "instead ({\"volume\": ...})",
                          i, path);
        if (rc)
            break;
    }
    json_decref(disks);
    return rc;
}

int storage_resolve_disks(struct storage *s, const char *disks_json, char **out,
                          struct api_error *err)
{
    json_t *disks = json_loads(disks_json ? disks_json : "[]", 0, NULL), *item;
    size_t i;
    int rc = 0;

    json_array_foreach(disks, i, item)
    {
        const char *name = json_string_value(json_object_get(item, "volume"));
        const struct pool *p;
        struct db_volume v;
        char path[PATH_MAX];

        if (!name)
            continue;
        if (db_volume_get(s->d->db, name, &v) || !(p = pool_find(s, v.pool))) {
            rc = api_fail(err, API_ERR_UNPROCESSABLE, "disks[%zu].volume: no volume named '%s'", i,
                          name);
            break;
        }
        file_path(path, p, name, "vol");
        json_object_set_new(item, "path", json_string(path));
        json_object_set_new(item, "pool", json_true());
        if (v.readonly)
            json_object_set_new(item, "readonly", json_true());
    }
    if (!rc && !(*out = json_dumps(disks, JSON_COMPACT)))
        rc = api_fail(err, API_ERR_INTERNAL, "out of memory");
    json_decref(disks);
    return rc;
}

const struct api_limits *storage_pool_limits(struct storage *s)
{
    return &s->pool_limits;
}

const struct api_limits *storage_import_limits(struct storage *s)
{
    return &s->import_limits;
}

/* ---- metrics -------------------------------------------------------------- */

void storage_metrics(struct storage *s, struct strbuf *b)
{
    static const char *const states[] = {"importing", "ready", "failed"};
    struct db_image *img = NULL;
    struct pool_usage u[MAX_POOLS];
    size_t ni = 0;

    pools_usage(s, u);
    strbuf_printf(b, "# HELP vmmd_storage_pool_size_bytes Size of a storage pool's filesystem.\n"
                     "# TYPE vmmd_storage_pool_size_bytes gauge\n");
    for (size_t i = 0; i < s->n_pools; i++) {
        struct statvfs st;

        if (statvfs(s->pools[i].dir, &st) == 0)
            strbuf_printf(b, "vmmd_storage_pool_size_bytes{pool=\"%s\"} %llu\n", s->pools[i].name,
                          (unsigned long long)st.f_blocks * st.f_frsize);
    }
    strbuf_printf(b, "# HELP vmmd_storage_pool_free_bytes Bytes free for vmmd in a pool.\n"
                     "# TYPE vmmd_storage_pool_free_bytes gauge\n");
    for (size_t i = 0; i < s->n_pools; i++)
        strbuf_printf(b, "vmmd_storage_pool_free_bytes{pool=\"%s\"} %llu\n", s->pools[i].name,
                      (unsigned long long)pool_free_bytes(&s->pools[i]));
    strbuf_printf(b, "# HELP vmmd_storage_pool_used_bytes Bytes a pool's images and volumes "
                     "take on disk.\n# TYPE vmmd_storage_pool_used_bytes gauge\n");
    for (size_t i = 0; i < s->n_pools; i++)
        strbuf_printf(b, "vmmd_storage_pool_used_bytes{pool=\"%s\"} %llu\n", s->pools[i].name,
                      (unsigned long long)u[i].used);
    strbuf_printf(b, "# HELP vmmd_volumes Volumes in a pool.\n# TYPE vmmd_volumes gauge\n");
    for (size_t i = 0; i < s->n_pools; i++)
        strbuf_printf(b, "vmmd_volumes{pool=\"%s\"} %zu\n", s->pools[i].name, u[i].volumes);
    strbuf_printf(b, "# HELP vmmd_images Images by state.\n# TYPE vmmd_images gauge\n");
    db_image_list(s->d->db, &img, &ni);
    for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
        size_t count = 0;

        for (size_t i = 0; i < ni; i++)
            count += strcmp(img[i].state, states[k]) == 0;
        strbuf_printf(b, "vmmd_images{state=\"%s\"} %zu\n", states[k], count);
    }
    free(img);
    strbuf_printf(b,
                  "# HELP vmmd_image_import_bytes_total Bytes imported into images.\n"
                  "# TYPE vmmd_image_import_bytes_total counter\n"
                  "vmmd_image_import_bytes_total %llu\n",
                  (unsigned long long)s->import_bytes_total);
}

/* ---- life ----------------------------------------------------------------- */

static int add_pool(struct storage *s, const char *name, const char *dir, char *err, size_t errlen)
{
    struct pool *p = &s->pools[s->n_pools];

    if (!api_name_valid(name)) {
        snprintf(err, errlen, "--storage-pool %s: a pool name must match [a-z0-9][a-z0-9-]{0,62}",
                 name);
        return -EINVAL;
    }
    if (pool_find(s, name)) {
        snprintf(err, errlen, "--storage-pool %s: there is already a pool of that name", name);
        return -EEXIST;
    }
    vmmd_mkdir_p(dir, 0700);
    if (!(p->dir = realpath(dir, NULL))) {
        snprintf(err, errlen, "storage pool %s: %.300s: %s", name, dir, strerror(errno));
        return -errno;
    }
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->reflink = file_clone_reflink_supported(p->dir);
    s->pool_dirs[s->n_pools++] = p->dir;
    return 0;
}

struct storage *storage_create(struct vmmd_daemon *d, char *err, size_t errlen)
{
    const struct vmmd_config *cfg = d->cfg;
    struct storage *s = calloc(1, sizeof(*s));
    char dir[PATH_MAX];
    size_t n = 0;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->d = d;
    snprintf(dir, sizeof(dir), "%s/images", cfg->state_dir);
    if (add_pool(s, DEFAULT_IMAGE_POOL, dir, err, errlen))
        goto fail;
    snprintf(dir, sizeof(dir), "%s/volumes", cfg->state_dir);
    if (add_pool(s, DEFAULT_VOLUME_POOL, dir, err, errlen))
        goto fail;
    for (unsigned i = 0; i < cfg->storage_pools.count; i++) {
        const char *spec = cfg->storage_pools.items[i], *eq = strchr(spec, '=');
        char name[DB_NAME_MAX + 2];

        if (!eq || eq == spec || !eq[1] || eq[1] != '/' || (size_t)(eq - spec) > DB_NAME_MAX) {
            snprintf(err, errlen, "--storage-pool %s: must be NAME=/ABSOLUTE/DIR", spec);
            goto fail;
        }
        snprintf(name, sizeof(name), "%.*s", (int)(eq - spec), spec);
        if (add_pool(s, name, eq + 1, err, errlen))
            goto fail;
    }
    s->pool_limits.image_dirs = (const char *const *)s->pool_dirs;
    s->pool_limits.n_image_dirs = s->n_pools;
    for (size_t i = 0; i < d->limits.n_image_dirs; i++)
        if (!(s->import_dirs[n++] = strdup(d->limits.image_dirs[i])))
            goto oom;
    for (unsigned i = 0; i < cfg->import_dirs.count; i++) {
        if (!(s->import_dirs[n] = realpath(cfg->import_dirs.items[i], NULL))) {
            snprintf(err, errlen, "--import-dir %.300s: %s", cfg->import_dirs.items[i],
                     strerror(errno));
            goto fail;
        }
        n++;
    }
    s->import_limits.image_dirs = (const char *const *)s->import_dirs;
    s->import_limits.n_image_dirs = n;
    uv_timer_init(d->loop, &s->progress);
    s->progress.data = s;
    return s;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    for (size_t i = 0; i < s->n_pools; i++)
        free(s->pools[i].dir);
    for (size_t i = 0; i < n; i++)
        free(s->import_dirs[i]);
    free(s);
    return NULL;
}

/* Removes the hidden .part files a stopped daemon left in a pool. */
static void sweep_parts(const struct pool *p)
{
    DIR *dir = opendir(p->dir);
    struct dirent *e;

    while (dir && (e = readdir(dir))) {
        size_t len = strlen(e->d_name);

        if (e->d_name[0] == '.' && len > 5 && strcmp(e->d_name + len - 5, ".part") == 0) {
            log_info("storage: removing %s/%s, left by an interrupted import or copy", p->dir,
                     e->d_name);
            unlinkat(dirfd(dir), e->d_name, 0);
        }
    }
    if (dir)
        closedir(dir);
}

void storage_start(struct storage *s)
{
    struct db_image *img = NULL;
    size_t n = 0;

    for (size_t i = 0; i < s->n_pools; i++)
        sweep_parts(&s->pools[i]);
    if (db_image_list(s->d->db, &img, &n) == 0)
        for (size_t i = 0; i < n; i++)
            if (strcmp(img[i].state, "importing") == 0) {
                snprintf(img[i].state, sizeof(img[i].state), "failed");
                snprintf(img[i].error, sizeof(img[i].error),
                         "the daemon stopped during the import");
                image_finish(s, &img[i], "image.failed");
            }
    free(img);
    uv_timer_start(&s->progress, on_progress, PROGRESS_INTERVAL_MS, PROGRESS_INTERVAL_MS);
}

void storage_stop(struct storage *s)
{
    if (!s)
        return;
    /* Uploads belong to their requests, which end (and abort them) as the servers drain. */
    for (struct job *j = s->jobs; j; j = j->next) {
        atomic_store(&j->ij.cancel, true);
        uv_cancel((uv_req_t *)&j->work);
    }
    uv_timer_stop(&s->progress);
}

void storage_destroy(struct storage *s)
{
    if (!s)
        return;
    storage_stop(s);
    while (s->uploads)
        storage_upload_abort(s->uploads);
    /* Their completions run on the loop: each unlinks itself and cleans up. */
    while (s->jobs)
        uv_run(s->d->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&s->progress, NULL);
    uv_run(s->d->loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < s->n_pools; i++)
        free(s->pools[i].dir);
    for (size_t i = 0; i < s->import_limits.n_image_dirs; i++)
        free(s->import_dirs[i]);
    free(s);
}
