/*
 * Per-device I/O limits in vmctl's specs (see limitspec.h): the limit keys
 * of `--disk` and `--nic` (bytes_per_s=N, ops_per_s=N, burst_bytes=N,
 * burst_ops=N, the API's own names) and the one-line description `show`
 * and `limits` print. The daemon checks the bounds again and names the field.
 */
#include "limitspec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const limit_keys[] = {"bytes_per_s", "ops_per_s", "burst_bytes", "burst_ops",
                                         NULL};

int cli_limit_option(json_t *device, const char *key, const char *value, const char **why)
{
    json_t *limits;
    char *end;
    unsigned long long n;
    size_t i;

    for (i = 0; limit_keys[i] && strcmp(limit_keys[i], key) != 0; i++) {
    }
    if (!limit_keys[i])
        return 0;
    n = strtoull(value, &end, 10);
    if (!*value || *end || value[0] == '-' || n > (unsigned long long)INT64_MAX) {
        *why = "a limit is a whole number (0: unlimited)";
        return -1;
    }
    limits = json_object_get(device, "limits");
    if (!limits) {
        limits = json_object();
        json_object_set_new(device, "limits", limits);
    }
    if (n)
        json_object_set_new(limits, key, json_integer((json_int_t)n));
    else
        json_object_del(limits, key);
    if (json_object_size(limits) == 0)
        json_object_del(device, "limits");
    return 1;
}

void cli_limits_describe(json_t *device, char *out, size_t size)
{
    json_t *limits = json_object_get(device, "limits");
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; limit_keys[i] && used < size; i++) {
        json_t *v = json_object_get(limits, limit_keys[i]);
        if (json_is_integer(v))
            used += (size_t)snprintf(out + used, size - used, "%s%s=%lld", used ? " " : "",
                                     limit_keys[i], (long long)json_integer_value(v));
    }
    if (!out[0])
        snprintf(out, size, "unlimited");
}
