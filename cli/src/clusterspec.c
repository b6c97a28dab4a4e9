/*
 * vmctl's cluster one-liners (see clusterspec.h). Members report their
 * memory in bytes and their last heartbeat as an RFC 3339 time; the table
 * shows both the way `vmctl host` and `vmctl list` show such things.
 */
#include "clusterspec.h"
#include "output.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cli_join_token_ttl(const char *arg, long *ttl_s, const char **why)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 10);
    *why = NULL;
    if (errno || end == arg || *end)
        *why = "it wants whole seconds";
    else if (v < CLI_JOIN_TTL_MIN || v > CLI_JOIN_TTL_MAX)
        *why = "a join token lives 60 to 86400 seconds";
    else
        *ttl_s = v;
    return *why == NULL;
}

json_t *cli_join_token_body(long ttl_s)
{
    return json_pack("{s:I}", "ttl_s", (json_int_t)ttl_s);
}

void cli_cluster_summary(json_t *c, char *out, size_t size)
{
    const char *name = cli_jstr(c, "name"), *member = cli_jstr(c, "member");
    const char *detail = cli_jstr(c, "detail");
    int n;

    if (!json_is_true(json_object_get(c, "enabled"))) {
        snprintf(out, size, "not in a cluster: this vmmd runs stand-alone");
        return;
    }
    n = snprintf(out, size, "cluster %s, member %s, lease %lld s: ", name ? name : "?",
                 member ? member : "?", cli_jint(c, "lease_ttl_s"));
    if (n < 0 || (size_t)n >= size)
        return;
    if (json_is_false(json_object_get(c, "writable")))
        snprintf(out + n, size - n, "READ-ONLY: %s",
                 detail ? detail : "the cluster store is out of reach");
    else
        snprintf(out + n, size - n, "writable");
}

void cli_cluster_row(json_t *m, time_t now, struct cli_cluster_row *row)
{
    json_t *alloc = json_object_get(m, "allocation"), *cap = json_object_get(m, "capacity");
    const char *name = cli_jstr(m, "name"), *state = cli_jstr(m, "state");
    const char *address = cli_jstr(m, "address");
    char used[32], total[32], ago[32];
    time_t beat;

    snprintf(row->name, sizeof(row->name), "%s", name ? name : "-");
    snprintf(row->state, sizeof(row->state), "%s", state ? state : "-");
    snprintf(row->address, sizeof(row->address), "%s", address ? address : "-");
    /* A member that never reported its load (or whose record lost it) shows "-", not 0. */
    if (json_is_object(alloc))
        snprintf(row->vms, sizeof(row->vms), "%lld (%lld running)", cli_jint(alloc, "vms"),
                 cli_jint(alloc, "vms_running"));
    else
        snprintf(row->vms, sizeof(row->vms), "-");
    if (json_is_number(json_object_get(cap, "memory_bytes"))) {
        /* An offline member's allocation may be gone while its capacity is still known. */
        if (json_is_object(alloc))
            cli_format_bytes(cli_jint(alloc, "memory_bytes"), used);
        else
            snprintf(used, sizeof(used), "-");
        cli_format_bytes(cli_jint(cap, "memory_bytes"), total);
        snprintf(row->memory, sizeof(row->memory), "%s of %s", used, total);
    } else {
        snprintf(row->memory, sizeof(row->memory), "-");
    }
    if (cli_parse_time(cli_jstr(m, "last_heartbeat"), &beat)) {
        snprintf(row->heartbeat, sizeof(row->heartbeat), "-");
        return;
    }
    /* A member's clock a little ahead of ours is not a heartbeat from the future. */
    cli_format_duration(difftime(now, beat) > 0 ? difftime(now, beat) : 0, ago);
    snprintf(row->heartbeat, sizeof(row->heartbeat), "%s ago", ago);
}

json_t *cli_ha_value(const char *arg)
{
    if (strcmp(arg, "restart") == 0)
        return json_string("restart");
    if (strcmp(arg, "none") == 0)
        return json_null();
    return NULL;
}

static void cell(char *out, size_t size, json_t *obj, const char *key)
{
    const char *v = cli_jstr(obj, key);

    snprintf(out, size, "%s", v ? v : "-");
}

void cli_evacuation_row(json_t *vm, struct cli_evacuation_row *row)
{
    cell(row->name, sizeof(row->name), vm, "name");
    cell(row->state, sizeof(row->state), vm, "state");
    cell(row->action, sizeof(row->action), vm, "action");
    cell(row->target, sizeof(row->target), vm, "target");
}

enum cli_evac_event cli_evacuation_event(const char *member, const char *type, json_t *data,
                                         char *line, size_t size, long long *failed)
{
    const char *of = cli_jstr(data, "member"), *vm = cli_jstr(data, "vm");

    /* Every member's events come through; this evacuation's name the member. */
    if (!of || strcmp(of, member) != 0)
        return CLI_EVAC_OTHER;
    if (strcmp(type, "cluster.evacuation_done") == 0) {
        *failed = cli_jint(data, "failed");
        snprintf(line, size, "evacuated %s: %lld moved, %lld failed", member,
                 cli_jint(data, "moved"), *failed);
        return CLI_EVAC_DONE;
    }
    if (strcmp(type, "vm.migrated") == 0) {
        snprintf(line, size, "  %s: migrated to %s", vm ? vm : "?",
                 cli_jstr(data, "target") ? cli_jstr(data, "target") : "another member");
        return CLI_EVAC_PROGRESS;
    }
    if (strcmp(type, "vm.migration_failed") == 0) {
        snprintf(line, size, "  %s: migration failed: %s", vm ? vm : "?",
                 cli_jstr(data, "error") ? cli_jstr(data, "error") : "no reason given");
        return CLI_EVAC_PROGRESS;
    }
    return CLI_EVAC_OTHER;
}
