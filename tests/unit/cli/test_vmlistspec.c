/*
 * `vmctl list`'s table (cli/src/vmlistspec.c): the same eight columns as
 * ever for a stand-alone daemon's answer, and a MEMBER column after STATE as
 * soon as any VM of the answer has a "member" (a cluster member's answer,
 * shared-cluster.md), with an offline member's VM "unknown".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmlistspec.h"

/* 2026-12-04T07:01:05Z */
static const time_t now = 1796367665;

static const char standalone[] =
    "[{\"name\": \"a\", \"id\": \"0a1b\", \"state\": \"running\", \"mode\": \"pv\", \"vcpus\": 1,"
    "  \"memory_mib\": 256, \"autostart\": false, \"started_at\": \"2026-12-04T06:00:00Z\"},"
    " {\"name\": \"b\", \"id\": \"0c2d\", \"state\": \"stopped\", \"mode\": \"full\", \"vcpus\": 2,"
    "  \"memory_mib\": 1024, \"autostart\": true, \"started_at\": null}]";

static const char clustered[] =
    "[{\"name\": \"a\", \"id\": \"0a1b\", \"state\": \"paused\", \"mode\": \"pv\", \"vcpus\": 1,"
    "  \"memory_mib\": 256, \"autostart\": false, \"started_at\": \"2026-12-04T07:00:00Z\","
    "  \"member\": \"m1\"},"
    " {\"name\": \"b\", \"id\": \"0c2d\", \"state\": \"unknown\", \"mode\": \"full\", \"vcpus\": 2,"
    "  \"memory_mib\": 1536, \"autostart\": true, \"started_at\": \"2026-12-04T06:00:00Z\","
    "  \"member\": \"m2\"}]";

/* The table as printed (no colour) into a string the caller frees. */
static char *render(const char *answer)
{
    json_t *vms = json_loads(answer, 0, NULL);
    struct cli_table t;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    assert_non_null(vms);
    assert_non_null(out);
    assert_int_equal(cli_vm_list_table(vms, now, &t), 0);
    assert_int_equal(t.state_col, 1);
    cli_table_print(&t, out, false);
    fclose(out);
    cli_table_free(&t);
    json_decref(vms);
    return text;
}

static void test_standalone(void **state)
{
    char *text = render(standalone);

    (void)state;
    assert_string_equal(text, "NAME  STATE    MODE  VCPUS  MEMORY   UPTIME  AUTOSTART  ID\n"
                              "a     running  pv    1      256 MiB  1h1m    no         0a1b\n"
                              "b     stopped  full  2      1 GiB    -       yes        0c2d\n");
    free(text);
}

static void test_clustered(void **state)
{
    char *text = render(clustered);

    (void)state;
    /* An unknown VM has no uptime, whatever its stale started_at says. */
    assert_string_equal(text,
                        "NAME  STATE    MEMBER  MODE  VCPUS  MEMORY   UPTIME  AUTOSTART  ID\n"
                        "a     paused   m1      pv    1      256 MiB  1m5s    no         0a1b\n"
                        "b     unknown  m2      full  2      1.5 GiB  -       yes        0c2d\n");
    free(text);
}

static void test_have_member(void **state)
{
    json_t *vms = json_loads(standalone, 0, NULL);

    (void)state;
    assert_false(cli_vms_have_member(vms));
    /* One VM with a member is enough; a VM without one then shows "-" in the column. */
    json_object_set_new(json_array_get(vms, 1), "member", json_string("m3"));
    assert_true(cli_vms_have_member(vms));
    /* null is no member. */
    json_object_set_new(json_array_get(vms, 1), "member", json_null());
    assert_false(cli_vms_have_member(vms));
    assert_false(cli_vms_have_member(NULL));
    json_decref(vms);
}

static void test_mixed(void **state)
{
    json_t *vms = json_loads(standalone, 0, NULL);
    struct cli_table t;

    (void)state;
    json_object_set_new(json_array_get(vms, 1), "member", json_string("m3"));
    assert_int_equal(cli_vm_list_table(vms, now, &t), 0);
    assert_int_equal(t.ncols, 9);
    assert_string_equal(t.headers[2], "MEMBER");
    assert_string_equal(t.cells[0 * 9 + 2], "-");
    assert_string_equal(t.cells[1 * 9 + 2], "m3");
    cli_table_free(&t);
    json_decref(vms);
}

static void test_empty(void **state)
{
    char *text = render("[]");

    (void)state;
    assert_string_equal(text, "NAME  STATE  MODE  VCPUS  MEMORY  UPTIME  AUTOSTART  ID\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standalone),  cmocka_unit_test(test_clustered),
        cmocka_unit_test(test_have_member), cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
