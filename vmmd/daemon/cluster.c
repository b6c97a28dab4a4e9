/*
 * Cluster membership, the cluster-wide view and name claims (see cluster.h
 * for the keys). Three timers drive it on the loop:
 *
 *   heartbeat  every TTL/3: renews the lease and rewrites alive/<self>; a
 *              lease that expired (after a partition) is replaced
 *   poll       every second: reads the whole prefix, rebuilds the view,
 *              reports members going offline or online as events
 *   publish    shortly after a local change: writes the VMs that changed to
 *              vms/<id> (with their name's claim), deletes those that went
 */
#include "cluster.h"
#include "cluster_events.h"
#include "cluster_networks.h"
#include "cluster_images.h"
#include "daemon.h"
#include "etcd.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"
#include "strbuf.h"
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_TIMEOUT_MS 2000
#define POLL_MS            1000
#define PUBLISH_DELAY_MS   50
#define KEY_MAX            256
#define FENCE_CHECK_MS     100
#define KEEPALIVE_RETRY_MS 250
#define READ_ONLY_AFTER_MS 2000
#define TAKE_OVER_GRACE_MS 1000 /* an offline member's "ha" VMs wait this long more */

enum join_state { JOINING, JOINED, JOIN_FAILED };

struct cluster {
    struct vmmd_daemon *d;
    struct etcd *etcd;
    char prefix[96];  /* /vmmd/<cluster>/ */
    char self_id[33]; /* this host's member id, kept in <state>/cluster-member-id */
    char secret[65];  /* the members' bearer token for each other, kept in etcd */
    enum join_state join;
    char join_error[512];
    int64_t lease;
    uint64_t joined_ms, last_poll_ok_ms;
    bool writable, stopping;
    char detail[512];
    json_t *members;       /* name -> record */
    json_t *alive;         /* name -> heartbeat */
    json_t *last_beat;     /* name -> the newest heartbeat_ms seen, kept while offline */
    json_t *vms;           /* id -> VM (every member's, as published) */
    json_t *published;     /* id -> the JSON text this member last wrote for it */
    json_t *revs;          /* id -> its vms/ key's mod revision (for taking an "ha" VM over) */
    json_t *offline_since; /* member -> when this member first saw it offline (ms) */
    json_t *taking;        /* ids of "ha" VMs this member is taking over */
    json_t *stranded;      /* "ha" VMs that cannot move (local storage), reported once */
    json_t *fenced_ids;    /* "ha" VMs this member stopped for want of a lease */
    json_t *names;         /* VM name -> the member holding its claim */
    struct cluster_events *events; /* the other members' events, copied into this one's */
    json_t *objects;       /* kind ("networks", "images") -> name -> {"value", "rev"} */
    json_t *arrived;       /* VMs that came here by live migration (their record is the source's) */
    json_t *handovers;     /* [id, target] of an evacuation, sent once no publish is in flight */
    json_t *evac_pending;  /* VMs of this member's evacuation still moving */
    unsigned evac_moved, evac_failed;
    bool evacuating;
    uint64_t lease_ok_ms; /* when the last renewal that etcd answered was sent */
    uint64_t hb_sent_ms;
    bool reconciled; /* this member's VMs were checked against etcd since the lease */
    bool fenced;     /* its "ha" VMs were stopped for want of a lease */
    uv_timer_t fence;
    int64_t revision;
    uv_timer_t heartbeat, poll, publish;
    bool hb_busy, poll_busy, publish_busy, publish_again;
    unsigned closed; /* timers closed, at the end */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void rfc3339(uint64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void key(const struct cluster *c, char out[KEY_MAX], const char *kind, const char *name)
{
    snprintf(out, KEY_MAX, "%s%s/%s", c->prefix, kind, name);
}

/* An event in this member's stream; data is stolen. */
static void vm_event(struct cluster *c, const char *type, const char *vm_id, json_t *data)
{
    vmmd_event(c->d, type, vm_id, data);
}

static void emit(struct cluster *c, const char *type, const char *member)
{
    vm_event(c, type, "", json_pack("{s:s}", "member", member));
}

static void set_writable(struct cluster *c, bool writable, const char *why)
{
    if (writable == c->writable && (writable || strcmp(why, c->detail) == 0))
        return;
    if (writable)
        log_info("cluster: etcd answers again; writes allowed");
    else
        log_warn("cluster: read-only: %s", why);
    c->writable = writable;
    if (!writable)
        c->reconciled = false; /* what etcd says of our VMs is checked again before a write */
    snprintf(c->detail, sizeof(c->detail), "%s", writable ? "" : why);
    c->d->generation++;
}

/* ---- what this member says about itself ---- */

static json_t *capacity_json(struct cluster *c)
{
    return json_pack("{s:I,s:I}", "memory_bytes", (json_int_t)c->d->host_memory_bytes, "vcpus",
                     (json_int_t)c->d->host_cpus);
}

/* The modes this host runs: both with a usable /dev/kvm, none without. */
static json_t *modes_json(void)
{
    return access("/dev/kvm", R_OK | W_OK) == 0 ? json_pack("[s,s]", "full", "pv") : json_array();
}

static json_t *member_record(struct cluster *c)
{
    const char *adv = c->d->cfg->advertise;
    return json_pack("{s:s,s:s,s:o,s:o,s:s,s:I,s:o,s:o,s:b}", "name", c->d->cfg->cluster_member,
                     "id", c->self_id, "address", adv ? json_string(adv) : json_null(), "tls_pin",
                     c->d->tls_enabled ? json_string(c->d->tls.pin) : json_null(), "version",
                     VMMD_VERSION, "joined_ms", (json_int_t)c->joined_ms, "capacity",
                     capacity_json(c), "modes", modes_json(), "networks_managed",
                     !c->d->cfg->no_networks);
}

/* The names of this member's volumes and networks: placement sends VMs that use them here. */
static json_t *local_names(struct cluster *c, bool volumes)
{
    json_t *out = json_array();
    size_t n = 0;

    if (volumes) {
        struct db_volume *v = NULL;
        if (db_volume_list(c->d->db, &v, &n) == 0)
            for (size_t i = 0; i < n; i++)
                json_array_append_new(out, json_string(v[i].name));
        free(v);
    } else {
        struct db_network *net = NULL;
        if (db_network_list(c->d->db, &net, &n) == 0)
            for (size_t i = 0; i < n; i++)
                json_array_append_new(out, json_string(net[i].name));
        free(net);
    }
    return out;
}

static json_t *heartbeat_json(struct cluster *c)
{
    struct vm_allocation a = {0};

    routes_allocation(c->d, &a);
    return json_pack("{s:I,s:b,s:{s:I,s:I,s:I,s:I},s:o,s:o,s:o}", "heartbeat_ms",
                     (json_int_t)now_ms(), "evacuating", c->evacuating, "allocation",
                     "memory_bytes", (json_int_t)(a.memory_mib << 20), "vcpus",
                     (json_int_t)a.vcpus, "vms", (json_int_t)a.defined, "vms_running",
                     (json_int_t)a.running, "volumes", local_names(c, true), "networks",
                     local_names(c, false), "images", cluster_images_held(c->d));
}

static char *dump(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* ---- the member id kept in the state directory ---- */

static int load_or_make_id(struct cluster *c)
{
    char path[4096], buf[40] = "";
    unsigned char raw[16];
    int fd;
    ssize_t n;

    snprintf(path, sizeof(path), "%s/cluster-member-id", c->d->cfg->state_dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n == 32) {
            memcpy(c->self_id, buf, 32);
            c->self_id[32] = 0;
            return 0;
        }
    }
    if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
        return -EIO;
    for (unsigned i = 0; i < 16; i++)
        snprintf(c->self_id + 2 * i, 3, "%02x", raw[i]);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    n = write(fd, c->self_id, 32);
    close(fd);
    return n == 32 ? 0 : -EIO;
}

static void reconcile(struct cluster *c);
static void take_over_orphans(struct cluster *c);
static const char *place(struct cluster *c, const json_t *vm, const char *except, char *reason,
                         size_t len);
static void adopt_handovers(struct cluster *c);
static void claim_own_names(struct cluster *c);

/* ---- the view: one read of the whole prefix ---- */

/* A cluster object (networks/<n>, images/<n>) of the poll; val is stolen. */
static void set_object(struct cluster *c, const char *kind, size_t kind_len, const char *name,
                       json_t *val, int64_t rev)
{
    char k[32];
    json_t *of;

    snprintf(k, sizeof(k), "%.*s", (int)kind_len, kind);
    if (!(of = json_object_get(c->objects, k)))
        json_object_set_new(c->objects, k, of = json_object());
    json_object_set_new(of, name, json_pack("{s:o,s:I}", "value", val, "rev", (json_int_t)rev));
}

static void poll_done(void *arg, const struct etcd_reply *r)
{
    struct cluster *c = arg;
    json_t *members, *alive, *vms;
    const char *name;
    json_t *v;
    size_t plen = strlen(c->prefix);

    c->poll_busy = false;
    if (r->rc == -ECANCELED)
        return;
    if (r->rc) {
        char why[400];
        /* One failed read is an election or a slow disk; two seconds of them is an outage. */
        if (now_ms() - c->last_poll_ok_ms < READ_ONLY_AFTER_MS)
            return;
        snprintf(why, sizeof(why), "etcd unreachable or without quorum (%s)", r->error);
        set_writable(c, false, why);
        return;
    }
    c->last_poll_ok_ms = now_ms();
    members = json_object();
    alive = json_object();
    vms = json_object();
    json_object_clear(c->revs);
    json_object_clear(c->names);
    json_object_clear(c->objects);
    for (size_t i = 0; i < r->nkvs; i++) {
        const char *k = r->kvs[i].key + plen, *slash = strchr(k, '/');
        json_t *val;
        if (strncmp(r->kvs[i].key, c->prefix, plen) || !slash)
            continue;
        if (strncmp(k, "names/", 6) == 0) {
            json_object_set_new(c->names, slash + 1, json_string(r->kvs[i].value));
            continue;
        }
        val = json_loads(r->kvs[i].value, 0, NULL);
        if (!json_is_object(val)) {
            json_decref(val);
            continue;
        }
        if (strncmp(k, "members/", 8) == 0)
            json_object_set_new(members, slash + 1, val);
        else if (strncmp(k, "alive/", 6) == 0)
            json_object_set_new(alive, slash + 1, val);
        else if (strncmp(k, "vms/", 4) == 0) {
            json_object_set_new(vms, slash + 1, val);
            json_object_set_new(c->revs, slash + 1, json_integer(r->kvs[i].mod_revision));
        } else
            set_object(c, k, (size_t)(slash - k), slash + 1, val, r->kvs[i].mod_revision);
    }
    /* Members that came or went since the last look (the first look has nothing before it). */
    json_object_foreach(alive, name, v)
        json_object_set(c->last_beat, name, json_object_get(v, "heartbeat_ms"));
    json_object_foreach(c->revision ? members : NULL, name, v)
    {
        bool was = json_object_get(c->alive, name) != NULL, is = json_object_get(alive, name);
        if (!json_object_get(c->members, name))
            emit(c, "cluster.member_joined", name);
        else if (was && !is)
            emit(c, "cluster.member_offline", name);
        else if (!was && is)
            emit(c, "cluster.member_online", name);
    }
    json_decref(c->members);
    json_decref(c->alive);
    json_decref(c->vms);
    c->members = members;
    c->alive = alive;
    c->vms = vms;
    cluster_networks_poll(c->d, r->revision);
    if (r->revision != c->revision) {
        c->revision = r->revision;
        c->d->generation++; /* lists that include other members' VMs are stale */
    }
    cluster_events_sync(c->events, members, alive, c->d->cfg->cluster_member);
    json_object_foreach(members, name, v)
    {
        if (json_object_get(alive, name))
            json_object_del(c->offline_since, name);
        else if (!json_object_get(c->offline_since, name))
            json_object_set_new(c->offline_since, name, json_integer((json_int_t)now_ms()));
    }
    /* Reachable again, and our lease is alive: writes are fine. */
    if (c->lease && json_object_get(alive, c->d->cfg->cluster_member)) {
        set_writable(c, true, "");
        reconcile(c);
        take_over_orphans(c);
        adopt_handovers(c);
        claim_own_names(c);
    } else if (!c->writable) {
        set_writable(c, false, "this member's lease is not (yet) renewed in etcd");
    }
    cluster_images_poll(c->d);
}

static void on_poll(uv_timer_t *t)
{
    struct cluster *c = t->data;

    if (c->poll_busy)
        return;
    c->poll_busy = etcd_range(c->etcd, c->prefix, true, poll_done, c) == 0;
}

/* ---- heartbeat ---- */

static void heartbeat_put_done(void *arg, const struct etcd_reply *r)
{
    struct cluster *c = arg;

    c->hb_busy = false;
    if (r->rc && r->rc != -ECANCELED)
        log_warn("cluster: heartbeat not written: %s", r->error);
}

static void put_alive(struct cluster *c)
{
    char k[KEY_MAX], *hb = dump(heartbeat_json(c));

    key(c, k, "alive", c->d->cfg->cluster_member);
    c->hb_busy = hb && etcd_put(c->etcd, k, hb, c->lease, heartbeat_put_done, c) == 0;
    free(hb);
}

static void lease_granted(void *arg, const struct etcd_reply *r)
{
    struct cluster *c = arg;

    c->hb_busy = false;
    if (r->rc || !r->lease_id) {
        if (r->rc != -ECANCELED)
            log_warn("cluster: no new lease: %s", r->error ? r->error : "none granted");
        return;
    }
    c->lease = r->lease_id;
    c->lease_ok_ms = c->hb_sent_ms;
    c->fenced = false;
    log_info("cluster: new lease %llx", (unsigned long long)c->lease);
    put_alive(c);
}

static void on_heartbeat(uv_timer_t *t);

static void keepalive_done(void *arg, const struct etcd_reply *r)
{
    struct cluster *c = arg;

    c->hb_busy = false;
    if (r->rc == -ECANCELED)
        return;
    if (r->rc) {
        /* Again soon rather than a third of the TTL later: etcd may be electing a leader. */
        log_warn("cluster: lease not renewed: %s", r->error);
        uv_timer_start(&c->heartbeat, on_heartbeat, KEEPALIVE_RETRY_MS,
                       uv_timer_get_repeat(&c->heartbeat));
        return;
    }
    if (r->ttl <= 0) {
        /* Expired while etcd was out of reach: the others saw us offline and may have
         * started our fenced VMs. Those stay stopped here (reconcile() drops the ones that
         * moved); only an operator starts the others again. A new lease. */
        log_warn("cluster: lease %llx expired; taking a new one", (unsigned long long)c->lease);
        json_object_clear(c->fenced_ids);
        c->hb_sent_ms = now_ms();
        c->hb_busy = etcd_lease_grant(c->etcd, (int64_t)c->d->cfg->cluster_lease_ttl_s,
                                      lease_granted, c) == 0;
        return;
    }
    c->lease_ok_ms = c->hb_sent_ms;
    if (c->fenced)
        c->reconciled = false; /* the same lease: what was fenced is still ours (reconcile) */
    c->fenced = false;
    put_alive(c);
}

static void on_heartbeat(uv_timer_t *t)
{
    struct cluster *c = t->data;

    if (c->hb_busy)
        return;
    c->hb_sent_ms = now_ms();
    c->hb_busy = etcd_lease_keepalive(c->etcd, c->lease, keepalive_done, c) == 0;
}

/* ---- publishing this member's VMs ---- */

static void on_publish(uv_timer_t *t);
static void run_handovers(struct cluster *c);

static void publish_done(void *arg, const struct etcd_reply *r)
{
    struct cluster *c = arg;

    c->publish_busy = false;
    if (r->rc == -ECANCELED)
        return;
    if (r->rc || !r->succeeded) {
        log_warn("cluster: VM records not written: %s",
                 r->rc ? r->error : "this member's lease is not the one in etcd");
        json_object_clear(c->published); /* all of them again, in a second */
        uv_timer_start(&c->publish, on_publish, POLL_MS, 0);
        return;
    }
    run_handovers(c);
    if (c->publish_again) {
        c->publish_again = false;
        cluster_local_changed(c);
    }
}

static void claim_quietly(struct cluster *c, const char *name)
{
    char k[KEY_MAX];

    key(c, k, "names", name);
    etcd_txn(c->etcd, json_pack("[o]", etcd_cmp_absent(k)),
             json_pack("[o]", etcd_op_put(k, c->d->cfg->cluster_member, 0)), NULL, NULL, NULL);
}

/* A published VM's old name, when it is not new_name any more: its claim goes. True then. */
static bool release_old_name(struct cluster *c, const char *old_text, const char *new_name)
{
    json_t *old = old_text ? json_loads(old_text, 0, NULL) : NULL;
    const char *name = json_string_value(json_object_get(old, "name"));
    bool renamed = name && (!new_name || strcmp(name, new_name));

    if (renamed)
        cluster_release_name(c, name);
    json_decref(old);
    return renamed;
}

/* The operations that bring vms/ and names/ in line with the store; NULL on failure. */
static json_t *publish_ops(struct cluster *c)
{
    json_t *ops = json_array(), *seen = json_object(), *vm;
    struct db_vm *vms = NULL;
    size_t n = 0;
    const char *id;
    char k[KEY_MAX];

    if (db_vm_list_page(c->d->db, NULL, NULL, 0, &vms, &n)) {
        json_decref(ops);
        json_decref(seen);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *j = api_vm_to_json(&vms[i]);
        char *text;
        const char *old;
        json_object_set_new(j, "member", json_string(c->d->cfg->cluster_member));
        json_object_set_new(seen, vms[i].id, json_true());
        /* A record that names another member is theirs, unless the VM came here by a live
         * migration: our copy is a stale one that reconcile() drops once it has stopped. */
        const char *owner =
            json_string_value(json_object_get(json_object_get(c->vms, vms[i].id), "member"));
        if ((owner && strcmp(owner, c->d->cfg->cluster_member) &&
             !json_object_get(c->arrived, vms[i].id)) ||
            json_object_get(c->evac_pending, vms[i].id)) {
            json_decref(j);
            continue;
        }
        json_object_del(c->arrived, vms[i].id); /* once written, the record is ours */
        text = dump(j);
        if (!text)
            continue;
        old = json_string_value(json_object_get(c->published, vms[i].id));
        if (!old || strcmp(old, text)) {
            if (!old || release_old_name(c, old, vms[i].name))
                claim_quietly(c, vms[i].name);
            key(c, k, "vms", vms[i].id);
            json_array_append_new(ops, etcd_op_put(k, text, 0));
            json_object_set_new(c->published, vms[i].id, json_string(text));
        }
        free(text);
    }
    db_vm_list_free(vms, n);
    void *iter_safe;
    json_object_foreach_safe(c->published, iter_safe, id, vm)
    {
        if (json_object_get(seen, id))
            continue;
        /* Only the record as we wrote it: a VM that migrated away is its target's now. */
        key(c, k, "vms", id);
        etcd_txn(c->etcd, json_pack("[o]", etcd_cmp_value(k, json_string_value(vm))),
                 json_pack("[o]", etcd_op_delete(k, false)), NULL, NULL, NULL);
        release_old_name(c, json_string_value(vm), NULL);
        json_object_del(c->published, id);
    }
    json_decref(seen);
    return ops;
}

static void on_publish(uv_timer_t *t)
{
    struct cluster *c = t->data;
    json_t *ops;

    if (c->publish_busy) {
        c->publish_again = true;
        return;
    }
    /* Not before this member knows which of its VMs are still its own (reconcile()). */
    if (!c->reconciled)
        return;
    ops = publish_ops(c);
    if (!ops || !json_array_size(ops)) {
        json_decref(ops);
        return;
    }
    /* etcd takes at most 128 operations per transaction: the rest on the next round. */
    while (json_array_size(ops) > 100) {
        json_array_remove(ops, 100);
        c->publish_again = true;
    }
    /*
     * Only under the lease that is ours now: a write sent before a partition may reach etcd
     * after it healed, when the others have taken our "ha" VMs over; it must not undo that.
     */
    char ak[KEY_MAX];
    key(c, ak, "alive", c->d->cfg->cluster_member);
    c->publish_busy = etcd_txn(c->etcd, json_pack("[o]", etcd_cmp_lease(ak, c->lease)), ops, NULL,
                               publish_done, c) == 0;
}

void cluster_local_changed(struct cluster *c)
{
    /* At most PUBLISH_DELAY_MS after the first change, however many follow. */
    if (c && !c->stopping && c->join == JOINED && !uv_is_active((uv_handle_t *)&c->publish))
        uv_timer_start(&c->publish, on_publish, PUBLISH_DELAY_MS, 0);
}

/* ---- "ha": fencing and taking over ---- */

uint64_t cluster_fence_ms(const struct cluster *c)
{
    /* A worker counts from its daemon's death, which may come a third of the TTL after the
     * last renewal: half the TTL leaves the lease a sixth of it, and the others wait a grace
     * on top before they start the VM. */
    return c->d->cfg->cluster_lease_ttl_s * 1000 / 2;
}

/* This member counts from the last renewal etcd answered: the lease outlives that by the
 * TTL, and the others wait a grace more, so three quarters leave a quarter and the grace. */
static uint64_t self_fence_ms(const struct cluster *c)
{
    return c->d->cfg->cluster_lease_ttl_s * 1000 * 3 / 4;
}

static bool is_active(const char *state)
{
    return state &&
           (!strcmp(state, "running") || !strcmp(state, "paused") || !strcmp(state, "starting"));
}

/* No lease renewed for the fencing time: this member's "ha" VMs stop before the others may
 * start them (they wait for the lease to expire, which is later). */
static void on_fence(uv_timer_t *t)
{
    struct cluster *c = t->data;
    struct db_vm *vms = NULL;
    size_t n = 0;

    if (c->fenced || now_ms() - c->lease_ok_ms < self_fence_ms(c))
        return;
    c->fenced = true;
    if (db_vm_list_page(c->d->db, NULL, NULL, 0, &vms, &n))
        return;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(vms[i].ha, "restart") || !is_active(vms[i].state))
            continue;
        log_warn("cluster: no lease renewed for %llu ms: stopping ha VM %s (fenced)",
                 (unsigned long long)(now_ms() - c->lease_ok_ms), vms[i].name);
        supervisor_stop(c->d->sup, vms[i].id, 0, NULL, NULL);
        json_object_set_new(c->fenced_ids, vms[i].id, json_true());
        vm_event(c, "vm.fenced", vms[i].id,
                 json_pack("{s:s,s:s}", "name", vms[i].name, "member", c->d->cfg->cluster_member));
    }
    db_vm_list_free(vms, n);
}

