/*
 * virtio-net over a tap opened with IFF_VNET_HDR and a 12-byte header, the
 * layout of virtio 1.x's struct virtio_net_hdr_v1, so packets move between
 * the rings and the tap with one readv/writev and no header translation.
 *
 * Offloads (virtio 1.2 5.1.6.2 and 5.1.6.4): the device offers checksum and
 * TCP segmentation offload both ways (CSUM, HOST_TSO4/6, HOST_ECN for what
 * the guest sends; GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN for what it
 * receives), so a TCP stream crosses the device in frames of up to 64 KiB
 * instead of 1.5 KiB: under nested virtualization each frame costs exits,
 * interrupts and a system call, and that per-frame cost is what bounds the
 * throughput. The tap does the real work (segmenting, checksumming) in the
 * host kernel; the device tells it with TUNSETOFFLOAD what the guest can
 * take, from the I/O thread whenever the negotiated features change. A
 * Linux driver with GUEST_TSO and without MRG_RXBUF posts 64 KiB receive
 * buffers (its "big packets" mode), so one packet still fits one buffer.
 *
 * Every header from the guest is hostile: it is copied out of guest RAM
 * once and checked (flags, gso_type against what was negotiated, gso_size,
 * hdr_len and csum_start/csum_offset against the frame's length) before the
 * tap sees the copy, so the guest cannot change it after the check; a frame
 * that fails is dropped and counted. Headers the tap writes are checked
 * against the guest's features the same way before the guest sees them (a
 * tap may still hold frames built for a previous driver's offloads).
 *
 * RX stops watching the tap while the guest has no receive buffers
 * (a level-triggered tap would otherwise spin the I/O thread) and resumes
 * when the guest posts more.
 *
 * I/O limits, each direction its own limiter: a frame to send that its
 * limiter does not grant yet goes back on the ring and the TX queue waits
 * for a timerfd; on receive the limiter is asked for the first byte and one
 * packet before a frame is read (its length is only known after) and the
 * rest is charged once read, so a throttled RX stops watching the tap and
 * frames wait in the tap's queue (the host's, as for a slow guest) until its
 * timer fires. Nothing sleeps on the I/O thread.
 */
#include "devices/virtio/virtio_net.h"
#include "devices/net/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <sys/socket.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#define RX_QUEUE 0
#define TX_QUEUE 1
#define HDR_LEN  sizeof(struct virtio_net_hdr_v1)
/* The largest frame either way: a 64 KiB IP packet behind an Ethernet and a VLAN header. */
#define MAX_FRAME          (65535u + 14u + 4u)
#define ETH_HDR_LEN        14u
#define STAT_ADD(field, n) __atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED)
#define F(bit)             (1ull << (bit))

#define OFFERED_OFFLOADS                                                                           \
    (F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) |                \
     F(VIRTIO_NET_F_HOST_ECN) | F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4) |          \
     F(VIRTIO_NET_F_GUEST_TSO6) | F(VIRTIO_NET_F_GUEST_ECN))

struct virtio_net {
    struct virtio_pci vp;
    int tap_fd;
    uint8_t mac[6];
    struct hv_nic_stats stats;
    /* I/O thread only: the features the datapath follows (0 until DRIVER_OK),
     * and the TUN_F_* offloads set on the tap (UINT_MAX: not set yet). */
    uint64_t features;
    unsigned tap_offloads;
    bool offload_warned;
    struct virtq_elem rx_elem, tx_elem;
    struct iovec iov[VIRTQ_MAX_SEGS + 1]; /* our header copy, then the guest's buffers */
    struct rate_limiter *tx_limits, *rx_limits; /* NULL: unlimited */
    int tx_timer, rx_timer;
    bool tx_throttled, rx_throttled; /* I/O thread only: waiting for the timer */
};

static void net_config_read(struct virtio_pci *vp, unsigned offset, void *data, unsigned size)
{
    struct virtio_net *net = vp->dev;
    struct virtio_net_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    memcpy(cfg.mac, net->mac, 6);
    cfg.status = VIRTIO_NET_S_LINK_UP;
    cfg.max_virtqueue_pairs = 1;
    cfg.mtu = 1500;
    if (offset + size <= sizeof(cfg))
        memcpy(data, (uint8_t *)&cfg + offset, size);
}

/* The tap's offloads for the guest's receive features: each TSO needs CSUM (tun's rule and
 * virtio's feature dependencies; a driver that acks one without the other gets neither). */
