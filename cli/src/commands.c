/*
 * vmctl's commands: each parses its options, makes its API calls through
 * http.c and prints either the API's body (--output json) or a table
 * (output.c). Commands return an exit code from cli.h.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clusterspec.h"
#include "commands.h"
#include "console.h"
#include "http.h"
#include "limitspec.h"
#include "sse.h"
#include "netspec.h"
#include "output.h"
#include "storagespec.h"
#include "vmlistspec.h"

/* "unknown": a VM of an offline cluster member (issue 16); a stand-alone daemon has none. */
static const char *const vm_states[] = {"stopped",  "starting", "running", "paused",
                                        "stopping", "crashed",  "unknown", NULL};

static bool valid_state(const char *s)
{
    for (size_t i = 0; vm_states[i]; i++)
        if (strcmp(vm_states[i], s) == 0)
            return true;
    return false;
}

int cli_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Prints the body exactly as the API sent it (plus a final newline). */
void cli_print_body(const struct cli_response *r)
{
    fwrite(r->body, 1, r->len, stdout);
    if (r->len > 0 && r->body[r->len - 1] != '\n')
        putchar('\n');
}

/* Requests and checks; on success *root holds the parsed body (may be NULL). */
int cli_call(struct cli_ctx *ctx, const char *method, const char *path, const char *body,
             struct cli_response *r, json_t **root)
{
    int rc = cli_http_request(ctx, method, path, body, r);

    if (root)
        *root = NULL;
    if (rc)
        return rc;
    rc = cli_http_check(r);
    if (rc) {
        cli_response_free(r);
        return rc;
    }
    if (root && r->len > 0) {
        *root = json_loadb(r->body, r->len, 0, NULL);
        if (!*root) {
            fprintf(stderr, "vmctl: the daemon sent JSON vmctl cannot read\n");
            cli_response_free(r);
            return CLI_EXIT_REFUSED;
        }
    }
    return 0;
}

char *cli_object_path(const char *collection, const char *name, const char *suffix)
{
    char *esc = cli_http_escape(name), *out = NULL;

    if (esc && asprintf(&out, "/v1/%s/%s%s", collection, esc, suffix ? suffix : "") < 0)
        out = NULL;
    free(esc);
    return out;
}

int cli_call_object(struct cli_ctx *ctx, const char *method, const char *collection,
                    const char *name, const char *suffix, const char *body, struct cli_response *r,
                    json_t **root)
{
    char *path = cli_object_path(collection, name, suffix);
    int rc;

    if (!path) {
        fprintf(stderr, "vmctl: out of memory\n");
        return CLI_EXIT_REFUSED;
    }
    rc = cli_call(ctx, method, path, body, r, root);
    free(path);
    return rc;
}

int cli_delete_and_say(struct cli_ctx *ctx, const char *collection, const char *name,
                       const char *suffix, const char *said)
{
    struct cli_response r;
    int rc = cli_call_object(ctx, "DELETE", collection, name, suffix, NULL, &r, NULL);

    if (rc)
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        if (r.len)
            cli_print_body(&r);
    } else {
        printf("%s\n", said);
    }
    cli_response_free(&r);
    return 0;
}

int cli_delete_named(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
                     const char *collection, const char *said)
{
    char line[300];
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 1, 1, &first)))
        return rc;
    snprintf(line, sizeof(line), "%s %s", said, argv[first]);
    return cli_delete_and_say(ctx, collection, argv[first], NULL, line);
}

int cli_print_answer(struct cli_ctx *ctx, struct cli_response *r, json_t *obj,
                     void (*print)(json_t *obj))
{
    if (ctx->output == CLI_OUTPUT_JSON)
        cli_print_body(r);
    else if (obj)
        print(obj);
    json_decref(obj);
    cli_response_free(r);
    return 0;
}

int cli_post_named(struct cli_ctx *ctx, const char *path, const char *name, json_t *body,
                   void (*print)(json_t *obj))
{
    struct cli_response r;
    json_t *obj;
    char *text;
    int rc;

    json_object_set_new(body, "name", json_string(name));
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    rc = cli_call(ctx, "POST", path, text, &r, &obj);
    free(text);
    if (rc)
        return rc;
    return cli_print_answer(ctx, &r, obj, print);
}

/* The group's summary and subcommand list are those of its entry in cli_commands. */
static void print_group_usage(FILE *out, const char *group)
{
    const struct cli_command *cmd = cli_find_command(group);

    fprintf(out, "Usage: vmctl %s SUBCOMMAND [ARGS] [OPTIONS]\n\n%s\n\n", group,
            cmd ? cmd->summary : "");
    if (cmd && cmd->help)
        fputs(cmd->help, out);
}

int cli_dispatch(struct cli_ctx *ctx, const char *group, const struct cli_subcommand *subs,
                 size_t nsubs, int argc, char **argv)
{
    char word[128];

    if (argc >= 2 &&
        (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
        print_group_usage(stdout, group);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "vmctl %s: missing subcommand\n", group);
        print_group_usage(stderr, group);
        return CLI_EXIT_USAGE;
    }
    /* Two words first ("forward add"), then one. */
    if (argc >= 3) {
        snprintf(word, sizeof(word), "%s %s", argv[1], argv[2]);
        for (size_t i = 0; i < nsubs; i++)
            if (!strcmp(subs[i].word, word))
                return subs[i].run(ctx, &subs[i].cmd, argc - 2, argv + 2);
    }
    for (size_t i = 0; i < nsubs; i++)
        if (!strcmp(subs[i].word, argv[1]))
            return subs[i].run(ctx, &subs[i].cmd, argc - 1, argv + 1);
    fprintf(stderr, "vmctl %s: unknown subcommand '%s'\n", group, argv[1]);
    print_group_usage(stderr, group);
    return CLI_EXIT_USAGE;
}

static char *vm_path(const char *name, const char *suffix)
{
    return cli_object_path("vms", name, suffix);
}

/* cli_call() on /v1/vms/{name}{suffix}. */
static int call_vm(struct cli_ctx *ctx, const char *method, const char *name, const char *suffix,
                   const char *body, struct cli_response *r, json_t **root)
{
    return cli_call_object(ctx, method, "vms", name, suffix, body, r, root);
}

void cli_kv(const char *key, const char *value)
{
    printf("%-16s %s\n", key, value ? value : "-");
}

static void print_state_kv(const struct cli_ctx *ctx, const char *state)
{
    if (ctx->colour && state)
        printf("%-16s %s%s\033[0m\n", "state:", cli_state_colour(state), state);
    else
        cli_kv("state:", state);
}

/*
 * The leases of a managed network, or NULL. A NIC on a network without a static ip has the
 * address its network's DHCP gave its MAC; asking cannot fail the command that prints it.
 */
static json_t *network_leases(const struct cli_ctx *ctx, const char *network)
{
    char *path = cli_object_path("networks", network, "/leases");
    struct cli_response r;
    json_t *leases = NULL;

    if (path && cli_http_request(ctx, "GET", path, NULL, &r) == 0) {
        if (r.status == 200)
            leases = json_loadb(r.body, r.len, 0, NULL);
        cli_response_free(&r);
    }
    free(path);
    return leases;
}