/* The lease is (again) ours: a VM of ours that etcd says another member runs now was taken
 * over while we were away; our copy (fenced or never started) goes. */
static void reconcile(struct cluster *c)
{
    const char *self = c->d->cfg->cluster_member;
    struct db_vm *vms = NULL;
    size_t n = 0;

    if (db_vm_list_page(c->d->db, NULL, NULL, 0, &vms, &n))
        return;
    for (size_t i = 0; i < n; i++) {
        json_t *rec = json_object_get(c->vms, vms[i].id);
        const char *owner = json_string_value(json_object_get(rec, "member"));
        int64_t ev;
        /* Fenced ones are looked at once, the first time after the lease was renewed. */
        bool was_fenced = !c->reconciled && json_object_get(c->fenced_ids, vms[i].id);
        if (!c->reconciled)
            json_object_del(c->fenced_ids, vms[i].id);
        if (!owner || !strcmp(owner, self)) {
            struct api_error err;
            /* Fenced, but nobody took it: the lease came back in time. It runs again. */
            if (was_fenced && !c->fenced &&
                supervisor_start(c->d->sup, &vms[i], NULL, NULL, NULL, &err))
                log_error("cluster: ha VM %s: %s", vms[i].name, err.detail);
            else if (was_fenced && !c->fenced)
                log_info("cluster: ha VM %s is still this member's: started again", vms[i].name);
            continue;
        }
        /* Running here while its record names another member: it has just arrived (a live
         * migration) and our record is not out yet. Only "ha" VMs are taken over, and ours
         * were stopped (fenced) before that could happen. */
        if (is_active(vms[i].state))
            continue;
        log_warn("cluster: VM %s runs on member %s now: dropping this member's copy", vms[i].name,
                 owner);
        supervisor_stop(c->d->sup, vms[i].id, 0, NULL, NULL);
        json_object_del(c->published, vms[i].id); /* never deleted from etcd by us */
        if (db_vm_delete(c->d->db, vms[i].id, &ev) == 0)
            vmmd_event_committed(c->d, ev);
        routes_remove_run_dir(c->d, vms[i].id);
    }
    db_vm_list_free(vms, n);
    if (!c->reconciled) {
        c->reconciled = true;
        cluster_local_changed(c);
    }
}

