/*
 * /v1/vms and the lifecycle actions. Each handler loads the VM, asks the
 * lifecycle table whether the action fits its state (409 naming the state
 * if not), then acts through the store and the supervisor. Actions that wait
 * for a worker suspend the request and answer from the worker's callback.
 */
#include "routes.h"
#include "cluster.h"
#include "cluster_forward.h"
#include "lifecycle.h"
#include "log.h"
#include "networks.h"
#include "storage.h"
#include "supervisor.h"
#include "vmmd/worker_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define STOP_GRACE_MS 5000

void routes_respond_vm(struct vmmd_daemon *d, struct http_request *req, unsigned status,
                       const char *id)
{
    struct db_vm vm = {0};

    json_t *body;

    if (routes_load_vm(d, req, id, &vm))
        return;
    body = api_vm_to_json(&vm);
    if (body && d->cluster)
        json_object_set_new(body, "member", json_string(cluster_member_name(d->cluster)));
    http_respond_json(req, status, body);
    db_vm_clear(&vm);
}

/* 409 unless the action fits the VM's state. */
static bool action_allowed(struct http_request *req, const struct db_vm *vm,
                           enum vmmd_action action)
{
    int st = vmmd_state_parse(vm->state);

    if (st >= 0 && vmmd_action_allowed((enum vmmd_state)st, action))
        return true;
    http_respond_error(req, API_ERR_CONFLICT, "cannot %s VM '%s': it is %s",
                       vmmd_action_name(action), vm->name, vm->state);
    return false;
}

/* 0, or -errno when the store cannot record it (routes_respond_store_error() says why). */
static int record_state(struct vmmd_daemon *d, const char *id, const char *state,
                        const char *reason, int64_t pid)
{
    int64_t ev = 0;
    int rc = db_vm_set_state(d->db, id, state, reason, pid, &ev);

    if (rc == 0)
        vmmd_event_committed(d, ev);
    return rc;
}

static void new_uuid(char out[DB_ID_LEN + 1])
{
    uint8_t b[16];

    if (getrandom(b, sizeof(b), 0) != sizeof(b))
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (uint8_t)rand();
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, DB_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

/* --max-vms: the loop is the only writer, so nothing is inserted between this count and the
 * insert that follows it. */
static bool room_for_one_more(struct vmmd_daemon *d, struct http_request *req)
{
    uint64_t defined = 0;
    int rc = db_vm_count(d->db, NULL, &defined);

    if (rc) {
        routes_respond_store_error(d, req, rc, "create");
        return false;
    }
    if (defined >= d->cfg->max_vms) {
        http_respond_error(req, API_ERR_CONFLICT,
                           "this host holds at most %llu VM definitions (--max-vms); it has %llu",
                           (unsigned long long)d->cfg->max_vms, (unsigned long long)defined);
        return false;
    }
    return true;
}

json_t *routes_vm_definition(const json_t *vm_json)
{
    static const char *const keys[] = {"mode",          "vcpus",      "memory_mib", "boot",
                                       "kernel",        "initrd",     "cmdline",    "disks",
                                       "nics",          "autostart",  "cpu_quota_pct",
                                       "cpu_weight",    "ha",         NULL};
    json_t *def = json_object();

    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(vm_json, keys[i]);
        if (v && !json_is_null(v))
            json_object_set_new(def, keys[i], json_deep_copy(v));
    }
    return def;
}

