/* The dashboard's file names (no traversal), Content-Types and ETags. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "static_file.h"

static void test_names_served(void **state)
{
    (void)state;
    assert_true(static_file_name_ok("index.html"));
    assert_true(static_file_name_ok("app.js"));
    assert_true(static_file_name_ok("xterm.mjs"));
    assert_true(static_file_name_ok("xterm-LICENSE.txt"));
    assert_true(static_file_name_ok("a_b-c.1.css"));
}

static void test_traversal_and_hidden_refused(void **state)
{
    char long_name[STATIC_FILE_NAME_MAX + 2];

    (void)state;
    assert_false(static_file_name_ok(""));
    assert_false(static_file_name_ok("."));
    assert_false(static_file_name_ok(".."));
    assert_false(static_file_name_ok("../etc/passwd"));
    assert_false(static_file_name_ok("a/../b"));
    assert_false(static_file_name_ok("a..b.js"));
    assert_false(static_file_name_ok("/etc/passwd"));
    assert_false(static_file_name_ok(".htaccess"));
    assert_false(static_file_name_ok("-rf.js"));
    assert_false(static_file_name_ok("a\\b.js"));
    assert_false(static_file_name_ok("a%2e%2e.js")); /* still encoded means not ours: refuse */
    assert_false(static_file_name_ok("a b.js"));
    assert_false(static_file_name_ok("a\nb.js"));
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = 0;
    assert_false(static_file_name_ok(long_name));
    long_name[STATIC_FILE_NAME_MAX] = 0;
    assert_true(static_file_name_ok(long_name));
}

static void test_content_types(void **state)
{
    (void)state;
    assert_string_equal(static_file_type("index.html"), "text/html; charset=utf-8");
    assert_string_equal(static_file_type("app.js"), "text/javascript; charset=utf-8");
    assert_string_equal(static_file_type("xterm.mjs"), "text/javascript; charset=utf-8");
    assert_string_equal(static_file_type("style.css"), "text/css; charset=utf-8");
    assert_string_equal(static_file_type("logo.SVG"), "image/svg+xml");
    assert_string_equal(static_file_type("x.map"), "application/json");
    assert_string_equal(static_file_type("LICENSE.txt"), "text/plain; charset=utf-8");
    assert_null(static_file_type("Makefile"));
    assert_null(static_file_type("vmmd.db"));
    assert_null(static_file_type("archive.tar.gz"));
}

static void test_etag(void **state)
{
    char tag[STATIC_FILE_ETAG_LEN], other[STATIC_FILE_ETAG_LEN];

    (void)state;
    static_file_etag(4096, 1700000000123456789LL, tag);
    assert_string_equal(tag, "\"1000-17979cfe3d85cd15\"");
    static_file_etag(4097, 1700000000123456789LL, other);
    assert_string_not_equal(tag, other);
    static_file_etag(UINT64_MAX, INT64_MAX, other); /* the largest fits */
    assert_true(strlen(other) < STATIC_FILE_ETAG_LEN);
}

static void test_if_none_match(void **state)
{
    const char *tag = "\"1000-abc\"";

    (void)state;
    assert_true(static_file_etag_matches("\"1000-abc\"", tag));
    assert_true(static_file_etag_matches("W/\"1000-abc\"", tag));
    assert_true(static_file_etag_matches("\"x\", \"1000-abc\"", tag));
    assert_true(static_file_etag_matches("\"x\",\"1000-abc\" ", tag));
    assert_true(static_file_etag_matches("*", tag));
    assert_false(static_file_etag_matches(NULL, tag));
    assert_false(static_file_etag_matches("", tag));
    assert_false(static_file_etag_matches("\"1000-ab\"", tag));
    assert_false(static_file_etag_matches("\"1000-abcd\"", tag));
    assert_false(static_file_etag_matches("\"x\", \"y\"", tag));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_served),
        cmocka_unit_test(test_traversal_and_hidden_refused),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_if_none_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
