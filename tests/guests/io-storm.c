/*
 * io-storm: N back-to-back port writes, to measure the cost of a PIO exit
 * and to check that a VMM survives an exit storm. Port 0x80 (the POST-code
 * port) is a sink on every PC, so the writes have no side effects.
 *
 * Command line: count=N (decimal or 0x hex, default 100000).
 * It reports the TSC cycles the loop took, so a benchmark can time the
 * exits alone, without the VMM's start-up (QEMU's SeaBIOS takes seconds).
 */
#include "guest.h"

#define DEFAULT_COUNT 100000

void guest_main(const char *cmdline)
{
	uint64_t count = DEFAULT_COUNT;

	if (cmdline_get_u64(cmdline, "count", &count) == -GUEST_EINVAL) {
		uart_puts("io-storm: bad count\n");
		debug_exit(2);
	}
	uart_puts("io-storm: start count=");
	uart_put_dec(count);
	uart_putc('\n');
	uint64_t t0 = rdtsc();
	for (uint64_t i = 0; i < count; i++)
		outb(0, GUEST_POST_PORT);
	uint64_t cycles = rdtsc() - t0;
	uart_puts("io-storm: cycles=");
	uart_put_dec(cycles);
	uart_putc('\n');
	uart_puts("io-storm: done\n");
	debug_exit(0);
}
