/*
 * The 82540EM (e1000) through the machine's MMIO bus and PCI configuration
 * space, as the Linux e1000 driver drives it: the EEPROM bit-banged and
 * through EERD, reset and the PHY's link, interrupt causes and INTx,
 * transmit of legacy and context + data descriptors with checksum offload
 * and TCP segmentation, receive into descriptors, and the guest mistakes
 * (or attacks) that must end in a dropped, counted frame and nothing worse.
 * The tap is one end of a datagram socketpair; the I/O thread is not
 * started, e1000_service() does its work on the test's thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/net/e1000.h"
#include "devices/pci/pci_bus.h"
#include "fake_platform.h"

#define RAM_SIZE (1u << 20)
#define SLOT     3
#define GSI      (PCI_INTX_GSI_BASE + SLOT) /* pci_intx_gsi(3, INTA) */
#define HDR      12                         /* the tap's virtio-net header */

#define CTRL   0x0000
#define STATUS 0x0008
#define EECD   0x0010
#define EERD   0x0014
#define MDIC   0x0020
#define ICR    0x00c0
#define ICS    0x00c8
#define IMS    0x00d0
#define IMC    0x00d8
#define RCTL   0x0100
#define TCTL   0x0400
#define RDBAL  0x2800
#define RDBAH  0x2804
#define RDLEN  0x2808
#define RDH    0x2810
#define RDT    0x2818
#define TDBAL  0x3800
#define TDBAH  0x3804
#define TDLEN  0x3808
#define TDH    0x3810
#define TDT    0x3818
#define RNBC   0x40a0
#define ROC    0x40ac
#define GPRC   0x4074
#define GPTC   0x4080
#define TSCTC  0x40f8
#define TSCTFC 0x40fc
#define MTA    0x5200
#define RAL0   0x5400
#define RAH0   0x5404

#define ICR_TXDW   0x01u
#define ICR_TXQE   0x02u
#define ICR_LSC    0x04u
#define ICR_RXDMT0 0x10u
#define ICR_RXO    0x40u
#define ICR_RXT0   0x80u

#define TX_RING  0x1000u
#define RX_RING  0x2000u
#define TX_BUF   0x10000u
#define RX_BUFS  0x40000u
#define RING_LEN 8

static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

struct fixture {
    struct fake_platform fp;
    struct hv_bus bus;
    struct pci_bus pb;
    struct e1000 *e;
    int peer; /* the host side of the "tap" */
    uint64_t mmio;
    uint16_t io;
};

static struct fixture *new_fixture(const uint8_t *mac_addr)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int sv[2];

    assert_non_null(f);
    fake_platform_init(&f->fp);
    fake_platform_add_ram(&f->fp, RAM_SIZE);
    assert_int_equal(hv_bus_init(&f->bus), 0);
    pci_bus_init(&f->pb, &f->fp.platform);
    assert_int_equal(pci_bus_register_windows(&f->pb, &f->bus), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(e1000_create_fd(&f->e, &f->fp.platform, sv[0], mac_addr), 0);
    f->peer = sv[1];
    assert_int_equal(pci_bus_add(&f->pb, e1000_pci(f->e), SLOT << 3), 0);
    f->mmio = pci_bus_config_read(&f->pb, SLOT << 3, 0x10, 4) & ~0xfu;
    f->io = (uint16_t)(pci_bus_config_read(&f->pb, SLOT << 3, 0x14, 4) & ~3u);
    /* What a driver does first: bus mastering on (firmware enabled the decoders). */
    pci_bus_config_write(&f->pb, SLOT << 3, 0x04, 2,
                         pci_bus_config_read(&f->pb, SLOT << 3, 0x04, 2) | PCI_COMMAND_MASTER);
    return f;
}

static int setup(void **state)
{
    *state = new_fixture(mac);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    e1000_destroy(f->e);
    close(f->peer);
    hv_bus_destroy(&f->bus);
    fake_platform_free_ram(&f->fp);
    free(f);
    return 0;
}

static uint32_t rd(struct fixture *f, unsigned off)
{
    uint32_t v = 0;

    assert_true(hv_bus_access(&f->bus, HV_BUS_MMIO, f->mmio + off, &v, 4, false));
    return v;
}

static void wr(struct fixture *f, unsigned off, uint32_t v)
{
    assert_true(hv_bus_access(&f->bus, HV_BUS_MMIO, f->mmio + off, &v, 4, true));
}

static uint8_t *ram(struct fixture *f, uint64_t gpa)
{
    return f->fp.ram.host + gpa;
}

static struct hv_nic_stats stats(struct fixture *f)
{
    struct hv_nic_stats s;

    e1000_get_stats(f->e, &s);
    return s;
}

/* --- Checksum helpers (independent of the device's) ----------------------- */

static uint32_t sum16(uint32_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | (i + 1 < len ? p[i + 1] : 0));
    return sum;
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Pseudo-header sum for an IPv4 frame at f (Ethernet header first), L4 length len. */
static uint32_t pseudo(const uint8_t *f, unsigned proto, unsigned len)
{
    return sum16(0, f + 26, 8) + proto + len;
}

static void assert_ip_csum_ok(const uint8_t *f)
{
    assert_int_equal(fold(sum16(0, f + 14, 20)), 0xffff);
}

static void assert_l4_csum_ok(const uint8_t *f, size_t len, unsigned proto)
{
    size_t l4 = len - 34;

    assert_int_equal(fold(pseudo(f, proto, (unsigned)l4) + sum16(0, f + 34, l4)), 0xffff);
}

/*
 * An Ethernet + IPv4 + TCP (proto 6, 20-byte header) or UDP (17) frame with
 * payload bytes i * 7 + 3; IP and L4 checksums zero. Returns its length.
 */
static size_t make_frame(uint8_t *f, unsigned proto, size_t payload)
{
    size_t l4h = proto == 6 ? 20 : 8, len = 34 + l4h + payload;

    memset(f, 0, len);
    memcpy(f, "\x52\x54\x00\xaa\xbb\xcc", 6);
    memcpy(f + 6, mac, 6);
    put16(f + 12, 0x0800);
    f[14] = 0x45;
    put16(f + 16, (uint16_t)(len - 14));
    put16(f + 18, 0x1234); /* identification */
    f[22] = 64;
    f[23] = (uint8_t)proto;
    memcpy(f + 26, "\x0a\x00\x00\x02\x0a\x00\x00\x01", 8);
    put16(f + 34, 40000);
    put16(f + 36, 5201);
    if (proto == 6) {
        memcpy(f + 38, "\x00\x01\x00\x00", 4); /* sequence 65536 */
        f[46] = 5 << 4;
        f[47] = 0x19; /* ACK, PSH, FIN */
        put16(f + 48, 512);
    } else {
        put16(f + 38, (uint16_t)(8 + payload));
    }
    for (size_t i = 0; i < payload; i++)
        f[34 + l4h + i] = (uint8_t)(i * 7 + 3);
    return len;
}

/* --- Rings ----------------------------------------------------------------- */

static void tx_ring(struct fixture *f, uint64_t base, uint32_t len_bytes)
{
    wr(f, TDBAL, (uint32_t)base);
    wr(f, TDBAH, (uint32_t)(base >> 32));
    wr(f, TDLEN, len_bytes);
    wr(f, TDH, 0);
    wr(f, TDT, 0);
    wr(f, TCTL, 0x0103f0fa); /* EN, PSP, collision settings as Linux writes them */
}

static void put_desc(struct fixture *f, uint64_t ring, unsigned i, uint64_t addr, uint32_t lower,
                     uint32_t upper)
{
    uint8_t *d = ram(f, ring + 16u * i);

    memcpy(d, &addr, 8);
    memcpy(d + 8, &lower, 4);
    memcpy(d + 12, &upper, 4);
}

