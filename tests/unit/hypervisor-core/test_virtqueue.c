/*
 * Split virtqueues (devices/virtio/virtqueue.c) over a fake guest RAM that is
 * one exactly-sized malloc, with rings built by hand: the good paths, then
 * every malformed ring a hostile driver can build. Each hostile case must
 * break the queue with a reason and must not touch memory outside the fake
 * RAM (ASan turns any such access into a failure).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtqueue.h"

/* Layout of the low fake RAM (64 KiB). */
#define RAM_LOW (64u << 10)
#define DESC_GPA 0x0000
#define AVAIL_GPA 0x1000
#define USED_GPA 0x2000
#define TABLE_GPA 0x4000 /* indirect tables */
#define DATA_GPA 0x8000  /* buffers */
#define QSIZE 16

/* A high part above the PCI hole, in the machines that have one. */
#define RAM_HIGH (16u << 10)

struct fixture {
    struct hv_guest_mem mem;
    struct virtq vq;
    struct virtq_elem elem;
};

static struct fixture *new_fixture(uint64_t high)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->mem.size = RAM_LOW + high;
    f->mem.low_size = RAM_LOW;
    f->mem.host = calloc(1, f->mem.size);
    assert_non_null(f->mem.host);
    return f;
}

static int setup(void **state)
{
    *state = new_fixture(0);
    return 0;
}

static int setup_with_high(void **state)
{
    *state = new_fixture(RAM_HIGH);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    free(f->mem.host);
    free(f);
    return 0;
}

static void *gpa(struct fixture *f, uint64_t addr)
{
    return f->mem.host + addr;
}

static struct vring_desc *desc(struct fixture *f)
{
    return gpa(f, DESC_GPA);
}

static struct vring_avail *avail(struct fixture *f)
{
    return gpa(f, AVAIL_GPA);
}

static struct vring_used *used(struct fixture *f)
{
    return gpa(f, USED_GPA);
}

/* avail_event sits just past the used ring; reached by byte offset, not through a
 * used element, so no pointer is type-punned. */
static uint16_t *avail_event_of(struct fixture *f)
{
    return (uint16_t *)((uint8_t *)used(f) + offsetof(struct vring_used, ring) +
                        QSIZE * sizeof(struct vring_used_elem));
}

static struct vring_desc *table(struct fixture *f)
{
    return gpa(f, TABLE_GPA);
}

/* Programs and enables a queue of size n with its rings at the default places. */
static int enable(struct fixture *f, uint16_t n, bool indirect, bool event_idx)
{
    virtq_reset(&f->vq);
    f->vq.size = n;
    f->vq.desc_gpa = DESC_GPA;
    f->vq.avail_gpa = AVAIL_GPA;
    f->vq.used_gpa = USED_GPA;
    f->vq.indirect = indirect;
    f->vq.event_idx = event_idx;
    return virtq_enable(&f->vq, &f->mem);
}

static void set_desc(struct vring_desc *d, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    d[i] = (struct vring_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

/* Makes head the next available request. */
static void post(struct fixture *f, uint16_t head)
{
    struct vring_avail *a = avail(f);

    a->ring[a->idx % f->vq.size] = head;
    a->idx++;
}

static void assert_broken(struct fixture *f, const char *why)
{
    assert_true(f->vq.broken);
    if (!strstr(f->vq.error, why))
        fail_msg("queue error \"%s\" does not mention \"%s\"", f->vq.error, why);
    /* Broken stays broken, and completes nothing, until the driver resets it. */
    assert_int_equal(virtq_pop(&f->vq, &f->elem), -EINVAL);
    uint16_t before = used(f)->idx;
    virtq_push(&f->vq, &f->elem, 0);
    assert_int_equal(used(f)->idx, before);
}

/* Submits one request and expects virtq_pop to refuse it for the given reason. */
static void assert_pop_breaks(struct fixture *f, uint16_t head, const char *why)
{
    uint16_t last = f->vq.last_avail;

    post(f, head);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), -EINVAL);
    assert_int_equal(f->vq.last_avail, last);
    assert_broken(f, why);
}

/* --- good paths ------------------------------------------------------------------------ */

static void test_single_descriptor(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    assert_true(f->vq.enabled);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 0); /* nothing yet */
    set_desc(desc(f), 3, DATA_GPA, 100, 0, 0);
    post(f, 3);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
    assert_int_equal(f->elem.head, 3);
    assert_int_equal(f->elem.out_num, 1);
    assert_int_equal(f->elem.in_num, 0);
    assert_int_equal(f->elem.out_len, 100);
    assert_int_equal(f->elem.in_len, 0);
    assert_ptr_equal(f->elem.iov[0].iov_base, gpa(f, DATA_GPA));
    assert_int_equal(f->elem.iov[0].iov_len, 100);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 0);
    assert_false(f->vq.broken);
}

