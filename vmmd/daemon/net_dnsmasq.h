/*
 * One dnsmasq per managed network: DHCP with a static lease per NIC that
 * asks for one, and DNS for the network's domain (<vm>.<domain>). Its
 * configuration, pid file and lease file live in the network's directory
 * under the state directory. dnsmasq daemonizes itself, so it outlives the
 * daemon (even kill -9) and a restarted daemon finds it by its pid file.
 */
#ifndef VMMD_NET_DNSMASQ_H
#define VMMD_NET_DNSMASQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "strbuf.h"

#define DNSMASQ_CONF   "dnsmasq.conf"
#define DNSMASQ_PID    "dnsmasq.pid"
#define DNSMASQ_LEASES "leases"

struct dnsmasq_host {
    const char *mac;
    const char *ip; /* NULL: a dynamic lease, still named */
    const char *name;
};

struct dnsmasq_conf {
    const char *name, *dir, *bridge, *domain;
    uint32_t net; /* host byte order */
    unsigned prefix;
    bool dhcp, nat;
    uint32_t mtu;
    const struct dnsmasq_host *hosts;
    size_t n_hosts;
};

/* The configuration file's text (pure: unit-tested). */
int dnsmasq_render_conf(struct strbuf *out, const struct dnsmasq_conf *c);
/* Starts dnsmasq on dir's configuration and waits until it serves; its pid in *pid. */
int dnsmasq_start(const char *dir, pid_t *pid, char *err, size_t errlen);
/* The pid the pid file names, if that process is a dnsmasq on dir's configuration; else 0. */
pid_t dnsmasq_running(const char *dir);

struct dnsmasq_lease {
    int64_t expires; /* unix seconds; 0: never */
    char mac[18];
    char ip[16];
    char hostname[64]; /* "" when the client gave none */
};
/* Parses dnsmasq's lease file text ("expiry mac ip hostname client-id" lines); skips bad lines. */
size_t dnsmasq_parse_leases(const char *text, struct dnsmasq_lease *out, size_t max);

#endif
