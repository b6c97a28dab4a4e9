/*
 * The virtio-pci transport (devices/virtio/virtio_pci.c) and MSI-X
 * (devices/pci/msix.c), driven the way a guest driver drives them: through
 * the PCI function's config space and BAR accesses, with virtio-blk over a
 * temporary image as the device and a fake platform that stands in for KVM
 * (irqfds, ioeventfds, the INTx line). Requests are built in a malloc'd fake
 * guest RAM and served by the transport's real I/O thread, so every wait
 * for a completion is bounded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_console.h"
#include "devices/virtio/virtio_rng.h"
#include "fake_platform.h"

#define RAM_SIZE (1u << 20)
#define DESC_GPA 0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA 0x3000
#define HDR_GPA 0x4000
#define STATUS_GPA 0x4100
#define DATA_GPA 0x10000
#define QSIZE 16

#define IMAGE_SECTORS 128
#define INTX_GSI 5

/* BAR0 layout and the MSI-X BAR, as virtio_pci.c places them. */
#define BAR_REGS 0
#define BAR_MSIX 1
#define ISR_OFF 0x1000
#define DEVICE_OFF 0x2000
#define NOTIFY_OFF 0x3000
#define PBA_OFF 0x800
#define NR_VECTORS 2 /* one queue + config */

#define F_VERSION_1 (1ull << VIRTIO_F_VERSION_1)
#define S_DRIVER_UP (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER)

struct fixture {
    struct fake_platform fp;
    char path[64];
    struct block_image img;
    struct virtio_blk *blk;
    struct virtio_pci *vp;
    uint16_t used_seen; /* the driver's view of the used index */
};

/* Byte b of the image as created: differs per sector and per offset. */
static uint8_t image_byte(uint64_t b)
{
    return (uint8_t)(b / 512 * 13 + b % 512 * 7 + 1);
}

static struct fixture *new_fixture_opt(bool readonly, bool start)
{
    struct fixture *f = calloc(1, sizeof(*f));
    static uint8_t image[IMAGE_SECTORS * 512];
    char err[256];
    int fd;

    assert_non_null(f);
    fake_platform_init(&f->fp);
    fake_platform_enable_pci(&f->fp);
    fake_platform_add_ram(&f->fp, RAM_SIZE);
    assert_non_null(f->fp.ram.host);

    snprintf(f->path, sizeof(f->path), "/tmp/vq-unit-XXXXXX");
    fd = mkstemp(f->path);
    assert_true(fd >= 0);
    for (uint64_t b = 0; b < sizeof(image); b++)
        image[b] = image_byte(b);
    assert_int_equal(write(fd, image, sizeof(image)), sizeof(image));
    close(fd);
    if (block_image_open(&f->img, f->path, -1, readonly, err, sizeof(err)))
        fail_msg("%s", err);
    assert_int_equal(virtio_blk_create(&f->blk, &f->fp.platform, &f->img, NULL), 0);
    f->vp = virtio_blk_transport(f->blk);
    f->vp->pdev.intx_gsi = INTX_GSI; /* the bus would wire it */
    /* As Linux's probe does: without bus mastering the device must not touch RAM. */
    pci_device_config_write(&f->vp->pdev, PCI_COMMAND, 2, PCI_COMMAND_MASTER);
    if (start)
        assert_int_equal(virtio_pci_start(f->vp), 0);
    return f;
}

static struct fixture *new_fixture(bool readonly)
{
    return new_fixture_opt(readonly, true);
}

static int setup(void **state)
{
    *state = new_fixture(false);
    return 0;
}

static int setup_readonly(void **state)
{
    *state = new_fixture(true);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    virtio_blk_destroy(f->blk);
    block_image_close(&f->img);
    unlink(f->path);
    fake_platform_free_ram(&f->fp);
    free(f);
    return 0;
}

/* --- the driver's side ------------------------------------------------------------------ */

static uint64_t bar_rd(struct fixture *f, unsigned bar, uint64_t off, unsigned size)
{
    uint64_t v = 0;

    f->vp->pdev.ops->bar_read(&f->vp->pdev, bar, off, &v, size);
    return v;
}

static void bar_wr(struct fixture *f, unsigned bar, uint64_t off, unsigned size, uint64_t v)
{
    f->vp->pdev.ops->bar_write(&f->vp->pdev, bar, off, &v, size);
}

static uint64_t common_rd(struct fixture *f, unsigned off, unsigned size)
{
    return bar_rd(f, BAR_REGS, off, size);
}

static void common_wr(struct fixture *f, unsigned off, unsigned size, uint64_t v)
{
    bar_wr(f, BAR_REGS, off, size, v);
}

static uint8_t status(struct fixture *f)
{
    return (uint8_t)common_rd(f, VIRTIO_PCI_COMMON_STATUS, 1);
}

static void set_status(struct fixture *f, uint8_t s)
{
    common_wr(f, VIRTIO_PCI_COMMON_STATUS, 1, s);
}

