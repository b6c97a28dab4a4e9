/*
 * Snapshots of running VMs, restore and clones:
 *
 *   POST   /v1/vms/{id}/snapshot          take one (the worker writes the files)
 *   GET    /v1/vms/{id}/snapshots[/{name}]
 *   DELETE /v1/vms/{id}/snapshots/{name}
 *   POST   /v1/vms/{id}/restore           replace the VM's running state with one
 *   POST   /v1/vms {"from_snapshot": ...} a new VM started from one (a clone)
 *
 * The files live in <state>/snapshots/<vm id>/<name>/{state,memory}. The
 * daemon opens them and hands the descriptors to the worker, which cannot
 * open anything in its sandbox: with the snapshot command to write them, at
 * spawn to start from them. The row (migration 006) records what the
 * snapshot expects: the VM's definition and its disks with their sizes, so a
 * restore whose disks changed is refused before anything is stopped. Disks
 * are not copied: a snapshot is consistent with its disks only as long as
 * nothing writes them after it (see the README).
 */
#include "routes.h"
#include "lifecycle.h"
#include "log.h"
#include "networks.h"
#include "storage.h"
#include "supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "hv/hv.h"

#define STATE_FILE  "state"
#define MEMORY_FILE "memory"
/* Beyond RAM, what a snapshot may need on disk (the state file and some room). */
#define SNAPSHOT_SPACE_SLACK  (64ull << 20)
#define RESTORE_STOP_GRACE_MS 5000

/* <state>/snapshots/<vm id>[/<name>[/<file>]] (owned by the caller), NULL on no memory. */
static char *snapshot_path(struct vmmd_daemon *d, const char *vm_id, const char *name,
                           const char *file)
{
    char *p = NULL;
    int n = file   ? asprintf(&p, "%s/snapshots/%s/%s/%s", d->cfg->state_dir, vm_id, name, file)
            : name ? asprintf(&p, "%s/snapshots/%s/%s", d->cfg->state_dir, vm_id, name)
                   : asprintf(&p, "%s/snapshots/%s", d->cfg->state_dir, vm_id);
    return n < 0 ? NULL : p;
}

/* Removes a snapshot's files and directory (and the VM's directory once empty). */
static void remove_files(struct vmmd_daemon *d, const char *vm_id, const char *name)
{
    static const char *const files[] = {STATE_FILE, MEMORY_FILE};
    char *dir = snapshot_path(d, vm_id, name, NULL), *vm_dir = snapshot_path(d, vm_id, NULL, NULL);

    for (size_t i = 0; dir && i < sizeof(files) / sizeof(files[0]); i++) {
        char *p = snapshot_path(d, vm_id, name, files[i]);
        if (p)
            unlink(p);
        free(p);
    }
    if (dir)
        rmdir(dir);
    if (vm_dir)
        rmdir(vm_dir); /* fails while other snapshots are there, as it should */
    free(dir);
    free(vm_dir);
}

void routes_snapshots_remove_all(struct vmmd_daemon *d, const char *vm_id)
{
    char *vm_dir = snapshot_path(d, vm_id, NULL, NULL);
    DIR *dir = vm_dir ? opendir(vm_dir) : NULL;
    struct dirent *e;

    while (dir && (e = readdir(dir)))
        if (e->d_name[0] != '.' && api_name_valid(e->d_name))
            remove_files(d, vm_id, e->d_name);
    if (dir)
        closedir(dir);
    if (vm_dir)
        rmdir(vm_dir);
    free(vm_dir);
}

