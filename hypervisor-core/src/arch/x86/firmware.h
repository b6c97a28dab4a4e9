/*
 * Booting through PC firmware (SeaBIOS's bios-256k.bin, say) instead of
 * loading a kernel: the image is mapped read-only so that it ends at 4 GiB,
 * its last 128 KiB are also where a PC has them (0xE0000-0xFFFFF), and the
 * machine is described to it the way QEMU does, over fw_cfg.
 */
#ifndef HV_X86_FIRMWARE_H
#define HV_X86_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

#include "guest_mem.h"
#include "devices/legacy/fw_cfg.h"

#define X86_FIRMWARE_MIN_SIZE (128u << 10) /* at least the legacy BIOS area */
#define X86_FIRMWARE_MAX_SIZE (16u << 20)  /* below the IOAPIC and LAPIC */
#define X86_FIRMWARE_LOW_SIZE (128u << 10)
#define X86_FIRMWARE_LOW_ADDR 0xe0000

struct hv_x86_firmware {
    uint8_t *image; /* page aligned, size bytes */
    size_t size;
};

/* Reads the image from fd (>= 0) or path. Its size must be a multiple of 4 KiB between
 * X86_FIRMWARE_MIN_SIZE and X86_FIRMWARE_MAX_SIZE. */
int hv_x86_firmware_load(const char *path, int fd, struct hv_x86_firmware *fw, char *err,
                         size_t errlen);
void hv_x86_firmware_free(struct hv_x86_firmware *fw);
/* Where the image is mapped: it ends at 4 GiB. */
uint64_t hv_x86_firmware_base(const struct hv_x86_firmware *fw);
/* Copies the image's last 128 KiB to 0xE0000 in RAM, where the reset code expects it. */
int hv_x86_firmware_copy_low(const struct hv_guest_mem *mem, const struct hv_x86_firmware *fw);

/*
 * Fills fw_cfg: CPU count, RAM (etc/e820), the boot disk (bootorder, a
 * firmware device path), the serial console (etc/sercon-port), no boot menu,
 * SMBIOS vendor strings, and the ACPI tables with the table-loader script
 * that places them.
 */
int hv_x86_firmware_describe(struct fw_cfg *fc, uint64_t mem_size, unsigned nr_vcpus,
                             const char *boot_device);

#endif
