/* See fail.h. */
#include "fail.h"

#include <stdarg.h>
#include <stdio.h>

int hv__fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}
