/*
 * virtio-blk: one request queue served on the transport's I/O thread.
 * A request is a 16-byte header (type, sector) in device-readable memory,
 * data, and a status byte at the very end of the device-writable part. Data
 * moves between the image and guest RAM with one preadv/pwritev straight
 * into the request's buffers, no bounce copy.
 *
 * I/O limits: a request the disk's rate limiter does not grant yet goes
 * back on the ring (unpop), the queue is left alone and a timerfd watched by
 * the same I/O thread resumes it when the tokens are there. Nothing sleeps,
 * so stop, pause and reset are never held up by a throttled guest.
 */
#include "devices/virtio/virtio_blk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#define REQUEST_QUEUE 0
#define HEADER_LEN 16

struct virtio_blk {
    struct virtio_pci vp;
    struct block_image *image;
    struct virtq_elem elem; /* the request being served (one at a time, on the I/O thread) */
    struct rate_limiter *limits;
    int timer_fd;   /* expires when a throttled request may go */
    bool throttled; /* I/O thread only: waiting for timer_fd */
};

static void blk_config_read(struct virtio_pci *vp, unsigned offset, void *data, unsigned size)
{
    struct virtio_blk *blk = vp->dev;
    struct virtio_blk_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.capacity = blk->image->size / BLOCK_SECTOR_SIZE;
    cfg.seg_max = VIRTQ_MAX_SEGS - 2; /* header and status take one each */
    cfg.size_max = 1u << 20;
    cfg.blk_size = BLOCK_SECTOR_SIZE;
    cfg.num_queues = 1;
    if (offset + size <= sizeof(cfg))
        memcpy(data, (uint8_t *)&cfg + offset, size);
}

/* The data segments: everything after the header in the readable part, or
 * everything before the status byte in the writable part. */
static int data_segments(struct virtq_elem *e, bool in, struct iovec *iov, uint64_t *len)
{
    int n = 0;
    uint64_t skip = in ? 0 : HEADER_LEN;

    *len = 0;
    if (in) {
        for (unsigned i = e->out_num; i < e->out_num + e->in_num; i++)
            iov[n++] = e->iov[i];
        /* The status byte is the last writable byte. */
        while (n > 0 && iov[n - 1].iov_len == 0)
            n--;
        if (n == 0)
            return -EINVAL;
        iov[n - 1].iov_len--;
    } else {
        for (unsigned i = 0; i < e->out_num; i++) {
            struct iovec v = e->iov[i];
            if (skip >= v.iov_len) {
                skip -= v.iov_len;
                continue;
            }
            v.iov_base = (char *)v.iov_base + skip;
            v.iov_len -= skip;
            skip = 0;
            iov[n++] = v;
        }
    }
    for (int i = 0; i < n; i++)
        *len += iov[i].iov_len;
    return n;
}

static uint8_t serve(struct virtio_blk *blk, struct virtq_elem *e, uint32_t *written)
{
    struct virtio_blk_outhdr hdr;
    struct iovec iov[VIRTQ_MAX_SEGS];
    uint64_t len, sectors = blk->image->size / BLOCK_SECTOR_SIZE;
    int n, rc;

    *written = 0;
    if (virtq_copy_from_out(e, 0, &hdr, sizeof(hdr)) != sizeof(hdr))
        return VIRTIO_BLK_S_IOERR;
    switch (hdr.type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
        bool in = hdr.type == VIRTIO_BLK_T_IN;
        n = data_segments(e, in, iov, &len);
        if (n < 0 || len % BLOCK_SECTOR_SIZE || hdr.sector > sectors ||
            len / BLOCK_SECTOR_SIZE > sectors - hdr.sector) {
            block_image_count_error(blk->image);
            return VIRTIO_BLK_S_IOERR;
        }
        rc = in ? block_image_read(blk->image, iov, n, hdr.sector * BLOCK_SECTOR_SIZE)
                : block_image_write(blk->image, iov, n, hdr.sector * BLOCK_SECTOR_SIZE);
        if (rc)
            return VIRTIO_BLK_S_IOERR;
        *written = in ? (uint32_t)len : 0;
        return VIRTIO_BLK_S_OK;
    }
    case VIRTIO_BLK_T_FLUSH:
        return block_image_flush(blk->image) ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_GET_ID: {
        char id[VIRTIO_BLK_ID_BYTES] = {0};
        uint64_t room = e->in_len - 1; /* before the status byte; in_len >= 1 here */
        memcpy(id, blk->image->serial, strnlen(blk->image->serial, sizeof(id)));
        *written = (uint32_t)virtq_copy_to_in(e, 0, id, room < sizeof(id) ? room : sizeof(id));
        return VIRTIO_BLK_S_OK;
    }
    default:
        return VIRTIO_BLK_S_UNSUPP;
    }
}

/* What a request costs against the limits: data bytes for reads and writes, one op for all. */
static uint64_t request_bytes(const struct virtq_elem *e)
{
    struct virtio_blk_outhdr hdr;

    if (virtq_copy_from_out(e, 0, &hdr, sizeof(hdr)) != sizeof(hdr))
        return 0;
    if (hdr.type == VIRTIO_BLK_T_IN)
        return e->in_len ? e->in_len - 1 : 0;
    if (hdr.type == VIRTIO_BLK_T_OUT)
        return e->out_len > HEADER_LEN ? e->out_len - HEADER_LEN : 0;
    return 0;
}

