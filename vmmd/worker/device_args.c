/* Parsing of --disk and --nic values: comma-separated, the first part positional for disks. */
#include "device_args.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *key;
    size_t offset;
} limit_keys[] = {
    {"bytes_per_s", offsetof(struct hv_io_limits, bytes_per_s)},
    {"ops_per_s", offsetof(struct hv_io_limits, ops_per_s)},
    {"burst_bytes", offsetof(struct hv_io_limits, burst_bytes)},
    {"burst_ops", offsetof(struct hv_io_limits, burst_ops)},
};

int vmmd_parse_limit_opt(const char *key, const char *val, struct hv_io_limits *l)
{
    for (size_t i = 0; i < sizeof(limit_keys) / sizeof(limit_keys[0]); i++) {
        unsigned long long v;
        char *end;

        if (strcmp(key, limit_keys[i].key) != 0)
            continue;
        errno = 0;
        v = strtoull(val, &end, 10);
        if (errno || end == val || *end || val[0] == '-')
            return -EINVAL;
        *(uint64_t *)((char *)l + limit_keys[i].offset) = v;
        return hv_io_limits_valid(l) ? 1 : -EINVAL;
    }
    return 0;
}

static int limit_opt(char *kv, struct hv_io_limits *l, const char *flag, char *err, size_t errlen)
{
    char *val = strchr(kv, '=');
    int rc;

    if (!val)
        return 0;
    *val = '\0';
    rc = vmmd_parse_limit_opt(kv, val + 1, l);
    if (rc < 0)
        snprintf(err, errlen, "%s: %s=%s is not a number within bounds", flag, kv, val + 1);
    *val = '=';
    return rc;
}

int vmmd_parse_disk_arg(char *buf, struct hv_disk_config *out, char *err, size_t errlen)
{
    char *opts = strchr(buf, ','), *save = NULL;
    int rc;

    *out = (struct hv_disk_config){.path = buf};
    if (opts)
        *opts++ = '\0';
    if (!*buf) {
        snprintf(err, errlen, "--disk needs a path");
        return -EINVAL;
    }
    for (char *o = opts ? strtok_r(opts, ",", &save) : NULL; o; o = strtok_r(NULL, ",", &save)) {
        char *end;
        long fd;

        if (strcmp(o, "ro") == 0) {
            out->readonly = true;
            continue;
        }
        if ((rc = limit_opt(o, &out->limits, "--disk", err, errlen)) < 0)
            return rc;
        if (rc)
            continue;
        if (strncmp(o, "fd=", 3) == 0) {
            errno = 0;
            fd = strtol(o + 3, &end, 10);
            if (errno || end == o + 3 || *end || fd < 3 || fd > INT_MAX) {
                snprintf(err, errlen, "--disk %s: fd= needs a descriptor number from 3", buf);
                return -EINVAL;
            }
            out->has_fd = true;
            out->fd = (int)fd;
            continue;
        }
        snprintf(err, errlen,
                 "--disk %s: unknown option '%s' (ro, fd=N, bytes_per_s, ops_per_s, burst_bytes, "
                 "burst_ops)",
                 buf, o);
        return -EINVAL;
    }
    return 0;
}

int vmmd_parse_nic_arg(char *buf, struct hv_nic_config *out, char *err, size_t errlen)
{
    char *save = NULL;

    *out = (struct hv_nic_config){0};
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *val = strchr(kv, '=');
        int rc = limit_opt(kv, &out->limits, "--nic", err, errlen);

        if (rc < 0)
            return rc;
        if (rc)
            continue;
        if (!val) {
            snprintf(err, errlen, "--nic: '%s' is not key=value", kv);
            return -EINVAL;
        }
        *val++ = '\0';
        if (strcmp(kv, "tap") == 0 || strcmp(kv, "bridge") == 0) {
            if (!*val || strlen(val) >= IFNAMSIZ || strchr(val, '/') || strchr(val, '%')) {
                snprintf(err, errlen, "--nic: '%s' is not a valid interface name", val);
                return -EINVAL;
            }
            *(kv[0] == 't' ? &out->tap : &out->bridge) = val;
        } else if (strcmp(kv, "mac") == 0) {
            if (hv_mac_parse(val, out->mac)) {
                snprintf(err, errlen, "--nic: '%s' is not a unicast MAC address like 52:54:00:12:34:56",
                         val);
                return -EINVAL;
            }
            out->mac_set = true;
        } else {
            snprintf(err, errlen,
                     "--nic: unknown key '%s' (tap, bridge, mac, bytes_per_s, ops_per_s, "
                     "burst_bytes, burst_ops)",
                     kv);
            return -EINVAL;
        }
    }
    if (!out->tap == !out->bridge) {
        snprintf(err, errlen, "--nic needs exactly one of tap=NAME and bridge=NAME");
        return -EINVAL;
    }
    return 0;
}
