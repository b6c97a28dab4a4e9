/* The growing text buffer (see strbuf.h). */
#include "strbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->len + (size_t)n + 1) * 2;
        char *grown = realloc(b->buf, cap);
        if (!grown) {
            b->oom = true;
            return -ENOMEM;
        }
        b->buf = grown;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}
