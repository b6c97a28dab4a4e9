/*
 * What vmctl's command files share (commands.c defines it): API calls that
 * print the problem on failure, reading fields of the answers, and the
 * key/value lines of `show`-style output.
 */
#ifndef VMCTL_COMMANDS_H
#define VMCTL_COMMANDS_H

#include <jansson.h>

#include "cli.h"
#include "http.h"
#include "output.h" /* cli_jstr, cli_jint */

/*
 * Sends method path (with an optional JSON body) and checks the answer: an
 * error status prints its problem's detail and returns CLI_EXIT_REFUSED. On
 * success *root (when given) holds the parsed body, NULL for an empty one;
 * the caller frees it and r.
 */
int cli_call(struct cli_ctx *ctx, const char *method, const char *path, const char *body,
             struct cli_response *r, json_t **root);

/* "/v1/COLLECTION/NAME[SUFFIX]" with NAME escaped; NULL when out of memory. Caller frees. */
char *cli_object_path(const char *collection, const char *name, const char *suffix);

/* cli_call() on cli_object_path(collection, name, suffix). */
int cli_call_object(struct cli_ctx *ctx, const char *method, const char *collection,
                    const char *name, const char *suffix, const char *body, struct cli_response *r,
                    json_t **root);

/* Prints the body exactly as the API sent it (plus a final newline). */
void cli_print_body(const struct cli_response *r);

/* "key:            value" ("-" for NULL). */
void cli_kv(const char *key, const char *value);

/* A decimal in [min, max] into *out; 0 or -EINVAL. */
int cli_parse_long(const char *s, long min, long max, long *out);

/* "true", "yes", "on" / "false", "no", "off" as a JSON boolean; NULL for anything else. */
json_t *cli_json_bool(const char *value);

/*
 * The KEY=VALUE arguments argv[from..argc) of a `set` command as a PATCH body in *out; value
 * types each one (and may rename its key), NULL when it does not parse. Returns 0 or the
 * usage error's exit code.
 */
int cli_patch_args(const struct cli_command *cmd, int argc, char **argv, int from,
                   json_t *(*value)(char key[64], const char *value), json_t **out);

/*
 * A DELETE of /v1/COLLECTION/NAME[SUFFIX] whose 204 has no body: json prints nothing, a table
 * prints said.
 */
int cli_delete_and_say(struct cli_ctx *ctx, const char *collection, const char *name,
                       const char *suffix, const char *said);

/*
 * A `delete NAME`-like subcommand (image, volume, network delete, cluster remove): parses its one
 * argument NAME and cli_delete_and_say()s /v1/COLLECTION/NAME, saying "SAID NAME".
 */
int cli_delete_named(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
                     const char *collection, const char *said);

/*
 * Prints an object answer: the body with --output json, else print(obj). Frees obj and r;
 * returns 0.
 */
int cli_print_answer(struct cli_ctx *ctx, struct cli_response *r, json_t *obj,
                     void (*print)(json_t *obj));

/* What the option callback of a create-like command fills: the request body, and the
 * command for its usage errors. */
struct cli_body_opts {
    const struct cli_command *cmd;
    json_t *body;
};

/*
 * Sets "name" in body (which it takes), POSTs it to path and prints the answer with print
 * (cli_print_answer). Returns 0 or an exit code.
 */
int cli_post_named(struct cli_ctx *ctx, const char *path, const char *name, json_t *body,
                   void (*print)(json_t *obj));

struct cli_sse;

/*
 * Follows GET /v1/events (from *last_id on, or from now when it is negative; the sse's
 * on_event keeps *last_id) until settled(sse->opaque) says it is over. Once the first
 * stream is connected (its first bytes), on_connect(sse->opaque) (when given) runs once:
 * a request sent then cannot have events the stream misses; nonzero from it stops. A
 * stream that goes quiet for idle_ms or closes is opened again, after on_idle(sse->opaque)
 * (when given) had a look. Frees sse->buf. Returns 0, or the stream's error exit code.
 */
int cli_follow_events(struct cli_ctx *ctx, struct cli_sse *sse, int (*on_connect)(void *st),
                      const long long *last_id, long idle_ms, bool (*settled)(void *st),
                      void (*on_idle)(void *st));

/* A subcommand of a command group (`vmctl network create`, `vmctl image import`). */
struct cli_subcommand {
    struct cli_command cmd; /* cmd.name is "network create" and so on */
    const char *word;       /* what follows the group's name ("forward add") */
    int (*run)(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv);
};

/*
 * Runs the subcommand of group that argv[1] (or argv[1] and argv[2], for two-word ones) names;
 * --help, a missing or an unknown subcommand print the group's usage: the summary and help of
 * its entry in cli_commands.
 */
int cli_dispatch(struct cli_ctx *ctx, const char *group, const struct cli_subcommand *subs,
                 size_t nsubs, int argc, char **argv);

/*
 * Prints a VM answer: the body with --output json, else the VM's key/value block as `vmctl show`
 * prints it. Frees vm and r; returns 0.
 */
int cli_print_vm_answer(struct cli_ctx *ctx, struct cli_response *r, json_t *vm);

/* `vmctl limits VM DEVICE [KEY=N]...` (limits.c). */
int cli_cmd_limits(struct cli_ctx *ctx, int argc, char **argv);

/* `vmctl network ...` (networks.c) and its help, the list of its subcommands. */
int cli_cmd_network(struct cli_ctx *ctx, int argc, char **argv);
extern const char cli_network_help[];

/* `vmctl storage`, `vmctl image ...` and `vmctl volume ...` (storage.c), and their help. */
int cli_cmd_storage(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_image(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_volume(struct cli_ctx *ctx, int argc, char **argv);
extern const char cli_image_help[];
extern const char cli_volume_help[];

/* `vmctl snapshot ...`, `vmctl restore` and `vmctl clone` (snapshots.c), and the group's help. */
int cli_cmd_snapshot(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_restore(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_clone(struct cli_ctx *ctx, int argc, char **argv);
extern const char cli_snapshot_help[];

/* `vmctl migrate` and `vmctl migration` (migrate.c). */
int cli_cmd_migrate(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_migration(struct cli_ctx *ctx, int argc, char **argv);

/* `vmctl cluster ...` (cluster.c) and the group's help. */
int cli_cmd_cluster(struct cli_ctx *ctx, int argc, char **argv);
extern const char cli_cluster_help[];

#endif
