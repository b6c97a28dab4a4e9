/*
 * `vmctl snapshot create|list|show|delete`, `vmctl restore` and `vmctl
 * clone`: a VM's snapshots (/v1/vms/{id}/snapshot, /snapshots, /restore)
 * and new VMs started from them (POST /v1/vms with from_snapshot), with the
 * conventions of the other commands: a table or a key/value block by
 * default, the API's body as sent with --output json, the problem's detail
 * on stderr and exit 1 when the API refuses, 2 for a usage error.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "output.h"
#include "snapshotspec.h"
#include "storagespec.h"

const char cli_snapshot_help[] =
    "  Subcommands (vmctl snapshot SUBCOMMAND --help for each):\n"
    "    create VM [NAME] [--no-resume]\n"
    "                              take a snapshot of a running or paused VM\n"
    "    list VM                   its snapshots: created, state, memory, on disk, pause\n"
    "    show VM NAME              one snapshot, with the disks and NICs it expects\n"
    "    delete VM NAME            delete a snapshot and its files\n"
    "  Related: vmctl restore VM SNAPSHOT, vmctl clone VM/SNAPSHOT NAME\n";

/* "/v1/vms/VM/snapshots/NAME" (NAME NULL: the list) with both escaped; NULL when out of memory. */
static char *snapshot_path(const char *vm, const char *name)
{
    char *esc = name ? cli_http_escape(name) : NULL, *suffix = NULL, *path;

    if (name && (!esc || asprintf(&suffix, "/snapshots/%s", esc) < 0)) {
        free(esc);
        return NULL;
    }
    path = cli_object_path("vms", vm, suffix ? suffix : "/snapshots");
    free(suffix);
    free(esc);
    return path;
}

/*
 * cli_call() of path, whose refusal is printed the same way; but a 404 whose detail does not
 * name the snapshot gets a line of vmctl's own that does.
 */
static int snapshot_call(struct cli_ctx *ctx, const char *method, const char *path,
                         const char *body, const char *vm, const char *snapshot,
                         struct cli_response *r, json_t **root)
{
    int rc;

    if (root)
        *root = NULL;
    if (!path) {
        fprintf(stderr, "vmctl: out of memory\n");
        return CLI_EXIT_REFUSED;
    }
    if ((rc = cli_http_request(ctx, method, path, body, r)))
        return rc;
    if (r->status >= 400) {
        json_t *problem = json_loadb(r->body, r->len, 0, NULL);
        const char *detail = cli_jstr(problem, "detail");

        rc = cli_http_check(r);
        if (r->status == 404 && snapshot && (!detail || !strstr(detail, snapshot)))
            fprintf(stderr, "vmctl: no snapshot '%s' of VM '%s'\n", snapshot, vm);
        json_decref(problem);
        cli_response_free(r);
        return rc;
    }
    if (root && r->len > 0 && !(*root = json_loadb(r->body, r->len, 0, NULL))) {
        fprintf(stderr, "vmctl: the daemon sent JSON vmctl cannot read\n");
        cli_response_free(r);
        return CLI_EXIT_REFUSED;
    }
    return 0;
}

static void print_snapshot(json_t *s)
{
    char buf[512], b1[32], b2[32];
    json_t *disks = json_object_get(s, "disks"), *disk;
    size_t i;

    cli_kv("name:", cli_jstr(s, "name"));
    cli_kv("vm:", cli_jstr(s, "vm"));
    cli_kv("vm id:", cli_jstr(s, "vm_id"));
    cli_kv("created:", cli_jstr(s, "created_at"));
    cli_kv("vm state:", cli_jstr(s, "vm_state"));
    cli_kv("mode:", cli_jstr(s, "mode"));
    snprintf(buf, sizeof(buf), "%lld", cli_jint(s, "vcpus"));
    cli_kv("vcpus:", buf);
    cli_format_mib(cli_jint(s, "memory_mib"), buf);
    cli_kv("memory:", buf);
    if (json_array_size(disks) == 0)
        cli_kv("disks:", "-");
    json_array_foreach(disks, i, disk)
    {
        cli_snapshot_disk_describe(disk, buf, sizeof(buf));
        cli_kv(i == 0 ? "disks:" : "", buf);
    }
    snprintf(buf, sizeof(buf), "%lld", cli_jint(s, "nics"));
    cli_kv("nics:", buf);
    cli_format_bytes(cli_jint(s, "state_bytes"), buf);
    cli_kv("state file:", buf);
    cli_format_bytes(cli_jint(s, "memory_bytes"), b1);
    cli_format_bytes(cli_jint(s, "memory_allocated_bytes"), b2);
    snprintf(buf, sizeof(buf), "%s (%s on disk)", b1, b2);
    cli_kv("memory file:", buf);
    cli_format_bytes(cli_snapshot_on_disk(s), buf);
    cli_kv("on disk:", buf);
    cli_format_pause_ms(json_is_number(json_object_get(s, "paused_ms"))
                            ? json_number_value(json_object_get(s, "paused_ms"))
                            : -1,
                        buf);
    cli_kv("paused:", buf);
}

