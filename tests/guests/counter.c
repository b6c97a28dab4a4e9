/*
 * counter: state that lives only in RAM and registers, for snapshot,
 * restore, clone and migration tests. It counts forever and prints
 * `counter: N ok` every `delay` loop iterations (default 20000, about
 * 50 ms on a PVM host), where ok means a 16 KiB table it keeps updating
 * still sums to what it expects. A restored or migrated guest must go on
 * from the next number, with `ok`: a lost page or register shows as a gap,
 * a repeat, or `BAD`.
 */
#include "guest.h"

#define WORDS 4096

static uint32_t table[WORDS];

void guest_main(const char *cmdline)
{
	uint64_t delay = 20000, counter = 0;
	uint32_t expected = 0;

	cmdline_get_u64(cmdline, "delay", &delay);
	for (uint32_t i = 0; i < WORDS; i++) {
		table[i] = i * 2654435761u;
		expected += table[i];
	}
	uart_puts("counter: start\n");
	for (;;) {
		counter++;
		table[counter % WORDS] += (uint32_t)counter;
		expected += (uint32_t)counter;
		for (volatile uint64_t d = 0; d < delay; d++)
			cpu_relax();
		uint32_t sum = 0;
		for (uint32_t i = 0; i < WORDS; i++)
			sum += table[i];
		uart_puts("counter: ");
		uart_put_dec(counter);
		uart_puts(sum == expected ? " ok\n" : " BAD\n");
	}
}
