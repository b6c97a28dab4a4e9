/*
 * vCPU state for snapshots. KVM's own structures (kvm_regs, kvm_sregs,
 * kvm_xsave, ...) are stable x86 uapi with fixed layouts, so they travel as
 * bytes of their exact size; everything else is explicit fields. The restore
 * order follows what Firecracker's vCPU code found to work: CPUID, MP state,
 * registers, special registers, XSAVE, XCRs, debug registers, LAPIC, MSRs
 * (the TSC deadline after the TSC), vCPU events last, since setting the
 * registers may clear pending exceptions.
 */
#include "arch/x86/vcpu_state.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#define TAG_CPU SNAP_TAG('C', 'P', 'U', ' ')
#define CPU_STATE_VERSION 1
#define MAX_CPUID_ENTRIES 256
#define MAX_MSRS 1024
#define MSR_IA32_TSC 0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0

struct hv_x86_vcpu_state {
    unsigned index;
    struct kvm_cpuid2 *cpuid;
    struct kvm_mp_state mp_state;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    bool has_xsave, has_xcrs;
    /* struct kvm_xsave's 4 KiB region: the struct itself ends in a flexible array (newer
     * headers), which may not sit inside another struct. */
    uint32_t xsave[sizeof(((struct kvm_xsave *)0)->region) / sizeof(uint32_t)];
    struct kvm_fpu fpu;
    struct kvm_xcrs xcrs;
    struct kvm_debugregs debugregs;
    struct kvm_lapic_state lapic;
    struct kvm_msrs *msrs;
    struct kvm_vcpu_events events;
    uint32_t tsc_khz;
};

static int fail(char *err, size_t errlen, int rc, const char *what, unsigned index)
{
    snprintf(err, errlen, "vCPU %u: %s: %s", index, what, strerror(-rc));
    return rc;
}

/* The MSRs KVM says it can save, with the TSC deadline moved after the TSC. */
static struct kvm_msrs *saveable_msrs(int kvm_fd)
{
    struct kvm_msr_list probe = {.nmsrs = 0}, *list;
    struct kvm_msrs *msrs;
    unsigned n = 0, deadline = 0;
    bool has_deadline = false;

    if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
        return NULL;
    if (probe.nmsrs > MAX_MSRS)
        probe.nmsrs = MAX_MSRS;
    list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
    msrs = calloc(1, sizeof(*msrs) + probe.nmsrs * sizeof(struct kvm_msr_entry));
    if (!list || !msrs)
        goto err;
    list->nmsrs = probe.nmsrs;
    if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0)
        goto err;
    for (unsigned i = 0; i < list->nmsrs && i < probe.nmsrs; i++) {
        if (list->indices[i] == MSR_IA32_TSC_DEADLINE) {
            has_deadline = true;
            deadline = list->indices[i];
            continue;
        }
        msrs->entries[n++].index = list->indices[i];
    }
    if (has_deadline)
        msrs->entries[n++].index = deadline;
    msrs->nmsrs = n;
    free(list);
    return msrs;
err:
    free(list);
    free(msrs);
    return NULL;
}

/* KVM_GET_MSRS stops at the first MSR it cannot read: drop that one and go on. */
static int read_msrs(int vcpu_fd, struct kvm_msrs *msrs)
{
    unsigned done = 0;

    while (done < msrs->nmsrs) {
        struct kvm_msrs *chunk =
            calloc(1, sizeof(*chunk) + (msrs->nmsrs - done) * sizeof(msrs->entries[0]));
        if (!chunk)
            return -ENOMEM;
        chunk->nmsrs = msrs->nmsrs - done;
        memcpy(chunk->entries, &msrs->entries[done], chunk->nmsrs * sizeof(msrs->entries[0]));
        int got = ioctl(vcpu_fd, KVM_GET_MSRS, chunk);
        if (got < 0) {
            free(chunk);
            return -errno;
        }
        memcpy(&msrs->entries[done], chunk->entries, (size_t)got * sizeof(msrs->entries[0]));
        free(chunk);
        done += (unsigned)got;
        if (done < msrs->nmsrs) {
            /* The unreadable one: remove it from the list. */
            memmove(&msrs->entries[done], &msrs->entries[done + 1],
                    (msrs->nmsrs - done - 1) * sizeof(msrs->entries[0]));
            msrs->nmsrs--;
        }
    }
    return 0;
}