/* One line per NIC: "net0  network default ip 10.71.0.10 mac ...", tap or bridge. */
/* A device's I/O limits on a line of their own, when it has any. */
static void print_limits(json_t *device)
{
    char line[160];

    if (!json_object_get(device, "limits"))
        return;
    cli_limits_describe(device, line, sizeof(line));
    printf("%-16s   limits %s\n", "", line);
}

static void print_nics(const struct cli_ctx *ctx, json_t *nics, const char *vm_id)
{
    json_t *nic;
    size_t i;

    if (json_array_size(nics) == 0)
        cli_kv("nics:", "-");
    json_array_foreach(nics, i, nic)
    {
        json_t *leases = NULL;
        char line[256];

        if (cli_jstr(nic, "network") && !cli_jstr(nic, "ip"))
            leases = network_leases(ctx, cli_jstr(nic, "network"));
        cli_nic_describe(nic, cli_lease_ip(leases, cli_jstr(nic, "mac"), vm_id), line,
                         sizeof(line));
        printf("%-16s net%zu %s\n", i == 0 ? "nics:" : "", i, line);
        print_limits(nic);
        json_decref(leases);
    }
}

static void print_vm(const struct cli_ctx *ctx, json_t *vm)
{
    char buf[64];
    json_t *a, *item;
    size_t i;

    cli_kv("name:", cli_jstr(vm, "name"));
    cli_kv("id:", cli_jstr(vm, "id"));
    print_state_kv(ctx, cli_jstr(vm, "state"));
    if (cli_jstr(vm, "member"))
        cli_kv("member:", cli_jstr(vm, "member"));
    if (cli_jstr(vm, "state_reason"))
        cli_kv("reason:", cli_jstr(vm, "state_reason"));
    cli_kv("mode:", cli_jstr(vm, "mode"));
    if (cli_jstr(vm, "boot"))
        cli_kv("boot:", cli_jstr(vm, "boot"));
    snprintf(buf, sizeof(buf), "%lld", cli_jint(vm, "vcpus"));
    cli_kv("vcpus:", buf);
    cli_format_mib(cli_jint(vm, "memory_mib"), buf);
    cli_kv("memory:", buf);
    cli_kv("kernel:", cli_jstr(vm, "kernel"));
    cli_kv("initrd:", cli_jstr(vm, "initrd"));
    cli_kv("cmdline:", cli_jstr(vm, "cmdline"));
    a = json_object_get(vm, "disks");
    if (json_array_size(a) == 0)
        cli_kv("disks:", "-");
    json_array_foreach(a, i, item)
    {
        char line[512];
        cli_disk_describe(item, line, sizeof(line));
        cli_kv(i == 0 ? "disks:" : "", line);
        print_limits(item);
    }
    print_nics(ctx, json_object_get(vm, "nics"), cli_jstr(vm, "id"));
    cli_kv("autostart:", json_is_true(json_object_get(vm, "autostart")) ? "yes" : "no");
    /* A daemon that knows "ha" always sends it: null is "none". */
    if (json_object_get(vm, "ha"))
        cli_kv("ha:", cli_jstr(vm, "ha") ? cli_jstr(vm, "ha") : "none");
    cli_vm_uptime(vm, time(NULL), buf);
    cli_kv("uptime:", buf);
    if (json_is_integer(json_object_get(vm, "worker_pid"))) {
        snprintf(buf, sizeof(buf), "%lld", cli_jint(vm, "worker_pid"));
        cli_kv("worker pid:", buf);
    }
    cli_kv("created:", cli_jstr(vm, "created_at"));
    cli_kv("started:", cli_jstr(vm, "started_at"));
}

/* Shared by commands whose only options are the common ones. */
static int simple_parse(struct cli_ctx *ctx, const char *name, int argc, char **argv, int min_pos,
                        int max_pos, int *first)
{
    return cli_parse_options(ctx, cli_find_command(name), argc, argv, NULL, NULL, NULL, min_pos,
                             max_pos, first);
}

struct follow {
    struct cli_sse *sse;
    int (*on_connect)(void *st);
    bool connected;
};

static int follow_data(void *opaque, const char *data, size_t len)
{
    struct follow *f = opaque;

    if (!f->connected) {
        f->connected = true;
        if (f->on_connect && f->on_connect(f->sse->opaque))
            return 1;
    }
    return cli_sse_feed(f->sse, data, len);
}

int cli_follow_events(struct cli_ctx *ctx, struct cli_sse *sse, int (*on_connect)(void *st),
                      const long long *last_id, long idle_ms, bool (*settled)(void *st),
                      void (*on_idle)(void *st))
{
    struct follow f = {.sse = sse, .on_connect = on_connect};
    char path[64];
    int rc = 0;

    while (!settled(sse->opaque)) {
        if (*last_id >= 0)
            snprintf(path, sizeof(path), "/v1/events?since=%lld", *last_id);
        else
            snprintf(path, sizeof(path), "/v1/events");
        sse->len = 0;
        rc = cli_http_stream(ctx, path, follow_data, &f, 0, idle_ms);
        if (rc || settled(sse->opaque))
            break;
        if (on_idle)
            on_idle(sse->opaque);
    }
    free(sse->buf);
    sse->buf = NULL;
    return rc;
}

/* ---- host, version ------------------------------------------------------ */

/* The TCP listener's TLS: what to compare with, or pass to --tls-pin, before trusting it. */
static void print_tls(json_t *tls)
{
    if (!tls)
        return;
    if (!json_is_true(json_object_get(tls, "enabled"))) {
        cli_kv("tls:", json_is_true(json_object_get(tls, "listening"))
                           ? "off: TCP is plain HTTP (--insecure-http)"
                           : "no TCP listener");
        return;
    }
    cli_kv("tls:", json_is_true(json_object_get(tls, "client_certificates"))
                       ? "on, clients need a certificate from the client CA"
                       : "on");
    cli_kv("certificate:", cli_jstr(tls, "certificate"));
    cli_kv("sha256:", cli_jstr(tls, "fingerprint_sha256"));
    cli_kv("tls pin:", cli_jstr(tls, "public_key_pin"));
}

static int cmd_host(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_response r;
    json_t *host, *cap, *alloc, *dirs, *item;
    char buf[128], m1[32], m2[32];
    int first, rc;
    size_t i;

    if ((rc = simple_parse(ctx, "host", argc, argv, 0, 0, &first)))
        return rc;
    if ((rc = cli_call(ctx, "GET", "/v1/host", NULL, &r, &host)))
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        cli_print_body(&r);
    } else {
        json_t *kvm = json_object_get(host, "kvm");
        cap = json_object_get(host, "capacity");
        alloc = json_object_get(host, "allocation");
        cli_kv("version:", cli_jstr(host, "version"));
        cli_kv("kvm:", cli_jstr(kvm, "flavour"));
        cli_kv("", cli_jstr(kvm, "meaning"));
        cli_format_mib(cli_jint(cap, "memory_mib"), m1);
        snprintf(buf, sizeof(buf), "%lld CPUs, %s", cli_jint(cap, "cpus"), m1);
        cli_kv("host:", buf);
        cli_format_mib(cli_jint(cap, "max_memory_mib"), m1);
        snprintf(buf, sizeof(buf), "%lld vCPUs, %s", cli_jint(cap, "max_vcpus"), m1);
        cli_kv("admits:", buf);
        snprintf(buf, sizeof(buf), "%lld defined, %lld running", cli_jint(alloc, "vms_defined"),
                 cli_jint(alloc, "vms_running"));
        cli_kv("vms:", buf);
        cli_format_mib(cli_jint(alloc, "memory_mib"), m2);
        snprintf(buf, sizeof(buf), "%lld vCPUs, %s", cli_jint(alloc, "vcpus"), m2);
        cli_kv("allocated:", buf);
        dirs = json_object_get(host, "image_dirs");
        json_array_foreach(dirs, i, item)
            cli_kv(i == 0 ? "image dirs:" : "", json_string_value(item));
        print_tls(json_object_get(host, "tls"));
    }
    json_decref(host);
    cli_response_free(&r);
    return 0;
}

