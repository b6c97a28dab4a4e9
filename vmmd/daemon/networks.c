/*
 * Managed networks on the host. Per network in the store:
 *   - a Linux bridge <prefix>-<name> holding the gateway address (net_link);
 *   - one dnsmasq (net_dnsmasq) with a configuration file rewritten from the
 *     store whenever a network or a VM's NICs change, and restarted only
 *     when that file's text changed; dnsmasq daemonizes, so it outlives a
 *     daemon restart and is adopted by its pid file, and a pidfd tells the
 *     loop the moment it dies, after which it is started again (at most
 *     RESTART_BURST times a minute) and an event says so;
 *   - its part of the one nftables table (net_firewall), rebuilt whole.
 * The networks' files live in <state>/networks/<name>/.
 */
#include "networks.h"
#include "cluster_networks.h"
#include "daemon.h"
#include "log.h"
#include "net_dnsmasq.h"
#include "net_firewall.h"
#include "net_link.h"
#include "vm_nics.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RESTART_BURST     5     /* dnsmasq restarts ... */
#define RESTART_WINDOW_MS 60000 /* ... within this long, then the network is in error */
#define STOP_WAIT_MS      2000
#define MAX_ROUTES        256
#define MAX_LEASES        4096
#define SETTING_DEFAULT   "default_network"

struct net_watch {
    uv_poll_t poll;
    int pidfd;
    struct networks *owner;
    char name[DB_NAME_MAX + 1];
};

/* What runs for one stored network. */
struct net_rt {
    struct net_rt *next;
    char name[DB_NAME_MAX + 1];
    char bridge[DB_BRIDGE_MAX + 1];
    bool up;
    char error[256];
    pid_t pid;
    struct net_watch *watch;
    uint64_t restarts;
    int64_t restart_ms[RESTART_BURST]; /* ring of the latest restarts */
};

struct networks {
    struct vmmd_daemon *d;
    char unavailable[256]; /* why this host cannot run networks; "" when it can */
    char dir[4096];        /* <state>/networks */
    struct net_rt *rts;
    char *applied; /* the firewall script nft last took: the same one is not sent again */
};

/* A NIC of some VM on a managed network. */
struct nic_ref {
    char vm_id[DB_ID_LEN + 1];
    char vm[DB_NAME_MAX + 1];
    unsigned index;
    char network[DB_NAME_MAX + 1];
    char mac[18];
    char ip[16]; /* "" for a dynamic lease */
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct net_rt *rt_find(struct networks *n, const char *name)
{
    for (struct net_rt *r = n->rts; r; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

static struct net_rt *rt_get(struct networks *n, const struct db_network *net)
{
    struct net_rt *r = rt_find(n, net->name);

    if (r)
        return r;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    snprintf(r->name, sizeof(r->name), "%s", net->name);
    snprintf(r->bridge, sizeof(r->bridge), "%s", net->bridge);
    r->next = n->rts;
    n->rts = r;
    return r;
}

static void net_dir(struct networks *n, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", n->dir, name);
}

static void commit_event(struct networks *n, const char *type, json_t *data)
{
    char *text = json_dumps(data, JSON_COMPACT);
    int64_t ev = 0;

    if (text && db_event_insert(n->d->db, type, "", text, &ev) == 0)
        vmmd_event_committed(n->d, ev);
    else
        log_warn("cannot record event %s: %s", type, db_last_error(n->d->db));
    free(text);
    json_decref(data);
}

/* ---- tools -------------------------------------------------------------- */

static bool in_path(const char *tool)
{
    const char *path = getenv("PATH");
    char buf[4096];

    for (const char *p = path; p && *p;) {
        size_t len = strcspn(p, ":");
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, p, tool);
        if (access(buf, X_OK) == 0)
            return true;
        p += len + (p[len] == ':');
    }
    return false;
}

static void probe_host(struct networks *n)
{
    const char *path = getenv("PATH");
    char wider[4096];

    /* nft and dnsmasq live in sbin, which a user's PATH may lack. */
    snprintf(wider, sizeof(wider), "%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin");
    setenv("PATH", wider, 1);
    if (n->d->cfg->no_networks)
        snprintf(n->unavailable, sizeof(n->unavailable),
                 "managed networks are off on this daemon (--no-networks)");
    else if (geteuid() != 0)
        snprintf(n->unavailable, sizeof(n->unavailable),
                 "managed networks need root (bridges, nftables and dnsmasq); run vmmd as root");
    else if (!in_path("nft"))
        snprintf(n->unavailable, sizeof(n->unavailable),
                 "managed networks need nft (apt-get install nftables)");
    else if (!in_path("dnsmasq"))
        snprintf(n->unavailable, sizeof(n->unavailable),
                 "managed networks need dnsmasq (apt-get install dnsmasq-base)");
}

/* ---- the store's view --------------------------------------------------- */

/* Every NIC on a managed network (of network, or all when NULL). */
static int collect_nics(struct networks *n, const char *network, struct nic_ref **out,
                        size_t *count)
{
    struct db_vm *vms;
    size_t nvms, cap = 0, used = 0;
    struct nic_ref *refs = NULL, *grown;
    int rc = db_vm_list(n->d->db, NULL, &vms, &nvms);

    *out = NULL;
    *count = 0;
    if (rc)
        return rc;
    for (size_t v = 0; v < nvms; v++) {
        json_t *nics = json_loads(vms[v].nics_json ? vms[v].nics_json : "[]", 0, NULL), *item;
        size_t i;

        json_array_foreach(nics, i, item)
        {
            const char *net = json_string_value(json_object_get(item, "network"));
            const char *ip = json_string_value(json_object_get(item, "ip"));
            struct nic_ref *r;

            if (!net || (network && strcmp(net, network) != 0))
                continue;
            if (used == cap) {
                cap = cap ? cap * 2 : 16;
                grown = realloc(refs, cap * sizeof(*refs));
                if (!grown) {
                    rc = -ENOMEM;
                    break;
                }
                refs = grown;
            }
            r = &refs[used++];
            memset(r, 0, sizeof(*r));
            snprintf(r->vm_id, sizeof(r->vm_id), "%s", vms[v].id);
            snprintf(r->vm, sizeof(r->vm), "%s", vms[v].name);
            r->index = (unsigned)i;
            snprintf(r->network, sizeof(r->network), "%s", net);
            vmmd_nic_mac(vms[v].id, i, json_string_value(json_object_get(item, "mac")), r->mac);
            snprintf(r->ip, sizeof(r->ip), "%s", ip ? ip : "");
        }
        json_decref(nics);
    }
    db_vm_list_free(vms, nvms);
    if (rc) {
        free(refs);
        return rc;
    }
    *out = refs;
    *count = used;
    return 0;
}

/* ---- firewall ----------------------------------------------------------- */

static int apply_firewall(struct networks *n, char *err, size_t errlen)
{
    struct db_network *nets = NULL;
    struct db_forward *fwds = NULL;
    struct nic_ref *nics = NULL;
    struct fw_network *fn = NULL;
    struct fw_forward *ff = NULL;
    size_t nn = 0, nf = 0, nnics = 0, used = 0;
    struct strbuf script = {0};
    bool any_nat = false;
    int rc;

    if ((rc = db_network_list(n->d->db, &nets, &nn)) ||
        (rc = db_forward_list(n->d->db, NULL, &fwds, &nf)) ||
        (rc = collect_nics(n, NULL, &nics, &nnics))) {
        snprintf(err, errlen, "reading the store: %s", db_last_error(n->d->db));
        goto out;
    }
    fn = calloc(nn + 1, sizeof(*fn));
    ff = calloc(nf + 1, sizeof(*ff));
    if (!fn || !ff) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nn; i++) {
        fn[i] =
            (struct fw_network){.bridge = nets[i].bridge, .cidr = nets[i].cidr, .nat = nets[i].nat};
        any_nat |= nets[i].nat;
    }
    /* A forward goes to the static ip of its VM's NIC on that network, as defined now. */
    for (size_t i = 0; i < nf; i++) {
        const char *ip = NULL;

        for (size_t k = 0; k < nnics && !ip; k++)
            if (strcmp(nics[k].vm_id, fwds[i].vm_id) == 0 &&
                strcmp(nics[k].network, fwds[i].network) == 0 && nics[k].ip[0])
                ip = nics[k].ip;
        if (!ip) {
            log_warn("network %s: forward %lld has no target: its VM has no static ip there",
                     fwds[i].network, (long long)fwds[i].id);
            continue;
        }
        ff[used++] = (struct fw_forward){.protocol = fwds[i].protocol,
                                         .host_address = fwds[i].host_address,
                                         .host_port = fwds[i].host_port,
                                         .vm_ip = ip,
                                         .vm_port = fwds[i].vm_port};
    }
    rc = net_firewall_render(&script, n->d->cfg->network_prefix, fn, nn, ff, used);
    /* Most VM changes move no forward: then there is nothing to tell nft. */
    if (!rc && !(n->applied && strcmp(n->applied, script.buf) == 0)) {
        free(n->applied);
        n->applied = NULL;
        rc = net_firewall_apply(script.buf, err, errlen);
        if (!rc) {
            n->applied = script.buf;
            script.buf = NULL;
        }
    }
    /* NAT needs the host to route; the kernel's default is not to. */
    if (!rc && any_nat) {
        int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "1\n", 2) != 2)
            log_warn("cannot enable IPv4 forwarding: NAT networks will not reach outside");
        if (fd >= 0)
            close(fd);
    }
