/*
 * rtnetlink requests, one at a time, each acknowledged: a message, its
 * attributes appended, sent, and the kernel's NLMSG_ERROR read back.
 */
#include "net_link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct nl_req {
    struct nlmsghdr hdr;
    char buf[1024];
};

/* The requests here are a few short attributes, far below the buffer; checked anyway. */
static struct rtattr *add_attr(struct nl_req *r, unsigned short type, const void *data, size_t len)
{
    size_t at = NLMSG_ALIGN(r->hdr.nlmsg_len);
    struct rtattr *a = (struct rtattr *)((char *)r + at);

    if (len > 256 || at + RTA_SPACE(len) > sizeof(*r))
        abort();
    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    if (len)
        memcpy(RTA_DATA(a), data, len);
    r->hdr.nlmsg_len = NLMSG_ALIGN(r->hdr.nlmsg_len) + RTA_ALIGN(a->rta_len);
    return a;
}

static void end_nest(struct nl_req *r, struct rtattr *nest)
{
    nest->rta_len = (unsigned short)((char *)r + r->hdr.nlmsg_len - (char *)nest);
}

/* Sends the request and returns the kernel's answer: 0 or -errno. */
static int nl_talk(struct nl_req *r)
{
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    char answer[4096];
    struct nlmsghdr *h;
    ssize_t n;
    int fd, ret = -EIO;

    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    r->hdr.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    r->hdr.nlmsg_seq = 1;
    if (sendto(fd, r, r->hdr.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
        ret = -errno;
        goto out;
    }
    n = recv(fd, answer, sizeof(answer), 0);
    if (n < 0) {
        ret = -errno;
        goto out;
    }
    for (h = (struct nlmsghdr *)answer; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
            ret = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
            break;
        }
    }
out:
    close(fd);
    return ret;
}

static void link_req(struct nl_req *r, unsigned short type, unsigned short flags, int index)
{
    struct ifinfomsg *ifi;

    memset(r, 0, sizeof(*r));
    r->hdr.nlmsg_len = NLMSG_LENGTH(sizeof(*ifi));
    r->hdr.nlmsg_type = type;
    r->hdr.nlmsg_flags = flags;
    ifi = NLMSG_DATA(&r->hdr);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
}

bool net_link_is_bridge(const char *name)
{
    char path[64];
    struct stat st;

    snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", name);
    return stat(path, &st) == 0;
}

static int fail(char *err, size_t errlen, int rc, const char *what, const char *name)
{
    snprintf(err, errlen, "%s %s: %s", what, name, strerror(-rc));
    return rc;
}

int net_link_bridge_up(const char *name, uint32_t mtu, uint32_t addr, unsigned prefix, char *err,
                       size_t errlen)
{
    struct nl_req r;
    struct rtattr *info;
    struct ifinfomsg *ifi;
    struct ifaddrmsg *ifa;
    uint32_t a = htonl(addr), bcast = htonl(addr | ~(prefix ? ~0u << (32 - prefix) : 0u));
    unsigned index;
    int rc;

    if (strlen(name) >= IFNAMSIZ)
        return fail(err, errlen, -ENAMETOOLONG, "bridge", name);
    if (!if_nametoindex(name)) {
        link_req(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
        add_attr(&r, IFLA_IFNAME, name, strlen(name) + 1);
        add_attr(&r, IFLA_MTU, &mtu, sizeof(mtu));
        info = add_attr(&r, IFLA_LINKINFO, NULL, 0);
        add_attr(&r, IFLA_INFO_KIND, "bridge", strlen("bridge"));
        end_nest(&r, info);
        rc = nl_talk(&r);
        if (rc && rc != -EEXIST)
            return fail(err, errlen, rc, "creating bridge", name);
    }
    if (!net_link_is_bridge(name)) {
        snprintf(err, errlen, "%s exists and is not a bridge: vmmd will not take it over", name);
        return -EEXIST;
    }
    index = if_nametoindex(name);
    if (!index)
        return fail(err, errlen, -ENODEV, "bridge", name);

    link_req(&r, RTM_NEWLINK, 0, (int)index);
    ifi = NLMSG_DATA(&r.hdr);
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
    add_attr(&r, IFLA_MTU, &mtu, sizeof(mtu));
    rc = nl_talk(&r);
    if (rc)
        return fail(err, errlen, rc, "bringing up", name);

    memset(&r, 0, sizeof(r));
    r.hdr.nlmsg_len = NLMSG_LENGTH(sizeof(*ifa));
    r.hdr.nlmsg_type = RTM_NEWADDR;
    r.hdr.nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
    ifa = NLMSG_DATA(&r.hdr);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)prefix;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = index;
    add_attr(&r, IFA_LOCAL, &a, sizeof(a));
    add_attr(&r, IFA_ADDRESS, &a, sizeof(a));
    add_attr(&r, IFA_BROADCAST, &bcast, sizeof(bcast));
    rc = nl_talk(&r);
    if (rc && rc != -EEXIST)
        return fail(err, errlen, rc, "adding the gateway address to", name);
    return 0;
}

int net_link_delete(const char *name, char *err, size_t errlen)
{
    struct nl_req r;
    int rc;

    if (!if_nametoindex(name))
        return 0;
    link_req(&r, RTM_DELLINK, 0, 0);
    add_attr(&r, IFLA_IFNAME, name, strlen(name) + 1);
    rc = nl_talk(&r);
    if (rc && rc != -ENODEV)
        return fail(err, errlen, rc, "deleting", name);
    return 0;
}

static bool read_u64(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "re");
    unsigned long long v;
    bool ok;

    if (!f)
        return false;
    ok = fscanf(f, "%llu", &v) == 1;
    fclose(f);
    if (ok)
        *out = v;
    return ok;
}

bool net_link_bytes(const char *name, uint64_t *rx, uint64_t *tx)
{
    char path[96];

    snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/rx_bytes", name);
    if (!read_u64(path, rx))
        return false;
    snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/tx_bytes", name);
    return read_u64(path, tx);
}

size_t net_link_routes(struct net_route *out, size_t max)
{
    FILE *f = fopen("/proc/net/route", "re");
    char line[256], ifname[32];
    unsigned dest, gw, flags, refcnt, use, metric, mask;
    size_t n = 0;

    if (!f)
        return 0;
    /* Iface Destination Gateway Flags RefCnt Use Metric Mask ...; addresses in network order. */
    while (n < max && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%31s %x %x %x %u %u %u %x", ifname, &dest, &gw, &flags, &refcnt, &use,
                   &metric, &mask) != 8)
            continue;
        mask = ntohl(mask);
        if (mask == 0)
            continue; /* the default route covers everything and blocks nothing */
        out[n].dest = ntohl(dest);
        out[n].prefix = (unsigned)__builtin_popcount(mask);
        snprintf(out[n].ifname, sizeof(out[n].ifname), "%.15s", ifname);
        n++;
    }
    fclose(f);
    return n;
}
