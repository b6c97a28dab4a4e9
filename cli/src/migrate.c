/*
 * `vmctl migrate` and `vmctl migration`: moving a running VM to another
 * vmmd while it runs (POST /v1/vms/{id}/migrate) and looking at the
 * migration (GET /v1/vms/{id}/migration).
 *
 * migrate starts it and, unless --no-wait, follows the source daemon's
 * event stream to the end, as `image import` follows an import: progress
 * on stderr (redrawn in place on a terminal, a line per event otherwise),
 * then the result line, or the error and exit 1. The stream is opened
 * before the migration is asked for, and the request is sent once it is
 * connected, so not even a very short migration's events can be missed.
 *
 * --token and --token-file are the TARGET daemon's token here: this
 * command's --token-file shadows the common one (see cli_parse_options),
 * so the source daemon's token comes from VMMD_TOKEN_FILE or a
 * --token-file before the command name.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "migratespec.h"
#include "output.h"
#include "sse.h"

enum {
    OPT_TOKEN = CLI_OPT_FIRST,
    OPT_TOKEN_FILE,
    OPT_MAX_DOWNTIME,
    OPT_TIMEOUT,
    OPT_INSECURE,
    OPT_NO_WAIT,
};

struct migrate_opts {
    const struct cli_command *cmd;
    const char *token, *token_file;
    long max_downtime_ms, timeout_s; /* -1: the daemon's default */
    bool insecure, no_wait;
};

static int migrate_opt(void *st, int id, const char *arg)
{
    struct migrate_opts *o = st;

    switch (id) {
    case OPT_TOKEN:
        o->token = arg;
        break;
    case OPT_TOKEN_FILE:
        o->token_file = arg;
        break;
    case OPT_MAX_DOWNTIME:
        if (cli_parse_long(arg, 1, 60000, &o->max_downtime_ms))
            return cli_usage_error(o->cmd, "--max-downtime must be 1 to 60000 (ms), not '%s'", arg);
        break;
    case OPT_TIMEOUT:
        if (cli_parse_long(arg, 1, 3600, &o->timeout_s))
            return cli_usage_error(o->cmd, "--timeout must be 1 to 3600 (s), not '%s'", arg);
        break;
    case OPT_INSECURE:
        o->insecure = true;
        break;
    case OPT_NO_WAIT:
        o->no_wait = true;
        break;
    }
    return 0;
}

static void print_migration(json_t *m)
{
    char buf[128], b1[32];
    json_t *v;

    cli_kv("vm:", cli_jstr(m, "vm"));
    cli_kv("vm id:", cli_jstr(m, "vm_id"));
    cli_kv("target:", cli_jstr(m, "target"));
    cli_kv("state:", cli_jstr(m, "state"));
    snprintf(buf, sizeof(buf), "%lld", cli_jint(m, "round"));
    cli_kv("round:", buf);
    snprintf(buf, sizeof(buf), "%lld of %lld", cli_jint(m, "pages_left"),
             cli_jint(m, "pages_total"));
    cli_kv("pages left:", buf);
    cli_format_bytes(cli_jint(m, "bytes_sent"), b1);
    cli_kv("sent:", b1);
    v = json_object_get(m, "throughput_mbps");
    snprintf(buf, sizeof(buf), json_is_number(v) ? "%.1f MB/s" : "-", json_number_value(v));
    cli_kv("throughput:", buf);
    snprintf(buf, sizeof(buf), "%.1f s", (double)cli_jint(m, "elapsed_ms") / 1000.0);
    cli_kv("elapsed:", buf);
    v = json_object_get(m, "downtime_ms");
    snprintf(buf, sizeof(buf), json_is_number(v) ? "%.1f ms" : "-", json_number_value(v));
    cli_kv("downtime:", buf);
    cli_kv("error:", cli_jstr(m, "error"));
}

/* ---- migrate: the request, then the events ------------------------------------- */

struct migrate_watch {
    struct cli_ctx *ctx;
    const char *vm_arg, *target, *body;
    int refused;                /* its exit code when the daemon did not start it */
    json_t *started;            /* the 202's Migration object */
    struct cli_response answer; /* and the answer as sent, for --no-wait --output json */
    char vm[256];               /* the VM's name, as the events give it */
    long long last_id;
    int outcome; /* 0 running, 1 migrated, -1 failed */
    json_t *final_ev;
    bool tty, drawn;
};

