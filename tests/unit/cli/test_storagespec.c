/*
 * vmctl's storage specs and one-liners (cli/src/storagespec.c): what
 * `--disk` accepts (a path or volume=NAME, each with ,ro) and refuses
 * before anything is sent, and the descriptions of disks and volumes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storagespec.h"

/* The Disk a spec parses to, compact with sorted keys, or NULL. Caller frees. */
static char *disk_json(const char *spec, const char **why)
{
    json_t *disk = cli_disk_parse(spec, why);
    char *out = disk ? json_dumps(disk, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

    json_decref(disk);
    return out;
}

static void expect_disk(const char *spec, const char *json)
{
    const char *why;
    char *s = disk_json(spec, &why);

    assert_non_null(s);
    assert_string_equal(s, json);
    assert_null(why);
    free(s);
}

static void test_disk_parse(void **state)
{
    (void)state;
    expect_disk("/images/a.img", "{\"path\":\"/images/a.img\",\"readonly\":false}");
    expect_disk("/images/a.img,ro", "{\"path\":\"/images/a.img\",\"readonly\":true}");
    expect_disk("volume=web-root", "{\"readonly\":false,\"volume\":\"web-root\"}");
    expect_disk("volume=web-root,ro", "{\"readonly\":true,\"volume\":\"web-root\"}");
    /* Only a leading "volume=" names a volume; a path may hold the word. */
    expect_disk("/images/volume=x", "{\"path\":\"/images/volume=x\",\"readonly\":false}");
    /* A comma in a path stays part of it, as before volumes existed. */
    expect_disk("/images/a,b.img", "{\"path\":\"/images/a,b.img\",\"readonly\":false}");
}

static void test_disk_refused(void **state)
{
    static const char *const bad[] = {
        "",              /* nothing */
        ",ro",           /* a read-only nothing */
        "volume=",       /* no name */
        "volume=,ro",    /* the same, read-only */
        "volume=a,rw",   /* an option that is not ro */
        "volume=a,b,ro", /* a comma in the name */
    };
    const char *why;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *disk = cli_disk_parse(bad[i], &why);
        if (disk)
            fail_msg("'%s' was accepted", bad[i]);
        assert_non_null(why);
    }
}

static void test_disk_describe(void **state)
{
    json_t *d;
    char line[128];

    (void)state;
    d = json_pack("{s:s, s:b}", "path", "/images/a.img", "readonly", 1);
    cli_disk_describe(d, line, sizeof(line));
    assert_string_equal(line, "/images/a.img (read-only)");
    json_decref(d);
    d = json_pack("{s:s, s:b}", "volume", "web-root", "readonly", 0);
    cli_disk_describe(d, line, sizeof(line));
    assert_string_equal(line, "volume web-root");
    json_decref(d);
    d = json_object();
    cli_disk_describe(d, line, sizeof(line));
    assert_string_equal(line, "?");
    json_decref(d);
}

static void test_formats_and_sha(void **state)
{
    char sha[13];

    (void)state;
    assert_true(cli_image_format_valid("auto"));
    assert_true(cli_image_format_valid("raw"));
    assert_true(cli_image_format_valid("qcow2"));
    assert_false(cli_image_format_valid("vmdk"));
    assert_false(cli_image_format_valid(""));
    cli_sha256_short("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", sha);
    assert_string_equal(sha, "0123456789ab");
    cli_sha256_short(NULL, sha);
    assert_string_equal(sha, "-");
}

static void test_volume_lines(void **state)
{
    json_t *v;
    char line[64];

    (void)state;
    v = json_pack("{s:s, s:s, s:[{s:s, s:s}, {s:s}]}", "image", "debian", "clone", "sparse-copy",
                  "vms", "id", "1", "name", "web", "id", "2b");
    cli_volume_origin(v, line, sizeof(line));
    assert_string_equal(line, "clone of debian (sparse copy)");
    cli_volume_users(v, line, sizeof(line));
    assert_string_equal(line, "web, 2b"); /* a VM without a name goes by its id */
    json_decref(v);
    v = json_pack("{s:n, s:s, s:[]}", "image", "clone", "empty", "vms");
    cli_volume_origin(v, line, sizeof(line));
    assert_string_equal(line, "empty");
    cli_volume_users(v, line, sizeof(line));
    assert_string_equal(line, "-");
    json_decref(v);
    v = json_pack("{s:s, s:s}", "image", "debian", "clone", "reflink");
    cli_volume_origin(v, line, sizeof(line));
    assert_string_equal(line, "clone of debian (reflink)");
    json_decref(v);
}

static void test_volume_users_truncated(void **state)
{
    json_t *v = json_pack("{s:[{s:s}, {s:s}, {s:s}]}", "vms", "name", "aaaaaaaa", "name",
                          "bbbbbbbb", "name", "cccccccc");
    char line[16];

    (void)state;
    cli_volume_users(v, line, sizeof(line));
    assert_true(strlen(line) < sizeof(line)); /* cut, never overrun */
    assert_memory_equal(line, "aaaaaaaa", 8);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_parse),    cmocka_unit_test(test_disk_refused),
        cmocka_unit_test(test_disk_describe), cmocka_unit_test(test_formats_and_sha),
        cmocka_unit_test(test_volume_lines),  cmocka_unit_test(test_volume_users_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