int hv_x86_vcpu_save(int kvm_fd, int vcpu_fd, unsigned index, struct snap_w *w, char *err,
                     size_t errlen)
{
    struct hv_x86_vcpu_state s;
    struct kvm_cpuid2 *cpuid;
    int rc = 0;

    memset(&s, 0, sizeof(s));
    cpuid = calloc(1, sizeof(*cpuid) + MAX_CPUID_ENTRIES * sizeof(cpuid->entries[0]));
    s.msrs = saveable_msrs(kvm_fd);
    if (!cpuid || !s.msrs) {
        rc = fail(err, errlen, -ENOMEM, "listing its CPUID and MSRs", index);
        goto out;
    }
    cpuid->nent = MAX_CPUID_ENTRIES;
#define GET(req, arg, what)                                                                        \
    if (ioctl(vcpu_fd, req, arg) < 0) {                                                            \
        rc = fail(err, errlen, -errno, what, index);                                               \
        goto out;                                                                                  \
    }
    GET(KVM_GET_CPUID2, cpuid, "KVM_GET_CPUID2");
    GET(KVM_GET_MP_STATE, &s.mp_state, "KVM_GET_MP_STATE");
    GET(KVM_GET_REGS, &s.regs, "KVM_GET_REGS");
    GET(KVM_GET_SREGS, &s.sregs, "KVM_GET_SREGS");
    s.has_xsave = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0;
    if (s.has_xsave) {
        GET(KVM_GET_XSAVE, (struct kvm_xsave *)s.xsave, "KVM_GET_XSAVE");
    } else {
        GET(KVM_GET_FPU, &s.fpu, "KVM_GET_FPU");
    }
    s.has_xcrs = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
    if (s.has_xcrs)
        GET(KVM_GET_XCRS, &s.xcrs, "KVM_GET_XCRS");
    GET(KVM_GET_DEBUGREGS, &s.debugregs, "KVM_GET_DEBUGREGS");
    GET(KVM_GET_LAPIC, &s.lapic, "KVM_GET_LAPIC");
    if ((rc = read_msrs(vcpu_fd, s.msrs))) {
        fail(err, errlen, rc, "KVM_GET_MSRS", index);
        goto out;
    }
    GET(KVM_GET_VCPU_EVENTS, &s.events, "KVM_GET_VCPU_EVENTS");
#undef GET
    int khz = ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
    s.tsc_khz = khz > 0 ? (uint32_t)khz : 0;

    size_t mark = snap_w_begin(w, TAG_CPU, CPU_STATE_VERSION);
    snap_w_u32(w, index);
    snap_w_u32(w, cpuid->nent);
    snap_w_bytes(w, cpuid->entries, cpuid->nent * sizeof(cpuid->entries[0]));
    snap_w_u32(w, s.mp_state.mp_state);
    snap_w_bytes(w, &s.regs, sizeof(s.regs));
    snap_w_bytes(w, &s.sregs, sizeof(s.sregs));
    snap_w_bool(w, s.has_xsave);
    if (s.has_xsave)
        snap_w_bytes(w, s.xsave, sizeof(s.xsave));
    else
        snap_w_bytes(w, &s.fpu, sizeof(s.fpu));
    snap_w_bool(w, s.has_xcrs);
    if (s.has_xcrs)
        snap_w_bytes(w, &s.xcrs, sizeof(s.xcrs));
    snap_w_bytes(w, &s.debugregs, sizeof(s.debugregs));
    snap_w_bytes(w, &s.lapic, sizeof(s.lapic));
    snap_w_u32(w, s.msrs->nmsrs);
    for (unsigned i = 0; i < s.msrs->nmsrs; i++) {
        snap_w_u32(w, s.msrs->entries[i].index);
        snap_w_u64(w, s.msrs->entries[i].data);
    }
    snap_w_bytes(w, &s.events, sizeof(s.events));
    snap_w_u32(w, s.tsc_khz);
    snap_w_end(w, mark);
out:
    free(cpuid);
    free(s.msrs);
    return rc;
}

void hv_x86_vcpu_state_free(struct hv_x86_vcpu_state *s)
{
    if (!s)
        return;
    free(s->cpuid);
    free(s->msrs);
    free(s);
}

uint64_t hv_x86_tsc_advanced(uint64_t tsc, uint32_t khz, uint64_t ns)
{
    unsigned __int128 ticks = (unsigned __int128)ns * khz / 1000000u;

    return ticks > UINT64_MAX - tsc ? UINT64_MAX : tsc + (uint64_t)ticks;
}

void hv_x86_vcpu_state_advance_tsc(struct hv_x86_vcpu_state *s, uint64_t ns)
{
    for (unsigned i = 0; i < s->msrs->nmsrs; i++)
        if (s->msrs->entries[i].index == MSR_IA32_TSC)
            s->msrs->entries[i].data = hv_x86_tsc_advanced(s->msrs->entries[i].data, s->tsc_khz, ns);
}

