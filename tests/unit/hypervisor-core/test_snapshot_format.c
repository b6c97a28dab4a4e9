/*
 * The snapshot format without a VM: snap_buf's writer and reader (wire
 * bytes, sections, every way a read is refused), the state file's envelope
 * (CRC-32C, header, every corruption and truncation refused with a message)
 * and hv_snapshot_inspect on hand-built files. No /dev/kvm: real VMs are
 * tests/integration/test_snapshots.sh's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/vcpu_state.h"
#include "hv/hv.h"
#include "snapshot/snap_buf.h"
#include "snapshot/snap_file.h"

#define TAG_TEST SNAP_TAG('T', 'E', 'S', 'T')
#define TAG_INNR SNAP_TAG('I', 'N', 'N', 'R')

static void assert_contains(const char *what, const char *want)
{
    if (!strstr(what, want))
        fail_msg("message \"%s\" does not contain \"%s\"", what, want);
}

/* ---- snap_buf: the writer ---------------------------------------------------------------- */

static void test_widths_on_the_wire(void **state)
{
    struct snap_w w;
    static const uint8_t want[] = {
        0xa5,                                           /* u8 */
        0x34, 0x12,                                     /* u16 0x1234 */
        0x78, 0x56, 0x34, 0x12,                         /* u32 0x12345678 */
        0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01, /* u64 0x0123456789abcdef */
        0x01, 0x00,                                     /* true, false */
        'a',  'b',  'c',                                /* bytes */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* u64 max */
    };
    uint8_t bytes[3];
    struct snap_r r;

    (void)state;
    snap_w_init(&w);
    snap_w_u8(&w, 0xa5);
    snap_w_u16(&w, 0x1234);
    snap_w_u32(&w, 0x12345678u);
    snap_w_u64(&w, 0x0123456789abcdefull);
    snap_w_bool(&w, true);
    snap_w_bool(&w, false);
    snap_w_bytes(&w, "abc", 3);
    snap_w_bytes(&w, NULL, 0);
    snap_w_u64(&w, UINT64_MAX);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, sizeof(want));
    assert_memory_equal(w.buf, want, sizeof(want));

    snap_r_init(&r, w.buf, w.len);
    assert_int_equal(snap_r_u8(&r), 0xa5);
    assert_int_equal(snap_r_u16(&r), 0x1234);
    assert_int_equal(snap_r_u32(&r), 0x12345678u);
    assert_true(snap_r_u64(&r) == 0x0123456789abcdefull);
    assert_true(snap_r_bool(&r));
    assert_false(snap_r_bool(&r));
    snap_r_bytes(&r, bytes, 3);
    assert_memory_equal(bytes, "abc", 3);
    assert_true(snap_r_u64(&r) == UINT64_MAX);
    assert_true(snap_r_ok(&r));
    assert_int_equal(r.pos, r.len);
    snap_w_free(&w);
    assert_null(w.buf);
    assert_int_equal(w.len, 0);
}

static void test_writer_grows(void **state)
{
    struct snap_w w;

    (void)state;
    snap_w_init(&w);
    for (uint32_t i = 0; i < 100000; i++)
        snap_w_u32(&w, i);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, 400000);
    struct snap_r r;
    snap_r_init(&r, w.buf, w.len);
    for (uint32_t i = 0; i < 100000; i++)
        if (snap_r_u32(&r) != i)
            fail_msg("word %u read back wrong", i);
    assert_true(snap_r_ok(&r));
    snap_w_free(&w);
}

/* A write that cannot fit (SIZE_MAX bytes) sets -ENOMEM without allocating; everything after
 * is dropped and the buffer keeps what it had. */
static void test_writer_enomem(void **state)
{
    struct snap_w w;
    uint8_t one = 1;

    (void)state;
    snap_w_init(&w);
    snap_w_u32(&w, 0xdeadbeef);
    size_t mark = snap_w_begin(&w, TAG_TEST, 1);
    snap_w_bytes(&w, &one, SIZE_MAX);
    assert_int_equal(w.err, -ENOMEM);
    assert_int_equal(w.len, 4 + 10);
    snap_w_u64(&w, 1);
    snap_w_bytes(&w, &one, 1);
    snap_w_end(&w, mark);
    assert_int_equal(w.len, 4 + 10);
    assert_int_equal(w.err, -ENOMEM);
    /* The section's length was not filled in after the failure. */
    assert_int_equal(w.buf[8], 0);
    snap_w_free(&w);
    assert_int_equal(w.err, 0);
}

/* ---- snap_buf: sections ---------------------------------------------------------------- */

/* TEST v3 { u32 7, INNR v1 { u16 0xbeef }, u8 9 } */
static void write_nested(struct snap_w *w)
{
    snap_w_init(w);
    size_t outer = snap_w_begin(w, TAG_TEST, 3);
    snap_w_u32(w, 7);
    size_t inner = snap_w_begin(w, TAG_INNR, 1);
    snap_w_u16(w, 0xbeef);
    snap_w_end(w, inner);
    snap_w_u8(w, 9);
    snap_w_end(w, outer);
    assert_int_equal(w->err, 0);
}

