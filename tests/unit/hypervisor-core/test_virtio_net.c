/*
 * virtio-net (devices/virtio/virtio_net.c): its offloads and what it does
 * with hostile headers. The header checks are tested as the pure functions
 * they are; the datapath end to end through the virtio-pci transport and
 * its real I/O thread, with a datagram socketpair standing in for the tap
 * (one packet per read and write, each with the 12-byte header, as a tap
 * opened with IFF_VNET_HDR behaves). Guest RAM is the fake platform's.
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
#include <time.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "devices/virtio/virtio_net.h"
#include "fake_platform.h"

#define RAM_SIZE    (1u << 20)
#define QSIZE       16
#define RING_GPA(q) (0x1000u + (q)*0x1000u) /* desc, then avail at +0x400, used at +0x800 */
#define BUF_GPA(q)  (0x10000u + (q)*0x20000u)
#define BUF_SIZE    0x8000u
#define RX          0
#define TX          1
#define HDR_LEN     sizeof(struct virtio_net_hdr_v1)

#define BAR_REGS          0
#define NOTIFY_OFF        0x3000
#define NOTIFY_MULTIPLIER 4
#define S_DRIVER_UP       (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER)
#define F(bit)            (1ull << (bit))
#define F_TSO                                                                                      \
    (F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) |                \
     F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6))

struct fixture {
    struct fake_platform fp;
    struct virtio_net *net;
    struct virtio_pci *vp;
    int host; /* our end of the "tap" */
};

static const uint8_t test_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

/* A device over a fresh socketpair; started or not (a restore loads before the start). */
static struct fixture *new_fixture(const uint8_t mac[6], bool start)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int sv[2];

    assert_non_null(f);
    fake_platform_init(&f->fp);
    fake_platform_enable_pci(&f->fp);
    fake_platform_add_ram(&f->fp, RAM_SIZE);
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(virtio_net_create_fd(&f->net, &f->fp.platform, sv[0], mac), 0);
    f->host = sv[1];
    f->vp = virtio_net_transport(f->net);
    pci_device_config_write(&f->vp->pdev, PCI_COMMAND, 2, PCI_COMMAND_MASTER);
    if (start)
        assert_int_equal(virtio_pci_start(f->vp), 0);
    return f;
}

static int setup(void **state)
{
    *state = new_fixture(test_mac, true);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    virtio_net_destroy(f->net); /* NULL if the test destroyed it */
    close(f->host);
    fake_platform_free_ram(&f->fp);
    free(f);
    return 0;
}

/* --- the driver's side ------------------------------------------------------------------ */

static void common_wr(struct fixture *f, unsigned off, unsigned size, uint64_t v)
{
    f->vp->pdev.ops->bar_write(&f->vp->pdev, BAR_REGS, off, &v, size);
}

static uint64_t common_rd(struct fixture *f, unsigned off, unsigned size)
{
    uint64_t v = 0;

    f->vp->pdev.ops->bar_read(&f->vp->pdev, BAR_REGS, off, &v, size);
    return v;
}

static void *gpa(struct fixture *f, uint64_t addr)
{
    return f->fp.ram.host + addr;
}

static struct vring_desc *desc(struct fixture *f, unsigned q)
{
    return gpa(f, RING_GPA(q));
}

static struct vring_avail *avail(struct fixture *f, unsigned q)
{
    return gpa(f, RING_GPA(q) + 0x400);
}

static struct vring_used *used(struct fixture *f, unsigned q)
{
    return gpa(f, RING_GPA(q) + 0x800);
}

static uint16_t used_idx(struct fixture *f, unsigned q)
{
    return __atomic_load_n(&used(f, q)->idx, __ATOMIC_ACQUIRE);
}

