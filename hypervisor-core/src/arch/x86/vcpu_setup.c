/*
 * Power-on state of a vCPU. Every vCPU gets its CPUID and a local APIC in
 * virtual-wire mode (LINT0 ExtINT, LINT1 NMI), as a BIOS leaves it, since
 * Linux expects PIC interrupts to reach the BSP before it sets up the
 * IOAPIC. The BSP starts in 64-bit mode at the kernel's entry (or, with
 * firmware, where a PC starts: the reset vector); the APs stay
 * in wait-for-SIPI, as on real hardware, and the guest starts them.
 */
#include "cpu.h"
#include "layout.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI    (4u << 8)
#define APIC_MODE_EXTINT (7u << 8)

#define CR0_PE 0x1ull
#define CR0_ET 0x10ull
#define CR0_NE 0x20ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

static int setup_lapic(int vcpu_fd)
{
    struct kvm_lapic_state lapic;
    uint32_t v;

    if (ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic) < 0)
        return -errno;
    memcpy(&v, &lapic.regs[APIC_LVT_LINT0], 4);
    v = (v & ~0x700u) | APIC_MODE_EXTINT;
    memcpy(&lapic.regs[APIC_LVT_LINT0], &v, 4);
    memcpy(&v, &lapic.regs[APIC_LVT_LINT1], 4);
    v = (v & ~0x700u) | APIC_MODE_NMI;
    memcpy(&lapic.regs[APIC_LVT_LINT1], &v, 4);
    if (ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic) < 0)
        return -errno;
    return 0;
}

static int setup_fpu(int vcpu_fd)
{
    struct kvm_fpu fpu;

    memset(&fpu, 0, sizeof(fpu));
    fpu.fcw = 0x37f; /* the x87 state FNINIT leaves */
    fpu.mxcsr = 0x1f80;
    return ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

static void flat_segment(struct kvm_segment *s, uint16_t selector, uint8_t type, bool code)
{
    memset(s, 0, sizeof(*s));
    s->base = 0;
    s->limit = 0xffffffff;
    s->selector = selector;
    s->type = type;
    s->present = 1;
    s->s = 1;
    s->g = 1;
    if (code)
        s->l = 1; /* 64-bit code: D must be 0 */
    else
        s->db = 1;
}

static int setup_long_mode(int vcpu_fd, const struct hv_x86_boot *boot)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs;

    if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
        return -errno;
    flat_segment(&sregs.cs, X86_BOOT_CS, 0xb, true); /* execute/read, accessed */
    flat_segment(&sregs.ds, X86_BOOT_DS, 0x3, false); /* read/write, accessed */
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    sregs.gdt.base = X86_GDT_ADDR;
    sregs.gdt.limit = 4 * 8 - 1;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    memset(&sregs.tr, 0, sizeof(sregs.tr));
    sregs.tr.limit = 0x67;
    sregs.tr.type = 0xb; /* busy 64-bit TSS */
    sregs.tr.present = 1;
    sregs.cr3 = X86_PML4_ADDR;
    sregs.cr4 = CR4_PAE;
    sregs.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
    sregs.efer = EFER_LME | EFER_LMA;
    if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
        return -errno;

    memset(&regs, 0, sizeof(regs));
    regs.rflags = 0x2; /* reserved bit; interrupts off */
    regs.rip = boot->entry;
    regs.rsi = boot->boot_params;
    if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
        return -errno;
    return 0;
}

int hv_x86_vcpu_setup(int vcpu_fd, const struct kvm_cpuid2 *cpuid, bool is_bsp,
                      const struct hv_x86_boot *boot)
{
    int rc;

    if (ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) < 0)
        return -errno;
    if ((rc = setup_lapic(vcpu_fd)) || (rc = setup_fpu(vcpu_fd)))
        return rc;
    /* Firmware starts from KVM's power-on state: real mode at F000:FFF0, the reset vector. */
    return is_bsp && !boot->firmware ? setup_long_mode(vcpu_fd, boot) : 0;
}
