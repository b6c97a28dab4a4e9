/*
 * What every device's snapshot test checks, given its save and load behind
 * void-pointer wrappers: a load that must be refused (truncated, wrong tag,
 * too-new version, a field patched out of range) fails with a message and
 * leaves the device saving exactly the bytes it saved before.
 * Include after cmocka.h.
 */
#ifndef TEST_SNAP_TEST_H
#define TEST_SNAP_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/snap_buf.h"

typedef void (*snap_save_fn)(const void *dev, struct snap_w *w);
typedef int (*snap_load_fn)(void *dev, struct snap_r *r);

#define SNAP_HDR 10 /* tag, length, version: a section's payload starts here */

static inline void snap_test_save(const void *dev, snap_save_fn save, struct snap_w *w)
{
    snap_w_init(w);
    save(dev, w);
    assert_int_equal(w->err, 0);
    assert_true(w->len >= SNAP_HDR);
}

/* Loads buf into dev; returns the error, and the message in what (if not NULL). */
static inline int snap_test_load(void *dev, snap_load_fn load, const uint8_t *buf, size_t len,
                                 char *what, size_t what_len)
{
    struct snap_r r;
    int rc;

    snap_r_init(&r, buf, len);
    rc = load(dev, &r);
    assert_int_equal(rc, r.err);
    if (what)
        snprintf(what, what_len, "%s", r.what);
    return rc;
}

/* A load of buf must fail with a message (containing want, if not NULL); dev unchanged. */
static inline void snap_assert_refused(void *dev, snap_save_fn save, snap_load_fn load,
                                       const uint8_t *buf, size_t len, const char *want)
{
    struct snap_w before, after;
    char what[160];

    snap_test_save(dev, save, &before);
    assert_true(snap_test_load(dev, load, buf, len, what, sizeof(what)) < 0);
    assert_true(what[0] != 0);
    if (want && !strstr(what, want))
        fail_msg("refused with \"%s\", expected \"%s\"", what, want);
    snap_test_save(dev, save, &after);
    assert_int_equal(after.len, before.len);
    assert_memory_equal(after.buf, before.buf, before.len);
    snap_w_free(&before);
    snap_w_free(&after);
}

/* A copy of good with the u8/u16/u32/u64 at off replaced by v (little-endian, n bytes). */
static inline uint8_t *snap_patched(const struct snap_w *good, size_t off, uint64_t v, unsigned n)
{
    uint8_t *buf = malloc(good->len);

    assert_non_null(buf);
    assert_true(off + n <= good->len);
    memcpy(buf, good->buf, good->len);
    for (unsigned i = 0; i < n; i++)
        buf[off + i] = (uint8_t)(v >> (8 * i));
    return buf;
}

/* The field of n bytes at off set to v must be refused with a message containing want. */
static inline void snap_assert_field_refused(void *dev, snap_save_fn save, snap_load_fn load,
                                             const struct snap_w *good, size_t off, uint64_t v,
                                             unsigned n, const char *want)
{
    uint8_t *buf = snap_patched(good, off, v, n);

    snap_assert_refused(dev, save, load, buf, good->len, want);
    free(buf);
}

/*
 * Every truncation of good (a single section) refused: cut short as it is (the section
 * header promises more than there is), and with the header's length shortened to match (the
 * loader's own reads run out). Then a wrong tag and a version newer than max_version.
 */
static inline void snap_assert_corruption_refused(void *dev, snap_save_fn save, snap_load_fn load,
                                                  const struct snap_w *good, uint16_t max_version)
{
    uint8_t *buf = malloc(good->len);

    assert_non_null(buf);
    for (size_t len = 0; len < good->len; len++) {
        memcpy(buf, good->buf, len);
        snap_assert_refused(dev, save, load, buf, len, NULL);
        if (len < SNAP_HDR)
            continue;
        for (unsigned i = 0; i < 4; i++)
            buf[4 + i] = (uint8_t)((len - 8) >> (8 * i));
        snap_assert_refused(dev, save, load, buf, len, NULL);
    }
    memcpy(buf, good->buf, good->len);
    buf[0] ^= 0x20;
    snap_assert_refused(dev, save, load, buf, good->len, "expected the");
    free(buf);
    buf = snap_patched(good, 8, max_version + 1u, 2);
    snap_assert_refused(dev, save, load, buf, good->len, "this build reads up to");
    free(buf);
    /* Bytes after the payload inside the section: a layout mismatch. */
    buf = calloc(1, good->len + 1);
    assert_non_null(buf);
    memcpy(buf, good->buf, good->len);
    for (unsigned i = 0; i < 4; i++)
        buf[4 + i] = (uint8_t)((good->len + 1 - 8) >> (8 * i));
    snap_assert_refused(dev, save, load, buf, good->len + 1, NULL);
    free(buf);
}

/* Saving dev gives exactly the bytes in good. */
static inline void snap_assert_saves(const void *dev, snap_save_fn save, const struct snap_w *good)
{
    struct snap_w w;

    snap_test_save(dev, save, &w);
    assert_int_equal(w.len, good->len);
    assert_memory_equal(w.buf, good->buf, good->len);
    snap_w_free(&w);
}

#endif