/* The API object: the stored description plus who and when. */
static json_t *snapshot_json(const struct db_snapshot *s, const char *vm_name)
{
    json_t *info = json_loads(s->info_json, 0, NULL), *out;
    char when[32];
    time_t t = (time_t)(s->created_at / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    out = json_pack("{s:s, s:s, s:s, s:s}", "name", s->name, "vm", vm_name, "vm_id", s->vm_id,
                    "created_at", when);
    if (out && json_is_object(info)) {
        json_object_del(info, "definition"); /* internal: what a clone is made from */
        json_object_update(out, info);
    }
    json_decref(info);
    return out ? out : json_object();
}

/* A VM's disks as a snapshot expects them: what each names, its size, read-only. */
static json_t *expected_disks(struct vmmd_daemon *d, const struct db_vm *vm, struct api_error *err)
{
    char *resolved = NULL;
    json_t *named = json_loads(vm->disks_json, 0, NULL), *files, *out = json_array();
    size_t i;
    json_t *disk;

    if (storage_resolve_disks(d->storage, vm->disks_json, &resolved, err)) {
        json_decref(named);
        json_decref(out);
        return NULL;
    }
    files = json_loads(resolved, 0, NULL);
    free(resolved);
    json_array_foreach(named, i, disk)
    {
        const char *path = json_string_value(json_object_get(json_array_get(files, i), "path"));
        struct stat st;
        json_t *e = json_pack("{s:I, s:b}", "size_bytes",
                              (json_int_t)(path && stat(path, &st) == 0 ? st.st_size : -1),
                              "readonly", json_is_true(json_object_get(disk, "readonly")));
        json_t *volume = json_object_get(disk, "volume");
        json_object_set(e, volume ? "volume" : "path",
                        volume ? volume : json_object_get(disk, "path"));
        json_array_append_new(out, e);
    }
    json_decref(named);
    json_decref(files);
    return out;
}

/* The definition fields a clone is created from. */
static json_t *definition_json(const struct db_vm *vm)
{
    json_t *full = api_vm_to_json(vm), *def = routes_vm_definition(full);

    json_decref(full);
    return def;
}

static size_t json_text_array_size(const char *text)
{
    json_t *a = json_loads(text ? text : "[]", 0, NULL);
    size_t n = json_array_size(a);

    json_decref(a);
    return n;
}

/* 409 naming the first difference between a snapshot and a VM that should fit it; 0 if none. */
static int check_fits(struct vmmd_daemon *d, const json_t *info, const struct db_vm *vm,
                      const char *what, struct api_error *err)
{
    json_t *disks = expected_disks(d, vm, err), *want = json_object_get(info, "disks"), *e;
    size_t i;
    int rc = 0;

    if (!disks)
        return -1;
    if (strcmp(json_string_value(json_object_get(info, "mode")) ?: "", vm->mode) ||
        json_integer_value(json_object_get(info, "vcpus")) != vm->vcpus ||
        (uint64_t)json_integer_value(json_object_get(info, "memory_mib")) != vm->memory_mib) {
        rc = api_fail(err, API_ERR_CONFLICT,
                      "%s: the snapshot is of a %s VM with %lld vCPUs and %lld MiB of memory, VM "
                      "'%s' is %s with %u vCPUs and %llu MiB: its definition changed since",
                      what, json_string_value(json_object_get(info, "mode")),
                      (long long)json_integer_value(json_object_get(info, "vcpus")),
                      (long long)json_integer_value(json_object_get(info, "memory_mib")), vm->name,
                      vm->mode, vm->vcpus, (unsigned long long)vm->memory_mib);
    } else if (json_array_size(disks) != json_array_size(want)) {
        rc = api_fail(err, API_ERR_CONFLICT, "%s: the snapshot has %zu disks, VM '%s' has %zu",
                      what, json_array_size(want), vm->name, json_array_size(disks));
    } else {
        json_array_foreach(want, i, e)
        {
            json_int_t size = json_integer_value(json_object_get(e, "size_bytes")),
                       now = json_integer_value(
                           json_object_get(json_array_get(disks, i), "size_bytes"));
            if (size != now) {
                rc = api_fail(err, API_ERR_CONFLICT,
                              "%s: disk %zu was %lld bytes when the snapshot was taken and is "
                              "%lld now (%s)",
                              what, i + 1, (long long)size, (long long)now,
                              now < 0 ? "missing" : "resized");
                break;
            }
        }
    }
    size_t nics = json_text_array_size(vm->nics_json);
    if (!rc && (json_int_t)nics != json_integer_value(json_object_get(info, "nics")))
        rc =
            api_fail(err, API_ERR_CONFLICT, "%s: the snapshot has %lld NICs, VM '%s' has %zu", what,
                     (long long)json_integer_value(json_object_get(info, "nics")), vm->name, nics);
    json_decref(disks);
    return rc;
}

/* ---- POST /v1/vms/{id}/snapshot ---- */

struct taking {
    struct http_request *req;
    char vm_id[DB_ID_LEN + 1];
    char vm_name[DB_NAME_MAX + 1];
    char name[DB_NAME_MAX + 1];
    bool resume, was_paused;
    json_t *info; /* what the row will say, completed from the worker's answer */
};

static void taking_fail(struct vmmd_daemon *d, struct taking *t)
{
    remove_files(d, t->vm_id, t->name);
    json_decref(t->info);
    free(t);
}

static void on_snapshot_taken(struct vmmd_daemon *d, void *ctx, json_t *reply, const uint8_t *extra,
                              size_t extra_len, const char *error)
{
    struct taking *t = ctx;
    struct db_snapshot row = {0};
    struct stat st;
    int64_t ev = 0;
    int rc;

    (void)extra;
    (void)extra_len;
    if (!reply || !json_is_true(json_object_get(reply, "ok"))) {
        const char *why = reply ? json_string_value(json_object_get(reply, "error")) : error;
        http_respond_error(t->req, API_ERR_CONFLICT, "the snapshot failed: %s",
                           why ? why : "the worker did not answer");
        taking_fail(d, t);
        return;
    }
    char *mem = snapshot_path(d, t->vm_id, t->name, MEMORY_FILE);
    double paused_ms = (double)json_integer_value(json_object_get(reply, "paused_ns")) / 1e6;
    json_object_set_new(t->info, "state_bytes", json_incref(json_object_get(reply, "state_bytes")));
    json_object_set_new(t->info, "memory_bytes",
                        json_incref(json_object_get(reply, "memory_bytes")));
    json_object_set_new(
        t->info, "memory_allocated_bytes",
        json_integer(mem && stat(mem, &st) == 0 ? (json_int_t)st.st_blocks * 512 : 0));
    json_object_set_new(t->info, "paused_ms",
                        json_real((double)(int64_t)(paused_ms * 1000) / 1000));
    free(mem);
    snprintf(row.vm_id, sizeof(row.vm_id), "%s", t->vm_id);
    snprintf(row.name, sizeof(row.name), "%s", t->name);
    row.info_json = json_dumps(t->info, JSON_COMPACT);
    rc = row.info_json ? db_snapshot_insert(d->db, &row, &ev) : -ENOMEM;
    if (rc) {
        routes_respond_store_error(d, t->req, rc, "record the snapshot");
        free(row.info_json);
        taking_fail(d, t);
        return;
    }
    vmmd_event_committed(d, ev);
    d->metrics.snapshots_taken++;
    d->metrics.snapshot_pause_ns +=
        (uint64_t)json_integer_value(json_object_get(reply, "paused_ns"));
    /* Left paused on request: the store says so too. */
    if (!t->resume && !t->was_paused &&
        (rc = db_vm_set_state(d->db, t->vm_id, "paused", "paused for a snapshot",
                              json_integer_value(json_object_get(reply, "pid")), &ev)) == 0)
        vmmd_event_committed(d, ev);
    log_info("vm %s: snapshot %s taken, %.1f ms paused", t->vm_name, t->name, paused_ms);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    row.created_at = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    http_respond_json(t->req, 201, snapshot_json(&row, t->vm_name));
    free(row.info_json);
    json_decref(t->info);
    free(t);
}

/* The snapshot's directory and its two files, new (O_EXCL): -1 with err on failure. */
static int create_files(struct vmmd_daemon *d, const char *vm_id, const char *name, int fds[2],
                        struct api_error *err)
{
    char *dir = snapshot_path(d, vm_id, name, NULL);
    char *paths[2] = {snapshot_path(d, vm_id, name, STATE_FILE),
                      snapshot_path(d, vm_id, name, MEMORY_FILE)};
    int rc = 0;

    fds[0] = fds[1] = -1;
    if (!dir || !paths[0] || !paths[1]) {
        rc = api_fail(err, API_ERR_INTERNAL, "out of memory");
        goto out;
    }
    /* Files a crash left behind, with no row: not a snapshot anyone can see. */
    remove_files(d, vm_id, name);
    if (vmmd_mkdir_p(dir, 0700)) {
        rc = api_fail(err, API_ERR_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        fds[i] = open(paths[i], O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fds[i] < 0) {
            rc = api_fail(err, API_ERR_INTERNAL, "cannot create %s: %s", paths[i], strerror(errno));
            break;
        }
    }
out:
    if (rc) {
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        remove_files(d, vm_id, name);
    }
    free(dir);
    free(paths[0]);
    free(paths[1]);
    return rc;
}

/* 507 unless the state directory's filesystem has room for RAM and the state. */
static int check_space(struct vmmd_daemon *d, const struct db_vm *vm, struct api_error *err)
{
    struct statvfs fs;
    uint64_t need = (vm->memory_mib << 20) + SNAPSHOT_SPACE_SLACK;

    if (statvfs(d->cfg->state_dir, &fs) == 0 && (uint64_t)fs.f_bavail * fs.f_frsize < need)
        return api_fail(err, API_ERR_INSUFFICIENT_STORAGE,
                        "not enough space for a snapshot of VM '%s': it needs up to %llu MiB, "
                        "%llu MiB are free",
                        vm->name, (unsigned long long)(need >> 20),
                        (unsigned long long)(((uint64_t)fs.f_bavail * fs.f_frsize) >> 20));
    return 0;
}

bool routes_host_swaps(void)
{
    FILE *f = fopen("/proc/swaps", "r");
    char line[256];
    int lines = 0;

    if (!f)
        return true;
    while (fgets(line, sizeof(line), f))
        lines++;
    fclose(f);
    return lines > 1;
}

void route_vm_snapshot(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    struct api_snapshot_req sr;
    struct api_error err = {0};
    struct db_vm vm = {0};
    struct db_snapshot existing = {0};
    struct taking *t = NULL;
    int fds[2] = {-1, -1}, rc;

    if (routes_load_vm(d, req, m->id, &vm))
        return;
    if (api_parse_snapshot_create(req->body, req->body_len, &sr, &err)) {
        http_respond_problem(req, &err);
        goto out;
    }
    if (strcmp(vm.state, "running") && strcmp(vm.state, "paused")) {
        http_respond_error(req, API_ERR_CONFLICT,
                           "cannot snapshot VM '%s': it is %s (a snapshot is of a running or "
                           "paused VM)",
                           vm.name, vm.state);
        goto out;
    }
    if (!sr.name[0])
        snprintf(sr.name, sizeof(sr.name), "snap-%lld", (long long)time(NULL));
    if (db_snapshot_get(d->db, vm.id, sr.name, &existing) == 0) {
        free(existing.info_json);
        http_respond_error(req, API_ERR_CONFLICT, "name: VM '%s' has a snapshot named '%s' already",
                           vm.name, sr.name);
        goto out;
    }
    t = calloc(1, sizeof(*t));
    if (!t || check_space(d, &vm, &err) || create_files(d, vm.id, sr.name, fds, &err)) {
        if (!t)
            api_fail(&err, API_ERR_INTERNAL, "out of memory");
        http_respond_problem(req, &err);
        free(t);
        goto out;
    }
    t->req = req;
    t->resume = sr.resume;
    t->was_paused = strcmp(vm.state, "paused") == 0;
    snprintf(t->vm_id, sizeof(t->vm_id), "%s", vm.id);
    snprintf(t->vm_name, sizeof(t->vm_name), "%s", vm.name);
    snprintf(t->name, sizeof(t->name), "%s", sr.name);
    t->info =
        json_pack("{s:s, s:s, s:i, s:I, s:o, s:i, s:o}", "vm_state", vm.state, "mode", vm.mode,
                  "vcpus", (int)vm.vcpus, "memory_mib", (json_int_t)vm.memory_mib, "disks",
                  expected_disks(d, &vm, &err) ?: json_null(), "nics",
                  (int)json_text_array_size(vm.nics_json), "definition", definition_json(&vm));
    if (!t->info || json_is_null(json_object_get(t->info, "disks"))) {
        http_respond_problem(req, &err);
        taking_fail(d, t);
        goto out_fds;
    }
    rc = supervisor_command_fds(d->sup, vm.id,
                                json_pack("{s:s, s:b, s:b}", "cmd", "snapshot", "leave_paused",
                                          !sr.resume, "no_swap", !routes_host_swaps()),
                                fds, 2, on_snapshot_taken, t);
    if (rc) {
        http_respond_error(req, API_ERR_CONFLICT, "cannot reach VM '%s''s worker: %s", vm.name,
                           rc == -EBUSY ? "it is busy with another command, try again"
                                        : strerror(-rc));
        taking_fail(d, t);
        goto out_fds;
    }
    http_suspend(req);
out_fds:
    close(fds[0]);
    close(fds[1]);
out:
    db_vm_clear(&vm);
}

/* ---- listing, reading, deleting ---- */

void route_vm_snapshots_list(struct vmmd_daemon *d, struct http_request *req,
                             const struct route_match *m)
{
    struct db_vm vm = {0};
    struct db_snapshot *list = NULL;
    size_t n = 0;
    int rc;

    if (routes_load_vm(d, req, m->id, &vm))
        return;
    if ((rc = db_snapshot_list(d->db, vm.id, &list, &n))) {
        routes_respond_store_error(d, req, rc, "list snapshots");
    } else {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, snapshot_json(&list[i], vm.name));
        http_respond_json(req, 200, arr);
    }
    db_snapshot_list_free(list, n);
    db_vm_clear(&vm);
}

/* The VM and one of its snapshots; answers 404 itself. */
static int load_snapshot(struct vmmd_daemon *d, struct http_request *req, const char *vm_ref,
                         const char *name, const char *field, struct db_vm *vm,
                         struct db_snapshot *s)
{
    if (routes_load_vm(d, req, vm_ref, vm))
        return -1;
    if (db_snapshot_get(d->db, vm->id, name, s)) {
        http_respond_error(req, API_ERR_NOT_FOUND, "%s: VM '%s' has no snapshot named '%.64s'",
                           field, vm->name, name);
        db_vm_clear(vm);
        return -1;
    }
    return 0;
}

void route_vm_snapshot_get(struct vmmd_daemon *d, struct http_request *req,
                           const struct route_match *m)
{
    struct db_vm vm = {0};
    struct db_snapshot s = {0};

    if (load_snapshot(d, req, m->id, m->name, "name", &vm, &s))
        return;
    http_respond_json(req, 200, snapshot_json(&s, vm.name));
    free(s.info_json);
    db_vm_clear(&vm);
}

void route_vm_snapshot_delete(struct vmmd_daemon *d, struct http_request *req,
                              const struct route_match *m)
{
    struct db_vm vm = {0};
    struct db_snapshot s = {0};
    int64_t ev = 0;
    int rc;

    if (load_snapshot(d, req, m->id, m->name, "name", &vm, &s))
        return;
    /* A VM running from it keeps its mapping of the memory file: unlinking is safe. */
    if ((rc = db_snapshot_delete(d->db, vm.id, s.name, &ev))) {
        routes_respond_store_error(d, req, rc, "delete the snapshot");
    } else {
        vmmd_event_committed(d, ev);
        remove_files(d, vm.id, s.name);
        http_respond_empty(req, 204);
    }
    free(s.info_json);
    db_vm_clear(&vm);
}

/* ---- restore and clone: a worker started from the snapshot's files ---- */

struct restoring {
    struct http_request *req;
    char vm_id[DB_ID_LEN + 1];
    char vm_name[DB_NAME_MAX + 1];
    char from_vm[DB_NAME_MAX + 1]; /* the snapshot's VM, for a clone */
    char snapshot[DB_NAME_MAX + 1];
    int fds[2];
    bool clone;
};

static void restoring_free(struct restoring *r)
{
    for (int i = 0; i < 2; i++)
        if (r->fds[i] >= 0)
            close(r->fds[i]);
    free(r);
}

/* Opens the snapshot's files and checks the state file before anything is stopped. */
static int open_snapshot(struct vmmd_daemon *d, const char *vm_id, const char *name, int fds[2],
                         struct api_error *err)
{
    static const char *const files[2] = {STATE_FILE, MEMORY_FILE};
    struct hv_snapshot_meta meta;
    char why[256];

    fds[0] = fds[1] = -1;
    for (int i = 0; i < 2; i++) {
        char *p = snapshot_path(d, vm_id, name, files[i]);
        fds[i] = p ? open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
        if (fds[i] < 0) {
            api_fail(err, API_ERR_CONFLICT, "snapshot '%s': its %s file cannot be opened: %s", name,
                     files[i], p ? strerror(errno) : "out of memory");
            free(p);
            goto err;
        }
        free(p);
    }
    if (hv_snapshot_inspect(fds[0], &meta, why, sizeof(why))) {
        api_fail(err, API_ERR_UNPROCESSABLE, "snapshot '%s' cannot be restored: %s", name, why);
        goto err;
    }
    struct stat st;
    if (fstat(fds[1], &st) || (uint64_t)st.st_size != meta.memory_mib << 20) {
        api_fail(err, API_ERR_UNPROCESSABLE,
                 "snapshot '%s' cannot be restored: its memory file is %lld bytes, not %llu "
                 "(truncated)",
                 name, (long long)st.st_size, (unsigned long long)(meta.memory_mib << 20));
        goto err;
    }
    return 0;
err:
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    fds[0] = fds[1] = -1;
    return -1;
}

/* Checks that vm fits the snapshot of src and opens its files: the pending restore, or NULL
 * after answering why not. */
static struct restoring *restoring_new(struct vmmd_daemon *d, struct http_request *req,
                                       const json_t *info, const struct db_vm *vm,
                                       const struct db_vm *src, const char *snapshot, bool clone)
{
    struct api_error err = {0};
    struct restoring *r = calloc(1, sizeof(*r));

    if (!r || check_fits(d, info, vm, clone ? "clone" : "restore", &err) ||
        open_snapshot(d, src->id, snapshot, r->fds, &err)) {
        if (!r)
            api_fail(&err, API_ERR_INTERNAL, "out of memory");
        http_respond_problem(req, &err);
        free(r);
        return NULL;
    }
    r->req = req;
    r->clone = clone;
    snprintf(r->vm_id, sizeof(r->vm_id), "%s", vm->id);
    snprintf(r->vm_name, sizeof(r->vm_name), "%s", vm->name);
    snprintf(r->from_vm, sizeof(r->from_vm), "%s", src->name);
    snprintf(r->snapshot, sizeof(r->snapshot), "%s", snapshot);
    return r;
}

static void on_restored(struct vmmd_daemon *d, void *ctx, int rc, const char *detail)
{
    struct restoring *r = ctx;
    int64_t ev = 0;

    if (rc && r->clone && db_vm_delete(d->db, r->vm_id, &ev) == 0)
        vmmd_event_committed(d, ev); /* a clone that did not start is not kept */
    if (rc) {
        http_respond_error(r->req, API_ERR_UNPROCESSABLE,
                           "the VM did not start from snapshot "
                           "'%s': %s",
                           r->snapshot, detail ? detail : strerror(-rc));
        restoring_free(r);
        return;
    }
    /* A clone's too: its vm.created came with the definition, this says where it started. */
    char from[2 * DB_NAME_MAX + 2];
    snprintf(from, sizeof(from), "%s/%s", r->from_vm, r->snapshot);
    json_t *data = json_pack("{s:s, s:s, s:s}", "vm", r->vm_name, "snapshot", r->snapshot,
                             "from_snapshot", from);
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    if (text && db_event_insert(d->db, "vm.restored", r->vm_id, text, &ev) == 0)
        vmmd_event_committed(d, ev);
    free(text);
    json_decref(data);
    d->metrics.restores++;
    log_info("vm %s: running from snapshot %s/%s", r->vm_name, r->from_vm, r->snapshot);
    routes_respond_vm(d, r->req, r->clone ? 201 : 200, r->vm_id);
    restoring_free(r);
}

static void start_restored(struct vmmd_daemon *d, struct restoring *r)
{
    struct sup_restore restore = {.state_fd = r->fds[0], .mem_fd = r->fds[1], .incoming_fd = -1};
    struct api_error err = {0};
    struct db_vm vm = {0};

    if (routes_load_vm(d, r->req, r->vm_id, &vm)) {
        restoring_free(r);
        return;
    }
    if (supervisor_start(d->sup, &vm, &restore, on_restored, r, &err)) {
        http_respond_problem(r->req, &err);
        restoring_free(r);
    } else {
        /* The worker holds its own copies now. */
        close(r->fds[0]);
        close(r->fds[1]);
        r->fds[0] = r->fds[1] = -1;
    }
    db_vm_clear(&vm);
}

static void on_stopped_for_restore(struct vmmd_daemon *d, void *ctx, int rc, const char *detail)
{
    (void)rc;
    (void)detail;
    start_restored(d, ctx);
}

void route_vm_restore(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    char name[DB_NAME_MAX + 1];
    struct api_error err = {0};
    struct db_vm vm = {0};
    struct db_snapshot s = {0};
    struct restoring *r;
    json_t *info = NULL;

    if (api_parse_restore(req->body, req->body_len, name, &err)) {
        http_respond_problem(req, &err);
        return;
    }
    if (load_snapshot(d, req, m->id, name, "snapshot", &vm, &s))
        return;
    info = json_loads(s.info_json, 0, NULL);
    if (!strcmp(vm.state, "starting") || !strcmp(vm.state, "stopping")) {
        http_respond_error(req, API_ERR_CONFLICT, "cannot restore VM '%s': it is %s", vm.name,
                           vm.state);
        goto out;
    }
    if (!(r = restoring_new(d, req, info, &vm, &vm, s.name, false)))
        goto out;
    http_suspend(req);
    /* The running state is replaced: the old worker goes first. It is asked (a kill would
     * leave its sandboxed half serving the control socket for a moment). */
    if (supervisor_has_worker(d->sup, vm.id)) {
        if (supervisor_stop(d->sup, vm.id, RESTORE_STOP_GRACE_MS, on_stopped_for_restore, r)) {
            http_respond_error(req, API_ERR_INTERNAL, "cannot stop VM '%s''s worker", vm.name);
            restoring_free(r);
        }
    } else {
        start_restored(d, r);
    }
out:
    json_decref(info);
    free(s.info_json);
    db_vm_clear(&vm);
}

/*
 * POST /v1/vms {"name", "from_snapshot": "vm/snapshot", ...}: the definition the snapshot
 * recorded, under a new name, with new MACs and no fixed addresses (those belong to the
 * original), through the same checks as any create; then started from the snapshot.
 */
void routes_vm_clone(struct vmmd_daemon *d, struct http_request *req)
{
    struct api_clone_req cr;
    struct api_error err = {0};
    struct db_vm src = {0}, vm = {0};
    struct db_snapshot s = {0};
    struct restoring *r = NULL;
    json_t *info = NULL, *def, *nic;
    char *body = NULL;
    size_t i;

    if (api_parse_clone(req->body, req->body_len, &cr, &err)) {
        http_respond_problem(req, &err);
        return;
    }
    if (load_snapshot(d, req, cr.vm, cr.snapshot, "from_snapshot", &src, &s))
        goto out_req;
    info = json_loads(s.info_json, 0, NULL);
    def = json_deep_copy(json_object_get(info, "definition"));
    if (!json_is_object(def)) {
        http_respond_error(req, API_ERR_INTERNAL, "snapshot '%s' has no definition", s.name);
        json_decref(def);
        goto out;
    }
    json_array_foreach(json_object_get(def, "nics"), i, nic)
    {
        json_object_del(nic, "mac");
        json_object_del(nic, "ip");
    }
    if (cr.disks) {
        json_object_set(def, "disks", cr.disks);
    } else {
        json_t *disk;
        json_array_foreach(json_object_get(info, "disks"), i, disk)
        {
            if (!json_is_true(json_object_get(disk, "readonly"))) {
                http_respond_error(req, API_ERR_CONFLICT,
                                   "disks: the snapshot's disk %zu is writable and belongs to VM "
                                   "'%s'; give the clone its own (same sizes) in disks",
                                   i + 1, src.name);
                json_decref(def);
                goto out;
            }
        }
    }
    json_object_set_new(def, "name", json_string(cr.name));
    if (cr.autostart_set)
        json_object_set_new(def, "autostart", json_boolean(cr.autostart));
    body = json_dumps(def, JSON_COMPACT);
    json_decref(def);
    if (!body || routes_vm_create_body(d, req, body, strlen(body), NULL, &vm))
        goto out;
    if (!(r = restoring_new(d, req, info, &vm, &src, s.name, true))) {
        /* A clone that cannot start is not kept: nothing of it was there before. */
        int64_t ev = 0;
        if (db_vm_delete(d->db, vm.id, &ev) == 0)
            vmmd_event_committed(d, ev);
        goto out;
    }
    http_suspend(req);
    start_restored(d, r);
out:
    free(body);
    json_decref(info);
    free(s.info_json);
    db_vm_clear(&src);
    db_vm_clear(&vm);
out_req:
    api_clone_req_free(&cr);
}

int routes_snapshot_totals(struct vmmd_daemon *d, uint64_t *count, uint64_t *bytes)
{
    struct db_snapshot *list = NULL;
    size_t n = 0;
    int rc = db_snapshot_list(d->db, NULL, &list, &n);

    *count = n;
    *bytes = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *info = json_loads(list[i].info_json, 0, NULL);
        *bytes += (uint64_t)json_integer_value(json_object_get(info, "memory_allocated_bytes")) +
                  (uint64_t)json_integer_value(json_object_get(info, "state_bytes"));
        json_decref(info);
    }
    db_snapshot_list_free(list, n);
    return rc;
}
