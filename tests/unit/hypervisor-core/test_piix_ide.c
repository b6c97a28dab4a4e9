/*
 * The PIIX3 IDE controller through the machine's port bus and PCI
 * configuration space, as a guest driver sees it: ATA commands over PIO and
 * bus-master DMA against temporary raw images, and the guest mistakes that
 * must end in ATA error status rather than anything worse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/legacy/piix_ide.h"
#include "fake_platform.h"
#include "snap_test.h"

#define PRI     0x1f0
#define PRI_CTL 0x3f6
#define SEC     0x170
#define SEC_CTL 0x376

#define ST_ERR   0x01
#define ST_DRQ   0x08
#define ST_BSY   0x80
#define ST_OK    0x50 /* DRDY | DSC */
#define ERR_ABRT 0x04
#define ERR_IDNF 0x10

#define BM_START  0x01
#define BM_TO_MEM 0x08
#define BM_ACTIVE 0x01
#define BM_ERROR  0x02
#define BM_INTR   0x04
#define PRD_EOT   0x80000000u

#define LBA48_DISK ((1ull << 28) + 64) /* sectors: the last 64 need 48-bit addresses */
#define SMALL_DISK 64ull
#define RAM_SIZE   (1u << 20)

struct fixture {
    struct fake_platform fp;
    struct hv_bus bus;
    struct pci_bus pb;
    struct block_image img[4];
    char path[4][32];
    struct piix_ide *ide;
    uint16_t bm; /* BAR4 */
};

/* Sector s of a test image: "VMMDSECT", s little-endian, then bytes that depend on s. */
static void pattern(uint8_t *buf, uint64_t s)
{
    memcpy(buf, "VMMDSECT", 8);
    for (unsigned i = 0; i < 8; i++)
        buf[8 + i] = (uint8_t)(s >> (8 * i));
    for (unsigned i = 16; i < 512; i++)
        buf[i] = (uint8_t)(s * 7 + i);
}

static void assert_pattern(const uint8_t *buf, uint64_t s)
{
    uint8_t want[512];

    pattern(want, s);
    assert_memory_equal(buf, want, 512);
}

/* A sparse image with the pattern in its first and last 64 sectors. */
static void make_image(char *path, uint64_t sectors)
{
    uint8_t buf[512];
    int fd;

    strcpy(path, "/tmp/piix-ide-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)(sectors * 512)), 0);
    for (uint64_t s = 0; s < sectors; s++) {
        if (s == 64 && sectors > 128)
            s = sectors - 64;
        pattern(buf, s);
        assert_int_equal(pwrite(fd, buf, 512, (off_t)(s * 512)), 512);
    }
    close(fd);
}

/* disks[i] sectors for position i (0: none); all read-only if readonly. */
static struct fixture *fixture_new(const uint64_t disks[4], bool readonly,
                                   struct rate_limiter *const limits[4])
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct block_image *imgs[4] = {0};
    char err[256];

    assert_non_null(f);
    fake_platform_init(&f->fp);
    fake_platform_add_ram(&f->fp, RAM_SIZE);
    assert_int_equal(hv_bus_init(&f->bus), 0);
    pci_bus_init(&f->pb, &f->fp.platform);
    assert_int_equal(pci_bus_register_windows(&f->pb, &f->bus), 0);
    for (unsigned i = 0; i < 4; i++) {
        f->img[i].fd = -1;
        if (!disks[i])
            continue;
        make_image(f->path[i], disks[i]);
        assert_int_equal(block_image_open(&f->img[i], f->path[i], -1, readonly, err, sizeof(err)), 0);
        imgs[i] = &f->img[i];
    }
    assert_int_equal(piix_ide_create(&f->ide, &f->fp.platform, imgs, limits, &f->bus, &f->pb), 0);
    f->bm = (uint16_t)(pci_bus_config_read(&f->pb, PIIX_IDE_DEVFN, 0x20, 4) & ~3u);
    return f;
}

static int setup_big(void **state)
{
    static const uint64_t disks[4] = {LBA48_DISK, 0, 0, 0};
    *state = fixture_new(disks, false, NULL);
    return 0;
}

static int setup_small(void **state)
{
    static const uint64_t disks[4] = {SMALL_DISK, 0, SMALL_DISK, 0};
    *state = fixture_new(disks, false, NULL);
    return 0;
}

static int setup_readonly(void **state)
{
    static const uint64_t disks[4] = {SMALL_DISK, 0, 0, 0};
    *state = fixture_new(disks, true, NULL);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    piix_ide_destroy(f->ide);
    for (unsigned i = 0; i < 4; i++) {
        if (f->img[i].fd < 0)
            continue;
        block_image_close(&f->img[i]);
        unlink(f->path[i]);
    }
    hv_bus_destroy(&f->bus);
    fake_platform_free_ram(&f->fp);
    free(f);
    return 0;
}

/* The primary master behind a limiter of 10 sectors a second, a burst of one. */
static struct rate_limiter slow_disk;

static int setup_limited(void **state)
{
    static const uint64_t disks[4] = {LBA48_DISK, 0, 0, 0};
    struct hv_io_limits l = {.bytes_per_s = 10 * 512, .burst_bytes = 512};
    struct rate_limiter *const limits[4] = {&slow_disk, NULL, NULL, NULL};

    rate_limiter_init(&slow_disk, &l, rate_limiter_now_ns());
    *state = fixture_new(disks, false, limits);
    return 0;
}

static int teardown_limited(void **state)
{
    teardown(state);
    rate_limiter_destroy(&slow_disk);
    return 0;
}

/* --- port and config access through the machine's bus ---------------------- */

static uint32_t in(struct fixture *f, uint16_t port, unsigned size)
{
    uint32_t v = 0;
    assert_true(hv_bus_access(&f->bus, HV_BUS_PIO, port, &v, size, false));
    return v;
}

static void out(struct fixture *f, uint16_t port, unsigned size, uint32_t v)
{
    assert_true(hv_bus_access(&f->bus, HV_BUS_PIO, port, &v, size, true));
}

static uint8_t in8(struct fixture *f, uint16_t port)
{
    return (uint8_t)in(f, port, 1);
}

static void out8(struct fixture *f, uint16_t port, uint8_t v)
{
    out(f, port, 1, v);
}

