/*
 * vmctl's snapshot specs and one-liners (see snapshotspec.h). As with the
 * disk and NIC specs, only the shape of an argument is checked here, so a
 * typo is a usage error (exit 2); names are the daemon's to judge.
 */
#include "snapshotspec.h"
#include "output.h"

#include <stdio.h>
#include <string.h>

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? (long long)json_number_value(v) : 0;
}

bool cli_snapshot_ref_valid(const char *ref, const char **why)
{
    const char *slash = strchr(ref, '/');

    *why = NULL;
    if (!slash)
        *why = "it wants VM/SNAPSHOT, with a slash";
    else if (slash == ref)
        *why = "the VM's name is empty";
    else if (!slash[1])
        *why = "the snapshot's name is empty";
    else if (strchr(slash + 1, '/'))
        *why = "one slash only: VM/SNAPSHOT";
    return *why == NULL;
}

json_t *cli_clone_body(const char *name, const char *ref, json_t *disks, bool autostart)
{
    json_t *body = json_pack("{s:s, s:s}", "name", name, "from_snapshot", ref);

    if (!body) {
        json_decref(disks);
        return NULL;
    }
    if (autostart)
        json_object_set_new(body, "autostart", json_true());
    /* No disks given: the daemon uses the snapshot's (and refuses a writable one, 409). */
    if (json_array_size(disks) > 0)
        json_object_set_new(body, "disks", disks);
    else
        json_decref(disks);
    return body;
}

void cli_format_pause_ms(double ms, char out[32])
{
    if (ms < 0)
        snprintf(out, 32, "-");
    else if (ms < 10)
        snprintf(out, 32, "%.1f ms", ms);
    else if (ms < 1000)
        snprintf(out, 32, "%.0f ms", ms);
    else
        snprintf(out, 32, "%.2f s", ms / 1000.0);
}

void cli_format_created(const char *rfc3339, char out[32])
{
    /* "YYYY-MM-DDTHH:MM:SS" and then a fraction or a zone: the first 19 characters, T a space. */
    if (!rfc3339) {
        snprintf(out, 32, "-");
        return;
    }
    if (strlen(rfc3339) < 19 || rfc3339[10] != 'T') {
        snprintf(out, 32, "%s", rfc3339);
        return;
    }
    snprintf(out, 32, "%.10s %.8s", rfc3339, rfc3339 + 11);
}

long long cli_snapshot_on_disk(json_t *snapshot)
{
    return num(snapshot, "state_bytes") + num(snapshot, "memory_allocated_bytes");
}

void cli_snapshot_row(json_t *s, struct cli_snapshot_row *row)
{
    json_t *paused = json_object_get(s, "paused_ms");

    snprintf(row->name, sizeof(row->name), "%s", str(s, "name") ? str(s, "name") : "-");
    cli_format_created(str(s, "created_at"), row->created);
    snprintf(row->state, sizeof(row->state), "%s", str(s, "vm_state") ? str(s, "vm_state") : "-");
    if (json_is_number(json_object_get(s, "memory_bytes")))
        cli_format_bytes(num(s, "memory_bytes"), row->memory);
    else if (json_is_number(json_object_get(s, "memory_mib")))
        cli_format_mib(num(s, "memory_mib"), row->memory);
    else
        snprintf(row->memory, sizeof(row->memory), "-");
    cli_format_bytes(cli_snapshot_on_disk(s), row->on_disk);
    cli_format_pause_ms(json_is_number(paused) ? json_number_value(paused) : -1, row->paused);
}

void cli_snapshot_disk_describe(json_t *disk, char *out, size_t size)
{
    const char *ro = json_is_true(json_object_get(disk, "readonly")) ? " (read-only)" : "";
    char bytes[32];

    cli_format_bytes(num(disk, "size_bytes"), bytes);
    if (str(disk, "volume"))
        snprintf(out, size, "volume %s %s%s", str(disk, "volume"), bytes, ro);
    else
        snprintf(out, size, "%s %s%s", str(disk, "path") ? str(disk, "path") : "?", bytes, ro);
}