int hv_x86_vcpu_state_read(struct snap_r *r, unsigned index, struct hv_x86_vcpu_state **out)
{
    struct hv_x86_vcpu_state *s = calloc(1, sizeof(*s));
    struct snap_r sub;
    uint16_t version;
    uint32_t n;

    *out = NULL;
    if (!s)
        return snap_r_fail(r, -ENOMEM, "out of memory");
    s->index = index;
    if (snap_r_section(r, TAG_CPU, "vCPU", CPU_STATE_VERSION, &sub, &version))
        goto err;
    if (snap_r_u32(&sub) != index && snap_r_ok(&sub))
        snap_r_fail(&sub, -EINVAL, "vCPU sections out of order (expected vCPU %u)", index);
    n = snap_r_u32(&sub);
    if (snap_r_ok(&sub) && (n == 0 || n > MAX_CPUID_ENTRIES))
        snap_r_fail(&sub, -EINVAL, "vCPU %u: %u CPUID entries", index, n);
    if (snap_r_ok(&sub)) {
        s->cpuid = calloc(1, sizeof(*s->cpuid) + n * sizeof(s->cpuid->entries[0]));
        if (!s->cpuid) {
            snap_r_fail(&sub, -ENOMEM, "out of memory");
        } else {
            s->cpuid->nent = n;
            snap_r_bytes(&sub, s->cpuid->entries, n * sizeof(s->cpuid->entries[0]));
        }
    }
    s->mp_state.mp_state = snap_r_below(&sub, KVM_MP_STATE_AP_RESET_HOLD + 1, "mp_state");
    snap_r_bytes(&sub, &s->regs, sizeof(s->regs));
    snap_r_bytes(&sub, &s->sregs, sizeof(s->sregs));
    s->has_xsave = snap_r_bool(&sub);
    if (s->has_xsave)
        snap_r_bytes(&sub, s->xsave, sizeof(s->xsave));
    else
        snap_r_bytes(&sub, &s->fpu, sizeof(s->fpu));
    s->has_xcrs = snap_r_bool(&sub);
    if (s->has_xcrs)
        snap_r_bytes(&sub, &s->xcrs, sizeof(s->xcrs));
    if (snap_r_ok(&sub) && s->has_xcrs && s->xcrs.nr_xcrs > KVM_MAX_XCRS)
        snap_r_fail(&sub, -EINVAL, "vCPU %u: %u XCRs", index, s->xcrs.nr_xcrs);
    snap_r_bytes(&sub, &s->debugregs, sizeof(s->debugregs));
    snap_r_bytes(&sub, &s->lapic, sizeof(s->lapic));
    n = snap_r_u32(&sub);
    if (snap_r_ok(&sub) && n > MAX_MSRS)
        snap_r_fail(&sub, -EINVAL, "vCPU %u: %u MSRs", index, n);
    if (snap_r_ok(&sub)) {
        s->msrs = calloc(1, sizeof(*s->msrs) + n * sizeof(s->msrs->entries[0]));
        if (!s->msrs)
            snap_r_fail(&sub, -ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; snap_r_ok(&sub) && i < n; i++) {
        s->msrs->entries[i].index = snap_r_u32(&sub);
        s->msrs->entries[i].data = snap_r_u64(&sub);
        s->msrs->nmsrs = i + 1;
    }
    snap_r_bytes(&sub, &s->events, sizeof(s->events));
    s->tsc_khz = snap_r_u32(&sub);
    if (snap_r_end(r, &sub))
        goto err;
    *out = s;
    return 0;
err:
    hv_x86_vcpu_state_free(s);
    return r->err;
}

int hv_x86_vcpu_state_apply(const struct hv_x86_vcpu_state *s, int vcpu_fd, char *err,
                            size_t errlen)
{
    unsigned index = s->index;

    if (s->tsc_khz) {
        int cur = ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
        /* The same host gives the same frequency; elsewhere KVM may scale it, or refuse. */
        if (cur > 0 && (uint32_t)cur != s->tsc_khz &&
            ioctl(vcpu_fd, KVM_SET_TSC_KHZ, (unsigned long)s->tsc_khz) < 0)
            return fail(err, errlen, -errno, "KVM_SET_TSC_KHZ", index);
    }
#define SET(req, arg, what)                                                                        \
    if (ioctl(vcpu_fd, req, arg) < 0)                                                              \
        return fail(err, errlen, -errno, what, index);
    SET(KVM_SET_CPUID2, s->cpuid, "KVM_SET_CPUID2");
    SET(KVM_SET_MP_STATE, &s->mp_state, "KVM_SET_MP_STATE");
    SET(KVM_SET_REGS, &s->regs, "KVM_SET_REGS");
    SET(KVM_SET_SREGS, &s->sregs, "KVM_SET_SREGS");
    if (s->has_xsave) {
        SET(KVM_SET_XSAVE, (const struct kvm_xsave *)s->xsave, "KVM_SET_XSAVE");
    } else {
        SET(KVM_SET_FPU, &s->fpu, "KVM_SET_FPU");
    }
    if (s->has_xcrs)
        SET(KVM_SET_XCRS, &s->xcrs, "KVM_SET_XCRS");
    SET(KVM_SET_DEBUGREGS, &s->debugregs, "KVM_SET_DEBUGREGS");
    SET(KVM_SET_LAPIC, &s->lapic, "KVM_SET_LAPIC");
    int set = ioctl(vcpu_fd, KVM_SET_MSRS, s->msrs);
    if (set < 0)
        return fail(err, errlen, -errno, "KVM_SET_MSRS", index);
    if ((uint32_t)set != s->msrs->nmsrs) {
        snprintf(err, errlen, "vCPU %u: KVM refused MSR 0x%x (%d of %u set)", index,
                 s->msrs->entries[set].index, set, s->msrs->nmsrs);
        return -EINVAL;
    }
    SET(KVM_SET_VCPU_EVENTS, &s->events, "KVM_SET_VCPU_EVENTS");
#undef SET
    return 0;
}