int routes_vm_create_body(struct vmmd_daemon *d, struct http_request *req, const char *body,
                          size_t len, const char *id, struct db_vm *out)
{
    struct api_vm_def def;
    struct api_error err;
    struct db_vm vm;
    int64_t ev = 0;
    int rc;

    if (api_parse_vm_create(body, len, &d->limits, &def, &err)) {
        http_respond_problem(req, &err);
        return -1;
    }
    memset(&vm, 0, sizeof(vm));
    api_vm_def_to_db(&def, &vm);
    api_vm_def_free(&def);
    if (id && !api_name_is_uuid(id)) {
        http_respond_error(req, API_ERR_UNPROCESSABLE, "id: '%.40s' is not a VM id", id);
        goto out;
    }
    if (id)
        snprintf(vm.id, sizeof(vm.id), "%s", id);
    else
        new_uuid(vm.id);
    if (api_check_vm_devices(&vm, &err) || networks_check_vm(d->nets, &vm, &err) ||
        storage_check_vm(d->storage, &vm, &err)) {
        http_respond_problem(req, &err);
        goto out;
    }
    if (!room_for_one_more(d, req))
        goto out;
    rc = db_vm_insert(d->db, &vm, &ev);
    if (rc == -EEXIST) {
        http_respond_error(req, API_ERR_CONFLICT, "name: a VM named '%s' exists already", vm.name);
    } else if (rc) {
        routes_respond_store_error(d, req, rc, "create");
    } else {
        vmmd_event_committed(d, ev);
        networks_vms_changed(d->nets);
        log_info("vm %s (%s) created", vm.name, vm.id);
        *out = vm;
        return 0;
    }
out:
    db_vm_clear(&vm);
    return -1;
}

static void create_now(struct vmmd_daemon *d, struct http_request *req)
{
    struct db_vm vm = {0};
    char location[64];

    if (api_body_is_clone(req->body, req->body_len)) {
        routes_vm_clone(d, req);
        return;
    }
    if (routes_vm_create_body(d, req, req->body, req->body_len, NULL, &vm))
        return;
    routes_respond_vm(d, req, 201, vm.id);
    snprintf(location, sizeof(location), "/v1/vms/%s", vm.id);
    http_add_header(req, "Location", location);
    db_vm_clear(&vm);
}

/* In a cluster a create first claims its name in etcd: names are unique cluster-wide. */
struct create_claim {
    struct vmmd_daemon *d;
    struct http_request *req;
    char name[DB_NAME_MAX + 1];
};

static void create_claimed(void *arg, int rc, const char *detail)
{
    struct create_claim *cc = arg;
    struct db_vm vm = {0};

    if (rc) {
        http_respond_error(cc->req, rc == -EEXIST ? API_ERR_CONFLICT : API_ERR_UNAVAILABLE, "%s",
                           detail);
    } else {
        create_now(cc->d, cc->req);
        /* A create refused here leaves no VM of that name: the claim goes too. */
        if (db_vm_get(cc->d->db, cc->name, &vm) == -ENOENT)
            cluster_release_name(cc->d->cluster, cc->name);
        db_vm_clear(&vm);
    }
    free(cc);
}

/*
 * Where a create in a cluster runs: "member" pins it, else placement picks the online member
 * with the most free memory that has what the VM needs; a clone runs where its snapshot is. True when req went there;
 * false to create here (with "member" taken out of the body, which the VM parser refuses).
 */
static bool placed_elsewhere(struct vmmd_daemon *d, struct http_request *req, json_t *body)
{
    json_t *pin = json_object_get(body, "member");
    const char *from = json_string_value(json_object_get(body, "from_snapshot"));
    const char *self = cluster_member_name(d->cluster), *target = NULL;
    char reason[200], vm[DB_NAME_MAX + 1] = "", *text;
    json_t *remote = NULL, *data;

    if (pin && !json_is_string(pin)) {
        http_respond_error(req, API_ERR_BAD_REQUEST, "member: must be a member's name");
        return true;
    }
    if (pin) {
        target = json_string_value(pin);
        snprintf(reason, sizeof(reason), "pinned by \"member\"");
    } else if (from) {
        snprintf(vm, sizeof(vm), "%.*s", (int)strcspn(from, "/"), from);
        remote = cluster_remote_vm(d->cluster, vm);
        target = remote ? json_string_value(json_object_get(remote, "member")) : self;
        snprintf(reason, sizeof(reason), "where the snapshot is");
    } else {
        json_int_t mem = json_integer_value(json_object_get(body, "memory_mib"));
        json_int_t cpus = json_integer_value(json_object_get(body, "vcpus"));
        /* Out of range: created here, where the definition's checks answer 422. */
        if (mem > (json_int_t)API_MAX_MEMORY || cpus > API_MAX_VCPUS)
            return false;
        target = cluster_place(d->cluster, body, reason, sizeof(reason));
        if (!target) {
            http_respond_error(req, API_ERR_CONFLICT, "no member can take the VM: %s", reason);
            return true;
        }
    }
    data = json_pack("{s:O?,s:s,s:s}", "name", json_object_get(body, "name"),
                     "member", target, "reason", reason);
    vmmd_event(d, "vm.placed", "", data);
    if (strcmp(target, self)) {
        char where[DB_NAME_MAX + 1];
        snprintf(where, sizeof(where), "%s", target); /* target may be body's */
        target = where;
        json_object_del(body, "member");
        text = json_dumps(body, JSON_COMPACT);
        if (text)
            cluster_forward(d, req, target, "/v1/vms", text, strlen(text));
        else
            http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        free(text);
        json_decref(remote);
        return true;
    }
    json_decref(remote);
    if (pin && (text = (json_object_del(body, "member"), json_dumps(body, JSON_COMPACT)))) {
        free(req->body);
        req->body = text;
        req->body_len = strlen(text);
    }
    return false;
}