static void draw_progress(struct migrate_watch *w, json_t *progress)
{
    char line[160];

    cli_migrate_progress_line(progress, line, sizeof(line));
    if (w->tty) {
        /* \r and erase-to-end: the new line may be shorter than the old. */
        fprintf(stderr, "\r%s\033[K", line);
        w->drawn = true;
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

static void end_progress(struct migrate_watch *w)
{
    if (w->drawn)
        fputc('\n', stderr);
    w->drawn = false;
}

/* POST .../migrate; a refusal is printed (the target's detail is in the 502's) and kept. */
static void send_request(struct migrate_watch *w)
{
    struct cli_response r;
    char *path = cli_object_path("vms", w->vm_arg, "/migrate");
    const char *name;
    int rc;

    rc = path ? cli_call(w->ctx, "POST", path, w->body, &r, &w->started) : CLI_EXIT_REFUSED;
    free(path);
    if (rc) {
        w->refused = rc;
        return;
    }
    name = cli_jstr(w->started, "vm");
    snprintf(w->vm, sizeof(w->vm), "%s", name ? name : w->vm_arg);
    w->answer = r;
}

static int on_migrate_event(void *opaque, const char *id, const char *type, const char *data)
{
    struct migrate_watch *w = opaque;
    json_t *ev;
    const char *vm;

    if (strcmp(id, "-"))
        w->last_id = strtoll(id, NULL, 10);
    if (strncmp(type, "vm.migrat", 9))
        return 0;
    ev = json_loads(data, 0, NULL);
    vm = cli_jstr(ev, "vm");
    if (vm && !strcmp(vm, w->vm)) {
        if (!strcmp(type, "vm.migration_progress")) {
            draw_progress(w, ev);
            /* The final Migration object (--output json) carries the last figures. */
            json_object_update_existing(w->started, ev);
            json_object_set_new(w->started, "state", json_string("precopy"));
        } else if (!strcmp(type, "vm.migrated") || !strcmp(type, "vm.migration_failed")) {
            w->outcome = !strcmp(type, "vm.migrated") ? 1 : -1;
            json_decref(w->final_ev);
            w->final_ev = json_pack("{s:s, s:O}", "type", type, "event", ev);
        }
    }
    json_decref(ev);
    return w->outcome != 0;
}

/* The stream is connected (its first bytes, the retry line): now the request goes. */
static int migrate_connected(void *st)
{
    struct migrate_watch *w = st;

    send_request(w);
    return w->refused;
}

/*
 * Asks the source how it went (when the stream went quiet or closed): a migration that failed
 * or is done with the VM still there settles the watch; 404 (the VM left) is answered by the
 * events the next stream replays.
 */
static void check_migration(struct migrate_watch *w)
{
    struct cli_response r;
    char *path = cli_object_path("vms", w->vm, "/migration");
    json_t *m = NULL;
    const char *state;

    if (!path || cli_http_request(w->ctx, "GET", path, NULL, &r)) {
        free(path);
        return;
    }
    free(path);
    if (r.status == 200)
        m = json_loadb(r.body, r.len, 0, NULL);
    state = cli_jstr(m, "state");
    if (state && (!strcmp(state, "done") || !strcmp(state, "failed"))) {
        json_t *ev = json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?}", "error",
                               json_object_get(m, "error"), "rounds", json_object_get(m, "round"),
                               "bytes_sent", json_object_get(m, "bytes_sent"), "downtime_ms",
                               json_object_get(m, "downtime_ms"), "total_ms",
                               json_object_get(m, "elapsed_ms"));
        const char *type = !strcmp(state, "done") ? "vm.migrated" : "vm.migration_failed";

        w->outcome = !strcmp(state, "done") ? 1 : -1;
        w->final_ev = json_pack("{s:s, s:o}", "type", type, "event", ev);
    } else if (json_is_object(m)) {
        draw_progress(w, m);
    }
    json_decref(m);
    cli_response_free(&r);
}

