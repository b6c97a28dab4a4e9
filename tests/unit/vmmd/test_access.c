/*
 * The token compare and the Origin policy (vmmd/daemon/access.c).
 *
 * Constant time is shown by measurement the only way that is not flaky: on
 * strings of 1 MiB, a compare that stopped at the first difference would
 * take about a million times less for a difference in the first byte than
 * in the last; access_token_equal must take the same time for both (within
 * 3x, the best of 25 alternating runs each), while strcmp, the control, shows the gap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"

static void test_token_equal(void **state)
{
    const char *token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    (void)state;
    assert_true(access_token_equal(token, token));
    assert_false(access_token_equal(
        "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", token));
    assert_false(access_token_equal(
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdee", token));
    assert_false(access_token_equal("0123456789abcdef", token)); /* a prefix */
    assert_false(access_token_equal("", token));
    assert_false(access_token_equal(
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", token));
    assert_false(access_token_equal("", "")); /* no token, no match */
}

static uint64_t time_ns(bool (*eq)(const char *, const char *), const char *a, const char *b)
{
    struct timespec t0, t1;
    volatile bool r;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = eq(a, b);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    (void)r;
    return (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ull + (uint64_t)(t1.tv_nsec - t0.tv_nsec);
}

/* The best of 25 runs of each, alternating, after one run of each to warm up. */
static void best_pair(bool (*eq)(const char *, const char *), const char *a1, const char *a2,
                      const char *b, uint64_t *t1, uint64_t *t2)
{
    *t1 = *t2 = UINT64_MAX;
    time_ns(eq, a1, b);
    time_ns(eq, a2, b);
    for (int run = 0; run < 25; run++) {
        uint64_t x = time_ns(eq, a1, b), y = time_ns(eq, a2, b);
        *t1 = x < *t1 ? x : *t1;
        *t2 = y < *t2 ? y : *t2;
    }
}

static bool strcmp_equal(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static void test_token_equal_takes_the_same_time_wherever_it_differs(void **state)
{
    size_t n = 1 << 20;
    char *token = malloc(n + 1), *first = malloc(n + 1), *last = malloc(n + 1);
    uint64_t t_first, t_last, c_first, c_last;

    (void)state;
    memset(token, 'a', n);
    token[n] = 0;
    memcpy(first, token, n + 1);
    memcpy(last, token, n + 1);
    first[0] = 'b';
    last[n - 1] = 'b';
    best_pair(access_token_equal, first, last, token, &t_first, &t_last);
    best_pair(strcmp_equal, first, last, token, &c_first, &c_last);
    print_message("1 MiB: access_token_equal %llu ns (first byte differs) vs %llu ns (last); "
                  "strcmp %llu vs %llu ns\n",
                  (unsigned long long)t_first, (unsigned long long)t_last,
                  (unsigned long long)c_first, (unsigned long long)c_last);
    /* The control: the method sees an early exit when there is one (a gap of 10,000x here). */
    assert_true(c_first * 10 < c_last);
    /* Within 3x both ways: far from any early exit, and room for a busy machine. */
    assert_true(t_first * 3 > t_last && t_last * 3 > t_first);
    free(token);
    free(first);
    free(last);
}

static void test_origin(void **state)
{
    struct vmmd_opt_list allowed = {.items = {"https://dash.example"}, .count = 1};

    (void)state;
    /* No Origin: not a browser. */
    assert_true(access_origin_allowed(NULL, "h:1", ACCESS_TCP_TLS, &allowed));
    /* The daemon's own, with the listener's scheme only. */
    assert_true(access_origin_allowed("https://h:1", "h:1", ACCESS_TCP_TLS, &allowed));
    assert_true(access_origin_allowed("HTTPS://H:1", "h:1", ACCESS_TCP_TLS, &allowed));
    assert_false(access_origin_allowed("http://h:1", "h:1", ACCESS_TCP_TLS, &allowed));
    assert_true(access_origin_allowed("http://h:1", "h:1", ACCESS_TCP_PLAIN, &allowed));
    assert_false(access_origin_allowed("https://h:1", "h:1", ACCESS_TCP_PLAIN, &allowed));
    assert_true(access_origin_allowed("https://h", "h:443", ACCESS_TCP_TLS, &allowed));
    assert_true(access_origin_allowed("http://h", "h:80", ACCESS_TCP_PLAIN, &allowed));
    /* Either scheme through the Unix socket (a proxy). */
    assert_true(access_origin_allowed("http://vmmd", "vmmd", ACCESS_UNIX, &allowed));
    assert_true(access_origin_allowed("https://vmmd", "vmmd", ACCESS_UNIX, &allowed));
    /* Others. */
    assert_false(access_origin_allowed("https://h:2", "h:1", ACCESS_TCP_TLS, &allowed));
    assert_false(access_origin_allowed("https://h:1.evil", "h:1", ACCESS_TCP_TLS, &allowed));
    assert_false(access_origin_allowed("https://evil.example", "h:1", ACCESS_TCP_TLS, &allowed));
    assert_false(access_origin_allowed("null", "null", ACCESS_TCP_TLS, &allowed));
    assert_false(access_origin_allowed("https://h:1", NULL, ACCESS_TCP_TLS, &allowed));
    /* The allow-list, whole origins only. */
    assert_true(access_origin_allowed("https://dash.example", "h:1", ACCESS_TCP_TLS, &allowed));
    assert_false(
        access_origin_allowed("https://dash.example.evil", "h:1", ACCESS_TCP_TLS, &allowed));
    assert_false(access_origin_allowed("http://dash.example", "h:1", ACCESS_TCP_TLS, &allowed));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_equal),
        cmocka_unit_test(test_token_equal_takes_the_same_time_wherever_it_differs),
        cmocka_unit_test(test_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
