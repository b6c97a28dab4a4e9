/*
 * Intel 82540EM (e1000) over a host tap, after the PCI/PCI-X Family of
 * Gigabit Ethernet Controllers Software Developer's Manual (8254x SDM).
 * What Linux's e1000 driver and Windows use: the register file in BAR0 and
 * through IOADDR/IODATA in BAR1, a Microwire EEPROM (bit-banged through EECD,
 * as Linux does, or read through EERD) with the MAC and a checksum, an
 * M88E1011 PHY behind MDIC whose link is always up at 1000/full, legacy
 * receive descriptors, and legacy, context and data transmit descriptors
 * with checksum offload and TCP segmentation done here in software.
 *
 * Interrupts are INTx only: the 82540EM has no MSI capability and Linux's
 * e1000 driver never asks for MSI. The line is high while ICR & IMS is not
 * zero; reading ICR clears it. Interrupt moderation (ITR, RDTR, RADV, TIDV,
 * TADV) is stored but not applied: every cause is raised at once, and NAPI
 * in the guest masks the device while it polls.
 *
 * Threads: register accesses come from vCPU threads, and transmit runs there,
 * in the exit of the guest's TDT write, as QEMU does: the guest exits for
 * that write anyway, and handing the ring to another thread adds a wake-up
 * and a context switch per packet. Receive runs on the device's own I/O
 * thread (as the virtio devices' queues do), woken by the tap when a frame
 * arrives and by an eventfd when the guest changes RCTL or posts buffers a
 * frame was waiting for. The tap is watched only while a frame could be
 * taken: with no receive descriptors the frame read last waits here, the tap
 * is no longer watched (a level-triggered tap would spin the thread), and
 * RXO is raised once; writing RDT resumes. With RCTL.EN clear frames are
 * read and dropped, as the chip drops them. One mutex guards all of the device.
 *
 * I/O limits, a limiter per direction: before a frame starts (the first
 * transmit descriptor of a packet, the next read from the tap) its limiter
 * must grant one byte and one packet, and the rest of its length is charged
 * once known. A transmit that is not granted leaves TDH where it is (the
 * guest sees a slow wire, never an error) and a receive stops watching the
 * tap; a timerfd on the I/O thread resumes either. The vCPU thread's TDT
 * write never waits: it just finds the limiter closed and returns.
 *
 * The guest is hostile: every ring base, length, head, tail, descriptor
 * address and length, and every offload header is checked. Nothing is read
 * or written outside guest RAM (hv_gpa_to_hva on every access), every loop
 * is bounded by the ring size, and what cannot be sent or received is
 * dropped and counted.
 */
#include "devices/net/e1000.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include "devices/net/tap.h"
#include "guest_mem.h"

#define E1000_REVISION  0x03
#define E1000_SUBSYS_ID 0x001e /* PRO/1000 MT Desktop */
#define E1000_CLASS     0x020000

/* Register offsets (SDM section 13). */
enum {
    REG_CTRL = 0x0000,
    REG_STATUS = 0x0008,
    REG_EECD = 0x0010,
    REG_EERD = 0x0014,
    REG_CTRL_EXT = 0x0018,
    REG_MDIC = 0x0020,
    REG_VET = 0x0038,
    REG_ICR = 0x00c0,
    REG_ITR = 0x00c4,
    REG_ICS = 0x00c8,
    REG_IMS = 0x00d0,
    REG_IMC = 0x00d8,
    REG_RCTL = 0x0100,
    REG_TCTL = 0x0400,
    REG_PBA = 0x1000,
    REG_RDBAL = 0x2800,
    REG_RDBAH = 0x2804,
    REG_RDLEN = 0x2808,
    REG_RDH = 0x2810,
    REG_RDT = 0x2818,
    REG_TDBAL = 0x3800,
    REG_TDBAH = 0x3804,
    REG_TDLEN = 0x3808,
    REG_TDH = 0x3810,
    REG_TDT = 0x3818,
    REG_STATS = 0x4000, /* .. 0x40ff: statistics, clear on read */
    REG_STATS_END = 0x4100,
    REG_MTA = 0x5200, /* 128 words */
    REG_RA = 0x5400,  /* 16 x (RAL, RAH) */
    REG_FILE_END = 0x6000,
};

/* Statistics registers this model counts (byte offsets from REG_STATS). */
enum {
    ST_MPC = 0x10,
    ST_ROC = 0xac,
    ST_RNBC = 0xa0,
    ST_GPRC = 0x74,
    ST_BPRC = 0x78,
    ST_MPRC = 0x7c,
    ST_GPTC = 0x80,
    ST_GORCL = 0x88,
    ST_GOTCL = 0x90,
    ST_TORL = 0xc0,
    ST_TOTL = 0xc8,
    ST_TPR = 0xd0,
    ST_TPT = 0xd4,
    ST_MPTC = 0xf0,
    ST_BPTC = 0xf4,
    ST_TSCTC = 0xf8,
    ST_TSCTFC = 0xfc,
};

#define CTRL_FD      0x00000001u
#define CTRL_SLU     0x00000040u
#define CTRL_SPD1000 0x00000200u
#define CTRL_RST     0x04000000u
#define CTRL_VME     0x40000000u

#define STATUS_FD      0x00000001u
#define STATUS_LU      0x00000002u
#define STATUS_SPD1000 0x00000080u
#define STATUS_ASDV    0x00000200u

#define EECD_SK   0x001u
#define EECD_CS   0x002u
#define EECD_DI   0x004u
#define EECD_DO   0x008u
#define EECD_FWE  0x030u
#define EECD_REQ  0x040u
#define EECD_GNT  0x080u
#define EECD_PRES 0x100u

#define EERD_START      0x01u
#define EERD_DONE       0x10u
#define EERD_ADDR_SHIFT 8
#define EERD_DATA_SHIFT 16

#define MDIC_OP_WRITE 0x04000000u
#define MDIC_OP_READ  0x08000000u
#define MDIC_READY    0x10000000u
#define MDIC_INT_EN   0x20000000u
#define MDIC_ERROR    0x40000000u

#define ICR_TXDW   0x00000001u
#define ICR_TXQE   0x00000002u
#define ICR_LSC    0x00000004u
#define ICR_RXDMT0 0x00000010u
#define ICR_RXO    0x00000040u
#define ICR_RXT0   0x00000080u
#define ICR_MDAC   0x00000200u

#define RCTL_EN    0x00000002u
#define RCTL_UPE   0x00000008u
#define RCTL_MPE   0x00000010u
#define RCTL_LPE   0x00000020u
#define RCTL_RDMTS 0x00000300u
#define RCTL_MO    0x00003000u
#define RCTL_BAM   0x00008000u
#define RCTL_BSIZE 0x00030000u
#define RCTL_BSEX  0x02000000u
#define RCTL_SECRC 0x04000000u

#define TCTL_EN  0x00000002u
#define TCTL_PSP 0x00000008u

#define RAH_AV 0x80000000u

/* Transmit descriptor command bits (legacy CMD, data DCMD, context TUCMD). */
#define TXD_EOP      0x01u
#define TXD_IC       0x04u /* legacy: insert checksum */
#define TXD_RS       0x08u
#define TXD_TSE      0x04u /* data and context descriptors */
#define TXD_DEXT     0x20u
#define TXD_VLE      0x40u
#define TUCMD_TCP    0x01u
#define TUCMD_IP     0x02u
#define POPTS_IXSM   0x01u
#define POPTS_TXSM   0x02u
#define TXD_STAT_DD  0x01u
#define DTYP_CONTEXT 0x0u
#define DTYP_DATA    0x1u

#define RXD_STAT_DD   0x01u
#define RXD_STAT_EOP  0x02u
#define RXD_STAT_IXSM 0x04u
#define RXD_STAT_VP   0x08u
#define RXD_ERR_RXE   0x80u

/* PHY (M88E1011) registers and bits. */
#define PHY_ADDR         1
#define PHY_CTRL         0
#define PHY_STATUS       1
#define PHY_ID1          2
#define PHY_ID2          3
#define PHY_LP_ABILITY   5
#define PHY_AUTONEG_EXP  6
#define PHY_1000T_STATUS 10
#define PHY_EXT_STATUS   15
#define PHY_SPEC_STATUS  17
#define PHY_CTRL_RESET   0x8000u
#define PHY_CTRL_RESTART 0x0200u

#define DESC_SIZE     16
#define ETH_HLEN      14
#define ETH_MIN_FRAME 60
#define VLAN_TAG_LEN  4
#define FCS_LEN       4
#define MAX_STD_FRAME 1522u           /* with a VLAN tag and the FCS, RCTL.LPE clear */
#define MAX_FRAME     16384u          /* the 82540EM's longest frame */
#define TX_BUF_SIZE   (65536u + 256u) /* a TSO packet: up to 64 KiB of payload after its headers */
#define RX_BUF_SIZE   65536u
#define TSO_MIN_MSS   64 /* at most 1024 segments per packet */
#define RX_BUDGET     64 /* frames per wake-up, so transmit is not starved */

#define STAT_ADD(field, n) __atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED)

/* A context descriptor's offload parameters (SDM 3.3.6). */
struct tx_context {
    uint8_t ipcss, ipcso, tucss, tucso, tucmd, hdr_len;
    uint16_t ipcse, tucse, mss;
};