/* Quiet this long: reconnect (?since=, nothing is lost) and ask the source how it goes. */
#define WATCH_IDLE_MS 5000

static bool migration_settled(void *st)
{
    const struct migrate_watch *w = st;

    return w->outcome || w->refused;
}

static void migration_idle(void *st)
{
    check_migration(st);
}

static int follow_migration(struct migrate_watch *w)
{
    struct cli_sse sse = {.on_event = on_migrate_event, .opaque = w};
    int rc = cli_follow_events(w->ctx, &sse, migrate_connected, &w->last_id, WATCH_IDLE_MS,
                               migration_settled, migration_idle);

    end_progress(w);
    if (w->refused)
        return w->refused;
    return rc;
}

static int report(struct migrate_watch *w)
{
    const char *type = cli_jstr(w->final_ev, "type");
    json_t *ev = json_object_get(w->final_ev, "event");
    char line[512];

    if (w->ctx->output == CLI_OUTPUT_JSON) {
        json_t *m = cli_migrate_final(w->started, type, ev);
        char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;

        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(m);
    } else if (w->outcome > 0) {
        cli_migrate_done_line(w->vm, w->target, ev, line, sizeof(line));
        printf("%s\n", line);
    }
    if (w->outcome < 0) {
        fprintf(stderr, "vmctl: migrating %s to %s failed: %s\n", w->vm, w->target,
                cli_jstr(ev, "error") ? cli_jstr(ev, "error") : "no reason given");
        return CLI_EXIT_REFUSED;
    }
    return 0;
}

int cli_cmd_migrate(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"token", required_argument, NULL, OPT_TOKEN},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"max-downtime", required_argument, NULL, OPT_MAX_DOWNTIME},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"no-wait", no_argument, NULL, OPT_NO_WAIT},
        {0},
    };
    const struct cli_command *cmd = cli_find_command("migrate");
    struct migrate_opts o = {.cmd = cmd, .max_downtime_ms = -1, .timeout_s = -1};
    struct migrate_watch w = {.ctx = ctx, .last_id = -1, .tty = isatty(STDERR_FILENO)};
    const char *why;
    char *token = NULL, *body = NULL;
    json_t *req;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, opts, migrate_opt, &o, 2, 2, &first)))
        return rc;
    w.vm_arg = argv[first];
    w.target = argv[first + 1];
    if (!cli_migrate_target_valid(w.target, &why))
        return cli_usage_error(cmd, "'%s': %s", w.target, why);
    if (o.token && o.token_file)
        return cli_usage_error(cmd, "--token or --token-file, not both");
    if (o.insecure && strncmp(w.target, "https://", 8))
        return cli_usage_error(cmd, "--insecure is for an https:// target only");
    if (o.token_file && !(token = cli_migrate_read_token(o.token_file, &why))) {
        fprintf(stderr, "vmctl: cannot read the target's token from %s: %s\n", o.token_file, why);
        return CLI_EXIT_USAGE;
    }
    req = cli_migrate_body(w.target, token ? token : o.token, o.max_downtime_ms, o.timeout_s,
                           o.insecure);
    free(token);
    body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) {
        fprintf(stderr, "vmctl: out of memory\n");
        return CLI_EXIT_REFUSED;
    }
    w.body = body;
    if (o.no_wait) {
        send_request(&w);
        if (!(rc = w.refused)) {
            rc = cli_print_answer(ctx, &w.answer, w.started, print_migration);
            w.started = NULL;
        }
    } else {
        rc = follow_migration(&w);
        if (!rc)
            rc = report(&w);
    }
    free(body);
    cli_response_free(&w.answer);
    json_decref(w.started);
    json_decref(w.final_ev);
    return rc;
}

/* ---- migration ------------------------------------------------------------------ */

int cli_cmd_migration(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_command *cmd = cli_find_command("migration");
    struct cli_response r;
    json_t *m;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 1, 1, &first)))
        return rc;
    rc = cli_call_object(ctx, "GET", "vms", argv[first], "/migration", NULL, &r, &m);
    if (rc)
        return rc;
    return cli_print_answer(ctx, &r, m, print_migration);
}