static int cmd_version(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_response r;
    json_t *host;
    int first, rc;

    if ((rc = simple_parse(ctx, "version", argc, argv, 0, 0, &first)))
        return rc;
    if (ctx->output == CLI_OUTPUT_TABLE)
        printf("vmctl %s\n", VMMD_VERSION);
    fflush(stdout);
    if ((rc = cli_call(ctx, "GET", "/v1/host", NULL, &r, &host)))
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        json_t *out = json_pack("{s:s, s:O}", "vmctl", VMMD_VERSION, "vmmd",
                                json_object_get(host, "version"));
        json_dumpf(out, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(out);
    } else {
        printf("vmmd %s\n", cli_jstr(host, "version") ? cli_jstr(host, "version") : "?");
    }
    json_decref(host);
    cli_response_free(&r);
    return 0;
}

/* ---- list, show, stats -------------------------------------------------- */

/* VMs per request: the daemon is never asked for the whole list at once (it answers pages of
 * up to 1000). */
#define LIST_PAGE 500

struct list_opts {
    const char *state;
    long limit; /* 0: all */
};

static int list_opt(void *st, int id, const char *arg)
{
    struct list_opts *o = st;

    if (id == CLI_OPT_FIRST + 1) {
        if (cli_parse_long(arg, 1, LONG_MAX, &o->limit))
            return cli_usage_error(cli_find_command("list"),
                                   "--limit wants a positive number, not '%s'", arg);
        return 0;
    }
    if (!valid_state(arg))
        return cli_usage_error(cli_find_command("list"),
                               "--state must be one of stopped, starting, running, paused, "
                               "stopping, crashed, unknown");
    o->state = arg;
    return 0;
}

/*
 * All the VMs (or the first limit), a page at a time: each page starts after the last name of
 * the one before, so VMs created or deleted meanwhile are neither repeated nor skipped.
 */
static int list_vms(struct cli_ctx *ctx, const struct list_opts *o, json_t **out)
{
    json_t *all = json_array(), *page;
    char path[192];
    struct cli_response r;
    size_t want, got;
    int rc;

    do {
        want = LIST_PAGE;
        if (o->limit && (size_t)o->limit - json_array_size(all) < want)
            want = (size_t)o->limit - json_array_size(all);
        const char *after = json_array_size(all)
                                ? cli_jstr(json_array_get(all, json_array_size(all) - 1), "name")
                                : NULL;
        snprintf(path, sizeof(path), "/v1/vms?limit=%zu%s%s%s%s", want, o->state ? "&state=" : "",
                 o->state ? o->state : "", after ? "&after=" : "", after ? after : "");
        if ((rc = cli_call(ctx, "GET", path, NULL, &r, &page))) {
            json_decref(all);
            return rc;
        }
        got = json_array_size(page);
        json_array_extend(all, page);
        json_decref(page);
        cli_response_free(&r);
    } while (got == want && (!o->limit || json_array_size(all) < (size_t)o->limit));
    *out = all;
    return 0;
}

static int cmd_list(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"state", required_argument, NULL, CLI_OPT_FIRST},
                                         {"limit", required_argument, NULL, CLI_OPT_FIRST + 1},
                                         {0}};
    struct list_opts o = {0};
    struct cli_table t;
    json_t *vms;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cli_find_command("list"), argc, argv, opts, list_opt, &o, 0, 0,
                                &first)))
        return rc;
    if ((rc = list_vms(ctx, &o, &vms)))
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        json_dumpf(vms, stdout, JSON_COMPACT);
        putchar('\n');
    } else {
        if (cli_vm_list_table(vms, time(NULL), &t) == 0) {
            cli_table_print(&t, stdout, ctx->colour);
        } else {
            fprintf(stderr, "vmctl: out of memory\n");
            rc = CLI_EXIT_REFUSED;
        }
        cli_table_free(&t);
    }
    json_decref(vms);
    return rc;
}

int cli_print_vm_answer(struct cli_ctx *ctx, struct cli_response *r, json_t *vm)
{
    if (ctx->output == CLI_OUTPUT_JSON)
        cli_print_body(r);
    else if (vm)
        print_vm(ctx, vm);
    json_decref(vm);
    cli_response_free(r);
    return 0;
}

/* GET path and print the VM it returns. */
static int get_and_print_vm(struct cli_ctx *ctx, const char *method, const char *path,
                            const char *body)
{
    struct cli_response r;
    json_t *vm;
    int rc = cli_call(ctx, method, path, body, &r, &vm);

    if (rc)
        return rc;
    return cli_print_vm_answer(ctx, &r, vm);
}

static int cmd_show(struct cli_ctx *ctx, int argc, char **argv)
{
    int first, rc;
    char *path;

    if ((rc = simple_parse(ctx, "show", argc, argv, 1, 1, &first)))
        return rc;
    path = vm_path(argv[first], NULL);
    rc = get_and_print_vm(ctx, "GET", path, NULL);
    free(path);
    return rc;
}

/* A counter column of the per-device tables: bytes are printed in units. */
struct device_column {
    const char *header, *key;
    bool bytes;
};

#define DEVICE_COLUMNS_MAX 8

static void print_device_table(json_t *devices, const char *name, const struct device_column *cols,
                               int ncols)
{
    const char *headers[DEVICE_COLUMNS_MAX], *cells[DEVICE_COLUMNS_MAX];
    char cell[DEVICE_COLUMNS_MAX][32];
    struct cli_table t;
    json_t *d;
    size_t i;

    if (!json_array_size(devices))
        return;
    for (int c = 0; c < ncols; c++) {
        headers[c] = cols[c].header;
        cells[c] = cell[c];
    }
    putchar('\n');
    cli_table_init(&t, ncols, headers);
    json_array_foreach(devices, i, d)
    {
        snprintf(cell[0], sizeof(cell[0]), "%s%zu", name, i);
        for (int c = 1; c < ncols; c++) {
            size_t klen = strlen(cols[c].key);
            if (cols[c].bytes)
                cli_format_bytes(cli_jint(d, cols[c].key), cell[c]);
            else if (klen > 3 && strcmp(cols[c].key + klen - 3, "_ns") == 0)
                snprintf(cell[c], sizeof(cell[c]), "%.1fs", (double)cli_jint(d, cols[c].key) / 1e9);
            else
                snprintf(cell[c], sizeof(cell[c]), "%lld", cli_jint(d, cols[c].key));
        }
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout, false);
    cli_table_free(&t);
}

