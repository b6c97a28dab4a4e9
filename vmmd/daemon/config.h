/* The daemon's configuration: one option table for flags, the config file and --help. */
#ifndef VMMD_CONFIG_H
#define VMMD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/options.h"

/*
 * The definitions a host may hold. The bound keeps what an unpaged
 * GET /v1/vms renders, and the store, finite: 4096 VMs with 4 KiB command
 * lines are a list of about 18 MB.
 */
#define VMMD_DEFAULT_MAX_VMS 4096

/* Far above the uids of people and services, below nobody's 32-bit range's end. */
#define VMMD_DEFAULT_SANDBOX_UID_BASE  900000000u
#define VMMD_DEFAULT_SANDBOX_UID_COUNT 65536u
/*
 * Event retention: a week of history is what a dashboard or a reconnecting
 * client needs; 100,000 events (about 15 MB with their index) bound a host
 * whose VMs change state all the time.
 */
#define VMMD_DEFAULT_EVENTS_MAX_AGE_S (7 * 86400)
#define VMMD_DEFAULT_EVENTS_MAX_COUNT 100000
#define VMMD_DEFAULT_FIRMWARE "/usr/share/seabios/bios-256k.bin"

struct vmmd_config {
    const char *config_file;
    const char *state_dir;
    const char *socket_path;       /* default <state>/vmmd.sock */
    const char *listen;            /* HOST:PORT for TCP with a bearer token; NULL: none */
    const char *token_file;        /* default <state>/token */
    struct vmmd_opt_list image_dirs; /* default <state>/images */
    struct vmmd_opt_list storage_pools; /* NAME=DIR, besides images and volumes under <state> */
    struct vmmd_opt_list import_dirs;   /* where POST /v1/images {"path"} may read */
    const char *log_file;          /* NULL: stderr */
    int log_level;
    uint64_t memory_overcommit_pct; /* admission: running VMs may hold RAM * pct / 100 */
    uint64_t max_vcpus;             /* admission: 0 means 4 per host CPU */
    uint64_t max_vms;               /* VM definitions the store may hold */
    const char *dashboard_dir;      /* the web dashboard's files; NULL: none found */
    uint64_t events_max_lag;        /* an event stream this many events behind is dropped */
    bool no_sandbox, require_sandbox;
    uint64_t sandbox_uid_base, sandbox_uid_count;
    bool insecure_http;            /* --listen serves plain HTTP, not TLS */
    const char *tls_cert, *tls_key; /* default <state>/tls-{cert,key}.pem, made on first start */
    bool tls_self_signed;           /* the defaults above: create them when missing */
    const char *tls_client_ca;      /* TCP clients need a certificate signed by it */
    struct vmmd_opt_list allowed_origins; /* browser Origins allowed besides the daemon's own */
    uint64_t max_connections_per_ip;
    uint64_t header_timeout_s;      /* to send complete headers, from connect or last answer */
    uint64_t events_max_age_s;      /* retention: events older than this are pruned */
    uint64_t events_max_count;      /* retention: at most this many events are kept */
    const char *default_network;   /* auto | none | a CIDR: the "default" network on first start */
    const char *network_prefix;    /* nftables table and bridge names */
    bool no_networks;              /* the operator runs the host's networking */
    const char *firmware;          /* what "boot": "disk" VMs start in */
    const char *cluster_etcd;      /* etcd client URLs, comma-separated; NULL: stand-alone */
    const char *cluster_name;      /* keys under /vmmd/<name>/; default "default" */
    const char *cluster_member;    /* this member's name; default the host name */
    const char *advertise;         /* how other members reach this one; NULL: not at all */
    const char *cluster_join_token; /* to join a cluster that has members already */
    uint64_t cluster_lease_ttl_s;  /* a member silent this long is offline */
    bool help;

    /* Derived at load time, owned. */
    char *storage_file;
    char *derived[6];
    char member_default[65]; /* the host name, when --cluster-member is not given */
};

/* Loads defaults, the config file (if --config-file is given) and flags; 2 on usage error. */
int vmmd_config_load(struct vmmd_config *cfg, int argc, char **argv, char *err, size_t errlen);
void vmmd_config_free(struct vmmd_config *cfg);
void vmmd_config_help(void);

#endif
