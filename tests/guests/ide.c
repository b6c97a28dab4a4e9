/*
 * ide: reads and writes the full-mode disk the way a plain ATA driver does,
 * through the PIIX3 IDE controller at 00:01.0 (legacy ports 0x1F0/0x3F6,
 * bus-master registers in BAR4). The disk must carry the test pattern:
 * sector s starts with "VMMDSECT" and s as a little-endian 64-bit number,
 * and byte i of the rest is (s + i) & 0xff.
 *
 * It runs IDENTIFY, reads sectors with READ SECTORS (PIO) and READ DMA
 * (a PRD table in its own memory), writes one sector with each method and
 * reads it back the other way, and checks that a read past the end fails
 * with ERR + IDNF. With "readonly" on the command line the writes must
 * fail with ERR + ABRT instead and leave the sectors as they were.
 *
 * Polling is bounded: the VMM completes commands within the port access,
 * so a drive that is still busy after a few thousand polls is a failure.
 */
#include "guest.h"

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc
#define IDE_DEVFN 0x08 /* 00:01.0 */

#define ATA_DATA 0x1f0
#define ATA_ERROR 0x1f1
#define ATA_NSECT 0x1f2
#define ATA_LBAL 0x1f3
#define ATA_LBAM 0x1f4
#define ATA_LBAH 0x1f5
#define ATA_DEVICE 0x1f6
#define ATA_STATUS 0x1f7
#define ATA_ALTSTATUS 0x3f6

#define ST_ERR 0x01
#define ST_DRQ 0x08
#define ST_BSY 0x80
#define ERR_ABRT 0x04
#define ERR_IDNF 0x10

#define BM_CMD 0
#define BM_STATUS 2
#define BM_PRD 4
#define BM_START 0x01
#define BM_TO_MEMORY 0x08
#define BM_ERROR 0x02
#define BM_INTR 0x04

#define POLLS 5000
#define SECTORS 8        /* read by each method */
#define PIO_SECTOR 100   /* written by PIO, read back by DMA */
#define DMA_SECTOR 101   /* written by DMA, read back by PIO */

static uint8_t buf[SECTORS * 512] __attribute__((aligned(4096)));
static uint32_t prd[2] __attribute__((aligned(8)));
static uint16_t bm_base;
static bool readonly;

/* One string instruction per block: one exit, not 256. */
static void insw(uint16_t port, void *dst, size_t words)
{
	__asm__ volatile("rep insw" : "+D"(dst), "+c"(words) : "d"(port) : "memory");
}

static void outsw(uint16_t port, const void *src, size_t words)
{
	__asm__ volatile("rep outsw" : "+S"(src), "+c"(words) : "d"(port) : "memory");
}

static __attribute__((noreturn)) void fail(const char *what, uint32_t value)
{
	uart_puts("ide: FAIL ");
	uart_puts(what);
	uart_puts(" (0x");
	uart_put_hex(value);
	uart_puts(")\n");
	debug_exit(1);
}

static uint32_t pci_read(unsigned reg)
{
	outl(0x80000000u | IDE_DEVFN << 8 | reg, PCI_ADDR);
	return inl(PCI_DATA);
}

static void pci_write16(unsigned reg, uint16_t v)
{
	outl(0x80000000u | IDE_DEVFN << 8 | (reg & ~3u), PCI_ADDR);
	outw(v, (uint16_t)(PCI_DATA + (reg & 2)));
}

/* Waits for BSY to clear; returns the status (read from Status: acknowledges the IRQ). */
static uint8_t ata_wait(void)
{
	for (int i = 0; i < POLLS; i++)
		if (!(inb(ATA_ALTSTATUS) & ST_BSY))
			return inb(ATA_STATUS);
	fail("drive stays busy", inb(ATA_ALTSTATUS));
}

static void ata_lba28(uint32_t lba, uint8_t count, uint8_t cmd)
{
	outb((uint8_t)(0xe0 | (lba >> 24)), ATA_DEVICE);
	outb(count, ATA_NSECT);
	outb((uint8_t)lba, ATA_LBAL);
	outb((uint8_t)(lba >> 8), ATA_LBAM);
	outb((uint8_t)(lba >> 16), ATA_LBAH);
	outb(cmd, ATA_STATUS);
}

