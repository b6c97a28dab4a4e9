/*
 * The managed networks' firewall: one nftables table of vmmd's own
 * (`inet <prefix>`), written whole from the store and applied atomically,
 * so rules the daemon did not write are never touched and a half-applied
 * set never exists. The ruleset text is a pure function of its inputs
 * (unit-tested); applying it runs `nft -f -`.
 */
#ifndef VMMD_NET_FIREWALL_H
#define VMMD_NET_FIREWALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

struct fw_network {
    const char *bridge;
    const char *cidr; /* a.b.c.d/n */
    bool nat;
};

struct fw_forward {
    const char *protocol;     /* tcp | udp */
    const char *host_address; /* "" for every address of the host */
    uint32_t host_port;
    const char *vm_ip;
    uint32_t vm_port;
};

/*
 * The whole table `inet <table>` for these networks and forwards, as an
 * `nft -f` script that replaces any table of that name in one transaction.
 */
int net_firewall_render(struct strbuf *out, const char *table, const struct fw_network *nets,
                        size_t n_nets, const struct fw_forward *fwds, size_t n_fwds);
/* Applies a rendered script; -errno, or -EPROTO with nft's complaint in err. */
int net_firewall_apply(const char *script, char *err, size_t errlen);
/* Removes the table (daemon flag or no networks left); absent is fine. */
int net_firewall_remove(const char *table, char *err, size_t errlen);

#endif
