/*
 * The e820 memory map: conventional memory below the EBDA, the BIOS area
 * (where the ACPI tables are) reserved, RAM from 1 MiB up to the PCI hole
 * at 3 GiB, and whatever does not fit below the hole again from 4 GiB.
 */
#include "boot.h"
#include "layout.h"

/* Types from the ACPI/e820 specification. */
#define E820_RAM      1
#define E820_RESERVED 2

static unsigned add(struct boot_e820_entry *out, unsigned n, unsigned max, uint64_t addr,
                    uint64_t size, uint32_t type)
{
    if (n < max && size)
        out[n++] = (struct boot_e820_entry){.addr = addr, .size = size, .type = type};
    return n;
}

unsigned hv_x86_e820_build(uint64_t mem_size, struct boot_e820_entry *out, unsigned max)
{
    uint64_t low_end = mem_size < HV_PCI_HOLE_START ? mem_size : HV_PCI_HOLE_START;
    unsigned n = 0;

    n = add(out, n, max, 0, X86_EBDA_START, E820_RAM);
    n = add(out, n, max, X86_EBDA_START, 0xa0000 - X86_EBDA_START, E820_RESERVED);
    n = add(out, n, max, X86_BIOS_START, X86_BIOS_END - X86_BIOS_START, E820_RESERVED);
    if (low_end > X86_HIGH_LOAD_ADDR)
        n = add(out, n, max, X86_HIGH_LOAD_ADDR, low_end - X86_HIGH_LOAD_ADDR, E820_RAM);
    if (mem_size > low_end)
        n = add(out, n, max, HV_HIGH_MEM_START, mem_size - low_end, E820_RAM);
    return n;
}

/* What QEMU tells firmware in fw_cfg's etc/e820: only where RAM is. The firmware carves
 * out its own areas (EBDA, BIOS, ACPI) in the map it gives the OS. */
unsigned hv_x86_e820_firmware(uint64_t mem_size, struct boot_e820_entry *out, unsigned max)
{
    uint64_t low_end = mem_size < HV_PCI_HOLE_START ? mem_size : HV_PCI_HOLE_START;
    unsigned n = 0;

    n = add(out, n, max, 0, low_end, E820_RAM);
    if (mem_size > low_end)
        n = add(out, n, max, HV_HIGH_MEM_START, mem_size - low_end, E820_RAM);
    return n;
}
