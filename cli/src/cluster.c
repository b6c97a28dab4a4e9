/*
 * `vmctl cluster list|remove|join-token|evacuate`: the members of the cluster
 * this daemon is in (GET /v1/cluster), forgetting an offline one (DELETE
 * /v1/cluster/members/{name}), the single-use token a new member joins with
 * (POST /v1/cluster/join-tokens) and moving every VM off a member (POST
 * /v1/cluster/members/{name}/evacuate; with --wait following the events to
 * its cluster.evacuation_done, the stream opened before the request is
 * sent, as `vmctl migrate` does, so no event is missed); issue 16, the contract in
 * shared-cluster.md. Conventions as for the other groups: a table or a
 * key/value block by default, the API's body as sent with --output json, the
 * problem's detail on stderr and exit 1 when the API refuses (a stand-alone
 * daemon answers remove and join-token with 404 "not in a cluster").
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clusterspec.h"
#include "commands.h"
#include "output.h"
#include "sse.h"

const char cli_cluster_help[] =
    "  Subcommands (vmctl cluster SUBCOMMAND --help for each):\n"
    "    list                      the members: state, address, VMs, memory, last heartbeat\n"
    "    remove NAME               forget an offline member, its VMs' records and names\n"
    "    join-token [--ttl S]      a single-use token for a new member to join with\n"
    "    evacuate NAME [--wait]    move every VM off a member (live-migrate the running ones)\n";

static void print_cluster(json_t *c)
{
    static const char *const headers[CLI_CLUSTER_COLUMNS] = {"NAME", "STATE",  "ADDRESS",
                                                             "VMS",  "MEMORY", "HEARTBEAT"};
    json_t *members = json_object_get(c, "members"), *m;
    time_t now = time(NULL);
    struct cli_table t;
    char line[512];
    size_t i;

    cli_cluster_summary(c, line, sizeof(line));
    puts(line);
    if (!json_is_true(json_object_get(c, "enabled")))
        return;
    cli_table_init(&t, CLI_CLUSTER_COLUMNS, headers);
    json_array_foreach(members, i, m)
    {
        struct cli_cluster_row row;
        const char *cells[CLI_CLUSTER_COLUMNS] = {row.name, row.state,  row.address,
                                                  row.vms,  row.memory, row.heartbeat};
        cli_cluster_row(m, now, &row);
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout, false);
    cli_table_free(&t);
}

static int cluster_list(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct cli_response r;
    json_t *c;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 0, 0, &first)))
        return rc;
    if ((rc = cli_call(ctx, "GET", "/v1/cluster", NULL, &r, &c)))
        return rc;
    return cli_print_answer(ctx, &r, c, print_cluster);
}

static int cluster_remove(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    return cli_delete_named(ctx, cmd, argc, argv, "cluster/members", "removed member");
}

/* ---- join-token ----------------------------------------------------------------- */

enum { OPT_TTL = CLI_OPT_FIRST };

struct token_opts {
    const struct cli_command *cmd;
    long ttl_s;
};

static int token_opt(void *st, int id, const char *arg)
{
    struct token_opts *o = st;
    const char *why;

    (void)id;
    if (!cli_join_token_ttl(arg, &o->ttl_s, &why))
        return cli_usage_error(o->cmd, "--ttl '%s': %s", arg, why);
    return 0;
}

static void print_token(json_t *t)
{
    cli_kv("token:", cli_jstr(t, "token"));
    cli_kv("expires:", cli_jstr(t, "expires_at"));
    cli_kv("use:", "once, as vmmd serve --cluster-join-token TOKEN");
}

static int cluster_join_token(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
                              char **argv)
{
    static const struct option opts[] = {
        {"ttl", required_argument, NULL, OPT_TTL},
        {0},
    };
    struct token_opts o = {.cmd = cmd, .ttl_s = CLI_JOIN_TTL_DEFAULT};
    struct cli_response r;
    json_t *body, *token;
    char *text;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, opts, token_opt, &o, 0, 0, &first)))
        return rc;
    body = cli_join_token_body(o.ttl_s);
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        fprintf(stderr, "vmctl: out of memory\n");
        return CLI_EXIT_REFUSED;
    }
    rc = cli_call(ctx, "POST", "/v1/cluster/join-tokens", text, &r, &token);
    free(text);
    if (rc)
        return rc;
    return cli_print_answer(ctx, &r, token, print_token);
}

/* ---- evacuate ------------------------------------------------------------------- */

enum { OPT_WAIT = CLI_OPT_FIRST };

struct evacuation {
    struct cli_ctx *ctx;
    const char *member;
    bool wait;
    int refused; /* the request's exit code when the API refused it */
    int outcome; /* 0 going on, 1 done */
    long long failed, last_id;
};

static int evacuate_opt(void *st, int id, const char *arg)
{
    (void)id;
    (void)arg;
    ((struct evacuation *)st)->wait = true;
    return 0;
}