static void test_nested_sections(void **state)
{
    struct snap_w w;
    struct snap_r r, outer, inner;
    uint16_t version;

    (void)state;
    write_nested(&w);
    /* Outer: tag, length of what follows it (2 + 4 + 12 + 1 = 19), version 3. */
    static const uint8_t head[] = {'T', 'E', 'S', 'T', 19, 0, 0, 0, 3, 0, 7,    0,    0, 0,
                                   'I', 'N', 'N', 'R', 4,  0, 0, 0, 1, 0, 0xef, 0xbe, 9};
    assert_int_equal(w.len, sizeof(head));
    assert_memory_equal(w.buf, head, sizeof(head));

    snap_r_init(&r, w.buf, w.len);
    assert_int_equal(snap_r_section(&r, TAG_TEST, "test", 3, &outer, &version), 0);
    assert_int_equal(version, 3);
    assert_int_equal(r.pos, r.len); /* the parent moved past it */
    assert_int_equal(snap_r_u32(&outer), 7);
    assert_int_equal(snap_r_section(&outer, TAG_INNR, "inner", 5, &inner, &version), 0);
    assert_int_equal(version, 1);
    assert_int_equal(snap_r_u16(&inner), 0xbeef);
    assert_int_equal(snap_r_end(&outer, &inner), 0);
    assert_int_equal(snap_r_u8(&outer), 9);
    assert_int_equal(snap_r_end(&r, &outer), 0);
    assert_true(snap_r_ok(&r));
    snap_w_free(&w);
}

static int read_section(const uint8_t *buf, size_t len, uint32_t tag, uint16_t max, char *what,
                        struct snap_r *sub)
{
    struct snap_r r;
    uint16_t version = 99;

    snap_r_init(&r, buf, len);
    int rc = snap_r_section(&r, tag, "test", max, sub, &version);
    assert_int_equal(rc, r.err);
    if (rc) {
        /* Both readers carry the error. */
        assert_int_equal(sub->err, rc);
        assert_int_equal(version == 0 || version > max, 1);
        assert_true(r.what[0] != 0);
        assert_true(sub->what[0] != 0);
        /* Whatever is read from it now is 0. */
        assert_int_equal(snap_r_u32(sub), 0);
    }
    strcpy(what, r.what);
    return rc;
}

static void test_section_refusals(void **state)
{
    struct snap_w w;
    struct snap_r sub;
    char what[160];
    uint8_t *buf;

    (void)state;
    write_nested(&w);
    buf = malloc(w.len);
    assert_non_null(buf);

    /* Wrong tag, named with the tag found. */
    assert_int_equal(read_section(w.buf, w.len, TAG_INNR, 3, what, &sub), -EINVAL);
    assert_contains(what, "expected the test section, found 'TEST'");
    /* A tag of unprintable bytes is shown with '?'. */
    memcpy(buf, w.buf, w.len);
    buf[1] = 0x01;
    assert_int_equal(read_section(buf, w.len, TAG_TEST, 3, what, &sub), -EINVAL);
    assert_contains(what, "found 'T?ST'");

    /* Newer than this build reads: -EPROTO naming both. */
    assert_int_equal(read_section(w.buf, w.len, TAG_TEST, 2, what, &sub), -EPROTO);
    assert_contains(what, "test: state version 3, this build reads up to 2");
    /* Version 0 does not exist. */
    memcpy(buf, w.buf, w.len);
    buf[8] = 0;
    assert_true(read_section(buf, w.len, TAG_TEST, 3, what, &sub) < 0);
    assert_contains(what, "state version 0");

    /* Every truncation of the buffer: the header promises more than there is. */
    for (size_t len = 0; len < w.len; len++) {
        assert_int_equal(read_section(w.buf, len, TAG_TEST, 3, what, &sub), -EINVAL);
        assert_contains(what, len < 8 ? "truncated at byte" : "truncated");
    }
    /* A length too short to hold the version. */
    for (uint8_t n = 0; n < 2; n++) {
        memcpy(buf, w.buf, w.len);
        buf[4] = n;
        assert_int_equal(read_section(buf, w.len, TAG_TEST, 3, what, &sub), -EINVAL);
        assert_contains(what, "truncated");
    }
    /* A length of nearly 4 GiB must not wrap around. */
    memcpy(buf, w.buf, w.len);
    memset(buf + 4, 0xff, 4);
    assert_int_equal(read_section(buf, w.len, TAG_TEST, 3, what, &sub), -EINVAL);
    assert_contains(what, "4294967295 bytes is truncated");

    /* The good one still reads. */
    assert_int_equal(read_section(w.buf, w.len, TAG_TEST, 3, what, &sub), 0);
    free(buf);
    snap_w_free(&w);
}