/* ---- snapshot create ------------------------------------------------------------ */

enum { OPT_NO_RESUME = CLI_OPT_FIRST, OPT_DISK, OPT_AUTOSTART };

static int create_opt(void *st, int id, const char *arg)
{
    struct cli_body_opts *o = st;

    (void)arg;
    if (id == OPT_NO_RESUME)
        json_object_set_new(o->body, "resume", json_false());
    return 0;
}

static int snap_create(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"no-resume", no_argument, NULL, OPT_NO_RESUME},
        {0},
    };
    struct cli_body_opts o = {.cmd = cmd, .body = json_object()};
    struct cli_response r;
    json_t *snap;
    char *path = NULL, *text = NULL;
    int first, rc;

    rc = cli_parse_options(ctx, cmd, argc, argv, opts, create_opt, &o, 1, 2, &first);
    if (rc)
        goto out;
    /* No NAME: the daemon names it snap-<unix seconds>. */
    if (first + 1 < argc)
        json_object_set_new(o.body, "name", json_string(argv[first + 1]));
    text = json_dumps(o.body, JSON_COMPACT);
    path = cli_object_path("vms", argv[first], "/snapshot");
    rc = snapshot_call(ctx, "POST", path, text, argv[first], NULL, &r, &snap);
    if (rc == 0)
        rc = cli_print_answer(ctx, &r, snap, print_snapshot);
out:
    free(path);
    free(text);
    json_decref(o.body);
    return rc;
}

/* ---- snapshot list, show, delete -------------------------------------------------- */

static int snap_list(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    static const char *const headers[CLI_SNAPSHOT_COLUMNS] = {"NAME",   "CREATED", "STATE",
                                                              "MEMORY", "ON DISK", "PAUSED"};
    struct cli_response r;
    struct cli_table t;
    json_t *list, *s;
    char *path;
    size_t i;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 1, 1, &first)))
        return rc;
    path = snapshot_path(argv[first], NULL);
    rc = snapshot_call(ctx, "GET", path, NULL, argv[first], NULL, &r, &list);
    free(path);
    if (rc)
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        cli_print_body(&r);
    } else {
        cli_table_init(&t, CLI_SNAPSHOT_COLUMNS, headers);
        json_array_foreach(list, i, s)
        {
            struct cli_snapshot_row row;
            const char *cells[CLI_SNAPSHOT_COLUMNS] = {row.name,   row.created, row.state,
                                                       row.memory, row.on_disk, row.paused};
            cli_snapshot_row(s, &row);
            cli_table_add(&t, cells);
        }
        cli_table_print(&t, stdout, false);
        cli_table_free(&t);
    }
    json_decref(list);
    cli_response_free(&r);
    return 0;
}

static int snap_show(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct cli_response r;
    json_t *snap;
    char *path;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 2, 2, &first)))
        return rc;
    path = snapshot_path(argv[first], argv[first + 1]);
    rc = snapshot_call(ctx, "GET", path, NULL, argv[first], argv[first + 1], &r, &snap);
    free(path);
    if (rc)
        return rc;
    return cli_print_answer(ctx, &r, snap, print_snapshot);
}

