/*
 * The port-I/O and MMIO buses: devices register address ranges with an ops
 * table; the exit dispatcher routes guest accesses to them. Accesses nobody
 * claims read as all ones and are otherwise ignored, as on a real PC.
 */
#ifndef HV_BUS_H
#define HV_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv/hv.h"

struct hv_device;

enum hv_bus_space { HV_BUS_PIO, HV_BUS_MMIO };

struct hv_device_ops {
    /* offset is relative to the registered base; size is 1, 2, 4 or 8. */
    void (*read)(struct hv_device *dev, uint64_t offset, void *data, unsigned size);
    void (*write)(struct hv_device *dev, uint64_t offset, const void *data, unsigned size);
    void (*reset)(struct hv_device *dev);
};

struct hv_guest_mem;

/* What a device may ask of the machine it sits in (a fake in unit tests). */
struct hv_platform {
    /* ISA lines (< 16) follow the last level set. Lines 16-23 are shared PCI
     * INTx lines: each device reports only changes of its own level and the
     * line is high while any device holds it. */
    void (*set_irq)(void *opaque, unsigned irq, int level);
    void (*request_stop)(void *opaque, enum hv_stop_reason reason, int code);
    /*
     * For PCI devices. An MSI route is a GSI that, when its irqfd fires,
     * sends the message (addr, data); msi_route_alloc returns a GSI or -errno.
     * irqfd/ioeventfd (un)register eventfds with KVM: an irqfd injects its
     * GSI when written, an ioeventfd is written by KVM when the guest writes
     * len bytes at addr, without an exit to userspace.
     */
    int (*msi_route_alloc)(void *opaque);
    int (*msi_route_set)(void *opaque, unsigned gsi, uint64_t addr, uint32_t data);
    int (*irqfd)(void *opaque, int fd, unsigned gsi, bool assign);
    int (*ioeventfd)(void *opaque, int fd, enum hv_bus_space space, uint64_t addr, unsigned len,
                     bool assign);
    /* Guest RAM, for DMA: devices translate with hv_gpa_to_hva(). */
    const struct hv_guest_mem *mem;
    /* First call of every device thread (hv_vm_config.thread_start). */
    void (*thread_start)(void *opaque, enum hv_thread_kind kind);
    void *opaque;
};

/* Devices embed this and recover themselves with container_of. */
struct hv_device {
    const char *name;
    const struct hv_device_ops *ops;
    const struct hv_platform *platform;
};

struct hv_bus_range {
    uint64_t base, len;
    struct hv_device *dev;
};

#define HV_BUS_MAX_RANGES 32

struct hv_bus {
    struct hv_bus_range ranges[2][HV_BUS_MAX_RANGES];
    unsigned count[2];
    /* One lock for all device state: device work is short, exits are rare. */
    pthread_mutex_t lock;
};

int hv_bus_init(struct hv_bus *bus);
void hv_bus_destroy(struct hv_bus *bus);
/* -EEXIST on overlap, -ENOSPC when full. */
int hv_bus_register(struct hv_bus *bus, enum hv_bus_space space, uint64_t base, uint64_t len,
                    struct hv_device *dev);
/* Returns false when no device claims addr (reads are then filled with 0xff). */
bool hv_bus_access(struct hv_bus *bus, enum hv_bus_space space, uint64_t addr, void *data,
                   unsigned size, bool is_write);
void hv_bus_reset(struct hv_bus *bus);

#define hv_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
