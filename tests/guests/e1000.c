/*
 * e1000: drives the full mode's Intel 82540EM the way a plain driver does
 * (written against the 8254x manual, so it also runs on QEMU's e1000):
 * finds 8086:100E on bus 0, resets it, checks the link and the EEPROM
 * (its checksum and the MAC), then sends an ARP request for 10.99.0.1
 * from 10.99.0.2 through a legacy transmit descriptor and waits for the
 * host's ARP reply in a receive descriptor. The host side gives the tap
 * 10.99.0.1/24, so its kernel answers. Prints "e1000: all ok" at the end.
 *
 * Polling is bounded: transmit and receive happen on the VMM's I/O thread,
 * a few milliseconds away at most; a few seconds of polling is a failure.
 */
#include "guest.h"
#include "virtio.h"

#define CTRL   0x0000
#define STATUS 0x0008
#define EERD   0x0014
#define ICR    0x00c0
#define IMC    0x00d8
#define RCTL   0x0100
#define TCTL   0x0400
#define RDBAL  0x2800
#define RDBAH  0x2804
#define RDLEN  0x2808
#define RDH    0x2810
#define RDT    0x2818
#define TDBAL  0x3800
#define TDBAH  0x3804
#define TDLEN  0x3808
#define TDH    0x3810
#define TDT    0x3818

#define CTRL_RST   0x04000000u
#define CTRL_SLU   0x00000040u
#define STATUS_LU  0x2u
#define ICR_TXDW   0x01u
#define ICR_LSC    0x04u
#define ICR_RXT0   0x80u
#define RCTL_EN    0x2u
#define RCTL_BAM   0x8000u
#define RCTL_SECRC 0x04000000u
#define TCTL_EN    0x2u
#define TCTL_PSP   0x8u
#define TXD_EOP    0x01u
#define TXD_RS     0x08u
#define DD         0x01u
#define EOP        0x02u

#define RING    8
#define POLLS   4000000u

struct desc {
	uint64_t addr;
	uint32_t lower, upper;
};

static struct desc tx_ring[RING] __attribute__((aligned(128)));
static struct desc rx_ring[RING] __attribute__((aligned(128)));
static uint8_t tx_buf[64] __attribute__((aligned(16)));
static uint8_t rx_buf[RING][2048] __attribute__((aligned(16)));
static uintptr_t regs;
static uint8_t mac[6];
static int failures;
static uint32_t icr_seen; /* ICR clears when read: every cause seen so far */

static uint32_t rd(unsigned off)
{
	return mmio_read32(regs + off);
}

static void wr(unsigned off, uint32_t v)
{
	mmio_write32(regs + off, v);
}

static uint32_t causes(void)
{
	return icr_seen |= rd(ICR);
}

static void check(const char *what, bool ok)
{
	uart_puts(ok ? "e1000: ok " : "e1000: FAIL ");
	uart_puts(what);
	uart_puts("\n");
	failures += !ok;
}

static int find(void)
{
	for (uint8_t slot = 0; slot < 32; slot++) {
		if (pci_cfg_read32(slot, 0) != 0x100e8086)
			continue;
		regs = pci_cfg_read32(slot, 0x10) & ~0xfu;
		/* memory decoding and bus mastering */
		pci_cfg_write16(slot, 0x04, (uint16_t)(pci_cfg_read32(slot, 0x04) | 0x6));
		return slot;
	}
	return -1;
}

static uint16_t eeprom(unsigned word)
{
	uint32_t v = 0;

	wr(EERD, word << 8 | 1);
	for (unsigned i = 0; i < 1000 && !((v = rd(EERD)) & 0x10); i++)
		cpu_relax();
	return (uint16_t)(v >> 16);
}

static const uint8_t host_ip[4] = {10, 99, 0, 1}, guest_ip[4] = {10, 99, 0, 2};