/* One row per disk and per NIC, after the exit table. */
static void print_device_stats(json_t *st)
{
    static const struct device_column disk_cols[] = {
        {"DISK", NULL, false},
        {"READ", "read_bytes", true},
        {"WRITTEN", "write_bytes", true},
        {"READS", "read_ops", false},
        {"WRITES", "write_ops", false},
        {"FLUSHES", "flush_ops", false},
        {"ERRORS", "errors", false},
        {"THROTTLED", "throttled_ns", false},
    };
    static const struct device_column nic_cols[] = {
        {"NIC", NULL, false},
        {"RECEIVED", "rx_bytes", true},
        {"SENT", "tx_bytes", true},
        {"RX PACKETS", "rx_packets", false},
        {"TX PACKETS", "tx_packets", false},
        {"DROPS", "drops", false},
        {"THROTTLED", "throttled_ns", false},
    };

    print_device_table(json_object_get(st, "disks"), "disk", disk_cols, 8);
    print_device_table(json_object_get(st, "nics"), "net", nic_cols, 7);
}

static int cmd_stats(struct cli_ctx *ctx, int argc, char **argv)
{
    static const char *const headers[] = {"EXIT REASON", "COUNT"};
    struct cli_response r;
    json_t *st, *exits, *v;
    const char *key;
    char buf[64];
    int first, rc;

    if ((rc = simple_parse(ctx, "stats", argc, argv, 1, 1, &first)))
        return rc;
    rc = call_vm(ctx, "GET", argv[first], "/stats", NULL, &r, &st);
    if (rc)
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        cli_print_body(&r);
    } else {
        struct cli_table t;
        cli_kv("name:", argv[first]);
        print_state_kv(ctx, cli_jstr(st, "state"));
        cli_format_duration(json_number_value(json_object_get(st, "uptime_s")), buf);
        cli_kv("uptime:", buf);
        snprintf(buf, sizeof(buf), "%lld", cli_jint(st, "boots"));
        cli_kv("boots:", buf);
        cli_format_bytes(cli_jint(st, "memory_bytes"), buf);
        cli_kv("memory:", buf);
        cli_format_bytes(cli_jint(st, "console_bytes"), buf);
        cli_kv("console:", buf);
        snprintf(buf, sizeof(buf), "%lld", cli_jint(st, "writes_ignored"));
        cli_kv("writes ignored:", buf);
        putchar('\n');
        cli_table_init(&t, 2, headers);
        exits = json_object_get(st, "exits");
        json_object_foreach(exits, key, v)
        {
            const char *cells[2] = {key, buf};
            snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
            cli_table_add(&t, cells);
        }
        cli_table_print(&t, stdout, false);
        cli_table_free(&t);
        print_device_stats(st);
    }
    json_decref(st);
    cli_response_free(&r);
    return 0;
}

/* ---- create, set, delete ------------------------------------------------ */

struct create_opts {
    json_t *def;
    const char *from_file;
    int bad;
};

/* --ha restart|none into obj's "ha" (none: null, which a PATCH takes as "no ha"). */
static int set_ha(const struct cli_command *cmd, json_t *obj, const char *arg)
{
    json_t *ha = cli_ha_value(arg);

    if (!ha)
        return cli_usage_error(cmd, "--ha must be restart or none, not '%s'", arg);
    json_object_set_new(obj, "ha", ha);
    return 0;
}

static int create_opt(void *st, int id, const char *arg)
{
    const struct cli_command *cmd = cli_find_command("create");
    struct create_opts *o = st;
    long n;

    switch (id - CLI_OPT_FIRST) {
    case 0:
        json_object_set_new(o->def, "kernel", json_string(arg));
        break;
    case 1:
        json_object_set_new(o->def, "initrd", json_string(arg));
        break;
    case 2:
        json_object_set_new(o->def, "cmdline", json_string(arg));
        break;
    case 3:
        if (strcmp(arg, "full") && strcmp(arg, "pv"))
            return cli_usage_error(cmd, "--mode must be full or pv");
        json_object_set_new(o->def, "mode", json_string(arg));
        break;
    case 4:
        if (cli_parse_long(arg, 1, INT_MAX, &n))
            return cli_usage_error(cmd, "--vcpus wants a positive number, not '%s'", arg);
        json_object_set_new(o->def, "vcpus", json_integer(n));
        break;
    case 5:
        if (cli_parse_long(arg, 1, LONG_MAX, &n))
            return cli_usage_error(cmd, "--memory wants MiB, not '%s'", arg);
        json_object_set_new(o->def, "memory_mib", json_integer(n));
        break;
    case 6: {
        const char *why;
        json_t *disk = cli_disk_parse(arg, &why), *disks = json_object_get(o->def, "disks");
        if (!disk)
            return cli_usage_error(
                cmd, "--disk '%s': %s; it wants PATH or volume=NAME, then ,ro and ,LIMIT=N", arg,
                why);
        if (!disks) {
            disks = json_array();
            json_object_set_new(o->def, "disks", disks);
        }
        json_array_append_new(disks, disk);
        break;
    }
    case 7: {
        const char *why;
        json_t *nic = cli_nic_parse(arg, &why), *nics = json_object_get(o->def, "nics");
        if (!nic)
            return cli_usage_error(
                cmd,
                "--nic '%s': %s; it wants network=NAME[,ip=IP], tap=NAME or bridge=NAME, "
                "each with an optional ,mac=MAC",
                arg, why);
        if (!nics) {
            nics = json_array();
            json_object_set_new(o->def, "nics", nics);
        }
        json_array_append_new(nics, nic);
        break;
    }
    case 8:
        json_object_set_new(o->def, "autostart", json_true());
        break;
    case 9:
        o->from_file = arg;
        break;
    case 10:
    case 11:
        if (cli_parse_long(arg, 0, INT_MAX, &n))
            return cli_usage_error(cmd, "--cpu-%s wants a number, not '%s'",
                                   id == CLI_OPT_FIRST + 10 ? "quota" : "weight", arg);
        json_object_set_new(o->def, id == CLI_OPT_FIRST + 10 ? "cpu_quota_pct" : "cpu_weight",
                            json_integer(n));
        break;
    case 12:
        if (strcmp(arg, "kernel") && strcmp(arg, "disk"))
            return cli_usage_error(cmd, "--boot must be kernel or disk");
        json_object_set_new(o->def, "boot", json_string(arg));
        break;
    case 13:
        json_object_set_new(o->def, "member", json_string(arg));
        break;
    case 14:
        return set_ha(cmd, o->def, arg);
    }
    return 0;
}

