/* Names of libhvcore's enums, for logs, stats and command-line flags. */
#include "hv/hv.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

const char *hv_exit_kind_name(enum hv_exit_kind kind)
{
    static const char *const names[] = {
#define HV_X_NAME(name, str) str,
        HV_EXIT_KINDS(HV_X_NAME)
#undef HV_X_NAME
    };

    return (unsigned)kind < HV_EXIT_KIND_COUNT ? names[kind] : "unknown";
}

const char *hv_stop_reason_name(enum hv_stop_reason reason)
{
    switch (reason) {
    case HV_STOP_NONE: return "running";
    case HV_STOP_POWEROFF: return "poweroff";
    case HV_STOP_REBOOT: return "reboot";
    case HV_STOP_CRASH: return "crash";
    case HV_STOP_REQUESTED: return "stopped";
    case HV_STOP_ERROR: return "error";
    }
    return "unknown";
}

const char *hv_mode_name(enum hv_mode mode)
{
    return mode == HV_MODE_FULL ? "full" : mode == HV_MODE_PV ? "pv" : "unknown";
}

int hv_mode_parse(const char *s, enum hv_mode *out)
{
    if (strcmp(s, "full") == 0)
        *out = HV_MODE_FULL;
    else if (strcmp(s, "pv") == 0)
        *out = HV_MODE_PV;
    else
        return -EINVAL;
    return 0;
}

#define DISK_FIELD(f) {#f, offsetof(struct hv_disk_stats, f)}
const struct hv_stat_field hv_disk_stat_fields[] = {
    DISK_FIELD(read_bytes),   DISK_FIELD(write_bytes),      DISK_FIELD(read_ops),
    DISK_FIELD(write_ops),    DISK_FIELD(flush_ops),        DISK_FIELD(errors),
    DISK_FIELD(throttled_ns), DISK_FIELD(throttled_events), {NULL, 0},
};

#define NIC_FIELD(f) {#f, offsetof(struct hv_nic_stats, f)}
const struct hv_stat_field hv_nic_stat_fields[] = {
    NIC_FIELD(rx_bytes),         NIC_FIELD(tx_bytes), NIC_FIELD(rx_packets),
    NIC_FIELD(tx_packets),       NIC_FIELD(drops),    NIC_FIELD(throttled_ns),
    NIC_FIELD(throttled_events), {NULL, 0},
};

int hv_mac_parse(const char *s, uint8_t mac[6])
{
    for (int i = 0; i < 6; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++, s++) {
            char c = *s;
            unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                         : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                         : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                                : 16u;
            if (d > 15)
                return -EINVAL;
            v = v << 4 | d;
        }
        if (*s != (i == 5 ? '\0' : ':'))
            return -EINVAL;
        if (i < 5)
            s++;
        mac[i] = (uint8_t)v;
    }
    return (mac[0] & 1) ? -EINVAL : 0; /* a multicast address cannot be an interface's */
}

bool hv_io_limits_valid(const struct hv_io_limits *l)
{
    return l->bytes_per_s <= HV_IO_LIMIT_MAX_BYTES_PER_S &&
           l->ops_per_s <= HV_IO_LIMIT_MAX_OPS_PER_S &&
           l->burst_bytes <= HV_IO_LIMIT_MAX_BURST_BYTES &&
           l->burst_ops <= HV_IO_LIMIT_MAX_BURST_OPS;
}
