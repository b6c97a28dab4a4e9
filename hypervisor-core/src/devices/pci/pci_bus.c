/*
 * Bus 0 of the PCI hierarchy: configuration routing by devfn and BAR
 * decoding inside the two address windows the bus claims. Functions of a
 * slot other than 0 are only seen by guests when function 0 says the slot
 * is multi-function, as on real hardware; the bus does not enforce it.
 */
#include "devices/pci/pci_bus.h"

#include <errno.h>
#include <string.h>

static struct pci_device *find_bar(struct pci_bus *pb, bool io, uint64_t addr, unsigned size,
                                   unsigned *bar, uint64_t *offset)
{
    for (unsigned d = 0; d < PCI_MAX_SLOTS * 8; d++) {
        struct pci_device *pdev = pb->devices[d];
        if (!pdev)
            continue;
        for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
            const struct pci_bar *b = &pdev->bars[i];
            if (b->mapped && b->io == io && addr >= b->mapped &&
                addr - b->mapped + size <= b->size) {
                *bar = i;
                *offset = addr - b->mapped;
                return pdev;
            }
        }
    }
    return NULL;
}

static void window_access(struct pci_bus *pb, bool io, uint64_t addr, void *data, unsigned size,
                          bool is_write)
{
    uint64_t offset;
    unsigned bar;
    struct pci_device *pdev = find_bar(pb, io, addr, size, &bar, &offset);

    if (!pdev)
        return; /* reads were pre-filled with all ones by the bus */
    if (is_write && pdev->ops->bar_write)
        pdev->ops->bar_write(pdev, bar, offset, data, size);
    else if (!is_write && pdev->ops->bar_read)
        pdev->ops->bar_read(pdev, bar, offset, data, size);
}

static void mmio_read(struct hv_device *dev, uint64_t offset, void *data, unsigned size)
{
    struct pci_bus *pb = hv_container_of(dev, struct pci_bus, mmio_window);
    window_access(pb, false, PCI_MMIO_WINDOW_BASE + offset, data, size, false);
}

static void mmio_write(struct hv_device *dev, uint64_t offset, const void *data, unsigned size)
{
    struct pci_bus *pb = hv_container_of(dev, struct pci_bus, mmio_window);
    window_access(pb, false, PCI_MMIO_WINDOW_BASE + offset, (void *)data, size, true);
}

static void pio_read(struct hv_device *dev, uint64_t offset, void *data, unsigned size)
{
    struct pci_bus *pb = hv_container_of(dev, struct pci_bus, pio_window);
    window_access(pb, true, PCI_PIO_WINDOW_BASE + offset, data, size, false);
}

static void pio_write(struct hv_device *dev, uint64_t offset, const void *data, unsigned size)
{
    struct pci_bus *pb = hv_container_of(dev, struct pci_bus, pio_window);
    window_access(pb, true, PCI_PIO_WINDOW_BASE + offset, (void *)data, size, true);
}

void pci_bus_init(struct pci_bus *pb, const struct hv_platform *platform)
{
    static const struct hv_device_ops mmio_ops = {.read = mmio_read, .write = mmio_write};
    static const struct hv_device_ops pio_ops = {.read = pio_read, .write = pio_write};

    memset(pb, 0, sizeof(*pb));
    pb->mmio_window = (struct hv_device){.name = "pci-mmio", .ops = &mmio_ops, .platform = platform};
    pb->pio_window = (struct hv_device){.name = "pci-io", .ops = &pio_ops, .platform = platform};
    pb->next_mmio = PCI_MMIO_WINDOW_BASE;
    pb->next_pio = PCI_PIO_WINDOW_BASE;
}

int pci_bus_register_windows(struct pci_bus *pb, struct hv_bus *bus)
{
    int rc = hv_bus_register(bus, HV_BUS_MMIO, PCI_MMIO_WINDOW_BASE,
                             PCI_MMIO_WINDOW_END - PCI_MMIO_WINDOW_BASE, &pb->mmio_window);
    if (rc)
        return rc;
    return hv_bus_register(bus, HV_BUS_PIO, PCI_PIO_WINDOW_BASE,
                           PCI_PIO_WINDOW_END - PCI_PIO_WINDOW_BASE, &pb->pio_window);
}

/* Firmware's job: naturally aligned addresses, handed out in order. */
static int assign_bars(struct pci_bus *pb, struct pci_device *pdev)
{
    uint16_t cmd = 0;

    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        struct pci_bar *bar = &pdev->bars[i];
        if (!bar->size)
            continue;
        if (bar->io) {
            uint32_t addr = (pb->next_pio + bar->size - 1) & ~(bar->size - 1);
            if (addr + bar->size > PCI_PIO_WINDOW_END)
                return -ENOSPC;
            pb->next_pio = addr + bar->size;
            pci_cfg_put32(pdev, PCI_BAR0 + 4 * i, addr | 1u);
            cmd |= PCI_COMMAND_IO;
        } else {
            uint64_t addr = (pb->next_mmio + bar->size - 1) & ~(uint64_t)(bar->size - 1);
            if (addr + bar->size > PCI_MMIO_WINDOW_END)
                return -ENOSPC;
            pb->next_mmio = addr + bar->size;
            pci_cfg_put32(pdev, PCI_BAR0 + 4 * i, (uint32_t)addr);
            cmd |= PCI_COMMAND_MEMORY;
        }
    }
    /* Through the generic write path, so the device hears where its BARs went. */
    pci_device_config_write(pdev, PCI_COMMAND, 2, cmd);
    return 0;
}

int pci_bus_add(struct pci_bus *pb, struct pci_device *pdev, unsigned devfn)
{
    int rc;

    if (devfn >= PCI_MAX_SLOTS * 8)
        return -EINVAL;
    if (pb->devices[devfn])
        return -EEXIST;
    pdev->devfn = (uint8_t)devfn;
    if (pdev->config[PCI_INTERRUPT_PIN]) {
        pdev->intx_gsi = pci_intx_gsi(devfn >> 3, pdev->config[PCI_INTERRUPT_PIN] - 1u);
        pdev->config[PCI_INTERRUPT_LINE] = (uint8_t)pdev->intx_gsi;
    }
    if ((rc = assign_bars(pb, pdev)))
        return rc;
    pb->devices[devfn] = pdev;
    return 0;
}

uint32_t pci_bus_config_read(struct pci_bus *pb, unsigned devfn, unsigned reg, unsigned size)
{
    if (devfn >= PCI_MAX_SLOTS * 8 || !pb->devices[devfn])
        return 0xffffffffu;
    return pci_device_config_read(pb->devices[devfn], reg, size);
}

void pci_bus_config_write(struct pci_bus *pb, unsigned devfn, unsigned reg, unsigned size,
                          uint32_t value)
{
    if (devfn < PCI_MAX_SLOTS * 8 && pb->devices[devfn])
        pci_device_config_write(pb->devices[devfn], reg, size, value);
}

void pci_bus_reset(struct pci_bus *pb)
{
    for (unsigned d = 0; d < PCI_MAX_SLOTS * 8; d++)
        if (pb->devices[d])
            pci_device_reset(pb->devices[d]);
}
