/*
 * The token buckets of devices/rate_limiter.c with a clock of our own: the
 * tests pass the time, so rates, bursts and waits are checked to the
 * nanosecond without sleeping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>

#include "devices/rate_limiter.h"

#define MS 1000000ull
#define S  1000000000ull
#define T0 (5 * S) /* any start time but 0 */

/* Serves requests of size bytes as fast as the limiter allows, from t0 for duration ns;
 * returns the bytes granted. */
static uint64_t run_for(struct rate_limiter *rl, uint64_t size, uint64_t t0, uint64_t duration)
{
    uint64_t now = t0, granted = 0;

    while (now < t0 + duration) {
        uint64_t wait = rate_limiter_consume(rl, size, 1, now);
        if (wait == 0)
            granted += size;
        else
            now += wait;
    }
    return granted;
}

static void test_unlimited(void **state)
{
    struct rate_limiter rl;
    struct hv_io_limits none = {0};
    uint64_t ns, events;

    (void)state;
    rate_limiter_init(&rl, &none, T0);
    assert_true(rate_limiter_unlimited(&rl));
    for (int i = 0; i < 1000; i++)
        assert_int_equal(rate_limiter_consume(&rl, 1 << 20, 1, T0), 0);
    rate_limiter_stats(&rl, T0 + S, &ns, &events);
    assert_int_equal(ns, 0);
    assert_int_equal(events, 0);
    rate_limiter_destroy(&rl);
}

static void test_byte_rate_holds(void **state)
{
    struct rate_limiter rl;
    struct hv_io_limits l = {.bytes_per_s = 1 << 20}; /* 1 MiB/s, burst 1 MiB */
    uint64_t got;

    (void)state;
    rate_limiter_init(&rl, &l, T0);
    /* 10 s of 4 KiB requests: the first burst plus 10 s of refill, to a request. */
    got = run_for(&rl, 4096, T0, 10 * S);
    assert_true(got >= 11ull * (1 << 20) - 4096 && got <= 11ull * (1 << 20) + 4096);
    rate_limiter_destroy(&rl);
}

static void test_ops_rate_holds(void **state)
{
    struct rate_limiter rl;
    struct hv_io_limits l = {.ops_per_s = 100, .burst_ops = 1};
    uint64_t now = T0, ops = 0;

    (void)state;
    rate_limiter_init(&rl, &l, T0);
    while (now < T0 + 2 * S) {
        uint64_t wait = rate_limiter_consume(&rl, 1 << 20, 1, now);
        if (wait == 0)
            ops++;
        else
            now += wait;
    }
    assert_true(ops >= 200 && ops <= 201);
    rate_limiter_destroy(&rl);
}

static void test_burst_then_wait(void **state)
{
    struct rate_limiter rl;
    struct hv_io_limits l = {.bytes_per_s = 1000, .burst_bytes = 5000};

    (void)state;
    rate_limiter_init(&rl, &l, T0);
    /* A full bucket gives its burst at once ... */
    for (int i = 0; i < 5; i++)
        assert_int_equal(rate_limiter_consume(&rl, 1000, 1, T0), 0);
    /* ... then exactly the refill time of what is missing: 1000 bytes at 1000/s. */
    assert_int_equal(rate_limiter_consume(&rl, 1000, 1, T0), S);
    assert_int_equal(rate_limiter_consume(&rl, 1000, 1, T0 + S / 2), S / 2);
    assert_int_equal(rate_limiter_consume(&rl, 1000, 1, T0 + S), 0);
    /* Idle time refills no further than the burst. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(rate_limiter_consume(&rl, 1000, 1, T0 + 100 * S), 0);
    assert_true(rate_limiter_consume(&rl, 1000, 1, T0 + 100 * S) > 0);
    rate_limiter_destroy(&rl);
}

static void test_default_burst_is_one_second(void **state)
{
    struct rate_limiter rl;
    struct hv_io_limits l = {.bytes_per_s = 3000, .ops_per_s = 7}, got;

    (void)state;
    rate_limiter_init(&rl, &l, T0);
    rate_limiter_get(&rl, &got);
    assert_int_equal(got.burst_bytes, 3000);
    assert_int_equal(got.burst_ops, 7);
    rate_limiter_destroy(&rl);
}

static void test_request_bigger_than_bucket(void **state)
{
    struct rate_limiter rl;
    struct hv_io_limits l = {.bytes_per_s = 1000, .burst_bytes = 1000};

    (void)state;
    rate_limiter_init(&rl, &l, T0);
    /* 10x the bucket: passes on a full bucket and leaves it 9000 in debt. */
    assert_int_equal(rate_limiter_consume(&rl, 10000, 1, T0), 0);
    /* The next one waits for the debt and its own (capped) need: 10 s in all. */
    assert_int_equal(rate_limiter_consume(&rl, 10000, 1, T0), 10 * S);
    assert_true(rate_limiter_consume(&rl, 10000, 1, T0 + 10 * S - 1) > 0);
    assert_int_equal(rate_limiter_consume(&rl, 10000, 1, T0 + 10 * S), 0);
    /* Long run: big requests still go at the configured rate. */
    assert_int_equal(run_for(&rl, 10000, T0 + 20 * S, 100 * S), 100000);
    rate_limiter_destroy(&rl);
}