unsigned virtio_net__tap_offloads(uint64_t features)
{
    unsigned off = 0;

    if (!(features & F(VIRTIO_NET_F_GUEST_CSUM)))
        return 0;
    off = TUN_F_CSUM;
    if (features & F(VIRTIO_NET_F_GUEST_TSO4))
        off |= TUN_F_TSO4;
    if (features & F(VIRTIO_NET_F_GUEST_TSO6))
        off |= TUN_F_TSO6;
    if ((off & (TUN_F_TSO4 | TUN_F_TSO6)) && (features & F(VIRTIO_NET_F_GUEST_ECN)))
        off |= TUN_F_TSO_ECN;
    return off;
}

/* I/O thread: follows the driver's features, and tells the tap what the guest takes. */
static void sync_features(struct virtio_net *net)
{
    unsigned want;

    net->features = virtio_pci_active_features(&net->vp);
    want = virtio_net__tap_offloads(net->features);
    if (want == net->tap_offloads)
        return;
    /* A socketpair standing in for the tap (tests) has no offloads: ENOTTY, harmless,
     * as it never sends GSO frames either. */
    if (ioctl(net->tap_fd, TUNSETOFFLOAD, (unsigned long)want) < 0 && errno != ENOTTY &&
        !net->offload_warned) {
        net->offload_warned = true;
        fprintf(stderr, "vmmd: virtio-net: TUNSETOFFLOAD %#x: %s\n", want, strerror(errno));
    }
    net->tap_offloads = want;
}

/* Whether gso_type (ECN bit included) is one the features allow; tso4/tso6/ecn are the
 * HOST_ or GUEST_ bits of the direction. */
static bool gso_allowed(uint8_t gso_type, uint64_t features, unsigned tso4, unsigned tso6,
                        unsigned ecn)
{
    if ((gso_type & VIRTIO_NET_HDR_GSO_ECN) && !(features & F(ecn)))
        return false;
    switch (gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN) {
    case VIRTIO_NET_HDR_GSO_NONE:
        return !(gso_type & VIRTIO_NET_HDR_GSO_ECN);
    case VIRTIO_NET_HDR_GSO_TCPV4:
        return features & F(tso4);
    case VIRTIO_NET_HDR_GSO_TCPV6:
        return features & F(tso6);
    default: /* UDP (UFO) is not offered; anything else is not a GSO type */
        return false;
    }
}

/*
 * A header the guest sent with a frame of frame_len bytes (after the header), in our copy:
 * true if the tap may have it. Fixes what only needs fixing (unknown flags, num_buffers,
 * a GSO header's fields on a plain frame) and refuses what is inconsistent.
 */
bool virtio_net__tx_header_ok(struct virtio_net_hdr_v1 *h, uint64_t frame_len, uint64_t features)
{
    if (frame_len < ETH_HDR_LEN || frame_len > MAX_FRAME)
        return false;
    h->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM; /* DATA_VALID and the rest mean nothing here */
    h->num_buffers = 0;
    if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        /* The checksum field (2 bytes at csum_start + csum_offset) lies inside the frame. */
        if (!(features & F(VIRTIO_NET_F_CSUM)) ||
            (uint32_t)h->csum_start + h->csum_offset + 2 > frame_len)
            return false;
    } else {
        h->csum_start = h->csum_offset = 0;
    }
    if (!gso_allowed(h->gso_type, features, VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6,
                     VIRTIO_NET_F_HOST_ECN))
        return false;
    if (h->gso_type == VIRTIO_NET_HDR_GSO_NONE) {
        h->gso_size = 0;
        h->hdr_len = 0; /* a hint only; none is needed for a plain frame */
        return true;
    }
    /* A segmented frame needs its checksum done per segment (virtio 1.2 5.1.6.2.1),
     * segments of some size, and headers inside the frame. */
    return (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && h->gso_size != 0 && h->hdr_len <= frame_len;
}

/* A header the tap wrote for a frame to the guest: true if the guest negotiated what it
 * uses. Clears DATA_VALID for a guest without GUEST_CSUM (it means nothing to it). */
bool virtio_net__rx_header_ok(struct virtio_net_hdr_v1 *h, uint64_t features)
{
    bool csum = features & F(VIRTIO_NET_F_GUEST_CSUM);

    if (!csum)
        h->flags &= (uint8_t)~VIRTIO_NET_HDR_F_DATA_VALID;
    if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !csum)
        return false;
    h->num_buffers = 1; /* one buffer per packet (virtio 1.2 5.1.6.4) */
    return gso_allowed(h->gso_type, features, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
                       VIRTIO_NET_F_GUEST_ECN);
}