static uint32_t cfg_read(struct fixture *f, unsigned reg, unsigned size)
{
    return pci_bus_config_read(&f->pb, PIIX_IDE_DEVFN, reg, size);
}

static void cfg_write(struct fixture *f, unsigned reg, unsigned size, uint32_t v)
{
    pci_bus_config_write(&f->pb, PIIX_IDE_DEVFN, reg, size, v);
}

static uint8_t *ram(struct fixture *f, uint32_t gpa)
{
    return f->fp.ram.host + gpa;
}

/* --- ATA helpers ------------------------------------------------------------ */

static void ata_lba28(struct fixture *f, uint16_t base, uint32_t lba, uint8_t count, uint8_t cmd)
{
    out8(f, base + 6, (uint8_t)(0xe0 | (lba >> 24 & 0x0f)));
    out8(f, base + 2, count);
    out8(f, base + 3, (uint8_t)lba);
    out8(f, base + 4, (uint8_t)(lba >> 8));
    out8(f, base + 5, (uint8_t)(lba >> 16));
    out8(f, base + 7, cmd);
}

/* Each task file register twice: high-order byte first, as LBA48 wants. */
static void ata_lba48(struct fixture *f, uint64_t lba, uint32_t count, uint8_t cmd)
{
    out8(f, PRI + 6, 0x40);
    out8(f, PRI + 2, (uint8_t)(count >> 8));
    out8(f, PRI + 2, (uint8_t)count);
    for (unsigned i = 0; i < 3; i++) {
        out8(f, PRI + 3 + i, (uint8_t)(lba >> (24 + 8 * i)));
        out8(f, PRI + 3 + i, (uint8_t)(lba >> (8 * i)));
    }
    out8(f, PRI + 7, cmd);
}

static void ata_cmd(struct fixture *f, uint16_t base, uint8_t feature, uint8_t count, uint8_t cmd)
{
    out8(f, base + 1, feature);
    out8(f, base + 2, count);
    out8(f, base + 7, cmd);
}

/* Reads bytes from the data register, alternating 16- and 32-bit accesses as drivers may. */
static void pio_in(struct fixture *f, uint16_t base, uint8_t *buf, unsigned bytes)
{
    for (unsigned i = 0; i < bytes;) {
        unsigned size = (i / 4) % 2 ? 2 : 4;
        uint32_t v = in(f, base, size);
        memcpy(buf + i, &v, size);
        i += size;
    }
}

static void pio_out(struct fixture *f, uint16_t base, const uint8_t *buf, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i += 2) {
        uint16_t w;
        memcpy(&w, buf + i, 2);
        out(f, base, 2, w);
    }
}

static void identify(struct fixture *f, uint16_t base, uint16_t *id)
{
    ata_cmd(f, base, 0, 0, 0xec);
    assert_int_equal(in8(f, base + 7), ST_OK | ST_DRQ);
    pio_in(f, base, (uint8_t *)id, 512);
    assert_int_equal(in8(f, base + 7), ST_OK);
}

static void assert_error(struct fixture *f, uint16_t base, uint8_t error)
{
    assert_int_equal(in8(f, base + 7), ST_OK | ST_ERR);
    assert_int_equal(in8(f, base + 1), error);
}

static void bm_setup(struct fixture *f, uint32_t prd, bool to_memory)
{
    cfg_write(f, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MASTER);
    out(f, (uint16_t)(f->bm + 4), 4, prd);
    out8(f, f->bm, to_memory ? BM_TO_MEM : 0);
}

static void bm_start(struct fixture *f, bool to_memory)
{
    out8(f, f->bm, (uint8_t)((to_memory ? BM_TO_MEM : 0) | BM_START));
}

static void prd_put(struct fixture *f, uint32_t at, uint32_t addr, uint32_t count_flags)
{
    memcpy(ram(f, at), &addr, 4);
    memcpy(ram(f, at + 4), &count_flags, 4);
}

/* --- tests ---------------------------------------------------------------- */

static void test_pci_identity_and_bar4(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(cfg_read(f, 0x00, 4), 0x70108086);
    assert_int_equal(cfg_read(f, 0x08, 4) >> 8, 0x010180); /* IDE, compat, bus master */
    for (unsigned bar = 0; bar < 4; bar++)
        assert_int_equal(cfg_read(f, 0x10 + 4 * bar, 4), 0);
    /* BAR4: 16 bytes of I/O, placed in the PCI I/O window like firmware would. */
    assert_true(f->bm >= PCI_PIO_WINDOW_BASE);
    assert_int_equal(cfg_read(f, 0x20, 4) & 1, 1);
    assert_true(cfg_read(f, PCI_COMMAND, 2) & PCI_COMMAND_IO);
    cfg_write(f, 0x20, 4, 0xffffffff);
    assert_int_equal(cfg_read(f, 0x20, 4), 0xfffffff1);
    cfg_write(f, 0x20, 4, f->bm);
    assert_int_equal(cfg_read(f, 0x20, 4), f->bm | 1u);
    /* Timing registers: decode enabled on both channels, and writable (ata_piix programs them). */
    assert_int_equal(cfg_read(f, 0x40, 2), 0x8000);
    assert_int_equal(cfg_read(f, 0x42, 2), 0x8000);
    cfg_write(f, 0x40, 2, 0x0307);
    assert_int_equal(cfg_read(f, 0x40, 2), 0x8307);
    cfg_write(f, 0x44, 1, 0x0b);
    assert_int_equal(cfg_read(f, 0x44, 1), 0x0b);
    cfg_write(f, 0x48, 1, 0x01);
    assert_int_equal(cfg_read(f, 0x48, 1), 0x01);
    cfg_write(f, 0x4a, 2, 0x1234);
    assert_int_equal(cfg_read(f, 0x4a, 2), 0x1234);
    cfg_write(f, 0x54, 1, 0x30);
    assert_int_equal(cfg_read(f, 0x54, 1), 0x30);
    /* The bus-master registers answer in BAR4; simplex (bit 7) reads clear. */
    assert_int_equal(in8(f, f->bm + 2), 0x20); /* drive 0 DMA capable */
    assert_int_equal(in8(f, f->bm + 8 + 2), 0x00);
    out(f, (uint16_t)(f->bm + 4), 4, 0x12345);
    assert_int_equal(in(f, (uint16_t)(f->bm + 4), 4), 0x12344); /* dword aligned */
}

