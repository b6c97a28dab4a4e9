/* The virtual CPU a mode promises (CPUID) and its state at power-on (x86). */
#ifndef HV_X86_CPU_H
#define HV_X86_CPU_H

#include <stdbool.h>
#include <linux/kvm.h>

#include "hv/hv.h"
#include "boot.h"

#define CPUID_HYPERVISOR_BIT (1u << 31) /* leaf 1 ECX */
#define CPUID_KVM_BASE       0x40000000u
#define CPUID_HV_LEAF_END    0x4fffffffu

/* What KVM can offer on this host; free() the result. NULL on failure (errno set). */
struct kvm_cpuid2 *hv_x86_cpuid_supported(int kvm_fd);

/*
 * The CPUID table of one vCPU, derived from what KVM supports:
 * full hides the hypervisor bit and every 0x4000_0000 leaf;
 * pv sets the hypervisor bit and keeps the KVM signature and PV features.
 * APIC IDs are the vCPU index. free() the result.
 */
struct kvm_cpuid2 *hv_x86_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, enum hv_mode mode,
                                         unsigned vcpu_index);

/* CPUID, LAPIC virtual-wire setup, FPU; for the BSP also long mode at the kernel's entry. */
int hv_x86_vcpu_setup(int vcpu_fd, const struct kvm_cpuid2 *cpuid, bool is_bsp,
                      const struct hv_x86_boot *boot);

#endif
