/*
 * fw_cfg as SeaBIOS reads it: the signature and ID, the file directory, the
 * firmware description (e820, boot order, serial console, ACPI loader), and
 * what a guest must not be able to do (bad selectors, writes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/firmware.h"
#include "devices/legacy/fw_cfg.h"
#include "fake_platform.h"
#include "snap_test.h"

static void select_item(struct fw_cfg *fc, uint16_t key)
{
    fc->dev.ops->write(&fc->dev, 0, &key, 2);
}

static void read_data(struct fw_cfg *fc, void *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = dev_in8(&fc->dev, 1);
}

/* Looks name up in the directory as SeaBIOS does; returns its key and size, or -1. */
static int find_file(struct fw_cfg *fc, const char *name, uint32_t *size)
{
    uint32_t count;

    select_item(fc, FW_CFG_FILE_DIR);
    read_data(fc, &count, 4);
    for (uint32_t i = 0; i < be32toh(count); i++) {
        struct {
            uint32_t size;
            uint16_t select, reserved;
            char name[56];
        } e;
        read_data(fc, &e, sizeof(e));
        if (strcmp(e.name, name) == 0) {
            *size = be32toh(e.size);
            return be16toh(e.select);
        }
    }
    return -1;
}

static void *read_file(struct fw_cfg *fc, const char *name, uint32_t *size)
{
    int key = find_file(fc, name, size);
    void *buf;

    if (key < 0)
        return NULL;
    buf = calloc(1, *size + 1);
    select_item(fc, (uint16_t)key);
    read_data(fc, buf, *size);
    return buf;
}

static void test_signature_and_id(void **state)
{
    struct fake_platform fp;
    struct fw_cfg fc;
    char sig[5] = {0};
    uint32_t id;

    (void)state;
    fake_platform_init(&fp);
    assert_int_equal(fw_cfg_init(&fc, &fp.platform), 0);
    select_item(&fc, FW_CFG_SIGNATURE);
    read_data(&fc, sig, 4);
    assert_string_equal(sig, "QEMU");
    /* Reading past the end gives zeros; selecting again starts over. */
    assert_int_equal(dev_in8(&fc.dev, 1), 0);
    select_item(&fc, FW_CFG_SIGNATURE);
    assert_int_equal(dev_in8(&fc.dev, 1), 'Q');
    select_item(&fc, FW_CFG_ID);
    read_data(&fc, &id, 4);
    assert_int_equal(le32toh(id), 1); /* traditional interface, no DMA */
    fw_cfg_destroy(&fc);
}

static void test_files_and_directory(void **state)
{
    struct fake_platform fp;
    struct fw_cfg fc;
    uint32_t size;
    char *data;

    (void)state;
    fake_platform_init(&fp);
    assert_int_equal(fw_cfg_init(&fc, &fp.platform), 0);
    assert_int_equal(find_file(&fc, "bootorder", &size), -1);
    assert_int_equal(fw_cfg_add_file(&fc, "etc/one", "first", 5), 0);
    assert_int_equal(fw_cfg_add_file(&fc, "bootorder", "/pci@i0cf8/*@3\n", 15), 0);
    assert_int_equal(fw_cfg_add_file(&fc, "bootorder", "x", 1), -EEXIST);
    assert_int_equal(find_file(&fc, "etc/one", &size), FW_CFG_FILE_FIRST);
    assert_int_equal(size, 5);
    data = read_file(&fc, "bootorder", &size);
    assert_non_null(data);
    assert_int_equal(size, 15);
    assert_memory_equal(data, "/pci@i0cf8/*@3\n", 15);
    free(data);

    char longname[FW_CFG_NAME_LEN + 1];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[FW_CFG_NAME_LEN] = 0;
    assert_int_equal(fw_cfg_add_file(&fc, longname, "x", 1), -ENAMETOOLONG);
    for (unsigned i = 2; i < FW_CFG_MAX_FILES; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%u", i);
        assert_int_equal(fw_cfg_add_file(&fc, name, "x", 1), 0);
    }
    assert_int_equal(fw_cfg_add_file(&fc, "one-too-many", "x", 1), -ENOSPC);
    assert_int_equal(fw_cfg_add_item(&fc, 0x8004, "x", 1), -EINVAL); /* no such arch key */
    fw_cfg_destroy(&fc);
}