/* A loader that leaves bytes of its section unread: a layout mismatch, copied to the parent. */
static void test_end_with_unread_bytes(void **state)
{
    struct snap_w w;
    struct snap_r r, outer, inner;
    uint16_t version;

    (void)state;
    write_nested(&w);
    snap_r_init(&r, w.buf, w.len);
    assert_int_equal(snap_r_section(&r, TAG_TEST, "test", 3, &outer, &version), 0);
    assert_int_equal(snap_r_u32(&outer), 7);
    /* Skips the inner section and the u8. */
    assert_int_equal(snap_r_end(&r, &outer), -EINVAL);
    assert_contains(r.what, "13 bytes left unread");
    assert_int_equal(outer.err, -EINVAL);

    /* An error inside a section reaches the parent with its message. */
    snap_r_init(&r, w.buf, w.len);
    assert_int_equal(snap_r_section(&r, TAG_TEST, "test", 3, &outer, &version), 0);
    snap_r_u32(&outer);
    assert_int_equal(snap_r_section(&outer, TAG_INNR, "inner", 1, &inner, &version), 0);
    snap_r_u32(&inner); /* only 2 bytes there */
    assert_int_equal(snap_r_end(&outer, &inner), -EINVAL);
    assert_int_equal(snap_r_end(&r, &outer), -EINVAL);
    assert_contains(r.what, "truncated at byte 2");
    snap_w_free(&w);
}

static void test_below(void **state)
{
    struct snap_w w;
    struct snap_r r;

    (void)state;
    snap_w_init(&w);
    snap_w_u32(&w, 0);
    snap_w_u32(&w, 15);
    snap_w_u32(&w, 16);
    snap_w_u32(&w, 3);
    snap_r_init(&r, w.buf, w.len);
    assert_int_equal(snap_r_below(&r, 16, "index"), 0);
    assert_int_equal(snap_r_below(&r, 16, "index"), 15);
    assert_true(snap_r_ok(&r));
    assert_int_equal(snap_r_below(&r, 16, "queue index"), 0);
    assert_int_equal(r.err, -EINVAL);
    assert_string_equal(r.what, "queue index is 16, must be below 16");
    assert_int_equal(snap_r_below(&r, 16, "other"), 0); /* after an error: 0 */
    assert_string_equal(r.what, "queue index is 16, must be below 16");

    /* Limit 0: nothing is below it. */
    snap_r_init(&r, w.buf, w.len);
    assert_int_equal(snap_r_below(&r, 0, "x"), 0);
    assert_int_equal(r.err, -EINVAL);
    snap_w_free(&w);
}

static void test_bool_refuses_2(void **state)
{
    static const uint8_t buf[] = {1, 0, 2, 1};
    struct snap_r r;

    (void)state;
    snap_r_init(&r, buf, sizeof(buf));
    assert_true(snap_r_bool(&r));
    assert_false(snap_r_bool(&r));
    assert_true(snap_r_ok(&r));
    assert_false(snap_r_bool(&r));
    assert_int_equal(r.err, -EINVAL);
    assert_string_equal(r.what, "a boolean of 2 at byte 2");
    assert_false(snap_r_bool(&r)); /* the 1 after it is not read */

    uint8_t b = 0xff;
    snap_r_init(&r, &b, 1);
    snap_r_bool(&r);
    assert_contains(r.what, "a boolean of 255 at byte 0");
}

/* After the first error every get returns 0 (bytes are zeroed) and the message stays. */
static void test_gets_after_error(void **state)
{
    uint8_t buf[64];
    uint8_t dst[8];
    struct snap_r r, sub;
    uint16_t version = 7;

    (void)state;
    memset(buf, 0xff, sizeof(buf));
    snap_r_init(&r, buf, 3);
    assert_int_equal(snap_r_u16(&r), 0xffff);
    assert_int_equal(snap_r_u16(&r), 0); /* 1 byte left */
    assert_int_equal(r.err, -EINVAL);
    assert_string_equal(r.what, "truncated at byte 2");
    assert_int_equal(r.pos, 2);
    /* The byte left would read 0xff, but nothing is read any more. */
    r.len = sizeof(buf);
    assert_int_equal(snap_r_u8(&r), 0);
    assert_int_equal(snap_r_u16(&r), 0);
    assert_int_equal(snap_r_u32(&r), 0);
    assert_true(snap_r_u64(&r) == 0);
    assert_false(snap_r_bool(&r));
    assert_int_equal(snap_r_below(&r, 10, "x"), 0);
    memset(dst, 0xaa, sizeof(dst));
    snap_r_bytes(&r, dst, sizeof(dst));
    for (unsigned i = 0; i < sizeof(dst); i++)
        assert_int_equal(dst[i], 0);
    assert_int_equal(snap_r_section(&r, TAG_TEST, "test", 1, &sub, &version), -EINVAL);
    assert_int_equal(version, 0);
    assert_int_equal(sub.err, -EINVAL);
    assert_int_equal(sub.len, 0);
    assert_int_equal(snap_r_end(&r, &sub), -EINVAL);
    assert_int_equal(r.pos, 2);
    assert_int_equal(snap_r_fail(&r, -EPROTO, "later %d", 1), -EINVAL);
    assert_string_equal(r.what, "truncated at byte 2");

    /* snap_r_bytes past the end: zeroed, position kept. */
    snap_r_init(&r, buf, 4);
    memset(dst, 0xaa, sizeof(dst));
    snap_r_bytes(&r, dst, 5);
    assert_int_equal(r.err, -EINVAL);
    assert_int_equal(r.pos, 0);
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(dst[i], 0);
    assert_int_equal(dst[5], 0xaa);

    /* A loader's own snap_r_fail is the first message too. */
    snap_r_init(&r, buf, sizeof(buf));
    assert_int_equal(snap_r_fail(&r, -EPROTO, "irq %u out of range", 99u), -EPROTO);
    assert_int_equal(snap_r_u32(&r), 0);
    assert_string_equal(r.what, "irq 99 out of range");

    /* An empty reader (NULL, 0) reads nothing without touching memory. */
    snap_r_init(&r, NULL, 0);
    assert_int_equal(snap_r_u8(&r), 0);
    assert_int_equal(r.err, -EINVAL);
}

