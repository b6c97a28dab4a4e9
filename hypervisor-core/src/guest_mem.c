/* Guest RAM allocation and guest-physical to host-virtual translation. */
#include "guest_mem.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/mman.h>

#define GUEST_MEM_ALIGN (2ull << 20)

/* More extents than this and the whole file is mapped instead (each is a mapping). */
#define MAX_FILE_EXTENTS 4096
#define PAGE_MASK_4K 4095ull

/*
 * A snapshot's RAM: the file's pages, read on first touch, copied on first write. Only the
 * file's data extents are mapped from it; its holes stay anonymous memory, which reads as the
 * same zeroes, and which mincore() reports honestly as never touched (for a file mapping it
 * reports the page cache, which may hold a whole sparse file), so a later snapshot reads only
 * what the guest wrote. -1 (errno) on failure.
 */
static int map_file_data(uint8_t *p, uint64_t size, int fd)
{
    const int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE;
    off_t off = 0, data, hole;
    unsigned extents = 0;

    errno = 0;
    while ((uint64_t)off < size && (data = lseek(fd, off, SEEK_DATA)) >= 0 &&
           (hole = lseek(fd, data, SEEK_HOLE)) >= 0) {
        uint64_t first = (uint64_t)data & ~PAGE_MASK_4K;
        uint64_t end = ((uint64_t)hole + PAGE_MASK_4K) & ~PAGE_MASK_4K;
        if (end > size)
            end = size;
        if (++extents > MAX_FILE_EXTENTS)
            break;
        if (first < end && mmap(p + first, end - first, prot, flags, fd, (off_t)first) == MAP_FAILED)
            return -1;
        off = (off_t)end;
    }
    if ((uint64_t)off < size && extents <= MAX_FILE_EXTENTS && errno == ENXIO)
        return 0; /* no data past off: the rest stays anonymous zeroes */
    if ((uint64_t)off >= size)
        return 0;
    /* No SEEK_DATA here, or too fragmented: all of it from the file. */
    return mmap(p, size, prot, flags, fd, 0) == MAP_FAILED ? -1 : 0;
}

static int guest_mem_map(struct hv_guest_mem *mem, uint64_t size, int fd)
{
    /*
     * 2 MiB-aligned, so that with THP the kernel can back guest RAM with huge
     * pages and KVM can map it with 2 MiB nested page-table entries. Unaligned
     * (mmap's default on 6.1 kernels), a nested host used only 4 KiB entries:
     * measured in the TCG lab, 28,852 nested page faults before L2's first
     * disk read instead of 64, and that read 2-3x slower.
     */
    uint8_t *raw = mmap(NULL, size + GUEST_MEM_ALIGN, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    uint8_t *p;

    if (raw == MAP_FAILED)
        return -errno;
    p = (uint8_t *)(((uintptr_t)raw + GUEST_MEM_ALIGN - 1) & ~(uintptr_t)(GUEST_MEM_ALIGN - 1));
    if (p > raw)
        munmap(raw, (size_t)(p - raw));
    if (p + size < raw + size + GUEST_MEM_ALIGN)
        munmap(p + size, (size_t)(raw + size + GUEST_MEM_ALIGN - (p + size)));
    if (fd >= 0 && map_file_data(p, size, fd) < 0) {
        int rc = -errno;
        munmap(p, size);
        return rc;
    }
    /*
     * No MADV_HUGEPAGE: with Debian's THP defrag=madvise it makes first touches
     * compact memory synchronously, measured at 3.5 ms stalls before the guest's
     * first instruction in half of the runs (0.2 ms without).
     */
    mem->host = p;
    mem->size = size;
    mem->low_size = size < HV_PCI_HOLE_START ? size : HV_PCI_HOLE_START;
    return 0;
}

int hv_guest_mem_init(struct hv_guest_mem *mem, uint64_t size)
{
    return guest_mem_map(mem, size, -1);
}

int hv_guest_mem_init_file(struct hv_guest_mem *mem, uint64_t size, int fd)
{
    int rc = guest_mem_map(mem, size, fd);

    mem->file_backed = rc == 0;
    /* Kept to find the file's holes (SEEK_HOLE): untouched pages there need no reading. */
    mem->backing_fd = rc == 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
    return rc;
}

void hv_guest_mem_destroy(struct hv_guest_mem *mem)
{
    if (mem->host)
        munmap(mem->host, mem->size);
    mem->host = NULL;
    free(mem->dirty);
    mem->dirty = NULL;
    if (mem->file_backed && mem->backing_fd >= 0)
        close(mem->backing_fd);
    mem->backing_fd = -1;
}

void hv_guest_mem_mark(const struct hv_guest_mem *mem, const void *hva, uint64_t len)
{
    uint64_t *dirty = __atomic_load_n(&mem->dirty, __ATOMIC_ACQUIRE);
    uint64_t off = (uint64_t)((const uint8_t *)hva - mem->host);

    if (!dirty || !len || off >= mem->size)
        return;
    for (uint64_t p = off >> 12, last = (off + len - 1) >> 12; p <= last && p < mem->size >> 12;
         p++)
        __atomic_fetch_or(&dirty[p / 64], 1ull << (p % 64), __ATOMIC_RELAXED);
}

void *hv_gpa_to_hva(const struct hv_guest_mem *mem, uint64_t gpa, uint64_t len)
{
    uint64_t high_size = mem->size - mem->low_size;
    uint8_t *hva = NULL;

    if (gpa < mem->low_size && len <= mem->low_size - gpa)
        hva = mem->host + gpa;
    else if (gpa >= HV_HIGH_MEM_START && gpa - HV_HIGH_MEM_START < high_size &&
             len <= high_size - (gpa - HV_HIGH_MEM_START))
        hva = mem->host + mem->low_size + (gpa - HV_HIGH_MEM_START);
    /* A device may write what it translated: a live migration must send that page again. */
    if (hva)
        hv_guest_mem_mark(mem, hva, len);
    return hva;
}

int hv_guest_mem_write(const struct hv_guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
    void *dst = hv_gpa_to_hva(mem, gpa, len);

    if (!dst)
        return -ENOMEM;
    memcpy(dst, src, len);
    return 0;
}