static void test_chain_out_then_in(void **state)
{
    struct fixture *f = *state;
    struct vring_desc *d = desc(f);

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    /* 5 -> 9 -> 2 -> 15: two readable, two writable buffers, out of index order. */
    set_desc(d, 5, DATA_GPA, 16, VRING_DESC_F_NEXT, 9);
    set_desc(d, 9, DATA_GPA + 0x100, 8, VRING_DESC_F_NEXT, 2);
    set_desc(d, 2, DATA_GPA + 0x200, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 15);
    set_desc(d, 15, DATA_GPA + 0x400, 1, VRING_DESC_F_WRITE, 0);
    post(f, 5);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
    assert_int_equal(f->elem.head, 5);
    assert_int_equal(f->elem.out_num, 2);
    assert_int_equal(f->elem.in_num, 2);
    assert_int_equal(f->elem.out_len, 24);
    assert_int_equal(f->elem.in_len, 513);
    assert_ptr_equal(f->elem.iov[1].iov_base, gpa(f, DATA_GPA + 0x100));
    assert_ptr_equal(f->elem.iov[2].iov_base, gpa(f, DATA_GPA + 0x200));
    assert_ptr_equal(f->elem.iov[3].iov_base, gpa(f, DATA_GPA + 0x400));
}

static void test_several_requests_in_order(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    for (uint16_t i = 0; i < QSIZE; i++) {
        set_desc(desc(f), i, DATA_GPA + 16u * i, 16, VRING_DESC_F_WRITE, 0);
        post(f, (uint16_t)(QSIZE - 1 - i));
    }
    for (uint16_t i = 0; i < QSIZE; i++) {
        assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
        assert_int_equal(f->elem.head, QSIZE - 1 - i);
        assert_int_equal(f->elem.in_num, 1);
    }
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 0);
}

/* The 16-bit indices wrap: requests across 65535 -> 0 are served normally. */
static void test_avail_index_wraps(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    f->vq.last_avail = 65534;
    f->vq.used_idx = 65534;
    avail(f)->idx = 65534;
    for (uint16_t i = 0; i < 4; i++) {
        set_desc(desc(f), 5 + i, DATA_GPA, 8, 0, 0);
        post(f, 5 + i);
    }
    assert_int_equal(avail(f)->idx, 2);
    for (uint16_t i = 0; i < 4; i++) {
        assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
        assert_int_equal(f->elem.head, 5 + i);
        virtq_push(&f->vq, &f->elem, i);
    }
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 0);
    assert_int_equal(used(f)->idx, 2);
    assert_int_equal(used(f)->ring[65535 % QSIZE].id, 6);
    assert_int_equal(used(f)->ring[0].id, 7);
    assert_int_equal(used(f)->ring[0].len, 2);
}

static void test_indirect_table(void **state)
{
    struct fixture *f = *state;
    struct vring_desc *t = table(f);

    assert_int_equal(enable(f, QSIZE, true, false), 0);
    set_desc(t, 0, DATA_GPA, 16, VRING_DESC_F_NEXT, 2);
    set_desc(t, 2, DATA_GPA + 0x1000, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
    set_desc(t, 1, DATA_GPA + 0x3000, 1, VRING_DESC_F_WRITE, 0);
    set_desc(desc(f), 7, TABLE_GPA, 3 * sizeof(*t), VRING_DESC_F_INDIRECT, 0);
    post(f, 7);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
    assert_int_equal(f->elem.head, 7);
    assert_int_equal(f->elem.out_num, 1);
    assert_int_equal(f->elem.in_num, 2);
    assert_int_equal(f->elem.out_len, 16);
    assert_int_equal(f->elem.in_len, 4097);
    assert_ptr_equal(f->elem.iov[1].iov_base, gpa(f, DATA_GPA + 0x1000));
    assert_ptr_equal(f->elem.iov[2].iov_base, gpa(f, DATA_GPA + 0x3000));
}

/* The largest requests: a full-size queue's whole chain, and a full indirect table. */
static void test_largest_requests(void **state)
{
    struct fixture *f = *state;
    struct vring_desc *t = table(f);

    assert_int_equal(enable(f, VIRTQ_MAX_SIZE, true, false), 0);
    for (unsigned i = 0; i < VIRTQ_MAX_SIZE; i++)
        set_desc(desc(f), i, DATA_GPA + i, 1, VRING_DESC_F_NEXT, (uint16_t)(i + 1));
    desc(f)[VIRTQ_MAX_SIZE - 1].flags = 0;
    post(f, 0);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
    assert_int_equal(f->elem.out_num, VIRTQ_MAX_SEGS);
    assert_int_equal(f->elem.out_len, VIRTQ_MAX_SEGS);

    for (unsigned i = 0; i < VIRTQ_MAX_SEGS; i++)
        set_desc(t, i, DATA_GPA + 2 * i, 2, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
                 (uint16_t)(i + 1));
    t[VIRTQ_MAX_SEGS - 1].flags = VRING_DESC_F_WRITE;
    set_desc(desc(f), 1, TABLE_GPA, VIRTQ_MAX_SEGS * sizeof(*t), VRING_DESC_F_INDIRECT, 0);
    post(f, 1);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
    assert_int_equal(f->elem.in_num, VIRTQ_MAX_SEGS);
    assert_int_equal(f->elem.in_len, 2 * VIRTQ_MAX_SEGS);
    assert_false(f->vq.broken);
}

static void test_zero_length_buffer(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    /* Zero bytes at an address that is not RAM is harmless: nothing is accessed. */
    set_desc(desc(f), 0, 0xd0000000, 0, VRING_DESC_F_NEXT, 1);
    set_desc(desc(f), 1, DATA_GPA, 1, VRING_DESC_F_WRITE, 0);
    post(f, 0);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
    assert_int_equal(f->elem.out_num, 1);
    assert_int_equal(f->elem.iov[0].iov_len, 0);
    assert_int_equal(f->elem.in_len, 1);
}

static void test_push_and_used_index(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 4, DATA_GPA, 8, 0, 0);
    set_desc(desc(f), 6, DATA_GPA, 8, VRING_DESC_F_WRITE, 0);
    post(f, 4);
    post(f, 6);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
    virtq_push(&f->vq, &f->elem, 0);
    assert_int_equal(used(f)->idx, 1);
    assert_int_equal(used(f)->ring[0].id, 4);
    assert_int_equal(used(f)->ring[0].len, 0);
    /* The driver scribbling over used->idx does not move our index. */
    used(f)->idx = 1000;
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
    virtq_push(&f->vq, &f->elem, 8);
    assert_int_equal(used(f)->idx, 2);
    assert_int_equal(used(f)->ring[1].id, 6);
    assert_int_equal(used(f)->ring[1].len, 8);
}