/* The packet being gathered from transmit descriptors up to EOP. */
struct tx_packet {
    size_t len;
    bool active; /* a descriptor of it has been seen */
    bool bad;    /* a descriptor was unusable: drop the packet at EOP */
    bool tse, legacy;
    uint8_t popts, cmd, cso, css;
    uint16_t vlan;
    uint8_t buf[TX_BUF_SIZE];
};

enum { TAG_KICK, TAG_TAP, TAG_STOP, TAG_TX_TIMER, TAG_RX_TIMER, TAG_PARK };

struct e1000 {
    struct pci_device pdev;
    const struct hv_platform *platform;
    pthread_mutex_t lock;

    uint32_t reg[REG_FILE_END / 4]; /* the plain registers, by offset / 4 */
    uint32_t ioaddr;                /* BAR1's IOADDR */
    uint16_t eeprom[64];
    uint16_t phy[32];
    uint8_t mac[6];
    /* Microwire EEPROM, bit-banged through EECD. */
    uint32_t eecd;   /* SK, CS, DI, FWE, REQ as last written */
    unsigned ee_in;  /* bits clocked in since CS rose */
    uint32_t ee_cmd; /* ... their value */
    int ee_out;      /* bit index being shifted out (word * 16 + bit), -1: the dummy 0 */
    bool ee_reading;
    /* 64-bit statistics counters live in pairs of reg[] words. */

    struct tx_context ctx_csum, ctx_tso;
    struct tx_packet *tx;
    uint8_t *seg; /* one TSO segment */

    uint8_t *rx;         /* tap header + one frame */
    size_t rx_len;       /* of the frame waiting for descriptors, 0 if none */
    size_t rx_off;       /* where in rx it starts (after the header, and a VLAN tag taken out) */
    size_t rx_fcs;       /* FCS bytes added to it */
    uint8_t rx_status;   /* its descriptors' status bits, DD and EOP aside */
    uint16_t rx_special; /* its VLAN tag */
    bool rx_blocked;     /* no descriptors for it: the tap is not watched */
    bool rx_kick;        /* the guest posted descriptors or changed RCTL */
    bool tap_watched;
    bool tap_dead;

    struct hv_nic_stats stats;
    struct rate_limiter *tx_limits, *rx_limits; /* NULL: unlimited */
    int tx_timer, rx_timer;
    bool tx_paid; /* the packet being gathered got its limiter's grant */
    int tap_fd, kick_fd, stop_fd, epoll_fd;
    pthread_t thread;
    bool thread_started;
    /* Parking the I/O thread for a snapshot (e1000_park). */
    pthread_mutex_t park_lock;
    pthread_cond_t park_cond;
    int park_fd;
    bool park_req, parked, stopping;
};

static uint32_t *reg(struct e1000 *e, unsigned off)
{
    return &e->reg[off / 4];
}

/* --- Interrupts ----------------------------------------------------------- */

static void update_irq(struct e1000 *e)
{
    pci_device_set_intx(&e->pdev, (*reg(e, REG_ICR) & *reg(e, REG_IMS)) != 0);
}

static void raise_cause(struct e1000 *e, uint32_t cause)
{
    *reg(e, REG_ICR) |= cause;
    update_irq(e);
}

static void stat_inc(struct e1000 *e, unsigned st, uint32_t n)
{
    uint32_t *r = reg(e, REG_STATS + st);

    *r = *r + n < *r ? UINT32_MAX : *r + n; /* the chip's counters saturate */
}

static void stat_add64(struct e1000 *e, unsigned st_low, uint64_t n)
{
    uint32_t *lo = reg(e, REG_STATS + st_low), *hi = lo + 1;
    uint64_t v = ((uint64_t)*hi << 32 | *lo) + n;

    *lo = (uint32_t)v;
    *hi = (uint32_t)(v >> 32);
}

/* --- EEPROM and PHY ------------------------------------------------------- */

static void eeprom_init(struct e1000 *e)
{
    uint16_t *w = e->eeprom, sum = 0;

    for (unsigned i = 0; i < 64; i++)
        w[i] = 0xffff;
    for (unsigned i = 0; i < 3; i++)
        w[i] = (uint16_t)(e->mac[2 * i] | e->mac[2 * i + 1] << 8);
    w[0x03] = 0x0000; /* compatibility: nothing special */
    w[0x04] = 0xffff; /* LED settings: the driver's defaults */
    w[0x05] = w[0x06] = w[0x07] = 0x0000;
    w[0x08] = 0x0000; /* PBA number */
    w[0x09] = 0x0000;
    w[0x0a] = 0x0000; /* initialization control 1 */
    w[0x0b] = E1000_SUBSYS_ID;
    w[0x0c] = E1000_VENDOR_ID;
    w[0x0d] = E1000_DEVICE_ID;
    w[0x0e] = E1000_VENDOR_ID;
    w[0x0f] = 0x0000; /* initialization control 2: no flow control, so no PAUSE frames */
    w[0x24] = 0x0000; /* initialization control 3: no wake on LAN */
    for (unsigned i = 0; i < 63; i++)
        sum = (uint16_t)(sum + w[i]);
    w[63] = (uint16_t)(0xbaba - sum); /* the words sum to 0xBABA (SDM 5.6.1) */
}

static void phy_reset(struct e1000 *e)
{
    memset(e->phy, 0, sizeof(e->phy));
    e->phy[PHY_CTRL] = 0x1140;       /* autonegotiation on, full duplex, 1000 Mb/s */
    e->phy[PHY_STATUS] = 0x796d;     /* link up, autonegotiation complete, capabilities */
    e->phy[PHY_ID1] = 0x0141;        /* Marvell */
    e->phy[PHY_ID2] = 0x0c20;        /* M88E1011, the 82540EM's PHY */
    e->phy[4] = 0x0de1;              /* advertised: 10/100 half and full, pause */
    e->phy[PHY_LP_ABILITY] = 0x41e1; /* partner: acknowledged, 10/100 half and full */
    e->phy[PHY_AUTONEG_EXP] = 0x0001;
    e->phy[9] = 0x0e00;                /* 1000BASE-T control: advertise 1000 full and half */
    e->phy[PHY_1000T_STATUS] = 0x3c00; /* receivers OK, partner 1000 full and half */
    e->phy[PHY_EXT_STATUS] = 0x3000;
    e->phy[16] = 0x0068;              /* M88 PHY specific control */
    e->phy[PHY_SPEC_STATUS] = 0xac00; /* 1000 Mb/s, full duplex, resolved, link */
    e->phy[20] = 0x0c60;
}

static void phy_write(struct e1000 *e, unsigned r, uint16_t v)
{
    switch (r) {
    case PHY_CTRL:
        if (v & PHY_CTRL_RESET) {
            phy_reset(e);
            return;
        }
        /* The link is always up: a restarted autonegotiation completes at once. */
        e->phy[PHY_CTRL] = v & (uint16_t) ~(PHY_CTRL_RESET | PHY_CTRL_RESTART);
        return;
    case PHY_STATUS:
    case PHY_ID1:
    case PHY_ID2:
    case PHY_LP_ABILITY:
    case PHY_AUTONEG_EXP:
    case PHY_1000T_STATUS:
    case PHY_EXT_STATUS:
    case PHY_SPEC_STATUS:
        return; /* read-only */
    default:
        e->phy[r] = v;
    }
}

static void mdic_write(struct e1000 *e, uint32_t v)
{
    unsigned r = (v >> 16) & 0x1f, phy = (v >> 21) & 0x1f;
    uint32_t data = v & 0xffff, out = v & ~(uint32_t)(0xffff | MDIC_READY | MDIC_ERROR);

    if (phy != PHY_ADDR)
        out |= MDIC_ERROR;
    else if ((v & (MDIC_OP_READ | MDIC_OP_WRITE)) == MDIC_OP_READ)
        data = e->phy[r];
    else if ((v & (MDIC_OP_READ | MDIC_OP_WRITE)) == MDIC_OP_WRITE)
        phy_write(e, r, (uint16_t)data);
    else
        out |= MDIC_ERROR;
    *reg(e, REG_MDIC) = out | data | MDIC_READY;
    if (v & MDIC_INT_EN)
        raise_cause(e, ICR_MDAC);
}

/*
 * Microwire (93C46, 64 words) as the driver bit-bangs it: with CS high, each
 * rising SK edge clocks DI in; after 3 opcode and 6 address bits of a READ
 * (opcode 110b) the EEPROM shifts the words out on DO, MSB first, one bit per
 * falling edge, carrying on into the next words while CS stays high.
 */
static void eecd_write(struct e1000 *e, uint32_t v)
{
    uint32_t old = e->eecd;

    e->eecd = v & (EECD_SK | EECD_CS | EECD_DI | EECD_FWE | EECD_REQ);
    if (!(v & EECD_CS))
        return;
    if (!(old & EECD_CS)) { /* chip select: a new command */
        e->ee_in = 0;
        e->ee_cmd = 0;
        e->ee_reading = false;
        e->ee_out = -1;
    }
    if (!((v ^ old) & EECD_SK))
        return;
    if (!(v & EECD_SK)) { /* falling edge: next output bit */
        if (e->ee_reading && e->ee_out < 64 * 16 * 2)
            e->ee_out++;
        return;
    }
    if (e->ee_reading || e->ee_in >= 9)
        return;
    e->ee_cmd = e->ee_cmd << 1 | ((v & EECD_DI) ? 1 : 0);
    if (++e->ee_in == 9 && (e->ee_cmd >> 6) == 0x6) {
        e->ee_reading = true;
        e->ee_out = (int)(e->ee_cmd & 0x3f) * 16 - 1;
    }
}

