/*
 * The daemon's options. The embedded defaults need no file: state under
 * ./var for a user run, /var/lib/vmmd when vmmd runs from its installed
 * location; the database, API socket and token live in the state directory;
 * VM paths must lie under <state>/images unless --image-dir says otherwise.
 */
#include "config.h"
#include "log.h"
#include "api/api.h"

#include <ctype.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef VMMD_INSTALL_BINDIR
#define VMMD_INSTALL_BINDIR "/usr/local/bin"
#endif

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

#define OFF(f) offsetof(struct vmmd_config, f)
static const struct vmmd_opt serve_options[] = {
    {.name = "config-file", .type = VMMD_OPT_STRING, .offset = OFF(config_file),
     .metavar = "PATH", .help = "read options from PATH (name = value lines) before the flags"},
    {.name = "state-dir", .type = VMMD_OPT_STRING, .offset = OFF(state_dir), .metavar = "DIR",
     .help = "database, sockets, token, worker run files; default ./var "
             "(/var/lib/vmmd when installed)"},
    {.name = "socket", .type = VMMD_OPT_STRING, .offset = OFF(socket_path), .metavar = "PATH",
     .help = "API Unix socket (mode 0660), default <state-dir>/vmmd.sock"},
    {.name = "listen", .type = VMMD_OPT_STRING, .offset = OFF(listen), .metavar = "HOST:PORT",
     .help = "also serve the API on TCP with TLS (plain HTTP only with --insecure-http); every "
             "request needs Authorization: Bearer <token>"},
    {.name = "insecure-http", .type = VMMD_OPT_FLAG, .offset = OFF(insecure_http),
     .help = "serve --listen as plain HTTP instead of TLS (the token then crosses the network "
             "in clear text)"},
    {.name = "tls-cert", .type = VMMD_OPT_STRING, .offset = OFF(tls_cert), .metavar = "PATH",
     .help = "PEM certificate (chain) for TLS on --listen; default a self-signed one created "
             "on first start as <state-dir>/tls-cert.pem"},
    {.name = "tls-key", .type = VMMD_OPT_STRING, .offset = OFF(tls_key), .metavar = "PATH",
     .help = "PEM private key of --tls-cert; default <state-dir>/tls-key.pem (mode 0600)"},
    {.name = "tls-client-ca", .type = VMMD_OPT_STRING, .offset = OFF(tls_client_ca),
     .metavar = "PATH",
     .help = "TCP clients must present a certificate signed by a CA of this PEM file, in "
             "addition to the token"},
    {.name = "allowed-origin", .type = VMMD_OPT_LIST, .offset = OFF(allowed_origins),
     .metavar = "ORIGIN",
     .help = "a browser Origin (scheme://host[:port]) allowed besides the daemon's own "
             "(repeatable); other Origins are refused with 403"},
    {.name = "max-connections-per-ip", .type = VMMD_OPT_UINT,
     .offset = OFF(max_connections_per_ip), .metavar = "N",
     .help = "TCP connections one client address may hold; default 64", .min = 1,
     .max = 100000},
    {.name = "header-timeout", .type = VMMD_OPT_UINT, .offset = OFF(header_timeout_s),
     .metavar = "SECONDS",
     .help = "a TCP client has this long from connecting (or from its previous answer) to "
             "send a request's complete headers, TLS handshake included; default 10",
     .min = 1, .max = 3600},
    {.name = "token-file", .type = VMMD_OPT_STRING, .offset = OFF(token_file), .metavar = "PATH",
     .help = "bearer token, created (mode 0600) on first start; default <state-dir>/token"},
    {.name = "image-dir", .type = VMMD_OPT_LIST, .offset = OFF(image_dirs), .metavar = "DIR",
     .help = "a directory VM kernels, initrds and disks may lie under (repeatable); "
             "default <state-dir>/images"},
    {.name = "storage-pool", .type = VMMD_OPT_LIST, .offset = OFF(storage_pools),
     .metavar = "NAME=DIR",
     .help = "one more storage pool for images and volumes (repeatable); the pools images "
             "(<state-dir>/images) and volumes (<state-dir>/volumes) always exist"},
    {.name = "import-dir", .type = VMMD_OPT_LIST, .offset = OFF(import_dirs), .metavar = "DIR",
     .help = "a directory image imports by path may read from (repeatable), besides the "
             "image directories"},
    {.name = "log-file", .type = VMMD_OPT_STRING, .offset = OFF(log_file), .metavar = "PATH",
     .help = "log here instead of stderr (reopened on SIGHUP)"},
    {.name = "log-level", .type = VMMD_OPT_CHOICE, .offset = OFF(log_level), .metavar = "LEVEL",
     .help = "default info", .choices = log_levels},
    {.name = "memory-overcommit", .type = VMMD_OPT_UINT, .offset = OFF(memory_overcommit_pct),
     .metavar = "PCT", .help = "running VMs may hold host RAM x PCT/100; default 100",
     .min = 10, .max = 1000},
    {.name = "max-vcpus", .type = VMMD_OPT_UINT, .offset = OFF(max_vcpus), .metavar = "N",
     .help = "vCPUs all running VMs may hold together; default 4 per host CPU", .min = 1,
     .max = 65536},
    {.name = "max-vms", .type = VMMD_OPT_UINT, .offset = OFF(max_vms), .metavar = "N",
     .help = "VM definitions this host may hold (a create past it is refused with 409); "
             "default 4096",
     .min = 1, .max = 1000000},
    {.name = "dashboard-dir", .type = VMMD_OPT_STRING, .offset = OFF(dashboard_dir),
     .metavar = "DIR",
     .help = "the web dashboard's files, served at /; default share/vmmd/dashboard beside "
             "the installed binary, or the build tree's copy"},
    {.name = "events-max-lag", .type = VMMD_OPT_UINT, .offset = OFF(events_max_lag),
     .metavar = "N",
     .help = "an event stream client more than N events behind is disconnected (it resumes "
             "with Last-Event-ID); default 1000",
     .min = 1, .max = 1000000},
    {.name = "no-sandbox", .type = VMMD_OPT_FLAG, .offset = OFF(no_sandbox),
     .help = "run workers as root in the host's namespaces without system call filters "
             "(development only: a hostile guest that escapes a device model owns the host)"},
    {.name = "require-sandbox", .type = VMMD_OPT_FLAG, .offset = OFF(require_sandbox),
     .help = "refuse to start VMs when this host cannot sandbox their workers"},
    {.name = "sandbox-uid-base", .type = VMMD_OPT_UINT, .offset = OFF(sandbox_uid_base),
     .metavar = "UID",
     .help = "first uid (and gid) of the range sandboxed workers run as, one per running VM; "
             "default 900000000",
     .min = 1000, .max = 4000000000u},
    {.name = "sandbox-uid-count", .type = VMMD_OPT_UINT, .offset = OFF(sandbox_uid_count),
     .metavar = "N", .help = "size of that range: VMs that may run at once; default 65536",
     .min = 1, .max = 16777216},
    {.name = "events-max-age", .type = VMMD_OPT_UINT, .offset = OFF(events_max_age_s),
     .metavar = "SECONDS",
     .help = "events older than this are deleted (a stream resuming from before them gets an "
             "events.reset event); default 604800 (7 days)",
     .min = 1, .max = 10ull * 365 * 86400},
    {.name = "events-max-count", .type = VMMD_OPT_UINT, .offset = OFF(events_max_count),
     .metavar = "N", .help = "keep at most the newest N events; default 100000",
     .min = 10, .max = 100000000},
    {.name = "default-network", .type = VMMD_OPT_STRING, .offset = OFF(default_network),
     .metavar = "auto|none|CIDR",
     .help = "on first start, create the NAT network \"default\" on CIDR (auto: a free /24 that "
             "overlaps no host route) or not at all (none); default auto"},
    {.name = "no-networks", .type = VMMD_OPT_FLAG, .offset = OFF(no_networks),
     .help = "manage no networks (the operator runs the host's bridges): no default network, "
             "no firewall table, no dnsmasq; /v1/networks changes answer 503"},
    {.name = "network-prefix", .type = VMMD_OPT_STRING, .offset = OFF(network_prefix),
     .metavar = "WORD",
     .help = "names what managed networks make on the host: the nftables table inet WORD and "
             "bridges WORD-<network>; 1 to 5 of [a-z0-9]; default vmmd"},
    {.name = "firmware", .type = VMMD_OPT_STRING, .offset = OFF(firmware), .metavar = "FILE",
     .help = "PC firmware that VMs with \"boot\": \"disk\" start in; default "
             VMMD_DEFAULT_FIRMWARE " (package seabios)"},
    {.name = "cluster-etcd", .type = VMMD_OPT_STRING, .offset = OFF(cluster_etcd),
     .metavar = "URL[,URL...]",
     .help = "join a cluster whose state is in this etcd v3 (its client URLs); without it "
             "vmmd runs stand-alone"},
    {.name = "cluster-name", .type = VMMD_OPT_STRING, .offset = OFF(cluster_name),
     .metavar = "NAME", .help = "the cluster's name (its keys are under /vmmd/NAME/); default "
                                "default"},
    {.name = "cluster-member", .type = VMMD_OPT_STRING, .offset = OFF(cluster_member),
     .metavar = "NAME", .help = "this member's name in the cluster; default the host name"},
    {.name = "advertise", .type = VMMD_OPT_STRING, .offset = OFF(advertise), .metavar = "URL",
     .help = "the URL (https://host:port) other members and clients reach this member at"},
    {.name = "cluster-join-token", .type = VMMD_OPT_STRING, .offset = OFF(cluster_join_token),
     .metavar = "TOKEN",
     .help = "a join token made on a member (POST /v1/cluster/join-tokens): needed to join a "
             "cluster that has members; single use"},
    {.name = "cluster-lease-ttl", .type = VMMD_OPT_UINT, .offset = OFF(cluster_lease_ttl_s),
     .metavar = "SECONDS",
     .help = "a member whose lease was not renewed for this long is offline; default 10",
     .min = 2, .max = 300},
    {.name = "help", .type = VMMD_OPT_FLAG, .offset = OFF(help), .help = "show this help"},
    {.name = NULL},
};
#undef OFF