/* iov[0] is hdr; then the element's segments of one direction, skipping its first HDR_LEN
 * bytes (the guest's own header, wherever it ends). Returns the number of iovecs. */
static int iov_after_header(struct iovec *iov, void *hdr, const struct virtq_elem *e, bool out)
{
    unsigned first = out ? 0 : e->out_num, num = out ? e->out_num : e->in_num, n = 1;
    size_t skip = HDR_LEN;

    iov[0] = (struct iovec){.iov_base = hdr, .iov_len = HDR_LEN};
    for (unsigned i = first; i < first + num; i++) {
        const struct iovec *v = &e->iov[i];
        if (skip >= v->iov_len) {
            skip -= v->iov_len;
            continue;
        }
        iov[n++] =
            (struct iovec){.iov_base = (char *)v->iov_base + skip, .iov_len = v->iov_len - skip};
        skip = 0;
    }
    return (int)n;
}

/* Whether limits grant bytes and one packet now; if not, timer is armed and *throttled set. */
static bool limits_allow(struct rate_limiter *limits, uint64_t bytes, int timer, bool *throttled)
{
    uint64_t wait;

    if (!limits)
        return true;
    wait = rate_limiter_consume(limits, bytes, 1, rate_limiter_now_ns());
    if (wait == 0)
        return true;
    *throttled = rate_limiter_arm_timer(timer, wait) == 0;
    return false;
}

static bool transmit_one(struct virtio_pci *vp, unsigned q)
{
    struct virtio_net *net = vp->dev;
    struct virtq_elem *e = &net->tx_elem;
    struct virtio_net_hdr_v1 hdr;
    unsigned gen;
    ssize_t n = -1;

    if (net->tx_throttled || virtio_pci_pop(vp, q, e, &gen) != 1)
        return false;
    if (!limits_allow(net->tx_limits, e->out_len > HDR_LEN ? e->out_len - HDR_LEN : 0,
                      net->tx_timer, &net->tx_throttled)) {
        virtio_pci_unpop(vp, q, gen);
        return false;
    }
    /* One copy of the header, checked; the tap reads the copy, never the guest's. */
    if (e->out_len > HDR_LEN && virtq_copy_from_out(e, 0, &hdr, HDR_LEN) == HDR_LEN &&
        virtio_net__tx_header_ok(&hdr, e->out_len - HDR_LEN, net->features))
        n = writev(net->tap_fd, net->iov, iov_after_header(net->iov, &hdr, e, true));
    if (n > (ssize_t)HDR_LEN) {
        STAT_ADD(net->stats.tx_packets, 1);
        STAT_ADD(net->stats.tx_bytes, (uint64_t)n - HDR_LEN);
    } else {
        STAT_ADD(net->stats.drops, 1); /* refused by us or by the tap */
    }
    virtio_pci_push(vp, q, e, 0, gen);
    return true;
}

