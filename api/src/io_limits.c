/*
 * The "limits" object of a disk or NIC in a VM definition:
 * {"bytes_per_s": N, "ops_per_s": N, "burst_bytes": N, "burst_ops": N}, every
 * key optional, 0 or absent meaning unlimited (a burst: one second's worth).
 * Stored normalised: only the keys that are not 0, and no "limits" at all
 * when none is set, so two definitions that limit the same way compare equal.
 * The bounds are libhvcore's (HV_IO_LIMIT_MAX_*); the worker checks again.
 */
#include "api_internal.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *key;
    json_int_t max;
} limit_keys[] = {
    {"bytes_per_s", API_MAX_BYTES_PER_S},
    {"ops_per_s", API_MAX_OPS_PER_S},
    {"burst_bytes", API_MAX_BURST_BYTES},
    {"burst_ops", API_MAX_BURST_OPS},
};
#define NR_LIMIT_KEYS (sizeof(limit_keys) / sizeof(limit_keys[0]))

static const char *const limits_allowed[] = {"bytes_per_s", "ops_per_s", "burst_bytes", "burst_ops",
                                             NULL};

const char *api__io_limits_unknown_key(json_t *device)
{
    json_t *limits = json_object_get(device, "limits");

    return json_is_object(limits) ? api__unknown_key(limits, limits_allowed) : NULL;
}

int api__io_limits_build(json_t *device, const char *array, size_t index, json_t *norm,
                         struct api_error *err)
{
    json_t *limits = json_object_get(device, "limits"), *out;
    char field[64]; /* "disks[<size_t>].limits.burst_bytes" */

    if (!limits || json_is_null(limits))
        return 0;
    if (!json_is_object(limits))
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s[%zu].limits: must be an object", array,
                        index);
    out = json_object();
    if (!out)
        return api_fail(err, API_ERR_INTERNAL, "%s: out of memory", array);
    for (size_t k = 0; k < NR_LIMIT_KEYS; k++) {
        json_t *v = json_object_get(limits, limit_keys[k].key);
        uint64_t n;

        if (!v)
            continue;
        snprintf(field, sizeof(field), "%s[%zu].limits.%s", array, index, limit_keys[k].key);
        if (api__get_uint(v, field, 0, limit_keys[k].max, &n, err)) {
            json_decref(out);
            return -1;
        }
        if (n && json_object_set_new(out, limit_keys[k].key, json_integer((json_int_t)n))) {
            json_decref(out);
            return api_fail(err, API_ERR_INTERNAL, "%s: out of memory", array);
        }
    }
    if (json_object_size(out) == 0) {
        json_decref(out);
        return 0;
    }
    if (json_object_set_new(norm, "limits", out))
        return api_fail(err, API_ERR_INTERNAL, "%s: out of memory", array);
    return 0;
}

/* The array with every device's "limits" removed (NULL if it is not an array of objects). */
static json_t *without_limits(const char *devices_json)
{
    json_t *arr = json_loads(devices_json ? devices_json : "[]", 0, NULL), *item;
    size_t i;

    if (!json_is_array(arr)) {
        json_decref(arr);
        return NULL;
    }
    json_array_foreach(arr, i, item) json_object_del(item, "limits");
    return arr;
}

bool api_devices_differ_only_in_limits(const char *stored_json, const char *new_json)
{
    json_t *a = without_limits(stored_json), *b = without_limits(new_json);
    bool same = a && b && json_equal(a, b);

    json_decref(a);
    json_decref(b);
    return same;
}

json_t *api_io_limits_array(const char *devices_json)
{
    json_t *arr = json_loads(devices_json ? devices_json : "[]", 0, NULL), *out = json_array();
    json_t *item;
    size_t i;

    json_array_foreach(arr, i, item)
    {
        json_t *limits = json_object_get(item, "limits");
        json_array_append_new(out, limits ? json_incref(limits) : json_object());
    }
    json_decref(arr);
    return out;
}