static void legacy(struct fixture *f, unsigned i, uint64_t addr, uint16_t len, uint8_t cmd,
                   uint8_t cso, uint8_t css)
{
    put_desc(f, TX_RING, i, addr, (uint32_t)cmd << 24 | (uint32_t)cso << 16 | len,
             (uint32_t)css << 8);
}

#define DEXT 0x20u
#define EOP  0x01u
#define RS   0x08u
#define IC   0x04u
#define TSE  0x04u

static void context(struct fixture *f, unsigned i, uint8_t ipcss, uint8_t ipcso, uint16_t ipcse,
                    uint8_t tucss, uint8_t tucso, uint16_t tucse, uint8_t tucmd, uint32_t paylen,
                    uint8_t hdr_len, uint16_t mss)
{
    uint8_t *d = ram(f, TX_RING + 16u * i);
    uint32_t lower = (uint32_t)(tucmd | DEXT) << 24 | (paylen & 0xfffff);
    uint32_t upper = (uint32_t)mss << 16 | (uint32_t)hdr_len << 8;

    d[0] = ipcss;
    d[1] = ipcso;
    d[2] = (uint8_t)ipcse;
    d[3] = (uint8_t)(ipcse >> 8);
    d[4] = tucss;
    d[5] = tucso;
    d[6] = (uint8_t)tucse;
    d[7] = (uint8_t)(tucse >> 8);
    memcpy(d + 8, &lower, 4);
    memcpy(d + 12, &upper, 4);
}

static void data(struct fixture *f, unsigned i, uint64_t addr, uint32_t len, uint8_t dcmd,
                 uint8_t popts)
{
    put_desc(f, TX_RING, i, addr, (uint32_t)(dcmd | DEXT) << 24 | 1u << 20 | (len & 0xfffff),
             (uint32_t)popts << 8);
}

static uint8_t tx_status(struct fixture *f, unsigned i)
{
    return ram(f, TX_RING + 16u * i)[12];
}

/* One frame from the tap's host side, header stripped; -1 if none. */
static ssize_t take(struct fixture *f, uint8_t *buf, size_t size)
{
    uint8_t tmp[70000];
    ssize_t n = recv(f->peer, tmp, sizeof(tmp), 0);

    if (n < 0)
        return -1;
    assert_true(n >= HDR);
    for (unsigned i = 0; i < HDR; i++)
        assert_int_equal(tmp[i], 0); /* no offloads asked of the tap */
    assert_true((size_t)(n - HDR) <= size);
    memcpy(buf, tmp + HDR, (size_t)(n - HDR));
    return n - HDR;
}

static void rx_ring(struct fixture *f, unsigned n, uint32_t rctl)
{
    for (unsigned i = 0; i < n; i++)
        put_desc(f, RX_RING, i, RX_BUFS + 0x4000u * i, 0, 0);
    wr(f, RDBAL, RX_RING);
    wr(f, RDBAH, 0);
    wr(f, RDLEN, n * 16);
    wr(f, RDH, 0);
    wr(f, RDT, n - 1);
    wr(f, RCTL, rctl);
}

#define RCTL_EN    0x02u
#define RCTL_UPE   0x08u
#define RCTL_MPE   0x10u
#define RCTL_LPE   0x20u
#define RCTL_BAM   0x8000u
#define RCTL_SECRC 0x04000000u
#define RCTL_B256  0x30000u

/* Sends frame (len bytes) into the "tap" toward the guest. */
static void inject(struct fixture *f, const uint8_t *frame, size_t len)
{
    uint8_t buf[70000] = {0};

    memcpy(buf + HDR, frame, len);
    assert_int_equal(send(f->peer, buf, HDR + len, 0), (ssize_t)(HDR + len));
}

static void rx_desc(struct fixture *f, unsigned i, uint16_t *len, uint8_t *status, uint8_t *err)
{
    const uint8_t *d = ram(f, RX_RING + 16u * i);

    memcpy(len, d + 8, 2);
    *status = d[12];
    *err = d[13];
}

/* --- PCI --------------------------------------------------------------------- */

static void test_pci_config(void **state)
{
    struct fixture *f = *state;
    unsigned devfn = SLOT << 3;

    assert_int_equal(pci_bus_config_read(&f->pb, devfn, 0, 4), 0x100e8086);
    assert_int_equal(pci_bus_config_read(&f->pb, devfn, 0x08, 4) >> 8, 0x020000);
    assert_int_equal(pci_bus_config_read(&f->pb, devfn, 0x2c, 4), 0x001e8086);
    assert_int_equal(pci_bus_config_read(&f->pb, devfn, 0x3d, 1), 1); /* INTA */
    assert_int_equal(pci_bus_config_read(&f->pb, devfn, 0x3c, 1), GSI);
    /* No capability list: no MSI, as on the real part. */
    assert_int_equal(pci_bus_config_read(&f->pb, devfn, 0x06, 2) & 0x10, 0);
    /* BAR sizing: 128 KiB of memory, 8 I/O ports. */
    pci_bus_config_write(&f->pb, devfn, 0x10, 4, 0xffffffff);
    assert_int_equal(pci_bus_config_read(&f->pb, devfn, 0x10, 4), 0xfffe0000);
    pci_bus_config_write(&f->pb, devfn, 0x14, 4, 0xffffffff);
    assert_int_equal(pci_bus_config_read(&f->pb, devfn, 0x14, 4), 0xfffffff9);
    pci_bus_config_write(&f->pb, devfn, 0x10, 4, (uint32_t)f->mmio);
    pci_bus_config_write(&f->pb, devfn, 0x14, 4, f->io);
    assert_int_equal(rd(f, STATUS) & 3, 3);
}

/* IOADDR / IODATA reach the same registers. */
static void test_io_bar(void **state)
{
    struct fixture *f = *state;
    uint32_t v = STATUS;

    assert_true(hv_bus_access(&f->bus, HV_BUS_PIO, f->io, &v, 4, true));
    v = 0;
    assert_true(hv_bus_access(&f->bus, HV_BUS_PIO, f->io, &v, 4, false));
    assert_int_equal(v, STATUS);
    assert_true(hv_bus_access(&f->bus, HV_BUS_PIO, f->io + 4, &v, 4, false));
    assert_int_equal(v, rd(f, STATUS));
    v = IMS;
    hv_bus_access(&f->bus, HV_BUS_PIO, f->io, &v, 4, true);
    v = ICR_RXT0;
    hv_bus_access(&f->bus, HV_BUS_PIO, f->io + 4, &v, 4, true);
    assert_int_equal(rd(f, IMS), ICR_RXT0);
    /* IOADDR past the register space, odd widths: nothing happens. */
    v = 0xfffffffc;
    hv_bus_access(&f->bus, HV_BUS_PIO, f->io, &v, 4, true);
    hv_bus_access(&f->bus, HV_BUS_PIO, f->io + 4, &v, 4, true);
    hv_bus_access(&f->bus, HV_BUS_PIO, f->io + 5, &v, 1, false);
    hv_bus_access(&f->bus, HV_BUS_PIO, f->io + 2, &v, 2, true);
}

/* --- EEPROM -------------------------------------------------------------------- */

#define EE_SK  0x1u
#define EE_CS  0x2u
#define EE_DI  0x4u
#define EE_DO  0x8u
#define EE_REQ 0x40u
#define EE_GNT 0x80u

static void ee_clock(struct fixture *f, uint32_t eecd)
{
    wr(f, EECD, eecd | EE_SK);
    wr(f, EECD, eecd);
}

/* A Microwire READ the way Linux's e1000_read_eeprom bit-bangs it. */
static uint16_t ee_read_word(struct fixture *f, unsigned addr)
{
    uint32_t eecd = EE_REQ;
    uint32_t cmd = 0x6u << 6 | addr; /* READ opcode 110b, 6 address bits */
    uint16_t v = 0;

    wr(f, EECD, eecd);
    assert_true(rd(f, EECD) & EE_GNT);
    eecd |= EE_CS;
    wr(f, EECD, eecd);
    for (int bit = 8; bit >= 0; bit--) {
        uint32_t di = (cmd >> bit) & 1 ? EE_DI : 0;
        wr(f, EECD, eecd | di);
        ee_clock(f, eecd | di);
    }
    for (int i = 0; i < 16; i++) {
        wr(f, EECD, eecd | EE_SK);
        v = (uint16_t)(v << 1 | ((rd(f, EECD) & EE_DO) ? 1 : 0));
        wr(f, EECD, eecd);
    }
    wr(f, EECD, 0); /* deselect, release */
    return v;
}

