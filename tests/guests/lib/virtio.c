/*
 * The test guests' virtio-pci driver (see virtio.h). Written against the
 * virtio 1.2 spec, section 4.1 (PCI transport), not against vmmd's device,
 * so it also drives QEMU's virtio-blk-pci.
 */
#include "virtio.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34
#define PCI_CAP_VENDOR 0x09
#define PCI_CAP_MSIX 0x11
#define MSIX_ENABLE 0x8000
#define MSI_ADDR_CPU0 0xfee00000u /* fixed delivery, physical destination APIC ID 0 */

/* virtio_pci_cap.cfg_type */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4

/* Common configuration offsets (virtio 4.1.4.3). */
#define COMMON_DFSELECT 0x00
#define COMMON_DF 0x04
#define COMMON_GFSELECT 0x08
#define COMMON_GF 0x0c
#define COMMON_MSIX 0x10
#define COMMON_STATUS 0x14
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE 0x18
#define COMMON_Q_MSIX 0x1a
#define COMMON_Q_ENABLE 0x1c
#define COMMON_Q_NOFF 0x1e
#define COMMON_Q_DESC 0x20
#define COMMON_Q_AVAIL 0x28
#define COMMON_Q_USED 0x30

#define DEFAULT_SPIN_LIMIT 4000000u /* a few seconds of polling in KVM's emulator */

static uint32_t cfg_address(uint8_t slot, uint8_t reg)
{
	return 0x80000000u | (uint32_t)slot << 11 | (reg & 0xfcu);
}

uint32_t pci_cfg_read32(uint8_t slot, uint8_t reg)
{
	outl(cfg_address(slot, reg), PCI_CONFIG_ADDRESS);
	return inl(PCI_CONFIG_DATA);
}

void pci_cfg_write16(uint8_t slot, uint8_t reg, uint16_t v)
{
	uint32_t old = pci_cfg_read32(slot, reg);
	unsigned shift = (reg & 2) * 8;

	old = (old & ~(0xffffu << shift)) | (uint32_t)v << shift;
	outl(cfg_address(slot, reg), PCI_CONFIG_ADDRESS);
	outl(old, PCI_CONFIG_DATA);
}

static uint8_t cfg_read8(uint8_t slot, uint8_t reg)
{
	return (uint8_t)(pci_cfg_read32(slot, reg) >> ((reg & 3) * 8));
}

/* Where memory BAR n decodes, or 0 if it is I/O, unassigned or above our 4 GiB map. */
static uintptr_t bar_address(uint8_t slot, uint8_t n)
{
	uint32_t lo;

	if (n > 5)
		return 0;
	lo = pci_cfg_read32(slot, (uint8_t)(PCI_BAR0 + 4 * n));
	if (lo & 1)
		return 0;
	if ((lo & 6) == 4 && (n == 5 || pci_cfg_read32(slot, (uint8_t)(PCI_BAR0 + 4 * n + 4))))
		return 0; /* 64-bit BAR placed above 4 GiB */
	return lo & ~0xfu;
}

/* Reads one vendor capability at cap into d; false if its BAR is unusable. */
static bool parse_cap(struct virtio_dev *d, uint8_t slot, uint8_t cap)
{
	uint8_t type = cfg_read8(slot, cap + 3);
	uintptr_t bar, at;

	if (type < CAP_COMMON || type > CAP_DEVICE)
		return true; /* PCI config access and future types: not needed */
	bar = bar_address(slot, cfg_read8(slot, cap + 4));
	if (!bar)
		return false;
	at = bar + pci_cfg_read32(slot, cap + 8);
	switch (type) {
	case CAP_COMMON: d->common = at; break;
	case CAP_ISR: d->isr = at; break;
	case CAP_DEVICE: d->device = at; break;
	case CAP_NOTIFY:
		d->notify_base = at;
		d->notify_mult = pci_cfg_read32(slot, cap + 16);
		break;
	}
	return true;
}