out:
    free(script.buf);
    free(fn);
    free(ff);
    free(nets);
    free(fwds);
    free(nics);
    return rc;
}

/* ---- dnsmasq ------------------------------------------------------------ */

static void watch_stop(struct net_rt *r);
static void on_dnsmasq_exit(uv_poll_t *h, int status, int events);

static void watch_closed(uv_handle_t *h)
{
    struct net_watch *w = h->data;

    close(w->pidfd);
    free(w);
}

static void watch_stop(struct net_rt *r)
{
    if (!r->watch)
        return;
    uv_poll_stop(&r->watch->poll);
    uv_close((uv_handle_t *)&r->watch->poll, watch_closed);
    r->watch = NULL;
}

static void watch_start(struct networks *n, struct net_rt *r)
{
    struct net_watch *w = calloc(1, sizeof(*w));
    int fd = (int)syscall(SYS_pidfd_open, r->pid, 0);

    if (!w || fd < 0) {
        log_warn("network %s: cannot watch dnsmasq %d: %s", r->name, (int)r->pid,
                 w ? strerror(errno) : "out of memory");
        if (fd >= 0)
            close(fd);
        free(w);
        return;
    }
    w->pidfd = fd;
    w->owner = n;
    snprintf(w->name, sizeof(w->name), "%s", r->name);
    uv_poll_init(n->d->loop, &w->poll, fd);
    w->poll.data = w;
    uv_poll_start(&w->poll, UV_READABLE, on_dnsmasq_exit);
    r->watch = w;
}

/* Ends dnsmasq on purpose (its watch first, so the end is not taken for a crash). */
static void dnsmasq_stop(struct net_rt *r)
{
    int fd;

    watch_stop(r);
    if (!r->pid)
        return;
    fd = (int)syscall(SYS_pidfd_open, r->pid, 0);
    if (fd >= 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        kill(r->pid, SIGTERM);
        if (poll(&p, 1, STOP_WAIT_MS) == 0)
            kill(r->pid, SIGKILL);
        close(fd);
    }
    r->pid = 0;
}

