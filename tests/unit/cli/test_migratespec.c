/*
 * vmctl's migration specs and one-liners (cli/src/migratespec.c): the shape
 * of `vmctl migrate`'s TARGET, its request body, the target's token read
 * from a file, the progress and result lines, and the final Migration
 * object made from the event that ended it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "migratespec.h"

static void test_target_valid(void **state)
{
    static const char *const good[] = {
        "unix:/var/lib/vmmd2/vmmd.sock",
        "unix:/nonexistent.sock", /* the daemon finds out: 502 */
        "http://10.0.0.2:8443",
        "https://host-b.example:8443",
        "https://host-b", /* the scheme's port */
        "http://[fd00::2]:8443",
        "https://[::1]",
    };
    const char *why = "unset";

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(cli_migrate_target_valid(good[i], &why));
        assert_null(why);
    }
    assert_true(cli_migrate_target_is_unix("unix:/x.sock"));
    assert_false(cli_migrate_target_is_unix("https://unix:1"));
}

static void test_target_refused(void **state)
{
    static const char *const bad[] = {
        "",
        "/var/lib/vmmd2/vmmd.sock", /* no scheme */
        "unix:",                    /* no path */
        "unix:vmmd.sock",           /* relative: to the daemon's directory, not ours */
        "ftp://host:21",
        "http://",
        "http://:8443",
        "https://host:0",
        "https://host:65536",
        "https://host:84x",
        "https://host:",
        "https://host:8443/v1", /* a path */
        "https://user@host:8443",
        "http://[]:80",
        "http://[::1]x",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = NULL;
        if (cli_migrate_target_valid(bad[i], &why))
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(why);
    }
}

static char *compact(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

    json_decref(j);
    return s;
}

static void test_body(void **state)
{
    char *s;

    (void)state;
    /* Defaults are the daemon's: left out. */
    s = compact(cli_migrate_body("unix:/b.sock", NULL, -1, -1, false));
    assert_string_equal(s, "{\"target\":\"unix:/b.sock\"}");
    free(s);
    s = compact(cli_migrate_body("https://b:8443", "t0k", 50, 60, true));
    assert_string_equal(s, "{\"insecure\":true,\"max_downtime_ms\":50,\"target\":\"https://"
                           "b:8443\",\"timeout_s\":60,\"token\":\"t0k\"}");
    free(s);
}

static char *token_from(const char *content, const char **why)
{
    char path[] = "/tmp/test_migratespec_XXXXXX";
    int fd = mkstemp(path);
    char *tok;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    tok = cli_migrate_read_token(path, why);
    unlink(path);
    return tok;
}

static void test_token_file(void **state)
{
    const char *why = "unset";
    char *tok;

    (void)state;
    tok = token_from("abc123\n", &why);
    assert_string_equal(tok, "abc123");
    assert_null(why);
    free(tok);
    tok = token_from("abc123\r\n", &why);
    assert_string_equal(tok, "abc123");
    free(tok);
    tok = token_from("abc123", &why);
    assert_string_equal(tok, "abc123");
    free(tok);
    /* The first line only, trailing blanks off. */
    tok = token_from("abc123  \nsecond line\n", &why);
    assert_string_equal(tok, "abc123");
    free(tok);
    assert_null(token_from("\n", &why));
    assert_non_null(why);
    assert_null(token_from("", &why));
    assert_non_null(why);
    why = NULL;
    assert_null(cli_migrate_read_token("/nonexistent/token", &why));
    assert_non_null(why);
}

static void test_progress_line(void **state)
{
    json_t *ev = json_loads("{\"vm\":\"web1\",\"round\":2,\"pages_left\":1234,"
                            "\"bytes_sent\":270532608,\"throughput_mbps\":812.4}",
                            0, NULL);
    char line[160];

    (void)state;
    cli_migrate_progress_line(ev, line, sizeof(line));
    assert_string_equal(line, "round 2: 1234 pages left, 812 MB/s");
    json_object_del(ev, "throughput_mbps");
    cli_migrate_progress_line(ev, line, sizeof(line));
    assert_string_equal(line, "round 2: 1234 pages left");
    json_decref(ev);
    /* A Migration object has the same fields. */
    ev = json_loads("{\"state\":\"precopy\",\"round\":3,\"pages_left\":120,"
                    "\"throughput_mbps\":0.4,\"downtime_ms\":null}",
                    0, NULL);
    cli_migrate_progress_line(ev, line, sizeof(line));
    assert_string_equal(line, "round 3: 120 pages left, 0 MB/s");
    /* Too small a buffer cuts, never overruns. */
    cli_migrate_progress_line(ev, line, 8);
    assert_string_equal(line, "round 3");
    json_decref(ev);
}

