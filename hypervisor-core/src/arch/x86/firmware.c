/*
 * Firmware boot (see firmware.h). The ACPI tables are the ones direct kernel
 * boot writes (acpi.c), handed over as QEMU does: the firmware allocates
 * etc/acpi/tables in high memory and etc/acpi/rsdp in the F segment, then
 * follows etc/table-loader (QEMU's hw/acpi/bios-linker-loader.c format) to
 * add the addresses it chose to each pointer and fix the checksums.
 */
#include "firmware.h"
#include "boot.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FOUR_GIB       0x100000000ull
#define SERIAL_PORT    0x3f8
#define SMBIOS_VENDOR  "vmmd"
#define SMBIOS_PRODUCT "vmmd PC"

#define LOADER_ALLOCATE     1
#define LOADER_ADD_POINTER  2
#define LOADER_ADD_CHECKSUM 3
#define LOADER_ZONE_HIGH    1
#define LOADER_ZONE_FSEG    2
#define LOADER_FILE_LEN     56

#define ACPI_TABLES_FILE "etc/acpi/tables"
#define ACPI_RSDP_FILE   "etc/acpi/rsdp"

struct __attribute__((packed)) loader_entry {
    uint32_t command;
    union {
        struct __attribute__((packed)) {
            char file[LOADER_FILE_LEN];
            uint32_t align;
            uint8_t zone;
        } alloc;
        struct __attribute__((packed)) {
            char dest_file[LOADER_FILE_LEN];
            char src_file[LOADER_FILE_LEN];
            uint32_t offset;
            uint8_t size;
        } pointer;
        struct __attribute__((packed)) {
            char file[LOADER_FILE_LEN];
            uint32_t offset;
            uint32_t start;
            uint32_t length;
        } cksum;
        char pad[124];
    };
};

int hv_x86_firmware_load(const char *path, int fd, struct hv_x86_firmware *fw, char *err,
                         size_t errlen)
{
    int own = fd < 0, rc = 0;
    struct stat st;
    size_t done = 0;

    memset(fw, 0, sizeof(*fw));
    if (own && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "cannot open firmware %s: %s", path, strerror(errno));
        return -errno;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "firmware %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < X86_FIRMWARE_MIN_SIZE ||
        st.st_size > X86_FIRMWARE_MAX_SIZE || st.st_size % 4096) {
        rc = -EINVAL;
        snprintf(err, errlen,
                 "firmware %s is not a firmware image: need a file of 128 KiB to 16 MiB, a "
                 "multiple of 4 KiB",
                 path);
        goto out;
    }
    fw->size = (size_t)st.st_size;
    if ((rc = -posix_memalign((void **)&fw->image, 4096, fw->size))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    while (done < fw->size) {
        ssize_t n = pread(fd, fw->image + done, fw->size - done, (off_t)done);
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            snprintf(err, errlen, "cannot read firmware %s: %s", path,
                     n < 0 ? strerror(errno) : "file shrank");
            hv_x86_firmware_free(fw);
            goto out;
        }
        done += (size_t)n;
    }
out:
    if (own)
        close(fd);
    return rc;
}

void hv_x86_firmware_free(struct hv_x86_firmware *fw)
{
    free(fw->image);
    fw->image = NULL;
    fw->size = 0;
}

uint64_t hv_x86_firmware_base(const struct hv_x86_firmware *fw)
{
    return FOUR_GIB - fw->size;
}

int hv_x86_firmware_copy_low(const struct hv_guest_mem *mem, const struct hv_x86_firmware *fw)
{
    return hv_guest_mem_write(mem, X86_FIRMWARE_LOW_ADDR,
                              fw->image + fw->size - X86_FIRMWARE_LOW_SIZE, X86_FIRMWARE_LOW_SIZE);
}

static void loader_name(char *dst, const char *name)
{
    memset(dst, 0, LOADER_FILE_LEN);
    strncpy(dst, name, LOADER_FILE_LEN - 1);
}

/* Both files start at the region's start (the tables file with the RSDP zeroed), so a field
 * keeps its offset: below the RSDP's length it is in the RSDP file. */
static const char *field_file(uint32_t offset)
{
    return offset < X86_ACPI_RSDP_LEN ? ACPI_RSDP_FILE : ACPI_TABLES_FILE;
}

static size_t build_loader(struct loader_entry *e, size_t max)
{
    size_t n = 0;

    e[n].command = htole32(LOADER_ALLOCATE);
    loader_name(e[n].alloc.file, ACPI_RSDP_FILE);
    e[n].alloc.align = htole32(16);
    e[n++].alloc.zone = LOADER_ZONE_FSEG;
    e[n].command = htole32(LOADER_ALLOCATE);
    loader_name(e[n].alloc.file, ACPI_TABLES_FILE);
    e[n].alloc.align = htole32(64); /* the FACS must be 64-byte aligned */
    e[n++].alloc.zone = LOADER_ZONE_HIGH;
    for (const struct hv_x86_acpi_field *f = hv_x86_acpi_pointers; f->size && n < max; f++) {
        e[n].command = htole32(LOADER_ADD_POINTER);
        loader_name(e[n].pointer.dest_file, field_file(f->offset));
        loader_name(e[n].pointer.src_file, ACPI_TABLES_FILE);
        e[n].pointer.offset = htole32(f->offset);
        e[n++].pointer.size = (uint8_t)f->size;
    }
    for (const struct hv_x86_acpi_field *f = hv_x86_acpi_checksums; f->size && n < max; f++) {
        e[n].command = htole32(LOADER_ADD_CHECKSUM);
        loader_name(e[n].cksum.file, field_file(f->offset));
        e[n].cksum.offset = htole32(f->offset);
        e[n].cksum.start = htole32(f->start);
        e[n++].cksum.length = htole32(f->size);
    }
    return n;
}

