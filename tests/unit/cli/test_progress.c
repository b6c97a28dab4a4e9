/*
 * vmctl's progress bar (cli/src/progress.c): the bar, percent, rate and
 * sizes of a line, the tenths that decide when a non-terminal gets a line,
 * and what lands in the stream on and off a terminal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "progress.h"

static void test_format(void **state)
{
    char line[160];

    (void)state;
    cli_progress_format(5000000, 10000000, 0.5, line, sizeof(line));
    assert_string_equal(line,
                        "[###############---------------]  50%     10.0 MB/s   5.0 / 10.0 MB");
    cli_progress_format(0, 10000000, 0, line, sizeof(line));
    assert_string_equal(line, "[------------------------------]   0%  0.0 / 10.0 MB");
    /* More than announced (a total that was an estimate) shows full, never past it. */
    cli_progress_format(12000000, 10000000, 0, line, sizeof(line));
    assert_string_equal(line, "[##############################] 100%  12.0 / 10.0 MB");
    /* Without a total: rate and bytes only. */
    cli_progress_format(3000000, 0, 1.0, line, sizeof(line));
    assert_string_equal(line, "    3.0 MB/s   3.0 MB");
}

static void test_decile(void **state)
{
    (void)state;
    assert_int_equal(cli_progress_decile(0, 100), 0);
    assert_int_equal(cli_progress_decile(9, 100), 0);
    assert_int_equal(cli_progress_decile(10, 100), 1);
    assert_int_equal(cli_progress_decile(99, 100), 9);
    assert_int_equal(cli_progress_decile(100, 100), 10);
    assert_int_equal(cli_progress_decile(150, 100), 10);
    assert_int_equal(cli_progress_decile(50, 0), 0);
}

/* Off a terminal: a line each time another tenth is done, and none twice. */
static void test_lines_off_a_tty(void **state)
{
    struct cli_progress p;
    char *buf = NULL;
    size_t len = 0, lines = 0;
    FILE *out = open_memstream(&buf, &len);

    (void)state;
    cli_progress_start(&p, out, false, "uploading x");
    for (int64_t done = 0; done <= 1000; done += 7)
        cli_progress_update(&p, done, 1000);
    cli_progress_update(&p, 1000, 1000);
    cli_progress_end(&p);
    fclose(out);
    for (size_t i = 0; i < len; i++)
        lines += buf[i] == '\n';
    assert_int_equal(lines, 10);
    assert_null(strchr(buf, '\r'));
    assert_non_null(strstr(buf, "uploading x [#"));
    assert_non_null(strstr(buf, "100%"));
    free(buf);
}

/* On a terminal: redrawn in place with \r, one newline at the end. */
static void test_redraw_on_a_tty(void **state)
{
    struct cli_progress p;
    char *buf = NULL;
    size_t len = 0, newlines = 0;
    FILE *out = open_memstream(&buf, &len);

    (void)state;
    cli_progress_start(&p, out, true, "converting x");
    cli_progress_update(&p, 10, 100);
    cli_progress_update(&p, 100, 100);
    cli_progress_end(&p);
    fclose(out);
    for (size_t i = 0; i < len; i++)
        newlines += buf[i] == '\n';
    assert_int_equal(newlines, 1);
    assert_int_equal(buf[0], '\r');
    assert_non_null(strstr(buf, "100%"));
    free(buf);
}

/* An import that finished before any figure came, or an upload refused before any byte
 * went, draws nothing. */
static void test_nothing_to_draw(void **state)
{
    struct cli_progress p;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);

    (void)state;
    cli_progress_start(&p, out, true, "importing x");
    cli_progress_end(&p);
    cli_progress_start(&p, out, false, "uploading x");
    p.total = 1000;
    cli_progress_end(&p);
    fclose(out);
    assert_int_equal(len, 0);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),          cmocka_unit_test(test_decile),
        cmocka_unit_test(test_lines_off_a_tty), cmocka_unit_test(test_redraw_on_a_tty),
        cmocka_unit_test(test_nothing_to_draw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
