/* When an event stream client is too far behind: lag counts live events only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "event_policy.h"

static void test_lag_counts_live_events_only(void **state)
{
    (void)state;
    /* Caught up. */
    assert_int_equal(event_client_lag(100, 100, 90), 0);
    /* Replaying from 0 a history of 90 events, 10 live ones since it joined. */
    assert_int_equal(event_client_lag(100, 0, 90), 10);
    assert_int_equal(event_client_lag(100, 50, 90), 10);
    /* Past the history: everything after what it was handed. */
    assert_int_equal(event_client_lag(100, 95, 90), 5);
    /* A client that asked for a future id is not behind. */
    assert_int_equal(event_client_lag(100, 200, 90), 0);
}

static void test_drop_over_the_lag(void **state)
{
    struct event_lag_policy p = {.max_lag = 100, .max_stall_ms = 30000};

    (void)state;
    assert_false(event_client_should_drop(&p, 0, 0));
    assert_false(event_client_should_drop(&p, 100, 0));
    assert_true(event_client_should_drop(&p, 101, 0));
}

static void test_drop_a_stalled_client(void **state)
{
    struct event_lag_policy p = {.max_lag = 100, .max_stall_ms = 30000};

    (void)state;
    assert_false(event_client_should_drop(&p, 1, 29999));
    assert_true(event_client_should_drop(&p, 1, 30000));
    /* Nothing waiting for it: idle is not stalled, however long. */
    assert_false(event_client_should_drop(&p, 0, 10 * 60 * 1000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lag_counts_live_events_only),
        cmocka_unit_test(test_drop_over_the_lag),
        cmocka_unit_test(test_drop_a_stalled_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
