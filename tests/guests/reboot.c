/*
 * reboot: announces itself and pulses the i8042 reset line (command 0xFE on
 * port 0x64), as Linux's reboot=kbd does. The VMM either restarts the
 * guest, which then reboots again, or exits, as its reboot policy says.
 */
#include "guest.h"

void guest_main(const char *cmdline)
{
	(void)cmdline;
	uart_puts("reboot: pulsing the reset line\n");
	outb(0xfe, 0x64);
	uart_puts("reboot: still alive\n");
	debug_exit(4);
}