static void ata_lba48(uint64_t lba, uint16_t count, uint8_t cmd)
{
	outb(0x40, ATA_DEVICE);
	outb((uint8_t)(count >> 8), ATA_NSECT);
	outb((uint8_t)(lba >> 24), ATA_LBAL);
	outb((uint8_t)(lba >> 32), ATA_LBAM);
	outb((uint8_t)(lba >> 40), ATA_LBAH);
	outb((uint8_t)count, ATA_NSECT);
	outb((uint8_t)lba, ATA_LBAL);
	outb((uint8_t)(lba >> 8), ATA_LBAM);
	outb((uint8_t)(lba >> 16), ATA_LBAH);
	outb(cmd, ATA_STATUS);
}

/* Waits for the data phase of each block and reads it. */
static void pio_read_blocks(void *dst, unsigned sectors)
{
	for (unsigned s = 0; s < sectors; s++) {
		uint8_t st = ata_wait();
		if ((st & (ST_ERR | ST_DRQ)) != ST_DRQ)
			fail("PIO read: no data phase, status", st);
		insw(ATA_DATA, (uint8_t *)dst + 512 * s, 256);
	}
}

static void pattern(uint8_t *p, uint64_t s, const char *tag)
{
	memcpy(p, tag, 8);
	for (unsigned i = 0; i < 8; i++)
		p[8 + i] = (uint8_t)(s >> (8 * i));
	for (unsigned i = 16; i < 512; i++)
		p[i] = (uint8_t)(s + i);
}

static void check(const uint8_t *p, uint64_t s, const char *tag, const char *how)
{
	uint8_t want[512];

	pattern(want, s, tag);
	if (memcmp(p, want, 512) != 0) {
		uart_puts("ide: FAIL sector ");
		uart_put_dec(s);
		uart_puts(" read by ");
		uart_puts(how);
		uart_puts(" does not carry its pattern\n");
		debug_exit(1);
	}
}

/* A DMA transfer of sectors through one PRD entry over buf. */
static void dma(uint64_t lba, unsigned sectors, bool to_memory)
{
	uint8_t dir = to_memory ? BM_TO_MEMORY : 0, st, bm;

	prd[0] = (uint32_t)(uintptr_t)buf;
	prd[1] = 0x80000000u | sectors * 512;
	outl((uint32_t)(uintptr_t)prd, (uint16_t)(bm_base + BM_PRD));
	outb(dir, (uint16_t)(bm_base + BM_CMD));
	outb(BM_ERROR | BM_INTR, (uint16_t)(bm_base + BM_STATUS));
	if (to_memory)
		ata_lba28((uint32_t)lba, (uint8_t)sectors, 0xc8); /* READ DMA */
	else
		ata_lba48(lba, (uint16_t)sectors, 0x35); /* WRITE DMA EXT */
	outb(dir | BM_START, (uint16_t)(bm_base + BM_CMD));
	for (int i = 0; i < POLLS; i++)
		if (inb((uint16_t)(bm_base + BM_STATUS)) & (BM_INTR | BM_ERROR))
			break;
	bm = inb((uint16_t)(bm_base + BM_STATUS));
	outb(dir, (uint16_t)(bm_base + BM_CMD));
	st = ata_wait();
	if (readonly && !to_memory) {
		if (!(st & ST_ERR) || inb(ATA_ERROR) != ERR_ABRT)
			fail("DMA write to a read-only disk did not abort, status", st);
		return;
	}
	if ((bm & (BM_INTR | BM_ERROR)) != BM_INTR || (st & (ST_ERR | ST_DRQ)))
		fail("DMA, bus-master status << 8 | ATA status", (uint32_t)bm << 8 | st);
}