void vmmd_config_help(void)
{
    vmmd_opts_help(stdout,
                   "usage: vmmd [serve] [options]\n\n"
                   "Runs the vmmd daemon: the HTTP/JSON API on a Unix socket (and optionally\n"
                   "TCP), VM definitions in SQLite, one worker process per running VM.",
                   serve_options);
}

/* ./var normally; /var/lib/vmmd when this binary is the installed one. */
static const char *default_state_dir(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n > 0) {
        self[n] = 0;
        if (strncmp(self, VMMD_INSTALL_BINDIR "/", strlen(VMMD_INSTALL_BINDIR) + 1) == 0)
            return "/var/lib/vmmd";
    }
    return "./var";
}

/*
 * The dashboard is found from this binary's own place, so the same default
 * works installed (<prefix>/bin/../share/vmmd/dashboard) and in a build tree
 * (<build>/vmmd/../dashboard/www, which the dashboard target fills).
 */
static char *default_dashboard_dir(void)
{
    static const char *const candidates[] = {"../share/vmmd/dashboard", "../dashboard/www"};
    char self[PATH_MAX], path[PATH_MAX + 32], *slash;
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    struct stat st;

    if (n <= 0)
        return NULL;
    self[n] = 0;
    slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = 0;
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", self, candidates[i]);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return strdup(path);
    }
    return NULL;
}