static void test_bad_selectors_and_writes(void **state)
{
    struct fake_platform fp;
    struct fw_cfg fc;
    uint8_t v = 0x5a;

    (void)state;
    fake_platform_init(&fp);
    assert_int_equal(fw_cfg_init(&fc, &fp.platform), 0);
    /* Unknown keys, the write bit, the architecture bit, out of range: all read as zeros. */
    static const uint16_t bad[] = {0x02,   0x18,   FW_CFG_MAX_ENTRY, 0x4000,
                                   0x8000, 0x8003, 0x8004,           0xffff};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        select_item(&fc, bad[i]);
        for (int j = 0; j < 8; j++)
            assert_int_equal(dev_in8(&fc.dev, 1), 0);
    }
    /* The data port ignores writes; the selector port reads as 0 and ignores byte writes. */
    select_item(&fc, FW_CFG_SIGNATURE);
    fc.dev.ops->write(&fc.dev, 1, &v, 1);
    fc.dev.ops->write(&fc.dev, 0, &v, 1);
    assert_int_equal(dev_in8(&fc.dev, 0), 0);
    assert_int_equal(dev_in8(&fc.dev, 1), 'Q');
    assert_int_equal(dev_in8(&fc.dev, 1), 'E');
    /* Reset selects the signature again. */
    fc.dev.ops->reset(&fc.dev);
    assert_int_equal(dev_in8(&fc.dev, 1), 'Q');
    fw_cfg_destroy(&fc);
}

struct __attribute__((packed)) e820_entry {
    uint64_t addr, size;
    uint32_t type;
};

static void test_firmware_description(void **state)
{
    struct fake_platform fp;
    struct fw_cfg fc;
    struct e820_entry *e820;
    uint16_t cpus, *u16;
    uint32_t size;
    char *text;
    uint8_t *loader, *tables, *rsdp;
    uint32_t loader_size, tables_size, rsdp_size;

    (void)state;
    fake_platform_init(&fp);
    assert_int_equal(fw_cfg_init(&fc, &fp.platform), 0);
    /* 4 GiB: 3 GiB below the PCI hole, 1 GiB from 4 GiB up. */
    assert_int_equal(hv_x86_firmware_describe(&fc, 4ull << 30, 2, "/pci@i0cf8/scsi@3/disk@0,0"), 0);
    select_item(&fc, FW_CFG_NB_CPUS);
    read_data(&fc, &cpus, 2);
    assert_int_equal(le16toh(cpus), 2);

    e820 = read_file(&fc, "etc/e820", &size);
    assert_non_null(e820);
    assert_int_equal(size, 2 * sizeof(*e820));
    assert_int_equal(e820[0].addr, 0);
    assert_int_equal(e820[0].size, 3ull << 30);
    assert_int_equal(e820[0].type, 1);
    assert_int_equal(e820[1].addr, 4ull << 30);
    assert_int_equal(e820[1].size, 1ull << 30);
    assert_int_equal(e820[1].type, 1);
    free(e820);

    text = read_file(&fc, "bootorder", &size);
    assert_non_null(text);
    assert_string_equal(text, "/pci@i0cf8/scsi@3/disk@0,0");
    free(text);
    u16 = read_file(&fc, "etc/sercon-port", &size);
    assert_int_equal(size, 2);
    assert_int_equal(le16toh(*u16), 0x3f8);
    free(u16);
    u16 = read_file(&fc, "etc/show-boot-menu", &size);
    assert_int_equal(le16toh(*u16), 0);
    free(u16);

    /* SMBIOS field overrides at the x86 key: a count, then {length, 0, type, offset, string}. */
    uint8_t smbios[256] = {0};
    select_item(&fc, FW_CFG_SMBIOS_ENTRIES);
    read_data(&fc, smbios, sizeof(smbios));
    assert_int_equal(smbios[0] | smbios[1] << 8, 5);
    assert_int_equal(smbios[2] | smbios[3] << 8, 6 + 5); /* first entry: "vmmd\0" */
    assert_int_equal(smbios[4], 0);                      /* a field */
    assert_int_equal(smbios[5], 0);                      /* table type 0: BIOS vendor */
    assert_int_equal(smbios[6] | smbios[7] << 8, 4);
    assert_string_equal((char *)smbios + 8, "vmmd");

    /* ACPI: an RSDP file, the tables, and a loader of 128-byte commands. */
    rsdp = read_file(&fc, "etc/acpi/rsdp", &rsdp_size);
    tables = read_file(&fc, "etc/acpi/tables", &tables_size);
    loader = read_file(&fc, "etc/table-loader", &loader_size);
    assert_non_null(rsdp);
    assert_non_null(tables);
    assert_non_null(loader);
    assert_int_equal(rsdp_size, 36);
    assert_memory_equal(rsdp, "RSD PTR ", 8);
    assert_int_equal(loader_size % 128, 0);
    assert_int_equal(le32toh(*(uint32_t *)loader), 1); /* ALLOCATE first */
    assert_string_equal((char *)loader + 4, "etc/acpi/rsdp");
    /* The XSDT the RSDP points to, relative to the tables file, before the loader adds. */
    uint64_t xsdt;
    memcpy(&xsdt, rsdp + 24, 8);
    assert_true(xsdt < tables_size);
    assert_memory_equal(tables + xsdt, "XSDT", 4);
    uint8_t sum = 0;
    for (uint32_t i = 0; i < 36; i++)
        sum = (uint8_t)(sum + rsdp[i]);
    assert_int_equal(sum, 0);
    free(rsdp);
    free(tables);
    free(loader);
    fw_cfg_destroy(&fc);
}

