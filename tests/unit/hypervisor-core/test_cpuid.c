/* CPUID filtering: full hides every hypervisor trace, pv exposes KVM's leaves. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/cpu.h"

/* A KVM_GET_SUPPORTED_CPUID answer shaped like this host's. */
static struct kvm_cpuid2 *fake_supported(void)
{
    static const struct kvm_cpuid_entry2 entries[] = {
        {.function = 0, .eax = 0xd, .ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69},
        {.function = 1, .eax = 0x806f8, .ebx = 0x00010800, .ecx = 0xf6fa3203, .edx = 0x0f8bfbff},
        {.function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 1,
         .ebx = 1, .ecx = 0x100, .edx = 0},
        {.function = 0xb, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 4,
         .ebx = 2, .ecx = 0x201, .edx = 0},
        {.function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b, .ecx = 0x564b4d56,
         .edx = 0x4d},
        {.function = 0x40000001, .eax = 0x01007efb},
        {.function = 0x40000100, .eax = 0x1},
        {.function = 0x80000000, .eax = 0x80000008},
    };
    size_t n = sizeof(entries) / sizeof(entries[0]);
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(entries[0]));

    c->nent = (uint32_t)n;
    memcpy(c->entries, entries, sizeof(entries));
    return c;
}

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
    for (uint32_t i = 0; i < c->nent; i++)
        if (c->entries[i].function == fn && c->entries[i].index == idx)
            return &c->entries[i];
    return NULL;
}

static void test_full_hides_hypervisor(void **state)
{
    struct kvm_cpuid2 *sup = fake_supported();
    struct kvm_cpuid2 *c = hv_x86_cpuid_for_vcpu(sup, HV_MODE_FULL, 0);

    (void)state;
    assert_non_null(c);
    assert_int_equal(find(c, 1, 0)->ecx & CPUID_HYPERVISOR_BIT, 0);
    for (uint32_t i = 0; i < c->nent; i++)
        assert_false(c->entries[i].function >= 0x40000000 && c->entries[i].function <= 0x4fffffff);
    /* Everything else survives. */
    assert_non_null(find(c, 0, 0));
    assert_non_null(find(c, 0x80000000, 0));
    assert_int_equal(c->nent, sup->nent - 3);
    free(c);
    free(sup);
}

static void test_pv_exposes_kvm(void **state)
{
    struct kvm_cpuid2 *sup = fake_supported();
    struct kvm_cpuid2 *c = hv_x86_cpuid_for_vcpu(sup, HV_MODE_PV, 0);
    const struct kvm_cpuid_entry2 *sig;
    char name[13];

    (void)state;
    assert_int_equal(find(c, 1, 0)->ecx & CPUID_HYPERVISOR_BIT, CPUID_HYPERVISOR_BIT);
    sig = find(c, 0x40000000, 0);
    assert_non_null(sig);
    memcpy(name, &sig->ebx, 4);
    memcpy(name + 4, &sig->ecx, 4);
    memcpy(name + 8, &sig->edx, 4);
    name[12] = 0;
    assert_string_equal(name, "KVMKVMKVM");
    assert_int_equal(find(c, 0x40000001, 0)->eax, 0x01007efb);
    assert_int_equal(c->nent, sup->nent);
    free(c);
    free(sup);
}

static void test_pv_sets_hypervisor_bit_even_if_host_did_not(void **state)
{
    struct kvm_cpuid2 *sup = fake_supported();
    struct kvm_cpuid2 *c;

    (void)state;
    sup->entries[1].ecx &= ~CPUID_HYPERVISOR_BIT;
    c = hv_x86_cpuid_for_vcpu(sup, HV_MODE_PV, 0);
    assert_true(find(c, 1, 0)->ecx & CPUID_HYPERVISOR_BIT);
    free(c);
    sup->entries[1].ecx |= CPUID_HYPERVISOR_BIT;
    c = hv_x86_cpuid_for_vcpu(sup, HV_MODE_FULL, 0);
    assert_false(find(c, 1, 0)->ecx & CPUID_HYPERVISOR_BIT);
    free(c);
    free(sup);
}

static void test_apic_ids_follow_vcpu_index(void **state)
{
    struct kvm_cpuid2 *sup = fake_supported();

    (void)state;
    for (unsigned v = 0; v < 4; v++) {
        struct kvm_cpuid2 *c = hv_x86_cpuid_for_vcpu(sup, v % 2 ? HV_MODE_PV : HV_MODE_FULL, v);
        assert_int_equal(find(c, 1, 0)->ebx >> 24, v);
        assert_int_equal(find(c, 1, 0)->ebx & 0xffffff, 0x010800); /* rest untouched */
        assert_int_equal(find(c, 0xb, 0)->edx, v);
        assert_int_equal(find(c, 0xb, 1)->edx, v);
        free(c);
    }
    free(sup);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_hides_hypervisor),
        cmocka_unit_test(test_pv_exposes_kvm),
        cmocka_unit_test(test_pv_sets_hypervisor_bit_even_if_host_did_not),
        cmocka_unit_test(test_apic_ids_follow_vcpu_index),
    };
    return cmocka_run_group_tests_name("cpuid", tests, NULL, NULL);
}