static void write_features(struct fixture *f, uint64_t features)
{
    common_wr(f, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    common_wr(f, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)features);
    common_wr(f, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    common_wr(f, VIRTIO_PCI_COMMON_GF, 4, features >> 32);
}

static uint64_t device_features(struct fixture *f)
{
    common_wr(f, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
    uint64_t lo = common_rd(f, VIRTIO_PCI_COMMON_DF, 4);
    common_wr(f, VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
    return lo | common_rd(f, VIRTIO_PCI_COMMON_DF, 4) << 32;
}

/* Programs queue 0 (size n) with its rings at the default places. */
static void setup_queue(struct fixture *f, uint16_t n)
{
    common_wr(f, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    common_wr(f, VIRTIO_PCI_COMMON_Q_SIZE, 2, n);
    common_wr(f, VIRTIO_PCI_COMMON_Q_DESCLO, 8, DESC_GPA); /* one 64-bit access */
    common_wr(f, VIRTIO_PCI_COMMON_Q_AVAILLO, 4, AVAIL_GPA);
    common_wr(f, VIRTIO_PCI_COMMON_Q_AVAILHI, 4, 0);
    common_wr(f, VIRTIO_PCI_COMMON_Q_USEDLO, 4, USED_GPA);
    common_wr(f, VIRTIO_PCI_COMMON_Q_USEDHI, 4, 0);
}

/* The virtio 3.1.1 initialisation sequence, one queue of QSIZE, no interrupts chosen. */
static void driver_init(struct fixture *f, uint64_t features)
{
    set_status(f, 0);
    memset(f->fp.ram.host, 0, RAM_SIZE);
    f->used_seen = 0;
    set_status(f, S_DRIVER_UP);
    write_features(f, features);
    set_status(f, S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK);
    assert_int_equal(status(f), S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK);
    setup_queue(f, QSIZE);
    common_wr(f, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
    set_status(f, S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
}

static void *gpa(struct fixture *f, uint64_t addr)
{
    return f->fp.ram.host + addr;
}

static struct vring_avail *avail(struct fixture *f)
{
    return gpa(f, AVAIL_GPA);
}

static struct vring_used *used(struct fixture *f)
{
    return gpa(f, USED_GPA);
}

static uint16_t used_idx(struct fixture *f)
{
    return __atomic_load_n(&used(f)->idx, __ATOMIC_ACQUIRE);
}

static void post(struct fixture *f, uint16_t head)
{
    struct vring_avail *a = avail(f);

    a->ring[a->idx % QSIZE] = head;
    __atomic_store_n(&a->idx, (uint16_t)(a->idx + 1), __ATOMIC_RELEASE);
}

/* The notify register, as a guest writes it when no ioeventfd took the write. */
static void kick(struct fixture *f)
{
    bar_wr(f, BAR_REGS, NOTIFY_OFF, 2, 0);
}

/*
 * Posts a blk request in descriptors 0..2 and kicks: header, len bytes of
 * data at DATA_GPA (device-writable for reads), status byte (set to 0xee).
 */
static void blk_submit(struct fixture *f, uint32_t type, uint64_t sector, uint32_t len)
{
    struct vring_desc *d = gpa(f, DESC_GPA);
    struct virtio_blk_outhdr hdr = {.type = type, .sector = sector};
    uint16_t data_flags = type == VIRTIO_BLK_T_OUT ? 0 : VRING_DESC_F_WRITE;

    memcpy(gpa(f, HDR_GPA), &hdr, sizeof(hdr));
    *(uint8_t *)gpa(f, STATUS_GPA) = 0xee;
    d[0] = (struct vring_desc){HDR_GPA, sizeof(hdr), VRING_DESC_F_NEXT, len ? 1 : 2};
    d[1] = (struct vring_desc){DATA_GPA, len, VRING_DESC_F_NEXT | data_flags, 2};
    d[2] = (struct vring_desc){STATUS_GPA, 1, VRING_DESC_F_WRITE, 0};
    post(f, 0);
    kick(f);
}

/* blk_submit, then waits for the request; returns the status byte, with the
 * used length in *written. */
static uint8_t blk_request(struct fixture *f, uint32_t type, uint64_t sector, uint32_t len,
                           uint32_t *written)
{
    uint8_t *st = gpa(f, STATUS_GPA);

    blk_submit(f, type, sector, len);
    f->used_seen++;
    if (!WAIT_FOR(used_idx(f) == f->used_seen))
        fail_msg("request type %u not completed within 5 s", type);
    assert_int_equal(used(f)->ring[(f->used_seen - 1) % QSIZE].id, 0);
    if (written)
        *written = used(f)->ring[(f->used_seen - 1) % QSIZE].len;
    return *st;
}

static void read_image(struct fixture *f, uint64_t off, void *buf, size_t len)
{
    int fd = open(f->path, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void assert_image_untouched(struct fixture *f, uint64_t sector, unsigned sectors)
{
    uint8_t buf[4096];

    assert_true(sectors * 512 <= sizeof(buf));
    read_image(f, sector * 512, buf, sectors * 512);
    for (unsigned i = 0; i < sectors * 512; i++)
        assert_int_equal(buf[i], image_byte(sector * 512 + i));
}

static int intx_level(struct fixture *f)
{
    return __atomic_load_n(&f->fp.irq_level[INTX_GSI], __ATOMIC_ACQUIRE);
}

static uint8_t isr(struct fixture *f)
{
    return (uint8_t)bar_rd(f, BAR_REGS, ISR_OFF, 1);
}

/* --- configuration space ------------------------------------------------------------------ */

static void test_pci_identity_and_capabilities(void **state)
{
    struct fixture *f = *state;
    struct pci_device *p = &f->vp->pdev;
    unsigned found = 0, msix = 0;

    assert_int_equal(pci_device_config_read(p, 0, 4), 0x10421af4);
    assert_int_equal(pci_device_config_read(p, 0x2e, 2), 0x40); /* subsystem: modern */
    assert_true(pci_device_config_read(p, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
    assert_int_equal(pci_device_config_read(p, PCI_INTERRUPT_PIN, 1), 1);
    /* BAR sizing: 16 KiB of registers and 4 KiB of MSI-X, 32-bit memory. */
    pci_device_config_write(p, PCI_BAR0, 4, 0xffffffff);
    assert_int_equal(pci_device_config_read(p, PCI_BAR0, 4), 0xffffc000);
    pci_device_config_write(p, PCI_BAR0 + 4, 4, 0xffffffff);
    assert_int_equal(pci_device_config_read(p, PCI_BAR0 + 4, 4), 0xfffff000);

    for (unsigned at = pci_device_config_read(p, PCI_CAPABILITY_LIST, 1), n = 0; at;
         at = pci_device_config_read(p, at + 1, 1)) {
        assert_true(++n < 48); /* no loop in the list */
        if (pci_device_config_read(p, at, 1) == PCI_CAP_ID_MSIX) {
            msix = at;
            continue;
        }
        assert_int_equal(pci_device_config_read(p, at, 1), PCI_CAP_ID_VENDOR);
        unsigned type = pci_device_config_read(p, at + 3, 1);
        uint32_t offset = pci_device_config_read(p, at + 8, 4);
        uint32_t length = pci_device_config_read(p, at + 12, 4);
        assert_int_equal(pci_device_config_read(p, at + 4, 1), BAR_REGS);
        found |= 1u << type;
        switch (type) {
        case VIRTIO_PCI_CAP_COMMON_CFG:
            assert_int_equal(offset, 0);
            assert_true(length >= 0x38);
            break;
        case VIRTIO_PCI_CAP_NOTIFY_CFG:
            assert_int_equal(pci_device_config_read(p, at + 2, 1), 20);
            assert_int_equal(offset, NOTIFY_OFF);
            assert_int_equal(pci_device_config_read(p, at + 16, 4), 4); /* multiplier */
            break;
        case VIRTIO_PCI_CAP_ISR_CFG: assert_int_equal(offset, ISR_OFF); break;
        case VIRTIO_PCI_CAP_DEVICE_CFG: assert_int_equal(offset, DEVICE_OFF); break;
        default: fail_msg("unexpected virtio capability type %u", type);
        }
    }
    assert_int_equal(found, 1u << VIRTIO_PCI_CAP_COMMON_CFG | 1u << VIRTIO_PCI_CAP_NOTIFY_CFG |
                                1u << VIRTIO_PCI_CAP_ISR_CFG | 1u << VIRTIO_PCI_CAP_DEVICE_CFG);
    assert_int_not_equal(msix, 0);
    assert_int_equal(pci_device_config_read(p, msix + 2, 2), NR_VECTORS - 1);
    assert_int_equal(pci_device_config_read(p, msix + 4, 4), 0 | BAR_MSIX);
    assert_int_equal(pci_device_config_read(p, msix + 8, 4), PBA_OFF | BAR_MSIX);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_NUMQ, 2), 1);
}

static void test_feature_negotiation(void **state)
{
    struct fixture *f = *state;
    uint64_t offered = device_features(f);

    assert_true(offered & F_VERSION_1);
    assert_true(offered & 1ull << VIRTIO_RING_F_INDIRECT_DESC);
    assert_true(offered & 1ull << VIRTIO_RING_F_EVENT_IDX);
    assert_true(offered & 1ull << VIRTIO_BLK_F_FLUSH);
    assert_false(offered & 1ull << VIRTIO_BLK_F_RO); /* writable image */
    common_wr(f, VIRTIO_PCI_COMMON_DFSELECT, 4, 2);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_DF, 4), 0);

    /* Without VERSION_1 (a legacy driver): FEATURES_OK does not stick. */
    set_status(f, S_DRIVER_UP);
    write_features(f, 1ull << VIRTIO_BLK_F_FLUSH);
    set_status(f, S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK);
    assert_int_equal(status(f), S_DRIVER_UP);

    /* A bit the device did not offer: refused too. */
    set_status(f, 0);
    set_status(f, S_DRIVER_UP);
    write_features(f, F_VERSION_1 | 1ull << VIRTIO_BLK_F_RO);
    set_status(f, S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK);
    assert_false(status(f) & VIRTIO_CONFIG_S_FEATURES_OK);
    write_features(f, F_VERSION_1 | 1ull << 40);
    set_status(f, S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK);
    assert_false(status(f) & VIRTIO_CONFIG_S_FEATURES_OK);

    /* A subset of the offer with VERSION_1 is accepted, and then frozen. */
    write_features(f, F_VERSION_1 | 1ull << VIRTIO_RING_F_INDIRECT_DESC);
    set_status(f, S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK);
    assert_int_equal(status(f), S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK);
    write_features(f, offered);
    common_wr(f, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_GF, 4), 1);
    common_wr(f, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_GF, 4), 1u << VIRTIO_RING_F_INDIRECT_DESC);

    /* Reset forgets it all. */
    set_status(f, 0);
    assert_int_equal(status(f), 0);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_GF, 4), 0);
}

static void test_feature_ro_offered_for_readonly_image(void **state)
{
    struct fixture *f = *state;

    assert_true(device_features(f) & 1ull << VIRTIO_BLK_F_RO);
    driver_init(f, F_VERSION_1 | 1ull << VIRTIO_BLK_F_RO);
}

static void test_queue_setup_enable_and_reset(void **state)
{
    struct fixture *f = *state;

    common_wr(f, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_SIZE, 2), VIRTQ_MAX_SIZE);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_NOFF, 2), 0);
    driver_init(f, F_VERSION_1);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_SIZE, 2), QSIZE);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_DESCLO, 8), DESC_GPA);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_AVAILLO, 4), AVAIL_GPA);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_USEDLO, 4), USED_GPA);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_USEDHI, 4), 0);

    /* The layout of an enabled queue is frozen (virtio 4.1.4.3.2). */
    common_wr(f, VIRTIO_PCI_COMMON_Q_SIZE, 2, 8);
    common_wr(f, VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x8000);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_SIZE, 2), QSIZE);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_DESCLO, 4), DESC_GPA);

    /* A queue the device does not have reads as absent and ignores writes. */
    common_wr(f, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
    common_wr(f, VIRTIO_PCI_COMMON_Q_SIZE, 2, 8);
    common_wr(f, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
    common_wr(f, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0xffff);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);

    /* Odd widths are ignored. */
    common_wr(f, VIRTIO_PCI_COMMON_Q_SELECT, 4, 0);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_SELECT, 2), 0xffff);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_STATUS, 2), 0);

    /* Writing 0 to status resets: queues disabled, sizes and addresses back to defaults. */
    common_wr(f, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    set_status(f, 0);
    assert_int_equal(status(f), 0);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_SIZE, 2), VIRTQ_MAX_SIZE);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_USEDLO, 4), 0);

    /* And the device works again after a fresh initialisation. */
    driver_init(f, F_VERSION_1);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
}

