/*
 * The part of the machine the bus harnesses share, as vm.c builds it: the
 * unit tests' fake platform with guest RAM (one exactly-sized malloc, so
 * ASan sees any access outside it), the port and memory bus, PCI bus 0
 * behind the 0xCF8/0xCFC host bridge, and the bus's memory and I/O windows.
 * Any failure aborts: it is the harness that is broken then, not the input.
 */
#ifndef VMMD_FUZZ_MACHINE_H
#define VMMD_FUZZ_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "devices/legacy/pci_host.h"
#include "devices/pci/pci_bus.h"
#include "fake_platform.h"

struct fuzz_machine {
    struct fake_platform fp;
    struct hv_bus bus;
    struct pci_bus pb;
    struct pci_host host;
};

/* msi: the platform's MSI routes, irqfds and ioeventfds (what MSI-X and virtio need). */
static inline void fuzz_machine_init(struct fuzz_machine *m, uint64_t ram_size, bool msi)
{
    fake_platform_init(&m->fp);
    if (msi)
        fake_platform_enable_pci(&m->fp);
    fake_platform_add_ram(&m->fp, ram_size);
    if (!m->fp.ram.host || hv_bus_init(&m->bus) != 0)
        abort();
    pci_bus_init(&m->pb, &m->fp.platform);
    if (pci_host_init(&m->host, &m->fp.platform, &m->pb) != 0 ||
        hv_bus_register(&m->bus, HV_BUS_PIO, PCI_HOST_BASE, PCI_HOST_LEN, &m->host.dev) != 0 ||
        pci_bus_register_windows(&m->pb, &m->bus) != 0)
        abort();
}

/* After the devices are destroyed. */
static inline void fuzz_machine_free(struct fuzz_machine *m)
{
    hv_bus_destroy(&m->bus);
    fake_platform_free_ram(&m->fp);
}

#endif
