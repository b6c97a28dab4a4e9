/* Parsing of --disk and --nic values: comma-separated, the first part positional for disks. */
#include "device_args.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

int vmmd_parse_disk_arg(char *buf, struct hv_disk_config *out, char *err, size_t errlen)
{
    char *opt = strchr(buf, ',');

    *out = (struct hv_disk_config){.path = buf};
    if (opt)
        *opt++ = '\0';
    if (!*buf) {
        snprintf(err, errlen, "--disk needs a path");
        return -EINVAL;
    }
    if (opt && strcmp(opt, "ro") == 0) {
        out->readonly = true;
    } else if (opt) {
        snprintf(err, errlen, "--disk %s: unknown option '%s' (only 'ro')", buf, opt);
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
