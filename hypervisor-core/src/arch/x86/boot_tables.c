/*
 * The GDT and identity page tables a 64-bit entry needs: the boot protocol
 * asks for flat __BOOT_CS (0x10) and __BOOT_DS (0x18) and an identity map
 * covering the kernel, boot_params and command line. We map all of the low
 * 4 GiB with 2 MiB pages, so APIC MMIO is reachable too.
 */
#include "boot.h"
#include "layout.h"

#include <errno.h>
#include <string.h>

#define PTE_PRESENT 0x1ull
#define PTE_WRITE   0x2ull
#define PTE_LARGE   0x80ull

int hv_x86_write_boot_tables(const struct hv_guest_mem *mem)
{
    static const uint64_t gdt[] = {
        0,                     /* null */
        0,                     /* unused */
        0x00af9b000000ffffull, /* 0x10: 64-bit code, present, DPL 0 */
        0x00cf93000000ffffull, /* 0x18: flat 4 GiB data, read/write */
    };
    uint64_t *pml4 = hv_gpa_to_hva(mem, X86_PML4_ADDR, 4096);
    uint64_t *pdpt = hv_gpa_to_hva(mem, X86_PDPT_ADDR, 4096);
    uint64_t *pd = hv_gpa_to_hva(mem, X86_PD_ADDR, 4 * 4096);
    void *gdt_dst = hv_gpa_to_hva(mem, X86_GDT_ADDR, sizeof(gdt));

    if (!pml4 || !pdpt || !pd || !gdt_dst)
        return -ENOMEM;
    memcpy(gdt_dst, gdt, sizeof(gdt));
    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    pml4[0] = X86_PDPT_ADDR | PTE_PRESENT | PTE_WRITE;
    for (uint64_t i = 0; i < 4; i++)
        pdpt[i] = (X86_PD_ADDR + i * 4096) | PTE_PRESENT | PTE_WRITE;
    for (uint64_t i = 0; i < 4 * 512; i++)
        pd[i] = (i << 21) | PTE_PRESENT | PTE_WRITE | PTE_LARGE;
    return 0;
}