static const char *derive(struct vmmd_config *cfg, int slot, const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;

    cfg->derived[slot] = malloc(len);
    if (cfg->derived[slot])
        snprintf(cfg->derived[slot], len, "%s/%s", dir, name);
    return cfg->derived[slot];
}

int vmmd_config_load(struct vmmd_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    struct vmmd_config flags;
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = VMMD_LOG_INFO;
    cfg->memory_overcommit_pct = 100;
    /* The config file is named by a flag, so parse flags once to find it... */
    flags = *cfg;
    if ((rc = vmmd_opts_parse(serve_options, &flags, argc, argv, err, errlen)))
        return rc;
    if (flags.config_file) {
        rc = vmmd_opts_parse_file(serve_options, cfg, flags.config_file, &cfg->storage_file, err,
                                  errlen);
        if (rc)
            return rc;
    }
    /* ...then again on top of the file, so flags win. */
    if ((rc = vmmd_opts_parse(serve_options, cfg, argc, argv, err, errlen)))
        return rc;
    if (!cfg->state_dir)
        cfg->state_dir = default_state_dir();
    if (!cfg->socket_path)
        cfg->socket_path = derive(cfg, 0, cfg->state_dir, "vmmd.sock");
    if (!cfg->token_file)
        cfg->token_file = derive(cfg, 1, cfg->state_dir, "token");
    if (cfg->image_dirs.count == 0)
        cfg->image_dirs.items[cfg->image_dirs.count++] = derive(cfg, 2, cfg->state_dir, "images");
    if (!cfg->dashboard_dir)
        cfg->dashboard_dir = cfg->derived[3] = default_dashboard_dir();
    if (cfg->events_max_lag == 0)
        cfg->events_max_lag = 1000;
    if (cfg->events_max_age_s == 0)
        cfg->events_max_age_s = VMMD_DEFAULT_EVENTS_MAX_AGE_S;
    if (cfg->events_max_count == 0)
        cfg->events_max_count = VMMD_DEFAULT_EVENTS_MAX_COUNT;
    if (cfg->max_vms == 0)
        cfg->max_vms = VMMD_DEFAULT_MAX_VMS;
    if (cfg->sandbox_uid_base == 0)
        cfg->sandbox_uid_base = VMMD_DEFAULT_SANDBOX_UID_BASE;
    if (cfg->sandbox_uid_count == 0)
        cfg->sandbox_uid_count = VMMD_DEFAULT_SANDBOX_UID_COUNT;
    if (cfg->no_sandbox && cfg->require_sandbox) {
        snprintf(err, errlen, "--no-sandbox and --require-sandbox contradict each other");
        return 2;
    }
    if (cfg->max_connections_per_ip == 0)
        cfg->max_connections_per_ip = 64;
    if (cfg->header_timeout_s == 0)
        cfg->header_timeout_s = 10;
    if (cfg->tls_cert && !cfg->tls_key) {
        snprintf(err, errlen, "--tls-cert needs --tls-key");
        return -EINVAL;
    }
    if (cfg->tls_key && !cfg->tls_cert) {
        snprintf(err, errlen, "--tls-key needs --tls-cert");
        return -EINVAL;
    }
    if (cfg->insecure_http && (cfg->tls_cert || cfg->tls_client_ca)) {
        snprintf(err, errlen, "--insecure-http cannot go with --tls-cert or --tls-client-ca");
        return -EINVAL;
    }
    if (!cfg->tls_cert) {
        cfg->tls_cert = derive(cfg, 4, cfg->state_dir, "tls-cert.pem");
        cfg->tls_key = derive(cfg, 5, cfg->state_dir, "tls-key.pem");
        cfg->tls_self_signed = true;
    }
    if (cfg->max_vcpus == 0)
        cfg->max_vcpus = 4 * (uint64_t)sysconf(_SC_NPROCESSORS_ONLN);
    if (!cfg->default_network)
        cfg->default_network = "auto";
    if (!cfg->network_prefix)
        cfg->network_prefix = "vmmd";
    if (!cfg->firmware)
        cfg->firmware = VMMD_DEFAULT_FIRMWARE;
    if (!cfg->cluster_name)
        cfg->cluster_name = "default";
    if (!cfg->cluster_member) {
        /* The host name as a name: lower case, anything else a dash, no leading dash. */
        char *m = cfg->member_default;
        gethostname(m, sizeof(cfg->member_default) - 1);
        for (char *c = m; *c; c++)
            *c = isalnum((unsigned char)*c) ? (char)tolower((unsigned char)*c) : '-';
        while (*m == '-')
            m++;
        cfg->cluster_member = m;
    }
    if (cfg->cluster_lease_ttl_s == 0)
        cfg->cluster_lease_ttl_s = 10;
    if (!api_name_valid(cfg->cluster_name) || !api_name_valid(cfg->cluster_member)) {
        snprintf(err, errlen, "--cluster-name and --cluster-member must be names: 1 to 63 of "
                              "[a-z0-9-], not starting with a dash");
        return -EINVAL;
    }
    if (strlen(cfg->network_prefix) < 1 || strlen(cfg->network_prefix) > 5 ||
        strspn(cfg->network_prefix, "abcdefghijklmnopqrstuvwxyz0123456789") !=
            strlen(cfg->network_prefix)) {
        snprintf(err, errlen, "--network-prefix must be 1 to 5 of [a-z0-9], not '%s'",
                 cfg->network_prefix);
        return -EINVAL;
    }
    return 0;
}

void vmmd_config_free(struct vmmd_config *cfg)
{
    for (size_t i = 0; i < sizeof(cfg->derived) / sizeof(cfg->derived[0]); i++)
        free(cfg->derived[i]);
    free(cfg->storage_file);
}
