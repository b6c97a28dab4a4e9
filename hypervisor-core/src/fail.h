/* The one-line error messages libhvcore's functions leave for their callers. */
#ifndef HV_FAIL_H
#define HV_FAIL_H

#include <stddef.h>

/* Formats the message into err (errlen bytes, may be 0) and returns rc. */
int hv__fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
