/*
 * vmctl's snapshot specs and one-liners (cli/src/snapshotspec.c): the shape
 * of `vmctl clone`'s VM/SNAPSHOT, the clone's request body, and the cells
 * and lines `snapshot list` and `snapshot show` print.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "snapshotspec.h"

static void test_ref_valid(void **state)
{
    const char *why = "unset";

    (void)state;
    assert_true(cli_snapshot_ref_valid("web1/s1", &why));
    assert_null(why);
    assert_true(cli_snapshot_ref_valid("web1/snap-1764817800", &why));
    /* Only the shape: the daemon judges the names (404 naming from_snapshot). */
    assert_true(cli_snapshot_ref_valid("Web_1/S 1", &why));
}

static void test_ref_refused(void **state)
{
    static const char *const bad[] = {
        "",         /* nothing */
        "web1",     /* no slash */
        "/s1",      /* no VM */
        "web1/",    /* no snapshot */
        "/",        /* neither */
        "a/b/c",    /* two slashes */
        "web1//s1", /* an empty part between */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = NULL;
        assert_false(cli_snapshot_ref_valid(bad[i], &why));
        assert_non_null(why);
    }
}

static char *compact(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

    json_decref(j);
    return s;
}

static void test_clone_body(void **state)
{
    char *s;
    json_t *disks;

    (void)state;
    s = compact(cli_clone_body("c1", "web1/s1", NULL, false));
    assert_string_equal(s, "{\"from_snapshot\":\"web1/s1\",\"name\":\"c1\"}");
    free(s);
    /* An empty --disk list is no override: the snapshot's disks. */
    s = compact(cli_clone_body("c1", "web1/s1", json_array(), true));
    assert_string_equal(s, "{\"autostart\":true,\"from_snapshot\":\"web1/s1\",\"name\":\"c1\"}");
    free(s);
    disks = json_pack("[{s:s, s:b}]", "volume", "c1-root", "readonly", 0);
    s = compact(cli_clone_body("c1", "web1/s1", disks, false));
    assert_string_equal(s, "{\"disks\":[{\"readonly\":false,\"volume\":\"c1-root\"}],"
                           "\"from_snapshot\":\"web1/s1\",\"name\":\"c1\"}");
    free(s);
}

static void test_pause(void **state)
{
    char out[32];

    (void)state;
    cli_format_pause_ms(0.42, out);
    assert_string_equal(out, "0.4 ms");
    cli_format_pause_ms(9.96, out);
    assert_string_equal(out, "10.0 ms");
    cli_format_pause_ms(47.0, out);
    assert_string_equal(out, "47 ms");
    cli_format_pause_ms(1250.0, out);
    assert_string_equal(out, "1.25 s");
    cli_format_pause_ms(-1, out);
    assert_string_equal(out, "-");
}

static void test_created(void **state)
{
    char out[32];

    (void)state;
    cli_format_created("2026-12-04T03:10:00Z", out);
    assert_string_equal(out, "2026-12-04 03:10:00");
    cli_format_created("2026-12-04T03:10:00.123Z", out);
    assert_string_equal(out, "2026-12-04 03:10:00");
    cli_format_created("yesterday", out);
    assert_string_equal(out, "yesterday");
    cli_format_created(NULL, out);
    assert_string_equal(out, "-");
}

/* The contract's example (shared-snapshot-api.md). */
static const char example[] =
    "{\"name\": \"before-upgrade\", \"vm\": \"web1\", \"vm_id\": \"0b3c6f3e\","
    " \"created_at\": \"2026-12-04T03:10:00Z\", \"vm_state\": \"running\", \"mode\": \"pv\","
    " \"vcpus\": 2, \"memory_mib\": 256,"
    " \"disks\": [{\"path\": \"/var/lib/vmmd/images/a.img\", \"size_bytes\": 1048576,"
    " \"readonly\": false}, {\"volume\": \"web-root\", \"size_bytes\": 2147483648,"
    " \"readonly\": true}],"
    " \"nics\": 1, \"state_bytes\": 11455, \"memory_bytes\": 268435456,"
    " \"memory_allocated_bytes\": 94208, \"paused_ms\": 47.0}";

static void test_row(void **state)
{
    json_t *snap = json_loads(example, 0, NULL);
    struct cli_snapshot_row row;

    (void)state;
    assert_non_null(snap);
    assert_int_equal(cli_snapshot_on_disk(snap), 11455 + 94208);
    cli_snapshot_row(snap, &row);
    assert_string_equal(row.name, "before-upgrade");
    assert_string_equal(row.created, "2026-12-04 03:10:00");
    assert_string_equal(row.state, "running");
    assert_string_equal(row.memory, "256 MiB");
    assert_string_equal(row.on_disk, "103.2 KiB");
    assert_string_equal(row.paused, "47 ms");
    json_decref(snap);

    /* An answer missing fields prints dashes, never crashes. */
    snap = json_object();
    cli_snapshot_row(snap, &row);
    assert_string_equal(row.name, "-");
    assert_string_equal(row.created, "-");
    assert_string_equal(row.memory, "-");
    assert_string_equal(row.paused, "-");
    json_decref(snap);
}

static void test_disk_describe(void **state)
{
    json_t *snap = json_loads(example, 0, NULL), *disks = json_object_get(snap, "disks");
    char line[256];

    (void)state;
    cli_snapshot_disk_describe(json_array_get(disks, 0), line, sizeof(line));
    assert_string_equal(line, "/var/lib/vmmd/images/a.img 1 MiB");
    cli_snapshot_disk_describe(json_array_get(disks, 1), line, sizeof(line));
    assert_string_equal(line, "volume web-root 2 GiB (read-only)");
    json_decref(snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_valid),     cmocka_unit_test(test_ref_refused),
        cmocka_unit_test(test_clone_body),    cmocka_unit_test(test_pause),
        cmocka_unit_test(test_created),       cmocka_unit_test(test_row),
        cmocka_unit_test(test_disk_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