/* ---- the state file's envelope -------------------------------------------------------- */

static int memfd(void)
{
    int fd = memfd_create("snap-test", 0);
    assert_true(fd >= 0);
    return fd;
}

static void put_file(int fd, const uint8_t *buf, size_t len)
{
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
}

/* The whole file's bytes into *buf (malloc'd); returns its length. */
static size_t get_file(int fd, uint8_t **buf)
{
    off_t len = lseek(fd, 0, SEEK_END);
    assert_true(len >= 0);
    *buf = malloc((size_t)len + 1);
    assert_non_null(*buf);
    assert_int_equal(pread(fd, *buf, (size_t)len, 0), len);
    return (size_t)len;
}

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* After patching header fields: the header's own checksum made right again. */
static void fix_header_crc(uint8_t *h)
{
    le32(h + 28, hv__crc32c(0, h, 28));
}

/* Reading the file's bytes must fail with rc and a message containing want. */
static void assert_file_refused(int fd, const uint8_t *buf, size_t len, int rc, const char *want)
{
    uint8_t *payload = (uint8_t *)1;
    size_t plen = 99;
    char err[256] = "";

    put_file(fd, buf, len);
    assert_int_equal(hv__snap_file_read(fd, &payload, &plen, err, sizeof(err)), rc);
    assert_null(payload);
    assert_int_equal(plen, 0);
    assert_contains(err, "snapshot state: ");
    if (want)
        assert_contains(err, want);
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(hv__crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(hv__crc32c(0, "", 0), 0);
    assert_int_equal(hv__crc32c(0, NULL, 0), 0);
    /* RFC 3720 B.4: 32 bytes of zeros, of 0xff, and ascending. */
    uint8_t b[32];
    memset(b, 0, sizeof(b));
    assert_int_equal(hv__crc32c(0, b, sizeof(b)), 0x8a9136aau);
    memset(b, 0xff, sizeof(b));
    assert_int_equal(hv__crc32c(0, b, sizeof(b)), 0x62a8ab43u);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    assert_int_equal(hv__crc32c(0, b, sizeof(b)), 0x46dd794eu);
    /* Incremental: the crc of a whole equals the crc continued over its parts. */
    assert_int_equal(hv__crc32c(hv__crc32c(0, "12345", 5), "6789", 4), 0xe3069283u);
}

/* A payload of n bytes, not all alike. */
static void make_payload(struct snap_w *w, size_t n)
{
    snap_w_init(w);
    for (size_t i = 0; i < n; i++)
        snap_w_u8(w, (uint8_t)(i * 7 + 3));
    assert_int_equal(w->err, 0);
}

static void test_file_round_trip(void **state)
{
    struct snap_w w;
    uint8_t *payload, *file;
    size_t len;
    char err[256] = "";
    int fd = memfd();

    (void)state;
    /* A long file first: the write must truncate it. */
    make_payload(&w, 100000);
    assert_int_equal(hv__snap_file_write(fd, &w), 0);
    snap_w_free(&w);
    make_payload(&w, 300);
    assert_int_equal(hv__snap_file_write(fd, &w), 0);

    size_t flen = get_file(fd, &file);
    assert_int_equal(flen, HV_SNAP_HEADER_SIZE + 300);
    assert_memory_equal(file, "VMMDSNAP", 8);
    assert_int_equal(get_le32(file + 8), HV_SNAPSHOT_FORMAT_VERSION);
    assert_int_equal(get_le32(file + 12), HV_SNAP_HEADER_SIZE);
    assert_int_equal(get_le32(file + 16), 300);
    assert_int_equal(get_le32(file + 20), 0);
    assert_int_equal(get_le32(file + 24), hv__crc32c(0, w.buf, w.len));
    assert_int_equal(get_le32(file + 28), hv__crc32c(0, file, 28));
    assert_memory_equal(file + HV_SNAP_HEADER_SIZE, w.buf, w.len);
    free(file);

    assert_int_equal(hv__snap_file_read(fd, &payload, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 300);
    assert_memory_equal(payload, w.buf, w.len);
    free(payload);
    snap_w_free(&w);

    /* An empty payload is a valid envelope. */
    snap_w_init(&w);
    assert_int_equal(hv__snap_file_write(fd, &w), 0);
    assert_int_equal(hv__snap_file_read(fd, &payload, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 0);
    assert_non_null(payload);
    free(payload);
    close(fd);
}

/* A regular file on disk (not only a memfd) works as well. */
static void test_file_tmpfile(void **state)
{
    struct snap_w w;
    uint8_t *payload;
    size_t len;
    char err[256] = "";
    FILE *f = tmpfile();

    (void)state;
    assert_non_null(f);
    make_payload(&w, 5000);
    assert_int_equal(hv__snap_file_write(fileno(f), &w), 0);
    assert_int_equal(hv__snap_file_read(fileno(f), &payload, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 5000);
    assert_memory_equal(payload, w.buf, w.len);
    free(payload);
    snap_w_free(&w);
    fclose(f);
}

/* Every bit of every byte, header and payload: each flip refused, by the right check. */
static void test_file_every_flip(void **state)
{
    struct snap_w w;
    uint8_t *good, *buf;
    int fd = memfd();

    (void)state;
    make_payload(&w, 200);
    assert_int_equal(hv__snap_file_write(fd, &w), 0);
    size_t len = get_file(fd, &good);
    buf = malloc(len);
    assert_non_null(buf);
    for (size_t i = 0; i < len; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            memcpy(buf, good, len);
            buf[i] ^= (uint8_t)(1u << bit);
            const char *want = i < 8                     ? "bad magic"
                               : i < HV_SNAP_HEADER_SIZE ? "header checksum mismatch"
                                                         : "payload checksum mismatch";
            assert_file_refused(fd, buf, len, -EINVAL, want);
        }
        /* And the whole byte inverted. */
        memcpy(buf, good, len);
        buf[i] ^= 0xff;
        assert_file_refused(fd, buf, len, -EINVAL, NULL);
    }
    free(buf);
    free(good);
    snap_w_free(&w);
    close(fd);
}

static void test_file_every_truncation(void **state)
{
    struct snap_w w;
    uint8_t *good;
    char want[128];
    int fd = memfd();

    (void)state;
    make_payload(&w, 100);
    assert_int_equal(hv__snap_file_write(fd, &w), 0);
    size_t len = get_file(fd, &good);
    for (size_t n = 0; n < len; n++) {
        if (n < HV_SNAP_HEADER_SIZE)
            snprintf(want, sizeof(want), "truncated header (%zu bytes)", n);
        else
            snprintf(want, sizeof(want), "the file is %zu bytes, its header says %zu: truncated", n,
                     len);
        assert_file_refused(fd, good, n, -EINVAL, want);
    }
    free(good);
    snap_w_free(&w);
    close(fd);
}

static void test_file_header_fields(void **state)
{
    struct snap_w w;
    uint8_t *good, *buf;
    char want[128];
    int fd = memfd();

    (void)state;
    make_payload(&w, 64);
    assert_int_equal(hv__snap_file_write(fd, &w), 0);
    size_t len = get_file(fd, &good);
    buf = malloc(len + 1);
    assert_non_null(buf);

    /* Bad magic, even with a header checksum that matches it. */
    memcpy(buf, good, len);
    memcpy(buf, "VMMDSNAQ", 8);
    fix_header_crc(buf);
    assert_file_refused(fd, buf, len, -EINVAL, "not a vmmd snapshot (bad magic)");
    memcpy(buf, good, len);
    memset(buf, 0, 8);
    assert_file_refused(fd, buf, len, -EINVAL, "bad magic");

    /* Another format version: -EPROTO naming both versions. */
    memcpy(buf, good, len);
    le32(buf + 8, HV_SNAPSHOT_FORMAT_VERSION + 1);
    fix_header_crc(buf);
    snprintf(want, sizeof(want), "format version %u, this vmmd reads version %u",
             HV_SNAPSHOT_FORMAT_VERSION + 1, HV_SNAPSHOT_FORMAT_VERSION);
    assert_file_refused(fd, buf, len, -EPROTO, want);
    le32(buf + 8, 0);
    fix_header_crc(buf);
    assert_file_refused(fd, buf, len, -EPROTO, "format version 0");

    /* The header's size field. */
    for (uint32_t hs = 0; hs < 70; hs += 7) {
        if (hs == HV_SNAP_HEADER_SIZE)
            continue;
        memcpy(buf, good, len);
        le32(buf + 12, hs);
        fix_header_crc(buf);
        assert_file_refused(fd, buf, len, -EINVAL, "bad header");
    }

    /* A payload length over HV_SNAPSHOT_STATE_MAX, in the low and in the high word. */
    memcpy(buf, good, len);
    le32(buf + 16, HV_SNAPSHOT_STATE_MAX + 1);
    fix_header_crc(buf);
    snprintf(want, sizeof(want), "bad header (payload of %u bytes)", HV_SNAPSHOT_STATE_MAX + 1);
    assert_file_refused(fd, buf, len, -EINVAL, want);
    memcpy(buf, good, len);
    le32(buf + 20, 1);
    fix_header_crc(buf);
    assert_file_refused(fd, buf, len, -EINVAL, "bad header (payload of 4294967360 bytes)");
    /* Exactly the limit passes the header check (and then finds the file shorter). */
    memcpy(buf, good, len);
    le32(buf + 16, HV_SNAPSHOT_STATE_MAX);
    fix_header_crc(buf);
    assert_file_refused(fd, buf, len, -EINVAL, "its header says");

    /* A payload length shorter than the file, header checksum right: longer than it says. */
    memcpy(buf, good, len);
    le32(buf + 16, 63);
    fix_header_crc(buf);
    assert_file_refused(fd, buf, len, -EINVAL, "the file is 96 bytes, its header says 95");
    /* A byte appended. */
    memcpy(buf, good, len);
    buf[len] = 0;
    assert_file_refused(fd, buf, len + 1, -EINVAL, "the file is 97 bytes, its header says 96");

    /* The payload checksum field itself. */
    memcpy(buf, good, len);
    le32(buf + 24, get_le32(good + 24) + 1);
    fix_header_crc(buf);
    assert_file_refused(fd, buf, len, -EINVAL, "payload checksum mismatch");

    free(buf);
    free(good);
    snap_w_free(&w);
    close(fd);
}

static void test_file_not_regular(void **state)
{
    int p[2];
    uint8_t *payload;
    size_t len;
    char err[256] = "";

    (void)state;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "VMMDSNAP", 8), 8);
    assert_int_equal(hv__snap_file_read(p[0], &payload, &len, err, sizeof(err)), -EINVAL);
    assert_null(payload);
    assert_string_equal(err, "snapshot state: not a regular file");
    close(p[0]);
    close(p[1]);

    /* A closed descriptor: the errno, in words. */
    assert_int_equal(hv__snap_file_read(p[0], &payload, &len, err, sizeof(err)), -EBADF);
    assert_contains(err, "snapshot state: ");
}

/* ---- hv_snapshot_inspect ---------------------------------------------------------------- */

struct meta_fields {
    uint32_t mode, vcpus;
    uint64_t memory_bytes;
    uint8_t firmware;
    uint32_t nr_disks;
    uint64_t disk_bytes[HV_MAX_DISKS + 1];
    bool disk_readonly[HV_MAX_DISKS + 1];
    uint32_t nr_nics;
    uint64_t realtime;
};

static const struct meta_fields good_meta = {
    .mode = HV_MODE_PV,
    .vcpus = 2,
    .memory_bytes = 256ull << 20,
    .firmware = 0,
    .nr_disks = 2,
    .disk_bytes = {1ull << 30, 12345ull << 9},
    .disk_readonly = {false, true},
    .nr_nics = 1,
    .realtime = 1700000000123456789ull,
};

/* META as vm_snapshot.c's save_meta writes it (the bool as a raw byte, to write a bad one). */
static void write_meta(struct snap_w *w, const struct meta_fields *m)
{
    size_t mark = snap_w_begin(w, HV_SNAP_TAG_META, 1);
    snap_w_u32(w, m->mode);
    snap_w_u32(w, m->vcpus);
    snap_w_u64(w, m->memory_bytes);
    snap_w_u8(w, m->firmware);
    snap_w_u32(w, m->nr_disks);
    for (unsigned i = 0; i < m->nr_disks && i <= HV_MAX_DISKS; i++) {
        snap_w_u64(w, m->disk_bytes[i]);
        snap_w_bool(w, m->disk_readonly[i]);
    }
    snap_w_u32(w, m->nr_nics);
    snap_w_u64(w, m->realtime);
    snap_w_end(w, mark);
}

static void write_end(struct snap_w *w)
{
    snap_w_end(w, snap_w_begin(w, HV_SNAP_TAG_END, 1));
}

/* META, a device-like section, END. */
static void build_state(struct snap_w *w, const struct meta_fields *m)
{
    snap_w_init(w);
    write_meta(w, m);
    size_t mark = snap_w_begin(w, TAG_TEST, 1);
    snap_w_u64(w, 42);
    snap_w_end(w, mark);
    write_end(w);
    assert_int_equal(w->err, 0);
}

static int inspect(int fd, const struct snap_w *w, struct hv_snapshot_meta *meta, char *err,
                   size_t errlen)
{
    assert_int_equal(hv__snap_file_write(fd, w), 0);
    err[0] = 0;
    return hv_snapshot_inspect(fd, meta, err, errlen);
}

static void assert_meta_refused(int fd, const struct meta_fields *m, int rc, const char *want)
{
    struct snap_w w;
    struct hv_snapshot_meta meta;
    char err[256];

    build_state(&w, m);
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), rc);
    assert_contains(err, "snapshot state: ");
    assert_contains(err, want);
    snap_w_free(&w);
}

