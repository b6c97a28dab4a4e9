/* Snapshot state writer and reader (see snap_buf.h). Integers are little-endian. */
#include "snapshot/snap_buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void snap_w_init(struct snap_w *w)
{
    memset(w, 0, sizeof(*w));
}

void snap_w_free(struct snap_w *w)
{
    free(w->buf);
    snap_w_init(w);
}

static uint8_t *snap_w_room(struct snap_w *w, size_t n)
{
    if (w->err)
        return NULL;
    if (w->cap - w->len < n) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap - w->len < n) {
            if (cap > SIZE_MAX / 2) {
                w->err = -ENOMEM;
                return NULL;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(w->buf, cap);
        if (!p) {
            w->err = -ENOMEM;
            return NULL;
        }
        w->buf = p;
        w->cap = cap;
    }
    w->len += n;
    return w->buf + w->len - n;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void snap_w_le(struct snap_w *w, uint64_t v, unsigned n)
{
    uint8_t *p = snap_w_room(w, n);
    if (p)
        put_le(p, v, n);
}

void snap_w_u8(struct snap_w *w, uint8_t v)
{
    snap_w_le(w, v, 1);
}

void snap_w_u16(struct snap_w *w, uint16_t v)
{
    snap_w_le(w, v, 2);
}

void snap_w_u32(struct snap_w *w, uint32_t v)
{
    snap_w_le(w, v, 4);
}

void snap_w_u64(struct snap_w *w, uint64_t v)
{
    snap_w_le(w, v, 8);
}

void snap_w_bool(struct snap_w *w, bool v)
{
    snap_w_le(w, v ? 1 : 0, 1);
}

void snap_w_bytes(struct snap_w *w, const void *p, size_t n)
{
    uint8_t *dst = snap_w_room(w, n);
    if (dst && n)
        memcpy(dst, p, n);
}

/* Section header: tag (4), length of what follows it (4), version (2). */
size_t snap_w_begin(struct snap_w *w, uint32_t tag, uint16_t version)
{
    snap_w_u32(w, tag);
    size_t mark = w->len;
    snap_w_u32(w, 0);
    snap_w_u16(w, version);
    return mark;
}

void snap_w_end(struct snap_w *w, size_t mark)
{
    if (w->err || mark + 4 > w->len)
        return;
    put_le(w->buf + mark, w->len - mark - 4, 4);
}

void snap_r_init(struct snap_r *r, const void *p, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->p = p;
    r->len = len;
}

int snap_r_fail(struct snap_r *r, int err, const char *fmt, ...)
{
    if (r->err)
        return r->err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->what, sizeof(r->what), fmt, ap);
    va_end(ap);
    r->err = err;
    return err;
}

static uint64_t snap_r_le(struct snap_r *r, unsigned n)
{
    uint64_t v = 0;

    if (r->err)
        return 0;
    if (r->len - r->pos < n) {
        snap_r_fail(r, -EINVAL, "truncated at byte %zu", r->pos);
        return 0;
    }
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)r->p[r->pos + i] << (8 * i);
    r->pos += n;
    return v;
}

uint8_t snap_r_u8(struct snap_r *r)
{
    return (uint8_t)snap_r_le(r, 1);
}

uint16_t snap_r_u16(struct snap_r *r)
{
    return (uint16_t)snap_r_le(r, 2);
}

uint32_t snap_r_u32(struct snap_r *r)
{
    return (uint32_t)snap_r_le(r, 4);
}

uint64_t snap_r_u64(struct snap_r *r)
{
    return snap_r_le(r, 8);
}

bool snap_r_bool(struct snap_r *r)
{
    uint8_t v = snap_r_u8(r);
    if (v > 1)
        snap_r_fail(r, -EINVAL, "a boolean of %u at byte %zu", v, r->pos - 1);
    return v == 1;
}

void snap_r_bytes(struct snap_r *r, void *dst, size_t n)
{
    if (!r->err && r->len - r->pos < n)
        snap_r_fail(r, -EINVAL, "truncated at byte %zu", r->pos);
    if (r->err) {
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p + r->pos, n);
    r->pos += n;
}

uint32_t snap_r_below(struct snap_r *r, uint32_t limit, const char *name)
{
    uint32_t v = snap_r_u32(r);
    if (!r->err && v >= limit) {
        snap_r_fail(r, -EINVAL, "%s is %u, must be below %u", name, v, limit);
        return 0;
    }
    return v;
}

static void tag_text(uint32_t tag, char out[5])
{
    for (int i = 0; i < 4; i++) {
        char c = (char)(tag >> (8 * i));
        out[i] = c >= 0x20 && c < 0x7f ? c : '?';
    }
    out[4] = 0;
}

int snap_r_section(struct snap_r *r, uint32_t tag, const char *name, uint16_t max_version,
                   struct snap_r *sub, uint16_t *version)
{
    uint32_t got = snap_r_u32(r), len = snap_r_u32(r);
    char text[5];

    snap_r_init(sub, NULL, 0);
    *version = 0;
    if (r->err)
        return snap_r_fail(sub, r->err, "%s: %s", name, r->what);
    if (got != tag) {
        tag_text(got, text);
        snap_r_fail(r, -EINVAL, "expected the %s section, found '%s'", name, text);
    } else if (len < 2 || r->len - r->pos < len) {
        snap_r_fail(r, -EINVAL, "%s: section of %u bytes is truncated", name, len);
    }
    if (r->err)
        return snap_r_fail(sub, r->err, "%s", r->what);
    snap_r_init(sub, r->p + r->pos, len);
    r->pos += len;
    *version = snap_r_u16(sub);
    if (*version == 0) {
        snap_r_fail(sub, -EINVAL, "%s: state version 0 (corrupt)", name);
        return snap_r_fail(r, sub->err, "%s", sub->what);
    }
    if (*version > max_version) {
        snap_r_fail(sub, -EPROTO, "%s: state version %u, this build reads up to %u", name, *version,
                    max_version);
        return snap_r_fail(r, sub->err, "%s", sub->what);
    }
    return 0;
}

int snap_r_end(struct snap_r *r, struct snap_r *sub)
{
    if (!sub->err && sub->pos != sub->len)
        snap_r_fail(sub, -EINVAL, "%zu bytes left unread in a section", sub->len - sub->pos);
    if (sub->err)
        snap_r_fail(r, sub->err, "%s", sub->what);
    return r->err;
}