static uint16_t eerd_read_word(struct fixture *f, unsigned addr)
{
    uint32_t v;

    wr(f, EERD, addr << 8 | 1);
    v = rd(f, EERD);
    assert_true(v & 0x10); /* done */
    assert_int_equal((v >> 8) & 0xff, addr);
    return (uint16_t)(v >> 16);
}

static void test_eeprom(void **state)
{
    struct fixture *f = *state;
    uint16_t sum = 0, w[64];

    for (unsigned i = 0; i < 64; i++) {
        w[i] = ee_read_word(f, i);
        assert_int_equal(eerd_read_word(f, i), w[i]);
        sum = (uint16_t)(sum + w[i]);
    }
    assert_int_equal(sum, 0xbaba);
    assert_int_equal(w[0], 0x5452);
    assert_int_equal(w[1], 0x1200);
    assert_int_equal(w[2], 0x5634);
    assert_int_equal(w[0x0d], 0x100e);
    assert_int_equal(w[0x0e], 0x8086);
    /* Presence is reported; EERD past the part reads all ones. */
    assert_true(rd(f, EECD) & 0x100);
    assert_int_equal(eerd_read_word(f, 200), 0xffff);
}

/* --- Reset, PHY, interrupts ---------------------------------------------------------- */

static uint16_t mdic(struct fixture *f, unsigned phy, unsigned reg, bool write, uint16_t v,
                     bool *error)
{
    uint32_t r;

    wr(f, MDIC, (write ? 0x04000000u : 0x08000000u) | phy << 21 | reg << 16 | v);
    r = rd(f, MDIC);
    assert_true(r & 0x10000000u); /* ready at once */
    *error = r & 0x40000000u;
    return (uint16_t)r;
}

static void test_reset_link_phy(void **state)
{
    struct fixture *f = *state;
    bool error;

    /* After reset: link up at 1000/full, LSC pending but masked, line low. */
    assert_int_equal(rd(f, STATUS) & 0xc3, 0x83);
    assert_int_equal(f->fp.irq_level[GSI], 0);
    wr(f, IMS, ICR_LSC);
    assert_int_equal(f->fp.irq_level[GSI], 1);
    assert_int_equal(rd(f, ICR), ICR_LSC);
    assert_int_equal(f->fp.irq_level[GSI], 0); /* read to clear deasserts */
    assert_int_equal(rd(f, ICR), 0);

    assert_int_equal(mdic(f, 1, 2, false, 0, &error), 0x0141);
    assert_false(error);
    assert_int_equal(mdic(f, 1, 3, false, 0, &error) & 0xfff0, 0x0c20); /* M88E1011 */
    assert_int_equal(mdic(f, 1, 1, false, 0, &error) & 0x24, 0x24);     /* link, autoneg complete */
    mdic(f, 2, 1, false, 0, &error);
    assert_true(error);                  /* only PHY address 1 answers */
    mdic(f, 1, 0, true, 0x1340, &error); /* restart autonegotiation */
    assert_int_equal(mdic(f, 1, 0, false, 0, &error), 0x1140);
    mdic(f, 1, 4, true, 0x01e1, &error);
    assert_int_equal(mdic(f, 1, 4, false, 0, &error), 0x01e1);
    mdic(f, 1, 0, true, 0x8000, &error); /* PHY reset: self-clearing, defaults back */
    assert_int_equal(mdic(f, 1, 0, false, 0, &error), 0x1140);
    mdic(f, 1, 1, true, 0, &error); /* read-only status */
    assert_int_equal(mdic(f, 1, 1, false, 0, &error) & 0x4, 0x4);

    /* A device reset: IMS cleared, LSC pending again, the receive address reloaded. */
    wr(f, RAL0, 0);
    wr(f, CTRL, rd(f, CTRL) | 0x04000000u);
    assert_int_equal(rd(f, CTRL) & 0x04000000u, 0);
    assert_int_equal(rd(f, IMS), 0);
    assert_int_equal(rd(f, RAL0), 0x12005452);
    assert_int_equal(rd(f, RAH0), 0x80005634);
    assert_int_equal(rd(f, ICR), ICR_LSC);
}

static void test_interrupt_registers(void **state)
{
    struct fixture *f = *state;

    rd(f, ICR);
    wr(f, ICS, ICR_RXT0 | ICR_TXDW);
    assert_int_equal(f->fp.irq_level[GSI], 0); /* masked */
    wr(f, IMS, ICR_TXDW);
    assert_int_equal(f->fp.irq_level[GSI], 1);
    wr(f, IMC, ICR_TXDW);
    assert_int_equal(f->fp.irq_level[GSI], 0);
    wr(f, IMS, ICR_RXT0 | ICR_TXDW);
    assert_int_equal(f->fp.irq_level[GSI], 1);
    wr(f, ICR, ICR_TXDW); /* write one to clear */
    assert_int_equal(f->fp.irq_level[GSI], 1);
    wr(f, ICR, ICR_RXT0);
    assert_int_equal(f->fp.irq_level[GSI], 0);
    assert_int_equal(rd(f, IMS), ICR_RXT0 | ICR_TXDW);
    assert_int_equal(rd(f, IMC), 0); /* write-only */
    /* INTx disable in the command register holds the line low; enabling again raises it. */
    wr(f, ICS, ICR_RXT0);
    assert_int_equal(f->fp.irq_level[GSI], 1);
    pci_bus_config_write(&f->pb, SLOT << 3, 0x04, 2,
                         pci_bus_config_read(&f->pb, SLOT << 3, 0x04, 2) | 0x400);
    assert_int_equal(f->fp.irq_level[GSI], 0);
    pci_bus_config_write(&f->pb, SLOT << 3, 0x04, 2,
                         pci_bus_config_read(&f->pb, SLOT << 3, 0x04, 2) & ~0x400u);
    assert_int_equal(f->fp.irq_level[GSI], 1);
    rd(f, ICR);
    assert_int_equal(f->fp.irq_level[GSI], 0);
}

/* Odd widths and offsets never crash and never reach past the register file. */
static void test_mmio_widths(void **state)
{
    struct fixture *f = *state;
    uint64_t v = ~0ull;

    wr(f, IMS, 0x10);
    hv_bus_access(&f->bus, HV_BUS_MMIO, f->mmio + IMS + 1, &v, 1, false);
    assert_int_equal(v & 0xff, 0);
    v = 0;
    hv_bus_access(&f->bus, HV_BUS_MMIO, f->mmio + IMS, &v, 2, false);
    assert_int_equal(v, 0x10);
    v = 0x0102030405060708ull;
    hv_bus_access(&f->bus, HV_BUS_MMIO, f->mmio + RDBAL, &v, 8, true);
    assert_int_equal(rd(f, RDBAL), 0x05060708);
    assert_int_equal(rd(f, RDBAH), 0x01020304);
    v = 0;
    hv_bus_access(&f->bus, HV_BUS_MMIO, f->mmio + RDBAL, &v, 8, false);
    assert_int_equal(v, 0x0102030405060708ull);
    hv_bus_access(&f->bus, HV_BUS_MMIO, f->mmio + 0x1fffe, &v, 2, true);
    hv_bus_access(&f->bus, HV_BUS_MMIO, f->mmio + 0x1fffc, &v, 4, false);
    assert_int_equal(v & 0xffffffff, 0);
    hv_bus_access(&f->bus, HV_BUS_MMIO, f->mmio + 0x1fff8, &v, 8, true);
    hv_bus_access(&f->bus, HV_BUS_MMIO, f->mmio + 3, &v, 2, true); /* straddles two registers */
    hv_bus_access(&f->bus, HV_BUS_MMIO, f->mmio + 6, &v, 4, false);
    /* A byte write merges without the read side effect of ICR. */
    wr(f, ICS, ICR_RXT0);
    v = 0;
    hv_bus_access(&f->bus, HV_BUS_MMIO, f->mmio + IMS, &v, 1, true);
    assert_int_equal(rd(f, ICR) & ICR_RXT0, ICR_RXT0);
}

