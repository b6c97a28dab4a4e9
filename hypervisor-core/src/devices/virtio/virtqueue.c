/* Device-side split virtqueue processing, hardened against the guest. */
#include "devices/virtio/virtqueue.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 2, 3))) static int vq_fail(struct virtq *vq, const char *fmt, ...)
{
    va_list ap;

    if (!vq->broken) {
        va_start(ap, fmt);
        vsnprintf(vq->error, sizeof(vq->error), fmt, ap);
        va_end(ap);
    }
    vq->broken = true;
    return -EINVAL;
}

void virtq_reset(struct virtq *vq)
{
    memset(vq, 0, sizeof(*vq));
}

int virtq_enable(struct virtq *vq, const struct hv_guest_mem *mem)
{
    uint64_t n = vq->size;

    vq->mem = mem;
    vq->broken = false;
    vq->error[0] = '\0';
    if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
        return vq_fail(vq, "queue size %llu is not a power of two up to %d",
                       (unsigned long long)n, VIRTQ_MAX_SIZE);
    /* Alignments of virtio 1.x 2.7: 16 for descriptors, 2 for avail, 4 for used. */
    if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
        return vq_fail(vq, "misaligned ring address");
    vq->desc = hv_gpa_to_hva(mem, vq->desc_gpa, 16 * n);
    vq->avail = hv_gpa_to_hva(mem, vq->avail_gpa, 6 + 2 * n);
    vq->used = hv_gpa_to_hva(mem, vq->used_gpa, 6 + 8 * n);
    if (!vq->desc || !vq->avail || !vq->used)
        return vq_fail(vq, "ring outside guest RAM");
    vq->last_avail = 0;
    vq->used_idx = 0;
    vq->signalled_used_valid = false;
    vq->enabled = true;
    return 0;
}

