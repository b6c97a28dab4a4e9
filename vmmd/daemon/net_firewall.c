/*
 * What the rules say, per network bridge B with addresses C:
 *   input:       DHCP and DNS from guests to the host are accepted.
 *   forward:     B to B (only seen with br_netfilter) accepted; B to any other
 *                vmmd bridge dropped; replies and port-forwarded connections
 *                into B accepted; from B with a source in C to anywhere else
 *                accepted only when the network has NAT; everything else into
 *                or out of B dropped (an isolated network, spoofed sources,
 *                connections from outside that no forward asked for).
 *   postrouting: sources in C leaving for outside C are masqueraded (NAT).
 *   prerouting and output: each forward is a DNAT to the VM's address, for
 *                packets arriving from outside and for the host's own.
 * An accept here does not override another table's drop; a drop here is
 * final. That is what nftables guarantees for separate tables.
 */
#include "net_firewall.h"
#include "command.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NFT_TIMEOUT_MS 10000

/* "{ "a", "b" }" of every bridge but skip (NULL: all); empty when there is none. */
static void bridge_set(struct strbuf *b, const struct fw_network *nets, size_t n, const char *skip)
{
    bool first = true;

    for (size_t i = 0; i < n; i++) {
        if (skip && strcmp(nets[i].bridge, skip) == 0)
            continue;
        strbuf_printf(b, "%s\"%s\"", first ? "{ " : ", ", nets[i].bridge);
        first = false;
    }
    if (!first)
        strbuf_printf(b, " }");
}

static void dnat_rules(struct strbuf *b, const struct fw_forward *fwds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct fw_forward *f = &fwds[i];

        if (f->host_address[0])
            strbuf_printf(b, "\t\tip daddr %s", f->host_address);
        else /* every local address but loopback, which cannot be routed to a bridge */
            strbuf_printf(b, "\t\tfib daddr type local ip daddr != 127.0.0.0/8");
        strbuf_printf(b, " %s dport %u dnat ip to %s:%u\n", f->protocol, f->host_port, f->vm_ip,
                      f->vm_port);
    }
}

int net_firewall_render(struct strbuf *b, const char *table, const struct fw_network *nets,
                        size_t n_nets, const struct fw_forward *fwds, size_t n_fwds)
{
    /* Declaring the table first makes the delete succeed when there is none. */
    strbuf_printf(b, "table inet %s {}\ndelete table inet %s\n", table, table);
    if (n_nets == 0)
        return b->oom ? -ENOMEM : 0;
    strbuf_printf(b, "table inet %s {\n", table);

    strbuf_printf(b,
                  "\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n");
    strbuf_printf(b, "\t\tiifname ");
    bridge_set(b, nets, n_nets, NULL);
    strbuf_printf(b, " meta l4proto { tcp, udp } th dport 53 accept\n\t\tiifname ");
    bridge_set(b, nets, n_nets, NULL);
    strbuf_printf(b, " udp dport 67 accept\n\t}\n");

    strbuf_printf(
        b, "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n");
    for (size_t i = 0; i < n_nets; i++) {
        const struct fw_network *n = &nets[i];

        strbuf_printf(b, "\t\tiifname \"%s\" oifname \"%s\" accept\n", n->bridge, n->bridge);
        if (n_nets > 1) {
            strbuf_printf(b, "\t\tiifname \"%s\" oifname ", n->bridge);
            bridge_set(b, nets, n_nets, n->bridge);
            strbuf_printf(b, " drop\n");
        }
        strbuf_printf(b, "\t\toifname \"%s\" ct state established,related accept\n", n->bridge);
        strbuf_printf(b, "\t\toifname \"%s\" ct status dnat accept\n", n->bridge);
        if (n->nat)
            strbuf_printf(b, "\t\tiifname \"%s\" ip saddr %s accept\n", n->bridge, n->cidr);
        strbuf_printf(b, "\t\tiifname \"%s\" drop\n\t\toifname \"%s\" drop\n", n->bridge,
                      n->bridge);
    }
    strbuf_printf(b, "\t}\n");

    strbuf_printf(b, "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; "
                     "policy accept;\n");
    for (size_t i = 0; i < n_nets; i++)
        if (nets[i].nat)
            strbuf_printf(b, "\t\tip saddr %s ip daddr != %s masquerade\n", nets[i].cidr,
                          nets[i].cidr);
    strbuf_printf(b, "\t}\n");

    strbuf_printf(b, "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; "
                     "policy accept;\n");
    dnat_rules(b, fwds, n_fwds);
    strbuf_printf(b, "\t}\n\tchain output {\n\t\ttype nat hook output priority -100; "
                     "policy accept;\n");
    dnat_rules(b, fwds, n_fwds);
    strbuf_printf(b, "\t}\n}\n");
    return b->oom ? -ENOMEM : 0;
}

static int run_nft(const char *script, char *err, size_t errlen)
{
    static const char *const argv[] = {"nft", "-f", "-", NULL};
    char out[1024];
    int rc = vmmd_run_command(argv, script, out, sizeof(out), NFT_TIMEOUT_MS);

    if (rc == 0)
        return 0;
    if (rc < 0)
        snprintf(err, errlen, "nft: %s", strerror(-rc));
    else
        snprintf(err, errlen, "nft -f failed (status %d): %s", rc, out);
    return rc < 0 ? rc : -EPROTO;
}

int net_firewall_apply(const char *script, char *err, size_t errlen)
{
    return run_nft(script, err, errlen);
}

int net_firewall_remove(const char *table, char *err, size_t errlen)
{
    char script[128];

    snprintf(script, sizeof(script), "table inet %s {}\ndelete table inet %s\n", table, table);
    return run_nft(script, err, errlen);
}
