/*
 * virtio-net over a tap opened with IFF_VNET_HDR and a 12-byte header, the
 * layout of virtio 1.x's struct virtio_net_hdr_v1, so packets move between
 * the rings and the tap with one readv/writev and no header translation.
 * No offloads are offered, so the tap never hands us GSO packets.
 * RX stops watching the tap while the guest has no receive buffers
 * (a level-triggered tap would otherwise spin the I/O thread) and resumes
 * when the guest posts more.
 */
#include "devices/virtio/virtio_net.h"
#include "devices/net/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <sys/socket.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#define RX_QUEUE 0
#define TX_QUEUE 1
#define STAT_ADD(field, n) __atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED)

struct virtio_net {
    struct virtio_pci vp;
    int tap_fd;
    uint8_t mac[6];
    struct hv_nic_stats stats;
    struct virtq_elem rx_elem, tx_elem;
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

static bool transmit_one(struct virtio_pci *vp, unsigned q)
{
    struct virtio_net *net = vp->dev;
    struct virtq_elem *e = &net->tx_elem;
    unsigned gen;
    ssize_t n;

    if (virtio_pci_pop(vp, q, e, &gen) != 1)
        return false;
    /* Header and frame go to the tap as they are; a frame the tap refuses is dropped. */
    n = e->out_len > sizeof(struct virtio_net_hdr_v1) ? writev(net->tap_fd, e->iov, (int)e->out_num)
                                                      : -1;
    if (n > (ssize_t)sizeof(struct virtio_net_hdr_v1)) {
        STAT_ADD(net->stats.tx_packets, 1);
        STAT_ADD(net->stats.tx_bytes, (uint64_t)n - sizeof(struct virtio_net_hdr_v1));
    } else {
        STAT_ADD(net->stats.drops, 1);
    }
    virtio_pci_push(vp, q, e, 0, gen);
    return true;
}

/* Reads packets from the tap into receive buffers until either runs out. */
static void receive(struct virtio_net *net)
{
    struct virtio_pci *vp = &net->vp;
    struct virtq_elem *e = &net->rx_elem;
    bool delivered = false;
    unsigned gen;

    for (unsigned served = 0; served < VIRTQ_MAX_SIZE; served++) {
        int got = virtio_pci_pop(vp, RX_QUEUE, e, &gen);
        if (got != 1) {
            /* No buffers: stop listening to the tap until the guest posts some. */
            virtio_pci_watch_fd_enable(vp, net->tap_fd, false);
            if (!virtio_pci_rearm(vp, RX_QUEUE))
                break;
            virtio_pci_watch_fd_enable(vp, net->tap_fd, true);
            continue;
        }
        if (e->in_len < sizeof(struct virtio_net_hdr_v1)) {
            virtio_pci_push(vp, RX_QUEUE, e, 0, gen); /* unusable buffer: give it back empty */
            continue;
        }
        ssize_t n = readv(net->tap_fd, &e->iov[e->out_num], (int)e->in_num);
        if (n < (ssize_t)sizeof(struct virtio_net_hdr_v1)) {
            virtio_pci_unpop(vp, RX_QUEUE, gen); /* nothing to read (EAGAIN) */
            break;
        }
        /* One buffer per packet: tell the driver so (virtio 5.1.6.4). */
        uint16_t one = 1;
        virtq_copy_to_in(e, offsetof(struct virtio_net_hdr_v1, num_buffers), &one, sizeof(one));
        virtio_pci_push(vp, RX_QUEUE, e, (uint32_t)n, gen);
        STAT_ADD(net->stats.rx_packets, 1);
        STAT_ADD(net->stats.rx_bytes, (uint64_t)n - sizeof(struct virtio_net_hdr_v1));
        delivered = true;
    }
    if (delivered)
        virtio_pci_notify(vp, RX_QUEUE);
}

static void net_queue_notify(struct virtio_pci *vp, unsigned q)
{
    struct virtio_net *net = vp->dev;

    if (q == TX_QUEUE) {
        virtio_pci_serve_queue(vp, q, transmit_one);
    } else {
        virtio_pci_watch_fd_enable(vp, net->tap_fd, true);
        receive(net);
    }
}

static void net_fd_ready(struct virtio_pci *vp, int fd)
{
    (void)fd;
    receive(vp->dev);
}

static void net_reset(struct virtio_pci *vp)
{
    struct virtio_net *net = vp->dev;

    /* Until the driver is back there is nowhere to receive into. */
    virtio_pci_watch_fd_enable(vp, net->tap_fd, false);
}

static const struct virtio_device_ops net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .class_code = 0x020000, /* Ethernet controller */
    .num_queues = 2,
    .queue_size = VIRTQ_MAX_SIZE,
    .config_size = sizeof(struct virtio_net_config),
    .features = 1ull << VIRTIO_NET_F_MAC | 1ull << VIRTIO_NET_F_STATUS | 1ull << VIRTIO_NET_F_MTU,
    .config_read = net_config_read,
    .queue_notify = net_queue_notify,
    .fd_ready = net_fd_ready,
    .reset = net_reset,
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
    memcpy(net->mac, mac, 6);
    if ((rc = virtio_pci_init(&net->vp, &net_ops, net, platform)) ||
        (rc = virtio_pci_watch_fd(&net->vp, net->tap_fd))) {
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
    free(net);
}
