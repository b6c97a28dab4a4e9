/* x86 boot: e820 maps, bzImage and ELF64 loading into boot_params, ACPI tables. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "arch/x86/layout.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void test_e820_small_guest(void **state)
{
    struct boot_e820_entry e[8];
    unsigned n = hv_x86_e820_build(256 * MiB, e, 8);

    (void)state;
    assert_int_equal(n, 4);
    assert_int_equal(e[0].addr, 0);
    assert_int_equal(e[0].size, X86_EBDA_START);
    assert_int_equal(e[0].type, 1);
    assert_int_equal(e[2].addr, X86_BIOS_START);
    assert_int_equal(e[2].type, 2);
    assert_int_equal(e[3].addr, MiB);
    assert_int_equal(e[3].addr + e[3].size, 256 * MiB);
    assert_int_equal(e[3].type, 1);
}

static void test_e820_pci_hole(void **state)
{
    struct boot_e820_entry e[8];
    unsigned n = hv_x86_e820_build(8 * GiB, e, 8);
    uint64_t ram = 0;

    (void)state;
    assert_int_equal(n, 5);
    assert_int_equal(e[3].addr + e[3].size, 3 * GiB); /* nothing in the hole */
    assert_int_equal(e[4].addr, 4 * GiB);
    assert_int_equal(e[4].size, 5 * GiB);
    for (unsigned i = 0; i < n; i++)
        if (e[i].type == 1)
            ram += e[i].size;
    assert_int_equal(ram, 8 * GiB - (0x100000 - X86_EBDA_START));
}

static void test_e820_respects_max(void **state)
{
    struct boot_e820_entry e[2];

    (void)state;
    assert_int_equal(hv_x86_e820_build(8 * GiB, e, 2), 2);
}

