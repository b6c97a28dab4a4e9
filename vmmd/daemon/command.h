/*
 * Runs a host tool (nft, dnsmasq) to completion from the loop thread: the
 * tools the daemon drives answer in milliseconds, and the change they make
 * must be known to have happened before the HTTP answer goes out.
 */
#ifndef VMMD_COMMAND_H
#define VMMD_COMMAND_H

#include <stddef.h>

/*
 * Runs argv[0] (a path, or a name looked up in PATH) with input (may be
 * NULL) on its stdin and its stdout and stderr collected in out (the last
 * outlen - 1 bytes, NUL-terminated, trailing newlines cut). Waits for that
 * process only: a daemon it leaves behind (dnsmasq) may keep the pipe open.
 * Returns its exit status, 128 + signal when killed, -ETIMEDOUT (then it is
 * killed) after timeout_ms, or -errno when it could not run.
 */
int vmmd_run_command(const char *const argv[], const char *input, char *out, size_t outlen,
                     int timeout_ms);

#endif
