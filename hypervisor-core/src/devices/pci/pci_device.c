/*
 * Generic PCI function behaviour: the write mask decides what the guest may
 * change, BAR registers report their size by ignoring the low address bits
 * (so writing all ones and reading back sizes them, PCI 3.0 section 6.2.5.1),
 * and any change to a BAR or to the command register's decode bits
 * re-evaluates where each BAR decodes.
 */
#include "devices/pci/pci_device.h"

#include <errno.h>
#include <string.h>

#define PCI_BAR_IO_FLAG 0x1u
#define PCI_CAP_START 0x40

void pci_device_init(struct pci_device *pdev, const char *name, const struct pci_device_ops *ops,
                     const struct hv_platform *platform, uint16_t vendor, uint16_t device,
                     uint32_t class_code, uint8_t revision)
{
    memset(pdev, 0, sizeof(*pdev));
    pthread_mutex_init(&pdev->intx_lock, NULL);
    pdev->name = name;
    pdev->ops = ops;
    pdev->platform = platform;
    pdev->cap_end = PCI_CAP_START;
    pci_cfg_put16(pdev, PCI_VENDOR_ID, vendor);
    pci_cfg_put16(pdev, PCI_VENDOR_ID + 2, device);
    pdev->config[0x08] = revision;
    pdev->config[0x09] = (uint8_t)class_code;
    pdev->config[0x0a] = (uint8_t)(class_code >> 8);
    pdev->config[0x0b] = (uint8_t)(class_code >> 16);
    pci_cfg_put16(pdev, PCI_COMMAND, 0);
    pdev->wmask[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    pdev->wmask[PCI_COMMAND + 1] = PCI_COMMAND_INTX_DISABLE >> 8;
    pdev->wmask[PCI_INTERRUPT_LINE] = 0xff;
}

void pci_device_set_subsystem(struct pci_device *pdev, uint16_t vendor, uint16_t id)
{
    pci_cfg_put16(pdev, PCI_SUBSYSTEM_VENDOR_ID, vendor);
    pci_cfg_put16(pdev, PCI_SUBSYSTEM_ID, id);
}

int pci_device_add_bar(struct pci_device *pdev, unsigned bar, uint32_t size, bool io)
{
    uint32_t mask;

    if (bar >= PCI_NUM_BARS || size == 0 || (size & (size - 1)) || size < (io ? 4u : 16u) ||
        (io && size > 256))
        return -EINVAL;
    pdev->bars[bar] = (struct pci_bar){.size = size, .io = io};
    mask = ~(size - 1);
    for (unsigned i = 0; i < 4; i++)
        pdev->wmask[PCI_BAR0 + 4 * bar + i] = (uint8_t)(mask >> (8 * i));
    pci_cfg_put32(pdev, PCI_BAR0 + 4 * bar, io ? PCI_BAR_IO_FLAG : 0);
    return 0;
}

int pci_device_add_capability(struct pci_device *pdev, uint8_t id, unsigned len)
{
    unsigned off = pdev->cap_end, prev;

    if (len < 2 || off + len > PCI_CFG_SIZE)
        return -ENOSPC;
    pdev->config[off] = id;
    pdev->config[off + 1] = 0;
    if (!(pdev->config[PCI_STATUS] & PCI_STATUS_CAP_LIST)) {
        pdev->config[PCI_CAPABILITY_LIST] = (uint8_t)off;
        pdev->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
    } else {
        for (prev = pdev->config[PCI_CAPABILITY_LIST]; pdev->config[prev + 1];)
            prev = pdev->config[prev + 1];
        pdev->config[prev + 1] = (uint8_t)off;
    }
    pdev->cap_end = (uint8_t)((off + len + 3) & ~3u);
    return (int)off;
}

void pci_device_enable_intx(struct pci_device *pdev)
{
    pdev->config[PCI_INTERRUPT_PIN] = 1; /* INTA# */
}

static uint16_t command(const struct pci_device *pdev)
{
    return pci_cfg_get16(pdev, PCI_COMMAND);
}

static void update_intx_locked(struct pci_device *pdev)
{
    bool level = pdev->intx_asserted && !(command(pdev) & PCI_COMMAND_INTX_DISABLE);

    if (pdev->intx_asserted)
        pdev->config[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
    else
        pdev->config[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
    /* Only changes: INTx lines are shared, the platform ORs the devices on one line. */
    if (level == pdev->intx_driven)
        return;
    pdev->intx_driven = level;
    if (pdev->config[PCI_INTERRUPT_PIN] && pdev->platform && pdev->platform->set_irq)
        pdev->platform->set_irq(pdev->platform->opaque, pdev->intx_gsi, level);
}

static void update_intx(struct pci_device *pdev)
{
    pthread_mutex_lock(&pdev->intx_lock);
    update_intx_locked(pdev);
    pthread_mutex_unlock(&pdev->intx_lock);
}

void pci_device_set_intx(struct pci_device *pdev, bool asserted)
{
    pthread_mutex_lock(&pdev->intx_lock);
    if (pdev->intx_asserted != asserted) {
        pdev->intx_asserted = asserted;
        update_intx_locked(pdev);
    }
    pthread_mutex_unlock(&pdev->intx_lock);
}

bool pci_device_bus_master(const struct pci_device *pdev)
{
    return command(pdev) & PCI_COMMAND_MASTER;
}

/* Where BAR i decodes now: needs its decode bit and an address inside the 32-bit space. */
static uint64_t bar_decode_address(const struct pci_device *pdev, unsigned i)
{
    const struct pci_bar *bar = &pdev->bars[i];
    uint32_t reg = pci_cfg_get32(pdev, PCI_BAR0 + 4 * i);
    uint64_t addr = reg & ~(uint64_t)(bar->size - 1);

    if (!bar->size || !(command(pdev) & (bar->io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)))
        return 0;
    if (bar->io)
        addr &= 0xffff;
    return addr;
}

static void update_bars(struct pci_device *pdev)
{
    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        uint64_t addr = bar_decode_address(pdev, i);
        if (addr == pdev->bars[i].mapped)
            continue;
        pdev->bars[i].mapped = addr;
        if (pdev->ops && pdev->ops->bar_mapped)
            pdev->ops->bar_mapped(pdev, i, addr);
    }
}

uint32_t pci_device_config_read(struct pci_device *pdev, unsigned reg, unsigned size)
{
    uint32_t val = 0;

    if (reg >= PCI_CFG_SIZE || size > PCI_CFG_SIZE - reg || size > 4)
        return 0xffffffffu;
    for (unsigned i = 0; i < size; i++)
        val |= (uint32_t)pdev->config[reg + i] << (8 * i);
    return val;
}

void pci_device_config_write(struct pci_device *pdev, unsigned reg, unsigned size, uint32_t value)
{
    if (reg >= PCI_CFG_SIZE || size > PCI_CFG_SIZE - reg || size > 4)
        return;
    for (unsigned i = 0; i < size; i++) {
        uint8_t m = pdev->wmask[reg + i], b = (uint8_t)(value >> (8 * i));
        if (m) /* read-only bytes (status) may be changing on a device thread */
            pdev->config[reg + i] = (uint8_t)((pdev->config[reg + i] & ~m) | (b & m));
    }
    if (reg < PCI_BAR0 + 4 * PCI_NUM_BARS && reg + size > PCI_COMMAND) {
        update_bars(pdev);
        update_intx(pdev);
    }
    if (pdev->ops && pdev->ops->config_written)
        pdev->ops->config_written(pdev, reg, size);
}

void pci_device_reset(struct pci_device *pdev)
{
    pci_device_set_intx(pdev, false);
    if (pdev->ops && pdev->ops->reset)
        pdev->ops->reset(pdev);
}

#define PCID_TAG SNAP_TAG('P', 'C', 'I', 'D')

void pci_device_save(const struct pci_device *pdev, struct snap_w *w)
{
    size_t mark = snap_w_begin(w, PCID_TAG, 1);

    snap_w_bytes(w, pdev->config, PCI_CFG_SIZE);
    snap_w_bool(w, pdev->intx_asserted);
    snap_w_end(w, mark);
}

int pci_device_load(struct pci_device *pdev, struct snap_r *r)
{
    uint8_t saved[PCI_CFG_SIZE];
    struct snap_r sub;
    uint16_t version;
    bool asserted;

    if (snap_r_section(r, PCID_TAG, "PCI function", 1, &sub, &version))
        return r->err;
    snap_r_bytes(&sub, saved, sizeof(saved));
    asserted = snap_r_bool(&sub);
    if (snap_r_end(r, &sub))
        return r->err;
    /*
     * Only what the guest could have written is taken: the rest describes the
     * device this build creates (and the status byte is derived from the INTx
     * level), so a file cannot give a function other IDs, BAR sizes or a
     * capability list that points anywhere.
     */
    for (unsigned i = 0; i < PCI_CFG_SIZE; i++)
        pdev->config[i] =
            (uint8_t)((pdev->config[i] & ~pdev->wmask[i]) | (saved[i] & pdev->wmask[i]));
    update_bars(pdev);
    pthread_mutex_lock(&pdev->intx_lock);
    pdev->intx_asserted = asserted;
    update_intx_locked(pdev);
    pthread_mutex_unlock(&pdev->intx_lock);
    return 0;
}