static void test_identify(void **state)
{
    struct fixture *f = *state;
    uint16_t id[256];
    char serial[21];

    out8(f, PRI + 6, 0xa0);
    identify(f, PRI, id);
    assert_int_equal(f->fp.irq_edges[14], 1);
    assert_int_equal(f->fp.irq_level[14], 0); /* reading Status acknowledged it */
    assert_int_equal(id[0], 0x0040);
    assert_true(id[49] & (1u << 9)); /* LBA */
    assert_true(id[49] & (1u << 8)); /* DMA */
    assert_int_equal(id[47], 0x8010);
    assert_int_equal(id[60] | (uint32_t)id[61] << 16, 0x0fffffff);
    assert_true(id[83] & (1u << 10)); /* LBA48 */
    assert_int_equal(id[83] & 0xc000, 0x4000);
    assert_true(id[83] & (1u << 13)); /* FLUSH CACHE EXT */
    uint64_t lba48 = 0;
    for (unsigned i = 0; i < 4; i++)
        lba48 |= (uint64_t)id[100 + i] << (16 * i);
    assert_int_equal(lba48, LBA48_DISK);
    assert_int_equal(id[63] & 0x07, 0x07); /* MWDMA 0-2 */
    assert_int_equal(id[64], 0x03);        /* PIO 3-4 */
    assert_int_equal(id[93] & 0xe000, 0x6000);
    /* Strings: two characters a word, first in the high byte. */
    for (unsigned i = 0; i < 10; i++) {
        serial[2 * i] = (char)(id[10 + i] >> 8);
        serial[2 * i + 1] = (char)id[10 + i];
    }
    serial[20] = 0;
    assert_memory_equal(serial, f->img[0].serial, strlen(f->img[0].serial));
    assert_int_equal(id[27], 'V' << 8 | 'M');
    assert_int_equal(id[33], 'K' << 8 | ' ');
}

static void test_pio_read_sectors(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[512];

    ata_lba28(f, PRI, 5, 3, 0x20);
    for (unsigned s = 5; s < 8; s++) {
        /* One interrupt per DRQ block, announced before its data. */
        assert_int_equal(f->fp.irq_edges[14], s - 4);
        assert_int_equal(f->fp.irq_level[14], 1);
        assert_int_equal(in8(f, PRI_CTL), ST_OK | ST_DRQ); /* alt status leaves the IRQ */
        assert_int_equal(f->fp.irq_level[14], 1);
        assert_int_equal(in8(f, PRI + 7), ST_OK | ST_DRQ);
        assert_int_equal(f->fp.irq_level[14], 0);
        pio_in(f, PRI, buf, 512);
        assert_pattern(buf, s);
    }
    /* After the last block the read ends without an interrupt. */
    assert_int_equal(f->fp.irq_edges[14], 3);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    assert_int_equal(in(f, PRI, 2), 0); /* nothing more to read */
}

static void test_pio_write_sectors(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[512], back[512];

    ata_lba28(f, PRI, 10, 2, 0x30);
    /* The first block is asked for without an interrupt. */
    assert_int_equal(in8(f, PRI_CTL), ST_OK | ST_DRQ);
    assert_int_equal(f->fp.irq_edges[14], 0);
    for (unsigned s = 0; s < 2; s++) {
        pattern(buf, 1000 + s);
        pio_out(f, PRI, buf, 512);
        assert_int_equal(f->fp.irq_edges[14], s + 1);
        assert_int_equal(in8(f, PRI + 7), s == 0 ? (ST_OK | ST_DRQ) : ST_OK);
    }
    for (unsigned s = 0; s < 2; s++) {
        assert_int_equal(pread(f->img[0].fd, back, 512, (10 + s) * 512), 512);
        assert_pattern(back, 1000 + s);
    }
    assert_int_equal(f->img[0].stats.write_bytes, 1024);
}

static void test_read_multiple(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[4 * 512];
    uint16_t id[256];

    /* Not before SET MULTIPLE MODE, and only powers of two up to 16. */
    ata_lba28(f, PRI, 0, 6, 0xc4);
    assert_error(f, PRI, ERR_ABRT);
    ata_cmd(f, PRI, 0, 3, 0xc6);
    assert_error(f, PRI, ERR_ABRT);
    ata_cmd(f, PRI, 0, 32, 0xc6);
    assert_error(f, PRI, ERR_ABRT);
    ata_cmd(f, PRI, 0, 4, 0xc6);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    identify(f, PRI, id);
    assert_int_equal(id[59], 0x0104);

    unsigned edges = f->fp.irq_edges[14];
    ata_lba28(f, PRI, 0, 6, 0xc4);
    assert_int_equal(f->fp.irq_edges[14], edges + 1);
    assert_int_equal(in8(f, PRI + 7), ST_OK | ST_DRQ);
    pio_in(f, PRI, buf, 4 * 512); /* a block of 4 sectors */
    for (unsigned s = 0; s < 4; s++)
        assert_pattern(buf + 512 * s, s);
    assert_int_equal(f->fp.irq_edges[14], edges + 2);
    assert_int_equal(in8(f, PRI + 7), ST_OK | ST_DRQ);
    pio_in(f, PRI, buf, 2 * 512); /* then the 2 that are left */
    assert_pattern(buf, 4);
    assert_pattern(buf + 512, 5);
    assert_int_equal(in8(f, PRI + 7), ST_OK);

    /* WRITE MULTIPLE: one interrupt per block of 4. */
    edges = f->fp.irq_edges[14];
    ata_lba28(f, PRI, 20, 4, 0xc5);
    for (unsigned s = 0; s < 4; s++)
        pattern(buf + 512 * s, 2000 + s);
    pio_out(f, PRI, buf, 3 * 512);
    assert_int_equal(f->fp.irq_edges[14], edges);
    pio_out(f, PRI, buf + 3 * 512, 512);
    assert_int_equal(f->fp.irq_edges[14], edges + 1);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    assert_int_equal(pread(f->img[0].fd, buf, 512, 23 * 512), 512);
    assert_pattern(buf, 2003);
}

