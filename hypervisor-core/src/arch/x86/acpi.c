/*
 * Minimal ACPI tables (ACPI 6.x): an RSDP in the BIOS area pointing to an
 * XSDT with a FADT (fixed hardware at ACPI_PM_BASE, reset register 0xCF9,
 * legacy devices and 8042 present), a FACS, a DSDT (dsdt.c: \_S5 and the
 * PCI root bridge), and a MADT listing one local APIC per vCPU
 * and the IOAPIC. This replaces an MP table: Linux finds SMP through it.
 */
#include "boot.h"
#include "layout.h"
#include "devices/legacy/acpi_pm.h"

#include <errno.h>
#include <string.h>

/* Offsets inside the region (X86_ACPI_REGION_SIZE bytes) the tables are built in. */
#define RSDP_OFF       0
#define XSDT_OFF       0x40
#define FACS_OFF       0x100 /* 64-byte aligned */
#define FADT_OFF       0x200
#define MADT_OFF       0x500
#define MADT_MAX_LEN (0x1000 - 0x500)
#define DSDT_OFF       0x1000
#define DSDT_MAX_LEN 0x1000
#define XSDT_LEN       (36 + 2 * 8)
#define FADT_LEN       276
#define MADT_FIXED_LEN (44 + 12 + 10 + 6) /* header, IOAPIC, override, NMI */

struct __attribute__((packed)) acpi_header {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    char creator_id[4];
    uint32_t creator_revision;
};

struct __attribute__((packed)) acpi_rsdp {
    char signature[8];
    uint8_t checksum;
    char oem_id[6];
    uint8_t revision;
    uint32_t rsdt_address;
    uint32_t length;
    uint64_t xsdt_address;
    uint8_t extended_checksum;
    uint8_t reserved[3];
};

static uint8_t checksum(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint8_t sum = 0;

    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + b[i]);
    return (uint8_t)-sum;
}

static void header(void *table, const char *sig, uint32_t len, uint8_t rev)
{
    struct acpi_header *h = table;

    memcpy(h->signature, sig, 4);
    h->length = len;
    h->revision = rev;
    memcpy(h->oem_id, "VMMD  ", 6);
    memcpy(h->oem_table_id, "VMMDVM  ", 8);
    h->oem_revision = 1;
    memcpy(h->creator_id, "VMMD", 4);
    h->creator_revision = 1;
}

static void put8(uint8_t *t, unsigned off, uint8_t v)
{
    t[off] = v;
}

static void put16(uint8_t *t, unsigned off, uint16_t v)
{
    memcpy(t + off, &v, 2);
}

static void put32(uint8_t *t, unsigned off, uint32_t v)
{
    memcpy(t + off, &v, 4);
}

static void put64(uint8_t *t, unsigned off, uint64_t v)
{
    memcpy(t + off, &v, 8);
}

/* Sets a finished table's checksum. */
static void commit(uint8_t *table)
{
    struct acpi_header *h = (struct acpi_header *)table;

    h->checksum = 0;
    h->checksum = checksum(table, h->length);
}

/* The fields that hold region addresses, for a loader that moves the tables. */
const struct hv_x86_acpi_field hv_x86_acpi_pointers[] = {
    {RSDP_OFF + 24, 8, 0},  /* RSDP.XsdtAddress */
    {XSDT_OFF + 36, 8, 0},  /* XSDT -> FADT */
    {XSDT_OFF + 44, 8, 0},  /* XSDT -> MADT */
    {FADT_OFF + 36, 4, 0},  /* FADT.FIRMWARE_CTRL */
    {FADT_OFF + 40, 4, 0},  /* FADT.DSDT */
    {FADT_OFF + 140, 8, 0}, /* FADT.X_DSDT */
    {0, 0, 0},
};

/* The checksums those fields are under: offset of the checksum byte, size of the range before it.
 */
const struct hv_x86_acpi_field hv_x86_acpi_checksums[] = {
    {RSDP_OFF + 8, 20, RSDP_OFF},  /* ACPI 1.0 part of the RSDP */
    {RSDP_OFF + 32, 36, RSDP_OFF}, /* extended checksum */
    {XSDT_OFF + 9, XSDT_LEN, XSDT_OFF}, {FADT_OFF + 9, FADT_LEN, FADT_OFF}, {0, 0, 0},
};

