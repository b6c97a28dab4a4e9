/* Loading a kernel into guest RAM and describing the machine to it (x86). */
#ifndef HV_X86_BOOT_H
#define HV_X86_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <asm/bootparam.h>

#include "guest_mem.h"

struct hv_x86_boot {
    bool firmware;        /* start at the reset vector, in real mode, instead */
    uint64_t entry;       /* 64-bit entry point */
    uint64_t boot_params; /* guest physical address passed in RSI */
};

/* Fills an e820 map for a guest of mem_size bytes; returns the number of entries. */
unsigned hv_x86_e820_build(uint64_t mem_size, struct boot_e820_entry *out, unsigned max);
/* The RAM-only map firmware reads from fw_cfg (etc/e820). */
unsigned hv_x86_e820_firmware(uint64_t mem_size, struct boot_e820_entry *out, unsigned max);

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

/* Writes the RSDP, XSDT, FADT, FACS, DSDT and MADT for nr_vcpus CPUs at X86_ACPI_RSDP_ADDR. */
int hv_x86_acpi_build(const struct hv_guest_mem *mem, unsigned nr_vcpus);

/* The same tables into a buffer of X86_ACPI_REGION_SIZE bytes, addressed as if it sat at
 * base, the RSDP at offset 0. Firmware that places them itself gets them with base 0. */
#define X86_ACPI_REGION_SIZE 0x2000
#define X86_ACPI_RSDP_LEN    36
int hv_x86_acpi_build_at(uint8_t *region, uint64_t base, unsigned nr_vcpus);

/* A field of that region: a pointer (offset, size) or a checksum byte (offset, over size
 * bytes from start). The lists end with a zero size. */
struct hv_x86_acpi_field {
    uint32_t offset, size, start;
};
extern const struct hv_x86_acpi_field hv_x86_acpi_pointers[];
extern const struct hv_x86_acpi_field hv_x86_acpi_checksums[];

/* The DSDT's AML body (after the table header); returns its length, 0 if cap is too small. */
size_t hv_x86_dsdt_aml(uint8_t *buf, size_t cap);

/* Writes the GDT and the identity page tables the 64-bit entry expects. */
int hv_x86_write_boot_tables(const struct hv_guest_mem *mem);

#endif
