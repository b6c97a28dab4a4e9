/*
 * libFuzzer harness for the 82540EM (devices/net/e1000.c) driven through the
 * machine's MMIO and port buses, as a hostile guest drives it: the input is
 * a program of register reads and writes (BAR0 wherever the guest put it,
 * IOADDR/IODATA in BAR1, PCI configuration space), writes into guest RAM
 * (rings, descriptors, frames, offload headers) and frames arriving from the
 * host. The tap is a datagram socketpair; the device's I/O thread is not
 * started: after each operation the harness does its work (e1000_service)
 * on this thread, so an input replays exactly, and drains what was sent.
 *
 * The platform is the unit tests' fake; guest RAM is one exactly-sized
 * malloc, so ASan sees any access outside it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/net/e1000.h"
#include "fuzz_machine.h"
#include "fuzz_reader.h"

#define RAM_SIZE (64u << 10)
#define MAX_OPS  512
#define DEVFN    (3 << 3)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The registers a driver touches; the op's selector indexes this or, past it, any offset. */
static const uint16_t regs[] = {
    0x0000, 0x0008, 0x0010, 0x0014, 0x0018, 0x0020, 0x0038, 0x00c0, 0x00c4, 0x00c8,
    0x00d0, 0x00d8, 0x0100, 0x0400, 0x2800, 0x2804, 0x2808, 0x2810, 0x2818, 0x3800,
    0x3804, 0x3808, 0x3810, 0x3818, 0x4074, 0x4088, 0x408c, 0x5200, 0x5400, 0x5404,
};
#define NR_REGS (sizeof(regs) / sizeof(regs[0]))

static void drain(int fd)
{
    static uint8_t buf[70000];

    while (recv(fd, buf, sizeof(buf), 0) > 0) {
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    static uint8_t frame[12 + 2048];
    struct fuzz_machine m;
    struct e1000 *e;
    struct reader r = {data, size};
    int sv[2];

    fuzz_machine_init(&m, RAM_SIZE, false);
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0 ||
        e1000_create_fd(&e, &m.fp.platform, sv[0], mac) != 0 ||
        pci_bus_add(&m.pb, e1000_pci(e), DEVFN) != 0)
        abort();
    pci_bus_config_write(&m.pb, DEVFN, 0x04, 2, 0x07); /* decoders and bus mastering on */

    for (unsigned n = 0; n < MAX_OPS && r.left; n++) {
        unsigned op = (unsigned)take(&r, 1), sel = (unsigned)take(&r, 1);
        unsigned len = 1u << (op >> 4 & 3); /* 1, 2, 4, 8 */
        uint64_t bar0 = pci_bus_config_read(&m.pb, DEVFN, 0x10, 4) & ~0xfu;
        uint16_t bar1 = (uint16_t)(pci_bus_config_read(&m.pb, DEVFN, 0x14, 4) & ~3u);
        uint64_t addr = bar0, v = 0;

        if ((op & 7) <= 2) /* a listed register, or any offset in the BAR */
            addr += sel < 0xe0 ? regs[sel % NR_REGS] : (take(&r, 3) & 0x1ffff);
        switch (op & 7) {
        case 0: /* MMIO write */
        case 1:
            v = take(&r, len);
            hv_bus_access(&m.bus, HV_BUS_MMIO, addr, &v, len, true);
            break;
        case 2: /* MMIO read */
            hv_bus_access(&m.bus, HV_BUS_MMIO, addr, &v, len, false);
            break;
        case 3: { /* guest RAM: up to 255 bytes at an offset (rings, descriptors, frames) */
            unsigned at = (unsigned)take(&r, 2), count = (unsigned)take(&r, 1);
            for (unsigned i = 0; i < count && r.left; i++)
                m.fp.ram.host[(at + i) % RAM_SIZE] = (uint8_t)take(&r, 1);
            break;
        }
        case 4: { /* a frame from the host: to us, broadcast or anything, of any length */
            unsigned flen = (unsigned)take(&r, 2) % (sizeof(frame) - 12);
            memset(frame, 0, sizeof(frame));
            if (sel & 1)
                memcpy(frame + 12, mac, 6);
            else if (sel & 2)
                memset(frame + 12, 0xff, 6);
            for (unsigned i = (sel & 3) ? 6 : 0; i < 64 && i < flen && r.left; i++)
                frame[12 + i] = (uint8_t)take(&r, 1);
            if (send(sv[1], frame, 12 + flen, 0) < 0) {
                /* the socket is full: the host side drops it, as a tap's queue would */
            }
            break;
        }
        case 5: /* the I/O BAR: IOADDR / IODATA */
            v = take(&r, 4);
            hv_bus_access(&m.bus, HV_BUS_PIO, bar1 + (sel & 7), &v, len > 4 ? 4 : len,
                          (sel & 8) != 0);
            break;
        case 6: /* PCI configuration space: BARs, command register (INTx disable) */
            v = take(&r, 4);
            pci_bus_config_write(&m.pb, DEVFN, sel & 0xfc, 4, (uint32_t)v);
            break;
        default: /* a PCI reset, as on a guest reboot */
            pci_bus_reset(&m.pb);
            break;
        }
        e1000_service(e);
        drain(sv[1]);
    }

    e1000_destroy(e);
    close(sv[1]);
    fuzz_machine_free(&m);
    return 0;
}
