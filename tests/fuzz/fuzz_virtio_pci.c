/*
 * libFuzzer harness for one virtio device through the virtio-pci transport
 * (devices/virtio/virtio_pci.c, devices/pci/msix.c) as a hostile guest's
 * driver reaches it: configuration space through the 0xCF8/0xCFC mechanism
 * (BARs, command register, MSI-X capability), the BAR0 areas (common
 * configuration, ISR, device configuration, notify) and the MSI-X table and
 * PBA in BAR1 wherever the guest has moved them, and hostile queue contents
 * written into guest RAM. Built once per device (FUZZ_VIRTIO_DEVICE: blk,
 * net, console, rng; tests/fuzz/CMakeLists.txt), so each gets its own
 * corpus and its own figures.
 *
 * The transport's I/O thread is not started: after every operation the
 * harness does what that thread does, on this thread, so an input replays
 * the same way every time: a kicked queue (its eventfd readable) whose queue
 * is ready gets the device's queue_notify, a readable host-side fd (the
 * net "tap", the console's input) gets fd_ready. The net device's tap is a
 * datagram socketpair (virtio_net_create_fd); the harness reads what the
 * guest transmits and can inject received frames. blk's disk is a memfd,
 * emptied after an input that wrote to it. The platform is the unit tests'
 * fake (irqfds, MSI routes, ioeventfds recorded, not KVM's); guest RAM is
 * one exactly-sized malloc, so ASan sees any access outside it.
 *
 * Input: a program of operations, [op][args...] each (see the switch).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include "devices/pci/pci_bus.h"
#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_console.h"
#include "devices/virtio/virtio_net.h"
#include "devices/virtio/virtio_rng.h"
#include "fuzz_machine.h"
#include "fuzz_reader.h"

#define VIRTIO_BLK_DEVICE     1
#define VIRTIO_NET_DEVICE     2
#define VIRTIO_CONSOLE_DEVICE 3
#define VIRTIO_RNG_DEVICE     4
#ifndef FUZZ_VIRTIO_DEVICE
#error "FUZZ_VIRTIO_DEVICE names the device this harness is built for"
#endif

#define RAM_SIZE (64u << 10)
#define DISK_SECTORS 64
#define MAX_OPS 512
#define DEVFN 0x10 /* 00:02.0 */
/* BAR0's areas and BAR1's layout, as virtio_pci.c places them. */
#define ISR_OFF 0x1000
#define DEVICE_OFF 0x2000
#define NOTIFY_OFF 0x3000
#define NOTIFY_MULTIPLIER 4
/* Where the bring-up operation puts each queue's rings: 4 KiB per queue. */
#define RING_BASE 0x8000

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if FUZZ_VIRTIO_DEVICE == VIRTIO_BLK_DEVICE
static struct block_image img;
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
#if FUZZ_VIRTIO_DEVICE == VIRTIO_BLK_DEVICE
    char err[256];
    int fd = memfd_create("fuzz-virtio-blk", MFD_CLOEXEC);

    if (fd < 0 || ftruncate(fd, DISK_SECTORS * 512) != 0)
        abort();
    if (block_image_open(&img, "fuzz-virtio-blk", fd, false, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_virtio: %s\n", err);
        abort();
    }
    close(fd);
#endif
    return 0;
}

static void console_out(void *opaque, const uint8_t *buf, size_t len)
{
    (void)opaque, (void)buf, (void)len;
}

struct dev {
    void *dev;
    struct virtio_pci *vp;
    int host_fd; /* net: the harness's end of the "tap"; -1 otherwise */
};

static int dev_create(struct dev *d, struct fake_platform *fp)
{
    d->host_fd = -1;
#if FUZZ_VIRTIO_DEVICE == VIRTIO_BLK_DEVICE
    struct virtio_blk *blk;
    if (img.stats.write_ops &&
        (ftruncate(img.fd, 0) != 0 || ftruncate(img.fd, DISK_SECTORS * 512) != 0))
        abort();
    img.stats = (struct block_image_stats){0};
    if (virtio_blk_create(&blk, &fp->platform, &img, NULL))
        return -1;
    d->dev = blk;
    d->vp = virtio_blk_transport(blk);
#elif FUZZ_VIRTIO_DEVICE == VIRTIO_NET_DEVICE
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    struct virtio_net *net;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
        return -1;
    if (virtio_net_create_fd(&net, &fp->platform, sv[0], mac)) {
        close(sv[1]);
        return -1;
    }
    d->host_fd = sv[1];
    d->dev = net;
    d->vp = virtio_net_transport(net);
#elif FUZZ_VIRTIO_DEVICE == VIRTIO_CONSOLE_DEVICE
    struct virtio_console *con;
    if (virtio_console_create(&con, &fp->platform, console_out, NULL))
        return -1;
    d->dev = con;
    d->vp = virtio_console_transport(con);
#else
    struct virtio_rng *rng;
    if (virtio_rng_create(&rng, &fp->platform))
        return -1;
    d->dev = rng;
    d->vp = virtio_rng_transport(rng);
#endif
    (void)console_out;
    return 0;
}