struct take_over {
    struct cluster *c;
    char id[DB_ID_LEN + 1], from[DB_NAME_MAX + 1];
    json_t *vm; /* the record as the offline member left it */
};

static void take_over_free(struct take_over *t)
{
    json_object_del(t->c->taking, t->id);
    json_decref(t->vm);
    free(t);
}

static void taken_started(struct vmmd_daemon *d, void *ctx, int rc, const char *detail)
{
    char *id = ctx;

    if (rc)
        log_error("cluster: ha VM %s did not start here: %s", id, detail ? detail : "");
    (void)d;
    free(id);
}

/* A VM record that etcd gives this member (a take-over, a hand-over): defined here with its
 * id and definition. 0, or -1 with the reason logged. */
static int define_here(struct cluster *c, const char *id, json_t *rec, struct db_vm *vm)
{
    json_t *def = routes_vm_definition(rec);
    struct api_vm_def parsed;
    struct api_error err;
    char *text;
    int64_t ev;

    json_object_set(def, "name", json_object_get(rec, "name"));
    text = dump(def);
    if (!text || api_parse_vm_create(text, strlen(text), &c->d->limits, &parsed, &err)) {
        log_error("cluster: VM %s: its definition does not fit here: %s", id,
                  text ? err.detail : "out of memory");
        free(text);
        return -1;
    }
    free(text);
    api_vm_def_to_db(&parsed, vm);
    api_vm_def_free(&parsed);
    snprintf(vm->id, sizeof(vm->id), "%s", id);
    if (db_vm_insert(c->d->db, vm, &ev)) {
        log_error("cluster: VM %s: cannot record it: %s", id, db_last_error(c->d->db));
        db_vm_clear(vm);
        return -1;
    }
    vmmd_event_committed(c->d, ev);
    return 0;
}