/* --- Transmit ----------------------------------------------------------------------- */

static void test_tx_legacy_checksum(void **state)
{
    struct fixture *f = *state;
    uint8_t *fr = ram(f, TX_BUF), out[2048];
    size_t len = make_frame(fr, 17, 100);

    /* The driver seeds the UDP checksum with the pseudo-header; IC finishes it. */
    put16(fr + 40, fold(pseudo(fr, 17, (unsigned)(len - 34))));
    fr[24] = fr[25] = 0;
    put16(fr + 24, (uint16_t)~fold(sum16(0, fr + 14, 20)));
    rd(f, ICR);
    wr(f, IMS, ICR_TXDW);
    tx_ring(f, TX_RING, RING_LEN * 16);
    /* Two descriptors: the first 20 bytes, then the rest with EOP, RS, IC. */
    legacy(f, 0, TX_BUF, 20, 0, 0, 0);
    legacy(f, 1, TX_BUF + 20, (uint16_t)(len - 20), EOP | RS | IC, 40, 34);
    wr(f, TDT, 2);
    e1000_service(f->e);
    assert_int_equal(take(f, out, sizeof(out)), (ssize_t)len);
    assert_l4_csum_ok(out, len, 17);
    assert_ip_csum_ok(out);
    assert_memory_equal(out + 42, fr + 42, 100);
    assert_int_equal(rd(f, TDH), 2);
    assert_int_equal(tx_status(f, 0) & 1, 0); /* no RS: no write-back */
    assert_int_equal(tx_status(f, 1) & 1, 1);
    assert_int_equal(f->fp.irq_level[GSI], 1);
    assert_int_equal(rd(f, ICR) & (ICR_TXDW | ICR_TXQE), ICR_TXDW | ICR_TXQE);
    assert_int_equal(f->fp.irq_level[GSI], 0);
    assert_int_equal(stats(f).tx_packets, 1);
    assert_int_equal(stats(f).tx_bytes, len);
    /* Statistics registers clear on read. */
    assert_int_equal(rd(f, GPTC), 1);
    assert_int_equal(rd(f, GPTC), 0);
    assert_int_equal(take(f, out, sizeof(out)), -1);
}

/* I/O limits: a packet past its limiter waits in the ring (TDH stays, no error) until the
 * limiter refills; the vCPU's TDT write never waits. 10 packets/s, a burst of 1. */
static void test_tx_limits_delay(void **state)
{
    struct fixture *f = *state;
    struct hv_io_limits ten = {.ops_per_s = 10, .burst_ops = 1};
    struct rate_limiter tx;
    uint8_t *fr = ram(f, TX_BUF), out[2048];
    size_t len = make_frame(fr, 17, 100);
    uint64_t ns, events;

    rate_limiter_init(&tx, &ten, rate_limiter_now_ns());
    e1000_set_limits(f->e, &tx, NULL);
    tx_ring(f, TX_RING, RING_LEN * 16);
    legacy(f, 0, TX_BUF, (uint16_t)len, EOP | RS, 0, 0);
    legacy(f, 1, TX_BUF, (uint16_t)len, EOP | RS, 0, 0);
    wr(f, TDT, 2);
    e1000_service(f->e);
    assert_int_equal(take(f, out, sizeof(out)), (ssize_t)len);
    assert_int_equal(take(f, out, sizeof(out)), -1);
    assert_int_equal(rd(f, TDH), 1);
    usleep(120000);
    e1000_service(f->e);
    assert_int_equal(take(f, out, sizeof(out)), (ssize_t)len);
    assert_int_equal(rd(f, TDH), 2);
    assert_int_equal(stats(f).tx_packets, 2);
    rate_limiter_stats(&tx, rate_limiter_now_ns(), &ns, &events);
    assert_int_equal(events, 1);
    assert_true(ns >= 90000000ull);
    e1000_set_limits(f->e, NULL, NULL);
    rate_limiter_destroy(&tx);
}

static void test_tx_context_data_checksums(void **state)
{
    struct fixture *f = *state;
    uint8_t *fr = ram(f, TX_BUF), out[2048];
    size_t len = make_frame(fr, 6, 333);

    /* Non-TSO offload as Linux's e1000_tx_csum sets it up; IXSM on top. */
    put16(fr + 50, fold(pseudo(fr, 6, (unsigned)(len - 34))));
    tx_ring(f, TX_RING, RING_LEN * 16);
    context(f, 0, 14, 24, 33, 34, 50, 0, 0x02 | 0x01 | RS, 0, 0, 0);
    data(f, 1, TX_BUF, 54, 0, 0x3);
    data(f, 2, TX_BUF + 54, (uint32_t)(len - 54), EOP | RS, 0);
    wr(f, TDT, 3);
    e1000_service(f->e);
    assert_int_equal(take(f, out, sizeof(out)), (ssize_t)len);
    assert_ip_csum_ok(out);
    assert_l4_csum_ok(out, len, 6);
    assert_int_equal(tx_status(f, 0) & 1, 1); /* the context descriptor asked for RS too */
    assert_int_equal(tx_status(f, 2) & 1, 1);
    assert_int_equal(rd(f, TDH), 3);
}

static void test_tx_tso(void **state)
{
    struct fixture *f = *state;
    uint8_t *fr = ram(f, TX_BUF), out[2048];
    size_t payload = 3000, len = make_frame(fr, 6, payload), off = 0;
    const unsigned mss = 1000, hdr = 54;

    /* What Linux's e1000_tso leaves: IP length and checksum 0, TCP seeded with length 0. */
    put16(fr + 16, 0);
    put16(fr + 50, fold(pseudo(fr, 6, 0)));
    tx_ring(f, TX_RING, RING_LEN * 16);
    context(f, 0, 14, 24, 33, 34, 50, 0, 0x02 | 0x01 | TSE, (uint32_t)payload, hdr, mss);
    data(f, 1, TX_BUF, hdr, TSE, 0x3);
    data(f, 2, TX_BUF + hdr, 1500, TSE, 0);
    data(f, 3, TX_BUF + hdr + 1500, (uint32_t)(len - hdr - 1500), TSE | EOP | RS, 0);
    wr(f, TDT, 4);
    e1000_service(f->e);
    for (unsigned s = 0; s < 3; s++) {
        size_t seg = hdr + mss;
        assert_int_equal(take(f, out, sizeof(out)), (ssize_t)seg);
        assert_int_equal(be16(out + 16), seg - 14);   /* IP total length */
        assert_int_equal(be16(out + 18), 0x1234 + s); /* identification */
        assert_ip_csum_ok(out);
        assert_l4_csum_ok(out, seg, 6);
        assert_int_equal(be16(out + 38), 1); /* sequence 65536 + offset */
        assert_int_equal(be16(out + 40), (uint16_t)off);
        assert_int_equal(out[47], s == 2 ? 0x19 : 0x10); /* FIN, PSH on the last only */
        assert_memory_equal(out + hdr, fr + hdr + off, mss);
        off += mss;
    }
    assert_int_equal(take(f, out, sizeof(out)), -1);
    assert_int_equal(stats(f).tx_packets, 3);
    assert_int_equal(rd(f, TSCTC), 1);
    assert_int_equal(rd(f, TDH), 4);
}

