/*
 * Managed networks: what the daemon runs on the host for each network in
 * the store (a bridge, a dnsmasq, its part of the firewall table) and the
 * checks that keep VM definitions, forwards and networks consistent. The
 * store is the truth: at start everything is rebuilt from it, and what
 * survived the previous daemon (bridges, dnsmasq, the table) is adopted.
 * Everything runs on the daemon's loop thread.
 */
#ifndef VMMD_NETWORKS_H
#define VMMD_NETWORKS_H

#include <jansson.h>

#include "api/api.h"
#include "db/store.h"
#include "strbuf.h"

struct vmmd_daemon;
struct networks;

struct networks *networks_create(struct vmmd_daemon *d);
void networks_destroy(struct networks *n);
/* Daemon start: the default network (first start only), bridges, dnsmasq, firewall. */
void networks_start(struct networks *n);

/* Why this host runs no managed networks, or NULL when it does. */
const char *networks_unavailable(const struct networks *n);
/* The bridge of a stored network, or NULL. */
const char *networks_bridge_of(struct networks *n, const char *name);

/* The routes' work; each answers with err (and returns -1) or fills its output. */
int networks_create_network(struct networks *n, const struct api_network_def *def,
                            struct db_network *out, struct api_error *err);
/* def's cidr checked against the other networks and the host's routes, or a free /24 picked
 * when def has none (409 when there is none or it overlaps). */
int networks_choose_cidr(struct networks *n, const struct api_network_def *def,
                         char out[DB_CIDR_MAX + 1], struct api_error *err);
int networks_update(struct networks *n, const char *name, const struct api_network_def *def,
                    struct api_error *err);
/* This host's VMs (names, comma-separated) with a NIC on the network; "" when none. */
int networks_attached_vms(struct networks *n, const char *name, char *out, size_t size);
int networks_delete(struct networks *n, const char *name, struct api_error *err);
json_t *networks_list_json(struct networks *n, const char *name_or_null, struct api_error *err);
json_t *networks_leases_json(struct networks *n, const char *name, struct api_error *err);
json_t *networks_forwards_json(struct networks *n, const char *name, int64_t id_or_0,
                               struct api_error *err);
int networks_forward_add(struct networks *n, const char *name, const struct api_forward_def *def,
                         int64_t *id, struct api_error *err);
int networks_forward_delete(struct networks *n, const char *name, int64_t id,
                            struct api_error *err);

/*
 * A VM definition's NICs against the networks: each names a network that
 * exists (422), a static ip lies inside it and is not its network, gateway
 * or broadcast address (422), and no other VM's NIC has it (409). In a
 * cluster a network the cluster defines but this member lacks is realised
 * here first (cluster_networks.c), here and in networks_check_start.
 */
int networks_check_vm(struct networks *n, const struct db_vm *vm, struct api_error *err);
/* Before a VM starts: the networks its NICs are on are up (409 otherwise). */
int networks_check_start(struct networks *n, const struct db_vm *vm, struct api_error *err);
/* After a VM definition was created, changed or deleted: DHCP hosts and forward targets. */
void networks_vms_changed(struct networks *n);

/* The per-network series of /metrics. */
void networks_metrics(struct networks *n, struct strbuf *out);

#endif
