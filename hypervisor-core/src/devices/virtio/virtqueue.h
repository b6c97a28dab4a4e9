/*
 * Split virtqueues (virtio 1.x section 2.7) over guest RAM, as the device
 * side sees them. Everything in the rings is written by the guest and is
 * treated as hostile: a head or next index past the queue size, a chain
 * longer than the queue (a loop), an indirect table inside an indirect
 * table, a buffer that is not wholly in one RAM region, an avail index that
 * runs more than a queue's worth ahead: each makes virtq_pop() fail and the
 * queue broken until the driver resets the device. Nothing outside guest
 * RAM is ever read or written, and no call does more than O(queue size) work.
 *
 * Not thread-safe: the transport serialises calls on one queue.
 */
#ifndef HV_VIRTQUEUE_H
#define HV_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <linux/virtio_ring.h>

#include "guest_mem.h"
#include "snapshot/snap_buf.h"

#define VIRTQ_MAX_SIZE 256
#define VIRTQ_MAX_SEGS VIRTQ_MAX_SIZE /* per request, direct or indirect */

struct virtq {
    /* Programmed by the driver through the transport. */
    uint16_t size;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    /* Negotiated features that change ring handling. */
    bool event_idx, indirect;

    /* Valid once enabled. */
    bool enabled, broken;
    const struct hv_guest_mem *mem;
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint16_t last_avail; /* next avail entry to take */
    uint16_t used_idx;   /* our copy: the guest may scribble over used->idx */
    uint16_t signalled_used;
    bool signalled_used_valid;
    char error[96]; /* why the queue broke */
};

/* One request: out (device-readable) segments first, then in (device-writable) ones. */
struct virtq_elem {
    uint16_t head;
    unsigned out_num, in_num;
    uint64_t out_len, in_len;
    struct iovec iov[VIRTQ_MAX_SEGS];
};

/* Forgets everything but the programmed addresses' defaults (device reset). */
void virtq_reset(struct virtq *vq);
/* Checks size and ring placement and maps the rings; -EINVAL (and broken) if they are bad. */
int virtq_enable(struct virtq *vq, const struct hv_guest_mem *mem);
/* 1: elem holds the next request; 0: nothing available; -EINVAL: malformed, queue now broken. */
int virtq_pop(struct virtq *vq, struct virtq_elem *elem);
/* Gives back the request virtq_pop() just returned, untouched (no buffer was used). */
void virtq_unpop(struct virtq *vq);
/* Returns a request with written bytes put into its in segments. */
void virtq_push(struct virtq *vq, const struct virtq_elem *elem, uint32_t written);
/* After pushes: whether the driver asked to be interrupted (NO_INTERRUPT / used_event). */
bool virtq_should_notify(struct virtq *vq);
/* With EVENT_IDX: tells the driver which avail index should kick us next (call before
 * re-checking for work, so a request added meanwhile is not missed). */
void virtq_set_avail_event(struct virtq *vq);
/*
 * Snapshot (section 'VQ  ', version 1): the programmed layout and features, enabled
 * and broken (with why), and the ring positions (last_avail, used_idx, the last
 * used index signalled). Load checks everything as virtq_enable does and maps an
 * enabled queue's rings against mem again (its positions are kept, not reset);
 * a ring that is not in mem is refused. A disabled queue's size is just what the
 * driver last wrote and is taken as it is (enabling checks it). On error vq is
 * unchanged.
 */
void virtq_save(const struct virtq *vq, struct snap_w *w);
int virtq_load(struct virtq *vq, struct snap_r *r, const struct hv_guest_mem *mem);
/* Copies up to len bytes from/into an element's segments; returns bytes copied. */
uint64_t virtq_copy_from_out(const struct virtq_elem *elem, uint64_t skip, void *dst, uint64_t len);
uint64_t virtq_copy_to_in(const struct virtq_elem *elem, uint64_t skip, const void *src,
                          uint64_t len);

#endif
