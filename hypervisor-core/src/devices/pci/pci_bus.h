/*
 * PCI bus 0: the functions on it, configuration-space routing for the host
 * bridge, and address decoding of their BARs. The bus claims two windows
 * on the machine's buses (memory below the IOAPIC in the 3-4 GiB hole,
 * I/O ports 0xC000-0xFFFF) and forwards each access to the BAR that decodes
 * it now, so a guest may move BARs freely. It also plays firmware: BARs get
 * addresses when a device is added, as a BIOS would have done.
 */
#ifndef HV_PCI_BUS_H
#define HV_PCI_BUS_H

#include "bus.h"
#include "devices/pci/pci_device.h"

#define PCI_MMIO_WINDOW_BASE 0xc0000000ull
#define PCI_MMIO_WINDOW_END  0xfec00000ull /* the IOAPIC and LAPIC sit above */
#define PCI_PIO_WINDOW_BASE  0xc000u
#define PCI_PIO_WINDOW_END   0x10000u
#define PCI_MAX_SLOTS        32
#define PCI_INTX_GSI_BASE    16 /* IOAPIC inputs 16..23 carry PCI INTx */
#define PCI_INTX_GSI_COUNT   8

/* The IOAPIC input of a slot's INTx pin (pin 0 = INTA); the ACPI _PRT says the same. */
static inline unsigned pci_intx_gsi(unsigned slot, unsigned pin)
{
    return PCI_INTX_GSI_BASE + ((slot + pin) % PCI_INTX_GSI_COUNT);
}

struct pci_bus {
    struct hv_device mmio_window, pio_window;
    struct pci_device *devices[PCI_MAX_SLOTS * 8]; /* by devfn */
    uint64_t next_mmio;
    uint32_t next_pio;
};

void pci_bus_init(struct pci_bus *pb, const struct hv_platform *platform);
/* Claims the two windows on the machine's bus. */
int pci_bus_register_windows(struct pci_bus *pb, struct hv_bus *bus);
/* Puts pdev at devfn, gives its BARs addresses and routes its INTx. -EEXIST, -ENOSPC. */
int pci_bus_add(struct pci_bus *pb, struct pci_device *pdev, unsigned devfn);
/* Configuration access to bus 0; absent functions read all ones. */
uint32_t pci_bus_config_read(struct pci_bus *pb, unsigned devfn, unsigned reg, unsigned size);
void pci_bus_config_write(struct pci_bus *pb, unsigned devfn, unsigned reg, unsigned size,
                          uint32_t value);
void pci_bus_reset(struct pci_bus *pb);

#endif