static uint32_t eecd_read(struct e1000 *e)
{
    uint32_t v = e->eecd | EECD_PRES;

    if (e->eecd & EECD_REQ)
        v |= EECD_GNT; /* nobody else uses the EEPROM */
    if (!e->ee_reading) {
        v |= EECD_DO; /* ready */
    } else if (e->ee_out >= 0) {
        unsigned bit = (unsigned)e->ee_out;
        if ((e->eeprom[(bit / 16) % 64] >> (15 - bit % 16)) & 1)
            v |= EECD_DO;
    }
    return v;
}

static void eerd_write(struct e1000 *e, uint32_t v)
{
    unsigned addr = (v >> EERD_ADDR_SHIFT) & 0xff;

    if (!(v & EERD_START)) {
        *reg(e, REG_EERD) = v & ~EERD_DONE;
        return;
    }
    /* Words past the 64 the part has read as all ones. */
    *reg(e, REG_EERD) = (uint32_t)(addr < 64 ? e->eeprom[addr] : 0xffff) << EERD_DATA_SHIFT |
                        addr << EERD_ADDR_SHIFT | EERD_DONE;
}

/* --- Rings ------------------------------------------------------------------ */

struct ring {
    uint64_t base;
    uint32_t size; /* descriptors */
    uint32_t head, tail;
};

/* A ring as the guest set it up; false when it cannot be used as it is. */
static bool ring_get(struct e1000 *e, unsigned bal, struct ring *r)
{
    /* Bases are 16-byte aligned and lengths multiples of 128 bytes: the low bits do not exist. */
    r->base = ((uint64_t)*reg(e, bal + 4) << 32 | *reg(e, bal)) & ~(uint64_t)0xf;
    r->size = (*reg(e, bal + 8) & 0xfff80u) / DESC_SIZE;
    r->head = *reg(e, bal + 0x10);
    r->tail = *reg(e, bal + 0x18);
    return r->size && r->head < r->size && r->tail < r->size;
}

static uint8_t *ring_desc(struct e1000 *e, const struct ring *r, uint32_t i)
{
    return hv_gpa_to_hva(e->platform->mem, r->base + (uint64_t)i * DESC_SIZE, DESC_SIZE);
}

/* --- Checksums and frames ----------------------------------------------------- */

static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
    size_t i;

    for (i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (i < len)
        sum += (uint32_t)p[i] << 8;
    return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 * Ones' complement checksum of f[css .. cse] (cse inclusive, 0: to the end)
 * plus extra, stored at cso: what the checksum offloads do. The field itself
 * is summed as the driver left it (zero, or a pseudo-header sum to finish).
 * Offsets outside the frame are the guest's mistake: nothing is inserted.
 */
static void insert_csum(uint8_t *f, size_t len, unsigned css, unsigned cso, unsigned cse,
                        uint64_t extra)
{
    size_t end = cse ? (size_t)cse + 1 : len;

    if (end > len)
        end = len;
    if (css >= end || (size_t)cso + 2 > len)
        return;
    put_be16(f + cso, (uint16_t)~csum_fold(csum_add(extra, f + css, end - css)));
}

static bool is_broadcast(const uint8_t *a)
{
    return (a[0] & a[1] & a[2] & a[3] & a[4] & a[5]) == 0xff;
}

/* A frame sent or received: the hv_nic_stats and the chip's own counters. */
static void count_frame(struct e1000 *e, bool tx, const uint8_t *f, size_t len)
{
    STAT_ADD(*(tx ? &e->stats.tx_packets : &e->stats.rx_packets), 1);
    STAT_ADD(*(tx ? &e->stats.tx_bytes : &e->stats.rx_bytes), len);
    stat_inc(e, tx ? ST_GPTC : ST_GPRC, 1);
    stat_inc(e, tx ? ST_TPT : ST_TPR, 1);
    stat_add64(e, tx ? ST_GOTCL : ST_GORCL, len + FCS_LEN);
    stat_add64(e, tx ? ST_TOTL : ST_TORL, len + FCS_LEN);
    if (is_broadcast(f))
        stat_inc(e, tx ? ST_BPTC : ST_BPRC, 1);
    else if (f[0] & 1)
        stat_inc(e, tx ? ST_MPTC : ST_MPRC, 1);
}

/* Sends one frame to the tap, a VLAN tag inserted after the addresses if asked. */
static void tap_send(struct e1000 *e, uint8_t *f, size_t len, bool tag, uint16_t vlan)
{
    static const uint8_t hdr[NET_TAP_HDR_LEN];
    uint8_t vtag[VLAN_TAG_LEN];
    struct iovec iov[4];
    int n = 0;
    ssize_t sent;

    if (len < ETH_HLEN) {
        STAT_ADD(e->stats.drops, 1);
        return;
    }
    if (len < ETH_MIN_FRAME && (*reg(e, REG_TCTL) & TCTL_PSP)) {
        memset(f + len, 0, ETH_MIN_FRAME - len); /* buffers have room for it */
        len = ETH_MIN_FRAME;
    }
    iov[n++] = (struct iovec){.iov_base = (void *)hdr, .iov_len = sizeof(hdr)};
    if (tag) {
        put_be16(vtag, (uint16_t)*reg(e, REG_VET));
        put_be16(vtag + 2, vlan);
        iov[n++] = (struct iovec){.iov_base = f, .iov_len = 12};
        iov[n++] = (struct iovec){.iov_base = vtag, .iov_len = sizeof(vtag)};
        iov[n++] = (struct iovec){.iov_base = f + 12, .iov_len = len - 12};
    } else {
        iov[n++] = (struct iovec){.iov_base = f, .iov_len = len};
    }
    sent = writev(e->tap_fd, iov, n);
    if (sent <= (ssize_t)sizeof(hdr)) {
        STAT_ADD(e->stats.drops, 1);
        return;
    }
    count_frame(e, true, f, len + (tag ? VLAN_TAG_LEN : 0));
}

/* --- Transmit --------------------------------------------------------------------- */

static void tx_drop(struct e1000 *e)
{
    STAT_ADD(e->stats.drops, 1);
}

/*
 * TCP segmentation (SDM 3.5): the packet's first hdr_len bytes are the
 * Ethernet, IP and TCP (or UDP) headers, the rest is cut into mss-sized
 * payloads. Each segment gets the headers with its IP length (and IPv4
 * identification + segment number), its TCP sequence number, FIN and PSH
 * on the last segment only, and the checksums the packet asked for: the
 * driver seeded the TCP checksum with a pseudo-header sum of length 0, and
 * the segment's TCP length is added here. Headers whose offsets do not fit
 * inside hdr_len, or sizes that do not make sense, drop the packet.
 */
static void tso_send(struct e1000 *e, struct tx_packet *p)
{
    const struct tx_context *c = &e->ctx_tso;
    bool ip4 = c->tucmd & TUCMD_IP, tcp = c->tucmd & TUCMD_TCP;
    unsigned hdr = c->hdr_len, mss = c->mss, l4_min = tcp ? 20 : 8;
    size_t payload, off = 0;
    uint16_t ip_id = 0;
    uint32_t seq = 0;

    if (hdr < ETH_HLEN || hdr > p->len || mss < TSO_MIN_MSS || hdr + mss > MAX_FRAME ||
        c->ipcss < ETH_HLEN || (unsigned)c->ipcss + (ip4 ? 20 : 40) > hdr ||
        c->tucss < c->ipcss + (ip4 ? 20 : 40) || (unsigned)c->tucss + l4_min > hdr ||
        (unsigned)c->tucso + 2 > hdr || (ip4 && (unsigned)c->ipcso + 2 > hdr)) {
        stat_inc(e, ST_TSCTFC, 1);
        tx_drop(e);
        return;
    }
    payload = p->len - hdr;
    if (ip4)
        ip_id = get_be16(p->buf + c->ipcss + 4);
    if (tcp)
        seq = (uint32_t)get_be16(p->buf + c->tucss + 4) << 16 | get_be16(p->buf + c->tucss + 6);
    do {
        size_t n = payload - off < mss ? payload - off : mss, flen = hdr + n;
        bool last = off + n == payload;
        uint8_t *f = e->seg, *l4 = f + c->tucss;

        memcpy(f, p->buf, hdr);
        memcpy(f + hdr, p->buf + hdr + off, n);
        if (ip4) {
            put_be16(f + c->ipcss + 2, (uint16_t)(flen - c->ipcss));
            put_be16(f + c->ipcss + 4, ip_id++);
            if (p->popts & POPTS_IXSM) {
                put_be16(f + c->ipcso, 0);
                insert_csum(f, flen, c->ipcss, c->ipcso, c->ipcse, 0);
            }
        } else {
            put_be16(f + c->ipcss + 4, (uint16_t)(flen - c->ipcss - 40));
        }
        if (tcp) {
            uint32_t s = seq + (uint32_t)off;
            put_be16(l4 + 4, (uint16_t)(s >> 16));
            put_be16(l4 + 6, (uint16_t)s);
            if (!last)
                l4[13] &= (uint8_t)~0x09; /* FIN, PSH */
        } else {
            put_be16(l4 + 4, (uint16_t)(flen - c->tucss));
        }
        if (p->popts & POPTS_TXSM)
            insert_csum(f, flen, c->tucss, c->tucso, 0, flen - c->tucss);
        tap_send(e, f, flen, p->vlan != 0xffff, p->vlan);
        off += n;
    } while (off < payload);
    stat_inc(e, ST_TSCTC, 1);
}

static void tx_packet_reset(struct tx_packet *p)
{
    p->len = 0;
    p->cmd = 0;
    p->active = p->bad = false;
}

/* The packet's last descriptor (EOP) arrived: offloads, then the tap. */
static void tx_packet_done(struct e1000 *e)
{
    struct tx_packet *p = e->tx;
    const struct tx_context *c = &e->ctx_csum;

    if (p->bad) {
        tx_drop(e);
    } else if (p->tse) {
        if (e->tx_limits && p->len > 1)
            rate_limiter_charge(e->tx_limits, p->len - 1, 0);
        tso_send(e, p);
    } else if (p->len > MAX_FRAME) {
        tx_drop(e);
    } else {
        if (e->tx_limits && p->len > 1)
            rate_limiter_charge(e->tx_limits, p->len - 1, 0);
        if (p->legacy && (p->cmd & TXD_IC))
            insert_csum(p->buf, p->len, p->css, p->cso, 0, 0);
        if (!p->legacy && (p->popts & POPTS_IXSM))
            insert_csum(p->buf, p->len, c->ipcss, c->ipcso, c->ipcse, 0);
        if (!p->legacy && (p->popts & POPTS_TXSM))
            insert_csum(p->buf, p->len, c->tucss, c->tucso, c->tucse, 0);
        tap_send(e, p->buf, p->len, p->vlan != 0xffff, p->vlan);
    }
    tx_packet_reset(p);
    e->tx_paid = false;
}

static void tx_append(struct e1000 *e, uint64_t addr, uint32_t len)
{
    struct tx_packet *p = e->tx;
    const void *src;

    if (p->bad || len == 0)
        return;
    /* Room is kept for padding a short frame to 60 bytes in place. */
    if (len > TX_BUF_SIZE - ETH_MIN_FRAME - p->len ||
        !(src = hv_gpa_to_hva(e->platform->mem, addr, len))) {
        p->bad = true;
        return;
    }
    memcpy(p->buf + p->len, src, len);
    p->len += len;
}

/* One descriptor; returns whether it asked for status write-back (RS). */
static bool tx_descriptor(struct e1000 *e, const uint8_t *d)
{
    struct tx_packet *p = e->tx;
    uint64_t addr;
    uint32_t lower, upper;
    uint8_t cmd;

    memcpy(&addr, d, 8);
    memcpy(&lower, d + 8, 4);
    memcpy(&upper, d + 12, 4);
    cmd = (uint8_t)(lower >> 24);
    if ((cmd & TXD_DEXT) && ((lower >> 20) & 0xf) == DTYP_CONTEXT) {
        /* A context descriptor's fields sit where a data descriptor has its address. */
        struct tx_context c = {.ipcss = d[0],
                               .ipcso = d[1],
                               .ipcse = (uint16_t)(d[2] | d[3] << 8),
                               .tucss = d[4],
                               .tucso = d[5],
                               .tucse = (uint16_t)(d[6] | d[7] << 8),
                               .tucmd = cmd,
                               .hdr_len = (uint8_t)(upper >> 8),
                               .mss = (uint16_t)(upper >> 16)};
        /* The chip keeps the TSO context apart from the checksum one. */
        if (cmd & TXD_TSE)
            e->ctx_tso = c;
        else
            e->ctx_csum = c;
        return cmd & TXD_RS;
    }
    if ((cmd & TXD_DEXT) && ((lower >> 20) & 0xf) != DTYP_DATA) {
        p->bad = p->active; /* no such descriptor type: spoils the packet in progress */
        return cmd & TXD_RS;
    }
    if (!p->active) {
        /* Offload (but see IC below) and VLAN choices are the first descriptor's. */
        p->active = true;
        p->legacy = !(cmd & TXD_DEXT);
        p->tse = !p->legacy && (cmd & TXD_TSE);
        p->popts = p->legacy ? 0 : (uint8_t)(upper >> 8);
        p->vlan =
            (cmd & TXD_VLE) && (*reg(e, REG_CTRL) & CTRL_VME) ? (uint16_t)(upper >> 16) : 0xffff;
    }
    if (p->legacy && !(cmd & TXD_DEXT) && (cmd & TXD_IC)) {
        /* Drivers put IC, CSO and CSS on the first or the last descriptor: either counts. */
        p->cmd |= TXD_IC;
        p->cso = (uint8_t)(lower >> 16);
        p->css = (uint8_t)(upper >> 8);
    }
    tx_append(e, addr, (cmd & TXD_DEXT) ? (lower & 0xfffff) : (lower & 0xffff));
    if (cmd & TXD_EOP)
        tx_packet_done(e);
    return cmd & TXD_RS;
}

/* Whether limits grant a frame's first byte now; if not, timer is armed for when they will. */
static bool limits_allow(struct rate_limiter *limits, int timer)
{
    uint64_t wait;

    if (!limits)
        return true;
    wait = rate_limiter_consume(limits, 1, 1, rate_limiter_now_ns());
    if (wait == 0)
        return true;
    rate_limiter_arm_timer(timer, wait);
    return false;
}

/* Sends what the ring holds from TDH to TDT: at most one ring's worth per call. */
static void tx_poll(struct e1000 *e)
{
    struct ring r;
    uint32_t cause = 0;

    if (!(*reg(e, REG_TCTL) & TCTL_EN) || !ring_get(e, REG_TDBAL, &r))
        return;
    for (uint32_t done = 0; r.head != r.tail && done < r.size; done++) {
        uint8_t *d;

        if (!e->tx->active && !e->tx_paid) {
            if (!limits_allow(e->tx_limits, e->tx_timer))
                break; /* TDH stays: the timer comes back for the rest */
            e->tx_paid = true;
        }
        d = ring_desc(e, &r, r.head);
        if (!d) {
            /* A ring outside RAM: the packet in progress is lost, TDH stays. */
            if (e->tx->active)
                tx_drop(e);
            tx_packet_reset(e->tx);
            break;
        }
        if (tx_descriptor(e, d)) {
            __atomic_thread_fence(__ATOMIC_RELEASE);
            d[12] |= TXD_STAT_DD;
            cause |= ICR_TXDW;
        }
        r.head = (r.head + 1) % r.size;
    }
    *reg(e, REG_TDH) = r.head;
    if (r.head == r.tail)
        cause |= ICR_TXQE;
    if (cause)
        raise_cause(e, cause);
}

/* --- Receive ---------------------------------------------------------------------- */

static void watch_tap(struct e1000 *e, bool on)
{
    struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.u32 = TAG_TAP};

    if (on == e->tap_watched || e->tap_dead)
        return;
    e->tap_watched = on;
    epoll_ctl(e->epoll_fd, EPOLL_CTL_MOD, e->tap_fd, &ev);
}