static int cmd_create(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"kernel", required_argument, NULL, CLI_OPT_FIRST + 0},
        {"initrd", required_argument, NULL, CLI_OPT_FIRST + 1},
        {"cmdline", required_argument, NULL, CLI_OPT_FIRST + 2},
        {"mode", required_argument, NULL, CLI_OPT_FIRST + 3},
        {"vcpus", required_argument, NULL, CLI_OPT_FIRST + 4},
        {"memory", required_argument, NULL, CLI_OPT_FIRST + 5},
        {"disk", required_argument, NULL, CLI_OPT_FIRST + 6},
        {"nic", required_argument, NULL, CLI_OPT_FIRST + 7},
        {"autostart", no_argument, NULL, CLI_OPT_FIRST + 8},
        {"from-file", required_argument, NULL, CLI_OPT_FIRST + 9},
        {"cpu-quota", required_argument, NULL, CLI_OPT_FIRST + 10},
        {"cpu-weight", required_argument, NULL, CLI_OPT_FIRST + 11},
        {"boot", required_argument, NULL, CLI_OPT_FIRST + 12},
        {"member", required_argument, NULL, CLI_OPT_FIRST + 13},
        {"ha", required_argument, NULL, CLI_OPT_FIRST + 14},
        {0},
    };
    const struct cli_command *cmd = cli_find_command("create");
    struct create_opts o = {.def = json_object()};
    json_t *def = NULL;
    char *body = NULL;
    int first, rc;

    rc = cli_parse_options(ctx, cmd, argc, argv, opts, create_opt, &o, 0, 1, &first);
    if (rc)
        goto out;
    if (o.from_file) {
        json_error_t err;
        const char *key;
        json_t *v;
        def = strcmp(o.from_file, "-") == 0 ? json_loadf(stdin, 0, &err)
                                            : json_load_file(o.from_file, 0, &err);
        if (!def) {
            fprintf(stderr, "vmctl create: %s: %s (line %d)\n", o.from_file, err.text, err.line);
            rc = CLI_EXIT_USAGE;
            goto out;
        }
        /* Flags given with --from-file override the file's fields. */
        json_object_foreach(o.def, key, v) json_object_set(def, key, v);
    } else {
        def = json_incref(o.def);
        if (first >= argc) {
            rc = cli_usage_error(cmd, "missing NAME");
            goto out;
        }
        const char *boot = json_string_value(json_object_get(def, "boot"));
        if (!json_object_get(def, "kernel") && !(boot && strcmp(boot, "disk") == 0)) {
            rc = cli_usage_error(cmd, "--kernel is required (or --boot disk with a --disk)");
            goto out;
        }
    }
    if (first < argc)
        json_object_set_new(def, "name", json_string(argv[first]));
    body = json_dumps(def, JSON_COMPACT);
    rc = get_and_print_vm(ctx, "POST", "/v1/vms", body);
out:
    free(body);
    json_decref(def);
    json_decref(o.def);
    return rc;
}

json_t *cli_json_bool(const char *value)
{
    if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on"))
        return json_true();
    if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off"))
        return json_false();
    return NULL;
}

int cli_patch_args(const struct cli_command *cmd, int argc, char **argv, int from,
                   json_t *(*value)(char key[64], const char *value), json_t **out)
{
    json_t *patch = json_object();

    for (int i = from; i < argc; i++) {
        char *eq = strchr(argv[i], '='), key[64];
        json_t *v;
        if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof(key)) {
            json_decref(patch);
            return cli_usage_error(cmd, "'%s' is not KEY=VALUE", argv[i]);
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i]), argv[i]);
        v = value(key, eq + 1);
        if (!v) {
            json_decref(patch);
            return cli_usage_error(cmd, "bad value for %s: '%s'", key, eq + 1);
        }
        json_object_set_new(patch, key, v);
    }
    *out = patch;
    return 0;
}

/* A value of `set KEY=VALUE`: typed by key, JSON for lists, null for "" / null. */
static json_t *set_value(char key[64], const char *value)
{
    long n;

    if (strcmp(key, "memory") == 0)
        snprintf(key, 64, "memory_mib");
    if (strcmp(key, "vcpus") == 0 || strcmp(key, "memory_mib") == 0 ||
        strcmp(key, "cpu_quota_pct") == 0 || strcmp(key, "cpu_weight") == 0)
        return cli_parse_long(value, LONG_MIN, LONG_MAX, &n) ? NULL : json_integer(n);
    if (strcmp(key, "autostart") == 0)
        return cli_json_bool(value);
    if (strcmp(key, "ha") == 0)
        return cli_ha_value(value);
    if (strcmp(key, "disks") == 0 || strcmp(key, "nics") == 0)
        return json_loads(value, JSON_DECODE_ANY, NULL);
    if ((strcmp(key, "initrd") == 0 || strcmp(key, "cmdline") == 0 || strcmp(key, "kernel") == 0) &&
        (!*value || !strcmp(value, "null")))
        return json_null();
    return json_string(value);
}

static int set_opt(void *st, int id, const char *arg)
{
    struct cli_body_opts *o = st;

    (void)id;
    return set_ha(o->cmd, o->body, arg);
}

static int cmd_set(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"ha", required_argument, NULL, CLI_OPT_FIRST}, {0}};
    struct cli_body_opts o = {.cmd = cli_find_command("set"), .body = json_object()};
    json_t *patch = NULL;
    const char *key;
    json_t *v;
    char *body, *path;
    int first, rc;

    rc = cli_parse_options(ctx, o.cmd, argc, argv, opts, set_opt, &o, 1, -1, &first);
    if (!rc)
        rc = cli_patch_args(o.cmd, argc, argv, first + 1, set_value, &patch);
    if (!rc && json_object_size(o.body) + json_object_size(patch) == 0)
        rc = cli_usage_error(o.cmd, "nothing to change: give KEY=VALUE or --ha");
    if (rc) {
        json_decref(patch);
        json_decref(o.body);
        return rc;
    }
    /* --ha and ha= say the same; the option wins. */
    json_object_foreach(o.body, key, v) json_object_set(patch, key, v);
    json_decref(o.body);
    body = json_dumps(patch, JSON_COMPACT);
    path = vm_path(argv[first], NULL);
    rc = get_and_print_vm(ctx, "PATCH", path, body);
    free(path);
    free(body);
    json_decref(patch);
    return rc;
}

static int delete_opt(void *st, int id, const char *arg)
{
    (void)id;
    (void)arg;
    *(bool *)st = true;
    return 0;
}

static int cmd_delete(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"force", no_argument, NULL, CLI_OPT_FIRST}, {0}};
    struct cli_response r;
    bool force = false;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cli_find_command("delete"), argc, argv, opts, delete_opt,
                                &force, 1, 1, &first)))
        return rc;
    rc = call_vm(ctx, "DELETE", argv[first], force ? "?force=true" : NULL, NULL, &r, NULL);
    if (rc)
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        if (r.len)
            cli_print_body(&r); /* 204: the API's body is empty */
    } else {
        printf("deleted %s\n", argv[first]);
    }
    cli_response_free(&r);
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------- */

static int lifecycle(struct cli_ctx *ctx, const char *action, int argc, char **argv)
{
    struct cli_response r;
    json_t *vm;
    int first, rc;
    char suffix[32];

    if ((rc = simple_parse(ctx, action, argc, argv, 1, 1, &first)))
        return rc;
    snprintf(suffix, sizeof(suffix), "/%s", action);
    rc = call_vm(ctx, "POST", argv[first], suffix, NULL, &r, &vm);
    if (rc)
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        cli_print_body(&r);
    } else {
        const char *state = vm ? cli_jstr(vm, "state") : NULL;
        if (ctx->colour && state)
            printf("%s: %s%s\033[0m\n", argv[first], cli_state_colour(state), state);
        else
            printf("%s: %s\n", argv[first], state ? state : action);
    }
    json_decref(vm);
    cli_response_free(&r);
    return 0;
}

static int cmd_start(struct cli_ctx *ctx, int argc, char **argv)
{
    return lifecycle(ctx, "start", argc, argv);
}
static int cmd_stop(struct cli_ctx *ctx, int argc, char **argv)
{
    return lifecycle(ctx, "stop", argc, argv);
}
static int cmd_reboot(struct cli_ctx *ctx, int argc, char **argv)
{
    return lifecycle(ctx, "reboot", argc, argv);
}
static int cmd_pause(struct cli_ctx *ctx, int argc, char **argv)
{
    return lifecycle(ctx, "pause", argc, argv);
}
static int cmd_resume(struct cli_ctx *ctx, int argc, char **argv)
{
    return lifecycle(ctx, "resume", argc, argv);
}

