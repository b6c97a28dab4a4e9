/*
 * GET /metrics in the Prometheus text format. Per VM (labels id, name,
 * mode): state, vCPUs, memory, and from its worker's stats while it runs:
 * uptime, exits by reason, console bytes, disk and network traffic. For the
 * daemon: HTTP requests by route and status with a latency histogram,
 * workers, database size, events emitted and event stream clients.
 *
 * A scrape asks every running VM's worker for its stats at once and answers
 * when all have replied, or after SCRAPE_DEADLINE_MS with what it has (a VM
 * whose worker did not answer in time loses only its worker-fed series, and
 * vmmd_scrape_workers_unanswered says how many did not).
 *
 * In a cluster the answer covers every member: this member's series and each
 * online member's own (GET /metrics?local=1, fetched at once, waited for at
 * most CLUSTER_SCRAPE_MS), every sample labelled with its member, and
 * vmmd_cluster_scrape_ok saying whose series are in it. A Prometheus that
 * scrapes every member should ask for ?local=1: each series once.
 */
#include "routes.h"
#include "cluster.h"
#include "cluster_forward.h"
#include "event_policy.h"
#include "lifecycle.h"
#include "metrics.h"
#include "supervisor.h"
#include "networks.h"
#include "storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRAPE_DEADLINE_MS 1000

static struct metrics_http http_metrics;

static void observe(struct vmmd_daemon *d, const char *method, const char *route, unsigned status,
                    uint64_t ns)
{
    (void)d;
    metrics_http_observe(&http_metrics, method, route, status, (double)ns / 1e9);
}

void routes_metrics_init(void);
void routes_metrics_init(void)
{
    http_observer = observe;
}

struct scrape;

struct scrape_slot {
    struct scrape *s;
    size_t index;
};

#define CLUSTER_SCRAPE_MS 2000

struct scrape {
    struct vmmd_daemon *d;
    struct http_request *req;
    bool cluster; /* the other members' series too */
    struct db_vm *vms;
    size_t n;
    json_t **stats;            /* the worker's stats reply per VM; NULL when none */
    struct scrape_slot *slots; /* one per VM, the context of its stats command */
    unsigned waiting;          /* stats replies still to come */
    unsigned refs;             /* waiting replies, and the deadline timer while open */
    bool answered;
    bool timer_open;
    uv_timer_t deadline;
};

static void scrape_unref(struct scrape *s)
{
    if (--s->refs)
        return;
    for (size_t i = 0; s->stats && i < s->n; i++)
        json_decref(s->stats[i]);
    db_vm_list_free(s->vms, s->n);
    free(s->stats);
    free(s->slots);
    free(s);
}

/* id="..",name="..",mode=".." for a VM, escaped. */
static void vm_labels(const struct db_vm *vm, char *out, size_t size)
{
    char id[sizeof(vm->id) * 2], name[sizeof(vm->name) * 2], mode[sizeof(vm->mode) * 2];

    metrics_escape(vm->id, id, sizeof(id));
    metrics_escape(vm->name, name, sizeof(name));
    metrics_escape(vm->mode, mode, sizeof(mode));
    snprintf(out, size, "id=\"%s\",name=\"%s\",mode=\"%s\"", id, name, mode);
}

static unsigned long long stat_u64(json_t *obj, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(obj, key));

    return v > 0 ? (unsigned long long)v : 0;
}

/*
 * A VM's disk or network counters, a series per device of its definition
 * (label device: disk0.., net0..). The numbers come from the running
 * worker's stats reply ("disks"/"nics": one object per device, in
 * definition order); a VM without a worker shows 0.
 */
struct device_counter {
    const char *metric, *type, *help, *key; /* a key in _ns becomes seconds */
};

static const struct device_counter disk_counters[] = {
    {"vmmd_vm_disk_read_bytes_total", "counter", "Bytes the guest read from a disk.", "read_bytes"},
    {"vmmd_vm_disk_written_bytes_total", "counter", "Bytes the guest wrote to a disk.",
     "write_bytes"},
    {"vmmd_vm_disk_reads_total", "counter", "Read requests the guest made to a disk.", "read_ops"},
    {"vmmd_vm_disk_writes_total", "counter", "Write requests the guest made to a disk.",
     "write_ops"},
    {"vmmd_vm_disk_flushes_total", "counter", "Flush requests the guest made to a disk.",
     "flush_ops"},
    {"vmmd_vm_disk_errors_total", "counter", "Disk requests that failed on the host.", "errors"},
    {"vmmd_vm_disk_throttled_seconds_total", "counter",
     "Time requests to a disk waited for its I/O limits.", "throttled_ns"},
    {"vmmd_vm_disk_throttled_total", "counter",
     "Times requests to a disk had to wait for its I/O limits.", "throttled_events"},
};