static uint32_t rx_buffer_size(uint32_t rctl)
{
    static const uint32_t normal[4] = {2048, 1024, 512, 256},
                          extended[4] = {2048, 16384, 8192, 4096};

    return ((rctl & RCTL_BSEX) ? extended : normal)[(rctl & RCTL_BSIZE) >> 16];
}

/* Receive address filtering (SDM 3.2.1): exact addresses, the multicast table, promiscuity. */
static bool rx_accept(struct e1000 *e, const uint8_t *f)
{
    uint32_t rctl = *reg(e, REG_RCTL);
    static const unsigned mo_shift[4] = {4, 3, 2, 0};
    unsigned hash;

    if (is_broadcast(f))
        return rctl & RCTL_BAM || rctl & RCTL_MPE;
    if (f[0] & 1) {
        if (rctl & RCTL_MPE)
            return true;
        hash = (f[4] >> mo_shift[(rctl & RCTL_MO) >> 12] |
                (unsigned)f[5] << (8 - mo_shift[(rctl & RCTL_MO) >> 12])) &
               0xfff;
        return *reg(e, REG_MTA + 4 * (hash >> 5)) >> (hash & 31) & 1;
    }
    if (rctl & RCTL_UPE)
        return true;
    for (unsigned i = 0; i < 16; i++) {
        uint32_t lo = *reg(e, REG_RA + 8 * i), hi = *reg(e, REG_RA + 8 * i + 4);
        if ((hi & RAH_AV) && f[0] == (uint8_t)lo && f[1] == (uint8_t)(lo >> 8) &&
            f[2] == (uint8_t)(lo >> 16) && f[3] == (uint8_t)(lo >> 24) && f[4] == (uint8_t)hi &&
            f[5] == (uint8_t)(hi >> 8))
            return true;
    }
    return false;
}

/*
 * The tap's header of the frame just read. The device clears the tap's
 * offloads, but a persistent tap that a virtio-net driver used keeps them
 * until then, and another process could set them again: a frame whose
 * checksum the host left to us is finished here, a GSO frame (larger than
 * any the guest could take) is dropped.
 */
static bool rx_from_tap(struct e1000 *e, size_t len)
{
    struct virtio_net_hdr_v1 h;
    uint16_t start, off;

    memcpy(&h, e->rx, sizeof(h));
    if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        STAT_ADD(e->stats.drops, 1);
        return false;
    }
    if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        memcpy(&start, &h.csum_start, 2);
        memcpy(&off, &h.csum_offset, 2);
        insert_csum(e->rx + NET_TAP_HDR_LEN, len, start, (unsigned)start + off, 0, 0);
    }
    return true;
}

