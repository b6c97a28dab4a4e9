/*
 * Boot constants and the protected-to-long-mode switch shared by the guest
 * entry code (lib/entry.S) and the SMP trampoline (smp-trampoline.S).
 *
 * The selectors match the GDT vmmd hands the BSP (CS=0x10, DS=0x18), so code
 * reached through either boot path, or started as an AP, sees the same
 * segment layout.
 */
#ifndef GUEST_BOOT_H
#define GUEST_BOOT_H

#define BOOT_CS32 0x08 /* flat 32-bit code: PVH entry and AP trampoline */
#define BOOT_CS64 0x10 /* 64-bit code */
#define BOOT_DS 0x18   /* flat data */
/* 4 descriptors; a constant because the trampoline's copy of the GDTR
 * cannot subtract symbols defined in another object. */
#define BOOT_GDT_LIMIT (4 * 8 - 1)

#define BOOT_LOAD_ADDR 0x100000

#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20

#ifdef __ASSEMBLER__
/*
 * From 32-bit protected mode with flat segments and our GDT loaded, switch
 * to 64-bit mode and jump to \target. Page tables come from boot_cr3: our
 * own static identity map after a PVH boot, the VMM's after a vmmd boot.
 * Clobbers EAX, ECX, EDX; the upper halves of all GPRs are undefined at
 * \target (SDM 3A 9.8.5), so zero-extend anything carried across.
 */
.macro ENTER_LONG_MODE target
	movl	%cr4, %eax
	orl	$CR4_PAE, %eax
	movl	%eax, %cr4
	movl	boot_cr3, %eax
	movl	%eax, %cr3
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_LME, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$(CR0_PG | CR0_PE), %eax
	movl	%eax, %cr0
	ljmp	$BOOT_CS64, $\target
.endm
#endif

#endif
