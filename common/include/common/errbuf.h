/* One line of error text for a caller's buffer, and the code to return with it. */
#ifndef VMMD_COMMON_ERRBUF_H
#define VMMD_COMMON_ERRBUF_H

#include <stddef.h>

/* Formats into err (errlen bytes) and returns rc: `return vmmd_errf(err, n, -errno, ...)`. */
int vmmd_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
