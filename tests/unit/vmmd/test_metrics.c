/* Prometheus text: label escaping, families, histogram buckets, request series. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static void test_escape(void **state)
{
    char out[64];

    (void)state;
    metrics_escape("plain-name", out, sizeof(out));
    assert_string_equal(out, "plain-name");
    metrics_escape("a\"b\\c\nd", out, sizeof(out));
    assert_string_equal(out, "a\\\"b\\\\c\\nd");
    /* Truncation never splits an escape. */
    metrics_escape("ab\"", out, 4);
    assert_string_equal(out, "ab");
    metrics_escape("abc", out, 1);
    assert_string_equal(out, "");
}

static void test_family_and_printf(void **state)
{
    struct strbuf t = {0};

    (void)state;
    metrics_family(&t, "vmmd_x_total", "counter", "Things.");
    strbuf_printf(&t, "vmmd_x_total %d\n", 3);
    assert_string_equal(t.buf, "# HELP vmmd_x_total Things.\n# TYPE vmmd_x_total counter\n"
                               "vmmd_x_total 3\n");
    assert_false(t.oom);
    free(t.buf);
}

static void test_histogram_buckets_are_cumulative(void **state)
{
    struct metrics_histogram h = {0};
    static const double bounds[METRICS_N_BUCKETS] = METRICS_LATENCY_BUCKETS;

    (void)state;
    metrics_histogram_observe(&h, 0.0001); /* in every bucket */
    metrics_histogram_observe(&h, 0.001);  /* on a bound: le is inclusive */
    metrics_histogram_observe(&h, 0.3);
    metrics_histogram_observe(&h, 60);     /* only in +Inf */
    assert_int_equal(h.count, 4);
    assert_true(h.sum > 60.30 && h.sum < 60.31);
    for (size_t b = 0; b < METRICS_N_BUCKETS; b++) {
        uint64_t want = (0.0001 <= bounds[b]) + (0.001 <= bounds[b]) + (0.3 <= bounds[b]);
        assert_int_equal(h.le[b], want);
        if (b)
            assert_true(h.le[b] >= h.le[b - 1]);
    }
    assert_int_equal(h.le[0], 1);
    assert_int_equal(h.le[METRICS_N_BUCKETS - 1], 3);
}

static void test_histogram_text(void **state)
{
    struct metrics_histogram h = {0};
    struct strbuf t = {0};

    (void)state;
    metrics_histogram_observe(&h, 0.002);
    metrics_histogram_write(&t, "x_seconds", "route=\"/\"", &h);
    assert_non_null(strstr(t.buf, "x_seconds_bucket{route=\"/\",le=\"0.001\"} 0\n"));
    assert_non_null(strstr(t.buf, "x_seconds_bucket{route=\"/\",le=\"0.0025\"} 1\n"));
    assert_non_null(strstr(t.buf, "x_seconds_bucket{route=\"/\",le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(t.buf, "x_seconds_sum{route=\"/\"} 0.002000\n"));
    assert_non_null(strstr(t.buf, "x_seconds_count{route=\"/\"} 1\n"));
    free(t.buf);
    t = (struct strbuf){0};
    metrics_histogram_write(&t, "y", "", &h); /* no labels: no stray comma */
    assert_non_null(strstr(t.buf, "y_bucket{le=\"5\"} 1\n"));
    assert_non_null(strstr(t.buf, "y_count{} 1\n"));
    free(t.buf);
}

static void test_http_series(void **state)
{
    static struct metrics_http m;
    struct strbuf t = {0};

    (void)state;
    metrics_http_observe(&m, "GET", "/v1/vms", 200, 0.0004);
    metrics_http_observe(&m, "GET", "/v1/vms", 200, 0.02);
    metrics_http_observe(&m, "GET", "/v1/vms", 401, 0.0001);
    metrics_http_observe(&m, "POST", "/v1/vms", 201, 0.003);
    assert_int_equal(m.n_counts, 3);
    assert_int_equal(m.n_latency, 2); /* by method and route: the status is the counter's */
    metrics_http_write(&t, &m);
    assert_non_null(strstr(t.buf, "vmmd_http_requests_total{method=\"GET\",route=\"/v1/vms\","
                                  "status=\"200\"} 2\n"));
    assert_non_null(strstr(t.buf, "vmmd_http_requests_total{method=\"GET\",route=\"/v1/vms\","
                                  "status=\"401\"} 1\n"));
    assert_non_null(strstr(t.buf, "vmmd_http_request_duration_seconds_count{method=\"GET\","
                                  "route=\"/v1/vms\"} 3\n"));
    assert_non_null(strstr(t.buf, "# TYPE vmmd_http_request_duration_seconds histogram\n"));
    free(t.buf);
}

static void test_http_series_bounded(void **state)
{
    static struct metrics_http m;
    char route[32];

    (void)state;
    for (int i = 0; i < METRICS_HTTP_MAX + 10; i++) {
        snprintf(route, sizeof(route), "/r%d", i);
        metrics_http_observe(&m, "GET", route, 200, 0.001);
    }
    assert_int_equal(m.n_counts, METRICS_HTTP_MAX);
    assert_int_equal(m.n_latency, METRICS_HTTP_MAX);
    assert_int_equal(m.dropped, 10);
}

/* Two members' texts as one: a family each, every sample with its member first. */
static void test_merge(void **state)
{
    const char *members[] = {"m1", "m\"2"};
    const char *texts[] = {
        "# HELP vmmd_vms VMs.\n# TYPE vmmd_vms gauge\nvmmd_vms{state=\"running\"} 2\n"
        "# HELP vmmd_up Up.\n# TYPE vmmd_up gauge\nvmmd_up 1\n"
        "# HELP lat Latency.\n# TYPE lat histogram\nlat_bucket{le=\"1\"} 3\nlat_sum 0.5\n"
        "lat_count 3\n",
        /* another order, a family the first has not, garbage, no final newline */
        "# HELP vmmd_up Up, said differently.\n# TYPE vmmd_up gauge\nvmmd_up 0\n"
        "not a sample\n{x} 1\n# a comment\n# TYPE extra counter\nextra_total{} 7\n"
        "# TYPE vmmd_vms gauge\nvmmd_vms{state=\"running\"} 5",
    };
    struct strbuf t = {0};

    (void)state;
    assert_int_equal(metrics_merge(&t, members, texts, 2), 0);
    assert_string_equal(t.buf, "# HELP vmmd_vms VMs.\n# TYPE vmmd_vms gauge\n"
                               "vmmd_vms{member=\"m1\",state=\"running\"} 2\n"
                               "vmmd_vms{member=\"m\\\"2\",state=\"running\"} 5\n"
                               "# HELP vmmd_up Up.\n# TYPE vmmd_up gauge\n"
                               "vmmd_up{member=\"m1\"} 1\nvmmd_up{member=\"m\\\"2\"} 0\n"
                               "# HELP lat Latency.\n# TYPE lat histogram\n"
                               "lat_bucket{member=\"m1\",le=\"1\"} 3\nlat_sum{member=\"m1\"} 0.5\n"
                               "lat_count{member=\"m1\"} 3\n"
                               "# TYPE extra counter\nextra_total{member=\"m\\\"2\"} 7\n");
    free(t.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_family_and_printf),
        cmocka_unit_test(test_histogram_buckets_are_cumulative),
        cmocka_unit_test(test_histogram_text),
        cmocka_unit_test(test_http_series),
        cmocka_unit_test(test_http_series_bounded),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