static void print_evacuation(json_t *answer)
{
    static const char *const headers[CLI_EVACUATION_COLUMNS] = {"NAME", "STATE", "ACTION",
                                                                "TARGET"};
    json_t *vms = json_object_get(answer, "vms"), *vm;
    struct cli_table t;
    size_t i;

    printf("evacuating %s: %zu VM%s\n",
           cli_jstr(answer, "member") ? cli_jstr(answer, "member") : "?", json_array_size(vms),
           json_array_size(vms) == 1 ? "" : "s");
    if (json_array_size(vms) == 0)
        return;
    cli_table_init(&t, CLI_EVACUATION_COLUMNS, headers);
    json_array_foreach(vms, i, vm)
    {
        struct cli_evacuation_row row;
        const char *cells[CLI_EVACUATION_COLUMNS] = {row.name, row.state, row.action, row.target};
        cli_evacuation_row(vm, &row);
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout, false);
    cli_table_free(&t);
}

/* POST .../evacuate and print its answer; refused: the exit code in e->refused. */
static void send_evacuate(struct evacuation *e)
{
    char *path = cli_object_path("cluster/members", e->member, "/evacuate");
    struct cli_response r;
    json_t *answer;
    int rc;

    rc = path ? cli_call(e->ctx, "POST", path, "{}", &r, &answer) : CLI_EXIT_REFUSED;
    free(path);
    if (rc) {
        e->refused = rc;
        return;
    }
    cli_print_answer(e->ctx, &r, answer, print_evacuation);
    fflush(stdout);
}

static int on_evacuation_event(void *opaque, const char *id, const char *type, const char *data)
{
    struct evacuation *e = opaque;
    json_t *ev = json_loads(data, 0, NULL);
    char line[512];

    if (strcmp(id, "-"))
        e->last_id = strtoll(id, NULL, 10);
    switch (cli_evacuation_event(e->member, type, ev, line, sizeof(line), &e->failed)) {
    case CLI_EVAC_PROGRESS:
        fprintf(stderr, "%s\n", line);
        break;
    case CLI_EVAC_DONE:
        /* --output json: the closing event's data, as the API sent it. */
        printf("%s\n", e->ctx->output == CLI_OUTPUT_JSON ? data : line);
        e->outcome = 1;
        break;
    case CLI_EVAC_OTHER:
        break;
    }
    json_decref(ev);
    return e->outcome;
}

/* The stream is connected: now the request goes. */
static int evacuation_connected(void *st)
{
    struct evacuation *e = st;

    send_evacuate(e);
    return e->refused;
}

/* Quiet this long: reconnect from the last event seen (?since=, nothing is lost). */
#define EVACUATION_IDLE_MS 10000

static bool evacuation_settled(void *st)
{
    const struct evacuation *e = st;

    return e->outcome || e->refused;
}

static int follow_evacuation(struct evacuation *e)
{
    struct cli_sse sse = {.on_event = on_evacuation_event, .opaque = e};
    int rc = cli_follow_events(e->ctx, &sse, evacuation_connected, &e->last_id, EVACUATION_IDLE_MS,
                               evacuation_settled, NULL);

    if (e->refused)
        return e->refused;
    if (rc)
        return rc;
    return e->failed ? CLI_EXIT_REFUSED : 0;
}

static int cluster_evacuate(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
                            char **argv)
{
    static const struct option opts[] = {
        {"wait", no_argument, NULL, OPT_WAIT},
        {0},
    };
    struct evacuation e = {.ctx = ctx, .last_id = -1};
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, opts, evacuate_opt, &e, 1, 1, &first)))
        return rc;
    e.member = argv[first];
    if (!e.wait) {
        send_evacuate(&e);
        return e.refused;
    }
    return follow_evacuation(&e);
}

/* ---- dispatch ------------------------------------------------------------------- */

static const struct cli_subcommand cluster_subcommands[] = {
    {{"cluster list", NULL, "",
      "List the cluster's members: state, address, VMs, memory allocated of capacity, last "
      "heartbeat.",
      NULL},
     "list",
     cluster_list},
    {{"cluster remove", NULL, "NAME",
      "Remove an offline member: its record, its VMs' records and their names (refused while "
      "it is online).",
      NULL},
     "remove",
     cluster_remove},
    {{"cluster join-token", NULL, "[--ttl S]",
      "Create a single-use token that lets a new member join (vmmd serve "
      "--cluster-join-token).",
      "      --ttl S              seconds it stays valid, 60-86400 (default 3600)\n"},
     "join-token",
     cluster_join_token},
    {{"cluster evacuate", NULL, "NAME [--wait]",
      "Move every VM off a member: running and paused ones live-migrated to the other online "
      "members (most free memory first), stopped ones moved.",
      "      --wait               follow the events until the evacuation is done; exit 1 if\n"
      "                           a VM failed to move\n"},
     "evacuate",
     cluster_evacuate},
};

int cli_cmd_cluster(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_dispatch(ctx, "cluster", cluster_subcommands,
                        sizeof(cluster_subcommands) / sizeof(cluster_subcommands[0]), argc, argv);
}