static int describe_acpi(struct fw_cfg *fc, unsigned nr_vcpus)
{
    enum { MAX_ENTRIES = 32 };
    uint8_t *region = calloc(1, X86_ACPI_REGION_SIZE);
    struct loader_entry *loader = calloc(MAX_ENTRIES, sizeof(*loader));
    size_t n;
    int rc = -ENOMEM;

    if (!region || !loader)
        goto out;
    /* Base 0: every pointer holds an offset in the tables, to which the loader adds. */
    if ((rc = hv_x86_acpi_build_at(region, 0, nr_vcpus)))
        goto out;
    n = build_loader(loader, MAX_ENTRIES);
    if ((rc = fw_cfg_add_file(fc, ACPI_RSDP_FILE, region, X86_ACPI_RSDP_LEN)))
        goto out;
    memset(region, 0, X86_ACPI_RSDP_LEN); /* no stray RSDP signature in the tables file */
    if ((rc = fw_cfg_add_file(fc, ACPI_TABLES_FILE, region, X86_ACPI_REGION_SIZE)) ||
        (rc = fw_cfg_add_file(fc, "etc/table-loader", loader, (uint32_t)(n * sizeof(*loader)))))
        goto out;
out:
    free(loader);
    free(region);
    return rc;
}

/*
 * SMBIOS strings: without them SeaBIOS names the machine "Bochs" (its build's
 * default), which guests (systemd-detect-virt) take for a hypervisor. QEMU's
 * legacy per-field overrides (FW_CFG_SMBIOS_ENTRIES): a count, then entries
 * of {u16 length, u8 0 = field} {u8 table type, u16 offset in it, string}.
 */
static int describe_smbios(struct fw_cfg *fc)
{
    static const struct {
        uint8_t type, offset;
        const char *value;
    } fields[] = {
        {0, 4, SMBIOS_VENDOR},  /* BIOS vendor */
        {1, 4, SMBIOS_VENDOR},  /* system manufacturer */
        {1, 5, SMBIOS_PRODUCT}, /* system product name */
        {3, 4, SMBIOS_VENDOR},  /* chassis manufacturer */
        {4, 7, SMBIOS_VENDOR},  /* processor manufacturer */
    };
    uint8_t buf[256];
    uint16_t count = htole16(sizeof(fields) / sizeof(fields[0]));
    size_t n = sizeof(count);

    memcpy(buf, &count, sizeof(count));
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        size_t slen = strlen(fields[i].value) + 1;
        uint16_t len = htole16((uint16_t)(3 + 3 + slen)), off = htole16(fields[i].offset);

        memcpy(buf + n, &len, 2);
        buf[n + 2] = 0; /* a field, not a whole table */
        buf[n + 3] = fields[i].type;
        memcpy(buf + n + 4, &off, 2);
        memcpy(buf + n + 6, fields[i].value, slen);
        n += 6 + slen;
    }
    return fw_cfg_add_item(fc, FW_CFG_SMBIOS_ENTRIES, buf, (uint32_t)n);
}

static int add_file_u16(struct fw_cfg *fc, const char *name, uint16_t v)
{
    uint16_t le = htole16(v);

    return fw_cfg_add_file(fc, name, &le, sizeof(le));
}

int hv_x86_firmware_describe(struct fw_cfg *fc, uint64_t mem_size, unsigned nr_vcpus,
                             const char *boot_device)
{
    struct boot_e820_entry e820[4];
    unsigned n = hv_x86_e820_firmware(mem_size, e820, 4);
    int rc;

    if ((rc = fw_cfg_add_u16(fc, FW_CFG_NB_CPUS, (uint16_t)nr_vcpus)) ||
        (rc = fw_cfg_add_u16(fc, FW_CFG_MAX_CPUS, (uint16_t)nr_vcpus)) ||
        (rc = fw_cfg_add_u64(fc, FW_CFG_RAM_SIZE, mem_size)) ||
        (rc = fw_cfg_add_file(fc, "etc/e820", e820, (uint32_t)(n * sizeof(e820[0])))) ||
        /* No "Press ESC for boot menu" wait, and the firmware's screen on COM1. */
        (rc = add_file_u16(fc, "etc/show-boot-menu", 0)) ||
        (rc = add_file_u16(fc, "etc/sercon-port", SERIAL_PORT)) || (rc = describe_smbios(fc)))
        return rc;
    if (boot_device &&
        (rc = fw_cfg_add_file(fc, "bootorder", boot_device, (uint32_t)strlen(boot_device) + 1)))
        return rc;
    return describe_acpi(fc, nr_vcpus);
}
