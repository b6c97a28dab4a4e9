/*
 * The host side of an emulated NIC: a tap device opened with IFF_VNET_HDR
 * and a 12-byte header (struct virtio_net_hdr_v1), shared by virtio-net and
 * the e1000. Every packet read or written carries that header first.
 */
#ifndef HV_NET_TAP_H
#define HV_NET_TAP_H

#include <stddef.h>
#include <stdint.h>

#include "hv/hv.h"

#define NET_TAP_HDR_LEN 12 /* sizeof(struct virtio_net_hdr_v1) */

/*
 * The NIC's tap: adopts cfg->fd (a tap hv_tap_open() set up before) or opens
 * it now, and picks the MAC (cfg's, or one derived from the tap's name).
 * Returns the caller's own non-blocking descriptor, or -errno with one line in err.
 */
int net_tap_get(const struct hv_nic_config *cfg, uint8_t mac[6], char *err, size_t errlen);

#endif