int virtio_find(struct virtio_dev *d, uint16_t device_id)
{
	uint32_t want = (uint32_t)device_id << 16 | VIRTIO_VENDOR;

	memset(d, 0, sizeof(*d));
	for (uint8_t slot = 0; slot < 32; slot++) {
		unsigned n = 0;

		if (pci_cfg_read32(slot, 0) != want)
			continue;
		if (!(pci_cfg_read32(slot, PCI_COMMAND) >> 16 & PCI_STATUS_CAP_LIST)) {
			uart_puts("virtio: no capability list\n");
			return -GUEST_ENOENT;
		}
		pci_cfg_write16(slot, PCI_COMMAND,
				(uint16_t)(pci_cfg_read32(slot, PCI_COMMAND) | PCI_COMMAND_MEMORY |
					   PCI_COMMAND_MASTER));
		for (uint8_t cap = cfg_read8(slot, PCI_CAP_PTR) & 0xfc; cap && n++ < 48;
		     cap = cfg_read8(slot, cap + 1) & 0xfc)
			if (cfg_read8(slot, cap) == PCI_CAP_VENDOR && !parse_cap(d, slot, cap)) {
				uart_puts("virtio: a capability's BAR is not mapped below 4 GiB\n");
				return -GUEST_ENOENT;
			}
		if (!d->common || !d->notify_base || !d->isr || !d->device) {
			uart_puts("virtio: missing common/notify/ISR/device capability\n");
			return -GUEST_ENOENT;
		}
		d->slot = slot;
		d->spin_limit = DEFAULT_SPIN_LIMIT;
		d->queue_vector = VIRTIO_NO_VECTOR;
		return 0;
	}
	uart_puts("virtio: device not found on bus 0\n");
	return -GUEST_ENOENT;
}

int virtio_enable_msix(struct virtio_dev *d, uint8_t cpu_vector)
{
	unsigned n = 0;

	for (uint8_t cap = cfg_read8(d->slot, PCI_CAP_PTR) & 0xfc; cap && n++ < 48;
	     cap = cfg_read8(d->slot, cap + 1) & 0xfc) {
		uint32_t table, ctrl;
		uintptr_t bar;

		if (cfg_read8(d->slot, cap) != PCI_CAP_MSIX)
			continue;
		table = pci_cfg_read32(d->slot, cap + 4);
		bar = bar_address(d->slot, table & 7);
		if (!bar)
			break;
		bar += table & ~7u;
		mmio_write32(bar, MSI_ADDR_CPU0); /* entry 0: address, data, unmasked */
		mmio_write32(bar + 4, 0);
		mmio_write32(bar + 8, cpu_vector);
		mmio_write32(bar + 12, 0);
		ctrl = pci_cfg_read32(d->slot, cap) >> 16;
		pci_cfg_write16(d->slot, cap + 2, (uint16_t)((ctrl & 0x3fff) | MSIX_ENABLE));
		d->queue_vector = 0;
		return 0;
	}
	uart_puts("virtio: no usable MSI-X capability\n");
	return -GUEST_ENOENT;
}

uint8_t virtio_get_status(const struct virtio_dev *d)
{
	return mmio_read8(d->common + COMMON_STATUS);
}

void virtio_set_status(const struct virtio_dev *d, uint8_t status)
{
	mmio_write8(d->common + COMMON_STATUS, status);
}

uint32_t virtio_config_read32(const struct virtio_dev *d, unsigned off)
{
	return mmio_read32(d->device + off);
}

static void write64(uintptr_t addr, uint64_t v)
{
	mmio_write32(addr, (uint32_t)v);
	mmio_write32(addr + 4, (uint32_t)(v >> 32));
}

static int start_failed(const char *why)
{
	uart_puts("virtio: ");
	uart_puts(why);
	uart_putc('\n');
	return -GUEST_EINVAL;
}

int virtio_start(struct virtio_dev *d, uint64_t features, uint16_t qsize,
		 struct virtio_rings *rings)
{
	uint16_t max;

	virtio_set_status(d, 0);
	for (uint32_t i = 0; virtio_get_status(d) != 0; i++)
		if (i == 1000)
			return start_failed("reset did not complete");
	virtio_set_status(d, VIRTIO_S_ACK | VIRTIO_S_DRIVER);