static const struct device_counter nic_counters[] = {
    {"vmmd_vm_network_receive_bytes_total", "counter", "Bytes a NIC delivered to the guest.",
     "rx_bytes"},
    {"vmmd_vm_network_transmit_bytes_total", "counter", "Bytes the guest sent through a NIC.",
     "tx_bytes"},
    {"vmmd_vm_network_receive_packets_total", "counter", "Packets a NIC delivered to the guest.",
     "rx_packets"},
    {"vmmd_vm_network_transmit_packets_total", "counter", "Packets the guest sent through a NIC.",
     "tx_packets"},
    {"vmmd_vm_network_drops_total", "counter", "Packets a NIC dropped.", "drops"},
    {"vmmd_vm_network_throttled_seconds_total", "counter",
     "Time a NIC's packets waited for its I/O limits (both directions added).", "throttled_ns"},
    {"vmmd_vm_network_throttled_total", "counter",
     "Times a NIC's packets had to wait for its I/O limits (both directions).", "throttled_events"},
};

static void device_metrics(struct strbuf *t, const struct scrape *s, bool disks,
                           const struct device_counter *counters, size_t n_counters)
{
    for (size_t c = 0; c < n_counters; c++) {
        metrics_family(t, counters[c].metric, counters[c].type, counters[c].help);
        for (size_t i = 0; i < s->n; i++) {
            const struct db_vm *vm = &s->vms[i];
            json_t *defined = json_loads(disks ? vm->disks_json : vm->nics_json, 0, NULL);
            json_t *counted = json_object_get(s->stats[i], disks ? "disks" : "nics");
            char labels[256];
            size_t key_len = strlen(counters[c].key);
            bool in_ns = key_len > 3 && strcmp(counters[c].key + key_len - 3, "_ns") == 0;

            vm_labels(vm, labels, sizeof(labels));
            for (size_t dev = 0; dev < json_array_size(defined); dev++) {
                unsigned long long v = stat_u64(json_array_get(counted, dev), counters[c].key);
                if (in_ns)
                    strbuf_printf(t, "%s{%s,device=\"%s%zu\"} %.9f\n", counters[c].metric, labels,
                                  disks ? "disk" : "net", dev, (double)v / 1e9);
                else
                    strbuf_printf(t, "%s{%s,device=\"%s%zu\"} %llu\n", counters[c].metric, labels,
                                  disks ? "disk" : "net", dev, v);
            }
            json_decref(defined);
        }
    }
}

static void vm_metrics(struct strbuf *t, const struct scrape *s)
{
    char labels[256];
    const char *key;
    json_t *v;

    metrics_family(t, "vmmd_vm_state", "gauge", "1 for the state the VM is in, 0 for the others.");
    for (size_t i = 0; i < s->n; i++) {
        vm_labels(&s->vms[i], labels, sizeof(labels));
        for (int st = 0; st < VMMD_STATE_COUNT; st++)
            strbuf_printf(t, "vmmd_vm_state{%s,state=\"%s\"} %d\n", labels,
                           vmmd_state_name((enum vmmd_state)st),
                           strcmp(s->vms[i].state, vmmd_state_name((enum vmmd_state)st)) == 0);
    }
    metrics_family(t, "vmmd_vm_vcpus", "gauge", "Virtual CPUs of the VM.");
    for (size_t i = 0; i < s->n; i++) {
        vm_labels(&s->vms[i], labels, sizeof(labels));
        strbuf_printf(t, "vmmd_vm_vcpus{%s} %u\n", labels, s->vms[i].vcpus);
    }
    metrics_family(t, "vmmd_vm_memory_bytes", "gauge", "Guest memory of the VM.");
    for (size_t i = 0; i < s->n; i++) {
        vm_labels(&s->vms[i], labels, sizeof(labels));
        strbuf_printf(t, "vmmd_vm_memory_bytes{%s} %llu\n", labels,
                       (unsigned long long)s->vms[i].memory_mib << 20);
    }
    metrics_family(t, "vmmd_vm_uptime_seconds", "gauge",
                   "Time since the VM's worker started it; 0 while it has no worker.");
    for (size_t i = 0; i < s->n; i++) {
        vm_labels(&s->vms[i], labels, sizeof(labels));
        strbuf_printf(t, "vmmd_vm_uptime_seconds{%s} %.3f\n", labels,
                       (double)stat_u64(s->stats[i], "uptime_ns") / 1e9);
    }
    /* Counters of the running worker: they start from 0 with each start of the VM. */
    metrics_family(t, "vmmd_vm_exits_total", "counter",
                   "VM exits by reason since the VM started (running VMs only).");
    for (size_t i = 0; i < s->n; i++) {
        vm_labels(&s->vms[i], labels, sizeof(labels));
        json_object_foreach(json_object_get(s->stats[i], "exits"), key, v)
        {
            char reason[64];
            metrics_escape(key, reason, sizeof(reason));
            strbuf_printf(t, "vmmd_vm_exits_total{%s,reason=\"%s\"} %llu\n", labels, reason,
                           (unsigned long long)(json_integer_value(v) > 0 ? json_integer_value(v)
                                                                          : 0));
        }
    }
    metrics_family(t, "vmmd_vm_console_bytes_total", "counter",
                   "Bytes the guest wrote to its serial console since it started (running VMs "
                   "only).");
    for (size_t i = 0; i < s->n; i++) {
        if (!s->stats[i])
            continue;
        vm_labels(&s->vms[i], labels, sizeof(labels));
        strbuf_printf(t, "vmmd_vm_console_bytes_total{%s} %llu\n", labels,
                       stat_u64(s->stats[i], "console_bytes"));
    }
    device_metrics(t, s, true, disk_counters, sizeof(disk_counters) / sizeof(disk_counters[0]));
    device_metrics(t, s, false, nic_counters, sizeof(nic_counters) / sizeof(nic_counters[0]));
}