/* Reads packets from the tap into receive buffers until either runs out. */
static void receive(struct virtio_net *net)
{
    struct virtio_pci *vp = &net->vp;
    struct virtq_elem *e = &net->rx_elem;
    struct virtio_net_hdr_v1 hdr;
    bool delivered = false;
    unsigned gen;

    for (unsigned served = 0; served < VIRTQ_MAX_SIZE; served++) {
        int got;

        if (!limits_allow(net->rx_limits, 1, net->rx_timer, &net->rx_throttled)) {
            virtio_pci_watch_fd_enable(vp, net->tap_fd, false); /* the timer resumes */
            break;
        }
        got = virtio_pci_pop(vp, RX_QUEUE, e, &gen);
        if (got != 1 && net->rx_limits)
            rate_limiter_refund(net->rx_limits, 1, 1);
        if (got != 1) {
            /* No buffers: stop listening to the tap until the guest posts some. */
            virtio_pci_watch_fd_enable(vp, net->tap_fd, false);
            if (!virtio_pci_rearm(vp, RX_QUEUE))
                break;
            virtio_pci_watch_fd_enable(vp, net->tap_fd, true);
            continue;
        }
        if (e->in_len < HDR_LEN) {
            virtio_pci_push(vp, RX_QUEUE, e, 0, gen); /* unusable buffer: give it back empty */
            continue;
        }
        /* The header lands in our copy first: checked, then written to the guest. */
        int niov = iov_after_header(net->iov, &hdr, e, false);
        ssize_t n;
        while ((n = readv(net->tap_fd, net->iov, niov)) >= (ssize_t)HDR_LEN &&
               !virtio_net__rx_header_ok(&hdr, net->features))
            STAT_ADD(net->stats.drops, 1); /* the same buffer takes the next frame */
        if (n < (ssize_t)HDR_LEN) {
            virtio_pci_unpop(vp, RX_QUEUE, gen); /* nothing to read (EAGAIN) */
            if (net->rx_limits)
                rate_limiter_refund(net->rx_limits, 1, 1);
            break;
        }
        if (net->rx_limits && n > (ssize_t)HDR_LEN + 1)
            rate_limiter_charge(net->rx_limits, (uint64_t)n - HDR_LEN - 1, 0);
        virtq_copy_to_in(e, 0, &hdr, HDR_LEN);
        virtio_pci_push(vp, RX_QUEUE, e, (uint32_t)n, gen);
        STAT_ADD(net->stats.rx_packets, 1);
        STAT_ADD(net->stats.rx_bytes, (uint64_t)n - HDR_LEN);
        delivered = true;
    }
    if (delivered)
        virtio_pci_notify(vp, RX_QUEUE);
}

static void net_queue_notify(struct virtio_pci *vp, unsigned q)
{
    struct virtio_net *net = vp->dev;

    sync_features(net);
    /* A throttled direction waits for its timer, whatever the guest kicks. */
    if (q == TX_QUEUE) {
        if (!net->tx_throttled)
            virtio_pci_serve_queue(vp, q, transmit_one);
    } else if (!net->rx_throttled) {
        virtio_pci_watch_fd_enable(vp, net->tap_fd, true);
        receive(net);
    }
}

static void net_fd_ready(struct virtio_pci *vp, int fd)
{
    struct virtio_net *net = vp->dev;
    uint64_t expirations;

    sync_features(net);
    if (fd == net->tx_timer || fd == net->rx_timer) {
        if (read(fd, &expirations, sizeof(expirations)) < 0) {
            /* re-armed meanwhile: it comes again */
        }
        if (fd == net->tx_timer) {
            net->tx_throttled = false;
            if (virtio_pci_queue_ready(vp, TX_QUEUE))
                virtio_pci_serve_queue(vp, TX_QUEUE, transmit_one);
            return;
        }
        net->rx_throttled = false;
        virtio_pci_watch_fd_enable(vp, net->tap_fd, true);
    }
    if (!net->rx_throttled)
        receive(net);
}

static void net_reset(struct virtio_pci *vp)
{
    struct virtio_net *net = vp->dev;

    /* Until the driver is back there is nowhere to receive into. */
    virtio_pci_watch_fd_enable(vp, net->tap_fd, false);
}

#define VNET_TAG SNAP_TAG('V', 'N', 'E', 'T')

/*
 * The datapath's state is the transport's (rings, features); what is the net
 * device's own is its MAC, which the guest has seen: a restore onto another MAC
 * is refused. A frame a throttled TX left in the ring is simply sent after restore.
 */
static void net_save(struct virtio_pci *vp, struct snap_w *w)
{
    struct virtio_net *net = vp->dev;
    size_t mark = snap_w_begin(w, VNET_TAG, 1);

    snap_w_bytes(w, net->mac, sizeof(net->mac));
    snap_w_end(w, mark);
}