/*
 * Polls the VM until it is in one of states (comma-separated) or timeout_ms
 * passes. Returns 0, CLI_EXIT_TIMEOUT, or an error exit code; *vm_out (when
 * given) gets the last response.
 */
static int poll_state(struct cli_ctx *ctx, const char *name, const char *states,
                      long long timeout_ms, struct cli_response *last)
{
    long long deadline = mono_ms() + timeout_ms;
    char *path = vm_path(name, NULL);
    int rc;

    memset(last, 0, sizeof(*last));
    for (;;) {
        json_t *vm;
        const char *s;
        bool match = false;

        cli_response_free(last);
        rc = cli_call(ctx, "GET", path, NULL, last, &vm);
        if (rc)
            break;
        s = cli_jstr(vm, "state");
        if (s) {
            char *copy = strdup(states), *save = NULL, *tok;
            for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                match |= strcmp(tok, s) == 0;
            free(copy);
        }
        json_decref(vm);
        if (match)
            break;
        if (mono_ms() >= deadline) {
            rc = CLI_EXIT_TIMEOUT;
            break;
        }
        sleep_ms(100);
    }
    free(path);
    return rc;
}

static int timeout_opt(void *st, int id, const char *arg)
{
    long n;

    (void)id;
    if (cli_parse_long(arg, 1, 86400, &n))
        return CLI_EXIT_USAGE;
    *(long *)st = n;
    return 0;
}

static int shutdown_opt(void *st, int id, const char *arg)
{
    if (timeout_opt(st, id, arg))
        return cli_usage_error(cli_find_command("shutdown"), "--timeout wants seconds (1 to 3600)");
    return 0;
}

static int cmd_shutdown(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"timeout", required_argument, NULL, CLI_OPT_FIRST}, {0}};
    const struct cli_command *cmd = cli_find_command("shutdown");
    struct cli_response r, last;
    long timeout = 30;
    char body[64];
    int first, rc;

    rc = cli_parse_options(ctx, cmd, argc, argv, opts, shutdown_opt, &timeout, 1, 1, &first);
    if (rc)
        return rc;
    snprintf(body, sizeof(body), "{\"timeout_s\":%ld}", timeout);
    rc = call_vm(ctx, "POST", argv[first], "/shutdown", body, &r, NULL);
    if (rc)
        return rc;
    cli_response_free(&r);
    /* The daemon stops the VM hard after the timeout; allow it a margin. */
    rc = poll_state(ctx, argv[first], "stopped,crashed", timeout * 1000LL + 10000, &last);
    if (rc == CLI_EXIT_TIMEOUT)
        fprintf(stderr, "vmctl: %s did not stop within %lds\n", argv[first], timeout + 10);
    if (rc == 0) {
        if (ctx->output == CLI_OUTPUT_JSON)
            cli_print_body(&last);
        else
            printf("%s: stopped\n", argv[first]);
    }
    cli_response_free(&last);
    return rc;
}

struct wait_opts {
    const char *state;
    long timeout;
};

static int wait_opt(void *st, int id, const char *arg)
{
    const struct cli_command *cmd = cli_find_command("wait");
    struct wait_opts *o = st;

    if (id == CLI_OPT_FIRST) {
        char *copy = strdup(arg), *save = NULL, *tok;
        bool ok = true;
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            ok &= valid_state(tok);
        free(copy);
        if (!ok)
            return cli_usage_error(cmd, "unknown state in '%s'", arg);
        o->state = arg;
        return 0;
    }
    if (timeout_opt(&o->timeout, id, arg))
        return cli_usage_error(cmd, "--timeout wants seconds (1 to 86400)");
    return 0;
}

static int cmd_wait(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"state", required_argument, NULL, CLI_OPT_FIRST},
                                         {"timeout", required_argument, NULL, CLI_OPT_FIRST + 1},
                                         {0}};
    const struct cli_command *cmd = cli_find_command("wait");
    struct wait_opts o = {.timeout = 60};
    struct cli_response last;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, opts, wait_opt, &o, 1, 1, &first)))
        return rc;
    if (!o.state)
        return cli_usage_error(cmd, "--state is required");
    rc = poll_state(ctx, argv[first], o.state, o.timeout * 1000LL, &last);
    if (rc == CLI_EXIT_TIMEOUT)
        fprintf(stderr, "vmctl: %s did not reach %s within %lds\n", argv[first], o.state,
                o.timeout);
    if (rc == 0) {
        if (ctx->output == CLI_OUTPUT_JSON)
            cli_print_body(&last);
        else
            printf("%s: %s\n", argv[first], o.state);
    }
    cli_response_free(&last);
    return rc;
}

/* ---- logs, events ------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

struct logs_opts {
    long tail;
    bool follow;
};

static int logs_opt(void *st, int id, const char *arg)
{
    struct logs_opts *o = st;

    if (id == CLI_OPT_FIRST + 1) {
        o->follow = true;
        return 0;
    }
    if (cli_parse_long(arg, 0, 1048576, &o->tail))
        return cli_usage_error(cli_find_command("logs"), "--tail wants 0 to 1048576 bytes");
    return 0;
}

/*
 * How many bytes at the start of now were already printed as the end of
 * before: the smallest shift of before whose rest is a prefix of now. Both
 * are windows onto the same growing log; a log that started over (a new
 * worker) matches nothing and is printed whole.
 */
static size_t overlap(const char *before, size_t blen, const char *now, size_t nlen)
{
    for (size_t shift = 0; shift < blen; shift++) {
        size_t n = blen - shift;
        if (n <= nlen && memcmp(before + shift, now, n) == 0)
            return n;
    }
    return 0;
}

/*
 * GET a console window. With follow, a 409 (no console yet: the VM never
 * ran, or its worker is gone) reads as an empty log, so following a stopped
 * VM waits for it to start.
 */
static int get_console(struct cli_ctx *ctx, const char *path, bool follow, struct cli_response *r)
{
    int rc = cli_http_request(ctx, "GET", path, NULL, r);

    if (rc)
        return rc;
    if (follow && r->status == 409) {
        r->len = 0;
        r->body[0] = '\0';
        return 0;
    }
    rc = cli_http_check(r);
    if (rc)
        cli_response_free(r);
    return rc;
}