static uint64_t identify(void)
{
	uint16_t id[256];
	uint64_t sectors = 0;
	char model[41];

	outb(0, ATA_ALTSTATUS); /* nIEN clear: the controller latches interrupts in BM status */
	outb(0xa0, ATA_DEVICE);
	outb(0xec, ATA_STATUS);
	pio_read_blocks(id, 1);
	if (id[0] & 0x8000)
		fail("IDENTIFY: not an ATA device, word 0", id[0]);
	if (!(id[49] & (1u << 9)) || !(id[49] & (1u << 8)))
		fail("IDENTIFY: no LBA or DMA, word 49", id[49]);
	for (unsigned i = 0; i < 4; i++)
		sectors |= (uint64_t)id[100 + i] << (16 * i);
	for (unsigned i = 0; i < 20; i++) {
		model[2 * i] = (char)(id[27 + i] >> 8);
		model[2 * i + 1] = (char)id[27 + i];
	}
	model[40] = 0;
	for (int i = 39; i >= 0 && model[i] == ' '; i--)
		model[i] = 0;
	uart_puts("ide: model \"");
	uart_puts(model);
	uart_puts("\" capacity ");
	uart_put_dec(sectors);
	uart_puts(" sectors\n");
	return sectors;
}

/* Writes sector s with the "VMMDWRIT" tag, or checks that a read-only disk refuses. */
static void pio_write(uint64_t s)
{
	uint8_t st;

	pattern(buf, s, "VMMDWRIT");
	ata_lba28((uint32_t)s, 1, 0x30); /* WRITE SECTORS */
	st = ata_wait();
	if (readonly) {
		if (!(st & ST_ERR) || inb(ATA_ERROR) != ERR_ABRT)
			fail("PIO write to a read-only disk did not abort, status", st);
		return;
	}
	if ((st & (ST_ERR | ST_DRQ)) != ST_DRQ)
		fail("PIO write: no data phase, status", st);
	outsw(ATA_DATA, buf, 256);
	st = ata_wait();
	if (st & (ST_ERR | ST_DRQ))
		fail("PIO write, status", st);
}

void guest_main(const char *cmdline)
{
	size_t len;
	uint32_t id = pci_read(0x00);
	uint64_t sectors;
	uint8_t st;
	const char *written = "VMMDWRIT";

	readonly = cmdline_find(cmdline, "readonly", &len) != NULL;
	if (id != 0x70108086)
		fail("no PIIX3 IDE at 00:01.0, vendor/device", id);
	if (!(pci_read(0x40) & 0x8000))
		fail("primary channel decode disabled, IDETIM", pci_read(0x40));
	bm_base = (uint16_t)(pci_read(0x20) & 0xfffc);
	pci_write16(0x04, 0x0005); /* I/O decode and bus master */
	uart_puts("ide: controller found, bus master at 0x");
	uart_put_hex(bm_base);
	uart_putc('\n');

	sectors = identify();
	if (sectors <= DMA_SECTOR)
		fail("disk too small, sectors", (uint32_t)sectors);

	ata_lba28(0, SECTORS, 0x20); /* READ SECTORS */
	pio_read_blocks(buf, SECTORS);
	st = inb(ATA_STATUS);
	if (st & (ST_BSY | ST_DRQ | ST_ERR))
		fail("PIO read did not end, status", st);
	for (unsigned s = 0; s < SECTORS; s++)
		check(buf + 512 * s, s, "VMMDSECT", "PIO");
	uart_puts("ide: PIO read ok\n");

	memset(buf, 0, sizeof(buf));
	dma(0, SECTORS, true);
	for (unsigned s = 0; s < SECTORS; s++)
		check(buf + 512 * s, s, "VMMDSECT", "DMA");
	uart_puts("ide: DMA read ok\n");

	if (readonly)
		written = "VMMDSECT";
	pio_write(PIO_SECTOR);
	pattern(buf, DMA_SECTOR, "VMMDWRIT");
	dma(DMA_SECTOR, 1, false);
	dma(PIO_SECTOR, 1, true);
	check(buf, PIO_SECTOR, written, "DMA after a PIO write");
	ata_lba28(DMA_SECTOR, 1, 0x20);
	pio_read_blocks(buf, 1);
	check(buf, DMA_SECTOR, written, "PIO after a DMA write");
	uart_puts(readonly ? "ide: writes refused, data unchanged\n" : "ide: write and read back ok\n");

	ata_lba48(sectors, 1, 0x24); /* READ SECTORS EXT, one past the end */
	st = ata_wait();
	if (!(st & ST_ERR) || inb(ATA_ERROR) != ERR_IDNF)
		fail("read past the end, status << 8 | error", (uint32_t)st << 8 | inb(ATA_ERROR));
	uart_puts("ide: read past the end fails with IDNF\n");
	uart_puts("ide: all ok\n");
	debug_exit(0);
}
