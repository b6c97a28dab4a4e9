/* The daemon's state, owned by its one libuv loop thread. */
#ifndef VMMD_DAEMON_H
#define VMMD_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "api/api.h"
#include "config.h"
#include "db/store.h"
#include "http_server.h"
#include "tls.h"

struct supervisor;
struct networks;
struct storage;
struct event_stream;
struct cluster;
struct cluster_networks;
struct cluster_images;

/* Counters for /metrics. */
struct vmmd_metrics {
    uint64_t events_emitted;
    uint64_t workers_started;
    uint64_t workers_lost;         /* crashed or killed */
    uint64_t event_clients_dropped; /* event streams cut for falling behind */
    uint64_t snapshots_taken, restores; /* restores include clones */
    uint64_t snapshot_pause_ns;         /* vCPU time stopped for snapshots */
    uint64_t migrations_done, migrations_failed;
    uint64_t migration_downtime_us;
};

struct vmmd_daemon {
    struct vmmd_config *cfg;
    uv_loop_t *loop;
    struct db_store *db;
    struct db_store *db_reader; /* read-only, for the thread pool: lists render off the loop */
    struct api_limits limits;
    char *image_dirs[VMMD_OPT_LIST_MAX]; /* canonical */
    char token[65];
    char *run_dir;     /* <state>/run: one directory per VM with a worker */
    char *self_exe;    /* this binary, run as the workers */
    int dashboard_dir_fd; /* the dashboard's files, -1 when there are none */
    struct http_server *http_unix, *http_tcp;
    struct vmmd_tls tls; /* the TCP listener's, when it serves TLS */
    bool tls_enabled;
    struct supervisor *sup;
    struct networks *nets;
    struct storage *storage;
    struct event_stream *events;
    struct cluster *cluster; /* NULL: stand-alone */
    struct cluster_networks *cluster_nets; /* the cluster's networks as this member sees them */
    struct cluster_images *cluster_images; /* cluster_images.c's state, made on first use */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    bool stopping;
    uint64_t host_memory_bytes;
    unsigned host_cpus;
    struct vmmd_metrics metrics;
    uint64_t generation; /* bumped on every committed change: keys read caches */
};

int vmmd_serve_main(int argc, char **argv);

/* Routing (routes.c): admission with the headers (token, route, method),
 * dispatch with the body, and the route table for the OpenAPI check. */
void vmmd_admit(struct vmmd_daemon *d, struct http_request *req);
void vmmd_dispatch(struct vmmd_daemon *d, struct http_request *req);
void vmmd_print_routes(void);

/* A state change or other event was committed with this id: tell SSE clients. */
/* mkdir -p: every missing directory of path, the last with mode; 0 or -errno. */
int vmmd_mkdir_p(const char *path, mode_t mode);
void vmmd_event_committed(struct vmmd_daemon *d, int64_t event_id);
/* Records an event (data stolen; NULL for {}) and tells the streams; logs a failure. */
void vmmd_event(struct vmmd_daemon *d, const char *type, const char *vm_id, json_t *data);

#endif