/* Renders net's dnsmasq configuration; *changed when it differs from the file. */
static int write_conf(struct networks *n, const struct db_network *net, const char *dir,
                      bool *changed, char *err, size_t errlen)
{
    struct nic_ref *nics;
    struct dnsmasq_host *hosts;
    struct dnsmasq_conf c = {.name = net->name,
                             .dir = dir,
                             .bridge = net->bridge,
                             .domain = net->dns_domain,
                             .dhcp = net->dhcp,
                             .nat = net->nat,
                             .mtu = net->mtu};
    struct strbuf text = {0};
    char path[4200], old[65536];
    size_t count;
    ssize_t got = -1;
    int fd, rc;

    api_ipv4_parse_cidr(net->cidr, &c.net, &c.prefix);
    rc = collect_nics(n, net->name, &nics, &count);
    if (rc) {
        snprintf(err, errlen, "reading the store: %s", strerror(-rc));
        return rc;
    }
    hosts = calloc(count + 1, sizeof(*hosts));
    for (size_t i = 0; hosts && i < count; i++)
        hosts[i] = (struct dnsmasq_host){
            .mac = nics[i].mac, .ip = nics[i].ip[0] ? nics[i].ip : NULL, .name = nics[i].vm};
    c.hosts = hosts;
    c.n_hosts = hosts ? count : 0;
    rc = hosts ? dnsmasq_render_conf(&text, &c) : -ENOMEM;
    free(hosts);
    free(nics);
    if (rc) {
        snprintf(err, errlen, "out of memory");
        free(text.buf);
        return rc;
    }
    snprintf(path, sizeof(path), "%s/" DNSMASQ_CONF, dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        got = read(fd, old, sizeof(old));
        close(fd);
    }
    *changed = got != (ssize_t)text.len || memcmp(old, text.buf, text.len) != 0;
    if (*changed) {
        char tmp[4300];

        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        rc = fd < 0 ? -errno : 0;
        if (!rc && write(fd, text.buf, text.len) != (ssize_t)text.len)
            rc = -EIO;
        if (fd >= 0)
            close(fd);
        if (!rc && rename(tmp, path) < 0)
            rc = -errno;
        if (rc)
            snprintf(err, errlen, "writing %.200s: %s", path, strerror(-rc));
    }
    free(text.buf);
    return rc;
}

static void set_error(struct net_rt *r, const char *why)
{
    r->up = false;
    snprintf(r->error, sizeof(r->error), "%.255s", why);
}

/*
 * Brings net up: bridge, configuration, dnsmasq (adopted when it runs on the
 * same configuration, restarted when that changed). Failures leave the
 * network in error with the reason, for GET and the event stream.
 */
static int bring_up(struct networks *n, const struct db_network *net, char *err, size_t errlen)
{
    struct net_rt *r = rt_get(n, net);
    char dir[4200];
    uint32_t addr;
    unsigned prefix;
    bool changed = false;
    pid_t running;
    int rc;

    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    api_ipv4_parse_cidr(net->cidr, &addr, &prefix);
    net_dir(n, net->name, dir, sizeof(dir));
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "creating %.200s: %s", dir, strerror(errno));
        goto fail;
    }
    rc = net_link_bridge_up(net->bridge, net->mtu, addr + 1, prefix, err, errlen);
    if (!rc)
        rc = write_conf(n, net, dir, &changed, err, errlen);
    if (rc)
        goto fail;
    running = dnsmasq_running(dir);
    if (running && !changed) {
        if (r->pid != running) {
            watch_stop(r);
            r->pid = running;
            watch_start(n, r);
            log_info("network %s: adopted dnsmasq %d", net->name, (int)running);
        }
    } else {
        if (!r->pid)
            r->pid = running; /* a dnsmasq on the old configuration */
        dnsmasq_stop(r);
        rc = dnsmasq_start(dir, &r->pid, err, errlen);
        if (rc)
            goto fail;
        watch_start(n, r);
    }
    r->up = true;
    r->error[0] = 0;
    return 0;
fail:
    set_error(r, err);
    return rc;
}

static void on_dnsmasq_exit(uv_poll_t *h, int status, int events)
{
    struct net_watch *w = h->data;
    struct networks *n = w->owner;
    struct net_rt *r = rt_find(n, w->name);
    struct db_network net;
    char err[512];
    int64_t now = now_ms();
    pid_t old;

    (void)status;
    (void)events;
    if (!r || r->watch != w)
        return;
    old = r->pid;
    watch_stop(r);
    r->pid = 0;
    log_warn("network %s: dnsmasq %d exited", r->name, (int)old);
    if (db_network_get(n->d->db, r->name, &net))
        return;
    /* A dnsmasq that dies as fast as it is started would be restarted forever. */
    if (r->restart_ms[r->restarts % RESTART_BURST] &&
        now - r->restart_ms[r->restarts % RESTART_BURST] < RESTART_WINDOW_MS) {
        snprintf(err, sizeof(err), "dnsmasq exited %d times within %d s; not restarted",
                 RESTART_BURST, RESTART_WINDOW_MS / 1000);
        set_error(r, err);
        commit_event(n, "network.error", json_pack("{s:s,s:s}", "name", r->name, "error", err));
        return;
    }
    r->restart_ms[r->restarts % RESTART_BURST] = now;
    r->restarts++;
    if (bring_up(n, &net, err, sizeof(err))) {
        log_error("network %s: restarting dnsmasq: %s", r->name, err);
        commit_event(n, "network.error", json_pack("{s:s,s:s}", "name", r->name, "error", err));
        return;
    }
    commit_event(n, "network.dnsmasq_restarted",
                 json_pack("{s:s,s:s,s:I,s:I}", "name", r->name, "reason",
                           "dnsmasq exited unexpectedly", "previous_pid", (json_int_t)old, "pid",
                           (json_int_t)r->pid));
}

/* ---- lifecycle ---------------------------------------------------------- */

struct networks *networks_create(struct vmmd_daemon *d)
{
    struct networks *n = calloc(1, sizeof(*n));

    if (!n)
        return NULL;
    n->d = d;
    snprintf(n->dir, sizeof(n->dir), "%s/networks", d->cfg->state_dir);
    probe_host(n);
    return n;
}

void networks_destroy(struct networks *n)
{
    if (!n)
        return;
    /* dnsmasq keeps serving the guests while no daemon runs, as the workers keep running. */
    while (n->rts) {
        struct net_rt *r = n->rts;
        n->rts = r->next;
        watch_stop(r);
        free(r);
    }
    free(n->applied);
    free(n);
}

static bool overlaps(uint32_t a, unsigned pa, uint32_t b, unsigned pb)
{
    unsigned p = pa < pb ? pa : pb;

    return ((a ^ b) & api_ipv4_mask(p)) == 0;
}

