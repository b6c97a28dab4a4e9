/*
 * libFuzzer harness for the kernel loaders (arch/x86/loader.c): the input is
 * the kernel image, handed to hv_x86_load_kernel_image() as `vmmd run
 * --kernel` does after mapping the file, with a small initrd and a command
 * line. ELF64 images (vmlinux, the test guests) and bzImages are told apart
 * by the loader itself, so both paths are fuzzed from one corpus.
 *
 * Guest RAM is the real allocation (hv_guest_mem_init) of a 32 MiB guest,
 * made once and reused: the loader only writes it, and a fresh mapping per
 * input would cost more than the load.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "arch/x86/boot.h"
#include "guest_mem.h"

#define GUEST_RAM (32ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct hv_guest_mem mem;
    static const uint8_t initrd[4096] = {0x30, 0x37, 0x30, 0x37, 0x30, 0x31}; /* "070701": cpio */
    struct hv_x86_boot boot;
    char err[256];

    if (!mem.host && hv_guest_mem_init(&mem, GUEST_RAM) != 0)
        abort();
    /* The initrd only when the image asks for an odd size, so both placements are reached. */
    hv_x86_load_kernel_image(&mem, data, size, initrd, size & 1 ? sizeof(initrd) : 0,
                             "console=ttyS0 panic=-1", &boot, err, sizeof(err));
    return 0;
}
