/*
 * The DSDT's AML (ACPI 6.4 chapter 20), written by hand because it is
 * small: \_S5 for power off, and the PCI root bridge \_SB.PCI0 with
 *  - _HID PNP0A03: with ACPI on, Linux finds PCI buses only through it;
 *  - _CRS: the bus numbers and address windows the bridge forwards (Linux
 *    refuses BARs outside them, so they must cover the PCI bus's windows);
 *  - _PRT: each slot's INTA-D wired straight to IOAPIC inputs 16-23, the
 *    same swizzle pci_intx_gsi() uses, so INTx works without link devices.
 */
#include "boot.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/pci/pci_bus.h"

#include <errno.h>
#include <string.h>

#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_NAME 0x08
#define AML_BYTE 0x0a
#define AML_DWORD 0x0c
#define AML_SCOPE 0x10
#define AML_BUFFER 0x11
#define AML_PACKAGE 0x12
#define AML_EXT 0x5b
#define AML_DEVICE 0x82

struct aml {
    uint8_t *buf;
    size_t len, cap;
    bool overflow;
};

static void emit(struct aml *a, const void *p, size_t n)
{
    if (a->len + n > a->cap) {
        a->overflow = true;
        return;
    }
    memcpy(a->buf + a->len, p, n);
    a->len += n;
}

static void emit8(struct aml *a, uint8_t b)
{
    emit(a, &b, 1);
}

static void emit_le(struct aml *a, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        emit8(a, (uint8_t)(v >> (8 * i)));
}

static void emit_integer(struct aml *a, uint32_t v)
{
    if (v == 0) {
        emit8(a, AML_ZERO);
    } else if (v == 1) {
        emit8(a, AML_ONE);
    } else if (v <= 0xff) {
        emit8(a, AML_BYTE);
        emit8(a, (uint8_t)v);
    } else {
        emit8(a, AML_DWORD);
        emit_le(a, v, 4);
    }
}

/*
 * Opens an object with a PkgLength (20.2.4). The length is not known yet,
 * so a 3-byte PkgLength is reserved and patched by close_pkg(): the
 * encoding allows leading bytes to carry zeros, so a fixed width is valid.
 */
static size_t open_pkg(struct aml *a)
{
    size_t at = a->len;

    emit_le(a, 0, 3);
    return at;
}

static void close_pkg(struct aml *a, size_t at)
{
    size_t len = a->len - at;

    if (a->overflow)
        return;
    a->buf[at] = (uint8_t)(0x80 | (len & 0x0f)); /* two more bytes follow */
    a->buf[at + 1] = (uint8_t)(len >> 4);
    a->buf[at + 2] = (uint8_t)(len >> 12);
}

static void emit_name(struct aml *a, const char name[4])
{
    emit8(a, AML_NAME);
    emit(a, name, 4);
}

/* Word address space descriptor (6.4.3.5.3) for a bridge window the device produces. */
static void word_window(struct aml *a, uint8_t type, uint8_t type_flags, uint16_t min,
                        uint16_t max)
{
    emit8(a, 0x88);
    emit_le(a, 13, 2);
    emit8(a, type);
    emit8(a, 0x0c); /* min and max fixed, producer */
    emit8(a, type_flags);
    emit_le(a, 0, 2); /* granularity */
    emit_le(a, min, 2);
    emit_le(a, max, 2);
    emit_le(a, 0, 2); /* translation */
    emit_le(a, (uint32_t)max - min + 1, 2);
}

/* DWord address space descriptor (6.4.3.5.2) for a memory window. */
static void dword_memory_window(struct aml *a, uint32_t min, uint32_t max)
{
    emit8(a, 0x87);
    emit_le(a, 23, 2);
    emit8(a, 0);    /* memory */
    emit8(a, 0x0c); /* min and max fixed, producer */
    emit8(a, 0x01); /* read-write, non-cacheable */
    emit_le(a, 0, 4);
    emit_le(a, min, 4);
    emit_le(a, max, 4);
    emit_le(a, 0, 4);
    emit_le(a, max - min + 1, 4);
}

static void pci_crs(struct aml *a)
{
    uint8_t tmpl[128];
    struct aml r = {.buf = tmpl, .cap = sizeof(tmpl)};
    size_t pkg;

    word_window(&r, 2, 0, 0, 0xff);           /* bus numbers */
    word_window(&r, 1, 0x03, 0x0000, 0x0cf7); /* I/O below the config ports */
    word_window(&r, 1, 0x03, 0x0d00, 0xffff); /* and above them */
    dword_memory_window(&r, (uint32_t)PCI_MMIO_WINDOW_BASE, (uint32_t)PCI_MMIO_WINDOW_END - 1);
    emit8(&r, 0x79); /* end tag, checksum 0 = not checked */
    emit8(&r, 0);

    emit_name(a, "_CRS");
    emit8(a, AML_BUFFER);
    pkg = open_pkg(a);
    emit_integer(a, (uint32_t)r.len);
    emit(a, tmpl, r.len);
    a->overflow |= r.overflow;
    close_pkg(a, pkg);
}

static void pci_prt(struct aml *a)
{
    size_t outer, inner;

    emit_name(a, "_PRT");
    emit8(a, AML_PACKAGE);
    outer = open_pkg(a);
    emit8(a, PCI_MAX_SLOTS * 4);
    for (unsigned slot = 0; slot < PCI_MAX_SLOTS; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            emit8(a, AML_PACKAGE);
            inner = open_pkg(a);
            emit8(a, 4);
            emit8(a, AML_DWORD); /* address: slot in the high word, any function */
            emit_le(a, (uint32_t)slot << 16 | 0xffff, 4);
            emit_integer(a, pin);
            emit8(a, AML_ZERO); /* no link device: the last field is a GSI */
            emit_integer(a, pci_intx_gsi(slot, pin));
            close_pkg(a, inner);
        }
    }
    close_pkg(a, outer);
}

size_t hv_x86_dsdt_aml(uint8_t *buf, size_t cap)
{
    struct aml a = {.buf = buf, .cap = cap};
    size_t scope, dev;

    /* Name (_S5, Package (4) { S5_SLP_TYP, 0, 0, 0 }) */
    emit_name(&a, "_S5_");
    emit8(&a, AML_PACKAGE);
    dev = open_pkg(&a);
    emit8(&a, 4);
    emit_integer(&a, ACPI_S5_SLP_TYP);
    for (int i = 0; i < 3; i++)
        emit8(&a, AML_ZERO);
    close_pkg(&a, dev);

    emit8(&a, AML_SCOPE);
    scope = open_pkg(&a);
    emit(&a, "_SB_", 4);
    emit8(&a, AML_EXT);
    emit8(&a, AML_DEVICE);
    dev = open_pkg(&a);
    emit(&a, "PCI0", 4);
    emit_name(&a, "_HID");
    emit8(&a, AML_DWORD);
    emit_le(&a, 0x030ad041, 4); /* EisaId ("PNP0A03") */
    emit_name(&a, "_UID");
    emit8(&a, AML_ZERO);
    pci_crs(&a);
    pci_prt(&a);
    close_pkg(&a, dev);
    close_pkg(&a, scope);
    return a.overflow ? 0 : a.len;
}
