/* Restore, as hv_vm_create() drives it (hv_vm_snapshot and hv_snapshot_inspect are public). */
#ifndef HV_VM_SNAPSHOT_H
#define HV_VM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

struct hv_vm;

/* Guest RAM as a copy-on-write mapping of the snapshot's memory file (exactly size bytes). */
int hv__snapshot_map_memory(struct hv_vm *vm, int mem_fd, uint64_t size, char *err,
                            size_t errlen);
/* After the machine, devices and vCPUs exist: checks the snapshot against them and loads it. */
int hv__snapshot_restore(struct hv_vm *vm, int state_fd, char *err, size_t errlen);

#endif
