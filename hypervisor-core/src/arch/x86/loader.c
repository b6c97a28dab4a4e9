/*
 * Kernel loading: the Linux x86 boot protocol (Documentation/arch/x86/
 * boot.rst) for bzImage, entered at its 64-bit entry point, and ELF64
 * images (vmlinux, the test guests) loaded by program headers. Both get a
 * boot_params "zero page" with the e820 map, command line, initrd and RSDP.
 * The image is untrusted input: every offset and size is checked.
 */
#include "boot.h"
#include "fail.h"
#include "layout.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SETUP_HDR_OFFSET   0x1f1
#define HDRS_MAGIC         0x53726448 /* "HdrS" */
#define MIN_BOOT_PROTOCOL  0x206
#define LOADER_TYPE_UNDEFINED 0xff
#define STARTUP_64_OFFSET  0x200 /* startup_64 sits 512 bytes into the protected-mode kernel */
#define INITRD_ALIGN       0x1000

static uint64_t low_ram_end(const struct hv_guest_mem *mem)
{
    return mem->low_size;
}

/* Puts the initrd as high as allowed, page aligned, above the kernel. */
static int place_initrd(const struct hv_guest_mem *mem, struct boot_params *bp,
                        const uint8_t *initrd, size_t initrd_size, uint64_t kernel_end,
                        uint64_t addr_max, char *err, size_t errlen)
{
    uint64_t top = low_ram_end(mem);
    uint64_t addr;

    if (!initrd_size)
        return 0;
    if (addr_max && top > addr_max + 1)
        top = addr_max + 1;
    if (initrd_size > top || top - initrd_size < kernel_end)
        return hv__fail(err, errlen, -ENOMEM,
                    "too little memory: initrd of %zu bytes does not fit above the kernel "
                    "(kernel ends at %#llx, usable RAM ends at %#llx)",
                    initrd_size, (unsigned long long)kernel_end, (unsigned long long)top);
    addr = (top - initrd_size) & ~(uint64_t)(INITRD_ALIGN - 1);
    if (addr < kernel_end)
        return hv__fail(err, errlen, -ENOMEM, "too little memory for the initrd");
    hv_guest_mem_write(mem, addr, initrd, initrd_size);
    bp->hdr.ramdisk_image = (uint32_t)addr;
    bp->hdr.ramdisk_size = (uint32_t)initrd_size;
    bp->ext_ramdisk_image = (uint32_t)(addr >> 32);
    bp->ext_ramdisk_size = (uint32_t)((uint64_t)initrd_size >> 32);
    return 0;
}

static void fill_common(const struct hv_guest_mem *mem, struct boot_params *bp, const char *cmdline)
{
    size_t len = cmdline ? strlen(cmdline) : 0;

    hv_guest_mem_write(mem, X86_CMDLINE_ADDR, cmdline ? cmdline : "", len + 1);
    bp->hdr.cmd_line_ptr = X86_CMDLINE_ADDR;
    bp->ext_cmd_line_ptr = 0;
    bp->hdr.cmdline_size = X86_CMDLINE_MAX;
    bp->acpi_rsdp_addr = X86_ACPI_RSDP_ADDR;
    bp->e820_entries = (uint8_t)hv_x86_e820_build(mem->size, bp->e820_table,
                                                  E820_MAX_ENTRIES_ZEROPAGE);
}

static int load_bzimage(const struct hv_guest_mem *mem, const uint8_t *image, size_t size,
                        const uint8_t *initrd, size_t initrd_size, const char *cmdline,
                        struct hv_x86_boot *out, char *err, size_t errlen)
{
    struct boot_params bp;
    struct setup_header hdr;
    size_t setup_sects, setup_size, hdr_len, kernel_size;
    uint64_t load_addr = X86_HIGH_LOAD_ADDR, need;
    int rc;

