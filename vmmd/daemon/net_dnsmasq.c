#include "net_dnsmasq.h"
#include "command.h"

#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DNSMASQ_TIMEOUT_MS 10000
#define LEASE_TIME         "1h"

static void addr(char out[16], uint32_t a)
{
    api_ipv4_format(a, out);
}

int dnsmasq_render_conf(struct strbuf *b, const struct dnsmasq_conf *c)
{
    uint32_t mask = api_ipv4_mask(c->prefix);
    char gw[16], first[16], last[16], netmask[16];

    addr(gw, c->net + 1);
    addr(first, c->net + 2);
    addr(last, (c->net | ~mask) - 1);
    addr(netmask, mask);
    strbuf_printf(b, "# vmmd network %s: written by vmmd at every change, do not edit\n", c->name);
    /* Only the bridge, never the host's other interfaces or loopback. */
    strbuf_printf(b, "interface=%s\nexcept-interface=lo\nbind-dynamic\n", c->bridge);
    strbuf_printf(b, "pid-file=%s/" DNSMASQ_PID "\n", c->dir);
    strbuf_printf(b, "dhcp-leasefile=%s/" DNSMASQ_LEASES "\n", c->dir);
    strbuf_printf(b, "no-hosts\nstrict-order\ndomain-needed\nbogus-priv\n");
    /* Names in the domain are answered here and never asked upstream. */
    strbuf_printf(b, "domain=%s\nlocal=/%s/\nexpand-hosts\n", c->domain, c->domain);
    if (!c->nat)
        strbuf_printf(b, "no-resolv\n"); /* an isolated network asks nobody outside */
    if (c->dhcp) {
        strbuf_printf(b, "dhcp-range=%s,%s,%s,%s\ndhcp-authoritative\n", first, last, netmask,
                      LEASE_TIME);
        /* Without NAT there is no way out: no default route to offer. */
        if (c->nat)
            strbuf_printf(b, "dhcp-option=option:router,%s\n", gw);
        else
            strbuf_printf(b, "dhcp-option=option:router\n");
        strbuf_printf(b, "dhcp-option=option:dns-server,%s\n", gw);
        if (c->mtu != 1500)
            strbuf_printf(b, "dhcp-option=option:mtu,%" PRIu32 "\n", c->mtu);
    }
    for (size_t i = 0; i < c->n_hosts; i++) {
        const struct dnsmasq_host *h = &c->hosts[i];

        if (c->dhcp && h->ip)
            strbuf_printf(b, "dhcp-host=%s,%s,%s\n", h->mac, h->ip, h->name);
        else if (c->dhcp)
            strbuf_printf(b, "dhcp-host=%s,%s\n", h->mac, h->name);
        /* A static address resolves before its first lease, and without DHCP. */
        if (h->ip)
            strbuf_printf(b, "host-record=%s.%s,%s,%s\n", h->name, c->domain, h->name, h->ip);
    }
    return b->oom ? -ENOMEM : 0;
}

static pid_t read_pid_file(const char *dir)
{
    char path[4096];
    FILE *f;
    long v = 0;

    snprintf(path, sizeof(path), "%s/" DNSMASQ_PID, dir);
    f = fopen(path, "re");
    if (!f)
        return 0;
    if (fscanf(f, "%ld", &v) != 1 || v <= 1 || v > 4194304)
        v = 0;
    fclose(f);
    return (pid_t)v;
}

pid_t dnsmasq_running(const char *dir)
{
    char path[64], cmdline[4096], want[4096];
    pid_t pid = read_pid_file(dir);
    ssize_t n;
    int fd;

    if (!pid)
        return 0;
    /* A pid is reused: only a dnsmasq started on this directory's file is ours. */
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, cmdline, sizeof(cmdline) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    cmdline[n] = 0;
    for (ssize_t i = 0; i < n; i++)
        if (!cmdline[i])
            cmdline[i] = ' ';
    snprintf(want, sizeof(want), "--conf-file=%s/" DNSMASQ_CONF, dir);
    return strstr(cmdline, "dnsmasq") && strstr(cmdline, want) ? pid : 0;
}

int dnsmasq_start(const char *dir, pid_t *pid, char *err, size_t errlen)
{
    char conf[4096], out[1024];
    const char *argv[] = {"dnsmasq", conf, NULL};
    int rc;

    snprintf(conf, sizeof(conf), "--conf-file=%s/" DNSMASQ_CONF, dir);
    /* It returns once its daemon serves, with 1-5 and a message when it cannot. */
    rc = vmmd_run_command(argv, NULL, out, sizeof(out), DNSMASQ_TIMEOUT_MS);
    if (rc) {
        if (rc < 0)
            snprintf(err, errlen, "dnsmasq: %s", strerror(-rc));
        else
            snprintf(err, errlen, "dnsmasq failed (status %d): %s", rc, out);
        return rc < 0 ? rc : -EPROTO;
    }
    *pid = dnsmasq_running(dir);
    if (!*pid) {
        snprintf(err, errlen,
                 "dnsmasq started but its pid file %s/" DNSMASQ_PID " names no dnsmasq", dir);
        return -ESRCH;
    }
    return 0;
}

size_t dnsmasq_parse_leases(const char *text, struct dnsmasq_lease *out, size_t max)
{
    size_t n = 0;

    while (text && *text && n < max) {
        const char *eol = strchr(text, '\n');
        size_t len = eol ? (size_t)(eol - text) : strlen(text);
        char line[512], mac[32], ip[32], host[128];
        long long expires;

        if (len < sizeof(line)) {
            memcpy(line, text, len);
            line[len] = 0;
            if (sscanf(line, "%lld %31s %31s %127s", &expires, mac, ip, host) == 4 &&
                strlen(mac) == 17 && strlen(ip) < sizeof(out->ip) && expires >= 0) {
                struct dnsmasq_lease *l = &out[n++];
                uint32_t a;

                l->expires = expires;
                memcpy(l->mac, mac, sizeof(l->mac)); /* 17 characters and the NUL */
                snprintf(l->ip, sizeof(l->ip), "%.15s", api_ipv4_parse(ip, &a) ? "" : ip);
                snprintf(l->hostname, sizeof(l->hostname), "%.63s", strcmp(host, "*") ? host : "");
                if (!l->ip[0])
                    n--; /* an IPv6 lease or garbage */
            }
        }
        text += len + (eol ? 1 : 0);
    }
    return n;
}
