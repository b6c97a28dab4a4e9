/*
 * PCI host bridge: configuration mechanism #1 at 0xCF8/0xCFC, the bridge
 * function itself at 00:00.0 (i440FX identity), and the reset control
 * register 0xCF9 that shares the range.
 */
#ifndef HV_PCI_HOST_H
#define HV_PCI_HOST_H

#include <stdint.h>

#include "bus.h"
#include "devices/pci/pci_bus.h"
#include "snapshot/snap_buf.h"

#define PCI_HOST_BASE 0xcf8
#define PCI_HOST_LEN  8

struct pci_host {
    struct hv_device dev;
    uint32_t address;
    struct pci_bus *bus;
    struct pci_device bridge; /* 00:00.0 */
};

/* Adds the bridge to bus at 00:00.0. */
int pci_host_init(struct pci_host *host, const struct hv_platform *platform, struct pci_bus *bus);
/* Snapshot (section 'PCIH'): the configuration address register only. The functions on the
 * bus, the bridge at 00:00.0 included, save their own configuration (pci_device_save). */
void pci_host_save(const struct pci_host *host, struct snap_w *w);
int pci_host_load(struct pci_host *host, struct snap_r *r);

#endif
