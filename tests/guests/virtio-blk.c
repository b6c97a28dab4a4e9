/*
 * virtio-blk: drives the first virtio-blk PCI function (1af4:1042) with the
 * guests' own small driver (lib/virtio.c) and checks what a disk must do:
 * capacity, GET_ID, reading what the host put on the disk, writing and
 * reading back through multi-buffer and indirect requests, flush, requests
 * past the end failing with IOERR, and (with "ro") a read-only disk
 * refusing writes.
 *
 * The host prepares the disk: the first 4 KiB hold VIRTIO_TEST_PATTERN repeated
 * (`yes vmmd-virtio-blk-pattern | head -c 4096`); after a read-write run
 * sectors 16..23 hold GUEST_PATTERN repeated.
 *
 * Command line: sectors=N (expected capacity), serial=S (expected GET_ID),
 * ro (the disk is read-only), bench (throughput mode below), passes=N, poll.
 *
 * bench: reads the whole disk passes times (default 1) in 1 MiB requests,
 * four in flight, each an indirect table of 128 x 8 KiB buffers (1 MiB in
 * 4 KiB pages would need 258 descriptors with header and status; the device
 * takes at most 256). Data is not checked, to keep guest instructions (slow
 * in KVM's emulator on PVM hosts) out of the measurement. Between
 * completions the CPU halts until an MSI-X interrupt says a request is
 * done, as a real driver would, so the vCPU does not take CPU time from the
 * device's I/O thread; "poll" polls the used ring instead. Needs a capacity
 * that is a multiple of 1 MiB and 24 MiB of RAM (buffers at 16 MiB).
 *
 * Exit status: 0 all checks passed; 1 a check failed; 2 no usable device
 * or bad command line; 3 a request timed out.
 */
#include "boot.h"
#include "guest.h"
#include "virtio.h"

#define GUEST_PATTERN "guest-wrote-this|"
#define HOST_BYTES 4096
#define WRITE_SECTOR 16
#define IO_BYTES 4096
#define QSIZE 16

#define BENCH_BASE 0x1000000ul /* 16 MiB */
#define BENCH_SLOTS 4
#define BENCH_REQ (1u << 20)
#define BENCH_SEG (8u << 10)
#define BENCH_SEGS (BENCH_REQ / BENCH_SEG)

#define IRQ_VECTOR 0x40
#define SPURIOUS_VECTOR 0xff
#define LAPIC_TPR 0x80
#define LAPIC_SVR 0xf0
#define LAPIC_SVR_ENABLE 0x100

static struct virtio_rings rings;
static struct virtio_dev dev;
static uint8_t wbuf[IO_BYTES] __attribute__((aligned(4096)));
static uint8_t rbuf[IO_BYTES] __attribute__((aligned(4096)));
static struct vring_desc table[8] __attribute__((aligned(16)));
static unsigned failures;

static struct vring_desc bench_table[BENCH_SLOTS][BENCH_SEGS + 2] __attribute__((aligned(16)));
static struct virtio_blk_req bench_hdr[BENCH_SLOTS];
static volatile uint8_t bench_status[BENCH_SLOTS];

struct idt_gate {
	uint16_t offset0, selector;
	uint8_t ist, attr;
	uint16_t offset1;
	uint32_t offset2, reserved;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(16)));

/* The queue's interrupt only ends the halt: acknowledge it and return. */
void bench_irq(void);
void bench_spurious(void);
__asm__(".text\n"
	"bench_irq:\n"
	"	pushq	%rax\n"
	"	movl	$0xfee000b0, %eax\n" /* the local APIC's EOI register */
	"	movl	$0, (%rax)\n"
	"	popq	%rax\n"
	"	iretq\n"
	"bench_spurious:\n"
	"	iretq\n");

static void set_gate(unsigned vector, void (*handler)(void))
{
	uintptr_t a = (uintptr_t)handler;

	idt[vector] = (struct idt_gate){(uint16_t)a, BOOT_CS64, 0, 0x8e /* present, interrupt gate */,
					(uint16_t)(a >> 16), (uint32_t)(a >> 32), 0};
}

/* An IDT with the two vectors we may see, and the local APIC accepting interrupts. */
static void interrupts_init(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = {sizeof(idt) - 1, (uintptr_t)idt};

	set_gate(IRQ_VECTOR, bench_irq);
	set_gate(SPURIOUS_VECTOR, bench_spurious);
	__asm__ volatile("lidt %0" : : "m"(idtr));
	mmio_write32(GUEST_LAPIC_BASE + LAPIC_TPR, 0);
	mmio_write32(GUEST_LAPIC_BASE + LAPIC_SVR, LAPIC_SVR_ENABLE | SPURIOUS_VECTOR);
}

static void check(bool ok, const char *what)
{
	if (ok)
		return;
	uart_puts("virtio-blk: FAIL ");
	uart_puts(what);
	uart_putc('\n');
	failures++;
}

