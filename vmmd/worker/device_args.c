/* Parsing of --disk and --nic values: comma-separated, the first part positional for disks. */
#include "device_args.h"

#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

int vmmd_parse_disk_arg(char *buf, struct hv_disk_config *out, char *err, size_t errlen)
{
    char *opts = strchr(buf, ','), *save = NULL;

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
        snprintf(err, errlen, "--disk %s: unknown option '%s' (only 'ro' and 'fd=N')", buf, o);
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
            snprintf(err, errlen, "--nic: unknown key '%s' (tap, bridge, mac)", kv);
            return -EINVAL;
        }
    }
    if (!out->tap == !out->bridge) {
        snprintf(err, errlen, "--nic needs exactly one of tap=NAME and bridge=NAME");
        return -EINVAL;
    }
    return 0;
}