/*
 * 0 when net/prefix overlaps no other network and no host route (routes on
 * the networks' own bridges aside); else -EEXIST and what it overlaps in why.
 * In a cluster the other networks include the cluster's definitions (but
 * name's own: realising it is not a clash with itself).
 */
static int check_free(struct networks *n, const char *name, uint32_t net, unsigned prefix,
                      char *why, size_t len)
{
    struct net_route routes[MAX_ROUTES];
    size_t nr = net_link_routes(routes, MAX_ROUTES), nn = 0;
    struct db_network *nets = NULL;
    char a[16];
    int rc = 0;

    if (db_network_list(n->d->db, &nets, &nn))
        nn = 0;
    for (size_t i = 0; i < nn && !rc; i++) {
        uint32_t other;
        unsigned op;
        if (api_ipv4_parse_cidr(nets[i].cidr, &other, &op) == 0 &&
            overlaps(net, prefix, other, op)) {
            snprintf(why, len, "overlaps network '%s' (%s)", nets[i].name, nets[i].cidr);
            rc = -EEXIST;
        }
    }
    if (!rc && n->d->cluster && cluster_networks_overlap(n->d, name, net, prefix, why, len))
        rc = -EEXIST;
    for (size_t i = 0; i < nr && !rc; i++) {
        bool ours = false;
        for (size_t k = 0; k < nn; k++)
            ours |= strcmp(routes[i].ifname, nets[k].bridge) == 0;
        if (!ours && overlaps(net, prefix, routes[i].dest, routes[i].prefix)) {
            api_ipv4_format(routes[i].dest, a);
            snprintf(why, len, "overlaps the host's route %s/%u on %s", a, routes[i].prefix,
                     routes[i].ifname);
            rc = -EEXIST;
        }
    }
    free(nets);
    return rc;
}

/* A free /24 among 10.71.0.0/24 .. 10.90.255.0/24. */
static int pick_cidr(struct networks *n, const char *name, char out[DB_CIDR_MAX + 1])
{
    char why[256], a[16];

    for (uint32_t second = 71; second <= 90; second++)
        for (uint32_t third = 0; third < 256; third++) {
            uint32_t net = 10u << 24 | second << 16 | third << 8;
            if (check_free(n, name, net, 24, why, sizeof(why)) == 0) {
                api_ipv4_format(net, a);
                snprintf(out, DB_CIDR_MAX + 1, "%s/24", a);
                return 0;
            }
        }
    return -ENOSPC;
}

/* <prefix>-<name>, or <prefix>-<hash> when that is longer than an interface name may be. */
static void bridge_name(struct networks *n, const char *name, char out[DB_BRIDGE_MAX + 1])
{
    const char *prefix = n->d->cfg->network_prefix;

    if (strlen(prefix) + 1 + strlen(name) <= DB_BRIDGE_MAX)
        snprintf(out, DB_BRIDGE_MAX + 1, "%.5s-%.*s", prefix,
                 (int)(DB_BRIDGE_MAX - 1 - strlen(prefix)), name); /* fits: checked above */
    else
        snprintf(out, DB_BRIDGE_MAX + 1, "%s-%08x", prefix, vmmd_id_hash(name));
}

static int store_fail(struct networks *n, struct api_error *err, int rc, const char *what)
{
    return api_fail(err,
                    rc == -ENOSPC                                ? API_ERR_INSUFFICIENT_STORAGE
                    : rc == -EIO || rc == -EROFS || rc == -EBUSY ? API_ERR_UNAVAILABLE
                                                                 : API_ERR_INTERNAL,
                    "%s: the state store failed (%s: %s); nothing was changed", what, strerror(-rc),
                    db_last_error(n->d->db));
}

int networks_choose_cidr(struct networks *n, const struct api_network_def *def,
                        char out[DB_CIDR_MAX + 1], struct api_error *err)
{
    char why[512];
    uint32_t addr;
    unsigned prefix;

    if (def->cidr[0]) {
        snprintf(out, DB_CIDR_MAX + 1, "%s", def->cidr);
        api_ipv4_parse_cidr(out, &addr, &prefix);
        if (check_free(n, def->name, addr, prefix, why, sizeof(why)))
            return api_fail(err, API_ERR_CONFLICT, "cidr: %s %s", out, why);
    } else if (pick_cidr(n, def->name, out)) {
        return api_fail(err, API_ERR_CONFLICT,
                        "cidr: no free /24 in 10.71.0.0-10.90.255.0; "
                        "give one");
    }
    return 0;
}

int networks_create_network(struct networks *n, const struct api_network_def *def,
                            struct db_network *out, struct api_error *err)
{
    struct db_network net = {0}, existing;
    char why[512];
    int64_t ev = 0;
    int rc;

    if (n->unavailable[0])
        return api_fail(err, API_ERR_UNAVAILABLE, "%s", n->unavailable);
    if (db_network_get(n->d->db, def->name, &existing) == 0)
        return api_fail(err, API_ERR_CONFLICT, "name: a network named '%s' exists already",
                        def->name);
    snprintf(net.name, sizeof(net.name), "%s", def->name);
    if (networks_choose_cidr(n, def, net.cidr, err))
        return -1;
    bridge_name(n, net.name, net.bridge);
    net.nat = def->nat;
    net.dhcp = def->dhcp;
    snprintf(net.dns_domain, sizeof(net.dns_domain), "%s", def->dns_domain);
    net.mtu = def->mtu;
    rc = db_network_insert(n->d->db, &net, &ev);
    if (rc == -EEXIST)
        return api_fail(err, API_ERR_CONFLICT,
                        "bridge: %s is taken by another network; choose another name", net.bridge);
    if (rc)
        return store_fail(n, err, rc, "create");
    vmmd_event_committed(n->d, ev);
    if (bring_up(n, &net, why, sizeof(why)) || apply_firewall(n, why, sizeof(why))) {
        /* Nothing half-made stays behind: the network goes again, with its event. */
        log_error("network %s: %s", net.name, why);
        networks_delete(n, net.name, &(struct api_error){0});
        return api_fail(err, API_ERR_INTERNAL, "network %s could not be set up: %s", net.name, why);
    }
    log_info("network %s (%s on %s) created", net.name, net.cidr, net.bridge);
    if (out)
        *out = net;
    return 0;
}