/* Runs a request and checks its status; a timeout ends the guest. */
static void expect(int got, int want, const char *what)
{
	if (got < 0) {
		uart_puts("virtio-blk: timeout: ");
		uart_puts(what);
		uart_putc('\n');
		debug_exit(3);
	}
	check(got == want, what);
}

static uint64_t capacity(void)
{
	return virtio_config_read32(&dev, 0) | (uint64_t)virtio_config_read32(&dev, 4) << 32;
}

static void check_identity(const char *cmdline, uint64_t sectors)
{
	uint64_t want;
	size_t len;
	const char *serial = cmdline_find(cmdline, "serial", &len);
	char id[VIRTIO_BLK_ID_BYTES + 1];

	uart_puts("virtio-blk: capacity=");
	uart_put_dec(sectors);
	uart_putc('\n');
	if (cmdline_get_u64(cmdline, "sectors", &want) == 0)
		check(sectors == want, "capacity matches sectors=");

	memset(id, 0, sizeof(id));
	expect(virtio_blk_rw(&dev, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES),
	       VIRTIO_BLK_S_OK, "GET_ID");
	uart_puts("virtio-blk: serial=");
	uart_puts(id);
	uart_putc('\n');
	if (serial)
		check(len <= VIRTIO_BLK_ID_BYTES && memcmp(id, serial, len) == 0 &&
			      (len == VIRTIO_BLK_ID_BYTES || id[len] == '\0'),
		      "GET_ID returns serial=");
}

