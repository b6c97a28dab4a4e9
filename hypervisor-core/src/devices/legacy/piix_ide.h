/*
 * PIIX3 IDE controller (PCI 8086:7010) in legacy compatibility mode with up
 * to four ATA disks over raw images: primary channel at 0x1F0-0x1F7/0x3F6
 * on IRQ 14, secondary at 0x170-0x177/0x376 on IRQ 15, and the bus-master
 * DMA registers in BAR4. Linux's ata_piix drives it unmodified, with DMA.
 * Guest mistakes (bad sector ranges, unknown commands, PRD tables pointing
 * outside RAM) end the command with ATA error status, never the VMM.
 */
#ifndef HV_PIIX_IDE_H
#define HV_PIIX_IDE_H

#include "bus.h"
#include "devices/block/block_image.h"
#include "devices/rate_limiter.h"
#include "devices/pci/pci_bus.h"
#include "snapshot/snap_buf.h"

#define PIIX_IDE_DEVFN 0x08 /* 00:01.0 */

struct piix_ide; /* defined in piix_ide.c */

/* disks[i] (may be NULL) is: 0 primary master, 1 primary slave, 2 secondary master,
 * 3 secondary slave. The images stay owned by the caller and must outlive the controller.
 * Registers the legacy ports on bus and the PCI function on pb. */
int piix_ide_create(struct piix_ide **out, const struct hv_platform *platform,
                    struct block_image *const disks[4], struct rate_limiter *const limits[4],
                    struct hv_bus *bus, struct pci_bus *pb);
/* Any thread, after disk index's limiter changed: a deferred transfer looks again now. */
void piix_ide_limits_changed(struct piix_ide *ide, unsigned index);
void piix_ide_destroy(struct piix_ide *ide);
/*
 * Returns once the limits thread is parked between events: it then resumes no deferred
 * transfer until unpark (their timers stay armed and fire after it). Idempotent; trivial
 * without a thread. Not with the bus lock held: the thread may be waiting for it.
 */
void piix_ide_park(struct piix_ide *ide);
void piix_ide_unpark(struct piix_ide *ide);
/*
 * Snapshot (section 'IDE ', with the PCI function's 'PCID' nested last): both channels' task
 * files and bus-master engines, each drive's status, settings and the transfer in progress
 * (a PIO block's buffer, a deferred transfer). The load needs the same disks (by presence and
 * size), re-drives IRQ 14 and 15 and lets a deferred transfer look again at once. Caller holds
 * the bus lock; the thread is parked.
 */
void piix_ide_save(const struct piix_ide *ide, struct snap_w *w);
int piix_ide_load(struct piix_ide *ide, struct snap_r *r);

#endif
