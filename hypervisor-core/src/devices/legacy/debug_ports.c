/*
 * The debug-exit port lets a test guest end the VM with a status, at the
 * same address as QEMU's isa-debug-exit so the same guest runs on both.
 * Port 0x80 is where firmware writes POST codes and where Linux's outb_p()
 * writes for a delay: claiming it keeps those from counting as stray I/O.
 */
#include "debug_ports.h"

#include <string.h>

static void debug_exit_write(struct hv_device *dev, uint64_t offset, const void *data,
                             unsigned size)
{
    (void)offset;
    (void)size;
    dev->platform->request_stop(dev->platform->opaque, HV_STOP_POWEROFF, *(const uint8_t *)data);
}

void debug_exit_init(struct debug_exit *d, const struct hv_platform *platform)
{
    static const struct hv_device_ops ops = {.write = debug_exit_write};

    d->dev = (struct hv_device){.name = "debug-exit", .ops = &ops, .platform = platform};
}

static void post_code_read(struct hv_device *dev, uint64_t offset, void *data, unsigned size)
{
    struct post_code *p = hv_container_of(dev, struct post_code, dev);

    (void)offset;
    memset(data, 0, size);
    *(uint8_t *)data = p->last;
}

static void post_code_write(struct hv_device *dev, uint64_t offset, const void *data,
                            unsigned size)
{
    struct post_code *p = hv_container_of(dev, struct post_code, dev);

    (void)offset;
    (void)size;
    p->last = *(const uint8_t *)data;
}

void post_code_init(struct post_code *p, const struct hv_platform *platform)
{
    static const struct hv_device_ops ops = {.read = post_code_read, .write = post_code_write};

    memset(p, 0, sizeof(*p));
    p->dev = (struct hv_device){.name = "post-code", .ops = &ops, .platform = platform};
}