void route_vms_create(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    json_t *body = d->cluster ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    const char *name;
    struct create_claim *cc = NULL;

    (void)m;
    if (json_is_object(body) && !cluster_forwarded(req) && placed_elsewhere(d, req, body)) {
        json_decref(body);
        return;
    }
    name = json_string_value(json_object_get(body, "name"));
    /* Without a valid name the create's own checks answer; no claim is needed. */
    if (name && api_name_valid(name) && (cc = calloc(1, sizeof(*cc)))) {
        cc->d = d;
        cc->req = req;
        snprintf(cc->name, sizeof(cc->name), "%s", name);
        if (cluster_claim_name(d->cluster, name, create_claimed, cc) == 0)
            http_suspend(req);
        else {
            http_respond_error(req, API_ERR_INTERNAL, "cannot ask etcd for the name");
            free(cc);
        }
    } else {
        create_now(d, req);
    }
    json_decref(body);
}

void route_vm_get(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    routes_respond_vm(d, req, 200, m->id);
}

/* API_F_DISKS / API_F_NICS for those of the patch that change nothing but devices' limits. */
static unsigned io_limits_only(const struct api_vm_def *def, const struct db_vm *vm)
{
    unsigned live = 0;

    if ((def->present & API_F_DISKS) &&
        api_devices_differ_only_in_limits(vm->disks_json, def->disks_json))
        live |= API_F_DISKS;
    if ((def->present & API_F_NICS) &&
        api_devices_differ_only_in_limits(vm->nics_json, def->nics_json))
        live |= API_F_NICS;
    return live;
}

struct pending {
    struct http_request *req;
    char id[DB_ID_LEN + 1];
    const char *new_state; /* for pause/resume */
    const char *undo;      /* the worker command that takes the action back */
    int64_t pid;           /* the worker, kept across state changes */
};

static struct pending *pending_new(struct http_request *req, const char *id)
{
    struct pending *p = calloc(1, sizeof(*p));

    if (p) {
        p->req = req;
        snprintf(p->id, sizeof(p->id), "%s", id);
    }
    return p;
}

/* The worker took the new limits (or could not): the PATCH, recorded already, is answered. */
static void on_io_limits_reply(struct vmmd_daemon *d, void *ctx, json_t *reply,
                               const uint8_t *extra, size_t extra_len, const char *error)
{
    struct pending *p = ctx;
    const char *why = reply ? json_string_value(json_object_get(reply, "error")) : error;

    (void)extra;
    (void)extra_len;
    if (!reply || !json_is_true(json_object_get(reply, "ok")))
        log_warn("vm %s: the worker did not take the new I/O limits: %s", p->id,
                 why ? why : "no answer");
    routes_respond_vm(d, p->req, 200, p->id);
    free(p);
}

/*
 * The stored limits to the running worker; true when the request now waits for its answer,
 * so that a 200 means the limits are in force. They are recorded already: a worker gone
 * meanwhile gets them at its next start.
 */
