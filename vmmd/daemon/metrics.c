/* Prometheus text and HTTP request metrics (see metrics.h). */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double latency_bounds[METRICS_N_BUCKETS] = METRICS_LATENCY_BUCKETS;

void metrics_family(struct strbuf *t, const char *name, const char *type, const char *help)
{
    strbuf_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_escape(const char *in, char *out, size_t size)
{
    size_t o = 0;

    if (size == 0)
        return;
    for (; *in; in++) {
        const char *rep = *in == '\\' ? "\\\\" : *in == '"' ? "\\\"" : *in == '\n' ? "\\n" : NULL;
        size_t need = rep ? 2 : 1;
        if (o + need >= size)
            break;
        if (rep) {
            memcpy(out + o, rep, 2);
        } else {
            out[o] = *in;
        }
        o += need;
    }
    out[o] = 0;
}

void metrics_histogram_observe(struct metrics_histogram *h, double value)
{
    for (size_t b = 0; b < METRICS_N_BUCKETS; b++)
        if (value <= latency_bounds[b])
            h->le[b]++;
    h->count++;
    h->sum += value;
}

void metrics_histogram_write(struct strbuf *t, const char *name, const char *labels,
                             const struct metrics_histogram *h)
{
    const char *sep = labels[0] ? "," : "";

    for (size_t b = 0; b < METRICS_N_BUCKETS; b++)
        strbuf_printf(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, latency_bounds[b],
                       (unsigned long long)h->le[b]);
    strbuf_printf(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                   (unsigned long long)h->count);
    strbuf_printf(t, "%s_sum{%s} %.6f\n", name, labels, h->sum);
    strbuf_printf(t, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
}

static bool same_key(const char *method, const char *route, const char *m2, const char *r2)
{
    return strcmp(method, m2) == 0 && strcmp(route, r2) == 0;
}

void metrics_http_observe(struct metrics_http *m, const char *method, const char *route,
                          unsigned status, double seconds)
{
    struct metrics_http_count *c = NULL;
    struct metrics_http_latency *l = NULL;

    for (size_t i = 0; i < m->n_counts && !c; i++)
        if (m->counts[i].status == status &&
            same_key(method, route, m->counts[i].method, m->counts[i].route))
            c = &m->counts[i];
    for (size_t i = 0; i < m->n_latency && !l; i++)
        if (same_key(method, route, m->latency[i].method, m->latency[i].route))
            l = &m->latency[i];
    if (!c && m->n_counts < METRICS_HTTP_MAX) {
        c = &m->counts[m->n_counts++];
        snprintf(c->method, sizeof(c->method), "%s", method);
        snprintf(c->route, sizeof(c->route), "%s", route);
        c->status = status;
    }
    if (!l && m->n_latency < METRICS_HTTP_MAX) {
        l = &m->latency[m->n_latency++];
        snprintf(l->method, sizeof(l->method), "%s", method);
        snprintf(l->route, sizeof(l->route), "%s", route);
    }
    if (!c || !l)
        m->dropped++;
    if (c)
        c->count++;
    if (l)
        metrics_histogram_observe(&l->h, seconds);
}

void metrics_http_write(struct strbuf *t, const struct metrics_http *m)
{
    char method[32], route[160], labels[256];

    metrics_family(t, "vmmd_http_requests_total", "counter",
                   "HTTP requests answered, by method, route template and status.");
    for (size_t i = 0; i < m->n_counts; i++) {
        metrics_escape(m->counts[i].method, method, sizeof(method));
        metrics_escape(m->counts[i].route, route, sizeof(route));
        strbuf_printf(t, "vmmd_http_requests_total{method=\"%s\",route=\"%s\",status=\"%u\"} %llu\n",
                       method, route, m->counts[i].status, (unsigned long long)m->counts[i].count);
    }
    metrics_family(t, "vmmd_http_request_duration_seconds", "histogram",
                   "Time from a request's arrival to the end of its answer, by method and route.");
    for (size_t i = 0; i < m->n_latency; i++) {
        metrics_escape(m->latency[i].method, method, sizeof(method));
        metrics_escape(m->latency[i].route, route, sizeof(route));
        snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\"", method, route);
        metrics_histogram_write(t, "vmmd_http_request_duration_seconds", labels, &m->latency[i].h);
    }
    metrics_family(t, "vmmd_http_series_dropped_total", "counter",
                   "Requests not counted by route because the series table was full.");
    strbuf_printf(t, "vmmd_http_series_dropped_total %llu\n", (unsigned long long)m->dropped);
}
