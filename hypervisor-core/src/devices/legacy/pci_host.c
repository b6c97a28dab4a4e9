/*
 * PCI host bridge (i440FX identity) reached through configuration
 * mechanism #1. The bus has only the bridge itself for now; every other
 * function reads as absent (all ones), which is how guests enumerate.
 * Port 0xCF9 sits inside the range: a byte write with bit 2 set is a hard
 * reset (Linux's reboot=pci), so it is decoded here too.
 */
#include "pci_host.h"

#include <string.h>

#define ADDR_ENABLE 0x80000000u
#define RESET_CONTROL_OFFSET 1 /* 0xCF9 */
#define RESET_CPU 0x04

static uint32_t config_read(const struct pci_host *host, uint32_t addr, unsigned offset,
                            unsigned size)
{
    unsigned bus = (addr >> 16) & 0xff, devfn = (addr >> 8) & 0xff;
    unsigned reg = (addr & 0xfc) + offset;
    uint32_t val = 0;

    if (!(addr & ADDR_ENABLE) || bus != 0 || devfn != 0)
        return 0xffffffffu;
    memcpy(&val, &host->bridge_config[reg], size);
    return val;
}

static void pci_host_read(struct hv_device *dev, uint64_t offset, void *data, unsigned size)
{
    struct pci_host *host = hv_container_of(dev, struct pci_host, dev);
    uint32_t val = 0xffffffffu;

    if (offset == 0 && size == 4)
        val = host->address;
    else if (offset >= 4 && offset - 4 + size <= 4)
        val = config_read(host, host->address, (unsigned)offset - 4, size);
    memcpy(data, &val, size > 4 ? 4 : size);
}

static void pci_host_write(struct hv_device *dev, uint64_t offset, const void *data, unsigned size)
{
    struct pci_host *host = hv_container_of(dev, struct pci_host, dev);

    if (offset == 0 && size == 4) {
        memcpy(&host->address, data, 4);
        return;
    }
    if (offset == RESET_CONTROL_OFFSET && size == 1 && (*(const uint8_t *)data & RESET_CPU)) {
        dev->platform->request_stop(dev->platform->opaque, HV_STOP_REBOOT, 0);
        return;
    }
    /* The bridge's own registers are read-only here; writes to absent functions go nowhere. */
}

static void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

void pci_host_init(struct pci_host *host, const struct hv_platform *platform)
{
    static const struct hv_device_ops ops = {.read = pci_host_read, .write = pci_host_write};
    uint8_t *c = host->bridge_config;

    memset(host, 0, sizeof(*host));
    host->dev = (struct hv_device){.name = "pci-host", .ops = &ops, .platform = platform};
    put16(c + 0x00, 0x8086); /* vendor: Intel */
    put16(c + 0x02, 0x1237); /* device: 440FX */
    put16(c + 0x06, 0x0000); /* status */
    c[0x08] = 0x02;          /* revision */
    c[0x0a] = 0x00;          /* subclass: host bridge */
    c[0x0b] = 0x06;          /* class: bridge */
    c[0x0e] = 0x00;          /* header type 0, single function */
}