/*
 * Makes the frame just read (len bytes after the tap header) what the MAC
 * would put in memory: the VLAN tag moved to the descriptor (CTRL.VME), short
 * frames padded to 60 bytes, 4 bytes of FCS unless RCTL.SECRC strips it (the
 * tap's frames have none; zeros stand in). Done once per frame, so a frame
 * that waits for descriptors is not changed again. False: dropped (too long).
 */
static bool rx_prepare(struct e1000 *e, size_t len)
{
    uint32_t rctl = *reg(e, REG_RCTL);
    uint8_t *f = e->rx + NET_TAP_HDR_LEN;

    e->rx_off = NET_TAP_HDR_LEN;
    e->rx_status = RXD_STAT_IXSM; /* no receive checksum offload: the stack checks */
    e->rx_special = 0;
    if ((*reg(e, REG_CTRL) & CTRL_VME) && len >= ETH_HLEN + VLAN_TAG_LEN &&
        get_be16(f + 12) == (uint16_t)*reg(e, REG_VET)) {
        e->rx_special = get_be16(f + 14);
        memmove(f + VLAN_TAG_LEN, f, 12);
        f += VLAN_TAG_LEN;
        len -= VLAN_TAG_LEN;
        e->rx_off += VLAN_TAG_LEN;
        e->rx_status |= RXD_STAT_VP;
    }
    if (len < ETH_MIN_FRAME) {
        memset(f + len, 0, ETH_MIN_FRAME - len);
        len = ETH_MIN_FRAME;
    }
    e->rx_fcs = (rctl & RCTL_SECRC) ? 0 : FCS_LEN;
    memset(f + len, 0, e->rx_fcs);
    len += e->rx_fcs;
    if (len > ((rctl & RCTL_LPE) ? MAX_FRAME : MAX_STD_FRAME)) {
        stat_inc(e, ST_ROC, 1);
        STAT_ADD(e->stats.drops, 1);
        return false;
    }
    e->rx_len = len;
    return true;
}

/*
 * Puts the prepared frame into receive descriptors. Returns false if there
 * are not enough of them yet (the frame keeps waiting); true if it is
 * delivered or dropped.
 */
static bool rx_deliver(struct e1000 *e)
{
    uint32_t rctl = *reg(e, REG_RCTL), bufsize = rx_buffer_size(rctl);
    const uint8_t *f = e->rx + e->rx_off;
    size_t len = e->rx_len, done = 0;
    uint16_t special = e->rx_special;
    uint8_t status = e->rx_status;
    uint32_t need, avail, threshold;
    bool ok = true;
    struct ring r;

    if (!ring_get(e, REG_RDBAL, &r))
        return false; /* no usable ring: wait for the driver to set one up */
    need = (uint32_t)((len + bufsize - 1) / bufsize);
    avail = (r.tail + r.size - r.head) % r.size; /* descriptors the driver gave us */
    if (need > r.size - 1) {
        STAT_ADD(e->stats.drops, 1); /* would never fit */
        return true;
    }
    if (need > avail)
        return false;
    while (done < len) {
        size_t n = len - done < bufsize ? len - done : bufsize;
        uint8_t *d = ring_desc(e, &r, r.head), *dst;
        uint64_t addr;
        uint16_t n16 = (uint16_t)n;
        uint8_t errors = 0;

        if (!d) {
            STAT_ADD(e->stats.drops, 1); /* a ring outside RAM: RDH stays */
            ok = false;
            break;
        }
        memcpy(&addr, d, 8);
        dst = hv_gpa_to_hva(e->platform->mem, addr, n);
        if (dst) {
            memcpy(dst, f + done, n);
        } else {
            errors = RXD_ERR_RXE; /* the rest of the frame is dropped with it */
            n16 = 0;
            n = len - done;
            ok = false;
            STAT_ADD(e->stats.drops, 1);
        }
        done += n;
        memcpy(d + 8, &n16, 2);
        d[10] = d[11] = 0; /* checksum */
        d[13] = errors;
        memcpy(d + 14, &special, 2);
        /* Everything else of the descriptor and its buffer before DD. */
        __atomic_thread_fence(__ATOMIC_RELEASE);
        d[12] = (uint8_t)(status | RXD_STAT_DD | (done == len ? RXD_STAT_EOP : 0));
        r.head = (r.head + 1) % r.size;
    }
    *reg(e, REG_RDH) = r.head;
    if (ok && done == len) {
        count_frame(e, false, f, len - e->rx_fcs);
    }
    /* Few descriptors left: RXDMT0 at 1/2, 1/4 or 1/8 of the ring (RCTL.RDMTS). */
    threshold = r.size >> (((rctl & RCTL_RDMTS) >> 8) + 1);
    avail = (r.tail + r.size - r.head) % r.size;
    raise_cause(e, ICR_RXT0 | (avail <= threshold ? ICR_RXDMT0 : 0));
    return true;
}

/*
 * Takes frames from the tap into the ring until either runs out, at most
 * RX_BUDGET per call. A frame with no room waits in e->rx and the tap is
 * not watched until the guest posts descriptors (RXO tells it once).
 */
static void rx_poll(struct e1000 *e)
{
    e->rx_kick = false;
    for (unsigned i = 0; i < RX_BUDGET && !e->tap_dead; i++) {
        bool receiving = (*reg(e, REG_RCTL) & RCTL_EN) && (*reg(e, REG_CTRL) & CTRL_SLU);

        if (!e->rx_len) {
            ssize_t n;

            if (!limits_allow(e->rx_limits, e->rx_timer)) {
                watch_tap(e, false); /* until the timer */
                return;
            }
            n = read(e->tap_fd, e->rx, NET_TAP_HDR_LEN + RX_BUF_SIZE);
            if (n < 0) {
                if (e->rx_limits)
                    rate_limiter_refund(e->rx_limits, 1, 1);
                break; /* EAGAIN: nothing more */
            }
            if (e->rx_limits && n > NET_TAP_HDR_LEN + 1)
                rate_limiter_charge(e->rx_limits, (uint64_t)n - NET_TAP_HDR_LEN - 1, 0);
            /* Runts, receive off or link down: dropped as the chip drops them. */
            if (n < NET_TAP_HDR_LEN + ETH_HLEN || !receiving) {
                STAT_ADD(e->stats.drops, 1);
                continue;
            }
            if (!rx_from_tap(e, (size_t)n - NET_TAP_HDR_LEN))
                continue;
            if (!rx_accept(e, e->rx + NET_TAP_HDR_LEN) ||
                !rx_prepare(e, (size_t)n - NET_TAP_HDR_LEN))
                continue; /* not for us, or too long */
        } else if (!receiving) {
            STAT_ADD(e->stats.drops, 1); /* the frame that waited, receive now off */
            e->rx_len = 0;
            e->rx_blocked = false;
            continue;
        }
        if (!rx_deliver(e)) {
            if (!e->rx_blocked) {
                e->rx_blocked = true;
                stat_inc(e, ST_RNBC, 1);
                raise_cause(e, ICR_RXO);
            }
            watch_tap(e, false);
            return;
        }
        e->rx_len = 0;
        e->rx_blocked = false;
    }
    watch_tap(e, true);
}

/* --- Registers ------------------------------------------------------------------- */

static void kick(struct e1000 *e)
{
    uint64_t one = 1;

    if (write(e->kick_fd, &one, sizeof(one)) < 0) {
        /* only fails when the counter would overflow: the thread is awake anyway */
    }
}

static void device_reset(struct e1000 *e)
{
    memset(e->reg, 0, sizeof(e->reg));
    *reg(e, REG_CTRL) = CTRL_FD | CTRL_SLU | CTRL_SPD1000;
    *reg(e, REG_STATUS) = STATUS_FD | STATUS_LU | STATUS_SPD1000 | STATUS_ASDV;
    *reg(e, REG_VET) = 0x8100;
    *reg(e, REG_PBA) = 0x00100030; /* 48 KiB receive, 16 KiB transmit */
    /* The EEPROM's address is loaded into the first receive address. */
    *reg(e, REG_RA) = (uint32_t)e->mac[0] | (uint32_t)e->mac[1] << 8 | (uint32_t)e->mac[2] << 16 |
                      (uint32_t)e->mac[3] << 24;
    *reg(e, REG_RA + 4) = (uint32_t)e->mac[4] | (uint32_t)e->mac[5] << 8 | RAH_AV;
    e->eecd = 0;
    e->ee_reading = false;
    e->ee_in = 0;
    e->ioaddr = 0;
    phy_reset(e);
    memset(&e->ctx_csum, 0, sizeof(e->ctx_csum));
    memset(&e->ctx_tso, 0, sizeof(e->ctx_tso));
    tx_packet_reset(e->tx);
    e->tx_paid = false;
    e->rx_len = 0;
    e->rx_blocked = false;
    e->rx_kick = true; /* the tap is drained while receive is off */
    /* The link comes up with the reset: tell the driver once it unmasks LSC. */
    *reg(e, REG_ICR) = ICR_LSC;
    update_irq(e);
}

