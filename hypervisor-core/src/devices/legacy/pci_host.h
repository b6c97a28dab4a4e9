/* PCI host bridge: configuration mechanism #1 at 0xCF8/0xCFC and the reset control register 0xCF9. */
#ifndef HV_PCI_HOST_H
#define HV_PCI_HOST_H

#include <stdint.h>

#include "bus.h"

#define PCI_HOST_BASE 0xcf8
#define PCI_HOST_LEN  8

struct pci_host {
    struct hv_device dev;
    uint32_t address;
    uint8_t bridge_config[256]; /* 00:00.0 */
};

void pci_host_init(struct pci_host *host, const struct hv_platform *platform);

#endif
