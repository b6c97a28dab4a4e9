/* Prometheus text and HTTP request metrics (see metrics.h). */
#include "metrics.h"

#include <errno.h>
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

struct merged_family {
    char *name;
    char *help, *type; /* their whole lines, the first seen */
    struct strbuf samples;
};

struct merge {
    struct merged_family *f;
    size_t n, cap;
    bool oom;
};

static struct merged_family *family_of(struct merge *m, const char *name, size_t len)
{
    for (size_t i = 0; i < m->n; i++)
        if (strlen(m->f[i].name) == len && strncmp(m->f[i].name, name, len) == 0)
            return &m->f[i];
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct merged_family *grown = realloc(m->f, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        m->f = grown;
        m->cap = cap;
    }
    m->f[m->n] = (struct merged_family){.name = strndup(name, len)};
    if (!m->f[m->n].name)
        return NULL;
    return &m->f[m->n++];
}

static size_t name_len(const char *s)
{
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
}

/* Whether a sample's name (len bytes) belongs to family f: its own, or a histogram's parts. */
static bool in_family(const struct merged_family *f, const char *name, size_t len)
{
    size_t fl = strlen(f->name);
    static const char *const parts[] = {"", "_bucket", "_sum", "_count", "_total"};

    if (len < fl || strncmp(name, f->name, fl))
        return false;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (len - fl == strlen(parts[i]) && strncmp(name + fl, parts[i], len - fl) == 0)
            return true;
    return false;
}

/* A sample is name, maybe {labels} (quoted values may hold } and \"), a space and a number. */
static bool sample_valid(const char *line, size_t len, size_t n)
{
    size_t i = n;
    char *end;

    if (line[i] == '{') {
        bool quoted = false;
        for (i++; i < len && (quoted || line[i] != '}'); i++) {
            if (quoted && line[i] == '\\')
                i++;
            else if (line[i] == '"')
                quoted = !quoted;
        }
        if (i++ >= len)
            return false;
    }
    if (i >= len || line[i] != ' ')
        return false;
    strtod(line + i + 1, &end);
    return end > line + i + 1 && (end == line + len || *end == ' ');
}

/* One line of a member's text; *cur is the family its last HELP/TYPE opened. */
static void merge_line(struct merge *m, const char *member, const char *line, size_t len,
                       struct merged_family **cur)
{
    if (len > 7 && (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0)) {
        size_t n = name_len(line + 7);
        struct merged_family *f = n ? family_of(m, line + 7, n) : NULL;
        char **slot;
        if (!n)
            return;
        if (!f) {
            m->oom = true;
            return;
        }
        slot = line[2] == 'H' ? &f->help : &f->type;
        if (!*slot && !(*slot = strndup(line, len)))
            m->oom = true;
        *cur = f;
        return;
    }
    size_t n = name_len(line);
    if (!n || !sample_valid(line, len, n))
        return;
    /* name_bucket, name_sum, name_count belong to the family the TYPE line named */
    struct merged_family *f = *cur && in_family(*cur, line, n) ? *cur : family_of(m, line, n);
    if (!f) {
        m->oom = true;
        return;
    }
    if (line[n] == '{')
        strbuf_printf(&f->samples, "%.*s{member=\"%s\"%s%.*s\n", (int)n, line, member,
                      line[n + 1] == '}' ? "" : ",", (int)(len - n - 1), line + n + 1);
    else
        strbuf_printf(&f->samples, "%.*s{member=\"%s\"}%.*s\n", (int)n, line, member,
                      (int)(len - n), line + n);
}

int metrics_merge(struct strbuf *out, const char *const *members, const char *const *texts,
                  size_t n)
{
    struct merge m = {0};
    char member[256];

    for (size_t i = 0; i < n; i++) {
        struct merged_family *cur = NULL;
        const char *line = texts[i];
        metrics_escape(members[i], member, sizeof(member));
        while (line && *line) {
            const char *end = strchr(line, '\n');
            size_t len = end ? (size_t)(end - line) : strlen(line);
            merge_line(&m, member, line, len, &cur);
            line += len + (end != NULL);
        }
    }
    for (size_t i = 0; i < m.n; i++) {
        struct merged_family *f = &m.f[i];
        if (f->help)
            strbuf_printf(out, "%s\n", f->help);
        if (f->type)
            strbuf_printf(out, "%s\n", f->type);
        if (f->samples.len)
            strbuf_append(out, f->samples.buf, f->samples.len);
        m.oom |= f->samples.oom;
        free(f->name);
        free(f->help);
        free(f->type);
        free(f->samples.buf);
    }
    free(m.f);
    return m.oom || out->oom ? -ENOMEM : 0;
}