static void test_no_interrupt_flag(void **state)
{
    struct fixture *f = *state;

    assert_false(virtq_should_notify(&f->vq)); /* not enabled */
    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 0, DATA_GPA, 8, 0, 0);
    post(f, 0);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
    virtq_push(&f->vq, &f->elem, 0);
    assert_true(virtq_should_notify(&f->vq));
    avail(f)->flags = VRING_AVAIL_F_NO_INTERRUPT;
    assert_false(virtq_should_notify(&f->vq));
    avail(f)->flags = 0;
    assert_true(virtq_should_notify(&f->vq));
    /* Without EVENT_IDX avail_event is never written. */
    virtq_set_avail_event(&f->vq);
    assert_int_equal(*avail_event_of(f), 0);
}

static void push_one(struct fixture *f)
{
    post(f, 0);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
    virtq_push(&f->vq, &f->elem, 0);
}

static void test_event_idx(void **state)
{
    struct fixture *f = *state;
    uint16_t *used_event = &avail(f)->ring[QSIZE];
    uint16_t *avail_event = avail_event_of(f);

    assert_int_equal(enable(f, QSIZE, false, true), 0);
    set_desc(desc(f), 0, DATA_GPA, 8, 0, 0);
    /* NO_INTERRUPT is ignored once EVENT_IDX is negotiated (virtio 2.7.7.2). */
    avail(f)->flags = VRING_AVAIL_F_NO_INTERRUPT;
    *used_event = 100;
    push_one(f);
    assert_true(virtq_should_notify(&f->vq)); /* the first notification always goes out */
    push_one(f);
    push_one(f); /* used idx 3, last signalled at 1 */
    *used_event = 0;
    assert_false(virtq_should_notify(&f->vq)); /* asked for entry 0: already signalled */
    push_one(f);
    *used_event = 3; /* wants an interrupt when the used index passes 3: it is 4 now */
    assert_true(virtq_should_notify(&f->vq));
    push_one(f);
    *used_event = 10; /* not yet reached */
    assert_false(virtq_should_notify(&f->vq));

    /* avail_event tells the driver where we are. */
    assert_int_equal(*avail_event, 0);
    virtq_set_avail_event(&f->vq);
    assert_int_equal(*avail_event, 5);
}