static void test_fractional_refill(void **state)
{
    struct rate_limiter rl;
    struct hv_io_limits l = {.bytes_per_s = 3, .burst_bytes = 3};
    uint64_t now = T0;

    (void)state;
    rate_limiter_init(&rl, &l, T0);
    assert_int_equal(rate_limiter_consume(&rl, 3, 1, now), 0);
    /* Asked every 1 ns short of a third of a second, the remainder is never lost. */
    for (int i = 0; i < 30; i++) {
        uint64_t wait;
        while ((wait = rate_limiter_consume(&rl, 1, 1, now)) != 0)
            now += wait;
    }
    assert_true(now <= T0 + 10 * S && now >= T0 + 10 * S - 2);
    rate_limiter_destroy(&rl);
}

static void test_change_limits_midway(void **state)
{
    struct rate_limiter rl;
    struct hv_io_limits slow = {.bytes_per_s = 1000}, fast = {.bytes_per_s = 100000}, none = {0};
    uint64_t got;

    (void)state;
    rate_limiter_init(&rl, &slow, T0);
    got = run_for(&rl, 100, T0, 2 * S);
    assert_true(got >= 2900 && got <= 3100);
    /* Faster: the kept tokens stay (at most the new burst), the new rate applies at once. */
    rate_limiter_set(&rl, &fast, T0 + 2 * S);
    got = run_for(&rl, 100, T0 + 2 * S, 2 * S);
    assert_true(got >= 200000 && got <= 300100);
    /* Slower again: the tokens left are capped at the new, smaller burst. */
    rate_limiter_set(&rl, &slow, T0 + 4 * S);
    got = run_for(&rl, 100, T0 + 4 * S, 2 * S);
    assert_true(got >= 2000 && got <= 3100);
    /* Unlimited, then limited again: that starts from a full bucket. */
    rate_limiter_set(&rl, &none, T0 + 6 * S);
    assert_int_equal(rate_limiter_consume(&rl, 1 << 30, 1, T0 + 6 * S), 0);
    rate_limiter_set(&rl, &slow, T0 + 7 * S);
    assert_int_equal(rate_limiter_consume(&rl, 1000, 1, T0 + 7 * S), 0);
    assert_true(rate_limiter_consume(&rl, 1, 1, T0 + 7 * S) > 0);
    rate_limiter_destroy(&rl);
}

