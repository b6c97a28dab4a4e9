/* A growing buffer for answers built piece by piece (metrics, event streams, WebSocket queues). */
#ifndef VMMD_STRBUF_H
#define VMMD_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
    char *buf; /* NUL-terminated once anything was added; owned, free() it */
    size_t len, cap;
    bool oom; /* an allocation failed: what came after it was dropped */
};

/* Appends; returns 0, or -ENOMEM (and sets oom) when the buffer cannot grow. */
int strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends len bytes (which may hold NULs); the same return values. */
int strbuf_append(struct strbuf *b, const void *data, size_t len);

#endif