static void test_copy_helpers(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    char *out0 = gpa(f, DATA_GPA), *out1 = gpa(f, DATA_GPA + 0x100);
    char *in0 = gpa(f, DATA_GPA + 0x200), *in1 = gpa(f, DATA_GPA + 0x300);

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    memcpy(out0, "hello ", 6);
    memcpy(out1, "world", 5);
    set_desc(desc(f), 0, DATA_GPA, 6, VRING_DESC_F_NEXT, 1);
    set_desc(desc(f), 1, DATA_GPA + 0x100, 5, VRING_DESC_F_NEXT, 2);
    set_desc(desc(f), 2, DATA_GPA + 0x200, 3, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
    set_desc(desc(f), 3, DATA_GPA + 0x300, 4, VRING_DESC_F_WRITE, 0);
    post(f, 0);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);

    memset(buf, 0, sizeof(buf));
    assert_int_equal(virtq_copy_from_out(&f->elem, 0, buf, sizeof(buf)), 11);
    assert_string_equal(buf, "hello world");
    memset(buf, 0, sizeof(buf));
    assert_int_equal(virtq_copy_from_out(&f->elem, 4, buf, 4), 4); /* across segments */
    assert_string_equal(buf, "o wo");
    assert_int_equal(virtq_copy_from_out(&f->elem, 11, buf, 4), 0); /* skip past the end */
    assert_int_equal(virtq_copy_from_out(&f->elem, 6, buf, 0), 0);

    /* In segments only: the readable ones are not written. */
    assert_int_equal(virtq_copy_to_in(&f->elem, 0, "ABCDEFGHIJ", 10), 7);
    assert_memory_equal(in0, "ABC", 3);
    assert_memory_equal(in1, "DEFG", 4);
    assert_memory_equal(out0, "hello ", 6);
    assert_int_equal(virtq_copy_to_in(&f->elem, 6, "z", 1), 1); /* the last byte */
    assert_memory_equal(in1, "DEFz", 4);
    assert_int_equal(virtq_copy_to_in(&f->elem, 7, "y", 1), 0);
}

/* virtq_reset forgets the queue; the addresses must be programmed again. */
static void test_reset_and_reenable_after_break(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    assert_pop_breaks(f, QSIZE, "head index");
    virtq_reset(&f->vq);
    assert_false(f->vq.broken);
    assert_false(f->vq.enabled);
    assert_int_equal(f->vq.size, 0);
    assert_int_equal(f->vq.error[0], '\0');
    memset(f->mem.host, 0, f->mem.size);
    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 0, DATA_GPA, 8, 0, 0);
    push_one(f);
    assert_int_equal(used(f)->idx, 1);
}

/* --- hostile rings --------------------------------------------------------------------- */

static void test_head_index_past_queue_size(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    assert_pop_breaks(f, QSIZE, "head index 16 past queue size 16");
    assert_int_equal(enable(f, QSIZE, false, false), 0);
    avail(f)->idx = 0;
    assert_pop_breaks(f, 0xffff, "head index");
}

static void test_next_index_past_queue_size(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 1);
    set_desc(desc(f), 1, DATA_GPA, 8, VRING_DESC_F_NEXT, QSIZE);
    assert_pop_breaks(f, 0, "next index 16 past queue size");
}

static void test_chain_loops(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 0); /* to itself */
    assert_pop_breaks(f, 0, "loops");

    memset(f->mem.host, 0, f->mem.size);
    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 3, DATA_GPA, 8, VRING_DESC_F_NEXT, 4);
    set_desc(desc(f), 4, DATA_GPA, 8, VRING_DESC_F_NEXT, 5);
    set_desc(desc(f), 5, DATA_GPA, 8, VRING_DESC_F_NEXT, 3); /* 3 -> 4 -> 5 -> 3 */
    assert_pop_breaks(f, 3, "loops");
}

/* A loop of writable buffers: ends at the loop check, not the segment limit. */
static void test_chain_loops_at_full_size(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, VIRTQ_MAX_SIZE, false, false), 0);
    for (unsigned i = 0; i < VIRTQ_MAX_SIZE; i++)
        set_desc(desc(f), i, DATA_GPA, 4, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
                 (uint16_t)((i + 1) % VIRTQ_MAX_SIZE));
    assert_pop_breaks(f, 0, "loops");
}

static void test_indirect_chain_loops(void **state)
{
    struct fixture *f = *state;
    struct vring_desc *t = table(f);

    assert_int_equal(enable(f, QSIZE, true, false), 0);
    set_desc(t, 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 1);
    set_desc(t, 1, DATA_GPA, 8, VRING_DESC_F_NEXT, 0);
    set_desc(desc(f), 0, TABLE_GPA, 2 * sizeof(*t), VRING_DESC_F_INDIRECT, 0);
    assert_pop_breaks(f, 0, "indirect chain loops");
}

static void test_indirect_next_past_table(void **state)
{
    struct fixture *f = *state;
    struct vring_desc *t = table(f);

    assert_int_equal(enable(f, QSIZE, true, false), 0);
    /* Index 2 is inside the queue size but past this 2-entry table. */
    set_desc(t, 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 2);
    set_desc(desc(f), 0, TABLE_GPA, 2 * sizeof(*t), VRING_DESC_F_INDIRECT, 0);
    assert_pop_breaks(f, 0, "indirect next index 2 past table of 2");
}