static void test_inspect_good(void **state)
{
    struct snap_w w;
    struct hv_snapshot_meta meta;
    char err[256];
    int fd = memfd();

    (void)state;
    build_state(&w, &good_meta);
    memset(&meta, 0xaa, sizeof(meta));
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), 0);
    assert_int_equal(meta.mode, HV_MODE_PV);
    assert_int_equal(meta.vcpus, 2);
    assert_int_equal(meta.memory_mib, 256);
    assert_false(meta.firmware);
    assert_int_equal(meta.nr_disks, 2);
    assert_true(meta.disk_bytes[0] == 1ull << 30);
    assert_true(meta.disk_bytes[1] == 12345ull << 9);
    assert_false(meta.disk_readonly[0]);
    assert_true(meta.disk_readonly[1]);
    assert_true(meta.disk_bytes[2] == 0); /* the rest cleared */
    assert_int_equal(meta.nr_nics, 1);
    assert_true(meta.saved_realtime_ns == 1700000000123456789ull);
    snap_w_free(&w);

    /* The bounds themselves: 1 and 64 vCPUs, the smallest and largest memory, 16 disks. */
    struct meta_fields m = good_meta;
    m.mode = HV_MODE_FULL;
    m.vcpus = HV_MAX_VCPUS;
    m.memory_bytes = (uint64_t)HV_MAX_MEMORY_MIB << 20;
    m.firmware = 1;
    m.nr_disks = HV_MAX_DISKS;
    m.nr_nics = HV_MAX_NICS;
    build_state(&w, &m);
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), 0);
    assert_int_equal(meta.mode, HV_MODE_FULL);
    assert_int_equal(meta.vcpus, HV_MAX_VCPUS);
    assert_int_equal(meta.memory_mib, HV_MAX_MEMORY_MIB);
    assert_true(meta.firmware);
    assert_int_equal(meta.nr_disks, HV_MAX_DISKS);
    assert_int_equal(meta.nr_nics, HV_MAX_NICS);
    snap_w_free(&w);
    m.vcpus = 1;
    m.memory_bytes = (uint64_t)HV_MIN_MEMORY_MIB << 20;
    m.nr_disks = 0;
    m.nr_nics = 0;
    build_state(&w, &m);
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), 0);
    assert_int_equal(meta.vcpus, 1);
    assert_int_equal(meta.memory_mib, HV_MIN_MEMORY_MIB);
    snap_w_free(&w);

    /* META then END directly. */
    snap_w_init(&w);
    write_meta(&w, &good_meta);
    write_end(&w);
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), 0);
    snap_w_free(&w);
    close(fd);
}