static void daemon_metrics(struct strbuf *t, struct vmmd_daemon *d, unsigned unanswered)
{
    metrics_family(t, "vmmd_build_info", "gauge", "Always 1; the version is a label.");
    strbuf_printf(t, "vmmd_build_info{version=\"%s\"} 1\n", VMMD_VERSION);
    if (d->cluster)
        cluster_metrics(d->cluster, t);
    metrics_http_write(t, &http_metrics);
    metrics_family(t, "vmmd_workers_running", "gauge",
                   "Worker processes (running VMs) the daemon is attached to.");
    strbuf_printf(t, "vmmd_workers_running %u\n", d->sup ? supervisor_worker_count(d->sup) : 0);
    metrics_family(t, "vmmd_workers_started_total", "counter", "Workers this daemon started.");
    strbuf_printf(t, "vmmd_workers_started_total %llu\n",
                   (unsigned long long)d->metrics.workers_started);
    metrics_family(t, "vmmd_workers_lost_total", "counter",
                   "Workers that crashed or were killed while this daemon ran.");
    strbuf_printf(t, "vmmd_workers_lost_total %llu\n", (unsigned long long)d->metrics.workers_lost);
    metrics_family(t, "vmmd_scrape_workers_unanswered", "gauge",
                   "Running VMs whose worker did not send its stats in time for this scrape.");
    strbuf_printf(t, "vmmd_scrape_workers_unanswered %u\n", unanswered);
    metrics_family(t, "vmmd_database_size_bytes", "gauge", "Size of the SQLite database.");
    strbuf_printf(t, "vmmd_database_size_bytes %lld\n", (long long)db_size_bytes(d->db));
    metrics_family(t, "vmmd_events_emitted_total", "counter",
                   "Events committed to the event table since the daemon started.");
    strbuf_printf(t, "vmmd_events_emitted_total %llu\n",
                   (unsigned long long)d->metrics.events_emitted);
    metrics_family(t, "vmmd_event_stream_clients", "gauge", "Clients on GET /v1/events now.");
    strbuf_printf(t, "vmmd_event_stream_clients %u\n", event_stream_clients(d->events));
    metrics_family(t, "vmmd_event_stream_clients_dropped_total", "counter",
                   "Event stream clients disconnected for falling too far behind.");
    strbuf_printf(t, "vmmd_event_stream_clients_dropped_total %llu\n",
                   (unsigned long long)d->metrics.event_clients_dropped);
    uint64_t snapshots = 0, snapshot_bytes = 0;
    routes_snapshot_totals(d, &snapshots, &snapshot_bytes);
    metrics_family(t, "vmmd_snapshots", "gauge", "Snapshots stored.");
    strbuf_printf(t, "vmmd_snapshots %llu\n", (unsigned long long)snapshots);
    metrics_family(t, "vmmd_snapshot_bytes", "gauge",
                   "Bytes the snapshots take on disk (state files and memory files' data).");
    strbuf_printf(t, "vmmd_snapshot_bytes %llu\n", (unsigned long long)snapshot_bytes);
    metrics_family(t, "vmmd_snapshots_taken_total", "counter", "Snapshots this daemon took.");
    strbuf_printf(t, "vmmd_snapshots_taken_total %llu\n",
                   (unsigned long long)d->metrics.snapshots_taken);
    metrics_family(t, "vmmd_snapshot_pause_seconds_total", "counter",
                   "Time VMs were paused to take snapshots.");
    strbuf_printf(t, "vmmd_snapshot_pause_seconds_total %.6f\n",
                   (double)d->metrics.snapshot_pause_ns / 1e9);
    metrics_family(t, "vmmd_restores_total", "counter",
                   "VMs started from a snapshot (restores and clones).");
    strbuf_printf(t, "vmmd_restores_total %llu\n", (unsigned long long)d->metrics.restores);
    metrics_family(t, "vmmd_migrations_total", "counter",
                   "Live migrations out of this daemon, by how they ended.");
    strbuf_printf(t, "vmmd_migrations_total{result=\"done\"} %llu\n",
                   (unsigned long long)d->metrics.migrations_done);
    strbuf_printf(t, "vmmd_migrations_total{result=\"failed\"} %llu\n",
                   (unsigned long long)d->metrics.migrations_failed);
    metrics_family(t, "vmmd_migrations_running", "gauge", "Live migrations out in progress.");
    strbuf_printf(t, "vmmd_migrations_running %u\n", routes_migrations_running());
    metrics_family(t, "vmmd_migration_downtime_seconds_total", "counter",
                   "Time migrated VMs were stopped (from freeze to the target running them).");
    strbuf_printf(t, "vmmd_migration_downtime_seconds_total %.6f\n",
                   (double)d->metrics.migration_downtime_us / 1e6);
    metrics_family(t, "vmmd_http_header_timeouts_total", "counter",
                   "TCP connections closed for not sending complete request headers within "
                   "--header-timeout.");
    strbuf_printf(t, "vmmd_http_header_timeouts_total %u\n",
                   d->http_tcp ? http_server_deadline_closes(d->http_tcp) : 0);
}

