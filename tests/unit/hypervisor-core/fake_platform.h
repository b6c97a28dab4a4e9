/* A platform for device unit tests: records IRQ levels and stop requests. */
#ifndef TEST_FAKE_PLATFORM_H
#define TEST_FAKE_PLATFORM_H

#include <string.h>

#include "bus.h"

struct fake_platform {
    struct hv_platform platform;
    int irq_level[16];
    unsigned irq_edges[16]; /* low-to-high transitions */
    enum hv_stop_reason stop;
    int stop_code;
    unsigned stops;
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