static void test_lba48(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[512];

    ata_lba48(f, (1ull << 28) + 1, 2, 0x24);
    for (unsigned s = 0; s < 2; s++) {
        assert_int_equal(in8(f, PRI + 7), ST_OK | ST_DRQ);
        pio_in(f, PRI, buf, 512);
        assert_pattern(buf, (1ull << 28) + 1 + s);
    }
    assert_int_equal(in8(f, PRI + 7), ST_OK);

    /* HOB reads give the previous contents; any task file write clears HOB again. */
    out8(f, PRI + 3, 0x11);
    out8(f, PRI + 3, 0x22);
    out8(f, PRI_CTL, 0x80);
    assert_int_equal(in8(f, PRI + 3), 0x11);
    out8(f, PRI + 4, 0x33);
    assert_int_equal(in8(f, PRI + 3), 0x22);

    /* Past the end, also when a count of 0 (65536 sectors) crosses it. */
    ata_lba48(f, LBA48_DISK, 1, 0x24);
    assert_error(f, PRI, ERR_IDNF);
    ata_lba48(f, LBA48_DISK - 1, 2, 0x24);
    assert_error(f, PRI, ERR_IDNF);
    ata_lba48(f, LBA48_DISK - 100, 0, 0x24);
    assert_error(f, PRI, ERR_IDNF);
    ata_lba48(f, 1ull << 47, 1, 0x25);
    assert_error(f, PRI, ERR_IDNF);
    /* The last sector is readable. */
    ata_lba48(f, LBA48_DISK - 1, 1, 0x24);
    assert_int_equal(in8(f, PRI + 7), ST_OK | ST_DRQ);
    pio_in(f, PRI, buf, 512);
    assert_pattern(buf, LBA48_DISK - 1);
}

/* A throttled disk is a slow disk: BSY (PIO) or an engine still active (DMA) until the
 * limiter allows, then the data and the interrupt; the vCPU's accesses never wait. */
static void test_limits_defer_transfers(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[512];
    uint64_t ns, events;

    ata_lba28(f, PRI, 5, 2, 0x20);
    assert_int_equal(in8(f, PRI + 7), ST_OK | ST_DRQ); /* the burst: at once */
    pio_in(f, PRI, buf, 512);
    assert_pattern(buf, 5);
    assert_int_equal(in8(f, PRI_CTL), ST_BSY); /* the second block waits ~100 ms */
    assert_true(WAIT_FOR(in8(f, PRI_CTL) == (ST_OK | ST_DRQ)));
    assert_int_equal(f->fp.irq_edges[14], 2);
    pio_in(f, PRI, buf, 512);
    assert_pattern(buf, 6);

    /* DMA of 4 sectors, more than the burst: passes once the bucket is full again. */
    out8(f, f->bm + 2, BM_INTR); /* the PIO command's interrupts showed there too */
    prd_put(f, 0x1000, 0x10000, 2048 | PRD_EOT);
    bm_setup(f, 0x1000, true);
    ata_lba28(f, PRI, 8, 4, 0xc8);
    bm_start(f, true);
    assert_int_equal(in8(f, f->bm + 2) & 7, BM_ACTIVE);
    assert_int_equal(f->fp.irq_edges[14], 2);
    assert_true(WAIT_FOR(f->fp.irq_edges[14] == 3));
    assert_int_equal(in8(f, f->bm + 2) & 7, BM_INTR);
    assert_pattern(ram(f, 0x10000), 8);
    assert_pattern(ram(f, 0x10600), 11);
    rate_limiter_stats(&slow_disk, rate_limiter_now_ns(), &ns, &events);
    assert_int_equal(events, 2);
    assert_true(ns >= 150000000ull);
}

static void test_dma_read_and_write(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[512];

    /* Three sectors into two buffers: 512 bytes at 64 KiB, 1 KiB at 128 KiB. */
    prd_put(f, 0x1000, 0x10000, 512);
    prd_put(f, 0x1008, 0x20000, 1024 | PRD_EOT);
    bm_setup(f, 0x1000, true);
    ata_lba28(f, PRI, 3, 3, 0xc8);
    assert_int_equal(f->fp.irq_edges[14], 0); /* waits for the engine */
    bm_start(f, true);
    assert_int_equal(f->fp.irq_edges[14], 1);
    assert_int_equal(in8(f, f->bm + 2) & 7, BM_INTR); /* done, table used up: inactive */
    out8(f, f->bm, BM_TO_MEM);                        /* the driver stops the engine */
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    out8(f, f->bm + 2, BM_INTR); /* write one to clear */
    assert_int_equal(in8(f, f->bm + 2) & 7, 0);
    assert_pattern(ram(f, 0x10000), 3);
    assert_pattern(ram(f, 0x20000), 4);
    assert_pattern(ram(f, 0x20200), 5);

    /* Start first, command second, memory to disk; the table is longer than the transfer. */
    pattern(ram(f, 0x30000), 3000);
    prd_put(f, 0x2000, 0x30000, 0 | PRD_EOT); /* 0 = 64 KiB */
    bm_setup(f, 0x2000, false);
    bm_start(f, false);
    assert_int_equal(in8(f, f->bm + 2) & 7, BM_ACTIVE);
    ata_lba48(f, 40, 1, 0x35);
    assert_int_equal(f->fp.irq_edges[14], 2);
    assert_int_equal(in8(f, f->bm + 2) & 7, BM_ACTIVE | BM_INTR); /* table not used up */
    out8(f, f->bm, 0);
    assert_int_equal(in8(f, f->bm + 2) & 7, BM_INTR);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    assert_int_equal(pread(f->img[0].fd, buf, 512, 40 * 512), 512);
    assert_pattern(buf, 3000);
}

static void assert_dma_error(struct fixture *f)
{
    assert_int_equal(in8(f, f->bm + 2) & 7, BM_ERROR | BM_INTR);
    assert_error(f, PRI, ERR_ABRT);
    out8(f, f->bm, 0);
    out8(f, f->bm + 2, BM_ERROR | BM_INTR);
}

/* READ DMA of count sectors (0: 256) with the engine set up as given: it must fail. */
static void dma_read_must_fail(struct fixture *f, uint32_t prd, bool to_memory, uint8_t count)
{
    bm_setup(f, prd, to_memory);
    ata_lba28(f, PRI, 0, count, 0xc8);
    bm_start(f, to_memory);
    assert_dma_error(f);
}