static void dev_destroy(struct dev *d)
{
#if FUZZ_VIRTIO_DEVICE == VIRTIO_BLK_DEVICE
    virtio_blk_destroy(d->dev);
#elif FUZZ_VIRTIO_DEVICE == VIRTIO_NET_DEVICE
    virtio_net_destroy(d->dev);
    close(d->host_fd);
#elif FUZZ_VIRTIO_DEVICE == VIRTIO_CONSOLE_DEVICE
    virtio_console_destroy(d->dev);
#else
    virtio_rng_destroy(d->dev);
#endif
}

/* The host side sends something to the guest: a frame on the tap, console input. */
static void host_input(struct dev *d, const uint8_t *buf, size_t len)
{
#if FUZZ_VIRTIO_DEVICE == VIRTIO_NET_DEVICE
    if (send(d->host_fd, buf, len, MSG_DONTWAIT) < 0) {
        /* full: the device has not taken the earlier ones */
    }
#elif FUZZ_VIRTIO_DEVICE == VIRTIO_CONSOLE_DEVICE
    virtio_console_receive(d->dev, buf, len);
#else
    (void)d, (void)buf, (void)len;
#endif
}

static bool readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* What the transport's I/O thread would do now (virtio_pci.c io_thread). */
static void io_thread_round(struct dev *d)
{
    struct virtio_pci *vp = d->vp;
    uint64_t n;
    char frame[2048];

    for (unsigned round = 0; round < 4; round++) {
        bool any = false;
        for (unsigned q = 0; q < vp->ops->num_queues; q++) {
            if (readable(vp->kick_fd[q])) {
                while (read(vp->kick_fd[q], &n, sizeof(n)) > 0) {
                }
                any = true;
                if (virtio_pci_queue_ready(vp, q))
                    vp->ops->queue_notify(vp, q);
            }
        }
        for (unsigned i = 0; i < vp->nr_extra_fds; i++) {
            if (readable(vp->extra_fd[i])) {
                vp->ops->fd_ready(vp, vp->extra_fd[i]);
            }
        }
        if (!any)
            break;
    }
    /* What the guest sent out on the "tap": read and dropped. */
    while (d->host_fd >= 0 && recv(d->host_fd, frame, sizeof(frame), MSG_DONTWAIT) > 0) {
    }
}

static uint64_t bar_base(struct pci_bus *pb, unsigned bar)
{
    /* BAR0 and BAR1 are 64-bit memory BARs? Read what the guest sees either way. */
    uint32_t lo = pci_bus_config_read(pb, DEVFN, 0x10 + 4 * bar, 4);

    return lo & ~0xfull;
}

static void common_wr(struct hv_bus *bus, uint64_t base, unsigned off, unsigned size, uint64_t v)
{
    hv_bus_access(bus, HV_BUS_MMIO, base + off, &v, size, true);
}

/*
 * A well-behaved driver's bring-up of queue q (virtio 1.2 section 3.1.1),
 * so that inputs reach the devices' request handling without having to
 * find the whole sequence first; the rings are then the input's to fill.
 */
