/*
 * `vmctl cluster list|remove|join-token`: the members of the cluster this
 * daemon is in (GET /v1/cluster), forgetting an offline one (DELETE
 * /v1/cluster/members/{name}) and the single-use token a new member joins
 * with (POST /v1/cluster/join-tokens); issue 16, the contract in
 * shared-cluster.md. Conventions as for the other groups: a table or a
 * key/value block by default, the API's body as sent with --output json, the
 * problem's detail on stderr and exit 1 when the API refuses (a stand-alone
 * daemon answers remove and join-token with 404 "not in a cluster").
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clusterspec.h"
#include "commands.h"
#include "output.h"

const char cli_cluster_help[] =
    "  Subcommands (vmctl cluster SUBCOMMAND --help for each):\n"
    "    list                      the members: state, address, VMs, memory, last heartbeat\n"
    "    remove NAME               forget an offline member, its VMs' records and names\n"
    "    join-token [--ttl S]      a single-use token for a new member to join with\n";

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
};

int cli_cmd_cluster(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_dispatch(ctx, "cluster", cluster_subcommands,
                        sizeof(cluster_subcommands) / sizeof(cluster_subcommands[0]), argc, argv);
}