static void test_inspect_bad_meta(void **state)
{
    struct meta_fields m;
    char want[128];
    int fd = memfd();

    (void)state;
    m = good_meta;
    m.vcpus = 0;
    assert_meta_refused(fd, &m, -EINVAL, "0 vCPUs");
    m.vcpus = HV_MAX_VCPUS + 1;
    assert_meta_refused(fd, &m, -EINVAL, "65 vCPUs");

    m = good_meta;
    m.memory_bytes = (256ull << 20) + 4096;
    snprintf(want, sizeof(want), "a memory size of %llu bytes", (256ull << 20) + 4096);
    assert_meta_refused(fd, &m, -EINVAL, want);
    m.memory_bytes = (uint64_t)(HV_MIN_MEMORY_MIB - 1) << 20;
    assert_meta_refused(fd, &m, -EINVAL, "a memory size of");
    m.memory_bytes = (uint64_t)(HV_MAX_MEMORY_MIB + 1) << 20;
    assert_meta_refused(fd, &m, -EINVAL, "a memory size of");
    m.memory_bytes = 0;
    assert_meta_refused(fd, &m, -EINVAL, "a memory size of 0 bytes");

    m = good_meta;
    m.nr_disks = HV_MAX_DISKS + 1;
    assert_meta_refused(fd, &m, -EINVAL, "disk count is 17, must be below 17");
    m = good_meta;
    m.nr_nics = HV_MAX_NICS + 1;
    assert_meta_refused(fd, &m, -EINVAL, "NIC count is 9, must be below 9");
    m = good_meta;
    m.mode = 2;
    assert_meta_refused(fd, &m, -EINVAL, "mode is 2, must be below 2");
    m = good_meta;
    m.firmware = 2;
    assert_meta_refused(fd, &m, -EINVAL, "a boolean of 2");
    close(fd);
}

