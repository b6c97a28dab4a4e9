/* Route handlers, one file per resource; routes.c holds the table and dispatch. */
#ifndef VMMD_ROUTES_H
#define VMMD_ROUTES_H

#include "daemon.h"

/* Path parameters of the matched route ("" where the template has none). */
struct route_match {
    char id[128];   /* {id}: a VM's id or name, or a forward's id */
    char name[128]; /* {name}: a network's name */
    char file[128]; /* {file}: a dashboard asset's name, not yet checked */
};

typedef void (*route_fn)(struct vmmd_daemon *d, struct http_request *req,
                         const struct route_match *m);

void route_host_get(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_vms_list(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_vms_create(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_vm_get(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_vm_patch(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_vm_delete(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_vm_start(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_vm_stop(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_vm_shutdown(struct vmmd_daemon *d, struct http_request *req,
                       const struct route_match *m);
void route_vm_reboot(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_vm_pause(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_vm_resume(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_vm_console(struct vmmd_daemon *d, struct http_request *req,
                      const struct route_match *m);
void route_vm_stats(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_events(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_metrics(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_cluster_get(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_cluster_member_delete(struct vmmd_daemon *d, struct http_request *req,
                                 const struct route_match *m);
void route_cluster_join_token(struct vmmd_daemon *d, struct http_request *req,
                              const struct route_match *m);
void route_cluster_evacuate(struct vmmd_daemon *d, struct http_request *req,
                            const struct route_match *m);
void route_openapi(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_networks_list(struct vmmd_daemon *d, struct http_request *req,
                         const struct route_match *m);
void route_networks_create(struct vmmd_daemon *d, struct http_request *req,
                           const struct route_match *m);
void route_network_get(struct vmmd_daemon *d, struct http_request *req,
                       const struct route_match *m);
void route_network_patch(struct vmmd_daemon *d, struct http_request *req,
                         const struct route_match *m);
void route_network_delete(struct vmmd_daemon *d, struct http_request *req,
                          const struct route_match *m);
void route_network_leases(struct vmmd_daemon *d, struct http_request *req,
                          const struct route_match *m);
void route_network_forwards_list(struct vmmd_daemon *d, struct http_request *req,
                                 const struct route_match *m);
void route_network_forwards_create(struct vmmd_daemon *d, struct http_request *req,
                                   const struct route_match *m);
void route_network_forward_delete(struct vmmd_daemon *d, struct http_request *req,
                                  const struct route_match *m);
void route_storage_get(struct vmmd_daemon *d, struct http_request *req,
                       const struct route_match *m);
void route_images_list(struct vmmd_daemon *d, struct http_request *req,
                       const struct route_match *m);
/* With the headers: an application/octet-stream body is an upload, taken as it arrives. */
void route_images_admit(struct vmmd_daemon *d, struct http_request *req,
                        const struct route_match *m);
void route_images_create(struct vmmd_daemon *d, struct http_request *req,
                         const struct route_match *m);
void route_image_get(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m);
void route_image_content(struct vmmd_daemon *d, struct http_request *req,
                         const struct route_match *m);
void route_image_delete(struct vmmd_daemon *d, struct http_request *req,
                        const struct route_match *m);
void route_volumes_list(struct vmmd_daemon *d, struct http_request *req,
                        const struct route_match *m);
void route_volumes_create(struct vmmd_daemon *d, struct http_request *req,
                          const struct route_match *m);
void route_volume_get(struct vmmd_daemon *d, struct http_request *req,
                      const struct route_match *m);
void route_volume_patch(struct vmmd_daemon *d, struct http_request *req,
                        const struct route_match *m);
void route_volume_delete(struct vmmd_daemon *d, struct http_request *req,
                         const struct route_match *m);
void route_dashboard_index(struct vmmd_daemon *d, struct http_request *req,
                           const struct route_match *m);
void route_dashboard_asset(struct vmmd_daemon *d, struct http_request *req,
                           const struct route_match *m);

void route_vm_snapshot(struct vmmd_daemon *d, struct http_request *req,
                       const struct route_match *m);
void route_vm_snapshots_list(struct vmmd_daemon *d, struct http_request *req,
                             const struct route_match *m);
void route_vm_snapshot_get(struct vmmd_daemon *d, struct http_request *req,
                           const struct route_match *m);
void route_vm_snapshot_delete(struct vmmd_daemon *d, struct http_request *req,
                              const struct route_match *m);
void route_vm_restore(struct vmmd_daemon *d, struct http_request *req,
                      const struct route_match *m);
/* POST /v1/vms with "from_snapshot" (route_vms_create hands it over). */
void routes_vm_clone(struct vmmd_daemon *d, struct http_request *req);
/* Parses a VM definition, checks it and stores it (its event committed): 0 with *out filled
 * (db_vm_clear), or -1 after answering the request with why not. */
int routes_vm_create_body(struct vmmd_daemon *d, struct http_request *req, const char *body,
                          size_t len, const char *id, struct db_vm *out);
/* The definition fields of a VM object (GET /v1/vms/{id}), as a create takes them. */
json_t *routes_vm_definition(const json_t *vm_json);
/* Starts a live migration of vm (running or paused) as POST /v1/vms/{id}/migrate does; req
 * (NULL for an evacuation) gets the answer. 0 when started. */
struct api_migrate_req;
int routes_migration_begin(struct vmmd_daemon *d, struct http_request *req,
                           const struct db_vm *vm, const struct api_migrate_req *mr);
/* Live migration (routes_migrations.c). */
void route_vm_migrate(struct vmmd_daemon *d, struct http_request *req,
                      const struct route_match *m);
void route_vm_migration(struct vmmd_daemon *d, struct http_request *req,
                        const struct route_match *m);
void route_migrations_accept(struct vmmd_daemon *d, struct http_request *req,
                             const struct route_match *m);
/* The supervisor saw a worker end: with "migrated" the VM runs elsewhere and its record goes;
 * otherwise a migration of it that was still running has failed. */
void routes_migration_worker_ended(struct vmmd_daemon *d, const char *vm_id, const char *reason);
/* Removes what a VM's worker left in its run directory. */
void routes_remove_run_dir(struct vmmd_daemon *d, const char *id);
unsigned routes_migrations_running(void);
/* At drain: no more polling; at exit: the bookkeeping goes. */
void routes_migrations_stop(void);
void routes_migrations_free(void);
/* Answers with the VM as stored now. */
void routes_respond_vm(struct vmmd_daemon *d, struct http_request *req, unsigned status,
                       const char *id);
/* Whether the host swaps (a line past /proc/swaps' header): then RAM a worker finds absent
 * may be swapped out rather than untouched, and it must read every page. */
bool routes_host_swaps(void);
/* A deleted VM's snapshot files. */
void routes_snapshots_remove_all(struct vmmd_daemon *d, const char *vm_id);
/* Snapshots stored and the bytes they take on disk (metrics). */
int routes_snapshot_totals(struct vmmd_daemon *d, uint64_t *count, uint64_t *bytes);

/* What VMs with a worker hold now (admission control and GET /v1/host). */
struct vm_allocation {
    uint64_t defined, running, vcpus, memory_mib;
};
int routes_allocation(struct vmmd_daemon *d, struct vm_allocation *out);

/* Looks a VM up by id or name; answers 404 itself and returns -ENOENT. */
/*
 * Answers a store call that failed with rc: a full disk is 507, a store that
 * cannot write now (I/O error, read-only, locked) 503, -ENOENT 404, the
 * rest 500; the detail says what failed and SQLite's reason.
 */
void routes_respond_store_error(struct vmmd_daemon *d, struct http_request *req, int rc,
                                const char *what);
int routes_load_vm(struct vmmd_daemon *d, struct http_request *req, const char *id,
                   struct db_vm *vm);
/* body with status, or (body NULL) the problem in err. */
void routes_respond(struct http_request *req, unsigned status, json_t *body,
                    const struct api_error *err);

/* Ends every interactive console session (shutdown, before MHD stops). */
void routes_console_close_all(void);

/* Event stream (routes_events.c). */
struct event_stream *event_stream_create(struct vmmd_daemon *d);
/* Event event_id was committed: wake the clients waiting for it, drop those too far behind. */
void event_stream_notify(struct event_stream *es, int64_t event_id);
/* Clients connected now (metrics). */
unsigned event_stream_clients(const struct event_stream *es);
/* Ends every stream (before the HTTP servers stop). */
void event_stream_close_all(struct event_stream *es);
/* After the HTTP servers are gone; frees es once the loop has closed its timer. */
void event_stream_destroy(struct event_stream *es);

#endif