static uint32_t reg_read(struct e1000 *e, unsigned off)
{
    uint32_t v;

    if (off >= REG_FILE_END)
        return 0;
    if (off >= REG_STATS && off < REG_STATS_END) {
        /* Clear on read; a 64-bit counter clears when its high half is read. */
        v = *reg(e, off);
        if (off != REG_STATS + ST_GORCL && off != REG_STATS + ST_GOTCL &&
            off != REG_STATS + ST_TORL && off != REG_STATS + ST_TOTL)
            *reg(e, off) = 0;
        if (off == REG_STATS + ST_GORCL + 4 || off == REG_STATS + ST_GOTCL + 4 ||
            off == REG_STATS + ST_TORL + 4 || off == REG_STATS + ST_TOTL + 4)
            *reg(e, off - 4) = 0;
        return v;
    }
    switch (off) {
    case REG_EECD:
        return eecd_read(e);
    case REG_ICR:
        v = *reg(e, REG_ICR);
        *reg(e, REG_ICR) = 0;
        update_irq(e);
        return v;
    case REG_ICS:
    case REG_IMC:
        return 0; /* write-only */
    case REG_CTRL:
        return *reg(e, REG_CTRL) & ~CTRL_RST;
    default:
        return *reg(e, off);
    }
}

static void reg_write(struct e1000 *e, unsigned off, uint32_t v)
{
    if (off >= REG_FILE_END || (off >= REG_STATS && off < REG_STATS_END))
        return;
    switch (off) {
    case REG_CTRL:
        if (v & CTRL_RST) {
            device_reset(e);
            kick(e);
            return;
        }
        *reg(e, REG_CTRL) = v;
        return;
    case REG_STATUS:
        return; /* read-only */
    case REG_EECD:
        eecd_write(e, v);
        return;
    case REG_EERD:
        eerd_write(e, v);
        return;
    case REG_MDIC:
        mdic_write(e, v);
        return;
    case REG_ICR: /* write one to clear */
        *reg(e, REG_ICR) &= ~v;
        update_irq(e);
        return;
    case REG_ICS:
        raise_cause(e, v);
        return;
    case REG_IMS:
        *reg(e, REG_IMS) |= v;
        update_irq(e);
        return;
    case REG_IMC:
        *reg(e, REG_IMS) &= ~v;
        update_irq(e);
        return;
    case REG_RDLEN:
    case REG_TDLEN:
        *reg(e, off) = v & 0xfff80u;
        return;
    case REG_RDH:
    case REG_RDT:
        *reg(e, off) = v & 0xffff;
        /* While the tap is watched the I/O thread needs no wake-up for new buffers. */
        if (e->rx_blocked) {
            e->rx_kick = true;
            kick(e);
        }
        return;
    case REG_TDH:
        *reg(e, off) = v & 0xffff;
        return;
    case REG_TDT:
    case REG_TCTL:
        *reg(e, off) = off == REG_TDT ? v & 0xffff : v;
        tx_poll(e);
        return;
    case REG_RCTL:
        *reg(e, off) = v;
        e->rx_kick = true;
        kick(e);
        return;
    default:
        *reg(e, off) = v;
    }
}

/* Registers are 32 bits wide: narrower accesses see part of one, 8-byte ones two. */
static void mmio_read(struct e1000 *e, uint64_t off, void *data, unsigned size)
{
    uint64_t v = 0;

    if (size == 8 && !(off & 7)) {
        v = reg_read(e, (unsigned)off) | (uint64_t)reg_read(e, (unsigned)off + 4) << 32;
    } else if (size <= 4 && (off & 3) + size <= 4) {
        v = reg_read(e, (unsigned)(off & ~3ull)) >> (8 * (off & 3));
    }
    memcpy(data, &v, size);
}

static void mmio_write(struct e1000 *e, uint64_t off, const void *data, unsigned size)
{
    uint64_t v = 0;

    memcpy(&v, data, size);
    if (size == 8 && !(off & 7)) {
        reg_write(e, (unsigned)off, (uint32_t)v);
        reg_write(e, (unsigned)off + 4, (uint32_t)(v >> 32));
    } else if (size == 4 && !(off & 3)) {
        reg_write(e, (unsigned)off, (uint32_t)v);
    } else if (size < 4 && (off & 3) + size <= 4 && off < REG_FILE_END) {
        /* Merged into the stored value without a read's side effects. */
        unsigned shift = 8 * (unsigned)(off & 3);
        uint32_t mask = (size == 1 ? 0xffu : 0xffffu) << shift;
        uint32_t cur = *reg(e, (unsigned)(off & ~3ull));
        reg_write(e, (unsigned)(off & ~3ull), (cur & ~mask) | ((uint32_t)v << shift & mask));
    }
}

static void e1000_bar_read(struct pci_device *pdev, unsigned bar, uint64_t off, void *data,
                           unsigned size)
{
    struct e1000 *e = hv_container_of(pdev, struct e1000, pdev);
    uint32_t v = 0;

    pthread_mutex_lock(&e->lock);
    if (bar == E1000_MMIO_BAR) {
        mmio_read(e, off, data, size);
    } else {
        /* IOADDR at 0 selects the register IODATA at 4 reaches (SDM 13.2.1). */
        if (off == 0 && size == 4)
            v = e->ioaddr;
        else if (off == 4 && size == 4 && e->ioaddr < E1000_MMIO_SIZE)
            v = reg_read(e, e->ioaddr & ~3u);
        memset(data, 0, size);
        memcpy(data, &v, size < 4 ? size : 4);
    }
    pthread_mutex_unlock(&e->lock);
}

static void e1000_bar_write(struct pci_device *pdev, unsigned bar, uint64_t off, const void *data,
                            unsigned size)
{
    struct e1000 *e = hv_container_of(pdev, struct e1000, pdev);
    uint32_t v = 0;

    pthread_mutex_lock(&e->lock);
    if (bar == E1000_MMIO_BAR) {
        mmio_write(e, off, data, size);
    } else if (size == 4) {
        memcpy(&v, data, 4);
        if (off == 0)
            e->ioaddr = v & 0x1fffcu;
        else if (off == 4)
            reg_write(e, e->ioaddr, v);
    }
    pthread_mutex_unlock(&e->lock);
}

static void e1000_pci_reset(struct pci_device *pdev)
{
    struct e1000 *e = hv_container_of(pdev, struct e1000, pdev);

    pthread_mutex_lock(&e->lock);
    device_reset(e);
    pthread_mutex_unlock(&e->lock);
    kick(e);
}

/* --- The I/O thread ----------------------------------------------------------------- */

static void drain(int fd)
{
    uint64_t n;

    while (read(fd, &n, sizeof(n)) > 0) {
    }
}

/* A kick: transmit, and receive again if the guest made room or changed RCTL. */
static void service_kick(struct e1000 *e)
{
    drain(e->kick_fd);
    pthread_mutex_lock(&e->lock);
    tx_poll(e);
    if (e->rx_kick)
        rx_poll(e);
    pthread_mutex_unlock(&e->lock);
}

static void service_tap(struct e1000 *e)
{
    pthread_mutex_lock(&e->lock);
    rx_poll(e);
    pthread_mutex_unlock(&e->lock);
}

/* A limiter's timer: that direction may go on. */
static void service_timer(struct e1000 *e, int fd, bool rx)
{
    drain(fd);
    pthread_mutex_lock(&e->lock);
    if (rx) {
        rx_poll(e);
    } else {
        tx_poll(e);
    }
    pthread_mutex_unlock(&e->lock);
}

void e1000_service(struct e1000 *e)
{
    service_kick(e);
    service_tap(e);
}

/* Between events (nothing half done: each event is served whole under e->lock). False: leave. */
static bool park_point(struct e1000 *e)
{
    bool go_on;

    pthread_mutex_lock(&e->park_lock);
    if (e->park_req && !e->stopping) {
        e->parked = true;
        pthread_cond_broadcast(&e->park_cond);
        while (e->park_req && !e->stopping)
            pthread_cond_wait(&e->park_cond, &e->park_lock);
        e->parked = false;
    }
    go_on = !e->stopping;
    pthread_mutex_unlock(&e->park_lock);
    return go_on;
}

