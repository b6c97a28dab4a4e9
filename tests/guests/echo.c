/*
 * echo: checks the UART's receive path (console attach, input injection).
 * Echoes every received byte until Ctrl-D, turning '\r' into "\r\n" as a
 * terminal expects; Ctrl-D itself is not echoed.
 */
#include "guest.h"

#define CTRL_D 0x04

void guest_main(const char *cmdline)
{
	int c;

	(void)cmdline;
	uart_puts("echo: ready\n");
	while ((c = uart_getc()) != CTRL_D) {
		if (c == '\r')
			uart_puts("\r\n");
		else
			uart_putc((char)c);
	}
	uart_puts("echo: bye\n");
	debug_exit(0);
}