struct fixture {
    struct hv_guest_mem mem;
    char err[256];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_int_equal(hv_guest_mem_init(&f->mem, 256 * MiB), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    hv_guest_mem_destroy(&f->mem);
    free(f);
    return 0;
}

/* A minimal bzImage: real setup header, 4 setup sectors, a recognisable payload. */
static uint8_t *fake_bzimage(size_t *size, uint16_t version, uint16_t xloadflags, uint32_t init_size)
{
    size_t total = 5 * 512 + 8192;
    uint8_t *img = calloc(1, total);
    struct setup_header h;

    memset(&h, 0, sizeof(h));
    h.setup_sects = 4;
    h.boot_flag = 0xaa55;
    h.jump = 0x66eb; /* jmp over the header: end at 0x202 + 0x66 */
    h.header = 0x53726448;
    h.version = version;
    h.loadflags = LOADED_HIGH;
    h.initrd_addr_max = 0x7fffffff;
    h.kernel_alignment = 0x200000;
    h.relocatable_kernel = 1;
    h.xloadflags = xloadflags;
    h.cmdline_size = 2048;
    h.pref_address = 0x1000000;
    h.init_size = init_size;
    memcpy(img + 0x1f1, &h, sizeof(h));
    memset(img + 5 * 512, 0xcc, 8192);
    *size = total;
    return img;
}

static struct boot_params *zero_page(struct fixture *f)
{
    return hv_gpa_to_hva(&f->mem, X86_BOOT_PARAMS_ADDR, sizeof(struct boot_params));
}

static void test_bzimage_boot_params(void **state)
{
    struct fixture *f = *state;
    size_t size;
    uint8_t *img = fake_bzimage(&size, 0x20f, XLF_KERNEL_64, 16 * MiB);
    uint8_t initrd[5000];
    struct hv_x86_boot boot;
    struct boot_params *bp;

    memset(initrd, 0x77, sizeof(initrd));
    assert_int_equal(hv_x86_load_kernel_image(&f->mem, img, size, initrd, sizeof(initrd),
                                              "console=ttyS0 quiet", &boot, f->err,
                                              sizeof(f->err)),
                     0);
    assert_int_equal(boot.entry, X86_HIGH_LOAD_ADDR + 0x200);
    assert_int_equal(boot.boot_params, X86_BOOT_PARAMS_ADDR);
    bp = zero_page(f);
    assert_int_equal(bp->hdr.header, 0x53726448);
    assert_int_equal(bp->hdr.type_of_loader, 0xff);
    assert_true(bp->hdr.loadflags & CAN_USE_HEAP);
    assert_int_equal(bp->hdr.cmd_line_ptr, X86_CMDLINE_ADDR);
    assert_string_equal((char *)hv_gpa_to_hva(&f->mem, X86_CMDLINE_ADDR, 20), "console=ttyS0 quiet");
    assert_int_equal(bp->acpi_rsdp_addr, X86_ACPI_RSDP_ADDR);
    assert_int_equal(bp->e820_entries, 4);
    /* The protected-mode kernel is at 1 MiB. */
    assert_int_equal(*(uint8_t *)hv_gpa_to_hva(&f->mem, X86_HIGH_LOAD_ADDR, 1), 0xcc);
    /* The initrd is page aligned, at the top of RAM, above the kernel's init area. */
    assert_int_equal(bp->hdr.ramdisk_size, sizeof(initrd));
    assert_int_equal(bp->hdr.ramdisk_image % 4096, 0);
    assert_true(bp->hdr.ramdisk_image + sizeof(initrd) <= 256 * MiB);
    assert_true(bp->hdr.ramdisk_image >= 0x1000000 + 16 * MiB);
    assert_memory_equal(hv_gpa_to_hva(&f->mem, bp->hdr.ramdisk_image, sizeof(initrd)), initrd,
                        sizeof(initrd));
    free(img);
}

static void test_bzimage_too_old(void **state)
{
    struct fixture *f = *state;
    size_t size;
    uint8_t *img = fake_bzimage(&size, 0x205, XLF_KERNEL_64, MiB);
    struct hv_x86_boot boot;

    assert_int_equal(hv_x86_load_kernel_image(&f->mem, img, size, NULL, 0, NULL, &boot, f->err,
                                              sizeof(f->err)),
                     -ENOEXEC);
    assert_non_null(strstr(f->err, "2.06"));
    free(img);
}

static void test_bzimage_without_64bit_entry(void **state)
{
    struct fixture *f = *state;
    size_t size;
    uint8_t *img = fake_bzimage(&size, 0x20f, 0, MiB);
    struct hv_x86_boot boot;

    assert_int_equal(hv_x86_load_kernel_image(&f->mem, img, size, NULL, 0, NULL, &boot, f->err,
                                              sizeof(f->err)),
                     -ENOEXEC);
    assert_non_null(strstr(f->err, "64-bit"));
    free(img);
}

static void test_bzimage_too_little_memory(void **state)
{
    struct fixture *f = *state;
    size_t size;
    uint8_t *img = fake_bzimage(&size, 0x20f, XLF_KERNEL_64, 300 * MiB);
    struct hv_x86_boot boot;

    assert_int_equal(hv_x86_load_kernel_image(&f->mem, img, size, NULL, 0, NULL, &boot, f->err,
                                              sizeof(f->err)),
                     -ENOMEM);
    assert_non_null(strstr(f->err, "too little memory"));
    free(img);
}

static void test_bzimage_hostile_pref_address(void **state)
{
    struct fixture *f = *state;
    size_t size;
    uint8_t *img = fake_bzimage(&size, 0x20f, XLF_KERNEL_64, 16 * MiB);
    struct setup_header h;
    struct hv_x86_boot boot;

    memcpy(&h, img + 0x1f1, sizeof(h));
    h.pref_address = UINT64_MAX - 4096; /* pref_address + init_size would wrap to a small number */
    memcpy(img + 0x1f1, &h, sizeof(h));
    assert_int_equal(hv_x86_load_kernel_image(&f->mem, img, size, NULL, 0, NULL, &boot, f->err,
                                              sizeof(f->err)),
                     -ENOMEM);
    free(img);
}

static void test_initrd_too_big(void **state)
{
    struct fixture *f = *state;
    size_t size;
    uint8_t *img = fake_bzimage(&size, 0x20f, XLF_KERNEL_64, 16 * MiB);
    size_t big = 250 * MiB;
    uint8_t *initrd = calloc(1, big);
    struct hv_x86_boot boot;

    assert_int_equal(hv_x86_load_kernel_image(&f->mem, img, size, initrd, big, NULL, &boot, f->err,
                                              sizeof(f->err)),
                     -ENOMEM);
    assert_non_null(strstr(f->err, "initrd"));
    free(initrd);
    free(img);
}

static void test_not_a_kernel(void **state)
{
    struct fixture *f = *state;
    uint8_t junk[8192];
    struct hv_x86_boot boot;

    memset(junk, 0x41, sizeof(junk));
    assert_int_equal(hv_x86_load_kernel_image(&f->mem, junk, sizeof(junk), NULL, 0, NULL, &boot,
                                              f->err, sizeof(f->err)),
                     -ENOEXEC);
    assert_non_null(strstr(f->err, "not a kernel"));
    assert_int_equal(hv_x86_load_kernel_image(&f->mem, junk, 10, NULL, 0, NULL, &boot, f->err,
                                              sizeof(f->err)),
                     -ENOEXEC);
}

static void test_command_line_too_long(void **state)
{
    struct fixture *f = *state;
    size_t size;
    uint8_t *img = fake_bzimage(&size, 0x20f, XLF_KERNEL_64, MiB);
    char *cmd = malloc(X86_CMDLINE_MAX + 10);
    struct hv_x86_boot boot;

    memset(cmd, 'a', X86_CMDLINE_MAX + 9);
    cmd[X86_CMDLINE_MAX + 9] = 0;
    assert_int_equal(hv_x86_load_kernel_image(&f->mem, img, size, NULL, 0, cmd, &boot, f->err,
                                              sizeof(f->err)),
                     -E2BIG);
    free(cmd);
    free(img);
}

/* A one-segment ELF64 executable with a bss tail. */
static uint8_t *fake_elf(size_t *size, uint64_t paddr, uint64_t filesz, uint64_t memsz)
{
    size_t total = 4096 + filesz;
    uint8_t *img = calloc(1, total);
    Elf64_Ehdr eh = {0};
    Elf64_Phdr ph = {0};

    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_entry = paddr + 0x10;
    eh.e_phoff = sizeof(eh);
    eh.e_phentsize = sizeof(ph);
    eh.e_phnum = 1;
    ph.p_type = PT_LOAD;
    ph.p_offset = 4096;
    ph.p_paddr = paddr;
    ph.p_filesz = filesz;
    ph.p_memsz = memsz;
    memcpy(img, &eh, sizeof(eh));
    memcpy(img + sizeof(eh), &ph, sizeof(ph));
    memset(img + 4096, 0xab, filesz);
    *size = total;
    return img;
}

static void test_elf_loads_segments(void **state)
{
    struct fixture *f = *state;
    size_t size;
    uint8_t *img = fake_elf(&size, MiB, 100, 300);
    struct hv_x86_boot boot;
    uint8_t *dst = hv_gpa_to_hva(&f->mem, MiB, 300);

    memset(dst, 0xee, 300);
    assert_int_equal(hv_x86_load_kernel_image(&f->mem, img, size, NULL, 0, "count=5", &boot,
                                              f->err, sizeof(f->err)),
                     0);
    assert_int_equal(boot.entry, MiB + 0x10);
    assert_int_equal(dst[0], 0xab);
    assert_int_equal(dst[99], 0xab);
    assert_int_equal(dst[100], 0); /* bss zeroed */
    assert_int_equal(dst[299], 0);
    assert_int_equal(zero_page(f)->hdr.cmd_line_ptr, X86_CMDLINE_ADDR);
    free(img);
}

static void test_elf_segment_outside_ram(void **state)
{
    struct fixture *f = *state;
    size_t size;
    uint8_t *img = fake_elf(&size, 255 * MiB, 100, 2 * MiB);
    struct hv_x86_boot boot;

    assert_int_equal(hv_x86_load_kernel_image(&f->mem, img, size, NULL, 0, NULL, &boot, f->err,
                                              sizeof(f->err)),
                     -ENOMEM);
    free(img);
}

static void test_elf_hostile_headers(void **state)
{
    struct fixture *f = *state;
    size_t size;
    uint8_t *img = fake_elf(&size, MiB, 100, 100);
    struct hv_x86_boot boot;
    Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
    Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(*eh));

