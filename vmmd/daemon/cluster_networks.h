/*
 * Managed networks as cluster objects (--cluster-etcd). A network is defined
 * once, in etcd under networks/<name> ({"name","cidr","nat","dhcp",
 * "dns_domain","mtu","created_ms","updated_ms"}), and realised (bridge,
 * dnsmasq, firewall: networks.c) only on the members that need it: the first
 * time a VM with a NIC on it is defined or started there. Each member keeps
 * its realisations in its own store as it does stand-alone, with its own
 * bridge name; the poll brings changed definitions to them and removes those
 * whose definition went. Everything runs on the daemon's loop.
 */
#ifndef VMMD_CLUSTER_NETWORKS_H
#define VMMD_CLUSTER_NETWORKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "db/store.h"

struct vmmd_daemon;
struct http_request;
struct cluster_networks;

void cluster_networks_free(struct cluster_networks *cn);

/* The routes in a cluster (routes_networks.c); each answers req, now or later. */
void cluster_networks_list(struct vmmd_daemon *d, struct http_request *req, const char *name);
void cluster_networks_create(struct vmmd_daemon *d, struct http_request *req,
                             const struct api_network_def *def);
void cluster_networks_patch(struct vmmd_daemon *d, struct http_request *req, const char *name,
                            const struct api_network_def *def);
void cluster_networks_delete(struct vmmd_daemon *d, struct http_request *req, const char *name);

/* A request for the leases or forwards of a network the cluster defines but this member did
 * not realise: answered 404 saying where it is realised (true); false for the rest. */
bool cluster_networks_elsewhere(struct vmmd_daemon *d, struct http_request *req, const char *name);
/* Whether the cluster defines network name. */
bool cluster_networks_defines(struct vmmd_daemon *d, const char *name);
/* Creates the cluster's network name in this member's store and brings it up; err says why
 * not (the detail names the network). Event network.realised {network, member}. */
int cluster_networks_realise(struct vmmd_daemon *d, const char *name, struct api_error *err);
/* Whether net/prefix overlaps a network the cluster defines other than name (why says which). */
bool cluster_networks_overlap(struct vmmd_daemon *d, const char *name, uint32_t net,
                              unsigned prefix, char *why, size_t len);
/* The default network this member made at its first start: the cluster's "default" unless
 * etcd has one; a different one there leaves this member's own (logged). */
void cluster_networks_publish_default(struct vmmd_daemon *d, const struct db_network *net);

/* Each successful poll of the cluster (cluster.c), revision the store's. Realisations follow
 * their definitions: changed ones are updated, those whose definition went are removed. */
void cluster_networks_poll(struct vmmd_daemon *d, int64_t revision);

#endif
