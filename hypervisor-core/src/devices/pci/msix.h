/*
 * MSI-X (PCI 3.0 section 6.8.2) for a PCI function: the capability, the
 * vector table and pending-bit array inside one of the function's memory
 * BARs, and delivery. Each vector owns a GSI routed to its message and an
 * eventfd registered as that GSI's irqfd, so signalling a vector from any
 * thread is one eventfd write and KVM injects the interrupt. Masked vectors
 * (or a masked function) collect a pending bit and fire on unmask.
 *
 * Not thread-safe by itself: the owning device serialises calls.
 */
#ifndef HV_PCI_MSIX_H
#define HV_PCI_MSIX_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/pci/pci_device.h"

#define MSIX_MAX_VECTORS 64
#define MSIX_ENTRY_SIZE 16
#define MSIX_NO_VECTOR 0xffff

struct msix_vector {
    uint64_t addr;
    uint32_t data;
    uint32_t ctrl; /* bit 0: masked */
    int gsi;       /* -1 until allocated */
    int fd;        /* irqfd, -1 when the platform has none (then nothing is delivered) */
    bool routed;   /* the GSI's route carries the current addr/data */
    bool pending;
};

struct msix {
    struct pci_device *pdev;
    unsigned nr_vectors;
    unsigned cap;   /* offset of the capability in config space */
    unsigned bar;
    uint32_t table_offset, pba_offset;
    struct msix_vector vectors[MSIX_MAX_VECTORS];
};

/* Adds the capability; the table and PBA live at the given offsets of bar
 * (which the caller created, large enough). Allocates a GSI and an irqfd per
 * vector through the platform. 0 or -errno. */
int msix_init(struct msix *m, struct pci_device *pdev, unsigned nr_vectors, unsigned bar,
              uint32_t table_offset, uint32_t pba_offset);
void msix_destroy(struct msix *m);
bool msix_enabled(const struct msix *m);
/* BAR accesses: true if the offset was the table's or the PBA's. */
bool msix_bar_read(struct msix *m, uint64_t offset, void *data, unsigned size);
bool msix_bar_write(struct msix *m, uint64_t offset, const void *data, unsigned size);
/* Call from the device's config_written: delivers what unmasking released. */
void msix_config_written(struct msix *m, unsigned reg, unsigned size);
/* Signals vector (MSIX_NO_VECTOR and out-of-range are ignored). */
void msix_notify(struct msix *m, unsigned vector);
void msix_reset(struct msix *m);
/*
 * Snapshot (section 'MSIX', version 1): each vector's message, mask and pending
 * bit (the enable and function-mask bits are configuration space: pci_device_save).
 * Load after pci_device_load: routes of the vectors that can fire now (function
 * enabled, vector unmasked) are programmed through the platform again; pending
 * bits stay pending. The vector count must be this device's.
 */
void msix_save(const struct msix *m, struct snap_w *w);
int msix_load(struct msix *m, struct snap_r *r);

#endif