static void test_dma_guest_mistakes(void **state)
{
    struct fixture *f = *state;

    /* A buffer outside guest RAM, and one straddling its end. */
    prd_put(f, 0x1000, 0x7fff0000, 512 | PRD_EOT);
    dma_read_must_fail(f, 0x1000, true, 1);
    prd_put(f, 0x1000, RAM_SIZE - 256, 512 | PRD_EOT);
    dma_read_must_fail(f, 0x1000, true, 1);

    /* The table itself outside RAM. */
    dma_read_must_fail(f, 0x40000000, true, 1);

    /* A table that ends (EOT) before the transfer does. */
    prd_put(f, 0x1000, 0x10000, 512 | PRD_EOT);
    dma_read_must_fail(f, 0x1000, true, 2);

    /* No EOT at all: 8192 two-byte entries fill the 64 KiB page, and the walk stops there. */
    for (uint32_t at = 0x10000; at < 0x20000; at += 8)
        prd_put(f, at, 0x40000, 2);
    dma_read_must_fail(f, 0x10000, true, 0);

    /* The last entry of a page without EOT: the next page is not part of the table. */
    prd_put(f, 0x1fff8, 0x40000, 512);
    prd_put(f, 0x20000, 0x40200, 512 | PRD_EOT);
    dma_read_must_fail(f, 0x1fff8, true, 2);

    /* Direction bit against the command, and no bus mastering. */
    prd_put(f, 0x1000, 0x10000, 512 | PRD_EOT);
    dma_read_must_fail(f, 0x1000, false, 1);
    bm_setup(f, 0x1000, true);
    cfg_write(f, PCI_COMMAND, 2, PCI_COMMAND_IO);
    ata_lba28(f, PRI, 0, 1, 0xc8);
    bm_start(f, true);
    assert_dma_error(f);

    /* Everything still works afterwards. */
    bm_setup(f, 0x1000, true);
    ata_lba28(f, PRI, 7, 1, 0xc8);
    bm_start(f, true);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    assert_pattern(ram(f, 0x10000), 7);
}

static void test_absent_drives(void **state)
{
    struct fixture *f = *state;
    unsigned edges = f->fp.irq_edges[14];

    /* libata's ata_devchk on the absent slave: the pattern does not stick. */
    out8(f, PRI + 6, 0xb0);
    out8(f, PRI + 2, 0x55);
    out8(f, PRI + 3, 0xaa);
    assert_int_equal(in8(f, PRI + 2), 0);
    assert_int_equal(in8(f, PRI + 3), 0);
    assert_int_equal(in8(f, PRI + 7), 0);
    assert_int_equal(in8(f, PRI_CTL), 0);
    assert_int_equal(in(f, PRI, 2), 0);
    out8(f, PRI + 7, 0xec); /* nobody answers */
    assert_int_equal(in8(f, PRI + 7), 0);
    assert_int_equal(f->fp.irq_edges[14], edges);
    /* The master still has the pattern. */
    out8(f, PRI + 6, 0xa0);
    assert_int_equal(in8(f, PRI + 2), 0x55);
    assert_int_equal(in8(f, PRI + 3), 0xaa);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
}

static void test_empty_channel(void **state)
{
    struct fixture *f = *state;

    for (unsigned dev = 0; dev < 2; dev++) {
        out8(f, SEC + 6, (uint8_t)(0xa0 | dev << 4));
        out8(f, SEC + 2, 0x55);
        assert_int_equal(in8(f, SEC + 2), 0);
        assert_int_equal(in8(f, SEC + 7), 0);
        assert_int_equal(in8(f, SEC_CTL), 0);
        out8(f, SEC + 7, 0xec);
        assert_int_equal(in8(f, SEC + 7), 0);
    }
    assert_int_equal(f->fp.irq_edges[15], 0);
}

static void test_bad_ranges_and_commands(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[512];

    ata_lba28(f, PRI, SMALL_DISK, 1, 0x20);
    assert_error(f, PRI, ERR_IDNF);
    ata_lba28(f, PRI, SMALL_DISK - 1, 2, 0x30);
    assert_error(f, PRI, ERR_IDNF);
    ata_lba28(f, PRI, 0, 0, 0xc8); /* 0 = 256 sectors, more than the disk */
    assert_error(f, PRI, ERR_IDNF);
    ata_lba28(f, PRI, SMALL_DISK, 1, 0x40);
    assert_error(f, PRI, ERR_IDNF);
    ata_lba28(f, PRI, SMALL_DISK - 1, 1, 0x40);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    ata_lba28(f, PRI, 0x0fffffff, 1, 0x20);
    assert_error(f, PRI, ERR_IDNF);

    /* Unknown and unsupported commands abort; the drive still works afterwards. */
    static const uint8_t aborted[] = {0x00, 0xa1, 0xa0, 0xb0, 0x08, 0x27, 0xf8, 0xff, 0x2f};
    for (size_t i = 0; i < sizeof(aborted); i++) {
        unsigned edges = f->fp.irq_edges[14];
        ata_cmd(f, PRI, 0, 0, aborted[i]);
        assert_int_equal(f->fp.irq_edges[14], edges + 1);
        assert_error(f, PRI, ERR_ABRT);
    }
    ata_cmd(f, PRI, 0x99, 0, 0xef); /* unknown SET FEATURES subcommand */
    assert_error(f, PRI, ERR_ABRT);
    ata_cmd(f, PRI, 0x03, 0x42, 0xef); /* UDMA 2: not on a PIIX3 */
    assert_error(f, PRI, ERR_ABRT);

    ata_lba28(f, PRI, 1, 1, 0x20);
    assert_int_equal(in8(f, PRI + 7), ST_OK | ST_DRQ);
    pio_in(f, PRI, buf, 512);
    assert_pattern(buf, 1);
}

