/* Every device of a VM in a snapshot, in one fixed order per mode (devices_state.c). */
#ifndef HV_DEVICES_STATE_H
#define HV_DEVICES_STATE_H

#include "snapshot/snap_buf.h"

struct hv_vm;

/* Device threads stop between events with nothing in flight, then go on. */
void hv__devices_park(struct hv_vm *vm);
void hv__devices_unpark(struct hv_vm *vm);
/* With the vCPUs paused and the devices parked. */
void hv__devices_save(struct hv_vm *vm, struct snap_w *w);
/* Into the VM's freshly created devices; the reader carries the error. */
int hv__devices_load(struct hv_vm *vm, struct snap_r *r);

#endif