static void build_fadt(uint8_t *t, uint64_t base)
{
    enum {
        FLAG_WBINVD = 1u << 0,
        FLAG_C1 = 1u << 2,
        FLAG_NO_PWR_BUTTON = 1u << 4,
        FLAG_NO_SLP_BUTTON = 1u << 5,
        FLAG_RESET_REG = 1u << 10,
        BOOT_LEGACY_DEVICES = 1u << 0,
        BOOT_8042 = 1u << 1,
    };

    header(t, "FACP", FADT_LEN, 6);
    put32(t, 36, (uint32_t)(base + FACS_OFF));
    put32(t, 40, (uint32_t)(base + DSDT_OFF));
    put16(t, 46, ACPI_SCI_IRQ);
    put32(t, 48, 0); /* no SMI command port: always in ACPI mode */
    put32(t, 56, ACPI_PM1_EVT_BLK);
    put32(t, 64, ACPI_PM1_CNT_BLK);
    put32(t, 76, ACPI_PM_TMR_BLK);
    put8(t, 88, 4);       /* PM1_EVT_LEN */
    put8(t, 89, 2);       /* PM1_CNT_LEN */
    put8(t, 91, 4);       /* PM_TMR_LEN */
    put16(t, 96, 101);    /* C2 latency > 100: no C2 */
    put16(t, 98, 1001);   /* C3 latency > 1000: no C3 */
    put8(t, 108, 0x32);   /* CMOS century register */
    put16(t, 109, BOOT_LEGACY_DEVICES | BOOT_8042);
    put32(t, 112, FLAG_WBINVD | FLAG_C1 | FLAG_NO_PWR_BUTTON | FLAG_NO_SLP_BUTTON | FLAG_RESET_REG);
    /* RESET_REG: generic address, system I/O space, 8 bits at 0xCF9, byte access. */
    put8(t, 116, 1);
    put8(t, 117, 8);
    put8(t, 119, 1);
    put64(t, 120, 0xcf9);
    put8(t, 128, 0x06);
    put64(t, 140, base + DSDT_OFF); /* X_DSDT */
}

static int build_dsdt(uint8_t *t, size_t cap)
{
    size_t aml = hv_x86_dsdt_aml(t + sizeof(struct acpi_header), cap - sizeof(struct acpi_header));

    if (!aml)
        return -ENOSPC;
    header(t, "DSDT", (uint32_t)(sizeof(struct acpi_header) + aml), 2);
    return 0;
}

static void build_madt(uint8_t *t, unsigned nr_vcpus)
{
    unsigned off = 44;

    put32(t, 36, X86_LAPIC_ADDR);
    put32(t, 40, 1); /* PCAT_COMPAT: dual 8259s present */
    for (unsigned i = 0; i < nr_vcpus; i++) {
        put8(t, off, 0); /* processor local APIC */
        put8(t, off + 1, 8);
        put8(t, off + 2, (uint8_t)i);
        put8(t, off + 3, (uint8_t)i);
        put32(t, off + 4, 1); /* enabled */
        off += 8;
    }
    put8(t, off, 1); /* IOAPIC, id 0, GSI base 0 */
    put8(t, off + 1, 12);
    put8(t, off + 2, 0);
    put32(t, off + 4, X86_IOAPIC_ADDR);
    put32(t, off + 8, 0);
    off += 12;
    /* SCI: ISA IRQ 9 on GSI 9, level triggered, active high. ISA IRQs are identity mapped. */
    put8(t, off, 2);
    put8(t, off + 1, 10);
    put8(t, off + 2, 0);
    put8(t, off + 3, ACPI_SCI_IRQ);
    put32(t, off + 4, ACPI_SCI_IRQ);
    put16(t, off + 8, 0x000d);
    off += 10;
    put8(t, off, 4); /* local APIC NMI on LINT1 of every processor */
    put8(t, off + 1, 6);
    put8(t, off + 2, 0xff);
    put16(t, off + 3, 0);
    put8(t, off + 5, 1);
    off += 6;
    header(t, "APIC", off, 4);
}

int hv_x86_acpi_build_at(uint8_t *region, uint64_t base, unsigned nr_vcpus)
{
    struct acpi_rsdp rsdp;
    uint8_t *t;
    int rc;

    if (nr_vcpus == 0 || MADT_FIXED_LEN + nr_vcpus * 8 > MADT_MAX_LEN)
        return -EINVAL;
    memset(region, 0, X86_ACPI_REGION_SIZE);

    t = region + XSDT_OFF;
    header(t, "XSDT", XSDT_LEN, 1);
    put64(t, 36, base + FADT_OFF);
    put64(t, 44, base + MADT_OFF);
    commit(t);

    build_fadt(region + FADT_OFF, base);
    commit(region + FADT_OFF);

    if ((rc = build_dsdt(region + DSDT_OFF, DSDT_MAX_LEN)))
        return rc;
    commit(region + DSDT_OFF);

    build_madt(region + MADT_OFF, nr_vcpus);
    commit(region + MADT_OFF);

    t = region + FACS_OFF;
    memcpy(t, "FACS", 4);
    put32(t, 4, 64);
    put8(t, 32, 2); /* version */

    memset(&rsdp, 0, sizeof(rsdp));
    memcpy(rsdp.signature, "RSD PTR ", 8);
    memcpy(rsdp.oem_id, "VMMD  ", 6);
    rsdp.revision = 2;
    rsdp.length = sizeof(rsdp);
    rsdp.xsdt_address = base + XSDT_OFF;
    rsdp.checksum = checksum(&rsdp, 20);
    rsdp.extended_checksum = checksum(&rsdp, sizeof(rsdp));
    memcpy(region + RSDP_OFF, &rsdp, sizeof(rsdp));
    return 0;
}

int hv_x86_acpi_build(const struct hv_guest_mem *mem, unsigned nr_vcpus)
{
    uint8_t *region = hv_gpa_to_hva(mem, X86_ACPI_RSDP_ADDR, X86_ACPI_REGION_SIZE);

    return region ? hv_x86_acpi_build_at(region, X86_ACPI_RSDP_ADDR, nr_vcpus) : -ENOMEM;
}