static int cmd_logs(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"tail", required_argument, NULL, CLI_OPT_FIRST},
                                         {"follow", no_argument, NULL, CLI_OPT_FIRST + 1},
                                         {0}};
    struct logs_opts o = {.tail = 65536};
    struct cli_response r, prev = {0};
    char suffix[64], *path, *window;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cli_find_command("logs"), argc, argv, opts, logs_opt, &o, 1, 1,
                                &first)))
        return rc;
    if (o.follow) { /* an unknown VM is still an error */
        rc = call_vm(ctx, "GET", argv[first], NULL, NULL, &r, NULL);
        if (rc)
            return rc;
        cli_response_free(&r);
    }
    snprintf(suffix, sizeof(suffix), "/console?tail=%ld", o.tail);
    path = vm_path(argv[first], suffix);
    rc = get_console(ctx, path, o.follow, &r);
    free(path);
    if (rc)
        return rc;
    fwrite(r.body, 1, r.len, stdout);
    fflush(stdout);
    if (!o.follow) {
        cli_response_free(&r);
        return 0;
    }
    /* Follow: poll a 64 KiB window and print what is new since the last one. */
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    snprintf(suffix, sizeof(suffix), "/console?tail=%d", 65536);
    window = vm_path(argv[first], suffix);
    if (o.tail == 65536) {
        prev = r;
    } else {
        cli_response_free(&r);
        rc = get_console(ctx, window, true, &prev);
    }
    while (!rc && !interrupted) {
        size_t seen;
        sleep_ms(200);
        rc = get_console(ctx, window, true, &r);
        if (rc)
            break;
        if (r.len == 0) { /* no worker: keep what was printed, wait for a start */
            cli_response_free(&r);
            continue;
        }
        seen = overlap(prev.body, prev.len, r.body, r.len);
        if (seen == r.len && prev.len == r.len) {
            cli_response_free(&r);
            continue;
        }
        fwrite(r.body + seen, 1, r.len - seen, stdout);
        fflush(stdout);
        cli_response_free(&prev);
        prev = r;
    }
    cli_response_free(&prev);
    free(window);
    return interrupted ? 0 : rc;
}

static int print_event(void *opaque, const char *id, const char *type, const char *data)
{
    const struct cli_ctx *ctx = opaque;
    char subject[160];
    json_t *ev;

    if (ctx->output == CLI_OUTPUT_JSON) {
        printf("%s\n", data);
        fflush(stdout);
        return interrupted;
    }
    const char *name;

    ev = json_loads(data, 0, NULL);
    /* Retention pruned events this stream would have shown: say where the gap is. */
    if (strcmp(type, "events.reset") == 0) {
        printf("%-6s %-21s %s\n", id, type,
               ev && cli_jstr(ev, "detail") ? cli_jstr(ev, "detail") : "events are missing here");
        fflush(stdout);
        json_decref(ev);
        return interrupted;
    }
    /* A port forward's events name their network instead, a snapshot's its VM and itself. */
    name = ev ? (cli_jstr(ev, "name") ? cli_jstr(ev, "name") : cli_jstr(ev, "network")) : NULL;
    /* A migration's events name their VM as "vm" (and no snapshot). */
    if (!name && cli_jstr(ev, "vm") && !cli_jstr(ev, "snapshot"))
        name = cli_jstr(ev, "vm");
    if (!name && cli_jstr(ev, "vm") && cli_jstr(ev, "snapshot")) {
        snprintf(subject, sizeof(subject), "%s/%s", cli_jstr(ev, "vm"), cli_jstr(ev, "snapshot"));
        name = subject;
    }
    printf("%-6s %-21s %-20s", id, type, name ? name : "-");
    if (ev && cli_jstr(ev, "from_snapshot"))
        printf(" from %s", cli_jstr(ev, "from_snapshot"));
    if (ev && cli_jstr(ev, "target"))
        printf(" to %s", cli_jstr(ev, "target"));
    if (ev && cli_jstr(ev, "state")) {
        const char *state = cli_jstr(ev, "state");
        if (cli_jstr(ev, "previous"))
            printf(" %s ->", cli_jstr(ev, "previous"));
        if (ctx->colour)
            printf(" %s%s\033[0m", cli_state_colour(state), state);
        else
            printf(" %s", state);
    }
    if (ev && cli_jstr(ev, "reason"))
        printf(" (%s)", cli_jstr(ev, "reason"));
    /* In a cluster: the member that recorded it. */
    if (ev && cli_jstr(ev, "origin"))
        printf(" [%s]", cli_jstr(ev, "origin"));
    putchar('\n');
    fflush(stdout);
    json_decref(ev);
    return interrupted;
}

static int cmd_events(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"follow", no_argument, NULL, CLI_OPT_FIRST}, {0}};
    struct cli_sse s = {.on_event = print_event, .opaque = ctx};
    bool follow = false;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cli_find_command("events"), argc, argv, opts, delete_opt,
                                &follow, 0, 0, &first)))
        return rc;
    /* SIGINT/SIGTERM keep their default action: every event is flushed as printed. */
    if (ctx->output == CLI_OUTPUT_TABLE)
        printf("%-6s %-21s %-20s %s\n", "ID", "EVENT", "NAME", "STATE");
    /* Without --follow: the replay from the first event, ended once the stream goes quiet. */
    rc = cli_http_stream(ctx, "/v1/events?since=0", cli_sse_feed, &s, 0, follow ? 0 : 300);
    free(s.buf);
    return rc;
}

/* ---- console ------------------------------------------------------------ */

static int cmd_console(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_response r;
    json_t *vm;
    int first, rc;
    char *path;

    if ((rc = simple_parse(ctx, "console", argc, argv, 1, 1, &first)))
        return rc;
    /* Ask first, so an unknown or stopped VM gets the API's own message. */
    rc = call_vm(ctx, "GET", argv[first], NULL, NULL, &r, &vm);
    if (rc)
        return rc;
    if (!cli_jstr(vm, "state") ||
        (strcmp(cli_jstr(vm, "state"), "running") && strcmp(cli_jstr(vm, "state"), "paused"))) {
        fprintf(stderr, "vmctl: %s is %s; start it first\n", argv[first],
                cli_jstr(vm, "state") ? cli_jstr(vm, "state") : "not running");
        json_decref(vm);
        cli_response_free(&r);
        return CLI_EXIT_REFUSED;
    }
    path = vm_path(cli_jstr(vm, "id"), "/console");
    rc = cli_console_attach(ctx, argv[first], path);
    free(path);
    json_decref(vm);
    cli_response_free(&r);
    return rc;
}