static void on_deadline_closed(uv_handle_t *h)
{
    scrape_unref(h->data);
}

static void respond_text(struct http_request *req, const char *text, size_t len)
{
    http_respond_bytes(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

/* A cluster-wide scrape: this member's text, then each other member's as it comes. */
struct member_scrape {
    struct http_request *req;
    size_t n, waiting;
    char **names, **texts; /* [0] is this member; a text is NULL while missing */
};

static void member_scrape_free(struct member_scrape *ms);
static void member_scrape_fail(struct member_scrape *ms);

static void member_scrape_answer(struct member_scrape *ms)
{
    struct strbuf t = {0};

    metrics_merge(&t, (const char *const *)ms->names, (const char *const *)ms->texts, ms->n);
    metrics_family(&t, "vmmd_cluster_scrape_ok", "gauge",
                   "1 for each member whose series this answer holds, 0 for one that did not "
                   "answer in time.");
    for (size_t i = 0; i < ms->n; i++) {
        char name[256];
        metrics_escape(ms->names[i], name, sizeof(name));
        strbuf_printf(&t, "vmmd_cluster_scrape_ok{member=\"%s\"} %d\n", name,
                      ms->texts[i] != NULL);
    }
    if (t.oom)
        http_respond_error(ms->req, API_ERR_INTERNAL, "out of memory");
    else
        respond_text(ms->req, t.buf, t.len);
    free(t.buf);
    member_scrape_free(ms);
}

static void member_scrape_fail(struct member_scrape *ms)
{
    http_respond_error(ms->req, API_ERR_INTERNAL, "out of memory");
    member_scrape_free(ms);
}

static void member_scrape_free(struct member_scrape *ms)
{
    for (size_t i = 0; i < ms->n; i++) {
        free(ms->names[i]);
        free(ms->texts[i]);
    }
    free(ms->names);
    free(ms->texts);
    free(ms);
}

struct member_slot {
    struct member_scrape *ms;
    size_t index;
};

static void member_scraped(void *ctx, unsigned status, const char *body, size_t len,
                           const char *error)
{
    struct member_slot *slot = ctx;
    struct member_scrape *ms = slot->ms;

    (void)error;
    if (status == 200)
        ms->texts[slot->index] = strndup(body, len);
    free(slot);
    if (--ms->waiting == 0)
        member_scrape_answer(ms);
}

static void scrape_members(struct vmmd_daemon *d, struct http_request *req, const char *own)
{
    json_t *peers = cluster_peers(d->cluster);
    struct member_scrape *ms = calloc(1, sizeof(*ms));
    size_t n = json_array_size(peers) + 1;

    if (!ms || !(ms->names = calloc(n, sizeof(char *))) || !(ms->texts = calloc(n, sizeof(char *)))) {
        if (ms)
            free(ms->names);
        free(ms);
        json_decref(peers);
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        return;
    }
    ms->req = req;
    ms->n = n;
    ms->names[0] = strdup(cluster_member_name(d->cluster));
    ms->texts[0] = strdup(own);
    for (size_t i = 1; i < n; i++)
        ms->names[i] = strdup(json_string_value(json_array_get(peers, i - 1)));
    json_decref(peers);
    for (size_t i = 0; i < n; i++)
        if (!ms->names[i]) {
            member_scrape_fail(ms);
            return;
        }
    ms->waiting = 1; /* ours, until every fetch is out */
    for (size_t i = 1; i < n; i++) {
        struct member_slot *slot = malloc(sizeof(*slot));
        if (!slot)
            continue;
        *slot = (struct member_slot){.ms = ms, .index = i};
        ms->waiting++;
        if (cluster_fetch(d, ms->names[i], "/metrics?local=1", CLUSTER_SCRAPE_MS, member_scraped,
                          slot)) {
            ms->waiting--;
            free(slot);
        }
    }
    http_suspend(req);
    if (--ms->waiting == 0)
        member_scrape_answer(ms);
}

static void answer(struct scrape *s)
{
    struct strbuf t = {0};

    if (s->answered)
        return;
    s->answered = true;
    vm_metrics(&t, s);
    daemon_metrics(&t, s->d, s->waiting);
    networks_metrics(s->d->nets, &t);
    if (s->d->storage)
        storage_metrics(s->d->storage, &t);
    if (t.oom)
        http_respond_error(s->req, API_ERR_INTERNAL, "out of memory");
    else if (s->cluster)
        scrape_members(s->d, s->req, t.buf ? t.buf : "");
    else
        respond_text(s->req, t.buf ? t.buf : "", t.len);
    free(t.buf);
    if (s->timer_open) {
        s->timer_open = false;
        uv_timer_stop(&s->deadline);
        uv_close((uv_handle_t *)&s->deadline, on_deadline_closed);
    }
}

static void on_deadline(uv_timer_t *timer)
{
    answer(timer->data);
}

static void on_stats(struct vmmd_daemon *d, void *ctx, json_t *reply, const uint8_t *extra,
                     size_t extra_len, const char *error)
{
    struct scrape_slot *slot = ctx;
    struct scrape *s = slot->s;

    (void)d;
    (void)extra;
    (void)extra_len;
    (void)error;
    if (reply && !s->answered)
        s->stats[slot->index] = json_incref(reply);
    s->waiting--;
    if (s->waiting == 0)
        answer(s);
    scrape_unref(s);
}

void route_metrics(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    struct scrape *s = calloc(1, sizeof(*s));

    (void)m;
    if (!s || db_vm_list(d->db, NULL, &s->vms, &s->n)) {
        free(s);
        http_respond_error(req, API_ERR_INTERNAL, "cannot list the VMs");
        return;
    }
    const char *local = http_query(req, "local");
    if (local && strcmp(local, "0") && strcmp(local, "1")) {
        db_vm_list_free(s->vms, s->n);
        free(s);
        http_respond_error(req, API_ERR_BAD_REQUEST, "local: must be 0 or 1");
        return;
    }
    s->cluster = d->cluster && !(local && local[0] == '1');
    s->d = d;
    s->req = req;
    s->refs = 1; /* ours until the commands are out */
    s->stats = calloc(s->n ? s->n : 1, sizeof(*s->stats));
    s->slots = calloc(s->n ? s->n : 1, sizeof(*s->slots));
    if (!s->stats || !s->slots) {
        s->answered = true;
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        scrape_unref(s);
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        s->slots[i] = (struct scrape_slot){.s = s, .index = i};
        if (d->sup && supervisor_has_worker(d->sup, s->vms[i].id) &&
            supervisor_command(d->sup, s->vms[i].id, json_pack("{s:s}", "cmd", "stats"), on_stats,
                               &s->slots[i]) == 0) {
            s->waiting++;
            s->refs++;
        }
    }
    if (s->waiting) {
        uv_timer_init(d->loop, &s->deadline);
        s->deadline.data = s;
        s->timer_open = true;
        s->refs++;
        uv_timer_start(&s->deadline, on_deadline, SCRAPE_DEADLINE_MS, 0);
        http_suspend(req);
    } else {
        answer(s);
    }
    scrape_unref(s);
}