/* The META section itself: version, tag, length, a field too many or too few. */
static void test_inspect_bad_meta_section(void **state)
{
    struct snap_w w;
    struct hv_snapshot_meta meta;
    char err[256];
    int fd = memfd();

    (void)state;
    build_state(&w, &good_meta);
    w.buf[8] = 2; /* META version 2 */
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), -EPROTO);
    assert_contains(err, "machine description: state version 2, this build reads up to 1");
    w.buf[8] = 1;
    w.buf[0] = 'X';
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), -EINVAL);
    assert_contains(err, "expected the machine description section, found 'XETA'");
    snap_w_free(&w);

    /* A field more than version 1 has: left unread. */
    snap_w_init(&w);
    size_t mark = snap_w_begin(&w, HV_SNAP_TAG_META, 1);
    snap_w_u32(&w, HV_MODE_PV);
    snap_w_u32(&w, 1);
    snap_w_u64(&w, 64ull << 20);
    snap_w_bool(&w, false);
    snap_w_u32(&w, 0);
    snap_w_u32(&w, 0);
    snap_w_u64(&w, 0);
    snap_w_u32(&w, 0xdead);
    snap_w_end(&w, mark);
    write_end(&w);
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), -EINVAL);
    assert_contains(err, "4 bytes left unread");
    snap_w_free(&w);

    /* A field fewer (no realtime). */
    snap_w_init(&w);
    mark = snap_w_begin(&w, HV_SNAP_TAG_META, 1);
    snap_w_u32(&w, HV_MODE_PV);
    snap_w_u32(&w, 1);
    snap_w_u64(&w, 64ull << 20);
    snap_w_bool(&w, false);
    snap_w_u32(&w, 0);
    snap_w_u32(&w, 0);
    snap_w_end(&w, mark);
    write_end(&w);
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), -EINVAL);
    assert_contains(err, "truncated at byte");
    snap_w_free(&w);

    /* An empty payload: no META at all. */
    snap_w_init(&w);
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), -EINVAL);
    assert_contains(err, "truncated");
    close(fd);
}