static void test_buffer_past_end_of_ram(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    /* The last byte of RAM is fine, one more is not. */
    set_desc(desc(f), 0, RAM_LOW - 16, 16, VRING_DESC_F_WRITE, 0);
    post(f, 0);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
    set_desc(desc(f), 0, RAM_LOW - 16, 17, VRING_DESC_F_WRITE, 0);
    assert_pop_breaks(f, 0, "not in guest RAM");

    /* Near the end with a large length, as the hostile guest does. */
    memset(f->mem.host, 0, f->mem.size);
    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 0, RAM_LOW - 4096, 0x100000, VRING_DESC_F_WRITE, 0);
    assert_pop_breaks(f, 0, "not in guest RAM");

    /* addr + len wraps around 2^64. */
    memset(f->mem.host, 0, f->mem.size);
    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 0, 0xfffffffffffff000ull, 0x2000, 0, 0);
    assert_pop_breaks(f, 0, "not in guest RAM");
}

static void test_buffer_just_past_end_of_ram(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 0, RAM_LOW, 1, 0, 0);
    assert_pop_breaks(f, 0, "is not in guest RAM");
}

/* With RAM above 4 GiB: the PCI hole, and the seam between the two parts. */
static void test_buffer_in_the_pci_hole(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 0, 0xd0000000, 512, VRING_DESC_F_WRITE, 0);
    assert_pop_breaks(f, 0, "0xd0000000+512 is not in guest RAM");
}

static void test_buffer_across_low_ram_end(void **state)
{
    struct fixture *f = *state;

    /* Host memory continues into the high part here, but guest-physically the
     * bytes after low RAM are the hole: the buffer must be refused. */
    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 0, RAM_LOW - 8, 16, 0, 0);
    assert_pop_breaks(f, 0, "not in guest RAM");
}

static void test_high_ram_buffers(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 0, HV_HIGH_MEM_START, RAM_HIGH, VRING_DESC_F_WRITE, 0);
    post(f, 0);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
    assert_ptr_equal(f->elem.iov[0].iov_base, gpa(f, RAM_LOW));
    set_desc(desc(f), 0, HV_HIGH_MEM_START + 8, RAM_HIGH, VRING_DESC_F_WRITE, 0);
    assert_pop_breaks(f, 0, "not in guest RAM");
}

static void test_nested_indirect(void **state)
{
    struct fixture *f = *state;
    struct vring_desc *t = table(f);

    assert_int_equal(enable(f, QSIZE, true, false), 0);
    set_desc(t, 0, TABLE_GPA + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
    set_desc(t + 16, 0, DATA_GPA, 8, 0, 0);
    set_desc(desc(f), 0, TABLE_GPA, sizeof(*t), VRING_DESC_F_INDIRECT, 0);
    assert_pop_breaks(f, 0, "nested indirect");
}

static void test_indirect_without_feature(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(table(f), 0, DATA_GPA, 8, 0, 0);
    set_desc(desc(f), 0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
    assert_pop_breaks(f, 0, "without the feature");
}

static void test_indirect_bad_length(void **state)
{
    static const uint32_t lengths[] = {0, 8, 17, 24, (VIRTQ_MAX_SEGS + 1) * 16, 0xfffffff0};

    for (unsigned i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        struct fixture *f = *state;
        memset(f->mem.host, 0, f->mem.size);
        assert_int_equal(enable(f, QSIZE, true, false), 0);
        set_desc(desc(f), 0, TABLE_GPA, lengths[i], VRING_DESC_F_INDIRECT, 0);
        assert_pop_breaks(f, 0, "indirect table of");
    }
}

/* More segments than a request may have: only reachable through an indirect
 * table, since a direct chain longer than the queue is a loop. */
static void test_more_segments_than_the_limit(void **state)
{
    struct fixture *f = *state;
    struct vring_desc *t = table(f);

    assert_int_equal(enable(f, QSIZE, true, false), 0);
    for (unsigned i = 0; i <= VIRTQ_MAX_SEGS; i++)
        set_desc(t, i, DATA_GPA, 1, VRING_DESC_F_NEXT, (uint16_t)(i + 1));
    t[VIRTQ_MAX_SEGS].flags = 0;
    set_desc(desc(f), 0, TABLE_GPA, (VIRTQ_MAX_SEGS + 1) * sizeof(*t), VRING_DESC_F_INDIRECT, 0);
    assert_pop_breaks(f, 0, "indirect table of 4112 bytes");
}

static void test_indirect_table_outside_ram(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, true, false), 0);
    set_desc(desc(f), 0, RAM_LOW - 16, 32, VRING_DESC_F_INDIRECT, 0);
    assert_pop_breaks(f, 0, "indirect table outside guest RAM");
}

