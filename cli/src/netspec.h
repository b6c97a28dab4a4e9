/*
 * The network parts of vmctl that need no daemon: parsing `--nic` specs and
 * forward targets, and the one-line descriptions of NICs and port forwards
 * that `show`, `network show` and `network forward` print. Pure functions
 * over jansson values, so tests/unit/cli tests them directly.
 */
#ifndef VMCTL_NETSPEC_H
#define VMCTL_NETSPEC_H

#include <jansson.h>
#include <stddef.h>

/*
 * "network=NAME[,ip=IP]", "tap=NAME" or "bridge=NAME", each optionally with
 * ",mac=MAC", as the API's Nic object. NULL when the spec is malformed, with
 * *why saying how (a static string).
 */
json_t *cli_nic_parse(const char *spec, const char **why);

/*
 * A NIC of a VM definition in one line: "network default ip 10.71.0.10 mac
 * 52:54:00:12:34:56", "bridge br0 mac -", "tap tap0 mac -". lease_ip (may be
 * NULL) is the address a dynamic NIC got from its network's DHCP, printed
 * as "ip 10.71.0.57 (lease)"; a dynamic NIC without one is "ip dhcp".
 */
void cli_nic_describe(json_t *nic, const char *lease_ip, char *out, size_t size);

/*
 * The IP of the lease with this MAC (case-insensitive) in a leases array; without a MAC (the
 * definition did not give one), of the lease the daemon matched to vm_id; or NULL.
 */
const char *cli_lease_ip(json_t *leases, const char *mac, const char *vm_id);

/*
 * "VM" or "VM:PORT", the target of `network forward add`: the VM (id or
 * name) into vm, the port (1-65535, 0 when absent) into *port. Returns 0 or
 * -EINVAL.
 */
int cli_forward_target(const char *spec, char *vm, size_t vm_size, long *port);

/* A port forward in one line: "tcp *:8080 -> web 10.71.0.10:80". */
void cli_forward_describe(json_t *fwd, char *out, size_t size);

#endif
