/*
 * The building blocks of a snapshot's state: a growing little-endian writer
 * and a bounds-checked reader, with tagged, length-prefixed sections.
 *
 * Every device saves its state as one section (snap_w_begin/snap_w_end) of
 * explicit fields, never a memcpy of its struct: the layout of the file must
 * not change when a struct gains a pointer or padding. A section's payload
 * starts with its own version (snap_w_begin writes it), so a device can
 * read older layouts or refuse newer ones by name.
 *
 * The reader never reads past its end: the first short read, bad value or
 * wrong tag sets r->err and a message, and every later get returns 0, so a
 * loader can read all its fields and check snap_r_ok() once at the end
 * (with snap_r_fail() for values it finds out of range itself). A corrupt
 * file therefore ends in a clear error, never in a crash or a half-valid
 * device.
 */
#ifndef HV_SNAP_BUF_H
#define HV_SNAP_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Four ASCII characters as a section tag: SNAP_TAG('U','A','R','T'). */
#define SNAP_TAG(a, b, c, d)                                                                       \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

struct snap_w {
    uint8_t *buf;
    size_t len, cap;
    int err; /* -ENOMEM once an allocation failed; everything after is dropped */
};

void snap_w_init(struct snap_w *w);
void snap_w_free(struct snap_w *w);
void snap_w_u8(struct snap_w *w, uint8_t v);
void snap_w_u16(struct snap_w *w, uint16_t v);
void snap_w_u32(struct snap_w *w, uint32_t v);
void snap_w_u64(struct snap_w *w, uint64_t v);
void snap_w_bool(struct snap_w *w, bool v);
void snap_w_bytes(struct snap_w *w, const void *p, size_t n);
/* Opens a section: tag, version and a length filled in by snap_w_end(). Returns its mark. */
size_t snap_w_begin(struct snap_w *w, uint32_t tag, uint16_t version);
void snap_w_end(struct snap_w *w, size_t mark);

struct snap_r {
    const uint8_t *p;
    size_t len, pos;
    int err;        /* 0, or -EINVAL (malformed) / -EPROTO (unknown version) */
    char what[160]; /* the first error, in words */
};

void snap_r_init(struct snap_r *r, const void *p, size_t len);
uint8_t snap_r_u8(struct snap_r *r);
uint16_t snap_r_u16(struct snap_r *r);
uint32_t snap_r_u32(struct snap_r *r);
uint64_t snap_r_u64(struct snap_r *r);
/* Anything but 0 or 1 is an error. */
bool snap_r_bool(struct snap_r *r);
void snap_r_bytes(struct snap_r *r, void *dst, size_t n);
/* A value read that must be below limit (an index, a count): else an error naming it. */
uint32_t snap_r_below(struct snap_r *r, uint32_t limit, const char *name);
/* Records the first error (later ones keep the first message). Returns r->err. */
int snap_r_fail(struct snap_r *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline bool snap_r_ok(const struct snap_r *r)
{
    return r->err == 0;
}
/*
 * Enters the next section, which must carry tag (name is for the message) and a
 * version <= max_version: sub reads just its payload, *version says which layout.
 * The parent moves past it. On error, sub is empty and both readers carry the error.
 */
int snap_r_section(struct snap_r *r, uint32_t tag, const char *name, uint16_t max_version,
                   struct snap_r *sub, uint16_t *version);
/* At a section's end: an error if a loader left bytes unread (a layout mismatch),
 * and the sub-reader's error is copied to the parent. Returns the parent's err. */
int snap_r_end(struct snap_r *r, struct snap_r *sub);

#endif