static void test_other_commands(void **state)
{
    struct fixture *f = *state;
    uint16_t id[256];
    uint8_t buf[512];

    ata_cmd(f, PRI, 0x03, 0x21, 0xef); /* MWDMA 1 */
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    ata_cmd(f, PRI, 0x03, 0x0c, 0xef); /* PIO 4 */
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    ata_cmd(f, PRI, 0x82, 0, 0xef); /* write cache off */
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    identify(f, PRI, id);
    assert_int_equal(id[63], 0x0207);
    assert_int_equal(id[85] & (1u << 5), 0);
    ata_cmd(f, PRI, 0x02, 0, 0xef);
    identify(f, PRI, id);
    assert_true(id[85] & (1u << 5));

    ata_cmd(f, PRI, 0, 0, 0xe5);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    assert_int_equal(in8(f, PRI + 2), 0xff);
    static const uint8_t ok[] = {0xe7, 0xea, 0xe0, 0xe1, 0xe2, 0xe3, 0x94, 0x95, 0x96, 0x97};
    for (size_t i = 0; i < sizeof(ok); i++) {
        ata_cmd(f, PRI, 0, 0, ok[i]);
        assert_int_equal(in8(f, PRI + 7), ST_OK);
    }
    assert_true(f->img[0].stats.flush_ops >= 2);

    /* CHS, after INITIALIZE DEVICE PARAMETERS for 4 heads of 8 sectors a track:
     * cylinder 0, head 1, sector 3 is LBA 10. */
    out8(f, PRI + 6, 0xa3);
    ata_cmd(f, PRI, 0, 8, 0x91);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    out8(f, PRI + 6, 0xa1);
    out8(f, PRI + 2, 1);
    out8(f, PRI + 3, 3);
    out8(f, PRI + 4, 0);
    out8(f, PRI + 5, 0);
    out8(f, PRI + 7, 0x20);
    assert_int_equal(in8(f, PRI + 7), ST_OK | ST_DRQ);
    pio_in(f, PRI, buf, 512);
    assert_pattern(buf, 10);
    out8(f, PRI + 3, 0); /* sector numbers start at 1 */
    out8(f, PRI + 7, 0x20);
    assert_error(f, PRI, ERR_IDNF);
}

static void test_read_only_image(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[512];

    ata_lba28(f, PRI, 2, 1, 0x30);
    assert_error(f, PRI, ERR_ABRT);
    assert_int_equal(in8(f, PRI_CTL) & ST_DRQ, 0); /* no data phase */

    prd_put(f, 0x1000, 0x10000, 512 | PRD_EOT);
    bm_setup(f, 0x1000, false);
    ata_lba28(f, PRI, 2, 1, 0xca);
    bm_start(f, false);
    assert_error(f, PRI, ERR_ABRT);
    assert_int_equal(in8(f, f->bm + 2) & BM_ERROR, 0); /* the drive refused, not the engine */
    out8(f, f->bm, 0);

    /* Reading still works. */
    ata_lba28(f, PRI, 2, 1, 0x20);
    pio_in(f, PRI, buf, 512);
    assert_pattern(buf, 2);
}

static void test_reset_signature(void **state)
{
    struct fixture *f = *state;

    ata_lba28(f, PRI, 2, 9, 0x20); /* a read in progress */
    assert_true(in8(f, PRI + 7) & ST_DRQ);
    out8(f, PRI_CTL, 0x04); /* SRST */
    assert_int_equal(in8(f, PRI_CTL), ST_BSY);
    out8(f, PRI + 7, 0xec); /* ignored while in reset */
    assert_int_equal(in8(f, PRI_CTL), ST_BSY);
    out8(f, PRI_CTL, 0x00);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    assert_int_equal(in8(f, PRI + 1), 0x01);
    assert_int_equal(in8(f, PRI + 2), 0x01);
    assert_int_equal(in8(f, PRI + 3), 0x01);
    assert_int_equal(in8(f, PRI + 4), 0x00);
    assert_int_equal(in8(f, PRI + 5), 0x00);
    assert_int_equal(in8(f, PRI + 6) & 0x10, 0); /* device 0 selected */
    assert_int_equal(in(f, PRI, 2), 0);          /* the transfer is gone */

    /* EXECUTE DEVICE DIAGNOSTIC: the same signature, with an interrupt. */
    unsigned edges = f->fp.irq_edges[14];
    out8(f, PRI + 4, 0x77);
    ata_cmd(f, PRI, 0, 0, 0x90);
    assert_int_equal(f->fp.irq_edges[14], edges + 1);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    assert_int_equal(in8(f, PRI + 1), 0x01);
    assert_int_equal(in8(f, PRI + 4), 0x00);
}

static void test_interrupts(void **state)
{
    struct fixture *f = *state;
    uint16_t id[256];

    /* The secondary channel's disk interrupts on IRQ 15. */
    out8(f, SEC + 6, 0xa0);
    identify(f, SEC, id);
    assert_int_equal(f->fp.irq_edges[15], 1);
    assert_int_equal(f->fp.irq_edges[14], 0);
    assert_int_equal(in8(f, f->bm + 8 + 2) & BM_INTR, BM_INTR);

    /* nIEN masks the line; the pending interrupt shows up when it is cleared. */
    out8(f, PRI_CTL, 0x02);
    ata_cmd(f, PRI, 0, 0, 0xe5);
    assert_int_equal(f->fp.irq_edges[14], 0);
    assert_int_equal(in8(f, f->bm + 2) & BM_INTR, 0);
    out8(f, PRI_CTL, 0x00);
    assert_int_equal(f->fp.irq_edges[14], 1);
    assert_int_equal(f->fp.irq_level[14], 1);
    /* Setting nIEN lowers it again, and so does reading Status. */
    out8(f, PRI_CTL, 0x02);
    assert_int_equal(f->fp.irq_level[14], 0);
    out8(f, PRI_CTL, 0x00);
    assert_int_equal(f->fp.irq_edges[14], 2);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    assert_int_equal(f->fp.irq_level[14], 0);
    out8(f, PRI_CTL, 0x02);
    out8(f, PRI_CTL, 0x00);
    assert_int_equal(f->fp.irq_edges[14], 2); /* acknowledged: nothing pending */

    /* Each command is a new edge; a new command acknowledges an unread one. */
    ata_cmd(f, PRI, 0, 0, 0xe5);
    assert_int_equal(f->fp.irq_edges[14], 3);
    ata_cmd(f, PRI, 0, 0, 0xe5);
    assert_int_equal(f->fp.irq_edges[14], 4);

    /* A machine reset lowers the line. */
    hv_bus_reset(&f->bus);
    assert_int_equal(f->fp.irq_level[14], 0);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
}