static int load_network(struct networks *n, const char *name, struct db_network *net,
                        struct api_error *err)
{
    int rc = db_network_get(n->d->db, name, net);

    if (rc == -ENOENT)
        return api_fail(err, API_ERR_NOT_FOUND, "no network named '%s'", name);
    if (rc)
        return store_fail(n, err, rc, "read");
    return 0;
}

int networks_update(struct networks *n, const char *name, const struct api_network_def *def,
                    struct api_error *err)
{
    struct db_network net;
    char why[512];
    int64_t ev = 0;
    int rc;

    if (load_network(n, name, &net, err))
        return -1;
    if (n->unavailable[0])
        return api_fail(err, API_ERR_UNAVAILABLE, "%s", n->unavailable);
    api_network_def_apply(def, &net);
    rc = db_network_update(n->d->db, &net, &ev);
    if (rc)
        return store_fail(n, err, rc, "update");
    vmmd_event_committed(n->d, ev);
    if (bring_up(n, &net, why, sizeof(why)) || apply_firewall(n, why, sizeof(why))) {
        commit_event(n, "network.error", json_pack("{s:s,s:s}", "name", name, "error", why));
        return api_fail(err, API_ERR_INTERNAL, "network %s was changed but not applied: %s", name,
                        why);
    }
    return 0;
}

int networks_attached_vms(struct networks *n, const char *name, char *out, size_t size)
{
    struct nic_ref *nics;
    size_t count, len = 0;
    int rc = collect_nics(n, name, &nics, &count);

    out[0] = 0;
    for (size_t i = 0; !rc && i < count; i++) {
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            seen |= strcmp(nics[k].vm_id, nics[i].vm_id) == 0;
        if (!seen && len < size)
            len += (size_t)snprintf(out + len, size - len, "%s%s", len ? ", " : "", nics[i].vm);
    }
    free(nics);
    return rc;
}

