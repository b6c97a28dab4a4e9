/*
 * A tiny virtio 1.x PCI driver for the test guests (virtio-blk and
 * virtio-hostile): finds a function on bus 0 through configuration
 * mechanism #1, locates the common/notify/ISR/device areas from its vendor
 * capabilities (in whichever memory BARs they name, below 4 GiB), brings
 * up queue 0 in memory the caller provides and polls the used ring (or
 * asks for MSI-X interrupts, which the caller handles). Every polling wait
 * is bounded, so a device that never answers ends the guest with a message
 * instead of hanging the test.
 *
 * Not part of guest-common: only the virtio guests link it.
 */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include "guest.h"

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_DEV_BLK 0x1042

/* Device status bits (virtio 2.1). */
#define VIRTIO_S_ACK 0x01
#define VIRTIO_S_DRIVER 0x02
#define VIRTIO_S_DRIVER_OK 0x04
#define VIRTIO_S_FEATURES_OK 0x08
#define VIRTIO_S_NEEDS_RESET 0x40

#define VIRTIO_F_INDIRECT (1ull << 28)
#define VIRTIO_F_VERSION_1 (1ull << 32)
#define VIRTIO_BLK_F_RO (1ull << 5)

#define VIRTIO_NO_VECTOR 0xffff

#define VRING_F_NEXT 1
#define VRING_F_WRITE 2
#define VRING_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1

/* virtio-blk requests (virtio 5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[];
};

struct virtio_blk_req {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/* Queue 0's rings: one page each, 4 KiB aligned. Sizes up to 256 fit. */
struct virtio_rings {
	struct vring_desc desc[256];
	uint8_t avail_page[4096];
	uint8_t used_page[4096];
} __attribute__((aligned(4096)));

struct virtio_dev {
	uint8_t slot;
	uintptr_t common, isr, device, notify_base; /* MMIO addresses inside BAR0 */
	uint32_t notify_mult;
	uintptr_t notify; /* queue 0's notify register */
	uint64_t offered;    /* device features */
	uint64_t features;   /* negotiated */
	uint16_t qsize;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t used_seen; /* used entries consumed so far */
	uint16_t queue_vector; /* MSI-X vector of queue 0, VIRTIO_NO_VECTOR: we poll */
	uint32_t spin_limit; /* polls of the used ring before giving up */
};

static inline void compiler_barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

/* Reads a PCI configuration dword of bus 0. */
uint32_t pci_cfg_read32(uint8_t slot, uint8_t reg);
void pci_cfg_write16(uint8_t slot, uint8_t reg, uint16_t v);

/* Finds the first function with this virtio device ID and its capabilities.
 * 0, or -GUEST_ENOENT (with a message on the console). */
int virtio_find(struct virtio_dev *d, uint16_t device_id);
/* Resets the device and brings it up (virtio 3.1.1) with the wanted features
 * (those the device does not offer are dropped) and queue 0 of qsize entries
 * in rings. 0 or -GUEST_EINVAL (with a message). */
int virtio_start(struct virtio_dev *d, uint64_t features, uint16_t qsize,
		 struct virtio_rings *rings);
/* Before virtio_start: enables MSI-X and sends queue 0's used buffers as
 * MSI-X vector 0, an interrupt with this vector to the CPU with APIC ID 0
 * (the caller sets up its IDT and local APIC). 0 or -GUEST_ENOENT. */
int virtio_enable_msix(struct virtio_dev *d, uint8_t cpu_vector);
uint8_t virtio_get_status(const struct virtio_dev *d);
void virtio_set_status(const struct virtio_dev *d, uint8_t status);
uint32_t virtio_config_read32(const struct virtio_dev *d, unsigned off);

/* Makes head available (no kick). */
void virtio_submit(struct virtio_dev *d, uint16_t head);
/* Tells the device queue 0 has work: a 16-bit write, what KVM's ioeventfd matches. */
void virtio_kick(const struct virtio_dev *d);
/* Polls until the used index reaches used_seen + n; returns false on timeout. */
bool virtio_wait_used(struct virtio_dev *d, uint16_t n);

struct virtio_buf {
	void *addr;
	uint32_t len;
};

/* A virtio-blk request: header, n data buffers (device-writable unless
 * type is OUT) and the status byte, chained in descriptors 0..n+1, or
 * through table (n + 2 entries) with descriptor 0 pointing to it when
 * table is not NULL. Submits, kicks and waits. Returns the status byte, or
 * -1 on timeout. */
int virtio_blk_request(struct virtio_dev *d, uint32_t type, uint64_t sector,
		       const struct virtio_buf *bufs, unsigned n, struct vring_desc *table);
/* The same with one buffer (none when len is 0). */
int virtio_blk_rw(struct virtio_dev *d, uint32_t type, uint64_t sector, void *buf, uint32_t len);

/* --- for the tests ------------------------------------------------------- */

/* What the host test puts in the first 4 KiB of a test disk (repeated). */
#define VIRTIO_TEST_PATTERN "vmmd-virtio-blk-pattern\n"

/* Fills buf with pat repeated; checks that buf holds pat repeated. */
void pattern_fill(uint8_t *buf, size_t len, const char *pat);
bool pattern_holds(const uint8_t *buf, size_t len, const char *pat);

#endif
