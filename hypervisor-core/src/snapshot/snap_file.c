/*
 * The state file's header and checksums (see snap_file.h), and what a file
 * says about its machine (the META section) without building a VM: the
 * daemon links this part of libhvcore alone, to refuse a corrupt snapshot
 * before it stops anything.
 */
#include "snapshot/snap_file.h"
#include "fail.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv/hv.h"


static const char magic[8] = {'V', 'M', 'M', 'D', 'S', 'N', 'A', 'P'};

static uint32_t crc_table[256];

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1; /* Castagnoli, reflected */
        crc_table[i] = c;
    }
}

uint32_t hv__crc32c(uint32_t crc, const void *buf, size_t len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    const uint8_t *p = buf;

    pthread_once(&once, crc_table_init);
    crc = ~crc;
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
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

int hv__write_at(int fd, const void *buf, size_t len, off_t off)
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

static void fill_header(uint8_t *h, const struct snap_w *payload)
{
    memcpy(h, magic, 8);
    put32(h + 8, HV_SNAPSHOT_FORMAT_VERSION);
    put32(h + 12, HV_SNAP_HEADER_SIZE);
    put32(h + 16, (uint32_t)payload->len);
    put32(h + 20, (uint32_t)((uint64_t)payload->len >> 32));
    put32(h + 24, hv__crc32c(0, payload->buf, payload->len));
    put32(h + 28, hv__crc32c(0, h, 28));
}

int hv__snap_file_write(int fd, const struct snap_w *payload)
{
    uint8_t h[HV_SNAP_HEADER_SIZE];
    int rc;

    fill_header(h, payload);
    if (ftruncate(fd, 0) < 0)
        return -errno;
    if ((rc = hv__write_at(fd, h, sizeof(h), 0)) ||
        (rc = hv__write_at(fd, payload->buf, payload->len, HV_SNAP_HEADER_SIZE)))
        return rc;
    return fdatasync(fd) < 0 ? -errno : 0;
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

/* The header's own checks; *n is the payload's length, which file_size must match. */
static int check_header(const uint8_t *h, uint64_t file_size, uint64_t *n, char *err, size_t errlen)
{
    if (file_size < HV_SNAP_HEADER_SIZE)
        return hv__fail(err, errlen, -EINVAL, "snapshot state: truncated header (%llu bytes)",
                    (unsigned long long)file_size);
    if (memcmp(h, magic, 8))
        return hv__fail(err, errlen, -EINVAL, "snapshot state: not a vmmd snapshot (bad magic)");
    if (get32(h + 28) != hv__crc32c(0, h, 28))
        return hv__fail(err, errlen, -EINVAL, "snapshot state: header checksum mismatch");
    if (get32(h + 8) != HV_SNAPSHOT_FORMAT_VERSION)
        return hv__fail(err, errlen, -EPROTO,
                    "snapshot state: format version %u, this vmmd reads version %u",
                    get32(h + 8), HV_SNAPSHOT_FORMAT_VERSION);
    *n = get32(h + 16) | (uint64_t)get32(h + 20) << 32;
    if (get32(h + 12) != HV_SNAP_HEADER_SIZE || *n > HV_SNAPSHOT_STATE_MAX)
        return hv__fail(err, errlen, -EINVAL, "snapshot state: bad header (payload of %llu bytes)",
                    (unsigned long long)*n);
    if (file_size != HV_SNAP_HEADER_SIZE + *n)
        return hv__fail(err, errlen, -EINVAL,
                    "snapshot state: the file is %llu bytes, its header says %llu: truncated",
                    (unsigned long long)file_size, (unsigned long long)(HV_SNAP_HEADER_SIZE + *n));
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
        return hv__fail(err, errlen, -errno, "snapshot state: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return hv__fail(err, errlen, -EINVAL, "snapshot state: not a regular file");
    if (st.st_size >= HV_SNAP_HEADER_SIZE && read_at(fd, h, sizeof(h), 0))
        return hv__fail(err, errlen, -EINVAL, "snapshot state: unreadable header");
    if ((rc = check_header(h, (uint64_t)st.st_size, &n, err, errlen)))
        return rc;
    *payload = malloc(n ? n : 1);
    if (!*payload)
        return hv__fail(err, errlen, -ENOMEM, "snapshot state: out of memory");
    if ((rc = read_at(fd, *payload, n, HV_SNAP_HEADER_SIZE)) ||
        get32(h + 24) != hv__crc32c(0, *payload, n)) {
        free(*payload);
        *payload = NULL;
        return hv__fail(err, errlen, -EINVAL, "snapshot state: %s",
                    rc ? "unreadable" : "payload checksum mismatch (corrupted)");
    }
    *len = n;
    return 0;
}

int hv__snap_file_build(const struct snap_w *payload, uint8_t **out, size_t *len)
{
    *len = HV_SNAP_HEADER_SIZE + payload->len;
    *out = malloc(*len);
    if (!*out)
        return -ENOMEM;
    fill_header(*out, payload);
    memcpy(*out + HV_SNAP_HEADER_SIZE, payload->buf, payload->len);
    return 0;
}

static int read_meta(struct snap_r *r, struct hv_snapshot_meta *m)
{
    struct snap_r sub;
    uint16_t version;

    memset(m, 0, sizeof(*m));
    if (snap_r_section(r, HV_SNAP_TAG_META, "machine description", 1, &sub, &version))
        return r->err;
    m->mode = (enum hv_mode)snap_r_below(&sub, HV_MODE_PV + 1, "mode");
    m->vcpus = snap_r_u32(&sub);
    if (snap_r_ok(&sub) && (m->vcpus < 1 || m->vcpus > HV_MAX_VCPUS))
        snap_r_fail(&sub, -EINVAL, "%u vCPUs", m->vcpus);
    uint64_t bytes = snap_r_u64(&sub);
    if (snap_r_ok(&sub) && (bytes % (1u << 20) || bytes >> 20 < HV_MIN_MEMORY_MIB ||
                            bytes >> 20 > HV_MAX_MEMORY_MIB))
        snap_r_fail(&sub, -EINVAL, "a memory size of %llu bytes", (unsigned long long)bytes);
    m->memory_mib = bytes >> 20;
    m->firmware = snap_r_bool(&sub);
    m->nr_disks = snap_r_below(&sub, HV_MAX_DISKS + 1, "disk count");
    for (unsigned i = 0; i < m->nr_disks && snap_r_ok(&sub); i++) {
        m->disk_bytes[i] = snap_r_u64(&sub);
        m->disk_readonly[i] = snap_r_bool(&sub);
    }
    m->nr_nics = snap_r_below(&sub, HV_MAX_NICS + 1, "NIC count");
    m->saved_realtime_ns = snap_r_u64(&sub);
    return snap_r_end(r, &sub);
}

/* Reads and checks a whole state file; the caller frees *payload. */
int hv__snap_load(int fd, uint8_t **payload, size_t *len, struct hv_snapshot_meta *meta,
                     struct snap_r *r, char *err, size_t errlen)
{
    int rc = hv__snap_file_read(fd, payload, len, err, errlen);
    if (rc)
        return rc;
    snap_r_init(r, *payload, *len);
    if (read_meta(r, meta)) {
        rc = hv__fail(err, errlen, r->err, "snapshot state: %s", r->what);
        free(*payload);
        *payload = NULL;
    }
    return rc;
}

int hv_snapshot_inspect(int state_fd, struct hv_snapshot_meta *meta, char *err, size_t errlen)
{
    uint8_t *payload;
    size_t len;
    struct snap_r r;
    int rc = hv__snap_load(state_fd, &payload, &len, meta, &r, err, errlen);

    if (rc)
        return rc;
    /* Every section's framing, up to END, and nothing after it. */
    for (;;) {
        uint32_t tag = snap_r_u32(&r), n = snap_r_u32(&r);
        /* A section holds at least its version (snap_r_section refuses less). */
        if (!snap_r_ok(&r) || n < 2 || n > r.len - r.pos) {
            rc = hv__fail(err, errlen, -EINVAL, "snapshot state: truncated section at byte %zu",
                      r.pos);
            break;
        }
        r.pos += n;
        if (tag == HV_SNAP_TAG_END) {
            if (r.pos != r.len)
                rc = hv__fail(err, errlen, -EINVAL, "snapshot state: %zu bytes after its end",
                          r.len - r.pos);
            break;
        }
    }
    free(payload);
    return rc;
}

int hv__snap_open(const uint8_t *file, size_t len, struct hv_snapshot_meta *meta, struct snap_r *r,
                  char *err, size_t errlen)
{
    uint64_t n;
    int rc = check_header(file, len, &n, err, errlen);

    if (rc)
        return rc;
    if (get32(file + 24) != hv__crc32c(0, file + HV_SNAP_HEADER_SIZE, n))
        return hv__fail(err, errlen, -EINVAL, "snapshot state: payload checksum mismatch (corrupted)");
    snap_r_init(r, file + HV_SNAP_HEADER_SIZE, n);
    if (read_meta(r, meta))
        return hv__fail(err, errlen, r->err, "snapshot state: %s", r->what);
    return 0;
}