static void remove_files(struct networks *n, const char *name)
{
    static const char *const files[] = {DNSMASQ_CONF, DNSMASQ_PID, DNSMASQ_LEASES};
    char dir[4200], path[4300];

    net_dir(n, name, dir, sizeof(dir));
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int networks_delete(struct networks *n, const char *name, struct api_error *err)
{
    struct db_network net;
    struct net_rt *r, **pp;
    char vms[1024], why[512];
    int64_t ev = 0;
    int rc;

    if (load_network(n, name, &net, err))
        return -1;
    rc = networks_attached_vms(n, name, vms, sizeof(vms));
    if (rc)
        return store_fail(n, err, rc, "read");
    if (vms[0])
        return api_fail(err, API_ERR_CONFLICT,
                        "network '%s' is used by VMs: %s; remove their NICs on it first", name,
                        vms);
    rc = db_network_delete(n->d->db, name, &ev);
    if (rc)
        return store_fail(n, err, rc, "delete");
    vmmd_event_committed(n->d, ev);
    for (pp = &n->rts; (r = *pp); pp = &r->next) {
        if (strcmp(r->name, name) == 0) {
            *pp = r->next;
            dnsmasq_stop(r);
            free(r);
            break;
        }
    }
    if (!n->unavailable[0]) {
        char dir[4200];
        net_dir(n, name, dir, sizeof(dir));
        struct net_rt tmp = {.pid = dnsmasq_running(dir)};
        dnsmasq_stop(&tmp); /* one this daemon never adopted */
        if (net_link_delete(net.bridge, why, sizeof(why)) || apply_firewall(n, why, sizeof(why)))
            log_error("network %s deleted, but: %s", name, why);
    }
    remove_files(n, name);
    log_info("network %s deleted", name);
    return 0;
}

static void ensure_default(struct networks *n)
{
    const char *want = n->d->cfg->default_network;
    struct api_network_def def = {.nat = true, .dhcp = true, .mtu = API_NET_DEFAULT_MTU};
    struct db_network net;
    struct api_error err;
    char done[16];
    uint32_t a;
    unsigned p;

    if (strcmp(want, "none") == 0 ||
        db_setting_get(n->d->db, SETTING_DEFAULT, done, sizeof(done)) == 0)
        return;
    strcpy(def.name, "default");
    strcpy(def.dns_domain, API_NET_DEFAULT_DOMAIN);
    if (strcmp(want, "auto") != 0) {
        if (api_ipv4_parse_cidr(want, &a, &p) || p < API_NET_MIN_PREFIX || p > API_NET_MAX_PREFIX ||
            (a & ~api_ipv4_mask(p))) {
            log_error("--default-network %s: not auto, none or a network like 10.71.0.0/24 "
                      "(/16 to /29); no default network made",
                      want);
            return;
        }
        snprintf(def.cidr, sizeof(def.cidr), "%s", want);
    }
    if (networks_create_network(n, &def, &net, &err)) {
        log_error("the default network: %s", err.detail);
        return;
    }
    if (n->d->cluster)
        cluster_networks_publish_default(n->d, &net);
    /* Once: a user who deletes it does not get it back at the next start. */
    if (db_setting_set(n->d->db, SETTING_DEFAULT, "created"))
        log_warn("cannot record that the default network exists: %s", db_last_error(n->d->db));
}

void networks_start(struct networks *n)
{
    struct db_network *nets;
    size_t count;
    char why[512];

    if (n->unavailable[0]) {
        log_warn("%s", n->unavailable);
        return;
    }
    if (mkdir(n->dir, 0755) < 0 && errno != EEXIST)
        log_error("cannot create %s: %s", n->dir, strerror(errno));
    ensure_default(n);
    if (db_network_list(n->d->db, &nets, &count)) {
        log_error("networks: reading the store: %s", db_last_error(n->d->db));
        return;
    }
    for (size_t i = 0; i < count; i++) {
        struct net_rt *r = rt_find(n, nets[i].name);
        bool was_running;
        char dir[4200];

        if (r && r->up)
            continue; /* made just now (the default network) */
        net_dir(n, nets[i].name, dir, sizeof(dir));
        was_running = dnsmasq_running(dir) != 0;
        if (bring_up(n, &nets[i], why, sizeof(why))) {
            log_error("network %s: %s", nets[i].name, why);
            commit_event(n, "network.error",
                         json_pack("{s:s,s:s}", "name", nets[i].name, "error", why));
            continue;
        }
        r = rt_find(n, nets[i].name);
        if (!was_running && r)
            commit_event(n, "network.dnsmasq_restarted",
                         json_pack("{s:s,s:s,s:I}", "name", nets[i].name, "reason",
                                   "not running at daemon start", "pid", (json_int_t)r->pid));
    }
    free(nets);
    if (apply_firewall(n, why, sizeof(why)))
        log_error("networks: the firewall: %s", why);
}

const char *networks_unavailable(const struct networks *n)
{
    return n->unavailable[0] ? n->unavailable : NULL;
}

const char *networks_bridge_of(struct networks *n, const char *name)
{
    struct net_rt *r = name ? rt_find(n, name) : NULL;

    return r ? r->bridge : NULL;
}

/* ---- VM definitions ----------------------------------------------------- */

int networks_check_vm(struct networks *n, const struct db_vm *vm, struct api_error *err)
{
    json_t *nics = json_loads(vm->nics_json ? vm->nics_json : "[]", 0, NULL), *item;
    struct nic_ref *others = NULL;
    size_t i, count = 0;
    int ret = 0;

    json_array_foreach(nics, i, item)
    {
        const char *name = json_string_value(json_object_get(item, "network"));
        const char *ip = json_string_value(json_object_get(item, "ip"));
        struct db_network net;
        uint32_t a, base;
        unsigned prefix;
        int rc;

        if (!name)
            continue;
        rc = db_network_get(n->d->db, name, &net);
        /* A network the cluster defines is realised here on first use. */
        if (rc == -ENOENT && n->d->cluster && cluster_networks_defines(n->d, name)) {
            if ((ret = cluster_networks_realise(n->d, name, err)))
                break;
            rc = db_network_get(n->d->db, name, &net);
        }
        if (rc) {
            ret = rc == -ENOENT ? api_fail(err, API_ERR_UNPROCESSABLE,
                                           "nics[%zu].network: no network named '%s'", i, name)
                                : store_fail(n, err, rc, "read");
            break;
        }
        if (!ip)
            continue;
        api_ipv4_parse(ip, &a);
        api_ipv4_parse_cidr(net.cidr, &base, &prefix);
        if ((a & api_ipv4_mask(prefix)) != base || a == base || a == base + 1 ||
            a == (base | ~api_ipv4_mask(prefix))) {
            ret = api_fail(err, API_ERR_UNPROCESSABLE,
                           "nics[%zu].ip: %s is not a guest address of network '%s' (%s; the "
                           "network, gateway and broadcast addresses are not)",
                           i, ip, name, net.cidr);
            break;
        }
        if (!others && (rc = collect_nics(n, NULL, &others, &count))) {
            ret = store_fail(n, err, rc, "read");
            break;
        }
        for (size_t k = 0; k < count && !ret; k++)
            if (strcmp(others[k].network, name) == 0 && strcmp(others[k].ip, ip) == 0 &&
                (strcmp(others[k].vm_id, vm->id) != 0 || others[k].index < i))
                ret = api_fail(err, API_ERR_CONFLICT,
                               "nics[%zu].ip: %s on network '%s' is taken by VM '%s'", i, ip, name,
                               others[k].vm);
        if (ret)
            break;
    }
    free(others);
    json_decref(nics);
    return ret;
}

int networks_check_start(struct networks *n, const struct db_vm *vm, struct api_error *err)
{
    json_t *nics = json_loads(vm->nics_json ? vm->nics_json : "[]", 0, NULL), *item;
    size_t i;
    int ret = 0;

    json_array_foreach(nics, i, item)
    {
        const char *name = json_string_value(json_object_get(item, "network"));
        struct net_rt *r = name ? rt_find(n, name) : NULL;

        /* A VM that came from another member (take-over, hand-over, migration) brings its
         * NICs' networks here. */
        if (name && !r && n->d->cluster && cluster_networks_defines(n->d, name)) {
            if ((ret = cluster_networks_realise(n->d, name, err)))
                break;
            r = rt_find(n, name);
        }
        if (name && (!r || !r->up)) {
            ret = api_fail(err, API_ERR_CONFLICT, "nics[%zu]: network '%s' is not up: %s", i, name,
                           n->unavailable[0] ? n->unavailable
                           : r               ? r->error
                                             : "it does not exist");
            break;
        }
    }
    json_decref(nics);
    return ret;
}

void networks_vms_changed(struct networks *n)
{
    struct db_network *nets;
    size_t count;
    char why[512];

    if (n->unavailable[0] || db_network_list(n->d->db, &nets, &count))
        return;
    for (size_t i = 0; i < count; i++) {
        struct net_rt *r = rt_find(n, nets[i].name);
        if (r && r->up && bring_up(n, &nets[i], why, sizeof(why)))
            log_error("network %s: %s", nets[i].name, why);
    }
    free(nets);
    if (apply_firewall(n, why, sizeof(why)))
        log_error("networks: the firewall: %s", why);
}

/* ---- answers ------------------------------------------------------------ */

static int64_t forward_count(struct networks *n, const char *name)
{
    struct db_forward *f;
    size_t count = 0;

    if (db_forward_list(n->d->db, name, &f, &count))
        return 0;
    free(f);
    return (int64_t)count;
}

static json_t *network_json(struct networks *n, const struct db_network *net)
{
    json_t *o = api_network_to_json(net), *list = json_array();
    struct net_rt *r = rt_find(n, net->name);
    struct nic_ref *nics = NULL;
    size_t count = 0;
    const char *error = n->unavailable[0] ? n->unavailable : r && !r->up ? r->error : NULL;

    if (!o || !list) {
        json_decref(o);
        json_decref(list);
        return NULL;
    }
    collect_nics(n, net->name, &nics, &count);
    for (size_t i = 0; i < count; i++)
        json_array_append_new(
            list, json_pack("{s:s,s:s,s:i,s:s,s:o}", "vm_id", nics[i].vm_id, "vm", nics[i].vm,
                            "nic", (int)nics[i].index, "mac", nics[i].mac, "ip",
                            nics[i].ip[0] ? json_string(nics[i].ip) : json_null()));
    free(nics);
    json_object_set_new(o, "state", json_string(r && r->up ? "active" : "error"));
    json_object_set_new(o, "error", error ? json_string(error) : json_null());
    json_object_set_new(o, "dnsmasq_pid", r && r->pid ? json_integer(r->pid) : json_null());
    json_object_set_new(o, "dnsmasq_restarts", json_integer(r ? (json_int_t)r->restarts : 0));
    json_object_set_new(o, "nics", list);
    json_object_set_new(o, "forwards", json_integer(forward_count(n, net->name)));
    return o;
}

json_t *networks_list_json(struct networks *n, const char *name, struct api_error *err)
{
    struct db_network *nets, one;
    size_t count;
    json_t *arr;
    int rc;

    if (name)
        return load_network(n, name, &one, err) ? NULL : network_json(n, &one);
    rc = db_network_list(n->d->db, &nets, &count);
    if (rc) {
        store_fail(n, err, rc, "read");
        return NULL;
    }
    arr = json_array();
    for (size_t i = 0; arr && i < count; i++)
        json_array_append_new(arr, network_json(n, &nets[i]));
    free(nets);
    if (!arr)
        api_fail(err, API_ERR_INTERNAL, "out of memory");
    return arr;
}

json_t *networks_leases_json(struct networks *n, const char *name, struct api_error *err)
{
    struct db_network net;
    struct dnsmasq_lease *leases;
    struct nic_ref *nics = NULL;
    size_t count = 0, nl = 0;
    char path[4300], *text = NULL;
    json_t *arr;
    FILE *f;
    long size;

    if (load_network(n, name, &net, err))
        return NULL;
    net_dir(n, name, path, sizeof(path) - 16);
    strcat(path, "/" DNSMASQ_LEASES);
    f = fopen(path, "re");
    if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size < (1 << 22) &&
        fseek(f, 0, SEEK_SET) == 0 && (text = calloc(1, (size_t)size + 1)))
        text[fread(text, 1, (size_t)size, f)] = 0;
    if (f)
        fclose(f);
    leases = calloc(MAX_LEASES, sizeof(*leases));
    arr = json_array();
    if (!leases || !arr) {
        free(text);
        free(leases);
        json_decref(arr);
        api_fail(err, API_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    nl = dnsmasq_parse_leases(text, leases, MAX_LEASES);
    collect_nics(n, name, &nics, &count);
    for (size_t i = 0; i < nl; i++) {
        const struct nic_ref *who = NULL;
        for (size_t k = 0; k < count && !who; k++)
            if (strcasecmp(nics[k].mac, leases[i].mac) == 0)
                who = &nics[k];
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:b}", "mac", leases[i].mac, "ip",
                           leases[i].ip, "hostname",
                           leases[i].hostname[0] ? json_string(leases[i].hostname) : json_null(),
                           "vm_id", who ? json_string(who->vm_id) : json_null(), "vm",
                           who ? json_string(who->vm) : json_null(), "expires_at",
                           leases[i].expires ? api_timestamp_json(leases[i].expires * 1000)
                                             : json_null(),
                           "static", who && who->ip[0]));
    }
    free(nics);
    free(leases);
    free(text);
    return arr;
}