static int net_load(struct virtio_pci *vp, struct snap_r *r)
{
    struct virtio_net *net = vp->dev;
    uint8_t mac[6];
    struct snap_r sub;
    uint16_t version;

    if (snap_r_section(r, VNET_TAG, "virtio-net", 1, &sub, &version))
        return r->err;
    snap_r_bytes(&sub, mac, sizeof(mac));
    if (snap_r_ok(&sub) && memcmp(mac, net->mac, sizeof(mac)))
        snap_r_fail(&sub, -EINVAL,
                    "virtio-net: saved with MAC %02x:%02x:%02x:%02x:%02x:%02x, not this one's",
                    mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    if (snap_r_end(r, &sub))
        return r->err;
    /*
     * The driver negotiated its offloads before the snapshot and will not set
     * DRIVER_OK again: tell the tap now (TUNSETOFFLOAD, as sync_features does on the
     * first event after DRIVER_OK), whatever it was set to by a previous user. The I/O
     * thread is parked or not started, so its fields are ours for the moment.
     */
    net->tap_offloads = UINT_MAX;
    sync_features(net);
    /*
     * And listen to the tap again. A frame that reached the fresh device before the load
     * found no queue, and receive() stopped watching the tap until the driver kicks the RX
     * queue, which a driver whose buffers are already posted never does: the restored or
     * migrated guest would receive nothing (seen in the lab: no ping answered after a
     * migration).
     */
    virtio_pci_watch_fd_enable(vp, net->tap_fd, true);
    return 0;
}

static const struct virtio_device_ops net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .class_code = 0x020000, /* Ethernet controller */
    .num_queues = 2,
    .queue_size = VIRTQ_MAX_SIZE,
    .config_size = sizeof(struct virtio_net_config),
    .features =
        F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_MTU) | OFFERED_OFFLOADS,
    .config_read = net_config_read,
    .queue_notify = net_queue_notify,
    .fd_ready = net_fd_ready,
    .reset = net_reset,
    .save = net_save,
    .load = net_load,
};

int virtio_net_create_fd(struct virtio_net **out, const struct hv_platform *platform, int fd,
                         const uint8_t mac[6])
{
    struct virtio_net *net = calloc(1, sizeof(*net));
    int rc;

    if (!net) {
        close(fd);
        return -ENOMEM;
    }
    net->tap_fd = fd;
    net->tap_offloads = UINT_MAX; /* a reused tap keeps its last user's: set ours first */
    memcpy(net->mac, mac, 6);
    net->tx_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    net->rx_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (net->tx_timer < 0 || net->rx_timer < 0) {
        rc = -errno;
        virtio_net_destroy(net);
        return rc;
    }
    if ((rc = virtio_pci_init(&net->vp, &net_ops, net, platform)) ||
        (rc = virtio_pci_watch_fd(&net->vp, net->tap_fd)) ||
        (rc = virtio_pci_watch_fd(&net->vp, net->tx_timer)) ||
        (rc = virtio_pci_watch_fd(&net->vp, net->rx_timer))) {
        virtio_net_destroy(net);
        return rc;
    }
    *out = net;
    return 0;
}

int virtio_net_create(struct virtio_net **out, const struct hv_platform *platform,
                      const struct hv_nic_config *cfg, char *err, size_t errlen)
{
    uint8_t mac[6];
    int fd = net_tap_get(cfg, mac, err, errlen), rc;

    if (fd < 0)
        return fd;
    if ((rc = virtio_net_create_fd(out, platform, fd, mac)))
        snprintf(err, errlen, "virtio-net: %s", strerror(-rc)); /* it closed fd */
    return rc;
}

struct virtio_pci *virtio_net_transport(struct virtio_net *net)
{
    return &net->vp;
}

void virtio_net_set_limits(struct virtio_net *net, struct rate_limiter *tx, struct rate_limiter *rx)
{
    net->tx_limits = tx;
    net->rx_limits = rx;
}

void virtio_net_limits_changed(struct virtio_net *net)
{
    /* Waits computed under the old limits may be far too long now: look again at once. */
    rate_limiter_arm_timer(net->tx_timer, 1);
    rate_limiter_arm_timer(net->rx_timer, 1);
}

void virtio_net_get_stats(const struct virtio_net *net, struct hv_nic_stats *out)
{
    out->rx_bytes = __atomic_load_n(&net->stats.rx_bytes, __ATOMIC_RELAXED);
    out->tx_bytes = __atomic_load_n(&net->stats.tx_bytes, __ATOMIC_RELAXED);
    out->rx_packets = __atomic_load_n(&net->stats.rx_packets, __ATOMIC_RELAXED);
    out->tx_packets = __atomic_load_n(&net->stats.tx_packets, __ATOMIC_RELAXED);
    out->drops = __atomic_load_n(&net->stats.drops, __ATOMIC_RELAXED);
}

void virtio_net_destroy(struct virtio_net *net)
{
    if (!net)
        return;
    virtio_pci_destroy(&net->vp);
    if (net->tap_fd >= 0)
        close(net->tap_fd);
    if (net->tx_timer >= 0)
        close(net->tx_timer);
    if (net->rx_timer >= 0)
        close(net->rx_timer);
    free(net);
}