static void test_throttled_time_and_events(void **state)
{
    struct rate_limiter rl;
    struct hv_io_limits l = {.bytes_per_s = 1000, .burst_bytes = 1000};
    uint64_t ns, events;

    (void)state;
    rate_limiter_init(&rl, &l, T0);
    assert_int_equal(rate_limiter_consume(&rl, 1000, 1, T0), 0);
    assert_int_equal(rate_limiter_consume(&rl, 500, 1, T0), S / 2);
    /* Asking again while waiting is the same wait, not a new one. */
    assert_int_equal(rate_limiter_consume(&rl, 500, 1, T0 + S / 4), S / 4);
    rate_limiter_stats(&rl, T0 + S / 4, &ns, &events);
    assert_int_equal(ns, S / 4); /* the current wait counts too */
    assert_int_equal(events, 1);
    assert_int_equal(rate_limiter_consume(&rl, 500, 1, T0 + S / 2), 0);
    rate_limiter_stats(&rl, T0 + 10 * S, &ns, &events);
    assert_int_equal(ns, S / 2);
    assert_int_equal(events, 1);
    rate_limiter_destroy(&rl);
}

static void test_both_buckets_must_pass(void **state)
{
    struct rate_limiter rl;
    struct hv_io_limits l = {.bytes_per_s = 1000000, .ops_per_s = 10, .burst_ops = 1};

    (void)state;
    rate_limiter_init(&rl, &l, T0);
    assert_int_equal(rate_limiter_consume(&rl, 10, 1, T0), 0);
    /* Plenty of bytes, no op: waits for the ops bucket and takes no bytes meanwhile. */
    assert_int_equal(rate_limiter_consume(&rl, 10, 1, T0), S / 10);
    assert_int_equal(rl.bytes.tokens, 1000000 - 10);
    rate_limiter_destroy(&rl);
}

static void test_refund(void **state)
{
    struct rate_limiter rl;
    struct hv_io_limits l = {.bytes_per_s = 1000};

    (void)state;
    rate_limiter_init(&rl, &l, T0);
    assert_int_equal(rate_limiter_consume(&rl, 1000, 1, T0), 0);
    rate_limiter_refund(&rl, 400, 0);
    assert_int_equal(rate_limiter_consume(&rl, 400, 1, T0), 0);
    assert_true(rate_limiter_consume(&rl, 1, 1, T0) > 0);
    /* Never above the burst. */
    rate_limiter_refund(&rl, 1 << 20, 0);
    assert_int_equal(rl.bytes.tokens, 1000);
    rate_limiter_destroy(&rl);
}

static void test_bounds(void **state)
{
    struct hv_io_limits l = {.bytes_per_s = HV_IO_LIMIT_MAX_BYTES_PER_S,
                             .ops_per_s = HV_IO_LIMIT_MAX_OPS_PER_S,
                             .burst_bytes = HV_IO_LIMIT_MAX_BURST_BYTES,
                             .burst_ops = HV_IO_LIMIT_MAX_BURST_OPS};
    struct rate_limiter rl;

    (void)state;
    assert_true(hv_io_limits_valid(&l));
    /* The largest values refill over a long idle time without overflowing. */
    rate_limiter_init(&rl, &l, T0);
    assert_int_equal(rate_limiter_consume(&rl, HV_IO_LIMIT_MAX_BURST_BYTES, 1, T0), 0);
    assert_int_equal(rate_limiter_consume(&rl, 1, 1, T0 + 3600 * S * 24 * 365), 0);
    rate_limiter_destroy(&rl);
    l.bytes_per_s++;
    assert_false(hv_io_limits_valid(&l));
    l.bytes_per_s--;
    l.ops_per_s++;
    assert_false(hv_io_limits_valid(&l));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_byte_rate_holds),
        cmocka_unit_test(test_ops_rate_holds),
        cmocka_unit_test(test_burst_then_wait),
        cmocka_unit_test(test_default_burst_is_one_second),
        cmocka_unit_test(test_request_bigger_than_bucket),
        cmocka_unit_test(test_fractional_refill),
        cmocka_unit_test(test_change_limits_midway),
        cmocka_unit_test(test_throttled_time_and_events),
        cmocka_unit_test(test_both_buckets_must_pass),
        cmocka_unit_test(test_refund),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests_name("rate_limiter", tests, NULL, NULL);
}
