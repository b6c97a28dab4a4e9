/*
 * Taps for the NICs: opening (or creating) one with a virtio-net header,
 * joining it to a bridge, adopting one a sandboxed worker opened earlier,
 * and the MAC a NIC gets when none is configured.
 */
#include "devices/net/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <linux/virtio_net.h>

_Static_assert(sizeof(struct virtio_net_hdr_v1) == NET_TAP_HDR_LEN, "tap header size");

/* A locally administered MAC from the tap name: stable for a named tap. */
static void derive_mac(const char *tap, uint8_t mac[6])
{
    uint32_t h = 2166136261u;

    for (const char *p = tap; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    mac[0] = 0x52;
    mac[1] = 0x54;
    mac[2] = 0x00;
    mac[3] = (uint8_t)(h >> 16);
    mac[4] = (uint8_t)(h >> 8);
    mac[5] = (uint8_t)h;
}

/* Adds the tap to a bridge and brings it up: the bridge's owner configured the rest. */
static int join_bridge(const char *tap, const char *bridge, char *err, size_t errlen)
{
    struct ifreq ifr;
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

    if (sock < 0)
        return -errno;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bridge);
    ifr.ifr_ifindex = (int)if_nametoindex(tap);
    if (ioctl(sock, SIOCBRADDIF, &ifr) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot add tap %s to bridge %s: %s", tap, bridge, strerror(-rc));
        goto out;
    }
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0 ||
        (ifr.ifr_flags |= IFF_UP, ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)) {
        rc = -errno;
        snprintf(err, errlen, "cannot bring tap %s up: %s", tap, strerror(-rc));
    }
out:
    close(sock);
    return rc;
}

int hv_tap_open(const struct hv_nic_config *cfg, char name[16], char *err, size_t errlen)
{
    const char *what = cfg->tap ? cfg->tap : cfg->bridge;
    struct ifreq ifr;
    int hdr_len = NET_TAP_HDR_LEN, rc;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open /dev/net/tun for %s: %s", what, strerror(e));
        return -e;
    }
    memset(&ifr, 0, sizeof(ifr));
    /* For a bridge the kernel picks the name from the template. */
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", cfg->tap ? cfg->tap : "vmmd%d");
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot attach to tap %s: %s", what, strerror(e));
        close(fd);
        return -e;
    }
    if (cfg->bridge && (rc = join_bridge(ifr.ifr_name, cfg->bridge, err, errlen))) {
        close(fd);
        return rc;
    }
    memcpy(name, ifr.ifr_name, IFNAMSIZ);
    return fd;
}

/* A tap opened by hv_tap_open() before: its own descriptor, and its name. */
static int tap_adopt(int given_fd, char *name, char *err, size_t errlen)
{
    struct ifreq ifr;
    int fd = fcntl(given_fd, F_DUPFD_CLOEXEC, 3);

    memset(&ifr, 0, sizeof(ifr));
    if (fd < 0 || ioctl(fd, TUNGETIFF, &ifr) < 0) {
        int e = errno;
        snprintf(err, errlen, "tap descriptor %d: %s", given_fd, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    memcpy(name, ifr.ifr_name, IFNAMSIZ);
    return fd;
}

int net_tap_get(const struct hv_nic_config *cfg, uint8_t mac[6], char *err, size_t errlen)
{
    char tap_name[IFNAMSIZ];
    int fd = cfg->has_fd ? tap_adopt(cfg->fd, tap_name, err, errlen)
                         : hv_tap_open(cfg, tap_name, err, errlen);

    if (fd < 0)
        return fd;
    if (cfg->mac_set)
        memcpy(mac, cfg->mac, 6);
    else
        derive_mac(tap_name, mac);
    return fd;
}
