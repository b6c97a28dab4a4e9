/*
 * Server-sent events (text/event-stream) cut into events, as GET /v1/events
 * sends them: "id:", "event:" and "data:" lines ending with a blank line.
 * Pure, so tests/unit/cli tests it without a daemon.
 */
#ifndef VMCTL_SSE_H
#define VMCTL_SSE_H

#include <stddef.h>

/*
 * cli_sse_feed is the on_data of cli_http_stream (opaque: a struct cli_sse) and calls
 * on_event with each whole event's id, type and data ("-" for a missing id or type; an event
 * without data is skipped), until on_event returns nonzero, which it returns. The caller
 * frees buf.
 */
struct cli_sse {
    int (*on_event)(void *opaque, const char *id, const char *type, const char *data);
    void *opaque;
    char *buf;
    size_t len, cap;
};
int cli_sse_feed(void *sse, const char *data, size_t len);

#endif
