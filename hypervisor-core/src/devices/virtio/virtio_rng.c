/*
 * virtio-rng: fills each buffer the guest offers with getrandom() bytes.
 * A request is capped at 64 KiB so one notification cannot make us produce
 * an unbounded amount; the guest just asks again.
 */
#include "devices/virtio/virtio_rng.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <linux/virtio_ids.h>

#define MAX_BYTES_PER_REQUEST 65536

struct virtio_rng {
    struct virtio_pci vp;
    struct virtq_elem elem;
};

static uint32_t fill(struct virtq_elem *e)
{
    uint64_t left = MAX_BYTES_PER_REQUEST, done = 0;

    for (unsigned i = e->out_num; i < e->out_num + e->in_num && left; i++) {
        size_t want = e->iov[i].iov_len < left ? e->iov[i].iov_len : left;
        ssize_t n = getrandom(e->iov[i].iov_base, want, GRND_NONBLOCK);
        if (n <= 0)
            break;
        done += (uint64_t)n;
        left -= (uint64_t)n;
        if ((size_t)n < want)
            break;
    }
    return (uint32_t)done;
}

static bool rng_serve_one(struct virtio_pci *vp, unsigned q)
{
    struct virtio_rng *rng = vp->dev;
    unsigned gen;

    if (virtio_pci_pop(vp, q, &rng->elem, &gen) != 1)
        return false;
    virtio_pci_push(vp, q, &rng->elem, fill(&rng->elem), gen);
    return true;
}

static void rng_queue_notify(struct virtio_pci *vp, unsigned q)
{
    virtio_pci_serve_queue(vp, q, rng_serve_one);
}

static void rng_config_read(struct virtio_pci *vp, unsigned offset, void *data, unsigned size)
{
    (void)vp, (void)offset, (void)data, (void)size; /* no configuration space */
}

#define VRNG_TAG SNAP_TAG('V', 'R', 'N', 'G')

/* No state of its own: the section says which kind of device the transport's state is for. */
static void rng_save(struct virtio_pci *vp, struct snap_w *w)
{
    (void)vp;
    snap_w_end(w, snap_w_begin(w, VRNG_TAG, 1));
}

static int rng_load(struct virtio_pci *vp, struct snap_r *r)
{
    struct snap_r sub;
    uint16_t version;

    (void)vp;
    if (snap_r_section(r, VRNG_TAG, "virtio-rng", 1, &sub, &version))
        return r->err;
    return snap_r_end(r, &sub);
}

static const struct virtio_device_ops rng_ops = {
    .name = "virtio-rng",
    .device_id = VIRTIO_ID_RNG,
    .class_code = 0x00ff00,
    .num_queues = 1,
    .queue_size = 64,
    .config_size = 0,
    .config_read = rng_config_read,
    .queue_notify = rng_queue_notify,
    .save = rng_save,
    .load = rng_load,
};

int virtio_rng_create(struct virtio_rng **out, const struct hv_platform *platform)
{
    struct virtio_rng *rng = calloc(1, sizeof(*rng));
    int rc;

    if (!rng)
        return -ENOMEM;
    if ((rc = virtio_pci_init(&rng->vp, &rng_ops, rng, platform))) {
        virtio_rng_destroy(rng);
        return rc;
    }
    *out = rng;
    return 0;
}

struct virtio_pci *virtio_rng_transport(struct virtio_rng *rng)
{
    return &rng->vp;
}

void virtio_rng_destroy(struct virtio_rng *rng)
{
    if (!rng)
        return;
    virtio_pci_destroy(&rng->vp);
    free(rng);
}
