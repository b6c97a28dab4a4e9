/*
 * Per-device I/O limits in vmctl's specs (limitspec.c): the limit keys of
 * --disk and --nic, and their one-line description. Pure functions over
 * jansson values, tested in tests/unit/cli.
 */
#ifndef VMCTL_LIMITSPEC_H
#define VMCTL_LIMITSPEC_H

#include <jansson.h>
#include <stddef.h>

/*
 * KEY=VALUE into device's "limits" when KEY is bytes_per_s, ops_per_s, burst_bytes or
 * burst_ops (0 removes it; no limit left removes "limits"). 1 done, 0 not a limit key,
 * -1 a bad number (*why says so).
 */
int cli_limit_option(json_t *device, const char *key, const char *value, const char **why);
/* "bytes_per_s=N ops_per_s=N" of a disk or NIC, "unlimited" without limits. */
void cli_limits_describe(json_t *device, char *out, size_t size);

#endif