/* Ethernet broadcast, ARP request: who has host_ip? tell guest_ip. */
static unsigned arp_request(uint8_t *f)
{
	static const uint8_t arp_hdr[8] = {0, 1, 8, 0, 6, 4, 0, 1};

	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = 0x08;
	f[13] = 0x06;
	memcpy(f + 14, arp_hdr, 8);
	memcpy(f + 22, mac, 6);
	memcpy(f + 28, guest_ip, 4);
	memset(f + 32, 0, 6);
	memcpy(f + 38, host_ip, 4);
	return 42; /* the device pads it to 60 (TCTL.PSP) */
}

void guest_main(const char *cmdline)
{
	uint16_t sum = 0;
	unsigned i, len;
	volatile uint8_t *status;

	(void)cmdline;
	if (find() < 0) {
		uart_puts("e1000: no 8086:100e on bus 0\n");
		return;
	}
	wr(CTRL, rd(CTRL) | CTRL_RST);
	for (i = 0; i < 1000 && (rd(CTRL) & CTRL_RST); i++)
		cpu_relax();
	wr(IMC, 0xffffffff);
	check("link status change pending after reset", causes() & ICR_LSC);
	check("link up", rd(STATUS) & STATUS_LU);
	for (i = 0; i < 64; i++)
		sum = (uint16_t)(sum + eeprom(i));
	check("EEPROM checksum 0xBABA", sum == 0xbaba);
	for (i = 0; i < 3; i++) {
		uint16_t w = eeprom(i);
		mac[2 * i] = (uint8_t)w;
		mac[2 * i + 1] = (uint8_t)(w >> 8);
	}
	uart_puts("e1000: mac ");
	for (i = 0; i < 6; i++) {
		uart_puts(mac[i] < 16 ? "0" : "");
		uart_put_hex(mac[i]);
		uart_puts(i < 5 ? ":" : "\n");
	}
	wr(CTRL, rd(CTRL) | CTRL_SLU);

	/* Receive first, so the reply has somewhere to go. */
	for (i = 0; i < RING; i++)
		rx_ring[i] = (struct desc){.addr = (uintptr_t)rx_buf[i]};
	wr(RDBAL, (uint32_t)(uintptr_t)rx_ring);
	wr(RDBAH, 0);
	wr(RDLEN, sizeof(rx_ring));
	wr(RDH, 0);
	wr(RDT, RING - 1);
	wr(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);

	len = arp_request(tx_buf);
	tx_ring[0] = (struct desc){.addr = (uintptr_t)tx_buf,
				   .lower = (TXD_EOP | TXD_RS) << 24 | len};
	wr(TDBAL, (uint32_t)(uintptr_t)tx_ring);
	wr(TDBAH, 0);
	wr(TDLEN, sizeof(tx_ring));
	wr(TDH, 0);
	wr(TDT, 0);
	wr(TCTL, TCTL_EN | TCTL_PSP);
	compiler_barrier();
	wr(TDT, 1);
	status = (volatile uint8_t *)&tx_ring[0].upper;
	for (i = 0; i < POLLS && !(*status & DD); i++)
		cpu_relax();
	check("ARP request sent (DD written back)", *status & DD);
	check("TDH advanced", rd(TDH) == 1);
	check("TXDW raised", causes() & ICR_TXDW);

	/* The host's reply: ARP opcode 2 from host_ip to our MAC. Other frames
	 * (the host's IPv6 chatter) are skipped. */
	bool found = false;
	unsigned d;
	for (d = 0; d < RING - 1 && !found; d++) {
		volatile uint8_t *st = (volatile uint8_t *)&rx_ring[d].upper;
		const uint8_t *f = rx_buf[d];
		for (i = 0; i < POLLS && !(*st & DD); i++)
			cpu_relax();
		if (!(*st & DD))
			break;
		found = (*st & EOP) && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 &&
			!memcmp(f, mac, 6) && !memcmp(f + 28, host_ip, 4);
	}
	check("ARP reply from 10.99.0.1 received", found);
	if (found) {
		check("RXT0 raised", causes() & ICR_RXT0);
		check("RDH advanced past it", rd(RDH) == d);
	}
	uart_puts(failures ? "e1000: FAILED\n" : "e1000: all ok\n");
	debug_exit(failures ? 1 : 0);
}
