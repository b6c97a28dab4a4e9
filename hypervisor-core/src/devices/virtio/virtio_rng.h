/* virtio-rng (virtio 1.2 section 5.4): entropy for the guest from the host's getrandom(). */
#ifndef HV_VIRTIO_RNG_H
#define HV_VIRTIO_RNG_H

#include "devices/virtio/virtio_pci.h"

struct virtio_rng;

int virtio_rng_create(struct virtio_rng **out, const struct hv_platform *platform);
struct virtio_pci *virtio_rng_transport(struct virtio_rng *rng);
void virtio_rng_destroy(struct virtio_rng *rng);

#endif