static bool send_io_limits(struct vmmd_daemon *d, struct http_request *req,
                           const struct db_vm *vm)
{
    struct pending *p = pending_new(req, vm->id);
    json_t *cmd =
        json_pack("{s:s, s:o, s:o}", "cmd", "set_io_limits", "disks",
                  api_io_limits_array(vm->disks_json), "nics", api_io_limits_array(vm->nics_json));

    if (!p || !cmd) {
        json_decref(cmd);
        free(p);
        log_warn("vm %s: out of memory for the new I/O limits", vm->id);
        return false;
    }
    if (supervisor_command(d->sup, vm->id, cmd, on_io_limits_reply, p)) { /* cmd consumed */
        free(p);
        log_warn("vm %s: cannot send the new I/O limits to its worker", vm->id);
        return false;
    }
    http_suspend(req);
    return true;
}

void route_vm_patch(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    struct api_vm_def def;
    struct api_error err;
    struct db_vm vm = {0};
    int64_t ev = 0;
    unsigned live;
    int rc;

    if (routes_load_vm(d, req, m->id, &vm))
        return;
    if (api_parse_vm_patch(req->body, req->body_len, &d->limits, &def, &err)) {
        http_respond_problem(req, &err);
        goto out;
    }
    /* The name, autostart, CPU limits and devices' I/O limits may change at any time; the rest
     * only while stopped. */
    live = io_limits_only(&def, &vm);
    if ((def.present & ~(API_F_LIVE | live)) && !action_allowed(req, &vm, VMMD_ACT_EDIT))
        goto out_def;
    api_vm_def_apply(&def, &vm);
    if (api_check_vm_devices(&vm, &err) || networks_check_vm(d->nets, &vm, &err) ||
        storage_check_vm(d->storage, &vm, &err)) {
        http_respond_problem(req, &err);
        goto out_def;
    }
    /* A running VM's cgroup first: a limit the kernel refuses is not recorded. */
    if ((def.present & (API_F_CPU_QUOTA | API_F_CPU_WEIGHT)) &&
        supervisor_set_limits(d->sup, &vm, &err)) {
        http_respond_problem(req, &err);
        goto out_def;
    }
    rc = db_vm_update(d->db, &vm, &ev);
    if (rc == -EEXIST)
        http_respond_error(req, API_ERR_CONFLICT, "name: a VM named '%s' exists already", vm.name);
    else if (rc)
        routes_respond_store_error(d, req, rc, "update");
    else {
        vmmd_event_committed(d, ev);
        /* A name or NIC change moves DHCP hosts and forward targets. */
        networks_vms_changed(d->nets);
        if (!(live && supervisor_has_worker(d->sup, vm.id) && send_io_limits(d, req, &vm)))
            routes_respond_vm(d, req, 200, vm.id);
    }
out_def:
    api_vm_def_free(&def);
out:
    db_vm_clear(&vm);
}

void routes_remove_run_dir(struct vmmd_daemon *d, const char *id)
{
    static const char *const files[] = {WORKER_CONTROL_SOCKET, WORKER_CONSOLE_LOG,
                                        WORKER_CONSOLE_LOG ".1", WORKER_EXIT_FILE, WORKER_LOG};
    char *dir = supervisor_vm_dir(d->sup, id);
    char path[4096];

    if (!dir)
        return;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    free(dir);
}

static void delete_now(struct vmmd_daemon *d, struct http_request *req, const char *id)
{
    int64_t ev = 0;
    int rc = db_vm_delete(d->db, id, &ev);

    if (rc) {
        routes_respond_store_error(d, req, rc, "delete");
        return;
    }
    vmmd_event_committed(d, ev);
    networks_vms_changed(d->nets); /* its forwards went with it */
    routes_remove_run_dir(d, id);
    routes_snapshots_remove_all(d, id); /* their rows went with it */
    http_respond_empty(req, 204);
}

