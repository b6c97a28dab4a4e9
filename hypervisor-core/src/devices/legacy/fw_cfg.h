/*
 * QEMU's firmware configuration device (docs/specs/fw_cfg.rst), the
 * traditional I/O port interface only: a 16-bit selector at 0x510 picks an
 * item, byte reads at 0x511 stream it from its start. SeaBIOS reads the
 * machine's description from it: CPU count, memory map (etc/e820), boot
 * order, serial console, ACPI tables. Items are copied in at setup and never
 * change; guest writes to the data port are ignored, as QEMU >= 2.4 does.
 */
#ifndef HV_FW_CFG_H
#define HV_FW_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "snapshot/snap_buf.h"

#define FW_CFG_PORT_SEL  0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_PORT_LEN  2

/* Selector keys (fw_cfg.rst, "Selector Register"). */
enum {
    FW_CFG_SIGNATURE = 0x00,
    FW_CFG_ID = 0x01,
    FW_CFG_RAM_SIZE = 0x03,
    FW_CFG_NB_CPUS = 0x05,
    FW_CFG_MAX_CPUS = 0x0f,
    FW_CFG_FILE_DIR = 0x19,
    FW_CFG_FILE_FIRST = 0x20,
    FW_CFG_MAX_ENTRY = 0x40, /* what this device holds: 0x20 files */
    /* Architecture-specific items (bit 15); x86 has a few, SeaBIOS reads SMBIOS fields there. */
    FW_CFG_ARCH_LOCAL = 0x8000,
    FW_CFG_SMBIOS_ENTRIES = 0x8001,
    FW_CFG_MAX_ARCH = 4,
};

#define FW_CFG_MAX_FILES (FW_CFG_MAX_ENTRY - FW_CFG_FILE_FIRST)
#define FW_CFG_NAME_LEN  56

struct fw_cfg_item {
    uint8_t *data;
    uint32_t len;
};

struct fw_cfg {
    struct hv_device dev;
    uint16_t selector;
    uint32_t offset; /* next byte of the selected item to read */
    struct fw_cfg_item items[FW_CFG_MAX_ENTRY];
    struct fw_cfg_item arch_items[FW_CFG_MAX_ARCH]; /* keys FW_CFG_ARCH_LOCAL + i */
    char names[FW_CFG_MAX_FILES][FW_CFG_NAME_LEN];
    unsigned nr_files;
};

/* Sets up the signature, the interface ID and an empty file directory. 0 or -ENOMEM. */
int fw_cfg_init(struct fw_cfg *fc, const struct hv_platform *platform);
void fw_cfg_destroy(struct fw_cfg *fc);
/* Copies len bytes in as the item at a fixed key (< FW_CFG_FILE_FIRST, or an arch key). */
int fw_cfg_add_item(struct fw_cfg *fc, uint16_t key, const void *data, uint32_t len);
/* Little-endian integers, the way fixed items are read. */
int fw_cfg_add_u16(struct fw_cfg *fc, uint16_t key, uint16_t v);
int fw_cfg_add_u64(struct fw_cfg *fc, uint16_t key, uint64_t v);
/* Copies len bytes in as a named file at the next free key and lists it in the
 * directory. -EEXIST, -ENAMETOOLONG, -ENOSPC, -ENOMEM. */
int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, uint32_t len);
/* Snapshot (section 'FWCF'): the selector and the read offset. The items are the machine's
 * configuration, set up again identically before a load, and are not saved. */
void fw_cfg_save(const struct fw_cfg *fc, struct snap_w *w);
int fw_cfg_load(struct fw_cfg *fc, struct snap_r *r);

#endif