/* The record is ours in etcd: the VM is defined here with its id and started. */
static void taken(void *arg, const struct etcd_reply *r)
{
    struct take_over *t = arg;
    struct cluster *c = t->c;
    struct api_error err;
    struct db_vm vm;
    char *id;

    if (r->rc || !r->succeeded) {
        if (r->rc != -ECANCELED)
            log_info("cluster: ha VM %s: another member took it, or etcd said no", t->id);
        take_over_free(t);
        return;
    }
    if (define_here(c, t->id, t->vm, &vm)) {
        take_over_free(t);
        return;
    }
    vm_event(c, "vm.ha_restarted", t->id,
             json_pack("{s:s,s:s,s:s}", "name", vm.name, "member", c->d->cfg->cluster_member,
                       "from", t->from));
    log_warn("cluster: member %s is offline: starting its ha VM %s here", t->from, vm.name);
    id = strdup(t->id);
    if (!id || supervisor_start(c->d->sup, &vm, NULL, taken_started, id, &err)) {
        log_error("cluster: ha VM %s: %s", t->id, id ? err.detail : "out of memory");
        free(id);
    }
    db_vm_clear(&vm);
    take_over_free(t);
}

/* Records another member handed over to this one (a stopped VM of an evacuation). */
static void adopt_handovers(struct cluster *c)
{
    const char *self = c->d->cfg->cluster_member, *id;
    json_t *rec;

    json_object_foreach(c->vms, id, rec)
    {
        struct db_vm vm = {0};
        const char *from = json_string_value(json_object_get(rec, "handover_from"));
        if (!from || strcmp(json_string_value(json_object_get(rec, "member")) ?: "", self) ||
            db_vm_get(c->d->db, id, &vm) != -ENOENT) {
            db_vm_clear(&vm);
            continue;
        }
        if (define_here(c, id, rec, &vm) == 0) {
            log_info("cluster: VM %s handed over by member %s", vm.name, from);
            json_object_del(rec, "handover_from"); /* until our record replaces it */
            db_vm_clear(&vm);
        }
    }
}

/* "ha" VMs whose member has been offline past the grace: one member (the one placement picks,
 * made sure by a transaction on the VM's record) starts each. */
/*
 * An "ha" VM restarts elsewhere only when its storage is there too: a volume is
 * a file in its member's pool, which no other member sees. Disks by path (under
 * the image directories, which an operator shares between hosts) are assumed shared.
 */
static bool on_local_storage(const json_t *vm, char *why, size_t len)
{
    size_t i;
    json_t *disk;

    json_array_foreach(json_object_get(vm, "disks"), i, disk)
    {
        const char *vol = json_string_value(json_object_get(disk, "volume"));
        if (vol) {
            snprintf(why, len, "its disk is volume '%s', in its member's own storage", vol);
            return true;
        }
    }
    return false;
}

static bool first_online(struct cluster *c, const char *self)
{
    const char *name;
    json_t *hb;

    json_object_foreach(c->alive, name, hb)
    {
        if (strcmp(name, self) < 0)
            return false;
    }
    return true;
}

static void take_over_orphans(struct cluster *c)
{
    const char *self = c->d->cfg->cluster_member, *id;
    uint64_t now = now_ms();
    json_t *vm;

    if (!c->reconciled)
        return;
    json_object_foreach(c->vms, id, vm)
    {
        const char *owner = json_string_value(json_object_get(vm, "member"));
        const char *name = json_string_value(json_object_get(vm, "name"));
        json_t *since = owner ? json_object_get(c->offline_since, owner) : NULL;
        json_t *mine, *ops;
        char reason[200], k[KEY_MAX], nk[KEY_MAX], *text;
        const char *target;
        struct take_over *t;

        if (!owner || !name || !strcmp(owner, self) || !since ||
            now < (uint64_t)json_integer_value(since) + TAKE_OVER_GRACE_MS ||
            strcmp(json_string_value(json_object_get(vm, "ha")) ?: "", "restart") ||
            !is_active(json_string_value(json_object_get(vm, "state"))) ||
            json_object_get(c->taking, id))
            continue;
        if (on_local_storage(vm, reason, sizeof(reason))) {
            /* Said once in the cluster: by the first online member by name. */
            if (!json_object_get(c->stranded, id) && first_online(c, self)) {
                json_object_set_new(c->stranded, id, json_true());
                log_warn("cluster: ha VM %s of offline member %s stays there: %s", name, owner,
                         reason);
                vm_event(c, "vm.ha_stranded", id,
                         json_pack("{s:s,s:s,s:s,s:s}", "id", id, "name", name, "member", owner,
                                   "reason", reason));
            }
            continue;
        }
        target = cluster_place(c, vm, reason, sizeof(reason));
        if (!target || strcmp(target, self)) {
            log_debug("cluster: ha VM %s of offline member %s: %s starts it (%s)", name, owner,
                      target ? target : "no member", reason);
            continue;
        }
        t = calloc(1, sizeof(*t));
        mine = json_deep_copy(vm);
        if (!t || !mine) {
            free(t);
            json_decref(mine);
            continue;
        }
        t->c = c;
        snprintf(t->id, sizeof(t->id), "%s", id);
        snprintf(t->from, sizeof(t->from), "%s", owner);
        t->vm = json_incref(vm);
        json_object_set_new(mine, "member", json_string(self));
        json_object_set_new(mine, "state", json_string("starting"));
        text = dump(mine);
        key(c, k, "vms", id);
        key(c, nk, "names", name);
        ops = json_pack("[o,o]", etcd_op_put(k, text ? text : "{}", 0), etcd_op_put(nk, self, 0));
        free(text);
        json_object_set_new(c->taking, id, json_true());
        if (etcd_txn(
                c->etcd,
                json_pack("[o]", etcd_cmp_mod(k, json_integer_value(json_object_get(c->revs, id)))),
                ops, NULL, taken, t))
            take_over_free(t);
    }
}

/* Our VMs' names are ours: one that came by migration finds its name claimed by the source
 * until the source lets it go. */
static void claim_own_names(struct cluster *c)
{
    const char *id;
    json_t *rec;

    json_object_foreach(c->vms, id, rec)
    {
        const char *name = json_string_value(json_object_get(rec, "name"));
        if (name &&
            !strcmp(json_string_value(json_object_get(rec, "member")) ?: "",
                    c->d->cfg->cluster_member) &&
            !json_object_get(c->names, name))
            claim_quietly(c, name);
    }
}

/* ---- evacuation ---- */

static void evacuation_step(struct cluster *c, const char *id, bool ok)
{
    if (!json_object_get(c->evac_pending, id))
        return;
    json_object_del(c->evac_pending, id);
    if (ok)
        c->evac_moved++;
    else
        c->evac_failed++;
    if (json_object_size(c->evac_pending) == 0 && c->evacuating) {
        c->evacuating = false;
        log_info("cluster: evacuation done: %u moved, %u failed", c->evac_moved, c->evac_failed);
        vm_event(c, "cluster.evacuation_done", "",
                 json_pack("{s:s,s:I,s:I}", "member", c->d->cfg->cluster_member, "moved",
                           (json_int_t)c->evac_moved, "failed", (json_int_t)c->evac_failed));
    }
}

void cluster_migration_ended(struct cluster *c, const char *vm_id, bool ok)
{
    evacuation_step(c, vm_id, ok);
}

void cluster_vm_arrived(struct cluster *c, const char *vm_id)
{
    json_object_set_new(c->arrived, vm_id, json_true());
    cluster_local_changed(c);
}

struct handover {
    struct cluster *c;
    char id[DB_ID_LEN + 1];
};

