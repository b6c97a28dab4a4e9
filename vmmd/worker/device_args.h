/*
 * The disk and NIC flags of `vmmd run` ("PATH[,ro]", "tap=NAME|bridge=NAME[,mac=MAC]", both
 * with optional I/O limits ",bytes_per_s=N,ops_per_s=N,burst_bytes=N,burst_ops=N"),
 * shared by the worker's flag parsing and the daemon, which builds them.
 */
#ifndef VMMD_DEVICE_ARGS_H
#define VMMD_DEVICE_ARGS_H

#include <stddef.h>

#include "hv/hv.h"

/* The strings in out point into buf, which must stay alive; one line in err on failure. */
int vmmd_parse_disk_arg(char *buf, struct hv_disk_config *out, char *err, size_t errlen);
int vmmd_parse_nic_arg(char *buf, struct hv_nic_config *out, char *err, size_t errlen);
/* One I/O limit key=value into l: 1 done, 0 not a limit key, -EINVAL bad or out of bounds. */
int vmmd_parse_limit_opt(const char *key, const char *val, struct hv_io_limits *l);

#endif
