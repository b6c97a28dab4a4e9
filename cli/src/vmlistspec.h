/*
 * The table `vmctl list` prints, built from the VMs the API answered with:
 * pure over jansson values and the current time, so tests/unit/cli tests it
 * without a daemon. In cluster mode (issue 16) each VM carries the member it
 * lives on, and the table gains a MEMBER column; a stand-alone daemon's
 * answer has no "member" and the table stays as it always was.
 */
#ifndef VMCTL_VMLISTSPEC_H
#define VMCTL_VMLISTSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "output.h"

/* A running or paused VM's uptime at now ("3h12m"); "-" for other states or no started_at. */
void cli_vm_uptime(json_t *vm, time_t now, char out[32]);

/* Whether any VM of the array has a "member" (a string): the answer of a cluster member. */
bool cli_vms_have_member(json_t *vms);

/*
 * Initialises t and fills it with a row per VM: NAME STATE [MEMBER] MODE VCPUS MEMORY UPTIME
 * AUTOSTART ID, MEMBER only when cli_vms_have_member(). The STATE column is coloured. The caller
 * prints and frees t. Returns 0 or -ENOMEM.
 */
int cli_vm_list_table(json_t *vms, time_t now, struct cli_table *t);

#endif