/* A TSO context whose headers lie: dropped, counted, nothing sent. */
static void test_tx_tso_lies(void **state)
{
    struct fixture *f = *state;
    uint8_t *fr = ram(f, TX_BUF), out[2048];
    size_t len = make_frame(fr, 6, 2000);
    static const struct {
        uint8_t ipcss, ipcso, tucss, tucso, hdr_len;
        uint16_t mss;
    } lies[] = {
        {14, 24, 34, 50, 54, 0},     /* MSS 0 */
        {14, 24, 34, 50, 54, 16},    /* a thousand tiny segments */
        {14, 24, 34, 50, 255, 500},  /* headers longer than... fine, but tucso ok */
        {14, 24, 34, 250, 54, 500},  /* checksum offset past the headers */
        {200, 24, 34, 50, 54, 500},  /* IP header past the headers */
        {14, 24, 10, 50, 54, 500},   /* TCP before IP */
        {14, 24, 34, 50, 8, 500},    /* headers shorter than Ethernet */
        {14, 24, 34, 50, 54, 20000}, /* segments larger than a frame */
    };

    tx_ring(f, TX_RING, 64 * 16);
    for (unsigned i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        unsigned at = (unsigned)rd(f, TDT);
        context(f, at, lies[i].ipcss, lies[i].ipcso, 0, lies[i].tucss, lies[i].tucso, 0, 0x03 | TSE,
                0, lies[i].hdr_len, lies[i].mss);
        data(f, at + 1, TX_BUF, (uint32_t)len, TSE | EOP | RS, 0x3);
        wr(f, TDT, at + 2);
        e1000_service(f->e);
        if (i == 2) {
            /* 255 bytes of "headers" are legal if the packet is that long: it is sent. */
            while (take(f, out, sizeof(out)) > 0) {
            }
            continue;
        }
        assert_int_equal(take(f, out, sizeof(out)), -1);
        assert_int_equal(tx_status(f, at + 1) & 1, 1); /* still completed */
    }
    assert_int_equal(rd(f, TSCTFC), 7);
    assert_int_equal(stats(f).drops, 7);
}

/* Rings, descriptors and lengths a hostile guest makes up. */
static void test_tx_hostile(void **state)
{
    struct fixture *f = *state;
    uint8_t *fr = ram(f, TX_BUF), out[2048];
    size_t len = make_frame(fr, 17, 50);

    /* A length that is not a multiple of 128: the low bits do not exist. */
    tx_ring(f, TX_RING, 100);
    assert_int_equal(rd(f, TDLEN), 0);
    legacy(f, 0, TX_BUF, (uint16_t)len, EOP | RS, 0, 0);
    wr(f, TDT, 1);
    e1000_service(f->e);
    assert_int_equal(take(f, out, sizeof(out)), -1);
    wr(f, TDLEN, 200); /* 128: eight descriptors */
    assert_int_equal(rd(f, TDLEN), 128);

    /* Tail and head past the ring: nothing moves. */
    wr(f, TDT, 100);
    e1000_service(f->e);
    assert_int_equal(rd(f, TDH), 0);
    wr(f, TDT, 0);
    wr(f, TDH, 9);
    wr(f, TDT, 1);
    e1000_service(f->e);
    assert_int_equal(rd(f, TDH), 9);
    assert_int_equal(take(f, out, sizeof(out)), -1);
    wr(f, TDH, 0);
    wr(f, TDT, 0);

    /* A ring outside guest RAM (and one straddling its end). */
    wr(f, TDBAL, RAM_SIZE + 0x1000);
    wr(f, TDT, 1);
    e1000_service(f->e);
    assert_int_equal(rd(f, TDH), 0);
    wr(f, TDBAH, 0xffffffff);
    e1000_service(f->e);
    wr(f, TDBAH, 0);
    wr(f, TDBAL, RAM_SIZE - 64);
    wr(f, TDT, 0);
    e1000_service(f->e);
    wr(f, TDBAL, TX_RING);

    /* A buffer outside RAM: the packet is dropped, its descriptor still completes. */
    tx_ring(f, TX_RING, RING_LEN * 16);
    legacy(f, 0, RAM_SIZE - 10, 60, EOP | RS, 0, 0);
    legacy(f, 1, 0xfffffffffffff000ull, 4000, EOP | RS, 0, 0);
    wr(f, TDT, 2);
    e1000_service(f->e);
    assert_int_equal(take(f, out, sizeof(out)), -1);
    assert_int_equal(tx_status(f, 0) & 1, 1);
    assert_int_equal(tx_status(f, 1) & 1, 1);
    assert_int_equal(stats(f).drops, 2);

    /* A frame longer than the chip's 16 KiB without TSO: dropped. */
    tx_ring(f, TX_RING, RING_LEN * 16);
    data(f, 0, TX_BUF, 0x4000, 0, 0);
    data(f, 1, TX_BUF, 0x4000, EOP | RS, 0);
    wr(f, TDT, 2);
    e1000_service(f->e);
    assert_int_equal(take(f, out, sizeof(out)), -1);
    assert_int_equal(stats(f).drops, 3);

    /* Data descriptors with lengths up to 1 MiB - 1: more than any packet holds. */
    tx_ring(f, TX_RING, RING_LEN * 16);
    data(f, 0, 0, 0xfffff, TSE, 0);
    data(f, 1, 0, 0x80000, TSE, 0);
    data(f, 2, 0, 0x80000, TSE | EOP | RS, 0);
    wr(f, TDT, 3);
    e1000_service(f->e);
    assert_int_equal(take(f, out, sizeof(out)), -1);
    assert_int_equal(stats(f).drops, 4);

    /* An endless chain: no EOP anywhere; each TDT write walks the ring once at most. */
    tx_ring(f, TX_RING, RING_LEN * 16);
    for (unsigned i = 0; i < RING_LEN; i++)
        legacy(f, i, TX_BUF, 1000, RS, 0, 0);
    for (unsigned round = 0; round < 200; round++) {
        wr(f, TDT, (rd(f, TDH) + RING_LEN - 1) % RING_LEN);
        e1000_service(f->e);
    }
    assert_int_equal(take(f, out, sizeof(out)), -1);
    /* ... and when EOP finally comes, the over-long packet is dropped and the next one works. */
    legacy(f, rd(f, TDT), TX_BUF, 10, EOP | RS, 0, 0);
    legacy(f, (rd(f, TDT) + 1) % RING_LEN, TX_BUF, (uint16_t)len, EOP | RS, 0, 0);
    wr(f, TDT, (rd(f, TDT) + 2) % RING_LEN);
    e1000_service(f->e);
    assert_int_equal(take(f, out, sizeof(out)), (ssize_t)len);
    assert_int_equal(stats(f).drops, 5);

    /* An unknown descriptor type spoils the packet in progress. */
    tx_ring(f, TX_RING, RING_LEN * 16);
    legacy(f, 0, TX_BUF, 20, 0, 0, 0);
    put_desc(f, TX_RING, 1, 0, (DEXT | RS) << 24 | 7u << 20, 0);
    legacy(f, 2, TX_BUF + 20, (uint16_t)(len - 20), EOP | RS, 0, 0);
    wr(f, TDT, 3);
    e1000_service(f->e);
    assert_int_equal(take(f, out, sizeof(out)), -1);

    /* Transmit disabled: descriptors wait. */
    tx_ring(f, TX_RING, RING_LEN * 16);
    wr(f, TCTL, 0);
    legacy(f, 0, TX_BUF, (uint16_t)len, EOP | RS, 0, 0);
    wr(f, TDT, 1);
    e1000_service(f->e);
    assert_int_equal(rd(f, TDH), 0);
    wr(f, TCTL, 0x2);
    e1000_service(f->e);
    assert_int_equal(rd(f, TDH), 1);
    assert_int_equal(take(f, out, sizeof(out)), (ssize_t)len);
}

/* --- Receive -------------------------------------------------------------------- */

