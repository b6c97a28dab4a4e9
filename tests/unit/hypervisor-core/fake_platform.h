/* A platform for device unit tests: records IRQ levels and stop requests,
 * lends DMA devices guest RAM when a test asks for it, and (after
 * fake_platform_enable_pci) holds MSI routes, irqfds and ioeventfds as KVM
 * would. */
#ifndef TEST_FAKE_PLATFORM_H
#define TEST_FAKE_PLATFORM_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "guest_mem.h"

/* Polls cond for up to 5 s: a device's I/O thread works asynchronously. */
#define WAIT_FOR(cond)                                                                             \
    ({                                                                                             \
        bool ok_ = false;                                                                          \
        for (int i_ = 0; i_ < 5000 && !(ok_ = (cond)); i_++)                                       \
            usleep(1000);                                                                          \
        ok_;                                                                                       \
    })

#define FAKE_MSI_GSI_BASE 24 /* the first GSI msi_route_alloc hands out */
#define FAKE_MAX_MSI 16
#define FAKE_MAX_IOEVENTFDS 16

struct fake_msi_route {
    uint64_t addr;
    uint32_t data;
    unsigned sets; /* msi_route_set calls */
    int irqfd;     /* valid while irqfd_assigned */
    bool irqfd_assigned;
};

struct fake_ioeventfd {
    int fd;
    enum hv_bus_space space;
    uint64_t addr;
    unsigned len;
};

struct fake_platform {
    struct hv_platform platform;
    /* Every IOAPIC input: PCI INTx lands on 16..23 (pci_intx_gsi), past the ISA IRQs. */
    int irq_level[24];
    unsigned irq_edges[24]; /* low-to-high transitions */
    enum hv_stop_reason stop;
    int stop_code;
    unsigned stops;
    struct hv_guest_mem ram; /* see fake_platform_add_ram() */
    unsigned nr_msi;
    struct fake_msi_route msi[FAKE_MAX_MSI]; /* index: GSI - FAKE_MSI_GSI_BASE */
    unsigned nr_ioeventfds;
    struct fake_ioeventfd ioeventfds[FAKE_MAX_IOEVENTFDS];
};

static void fake_set_irq(void *opaque, unsigned irq, int level)
{
    struct fake_platform *f = opaque;

    if (level && !f->irq_level[irq])
        f->irq_edges[irq]++;
    f->irq_level[irq] = level;
}

static void fake_request_stop(void *opaque, enum hv_stop_reason reason, int code)
{
    struct fake_platform *f = opaque;

    f->stop = reason;
    f->stop_code = code;
    f->stops++;
}

static inline void fake_platform_init(struct fake_platform *f)
{
    memset(f, 0, sizeof(*f));
    f->platform = (struct hv_platform){
        .set_irq = fake_set_irq, .request_stop = fake_request_stop, .opaque = f};
}

/* size bytes of zeroed guest RAM at guest physical 0, for DMA. */
static inline void fake_platform_add_ram(struct fake_platform *f, uint64_t size)
{
    f->ram = (struct hv_guest_mem){.host = calloc(1, size), .size = size, .low_size = size};
    f->platform.mem = &f->ram;
}

static inline void fake_platform_free_ram(struct fake_platform *f)
{
    free(f->ram.host);
    f->ram.host = NULL;
    f->platform.mem = NULL;
}

static int fake_msi_route_alloc(void *opaque)
{
    struct fake_platform *f = opaque;

    return f->nr_msi < FAKE_MAX_MSI ? (int)(FAKE_MSI_GSI_BASE + f->nr_msi++) : -ENOSPC;
}

static struct fake_msi_route *fake_msi(struct fake_platform *f, unsigned gsi)
{
    return gsi >= FAKE_MSI_GSI_BASE && gsi - FAKE_MSI_GSI_BASE < f->nr_msi
               ? &f->msi[gsi - FAKE_MSI_GSI_BASE]
               : NULL;
}

static int fake_msi_route_set(void *opaque, unsigned gsi, uint64_t addr, uint32_t data)
{
    struct fake_msi_route *r = fake_msi(opaque, gsi);

    if (!r)
        return -EINVAL;
    r->addr = addr;
    r->data = data;
    r->sets++;
    return 0;
}

static int fake_irqfd(void *opaque, int fd, unsigned gsi, bool assign)
{
    struct fake_msi_route *r = fake_msi(opaque, gsi);

    if (!r || r->irqfd_assigned == assign)
        return -EINVAL;
    r->irqfd = fd;
    r->irqfd_assigned = assign;
    return 0;
}

static int fake_ioeventfd(void *opaque, int fd, enum hv_bus_space space, uint64_t addr,
                          unsigned len, bool assign)
{
    struct fake_platform *f = opaque;

    if (assign) {
        if (f->nr_ioeventfds == FAKE_MAX_IOEVENTFDS)
            return -ENOSPC;
        f->ioeventfds[f->nr_ioeventfds++] =
            (struct fake_ioeventfd){.fd = fd, .space = space, .addr = addr, .len = len};
        return 0;
    }
    for (unsigned i = 0; i < f->nr_ioeventfds; i++) {
        struct fake_ioeventfd *e = &f->ioeventfds[i];
        if (e->fd == fd && e->space == space && e->addr == addr && e->len == len) {
            *e = f->ioeventfds[--f->nr_ioeventfds];
            return 0;
        }
    }
    return -ENOENT;
}

/* Adds the MSI, irqfd and ioeventfd hooks PCI devices use. */
static inline void fake_platform_enable_pci(struct fake_platform *f)
{
    f->platform.msi_route_alloc = fake_msi_route_alloc;
    f->platform.msi_route_set = fake_msi_route_set;
    f->platform.irqfd = fake_irqfd;
    f->platform.ioeventfd = fake_ioeventfd;
}

/* How often KVM would have injected gsi's MSI since the last call (reads its irqfd). */
static inline uint64_t fake_msi_fired(struct fake_platform *f, unsigned gsi)
{
    struct fake_msi_route *r = fake_msi(f, gsi);
    uint64_t n = 0;

    if (!r || !r->irqfd_assigned || read(r->irqfd, &n, sizeof(n)) != sizeof(n))
        return 0;
    return n;
}

/* The eventfd KVM would signal for a write of len bytes at MMIO addr, or -1. */
static inline int fake_ioeventfd_at(const struct fake_platform *f, uint64_t addr, unsigned len)
{
    for (unsigned i = 0; i < f->nr_ioeventfds; i++) {
        const struct fake_ioeventfd *e = &f->ioeventfds[i];
        if (e->space == HV_BUS_MMIO && e->addr == addr && e->len == len)
            return e->fd;
    }
    return -1;
}

/* Byte-wide port access helpers. */
static inline uint8_t dev_in8(struct hv_device *d, uint64_t off)
{
    uint8_t v = 0;
    d->ops->read(d, off, &v, 1);
    return v;
}

static inline void dev_out8(struct hv_device *d, uint64_t off, uint8_t v)
{
    d->ops->write(d, off, &v, 1);
}

#endif