static void check_read_write(void)
{
	struct virtio_buf two[2] = {{wbuf, 1024}, {wbuf + 1024, IO_BYTES - 1024}};
	struct virtio_buf three[3] = {{rbuf, 512}, {rbuf + 512, 1536}, {rbuf + 2048, 2048}};

	check(!(dev.offered & VIRTIO_BLK_F_RO), "a writable disk does not offer RO");
	pattern_fill(wbuf, IO_BYTES, GUEST_PATTERN);
	expect(virtio_blk_request(&dev, VIRTIO_BLK_T_OUT, WRITE_SECTOR, two, 2, NULL),
	       VIRTIO_BLK_S_OK, "write from two buffers");
	memset(rbuf, 0, IO_BYTES);
	expect(virtio_blk_request(&dev, VIRTIO_BLK_T_IN, WRITE_SECTOR, three, 3, NULL),
	       VIRTIO_BLK_S_OK, "read back into three buffers");
	check(memcmp(rbuf, wbuf, IO_BYTES) == 0, "read back what was written");
	memset(rbuf, 0, IO_BYTES);
	expect(virtio_blk_request(&dev, VIRTIO_BLK_T_IN, WRITE_SECTOR, three, 3, table),
	       VIRTIO_BLK_S_OK, "read back through an indirect table");
	check(memcmp(rbuf, wbuf, IO_BYTES) == 0, "indirect read matches");
	expect(virtio_blk_rw(&dev, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK, "flush");
	uart_puts("virtio-blk: write, read back, flush ok\n");
}

static void check_read_only(void)
{
	check(dev.offered & VIRTIO_BLK_F_RO, "a read-only disk offers RO");
	pattern_fill(wbuf, 512, GUEST_PATTERN);
	expect(virtio_blk_rw(&dev, VIRTIO_BLK_T_OUT, WRITE_SECTOR, wbuf, 512),
	       VIRTIO_BLK_S_IOERR, "write to a read-only disk fails with IOERR");
	expect(virtio_blk_rw(&dev, VIRTIO_BLK_T_IN, WRITE_SECTOR, rbuf, 512), VIRTIO_BLK_S_OK,
	       "read of a read-only disk");
	check(!pattern_holds(rbuf, 512, GUEST_PATTERN), "the refused write left no trace");
	uart_puts("virtio-blk: read-only disk refused the write\n");
}

static void check_past_end(uint64_t sectors)
{
	expect(virtio_blk_rw(&dev, VIRTIO_BLK_T_IN, sectors, rbuf, 512), VIRTIO_BLK_S_IOERR,
	       "read at the capacity fails with IOERR");
	expect(virtio_blk_rw(&dev, VIRTIO_BLK_T_IN, sectors - 1, rbuf, 1024), VIRTIO_BLK_S_IOERR,
	       "read across the end fails with IOERR");
	expect(virtio_blk_rw(&dev, VIRTIO_BLK_T_IN, sectors - 1, rbuf, 512), VIRTIO_BLK_S_OK,
	       "read of the last sector");
	uart_puts("virtio-blk: requests past the end fail\n");
}

/* Points slot s's header at 1 MiB chunk c and makes it available. */
static void bench_start(unsigned s, uint64_t chunk)
{
	bench_hdr[s].sector = chunk * (BENCH_REQ / 512);
	bench_status[s] = 0xff;
	virtio_submit(&dev, (uint16_t)s);
}

static void bench(const char *cmdline, uint64_t sectors, bool use_irq)
{
	uint64_t passes = 1, per_pass = sectors / (BENCH_REQ / 512), total, next = 0, done = 0;
	uint64_t t0, cycles;

	cmdline_get_u64(cmdline, "passes", &passes);
	if (sectors % (BENCH_REQ / 512) || per_pass == 0) {
		uart_puts("virtio-blk: bench needs a whole number of MiB\n");
		debug_exit(2);
	}
	total = per_pass * passes;
	for (unsigned s = 0; s < BENCH_SLOTS; s++) {
		struct vring_desc *t = bench_table[s];
		uint64_t buf = BENCH_BASE + (uint64_t)s * BENCH_REQ;

		bench_hdr[s].type = VIRTIO_BLK_T_IN;
		t[0] = (struct vring_desc){(uintptr_t)&bench_hdr[s], sizeof(bench_hdr[s]),
					   VRING_F_NEXT, 1};
		for (unsigned i = 0; i < BENCH_SEGS; i++)
			t[i + 1] = (struct vring_desc){buf + i * BENCH_SEG, BENCH_SEG,
						       VRING_F_NEXT | VRING_F_WRITE,
						       (uint16_t)(i + 2)};
		t[BENCH_SEGS + 1] = (struct vring_desc){(uintptr_t)&bench_status[s], 1,
							VRING_F_WRITE, 0};
		dev.desc[s] = (struct vring_desc){(uintptr_t)t, sizeof(bench_table[s]),
						  VRING_F_INDIRECT, 0};
	}

	t0 = rdtsc();
	for (unsigned s = 0; s < BENCH_SLOTS && next < total; s++, next++)
		bench_start(s, next % per_pass);
	virtio_kick(&dev);
	while (done < total) {
		uint16_t idx = dev.used_seen;
		bool started = false;

		for (uint32_t spin = 0;; spin++) {
			idx = *(volatile uint16_t *)&dev.used->idx;
			if (idx != dev.used_seen)
				break;
			if (use_irq) /* sti's one-instruction delay: no wakeup lost before hlt */
				__asm__ volatile("sti; hlt; cli" ::: "memory");
			else if (spin == dev.spin_limit) {
				uart_puts("virtio-blk: bench request timed out\n");
				debug_exit(3);
			}
		}
		compiler_barrier();
		for (; dev.used_seen != idx; dev.used_seen++, done++) {
			uint32_t s = dev.used->ring[dev.used_seen % QSIZE].id;

			if (s >= BENCH_SLOTS || bench_status[s] != VIRTIO_BLK_S_OK) {
				uart_puts("virtio-blk: bench read failed\n");
				debug_exit(1);
			}
			if (next < total) {
				bench_start(s, next++ % per_pass);
				started = true;
			}
		}
		if (started)
			virtio_kick(&dev);
	}
	cycles = rdtsc() - t0;
	uart_puts("virtio-blk: bench bytes=");
	uart_put_dec(total * BENCH_REQ);
	uart_puts(" requests=");
	uart_put_dec(total);
	uart_puts(" cycles=");
	uart_put_dec(cycles);
	uart_putc('\n');
}

void guest_main(const char *cmdline)
{
	size_t len;
	bool is_bench = cmdline_find(cmdline, "bench", &len) != NULL;
	bool use_irq = is_bench && !cmdline_find(cmdline, "poll", &len);
	uint64_t sectors;

	if (use_irq)
		interrupts_init();
	if (virtio_find(&dev, VIRTIO_DEV_BLK) ||
	    (use_irq && virtio_enable_msix(&dev, IRQ_VECTOR)) ||
	    virtio_start(&dev, VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT, QSIZE, &rings))
		debug_exit(2);
	if (!(dev.features & VIRTIO_F_INDIRECT)) {
		uart_puts("virtio-blk: the device does not offer indirect descriptors\n");
		debug_exit(2);
	}
	uart_puts(dev.slot < 16 ? "virtio-blk: found at 00:0" : "virtio-blk: found at 00:");
	uart_put_hex(dev.slot);
	uart_puts(".0\n");
	sectors = capacity();
	if (is_bench) {
		bench(cmdline, sectors, use_irq);
		debug_exit(0);
	}

	check_identity(cmdline, sectors);
	expect(virtio_blk_rw(&dev, VIRTIO_BLK_T_IN, 0, rbuf, HOST_BYTES), VIRTIO_BLK_S_OK,
	       "read of the host's sectors");
	check(pattern_holds(rbuf, HOST_BYTES, VIRTIO_TEST_PATTERN), "the host's pattern in sectors 0-7");
	uart_puts("virtio-blk: read the host's pattern\n");
	if (cmdline_find(cmdline, "ro", &len))
		check_read_only();
	else
		check_read_write();
	check_past_end(sectors);
	if (failures) {
		uart_puts("virtio-blk: ");
		uart_put_dec(failures);
		uart_puts(" checks failed\n");
		debug_exit(1);
	}
	uart_puts("virtio-blk: all checks passed\n");
	/* "stay": keep running so a daemon test can read the device's counters. */
	if (cmdline_find(cmdline, "stay", &len))
		halt_forever();
	debug_exit(0);
}
