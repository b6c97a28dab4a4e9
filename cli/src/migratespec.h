/*
 * The live-migration parts of vmctl that need no daemon: the shape of a
 * TARGET, the POST /v1/vms/{id}/migrate body, the target's token read from
 * a file, the progress and result lines `vmctl migrate` prints, and the
 * final Migration object it makes from the last event. Pure functions over
 * jansson values (and one file read), so tests/unit/cli tests them directly.
 */
#ifndef VMCTL_MIGRATESPEC_H
#define VMCTL_MIGRATESPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * A migration target as the daemon takes it: "unix:/ABSOLUTE/PATH" (the
 * source daemon opens it, so a relative path would be relative to the
 * daemon, not to vmctl), "http://HOST[:PORT]" or "https://HOST[:PORT]"
 * with a host and nothing after the port. Only the shape is checked (the
 * daemon answers 502 when it cannot reach it); false with *why saying how.
 */
bool cli_migrate_target_valid(const char *target, const char **why);

/* A unix: target: the daemon reaches it without a token. */
bool cli_migrate_target_is_unix(const char *target);

/*
 * The request body: target, then token (NULL: left out), max_downtime_ms and timeout_s
 * (negative: left out, the daemon's defaults 300 and 120), insecure when true. NULL when out
 * of memory.
 */
json_t *cli_migrate_body(const char *target, const char *token, long max_downtime_ms,
                         long timeout_s, bool insecure);

/*
 * The token in file path: its first line without the line end and trailing blanks. A copy
 * the caller frees, or NULL with *why (a static string or strerror's) when the file cannot
 * be read or holds no token.
 */
char *cli_migrate_read_token(const char *path, const char **why);

/*
 * "round 2: 1234 pages left, 812 MB/s" from a vm.migration_progress event or a Migration
 * object (round, pages_left, throughput_mbps); without a throughput the rate is left out.
 */
void cli_migrate_progress_line(json_t *progress, char *out, size_t size);

/*
 * "migrated web to unix:/x.sock: downtime 12.3 ms, total 0.8 s, 3 rounds" from a vm.migrated
 * event (downtime_ms, total_ms, rounds; a missing figure prints as "?").
 */
void cli_migrate_done_line(const char *vm, const char *target, json_t *migrated, char *out,
                           size_t size);

/*
 * The final Migration object from the one the daemon answered the start with (copied, not
 * changed) and the event that ended it, vm.migrated or vm.migration_failed: the source's
 * GET /v1/vms/{id}/migration answers 404 once the VM has left, so `--output json` prints
 * this. state done or failed, and the event's figures (rounds, bytes_sent, downtime_ms,
 * total_ms as elapsed_ms, error). NULL when out of memory.
 */
json_t *cli_migrate_final(json_t *started, const char *event_type, json_t *event);

#endif