const struct cli_command cli_commands[] = {
    {"host", cmd_host, "", "Show the host: version, KVM flavour, capacity, allocation.", NULL},
    {"list", cmd_list, "[--state S] [--limit N]",
     "List VMs (in a cluster, every member's, with a MEMBER column).",
     "      --state S            only VMs in state S (stopped, starting, running, paused,\n"
     "                           stopping, crashed; unknown: on an offline cluster member)\n"
     "      --limit N            at most the first N, by name (vmctl asks for 500 at a time)\n"},
    {"create", cmd_create,
     "NAME --kernel K [--initrd I] [--cmdline C] [--mode full|pv] [--vcpus N] [--memory MIB] "
     "[--disk PATH[,ro][,LIMIT=N]...|volume=NAME[,ro][,LIMIT=N]...]... "
     "[--nic network=NAME[,ip=IP]|tap=NAME|bridge=NAME[,mac=MAC][,LIMIT=N]...]... "
     "[--autostart] "
     "[--cpu-quota PCT] [--cpu-weight N] [--member NAME] [--ha restart|none]\n"
     "       vmctl create NAME --boot disk --disk PATH[,ro]... [--mode full|pv] ...\n"
     "       vmctl create [NAME] --from-file DEF.json",
     "Define a VM (it starts stopped).",
     "      --kernel PATH        guest kernel (bzImage or ELF64) under an image directory\n"
     "      --initrd PATH        initial ramdisk\n"
     "      --cmdline STR        kernel command line\n"
     "      --boot kernel|disk   load --kernel (default), or start in firmware (SeaBIOS)\n"
     "                           that boots the first disk's bootloader\n"
     "      --mode full|pv       machine mode (default pv)\n"
     "      --vcpus N            vCPUs (default 1)\n"
     "      --memory MIB         memory in MiB (default 256)\n"
     "      --disk PATH[,ro]     a disk file under an image directory, or\n"
     "      --disk volume=NAME[,ro]  a volume (vmctl volume); repeatable\n"
     "      --nic SPEC           network=NAME[,ip=IP] (a managed network, optionally a\n"
     "                           static address), tap=NAME or bridge=NAME (a bridge of\n"
     "                           your own), each optionally ,mac=MAC; repeatable\n"
     "      LIMIT=N              I/O limits of a disk or NIC (each direction): bytes_per_s,\n"
     "                           ops_per_s (packets for a NIC), burst_bytes, burst_ops\n"
     "      --autostart          start with the daemon\n"
     "      --cpu-quota PCT      CPU time cap, percent of one host CPU (default 0: none)\n"
     "      --cpu-weight N       share of contended CPU, 1-10000 (default 100)\n"
     "      --member NAME        in a cluster: the member it lives on (default: the online\n"
     "                           member with the most free memory)\n"
     "      --ha restart|none    in a cluster: restart it on another member when its own\n"
     "                           goes offline (default none)\n"
     "      --from-file FILE     the definition as JSON (- for stdin); flags override it\n"},
    {"show", cmd_show, "NAME", "Show a VM's definition and state.", NULL},
    {"set", cmd_set, "NAME [KEY=VALUE]... [--ha restart|none]",
     "Change a VM (definition only while stopped; name, autostart, CPU limits any time).",
     "  keys: name, mode, boot, vcpus, memory (MiB), kernel, initrd, cmdline, autostart,\n"
     "        cpu_quota_pct, cpu_weight, disks and nics (as JSON arrays); kernel=, initrd=\n"
     "        or cmdline= clears them (boot=disk kernel= switches to disk boot);\n"
     "        ha (restart or none, as --ha)\n"
     "      --ha restart|none    in a cluster: restart it on another member when its own\n"
     "                           goes offline, or not\n"},
    {"limits", cli_cmd_limits, "NAME DEVICE [KEY=N]...",
     "Show or change a disk's or NIC's I/O limits (DEVICE: disk0.., net0..), also while it "
     "runs.",
     "  keys: bytes_per_s, ops_per_s (packets for a NIC, each direction), burst_bytes,\n"
     "        burst_ops; 0 removes a limit, a burst defaults to one second's worth\n"},
    {"start", cmd_start, "NAME", "Start a VM.", NULL},
    {"stop", cmd_stop, "NAME", "Stop a VM hard (power off).", NULL},
    {"shutdown", cmd_shutdown, "NAME [--timeout S]",
     "Press Ctrl-Alt-Del and wait for the VM to stop; the daemon stops it hard after the "
     "timeout.",
     "      --timeout S          seconds the guest gets (default 30); exit 4 if it is not\n"
     "                           stopped 10 s after that\n"},
    {"reboot", cmd_reboot, "NAME", "Reboot a VM.", NULL},
    {"pause", cmd_pause, "NAME", "Pause a running VM.", NULL},
    {"resume", cmd_resume, "NAME", "Resume a paused VM.", NULL},
    {"delete", cmd_delete, "NAME [--force]", "Delete a VM.",
     "      --force              stop it first if it is running\n"},
    {"console", cmd_console, "NAME",
     "Attach to a VM's serial console (Ctrl-] detaches; the VM keeps running).", NULL},
    {"logs", cmd_logs, "NAME [--tail N] [--follow]", "Print a VM's console log.",
     "      --tail N             the last N bytes (default 65536)\n"
     "      --follow             keep printing new output until interrupted\n"},
    {"events", cmd_events, "[--follow]",
     "Print the daemon's events from the oldest one kept (json: one Event object a line).",
     "      --follow             keep printing new events until interrupted\n"},
    {"stats", cmd_stats, "NAME",
     "Show a running VM's uptime, memory, exit counters and each disk's and NIC's traffic.", NULL},
    {"wait", cmd_wait, "NAME --state S[,S...] [--timeout S]",
     "Wait until a VM is in one of the states (exit 4 on timeout).",
     "      --state S            the state(s) to wait for, comma-separated\n"
     "      --timeout S          give up after S seconds (default 60)\n"},
    {"network", cli_cmd_network, "create|list|show|set|delete|leases|forward ...",
     "Manage networks: bridges with NAT, DHCP and DNS, and port forwards to VMs.",
     cli_network_help},
    {"storage", cli_cmd_storage, "",
     "Show the storage pools: size, free and used space, images and volumes.", NULL},
    {"image", cli_cmd_image, "list|show|delete|import ...",
     "Manage images: import (upload or from an import directory), list, delete.", cli_image_help},
    {"volume", cli_cmd_volume, "list|show|create|resize|delete ...",
     "Manage volumes: empty or cloned from an image, attached to VMs by name.", cli_volume_help},
    {"snapshot", cli_cmd_snapshot, "create|list|show|delete ...",
     "Manage a VM's snapshots: its memory and device state at one moment.", cli_snapshot_help},
    {"restore", cli_cmd_restore, "VM SNAPSHOT",
     "Put a VM back to one of its snapshots and run it on from there (not its disks).",
     "  The VM's definition must still match the snapshot's: mode, vCPUs, memory, the disks\n"
     "  and their sizes, the NIC count. A running VM's worker is replaced.\n"},
    {"clone", cli_cmd_clone, "VM/SNAPSHOT NAME [--disk SPEC]... [--autostart]",
     "Create a VM NAME from a snapshot and start it there (its NICs get new MACs).",
     "      --disk PATH[,ro]     the clone's disks instead of the snapshot's, the same count\n"
     "      --disk volume=NAME[,ro]  and sizes; needed when the snapshot has a writable disk\n"
     "                           (two VMs must not write one disk); repeatable\n"
     "      --autostart          start it with the daemon\n"},
    {"migrate", cli_cmd_migrate,
     "VM TARGET [--token T | --token-file F] [--max-downtime MS] [--timeout S] [--insecure] "
     "[--no-wait]",
     "Move a running or paused VM to another vmmd while it runs, and follow it to the end.",
     "  TARGET                   the target daemon: unix:/PATH (its socket, on this host),\n"
     "                           http://HOST:PORT or https://HOST:PORT\n"
     "      --token T            the TARGET daemon's API token (not needed for unix:)\n"
     "      --token-file F       read it from F instead (kept out of ps); here this names the\n"
     "                           target's token: the source's comes from VMMD_TOKEN_FILE or a\n"
     "                           --token-file before the command\n"
     "      --max-downtime MS    the longest the VM may stop for the last round, 1-60000\n"
     "                           (default 300)\n"
     "      --timeout S          give up after S seconds, 1-3600 (default 120); the VM then\n"
     "                           runs on here\n"
     "      --insecure           https: do not verify the target's certificate\n"
     "      --no-wait            print the migration as it started and return at once\n"
     "  Progress goes to stderr, the result line (json: the final Migration) to stdout.\n"
     "  Its disks must be on storage both hosts share, at the same paths or volume names.\n"},
    {"migration", cli_cmd_migration, "VM",
     "Show a VM's migration: state, round, pages left, bytes sent, downtime.", NULL},
    {"cluster", cli_cmd_cluster, "list|remove|join-token ...",
     "Manage the cluster this daemon is a member of: its members and join tokens.",
     cli_cluster_help},
    {"version", cmd_version, "", "Print vmctl's and the daemon's versions.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