    memcpy(&hdr, image + SETUP_HDR_OFFSET, sizeof(hdr));
    if (hdr.version < MIN_BOOT_PROTOCOL)
        return hv__fail(err, errlen, -ENOEXEC, "kernel uses boot protocol %u.%02u, need 2.06 or later",
                    hdr.version >> 8, hdr.version & 0xff);
    if (!(hdr.xloadflags & XLF_KERNEL_64))
        return hv__fail(err, errlen, -ENOEXEC, "kernel has no 64-bit entry point (XLF_KERNEL_64)");
    if (!(hdr.loadflags & LOADED_HIGH))
        return hv__fail(err, errlen, -ENOEXEC, "kernel is a zImage, not a bzImage");
    setup_sects = hdr.setup_sects ? hdr.setup_sects : 4;
    setup_size = (setup_sects + 1) * 512;
    if (setup_size >= size)
        return hv__fail(err, errlen, -ENOEXEC, "kernel image is truncated");
    kernel_size = size - setup_size;

    /* The kernel decompresses to pref_address (if relocatable, aligned) and needs init_size there. */
    need = hdr.pref_address > load_addr ? hdr.pref_address : load_addr;
    /* Both come from the image: compare before adding, so no sum can wrap. */
    if (need > low_ram_end(mem))
        need = UINT64_MAX;
    else
        need += hdr.init_size > kernel_size ? hdr.init_size : kernel_size;
    if (need > low_ram_end(mem))
        return hv__fail(err, errlen, -ENOMEM,
                    "too little memory: the kernel needs %llu MiB, the VM has %llu MiB",
                    (unsigned long long)(need == UINT64_MAX ? need >> 20
                                                            : (need + (1 << 20) - 1) >> 20),
                    (unsigned long long)(mem->size >> 20));
    rc = hv_guest_mem_write(mem, load_addr, image + setup_size, kernel_size);
    if (rc)
        return hv__fail(err, errlen, rc, "kernel does not fit in guest memory");

    memset(&bp, 0, sizeof(bp));
    /* The setup header runs from 0x1f1 to the end given by the jump at 0x200. */
    hdr_len = 0x202 + image[0x201] - SETUP_HDR_OFFSET;
    if (hdr_len > sizeof(bp.hdr))
        hdr_len = sizeof(bp.hdr);
    memcpy(&bp.hdr, image + SETUP_HDR_OFFSET, hdr_len);
    bp.hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
    bp.hdr.loadflags |= CAN_USE_HEAP;
    bp.hdr.heap_end_ptr = 0xfe00;
    bp.hdr.vid_mode = 0xffff; /* normal */
    bp.hdr.code32_start = (uint32_t)load_addr;
    fill_common(mem, &bp, cmdline);
    rc = place_initrd(mem, &bp, initrd, initrd_size, need, hdr.initrd_addr_max, err, errlen);
    if (rc)
        return rc;
    hv_guest_mem_write(mem, X86_BOOT_PARAMS_ADDR, &bp, sizeof(bp));
    out->entry = load_addr + STARTUP_64_OFFSET;
    out->boot_params = X86_BOOT_PARAMS_ADDR;
    return 0;
}

static int load_elf64(const struct hv_guest_mem *mem, const uint8_t *image, size_t size,
                      const uint8_t *initrd, size_t initrd_size, const char *cmdline,
                      struct hv_x86_boot *out, char *err, size_t errlen)
{
    Elf64_Ehdr eh;
    struct boot_params bp;
    uint64_t kernel_end = X86_HIGH_LOAD_ADDR;
    int rc;

    memcpy(&eh, image, sizeof(eh));
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC)
        return hv__fail(err, errlen, -ENOEXEC, "kernel is an ELF file but not an x86-64 executable");
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > size ||
        (size - eh.e_phoff) / sizeof(Elf64_Phdr) < eh.e_phnum)
        return hv__fail(err, errlen, -ENOEXEC, "kernel ELF program headers are out of bounds");

    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        uint8_t *dst;

        memcpy(&ph, image + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        if (ph.p_filesz > ph.p_memsz || ph.p_offset > size || ph.p_filesz > size - ph.p_offset)
            return hv__fail(err, errlen, -ENOEXEC, "kernel ELF segment %u is out of bounds", i);
        dst = hv_gpa_to_hva(mem, ph.p_paddr, ph.p_memsz);
        if (!dst)
            return hv__fail(err, errlen, -ENOMEM,
                        "too little memory: ELF segment at %#llx+%#llx is outside guest RAM",
                        (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_memsz);
        memcpy(dst, image + ph.p_offset, ph.p_filesz);
        memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
        if (ph.p_paddr + ph.p_memsz > kernel_end)
            kernel_end = ph.p_paddr + ph.p_memsz;
    }
    memset(&bp, 0, sizeof(bp));
    bp.hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
    bp.hdr.boot_flag = 0xaa55;
    bp.hdr.header = HDRS_MAGIC;
    bp.hdr.version = MIN_BOOT_PROTOCOL;
    fill_common(mem, &bp, cmdline);
    rc = place_initrd(mem, &bp, initrd, initrd_size, kernel_end, 0, err, errlen);
    if (rc)
        return rc;
    hv_guest_mem_write(mem, X86_BOOT_PARAMS_ADDR, &bp, sizeof(bp));
    out->entry = eh.e_entry;
    out->boot_params = X86_BOOT_PARAMS_ADDR;
    return 0;
}

