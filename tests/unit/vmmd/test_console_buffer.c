/*
 * The worker's console log: capped, with one previous generation, rotated
 * through the descriptors opened at start (a sandboxed worker cannot open or
 * rename anything), and the ring buffer's tail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "console_buffer.h"

static char dir[64], log_path[128], old_path[128];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/vmmd-console-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(log_path, sizeof(log_path), "%s/console.log", dir);
    snprintf(old_path, sizeof(old_path), "%s/console.log.1", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(log_path);
    unlink(old_path);
    return rmdir(dir);
}

static size_t slurp(const char *path, char *out, size_t max)
{
    FILE *f = fopen(path, "r");
    size_t n;

    assert_non_null(f);
    n = fread(out, 1, max - 1, f);
    out[n] = 0;
    fclose(f);
    return n;
}

static void write_run(struct console_buffer *c, char ch, size_t n)
{
    uint8_t buf[256];

    memset(buf, ch, n);
    console_buffer_write(c, buf, n);
}

static void test_rotation_keeps_one_generation(void **state)
{
    struct console_buffer *c = malloc(sizeof(*c));
    char text[512];

    (void)state;
    assert_int_equal(console_buffer_init(c, log_path, 100, -1), 0);
    write_run(c, 'a', 60);
    assert_int_equal(slurp(log_path, text, sizeof(text)), 60);
    assert_int_equal(slurp(old_path, text, sizeof(text)), 0);
    /* Past the cap: the log moves to .1, the new bytes start a fresh log. */
    write_run(c, 'b', 60);
    assert_int_equal(slurp(old_path, text, sizeof(text)), 60);
    assert_int_equal(strspn(text, "a"), 60);
    assert_int_equal(slurp(log_path, text, sizeof(text)), 60);
    assert_int_equal(strspn(text, "b"), 60);
    /* Again: only one generation is kept. */
    write_run(c, 'c', 60);
    assert_int_equal(slurp(old_path, text, sizeof(text)), 60);
    assert_int_equal(strspn(text, "b"), 60);
    assert_int_equal(slurp(log_path, text, sizeof(text)), 60);
    assert_int_equal(strspn(text, "c"), 60);
    /* The ring still has everything, in order. */
    uint8_t tail[180];
    assert_int_equal(console_buffer_tail(c, tail, sizeof(tail)), 180);
    assert_int_equal(tail[0], 'a');
    assert_int_equal(tail[179], 'c');
    console_buffer_destroy(c);
    free(c);
}

static void test_reopen_appends(void **state)
{
    struct console_buffer *c = malloc(sizeof(*c));
    char text[512];

    (void)state;
    assert_int_equal(console_buffer_init(c, log_path, 100, -1), 0);
    write_run(c, 'x', 30);
    console_buffer_destroy(c);
    /* A worker restarted on the same VM continues its log. */
    assert_int_equal(console_buffer_init(c, log_path, 100, -1), 0);
    write_run(c, 'y', 30);
    assert_int_equal(slurp(log_path, text, sizeof(text)), 60);
    assert_int_equal(text[0], 'x');
    assert_int_equal(text[59], 'y');
    console_buffer_destroy(c);
    free(c);
}

static void test_refuses_a_symlink(void **state)
{
    struct console_buffer *c = malloc(sizeof(*c));

    (void)state;
    assert_int_equal(symlink("/etc/passwd", log_path), 0);
    assert_int_not_equal(console_buffer_init(c, log_path, 100, -1), 0);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rotation_keeps_one_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_a_symlink, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
