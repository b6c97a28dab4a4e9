/*
 * vmctl's event-stream splitter (cli/src/sse.c): events cut anywhere by the
 * transport come out whole, with their id, type and data; the retry line and
 * comments are not events; a nonzero answer stops the feed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sse.h"

struct seen {
    char lines[8][160];
    int n, stop_after;
};

static int record(void *opaque, const char *id, const char *type, const char *data)
{
    struct seen *s = opaque;

    if (s->n < 8)
        snprintf(s->lines[s->n], sizeof(s->lines[0]), "%s|%s|%s", id, type, data);
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static const char stream[] = "retry: 1000\n\n"
                             "id: 7\nevent: image.import_progress\n"
                             "data: {\"name\":\"deb\",\"done_bytes\":10,\"total_bytes\":20}\n\n"
                             ": keepalive\n\n"
                             "id: 8\nevent: image.ready\ndata: {\"name\":\"deb\"}\n\n"
                             "data: {\"bare\":true}\n\n";

/* The stream fed in pieces of every size from 1 byte up gives the same three events. */
static void test_any_cut(void **state)
{
    (void)state;
    for (size_t piece = 1; piece <= sizeof(stream); piece++) {
        struct seen s = {0};
        struct cli_sse sse = {.on_event = record, .opaque = &s};

        for (size_t at = 0; at < sizeof(stream) - 1; at += piece) {
            size_t n = sizeof(stream) - 1 - at < piece ? sizeof(stream) - 1 - at : piece;
            assert_int_equal(cli_sse_feed(&sse, stream + at, n), 0);
        }
        assert_int_equal(s.n, 3);
        assert_string_equal(s.lines[0],
                            "7|image.import_progress|{\"name\":\"deb\",\"done_bytes\":10,"
                            "\"total_bytes\":20}");
        assert_string_equal(s.lines[1], "8|image.ready|{\"name\":\"deb\"}");
        assert_string_equal(s.lines[2], "-|-|{\"bare\":true}");
        free(sse.buf);
    }
}

/* A nonzero answer stops at that event, and the feed says so. */
static void test_stop(void **state)
{
    struct seen s = {.stop_after = 1};
    struct cli_sse sse = {.on_event = record, .opaque = &s};

    (void)state;
    assert_int_not_equal(cli_sse_feed(&sse, stream, sizeof(stream) - 1), 0);
    assert_int_equal(s.n, 1);
    free(sse.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_any_cut),
        cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