/* The record is the target's: the VM leaves this member's store (its disks stay shared). */
static void handed_over(void *arg, const struct etcd_reply *r)
{
    struct handover *h = arg;
    struct cluster *c = h->c;
    int64_t ev;
    bool ok = !r->rc && r->succeeded;

    if (r->rc == -ECANCELED) {
        free(h);
        return;
    }
    if (ok) {
        json_object_del(c->published, h->id); /* not deleted from etcd: it is theirs */
        if (db_vm_delete(c->d->db, h->id, &ev) == 0)
            vmmd_event_committed(c->d, ev);
        routes_remove_run_dir(c->d, h->id);
    } else {
        log_warn("cluster: VM %s not handed over: %s", h->id,
                 r->rc ? r->error : "this member's lease is not the one in etcd");
    }
    evacuation_step(c, h->id, ok);
    free(h);
}

static int hand_over(struct cluster *c, const struct db_vm *vm, const char *target)
{
    json_t *rec = api_vm_to_json(vm), *ops;
    struct handover *h = calloc(1, sizeof(*h));
    char k[KEY_MAX], nk[KEY_MAX], ak[KEY_MAX], *text;

    if (!rec || !h) {
        json_decref(rec);
        free(h);
        return -ENOMEM;
    }
    h->c = c;
    snprintf(h->id, sizeof(h->id), "%s", vm->id);
    json_object_set_new(rec, "member", json_string(target));
    json_object_set_new(rec, "handover_from", json_string(c->d->cfg->cluster_member));
    text = dump(rec);
    key(c, k, "vms", vm->id);
    key(c, nk, "names", vm->name);
    key(c, ak, "alive", c->d->cfg->cluster_member);
    ops = json_pack("[o,o]", etcd_op_put(k, text ? text : "{}", 0), etcd_op_put(nk, target, 0));
    free(text);
    /* Only under our lease: while it lives, nobody has taken our VMs over. */
    if (etcd_txn(c->etcd, json_pack("[o]", etcd_cmp_lease(ak, c->lease)), ops, NULL, handed_over,
                 h)) {
        free(h);
        return -ENOMEM;
    }
    return 0;
}

static void run_handovers(struct cluster *c)
{
    size_t i;
    json_t *h;

    if (c->publish_busy || !json_array_size(c->handovers))
        return;
    json_array_foreach(c->handovers, i, h)
    {
        struct db_vm vm = {0};
        const char *id = json_string_value(json_array_get(h, 0));
        if (db_vm_get(c->d->db, id, &vm) ||
            hand_over(c, &vm, json_string_value(json_array_get(h, 1))))
            evacuation_step(c, id, false);
        db_vm_clear(&vm);
    }
    json_array_clear(c->handovers);
}

int cluster_evacuate(struct cluster *c, json_t **plan, char *why, size_t len)
{
    const char *self = c->d->cfg->cluster_member;
    struct db_vm *vms = NULL;
    size_t n = 0;
    const char **targets;
    char reason[200];

    *plan = NULL;
    if (c->evacuating) {
        snprintf(why, len, "member %s is being evacuated already", self);
        return -EBUSY;
    }
    if (db_vm_list_page(c->d->db, NULL, NULL, 0, &vms, &n)) {
        snprintf(why, len, "the store: %s", db_last_error(c->d->db));
        return -EIO;
    }
    targets = calloc(n ? n : 1, sizeof(*targets));
    if (!targets) {
        db_vm_list_free(vms, n);
        snprintf(why, len, "out of memory");
        return -ENOMEM;
    }
    /* Every VM's place first: nothing moves unless everything can. */
    for (size_t i = 0; i < n; i++) {
        json_t *vm = api_vm_to_json(&vms[i]);
        targets[i] = vm ? place(c, vm, self, reason, sizeof(reason)) : NULL;
        json_decref(vm);
        if (!targets[i]) {
            snprintf(why, len, "VM %s cannot move: %s", vms[i].name, reason);
            free(targets);
            db_vm_list_free(vms, n);
            return -ENOSPC;
        }
    }
    *plan = json_array();
    c->evacuating = true;
    c->evac_moved = c->evac_failed = 0;
    json_object_clear(c->evac_pending);
    for (size_t i = 0; i < n; i++)
        json_object_set_new(c->evac_pending, vms[i].id, json_true());
    vm_event(c, "cluster.evacuation_started", "",
             json_pack("{s:s,s:I}", "member", self, "vms", (json_int_t)n));
    for (size_t i = 0; i < n; i++) {
        bool live = !strcmp(vms[i].state, "running") || !strcmp(vms[i].state, "paused");
        const char *url, *pin;
        int rc = -EHOSTUNREACH;

        json_array_append_new(*plan, json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", vms[i].id, "name",
                                               vms[i].name, "state", vms[i].state, "action",
                                               live ? "migrate" : "move", "target", targets[i]));
        if (!live) {
            /* After any record write in flight, which could land after the hand-over. */
            json_array_append_new(c->handovers, json_pack("[s,s]", vms[i].id, targets[i]));
            rc = 0;
        } else if (cluster_member_address(c, targets[i], &url, &pin)) {
            /* The target's API, with the cluster's secret and the target's pin; the stream
             * itself carries the target worker's one-time ticket. */
            json_t *body = json_pack("{s:s,s:s}", "target", url, "token", c->secret);
            char *text = dump(body);
            struct api_migrate_req mr;
            struct api_error err;
            rc = text && !api_parse_migrate(text, strlen(text), &mr, &err) ? 0 : -EIO;
            if (!rc && pin)
                snprintf(mr.pin, sizeof(mr.pin), "%s", pin);
            if (!rc && routes_migration_begin(c->d, NULL, &vms[i], &mr))
                rc = -EIO;
            free(text);
        }
        if (rc) {
            log_warn("cluster: evacuation: VM %s did not start moving", vms[i].name);
            evacuation_step(c, vms[i].id, false);
        }
    }
    if (n == 0)
        evacuation_step(c, "", true); /* nothing to move: done at once */
    run_handovers(c);
    free(targets);
    db_vm_list_free(vms, n);
    return 0;
}

/* ---- join ---- */

static void join_fail(struct cluster *c, const char *what, const char *detail)
{
    c->join = JOIN_FAILED;
    snprintf(c->join_error, sizeof(c->join_error), "%s%s", what, detail ? detail : "");
}

static void joined(struct cluster *c)
{
    unsigned hb = (unsigned)c->d->cfg->cluster_lease_ttl_s * 1000 / 3;

    c->join = JOINED;
    c->writable = true;
    c->lease_ok_ms = now_ms();
    uv_timer_start(&c->heartbeat, on_heartbeat, hb, hb);
    uv_timer_start(&c->fence, on_fence, FENCE_CHECK_MS, FENCE_CHECK_MS);
    uv_timer_start(&c->poll, on_poll, 0, POLL_MS);
    cluster_local_changed(c);
}

/* The cluster's secret: the first member to look makes it, the others read it. */
static void secret_done(void *arg, const struct etcd_reply *r)
{
    struct cluster *c = arg;

    if (r->rc)
        join_fail(c, "etcd: ", r->error);
    else if (!r->succeeded && (!r->nkvs || strlen(r->kvs[0].value) != 64))
        join_fail(c, "", "the cluster's secret in etcd is not one of vmmd's");
    else {
        if (!r->succeeded)
            memcpy(c->secret, r->kvs[0].value, 65);
        joined(c);
    }
}

static void fetch_secret(struct cluster *c)
{
    unsigned char raw[32];
    char k[KEY_MAX];

    if (getrandom(raw, sizeof(raw), 0) != sizeof(raw)) {
        join_fail(c, "", "no random bytes for the cluster's secret");
        return;
    }
    for (unsigned i = 0; i < sizeof(raw); i++)
        snprintf(c->secret + 2 * i, 3, "%02x", raw[i]);
    key(c, k, "secret", "members");
    if (etcd_txn(c->etcd, json_pack("[o]", etcd_cmp_absent(k)),
                 json_pack("[o]", etcd_op_put(k, c->secret, 0)),
                 json_pack("[o]", etcd_op_range(k, false)), secret_done, c))
        join_fail(c, "etcd: ", "cannot ask for the cluster's secret");
}

static void join_txn_done(void *arg, const struct etcd_reply *r)
{
    struct cluster *c = arg;

    if (r->rc)
        join_fail(c, "etcd: ", r->error);
    else if (!r->succeeded)
        join_fail(c, "",
                  c->d->cfg->cluster_join_token
                      ? "the join token is not valid (unknown, used or expired), or the member "
                        "name was taken meanwhile"
                      : "the cluster has members: joining it needs --cluster-join-token (make "
                        "one on a member: vmctl cluster join-token)");
    else
        fetch_secret(c);
}

