/* The state file's header and checksums (see snap_file.h). */
#include "snapshot/snap_file.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv/hv.h"

static const char magic[8] = {'V', 'M', 'M', 'D', 'S', 'N', 'A', 'P'};

uint32_t hv__crc32c(uint32_t crc, const void *buf, size_t len)
{
    static uint32_t table[256];
    static int ready;
    const uint8_t *p = buf;

    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1; /* Castagnoli, reflected */
            table[i] = c;
        }
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int write_at(int fd, const void *buf, size_t len, off_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int hv__snap_file_write(int fd, const struct snap_w *payload)
{
    uint8_t h[HV_SNAP_HEADER_SIZE];
    int rc;

    memcpy(h, magic, 8);
    put32(h + 8, HV_SNAPSHOT_FORMAT_VERSION);
    put32(h + 12, HV_SNAP_HEADER_SIZE);
    put32(h + 16, (uint32_t)payload->len);
    put32(h + 20, (uint32_t)((uint64_t)payload->len >> 32));
    put32(h + 24, hv__crc32c(0, payload->buf, payload->len));
    put32(h + 28, hv__crc32c(0, h, 28));
    if (ftruncate(fd, 0) < 0)
        return -errno;
    if ((rc = write_at(fd, h, sizeof(h), 0)) ||
        (rc = write_at(fd, payload->buf, payload->len, HV_SNAP_HEADER_SIZE)))
        return rc;
    return fdatasync(fd) < 0 ? -errno : 0;
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static int read_at(int fd, void *buf, size_t len, off_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EINVAL;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int hv__snap_file_read(int fd, uint8_t **payload, size_t *len, char *err, size_t errlen)
{
    uint8_t h[HV_SNAP_HEADER_SIZE];
    struct stat st;
    uint64_t n;
    int rc;

    *payload = NULL;
    *len = 0;
    if (fstat(fd, &st) < 0)
        return fail(err, errlen, -errno, "snapshot state: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail(err, errlen, -EINVAL, "snapshot state: not a regular file");
    if (st.st_size < HV_SNAP_HEADER_SIZE || read_at(fd, h, sizeof(h), 0))
        return fail(err, errlen, -EINVAL, "snapshot state: truncated header (%lld bytes)",
                    (long long)st.st_size);
    if (memcmp(h, magic, 8))
        return fail(err, errlen, -EINVAL, "snapshot state: not a vmmd snapshot (bad magic)");
    if (get32(h + 28) != hv__crc32c(0, h, 28))
        return fail(err, errlen, -EINVAL, "snapshot state: header checksum mismatch");
    if (get32(h + 8) != HV_SNAPSHOT_FORMAT_VERSION)
        return fail(err, errlen, -EPROTO,
                    "snapshot state: format version %u, this vmmd reads version %u",
                    get32(h + 8), HV_SNAPSHOT_FORMAT_VERSION);
    n = get32(h + 16) | (uint64_t)get32(h + 20) << 32;
    if (get32(h + 12) != HV_SNAP_HEADER_SIZE || n > HV_SNAPSHOT_STATE_MAX)
        return fail(err, errlen, -EINVAL, "snapshot state: bad header (payload of %llu bytes)",
                    (unsigned long long)n);
    if ((uint64_t)st.st_size != HV_SNAP_HEADER_SIZE + n)
        return fail(err, errlen, -EINVAL,
                    "snapshot state: the file is %lld bytes, its header says %llu: truncated",
                    (long long)st.st_size, (unsigned long long)(HV_SNAP_HEADER_SIZE + n));
    *payload = malloc(n ? n : 1);
    if (!*payload)
        return fail(err, errlen, -ENOMEM, "snapshot state: out of memory");
    if ((rc = read_at(fd, *payload, n, HV_SNAP_HEADER_SIZE)) ||
        get32(h + 24) != hv__crc32c(0, *payload, n)) {
        free(*payload);
        *payload = NULL;
        return fail(err, errlen, -EINVAL, "snapshot state: %s",
                    rc ? "unreadable" : "payload checksum mismatch (corrupted)");
    }
    *len = n;
    return 0;
}