/* The virtio 3.1.1 sequence with both queues; false if FEATURES_OK did not stick. */
static bool driver_init(struct fixture *f, uint64_t features)
{
    common_wr(f, VIRTIO_PCI_COMMON_STATUS, 1, 0);
    memset(f->fp.ram.host, 0, RAM_SIZE);
    common_wr(f, VIRTIO_PCI_COMMON_STATUS, 1, S_DRIVER_UP);
    features |= F(VIRTIO_F_VERSION_1);
    common_wr(f, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    common_wr(f, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)features);
    common_wr(f, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    common_wr(f, VIRTIO_PCI_COMMON_GF, 4, features >> 32);
    common_wr(f, VIRTIO_PCI_COMMON_STATUS, 1, S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK);
    if (!(common_rd(f, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK))
        return false;
    for (unsigned q = 0; q < 2; q++) {
        common_wr(f, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
        common_wr(f, VIRTIO_PCI_COMMON_Q_SIZE, 2, QSIZE);
        common_wr(f, VIRTIO_PCI_COMMON_Q_DESCLO, 8, RING_GPA(q));
        common_wr(f, VIRTIO_PCI_COMMON_Q_AVAILLO, 8, RING_GPA(q) + 0x400);
        common_wr(f, VIRTIO_PCI_COMMON_Q_USEDLO, 8, RING_GPA(q) + 0x800);
        common_wr(f, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    }
    common_wr(f, VIRTIO_PCI_COMMON_STATUS, 1,
              S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
    return true;
}

static uint64_t device_features(struct fixture *f)
{
    common_wr(f, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
    uint64_t lo = common_rd(f, VIRTIO_PCI_COMMON_DF, 4);
    common_wr(f, VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
    return lo | common_rd(f, VIRTIO_PCI_COMMON_DF, 4) << 32;
}

/* Makes descriptor chain head..head+n-1 available on q and kicks. */
static void post_chain(struct fixture *f, unsigned q, uint16_t head)
{
    struct vring_avail *a = avail(f, q);

    a->ring[a->idx % QSIZE] = head;
    __atomic_store_n(&a->idx, (uint16_t)(a->idx + 1), __ATOMIC_RELEASE);
    common_wr(f, NOTIFY_OFF + q * NOTIFY_MULTIPLIER, 2, q);
}

static void set_desc(struct fixture *f, unsigned q, uint16_t i, uint64_t addr, uint32_t len,
                     uint16_t flags)
{
    desc(f, q)[i] = (struct vring_desc){.addr = addr, .len = len, .flags = flags, .next = i + 1};
}

/*
 * Transmits hdr and a frame of len bytes (byte k = k * 7) with the header cut after
 * split bytes into its own descriptor, as a driver may; returns what the tap got
 * (-1 if nothing arrived once the device completed the request).
 */
static ssize_t transmit(struct fixture *f, const struct virtio_net_hdr_v1 *hdr, uint32_t len,
                        unsigned split, uint8_t *got, size_t gotlen)
{
    uint16_t before = used_idx(f, TX);
    uint8_t *buf = gpa(f, BUF_GPA(TX));

    memcpy(buf, hdr, HDR_LEN);
    for (uint32_t k = 0; k < len; k++)
        buf[HDR_LEN + k] = (uint8_t)(k * 7);
    set_desc(f, TX, 0, BUF_GPA(TX), split, VRING_DESC_F_NEXT);
    set_desc(f, TX, 1, BUF_GPA(TX) + split, (uint32_t)HDR_LEN - split + len, 0);
    post_chain(f, TX, 0);
    assert_true(WAIT_FOR(used_idx(f, TX) == (uint16_t)(before + 1)));
    return recv(f->host, got, gotlen, MSG_DONTWAIT);
}

static struct virtio_net_hdr_v1 tso4_hdr(uint16_t gso_size)
{
    return (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                      .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                                      .hdr_len = 54,
                                      .gso_size = gso_size,
                                      .csum_start = 34,
                                      .csum_offset = 16};
}

/* --- tests ------------------------------------------------------------------------------ */

static void test_offloads_offered(void **state)
{
    struct fixture *f = *state;
    uint64_t df = device_features(f);

    assert_true((df & F_TSO) == F_TSO);
    assert_true(df & F(VIRTIO_NET_F_HOST_ECN));
    assert_true(df & F(VIRTIO_NET_F_GUEST_ECN));
    /* Not offered: UDP fragmentation offload, and merged receive buffers. */
    assert_false(df & (F(VIRTIO_NET_F_HOST_UFO) | F(VIRTIO_NET_F_GUEST_UFO)));
    assert_false(df & F(VIRTIO_NET_F_MRG_RXBUF));
    /* A driver that takes more than that does not get FEATURES_OK. */
    assert_false(driver_init(f, F_TSO | F(VIRTIO_NET_F_GUEST_UFO)));
    assert_true(driver_init(f, F_TSO));
}

static void test_tap_offloads_follow_guest_features(void **state)
{
    (void)state;
    assert_int_equal(virtio_net__tap_offloads(0), 0);
    /* The host side of the guest's features does not matter to the tap's. */
    assert_int_equal(virtio_net__tap_offloads(F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4)), 0);
    assert_int_equal(virtio_net__tap_offloads(F(VIRTIO_NET_F_GUEST_CSUM)), TUN_F_CSUM);
    assert_int_equal(virtio_net__tap_offloads(F_TSO), TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
    assert_int_equal(virtio_net__tap_offloads(F_TSO | F(VIRTIO_NET_F_GUEST_ECN)),
                     TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
    /* A hostile driver acking TSO without its dependency gets no offloads at all. */
    assert_int_equal(
        virtio_net__tap_offloads(F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_ECN)), 0);
    /* ECN alone is nothing without a TSO. */
    assert_int_equal(
        virtio_net__tap_offloads(F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_ECN)),
        TUN_F_CSUM);
}

static void test_tx_header_checks(void **state)
{
    struct virtio_net_hdr_v1 h;
    const uint64_t all = F_TSO | F(VIRTIO_NET_F_HOST_ECN);
    (void)state;

    /* A plain frame: GSO fields and flags the guest had no business setting are cleared. */
    h = (struct virtio_net_hdr_v1){.flags = 0xfe,
                                   .hdr_len = 999,
                                   .gso_size = 5,
                                   .num_buffers = 7,
                                   .csum_start = 1,
                                   .csum_offset = 2};
    assert_true(virtio_net__tx_header_ok(&h, 60, 0));
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.hdr_len, 0);
    assert_int_equal(h.gso_size, 0);
    assert_int_equal(h.num_buffers, 0);
    assert_int_equal(h.csum_start, 0);
    /* Too short for Ethernet, too long for any packet. */
    h = (struct virtio_net_hdr_v1){0};
    assert_false(virtio_net__tx_header_ok(&h, 13, all));
    assert_false(virtio_net__tx_header_ok(&h, 65535 + 14 + 5, all));
    /* A chain of buffers adding up to more than 4 GiB is not a short frame in disguise. */
    assert_false(virtio_net__tx_header_ok(&h, (1ull << 32) + 100, all));

    /* Checksum offload: only with CSUM, and the checksum field inside the frame. */
    h = (struct virtio_net_hdr_v1){
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16};
    assert_false(virtio_net__tx_header_ok(&h, 100, 0));
    assert_true(virtio_net__tx_header_ok(&h, 100, F(VIRTIO_NET_F_CSUM)));
    assert_true(virtio_net__tx_header_ok(&h, 52, F(VIRTIO_NET_F_CSUM)));
    assert_false(virtio_net__tx_header_ok(&h, 51, F(VIRTIO_NET_F_CSUM)));
    h.csum_start = 0xffff;
    h.csum_offset = 0xffff; /* no 16-bit wrap-around makes this fit */
    assert_false(virtio_net__tx_header_ok(&h, 65535 + 14, F(VIRTIO_NET_F_CSUM)));

    /* TSO: each type only when negotiated, with a checksum, a size, headers in the frame. */
    h = tso4_hdr(1448);
    assert_true(virtio_net__tx_header_ok(&h, 30000, all));
    h = tso4_hdr(1448);
    assert_false(virtio_net__tx_header_ok(&h, 30000, all & ~F(VIRTIO_NET_F_HOST_TSO4)));
    h = tso4_hdr(1448);
    h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
    assert_true(virtio_net__tx_header_ok(&h, 30000, all));
    h = tso4_hdr(1448);
    h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
    assert_false(virtio_net__tx_header_ok(&h, 30000, all & ~F(VIRTIO_NET_F_HOST_TSO6)));
    h = tso4_hdr(0);
    assert_false(virtio_net__tx_header_ok(&h, 30000, all));
    h = tso4_hdr(1448);
    h.flags = 0;
    assert_false(virtio_net__tx_header_ok(&h, 30000, all));
    h = tso4_hdr(1448);
    h.hdr_len = 30001;
    assert_false(virtio_net__tx_header_ok(&h, 30000, all));
    h = tso4_hdr(1448);
    h.gso_type |= VIRTIO_NET_HDR_GSO_ECN;
    assert_true(virtio_net__tx_header_ok(&h, 30000, all));
    h = tso4_hdr(1448);
    h.gso_type |= VIRTIO_NET_HDR_GSO_ECN;
    assert_false(virtio_net__tx_header_ok(&h, 30000, F_TSO));
    /* ECN on a frame that is not segmented, UDP (UFO is not offered), unknown types. */
    h = (struct virtio_net_hdr_v1){.gso_type = VIRTIO_NET_HDR_GSO_ECN};
    assert_false(virtio_net__tx_header_ok(&h, 100, all));
    for (unsigned t = 0; t < 256; t++) {
        h = tso4_hdr(1448);
        h.gso_type = (uint8_t)t;
        bool ok = virtio_net__tx_header_ok(&h, 30000, all);
        unsigned base = t & ~(unsigned)VIRTIO_NET_HDR_GSO_ECN;
        assert_int_equal(ok, base == VIRTIO_NET_HDR_GSO_TCPV4 || base == VIRTIO_NET_HDR_GSO_TCPV6 ||
                                 t == VIRTIO_NET_HDR_GSO_NONE);
    }
}

static void test_rx_header_checks(void **state)
{
    struct virtio_net_hdr_v1 h;
    (void)state;

    h = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_DATA_VALID};
    assert_true(virtio_net__rx_header_ok(&h, 0));
    assert_int_equal(h.flags, 0); /* DATA_VALID means nothing without GUEST_CSUM */
    assert_int_equal(h.num_buffers, 1);
    h = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_DATA_VALID};
    assert_true(virtio_net__rx_header_ok(&h, F(VIRTIO_NET_F_GUEST_CSUM)));
    assert_int_equal(h.flags, VIRTIO_NET_HDR_F_DATA_VALID);
    h = tso4_hdr(1448);
    assert_false(virtio_net__rx_header_ok(&h, 0));
    h = tso4_hdr(1448);
    assert_false(virtio_net__rx_header_ok(&h, F(VIRTIO_NET_F_GUEST_CSUM)));
    h = tso4_hdr(1448);
    assert_true(virtio_net__rx_header_ok(&h, F_TSO));
    h = tso4_hdr(1448);
    h.gso_type = VIRTIO_NET_HDR_GSO_UDP;
    assert_false(virtio_net__rx_header_ok(&h, F_TSO));
    h = tso4_hdr(1448);
    h.gso_type |= VIRTIO_NET_HDR_GSO_ECN;
    assert_false(virtio_net__rx_header_ok(&h, F_TSO));
    h = tso4_hdr(1448);
    h.gso_type |= VIRTIO_NET_HDR_GSO_ECN;
    assert_true(virtio_net__rx_header_ok(&h, F_TSO | F(VIRTIO_NET_F_GUEST_ECN)));
}

/* The tap gets a checked copy of the header, whole, even when the guest split it. */
static void test_tx_tso_frame_reaches_tap(void **state)
{
    struct fixture *f = *state;
    struct virtio_net_hdr_v1 h = tso4_hdr(1448), out;
    static uint8_t got[BUF_SIZE];
    struct hv_nic_stats st;

    assert_true(driver_init(f, F_TSO));
    h.num_buffers = 0x5a5a;
    for (unsigned split = 1; split <= HDR_LEN; split += 5) {
        ssize_t n = transmit(f, &h, 20000, split, got, sizeof(got));
        assert_int_equal(n, HDR_LEN + 20000);
        memcpy(&out, got, HDR_LEN);
        assert_int_equal(out.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
        assert_int_equal(out.gso_size, 1448);
        assert_int_equal(out.csum_start, 34);
        assert_int_equal(out.num_buffers, 0);
        for (uint32_t k = 0; k < 20000; k++)
            if (got[HDR_LEN + k] != (uint8_t)(k * 7))
                fail_msg("split %u: byte %u differs", split, k);
    }
    virtio_net_get_stats(f->net, &st);
    assert_int_equal(st.tx_packets, 3);
    assert_int_equal(st.drops, 0);
}

/* A hostile header costs the guest its frame, nothing more: the request completes, the
 * device keeps working, the drop is counted. */
static void test_tx_hostile_headers_dropped(void **state)
{
    struct fixture *f = *state;
    struct virtio_net_hdr_v1 h;
    uint8_t got[2048];
    struct hv_nic_stats st;

    /* TSO without having negotiated it. */
    assert_true(driver_init(f, F(VIRTIO_NET_F_CSUM)));
    h = tso4_hdr(1448);
    assert_int_equal(transmit(f, &h, 1000, HDR_LEN, got, sizeof(got)), -1);
    /* A checksum field past the end of the frame. */
    h = (struct virtio_net_hdr_v1){
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 990, .csum_offset = 9};
    assert_int_equal(transmit(f, &h, 1000, 4, got, sizeof(got)), -1);
    /* Just a header, and less than one. */
    h = (struct virtio_net_hdr_v1){0};
    assert_int_equal(transmit(f, &h, 0, 6, got, sizeof(got)), -1);
    /* Still working: a good frame goes through. */
    h = (struct virtio_net_hdr_v1){
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6};
    assert_int_equal(transmit(f, &h, 1000, HDR_LEN, got, sizeof(got)), HDR_LEN + 1000);
    virtio_net_get_stats(f->net, &st);
    assert_int_equal(st.drops, 3);
    assert_int_equal(st.tx_packets, 1);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
}

/* The header the guest finds is checked against its features: a frame it did not
 * negotiate (a TSO frame left in the tap by a previous driver) is dropped, and the same
 * buffer takes the next one. */
static void test_rx_frames_checked_against_features(void **state)
{
    struct fixture *f = *state;
    struct virtio_net_hdr_v1 h, seen;
    uint8_t pkt[HDR_LEN + 3000];
    struct hv_nic_stats st;

    assert_true(driver_init(f, F(VIRTIO_NET_F_GUEST_CSUM)));
    /* One receive buffer, the header in a descriptor of its own. */
    set_desc(f, RX, 0, BUF_GPA(RX), 5, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE);
    set_desc(f, RX, 1, BUF_GPA(RX) + 5, BUF_SIZE - 5, VRING_DESC_F_WRITE);
    memset(pkt, 0xab, sizeof(pkt));
    h = tso4_hdr(1448); /* not negotiated: GUEST_TSO4 */
    memcpy(pkt, &h, HDR_LEN);
    assert_int_equal(send(f->host, pkt, sizeof(pkt), 0), sizeof(pkt));
    h = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                   .csum_start = 34,
                                   .csum_offset = 16,
                                   .num_buffers = 9};
    memcpy(pkt, &h, HDR_LEN);
    memset(pkt + HDR_LEN, 0xcd, 100);
    assert_int_equal(send(f->host, pkt, HDR_LEN + 100, 0), HDR_LEN + 100);
    post_chain(f, RX, 0);
    assert_true(WAIT_FOR(used_idx(f, RX) == 1));
    assert_int_equal(used(f, RX)->ring[0].len, HDR_LEN + 100);
    memcpy(&seen, gpa(f, BUF_GPA(RX)), HDR_LEN);
    assert_int_equal(seen.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_int_equal(seen.gso_type, VIRTIO_NET_HDR_GSO_NONE);
    assert_int_equal(seen.num_buffers, 1);
    assert_int_equal(((uint8_t *)gpa(f, BUF_GPA(RX)))[HDR_LEN], 0xcd);
    virtio_net_get_stats(f->net, &st);
    assert_int_equal(st.drops, 1);
    assert_int_equal(st.rx_packets, 1);
}

/* With GUEST_TSO a 64 KiB-sized buffer takes a whole TSO frame. */
static void test_rx_tso_frame_delivered(void **state)
{
    struct fixture *f = *state;
    struct virtio_net_hdr_v1 h = tso4_hdr(1448), seen;
    static uint8_t pkt[HDR_LEN + 20000];

    assert_true(driver_init(f, F_TSO));
    set_desc(f, RX, 0, BUF_GPA(RX), BUF_SIZE, VRING_DESC_F_WRITE);
    memcpy(pkt, &h, HDR_LEN);
    for (unsigned k = 0; k < 20000; k++)
        pkt[HDR_LEN + k] = (uint8_t)k;
    assert_int_equal(send(f->host, pkt, sizeof(pkt), 0), sizeof(pkt));
    post_chain(f, RX, 0);
    assert_true(WAIT_FOR(used_idx(f, RX) == 1));
    assert_int_equal(used(f, RX)->ring[0].len, sizeof(pkt));
    memcpy(&seen, gpa(f, BUF_GPA(RX)), HDR_LEN);
    assert_int_equal(seen.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
    assert_int_equal(seen.gso_size, 1448);
    assert_int_equal(seen.num_buffers, 1);
    assert_memory_equal(gpa(f, BUF_GPA(RX) + HDR_LEN), pkt + HDR_LEN, 20000);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* I/O limits, each direction on its own: 10 packets/s with a burst of 1 spaces packets
 * 100 ms apart; none is lost, the waits are counted. */
static void test_limits_delay_both_directions(void **state)
{
    struct fixture *f = *state;
    struct hv_io_limits ten = {.ops_per_s = 10, .burst_ops = 1};
    struct rate_limiter tx, rx;
    struct virtio_net_hdr_v1 h = {0};
    uint8_t got[2048], pkt[HDR_LEN + 100] = {0};
    uint64_t t0, ns, events;

    rate_limiter_init(&tx, &ten, rate_limiter_now_ns());
    rate_limiter_init(&rx, &ten, rate_limiter_now_ns());
    virtio_net_set_limits(f->net, &tx, &rx); /* the I/O thread is idle: no queue is set up */
    assert_true(driver_init(f, 0));
    t0 = now_ms();
    for (int i = 0; i < 3; i++)
        assert_int_equal(transmit(f, &h, 100, HDR_LEN, got, sizeof(got)), HDR_LEN + 100);
    assert_true(now_ms() - t0 >= 190);
    rate_limiter_stats(&tx, rate_limiter_now_ns(), &ns, &events);
    assert_int_equal(events, 2);
    assert_true(ns >= 190000000ull);

    for (unsigned i = 0; i < 3; i++)
        set_desc(f, RX, (uint16_t)i, BUF_GPA(RX) + i * 0x1000, 0x1000, VRING_DESC_F_WRITE);
    for (int i = 0; i < 3; i++)
        assert_int_equal(send(f->host, pkt, sizeof(pkt), 0), sizeof(pkt));
    t0 = now_ms();
    for (uint16_t i = 0; i < 3; i++)
        post_chain(f, RX, i);
    assert_true(WAIT_FOR(used_idx(f, RX) == 3));
    assert_true(now_ms() - t0 >= 190);
    rate_limiter_stats(&rx, rate_limiter_now_ns(), &ns, &events);
    assert_true(events >= 1);
    /* The device goes before its limiters. */
    virtio_net_destroy(f->net);
    f->net = NULL;
    rate_limiter_destroy(&tx);
    rate_limiter_destroy(&rx);
}

/* --- snapshot --------------------------------------------------------------------------- */

static int load_bytes(struct fixture *f, const struct snap_w *w, size_t len, char *what)
{
    struct snap_r r;
    int rc;

    snap_r_init(&r, w->buf, len);
    rc = virtio_pci_load(f->vp, &r);
    strcpy(what, r.what);
    return rc;
}

/* Saved with TSO negotiated, a receive buffer posted and a frame sent: the restored device
 * receives into that buffer (offloads followed: a TSO frame passes) and transmits on. */
static void test_snapshot_round_trip(void **state)
{
    static const uint8_t other_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x57};
    struct fixture *f = *state, *g, *h;
    struct virtio_net_hdr_v1 hdr = tso4_hdr(1448), plain = {0}, seen;
    static uint8_t pkt[HDR_LEN + 3000], got[4096];
    struct snap_w w, w2, before;
    char what[160];

    assert_true(driver_init(f, F_TSO));
    assert_int_equal(transmit(f, &plain, 60, 4, got, sizeof(got)), HDR_LEN + 60);
    set_desc(f, RX, 0, BUF_GPA(RX), BUF_SIZE, VRING_DESC_F_WRITE);
    virtio_pci_park(f->vp);
    post_chain(f, RX, 0); /* the kick waits: parked */
    snap_w_init(&w);
    virtio_pci_save(f->vp, &w);
    assert_int_equal(w.err, 0);

    g = new_fixture(test_mac, false);
    memcpy(g->fp.ram.host, f->fp.ram.host, RAM_SIZE);
    assert_int_equal(load_bytes(g, &w, w.len, what), 0);
    snap_w_init(&w2);
    virtio_pci_save(g->vp, &w2);
    assert_int_equal(w2.len, w.len);
    assert_memory_equal(w2.buf, w.buf, w.len);

    /* The frame waiting in the tap goes into the buffer posted before the snapshot. */
    memcpy(pkt, &hdr, HDR_LEN);
    memset(pkt + HDR_LEN, 0x5a, sizeof(pkt) - HDR_LEN);
    assert_int_equal(send(g->host, pkt, sizeof(pkt), 0), sizeof(pkt));
    assert_int_equal(virtio_pci_start(g->vp), 0);
    assert_true(WAIT_FOR(used_idx(g, RX) == 1));
    memcpy(&seen, gpa(g, BUF_GPA(RX)), HDR_LEN);
    assert_int_equal(seen.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
    /* TX goes on at the next descriptor: one completed before, this one after. */
    assert_int_equal(transmit(g, &plain, 100, 4, got, sizeof(got)), HDR_LEN + 100);
    assert_int_equal(used_idx(g, TX), 2);

    /* Another MAC: refused, and that device is as it was. */
    h = new_fixture(other_mac, false);
    snap_w_init(&before);
    virtio_pci_save(h->vp, &before);
    assert_int_equal(load_bytes(h, &w, w.len, what), -EINVAL);
    assert_non_null(strstr(what, "MAC"));
    for (size_t len = 0; len < w.len; len++)
        assert_int_not_equal(load_bytes(h, &w, len, what), 0);
    snap_w_free(&w2);
    snap_w_init(&w2);
    virtio_pci_save(h->vp, &w2);
    assert_int_equal(w2.len, before.len);
    assert_memory_equal(w2.buf, before.buf, before.len);

    virtio_pci_unpark(f->vp);
    snap_w_free(&w);
    snap_w_free(&w2);
    snap_w_free(&before);
    teardown((void **)&g);
    teardown((void **)&h);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_offloads_offered),
        T(test_snapshot_round_trip),
        T(test_limits_delay_both_directions),
        cmocka_unit_test(test_tap_offloads_follow_guest_features),
        cmocka_unit_test(test_tx_header_checks),
        cmocka_unit_test(test_rx_header_checks),
        T(test_tx_tso_frame_reaches_tap),
        T(test_tx_hostile_headers_dropped),
        T(test_rx_frames_checked_against_features),
        T(test_rx_tso_frame_delivered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