/* members/ read: rejoin with our own record, bootstrap an empty cluster, or use the token. */
static void members_read(void *arg, const struct etcd_reply *r)
{
    struct cluster *c = arg;
    const char *self = c->d->cfg->cluster_member;
    char mk[KEY_MAX], ak[KEY_MAX], tk[KEY_MAX], *rec, *hb;
    json_t *compare = json_array(), *ops = json_array();
    bool mine = false;

    if (r->rc) {
        join_fail(c, "etcd: ", r->error);
        goto out;
    }
    key(c, mk, "members", self);
    key(c, ak, "alive", self);
    for (size_t i = 0; i < r->nkvs; i++) {
        json_t *m;
        if (strcmp(r->kvs[i].key, mk))
            continue;
        m = json_loads(r->kvs[i].value, 0, NULL);
        mine = m && strcmp(json_string_value(json_object_get(m, "id")) ?: "", c->self_id) == 0;
        if (!mine) {
            json_decref(m);
            join_fail(c, "the member name is taken by another host in this cluster: ", self);
            goto out;
        }
        c->joined_ms = (uint64_t)json_integer_value(json_object_get(m, "joined_ms"));
        json_decref(m);
    }
    if (!c->joined_ms)
        c->joined_ms = now_ms();
    rec = dump(member_record(c));
    hb = dump(heartbeat_json(c));
    json_array_append_new(ops, etcd_op_put(mk, rec, 0));
    json_array_append_new(ops, etcd_op_put(ak, hb, c->lease));
    free(rec);
    free(hb);
    if (mine) {
        json_array_append_new(compare, etcd_cmp_present(mk));
    } else if (r->nkvs == 0) {
        json_array_append_new(compare, etcd_cmp_absent(mk)); /* the first member */
    } else {
        if (!c->d->cfg->cluster_join_token) {
            join_txn_done(c, &(struct etcd_reply){.succeeded = false});
            goto out;
        }
        key(c, tk, "join", c->d->cfg->cluster_join_token);
        json_array_append_new(compare, etcd_cmp_absent(mk));
        json_array_append_new(compare, etcd_cmp_present(tk));
        json_array_append_new(ops, etcd_op_delete(tk, false));
    }
    if (etcd_txn(c->etcd, compare, ops, NULL, join_txn_done, c))
        join_fail(c, "etcd: ", "cannot send the join");
    return;
out:
    json_decref(compare);
    json_decref(ops);
}

static void join_lease(void *arg, const struct etcd_reply *r)
{
    struct cluster *c = arg;
    char k[KEY_MAX];

    if (r->rc || !r->lease_id) {
        join_fail(c, "etcd: ", r->error ? r->error : "no lease granted");
        return;
    }
    c->lease = r->lease_id;
    snprintf(k, sizeof(k), "%smembers/", c->prefix);
    if (etcd_range(c->etcd, k, true, members_read, c))
        join_fail(c, "etcd: ", "cannot read the members");
}

static void cluster_free(struct cluster *c)
{
    cluster_events_free(c->events);
    json_decref(c->members);
    json_decref(c->alive);
    json_decref(c->vms);
    json_decref(c->published);
    json_decref(c->last_beat);
    json_decref(c->fenced_ids);
    json_decref(c->names);
    json_decref(c->objects);
    json_decref(c->arrived);
    json_decref(c->handovers);
    json_decref(c->evac_pending);
    json_decref(c->taking);
    json_decref(c->stranded);
    json_decref(c->offline_since);
    json_decref(c->revs);
    free(c);
}

int cluster_join(struct vmmd_daemon *d, struct cluster **out, char *err, size_t errlen)
{
    struct cluster *c = calloc(1, sizeof(*c));
    int rc;

    *out = NULL;
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->d = d;
    snprintf(c->prefix, sizeof(c->prefix), "/vmmd/%s/", d->cfg->cluster_name);
    c->members = json_object();
    c->alive = json_object();
    c->vms = json_object();
    c->published = json_object();
    c->last_beat = json_object();
    c->fenced_ids = json_object();
    c->names = json_object();
    c->objects = json_object();
    c->arrived = json_object();
    c->handovers = json_array();
    c->evac_pending = json_object();
    c->taking = json_object();
    c->stranded = json_object();
    c->offline_since = json_object();
    c->revs = json_object();
    if (!(c->events = cluster_events_new(d, c))) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = load_or_make_id(c))) {
        snprintf(err, errlen, "cluster member id in %s: %s", d->cfg->state_dir, strerror(-rc));
        goto fail;
    }
    /* Short enough that a lease renewal tries every endpoint well within the fencing time. */
    unsigned timeout = (unsigned)d->cfg->cluster_lease_ttl_s * 1000 / 6;
    c->etcd = etcd_new(d->loop, d->cfg->cluster_etcd,
                       timeout < REQUEST_TIMEOUT_MS ? timeout : REQUEST_TIMEOUT_MS, err, errlen);
    if (!c->etcd) {
        rc = -EINVAL;
        goto fail;
    }
    uv_timer_init(d->loop, &c->heartbeat);
    uv_timer_init(d->loop, &c->poll);
    uv_timer_init(d->loop, &c->publish);
    uv_timer_init(d->loop, &c->fence);
    c->heartbeat.data = c->poll.data = c->publish.data = c->fence.data = c;
    if (etcd_lease_grant(c->etcd, (int64_t)d->cfg->cluster_lease_ttl_s, join_lease, c)) {
        snprintf(err, errlen, "cannot ask etcd for a lease");
        rc = -ENOMEM;
        goto fail_timers;
    }
    while (c->join == JOINING)
        uv_run(d->loop, UV_RUN_ONCE);
    if (c->join == JOIN_FAILED) {
        snprintf(err, errlen, "joining cluster '%s' as '%s': %s", d->cfg->cluster_name,
                 d->cfg->cluster_member, c->join_error);
        rc = -EPERM;
        goto fail_timers;
    }
    log_info("cluster: member '%s' of '%s' (etcd %s, lease TTL %llu s)", d->cfg->cluster_member,
             d->cfg->cluster_name, d->cfg->cluster_etcd,
             (unsigned long long)d->cfg->cluster_lease_ttl_s);
    *out = c;
    return 0;
fail_timers:
    cluster_stop(c);
    return rc;
fail:
    cluster_free(c);
    return rc;
}

static void on_closed(uv_handle_t *h)
{
    struct cluster *c = h->data;

    /* The last of the four timers to close frees. */
    if (++c->closed < 4)
        return;
    cluster_free(c);
}

void cluster_stop(struct cluster *c)
{
    if (!c || c->stopping)
        return;
    c->stopping = true;
    etcd_free(c->etcd); /* callbacks get -ECANCELED and leave c alone */
    c->etcd = NULL;
    cluster_events_free(c->events);
    c->events = NULL;
    uv_close((uv_handle_t *)&c->heartbeat, on_closed);
    uv_close((uv_handle_t *)&c->poll, on_closed);
    uv_close((uv_handle_t *)&c->publish, on_closed);
    uv_close((uv_handle_t *)&c->fence, on_closed);
}

/* ---- the view, for the routes ---- */

struct etcd *cluster_etcd(struct cluster *c)
{
    return c->etcd;
}

void cluster_key(const struct cluster *c, char *out, size_t len, const char *kind,
                 const char *name)
{
    snprintf(out, len, "%s%s/%s", c->prefix, kind, name);
}

int64_t cluster_lease(const struct cluster *c)
{
    return c->lease;
}

json_t *cluster_objects(struct cluster *c, const char *kind)
{
    return json_object_get(c->objects, kind);
}

const char *cluster_member_name(const struct cluster *c)
{
    return c->d->cfg->cluster_member;
}

const char *cluster_secret(const struct cluster *c)
{
    return c ? c->secret : NULL;
}

void cluster_serving(struct cluster *c)
{
    char k[KEY_MAX], *rec;

    if (!c)
        return;
    rec = dump(member_record(c));
    key(c, k, "members", c->d->cfg->cluster_member);
    if (rec)
        etcd_put(c->etcd, k, rec, 0, NULL, NULL);
    free(rec);
}

bool cluster_member_address(struct cluster *c, const char *name, const char **url, const char **pin)
{
    json_t *rec = json_object_get(c->members, name);

    *url = json_string_value(json_object_get(rec, "address"));
    *pin = json_string_value(json_object_get(rec, "tls_pin"));
    return *url && json_object_get(c->alive, name);
}

json_t *cluster_peers(struct cluster *c)
{
    json_t *out = json_array();
    const char *name, *url, *pin;
    json_t *rec;

    json_object_foreach(c->members, name, rec)
    {
        if (strcmp(name, c->d->cfg->cluster_member) && cluster_member_address(c, name, &url, &pin))
            json_array_append_new(out, json_string(name));
    }
    return out;
}