static void test_rx_basic(void **state)
{
    struct fixture *f = *state;
    uint8_t fr[1514];
    uint16_t len;
    uint8_t st, er;
    size_t n = make_frame(fr, 17, 200);

    memcpy(fr, mac, 6); /* to us */
    rd(f, ICR);
    wr(f, IMS, ICR_RXT0);
    rx_ring(f, RING_LEN, RCTL_EN | RCTL_BAM);
    inject(f, fr, n);
    e1000_service(f->e);
    rx_desc(f, 0, &len, &st, &er);
    assert_int_equal(len, n + 4); /* the FCS the driver strips (RCTL.SECRC clear) */
    assert_int_equal(st & 0x03, 0x03);
    assert_int_equal(er, 0);
    assert_memory_equal(ram(f, RX_BUFS), fr, n);
    assert_int_equal(rd(f, RDH), 1);
    assert_int_equal(f->fp.irq_level[GSI], 1);
    assert_int_equal(rd(f, ICR) & ICR_RXT0, ICR_RXT0);
    assert_int_equal(f->fp.irq_level[GSI], 0);
    assert_int_equal(stats(f).rx_packets, 1);
    assert_int_equal(stats(f).rx_bytes, n);
    assert_int_equal(rd(f, GPRC), 1);

    /* A short frame arrives padded to 60 bytes; with SECRC no FCS is added. */
    wr(f, RCTL, RCTL_EN | RCTL_SECRC);
    inject(f, fr, 42);
    e1000_service(f->e);
    rx_desc(f, 1, &len, &st, &er);
    assert_int_equal(len, 60);
    assert_memory_equal(ram(f, RX_BUFS + 0x4000), fr, 42);
}

static void test_rx_spanning(void **state)
{
    struct fixture *f = *state;
    uint8_t fr[1200];
    uint16_t len;
    uint8_t st, er;
    size_t n = make_frame(fr, 17, 1000);

    memcpy(fr, mac, 6);
    rx_ring(f, RING_LEN, RCTL_EN | RCTL_B256);
    inject(f, fr, n); /* 1042 bytes + FCS: five 256-byte buffers */
    e1000_service(f->e);
    for (unsigned i = 0; i < 5; i++) {
        rx_desc(f, i, &len, &st, &er);
        assert_int_equal(len, i < 4 ? 256 : n + 4 - 4 * 256);
        assert_int_equal(st & 0x03, i < 4 ? 0x01 : 0x03); /* EOP on the last only */
        assert_memory_equal(ram(f, RX_BUFS + 0x4000u * i), fr + 256 * i, i < 4 ? 256 : n - 4 * 256);
    }
    assert_int_equal(rd(f, RDH), 5);
    /* Two descriptors left of eight, below the half threshold: RXDMT0. */
    assert_int_equal(rd(f, ICR) & (ICR_RXT0 | ICR_RXDMT0), ICR_RXT0 | ICR_RXDMT0);
    /* Needing more buffers than are free: the frame waits, RXO once, then it goes. */
    inject(f, fr, n);
    e1000_service(f->e);
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 5);
    assert_int_equal(rd(f, ICR) & ICR_RXO, ICR_RXO);
    assert_int_equal(rd(f, RNBC), 1);
    wr(f, RDT, 4); /* descriptors 7, 0, 1, 2, 3 */
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 2);
    rx_desc(f, 1, &len, &st, &er);
    assert_int_equal(st & 0x03, 0x03);
    assert_int_equal(stats(f).rx_packets, 2);
    /* A frame larger than the ring could ever hold is dropped, not waited for. */
    wr(f, RCTL, RCTL_EN | RCTL_B256 | RCTL_LPE);
    {
        static uint8_t big[9000];
        memcpy(big, mac, 6);
        memcpy(big + 6, mac, 6);
        inject(f, big, sizeof(big));
    }
    e1000_service(f->e);
    assert_int_equal(stats(f).drops, 1);
}

static void test_rx_filter(void **state)
{
    struct fixture *f = *state;
    uint8_t fr[100];
    size_t n = make_frame(fr, 17, 20);

    rx_ring(f, RING_LEN, RCTL_EN);
    memcpy(fr, "\x52\x54\x00\x99\x99\x99", 6); /* somebody else */
    inject(f, fr, n);
    memset(fr, 0xff, 6); /* broadcast, BAM clear */
    inject(f, fr, n);
    memcpy(fr, "\x01\x00\x5e\x00\x00\xfb", 6); /* multicast not in the table */
    inject(f, fr, n);
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 0);
    /* Broadcast with BAM, the multicast address's hash (MO 0: 0x0fb0 -> word 125, bit 16). */
    wr(f, RCTL, RCTL_EN | RCTL_BAM);
    wr(f, MTA + 4 * 125, 1u << 16);
    memset(fr, 0xff, 6);
    inject(f, fr, n);
    memcpy(fr, "\x01\x00\x5e\x00\x00\xfb", 6);
    inject(f, fr, n);
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 2);
    /* Promiscuous. */
    wr(f, RCTL, RCTL_EN | RCTL_UPE);
    memcpy(fr, "\x52\x54\x00\x99\x99\x99", 6);
    inject(f, fr, n);
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 3);
    /* Receive disabled: frames are read and dropped, not left to pile up. */
    wr(f, RCTL, 0);
    inject(f, fr, n);
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 3);
    assert_int_equal(stats(f).drops, 1);
}

static void test_rx_hostile(void **state)
{
    struct fixture *f = *state;
    uint8_t fr[2000];
    uint16_t len;
    uint8_t st, er;
    size_t n = make_frame(fr, 17, 100);

    memcpy(fr, mac, 6);
    /* No buffers at all (RDT == RDH): the frame waits, the ring is never overrun. */
    rx_ring(f, RING_LEN, RCTL_EN | RCTL_BAM);
    wr(f, RDT, 0);
    inject(f, fr, n);
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 0);
    assert_int_equal(rd(f, ICR) & ICR_RXO, ICR_RXO);
    /* Head and tail past the ring, a ring length of 0 and one not a multiple of 128. */
    wr(f, RDT, 50);
    e1000_service(f->e);
    wr(f, RDLEN, 64);
    assert_int_equal(rd(f, RDLEN), 0);
    wr(f, RDT, 3);
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 0);
    /* A buffer outside RAM: the descriptor comes back with an error and no data. */
    wr(f, RDLEN, RING_LEN * 16);
    put_desc(f, RX_RING, 0, RAM_SIZE - 100, 0, 0);
    e1000_service(f->e);
    rx_desc(f, 0, &len, &st, &er);
    assert_int_equal(len, 0);
    assert_int_equal(st & 0x03, 0x03);
    assert_int_equal(er, 0x80);
    assert_int_equal(rd(f, RDH), 1);
    assert_int_equal(stats(f).rx_packets, 0);
    assert_int_equal(stats(f).drops, 1);
    /* A ring outside RAM: nothing is written, the frame is dropped. */
    wr(f, RDBAL, RAM_SIZE);
    inject(f, fr, n);
    e1000_service(f->e);
    wr(f, RDBAH, 1);
    wr(f, RDBAL, 0);
    inject(f, fr, n);
    e1000_service(f->e);
    assert_int_equal(stats(f).drops, 3);
    /* Oversized without RCTL.LPE: dropped and counted (ROC). */
    wr(f, RDBAH, 0);
    wr(f, RDBAL, RX_RING);
    wr(f, RDH, 0);
    wr(f, RDT, 7);
    put_desc(f, RX_RING, 0, RX_BUFS, 0, 0);
    memset(fr + n, 0, sizeof(fr) - n);
    inject(f, fr, 1600);
    e1000_service(f->e);
    assert_int_equal(rd(f, ROC), 1);
    assert_int_equal(rd(f, RDH), 0);
    /* Runts from the tap (shorter than an Ethernet header) are dropped. */
    inject(f, fr, 6);
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 0);
    inject(f, fr, n);
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 1);
    assert_int_equal(stats(f).rx_packets, 1);
}

/* 802.1Q with CTRL.VME: the tag is inserted on transmit (VLE) and taken out on receive,
 * also for a frame that had to wait for descriptors. */