int hv_x86_load_kernel_image(const struct hv_guest_mem *mem, const uint8_t *image, size_t size,
                             const uint8_t *initrd, size_t initrd_size, const char *cmdline,
                             struct hv_x86_boot *out, char *err, size_t errlen)
{
    uint32_t magic;

    if (cmdline && strlen(cmdline) >= X86_CMDLINE_MAX)
        return hv__fail(err, errlen, -E2BIG, "command line is longer than %d bytes",
                    X86_CMDLINE_MAX - 1);
    if (size >= SELFMAG && memcmp(image, ELFMAG, SELFMAG) == 0 && size >= sizeof(Elf64_Ehdr))
        return load_elf64(mem, image, size, initrd, initrd_size, cmdline, out, err, errlen);
    if (size >= 0x1000) {
        memcpy(&magic, image + 0x202, 4);
        if (magic == HDRS_MAGIC)
            return load_bzimage(mem, image, size, initrd, initrd_size, cmdline, out, err, errlen);
    }
    return hv__fail(err, errlen, -ENOEXEC, "not a kernel: neither a bzImage nor an ELF64 executable");
}

/* Maps a whole file (path, or the open given_fd) read-only; *size 0 and NULL when empty. */
static int map_file(const char *path, int given_fd, const char *what, const uint8_t **data,
                    size_t *size, char *err, size_t errlen)
{
    struct stat st;
    int fd = given_fd >= 0 ? fcntl(given_fd, F_DUPFD_CLOEXEC, 3) : open(path, O_RDONLY | O_CLOEXEC);
    void *p;

    if (fd < 0)
        return hv__fail(err, errlen, -errno, "%s %s: %s", what, path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return hv__fail(err, errlen, -EINVAL, "%s %s: not a regular file", what, path);
    }
    *size = (size_t)st.st_size;
    *data = NULL;
    if (*size) {
        p = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return hv__fail(err, errlen, -e, "%s %s: %s", what, path, strerror(e));
        }
        *data = p;
    }
    close(fd);
    return 0;
}

int hv_x86_load_kernel(const struct hv_guest_mem *mem, const char *kernel, int kernel_fd,
                       const char *initrd, int initrd_fd, const char *cmdline,
                       struct hv_x86_boot *out, char *err, size_t errlen)
{
    const uint8_t *k = NULL, *i = NULL;
    size_t ksize = 0, isize = 0;
    int rc;

    rc = map_file(kernel, kernel_fd, "kernel", &k, &ksize, err, errlen);
    if (rc)
        return rc;
    if (initrd) {
        rc = map_file(initrd, initrd_fd, "initrd", &i, &isize, err, errlen);
        if (rc)
            goto err_kernel;
    }
    rc = hv_x86_load_kernel_image(mem, k ? k : (const uint8_t *)"", ksize, i, isize, cmdline, out,
                                  err, errlen);
    if (rc && strncmp(err, "not a kernel", 12) == 0) {
        char why[200];
        snprintf(why, sizeof(why), "%s", err);
        snprintf(err, errlen, "kernel %s: %s", kernel, why);
    }
    if (i)
        munmap((void *)i, isize);
err_kernel:
    if (k)
        munmap((void *)k, ksize);
    return rc;
}