const char *cluster_place(struct cluster *c, const json_t *vm, char *reason, size_t len)
{
    return place(c, vm, NULL, reason, len);
}

bool cluster_names_have(const json_t *names, const char *name)
{
    size_t i;
    json_t *v;

    json_array_foreach(names, i, v)
    {
        if (json_is_string(v) && !strcmp(json_string_value(v), name))
            return true;
    }
    return false;
}

static int by_cstring(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *cluster_members_listing(struct cluster *c, const char *key, const char *name, bool self)
{
    const char *me = c->d->cfg->cluster_member, *m, **names;
    json_t *out = json_array(), *hb;
    size_t n = 0;

    if (!(names = calloc(json_object_size(c->alive) + 1, sizeof(*names))))
        return out;
    if (self)
        names[n++] = me;
    json_object_foreach(c->alive, m, hb)
    {
        if (strcmp(m, me) && cluster_names_have(json_object_get(hb, key), name))
            names[n++] = m;
    }
    qsort(names, n, sizeof(*names), by_cstring);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, json_string(names[i]));
    free(names);
    return out;
}

/* Why member (record rec, heartbeat hb) cannot run vm, into why; false when it can. */
static bool unfit(struct cluster *c, const json_t *vm, const json_t *rec, const json_t *hb,
                  char *why, size_t len)
{
    const json_t *cap = json_object_get(rec, "capacity"), *modes = json_object_get(rec, "modes");
    int64_t total = json_integer_value(json_object_get(cap, "memory_bytes"));
    int64_t used =
        json_integer_value(json_object_get(json_object_get(hb, "allocation"), "memory_bytes"));
    int64_t cpus = json_integer_value(json_object_get(cap, "vcpus"));
    /* A create's body may leave these out: the definition's defaults apply. */
    json_t *jm = json_object_get(vm, "memory_mib"), *jc = json_object_get(vm, "vcpus");
    int64_t mem = jm ? json_integer_value(jm) : API_DEFAULT_MEMORY_MIB;
    int64_t vcpus = jc ? json_integer_value(jc) : API_DEFAULT_VCPUS;
    const char *mode = json_string_value(json_object_get(vm, "mode")) ?: API_DEFAULT_MODE;
    json_t *dev;
    size_t i;

    if (!hb)
        return snprintf(why, len, "offline"), true;
    if (json_is_array(modes) && !cluster_names_have(modes, mode))
        return snprintf(why, len, "cannot run %s mode (no /dev/kvm)", mode), true;
    if (cpus < (vcpus > 0 ? vcpus : 1))
        return snprintf(why, len, "has %lld CPUs", (long long)cpus), true;
    if (total - used < (mem > 0 ? mem : 0) << 20)
        return snprintf(why, len, "has %lld MiB free", (long long)((total - used) >> 20)), true;
    json_array_foreach(json_object_get(vm, "disks"), i, dev)
    {
        const char *vol = json_string_value(json_object_get(dev, "volume"));
        if (vol && !cluster_names_have(json_object_get(hb, "volumes"), vol))
            return snprintf(why, len, "has no volume '%s'", vol), true;
    }
    json_array_foreach(json_object_get(vm, "nics"), i, dev)
    {
        const char *net = json_string_value(json_object_get(dev, "network"));
        if (!net || cluster_names_have(json_object_get(hb, "networks"), net))
            continue;
        if (!json_is_true(json_object_get(rec, "networks_managed")))
            return snprintf(why, len, "manages no networks (--no-networks)"), true;
        if (!cluster_networks_defines(c->d, net))
            return snprintf(why, len, "has no network '%s'", net), true;
    }
    return false;
}

static const char *place(struct cluster *c, const json_t *vm, const char *except, char *reason,
                         size_t len)
{
    const char *name, *best = NULL;
    json_t *rec;
    int64_t best_free = 0;
    struct strbuf no = {0};

    /* The online member with the most free memory that has what the VM needs. */
    json_object_foreach(c->members, name, rec)
    {
        json_t *hb = json_object_get(c->alive, name), *cap = json_object_get(rec, "capacity");
        int64_t free_bytes =
            json_integer_value(json_object_get(cap, "memory_bytes")) -
            json_integer_value(json_object_get(json_object_get(hb, "allocation"), "memory_bytes"));
        char why[160];

        if (except && !strcmp(name, except))
            continue;
        if (!json_string_value(json_object_get(rec, "address")) &&
            strcmp(name, c->d->cfg->cluster_member))
            snprintf(why, sizeof(why), "advertises no address");
        else if (!unfit(c, vm, rec, hb, why, sizeof(why))) {
            if (!best || free_bytes > best_free) {
                best = name;
                best_free = free_bytes;
            }
            continue;
        }
        strbuf_printf(&no, "%s%s %s", no.len ? "; " : "", name, why);
    }
    if (best)
        snprintf(reason, len, "the online member with the most free memory (%lld MiB free)",
                 (long long)(best_free >> 20));
    else
        snprintf(reason, len, "no member has what it needs: %s", no.len ? no.buf : "none other");
    free(no.buf);
    return best;
}

bool cluster_read_only(const struct cluster *c, const char **detail)
{
    *detail = c->detail;
    return !c->writable;
}

static json_t *member_json(struct cluster *c, const char *name, json_t *rec)
{
    json_t *hb = json_object_get(c->alive, name), *m;
    uint64_t beat = (uint64_t)json_integer_value(json_object_get(c->last_beat, name));
    char joined[32], last[32];

    rfc3339((uint64_t)json_integer_value(json_object_get(rec, "joined_ms")), joined);
    rfc3339(beat, last);
    m = json_pack("{s:s,s:O,s:s,s:O,s:s,s:o,s:O,s:O,s:b,s:b}", "name", name, "address",
                  json_object_get(rec, "address") ?: json_null(), "state",
                  hb ? "online" : "offline", "version",
                  json_object_get(rec, "version") ?: json_null(), "joined_at", joined,
                  "last_heartbeat", beat ? json_string(last) : json_null(), "capacity",
                  json_object_get(rec, "capacity") ?: json_null(), "allocation",
                  json_object_get(hb, "allocation") ?: json_null(), "self",
                  strcmp(name, c->d->cfg->cluster_member) == 0, "evacuating",
                  json_is_true(json_object_get(hb, "evacuating")));
    return m;
}

static int by_name(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));
    return strcmp(x ?: "", y ?: "");
}

/* arr sorted by each element's "name". */
static void sort_by_name(json_t *arr)
{
    size_t n = json_array_size(arr);
    json_t **items = calloc(n ? n : 1, sizeof(*items));

    if (!items)
        return;
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(arr, i));
    qsort(items, n, sizeof(*items), by_name);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, items[i]);
    free(items);
}

json_t *cluster_status_json(struct cluster *c)
{
    json_t *members = json_array(), *rec;
    const char *name;

    json_object_foreach(c->members, name, rec)
        json_array_append_new(members, member_json(c, name, rec));
    sort_by_name(members);
    return json_pack("{s:b,s:s,s:s,s:b,s:o,s:I,s:o}", "enabled", 1, "name", c->d->cfg->cluster_name,
                     "member", c->d->cfg->cluster_member, "writable", c->writable, "detail",
                     c->writable ? json_null() : json_string(c->detail), "lease_ttl_s",
                     (json_int_t)c->d->cfg->cluster_lease_ttl_s, "members", members);
}

/* A VM record of another member as GET shows it: "unknown" while that member is offline. */
static json_t *remote_view(struct cluster *c, json_t *vm)
{
    const char *member = json_string_value(json_object_get(vm, "member"));
    json_t *copy;

    if (!member || strcmp(member, c->d->cfg->cluster_member) == 0)
        return NULL;
    copy = json_deep_copy(vm);
    if (copy && !json_object_get(c->alive, member))
        json_object_set_new(copy, "state", json_string("unknown"));
    return copy;
}

json_t *cluster_remote_vm(struct cluster *c, const char *id_or_name)
{
    const char *id;
    json_t *vm = json_object_get(c->vms, id_or_name);

    if (vm)
        return remote_view(c, vm);
    json_object_foreach(c->vms, id, vm)
    {
        const char *name = json_string_value(json_object_get(vm, "name"));
        if (name && strcmp(name, id_or_name) == 0)
            return remote_view(c, vm);
    }
    return NULL;
}

void cluster_note_vm(struct cluster *c, json_t *vm)
{
    const char *id = json_string_value(json_object_get(vm, "id"));

    if (id && json_is_string(json_object_get(vm, "member"))) {
        json_object_set_new(c->vms, id, json_deep_copy(vm));
        c->d->generation++;
    }
}

