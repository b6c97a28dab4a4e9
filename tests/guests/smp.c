/*
 * smp: brings up every CPU listed in the MADT with INIT-SIPI-SIPI through
 * the xAPIC, the way an OS does, to test the VMM's vCPU start-up, its
 * in-kernel LAPIC and the MADT it builds.
 *
 * Each CPU prints "smp: cpu <apic id> up" (the console is shared, so under a
 * spinlock) and checks in. The BSP then prints "smp: all <N> cpus up" and
 * exits 0, or after a bounded wait "smp: timeout, <k> of <N> up" and exits 1.
 * No MADT (or too many CPUs) prints a reason and exits 2. APs end in
 * cli; hlt.
 */
#include "guest.h"
#include "smp.h"

#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define SVR_ENABLE 0x100
#define SVR_SPURIOUS_VECTOR 0xff
#define ICR_INIT 0x500
#define ICR_STARTUP 0x600
#define ICR_LEVEL_ASSERT 0x4000
#define ICR_SEND_PENDING 0x1000

/*
 * The wait for check-ins ends after SMP_WAIT_TSC_CYCLES (about 3 s at
 * 3 GHz, longer on slower TSCs) or SMP_WAIT_POLLS polls, whichever comes
 * first; the poll bound only matters if the TSC does not advance. Each poll
 * reads the UART's LSR: a VM exit, harmless, and it keeps a spinning BSP
 * from monopolising a host CPU as much as a pure memory spin would.
 */
#define SMP_WAIT_TSC_CYCLES 10000000000ULL
#define SMP_WAIT_POLLS 100000000ULL

/* The architectural INIT/SIPI delays (10 ms, 200 us) are for real silicon;
 * KVM and QEMU need none. A short spin keeps the order of events sane. */
#define IPI_DELAY_SPINS 1000

uint32_t smp_ap_next;
uint8_t smp_ap_stacks[SMP_MAX_CPUS - 1][1u << SMP_AP_STACK_SHIFT]
	__attribute__((section(".bss.stack"), aligned(16)));

static struct spinlock console_lock;
static uint32_t cpus_up;

static uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(GUEST_LAPIC_BASE + reg);
}

static void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(GUEST_LAPIC_BASE + reg, v);
}

static uint32_t this_apic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

static void spin(unsigned n)
{
	while (n--)
		cpu_relax();
}

static void check_in(void)
{
	uint32_t id = this_apic_id();

	spin_lock(&console_lock);
	uart_puts("smp: cpu ");
	uart_put_dec(id);
	uart_puts(" up\n");
	spin_unlock(&console_lock);
	/* After the line, so "all N up" always follows every "cpu X up". */
	__atomic_fetch_add(&cpus_up, 1, __ATOMIC_RELEASE);
}

void smp_ap_main(void)
{
	check_in();
	halt_forever();
}

static bool send_ipi(uint32_t apic_id, uint32_t icr)
{
	lapic_write(LAPIC_ICR_HI, apic_id << 24);
	lapic_write(LAPIC_ICR_LO, icr);
	for (int i = 0; i < 100000; i++)
		if (!(lapic_read(LAPIC_ICR_LO) & ICR_SEND_PENDING))
			return true;
	return false;
}

static void start_ap(uint32_t apic_id)
{
	bool ok;

	ok = send_ipi(apic_id, ICR_INIT | ICR_LEVEL_ASSERT);
	spin(IPI_DELAY_SPINS);
	/* Two SIPIs, as the MP spec says; the second is ignored by an AP that
	 * already left wait-for-SIPI. */
	ok = send_ipi(apic_id, ICR_STARTUP | SMP_SIPI_VECTOR) && ok;
	spin(IPI_DELAY_SPINS);
	ok = send_ipi(apic_id, ICR_STARTUP | SMP_SIPI_VECTOR) && ok;
	if (!ok) {
		spin_lock(&console_lock);
		uart_puts("smp: IPI to apic ");
		uart_put_dec(apic_id);
		uart_puts(" stuck pending\n");
		spin_unlock(&console_lock);
	}
}

void guest_main(const char *cmdline)
{
	uint32_t ids[SMP_MAX_CPUS];
	uint32_t bsp, up;
	uint64_t t0;
	int n;

	(void)cmdline;
	n = acpi_find_cpus(ids, SMP_MAX_CPUS);
	if (n <= 0) {
		uart_puts("smp: no CPUs found in the ACPI MADT\n");
		debug_exit(2);
	}
	if (n > SMP_MAX_CPUS) {
		uart_puts("smp: more than 64 CPUs in the MADT\n");
		debug_exit(2);
	}

	/* Software-enable the LAPIC, as an OS would before sending IPIs. */
	lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | SVR_ENABLE | SVR_SPURIOUS_VECTOR);
	memcpy((void *)SMP_TRAMPOLINE_BASE, smp_trampoline_start,
	       (size_t)(smp_trampoline_end - smp_trampoline_start));

	check_in();
	bsp = this_apic_id();
	for (int i = 0; i < n; i++)
		if (ids[i] != bsp)
			start_ap(ids[i]);

	t0 = rdtsc();
	for (uint64_t polls = 0; polls < SMP_WAIT_POLLS; polls++) {
		if (__atomic_load_n(&cpus_up, __ATOMIC_ACQUIRE) >= (uint32_t)n)
			break;
		if (rdtsc() - t0 > SMP_WAIT_TSC_CYCLES)
			break;
		(void)inb(GUEST_COM1_PORT + 5);
	}

	/* A late AP may be mid-line. */
	spin_lock(&console_lock);
	up = __atomic_load_n(&cpus_up, __ATOMIC_ACQUIRE);
	if (up >= (uint32_t)n) {
		uart_puts("smp: all ");
		uart_put_dec((uint64_t)n);
		uart_puts(" cpus up\n");
		debug_exit(0);
	}
	uart_puts("smp: timeout, ");
	uart_put_dec(up);
	uart_puts(" of ");
	uart_put_dec((uint64_t)n);
	uart_puts(" up\n");
	debug_exit(1);
}
