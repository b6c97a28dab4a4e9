/*
 * One PCI function as the guest sees it through configuration space: a
 * 256-byte header with a write mask, up to six BARs (32-bit memory or I/O),
 * a capability list and an INTx pin. The generic code handles BAR sizing
 * and decoding; devices only see accesses to their mapped BARs.
 */
#ifndef HV_PCI_DEVICE_H
#define HV_PCI_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "snapshot/snap_buf.h"

#define PCI_CFG_SIZE 256
#define PCI_NUM_BARS 6

/* Configuration header offsets and bits the devices need. */
#define PCI_VENDOR_ID 0x00
#define PCI_COMMAND 0x04
#define PCI_COMMAND_IO 0x0001
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS 0x06
#define PCI_STATUS_INTERRUPT 0x0008
#define PCI_STATUS_CAP_LIST 0x0010
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_CAP_ID_VENDOR 0x09
#define PCI_CAP_ID_MSIX 0x11

struct pci_device;

struct pci_device_ops {
    /* Guest accesses inside a mapped BAR; offset is from the BAR's start. */
    void (*bar_read)(struct pci_device *pdev, unsigned bar, uint64_t offset, void *data,
                     unsigned size);
    void (*bar_write)(struct pci_device *pdev, unsigned bar, uint64_t offset, const void *data,
                      unsigned size);
    /* Optional: a BAR now decodes at addr (0: not decoded), e.g. to move ioeventfds. */
    void (*bar_mapped)(struct pci_device *pdev, unsigned bar, uint64_t addr);
    /* Optional: called after the generic code stored a config-space write. */
    void (*config_written)(struct pci_device *pdev, unsigned reg, unsigned size);
    /* Optional: machine reset. */
    void (*reset)(struct pci_device *pdev);
};

struct pci_bar {
    uint32_t size; /* power of two; 0: the function has no BAR in this slot */
    bool io;
    uint64_t mapped; /* address the BAR decodes at now, 0 = not decoded */
};

struct pci_device {
    const char *name;
    const struct pci_device_ops *ops;
    const struct hv_platform *platform;
    uint8_t config[PCI_CFG_SIZE];
    uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may change */
    struct pci_bar bars[PCI_NUM_BARS];
    uint8_t devfn;
    uint8_t cap_end;     /* next free byte for a capability */
    unsigned intx_gsi;   /* IOAPIC input the INTx pin is wired to (set by the bus) */
    bool intx_asserted;  /* what the device wants the line to be */
    bool intx_driven;    /* what it last told the platform (INTx disable applied) */
    /* Devices raise INTx from their own threads while config writes (under the
     * bus lock) may disable it: this orders the two so the line ends up right. */
    pthread_mutex_t intx_lock;
};

/* class_code is the 24-bit class/subclass/prog-if triple. */
void pci_device_init(struct pci_device *pdev, const char *name, const struct pci_device_ops *ops,
                     const struct hv_platform *platform, uint16_t vendor, uint16_t device,
                     uint32_t class_code, uint8_t revision);
void pci_device_set_subsystem(struct pci_device *pdev, uint16_t vendor, uint16_t id);
/* size must be a power of two (>= 16 for memory, >= 4 for I/O). -EINVAL otherwise. */
int pci_device_add_bar(struct pci_device *pdev, unsigned bar, uint32_t size, bool io);
/* Links a capability of len bytes (id and next pointer included) into the list;
 * returns its offset in configuration space, or -ENOSPC. */
int pci_device_add_capability(struct pci_device *pdev, uint8_t id, unsigned len);
/* Uses INTx pin A. The bus routes it to an IOAPIC input. */
void pci_device_enable_intx(struct pci_device *pdev);
/* Raises or lowers INTx (honours the command register's INTx disable). */
void pci_device_set_intx(struct pci_device *pdev, bool asserted);
bool pci_device_bus_master(const struct pci_device *pdev);

uint32_t pci_device_config_read(struct pci_device *pdev, unsigned reg, unsigned size);
void pci_device_config_write(struct pci_device *pdev, unsigned reg, unsigned size, uint32_t value);
/* Back to power-on state: command 0 except what firmware enabled, BARs at their assigned addresses. */
void pci_device_reset(struct pci_device *pdev);

/*
 * Snapshot (section 'PCID', version 1): the guest-writable bits of configuration
 * space and the INTx level the device asks for. Load keeps the bits the guest cannot
 * write (IDs, BAR sizes, capability list) from the freshly created device, then
 * re-decodes the BARs (bar_mapped, so ioeventfds follow) and drives INTx again.
 */
void pci_device_save(const struct pci_device *pdev, struct snap_w *w);
int pci_device_load(struct pci_device *pdev, struct snap_r *r);

/* Little-endian config-space accessors for device code. */
static inline void pci_cfg_put16(struct pci_device *pdev, unsigned reg, uint16_t v)
{
    pdev->config[reg] = (uint8_t)v;
    pdev->config[reg + 1] = (uint8_t)(v >> 8);
}

static inline void pci_cfg_put32(struct pci_device *pdev, unsigned reg, uint32_t v)
{
    pci_cfg_put16(pdev, reg, (uint16_t)v);
    pci_cfg_put16(pdev, reg + 2, (uint16_t)(v >> 16));
}

static inline uint16_t pci_cfg_get16(const struct pci_device *pdev, unsigned reg)
{
    return (uint16_t)(pdev->config[reg] | pdev->config[reg + 1] << 8);
}

static inline uint32_t pci_cfg_get32(const struct pci_device *pdev, unsigned reg)
{
    return pci_cfg_get16(pdev, reg) | (uint32_t)pci_cfg_get16(pdev, reg + 2) << 16;
}

#endif