static int snap_delete(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct cli_response r;
    char *path;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 2, 2, &first)))
        return rc;
    path = snapshot_path(argv[first], argv[first + 1]);
    rc = snapshot_call(ctx, "DELETE", path, NULL, argv[first], argv[first + 1], &r, NULL);
    free(path);
    if (rc)
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        if (r.len)
            cli_print_body(&r);
    } else {
        printf("deleted snapshot %s of %s\n", argv[first + 1], argv[first]);
    }
    cli_response_free(&r);
    return 0;
}

/* ---- restore -------------------------------------------------------------------- */

int cli_cmd_restore(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_command *cmd = cli_find_command("restore");
    struct cli_response r;
    json_t *vm, *req;
    char *path, *body;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 2, 2, &first)))
        return rc;
    req = json_pack("{s:s}", "snapshot", argv[first + 1]);
    body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    path = body ? cli_object_path("vms", argv[first], "/restore") : NULL;
    rc = snapshot_call(ctx, "POST", path, body, argv[first], argv[first + 1], &r, &vm);
    free(path);
    free(body);
    if (rc)
        return rc;
    return cli_print_vm_answer(ctx, &r, vm);
}

/* ---- clone ---------------------------------------------------------------------- */

struct clone_opts {
    const struct cli_command *cmd;
    json_t *disks;
    bool autostart;
};

static int clone_opt(void *st, int id, const char *arg)
{
    struct clone_opts *o = st;
    const char *why;
    json_t *disk;

    if (id == OPT_AUTOSTART) {
        o->autostart = true;
        return 0;
    }
    disk = cli_disk_parse(arg, &why);
    if (!disk)
        return cli_usage_error(o->cmd,
                               "--disk '%s': %s; it wants PATH or volume=NAME, then ,ro and "
                               ",LIMIT=N",
                               arg, why);
    json_array_append_new(o->disks, disk);
    return 0;
}

int cli_cmd_clone(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"disk", required_argument, NULL, OPT_DISK},
        {"autostart", no_argument, NULL, OPT_AUTOSTART},
        {0},
    };
    const struct cli_command *cmd = cli_find_command("clone");
    struct clone_opts o = {.cmd = cmd, .disks = json_array()};
    struct cli_response r;
    const char *why, *ref, *slash;
    json_t *body, *vm;
    char *text, vm_name[256];
    int first, rc;

    rc = cli_parse_options(ctx, cmd, argc, argv, opts, clone_opt, &o, 2, 2, &first);
    if (rc) {
        json_decref(o.disks);
        return rc;
    }
    ref = argv[first];
    if (!cli_snapshot_ref_valid(ref, &why)) {
        json_decref(o.disks);
        return cli_usage_error(cmd, "'%s': %s", ref, why);
    }
    body = cli_clone_body(argv[first + 1], ref, o.disks, o.autostart);
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    slash = strchr(ref, '/');
    snprintf(vm_name, sizeof(vm_name), "%.*s", (int)(slash - ref), ref);
    rc = snapshot_call(ctx, "POST", text ? "/v1/vms" : NULL, text, vm_name, slash + 1, &r, &vm);
    free(text);
    if (rc)
        return rc;
    return cli_print_vm_answer(ctx, &r, vm);
}

/* ---- dispatch ------------------------------------------------------------------- */

static const struct cli_subcommand snapshot_subcommands[] = {
    {{"snapshot create", NULL, "VM [NAME] [--no-resume]",
      "Take a snapshot of a running or paused VM: its memory and device state (not its disks).",
      "      NAME                 a-z, 0-9 and -, unique among the VM's snapshots\n"
      "                           (default snap-<unix seconds>)\n"
      "      --no-resume          leave the VM paused once it is taken\n"},
     "create",
     snap_create},
    {{"snapshot list", NULL, "VM", "List a VM's snapshots, oldest first.", NULL},
     "list",
     snap_list},
    {{"snapshot show", NULL, "VM NAME",
      "Show a snapshot: when, the VM's state, the disks and NICs a restore expects, its sizes.",
      NULL},
     "show",
     snap_show},
    {{"snapshot delete", NULL, "VM NAME", "Delete a snapshot and its files.", NULL},
     "delete",
     snap_delete},
};

int cli_cmd_snapshot(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_dispatch(ctx, "snapshot", snapshot_subcommands,
                        sizeof(snapshot_subcommands) / sizeof(snapshot_subcommands[0]), argc, argv);
}
