/*
 * garbage: a guest that writes junk to every I/O port nobody should own and
 * reads back unclaimed ports and MMIO, to prove the VMM survives it. Ports
 * whose writes have a defined effect (reset lines, power off, debug exit,
 * the console) are skipped. Reads of unclaimed ports and of MMIO in the PCI
 * hole must return all ones.
 *
 * Command line: step=N writes every N-th port (default 1: all of them).
 */
#include "guest.h"

#define UNCLAIMED_PORT 0x2f0      /* nothing decodes it on our PC */
#define UNCLAIMED_MMIO 0xd0000000 /* in the PCI hole, no BAR there */

static bool has_side_effect(uint32_t port)
{
	return (port >= 0x3f8 && port <= 0x3ff) || /* our own console */
	       port == 0x64 || port == 0x60 ||      /* i8042: reset line, keyboard */
	       (port >= 0xcf8 && port <= 0xcff) ||  /* PCI config + reset control */
	       (port >= 0x600 && port <= 0x60b) ||  /* ACPI PM1 control: power off */
	       port == GUEST_DEBUG_EXIT_PORT ||
	       (port >= 0x20 && port <= 0x21) || (port >= 0xa0 && port <= 0xa1) || /* PICs */
	       (port >= 0x40 && port <= 0x43) || port == 0x61 ||                     /* PIT */
	       port == 0x4d0 || port == 0x4d1;                                       /* ELCR */
}

void guest_main(const char *cmdline)
{
	uint64_t step = 1;
	uint32_t v;

	cmdline_get_u64(cmdline, "step", &step);
	if (step == 0)
		step = 1;
	uart_puts("garbage: writing junk\n");
	for (uint32_t port = 0; port < 0x10000; port += (uint32_t)step)
		if (!has_side_effect(port))
			outb((uint8_t)(port * 37 + 11), (uint16_t)port);
	if (inb(UNCLAIMED_PORT) != 0xff) {
		uart_puts("garbage: unclaimed port did not read all ones\n");
		debug_exit(1);
	}
	mmio_write32(UNCLAIMED_MMIO, 0xdeadbeef);
	v = mmio_read32(UNCLAIMED_MMIO);
	if (v != 0xffffffffu) {
		uart_puts("garbage: unclaimed MMIO read 0x");
		uart_put_hex(v);
		uart_putc('\n');
		debug_exit(1);
	}
	uart_puts("garbage: survived\n");
	debug_exit(0);
}