static void test_device_config(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(bar_rd(f, BAR_REGS, DEVICE_OFF, 8), IMAGE_SECTORS);
    assert_int_equal(bar_rd(f, BAR_REGS, DEVICE_OFF, 4), IMAGE_SECTORS);
    assert_int_equal(bar_rd(f, BAR_REGS, DEVICE_OFF + 4, 4), 0);
#define BLK_CFG(field) (DEVICE_OFF + offsetof(struct virtio_blk_config, field))
    assert_int_equal(bar_rd(f, BAR_REGS, BLK_CFG(size_max), 4), 1u << 20);
    assert_int_equal(bar_rd(f, BAR_REGS, BLK_CFG(seg_max), 4), VIRTQ_MAX_SEGS - 2);
    assert_int_equal(bar_rd(f, BAR_REGS, BLK_CFG(blk_size), 4), 512);
#undef BLK_CFG
    /* Past the config structure: reads as 0, no out-of-bounds read. */
    assert_int_equal(bar_rd(f, BAR_REGS, DEVICE_OFF + sizeof(struct virtio_blk_config) - 2, 4), 0);
    assert_int_equal(bar_rd(f, BAR_REGS, DEVICE_OFF + 0xff8, 8), 0);
    /* Writes to it are ignored. */
    bar_wr(f, BAR_REGS, DEVICE_OFF, 8, 1);
    assert_int_equal(bar_rd(f, BAR_REGS, DEVICE_OFF, 8), IMAGE_SECTORS);
}

/* --- virtio-blk end to end ---------------------------------------------------------------- */

static void test_blk_read(void **state)
{
    struct fixture *f = *state;
    uint32_t written;
    const uint8_t *data = gpa(f, DATA_GPA);

    driver_init(f, F_VERSION_1);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 3, 1024, &written), VIRTIO_BLK_S_OK);
    assert_int_equal(written, 1025);
    for (unsigned i = 0; i < 1024; i++)
        assert_int_equal(data[i], image_byte(3 * 512 + i));
    /* The last sector. */
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, IMAGE_SECTORS - 1, 512, NULL),
                     VIRTIO_BLK_S_OK);
    assert_int_equal(data[511], image_byte(IMAGE_SECTORS * 512 - 1));
}

static void test_blk_write_and_flush(void **state)
{
    struct fixture *f = *state;
    uint8_t *data = gpa(f, DATA_GPA), back[1024];
    uint32_t written;

    driver_init(f, F_VERSION_1);
    for (unsigned i = 0; i < 1024; i++)
        data[i] = (uint8_t)(0xa5 ^ i);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_OUT, 7, 1024, &written), VIRTIO_BLK_S_OK);
    assert_int_equal(written, 1); /* just the status byte */
    read_image(f, 7 * 512, back, sizeof(back));
    for (unsigned i = 0; i < 1024; i++)
        assert_int_equal(back[i], (uint8_t)(0xa5 ^ i));
    assert_image_untouched(f, 6, 1);
    assert_image_untouched(f, 9, 1);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_FLUSH, 0, 0, NULL), VIRTIO_BLK_S_OK);

    /* Read back through the device. */
    memset(data, 0, 1024);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 7, 1024, NULL), VIRTIO_BLK_S_OK);
    assert_memory_equal(data, back, sizeof(back));
}

static void test_blk_get_id(void **state)
{
    struct fixture *f = *state;
    const char *base = strrchr(f->path, '/') + 1;
    char id[VIRTIO_BLK_ID_BYTES + 1] = {0};
    uint32_t written;

    driver_init(f, F_VERSION_1);
    memset(gpa(f, DATA_GPA), 0x55, VIRTIO_BLK_ID_BYTES);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, &written),
                     VIRTIO_BLK_S_OK);
    assert_int_equal(written, VIRTIO_BLK_ID_BYTES + 1);
    memcpy(id, gpa(f, DATA_GPA), VIRTIO_BLK_ID_BYTES);
    assert_string_equal(id, base); /* shorter than 20: NUL-padded */
}

static void test_blk_bad_requests_fail(void **state)
{
    struct fixture *f = *state;

    driver_init(f, F_VERSION_1);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, IMAGE_SECTORS, 512, NULL),
                     VIRTIO_BLK_S_IOERR);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, IMAGE_SECTORS - 1, 1024, NULL),
                     VIRTIO_BLK_S_IOERR);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_OUT, IMAGE_SECTORS - 1, 1024, NULL),
                     VIRTIO_BLK_S_IOERR);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_OUT, ~0ull, 512, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, ~0ull / 512, 512, NULL),
                     VIRTIO_BLK_S_IOERR);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, 100, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(blk_request(f, 99, 0, 512, NULL), VIRTIO_BLK_S_UNSUPP);
    assert_image_untouched(f, IMAGE_SECTORS - 1, 1);
    /* None of that is a transport error: the device carries on. */
    assert_false(status(f) & VIRTIO_CONFIG_S_NEEDS_RESET);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
}

static void test_blk_readonly_image_refuses_writes(void **state)
{
    struct fixture *f = *state;

    driver_init(f, F_VERSION_1 | 1ull << VIRTIO_BLK_F_RO);
    memset(gpa(f, DATA_GPA), 0, 512);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_OUT, 2, 512, NULL), VIRTIO_BLK_S_IOERR);
    assert_image_untouched(f, 2, 1);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 2, 512, NULL), VIRTIO_BLK_S_OK);
    assert_int_equal(((uint8_t *)gpa(f, DATA_GPA))[5], image_byte(2 * 512 + 5));
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_FLUSH, 0, 0, NULL), VIRTIO_BLK_S_OK);
}

/* A request the device cannot even put a status into: completed, nothing written. */
static void test_blk_request_without_status_byte(void **state)
{
    struct fixture *f = *state;
    struct vring_desc *d = gpa(f, DESC_GPA);
    struct virtio_blk_outhdr hdr = {.type = VIRTIO_BLK_T_OUT, .sector = 1};

    driver_init(f, F_VERSION_1);
    memcpy(gpa(f, HDR_GPA), &hdr, sizeof(hdr));
    d[4] = (struct vring_desc){HDR_GPA, sizeof(hdr), 0, 0};
    post(f, 4);
    kick(f);
    assert_true(WAIT_FOR(used_idx(f) == 1));
    assert_int_equal(used(f)->ring[0].id, 4);
    assert_int_equal(used(f)->ring[0].len, 0);
    assert_image_untouched(f, 1, 1);
}

