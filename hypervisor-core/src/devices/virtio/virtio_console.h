/*
 * virtio-console (virtio 1.2 section 5.3), single port, no multiport: the
 * guest's hvc0. Output joins the machine's console stream (the same
 * callback the UART writes to); input is queued until the guest has posted
 * receive buffers.
 */
#ifndef HV_VIRTIO_CONSOLE_H
#define HV_VIRTIO_CONSOLE_H

#include "hv/hv.h"
#include "devices/virtio/virtio_pci.h"

struct virtio_console;

int virtio_console_create(struct virtio_console **out, const struct hv_platform *platform,
                          hv_console_write_fn write, void *opaque);
struct virtio_pci *virtio_console_transport(struct virtio_console *con);
/* Queues input for the guest (any thread); returns the bytes taken (the rest did not fit). */
size_t virtio_console_receive(struct virtio_console *con, const uint8_t *buf, size_t len);
void virtio_console_destroy(struct virtio_console *con);

#endif