/* --- snapshot ------------------------------------------------------------ */

static void save_ide(const void *dev, struct snap_w *w)
{
    piix_ide_save(dev, w);
}

static int load_ide(void *dev, struct snap_r *r)
{
    return piix_ide_load(dev, r);
}

/* Payload offsets in the section: channel 0's registers, then its master's fields. */
#define IDE_OFF_BM_CMD    22
#define IDE_OFF_BM_PRD    24
#define IDE_OFF_PRESENT   28
#define IDE_OFF_SECTORS   29
#define IDE_OFF_MULTIPLE  40
#define IDE_OFF_SPT       43
#define IDE_OFF_XFER      45
#define IDE_OFF_REMAINING 55
#define IDE_OFF_POS       63
#define IDE_OFF_LEN       67
#define IDE_OFF_BUF       71

static void pio_in16(struct fixture *f, uint16_t base, uint8_t *buf, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i += 2) {
        uint16_t w = (uint16_t)in(f, base, 2);
        memcpy(buf + i, &w, 2);
    }
}

/*
 * Primary: READ MULTIPLE of 6 sectors in blocks of 4 at LBA 10, 700 bytes into its first
 * block, interrupt unread. Secondary: nIEN set, WRITE SECTORS of 2 at LBA 20 with 300 bytes
 * of its first sector written, and a PRD address in its bus-master registers.
 */
static void drive_ide(struct fixture *f)
{
    uint8_t buf[700];

    ata_cmd(f, PRI, 0, 4, 0xc6);
    assert_int_equal(in8(f, PRI + 7), ST_OK);
    ata_lba28(f, PRI, 10, 6, 0xc4);
    pio_in16(f, PRI, buf, 700);
    assert_pattern(buf, 10);
    assert_int_equal(f->fp.irq_level[14], 1);
    out8(f, SEC_CTL, 0x02);
    ata_lba28(f, SEC, 20, 2, 0x30);
    pattern(buf, 777);
    pio_out(f, SEC, buf, 300);
    out(f, (uint16_t)(f->bm + 8 + 4), 4, 0x3000);
    assert_int_equal(f->fp.irq_level[15], 0);
}

static struct fixture *fixture_small(void)
{
    static const uint64_t disks[4] = {SMALL_DISK, 0, SMALL_DISK, 0};
    return fixture_new(disks, false, NULL);
}

/* The restored controller continues both transfers mid-sector, like the original. */
static void test_snapshot_pio_round_trip(void **state)
{
    struct fixture *f = *state, *g = fixture_small();
    uint8_t a[2048], b[2048], sector[512];
    struct snap_w w;

    drive_ide(f);
    snap_test_save(f->ide, save_ide, &w);
    assert_int_equal(snap_test_load(g->ide, load_ide, w.buf, w.len, NULL, 0), 0);
    snap_assert_saves(g->ide, save_ide, &w);
    assert_int_equal(g->fp.irq_level[14], 1);
    assert_int_equal(g->fp.irq_level[15], 0);
    for (unsigned reg = 1; reg < 8; reg++) {
        assert_int_equal(in8(g, (uint16_t)(SEC + reg)), in8(f, (uint16_t)(SEC + reg)));
        assert_int_equal(in8(g, (uint16_t)(g->bm + 8 + reg)), in8(f, (uint16_t)(f->bm + 8 + reg)));
    }

    /* Primary: the rest of the first block, from byte 700 on, then the second block. */
    pio_in(f, PRI, a, 2048 - 700);
    pio_in(g, PRI, b, 2048 - 700);
    assert_memory_equal(b, a, 2048 - 700);
    assert_memory_equal(b + 512 - 700 + 512, a + 512 - 700 + 512, 512);
    assert_pattern(b + 2048 - 700 - 512, 13);
    assert_int_equal(g->fp.irq_level[14], f->fp.irq_level[14]);
    assert_int_equal(in8(g, PRI + 7), in8(f, PRI + 7));
    assert_int_equal(in8(g, PRI + 7), ST_OK | ST_DRQ);
    pio_in(f, PRI, a, 1024);
    pio_in(g, PRI, b, 1024);
    assert_memory_equal(b, a, 1024);
    assert_pattern(b + 512, 15);
    assert_int_equal(in8(g, PRI + 7), ST_OK);

    /* Secondary: the sector written across the restore reaches the disk whole. */
    pattern(sector, 777);
    pio_out(f, SEC, sector + 300, 512 - 300);
    pio_out(g, SEC, sector + 300, 512 - 300);
    pattern(a, 778);
    pio_out(f, SEC, a, 512);
    pio_out(g, SEC, a, 512);
    assert_int_equal(in8(g, SEC + 7), in8(f, SEC + 7));
    assert_int_equal(in8(g, SEC + 7), ST_OK);
    assert_int_equal(pread(g->img[2].fd, b, 1024, 20 * 512), 1024);
    assert_pattern(b, 777);
    assert_pattern(b + 512, 778);
    assert_int_equal(pread(f->img[2].fd, a, 1024, 20 * 512), 1024);
    assert_memory_equal(b, a, 1024);
    snap_w_free(&w);
    teardown((void **)&g);
}

/* Where the nested PCI function's section starts: its tag, searched from the end. */
static size_t pcid_offset(const struct snap_w *w)
{
    for (size_t off = w->len - SNAP_HDR; off > SNAP_HDR; off--)
        if (memcmp(w->buf + off, "PCID", 4) == 0)
            return off;
    fail_msg("no PCID section");
    return 0;
}

