/*
 * libFuzzer harness for the split virtqueue (devices/virtio/virtqueue.c):
 * the input is a whole hostile guest. Its first bytes program the queue the
 * way a driver does through the transport (size, ring addresses, features),
 * the rest is guest RAM: descriptor table, avail ring, used ring, indirect
 * tables and buffers wherever the input puts them. The harness then runs the
 * device side as virtio-blk does: pop, read the out segments, write the in
 * segments (which may overlap the rings: a guest may do that), push, ask
 * whether to notify, until the queue is empty or broken.
 *
 * Guest RAM is one exactly-sized malloc, a low part and a part above 4 GiB
 * like the machines with a PCI hole, so ASan sees any access outside it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtqueue.h"

#define RAM_LOW (48u << 10)
#define RAM_HIGH (16u << 10)
#define HEADER 12
/* Well past any queue's worth of requests: the loop must end on its own. */
#define MAX_ROUNDS (4 * VIRTQ_MAX_SIZE)

/* Header flags. */
#define F_INDIRECT 0x01
#define F_EVENT_IDX 0x02
#define F_RAW_SIZE 0x04 /* size as given (not a power of two, 0, too big) */
#define F_DESC_HIGH 0x08
#define F_AVAIL_HIGH 0x10
#define F_USED_HIGH 0x20
#define F_UNPOP 0x40 /* give the first request back once, as a full device does */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* A ring address: an offset into the low part, or into the high part from 4 GiB. */
static uint64_t ring_gpa(const uint8_t *p, int high)
{
    uint16_t off = get16(p);

    return high ? HV_HIGH_MEM_START + off % RAM_HIGH : off % RAM_LOW;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct virtq_elem elem; /* 4 KiB of iovecs: not on the stack */
    static uint8_t buf[64 << 10];
    struct hv_guest_mem mem = {0}; /* no dirty-page tracking */
    struct virtq vq;
    uint8_t flags;
    int unpopped = 0;

    if (size < HEADER)
        return 0;
    flags = data[0];
    mem.size = RAM_LOW + RAM_HIGH;
    mem.low_size = RAM_LOW;
    mem.host = calloc(1, mem.size);
    if (!mem.host)
        return 0;
    memcpy(mem.host, data + HEADER,
           size - HEADER < mem.size ? size - HEADER : mem.size);

    virtq_reset(&vq);
    vq.size = flags & F_RAW_SIZE ? get16(data + 2) : (uint16_t)(1u << (data[1] % 9));
    vq.desc_gpa = ring_gpa(data + 4, flags & F_DESC_HIGH);
    vq.avail_gpa = ring_gpa(data + 6, flags & F_AVAIL_HIGH);
    vq.used_gpa = ring_gpa(data + 8, flags & F_USED_HIGH);
    vq.indirect = flags & F_INDIRECT;
    vq.event_idx = flags & F_EVENT_IDX;
    if (virtq_enable(&vq, &mem) == 0) {
        for (int round = 0; round < MAX_ROUNDS; round++) {
            uint64_t got, put;

            virtq_set_avail_event(&vq);
            if (virtq_pop(&vq, &elem) != 1)
                break;
            if ((flags & F_UNPOP) && !unpopped) {
                unpopped = 1;
                virtq_unpop(&vq);
                continue;
            }
            /* Read what the driver sent, then answer into the writable buffers. */
            got = virtq_copy_from_out(&elem, data[10], buf, sizeof(buf));
            if (got > elem.out_len)
                abort();
            memset(buf, data[11], sizeof(buf));
            put = virtq_copy_to_in(&elem, 0, buf, elem.in_len < sizeof(buf) ? elem.in_len : sizeof(buf));
            if (put > elem.in_len)
                abort();
            virtq_push(&vq, &elem, (uint32_t)put);
            virtq_should_notify(&vq);
        }
    }
    free(mem.host);
    return 0;
}
