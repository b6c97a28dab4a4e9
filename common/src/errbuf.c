#include "common/errbuf.h"

#include <stdarg.h>
#include <stdio.h>

int vmmd_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}
