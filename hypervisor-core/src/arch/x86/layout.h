/*
 * Where the VMM puts boot structures in guest physical memory. Everything
 * below 1 MiB mirrors what a PC BIOS and boot loader would leave behind.
 */
#ifndef HV_X86_LAYOUT_H
#define HV_X86_LAYOUT_H

#define X86_GDT_ADDR         0x500
#define X86_BOOT_PARAMS_ADDR 0x7000
#define X86_PML4_ADDR        0x9000
#define X86_PDPT_ADDR        0xa000
#define X86_PD_ADDR          0xb000 /* four pages: identity map of 4 GiB in 2 MiB pages */
#define X86_CMDLINE_ADDR     0x20000
#define X86_CMDLINE_MAX      4096
#define X86_EBDA_START       0x9fc00
#define X86_BIOS_START       0xe0000 /* ACPI tables live here, reserved in e820 */
#define X86_ACPI_RSDP_ADDR   0xe0000
#define X86_BIOS_END         0x100000
#define X86_HIGH_LOAD_ADDR   0x100000 /* protected-mode kernel, as boot loaders do */
#define X86_IOAPIC_ADDR      0xfec00000
#define X86_LAPIC_ADDR       0xfee00000
#define X86_TSS_ADDR         0xfffbd000 /* KVM needs three pages for VMX's real-mode TSS */
#define X86_IDENTITY_MAP_ADDR 0xfffbc000

#define X86_BOOT_CS 0x10
#define X86_BOOT_DS 0x18

#endif
