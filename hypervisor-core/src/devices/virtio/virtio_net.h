/* virtio-net (virtio 1.2 section 5.1) over a host tap device: one RX and one TX queue. */
#ifndef HV_VIRTIO_NET_H
#define HV_VIRTIO_NET_H

#include "hv/hv.h"
#include "devices/rate_limiter.h"
#include "devices/virtio/virtio_pci.h"

#include <linux/virtio_net.h>

struct virtio_net;

/* Opens (or creates) the tap named in cfg; one line in err on failure. */
int virtio_net_create(struct virtio_net **out, const struct hv_platform *platform,
                      const struct hv_nic_config *cfg, char *err, size_t errlen);
/*
 * Over an fd the caller opened that behaves like such a tap: one packet per
 * read and write, each with the 12-byte header, non-blocking (the fuzz
 * harness uses a datagram socketpair). Takes fd, also on failure.
 */
int virtio_net_create_fd(struct virtio_net **out, const struct hv_platform *platform, int fd,
                         const uint8_t mac[6]);
struct virtio_pci *virtio_net_transport(struct virtio_net *net);
/* Before the device starts: the limiters of each direction (the caller keeps them). */
void virtio_net_set_limits(struct virtio_net *net, struct rate_limiter *tx,
                           struct rate_limiter *rx);
/* Any thread, after the limiters' limits changed: throttled directions look again now. */
void virtio_net_limits_changed(struct virtio_net *net);
void virtio_net_get_stats(const struct virtio_net *net, struct hv_nic_stats *out);
void virtio_net_destroy(struct virtio_net *net);

/* The datapath's checks, apart for the unit tests. features: the negotiated ones. */
/* TUN_F_* offloads the tap may use towards a guest with these features. */
unsigned virtio_net__tap_offloads(uint64_t features);
/* A guest's header for a frame_len-byte frame: true if the tap may have it (fixed up). */
bool virtio_net__tx_header_ok(struct virtio_net_hdr_v1 *h, uint64_t frame_len, uint64_t features);
/* A tap's header for the guest: true if the guest negotiated what it uses (fixed up). */
bool virtio_net__rx_header_ok(struct virtio_net_hdr_v1 *h, uint64_t features);

#endif
