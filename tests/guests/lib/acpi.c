/*
 * Just enough ACPI to count CPUs: find the RSDP in the BIOS area, follow
 * the XSDT (ACPI 2.0+, as vmmd builds it) or the RSDT (ACPI 1.0, as SeaBIOS
 * builds it for QEMU's pc machine), find the MADT ("APIC") and list its
 * enabled local APICs. Table layouts: ACPI 6.5, sections 5.2.5 to 5.2.12.
 * Every table is checksummed: a VMM that builds a bad one should fail here,
 * where the message says why, not in a later hang.
 */
#include "guest.h"

#define RSDP_SCAN_START 0xe0000
#define RSDP_SCAN_END 0x100000
#define RSDP_V1_LEN 20

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt;
	uint32_t length; /* revision >= 2 from here on */
	uint64_t xsdt;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_madt {
	struct acpi_header header;
	uint32_t lapic_addr;
	uint32_t flags;
	/* interrupt controller structures follow */
} __attribute__((packed));

#define MADT_LAPIC 0
#define MADT_X2APIC 9
#define MADT_ENABLED 0x1

static bool checksum_ok(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return sum == 0;
}

static const struct acpi_rsdp *find_rsdp(void)
{
	uint64_t want;

	memcpy(&want, "RSD PTR ", 8);
	/* 8192 candidates: one 8-byte compare each keeps the scan cheap under
	 * KVM's instruction emulator. */
	for (uintptr_t a = RSDP_SCAN_START; a < RSDP_SCAN_END; a += 16) {
		const struct acpi_rsdp *r = (const void *)a;

		if (*(const uint64_t *)a != want || !checksum_ok(r, RSDP_V1_LEN))
			continue;
		if (r->revision >= 2 && (r->length < sizeof(*r) || !checksum_ok(r, r->length)))
			continue;
		return r;
	}
	return NULL;
}

static const struct acpi_header *table_at(uint64_t addr)
{
	const struct acpi_header *h;

	/* Only the first 4 GiB are mapped. */
	if (addr == 0 || addr >= (1ULL << 32))
		return NULL;
	h = (const void *)(uintptr_t)addr;
	if (h->length < sizeof(*h) || !checksum_ok(h, h->length))
		return NULL;
	return h;
}

/* Looks up @sig in an XSDT (@entry_size 8) or RSDT (4). */
static const struct acpi_header *find_table(const struct acpi_header *root, size_t entry_size,
					    const char *sig)
{
	const uint8_t *entries = (const uint8_t *)(root + 1);
	size_t n = (root->length - sizeof(*root)) / entry_size;

	for (size_t i = 0; i < n; i++) {
		uint64_t addr = 0;
		const struct acpi_header *h;

		/* Entries are not naturally aligned in an XSDT. */
		memcpy(&addr, entries + i * entry_size, entry_size);
		h = table_at(addr);
		if (h && memcmp(h->signature, sig, 4) == 0)
			return h;
	}
	return NULL;
}

int acpi_find_cpus(uint32_t *apic_ids, int max)
{
	const struct acpi_rsdp *rsdp = find_rsdp();
	const struct acpi_header *root = NULL, *madt = NULL;
	const uint8_t *p, *end;
	int n = 0;

	if (!rsdp)
		return -GUEST_ENOENT;
	if (rsdp->revision >= 2 && (root = table_at(rsdp->xsdt)) &&
	    memcmp(root->signature, "XSDT", 4) == 0)
		madt = find_table(root, 8, "APIC");
	if (!madt && (root = table_at(rsdp->rsdt)) && memcmp(root->signature, "RSDT", 4) == 0)
		madt = find_table(root, 4, "APIC");
	if (!madt || madt->length < sizeof(struct acpi_madt))
		return -GUEST_ENOENT;

	p = (const uint8_t *)madt + sizeof(struct acpi_madt);
	end = (const uint8_t *)madt + madt->length;
	while (p + 2 <= end) {
		uint8_t type = p[0], len = p[1];
		uint32_t id, flags;

		if (len < 2 || p + len > end)
			return -GUEST_EINVAL;
		if (type == MADT_LAPIC && len >= 8) {
			/* u8 processor uid, u8 apic id, u32 flags */
			id = p[3];
			memcpy(&flags, p + 4, 4);
		} else if (type == MADT_X2APIC && len >= 16) {
			/* u16 reserved, u32 x2apic id, u32 flags, u32 uid */
			memcpy(&id, p + 4, 4);
			memcpy(&flags, p + 8, 4);
		} else {
			p += len;
			continue;
		}
		/* Entries that are only "online capable" are hot-plug slots. */
		if (flags & MADT_ENABLED) {
			if (n < max)
				apic_ids[n] = id;
			n++;
		}
		p += len;
	}
	return n;
}