static void bring_up(struct hv_bus *bus, struct pci_bus *pb, unsigned q, unsigned qsize,
                     uint64_t features)
{
    uint64_t base;
    uint64_t ring = RING_BASE + (uint64_t)(q % 8) * 0x1000;

    /* Memory decoding and bus mastering on, as Linux's probe does. */
    pci_bus_config_write(pb, DEVFN, 0x04, 2, 0x6);
    base = bar_base(pb, 0);
    common_wr(bus, base, VIRTIO_PCI_COMMON_STATUS, 1,
              VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    common_wr(bus, base, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    common_wr(bus, base, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)features);
    common_wr(bus, base, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    common_wr(bus, base, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)(features >> 32) | 1 /* VERSION_1 */);
    common_wr(bus, base, VIRTIO_PCI_COMMON_STATUS, 1,
              VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    common_wr(bus, base, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
    common_wr(bus, base, VIRTIO_PCI_COMMON_Q_SIZE, 2, qsize);
    common_wr(bus, base, VIRTIO_PCI_COMMON_Q_DESCLO, 4, ring);
    common_wr(bus, base, VIRTIO_PCI_COMMON_Q_DESCHI, 4, 0);
    common_wr(bus, base, VIRTIO_PCI_COMMON_Q_AVAILLO, 4, ring + 0x800);
    common_wr(bus, base, VIRTIO_PCI_COMMON_Q_AVAILHI, 4, 0);
    common_wr(bus, base, VIRTIO_PCI_COMMON_Q_USEDLO, 4, ring + 0xc00);
    common_wr(bus, base, VIRTIO_PCI_COMMON_Q_USEDHI, 4, 0);
    common_wr(bus, base, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    common_wr(bus, base, VIRTIO_PCI_COMMON_STATUS, 1,
              VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
                  VIRTIO_CONFIG_S_DRIVER_OK);
}

/* BAR0 offsets the ops address: each area's start plus a small offset. */
static const uint32_t areas[] = {0, ISR_OFF, DEVICE_OFF, NOTIFY_OFF};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_machine m;
    struct dev d;
    struct reader r = {data, size};

    fuzz_machine_init(&m, RAM_SIZE, true);
    if (dev_create(&d, &m.fp) != 0 || pci_bus_add(&m.pb, &d.vp->pdev, DEVFN) != 0)
        abort();

    for (unsigned n = 0; n < MAX_OPS && r.left; n++) {
        unsigned op = (unsigned)take(&r, 1), sel = (unsigned)take(&r, 1);
        unsigned len = 1u << (op >> 4 & 3); /* 1, 2, 4, 8 */
        uint64_t v = 0, addr;

        switch (op & 15) {
        case 0: /* BAR0 write: common config, ISR, device config, notify */
        case 1:
            addr = bar_base(&m.pb, 0) + areas[sel >> 6] + (sel & 63);
            v = take(&r, len);
            hv_bus_access(&m.bus, HV_BUS_MMIO, addr, &v, len, true);
            break;
        case 2: /* BAR0 read */
            addr = bar_base(&m.pb, 0) + areas[sel >> 6] + (sel & 63);
            hv_bus_access(&m.bus, HV_BUS_MMIO, addr, &v, len, false);
            break;
        case 3: /* MSI-X table and PBA in BAR1 */
            addr = bar_base(&m.pb, 1) + (sel & 0x80 ? 0x800 : 0) + (sel & 0x7f);
            v = take(&r, len);
            hv_bus_access(&m.bus, HV_BUS_MMIO, addr, &v, len, op & 0x40);
            break;
        case 4: /* configuration space through 0xCF8/0xCFC (BARs, command, MSI-X control) */
            v = 0x80000000u | DEVFN << 8 | (sel & 0xfc);
            hv_bus_access(&m.bus, HV_BUS_PIO, 0xcf8, &v, 4, true);
            v = take(&r, 4);
            hv_bus_access(&m.bus, HV_BUS_PIO, 0xcfc + (sel & 3), &v, len > 4 ? 4 : len,
                          op & 0x40);
            break;
        case 5: { /* guest RAM: up to 255 bytes at an offset (rings, buffers, headers) */
            unsigned at = (unsigned)take(&r, 2), count = sel;
            for (unsigned i = 0; i < count && r.left; i++)
                m.fp.ram.host[(at + i) % RAM_SIZE] = (uint8_t)take(&r, 1);
            break;
        }
        case 6: { /* a descriptor: addr (2 bytes, in RAM), len, flags, next */
            unsigned q = sel >> 5 & 7, i = sel & 31;
            uint8_t *desc = m.fp.ram.host + RING_BASE + q * 0x1000 + i * 16;
            uint64_t a = take(&r, 2);
            uint32_t l = (uint32_t)take(&r, 2);
            uint16_t flags = (uint16_t)take(&r, 1), next = (uint16_t)take(&r, 1);
            memcpy(desc, &a, 8);
            memcpy(desc + 8, &l, 4);
            memcpy(desc + 12, &flags, 2);
            memcpy(desc + 14, &next, 2);
            break;
        }
        case 7: { /* the driver makes descriptor head available on queue q and kicks */
            unsigned q = sel >> 5 & 7;
            uint8_t *avail = m.fp.ram.host + RING_BASE + q * 0x1000 + 0x800;
            uint16_t idx, head = (uint16_t)take(&r, 1), qsize;
            memcpy(&idx, avail + 2, 2);
            qsize = (uint16_t)(sel & 31) + 1;
            memcpy(avail + 4 + 2 * (idx % qsize), &head, 2);
            idx++;
            memcpy(avail + 2, &idx, 2);
            v = 0;
            hv_bus_access(&m.bus, HV_BUS_MMIO, bar_base(&m.pb, 0) + NOTIFY_OFF + q * NOTIFY_MULTIPLIER,
                          &v, 2, true);
            break;
        }
        case 8: { /* bring a queue up the way a driver does */
            uint64_t features = take(&r, 4);
            /* With 0x40: only what the device offers, so that FEATURES_OK sticks and
             * feature-dependent paths (net's checksum and segmentation offloads) run. */
            if (op & 0x40)
                features &= d.vp->offered;
            bring_up(&m.bus, &m.pb, sel & 7, 1u << (sel >> 3 & 7), features);
            break;
        }
        case 9: { /* host input: a frame for net, keystrokes for the console */
            uint8_t buf[256];
            unsigned count = sel;
            for (unsigned i = 0; i < count; i++)
                buf[i] = (uint8_t)take(&r, 1);
            host_input(&d, buf, count);
            break;
        }
        case 10: /* direct configuration write (BAR moves, MSI-X enable and mask) */
            pci_bus_config_write(&m.pb, DEVFN, sel & 0xfc, 4, (uint32_t)take(&r, 4));
            break;
        case 11: /* a device reset, as on a guest reboot */
            hv_bus_reset(&m.bus);
            break;
        default: /* configuration read of any width */
            pci_bus_config_read(&m.pb, DEVFN, sel, len > 4 ? 4 : len);
            break;
        }
        io_thread_round(&d);
    }

    dev_destroy(&d);
    fuzz_machine_free(&m);
    return 0;
}
