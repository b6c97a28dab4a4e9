/* Port-I/O and MMIO address decoding for emulated devices. */
#include "bus.h"

#include <errno.h>
#include <string.h>

int hv_bus_init(struct hv_bus *bus)
{
    memset(bus, 0, sizeof(*bus));
    return -pthread_mutex_init(&bus->lock, NULL);
}

void hv_bus_destroy(struct hv_bus *bus)
{
    pthread_mutex_destroy(&bus->lock);
}

int hv_bus_register(struct hv_bus *bus, enum hv_bus_space space, uint64_t base, uint64_t len,
                    struct hv_device *dev)
{
    unsigned n = bus->count[space];

    if (len == 0 || base + len < base)
        return -EINVAL;
    for (unsigned i = 0; i < n; i++) {
        const struct hv_bus_range *r = &bus->ranges[space][i];
        if (base < r->base + r->len && r->base < base + len)
            return -EEXIST;
    }
    if (n == HV_BUS_MAX_RANGES)
        return -ENOSPC;
    bus->ranges[space][n] = (struct hv_bus_range){.base = base, .len = len, .dev = dev};
    bus->count[space] = n + 1;
    return 0;
}

static const struct hv_bus_range *bus_find(const struct hv_bus *bus, enum hv_bus_space space,
                                           uint64_t addr, unsigned size)
{
    for (unsigned i = 0; i < bus->count[space]; i++) {
        const struct hv_bus_range *r = &bus->ranges[space][i];
        if (addr >= r->base && addr - r->base + size <= r->len)
            return r;
    }
    return NULL;
}

bool hv_bus_access(struct hv_bus *bus, enum hv_bus_space space, uint64_t addr, void *data,
                   unsigned size, bool is_write)
{
    const struct hv_bus_range *r = bus_find(bus, space, addr, size);

    if (!r || size == 0 || size > 8) {
        if (!is_write)
            memset(data, 0xff, size > 8 ? 8 : size);
        return false;
    }
    pthread_mutex_lock(&bus->lock);
    if (is_write) {
        if (r->dev->ops->write)
            r->dev->ops->write(r->dev, addr - r->base, data, size);
    } else {
        memset(data, 0xff, size);
        if (r->dev->ops->read)
            r->dev->ops->read(r->dev, addr - r->base, data, size);
    }
    pthread_mutex_unlock(&bus->lock);
    return true;
}

void hv_bus_reset(struct hv_bus *bus)
{
    pthread_mutex_lock(&bus->lock);
    for (int s = 0; s < 2; s++)
        for (unsigned i = 0; i < bus->count[s]; i++) {
            struct hv_device *dev = bus->ranges[s][i].dev;
            if (dev->ops->reset)
                dev->ops->reset(dev);
        }
    pthread_mutex_unlock(&bus->lock);
}
