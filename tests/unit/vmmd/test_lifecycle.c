/* The lifecycle table: every action from every state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lifecycle.h"

/* The expected table, written out independently of the implementation's bitmasks. */
static const char *const expected[VMMD_ACTION_COUNT][VMMD_STATE_COUNT] = {
    /*               stopped     starting    running     paused      stopping    crashed */
    [VMMD_ACT_START] = {"starting", NULL, NULL, NULL, NULL, "starting"},
    [VMMD_ACT_STOP] = {NULL, "stopping", "stopping", "stopping", "stopping", NULL},
    [VMMD_ACT_SHUTDOWN] = {NULL, NULL, "stopping", "stopping", NULL, NULL},
    [VMMD_ACT_REBOOT] = {NULL, NULL, "running", "running", NULL, NULL},
    [VMMD_ACT_PAUSE] = {NULL, NULL, "paused", NULL, NULL, NULL},
    [VMMD_ACT_RESUME] = {NULL, NULL, NULL, "running", NULL, NULL},
    [VMMD_ACT_DELETE] = {"stopped", NULL, NULL, NULL, NULL, "crashed"},
    [VMMD_ACT_EDIT] = {"stopped", NULL, NULL, NULL, NULL, "crashed"},
};

static void test_every_action_from_every_state(void **state)
{
    (void)state;
    for (int a = 0; a < VMMD_ACTION_COUNT; a++) {
        for (int s = 0; s < VMMD_STATE_COUNT; s++) {
            const char *want = expected[a][s];
            bool allowed = vmmd_action_allowed((enum vmmd_state)s, (enum vmmd_action)a);
            if (allowed != (want != NULL))
                fail_msg("%s from %s: allowed=%d", vmmd_action_name((enum vmmd_action)a),
                         vmmd_state_name((enum vmmd_state)s), allowed);
            if (want)
                assert_string_equal(
                    vmmd_state_name(vmmd_action_next_state((enum vmmd_state)s, (enum vmmd_action)a)),
                    want);
        }
    }
}

static void test_names_round_trip(void **state)
{
    (void)state;
    for (int s = 0; s < VMMD_STATE_COUNT; s++)
        assert_int_equal(vmmd_state_parse(vmmd_state_name((enum vmmd_state)s)), s);
    for (int a = 0; a < VMMD_ACTION_COUNT; a++)
        assert_int_equal(vmmd_action_parse(vmmd_action_name((enum vmmd_action)a)), a);
    assert_int_equal(vmmd_state_parse("exploded"), -1);
    assert_int_equal(vmmd_action_parse("explode"), -1);
    assert_false(vmmd_action_allowed((enum vmmd_state)99, VMMD_ACT_START));
}

static void test_worker_states(void **state)
{
    (void)state;
    assert_false(vmmd_state_has_worker(VMMD_ST_STOPPED));
    assert_false(vmmd_state_has_worker(VMMD_ST_CRASHED));
    assert_true(vmmd_state_has_worker(VMMD_ST_STARTING));
    assert_true(vmmd_state_has_worker(VMMD_ST_RUNNING));
    assert_true(vmmd_state_has_worker(VMMD_ST_PAUSED));
    assert_true(vmmd_state_has_worker(VMMD_ST_STOPPING));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_action_from_every_state),
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_worker_states),
    };
    return cmocka_run_group_tests_name("lifecycle", tests, NULL, NULL);
}
