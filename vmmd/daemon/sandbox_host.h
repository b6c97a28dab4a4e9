/*
 * What this host can do to sandbox workers (see vmmd/worker/sandbox.h), and
 * which uid each running VM's worker gets. Probed once at start: the daemon
 * must be root, the kernel must give it the namespaces and seccomp; cgroups
 * are separate (cgroup.h) and a VM runs without them where there are none.
 */
#ifndef VMMD_SANDBOX_HOST_H
#define VMMD_SANDBOX_HOST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cgroup.h"

struct vmmd_config;

struct sandbox_host {
    bool enabled;     /* workers are started with --sandbox-uid */
    bool required;    /* --require-sandbox: no VM starts without it */
    bool namespaces;  /* probed: this process may create the worker's namespaces */
    bool seccomp;     /* probed: the kernel filters system calls */
    char detail[256]; /* why it is off */
    uint32_t uid_base, uid_count;
    struct cgroup_host cgroup;
};

void sandbox_host_init(struct sandbox_host *h, const struct vmmd_config *cfg);
/* For GET /v1/host. */
json_t *sandbox_host_json(const struct sandbox_host *h);

#endif