static void test_indirect_with_next_or_inside_a_chain(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, true, false), 0);
    set_desc(table(f), 0, DATA_GPA, 8, 0, 0);
    set_desc(desc(f), 0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
    set_desc(desc(f), 1, DATA_GPA, 8, 0, 0);
    assert_pop_breaks(f, 0, "indirect descriptor with a next flag");

    assert_int_equal(enable(f, QSIZE, true, false), 0);
    avail(f)->idx = 0;
    set_desc(desc(f), 2, DATA_GPA, 8, VRING_DESC_F_NEXT, 3);
    set_desc(desc(f), 3, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
    assert_pop_breaks(f, 2, "indirect descriptor inside a chain");
}

static void test_avail_index_jump(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 0, DATA_GPA, 8, 0, 0);
    /* Exactly a queue's worth ahead is legal. */
    avail(f)->idx = QSIZE;
    for (int i = 0; i < QSIZE; i++)
        assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
    assert_int_equal(virtq_pop(&f->vq, &f->elem), 0);
    avail(f)->idx = 2 * QSIZE + 1;
    assert_int_equal(virtq_pop(&f->vq, &f->elem), -EINVAL);
    assert_broken(f, "avail index jumped from 16 to 33");

    /* Backwards is a jump of almost 2^16 forwards. */
    assert_int_equal(enable(f, QSIZE, false, false), 0);
    avail(f)->idx = 0xffff;
    assert_int_equal(virtq_pop(&f->vq, &f->elem), -EINVAL);
    assert_broken(f, "avail index jumped");
}