    ph->p_filesz = 1ull << 40; /* past the end of the file */
    assert_int_equal(hv_x86_load_kernel_image(&f->mem, img, size, NULL, 0, NULL, &boot, f->err,
                                              sizeof(f->err)),
                     -ENOEXEC);
    ph->p_filesz = 100;
    eh->e_phnum = 60000; /* program headers past the end */
    assert_int_equal(hv_x86_load_kernel_image(&f->mem, img, size, NULL, 0, NULL, &boot, f->err,
                                              sizeof(f->err)),
                     -ENOEXEC);
    eh->e_phnum = 1;
    eh->e_machine = EM_386;
    assert_int_equal(hv_x86_load_kernel_image(&f->mem, img, size, NULL, 0, NULL, &boot, f->err,
                                              sizeof(f->err)),
                     -ENOEXEC);
    free(img);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

static void test_acpi_tables(void **state)
{
    struct fixture *f = *state;
    uint8_t *rsdp, *xsdt, *madt, *fadt;
    uint64_t xsdt_addr, entry;
    uint32_t len;
    unsigned lapics = 0;

    assert_int_equal(hv_x86_acpi_build(&f->mem, 3), 0);
    rsdp = hv_gpa_to_hva(&f->mem, X86_ACPI_RSDP_ADDR, 36);
    assert_memory_equal(rsdp, "RSD PTR ", 8);
    assert_int_equal(sum(rsdp, 20), 0);
    assert_int_equal(sum(rsdp, 36), 0);
    memcpy(&xsdt_addr, rsdp + 24, 8);
    xsdt = hv_gpa_to_hva(&f->mem, xsdt_addr, 52);
    assert_memory_equal(xsdt, "XSDT", 4);
    memcpy(&len, xsdt + 4, 4);
    assert_int_equal(sum(xsdt, len), 0);

    memcpy(&entry, xsdt + 36, 8);
    fadt = hv_gpa_to_hva(&f->mem, entry, 276);
    assert_memory_equal(fadt, "FACP", 4);
    assert_int_equal(sum(fadt, 276), 0);

    memcpy(&entry, xsdt + 44, 8);
    madt = hv_gpa_to_hva(&f->mem, entry, 44);
    assert_memory_equal(madt, "APIC", 4);
    memcpy(&len, madt + 4, 4);
    assert_int_equal(sum(hv_gpa_to_hva(&f->mem, entry, len), len), 0);
    for (uint32_t off = 44; off < len; off += madt[off + 1])
        if (madt[off] == 0)
            lapics++;
    assert_int_equal(lapics, 3);
}

static const uint8_t *find_bytes(const uint8_t *hay, size_t n, const void *needle, size_t len)
{
    for (size_t i = 0; i + len <= n; i++)
        if (memcmp(hay + i, needle, len) == 0)
            return hay + i;
    return NULL;
}

/* PkgLength (ACPI 20.2.4): the lead byte's top bits say how many bytes follow. */
static size_t pkg_length(const uint8_t *p)
{
    unsigned follow = p[0] >> 6;
    size_t len = follow ? p[0] & 0x0f : p[0] & 0x3f;

    for (unsigned i = 0; i < follow; i++)
        len |= (size_t)p[1 + i] << (4 + 8 * i);
    return len;
}

/* The DSDT: \_S5 and a PCI root bridge whose _PRT maps every slot and pin. */
static void test_acpi_dsdt(void **state)
{
    static const uint8_t pnp0a03[] = {0x0c, 0x41, 0xd0, 0x0a, 0x03};
    struct fixture *f = *state;
    const uint8_t *fadt, *dsdt, *p;
    uint32_t dsdt_addr, len;
    uint64_t xsdt_addr, fadt_addr;

    assert_int_equal(hv_x86_acpi_build(&f->mem, 1), 0);
    memcpy(&xsdt_addr, (uint8_t *)hv_gpa_to_hva(&f->mem, X86_ACPI_RSDP_ADDR, 36) + 24, 8);
    memcpy(&fadt_addr, (uint8_t *)hv_gpa_to_hva(&f->mem, xsdt_addr, 44) + 36, 8);
    fadt = hv_gpa_to_hva(&f->mem, fadt_addr, 276);
    memcpy(&dsdt_addr, fadt + 40, 4);
    dsdt = hv_gpa_to_hva(&f->mem, dsdt_addr, 36);
    assert_memory_equal(dsdt, "DSDT", 4);
    memcpy(&len, dsdt + 4, 4);
    dsdt = hv_gpa_to_hva(&f->mem, dsdt_addr, len);
    assert_non_null(dsdt);
    assert_int_equal(sum(dsdt, len), 0);
    assert_non_null(find_bytes(dsdt, len, "_S5_", 4));
    assert_non_null(find_bytes(dsdt, len, "PCI0", 4));
    assert_non_null(find_bytes(dsdt, len, pnp0a03, sizeof(pnp0a03)));
    assert_non_null(find_bytes(dsdt, len, "_CRS", 4));
    /* Name (_PRT, Package (128) {...}): the package ends exactly where the scopes do. */
    p = find_bytes(dsdt, len, "_PRT", 4);
    assert_non_null(p);
    assert_int_equal(p[4], 0x12);
    assert_int_equal(p[8], 32 * 4);
    assert_true(p + 5 + pkg_length(p + 5) == dsdt + len);
    /* Slot 3 INTA: address 0x0003FFFF, pin 0, no link, GSI 16 + 3. */
    static const uint8_t slot3[] = {0x04, 0x0c, 0xff, 0xff, 0x03, 0x00, 0x00, 0x00, 0x0a, 19};
    assert_non_null(find_bytes(dsdt, len, slot3, sizeof(slot3)));
}

static void test_acpi_refuses_zero_vcpus(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(hv_x86_acpi_build(&f->mem, 0), -EINVAL);
}

static void test_boot_tables_identity_map(void **state)
{
    struct fixture *f = *state;
    uint64_t *pml4, *pd;

    assert_int_equal(hv_x86_write_boot_tables(&f->mem), 0);
    pml4 = hv_gpa_to_hva(&f->mem, X86_PML4_ADDR, 8);
    assert_int_equal(pml4[0] & ~0xfffull, X86_PDPT_ADDR);
    pd = hv_gpa_to_hva(&f->mem, X86_PD_ADDR, 4 * 4096);
    assert_int_equal(pd[1] & ~0xfffull, 2 * MiB);
    assert_int_equal(pd[2047] & ~0xfffull, 4 * GiB - 2 * MiB); /* covers the LAPIC page */
}

static void test_gpa_translation_bounds(void **state)
{
    struct fixture *f = *state;

    assert_non_null(hv_gpa_to_hva(&f->mem, 0, 256 * MiB));
    assert_null(hv_gpa_to_hva(&f->mem, 0, 256 * MiB + 1));
    assert_null(hv_gpa_to_hva(&f->mem, 256 * MiB, 1));
    assert_null(hv_gpa_to_hva(&f->mem, UINT64_MAX, 2));
    assert_null(hv_gpa_to_hva(&f->mem, 4 * GiB, 1));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e820_small_guest),
        cmocka_unit_test(test_e820_pci_hole),
        cmocka_unit_test(test_e820_respects_max),
        T(test_bzimage_boot_params),
        T(test_bzimage_too_old),
        T(test_bzimage_without_64bit_entry),
        T(test_bzimage_too_little_memory),
        T(test_bzimage_hostile_pref_address),
        T(test_initrd_too_big),
        T(test_not_a_kernel),
        T(test_command_line_too_long),
        T(test_elf_loads_segments),
        T(test_elf_segment_outside_ram),
        T(test_elf_hostile_headers),
        T(test_acpi_tables),
        T(test_acpi_refuses_zero_vcpus),
        T(test_acpi_dsdt),
        T(test_boot_tables_identity_map),
        T(test_gpa_translation_bounds),
    };
#undef T
    return cmocka_run_group_tests_name("x86_boot", tests, NULL, NULL);
}
