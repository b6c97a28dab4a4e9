/*
 * The cluster parts of vmctl that need no daemon (issue 16, the contract in
 * shared-cluster.md): `cluster join-token`'s --ttl and request body, the
 * summary line and member rows `cluster list` prints from GET /v1/cluster,
 * --ha's value, and what `cluster evacuate` prints of its answer and, with
 * --wait, of the events that follow.
 * Pure functions over jansson values and the current time, so
 * tests/unit/cli tests them directly.
 */
#ifndef VMCTL_CLUSTERSPEC_H
#define VMCTL_CLUSTERSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* A join token lives 60 s to a day (the daemon's bounds); an hour unless --ttl says. */
#define CLI_JOIN_TTL_MIN     60
#define CLI_JOIN_TTL_MAX     86400
#define CLI_JOIN_TTL_DEFAULT 3600

/* --ttl's value: whole seconds within the bounds; false with *why (a static string). */
bool cli_join_token_ttl(const char *arg, long *ttl_s, const char **why);

/* The POST /v1/cluster/join-tokens body, {"ttl_s": N}; NULL when out of memory. */
json_t *cli_join_token_body(long ttl_s);

/*
 * The line above the members: "cluster c1, member m1, lease 10 s: writable", or
 * "...: READ-ONLY: <detail>" while etcd is out of reach, or that the daemon is stand-alone.
 */
void cli_cluster_summary(json_t *cluster, char *out, size_t size);

/* The cells of a `cluster list` row: NAME STATE ADDRESS VMS MEMORY HEARTBEAT. */
#define CLI_CLUSTER_COLUMNS 6
struct cli_cluster_row {
    char name[64], state[16], address[128], vms[48], memory[80], heartbeat[48];
};
/* now: the time the last heartbeat is measured from ("4s ago"). */
void cli_cluster_row(json_t *member, time_t now, struct cli_cluster_row *row);

/* --ha restart|none (and `set ha=`): "restart" as a string, "none" as null; NULL otherwise. */
json_t *cli_ha_value(const char *arg);

/* The cells of a row of `cluster evacuate`'s answer: NAME STATE ACTION TARGET. */
#define CLI_EVACUATION_COLUMNS 4
struct cli_evacuation_row {
    char name[64], state[16], action[16], target[64];
};
void cli_evacuation_row(json_t *vm, struct cli_evacuation_row *row);

/*
 * One event while `cluster evacuate NAME --wait` follows the stream (type and its data):
 * CLI_EVAC_OTHER for an event that is not about member's evacuation; CLI_EVAC_PROGRESS with a
 * line for a VM of member migrated or failed; CLI_EVAC_DONE with the closing line for its
 * cluster.evacuation_done, and *failed the VMs that did not move.
 */
enum cli_evac_event { CLI_EVAC_OTHER, CLI_EVAC_PROGRESS, CLI_EVAC_DONE };
enum cli_evac_event cli_evacuation_event(const char *member, const char *type, json_t *data,
                                         char *line, size_t size, long long *failed);

#endif