static void save_fwcf(const void *dev, struct snap_w *w)
{
    fw_cfg_save(dev, w);
}

static int load_fwcf(void *dev, struct snap_r *r)
{
    return fw_cfg_load(dev, r);
}

#define FWCF_OFF_SELECTOR 10
#define FWCF_OFF_OFFSET   12

/* The same machine description on both sides, as a restore sets it up before loading. */
static void fw_cfg_machine(struct fake_platform *fp, struct fw_cfg *fc)
{
    static const char boot[] = "/pci@i0cf8/ide@1/drive@0/disk@0\n";

    fake_platform_init(fp);
    assert_int_equal(fw_cfg_init(fc, &fp->platform), 0);
    assert_int_equal(fw_cfg_add_file(fc, "bootorder", boot, sizeof(boot)), 0);
    assert_int_equal(fw_cfg_add_u16(fc, FW_CFG_NB_CPUS, 2), 0);
}

/* A read stopped half way through a file continues with its next byte after a load. */
static void test_snapshot(void **state)
{
    struct fake_platform fp, gp;
    struct fw_cfg fc, g;
    uint32_t size;
    int key;
    char a[64], b[64];
    struct snap_w w;

    (void)state;
    fw_cfg_machine(&fp, &fc);
    fw_cfg_machine(&gp, &g);
    key = find_file(&fc, "bootorder", &size);
    assert_true(key >= FW_CFG_FILE_FIRST);
    select_item(&fc, (uint16_t)key);
    read_data(&fc, a, 10);
    snap_test_save(&fc, save_fwcf, &w);
    assert_int_equal(snap_test_load(&g, load_fwcf, w.buf, w.len, NULL, 0), 0);
    snap_assert_saves(&g, save_fwcf, &w);
    read_data(&fc, a, size - 10);
    read_data(&g, b, size - 10);
    assert_memory_equal(b, a, size - 10);
    assert_memory_equal(b, "/ide@1/drive@0", 14);

    /* Refused: an offset past the selected item's end, or into an item that is not there. */
    snap_assert_corruption_refused(&g, save_fwcf, load_fwcf, &w, 1);
    snap_assert_field_refused(&g, save_fwcf, load_fwcf, &w, FWCF_OFF_OFFSET, size + 1, 4,
                              "past the end");
    {
        uint8_t *buf = snap_patched(&w, FWCF_OFF_SELECTOR, 0x3fff, 2);
        snap_assert_refused(&g, save_fwcf, load_fwcf, buf, w.len, "past the end");
        free(buf);
    }
    /* The offset may sit right at the end: the next reads are zeros. */
    {
        uint8_t *buf = snap_patched(&w, FWCF_OFF_OFFSET, size, 4);
        assert_int_equal(snap_test_load(&g, load_fwcf, buf, w.len, NULL, 0), 0);
        assert_int_equal(dev_in8(&g.dev, 1), 0);
        free(buf);
    }
    snap_w_free(&w);
    fw_cfg_destroy(&fc);
    fw_cfg_destroy(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_and_id),
        cmocka_unit_test(test_files_and_directory),
        cmocka_unit_test(test_bad_selectors_and_writes),
        cmocka_unit_test(test_firmware_description),
        cmocka_unit_test(test_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