static void test_done_line(void **state)
{
    json_t *ev = json_loads("{\"vm\":\"web\",\"target\":\"unix:/b.sock\",\"downtime_ms\":12.34,"
                            "\"total_ms\":830,\"rounds\":3,\"bytes_sent\":270532608}",
                            0, NULL);
    char line[256];

    (void)state;
    cli_migrate_done_line("web", "unix:/b.sock", ev, line, sizeof(line));
    assert_string_equal(line,
                        "migrated web to unix:/b.sock: downtime 12.3 ms, total 0.8 s, 3 rounds");
    json_object_set_new(ev, "rounds", json_integer(1));
    json_object_set_new(ev, "downtime_ms", json_integer(4));
    json_object_set_new(ev, "total_ms", json_integer(12500));
    cli_migrate_done_line("web", "https://b:8443", ev, line, sizeof(line));
    assert_string_equal(line,
                        "migrated web to https://b:8443: downtime 4.0 ms, total 12.5 s, 1 round");
    json_decref(ev);
    ev = json_object();
    cli_migrate_done_line("web", "unix:/b.sock", ev, line, sizeof(line));
    assert_string_equal(line, "migrated web to unix:/b.sock: downtime ?, total ?, ? rounds");
    json_decref(ev);
}

static const char started[] =
    "{\"vm\":\"web\",\"vm_id\":\"0f3c\",\"target\":\"unix:/b.sock\",\"state\":\"connecting\","
    "\"round\":0,\"pages_total\":16384,\"pages_left\":16384,\"bytes_sent\":0,"
    "\"throughput_mbps\":0,\"elapsed_ms\":1,\"downtime_ms\":null,\"error\":null}";

static void test_final_done(void **state)
{
    json_t *start = json_loads(started, 0, NULL);
    json_t *ev = json_loads("{\"vm\":\"web\",\"target\":\"unix:/b.sock\",\"downtime_ms\":12.5,"
                            "\"total_ms\":830,\"rounds\":3,\"bytes_sent\":270532608}",
                            0, NULL);
    json_t *m = cli_migrate_final(start, "vm.migrated", ev);
    char *s;

    (void)state;
    s = compact(m);
    assert_string_equal(
        s, "{\"bytes_sent\":270532608,\"downtime_ms\":12.5,\"elapsed_ms\":830,\"error\":null,"
           "\"pages_left\":0,\"pages_total\":16384,\"round\":3,\"state\":\"done\","
           "\"target\":\"unix:/b.sock\",\"throughput_mbps\":0,\"vm\":\"web\",\"vm_id\":\"0f3c\"}");
    free(s);
    /* The start's object is left as it was. */
    assert_string_equal(json_string_value(json_object_get(start, "state")), "connecting");
    json_decref(start);
    json_decref(ev);
}

static void test_final_failed(void **state)
{
    json_t *start = json_loads(started, 0, NULL);
    json_t *ev = json_loads("{\"vm\":\"web\",\"target\":\"unix:/b.sock\",\"error\":\"the target "
                            "closed the connection\"}",
                            0, NULL);
    json_t *m = cli_migrate_final(start, "vm.migration_failed", ev);

    (void)state;
    assert_string_equal(json_string_value(json_object_get(m, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(m, "error")),
                        "the target closed the connection");
    assert_int_equal(json_integer_value(json_object_get(m, "pages_left")), 16384);
    json_decref(m);
    json_object_del(ev, "error");
    m = cli_migrate_final(NULL, "vm.migration_failed", ev);
    assert_string_equal(json_string_value(json_object_get(m, "error")), "no reason given");
    json_decref(m);
    json_decref(start);
    json_decref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_valid),  cmocka_unit_test(test_target_refused),
        cmocka_unit_test(test_body),          cmocka_unit_test(test_token_file),
        cmocka_unit_test(test_progress_line), cmocka_unit_test(test_done_line),
        cmocka_unit_test(test_final_done),    cmocka_unit_test(test_final_failed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
