/*
 * hello: the smallest end-to-end check of a boot path. Prints one line on
 * COM1 and exits with status 0 through the debug-exit port.
 */
#include "guest.h"

void guest_main(const char *cmdline)
{
	(void)cmdline;
	uart_puts("Hello from a vmmd test guest\n");
	debug_exit(0);
}
