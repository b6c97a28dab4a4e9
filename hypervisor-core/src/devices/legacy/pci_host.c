/*
 * PCI host bridge reached through configuration mechanism #1: the address
 * register at 0xCF8 selects bus/devfn/register, 0xCFC-0xCFF carry the data.
 * Only bus 0 exists; everything else reads as absent (all ones), which is
 * how guests enumerate. Port 0xCF9 sits inside the range: a byte write with
 * bit 2 set is a hard reset (Linux's reboot=pci), so it is decoded here too.
 */
#include "pci_host.h"

#include <string.h>

#define ADDR_ENABLE 0x80000000u
#define RESET_CONTROL_OFFSET 1 /* 0xCF9 */
#define RESET_CPU 0x04

/* Decodes the address register; false when it selects nothing on bus 0. */
static bool selected(const struct pci_host *host, unsigned offset, unsigned size, unsigned *devfn,
                     unsigned *reg)
{
    uint32_t addr = host->address;

    if (!(addr & ADDR_ENABLE) || ((addr >> 16) & 0xff) != 0 || offset - 4 + size > 4)
        return false;
    *devfn = (addr >> 8) & 0xff;
    *reg = (addr & 0xfc) + offset - 4;
    return true;
}

static void pci_host_read(struct hv_device *dev, uint64_t offset, void *data, unsigned size)
{
    struct pci_host *host = hv_container_of(dev, struct pci_host, dev);
    uint32_t val = 0xffffffffu;
    unsigned devfn, reg;

    if (offset == 0 && size == 4)
        val = host->address;
    else if (offset >= 4 && selected(host, (unsigned)offset, size, &devfn, &reg))
        val = pci_bus_config_read(host->bus, devfn, reg, size);
    memcpy(data, &val, size > 4 ? 4 : size);
}

static void pci_host_write(struct hv_device *dev, uint64_t offset, const void *data, unsigned size)
{
    struct pci_host *host = hv_container_of(dev, struct pci_host, dev);
    uint32_t val = 0;
    unsigned devfn, reg;

    if (offset == 0 && size == 4) {
        memcpy(&host->address, data, 4);
        return;
    }
    if (offset == RESET_CONTROL_OFFSET && size == 1 && (*(const uint8_t *)data & RESET_CPU)) {
        dev->platform->request_stop(dev->platform->opaque, HV_STOP_REBOOT, 0);
        return;
    }
    if (offset >= 4 && size <= 4 && selected(host, (unsigned)offset, size, &devfn, &reg)) {
        memcpy(&val, data, size);
        pci_bus_config_write(host->bus, devfn, reg, size, val);
    }
}

int pci_host_init(struct pci_host *host, const struct hv_platform *platform, struct pci_bus *bus)
{
    static const struct hv_device_ops ops = {.read = pci_host_read, .write = pci_host_write};

    memset(host, 0, sizeof(*host));
    host->dev = (struct hv_device){.name = "pci-host", .ops = &ops, .platform = platform};
    host->bus = bus;
    /* i440FX host bridge, class 06/00; its registers are read-only here. */
    pci_device_init(&host->bridge, "host-bridge", NULL, platform, 0x8086, 0x1237, 0x060000, 0x02);
    memset(host->bridge.wmask, 0, sizeof(host->bridge.wmask));
    return pci_bus_add(bus, &host->bridge, 0);
}

#define PCIH_TAG SNAP_TAG('P', 'C', 'I', 'H')

void pci_host_save(const struct pci_host *host, struct snap_w *w)
{
    size_t mark = snap_w_begin(w, PCIH_TAG, 1);

    snap_w_u32(w, host->address);
    snap_w_end(w, mark);
}

/* Every 32-bit address is one a guest can write, so there is nothing to refuse. */
int pci_host_load(struct pci_host *host, struct snap_r *r)
{
    struct snap_r sub;
    uint32_t address;
    uint16_t ver;

    if (snap_r_section(r, PCIH_TAG, "pci host", 1, &sub, &ver))
        return r->err;
    address = snap_r_u32(&sub);
    if (snap_r_end(r, &sub))
        return r->err;
    host->address = address;
    return 0;
}