/* The static ip of vm_id's NIC on network, or "". */
static void vm_ip_on(struct networks *n, const char *vm_id, const char *network, char out[16])
{
    struct nic_ref *nics;
    size_t count;

    out[0] = 0;
    if (collect_nics(n, network, &nics, &count))
        return;
    for (size_t i = 0; i < count && !out[0]; i++)
        if (strcmp(nics[i].vm_id, vm_id) == 0 && nics[i].ip[0])
            snprintf(out, 16, "%s", nics[i].ip);
    free(nics);
}

json_t *networks_forwards_json(struct networks *n, const char *name, int64_t id,
                               struct api_error *err)
{
    struct db_network net;
    struct db_forward *f;
    size_t count;
    json_t *arr, *one = NULL;

    if (load_network(n, name, &net, err))
        return NULL;
    if (db_forward_list(n->d->db, name, &f, &count)) {
        store_fail(n, err, -EIO, "read");
        return NULL;
    }
    arr = json_array();
    for (size_t i = 0; arr && i < count; i++) {
        struct db_vm vm;
        char ip[16];
        json_t *o;

        if (id && f[i].id != id)
            continue;
        vm_ip_on(n, f[i].vm_id, name, ip);
        o = api_forward_to_json(&f[i], db_vm_get(n->d->db, f[i].vm_id, &vm) == 0 ? vm.name : NULL,
                                ip[0] ? ip : NULL);
        db_vm_clear(&vm);
        if (id)
            one = o;
        else
            json_array_append_new(arr, o);
    }
    free(f);
    if (id) {
        json_decref(arr);
        if (!one)
            api_fail(err, API_ERR_NOT_FOUND, "network '%s' has no forward %lld", name,
                     (long long)id);
        return one;
    }
    return arr;
}

