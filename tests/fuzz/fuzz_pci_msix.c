/*
 * libFuzzer harness for PCI configuration space and MSI-X
 * (devices/pci/pci_bus.c, pci_device.c, msix.c, devices/legacy/pci_host.c)
 * as a guest's firmware and OS reach them: configuration mechanism #1
 * (0xCF8 address, 0xCFC-0xCFF data, any width and any function, present or
 * not), BAR sizing (all ones, read back) and moves, memory and I/O decoding
 * switched on and off, and accesses anywhere in the PCI memory and I/O
 * windows, which reach whichever BAR decodes there now: the MSI-X table and
 * PBA among them. Devices interrupt at times the input chooses (msix_notify),
 * so masking, pending bits and delivery on unmask are reached too.
 *
 * The functions on the bus, as the machine has them: the PIIX IDE
 * controller (an I/O BAR, no disks) at 00:01.0, virtio-rng (memory BARs,
 * MSI-X with two vectors) at 00:02.0 and virtio-console (three vectors) at
 * 00:03.0. Their I/O threads are not started: this harness is about
 * the bus and MSI-X; fuzz_virtio_* drive the devices. The platform is the
 * unit tests' fake.
 *
 * Input: a program of [op][sel][value...] operations (see the switch).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "devices/legacy/piix_ide.h"
#include "devices/virtio/virtio_console.h"
#include "devices/virtio/virtio_rng.h"
#include "fuzz_machine.h"
#include "fuzz_reader.h"

#define MAX_OPS 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void console_out(void *opaque, const uint8_t *buf, size_t len)
{
    (void)opaque, (void)buf, (void)len;
}

/* The functions the ops address by a selector's low bits: two real, one absent. */
static const unsigned devfns[] = {PIIX_IDE_DEVFN, 0x10, 0x18, 0x20};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_machine m;
    struct piix_ide *ide;
    struct block_image *disks[4] = {0};
    struct virtio_rng *rng;
    struct virtio_console *con;
    struct virtio_pci *vps[2];
    struct reader r = {data, size};

    fuzz_machine_init(&m, 4096, true);
    if (piix_ide_create(&ide, &m.fp.platform, disks, NULL, &m.bus, &m.pb) != 0 ||
        virtio_rng_create(&rng, &m.fp.platform) != 0 ||
        virtio_console_create(&con, &m.fp.platform, console_out, NULL) != 0)
        abort();
    vps[0] = virtio_rng_transport(rng);
    vps[1] = virtio_console_transport(con);
    if (pci_bus_add(&m.pb, &vps[0]->pdev, 0x10) != 0 || pci_bus_add(&m.pb, &vps[1]->pdev, 0x18) != 0)
        abort();

    for (unsigned n = 0; n < MAX_OPS && r.left; n++) {
        unsigned op = (unsigned)take(&r, 1), sel = (unsigned)take(&r, 1);
        unsigned len = 1u << (op >> 4 & 3); /* 1, 2, 4 (8: the bus must refuse it) */
        bool write = op & 0x40;
        uint64_t v = 0;

        switch (op & 7) {
        case 0: /* 0xCF8: enable bit, a function of ours or another, a register */
            v = 0x80000000u | devfns[sel & 3] << 8 | (sel & 0xfc) | (take(&r, 1) & 0x3) << 8;
            if (op & 0x80)
                v = take(&r, 4); /* anything at all, bus numbers and the enable bit included */
            hv_bus_access(&m.bus, HV_BUS_PIO, 0xcf8, &v, 4, true);
            break;
        case 1: /* 0xCFC-0xCFF, any width */
            if (write)
                v = take(&r, len);
            hv_bus_access(&m.bus, HV_BUS_PIO, 0xcfc + (sel & 3), &v, len, write);
            break;
        case 2: { /* BAR sizing and moving, as firmware does it: all ones, read, write */
            unsigned devfn = devfns[sel & 3], reg = 0x10 + 4 * (sel >> 2 & 7);
            pci_bus_config_write(&m.pb, devfn, reg, 4, 0xffffffffu);
            pci_bus_config_read(&m.pb, devfn, reg, 4);
            pci_bus_config_write(&m.pb, devfn, reg, 4, (uint32_t)take(&r, 4));
            break;
        }
        case 3: /* the command register: decoding and bus mastering on or off */
            pci_bus_config_write(&m.pb, devfns[sel & 3], 0x04, 2, (uint32_t)take(&r, 2));
            break;
        case 4: { /* the memory window, where BARs (MSI-X table, PBA, virtio regs) decode */
            uint64_t off = take(&r, 3) | (uint64_t)(sel & 0x3f) << 24;
            if (write)
                v = take(&r, len);
            hv_bus_access(&m.bus, HV_BUS_MMIO, PCI_MMIO_WINDOW_BASE + off, &v, len, write);
            break;
        }
        case 5: { /* the I/O window (the IDE bus-master BAR, wherever it is) */
            uint64_t off = take(&r, 2) & 0x3fff;
            if (write)
                v = take(&r, len);
            hv_bus_access(&m.bus, HV_BUS_PIO, PCI_PIO_WINDOW_BASE + off, &v, len, write);
            break;
        }
        case 6: { /* a device interrupts on one of its vectors (any number) */
            struct virtio_pci *vp = vps[sel & 1];
            pthread_mutex_lock(&vp->lock);
            msix_notify(&vp->msix, sel >> 1);
            pthread_mutex_unlock(&vp->lock);
            break;
        }
        default: /* a reset of everything, as on a reboot */
            if (sel & 1)
                hv_bus_reset(&m.bus);
            else
                pci_bus_config_read(&m.pb, devfns[sel >> 1 & 3], take(&r, 1), len > 4 ? 4 : len);
            break;
        }
    }

    virtio_console_destroy(con);
    virtio_rng_destroy(rng);
    piix_ide_destroy(ide);
    fuzz_machine_free(&m);
    return 0;
}
