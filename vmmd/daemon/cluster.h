/*
 * Cluster membership on etcd (--cluster-etcd). Each member keeps its own
 * SQLite store for what runs on it; etcd holds what must be agreed, under
 * /vmmd/<cluster>/:
 *
 *   members/<name>  the member's record (address, version, capacity, its id)
 *   alive/<name>    its heartbeat (allocation, time), under its lease: gone
 *                   when the lease expires, which is what "offline" means
 *   vms/<id>        each VM as its owner renders it, with "member"
 *   names/<name>    a VM name's claim: the member holding it (names are
 *                   unique cluster-wide, claimed with a transaction)
 *   join/<token>    a join token, under a lease of its lifetime
 *
 * Every member reads the whole prefix every second: the VM list, members'
 * states and the read-only flag are at most that old. A read that fails
 * (etcd unreachable or without quorum) makes the member read-only until one
 * succeeds again.
 */
#ifndef VMMD_CLUSTER_H
#define VMMD_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmmd_daemon;
struct cluster;

/* Joins (or rejoins) the cluster of d->cfg, running the loop until etcd answered. */
int cluster_join(struct vmmd_daemon *d, struct cluster **out, char *err, size_t errlen);
/* Stops heart-beating without revoking the lease: the workers run on, so the member
 * stays online until the lease expires (a restart within the TTL is seamless). */
void cluster_stop(struct cluster *c);

const char *cluster_member_name(const struct cluster *c);
/* The bearer token members send each other (and accept from each other) on TCP. */
const char *cluster_secret(const struct cluster *c);
/* The API is up (TLS loaded): the member record gets its address and public-key pin. */
void cluster_serving(struct cluster *c);
/* Where member name answers: its advertised URL and TLS pin (NULL when plain HTTP); false
 * when it has no address or is offline. */
bool cluster_member_address(struct cluster *c, const char *name, const char **url,
                            const char **pin);
/* The other members that are online and reachable (names, a new array). */
json_t *cluster_peers(struct cluster *c);
/*
 * Placement: the member a VM (a definition: mode, vcpus, memory_mib, disks, nics) should run
 * on, or NULL; reason says why either way. Candidates are the online members that run its
 * mode and have its CPUs, its memory free, its volumes and its networks (or manage networks
 * and the cluster defines them); the one with the most free memory wins.
 */
const char *cluster_place(struct cluster *c, const json_t *vm, char *reason, size_t len);
/* Whether writes are refused now; detail says why. */
bool cluster_read_only(const struct cluster *c, const char **detail);
/* GET /v1/cluster's body. */
json_t *cluster_status_json(struct cluster *c);

/* A local change was committed: the VM records in etcd follow shortly. */
void cluster_local_changed(struct cluster *c);
/* A VM of another member by id or name (a new reference; "state" is "unknown" while its
 * member is offline), or NULL. */
json_t *cluster_remote_vm(struct cluster *c, const char *id_or_name);
/* A VM another member just created for a request through this one: known here before the
 * next poll brings its record (read-your-writes through any member). */
void cluster_note_vm(struct cluster *c, json_t *vm);
/* Every other member's VM, sorted by name (a new reference). */
json_t *cluster_remote_vms(struct cluster *c);

/* Claims a VM name for this member: done gets 0, -EEXIST (holder: the member that has it)
 * or another -errno with a detail. */
typedef void (*cluster_claim_fn)(void *arg, int rc, const char *detail);
int cluster_claim_name(struct cluster *c, const char *name, cluster_claim_fn done, void *arg);
/* Gives up this member's claim on name (if it holds it). */
void cluster_release_name(struct cluster *c, const char *name);

/* DELETE /v1/cluster/members/{name}: an offline member's record, VMs and claims go. */
int cluster_remove_member(struct cluster *c, const char *name, cluster_claim_fn done, void *arg);
/* POST /v1/cluster/join-tokens: a single-use token under a lease of ttl_s seconds. */
typedef void (*cluster_token_fn)(void *arg, int rc, const char *token, const char *detail);
int cluster_make_join_token(struct cluster *c, unsigned ttl_s, cluster_token_fn done, void *arg);

/* How long an "ha" VM runs on without this member in charge: its worker's --fence-after, and
 * the time without a renewed lease after which this member stops such VMs itself. Less
 * than the lease TTL, so that they have stopped before the others may start them. */
uint64_t cluster_fence_ms(const struct cluster *c);

/*
 * POST /v1/cluster/members/{self}/evacuate: every VM of this member moves to the others
 * (placement: most free memory), running and paused ones by live migration, the others by
 * handing their record over. *plan gets what goes where. -EBUSY (already evacuating) or
 * -ENOSPC (no other member can take one: nothing started) with why.
 */
int cluster_evacuate(struct cluster *c, json_t **plan, char *why, size_t len);
/* A live migration out of this member ended (routes_migrations.c): an evacuation counts it. */
void cluster_migration_ended(struct cluster *c, const char *vm_id, bool ok);
/* A VM arrived here by live migration: its record (still the source's) becomes ours. */
void cluster_vm_arrived(struct cluster *c, const char *vm_id);

/*
 * Cluster objects kept beside the VMs, under <prefix><kind>/<name> (networks, images):
 * defined once in etcd, realised on the members that need them.
 */
struct etcd;
struct etcd *cluster_etcd(struct cluster *c);
/* <prefix><kind>/<name> into out. */
void cluster_key(const struct cluster *c, char *out, size_t len, const char *kind,
                 const char *name);
/* The members whose last heartbeat lists name in its array key ("networks", "images"),
 * this one too when self (its own list is the caller's to judge), sorted (a new array). */
json_t *cluster_members_listing(struct cluster *c, const char *key, const char *name, bool self);
/* Whether the JSON array names holds the string name. */
bool cluster_names_have(const json_t *names, const char *name);
/* This member's lease (0 while it has none): its alive/<self> key is attached to it. */
int64_t cluster_lease(const struct cluster *c);
/* The last poll's objects of kind: name -> {"value": parsed JSON, "rev": mod revision}
 * (borrowed; NULL when there are none). */
json_t *cluster_objects(struct cluster *c, const char *kind);

/* Series for /metrics (appended to out). */
struct strbuf;
void cluster_metrics(struct cluster *c, struct strbuf *out);

#endif
