/*
 * libFuzzer harness for the PIIX3 IDE controller (devices/legacy/piix_ide.c)
 * driven through the machine's port bus, as a hostile guest drives it: the
 * input is a program of port reads and writes (task files, control blocks,
 * the bus-master registers wherever BAR4 is, the 0xCF8/0xCFC configuration
 * mechanism) and writes into guest RAM (PRD tables and buffers for DMA).
 * Two small disks on the primary channel (the slave read-only) and one on
 * the secondary are memfds, emptied after an input that wrote to them so
 * that inputs reproduce.
 *
 * The platform is the unit tests' fake (tests/unit/hypervisor-core/
 * fake_platform.h): KVM's side, not the code under test. Guest RAM is one
 * exactly-sized malloc, so ASan sees DMA outside it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/legacy/piix_ide.h"
#include "fuzz_machine.h"
#include "fuzz_reader.h"

#define RAM_SIZE (64u << 10)
#define DISK_SECTORS 64
#define MAX_OPS 512

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct block_image img[3];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];

    (void)argc, (void)argv;
    for (unsigned i = 0; i < 3; i++) {
        int fd = memfd_create("fuzz-ide-disk", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, DISK_SECTORS * 512) != 0)
            abort();
        if (block_image_open(&img[i], "fuzz-ide-disk", fd, i == 1, err, sizeof(err)) != 0) {
            fprintf(stderr, "fuzz_piix_ide: %s\n", err);
            abort();
        }
        close(fd); /* block_image_open keeps its own descriptor */
    }
    return 0;
}

/* The ports a driver touches; the op's selector byte indexes this or the BAR4 block. */
static const uint16_t ports[] = {0x1f0, 0x1f1, 0x1f2, 0x1f3, 0x1f4, 0x1f5, 0x1f6, 0x1f7, 0x3f6,
                                 0x170, 0x171, 0x172, 0x173, 0x174, 0x175, 0x176, 0x177, 0x376,
                                 0xcf8, 0xcfc, 0xcfd, 0xcfe, 0xcff};
#define NR_PORTS (sizeof(ports) / sizeof(ports[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_machine m;
    struct piix_ide *ide;
    struct block_image *disks[4] = {0};
    struct reader r = {data, size};

    for (unsigned i = 0; i < 3; i++) {
        /* Emptied after a write, so that what one input wrote is not read by the next. */
        if (img[i].stats.write_ops &&
            (ftruncate(img[i].fd, 0) != 0 || ftruncate(img[i].fd, DISK_SECTORS * 512) != 0))
            abort();
        img[i].stats = (struct block_image_stats){0};
        disks[i] = &img[i];
    }
    fuzz_machine_init(&m, RAM_SIZE, false);
    if (piix_ide_create(&ide, &m.fp.platform, disks, NULL, &m.bus, &m.pb) != 0)
        abort();

    for (unsigned n = 0; n < MAX_OPS && r.left; n++) {
        unsigned op = take(&r, 1), sel = take(&r, 1);
        unsigned len = 1u << (op >> 4 & 3); /* 1, 2, 4 (and 8, which the bus must refuse) */
        uint16_t port;
        uint32_t v = 0;

        /* Port: a listed one, or one of BAR4's 16 wherever the guest has put BAR4. */
        if (sel < 0x80)
            port = ports[sel % NR_PORTS];
        else
            port = (uint16_t)((pci_bus_config_read(&m.pb, PIIX_IDE_DEVFN, 0x20, 4) & ~3u) + (sel & 15));
        switch (op & 7) {
        case 0: /* out */
        case 1:
            v = take(&r, len > 4 ? 4 : len);
            hv_bus_access(&m.bus, HV_BUS_PIO, port, &v, len > 4 ? 4 : len, true);
            break;
        case 2: /* in */
            hv_bus_access(&m.bus, HV_BUS_PIO, port, &v, len > 4 ? 4 : len, false);
            break;
        case 3: { /* a run of word ins, as rep insw does for a PIO sector (0: 256) */
            unsigned count = take(&r, 1);
            for (unsigned i = 0; i < (count ? count : 256); i++)
                hv_bus_access(&m.bus, HV_BUS_PIO, port, &v, 2, false);
            break;
        }
        case 4: { /* guest RAM: up to 255 bytes at an offset, e.g. a PRD table */
            unsigned at = take(&r, 2), count = take(&r, 1);
            for (unsigned i = 0; i < count && r.left; i++)
                m.fp.ram.host[(at + i) % RAM_SIZE] = (uint8_t)take(&r, 1);
            break;
        }
        case 5: /* PCI configuration space directly (BAR4, command register) */
            v = take(&r, 4);
            pci_bus_config_write(&m.pb, PIIX_IDE_DEVFN, sel & 0xfc, 4, v);
            break;
        case 6:
            pci_bus_config_read(&m.pb, PIIX_IDE_DEVFN, sel, len > 4 ? 4 : len);
            break;
        default: /* a device reset, as on a guest reboot */
            hv_bus_reset(&m.bus);
            break;
        }
    }

    piix_ide_destroy(ide);
    fuzz_machine_free(&m);
    return 0;
}