int networks_forward_add(struct networks *n, const char *name, const struct api_forward_def *def,
                         int64_t *id, struct api_error *err)
{
    struct db_network net;
    struct db_forward fwd = {0}, *all;
    struct db_vm vm;
    size_t count;
    char ip[16], why[512];
    int64_t ev = 0;
    int rc;

    if (load_network(n, name, &net, err))
        return -1;
    if (n->unavailable[0])
        return api_fail(err, API_ERR_UNAVAILABLE, "%s", n->unavailable);
    rc = db_vm_get(n->d->db, def->vm, &vm);
    if (rc == -ENOENT)
        return api_fail(err, API_ERR_UNPROCESSABLE, "vm: no VM with id or name '%s'", def->vm);
    if (rc)
        return store_fail(n, err, rc, "read");
    vm_ip_on(n, vm.id, name, ip);
    if (!ip[0]) {
        api_fail(err, API_ERR_CONFLICT,
                 "vm: VM '%s' has no NIC with a static ip on network '%s'; give it "
                 "{\"network\": \"%s\", \"ip\": ...}",
                 vm.name, name, name);
        db_vm_clear(&vm);
        return -1;
    }
    snprintf(fwd.network, sizeof(fwd.network), "%s", name);
    snprintf(fwd.protocol, sizeof(fwd.protocol), "%s", def->protocol);
    snprintf(fwd.host_address, sizeof(fwd.host_address), "%s", def->host_address);
    snprintf(fwd.vm_id, sizeof(fwd.vm_id), "%s", vm.id);
    fwd.host_port = def->host_port;
    fwd.vm_port = def->vm_port;
    db_vm_clear(&vm);
    /* Every host address overlaps each one of them: the same port cannot go two ways. */
    if ((rc = db_forward_list(n->d->db, NULL, &all, &count)))
        return store_fail(n, err, rc, "read");
    for (size_t i = 0; i < count && !rc; i++)
        if (strcmp(all[i].protocol, fwd.protocol) == 0 && all[i].host_port == fwd.host_port &&
            (!all[i].host_address[0] || !fwd.host_address[0] ||
             strcmp(all[i].host_address, fwd.host_address) == 0))
            rc = api_fail(err, API_ERR_CONFLICT,
                          "host_port: %s port %u%s%s is forwarded already (forward %lld of "
                          "network '%s')",
                          fwd.protocol, fwd.host_port, fwd.host_address[0] ? " on " : "",
                          fwd.host_address, (long long)all[i].id, all[i].network);
    free(all);
    if (rc)
        return -1;
    rc = db_forward_insert(n->d->db, &fwd, &ev);
    if (rc == -EEXIST)
        return api_fail(err, API_ERR_CONFLICT, "host_port: %s port %u is forwarded already",
                        fwd.protocol, fwd.host_port);
    if (rc)
        return store_fail(n, err, rc, "create");
    vmmd_event_committed(n->d, ev);
    if (apply_firewall(n, why, sizeof(why))) {
        networks_forward_delete(n, name, fwd.id, &(struct api_error){0});
        return api_fail(err, API_ERR_INTERNAL, "the forward could not be applied: %s", why);
    }
    *id = fwd.id;
    return 0;
}

int networks_forward_delete(struct networks *n, const char *name, int64_t id, struct api_error *err)
{
    struct db_network net;
    char why[512];
    int64_t ev = 0;
    int rc;

    if (load_network(n, name, &net, err))
        return -1;
    rc = db_forward_delete(n->d->db, name, id, &ev);
    if (rc == -ENOENT)
        return api_fail(err, API_ERR_NOT_FOUND, "network '%s' has no forward %lld", name,
                        (long long)id);
    if (rc)
        return store_fail(n, err, rc, "delete");
    vmmd_event_committed(n->d, ev);
    if (!n->unavailable[0] && apply_firewall(n, why, sizeof(why)))
        log_error("forward %lld deleted, but: %s", (long long)id, why);
    return 0;
}

/* ---- metrics ------------------------------------------------------------ */

void networks_metrics(struct networks *n, struct strbuf *b)
{
    struct db_network *nets;
    size_t count;

    if (db_network_list(n->d->db, &nets, &count))
        return;
    strbuf_printf(b, "# HELP vmmd_network_up Whether a managed network's bridge and dnsmasq "
                     "run (1) or it is in error (0).\n# TYPE vmmd_network_up gauge\n");
    for (size_t i = 0; i < count; i++) {
        struct net_rt *r = rt_find(n, nets[i].name);
        strbuf_printf(
            b, "vmmd_network_up{network=\"%s\",bridge=\"%s\",cidr=\"%s\",nat=\"%s\"} %d\n",
            nets[i].name, nets[i].bridge, nets[i].cidr, nets[i].nat ? "true" : "false", r && r->up);
    }
    strbuf_printf(b, "# HELP vmmd_network_leases DHCP leases in a network's lease file.\n"
                     "# TYPE vmmd_network_leases gauge\n");
    for (size_t i = 0; i < count; i++) {
        struct api_error err;
        json_t *l = networks_leases_json(n, nets[i].name, &err);
        strbuf_printf(b, "vmmd_network_leases{network=\"%s\"} %zu\n", nets[i].name,
                      json_array_size(l));
        json_decref(l);
    }
    strbuf_printf(b, "# HELP vmmd_network_forwards Port forwards of a network.\n"
                     "# TYPE vmmd_network_forwards gauge\n");
    for (size_t i = 0; i < count; i++)
        strbuf_printf(b, "vmmd_network_forwards{network=\"%s\"} %lld\n", nets[i].name,
                      (long long)forward_count(n, nets[i].name));
    strbuf_printf(b, "# HELP vmmd_network_dnsmasq_restarts_total Times a network's dnsmasq was "
                     "restarted after it died.\n# TYPE vmmd_network_dnsmasq_restarts_total "
                     "counter\n");
    for (size_t i = 0; i < count; i++) {
        struct net_rt *r = rt_find(n, nets[i].name);
        strbuf_printf(b, "vmmd_network_dnsmasq_restarts_total{network=\"%s\"} %llu\n", nets[i].name,
                      (unsigned long long)(r ? r->restarts : 0));
    }
    strbuf_printf(b, "# HELP vmmd_network_rx_bytes_total Bytes the network's bridge received "
                     "(from guests).\n# TYPE vmmd_network_rx_bytes_total counter\n");
    for (size_t i = 0; i < count; i++) {
        uint64_t rx = 0, tx = 0;
        net_link_bytes(nets[i].bridge, &rx, &tx);
        strbuf_printf(b, "vmmd_network_rx_bytes_total{network=\"%s\"} %llu\n", nets[i].name,
                      (unsigned long long)rx);
    }
    strbuf_printf(b, "# HELP vmmd_network_tx_bytes_total Bytes the network's bridge sent (to "
                     "guests).\n# TYPE vmmd_network_tx_bytes_total counter\n");
    for (size_t i = 0; i < count; i++) {
        uint64_t rx = 0, tx = 0;
        net_link_bytes(nets[i].bridge, &rx, &tx);
        strbuf_printf(b, "vmmd_network_tx_bytes_total{network=\"%s\"} %llu\n", nets[i].name,
                      (unsigned long long)tx);
    }
    free(nets);
}
