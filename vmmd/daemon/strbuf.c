/* The growing text buffer (see strbuf.h). */
#include "strbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for n more bytes and the NUL after them. */
static int reserve(struct strbuf *b, size_t n)
{
    if (b->oom)
        return -ENOMEM;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *grown = realloc(b->buf, cap);
        if (!grown) {
            b->oom = true;
            return -ENOMEM;
        }
        b->buf = grown;
        b->cap = cap;
    }
    return 0;
}

int strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return -ENOMEM;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if (reserve(b, (size_t)n))
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int strbuf_append(struct strbuf *b, const void *data, size_t len)
{
    if (reserve(b, len))
        return -ENOMEM;
    if (len) /* data may be NULL then */
        memcpy(b->buf + b->len, data, len);
    b->len += len;
    b->buf[b->len] = 0;
    return 0;
}
