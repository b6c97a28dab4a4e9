/*
 * A VM as clients see it (GET /v1/vms, /v1/vms/{id} and the body of most
 * lifecycle answers): the stored definition with its disks and nics as real
 * arrays, the lifecycle state, and timestamps as RFC 3339 UTC strings with
 * milliseconds. Absent values are null rather than missing keys, so a
 * client can tell "none" from "this daemon does not know the field".
 */
#include "api/api.h"

#include <stdio.h>
#include <time.h>

/* ms since the epoch → "2024-05-01T12:34:56.789Z"; 0 (never) → null. */
json_t *api_timestamp_json(int64_t ms)
{
    struct tm tm;
    char date[32], buf[48];
    int64_t sec = ms / 1000, frac = ms % 1000;
    time_t t;

    if (ms == 0)
        return json_null();
    if (frac < 0) { /* floor division for times before 1970 */
        frac += 1000;
        sec--;
    }
    t = (time_t)sec;
    if (!gmtime_r(&t, &tm) || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return json_null();
    snprintf(buf, sizeof(buf), "%s.%03dZ", date, (int)frac);
    return json_string(buf);
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The stored text of an array; a missing or damaged value shows as [] rather than failing a
 * listing. */
static json_t *array_json(const char *text)
{
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;

    if (json_is_array(v))
        return v;
    json_decref(v);
    return json_array();
}

json_t *api_vm_to_json(const struct db_vm *vm)
{
    json_t *o = json_object();
    int rc = 0;

    if (!o)
        return NULL;
    /* json_object_set_new consumes the value even when it fails (or is NULL). */
    rc |= json_object_set_new(o, "id", json_string(vm->id));
    rc |= json_object_set_new(o, "name", json_string(vm->name));
    rc |= json_object_set_new(o, "mode", json_string(vm->mode));
    rc |= json_object_set_new(o, "vcpus", json_integer(vm->vcpus));
    rc |= json_object_set_new(o, "memory_mib", json_integer((json_int_t)vm->memory_mib));
    rc |= json_object_set_new(o, "boot", json_string(vm->boot[0] ? vm->boot : "kernel"));
    rc |= json_object_set_new(o, "ha", vm->ha[0] ? json_string(vm->ha) : json_null());
    rc |= json_object_set_new(o, "kernel", string_or_null(vm->kernel));
    rc |= json_object_set_new(o, "initrd", string_or_null(vm->initrd));
    rc |= json_object_set_new(o, "cmdline", string_or_null(vm->cmdline));
    rc |= json_object_set_new(o, "disks", array_json(vm->disks_json));
    rc |= json_object_set_new(o, "nics", array_json(vm->nics_json));
    rc |= json_object_set_new(o, "autostart", json_boolean(vm->autostart));
    rc |= json_object_set_new(o, "cpu_quota_pct", json_integer(vm->cpu_quota_pct));
    rc |= json_object_set_new(o, "cpu_weight", json_integer(vm->cpu_weight));
    rc |= json_object_set_new(o, "state", json_string(vm->state));
    rc |= json_object_set_new(o, "state_reason", string_or_null(vm->state_reason));
    rc |= json_object_set_new(o, "created_at", api_timestamp_json(vm->created_at));
    rc |= json_object_set_new(o, "updated_at", api_timestamp_json(vm->updated_at));
    rc |= json_object_set_new(o, "started_at", api_timestamp_json(vm->started_at));
    rc |= json_object_set_new(o, "worker_pid",
                              vm->worker_pid ? json_integer(vm->worker_pid) : json_null());
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}
