/* virtio-blk (virtio 1.2 section 5.2) over a raw disk image. */
#ifndef HV_VIRTIO_BLK_H
#define HV_VIRTIO_BLK_H

#include "devices/block/block_image.h"
#include "devices/rate_limiter.h"
#include "devices/virtio/virtio_pci.h"

struct virtio_blk; /* defined in virtio_blk.c */

/* The image and the limiter stay owned by the caller. Returns the PCI function to put on the
 * bus. */
int virtio_blk_create(struct virtio_blk **out, const struct hv_platform *platform,
                      struct block_image *image, struct rate_limiter *limits);
struct virtio_pci *virtio_blk_transport(struct virtio_blk *blk);
/* Any thread, after the limiter's limits changed: a throttled queue is looked at again now. */
void virtio_blk_limits_changed(struct virtio_blk *blk);
void virtio_blk_destroy(struct virtio_blk *blk);

#endif
