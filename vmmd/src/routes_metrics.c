/*
 * GET /metrics in the Prometheus text format: per-VM state and size, and the
 * daemon's own counters (requests by route and status with latency, workers,
 * database size, events).
 */
#include "routes.h"
#include "lifecycle.h"
#include "supervisor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIES 128
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

/* Request counters by method, route and status, with a latency histogram each. */
static struct series {
    char method[8];
    const char *route;
    unsigned status;
    uint64_t count;
    uint64_t bucket[N_BUCKETS];
    double sum_s;
} series[MAX_SERIES];
static size_t n_series;

static void observe(struct vmmd_daemon *d, const char *method, const char *route, unsigned status,
                    uint64_t ns)
{
    struct series *s = NULL;
    double secs = (double)ns / 1e9;

    (void)d;
    for (size_t i = 0; i < n_series; i++)
        if (series[i].status == status && series[i].route == route &&
            strcmp(series[i].method, method) == 0)
            s = &series[i];
    if (!s) {
        if (n_series == MAX_SERIES)
            return;
        s = &series[n_series++];
        snprintf(s->method, sizeof(s->method), "%s", method);
        s->route = route;
        s->status = status;
    }
    s->count++;
    s->sum_s += secs;
    for (size_t b = 0; b < N_BUCKETS; b++)
        if (secs <= buckets[b])
            s->bucket[b]++;
}

void routes_metrics_init(void);
void routes_metrics_init(void)
{
    http_observer = observe;
}

struct text {
    char *buf;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->len + (size_t)n + 1) * 2;
        char *grown = realloc(t->buf, cap);
        if (!grown)
            return;
        t->buf = grown;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static void vm_metrics(struct vmmd_daemon *d, struct text *t)
{
    struct db_vm *vms = NULL;
    size_t n = 0;

    if (db_vm_list(d->db, NULL, &vms, &n))
        return;
    put(t, "# HELP vmmd_vm_state 1 for the state the VM is in.\n# TYPE vmmd_vm_state gauge\n");
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < VMMD_STATE_COUNT; s++)
            put(t, "vmmd_vm_state{id=\"%s\",name=\"%s\",mode=\"%s\",state=\"%s\"} %d\n", vms[i].id,
                vms[i].name, vms[i].mode, vmmd_state_name((enum vmmd_state)s),
                strcmp(vms[i].state, vmmd_state_name((enum vmmd_state)s)) == 0);
    put(t, "# HELP vmmd_vm_vcpus Virtual CPUs of the VM.\n# TYPE vmmd_vm_vcpus gauge\n");
    for (size_t i = 0; i < n; i++)
        put(t, "vmmd_vm_vcpus{id=\"%s\",name=\"%s\",mode=\"%s\"} %u\n", vms[i].id, vms[i].name,
            vms[i].mode, vms[i].vcpus);
    put(t, "# HELP vmmd_vm_memory_bytes Guest memory of the VM.\n"
           "# TYPE vmmd_vm_memory_bytes gauge\n");
    for (size_t i = 0; i < n; i++)
        put(t, "vmmd_vm_memory_bytes{id=\"%s\",name=\"%s\",mode=\"%s\"} %llu\n", vms[i].id,
            vms[i].name, vms[i].mode, (unsigned long long)vms[i].memory_mib << 20);
    db_vm_list_free(vms, n);
}

static void http_metrics(struct text *t)
{
    put(t, "# HELP vmmd_http_requests_total HTTP requests by route and status.\n"
           "# TYPE vmmd_http_requests_total counter\n");
    for (size_t i = 0; i < n_series; i++)
        put(t, "vmmd_http_requests_total{method=\"%s\",route=\"%s\",status=\"%u\"} %llu\n",
            series[i].method, series[i].route, series[i].status,
            (unsigned long long)series[i].count);
    put(t, "# HELP vmmd_http_request_duration_seconds Time to answer a request.\n"
           "# TYPE vmmd_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < n_series; i++) {
        const struct series *s = &series[i];
        for (size_t b = 0; b < N_BUCKETS; b++)
            put(t,
                "vmmd_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
                "status=\"%u\",le=\"%g\"} %llu\n",
                s->method, s->route, s->status, buckets[b], (unsigned long long)s->bucket[b]);
        put(t,
            "vmmd_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",status=\"%u\","
            "le=\"+Inf\"} %llu\n",
            s->method, s->route, s->status, (unsigned long long)s->count);
        put(t,
            "vmmd_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\",status=\"%u\"} "
            "%.6f\n",
            s->method, s->route, s->status, s->sum_s);
        put(t,
            "vmmd_http_request_duration_seconds_count{method=\"%s\",route=\"%s\",status=\"%u\"} "
            "%llu\n",
            s->method, s->route, s->status, (unsigned long long)s->count);
    }
}

void route_metrics(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    struct text t = {0};

    (void)m;
    vm_metrics(d, &t);
    http_metrics(&t);
    put(&t,
        "# HELP vmmd_workers_running Worker processes the daemon is attached to.\n"
        "# TYPE vmmd_workers_running gauge\nvmmd_workers_running %u\n",
        supervisor_worker_count(d->sup));
    put(&t,
        "# HELP vmmd_workers_started_total Workers started by this daemon.\n"
        "# TYPE vmmd_workers_started_total counter\nvmmd_workers_started_total %llu\n",
        (unsigned long long)d->metrics.workers_started);
    put(&t,
        "# HELP vmmd_database_bytes Size of the SQLite database.\n"
        "# TYPE vmmd_database_bytes gauge\nvmmd_database_bytes %lld\n",
        (long long)db_size_bytes(d->db));
    put(&t,
        "# HELP vmmd_events_emitted_total Events committed since the daemon started.\n"
        "# TYPE vmmd_events_emitted_total counter\nvmmd_events_emitted_total %llu\n",
        (unsigned long long)d->metrics.events_emitted);
    http_respond_bytes(req, 200, "text/plain; version=0.0.4; charset=utf-8", t.buf ? t.buf : "",
                       t.len);
    free(t.buf);
}