static void *io_thread(void *arg)
{
    struct e1000 *e = arg;
    const struct hv_platform *p = e->platform;
    struct epoll_event ev[6];

    if (p->thread_start)
        p->thread_start(p->opaque, HV_THREAD_IO);
    for (;;) {
        if (!park_point(e))
            return NULL;
        int n = epoll_wait(e->epoll_fd, ev, 6, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return NULL;
        for (int i = 0; i < n; i++) {
            /* The rest of a batch that waited out a park is served after it: each
             * service reads its fd non-blocking and finds nothing if it is stale. */
            if (!park_point(e))
                return NULL;
            switch (ev[i].data.u32) {
            case TAG_STOP:
                return NULL;
            case TAG_PARK:
                drain(e->park_fd);
                break;
            case TAG_KICK:
                service_kick(e);
                break;
            case TAG_TX_TIMER:
            case TAG_RX_TIMER:
                service_timer(e, ev[i].data.u32 == TAG_RX_TIMER ? e->rx_timer : e->tx_timer,
                              ev[i].data.u32 == TAG_RX_TIMER);
                break;
            case TAG_TAP:
                if (ev[i].events & (EPOLLERR | EPOLLHUP)) {
                    /* Gone for good (a deleted tap): epoll cannot mask errors, so stop watching. */
                    pthread_mutex_lock(&e->lock);
                    epoll_ctl(e->epoll_fd, EPOLL_CTL_DEL, e->tap_fd, NULL);
                    e->tap_dead = true;
                    pthread_mutex_unlock(&e->lock);
                    fprintf(stderr, "vmmd: e1000 at 00:%02x.0: its tap failed; no more input\n",
                            e->pdev.devfn >> 3);
                    break;
                }
                service_tap(e);
                break;
            }
        }
    }
}

/* --- Set-up --------------------------------------------------------------------------- */

int e1000_create_fd(struct e1000 **out, const struct hv_platform *platform, int fd,
                    const uint8_t mac[6])
{
    static const struct pci_device_ops pci_ops = {
        .bar_read = e1000_bar_read, .bar_write = e1000_bar_write, .reset = e1000_pci_reset};
    struct e1000 *e = calloc(1, sizeof(*e));
    struct epoll_event kick_ev = {.events = EPOLLIN, .data.u32 = TAG_KICK};
    struct epoll_event tap_ev = {.events = EPOLLIN, .data.u32 = TAG_TAP};
    struct epoll_event stop_ev = {.events = EPOLLIN, .data.u32 = TAG_STOP};
    struct epoll_event tx_timer_ev = {.events = EPOLLIN, .data.u32 = TAG_TX_TIMER};
    struct epoll_event rx_timer_ev = {.events = EPOLLIN, .data.u32 = TAG_RX_TIMER};
    struct epoll_event park_ev = {.events = EPOLLIN, .data.u32 = TAG_PARK};
    int rc;

    if (!e) {
        close(fd);
        return -ENOMEM;
    }
    e->tap_fd = fd;
    e->kick_fd = e->stop_fd = e->epoll_fd = e->tx_timer = e->rx_timer = e->park_fd = -1;
    e->platform = platform;
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->park_lock, NULL);
    pthread_cond_init(&e->park_cond, NULL);
    memcpy(e->mac, mac, 6);
    pci_device_init(&e->pdev, "e1000", &pci_ops, platform, E1000_VENDOR_ID, E1000_DEVICE_ID,
                    E1000_CLASS, E1000_REVISION);
    pci_device_set_subsystem(&e->pdev, E1000_VENDOR_ID, E1000_SUBSYS_ID);
    pci_device_enable_intx(&e->pdev);
    e->tx = calloc(1, sizeof(*e->tx)); /* all of it is state a snapshot saves */
    e->seg = malloc(MAX_FRAME + ETH_MIN_FRAME);
    e->rx = malloc(NET_TAP_HDR_LEN + RX_BUF_SIZE + ETH_MIN_FRAME + FCS_LEN);
    if (!e->tx || !e->seg || !e->rx) {
        rc = -ENOMEM;
        goto err;
    }
    if ((rc = pci_device_add_bar(&e->pdev, E1000_MMIO_BAR, E1000_MMIO_SIZE, false)) ||
        (rc = pci_device_add_bar(&e->pdev, E1000_IO_BAR, E1000_IO_SIZE, true)))
        goto err;
    e->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    e->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    e->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    e->tx_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    e->rx_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    e->park_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (e->kick_fd < 0 || e->stop_fd < 0 || e->epoll_fd < 0 || e->tx_timer < 0 || e->rx_timer < 0 ||
        e->park_fd < 0 || epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, e->park_fd, &park_ev) < 0 ||
        epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, e->tx_timer, &tx_timer_ev) < 0 ||
        epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, e->rx_timer, &rx_timer_ev) < 0 ||
        epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, e->kick_fd, &kick_ev) < 0 ||
        epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, e->tap_fd, &tap_ev) < 0 ||
        epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, e->stop_fd, &stop_ev) < 0) {
        rc = -errno;
        goto err;
    }
    e->tap_watched = true;
    /* No offloads toward the guest: the 82540EM receives whole, checksummed frames. A
     * socketpair standing in for the tap (tests) answers ENOTTY. */
    if (ioctl(fd, TUNSETOFFLOAD, 0ul) < 0 && errno != ENOTTY)
        fprintf(stderr, "vmmd: e1000: TUNSETOFFLOAD 0: %s\n", strerror(errno));
    eeprom_init(e);
    device_reset(e);
    *out = e;
    return 0;

err:
    e1000_destroy(e);
    return rc;
}

int e1000_create(struct e1000 **out, const struct hv_platform *platform,
                 const struct hv_nic_config *cfg, char *err, size_t errlen)
{
    uint8_t mac[6];
    int fd = net_tap_get(cfg, mac, err, errlen), rc;

    if (fd < 0)
        return fd;
    if ((rc = e1000_create_fd(out, platform, fd, mac)))
        snprintf(err, errlen, "e1000: %s", strerror(-rc)); /* it closed fd */
    return rc;
}

struct pci_device *e1000_pci(struct e1000 *e)
{
    return &e->pdev;
}

int e1000_start(struct e1000 *e)
{
    int rc = -pthread_create(&e->thread, NULL, io_thread, e);

    e->thread_started = rc == 0;
    return rc;
}

void e1000_set_limits(struct e1000 *e, struct rate_limiter *tx, struct rate_limiter *rx)
{
    pthread_mutex_lock(&e->lock);
    e->tx_limits = tx;
    e->rx_limits = rx;
    pthread_mutex_unlock(&e->lock);
}

void e1000_limits_changed(struct e1000 *e)
{
    /* Waits computed under the old limits may be far too long now: look again at once. */
    rate_limiter_arm_timer(e->tx_timer, 1);
    rate_limiter_arm_timer(e->rx_timer, 1);
}

void e1000_get_stats(const struct e1000 *e, struct hv_nic_stats *out)
{
    out->rx_bytes = __atomic_load_n(&e->stats.rx_bytes, __ATOMIC_RELAXED);
    out->tx_bytes = __atomic_load_n(&e->stats.tx_bytes, __ATOMIC_RELAXED);
    out->rx_packets = __atomic_load_n(&e->stats.rx_packets, __ATOMIC_RELAXED);
    out->tx_packets = __atomic_load_n(&e->stats.tx_packets, __ATOMIC_RELAXED);
    out->drops = __atomic_load_n(&e->stats.drops, __ATOMIC_RELAXED);
}

void e1000_destroy(struct e1000 *e)
{
    uint64_t one = 1;

    if (!e)
        return;
    if (e->thread_started) {
        pthread_mutex_lock(&e->park_lock);
        e->stopping = true; /* a parked thread leaves too */
        pthread_cond_broadcast(&e->park_cond);
        pthread_mutex_unlock(&e->park_lock);
        if (write(e->stop_fd, &one, sizeof(one)) < 0) {
            /* cannot fail for a fresh eventfd */
        }
        pthread_join(e->thread, NULL);
    }
    if (e->epoll_fd >= 0)
        close(e->epoll_fd);
    if (e->kick_fd >= 0)
        close(e->kick_fd);
    if (e->stop_fd >= 0)
        close(e->stop_fd);
    if (e->tap_fd >= 0)
        close(e->tap_fd);
    if (e->tx_timer >= 0)
        close(e->tx_timer);
    if (e->rx_timer >= 0)
        close(e->rx_timer);
    if (e->park_fd >= 0)
        close(e->park_fd);
    pthread_mutex_destroy(&e->pdev.intx_lock);
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->park_lock);
    pthread_cond_destroy(&e->park_cond);
    free(e->tx);
    free(e->seg);
    free(e->rx);
    free(e);
}

/* --- Snapshot ------------------------------------------------------------------------- */

#define E1K_TAG    SNAP_TAG('E', '1', 'K', ' ')
#define EECD_STATE (EECD_SK | EECD_CS | EECD_DI | EECD_FWE | EECD_REQ)

void e1000_park(struct e1000 *e)
{
    uint64_t one = 1;

    pthread_mutex_lock(&e->park_lock);
    e->park_req = true;
    if (e->thread_started && !e->parked) {
        if (write(e->park_fd, &one, sizeof(one)) < 0) {
            /* only on counter overflow: the thread has been woken anyway */
        }
        while (!e->parked && !e->stopping)
            pthread_cond_wait(&e->park_cond, &e->park_lock);
    }
    pthread_mutex_unlock(&e->park_lock);
}

void e1000_unpark(struct e1000 *e)
{
    pthread_mutex_lock(&e->park_lock);
    e->park_req = false;
    pthread_cond_broadcast(&e->park_cond);
    pthread_mutex_unlock(&e->park_lock);
}

static void save_context(struct snap_w *w, const struct tx_context *c)
{
    snap_w_u8(w, c->ipcss);
    snap_w_u8(w, c->ipcso);
    snap_w_u8(w, c->tucss);
    snap_w_u8(w, c->tucso);
    snap_w_u8(w, c->tucmd);
    snap_w_u8(w, c->hdr_len);
    snap_w_u16(w, c->ipcse);
    snap_w_u16(w, c->tucse);
    snap_w_u16(w, c->mss);
}

static void load_context(struct snap_r *r, struct tx_context *c)
{
    c->ipcss = snap_r_u8(r);
    c->ipcso = snap_r_u8(r);
    c->tucss = snap_r_u8(r);
    c->tucso = snap_r_u8(r);
    c->tucmd = snap_r_u8(r);
    c->hdr_len = snap_r_u8(r);
    c->ipcse = snap_r_u16(r);
    c->tucse = snap_r_u16(r);
    c->mss = snap_r_u16(r);
}

