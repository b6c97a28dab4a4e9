/*
 * fault: dies by triple fault, so a test can check that the VMM reports a
 * crashed guest (KVM_EXIT_SHUTDOWN, or KVM_EXIT_INTERNAL_ERROR when the
 * fault happens inside KVM's instruction emulator) instead of hanging.
 *
 * With an IDT limit of 0 no vector is deliverable: ud2 raises #UD, its
 * descriptor is past the limit so #GP, then #DF, then shutdown. ud2 rather
 * than int3 because it is a real exception on every path, where a software
 * interrupt may be refused as unemulatable before it faults.
 */
#include "guest.h"

struct idt_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

void guest_main(const char *cmdline)
{
	static const struct idt_ptr empty_idt = { 0, 0 };

	(void)cmdline;
	uart_puts("fault: triple faulting now\n");
	__asm__ volatile("lidt %0\n\tud2" : : "m"(empty_idt) : "memory");
	/* Unreachable unless the CPU (or emulator) let the fault through. */
	uart_puts("fault: still alive\n");
	debug_exit(3);
}
