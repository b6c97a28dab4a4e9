/*
 * cpuid: reports what the VMM's CPUID table tells a guest, so a test can
 * check that "full" mode hides the hypervisor and "pv" mode advertises KVM.
 *
 * Output (one line each):
 *   cpuid: vendor=<leaf 0 EBX,EDX,ECX>
 *   cpuid: hypervisor_bit=<leaf 1 ECX[31]>
 *   cpuid: hv_signature=<leaf 0x40000000 EBX,ECX,EDX, trailing NULs dropped | none>
 *   cpuid: hv_max_leaf=0x<leaf 0x40000000 EAX, 0 when none>
 *   cpuid: kvm_features=0x<leaf 0x40000001 EAX, 0 when none>
 *
 * An absent 0x4000_0000 leaf does not read as zeros everywhere: Intel CPUs
 * (and KVM for an Intel guest vendor) return the highest basic leaf instead.
 * So the leaves count as present only if the signature is printable text
 * padded with NULs ("KVMKVMKVM\0\0\0"); otherwise all three values read as
 * none/0 rather than echoing unrelated data.
 */
#include "guest.h"

#define HV_LEAF_BASE 0x40000000
#define HV_LEAF_FEATURES 0x40000001
#define CPUID1_ECX_HYPERVISOR (1u << 31)

/* Printable ASCII, then only NULs, and not empty. */
static bool signature_valid(const char sig[12])
{
	int i = 0;

	while (i < 12 && sig[i] >= 0x20 && sig[i] <= 0x7e)
		i++;
	if (i == 0)
		return false;
	for (; i < 12; i++)
		if (sig[i] != '\0')
			return false;
	return true;
}

static void put_chars(const char *s, int n)
{
	for (int i = 0; i < n && s[i]; i++)
		uart_putc(s[i]);
}

void guest_main(const char *cmdline)
{
	uint32_t a, b, c, d, hv_max = 0, kvm_features = 0;
	char vendor[12], sig[12];
	bool hv_present;

	(void)cmdline;

	cpuid(0, &a, &b, &c, &d);
	memcpy(vendor + 0, &b, 4);
	memcpy(vendor + 4, &d, 4);
	memcpy(vendor + 8, &c, 4);
	uart_puts("cpuid: vendor=");
	put_chars(vendor, 12);
	uart_putc('\n');

	cpuid(1, &a, &b, &c, &d);
	uart_puts("cpuid: hypervisor_bit=");
	uart_putc((c & CPUID1_ECX_HYPERVISOR) ? '1' : '0');
	uart_putc('\n');

	cpuid(HV_LEAF_BASE, &a, &b, &c, &d);
	memcpy(sig + 0, &b, 4);
	memcpy(sig + 4, &c, 4);
	memcpy(sig + 8, &d, 4);
	hv_present = signature_valid(sig);
	if (hv_present) {
		hv_max = a;
		/* KVM before 2.6.35 left EAX 0, meaning "up to 0x40000001". */
		if (hv_max == 0 || hv_max >= HV_LEAF_FEATURES) {
			cpuid(HV_LEAF_FEATURES, &a, &b, &c, &d);
			kvm_features = a;
		}
	}

	uart_puts("cpuid: hv_signature=");
	if (hv_present)
		put_chars(sig, 12);
	else
		uart_puts("none");
	uart_puts("\ncpuid: hv_max_leaf=0x");
	uart_put_hex(hv_max);
	uart_puts("\ncpuid: kvm_features=0x");
	uart_put_hex(kvm_features);
	uart_putc('\n');
	debug_exit(0);
}
