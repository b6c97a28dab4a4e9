/*
 * One cgroup per running VM, under a vmmd slice: memory (guest RAM plus the
 * worker's overhead), pids (its threads) and CPU (a quota and a weight from
 * the definition, changeable while it runs). cgroup v2 when its memory, cpu
 * and pids controllers are available; otherwise the v1 hierarchies of those
 * controllers (hosts that still mount them, like these machines); otherwise
 * none, and the host report says why while VMs still run.
 */
#ifndef VMMD_CGROUP_H
#define VMMD_CGROUP_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

enum cgroup_version { CGROUP_NONE, CGROUP_V1, CGROUP_V2 };

enum cgroup_controller { CG_MEMORY, CG_CPU, CG_PIDS, CG_COUNT };

struct cgroup_host {
    enum cgroup_version version;
    /* The slice's directory: v2 one for all controllers, v1 one per controller. */
    char slice[CG_COUNT][PATH_MAX];
    char detail[3 * PATH_MAX]; /* what is used, or why nothing is */
};

struct cgroup_limits {
    uint64_t memory_bytes;  /* 0: no limit */
    unsigned pids;          /* 0: no limit */
    unsigned cpu_quota_pct; /* of one CPU; 0: no quota */
    unsigned cpu_weight;    /* 1..10000, 100 is the default share */
};

/* Room above guest RAM for the worker: its own memory and KVM's per-VM kernel memory. */
#define CGROUP_WORKER_OVERHEAD (96ull << 20)

/*
 * Finds the hierarchies in mountinfo (/proc/self/mountinfo; another file in
 * tests) and creates the slice named slice_name under each. Never fails:
 * h->version says what is usable and h->detail why.
 */
void cgroup_host_init(struct cgroup_host *h, const char *mountinfo, const char *slice_name);

/* The VM's cgroup directory for a controller ("" if none). */
void cgroup_vm_dir(const struct cgroup_host *h, enum cgroup_controller c, const char *vm_id,
                   char out[PATH_MAX]);

/* Creates the VM's cgroup(s) and sets the limits. 0 or -errno with err filled. */
int cgroup_vm_create(const struct cgroup_host *h, const char *vm_id, const struct cgroup_limits *l,
                     char *err, size_t errlen);
int cgroup_vm_set_limits(const struct cgroup_host *h, const char *vm_id,
                         const struct cgroup_limits *l, char *err, size_t errlen);
/* Removes them once the worker is gone (a cgroup with processes stays). */
void cgroup_vm_remove(const struct cgroup_host *h, const char *vm_id);

#endif
