/*
 * Entry points shared by every test guest.
 *
 * Two ways in, one way on:
 *  - _start, the ELF entry (e_entry): vmmd's boot protocol. Already in
 *    64-bit mode on the VMM's identity map of the first 4 GiB, interrupts
 *    off, RSI = Linux boot_params ("zero page"), no stack.
 *  - pvh_start, named by the Xen PVH ELF note: how QEMU's -kernel boots an
 *    ELF. 32-bit protected mode, paging off, EBX = struct hvm_start_info.
 *    We load our own GDT and page tables and switch to long mode.
 * Both continue in boot_common64 with EDI = physical address of the command
 * line (0 if none), clear .bss, take the boot stack and call guest_main().
 */
#include "boot.h"

/* boot_params.hdr.cmd_line_ptr (Linux Documentation/arch/x86/zero-page.rst) */
#define BOOT_PARAMS_CMD_LINE_PTR 0x228
/* struct hvm_start_info (Xen public/arch-x86/hvm/start_info.h) */
#define HVM_START_MAGIC 0x336ec578
#define HVM_START_CMDLINE_PADDR 24
#define XEN_ELFNOTE_PHYS32_ENTRY 18

#define BOOT_STACK_SIZE 16384

/*
 * The PVH note. The descriptor is 8 bytes, as Linux emits it on x86-64:
 * QEMU reads a size_t there for ELF64 files, so a 4-byte value would pick
 * up whatever follows. Alignment 4 (not 8), because QEMU pads the name to
 * the PT_NOTE segment's p_align.
 */
	.section .note.Xen, "a", @note
	.p2align 2
	.long	4			/* namesz: "Xen\0" */
	.long	8			/* descsz */
	.long	XEN_ELFNOTE_PHYS32_ENTRY
	.asciz	"Xen"
	.quad	pvh_start

	.section .text.entry, "ax", @progbits

	.code64
	.globl	_start
_start:
	cli
	cld
	/* APs (smp guest) reuse whatever page tables the BSP runs on. */
	movq	%cr3, %rax
	movq	%rax, boot_cr3(%rip)
	xorl	%edi, %edi
	testq	%rsi, %rsi
	jz	boot_common64
	movl	BOOT_PARAMS_CMD_LINE_PTR(%rsi), %edi
	jmp	boot_common64

	.code32
	.globl	pvh_start
pvh_start:
	cli
	cld
	lgdt	boot_gdtr
	movl	$BOOT_DS, %eax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	xorl	%edi, %edi
	cmpl	$HVM_START_MAGIC, (%ebx)
	jne	1f
	/* A command line above 4 GiB would be outside our map: ignore it. */
	cmpl	$0, HVM_START_CMDLINE_PADDR + 4(%ebx)
	jne	1f
	movl	HVM_START_CMDLINE_PADDR(%ebx), %edi
1:
	ENTER_LONG_MODE pvh_start64

	.code64
pvh_start64:
	movl	%edi, %edi
	/* fall through */

/* EDI = command line physical address or 0 (upper half already zero). */
boot_common64:
	movq	%rdi, %rdx
	/* The loader should have zeroed .bss (p_memsz > p_filesz), but a guest
	 * that relies on it can't tell a VMM bug from its own. Stacks live
	 * outside [__bss_start, __bss_end) and are not cleared. */
	movl	$__bss_start, %edi
	movl	$__bss_end, %ecx
	subl	%edi, %ecx
	xorl	%eax, %eax
	rep stosb
	movq	%rdx, %rdi
	movq	$boot_stack_top, %rsp
	xorl	%ebp, %ebp
	call	guest_main
	/* Returning from guest_main() means success. */
	xorl	%edi, %edi
	call	debug_exit
2:	cli
	hlt
	jmp	2b

	.section .data, "aw", @progbits
	.p2align 3
	.globl	boot_gdt
boot_gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08: 32-bit code, base 0, 4 GiB */
	.quad	0x00af9a000000ffff	/* 0x10: 64-bit code */
	.quad	0x00cf92000000ffff	/* 0x18: data, base 0, 4 GiB */

	.p2align 3
	.globl	boot_gdtr
boot_gdtr:
	.word	BOOT_GDT_LIMIT
	.quad	boot_gdt

	/* CR3 for APs and for the PVH path; _start overwrites it with the VMM's. */
	.p2align 3
	.globl	boot_cr3
boot_cr3:
	.quad	pvh_pml4

/*
 * Identity map of the first 4 GiB with 2 MiB pages, built at link time so
 * the PVH path costs no instructions for it (they are slow under KVM's
 * emulator). The top GiB holds the LAPIC, IOAPIC and PCI holes: mapped
 * uncached (PCD|PWT) as MMIO should be.
 */
#define PTE_P 0x1
#define PTE_W 0x2
#define PTE_PWT 0x8
#define PTE_PCD 0x10
#define PTE_PS 0x80
	.p2align 12
pvh_pml4:
	.quad	pvh_pdpt + PTE_P + PTE_W
	.fill	511, 8, 0
pvh_pdpt:
	.quad	pvh_pd + 0x0000 + PTE_P + PTE_W
	.quad	pvh_pd + 0x1000 + PTE_P + PTE_W
	.quad	pvh_pd + 0x2000 + PTE_P + PTE_W
	.quad	pvh_pd + 0x3000 + PTE_P + PTE_W
	.fill	508, 8, 0
pvh_pd:
	.set	.Lpde, 0
	.rept	2048
	/* GAS comparisons yield -1 for true: the & picks the cache bits. */
	.quad	(.Lpde << 21) | PTE_P | PTE_W | PTE_PS | ((.Lpde >= 1536) & (PTE_PCD | PTE_PWT))
	.set	.Lpde, .Lpde + 1
	.endr

	/* Named .bss.* so it is NOBITS; the linker script keeps it out of the
	 * cleared range. */
	.section .bss.stack, "aw", @nobits
	.p2align 4
	.skip	BOOT_STACK_SIZE
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
