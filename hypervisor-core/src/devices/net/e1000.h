/*
 * Intel 82540EM Gigabit Ethernet controller (PCI 8086:100E, "e1000"), the
 * full mode's NIC: what unmodified guests (Linux's e1000 driver, Windows)
 * drive, over a host tap. INTx only, as on the chip (it has no MSI).
 */
#ifndef HV_E1000_H
#define HV_E1000_H

#include <stddef.h>
#include <stdint.h>

#include "hv/hv.h"
#include "bus.h"
#include "devices/pci/pci_device.h"
#include "devices/rate_limiter.h"
#include "snapshot/snap_buf.h"

#define E1000_VENDOR_ID 0x8086
#define E1000_DEVICE_ID 0x100e
#define E1000_MMIO_BAR  0
#define E1000_MMIO_SIZE 0x20000 /* 128 KiB of registers */
#define E1000_IO_BAR    1
#define E1000_IO_SIZE   8 /* IOADDR, IODATA */

struct e1000;

/* Opens (or adopts) the tap of cfg; one line in err on failure. */
int e1000_create(struct e1000 **out, const struct hv_platform *platform,
                 const struct hv_nic_config *cfg, char *err, size_t errlen);
/*
 * Over an fd the caller opened that behaves like such a tap: one frame per
 * read and write, each after a 12-byte virtio-net header, non-blocking (the
 * tests use a datagram socketpair). Takes fd, also on failure.
 */
int e1000_create_fd(struct e1000 **out, const struct hv_platform *platform, int fd,
                    const uint8_t mac[6]);
struct pci_device *e1000_pci(struct e1000 *e);
/* After pci_bus_add: starts the I/O thread (transmit, receive, interrupts). */
int e1000_start(struct e1000 *e);
/*
 * What the I/O thread does when woken, done now on the caller's thread:
 * sends what the transmit ring holds and receives what the tap has. For
 * tests and the fuzz harness, which do not start the thread.
 */
void e1000_service(struct e1000 *e);
/* Before e1000_start: the limiters of each direction (the caller keeps them). */
void e1000_set_limits(struct e1000 *e, struct rate_limiter *tx, struct rate_limiter *rx);
/* Any thread, after the limiters' limits changed: throttled directions look again now. */
void e1000_limits_changed(struct e1000 *e);
void e1000_get_stats(const struct e1000 *e, struct hv_nic_stats *out);
void e1000_destroy(struct e1000 *e);

/*
 * Snapshot (section 'E1K ', version 1, with the PCI function's 'PCID' inside):
 * the register file (ring bases, heads and tails, interrupt cause and mask, the
 * receive address and multicast tables, the statistics), the EEPROM and its
 * Microwire state, the PHY registers, the offload contexts, the transmit packet
 * gathered so far and the received frame waiting for descriptors. Save with the
 * I/O thread parked and the vCPUs paused (transmit runs on them). Load into a
 * device created with the same MAC, parked or not started: INTx is driven again
 * and the I/O thread, once it runs, goes on with both rings where they were.
 * On error the device is as it was and r says why.
 */
void e1000_save(struct e1000 *e, struct snap_w *w);
int e1000_load(struct e1000 *e, struct snap_r *r);
/* Returns once the I/O thread is parked between events (receive and timers stop);
 * idempotent; before e1000_start it only records the wish (the thread starts parked). */
void e1000_park(struct e1000 *e);
void e1000_unpark(struct e1000 *e);

#endif
