/*
 * Guest RAM: one anonymous host mapping, seen by the guest as a low part
 * below the PCI hole and, for guests above 3 GiB, a high part from 4 GiB.
 * Every access the VMM makes on the guest's behalf goes through
 * hv_gpa_to_hva(), which refuses ranges that are not entirely RAM.
 */
#ifndef HV_GUEST_MEM_H
#define HV_GUEST_MEM_H

#include <stdbool.h>
#include <stdint.h>

#define HV_PCI_HOLE_START 0xc0000000ull /* 3 GiB */
#define HV_HIGH_MEM_START 0x100000000ull /* 4 GiB */

struct hv_guest_mem {
    uint8_t *host;
    uint64_t size;     /* all of guest RAM */
    uint64_t low_size; /* the part mapped at guest physical 0 */
    /* While a migration runs: a bit per page of host for each page a device thread may have
     * written (every translation is counted, reads too), NULL otherwise. */
    uint64_t *dirty;
    bool file_backed; /* a snapshot's memory file: an absent page is not a zero page */
    int backing_fd;   /* that file (a dup), -1 otherwise */
};

/* Maps size bytes, untouched until the guest uses them. */
int hv_guest_mem_init(struct hv_guest_mem *mem, uint64_t size);
/* Maps size bytes of fd copy-on-write: the file is never written. */
int hv_guest_mem_init_file(struct hv_guest_mem *mem, uint64_t size, int fd);
void hv_guest_mem_destroy(struct hv_guest_mem *mem);
/* Marks the pages of [hva, hva+len) (inside host) as written by a device, if tracking. */
void hv_guest_mem_mark(const struct hv_guest_mem *mem, const void *hva, uint64_t len);
/* NULL unless [gpa, gpa+len) is wholly inside one RAM region. */
void *hv_gpa_to_hva(const struct hv_guest_mem *mem, uint64_t gpa, uint64_t len);
/* Copies into guest RAM; -ENOMEM unless the whole range is RAM. */
int hv_guest_mem_write(const struct hv_guest_mem *mem, uint64_t gpa, const void *src, uint64_t len);

#endif
