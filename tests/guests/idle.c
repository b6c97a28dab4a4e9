/*
 * idle: prints one line and halts with interrupts off, so it costs the host
 * nothing while it "runs": the daemon's tests keep many of these running at
 * once. Only the VMM can end it (stop, or a kill of its worker).
 */
#include "guest.h"

void guest_main(const char *cmdline)
{
	(void)cmdline;
	uart_puts("idle: up\n");
	halt_forever();
}
