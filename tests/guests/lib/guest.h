/*
 * The common library of vmmd's freestanding test guests: port and MMIO
 * access, the COM1 console, the debug-exit port, command-line lookup, ACPI
 * CPU discovery, a spinlock, and the few libc functions gcc may emit calls
 * to. Everything runs in 64-bit mode, interrupts off, on an identity map of
 * the first 4 GiB (see lib/entry.S for how both boot paths get there).
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_COM1_PORT 0x3f8
#define GUEST_POST_PORT 0x80        /* a write-only sink on PCs */
#define GUEST_DEBUG_EXIT_PORT 0x501 /* vmmd: exit status v; QEMU isa-debug-exit: (v << 1) | 1 */
#define GUEST_LAPIC_BASE 0xfee00000UL

/* Negative errno-style results, as in the rest of vmmd. */
#define GUEST_ENOENT 2
#define GUEST_EINVAL 22
#define GUEST_ENOSPC 28

/* Each guest defines this. @cmdline is the boot command line or NULL.
 * Returning is the same as debug_exit(0). */
void guest_main(const char *cmdline);

/* --- CPU helpers ------------------------------------------------------- */

static inline void outb(uint8_t v, uint16_t port)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw(uint16_t v, uint16_t port)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint32_t v, uint16_t port)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void mmio_write8(uintptr_t addr, uint8_t v)
{
	*(volatile uint8_t *)addr = v;
}

static inline uint8_t mmio_read8(uintptr_t addr)
{
	return *(volatile uint8_t *)addr;
}

static inline void mmio_write16(uintptr_t addr, uint16_t v)
{
	*(volatile uint16_t *)addr = v;
}

static inline uint16_t mmio_read16(uintptr_t addr)
{
	return *(volatile uint16_t *)addr;
}

static inline void mmio_write32(uintptr_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

static inline uint32_t mmio_read32(uintptr_t addr)
{
	return *(volatile uint32_t *)addr;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static inline __attribute__((noreturn)) void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt" ::: "memory");
}

/* Ends the VM with status @status; halts if no debug-exit device answers. */
__attribute__((noreturn)) void debug_exit(uint8_t status);

/* --- Spinlock ---------------------------------------------------------- */

struct spinlock {
	uint32_t locked;
};

static inline void spin_lock(struct spinlock *l)
{
	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))
			cpu_relax();
}

static inline void spin_unlock(struct spinlock *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

/* --- COM1 console (lib/uart.c) ----------------------------------------- */

void uart_putc(char c);
void uart_puts(const char *s);
int uart_getc(void); /* blocks; returns the byte (0..255) */
void uart_put_dec(uint64_t v);
void uart_put_hex(uint64_t v); /* lowercase, no "0x", no leading zeros */

/* --- Command line (lib/cmdline.c) -------------------------------------- */

/* Finds the last "key=value" (or bare "key") among space-separated words.
 * Returns the value, not NUL-terminated, with its length in *len; NULL if
 * absent or @cmdline is NULL. */
const char *cmdline_find(const char *cmdline, const char *key, size_t *len);
/* Parses key=<decimal or 0x-hex> into *val. 0, -GUEST_ENOENT if absent
 * (*val untouched), -GUEST_EINVAL if malformed or out of range. */
int cmdline_get_u64(const char *cmdline, const char *key, uint64_t *val);

/* --- ACPI (lib/acpi.c) ------------------------------------------------- */

/* Lists the enabled local APICs of the MADT. Stores up to @max APIC IDs and
 * returns how many CPUs there are (possibly more than @max), or a negative
 * GUEST_E* code if there is no usable RSDP/XSDT/RSDT/MADT. */
int acpi_find_cpus(uint32_t *apic_ids, int max);

/* --- libc subset (lib/string.c) ---------------------------------------- */

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
