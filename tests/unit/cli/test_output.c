/*
 * vmctl's output formatting (cli/src/output.c): units, uptimes, RFC 3339
 * times and table alignment, with and without colour.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "output.h"

static void test_duration(void **state)
{
    char buf[32];

    (void)state;
    cli_format_duration(45, buf);
    assert_string_equal(buf, "45s");
    cli_format_duration(125, buf);
    assert_string_equal(buf, "2m5s");
    cli_format_duration(3 * 3600 + 12 * 60 + 7, buf);
    assert_string_equal(buf, "3h12m");
    cli_format_duration(2 * 86400 + 4 * 3600 + 59, buf);
    assert_string_equal(buf, "2d4h");
    cli_format_duration(-1, buf);
    assert_string_equal(buf, "-");
}

static void test_units(void **state)
{
    char buf[32];

    (void)state;
    cli_format_mib(512, buf);
    assert_string_equal(buf, "512 MiB");
    cli_format_mib(2048, buf);
    assert_string_equal(buf, "2 GiB");
    cli_format_mib(1536, buf);
    assert_string_equal(buf, "1.5 GiB");
    cli_format_bytes(12, buf);
    assert_string_equal(buf, "12 B");
    cli_format_bytes(32 * 1024 * 1024, buf);
    assert_string_equal(buf, "32 MiB");
    cli_format_bytes(1536, buf);
    assert_string_equal(buf, "1.5 KiB");
}

static void test_parse_time(void **state)
{
    time_t t;

    (void)state;
    assert_int_equal(cli_parse_time("1970-01-02T00:00:01.500Z", &t), 0);
    assert_int_equal((long)t, 86401);
    assert_int_not_equal(cli_parse_time("yesterday", &t), 0);
    assert_int_not_equal(cli_parse_time(NULL, &t), 0);
}

static char *print_table(const struct cli_table *t, bool colour)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    cli_table_print(t, f, colour);
    fclose(f);
    return buf;
}

static void test_table(void **state)
{
    static const char *const headers[] = {"NAME", "STATE", "MEMORY"};
    static const char *const r1[] = {"web-01", "running", "512 MiB"};
    static const char *const r2[] = {"db", "stopped", NULL};
    struct cli_table t;
    char *out;

    (void)state;
    cli_table_init(&t, 3, headers);
    t.state_col = 1;
    assert_int_equal(cli_table_add(&t, r1), 0);
    assert_int_equal(cli_table_add(&t, r2), 0);
    out = print_table(&t, false);
    assert_string_equal(out, "NAME    STATE    MEMORY\n"
                             "web-01  running  512 MiB\n"
                             "db      stopped  -\n");
    free(out);
    out = print_table(&t, true);
    assert_non_null(strstr(out, "\033[32mrunning\033[0m  512 MiB"));
    assert_non_null(strstr(out, "db      \033[2mstopped\033[0m  -"));
    free(out);
    cli_table_free(&t);
}

static void test_state_colour(void **state)
{
    (void)state;
    assert_string_equal(cli_state_colour("crashed"), "\033[31m");
    assert_string_equal(cli_state_colour("nonsense"), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),     cmocka_unit_test(test_units),
        cmocka_unit_test(test_parse_time),   cmocka_unit_test(test_table),
        cmocka_unit_test(test_state_colour),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
