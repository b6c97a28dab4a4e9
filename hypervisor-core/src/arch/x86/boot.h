/* Loading a kernel into guest RAM and describing the machine to it (x86). */
#ifndef HV_X86_BOOT_H
#define HV_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>
#include <asm/bootparam.h>

#include "guest_mem.h"

struct hv_x86_boot {
    uint64_t entry;       /* 64-bit entry point */
    uint64_t boot_params; /* guest physical address passed in RSI */
};

/* Fills an e820 map for a guest of mem_size bytes; returns the number of entries. */
unsigned hv_x86_e820_build(uint64_t mem_size, struct boot_e820_entry *out, unsigned max);

/*
 * Loads a bzImage (boot protocol 2.06+, 64-bit entry) or an ELF64 image,
 * the optional initrd and the command line, and writes boot_params. A file
 * descriptor >= 0 is read instead of opening its path (the caller keeps it).
 * On failure returns a negative errno and one line of text in err.
 */
int hv_x86_load_kernel(const struct hv_guest_mem *mem, const char *kernel, int kernel_fd,
                       const char *initrd, int initrd_fd, const char *cmdline,
                       struct hv_x86_boot *out, char *err, size_t errlen);

/* Same, from images already in memory (unit tests, and the file-based variant). */
int hv_x86_load_kernel_image(const struct hv_guest_mem *mem, const uint8_t *image, size_t size,
                             const uint8_t *initrd, size_t initrd_size, const char *cmdline,
                             struct hv_x86_boot *out, char *err, size_t errlen);

/* Writes the RSDP, XSDT, FADT, FACS, DSDT and MADT for nr_vcpus CPUs. */
int hv_x86_acpi_build(const struct hv_guest_mem *mem, unsigned nr_vcpus);

/* The DSDT's AML body (after the table header); returns its length, 0 if cap is too small. */
size_t hv_x86_dsdt_aml(uint8_t *buf, size_t cap);

/* Writes the GDT and the identity page tables the 64-bit entry expects. */
int hv_x86_write_boot_tables(const struct hv_guest_mem *mem);

#endif