json_t *cluster_remote_vms(struct cluster *c)
{
    json_t *out = json_array(), *vm, *view;
    const char *id;

    json_object_foreach(c->vms, id, vm) if ((view = remote_view(c, vm)))
        json_array_append_new(out, view);
    sort_by_name(out);
    return out;
}

/* ---- claims, removal, join tokens ---- */

struct claim {
    struct cluster *c;
    cluster_claim_fn done;
    cluster_token_fn token_done;
    void *arg;
    char name[KEY_MAX];
    char token[65];
    uint64_t expires_ms;
};

static struct claim *claim_new(struct cluster *c, const char *name, cluster_claim_fn done,
                               cluster_token_fn token_done, void *arg)
{
    struct claim *cl = calloc(1, sizeof(*cl));

    if (cl) {
        cl->c = c;
        cl->done = done;
        cl->token_done = token_done;
        cl->arg = arg;
        snprintf(cl->name, sizeof(cl->name), "%s", name);
    }
    return cl;
}

/* What a request's answer says when etcd did not answer it. */
static void read_only_detail(char *detail, size_t len, const char *error)
{
    snprintf(detail, len, "the cluster is read-only: etcd %s", error ? error : "gave no answer");
}

static void claim_done(void *arg, const struct etcd_reply *r)
{
    struct claim *cl = arg;
    char detail[600];

    if (r->rc) {
        read_only_detail(detail, sizeof(detail), r->error);
        cl->done(cl->arg, -EHOSTUNREACH, detail);
    } else if (!r->succeeded &&
               !(r->nkvs && strcmp(r->kvs[0].value, cl->c->d->cfg->cluster_member) == 0)) {
        const char *holder = r->nkvs ? r->kvs[0].value : "another member";
        snprintf(detail, sizeof(detail), "name '%s' is taken by a VM on member %s", cl->name,
                 holder);
        cl->done(cl->arg, -EEXIST, detail);
    } else {
        cl->done(cl->arg, 0, NULL);
    }
    free(cl);
}

int cluster_claim_name(struct cluster *c, const char *name, cluster_claim_fn done, void *arg)
{
    struct claim *cl = claim_new(c, name, done, NULL, arg);
    char k[KEY_MAX];
    int rc;

    if (!cl)
        return -ENOMEM;
    key(c, k, "names", name);
    /* Free: claim it; else say whose (ours is fine: the store refuses a second VM). */
    rc = etcd_txn(c->etcd, json_pack("[o]", etcd_cmp_absent(k)),
                  json_pack("[o]", etcd_op_put(k, c->d->cfg->cluster_member, 0)),
                  json_pack("[o]", etcd_op_range(k, false)), claim_done, cl);
    if (rc)
        free(cl);
    return rc;
}

void cluster_release_name(struct cluster *c, const char *name)
{
    char k[KEY_MAX];

    key(c, k, "names", name);
    etcd_txn(c->etcd, json_pack("[o]", etcd_cmp_value(k, c->d->cfg->cluster_member)),
             json_pack("[o]", etcd_op_delete(k, false)), NULL, NULL, NULL);
}

static void removed(void *arg, const struct etcd_reply *r)
{
    struct claim *cl = arg;
    char detail[600];

    if (r->rc) {
        read_only_detail(detail, sizeof(detail), r->error);
        cl->done(cl->arg, -EHOSTUNREACH, detail);
    } else if (!r->succeeded) {
        snprintf(detail, sizeof(detail), "member %s came back online meanwhile", cl->name);
        cl->done(cl->arg, -EBUSY, detail);
    } else {
        emit(cl->c, "cluster.member_removed", cl->name);
        json_object_del(cl->c->members, cl->name);
        cl->done(cl->arg, 0, NULL);
    }
    free(cl);
}

int cluster_remove_member(struct cluster *c, const char *name, cluster_claim_fn done, void *arg)
{
    struct claim *cl;
    json_t *ops = json_array(), *vm;
    const char *id, *n;
    char k[KEY_MAX];
    int rc;

    if (!json_object_get(c->members, name)) {
        json_decref(ops);
        return -ENOENT;
    }
    if (strcmp(name, c->d->cfg->cluster_member) == 0 || json_object_get(c->alive, name)) {
        json_decref(ops);
        return -EBUSY;
    }
    cl = claim_new(c, name, done, NULL, arg);
    if (!cl) {
        json_decref(ops);
        return -ENOMEM;
    }
    key(c, k, "members", name);
    json_array_append_new(ops, etcd_op_delete(k, false));
    json_object_foreach(c->vms, id, vm)
    {
        const char *member = json_string_value(json_object_get(vm, "member"));
        if (!member || strcmp(member, name))
            continue;
        key(c, k, "vms", id);
        json_array_append_new(ops, etcd_op_delete(k, false));
        if ((n = json_string_value(json_object_get(vm, "name")))) {
            key(c, k, "names", n);
            json_array_append_new(ops, etcd_op_delete(k, false));
        }
    }
    /* Only while it is still offline: its alive key absent. */
    key(c, k, "alive", name);
    rc = etcd_txn(c->etcd, json_pack("[o]", etcd_cmp_absent(k)), ops, NULL, removed, cl);
    if (rc)
        free(cl);
    return rc;
}

static void token_put(void *arg, const struct etcd_reply *r)
{
    struct claim *cl = arg;
    char detail[600], expires[32];

    if (r->rc) {
        read_only_detail(detail, sizeof(detail), r->error);
        cl->token_done(cl->arg, -EHOSTUNREACH, NULL, detail);
    } else {
        rfc3339(cl->expires_ms, expires);
        cl->token_done(cl->arg, 0, cl->token, expires);
    }
    free(cl);
}

static void token_lease(void *arg, const struct etcd_reply *r)
{
    struct claim *cl = arg;
    char k[KEY_MAX], detail[600];

    if (r->rc || !r->lease_id) {
        read_only_detail(detail, sizeof(detail), r->error ? r->error : "granted no lease");
        cl->token_done(cl->arg, -EHOSTUNREACH, NULL, detail);
        free(cl);
        return;
    }
    key(cl->c, k, "join", cl->token);
    if (etcd_put(cl->c->etcd, k, cl->c->d->cfg->cluster_member, r->lease_id, token_put, cl)) {
        cl->token_done(cl->arg, -ENOMEM, NULL, "out of memory");
        free(cl);
    }
}

int cluster_make_join_token(struct cluster *c, unsigned ttl_s, cluster_token_fn done, void *arg)
{
    struct claim *cl = claim_new(c, "", NULL, done, arg);
    unsigned char raw[24];
    int rc;

    if (!cl)
        return -ENOMEM;
    if (getrandom(raw, sizeof(raw), 0) != sizeof(raw)) {
        free(cl);
        return -EIO;
    }
    for (unsigned i = 0; i < sizeof(raw); i++)
        snprintf(cl->token + 2 * i, 3, "%02x", raw[i]);
    cl->expires_ms = now_ms() + (uint64_t)ttl_s * 1000;
    rc = etcd_lease_grant(c->etcd, ttl_s, token_lease, cl);
    if (rc)
        free(cl);
    return rc;
}

void cluster_metrics(struct cluster *c, struct strbuf *out)
{
    unsigned online = 0, offline = 0;
    uint64_t ok, failed;
    const char *name;
    json_t *rec;

    json_object_foreach(c->members, name, rec)
    {
        if (json_object_get(c->alive, name))
            online++;
        else
            offline++;
    }
    etcd_counts(c->etcd, &ok, &failed);
    metrics_family(out, "vmmd_cluster_events_copied_total", "counter",
                   "Other members' events copied into this member's event stream.");
    strbuf_printf(out, "vmmd_cluster_events_copied_total %llu\n",
                  c->events ? cluster_events_copied(c->events) : 0ULL);
    metrics_family(out, "vmmd_cluster_members", "gauge", "Cluster members by state.");
    strbuf_printf(out, "vmmd_cluster_members{state=\"online\"} %u\n", online);
    strbuf_printf(out, "vmmd_cluster_members{state=\"offline\"} %u\n", offline);
    metrics_family(out, "vmmd_cluster_writable", "gauge",
                   "1 while etcd answers with a quorum; 0: the cluster is read-only.");
    strbuf_printf(out, "vmmd_cluster_writable %d\n", c->writable ? 1 : 0);
    metrics_family(out, "vmmd_cluster_etcd_requests_total", "counter",
                   "Requests to etcd, answered or failed on every endpoint.");
    strbuf_printf(out, "vmmd_cluster_etcd_requests_total{result=\"ok\"} %llu\n",
                  (unsigned long long)ok);
    strbuf_printf(out, "vmmd_cluster_etcd_requests_total{result=\"error\"} %llu\n",
                  (unsigned long long)failed);
}