/* --- broken queues and interrupts -------------------------------------------------------- */

static void assert_needs_reset_with_config_interrupt(struct fixture *f, const char *why)
{
    assert_true(WAIT_FOR(status(f) & VIRTIO_CONFIG_S_NEEDS_RESET));
    assert_true(WAIT_FOR(intx_level(f) == 1));
    assert_int_equal(isr(f), 0x2); /* a configuration change */
    assert_int_equal(intx_level(f), 0); /* the read acknowledged it */
    assert_int_equal(isr(f), 0);
    if (!strstr(f->vp->broken_reason, why))
        fail_msg("broken reason \"%s\" does not mention \"%s\"", f->vp->broken_reason, why);
}

static void test_bad_ring_at_enable_needs_reset(void **state)
{
    struct fixture *f = *state;
    uint8_t gen = (uint8_t)common_rd(f, VIRTIO_PCI_COMMON_CFGGENERATION, 1);

    set_status(f, S_DRIVER_UP);
    write_features(f, F_VERSION_1);
    set_status(f, S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK);
    setup_queue(f, QSIZE);
    common_wr(f, VIRTIO_PCI_COMMON_Q_DESCLO, 4, DESC_GPA + 8);
    common_wr(f, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
    assert_int_equal(status(f), S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK |
                                    VIRTIO_CONFIG_S_NEEDS_RESET);
    assert_int_not_equal(common_rd(f, VIRTIO_PCI_COMMON_CFGGENERATION, 1), gen);
    assert_needs_reset_with_config_interrupt(f, "misaligned");
    /* NEEDS_RESET sticks across status writes other than 0. */
    set_status(f, S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
    assert_true(status(f) & VIRTIO_CONFIG_S_NEEDS_RESET);
    set_status(f, 0);
    assert_int_equal(status(f), 0);
    assert_int_equal(f->vp->broken_reason[0], '\0');

    /* Rings outside RAM, a size above the device's maximum, a size not a power of two. */
    static const struct {
        uint64_t used;
        uint16_t size;
        const char *why;
    } cases[] = {
        {RAM_SIZE - 8, QSIZE, "outside guest RAM"},
        {0xd0000000, QSIZE, "outside guest RAM"},
        {USED_GPA, 2 * VIRTQ_MAX_SIZE, "above the maximum"},
        {USED_GPA, 24, "not a power of two"},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        set_status(f, 0);
        set_status(f, S_DRIVER_UP);
        write_features(f, F_VERSION_1);
        set_status(f, S_DRIVER_UP | VIRTIO_CONFIG_S_FEATURES_OK);
        setup_queue(f, cases[i].size);
        common_wr(f, VIRTIO_PCI_COMMON_Q_USEDLO, 8, cases[i].used);
        common_wr(f, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
        assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
        assert_needs_reset_with_config_interrupt(f, cases[i].why);
    }
}

static void test_hostile_request_needs_reset(void **state)
{
    struct fixture *f = *state;
    struct vring_desc *d = gpa(f, DESC_GPA);

    driver_init(f, F_VERSION_1);
    post(f, QSIZE + 3); /* head index past the queue */
    kick(f);
    assert_needs_reset_with_config_interrupt(f, "queue 0: head index 19 past queue size 16");
    assert_int_equal(used_idx(f), 0);
    /* Kicks of a device that needs a reset are ignored. */
    kick(f);
    usleep(20000);
    assert_int_equal(used_idx(f), 0);

    /* After a reset and a fresh start it serves requests again. */
    driver_init(f, F_VERSION_1);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 1, 512, NULL), VIRTIO_BLK_S_OK);
    assert_true(WAIT_FOR(intx_level(f) == 1));
    assert_int_equal(isr(f), 0x1);

    /* A buffer running past the end of RAM, in a request after a good one. */
    d[5] = (struct vring_desc){HDR_GPA, 16, VRING_DESC_F_NEXT, 6};
    d[6] = (struct vring_desc){RAM_SIZE - 4096, 1 << 20, VRING_DESC_F_WRITE, 0};
    post(f, 5);
    kick(f);
    assert_needs_reset_with_config_interrupt(f, "not in guest RAM");
    assert_int_equal(used_idx(f), 1);

    /* An avail index far ahead. */
    driver_init(f, F_VERSION_1);
    avail(f)->idx = 1000;
    kick(f);
    assert_needs_reset_with_config_interrupt(f, "avail index jumped");
}

static void test_isr_and_intx_on_completion(void **state)
{
    struct fixture *f = *state;
    struct pci_device *p = &f->vp->pdev;

    driver_init(f, F_VERSION_1);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
    assert_true(WAIT_FOR(intx_level(f) == 1));
    assert_true(pci_device_config_read(p, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    assert_int_equal(isr(f), 0x1); /* a used buffer */
    assert_int_equal(intx_level(f), 0);
    assert_false(pci_device_config_read(p, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    assert_int_equal(isr(f), 0);

    /* The driver asked for no interrupts: none (and the ISR stays clear). */
    avail(f)->flags = VRING_AVAIL_F_NO_INTERRUPT;
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
    usleep(50000);
    assert_int_equal(intx_level(f), 0);
    assert_int_equal(isr(f), 0);
    avail(f)->flags = 0;

    /* INTx disabled in the command register: the status bit says it, the line stays low. */
    pci_device_config_write(p, PCI_COMMAND, 2, PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
    assert_true(WAIT_FOR(pci_device_config_read(p, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT));
    assert_int_equal(intx_level(f), 0);
    pci_device_config_write(p, PCI_COMMAND, 2, PCI_COMMAND_MASTER);
    assert_int_equal(intx_level(f), 1); /* re-enabling shows the pending level */
    assert_int_equal(isr(f), 0x1);
    assert_int_equal(intx_level(f), 0);
}

/* --- MSI-X --------------------------------------------------------------------------------- */

static unsigned msix_cap(struct fixture *f)
{
    return f->vp->msix.cap;
}

static void msix_entry(struct fixture *f, unsigned v, uint64_t addr, uint32_t data, uint32_t ctrl)
{
    bar_wr(f, BAR_MSIX, 16 * v, 8, addr);
    bar_wr(f, BAR_MSIX, 16 * v + 8, 4, data);
    bar_wr(f, BAR_MSIX, 16 * v + 12, 4, ctrl);
}

static unsigned vector_gsi(struct fixture *f, unsigned v)
{
    return (unsigned)f->vp->msix.vectors[v].gsi;
}

static uint64_t pba(struct fixture *f)
{
    return bar_rd(f, BAR_MSIX, PBA_OFF, 8);
}

static void test_msix_table_and_vectors(void **state)
{
    struct fixture *f = *state;

    /* Every vector has a GSI with an irqfd, and starts masked. */
    for (unsigned v = 0; v < NR_VECTORS; v++) {
        assert_int_equal(vector_gsi(f, v), FAKE_MSI_GSI_BASE + v);
        assert_true(f->fp.msi[v].irqfd_assigned);
        assert_int_equal(bar_rd(f, BAR_MSIX, 16 * v + 12, 4), 1);
    }
    msix_entry(f, 1, 0xfee01000, 0x4032, 1);
    assert_int_equal(bar_rd(f, BAR_MSIX, 16, 8), 0xfee01000);
    assert_int_equal(bar_rd(f, BAR_MSIX, 16 + 8, 4), 0x4032);
    assert_int_equal(bar_rd(f, BAR_MSIX, 16 + 8, 8), 0x100004032ull); /* data + ctrl */
    /* Reserved control bits do not stick; unaligned or odd-sized accesses are ignored. */
    bar_wr(f, BAR_MSIX, 16 + 12, 4, 0xfffffffe);
    assert_int_equal(bar_rd(f, BAR_MSIX, 16 + 12, 4), 0);
    bar_wr(f, BAR_MSIX, 16 + 12, 4, 1);
    bar_wr(f, BAR_MSIX, 16 + 2, 4, 0xffffffff);
    bar_wr(f, BAR_MSIX, 16, 2, 0xffff);
    assert_int_equal(bar_rd(f, BAR_MSIX, 16, 8), 0xfee01000);
    assert_int_equal(bar_rd(f, BAR_MSIX, 16 + 1, 4), 0);
    /* The PBA is read-only; past the table and PBA nothing decodes. */
    bar_wr(f, BAR_MSIX, PBA_OFF, 8, ~0ull);
    assert_int_equal(pba(f), 0);
    assert_int_equal(bar_rd(f, BAR_MSIX, 16 * NR_VECTORS, 4), 0);

    /* Vector numbers the function does not have read back as NO_VECTOR. */
    common_wr(f, VIRTIO_PCI_COMMON_MSIX, 2, NR_VECTORS);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
    common_wr(f, VIRTIO_PCI_COMMON_MSIX, 2, 1);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_MSIX, 2), 1);
    common_wr(f, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    common_wr(f, VIRTIO_PCI_COMMON_Q_MSIX, 2, 7);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
    common_wr(f, VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_MSIX, 2), 0);
}

/* A reset asked for while a request is in flight waits for it: the driver
 * must not reuse buffers the device may still write (Linux polls for 0). */
static void test_reset_waits_for_requests_in_flight(void **state)
{
    struct fixture *f = *state;
    struct vring_desc *d = gpa(f, DESC_GPA);
    struct virtio_blk_outhdr hdr = {.type = VIRTIO_BLK_T_IN, .sector = 0};
    static struct virtq_elem elem;
    unsigned gen;

    driver_init(f, F_VERSION_1);
    memcpy(gpa(f, HDR_GPA), &hdr, sizeof(hdr));
    d[0] = (struct vring_desc){HDR_GPA, sizeof(hdr), VRING_DESC_F_NEXT, 1};
    d[1] = (struct vring_desc){STATUS_GPA, 1, VRING_DESC_F_WRITE, 0};
    post(f, 0); /* no kick: the test plays the I/O thread */
    assert_int_equal(virtio_pci_pop(f->vp, 0, &elem, &gen), 1);

    set_status(f, 0);
    assert_int_not_equal(status(f), 0); /* not yet: a request is still out */
    set_status(f, S_DRIVER_UP);          /* and the driver cannot start over meanwhile */
    assert_int_equal(status(f) & VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_DRIVER_OK);
    assert_false(virtio_pci_queue_ready(f->vp, 0));
    virtio_pci_push(f->vp, 0, &elem, 1, gen);
    assert_int_equal(status(f), 0); /* the last completion finished the reset */
    assert_int_equal(used_idx(f), 0); /* and went nowhere */
    assert_int_equal(common_rd(f, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);

    /* Without requests out, a reset is immediate and the device works again. */
    driver_init(f, F_VERSION_1);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
}

/* Bus mastering off (Linux's way to stop a device's DMA, e.g. for kexec): no requests served. */
static void test_no_dma_without_bus_master(void **state)
{
    struct fixture *f = *state;
    struct pci_device *p = &f->vp->pdev;

    driver_init(f, F_VERSION_1);
    pci_device_config_write(p, PCI_COMMAND, 2, 0);
    assert_false(virtio_pci_queue_ready(f->vp, 0));
    blk_submit(f, VIRTIO_BLK_T_IN, 0, 512);
    usleep(50000);
    assert_int_equal(used_idx(f), 0);
    assert_int_equal(*(uint8_t *)gpa(f, STATUS_GPA), 0xee); /* RAM untouched */
    pci_device_config_write(p, PCI_COMMAND, 2, PCI_COMMAND_MASTER);
    kick(f);
    assert_true(WAIT_FOR(used_idx(f) == 1));
    assert_int_equal(*(uint8_t *)gpa(f, STATUS_GPA), VIRTIO_BLK_S_OK);
}

static void test_msix_masking_and_pending_bits(void **state)
{
    struct fixture *f = *state;
    struct pci_device *p = &f->vp->pdev;
    unsigned gsi = vector_gsi(f, 0);
    uint64_t fired = 0;

    driver_init(f, F_VERSION_1);
    common_wr(f, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    common_wr(f, VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);
    pci_device_config_write(p, msix_cap(f) + 2, 2, 0x8000); /* MSI-X enable */
    msix_entry(f, 0, 0xfee00000, 0x4041, 1);                 /* still masked */

    /* A completion on a masked vector: pending bit, no interrupt, no ISR, no INTx. */
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
    assert_true(WAIT_FOR(pba(f) == 1));
    assert_int_equal(fake_msi_fired(&f->fp, gsi), 0);
    assert_int_equal(intx_level(f), 0);
    assert_int_equal(isr(f), 0);

    /* Unmasking delivers it, through a route carrying the table's message. */
    bar_wr(f, BAR_MSIX, 12, 4, 0);
    assert_int_equal(pba(f), 0);
    assert_int_equal(fake_msi_fired(&f->fp, gsi), 1);
    assert_int_equal(f->fp.msi[0].addr, 0xfee00000);
    assert_int_equal(f->fp.msi[0].data, 0x4041);

    /* Unmasked: straight through, routed once. */
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
    assert_true(WAIT_FOR((fired += fake_msi_fired(&f->fp, gsi)) == 1));
    assert_int_equal(f->fp.msi[0].sets, 1);

    /* A new message is routed before the next delivery. */
    msix_entry(f, 0, 0xfee02000, 0x4051, 0);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
    fired = 0;
    assert_true(WAIT_FOR((fired += fake_msi_fired(&f->fp, gsi)) == 1));
    assert_int_equal(f->fp.msi[0].sets, 2);
    assert_int_equal(f->fp.msi[0].data, 0x4051);

    /* The function mask holds every vector back; clearing it in config space delivers. */
    pci_device_config_write(p, msix_cap(f) + 2, 2, 0xc000);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
    assert_true(WAIT_FOR(pba(f) == 1));
    assert_int_equal(fake_msi_fired(&f->fp, gsi), 0);
    pci_device_config_write(p, msix_cap(f) + 2, 2, 0x8000);
    assert_int_equal(fake_msi_fired(&f->fp, gsi), 1);
    assert_int_equal(pba(f), 0);

    /* NO_VECTOR for the queue: nothing at all. */
    common_wr(f, VIRTIO_PCI_COMMON_Q_MSIX, 2, VIRTIO_MSI_NO_VECTOR);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
    usleep(50000);
    assert_int_equal(fake_msi_fired(&f->fp, gsi), 0);
    assert_int_equal(pba(f), 0);
    assert_int_equal(isr(f), 0);

    /* Disabling MSI-X falls back to INTx and the ISR. */
    common_wr(f, VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);
    pci_device_config_write(p, msix_cap(f) + 2, 2, 0);
    assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, 512, NULL), VIRTIO_BLK_S_OK);
    assert_true(WAIT_FOR(intx_level(f) == 1));
    assert_int_equal(isr(f), 0x1);
    assert_int_equal(fake_msi_fired(&f->fp, gsi), 0);
}

static void test_msix_config_vector_on_needs_reset(void **state)
{
    struct fixture *f = *state;
    uint64_t fired = 0;

    driver_init(f, F_VERSION_1);
    common_wr(f, VIRTIO_PCI_COMMON_MSIX, 2, 1);
    pci_device_config_write(&f->vp->pdev, msix_cap(f) + 2, 2, 0x8000);
    msix_entry(f, 1, 0xfee00000, 0x4061, 0);
    post(f, 0xffff);
    kick(f);
    assert_true(WAIT_FOR(status(f) & VIRTIO_CONFIG_S_NEEDS_RESET));
    assert_true(WAIT_FOR((fired += fake_msi_fired(&f->fp, vector_gsi(f, 1))) == 1));
    assert_int_equal(fake_msi_fired(&f->fp, vector_gsi(f, 0)), 0);
    assert_int_equal(isr(f), 0);
    assert_int_equal(intx_level(f), 0);

    /* A PCI reset (machine reset) masks the vectors and disables MSI-X again. */
    pci_device_reset(&f->vp->pdev);
    assert_int_equal(status(f), 0);
    assert_int_equal(pci_device_config_read(&f->vp->pdev, msix_cap(f) + 2, 2), NR_VECTORS - 1);
    assert_int_equal(bar_rd(f, BAR_MSIX, 16 + 12, 4), 1);
}

/* --- notifications through ioeventfds ------------------------------------------------------ */

static void test_notify_through_ioeventfd(void **state)
{
    struct fixture *f = *state;
    struct pci_device *p = &f->vp->pdev;
    uint64_t one = 1;
    int fd;

    assert_int_equal(f->fp.nr_ioeventfds, 0); /* BAR0 decodes nowhere yet */
    pci_device_config_write(p, PCI_BAR0, 4, 0xc0000000);
    pci_device_config_write(p, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    assert_int_equal(f->fp.nr_ioeventfds, 1);
    fd = fake_ioeventfd_at(&f->fp, 0xc0000000 + NOTIFY_OFF, 2);
    assert_true(fd >= 0);

    /* KVM signalling the eventfd is a kick, no exit to the VMM needed. */
    driver_init(f, F_VERSION_1);
    struct vring_desc *d = gpa(f, DESC_GPA);
    struct virtio_blk_outhdr hdr = {.type = VIRTIO_BLK_T_IN, .sector = 4};
    memcpy(gpa(f, HDR_GPA), &hdr, sizeof(hdr));
    d[0] = (struct vring_desc){HDR_GPA, sizeof(hdr), VRING_DESC_F_NEXT, 1};
    d[1] = (struct vring_desc){DATA_GPA, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2};
    d[2] = (struct vring_desc){STATUS_GPA, 1, VRING_DESC_F_WRITE, 0};
    post(f, 0);
    assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
    assert_true(WAIT_FOR(used_idx(f) == 1));
    assert_int_equal(*(uint8_t *)gpa(f, STATUS_GPA), VIRTIO_BLK_S_OK);
    assert_int_equal(((uint8_t *)gpa(f, DATA_GPA))[0], image_byte(4 * 512));

    /* Moving the BAR moves the ioeventfd; turning decode off removes it. */
    pci_device_config_write(p, PCI_BAR0, 4, 0xc0010000);
    assert_int_equal(f->fp.nr_ioeventfds, 1);
    assert_int_equal(fake_ioeventfd_at(&f->fp, 0xc0010000 + NOTIFY_OFF, 2), fd);
    pci_device_config_write(p, PCI_COMMAND, 2, 0);
    assert_int_equal(f->fp.nr_ioeventfds, 0);
}

/* --- snapshot ------------------------------------------------------------------------------- */

static void save_vp(struct virtio_pci *vp, struct snap_w *w)
{
    snap_w_init(w);
    virtio_pci_save(vp, w);
    assert_int_equal(w->err, 0);
}

/* A fresh device for a restore: not started, its RAM a copy of f's (the memory file). */
static struct fixture *restore_target(struct fixture *f)
{
    struct fixture *g = new_fixture_opt(false, false);

    memcpy(g->fp.ram.host, f->fp.ram.host, RAM_SIZE);
    return g;
}

static int load_bytes(struct virtio_pci *vp, const void *p, size_t len, char *what, size_t n)
{
    struct snap_r r;
    int rc;

    snap_r_init(&r, p, len);
    rc = virtio_pci_load(vp, &r);
    if (what)
        snprintf(what, n, "%s", r.what);
    return rc;
}

/* The state load must leave alone when it refuses. */
static void assert_state(struct virtio_pci *vp, const struct snap_w *expect)
{
    struct snap_w now;

    save_vp(vp, &now);
    assert_int_equal(now.len, expect->len);
    assert_memory_equal(now.buf, expect->buf, now.len);
    snap_w_free(&now);
}

/* A device with MSI-X on, BAR0 decoding, three requests served and a fourth waiting unkicked. */
static void drive_into_state(struct fixture *f)
{
    struct pci_device *p = &f->vp->pdev;

    pci_device_config_write(p, PCI_BAR0, 4, 0xc0000000);
    pci_device_config_write(p, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    driver_init(f, F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX);
    common_wr(f, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    common_wr(f, VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);
    common_wr(f, VIRTIO_PCI_COMMON_MSIX, 2, 1);
    pci_device_config_write(p, msix_cap(f) + 2, 2, 0x8000);
    msix_entry(f, 0, 0xfee00000, 0x4041, 0);
    msix_entry(f, 1, 0xfee01000, 0x4042, 1);
    /* The driver wants every used entry signalled (used_event follows used->idx). */
    for (unsigned i = 0; i < 3; i++) {
        *(uint16_t *)&avail(f)->ring[QSIZE] = (uint16_t)i;
        assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, i, 512, NULL), VIRTIO_BLK_S_OK);
    }
    *(uint16_t *)&avail(f)->ring[QSIZE] = 3;
}

static void test_snapshot_round_trip(void **state)
{
    struct fixture *f = *state, *g;
    struct snap_w w, w2;
    char what[160];
    uint64_t fired = 0;

    drive_into_state(f);
    virtio_pci_park(f->vp);
    virtio_pci_park(f->vp); /* idempotent */
    assert_int_equal(f->vp->inflight, 0);
    save_vp(f->vp, &w);
    /* A request the driver posted while the device was parked (say, throttled): not popped,
     * so it belongs to the ring in RAM and the restored device serves it. */
    assert_int_equal(f->vp->vqs[0].last_avail, 3);
    blk_submit(f, VIRTIO_BLK_T_IN, 9, 512);
    g = restore_target(f);
    assert_int_equal(f->fp.msi[0].sets, 1);
    assert_int_equal(load_bytes(g->vp, w.buf, w.len, what, sizeof(what)), 0);

    /* (a) the same bytes again */
    save_vp(g->vp, &w2);
    assert_int_equal(w2.len, w.len);
    assert_memory_equal(w2.buf, w.buf, w.len);
    /* derived state: the unmasked vector's route, the notify ioeventfd at the BAR */
    assert_int_equal(g->fp.msi[0].sets, 1);
    assert_int_equal(g->fp.msi[0].addr, 0xfee00000);
    assert_int_equal(g->fp.msi[0].data, 0x4041);
    assert_int_equal(g->fp.msi[1].sets, 0); /* masked: routed when it fires */
    assert_true(fake_ioeventfd_at(&g->fp, 0xc0000000 + NOTIFY_OFF, 2) >= 0);
    assert_int_equal(status(g), status(f));
    assert_int_equal(common_rd(g, VIRTIO_PCI_COMMON_MSIX, 2), 1);
    assert_true(virtio_pci_queue_ready(g->vp, 0));

    /* (b) the restored device goes on: the waiting request exactly once, then the next one. */
    g->used_seen = 3;
    assert_int_equal(virtio_pci_start(g->vp), 0);
    kick(g);
    assert_true(WAIT_FOR(used_idx(g) == 4));
    assert_true(WAIT_FOR((fired += fake_msi_fired(&g->fp, vector_gsi(g, 0))) == 1));
    assert_int_equal(((uint8_t *)gpa(g, DATA_GPA))[0], image_byte(9 * 512));
    kick(g);
    usleep(50000);
    assert_int_equal(used_idx(g), 4); /* served once, not twice */
    g->used_seen = 4;
    *(uint16_t *)&avail(g)->ring[QSIZE] = 4;
    assert_int_equal(blk_request(g, VIRTIO_BLK_T_IN, 7, 512, NULL), VIRTIO_BLK_S_OK);
    assert_int_equal(((uint8_t *)gpa(g, DATA_GPA))[0], image_byte(7 * 512));
    assert_int_equal(used(g)->ring[4 % QSIZE].id, 0);

    /* The original, unparked, serves what was posted meanwhile. */
    virtio_pci_unpark(f->vp);
    virtio_pci_unpark(f->vp);
    kick(f);
    assert_true(WAIT_FOR(used_idx(f) == 4));
    snap_w_free(&w);
    snap_w_free(&w2);
    teardown((void **)&g);
}

/* Park with a request in flight: it completes first; parked, nothing is served. */
static void test_park_with_request_in_flight(void **state)
{
    struct fixture *f = *state;

    driver_init(f, F_VERSION_1);
    for (unsigned round = 0; round < 20; round++) {
        blk_submit(f, VIRTIO_BLK_T_IN, round, 4096);
        virtio_pci_park(f->vp);
        /* Every request popped has been completed: none is half done. */
        assert_int_equal(f->vp->inflight, 0);
        assert_int_equal(f->vp->vqs[0].last_avail, f->vp->vqs[0].used_idx);
        uint16_t seen = used_idx(f);
        kick(f);
        usleep(2000);
        assert_int_equal(used_idx(f), seen); /* parked: the kick waits */
        virtio_pci_unpark(f->vp);
        assert_true(WAIT_FOR(used_idx(f) == round + 1));
        assert_int_equal(*(uint8_t *)gpa(f, STATUS_GPA), VIRTIO_BLK_S_OK);
    }
}

/* A device never started parks at once, and a thread started parked waits for unpark. */
static void test_park_before_start(void **state)
{
    struct fixture *g = new_fixture_opt(false, false);

    (void)state;
    virtio_pci_park(g->vp);
    virtio_pci_unpark(g->vp);
    virtio_pci_park(g->vp);
    assert_int_equal(virtio_pci_start(g->vp), 0);
    driver_init(g, F_VERSION_1);
    blk_submit(g, VIRTIO_BLK_T_IN, 0, 512);
    usleep(20000);
    assert_int_equal(used_idx(g), 0);
    virtio_pci_unpark(g->vp);
    assert_true(WAIT_FOR(used_idx(g) == 1));
    /* Destroying a parked device does not hang. */
    virtio_pci_park(g->vp);
    teardown((void **)&g);
}

/* Truncations, a wrong tag, a newer version: refused with a message, the target untouched. */
static void test_snapshot_refuses_corruption(void **state)
{
    struct fixture *f = *state, *g;
    struct snap_w w, before;
    uint8_t *bad;
    char what[160];

    drive_into_state(f);
    virtio_pci_park(f->vp);
    save_vp(f->vp, &w);
    g = restore_target(f);
    save_vp(g->vp, &before);
    bad = malloc(w.len);
    assert_non_null(bad);

    /* The file cut anywhere. */
    for (size_t len = 0; len < w.len; len++) {
        assert_int_not_equal(load_bytes(g->vp, w.buf, len, what, sizeof(what)), 0);
        assert_true(what[0]);
    }
    /* The section cut anywhere (its length field says so): the nested readers find it. */
    for (uint32_t len = 2; len < w.len - 8; len++) {
        memcpy(bad, w.buf, w.len);
        memcpy(bad + 4, &len, 4);
        assert_int_not_equal(load_bytes(g->vp, bad, 8 + len, what, sizeof(what)), 0);
        assert_true(what[0]);
    }
    assert_state(g->vp, &before);

    memcpy(bad, w.buf, w.len);
    bad[0] = 'X';
    assert_int_equal(load_bytes(g->vp, bad, w.len, what, sizeof(what)), -EINVAL);
    assert_non_null(strstr(what, "virtio transport"));
    memcpy(bad, w.buf, w.len);
    bad[8] = 2; /* version */
    assert_int_equal(load_bytes(g->vp, bad, w.len, what, sizeof(what)), -EPROTO);
    assert_non_null(strstr(what, "version 2"));
    /* A byte more than the layout: left unread, refused. */
    memcpy(bad, w.buf, w.len);
    uint32_t longer = (uint32_t)w.len - 8 + 1;
    memcpy(bad + 4, &longer, 4);
    uint8_t *plus = calloc(1, w.len + 1);
    memcpy(plus, bad, w.len);
    assert_int_not_equal(load_bytes(g->vp, plus, w.len + 1, what, sizeof(what)), 0);
    assert_non_null(strstr(what, "unread"));
    free(plus);
    assert_state(g->vp, &before);

    /* The same file loads after all that. */
    assert_int_equal(load_bytes(g->vp, w.buf, w.len, what, sizeof(what)), 0);
    assert_state(g->vp, &w);
    free(bad);
    snap_w_free(&w);
    snap_w_free(&before);
    teardown((void **)&g);
}

/* Saves f with one field made hostile by poke, expects the load to fail naming it. */
static void expect_refused(struct fixture *f, struct fixture *g, const struct snap_w *before,
                           void (*poke)(struct virtio_pci *vp), const char *needle)
{
    struct snap_w w;
    char what[160];

    poke(f->vp);
    save_vp(f->vp, &w);
    assert_int_equal(load_bytes(g->vp, w.buf, w.len, what, sizeof(what)), -EINVAL);
    if (!strstr(what, needle))
        fail_msg("'%s' does not say '%s'", what, needle);
    assert_state(g->vp, before);
    snap_w_free(&w);
}

static struct virtq saved_vq;
static uint16_t saved_vector;

static void poke_size_big(struct virtio_pci *vp)
{
    vp->vqs[0].size = 512;
}
static void poke_size_odd(struct virtio_pci *vp)
{
    vp->vqs[0].size = 12;
}
static void poke_ring_outside(struct virtio_pci *vp)
{
    vp->vqs[0].used_gpa = RAM_SIZE - 8;
}
static void poke_vector(struct virtio_pci *vp)
{
    vp->queue_vector[0] = NR_VECTORS;
}
static void poke_config_vector(struct virtio_pci *vp)
{
    vp->config_vector = 0x8000;
}
static void poke_features(struct virtio_pci *vp)
{
    vp->driver_features |= 1ull << 50;
}

static void test_snapshot_refuses_out_of_range(void **state)
{
    struct fixture *f = *state, *g;
    struct snap_w before;
    void (*pokes[])(struct virtio_pci *) = {poke_size_big, poke_size_odd,      poke_ring_outside,
                                            poke_vector,   poke_config_vector, poke_features};
    const char *needles[] = {"power of two",   "power of two",         "outside guest RAM",
                             "queue vector 2", "configuration vector", "not offered"};

    drive_into_state(f);
    virtio_pci_park(f->vp);
    g = restore_target(f);
    save_vp(g->vp, &before);
    saved_vq = f->vp->vqs[0];
    saved_vector = f->vp->config_vector;
    uint64_t features = f->vp->driver_features;
    for (unsigned i = 0; i < sizeof(pokes) / sizeof(pokes[0]); i++) {
        expect_refused(f, g, &before, pokes[i], needles[i]);
        f->vp->vqs[0] = saved_vq;
        f->vp->queue_vector[0] = 0;
        f->vp->config_vector = saved_vector;
        f->vp->driver_features = features;
    }
    /* A disabled queue's size is only a register value: kept as the driver wrote it. */
    common_wr(f, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    set_status(f, 0);
    common_wr(f, VIRTIO_PCI_COMMON_Q_SIZE, 2, 1000);
    struct snap_w w;
    char what[160];
    save_vp(f->vp, &w);
    assert_int_equal(load_bytes(g->vp, w.buf, w.len, what, sizeof(what)), 0);
    assert_int_equal(common_rd(g, VIRTIO_PCI_COMMON_Q_SIZE, 2), 1000);
    snap_w_free(&w);
    snap_w_free(&before);
    teardown((void **)&g);
}

/* pci_device_load alone: only writable bits taken, INTx driven, BARs re-decoded. */
static void test_pci_device_snapshot(void **state)
{
    struct fixture *f = *state, *g;
    struct pci_device *p = &f->vp->pdev, *q;
    struct snap_w w;
    struct snap_r r;

    pci_device_config_write(p, PCI_BAR0, 4, 0xc0004000);
    pci_device_config_write(p, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    pci_device_config_write(p, PCI_INTERRUPT_LINE, 1, 11);
    pci_device_set_intx(p, true);
    assert_int_equal(intx_level(f), 1);
    snap_w_init(&w);
    pci_device_save(p, &w);
    /* A file claiming another vendor ID: the device's own stays. */
    w.buf[10] ^= 0xff;
    g = restore_target(f);
    q = &g->vp->pdev;
    snap_r_init(&r, w.buf, w.len);
    assert_int_equal(pci_device_load(q, &r), 0);
    assert_int_equal(pci_device_config_read(q, 0, 4), 0x10421af4);
    assert_int_equal(pci_device_config_read(q, PCI_BAR0, 4), 0xc0004000);
    assert_int_equal(pci_device_config_read(q, PCI_INTERRUPT_LINE, 1), 11);
    assert_true(pci_device_config_read(q, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    assert_int_equal(intx_level(g), 1);
    assert_true(fake_ioeventfd_at(&g->fp, 0xc0004000 + NOTIFY_OFF, 2) >= 0);
    /* Truncated, it is refused and nothing changes. */
    pci_device_config_write(q, PCI_INTERRUPT_LINE, 1, 3);
    for (size_t len = 0; len < w.len; len++) {
        snap_r_init(&r, w.buf, len);
        assert_int_not_equal(pci_device_load(q, &r), 0);
    }
    assert_int_equal(pci_device_config_read(q, PCI_INTERRUPT_LINE, 1), 3);
    snap_w_free(&w);
    teardown((void **)&g);
}

/* msix_load: vector count checked, reserved control bits refused, pending kept. */
static void test_msix_snapshot(void **state)
{
    struct fixture *f = *state, *g;
    struct snap_w w;
    struct snap_r r;

    pci_device_config_write(&f->vp->pdev, msix_cap(f) + 2, 2, 0x8000);
    msix_entry(f, 0, 0xfee00000, 0x4071, 1);
    msix_notify(&f->vp->msix, 0); /* masked: pending */
    assert_int_equal(pba(f), 1);
    snap_w_init(&w);
    pci_device_save(&f->vp->pdev, &w);
    msix_save(&f->vp->msix, &w);
    g = restore_target(f);
    snap_r_init(&r, w.buf, w.len);
    assert_int_equal(pci_device_load(&g->vp->pdev, &r), 0);
    assert_int_equal(msix_load(&g->vp->msix, &r), 0);
    assert_int_equal(pba(g), 1);
    assert_int_equal(g->fp.msi[0].sets, 0); /* masked: no route yet */
    bar_wr(g, BAR_MSIX, 12, 4, 0);          /* unmask: the pending interrupt goes */
    assert_int_equal(fake_msi_fired(&g->fp, vector_gsi(g, 0)), 1);
    assert_int_equal(g->fp.msi[0].data, 0x4071);

    /* Control with a reserved bit, and another vector count: refused. */
    size_t msix_at = w.len - (4 + 4 + 2 + 4 + NR_VECTORS * 17);
    uint8_t *bad = malloc(w.len);
    memcpy(bad, w.buf, w.len);
    bad[msix_at + 10 + 4 + 12] = 3; /* vector 0's control */
    snap_r_init(&r, bad + msix_at, w.len - msix_at);
    assert_int_equal(msix_load(&g->vp->msix, &r), -EINVAL);
    assert_non_null(strstr(r.what, "control"));
    memcpy(bad, w.buf, w.len);
    bad[msix_at + 10] = 3;
    snap_r_init(&r, bad + msix_at, w.len - msix_at);
    assert_int_equal(msix_load(&g->vp->msix, &r), -EINVAL);
    assert_non_null(strstr(r.what, "vectors"));
    free(bad);
    snap_w_free(&w);
    teardown((void **)&g);
}

/* A virtio-console (queue 0: input to the guest) in the blk fixture's clothes. */
static struct fixture *console_fixture(struct virtio_console **con, bool start)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    fake_platform_init(&f->fp);
    fake_platform_enable_pci(&f->fp);
    fake_platform_add_ram(&f->fp, RAM_SIZE);
    assert_int_equal(virtio_console_create(con, &f->fp.platform, NULL, NULL), 0);
    f->vp = virtio_console_transport(*con);
    pci_device_config_write(&f->vp->pdev, PCI_COMMAND, 2, PCI_COMMAND_MASTER);
    if (start)
        assert_int_equal(virtio_pci_start(f->vp), 0);
    return f;
}

/* Input typed before the guest took it is state: it arrives after the restore. */
static void test_console_pending_input_snapshot(void **state)
{
    struct virtio_console *con, *con2;
    struct virtio_rng *rng;
    struct fixture *f = console_fixture(&con, true), *g;
    struct snap_w w, w2;
    struct snap_r r;
    char what[160];

    (void)state;
    driver_init(f, F_VERSION_1); /* no receive buffer posted yet */
    assert_int_equal(virtio_console_receive(con, (const uint8_t *)"hello", 5), 5);
    virtio_pci_park(f->vp);
    save_vp(f->vp, &w);

    g = console_fixture(&con2, false);
    memcpy(g->fp.ram.host, f->fp.ram.host, RAM_SIZE);
    assert_int_equal(load_bytes(g->vp, w.buf, w.len, what, sizeof(what)), 0);
    save_vp(g->vp, &w2);
    assert_int_equal(w2.len, w.len);
    assert_memory_equal(w2.buf, w.buf, w.len);
    assert_int_equal(virtio_pci_start(g->vp), 0);
    ((struct vring_desc *)gpa(g, DESC_GPA))[0] =
        (struct vring_desc){DATA_GPA, 64, VRING_DESC_F_WRITE, 0};
    post(g, 0);
    kick(g);
    assert_true(WAIT_FOR(used_idx(g) == 1));
    assert_int_equal(used(g)->ring[0].len, 5);
    assert_memory_equal(gpa(g, DATA_GPA), "hello", 5);

    /* A console's state is no virtio-rng's: refused, by device type. */
    fake_platform_free_ram(&g->fp);
    fake_platform_add_ram(&g->fp, RAM_SIZE);
    assert_int_equal(virtio_rng_create(&rng, &g->fp.platform), 0);
    snap_r_init(&r, w.buf, w.len);
    assert_int_equal(virtio_pci_load(virtio_rng_transport(rng), &r), -EINVAL);
    assert_non_null(strstr(r.what, "virtio-rng"));
    virtio_rng_destroy(rng);

    virtio_pci_unpark(f->vp);
    virtio_console_destroy(con);
    virtio_console_destroy(con2);
    fake_platform_free_ram(&f->fp);
    fake_platform_free_ram(&g->fp);
    free(f);
    free(g);
    snap_w_free(&w);
    snap_w_free(&w2);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_pci_identity_and_capabilities),
        T(test_feature_negotiation),
        cmocka_unit_test_setup_teardown(test_feature_ro_offered_for_readonly_image,
                                        setup_readonly, teardown),
        T(test_queue_setup_enable_and_reset),
        T(test_device_config),
        T(test_blk_read),
        T(test_blk_write_and_flush),
        T(test_blk_get_id),
        T(test_blk_bad_requests_fail),
        cmocka_unit_test_setup_teardown(test_blk_readonly_image_refuses_writes, setup_readonly,
                                        teardown),
        T(test_blk_request_without_status_byte),
        T(test_bad_ring_at_enable_needs_reset),
        T(test_hostile_request_needs_reset),
        T(test_isr_and_intx_on_completion),
        T(test_msix_table_and_vectors),
        T(test_msix_masking_and_pending_bits),
        T(test_reset_waits_for_requests_in_flight),
        T(test_no_dma_without_bus_master),
        T(test_msix_config_vector_on_needs_reset),
        T(test_notify_through_ioeventfd),
        T(test_snapshot_round_trip),
        T(test_park_with_request_in_flight),
        T(test_park_before_start),
        T(test_snapshot_refuses_corruption),
        T(test_snapshot_refuses_out_of_range),
        T(test_pci_device_snapshot),
        T(test_msix_snapshot),
        cmocka_unit_test(test_console_pending_input_snapshot),
    };
#undef T
    return cmocka_run_group_tests_name("virtio_pci", tests, NULL, NULL);
}
