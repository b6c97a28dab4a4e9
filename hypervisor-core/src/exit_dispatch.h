/*
 * What to do with one KVM exit. A pure function over kvm_run-shaped data
 * and the device bus, so it is tested with synthetic exits and no /dev/kvm.
 */
#ifndef HV_EXIT_DISPATCH_H
#define HV_EXIT_DISPATCH_H

#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "bus.h"

struct hv_exit_counters {
    uint64_t exits[HV_EXIT_KIND_COUNT];
    uint64_t writes_ignored;
};

struct hv_exit_result {
    enum hv_stop_reason stop; /* HV_STOP_NONE: keep running */
    char detail[128];
};

/* run points at the vCPU's mapped kvm_run area of run_size bytes. */
void hv_exit_dispatch(struct kvm_run *run, size_t run_size, struct hv_bus *bus,
                      struct hv_exit_counters *counters, struct hv_exit_result *result);

#endif