static void test_vlan(void **state)
{
    struct fixture *f = *state;
    uint8_t *fr = ram(f, TX_BUF), out[2048], tagged[200];
    size_t len = make_frame(fr, 17, 50);
    uint16_t rlen, special;
    uint8_t st, er;

    wr(f, CTRL, rd(f, CTRL) | 0x40000000u); /* VME */
    tx_ring(f, TX_RING, RING_LEN * 16);
    put_desc(f, TX_RING, 0, TX_BUF, (EOP | RS | 0x40u) << 24 | (uint32_t)len, 0x0123u << 16);
    wr(f, TDT, 1);
    e1000_service(f->e);
    assert_int_equal(take(f, out, sizeof(out)), (ssize_t)len + 4);
    assert_memory_equal(out, fr, 12);
    assert_int_equal(be16(out + 12), 0x8100);
    assert_int_equal(be16(out + 14), 0x0123);
    assert_memory_equal(out + 16, fr + 12, len - 12);

    memcpy(tagged, mac, 6);
    memcpy(tagged + 6, fr + 6, 6);
    put16(tagged + 12, 0x8100);
    put16(tagged + 14, 0x0456);
    memcpy(tagged + 16, fr + 12, len - 12);
    rx_ring(f, RING_LEN, RCTL_EN);
    wr(f, RDT, 0); /* no buffers yet */
    inject(f, tagged, len + 4);
    e1000_service(f->e);
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 0);
    wr(f, RDT, 7);
    e1000_service(f->e);
    rx_desc(f, 0, &rlen, &st, &er);
    memcpy(&special, ram(f, RX_RING + 14), 2);
    assert_int_equal(st & 0x0b, 0x0b); /* DD, EOP, VP */
    assert_int_equal(special, 0x0456);
    assert_int_equal(rlen, len + 4); /* untagged frame + FCS */
    assert_memory_equal(ram(f, RX_BUFS), mac, 6);
    assert_memory_equal(ram(f, RX_BUFS + 6), fr + 6, 6);
    assert_memory_equal(ram(f, RX_BUFS + 12), fr + 12, len - 12);
}

/* Headers from a tap that still has offloads on: a partial checksum is finished, GSO dropped. */
static void test_rx_tap_offloads(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[HDR + 400] = {0}, *fr = buf + HDR;
    size_t n = make_frame(fr, 6, 300);
    uint16_t start = 34, off = 16;

    memcpy(fr, mac, 6);
    put16(fr + 50, fold(pseudo(fr, 6, (unsigned)(n - 34)))); /* what the host leaves */
    rx_ring(f, RING_LEN, RCTL_EN | RCTL_SECRC);
    buf[0] = 1; /* VIRTIO_NET_HDR_F_NEEDS_CSUM */
    memcpy(buf + 6, &start, 2);
    memcpy(buf + 8, &off, 2);
    assert_int_equal(send(f->peer, buf, HDR + n, 0), (ssize_t)(HDR + n));
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 1);
    assert_l4_csum_ok(ram(f, RX_BUFS), n, 6);
    buf[0] = 0;
    buf[1] = 1; /* VIRTIO_NET_HDR_GSO_TCPV4 */
    assert_int_equal(send(f->peer, buf, HDR + n, 0), (ssize_t)(HDR + n));
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 1);
    assert_int_equal(stats(f).drops, 1);
}

/* --- Snapshot ------------------------------------------------------------------- */

/* Where fields sit in an 'E1K ' section (see e1000_save): the section header (10), PCID
 * (4 + 4 + 2 + 256 + 1), the MAC (6), the register count and 6144 registers. */
#define SNAP_REGS_AT     (10 + 267 + 6 + 4)
#define SNAP_REGCOUNT_AT (SNAP_REGS_AT - 4)
#define SNAP_IOADDR_AT   (SNAP_REGS_AT + 6144 * 4)
#define SNAP_EE_IN_AT    (SNAP_IOADDR_AT + 4 + 128 + 64 + 4)
#define SNAP_TX_LEN_AT   (SNAP_EE_IN_AT + 4 + 4 + 4 + 1 + 24 + 10)

static void e_save(struct fixture *f, struct snap_w *w)
{
    snap_w_init(w);
    e1000_save(f->e, w);
    assert_int_equal(w->err, 0);
}

static int e_load(struct fixture *f, const uint8_t *p, size_t len, char *what)
{
    struct snap_r r;
    int rc;

    snap_r_init(&r, p, len);
    rc = e1000_load(f->e, &r);
    strcpy(what, r.what);
    return rc;
}

static void assert_same(struct fixture *f, const struct snap_w *expect)
{
    struct snap_w now;

    e_save(f, &now);
    assert_int_equal(now.len, expect->len);
    assert_memory_equal(now.buf, expect->buf, now.len);
    snap_w_free(&now);
}

/* Microwire: the READ command clocked in, then n output bits. */
static uint32_t ee_begin(struct fixture *f, unsigned addr)
{
    uint32_t eecd = EE_REQ | EE_CS, cmd = 0x6u << 6 | addr;

    wr(f, EECD, EE_REQ);
    wr(f, EECD, eecd);
    for (int bit = 8; bit >= 0; bit--) {
        uint32_t di = (cmd >> bit) & 1 ? EE_DI : 0;
        wr(f, EECD, eecd | di);
        ee_clock(f, eecd | di);
    }
    return eecd;
}

static uint16_t ee_bits(struct fixture *f, uint32_t eecd, unsigned n, uint16_t v)
{
    for (unsigned i = 0; i < n; i++) {
        wr(f, EECD, eecd | EE_SK);
        v = (uint16_t)(v << 1 | ((rd(f, EECD) & EE_DO) ? 1 : 0));
        wr(f, EECD, eecd);
    }
    return v;
}

/*
 * The device in the middle of everything: a transmit packet half gathered (first
 * descriptor, no EOP) after a checksum context, a received frame waiting for
 * descriptors (RXO raised, INTx high), an EEPROM read half shifted out.
 */
static uint16_t drive_e1000(struct fixture *f, uint8_t *frame, size_t *frame_len, uint8_t *rx_frame,
                            size_t *rx_len, uint32_t *eecd)
{
    uint8_t *fr = ram(f, TX_BUF);

    *frame_len = make_frame(fr, 17, 300);
    memcpy(frame, fr, *frame_len);
    rd(f, ICR);
    wr(f, IMS, ICR_TXDW | ICR_RXO | ICR_RXT0);
    tx_ring(f, TX_RING, RING_LEN * 16);
    context(f, 0, 14, 24, 33, 34, 40, 0, 0, 0, 0, 0);
    data(f, 1, TX_BUF, 20, 0, 0);
    wr(f, TDT, 2);
    rx_ring(f, RING_LEN, RCTL_EN | RCTL_BAM);
    wr(f, RDT, 0); /* no descriptors for the guest to receive into */
    *rx_len = make_frame(rx_frame, 6, 500);
    memcpy(rx_frame, mac, 6);
    inject(f, rx_frame, *rx_len);
    e1000_service(f->e);
    assert_int_equal(rd(f, TDH), 2);
    assert_int_equal(f->fp.irq_level[GSI], 1); /* RXO */
    *eecd = ee_begin(f, 5);
    return ee_bits(f, *eecd, 7, 0);
}