	mmio_write32(d->common + COMMON_DFSELECT, 0);
	d->offered = mmio_read32(d->common + COMMON_DF);
	mmio_write32(d->common + COMMON_DFSELECT, 1);
	d->offered |= (uint64_t)mmio_read32(d->common + COMMON_DF) << 32;
	if (!(d->offered & VIRTIO_F_VERSION_1))
		return start_failed("device does not offer VERSION_1");
	features &= d->offered;
	d->features = features;
	mmio_write32(d->common + COMMON_GFSELECT, 0);
	mmio_write32(d->common + COMMON_GF, (uint32_t)features);
	mmio_write32(d->common + COMMON_GFSELECT, 1);
	mmio_write32(d->common + COMMON_GF, (uint32_t)(features >> 32));
	virtio_set_status(d, VIRTIO_S_ACK | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
	if (!(virtio_get_status(d) & VIRTIO_S_FEATURES_OK))
		return start_failed("FEATURES_OK refused");

	mmio_write16(d->common + COMMON_MSIX, VIRTIO_NO_VECTOR);
	mmio_write16(d->common + COMMON_Q_SELECT, 0);
	max = mmio_read16(d->common + COMMON_Q_SIZE);
	if (qsize > max || qsize > 256)
		return start_failed("queue size above the device's maximum");
	mmio_write16(d->common + COMMON_Q_SIZE, qsize);
	mmio_write16(d->common + COMMON_Q_MSIX, d->queue_vector);
	if (mmio_read16(d->common + COMMON_Q_MSIX) != d->queue_vector)
		return start_failed("queue 0's MSI-X vector refused");
	memset(rings, 0, sizeof(*rings));
	d->qsize = qsize;
	d->desc = rings->desc;
	d->avail = (struct vring_avail *)rings->avail_page;
	d->used = (struct vring_used *)rings->used_page;
	d->used_seen = 0;
	if (d->queue_vector == VIRTIO_NO_VECTOR)
		d->avail->flags = VRING_AVAIL_F_NO_INTERRUPT; /* we poll */
	write64(d->common + COMMON_Q_DESC, (uintptr_t)d->desc);
	write64(d->common + COMMON_Q_AVAIL, (uintptr_t)d->avail);
	write64(d->common + COMMON_Q_USED, (uintptr_t)d->used);
	d->notify = d->notify_base + (uintptr_t)mmio_read16(d->common + COMMON_Q_NOFF) * d->notify_mult;
	mmio_write16(d->common + COMMON_Q_ENABLE, 1);
	if (mmio_read16(d->common + COMMON_Q_ENABLE) != 1)
		return start_failed("queue 0 did not enable");
	virtio_set_status(d, VIRTIO_S_ACK | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK |
				     VIRTIO_S_DRIVER_OK);
	if (virtio_get_status(d) & VIRTIO_S_NEEDS_RESET)
		return start_failed("device needs a reset right after start");
	return 0;
}

void virtio_submit(struct virtio_dev *d, uint16_t head)
{
	struct vring_avail *a = d->avail;
	uint16_t idx = *(volatile uint16_t *)&a->idx;

	a->ring[idx % d->qsize] = head;
	compiler_barrier(); /* x86 keeps stores in order: the entry before the index */
	*(volatile uint16_t *)&a->idx = (uint16_t)(idx + 1);
}

void virtio_kick(const struct virtio_dev *d)
{
	compiler_barrier();
	mmio_write16(d->notify, 0);
}

bool virtio_wait_used(struct virtio_dev *d, uint16_t n)
{
	uint16_t target = (uint16_t)(d->used_seen + n);

	for (uint32_t i = 0; i < d->spin_limit; i++) {
		if (*(volatile uint16_t *)&d->used->idx == target) {
			compiler_barrier();
			d->used_seen = target;
			return true;
		}
	}
	return false;
}

int virtio_blk_request(struct virtio_dev *d, uint32_t type, uint64_t sector,
		       const struct virtio_buf *bufs, unsigned n, struct vring_desc *table)
{
	static struct virtio_blk_req hdr;
	static volatile uint8_t status;
	struct vring_desc *chain = table ? table : d->desc;
	uint16_t data_flags = type == VIRTIO_BLK_T_OUT ? 0 : VRING_F_WRITE;

	hdr.type = type;
	hdr.reserved = 0;
	hdr.sector = sector;
	status = 0xff;
	chain[0] = (struct vring_desc){(uintptr_t)&hdr, sizeof(hdr), VRING_F_NEXT, 1};
	for (unsigned i = 0; i < n; i++)
		chain[i + 1] = (struct vring_desc){(uintptr_t)bufs[i].addr, bufs[i].len,
						   VRING_F_NEXT | data_flags, (uint16_t)(i + 2)};
	chain[n + 1] = (struct vring_desc){(uintptr_t)&status, 1, VRING_F_WRITE, 0};
	if (table)
		d->desc[0] = (struct vring_desc){(uintptr_t)table,
						 (uint32_t)((n + 2) * sizeof(*table)),
						 VRING_F_INDIRECT, 0};
	virtio_submit(d, 0);
	virtio_kick(d);
	if (!virtio_wait_used(d, 1))
		return -1;
	return status;
}

int virtio_blk_rw(struct virtio_dev *d, uint32_t type, uint64_t sector, void *buf, uint32_t len)
{
	struct virtio_buf b = {buf, len};

	return virtio_blk_request(d, type, sector, &b, len ? 1 : 0, NULL);
}

void pattern_fill(uint8_t *buf, size_t len, const char *pat)
{
	size_t plen = strlen(pat);

	for (size_t i = 0; i < len; i += plen)
		memcpy(buf + i, pat, len - i < plen ? len - i : plen);
}

bool pattern_holds(const uint8_t *buf, size_t len, const char *pat)
{
	size_t plen = strlen(pat);

	for (size_t i = 0; i < len; i += plen)
		if (memcmp(buf + i, pat, len - i < plen ? len - i : plen))
			return false;
	return true;
}
