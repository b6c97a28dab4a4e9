/*
 * The cluster's events in every member's stream (issue 16). A member follows
 * each other online member's own events (GET /v1/events?local=1 over TLS,
 * with the cluster's credentials) and copies them into its event table,
 * marked with their member: its stream, replay from ?since= and retention
 * then work for the whole cluster as they do for one daemon. The copy and
 * the member's position commit together, so a relay that reconnects, or a
 * daemon that restarts, goes on where it was: nothing lost, nothing twice.
 * Membership events (cluster.member_*) are not copied: every member sees
 * those for itself.
 *
 * One thread per followed member runs libcurl; events come to the loop
 * through an async handle and are written there.
 */
#ifndef VMMD_CLUSTER_EVENTS_H
#define VMMD_CLUSTER_EVENTS_H

#include <jansson.h>

struct vmmd_daemon;
struct cluster;
struct cluster_events;

struct cluster_events *cluster_events_new(struct vmmd_daemon *d, struct cluster *c);
/*
 * After each look at etcd: members (name -> record with "id"), those online (alive) and this
 * member's name. Followed: every other online member with an address; the rest stop.
 */
void cluster_events_sync(struct cluster_events *ce, json_t *members, json_t *alive,
                         const char *self);
/* Events copied since the start, for /metrics. */
unsigned long long cluster_events_copied(const struct cluster_events *ce);
/* Stops every relay (waits for their threads: a second at most) and frees. */
void cluster_events_free(struct cluster_events *ce);

#endif