static void test_readable_after_writable(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    set_desc(desc(f), 0, DATA_GPA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    set_desc(desc(f), 1, DATA_GPA, 8, 0, 0);
    assert_pop_breaks(f, 0, "device-readable buffer after a writable one");

    memset(f->mem.host, 0, f->mem.size);
    assert_int_equal(enable(f, QSIZE, true, false), 0);
    set_desc(table(f), 0, DATA_GPA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    set_desc(table(f), 1, DATA_GPA, 8, 0, 0);
    set_desc(desc(f), 0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
    assert_pop_breaks(f, 0, "device-readable buffer after a writable one");
}

/* Enables with the given ring addresses and size; expects a refusal. */
static void assert_enable_fails(struct fixture *f, uint16_t n, uint64_t d, uint64_t a, uint64_t u,
                                const char *why)
{
    virtq_reset(&f->vq);
    f->vq.size = n;
    f->vq.desc_gpa = d;
    f->vq.avail_gpa = a;
    f->vq.used_gpa = u;
    assert_int_equal(virtq_enable(&f->vq, &f->mem), -EINVAL);
    assert_false(f->vq.enabled);
    assert_broken(f, why);
}

static void test_enable_checks_size(void **state)
{
    struct fixture *f = *state;

    assert_enable_fails(f, 0, DESC_GPA, AVAIL_GPA, USED_GPA, "not a power of two");
    assert_enable_fails(f, 12, DESC_GPA, AVAIL_GPA, USED_GPA, "queue size 12");
    assert_enable_fails(f, 2 * VIRTQ_MAX_SIZE, DESC_GPA, AVAIL_GPA, USED_GPA, "queue size 512");
    assert_enable_fails(f, 0x8000, DESC_GPA, AVAIL_GPA, USED_GPA, "queue size");
    assert_int_equal(enable(f, 1, false, false), 0);
}

static void test_enable_checks_alignment(void **state)
{
    struct fixture *f = *state;

    assert_enable_fails(f, QSIZE, DESC_GPA + 8, AVAIL_GPA, USED_GPA, "misaligned");
    assert_enable_fails(f, QSIZE, DESC_GPA, AVAIL_GPA + 1, USED_GPA, "misaligned");
    assert_enable_fails(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA + 2, "misaligned");
    /* The minimum alignments themselves are fine. */
    virtq_reset(&f->vq);
    f->vq.size = QSIZE;
    f->vq.desc_gpa = DESC_GPA + 16;
    f->vq.avail_gpa = AVAIL_GPA + 2;
    f->vq.used_gpa = USED_GPA + 4;
    assert_int_equal(virtq_enable(&f->vq, &f->mem), 0);
}

static void test_enable_checks_rings_in_ram(void **state)
{
    struct fixture *f = *state;
    const uint64_t used_len = 6 + 8 * QSIZE, avail_len = 6 + 2 * QSIZE;

    assert_enable_fails(f, QSIZE, RAM_LOW, AVAIL_GPA, USED_GPA, "ring outside guest RAM");
    assert_enable_fails(f, QSIZE, RAM_LOW - 16 * QSIZE + 16, AVAIL_GPA, USED_GPA, "outside");
    assert_enable_fails(f, QSIZE, DESC_GPA, RAM_LOW - avail_len + 2, USED_GPA, "outside");
    /* The used ring's tail (avail_event) is part of it. */
    assert_enable_fails(f, QSIZE, DESC_GPA, AVAIL_GPA, (RAM_LOW - used_len + 4) & ~3ull,
                        "outside");
    assert_enable_fails(f, QSIZE, DESC_GPA, AVAIL_GPA, 0xd0000000, "outside");
    assert_enable_fails(f, QSIZE, 0xfffffffffffffff0ull, AVAIL_GPA, USED_GPA, "outside");

    /* Rings right up to the end of RAM are fine, and every access stays inside it. */
    virtq_reset(&f->vq);
    f->vq.size = QSIZE;
    f->vq.event_idx = true;
    f->vq.desc_gpa = RAM_LOW - 16 * QSIZE;
    f->vq.avail_gpa = DESC_GPA + 0x800 - avail_len; /* 2-aligned: 0x800 - 38 */
    f->vq.used_gpa = (RAM_LOW - 16 * QSIZE - used_len) & ~3ull;
    assert_int_equal(virtq_enable(&f->vq, &f->mem), 0);
    struct vring_avail *a = gpa(f, f->vq.avail_gpa);
    struct vring_desc *d = gpa(f, f->vq.desc_gpa);
    set_desc(d, QSIZE - 1, DATA_GPA, 8, 0, 0);
    for (int i = 0; i < QSIZE; i++) {
        a->ring[i] = QSIZE - 1;
        a->idx++;
        assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
        virtq_push(&f->vq, &f->elem, 0);
        virtq_should_notify(&f->vq);
        virtq_set_avail_event(&f->vq);
    }
}

/* --- snapshot --------------------------------------------------------------------------- */

static void vq_save(const struct virtq *vq, struct snap_w *w)
{
    snap_w_init(w);
    virtq_save(vq, w);
    assert_int_equal(w->err, 0);
}

/* Loads w into vq (RAM: f's); returns the error and its text in what. */
static int vq_load(struct fixture *f, struct virtq *vq, const void *p, size_t len, char *what)
{
    struct snap_r r;
    int rc;

    snap_r_init(&r, p, len);
    rc = virtq_load(vq, &r, &f->mem);
    strcpy(what, r.what);
    return rc;
}

/* Saved between requests: the loaded queue takes the next one, never one already taken,
 * and completes into the next used entry with the interrupt bookkeeping intact. */
static void test_snapshot_continues_at_the_right_index(void **state)
{
    struct fixture *f = *state;
    struct virtq loaded;
    struct snap_w w, w2;
    char what[160];

    assert_int_equal(enable(f, QSIZE, true, true), 0);
    set_desc(desc(f), 0, DATA_GPA, 64, VRING_DESC_F_WRITE, 0);
    set_desc(desc(f), 1, DATA_GPA + 0x100, 64, VRING_DESC_F_WRITE, 0);
    for (unsigned i = 0; i < 21; i++) { /* past the ring's size: indices wrapped once */
        post(f, 0);
        assert_int_equal(virtq_pop(&f->vq, &f->elem), 1);
        virtq_push(&f->vq, &f->elem, 8);
        virtq_should_notify(&f->vq);
    }
    post(f, 1); /* posted, not taken yet */
    vq_save(&f->vq, &w);

    memset(&loaded, 0xa5, sizeof(loaded));
    assert_int_equal(vq_load(f, &loaded, w.buf, w.len, what), 0);
    vq_save(&loaded, &w2);
    assert_int_equal(w2.len, w.len);
    assert_memory_equal(w2.buf, w.buf, w.len);
    assert_true(loaded.enabled && loaded.event_idx && loaded.indirect);
    assert_int_equal(loaded.last_avail, 21);
    assert_int_equal(loaded.used_idx, 21);
    assert_ptr_equal(loaded.desc, desc(f));
    assert_ptr_equal(loaded.used, used(f));

    assert_int_equal(virtq_pop(&loaded, &f->elem), 1);
    assert_int_equal(f->elem.head, 1);
    assert_int_equal(virtq_pop(&loaded, &f->elem), 0); /* served once */
    virtq_push(&loaded, &f->elem, 4);
    assert_int_equal(used(f)->idx, 22);
    assert_int_equal(used(f)->ring[21 % QSIZE].id, 1);
    /* used_event asks for an interrupt after entry 21: signalled_used carried over says yes. */
    avail(f)->ring[QSIZE] = 21;
    assert_true(virtq_should_notify(&loaded));
    snap_w_free(&w);
    snap_w_free(&w2);
}

static void test_snapshot_of_broken_and_disabled_queues(void **state)
{
    struct fixture *f = *state;
    struct virtq loaded;
    struct snap_w w;
    char what[160];

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    assert_pop_breaks(f, QSIZE, "head index");
    vq_save(&f->vq, &w);
    assert_int_equal(vq_load(f, &loaded, w.buf, w.len, what), 0);
    assert_true(loaded.broken);
    assert_string_equal(loaded.error, f->vq.error);
    assert_int_equal(virtq_pop(&loaded, &f->elem), -EINVAL);
    snap_w_free(&w);

    /* Disabled, with whatever size the driver wrote last: taken as a register value. */
    virtq_reset(&f->vq);
    f->vq.size = 1000;
    vq_save(&f->vq, &w);
    assert_int_equal(vq_load(f, &loaded, w.buf, w.len, what), 0);
    assert_false(loaded.enabled);
    assert_int_equal(loaded.size, 1000);
    snap_w_free(&w);
}

static void test_snapshot_refuses_bad_queues(void **state)
{
    struct fixture *f = *state;
    struct virtq loaded, good;
    struct snap_w w;
    char what[160];
    uint8_t *bad;
    static const struct {
        uint16_t size;
        uint64_t used_gpa;
        const char *why;
    } cases[] = {
        {512, USED_GPA, "power of two"},     {12, USED_GPA, "power of two"},
        {0, USED_GPA, "power of two"},       {QSIZE, RAM_LOW - 8, "outside guest RAM"},
        {QSIZE, USED_GPA + 2, "misaligned"},
    };

    assert_int_equal(enable(f, QSIZE, false, false), 0);
    good = f->vq;
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        f->vq = good;
        f->vq.size = cases[i].size;
        f->vq.used_gpa = cases[i].used_gpa;
        vq_save(&f->vq, &w);
        loaded = good;
        assert_int_equal(vq_load(f, &loaded, w.buf, w.len, what), -EINVAL);
        if (!strstr(what, cases[i].why))
            fail_msg("'%s' does not say '%s'", what, cases[i].why);
        assert_memory_equal(&loaded, &good, sizeof(good)); /* unchanged */
        snap_w_free(&w);
    }

    f->vq = good;
    vq_save(&f->vq, &w);
    bad = malloc(w.len);
    for (size_t len = 0; len < w.len; len++) {
        assert_int_not_equal(vq_load(f, &loaded, w.buf, len, what), 0);
        assert_true(what[0]);
    }
    for (uint32_t len = 2; len < w.len - 8; len++) {
        memcpy(bad, w.buf, w.len);
        memcpy(bad + 4, &len, 4);
        assert_int_not_equal(vq_load(f, &loaded, bad, 8 + len, what), 0);
    }
    assert_memory_equal(&loaded, &good, sizeof(good));
    memcpy(bad, w.buf, w.len);
    bad[2] = '!';
    assert_int_equal(vq_load(f, &loaded, bad, w.len, what), -EINVAL);
    assert_non_null(strstr(what, "virtqueue"));
    memcpy(bad, w.buf, w.len);
    bad[8] = 9;
    assert_int_equal(vq_load(f, &loaded, bad, w.len, what), -EPROTO);
    memcpy(bad, w.buf, w.len);
    bad[10 + 2 + 24 + 4 + 6 + 1] = 200; /* error text longer than the field */
    assert_int_equal(vq_load(f, &loaded, bad, w.len, what), -EINVAL);
    assert_non_null(strstr(what, "error text"));
    memcpy(bad, w.buf, w.len);
    bad[10 + 2 + 24 + 2] = 2; /* enabled: not a boolean */
    assert_int_equal(vq_load(f, &loaded, bad, w.len, what), -EINVAL);
    assert_memory_equal(&loaded, &good, sizeof(good));
    free(bad);
    snap_w_free(&w);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define T_HIGH(name) cmocka_unit_test_setup_teardown(name, setup_with_high, teardown)
    const struct CMUnitTest tests[] = {
        T(test_single_descriptor),
        T(test_snapshot_continues_at_the_right_index),
        T(test_snapshot_of_broken_and_disabled_queues),
        T(test_snapshot_refuses_bad_queues),
        T(test_chain_out_then_in),
        T(test_several_requests_in_order),
        T(test_avail_index_wraps),
        T(test_indirect_table),
        T(test_largest_requests),
        T(test_zero_length_buffer),
        T(test_push_and_used_index),
        T(test_no_interrupt_flag),
        T(test_event_idx),
        T(test_copy_helpers),
        T(test_reset_and_reenable_after_break),
        T(test_head_index_past_queue_size),
        T(test_next_index_past_queue_size),
        T(test_chain_loops),
        T(test_chain_loops_at_full_size),
        T(test_indirect_chain_loops),
        T(test_indirect_next_past_table),
        T(test_buffer_past_end_of_ram),
        T(test_buffer_just_past_end_of_ram),
        T_HIGH(test_buffer_in_the_pci_hole),
        T_HIGH(test_buffer_across_low_ram_end),
        T_HIGH(test_high_ram_buffers),
        T(test_nested_indirect),
        T(test_indirect_without_feature),
        T(test_indirect_bad_length),
        T(test_more_segments_than_the_limit),
        T(test_indirect_table_outside_ram),
        T(test_indirect_with_next_or_inside_a_chain),
        T(test_avail_index_jump),
        T(test_readable_after_writable),
        T(test_enable_checks_size),
        T(test_enable_checks_alignment),
        T(test_enable_checks_rings_in_ram),
    };
#undef T
#undef T_HIGH
    return cmocka_run_group_tests_name("virtqueue", tests, NULL, NULL);
}