static void on_stopped_for_delete(struct vmmd_daemon *d, void *ctx, int rc, const char *detail)
{
    struct pending *p = ctx;

    (void)rc;
    (void)detail;
    delete_now(d, p->req, p->id);
    free(p);
}

void route_vm_delete(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    const char *force = http_query(req, "force");
    bool forced = force && (strcmp(force, "true") == 0 || strcmp(force, "1") == 0);
    struct db_vm vm = {0};
    struct pending *p;

    /* A value that is neither must not quietly mean "no": the client asked for something. */
    if (force && !forced && strcmp(force, "false") != 0 && strcmp(force, "0") != 0) {
        http_respond_error(req, API_ERR_BAD_REQUEST, "force: '%s' is not true, false, 1 or 0",
                           force);
        return;
    }
    if (routes_load_vm(d, req, m->id, &vm))
        return;
    int st = vmmd_state_parse(vm.state);
    if (forced && st >= 0 && vmmd_state_has_worker((enum vmmd_state)st) &&
        supervisor_has_worker(d->sup, vm.id)) {
        p = pending_new(req, vm.id);
        if (p && supervisor_stop(d->sup, vm.id, 0, on_stopped_for_delete, p) == 0)
            http_suspend(req);
        else {
            free(p);
            http_respond_error(req, API_ERR_INTERNAL, "cannot stop the worker");
        }
    } else if (forced || action_allowed(req, &vm, VMMD_ACT_DELETE)) {
        delete_now(d, req, vm.id);
    }
    db_vm_clear(&vm);
}

int routes_allocation(struct vmmd_daemon *d, struct vm_allocation *out)
{
    struct db_state_total totals[VMMD_STATE_COUNT];
    size_t n = 0;
    int rc = db_vm_totals(d->db, totals, VMMD_STATE_COUNT, &n);

    memset(out, 0, sizeof(*out));
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        int st = vmmd_state_parse(totals[i].state);
        out->defined += totals[i].vms;
        if (st >= 0 && vmmd_state_has_worker((enum vmmd_state)st)) {
            out->memory_mib += totals[i].memory_mib;
            out->vcpus += totals[i].vcpus;
            out->running += totals[i].vms;
        }
    }
    return 0;
}

/* Admission control: what running VMs hold, plus this one, must fit the host. */
static bool admit(struct vmmd_daemon *d, struct http_request *req, const struct db_vm *vm)
{
    uint64_t mem_limit = (d->host_memory_bytes >> 20) * d->cfg->memory_overcommit_pct / 100;
    uint64_t cpu_limit = d->cfg->max_vcpus;
    struct vm_allocation a;

    if (routes_allocation(d, &a)) {
        http_respond_error(req, API_ERR_INTERNAL, "store unavailable");
        return false;
    }
    if (a.memory_mib + vm->memory_mib > mem_limit) {
        http_respond_error(req, API_ERR_CONFLICT,
                           "not enough memory: VM '%s' needs %llu MiB, running VMs hold %llu of "
                           "%llu MiB (host RAM x %llu%% overcommit)",
                           vm->name, (unsigned long long)vm->memory_mib,
                           (unsigned long long)a.memory_mib, (unsigned long long)mem_limit,
                           (unsigned long long)d->cfg->memory_overcommit_pct);
        return false;
    }
    if (a.vcpus + vm->vcpus > cpu_limit) {
        http_respond_error(req, API_ERR_CONFLICT,
                           "not enough vCPUs: VM '%s' needs %u, running VMs hold %llu of %llu",
                           vm->name, vm->vcpus, (unsigned long long)a.vcpus,
                           (unsigned long long)cpu_limit);
        return false;
    }
    return true;
}

static void on_started(struct vmmd_daemon *d, void *ctx, int rc, const char *detail)
{
    struct pending *p = ctx;

    if (rc == 0)
        routes_respond_vm(d, p->req, 200, p->id);
    else
        http_respond_error(p->req, API_ERR_UNPROCESSABLE, "the VM did not start: %s",
                           detail ? detail : strerror(-rc));
    free(p);
}

