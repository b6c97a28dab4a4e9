/*
 * COM1 console and debug exit for the test guests.
 *
 * A polled 8250 with no set-up: vmmd's emulated 8250 and QEMU's come out of
 * reset ready to send, and skipping the baud-rate and FIFO programming keeps
 * the guests' VM exits to the two ports that matter (THR/RBR and LSR).
 * Lines end in a bare '\n': tests compare the console byte for byte.
 */
#include "guest.h"

#define UART_DATA 0 /* THR on write, RBR on read */
#define UART_LSR 5
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20

void uart_putc(char c)
{
	while (!(inb(GUEST_COM1_PORT + UART_LSR) & LSR_THR_EMPTY))
		cpu_relax();
	outb((uint8_t)c, GUEST_COM1_PORT + UART_DATA);
}

void uart_puts(const char *s)
{
	while (*s)
		uart_putc(*s++);
}

int uart_getc(void)
{
	while (!(inb(GUEST_COM1_PORT + UART_LSR) & LSR_DATA_READY))
		cpu_relax();
	return inb(GUEST_COM1_PORT + UART_DATA);
}

void uart_put_dec(uint64_t v)
{
	char buf[20]; /* 2^64 - 1 has 20 digits */
	int i = 0;

	do {
		buf[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i)
		uart_putc(buf[--i]);
}

void uart_put_hex(uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	char buf[16];
	int i = 0;

	do {
		buf[i++] = digits[v & 0xf];
		v >>= 4;
	} while (v);
	while (i)
		uart_putc(buf[--i]);
}

void debug_exit(uint8_t status)
{
	outb(status, GUEST_DEBUG_EXIT_PORT);
	/* Only reached without a debug-exit device. */
	halt_forever();
}