/* The sections after META: framing up to END and nothing after it. */
static void test_inspect_framing(void **state)
{
    struct snap_w w;
    struct hv_snapshot_meta meta;
    char err[256];
    int fd = memfd();

    (void)state;
    /* Bytes after END. */
    for (unsigned extra = 1; extra <= 12; extra++) {
        build_state(&w, &good_meta);
        for (unsigned i = 0; i < extra; i++)
            snap_w_u8(&w, 0);
        assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), -EINVAL);
        assert_contains(err, "after its end");
        snap_w_free(&w);
    }
    /* A second END. */
    build_state(&w, &good_meta);
    write_end(&w);
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), -EINVAL);
    assert_contains(err, "10 bytes after its end");
    snap_w_free(&w);

    /* No END: the payload stops after a section. */
    snap_w_init(&w);
    write_meta(&w, &good_meta);
    snap_w_end(&w, snap_w_begin(&w, TAG_TEST, 1));
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), -EINVAL);
    assert_contains(err, "truncated section");
    snap_w_free(&w);

    /* A section whose length runs past the end, by one byte and by a lot. */
    build_state(&w, &good_meta);
    size_t meta_len = 8 + get_le32(w.buf + 4);
    uint32_t test_len = get_le32(w.buf + meta_len + 4);
    le32(w.buf + meta_len + 4, test_len + 10 + 1); /* END's 10 bytes, and one more */
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), -EINVAL);
    assert_contains(err, "truncated section");
    le32(w.buf + meta_len + 4, 0xffffffffu);
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), -EINVAL);
    assert_contains(err, "truncated section");
    /* Swallowing END exactly: the walk then finds no END. */
    le32(w.buf + meta_len + 4, test_len + 10);
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), -EINVAL);
    assert_contains(err, "truncated section");
    snap_w_free(&w);

    /* Every truncation of a good payload (rewritten in a valid envelope): refused. */
    build_state(&w, &good_meta);
    size_t full = w.len;
    for (size_t n = 0; n < full; n++) {
        w.len = n;
        assert_true(inspect(fd, &w, &meta, err, sizeof(err)) < 0);
        assert_contains(err, "snapshot state: ");
    }
    w.len = full;
    assert_int_equal(inspect(fd, &w, &meta, err, sizeof(err)), 0);
    snap_w_free(&w);

    /* And the envelope's refusals reach inspect unchanged. */
    build_state(&w, &good_meta);
    assert_int_equal(hv__snap_file_write(fd, &w), 0);
    assert_int_equal(pwrite(fd, "\x01", 1, HV_SNAP_HEADER_SIZE + 20), 1);
    assert_int_equal(hv_snapshot_inspect(fd, &meta, err, sizeof(err)), -EINVAL);
    assert_contains(err, "payload checksum mismatch");
    snap_w_free(&w);
    close(fd);
}

/* A full-mode restore moves the TSC on by the time the snapshot lay: ns at the saved kHz. */
static void test_tsc_advanced(void **state)
{
    (void)state;
    assert_int_equal(hv_x86_tsc_advanced(1000, 2000000, 1500000000ull), 1000 + 3000000000ull);
    assert_int_equal(hv_x86_tsc_advanced(77, 2596128, 0), 77);
    assert_int_equal(hv_x86_tsc_advanced(5, 0, 1000000000ull), 5); /* frequency unknown */
    /* A year at 4 GHz: 1.26e17 ticks, no overflow in the product. */
    assert_int_equal(hv_x86_tsc_advanced(0, 4000000, 31536000000000000ull), 126144000000000000ull);
    assert_true(hv_x86_tsc_advanced(UINT64_MAX - 10, 3000000, 1000000ull) == UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_widths_on_the_wire),
        cmocka_unit_test(test_writer_grows),
        cmocka_unit_test(test_writer_enomem),
        cmocka_unit_test(test_nested_sections),
        cmocka_unit_test(test_section_refusals),
        cmocka_unit_test(test_end_with_unread_bytes),
        cmocka_unit_test(test_below),
        cmocka_unit_test(test_bool_refuses_2),
        cmocka_unit_test(test_gets_after_error),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_file_round_trip),
        cmocka_unit_test(test_file_tmpfile),
        cmocka_unit_test(test_file_every_flip),
        cmocka_unit_test(test_file_every_truncation),
        cmocka_unit_test(test_file_header_fields),
        cmocka_unit_test(test_file_not_regular),
        cmocka_unit_test(test_inspect_good),
        cmocka_unit_test(test_inspect_bad_meta),
        cmocka_unit_test(test_inspect_bad_meta_section),
        cmocka_unit_test(test_inspect_framing),
        cmocka_unit_test(test_tsc_advanced),
    };
    return cmocka_run_group_tests_name("snapshot_format", tests, NULL, NULL);
}