/* Whether the request may go now; if not, the timer is armed for when it may. */
static bool limits_allow(struct virtio_blk *blk, const struct virtq_elem *e)
{
    uint64_t wait;

    if (!blk->limits)
        return true;
    wait = rate_limiter_consume(blk->limits, request_bytes(e), 1, rate_limiter_now_ns());
    if (wait == 0)
        return true;
    blk->throttled = rate_limiter_arm_timer(blk->timer_fd, wait) == 0;
    return false;
}

static bool blk_serve_one(struct virtio_pci *vp, unsigned q)
{
    struct virtio_blk *blk = vp->dev;
    struct virtq_elem *e = &blk->elem;
    uint32_t written = 0;
    uint8_t status;
    unsigned gen;

    if (blk->throttled || virtio_pci_pop(vp, q, e, &gen) != 1)
        return false;
    if (!limits_allow(blk, e)) {
        virtio_pci_unpop(vp, q, gen);
        return false;
    }
    /* With nowhere to put the status byte, complete it with nothing written. */
    if (e->in_len) {
        status = serve(blk, e, &written);
        virtq_copy_to_in(e, e->in_len - 1, &status, 1);
        written++;
    }
    virtio_pci_push(vp, q, e, written, gen);
    return true;
}

/* While throttled, kicks wait for the timer (serve_queue may kick once more itself). */
static void blk_queue_notify(struct virtio_pci *vp, unsigned q)
{
    struct virtio_blk *blk = vp->dev;

    if (!blk->throttled)
        virtio_pci_serve_queue(vp, q, blk_serve_one);
}

static void blk_fd_ready(struct virtio_pci *vp, int fd)
{
    struct virtio_blk *blk = vp->dev;
    uint64_t expirations;

    if (read(fd, &expirations, sizeof(expirations)) < 0) {
        /* nothing expired after all (a re-arm raced it): the timer comes again */
    }
    blk->throttled = false;
    if (virtio_pci_queue_ready(vp, REQUEST_QUEUE))
        virtio_pci_serve_queue(vp, REQUEST_QUEUE, blk_serve_one);
}

#define VBLK_TAG SNAP_TAG('V', 'B', 'L', 'K')

/* The guest's view of the disk is its capacity: a restore onto a disk of another size
 * is refused rather than shown a disk that shrank or grew under its file system. A
 * throttled request is still in the ring (unpopped), so there is nothing else. */
static void blk_save(struct virtio_pci *vp, struct snap_w *w)
{
    struct virtio_blk *blk = vp->dev;
    size_t mark = snap_w_begin(w, VBLK_TAG, 1);

    snap_w_u64(w, blk->image->size / BLOCK_SECTOR_SIZE);
    snap_w_end(w, mark);
}

static int blk_load(struct virtio_pci *vp, struct snap_r *r)
{
    struct virtio_blk *blk = vp->dev;
    uint64_t sectors, have = blk->image->size / BLOCK_SECTOR_SIZE;
    struct snap_r sub;
    uint16_t version;

    if (snap_r_section(r, VBLK_TAG, "virtio-blk", 1, &sub, &version))
        return r->err;
    sectors = snap_r_u64(&sub);
    if (snap_r_ok(&sub) && sectors != have)
        snap_r_fail(&sub, -EINVAL, "virtio-blk: a disk of %llu sectors saved, this one has %llu",
                    (unsigned long long)sectors, (unsigned long long)have);
    return snap_r_end(r, &sub);
}

static const struct virtio_device_ops blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .class_code = 0x018000, /* mass storage, other */
    .num_queues = 1,
    .queue_size = VIRTQ_MAX_SIZE,
    .config_size = sizeof(struct virtio_blk_config),
    .features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_SIZE_MAX |
                1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH,
    .config_read = blk_config_read,
    .queue_notify = blk_queue_notify,
    .fd_ready = blk_fd_ready,
    .save = blk_save,
    .load = blk_load,
};

int virtio_blk_create(struct virtio_blk **out, const struct hv_platform *platform,
                      struct block_image *image, struct rate_limiter *limits)
{
    struct virtio_blk *blk = calloc(1, sizeof(*blk));
    int rc;

    if (!blk)
        return -ENOMEM;
    blk->image = image;
    blk->limits = limits;
    blk->timer_fd = -1;
    rc = virtio_pci_init(&blk->vp, &blk_ops, blk, platform);
    if (rc == 0) {
        blk->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        rc = blk->timer_fd < 0 ? -errno : virtio_pci_watch_fd(&blk->vp, blk->timer_fd);
    }
    if (rc == 0 && image->readonly) {
        /* Same device, plus the RO feature: the offer is the transport's copy. */
        blk->vp.offered |= 1ull << VIRTIO_BLK_F_RO;
    }
    if (rc) {
        virtio_blk_destroy(blk);
        return rc;
    }
    *out = blk;
    return 0;
}

struct virtio_pci *virtio_blk_transport(struct virtio_blk *blk)
{
    return &blk->vp;
}

void virtio_blk_limits_changed(struct virtio_blk *blk)
{
    /* A wait computed under the old limits may be far too long now: look again at once. */
    rate_limiter_arm_timer(blk->timer_fd, 1);
}

void virtio_blk_destroy(struct virtio_blk *blk)
{
    if (!blk)
        return;
    virtio_pci_destroy(&blk->vp);
    if (blk->timer_fd >= 0)
        close(blk->timer_fd);
    free(blk);
}
