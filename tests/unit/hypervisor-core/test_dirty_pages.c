/*
 * Dirty-page tracking for live migration without KVM: the bitmap helpers
 * (merge, count), the device side (every guest-RAM translation a device
 * makes marks its pages, in the low and the high part of RAM, and nothing
 * outside RAM), and a virtqueue's used-ring writes, which go through a
 * mapping made once at enable and so must mark the ring themselves.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "hv/hv.h"
#include "devices/virtio/virtqueue.h"
#include "guest_mem.h"

#define LOW (4u << 20)
#define HIGH (1u << 20)

static bool bit(const uint64_t *b, uint64_t page)
{
    return (b[page / 64] >> (page % 64)) & 1;
}

static void test_merge_and_count(void **state)
{
    uint64_t a[3] = {0x1, 0x0, 0x8000000000000000ull}, b[3] = {0x3, 0xf0, 0x0};

    (void)state;
    assert_int_equal(hv_dirty_bitmap_count(a, 3), 2);
    hv_dirty_bitmap_merge(a, b, 3);
    assert_int_equal(a[0], 0x3);
    assert_int_equal(a[1], 0xf0);
    assert_int_equal(a[2], 0x8000000000000000ull);
    assert_int_equal(hv_dirty_bitmap_count(a, 3), 7);
    hv_dirty_bitmap_merge(a, NULL, 3); /* no device bitmap: nothing changes */
    assert_int_equal(hv_dirty_bitmap_count(a, 3), 7);
    assert_int_equal(HV_DIRTY_BITMAP_WORDS(256ull << 20), 1024);
    assert_int_equal(HV_DIRTY_BITMAP_WORDS(4096 * 65), 2);
}

struct ram {
    struct hv_guest_mem mem;
    uint64_t *dirty;
    size_t words;
};

static void ram_init(struct ram *r, uint64_t low, uint64_t high)
{
    memset(r, 0, sizeof(*r));
    r->mem.size = low + high;
    r->mem.low_size = low;
    r->mem.host = calloc(1, r->mem.size);
    r->words = HV_DIRTY_BITMAP_WORDS(r->mem.size);
    r->dirty = calloc(r->words, sizeof(uint64_t));
    assert_non_null(r->mem.host);
    assert_non_null(r->dirty);
}

static void ram_free(struct ram *r)
{
    free(r->mem.host);
    free(r->dirty);
}

static void test_translations_mark_pages(void **state)
{
    struct ram r;

    (void)state;
    ram_init(&r, LOW, HIGH);
    /* Not tracking: nothing is marked, translations work as always. */
    assert_non_null(hv_gpa_to_hva(&r.mem, 0x1000, 16));
    r.mem.dirty = r.dirty;
    assert_int_equal(hv_dirty_bitmap_count(r.dirty, r.words), 0);
    /* Within one page, across a page boundary, in the high part (host pages follow the low
     * part), and a range outside RAM that marks nothing. */
    assert_non_null(hv_gpa_to_hva(&r.mem, 0x3008, 8));
    assert_non_null(hv_gpa_to_hva(&r.mem, 0x5ff0, 0x20));
    assert_non_null(hv_gpa_to_hva(&r.mem, HV_HIGH_MEM_START + 0x2000, 4096));
    assert_null(hv_gpa_to_hva(&r.mem, LOW - 8, 16));
    assert_null(hv_gpa_to_hva(&r.mem, HV_HIGH_MEM_START + HIGH, 1));
    assert_true(bit(r.dirty, 3));
    assert_true(bit(r.dirty, 5) && bit(r.dirty, 6));
    assert_true(bit(r.dirty, LOW / 4096 + 2));
    assert_int_equal(hv_dirty_bitmap_count(r.dirty, r.words), 4);
    /* Marking by host address: clipped to RAM, nothing for zero bytes. */
    hv_guest_mem_mark(&r.mem, r.mem.host + r.mem.size - 1, 4096);
    hv_guest_mem_mark(&r.mem, r.mem.host + 0x9000, 0);
    assert_true(bit(r.dirty, r.mem.size / 4096 - 1));
    assert_int_equal(hv_dirty_bitmap_count(r.dirty, r.words), 5);
    r.mem.dirty = NULL;
    ram_free(&r);
}

static void test_used_ring_writes_mark_the_ring(void **state)
{
    struct ram r;
    struct virtq vq;
    struct virtq_elem elem;
    struct vring_desc *desc;
    struct vring_avail *avail;

    (void)state;
    ram_init(&r, LOW, 0);
    memset(&vq, 0, sizeof(vq));
    vq.size = 16;
    vq.desc_gpa = 0x10000;
    vq.avail_gpa = 0x11000;
    vq.used_gpa = 0x12000;
    assert_int_equal(virtq_enable(&vq, &r.mem), 0);
    desc = (struct vring_desc *)(r.mem.host + vq.desc_gpa);
    avail = (struct vring_avail *)(r.mem.host + vq.avail_gpa);
    desc[0] = (struct vring_desc){.addr = 0x20000, .len = 512, .flags = VRING_DESC_F_WRITE};
    avail->ring[0] = 0;
    avail->idx = 1;
    /* Tracking starts after the rings were mapped, as in a migration. */
    r.mem.dirty = r.dirty;
    assert_int_equal(virtq_pop(&vq, &elem), 1);
    assert_true(bit(r.dirty, 0x20000 / 4096)); /* the buffer, at translation */
    assert_false(bit(r.dirty, 0x12000 / 4096));
    virtq_push(&vq, &elem, 512);
    assert_true(bit(r.dirty, 0x12000 / 4096)); /* the used ring, at the push */
    r.mem.dirty = NULL;
    ram_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_and_count),
        cmocka_unit_test(test_translations_mark_pages),
        cmocka_unit_test(test_used_ring_writes_mark_the_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
