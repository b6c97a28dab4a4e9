/*
 * virtio-hostile: a driver gone bad. It brings a virtio-blk device up
 * correctly, then submits one malformed request per case (indices past the
 * queue, chains that loop, buffers outside RAM, nested indirect tables, an
 * avail index that jumps), and expects the device to stop with
 * DEVICE_NEEDS_RESET (virtio 2.1.2) instead of touching memory it must not.
 * After each case it resets the device, brings it up again and checks a
 * normal read still works. The VMM must survive all of it.
 *
 * The disk's first sector must hold VIRTIO_TEST_PATTERN repeated (as for
 * the virtio-blk guest). The end of RAM comes from the CMOS (0x34/0x35:
 * 64 KiB blocks above 16 MiB), as a PC BIOS reports it.
 *
 * Exit status: 0 every case behaved; 1 some did not; 2 no usable device.
 */
#include "guest.h"
#include "virtio.h"

#define QSIZE 16
#define NO_RAM_ADDR 0xd0000000ul /* in the PCI hole, no BAR there */
#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71

static struct virtio_rings rings;
static struct virtio_dev dev;
static struct virtio_blk_req hdr;
static uint8_t status_byte, sector[512] __attribute__((aligned(512)));
static struct vring_desc table[4] __attribute__((aligned(16)));
static struct vring_desc inner[2] __attribute__((aligned(16)));
static uint64_t ram_end;

static uint8_t cmos(uint8_t reg)
{
	outb(reg, CMOS_INDEX);
	return inb(CMOS_DATA);
}

static struct vring_desc header_desc(uint16_t flags, uint16_t next)
{
	return (struct vring_desc){(uintptr_t)&hdr, sizeof(hdr), flags, next};
}

static struct vring_desc status_desc(void)
{
	return (struct vring_desc){(uintptr_t)&status_byte, 1, VRING_F_WRITE, 0};
}

/* Chains a read of sector 0 whose data descriptor is d into descriptors 0..2. */
static void chain_read_with_data(struct vring_desc d)
{
	dev.desc[0] = header_desc(VRING_F_NEXT, 1);
	dev.desc[1] = d;
	dev.desc[2] = status_desc();
}

static void submit_read_with_data(struct vring_desc d)
{
	chain_read_with_data(d);
	virtio_submit(&dev, 0);
}

static void head_past_queue(void)
{
	chain_read_with_data((struct vring_desc){(uintptr_t)sector, 512,
						 VRING_F_NEXT | VRING_F_WRITE, 2});
	virtio_submit(&dev, QSIZE + 5);
}

static void next_past_queue(void)
{
	submit_read_with_data((struct vring_desc){(uintptr_t)sector, 512,
						  VRING_F_NEXT | VRING_F_WRITE, QSIZE});
}

static void looping_chain(void)
{
	dev.desc[0] = header_desc(VRING_F_NEXT, 1);
	dev.desc[1] = (struct vring_desc){(uintptr_t)sector, 512, VRING_F_NEXT, 2};
	dev.desc[2] = (struct vring_desc){(uintptr_t)sector, 512, VRING_F_NEXT, 1};
	virtio_submit(&dev, 0);
}

static void buffer_past_ram(void)
{
	submit_read_with_data((struct vring_desc){ram_end - 4096, 1u << 20,
						  VRING_F_NEXT | VRING_F_WRITE, 2});
}

static void buffer_in_no_ram(void)
{
	submit_read_with_data((struct vring_desc){NO_RAM_ADDR, 512, VRING_F_NEXT | VRING_F_WRITE,
						  2});
}

static void readable_after_writable(void)
{
	dev.desc[0] = header_desc(VRING_F_NEXT, 1);
	dev.desc[1] = status_desc();
	dev.desc[1].flags |= VRING_F_NEXT;
	dev.desc[1].next = 2;
	dev.desc[2] = (struct vring_desc){(uintptr_t)sector, 512, 0, 0};
	virtio_submit(&dev, 0);
}

static void submit_indirect(const struct vring_desc *t, uint32_t len)
{
	dev.desc[0] = (struct vring_desc){(uintptr_t)t, len, VRING_F_INDIRECT, 0};
	virtio_submit(&dev, 0);
}

