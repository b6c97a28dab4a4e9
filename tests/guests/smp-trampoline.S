/*
 * smp: the application-processor start-up path.
 *
 * smp_trampoline_start..smp_trampoline_end is position-independent 16-bit
 * code that the BSP copies to SMP_TRAMPOLINE_BASE (0x8000) before sending
 * SIPIs: it only addresses its own bytes CS-relative, loads the main GDT
 * and jumps into smp_ap_entry32 in the image at 1 MiB. Copying at run time
 * keeps the ELF a single contiguous image at 1 MiB (QEMU's PVH loader
 * copies one block from the lowest to the highest loaded address).
 *
 * From there an AP follows the PVH path's steps (lib/boot.h) onto the BSP's
 * page tables (boot_cr3), takes a stack by atomically bumping smp_ap_next
 * (APs may run concurrently) and calls smp_ap_main().
 */
#include "boot.h"
#include "smp.h"

	.section .text, "ax", @progbits

	.code16
	.globl	smp_trampoline_start, smp_trampoline_end
smp_trampoline_start:
	cli
	cld
	lgdtl	%cs:(trampoline_gdtr - smp_trampoline_start)
	movl	%cr0, %eax
	orl	$CR0_PE, %eax
	movl	%eax, %cr0
	ljmpl	$BOOT_CS32, $smp_ap_entry32
	.p2align 2
trampoline_gdtr:
	.word	BOOT_GDT_LIMIT
	.long	boot_gdt
smp_trampoline_end:

	.code32
smp_ap_entry32:
	movl	$BOOT_DS, %eax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	ENTER_LONG_MODE smp_ap_entry64

	.code64
smp_ap_entry64:
	movl	$1, %eax
	lock xaddl %eax, smp_ap_next(%rip)
	cmpl	$(SMP_MAX_CPUS - 1), %eax
	jae	1f
	/* Stacks grow down: AP i uses the top of smp_ap_stacks[i]. */
	incl	%eax
	shlq	$SMP_AP_STACK_SHIFT, %rax
	leaq	smp_ap_stacks(%rax), %rsp
	xorl	%ebp, %ebp
	call	smp_ap_main
1:	cli
	hlt
	jmp	1b

	.section .note.GNU-stack, "", @progbits