/* What the device does next, the same on the original and the restored one. */
static void continue_e1000(struct fixture *f, const uint8_t *frame, size_t frame_len,
                           const uint8_t *rx_frame, size_t rx_len, uint32_t eecd, uint16_t ee)
{
    uint8_t out[2048];
    uint16_t len;
    uint8_t st, er;

    /* The EEPROM word comes out whole across the snapshot. */
    assert_int_equal(ee_bits(f, eecd, 9, ee), eerd_read_word(f, 5));
    wr(f, EECD, 0);
    /* The interrupt cause survived: reading ICR returns it and lowers the line. */
    assert_int_equal(rd(f, ICR) & ICR_RXO, ICR_RXO);
    assert_int_equal(f->fp.irq_level[GSI], 0);
    /* TX goes on at descriptor 2 with the 20 bytes gathered before. */
    data(f, 2, TX_BUF + 20, (uint32_t)frame_len - 20, EOP | RS, 0);
    wr(f, TDT, 3);
    e1000_service(f->e);
    assert_int_equal(take(f, out, sizeof(out)), (ssize_t)frame_len);
    assert_memory_equal(out, frame, frame_len);
    assert_int_equal(rd(f, TDH), 3);
    assert_int_equal(tx_status(f, 2) & 1, 1);
    /* RX: the frame that waited goes into descriptor 0 once there is one. */
    wr(f, RDT, 4);
    e1000_service(f->e);
    assert_int_equal(rd(f, RDH), 1);
    rx_desc(f, 0, &len, &st, &er);
    assert_int_equal(len, rx_len + 4);
    assert_int_equal(st & 3, 3);
    assert_memory_equal(ram(f, RX_BUFS), rx_frame, rx_len);
    assert_int_equal(f->fp.irq_level[GSI], 1); /* RXT0 */
    assert_int_equal(rd(f, RNBC), 1);
}

static void test_snapshot_round_trip(void **state)
{
    struct fixture *f = *state, *g;
    static uint8_t frame[2048], rx_frame[2048];
    size_t frame_len, rx_len;
    uint32_t eecd;
    struct snap_w w, w2;
    char what[160];

    uint16_t ee = drive_e1000(f, frame, &frame_len, rx_frame, &rx_len, &eecd);
    e1000_park(f->e); /* never started: parks at once */
    e_save(f, &w);
    e1000_unpark(f->e);

    g = new_fixture(mac);
    memcpy(g->fp.ram.host, f->fp.ram.host, RAM_SIZE);
    assert_int_equal(g->fp.irq_level[GSI], 0);
    assert_int_equal(e_load(g, w.buf, w.len, what), 0);
    e_save(g, &w2);
    assert_int_equal(w2.len, w.len);
    assert_memory_equal(w2.buf, w.buf, w.len);
    assert_int_equal(g->fp.irq_level[GSI], 1); /* INTx driven again */

    continue_e1000(f, frame, frame_len, rx_frame, rx_len, eecd, ee);
    continue_e1000(g, frame, frame_len, rx_frame, rx_len, eecd, ee);
    snap_w_free(&w);
    snap_w_free(&w2);
    teardown((void **)&g);
}

/* The next length to cut a file at: every one, but in steps through the register array
 * (each of its words reads alike, and there are 6144). */
static size_t next_cut(size_t len)
{
    return len > SNAP_REGS_AT && len < SNAP_IOADDR_AT ? len + 61 : len + 1;
}

static void test_snapshot_refused(void **state)
{
    static const uint8_t other[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x99};
    struct fixture *f = *state, *g, *h;
    static uint8_t frame[2048], rx_frame[2048];
    size_t frame_len, rx_len;
    uint32_t eecd, v;
    struct snap_w w, before;
    char what[160];
    uint8_t *bad;

    drive_e1000(f, frame, &frame_len, rx_frame, &rx_len, &eecd);
    e_save(f, &w);
    g = new_fixture(mac);
    wr(g, IMS, ICR_LSC); /* its own state: INTx high from the reset's LSC */
    assert_int_equal(g->fp.irq_level[GSI], 1);
    e_save(g, &before);
    bad = malloc(w.len);
    assert_non_null(bad);

    /* Cut anywhere. */
    for (size_t len = 0; len < w.len; len = next_cut(len)) {
        assert_int_not_equal(e_load(g, w.buf, len, what), 0);
        assert_true(what[0]);
    }
    for (uint32_t len = 2; len < w.len - 8; len = (uint32_t)next_cut(len)) {
        memcpy(bad, w.buf, w.len);
        memcpy(bad + 4, &len, 4);
        assert_int_not_equal(e_load(g, bad, 8 + len, what), 0);
    }
    assert_same(g, &before);

    /* Wrong tag, newer version, fields out of range. */
    struct {
        size_t at;
        uint32_t value;
        unsigned width;
        int err;
        const char *why;
    } cases[] = {
        {0, 'X', 1, -EINVAL, "e1000"},
        {8, 2, 2, -EPROTO, "version 2"},
        {10, 'Q', 1, -EINVAL, "PCI function"},
        {SNAP_REGCOUNT_AT, 6000, 4, -EINVAL, "registers"},
        {SNAP_EE_IN_AT, 10, 4, -EINVAL, "EEPROM"},
        {SNAP_EE_IN_AT + 8, 0xfffffffe, 4, -EINVAL, "EEPROM"}, /* ee_out -2 */
        {SNAP_TX_LEN_AT, 70000, 4, -EINVAL, "transmit packet length"},
        {SNAP_TX_LEN_AT + 4 + 20, 20000, 4, -EINVAL, "waiting frame length"},
        {SNAP_TX_LEN_AT + 4 + 20 + 4, 13, 4, -EINVAL, "waiting frame at 13"},
        {SNAP_TX_LEN_AT + 4 + 20 + 8, 2, 4, -EINVAL, "FCS"},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(bad, w.buf, w.len);
        v = cases[i].value;
        memcpy(bad + cases[i].at, &v, cases[i].width);
        assert_int_equal(e_load(g, bad, w.len, what), cases[i].err);
        if (!strstr(what, cases[i].why))
            fail_msg("case %u: '%s' does not say '%s'", i, what, cases[i].why);
        assert_same(g, &before);
        assert_int_equal(g->fp.irq_level[GSI], 1);
    }
    /* A byte too many: left unread; the PCI function applied before is put back. */
    uint8_t *plus = calloc(1, w.len + 1);
    memcpy(plus, w.buf, w.len);
    v = (uint32_t)w.len - 8 + 1;
    memcpy(plus + 4, &v, 4);
    assert_int_equal(e_load(g, plus, w.len + 1, what), -EINVAL);
    assert_non_null(strstr(what, "unread"));
    assert_same(g, &before);
    free(plus);

    /* Another MAC: refused. */
    h = new_fixture(other);
    assert_int_equal(e_load(h, w.buf, w.len, what), -EINVAL);
    assert_non_null(strstr(what, "MAC"));
    /* And the file itself still loads. */
    assert_int_equal(e_load(g, w.buf, w.len, what), 0);
    assert_same(g, &w);
    free(bad);
    snap_w_free(&w);
    snap_w_free(&before);
    teardown((void **)&g);
    teardown((void **)&h);
}

/* The I/O thread parked: a frame from the tap waits there until unpark. */
static void test_park_and_unpark(void **state)
{
    struct fixture *f = *state;
    uint8_t fr[1514];
    size_t n = make_frame(fr, 17, 200);

    memcpy(fr, mac, 6);
    rx_ring(f, RING_LEN, RCTL_EN | RCTL_BAM);
    e1000_park(f->e); /* before the start: the thread starts parked */
    assert_int_equal(e1000_start(f->e), 0);
    inject(f, fr, n);
    usleep(20000);
    assert_int_equal(rd(f, RDH), 0);
    e1000_unpark(f->e);
    assert_true(WAIT_FOR(rd(f, RDH) == 1));
    for (unsigned i = 0; i < 5; i++) {
        e1000_park(f->e);
        e1000_park(f->e);
        inject(f, fr, n);
        usleep(5000);
        assert_int_equal(rd(f, RDH), 1 + i);
        e1000_unpark(f->e);
        assert_true(WAIT_FOR(rd(f, RDH) == 2 + i));
    }
    e1000_park(f->e); /* destroy while parked must not hang */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pci_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_bar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eeprom, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_link_phy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmio_widths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_legacy_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_context_data_checksums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_limits_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_tso, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_tso_lies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_spanning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vlan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_tap_offloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_and_unpark, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