static void test_snapshot_refused(void **state)
{
    struct fixture *f = *state, *g = fixture_small();
    struct snap_w w;
    unsigned len = 2048, drive1 = IDE_OFF_BUF + 2048 + 2;

    drive_ide(f);
    snap_test_save(f->ide, save_ide, &w);
    assert_int_equal(snap_test_load(g->ide, load_ide, w.buf, w.len, NULL, 0), 0);
    snap_assert_corruption_refused(g->ide, save_ide, load_ide, &w, 1);
#define REFUSED(off, v, n, want)                                                                   \
    snap_assert_field_refused(g->ide, save_ide, load_ide, &w, off, v, n, want)
    REFUSED(IDE_OFF_BM_CMD, 0x02, 1, "bus master");
    REFUSED(IDE_OFF_BM_PRD, 0x1001, 4, "PRD");
    REFUSED(IDE_OFF_SECTORS, SMALL_DISK + 1, 8, "65 sectors saved, 64 here");
    REFUSED(drive1 + 0, 1, 1, "primary slave");
    REFUSED(IDE_OFF_MULTIPLE, 3, 1, "multiple");
    REFUSED(IDE_OFF_SPT, 0, 1, "geometry");
    REFUSED(IDE_OFF_XFER, 4, 1, "transfer kind");
    REFUSED(IDE_OFF_REMAINING, 1, 4, "sectors left");
    REFUSED(IDE_OFF_POS, len + 2, 4, "PIO block");
    REFUSED(IDE_OFF_POS, 701, 4, "PIO block");
    REFUSED(IDE_OFF_LEN, 8192 + 512, 4, "PIO block");
    REFUSED(IDE_OFF_LEN, 1000, 4, "PIO block");
    REFUSED(pcid_offset(&w), 'X', 1, NULL); /* the nested section's own loader refuses it */
#undef REFUSED
    assert_int_equal(g->fp.irq_level[14], 1);
    assert_int_equal(g->fp.irq_edges[14], 1);
    snap_w_free(&w);
    teardown((void **)&g);
}

/* A rate limiter that lets everything through at once, but gives the drive its timer. */
static struct rate_limiter fast_disk;

/*
 * A DMA deferred by the limiter: parked, the original does not carry it on; restored, it
 * completes at once without a limiter, and through the new limiter's timer with one.
 */
static void test_snapshot_deferred_dma(void **state)
{
    static const uint64_t disks[4] = {LBA48_DISK, 0, 0, 0};
    struct hv_io_limits fast = {.bytes_per_s = 1ull << 30, .burst_bytes = 1ull << 30};
    struct rate_limiter *const limits[4] = {&fast_disk, NULL, NULL, NULL};
    struct fixture *f = *state, *g, *h;
    uint8_t buf[512];
    struct snap_w w;

    ata_lba28(f, PRI, 5, 1, 0x20);
    assert_int_equal(in8(f, PRI + 7), ST_OK | ST_DRQ); /* the burst */
    pio_in(f, PRI, buf, 512);
    out8(f, f->bm + 2, BM_INTR); /* the PIO command's interrupt showed there too */
    prd_put(f, 0x1000, 0x10000, 2048 | PRD_EOT);
    bm_setup(f, 0x1000, true);
    ata_lba28(f, PRI, 8, 4, 0xc8);
    bm_start(f, true);
    assert_int_equal(in8(f, f->bm + 2) & 7, BM_ACTIVE);
    assert_int_equal(f->fp.irq_edges[14], 1);
    piix_ide_park(f->ide);
    piix_ide_park(f->ide); /* idempotent */
    snap_test_save(f->ide, save_ide, &w);

    /* No limiter here: the transfer has nothing to wait for and runs during the load. */
    g = fixture_new(disks, false, NULL);
    piix_ide_park(g->ide);                            /* no thread: trivially */
    memcpy(g->fp.ram.host, f->fp.ram.host, RAM_SIZE); /* guest memory is restored first */
    assert_int_equal(snap_test_load(g->ide, load_ide, w.buf, w.len, NULL, 0), 0);
    assert_int_equal(g->fp.irq_edges[14], 1);
    assert_int_equal(in8(g, g->bm + 2) & 7, BM_INTR);
    assert_int_equal(in8(g, PRI + 7), ST_OK);
    assert_pattern(ram(g, 0x10000), 8);
    assert_pattern(ram(g, 0x10600), 11);

    /* A limiter here: loaded parked, the same bytes; the thread carries it on once unparked. */
    rate_limiter_init(&fast_disk, &fast, rate_limiter_now_ns());
    h = fixture_new(disks, false, limits);
    memcpy(h->fp.ram.host, f->fp.ram.host, RAM_SIZE);
    piix_ide_park(h->ide);
    assert_int_equal(snap_test_load(h->ide, load_ide, w.buf, w.len, NULL, 0), 0);
    snap_assert_saves(h->ide, save_ide, &w);
    usleep(50000);
    assert_int_equal(h->fp.irq_edges[14], 0);
    piix_ide_unpark(h->ide);
    assert_true(WAIT_FOR(h->fp.irq_edges[14] == 1));
    assert_memory_equal(ram(h, 0x10000), ram(g, 0x10000), 2048);

    /* The original, parked well past its wait, has not moved; unparked, it finishes too. */
    usleep(300000);
    assert_int_equal(f->fp.irq_edges[14], 1);
    assert_int_equal(in8(f, f->bm + 2) & 7, BM_ACTIVE);
    piix_ide_unpark(f->ide);
    piix_ide_unpark(f->ide);
    assert_true(WAIT_FOR(f->fp.irq_edges[14] == 2));
    assert_memory_equal(ram(f, 0x10000), ram(g, 0x10000), 2048);
    snap_w_free(&w);
    teardown((void **)&g);
    teardown((void **)&h);
    rate_limiter_destroy(&fast_disk);
}

/* Destroying a parked controller does not hang on its thread. */
static void test_destroy_parked(void **state)
{
    struct fixture *f = *state;

    piix_ide_park(f->ide);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pci_identity_and_bar4, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_identify, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_pio_read_sectors, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_pio_write_sectors, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_read_multiple, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_lba48, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_dma_read_and_write, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_limits_defer_transfers, setup_limited,
                                        teardown_limited),
        cmocka_unit_test_setup_teardown(test_dma_guest_mistakes, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_absent_drives, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_empty_channel, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ranges_and_commands, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_other_commands, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_image, setup_readonly, teardown),
        cmocka_unit_test_setup_teardown(test_reset_signature, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_interrupts, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_pio_round_trip, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_refused, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_deferred_dma, setup_limited,
                                        teardown_limited),
        cmocka_unit_test_setup_teardown(test_destroy_parked, setup_limited, teardown_limited),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