void e1000_save(struct e1000 *e, struct snap_w *w)
{
    size_t mark = snap_w_begin(w, E1K_TAG, 1);
    const struct tx_packet *p = e->tx;

    pthread_mutex_lock(&e->lock);
    pci_device_save(&e->pdev, w);
    snap_w_bytes(w, e->mac, sizeof(e->mac));
    snap_w_u32(w, REG_FILE_END / 4);
    for (unsigned i = 0; i < REG_FILE_END / 4; i++)
        snap_w_u32(w, e->reg[i]);
    snap_w_u32(w, e->ioaddr);
    for (unsigned i = 0; i < 64; i++)
        snap_w_u16(w, e->eeprom[i]);
    for (unsigned i = 0; i < 32; i++)
        snap_w_u16(w, e->phy[i]);
    snap_w_u32(w, e->eecd);
    snap_w_u32(w, e->ee_in);
    snap_w_u32(w, e->ee_cmd);
    snap_w_u32(w, (uint32_t)e->ee_out);
    snap_w_bool(w, e->ee_reading);
    save_context(w, &e->ctx_csum);
    save_context(w, &e->ctx_tso);
    /* The packet gathered so far: its descriptors are done (TDH is past them). */
    snap_w_bool(w, p->active);
    snap_w_bool(w, p->bad);
    snap_w_bool(w, p->tse);
    snap_w_bool(w, p->legacy);
    snap_w_u8(w, p->popts);
    snap_w_u8(w, p->cmd);
    snap_w_u8(w, p->cso);
    snap_w_u8(w, p->css);
    snap_w_u16(w, p->vlan);
    snap_w_u32(w, (uint32_t)p->len);
    snap_w_bytes(w, p->buf, p->len);
    /* The received frame that waits for descriptors, as rx_prepare left it. */
    snap_w_u32(w, (uint32_t)e->rx_len);
    snap_w_u32(w, (uint32_t)e->rx_off);
    snap_w_u32(w, (uint32_t)e->rx_fcs);
    snap_w_u8(w, e->rx_status);
    snap_w_u16(w, e->rx_special);
    snap_w_bool(w, e->rx_blocked);
    snap_w_bytes(w, e->rx + e->rx_off, e->rx_len);
    pthread_mutex_unlock(&e->lock);
    snap_w_end(w, mark);
}

/* What e1000_load reads, kept apart until all of it is known to be valid. */
struct e1000_state {
    uint32_t reg[REG_FILE_END / 4];
    uint32_t ioaddr, eecd, ee_in, ee_cmd;
    int ee_out;
    bool ee_reading;
    uint16_t eeprom[64], phy[32];
    struct tx_context ctx_csum, ctx_tso;
    struct tx_packet tx;
    uint32_t rx_len, rx_off, rx_fcs;
    uint8_t rx_status;
    uint16_t rx_special;
    bool rx_blocked;
    uint8_t rx[RX_BUF_SIZE + ETH_MIN_FRAME + FCS_LEN];
};

static void read_state(struct e1000 *e, struct snap_r *r, struct e1000_state *s)
{
    struct tx_packet *p = &s->tx;
    uint8_t mac[6];
    uint32_t n;

    snap_r_bytes(r, mac, sizeof(mac));
    if (snap_r_ok(r) && memcmp(mac, e->mac, sizeof(mac)))
        snap_r_fail(r, -EINVAL,
                    "e1000: saved with MAC %02x:%02x:%02x:%02x:%02x:%02x, not this one's", mac[0],
                    mac[1], mac[2], mac[3], mac[4], mac[5]);
    n = snap_r_u32(r);
    if (snap_r_ok(r) && n != REG_FILE_END / 4)
        snap_r_fail(r, -EINVAL, "e1000: %u registers saved, the model has %u", n, REG_FILE_END / 4);
    /* Register values need no check: every use checks them (ring_get, the EEPROM reads). */
    for (unsigned i = 0; i < REG_FILE_END / 4 && snap_r_ok(r); i++)
        s->reg[i] = snap_r_u32(r);
    s->ioaddr = snap_r_u32(r);
    for (unsigned i = 0; i < 64; i++)
        s->eeprom[i] = snap_r_u16(r);
    for (unsigned i = 0; i < 32; i++)
        s->phy[i] = snap_r_u16(r);
    s->eecd = snap_r_u32(r);
    s->ee_in = snap_r_u32(r);
    s->ee_cmd = snap_r_u32(r);
    s->ee_out = (int)snap_r_u32(r);
    s->ee_reading = snap_r_bool(r);
    /* The Microwire machine's ranges (eecd_write): 9 bits in, a bit index up to two passes. */
    if (snap_r_ok(r) && ((s->eecd & ~EECD_STATE) || s->ee_in > 9 || s->ee_cmd >= 1u << 9 ||
                         s->ee_out < -1 || s->ee_out > 64 * 16 * 2))
        snap_r_fail(r, -EINVAL, "e1000: EEPROM state eecd %#x, %u bits in, out at %d", s->eecd,
                    s->ee_in, s->ee_out);
    load_context(r, &s->ctx_csum);
    load_context(r, &s->ctx_tso);
    p->active = snap_r_bool(r);
    p->bad = snap_r_bool(r);
    p->tse = snap_r_bool(r);
    p->legacy = snap_r_bool(r);
    p->popts = snap_r_u8(r);
    p->cmd = snap_r_u8(r);
    p->cso = snap_r_u8(r);
    p->css = snap_r_u8(r);
    p->vlan = snap_r_u16(r);
    /* tx_append keeps room to pad a short frame in place. */
    p->len = snap_r_below(r, TX_BUF_SIZE - ETH_MIN_FRAME + 1, "e1000 transmit packet length");
    snap_r_bytes(r, p->buf, p->len);
    s->rx_len = snap_r_below(r, MAX_FRAME + 1, "e1000 waiting frame length");
    s->rx_off = snap_r_u32(r);
    s->rx_fcs = snap_r_u32(r);
    s->rx_status = snap_r_u8(r);
    s->rx_special = snap_r_u16(r);
    s->rx_blocked = snap_r_bool(r);
    /* rx_prepare puts the frame after the tap header, or 4 bytes later (a VLAN tag taken out). */
    if (snap_r_ok(r) &&
        ((s->rx_off != NET_TAP_HDR_LEN && s->rx_off != NET_TAP_HDR_LEN + VLAN_TAG_LEN) ||
         (s->rx_fcs != 0 && s->rx_fcs != FCS_LEN)))
        snap_r_fail(r, -EINVAL, "e1000: waiting frame at %u with %u FCS bytes", s->rx_off,
                    s->rx_fcs);
    snap_r_bytes(r, s->rx, snap_r_ok(r) ? s->rx_len : 0);
}

int e1000_load(struct e1000 *e, struct snap_r *r)
{
    struct e1000_state *s = malloc(sizeof(*s));
    struct snap_w pci_backup;
    struct snap_r sub;
    uint16_t version;

    snap_w_init(&pci_backup);
    if (!s)
        return snap_r_fail(r, -ENOMEM, "e1000: out of memory");
    if (snap_r_section(r, E1K_TAG, "e1000", 1, &sub, &version))
        goto out;
    /* The PCI function applies as it is read: keep its state to put back on a later error. */
    pci_device_save(&e->pdev, &pci_backup);
    if (pci_device_load(&e->pdev, &sub) == 0)
        read_state(e, &sub, s);
    if (snap_r_end(r, &sub)) {
        if (!pci_backup.err) {
            struct snap_r again;
            snap_r_init(&again, pci_backup.buf, pci_backup.len);
            pci_device_load(&e->pdev, &again);
        }
        goto out;
    }
    pthread_mutex_lock(&e->lock);
    memcpy(e->reg, s->reg, sizeof(e->reg));
    e->ioaddr = s->ioaddr;
    memcpy(e->eeprom, s->eeprom, sizeof(e->eeprom));
    memcpy(e->phy, s->phy, sizeof(e->phy));
    e->eecd = s->eecd;
    e->ee_in = s->ee_in;
    e->ee_cmd = s->ee_cmd;
    e->ee_out = s->ee_out;
    e->ee_reading = s->ee_reading;
    e->ctx_csum = s->ctx_csum;
    e->ctx_tso = s->ctx_tso;
    e->tx->active = s->tx.active;
    e->tx->bad = s->tx.bad;
    e->tx->tse = s->tx.tse;
    e->tx->legacy = s->tx.legacy;
    e->tx->popts = s->tx.popts;
    e->tx->cmd = s->tx.cmd;
    e->tx->cso = s->tx.cso;
    e->tx->css = s->tx.css;
    e->tx->vlan = s->tx.vlan;
    e->tx->len = s->tx.len;
    memcpy(e->tx->buf, s->tx.buf, s->tx.len);
    e->tx_paid = false; /* limiters are not state: a packet in progress is not asked again */
    e->rx_len = s->rx_len;
    e->rx_off = s->rx_off;
    e->rx_fcs = s->rx_fcs;
    e->rx_status = s->rx_status;
    e->rx_special = s->rx_special;
    e->rx_blocked = s->rx_blocked;
    memcpy(e->rx + e->rx_off, s->rx, s->rx_len);
    /* The level follows ICR & IMS; the I/O thread, once it runs, transmits what TDH..TDT
     * still holds and receives (or delivers the waiting frame) and watches the tap again. */
    update_irq(e);
    e->rx_kick = true;
    pthread_mutex_unlock(&e->lock);
    kick(e);
out:
    snap_w_free(&pci_backup);
    free(s);
    return r->err;
}
