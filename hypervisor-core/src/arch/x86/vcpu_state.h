/*
 * A vCPU's complete KVM state, saved into and restored from a snapshot
 * section ('CPU '): CPUID, MP state, registers, special registers,
 * XSAVE (or FPU), XCRs, debug registers, LAPIC, every MSR the host reports
 * as saveable, pending events and the TSC frequency.
 */
#ifndef HV_X86_VCPU_STATE_H
#define HV_X86_VCPU_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "snapshot/snap_buf.h"

/* The vCPU must not be in KVM_RUN (paused, its pending I/O completed). */
int hv_x86_vcpu_save(int kvm_fd, int vcpu_fd, unsigned index, struct snap_w *w, char *err,
                     size_t errlen);

struct hv_x86_vcpu_state; /* a section read and checked, not yet applied */

/* Reads one vCPU section: no ioctl yet, so a bad file changes nothing. */
int hv_x86_vcpu_state_read(struct snap_r *r, unsigned index, struct hv_x86_vcpu_state **out);
/* Applies it, in the order KVM needs (CPUID first, MSRs after the LAPIC, events last). */
int hv_x86_vcpu_state_apply(const struct hv_x86_vcpu_state *s, int vcpu_fd, char *err,
                            size_t errlen);
void hv_x86_vcpu_state_free(struct hv_x86_vcpu_state *s);

/* Moves a read state's TSC (and nothing else) on by NS nanoseconds of its own frequency. */
void hv_x86_vcpu_state_advance_tsc(struct hv_x86_vcpu_state *s, uint64_t ns);
/* TSC + the ticks of NS nanoseconds at KHZ, saturating instead of wrapping. */
uint64_t hv_x86_tsc_advanced(uint64_t tsc, uint32_t khz, uint64_t ns);

#endif