static uint16_t load16(const uint16_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Appends one descriptor's buffer to elem, enforcing out-before-in. */
static int add_segment(struct virtq *vq, struct virtq_elem *elem, const struct vring_desc *d)
{
    uint64_t addr = d->addr;
    uint32_t len = d->len;
    bool writable = d->flags & VRING_DESC_F_WRITE;
    void *hva;

    if (elem->out_num + elem->in_num == VIRTQ_MAX_SEGS)
        return vq_fail(vq, "request with more than %d buffers", VIRTQ_MAX_SEGS);
    if (!writable && elem->in_num)
        return vq_fail(vq, "device-readable buffer after a writable one");
    hva = len ? hv_gpa_to_hva(vq->mem, addr, len) : vq->mem->host;
    if (!hva)
        return vq_fail(vq, "buffer %#llx+%u is not in guest RAM", (unsigned long long)addr, len);
    elem->iov[elem->out_num + elem->in_num] = (struct iovec){.iov_base = hva, .iov_len = len};
    if (writable) {
        elem->in_num++;
        elem->in_len += len;
    } else {
        elem->out_num++;
        elem->out_len += len;
    }
    return 0;
}

static int walk_indirect(struct virtq *vq, struct virtq_elem *elem, const struct vring_desc *d)
{
    const struct vring_desc *table;
    unsigned count, i = 0, seen = 0;

    if (!vq->indirect)
        return vq_fail(vq, "indirect descriptor without the feature");
    if (d->flags & VRING_DESC_F_NEXT)
        return vq_fail(vq, "indirect descriptor with a next flag");
    if (d->len == 0 || d->len % sizeof(*table) || d->len / sizeof(*table) > VIRTQ_MAX_SEGS)
        return vq_fail(vq, "indirect table of %u bytes", d->len);
    count = d->len / sizeof(*table);
    table = hv_gpa_to_hva(vq->mem, d->addr, d->len);
    if (!table)
        return vq_fail(vq, "indirect table outside guest RAM");
    for (;;) {
        struct vring_desc e = table[i]; /* one read: the guest may change it meanwhile */
        if (++seen > count)
            return vq_fail(vq, "indirect chain loops");
        if (e.flags & VRING_DESC_F_INDIRECT)
            return vq_fail(vq, "nested indirect table");
        if (add_segment(vq, elem, &e))
            return -EINVAL;
        if (!(e.flags & VRING_DESC_F_NEXT))
            return 0;
        if (e.next >= count)
            return vq_fail(vq, "indirect next index %u past table of %u", e.next, count);
        i = e.next;
    }
}

int virtq_pop(struct virtq *vq, struct virtq_elem *elem)
{
    uint16_t avail_idx, head, i;
    unsigned seen = 0;

    if (!vq->enabled || vq->broken)
        return vq->broken ? -EINVAL : 0;
    avail_idx = load16(&vq->avail->idx);
    if ((uint16_t)(avail_idx - vq->last_avail) > vq->size)
        return vq_fail(vq, "avail index jumped from %u to %u", vq->last_avail, avail_idx);
    if (avail_idx == vq->last_avail)
        return 0;
    head = load16(&vq->avail->ring[vq->last_avail % vq->size]);
    if (head >= vq->size)
        return vq_fail(vq, "head index %u past queue size %u", head, vq->size);

    elem->head = head;
    elem->out_num = elem->in_num = 0;
    elem->out_len = elem->in_len = 0;
    for (i = head;;) {
        struct vring_desc d = vq->desc[i];
        if (++seen > vq->size)
            return vq_fail(vq, "descriptor chain loops");
        if (d.flags & VRING_DESC_F_INDIRECT) {
            if (seen != 1)
                return vq_fail(vq, "indirect descriptor inside a chain");
            if (walk_indirect(vq, elem, &d))
                return -EINVAL;
            break;
        }
        if (add_segment(vq, elem, &d))
            return -EINVAL;
        if (!(d.flags & VRING_DESC_F_NEXT))
            break;
        if (d.next >= vq->size)
            return vq_fail(vq, "next index %u past queue size %u", d.next, vq->size);
        i = d.next;
    }
    vq->last_avail++;
    return 1;
}

void virtq_unpop(struct virtq *vq)
{
    vq->last_avail--;
}

void virtq_push(struct virtq *vq, const struct virtq_elem *elem, uint32_t written)
{
    struct vring_used_elem *u;

    if (!vq->enabled || vq->broken)
        return;
    u = &vq->used->ring[vq->used_idx % vq->size];
    u->id = elem->head;
    u->len = written;
    vq->used_idx++;
    __atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
    /* The ring was mapped once, at enable: a migration learns of this write only here. */
    hv_guest_mem_mark(vq->mem, vq->used, sizeof(*vq->used) + (vq->size + 1u) * sizeof(u[0]));
}

bool virtq_should_notify(struct virtq *vq)
{
    uint16_t old, event;
    bool valid;

    if (!vq->enabled)
        return false;
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* our used->idx store before the driver's flags */
    if (!vq->event_idx)
        return !(load16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
    old = vq->signalled_used;
    valid = vq->signalled_used_valid;
    vq->signalled_used = vq->used_idx;
    vq->signalled_used_valid = true;
    event = load16(&vq->avail->ring[vq->size]); /* used_event */
    return !valid || vring_need_event(event, vq->used_idx, old);
}

void virtq_set_avail_event(struct virtq *vq)
{
    if (!vq->enabled || !vq->event_idx)
        return;
    /* avail_event lives just past the used ring */
    __atomic_store_n((uint16_t *)&vq->used->ring[vq->size], vq->last_avail, __ATOMIC_RELEASE);
    hv_guest_mem_mark(vq->mem, &vq->used->ring[vq->size], sizeof(uint16_t));
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

uint64_t virtq_copy_from_out(const struct virtq_elem *elem, uint64_t skip, void *dst, uint64_t len)
{
    uint64_t done = 0;

    for (unsigned i = 0; i < elem->out_num && done < len; i++) {
        const struct iovec *v = &elem->iov[i];
        if (skip >= v->iov_len) {
            skip -= v->iov_len;
            continue;
        }
        uint64_t n = v->iov_len - skip < len - done ? v->iov_len - skip : len - done;
        memcpy((char *)dst + done, (char *)v->iov_base + skip, n);
        done += n;
        skip = 0;
    }
    return done;
}

uint64_t virtq_copy_to_in(const struct virtq_elem *elem, uint64_t skip, const void *src,
                          uint64_t len)
{
    uint64_t done = 0;

    for (unsigned i = elem->out_num; i < elem->out_num + elem->in_num && done < len; i++) {
        const struct iovec *v = &elem->iov[i];
        if (skip >= v->iov_len) {
            skip -= v->iov_len;
            continue;
        }
        uint64_t n = v->iov_len - skip < len - done ? v->iov_len - skip : len - done;
        memcpy((char *)v->iov_base + skip, (const char *)src + done, n);
        done += n;
        skip = 0;
    }
    return done;
}

#define VQ_TAG SNAP_TAG('V', 'Q', ' ', ' ')

void virtq_save(const struct virtq *vq, struct snap_w *w)
{
    size_t mark = snap_w_begin(w, VQ_TAG, 1), elen = strnlen(vq->error, sizeof(vq->error) - 1);

    snap_w_u16(w, vq->size);
    snap_w_u64(w, vq->desc_gpa);
    snap_w_u64(w, vq->avail_gpa);
    snap_w_u64(w, vq->used_gpa);
    snap_w_bool(w, vq->event_idx);
    snap_w_bool(w, vq->indirect);
    snap_w_bool(w, vq->enabled);
    snap_w_bool(w, vq->broken);
    snap_w_u16(w, vq->last_avail);
    snap_w_u16(w, vq->used_idx);
    snap_w_u16(w, vq->signalled_used);
    snap_w_bool(w, vq->signalled_used_valid);
    snap_w_u8(w, (uint8_t)elen);
    snap_w_bytes(w, vq->error, elen);
    snap_w_end(w, mark);
}

int virtq_load(struct virtq *vq, struct snap_r *r, const struct hv_guest_mem *mem)
{
    struct virtq t;
    struct snap_r sub;
    uint16_t version, last_avail, used_idx, signalled_used;
    bool enabled, broken, signalled_valid;
    uint8_t elen;
    char error[sizeof(t.error)];

    if (snap_r_section(r, VQ_TAG, "virtqueue", 1, &sub, &version))
        return r->err;
    memset(&t, 0, sizeof(t));
    t.size = snap_r_u16(&sub);
    t.desc_gpa = snap_r_u64(&sub);
    t.avail_gpa = snap_r_u64(&sub);
    t.used_gpa = snap_r_u64(&sub);
    t.event_idx = snap_r_bool(&sub);
    t.indirect = snap_r_bool(&sub);
    enabled = snap_r_bool(&sub);
    broken = snap_r_bool(&sub);
    last_avail = snap_r_u16(&sub);
    used_idx = snap_r_u16(&sub);
    signalled_used = snap_r_u16(&sub);
    signalled_valid = snap_r_bool(&sub);
    elen = snap_r_u8(&sub);
    if (snap_r_ok(&sub) && elen >= sizeof(error))
        snap_r_fail(&sub, -EINVAL, "virtqueue: error text of %u bytes", elen);
    snap_r_bytes(&sub, error, snap_r_ok(&sub) ? elen : 0);
    error[snap_r_ok(&sub) ? elen : 0] = '\0';
    /* An enabled queue was mapped when it was saved: it must map the same way now. */
    if (snap_r_ok(&sub) && enabled && (!mem || virtq_enable(&t, mem) < 0))
        snap_r_fail(&sub, -EINVAL, "virtqueue: %s", mem ? t.error : "no guest memory");
    if (snap_r_end(r, &sub))
        return r->err;
    t.mem = enabled ? mem : NULL;
    t.enabled = enabled;
    t.broken = broken;
    t.last_avail = last_avail;
    t.used_idx = used_idx;
    t.signalled_used = signalled_used;
    t.signalled_used_valid = signalled_valid;
    memcpy(t.error, error, sizeof(error));
    *vq = t;
    return 0;
}