static void nested_indirect(void)
{
	inner[0] = header_desc(VRING_F_NEXT, 1);
	inner[1] = status_desc();
	table[0] = (struct vring_desc){(uintptr_t)inner, sizeof(inner), VRING_F_INDIRECT, 0};
	submit_indirect(table, sizeof(table[0]));
}

static void indirect_loop(void)
{
	table[0] = header_desc(VRING_F_NEXT, 1);
	table[1] = (struct vring_desc){(uintptr_t)sector, 512, VRING_F_NEXT | VRING_F_WRITE, 2};
	table[2] = (struct vring_desc){(uintptr_t)sector, 512, VRING_F_NEXT | VRING_F_WRITE, 1};
	submit_indirect(table, 3 * sizeof(table[0]));
}

static void indirect_bad_length(void)
{
	table[0] = header_desc(0, 0);
	submit_indirect(table, sizeof(table[0]) + 8);
}

static void avail_index_jump(void)
{
	volatile uint16_t *idx = &dev.avail->idx;

	*idx = (uint16_t)(*idx + QSIZE + 1);
}

static const struct {
	const char *name;
	void (*submit)(void);
} cases[] = {
	{"head index past the queue size", head_past_queue},
	{"next index past the queue size", next_past_queue},
	{"a descriptor chain that loops", looping_chain},
	{"a buffer running past the end of RAM", buffer_past_ram},
	{"a buffer in no RAM slot (PCI hole)", buffer_in_no_ram},
	{"a readable buffer after a writable one", readable_after_writable},
	{"nested indirect tables", nested_indirect},
	{"an indirect chain that loops", indirect_loop},
	{"an indirect table of a bad length", indirect_bad_length},
	{"an avail index jumping past the queue size", avail_index_jump},
};

static bool wait_needs_reset(void)
{
	for (uint32_t i = 0; i < 200000; i++)
		if (virtio_get_status(&dev) & VIRTIO_S_NEEDS_RESET)
			return true;
	return false;
}

/* Brings the device up and reads sector 0: false (with a message) if that fails. */
static bool start_and_read(const char *when)
{
	memset(sector, 0, sizeof(sector));
	if (virtio_start(&dev, VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT, QSIZE, &rings) == 0 &&
	    (dev.features & VIRTIO_F_INDIRECT) &&
	    virtio_blk_rw(&dev, VIRTIO_BLK_T_IN, 0, sector, 512) == VIRTIO_BLK_S_OK &&
	    pattern_holds(sector, 512, VIRTIO_TEST_PATTERN))
		return true;
	uart_puts("virtio-hostile: FAIL a normal read ");
	uart_puts(when);
	uart_putc('\n');
	return false;
}

void guest_main(const char *cmdline)
{
	unsigned failures = 0;

	(void)cmdline;
	ram_end = (16ull << 20) + ((uint64_t)cmos(0x35) << 8 | cmos(0x34)) * 65536;
	if (virtio_find(&dev, VIRTIO_DEV_BLK) || !start_and_read("before the first case"))
		debug_exit(2);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint16_t used = *(volatile uint16_t *)&dev.used->idx;

		cases[i].submit();
		virtio_kick(&dev);
		if (!wait_needs_reset()) {
			uart_puts("virtio-hostile: FAIL no DEVICE_NEEDS_RESET after ");
			uart_puts(cases[i].name);
			uart_putc('\n');
			failures++;
		} else if (*(volatile uint16_t *)&dev.used->idx != used) {
			uart_puts("virtio-hostile: FAIL the device completed ");
			uart_puts(cases[i].name);
			uart_putc('\n');
			failures++;
		} else {
			uart_puts("virtio-hostile: ");
			uart_puts(cases[i].name);
			uart_puts(": needs reset\n");
		}
		if (!start_and_read("after a reset"))
			failures++;
	}
	if (failures) {
		uart_puts("virtio-hostile: ");
		uart_put_dec(failures);
		uart_puts(" cases misbehaved\n");
		debug_exit(1);
	}
	uart_puts("virtio-hostile: all cases refused, device recovered each time\n");
	debug_exit(0);
}
