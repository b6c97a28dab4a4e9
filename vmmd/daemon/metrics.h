/*
 * Prometheus text exposition (format 0.0.4) and the daemon's HTTP request
 * metrics: pure code, no daemon state, so the escaping, the families and
 * the histogram buckets are unit-tested. routes_metrics.c puts it together.
 */
#ifndef VMMD_METRICS_H
#define VMMD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* The # HELP and # TYPE lines that open a family. */
void metrics_family(struct strbuf *t, const char *name, const char *type, const char *help);
/* A label value with \, " and newline escaped; out is always terminated (truncated if small). */
void metrics_escape(const char *in, char *out, size_t size);

/* Request latency buckets in seconds: 0.5 ms up to 5 s, then +Inf. */
#define METRICS_LATENCY_BUCKETS {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1, 5}
#define METRICS_N_BUCKETS       10

struct metrics_histogram {
    uint64_t le[METRICS_N_BUCKETS]; /* cumulative: observations <= bound b */
    uint64_t count;
    double sum;
};

void metrics_histogram_observe(struct metrics_histogram *h, double value);
/* name_bucket{labels,le=".."}, name_sum{labels}, name_count{labels}; labels may be "". */
void metrics_histogram_write(struct strbuf *t, const char *name, const char *labels,
                             const struct metrics_histogram *h);

/*
 * Requests by method, route template and status (a counter each), and their
 * latency by method and route (a histogram each). Routes are the table's
 * templates, so the number of series stays bounded; past the table's size
 * further combinations are counted in dropped instead.
 */
#define METRICS_HTTP_MAX 256

struct metrics_http {
    struct metrics_http_count {
        char method[8];
        char route[64];
        unsigned status;
        uint64_t count;
    } counts[METRICS_HTTP_MAX];
    size_t n_counts;
    struct metrics_http_latency {
        char method[8];
        char route[64];
        struct metrics_histogram h;
    } latency[METRICS_HTTP_MAX];
    size_t n_latency;
    uint64_t dropped;
};

void metrics_http_observe(struct metrics_http *m, const char *method, const char *route,
                          unsigned status, double seconds);
void metrics_http_write(struct strbuf *t, const struct metrics_http *m);

/*
 * A cluster's expositions as one (texts[i] is members[i]'s): every sample gets
 * member="<name>" as its first label, and each family keeps its first HELP and
 * TYPE and gathers every member's samples, as the format wants them. Lines that
 * are neither a comment nor a sample are dropped. 0, or -ENOMEM.
 */
int metrics_merge(struct strbuf *out, const char *const *members, const char *const *texts,
                  size_t n);

#endif
