/*
 * CPUID per mode, starting from KVM_GET_SUPPORTED_CPUID so a guest is
 * never promised what this host's KVM cannot do. The mode is the filter:
 * a `full` guest must look like bare metal (no hypervisor bit, no KVM
 * leaves, so it calibrates the TSC against the PIT and uses no PV clock),
 * a `pv` guest sees KVMKVMKVM and the PV feature leaf and uses kvm-clock.
 */
#include "cpu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static struct kvm_cpuid2 *cpuid_alloc(unsigned nent)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(struct kvm_cpuid_entry2));

    if (c)
        c->nent = nent;
    return c;
}

struct kvm_cpuid2 *hv_x86_cpuid_supported(int kvm_fd)
{
    for (unsigned nent = 128; nent <= 4096; nent *= 2) {
        struct kvm_cpuid2 *c = cpuid_alloc(nent);
        if (!c)
            return NULL;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
            return c;
        free(c);
        if (errno != E2BIG)
            return NULL;
    }
    errno = E2BIG;
    return NULL;
}

static bool is_hypervisor_leaf(uint32_t function)
{
    return function >= CPUID_KVM_BASE && function <= CPUID_HV_LEAF_END;
}

struct kvm_cpuid2 *hv_x86_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, enum hv_mode mode,
                                         unsigned vcpu_index)
{
    struct kvm_cpuid2 *out = cpuid_alloc(supported->nent);
    unsigned n = 0;

    if (!out)
        return NULL;
    for (unsigned i = 0; i < supported->nent; i++) {
        struct kvm_cpuid_entry2 e = supported->entries[i];

        if (mode == HV_MODE_FULL && is_hypervisor_leaf(e.function))
            continue;
        switch (e.function) {
        case 1:
            e.ebx = (e.ebx & 0x00ffffffu) | (vcpu_index << 24); /* initial APIC ID */
            if (mode == HV_MODE_FULL)
                e.ecx &= ~CPUID_HYPERVISOR_BIT;
            else
                e.ecx |= CPUID_HYPERVISOR_BIT;
            break;
        case 0xb:
        case 0x1f:
            e.edx = vcpu_index; /* x2APIC ID */
            break;
        }
        out->entries[n++] = e;
    }
    out->nent = n;
    return out;
}
