/*
 * The snapshot parts of vmctl that need no daemon: the shape of a clone's
 * VM/SNAPSHOT argument, the clone's request body, and the cells and lines
 * `snapshot list` and `snapshot show` print. Pure functions over jansson
 * values, so tests/unit/cli tests them directly.
 */
#ifndef VMCTL_SNAPSHOTSPEC_H
#define VMCTL_SNAPSHOTSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * "VM/SNAPSHOT" as `vmctl clone` takes it: one slash with a name on each
 * side. Only the shape is checked (the daemon checks the names and answers
 * 404 naming from_snapshot); false with *why saying how (a static string).
 */
bool cli_snapshot_ref_valid(const char *ref, const char **why);

/*
 * The POST /v1/vms body of a clone: name, from_snapshot, autostart when
 * asked for, and disks (a JSON array, taken; NULL or empty: the snapshot's
 * own disks). NULL when out of memory.
 */
json_t *cli_clone_body(const char *name, const char *ref, json_t *disks, bool autostart);

/* How long the vCPUs were stopped: "0.4 ms", "47 ms", "1.25 s"; "-" when negative. */
void cli_format_pause_ms(double ms, char out[32]);

/* An RFC 3339 time as "2026-12-04 03:10:00" (UTC, no fraction); "-" for NULL, as is if odd. */
void cli_format_created(const char *rfc3339, char out[32]);

/* What a snapshot takes on disk: its state file and its memory file's allocated bytes. */
long long cli_snapshot_on_disk(json_t *snapshot);

/* The six cells of a `snapshot list` row: NAME, CREATED, STATE, MEMORY, ON DISK, PAUSED. */
#define CLI_SNAPSHOT_COLUMNS 6
struct cli_snapshot_row {
    char name[64], created[32], state[32], memory[32], on_disk[32], paused[32];
};
void cli_snapshot_row(json_t *snapshot, struct cli_snapshot_row *row);

/* A snapshot's disk in one line: "/images/a.img 1 MiB", "volume web-root 2 GiB (read-only)". */
void cli_snapshot_disk_describe(json_t *disk, char *out, size_t size);

#endif
