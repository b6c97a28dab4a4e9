/*
 * The host's side of a managed network: its Linux bridge, made and changed
 * over rtnetlink (no iproute2 needed), and the host's IPv4 routes, which a
 * new network's addresses must not overlap. Functions return 0 or -errno
 * with a message in err.
 */
#ifndef VMMD_NET_LINK_H
#define VMMD_NET_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Makes the bridge unless a bridge of that name exists, sets its MTU, gives
 * it addr/prefix (kept if it has it) and brings it up. An interface of that
 * name that is not a bridge is -EEXIST: it is not ours.
 */
int net_link_bridge_up(const char *name, uint32_t mtu, uint32_t addr, unsigned prefix, char *err,
                       size_t errlen);
/* Removes the bridge; one that is not there is fine. */
int net_link_delete(const char *name, char *err, size_t errlen);
bool net_link_is_bridge(const char *name);
/* The interface's byte counters (sysfs); false when it has none. */
bool net_link_bytes(const char *name, uint64_t *rx, uint64_t *tx);

struct net_route {
    uint32_t dest;
    unsigned prefix;
    char ifname[16];
};
/* The host's IPv4 routes from /proc/net/route (the default route left out), at most max. */
size_t net_link_routes(struct net_route *out, size_t max);

#endif