void route_vm_start(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    struct api_error err = {0};
    struct db_vm vm = {0};
    struct pending *p;

    if (routes_load_vm(d, req, m->id, &vm))
        return;
    if (!action_allowed(req, &vm, VMMD_ACT_START) || !admit(d, req, &vm))
        goto out;
    p = pending_new(req, vm.id);
    if (!p) {
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (supervisor_start(d->sup, &vm, NULL, on_started, p, &err)) {
        free(p);
        http_respond_problem(req, &err);
        goto out;
    }
    log_info("vm %s: starting", vm.name);
    http_suspend(req);
out:
    db_vm_clear(&vm);
}

static void on_stopped(struct vmmd_daemon *d, void *ctx, int rc, const char *detail)
{
    struct pending *p = ctx;

    (void)rc;
    (void)detail;
    routes_respond_vm(d, p->req, 200, p->id);
    free(p);
}

void route_vm_stop(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    struct db_vm vm = {0};
    struct pending *p;
    int rc;

    if (routes_load_vm(d, req, m->id, &vm))
        return;
    if (!action_allowed(req, &vm, VMMD_ACT_STOP))
        goto out;
    if (!supervisor_has_worker(d->sup, vm.id)) {
        /* The store says a worker runs but there is none: it is already stopped. */
        if ((rc = record_state(d, vm.id, "stopped", "stopped (no worker was running)", 0)))
            routes_respond_store_error(d, req, rc, "stop");
        else
            routes_respond_vm(d, req, 200, vm.id);
        goto out;
    }
    /* A stop the store cannot record is not done: the VM keeps running, as recorded. */
    if ((rc = record_state(d, vm.id, "stopping", "stop requested", vm.worker_pid))) {
        routes_respond_store_error(d, req, rc, "stop");
        goto out;
    }
    p = pending_new(req, vm.id);
    if (p && supervisor_stop(d->sup, vm.id, STOP_GRACE_MS, on_stopped, p) == 0) {
        http_suspend(req);
    } else {
        free(p);
        http_respond_error(req, API_ERR_INTERNAL, "cannot stop the worker");
    }
out:
    db_vm_clear(&vm);
}

void route_vm_shutdown(struct vmmd_daemon *d, struct http_request *req,
                       const struct route_match *m)
{
    struct db_vm vm = {0};
    struct api_error err;
    uint32_t timeout_s;

    if (routes_load_vm(d, req, m->id, &vm))
        return;
    if (api_parse_shutdown(req->body, req->body_len, &timeout_s, &err)) {
        http_respond_problem(req, &err);
    } else if (action_allowed(req, &vm, VMMD_ACT_SHUTDOWN)) {
        char reason[80];
        int rc;

        snprintf(reason, sizeof(reason), "shutdown requested, hard stop after %u s", timeout_s);
        if (!supervisor_has_worker(d->sup, vm.id))
            http_respond_error(req, API_ERR_CONFLICT, "VM '%s' has no running worker", vm.name);
        /* Recorded first: a shutdown the store cannot record is not sent. */
        else if ((rc = record_state(d, vm.id, "stopping", reason, vm.worker_pid)))
            routes_respond_store_error(d, req, rc, "shutdown");
        else if (supervisor_shutdown(d->sup, vm.id, timeout_s))
            http_respond_error(req, API_ERR_INTERNAL, "cannot reach VM '%s''s worker", vm.name);
        else
            routes_respond_vm(d, req, 202, vm.id);
    }
    db_vm_clear(&vm);
}

static void on_action_reply(struct vmmd_daemon *d, void *ctx, json_t *reply, const uint8_t *extra,
                            size_t extra_len, const char *error)
{
    struct pending *p = ctx;

    (void)extra;
    (void)extra_len;
    if (!reply || !json_is_true(json_object_get(reply, "ok"))) {
        const char *why = reply ? json_string_value(json_object_get(reply, "error")) : error;
        http_respond_error(p->req, API_ERR_CONFLICT, "the worker refused: %s",
                           why ? why : "no answer");
    } else {
        int rc = p->new_state ? record_state(d, p->id, p->new_state, NULL, p->pid) : 0;

        /* The worker acted, the store cannot say so: take it back, so the VM stays as
         * recorded, and say why. */
        if (rc && p->undo)
            supervisor_command(d->sup, p->id, json_pack("{s:s}", "cmd", p->undo), NULL, NULL);
        if (rc)
            routes_respond_store_error(d, p->req, rc, p->new_state);
        else
            routes_respond_vm(d, p->req, 200, p->id);
    }
    free(p);
}

/* Sends a worker command for an action and answers when the worker has. */
static void worker_action(struct vmmd_daemon *d, struct http_request *req, const char *id,
                          enum vmmd_action action, const char *cmd, const char *new_state,
                          const char *undo)
{
    struct db_vm vm = {0};
    struct pending *p;

    if (routes_load_vm(d, req, id, &vm))
        return;
    if (!action_allowed(req, &vm, action))
        goto out;
    p = pending_new(req, vm.id);
    if (!p)
        goto out;
    p->new_state = new_state;
    p->undo = undo;
    p->pid = vm.worker_pid;
    if (supervisor_command(d->sup, vm.id, json_pack("{s:s}", "cmd", cmd), on_action_reply, p)) {
        free(p);
        http_respond_error(req, API_ERR_CONFLICT, "VM '%s' has no running worker", vm.name);
        goto out;
    }
    http_suspend(req);
out:
    db_vm_clear(&vm);
}

void route_vm_reboot(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    worker_action(d, req, m->id, VMMD_ACT_REBOOT, "reboot", "running", NULL);
}

void route_vm_pause(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    worker_action(d, req, m->id, VMMD_ACT_PAUSE, "pause", "paused", "resume");
}

void route_vm_resume(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    worker_action(d, req, m->id, VMMD_ACT_RESUME, "resume", "running", "pause");
}

static void on_stats(struct vmmd_daemon *d, void *ctx, json_t *reply, const uint8_t *extra,
                     size_t extra_len, const char *error)
{
    struct pending *p = ctx;
    json_t *out;

    (void)extra;
    (void)extra_len;
    if (!reply) {
        http_respond_error(p->req, API_ERR_CONFLICT, "no stats: %s", error);
    } else {
        json_int_t up = json_integer_value(json_object_get(reply, "uptime_ns"));
        out = json_pack("{s:s, s:s, s:f, s:O, s:O, s:O, s:O, s:O, s:O*, s:O*, s:o*}", "id", p->id,
                        "state", p->new_state, "uptime_s", (double)up / 1e9, "exits",
                        json_object_get(reply, "exits"), "memory_bytes",
                        json_object_get(reply, "memory_bytes"), "console_bytes",
                        json_object_get(reply, "console_bytes"), "writes_ignored",
                        json_object_get(reply, "writes_ignored"), "boots",
                        json_object_get(reply, "boots"), "disks", json_object_get(reply, "disks"),
                        "nics", json_object_get(reply, "nics"), "sandbox",
                        supervisor_worker_json(d->sup, p->id));
        http_respond_json(p->req, 200, out ? out : json_object());
    }
    free(p);
}

void route_vm_stats(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    struct db_vm vm = {0};
    struct pending *p;

    if (routes_load_vm(d, req, m->id, &vm))
        return;
    p = pending_new(req, vm.id);
    int st = vmmd_state_parse(vm.state);
    /* The static name, not vm.state: the reply outlives vm. */
    if (p)
        p->new_state = st >= 0 ? vmmd_state_name((enum vmmd_state)st) : "stopped";
    if (!p || supervisor_command(d->sup, vm.id, json_pack("{s:s}", "cmd", "stats"), on_stats, p)) {
        free(p);
        http_respond_json(req, 200,
                          json_pack("{s:s, s:s, s:f, s:{}, s:I, s:i}", "id", vm.id, "state",
                                    vm.state, "uptime_s", 0.0, "exits", "memory_bytes",
                                    (json_int_t)0, "boots", 0));
    } else {
        http_suspend(req);
    }
    db_vm_clear(&vm);
}
