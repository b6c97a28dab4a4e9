/*
 * PIIX3 IDE function (82371SB function 1) in compatibility mode, with ATA
 * disks over raw images. The command set is the subset of ATA/ATAPI-7 that
 * Linux's libata (ata_piix) and simple drivers use; everything else ends
 * with ERR + ABRT, as a real disk answers commands it does not implement.
 *
 * Both channels always exist, as on the chip. A position without a disk
 * reads 0 in every register (ATA-7: device 0 answers for an absent
 * device 1 with status 0), so libata's register test (ata_devchk)
 * and its classification (status 0 = nothing there) see no device.
 *
 * Each channel keeps one task file: the registers sit on the cable and a
 * write reaches both drives. Status, error and the transfer in progress are
 * per drive. Commands complete synchronously in the vCPU's exit: the image
 * is in the host page cache, and the guest cannot tell a fast disk from an
 * instantaneous one, so there is no I/O thread to order against.
 *
 * Bus-master DMA follows the SFF-8038i programming interface that PIIX3
 * implements (82371SB datasheet, bus master IDE): a PRD table of 8-byte
 * entries in guest memory, the transfer runs once the drive has a DMA
 * command and the engine's start bit is set, in either order.
 *
 * I/O limits: a data transfer (a PIO block, a whole DMA command) that its
 * disk's limiter does not grant yet is deferred, not slept on: the drive
 * shows BSY (PIO) or keeps the DMA engine active with no interrupt, exactly
 * what a slow disk looks like, and the vCPU returns to the guest at once.
 * A small thread per controller waits on one timerfd per drive and, under
 * the bus lock like any register access, carries the transfer on when the
 * limiter allows. Stop, pause and reset never wait for a throttled disk.
 */
#include "devices/legacy/piix_ide.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "guest_mem.h"

#define PIIX_IDE_VENDOR     0x8086
#define PIIX_IDE_DEVICE     0x7010
#define PIIX_IDE_CLASS      0x010180 /* IDE, compatibility mode, bus master */
#define PIIX_IDE_BM_BAR     4
#define PIIX_IDE_BM_SIZE    16
#define PIIX_IDE_BM_CHANNEL 8 /* secondary channel's registers in BAR4 */

/* Configuration registers past the header (82371SB datasheet). */
#define PIIX_IDETIM_PRI    0x40 /* bit 15: IDE decode enable, checked by ata_piix */
#define PIIX_IDETIM_SEC    0x42
#define PIIX_IDETIM_DECODE 0x8000
#define PIIX_CFG_END       0x4c /* SIDETIM 0x44 and PIIX4's UDMACTL/UDMATIM at 0x48-0x4b */
#define PIIX_IOCFG         0x54 /* an ICH register ata_piix reads on every part */

/* Command block register offsets. */
enum {
    REG_DATA = 0,
    REG_ERROR_FEATURE = 1,
    REG_NSECT = 2,
    REG_LBAL = 3,
    REG_LBAM = 4,
    REG_LBAH = 5,
    REG_DEVICE = 6,
    REG_STATUS_CMD = 7,
};

#define ST_ERR   0x01
#define ST_DRQ   0x08
#define ST_DSC   0x10
#define ST_DRDY  0x40
#define ST_BSY   0x80
#define ST_READY (ST_DRDY | ST_DSC)

#define ERR_ABRT 0x04
#define ERR_IDNF 0x10
#define ERR_UNC  0x40
/* EXECUTE DEVICE DIAGNOSTIC code: device 0 passed, device 1 passed or is absent. */
#define DIAG_OK 0x01

#define DEV_LBA 0x40
#define DEV_SEL 0x10

#define CTL_NIEN 0x02
#define CTL_SRST 0x04
#define CTL_HOB  0x80

#define BM_CMD_START     0x01
#define BM_CMD_WRITE_MEM 0x08 /* the engine writes to memory: a device read */
#define BM_ST_ACTIVE     0x01
#define BM_ST_ERROR      0x02
#define BM_ST_INTR       0x04
#define BM_ST_DRV_DMA    0x60 /* "drive 0/1 DMA capable", scratch bits set by firmware */

#define PRD_EOT        0x80000000u
#define PRD_TABLE_SPAN 0x10000u /* a table may not cross a 64 KiB boundary */
#define PRD_MAX        (PRD_TABLE_SPAN / 8)

#define SECTOR       BLOCK_SECTOR_SIZE
#define MAX_MULTIPLE 16 /* sectors per DRQ block of READ/WRITE MULTIPLE */
#define LBA28_LIMIT  0x0fffffffull
#define CHS_HEADS    16
#define CHS_SECTORS  63

enum ata_cmd {
    CMD_READ = 0x20,
    CMD_READ_ONCE = 0x21,
    CMD_READ_EXT = 0x24,
    CMD_READ_DMA_EXT = 0x25,
    CMD_READ_MULTIPLE_EXT = 0x29,
    CMD_WRITE = 0x30,
    CMD_WRITE_ONCE = 0x31,
    CMD_WRITE_EXT = 0x34,
    CMD_WRITE_DMA_EXT = 0x35,
    CMD_WRITE_MULTIPLE_EXT = 0x39,
    CMD_VERIFY = 0x40,
    CMD_VERIFY_ONCE = 0x41,
    CMD_VERIFY_EXT = 0x42,
    CMD_DIAGNOSTIC = 0x90,
    CMD_INIT_PARAMS = 0x91,
    CMD_STANDBY_IMM_OLD = 0x94,
    CMD_IDLE_IMM_OLD = 0x95,
    CMD_STANDBY_OLD = 0x96,
    CMD_IDLE_OLD = 0x97,
    CMD_READ_MULTIPLE = 0xc4,
    CMD_WRITE_MULTIPLE = 0xc5,
    CMD_SET_MULTIPLE = 0xc6,
    CMD_READ_DMA = 0xc8,
    CMD_READ_DMA_ONCE = 0xc9,
    CMD_WRITE_DMA = 0xca,
    CMD_WRITE_DMA_ONCE = 0xcb,
    CMD_STANDBY_IMM = 0xe0,
    CMD_IDLE_IMM = 0xe1,
    CMD_STANDBY = 0xe2,
    CMD_IDLE = 0xe3,
    CMD_CHECK_POWER = 0xe5,
    CMD_FLUSH = 0xe7,
    CMD_FLUSH_EXT = 0xea,
    CMD_IDENTIFY = 0xec,
    CMD_SET_FEATURES = 0xef,
};

/* How a read/write command moves its data. */
#define RW_WRITE    0x01
#define RW_EXT      0x02 /* LBA48 addressing from the HOB registers */
#define RW_MULTIPLE 0x04
#define RW_DMA      0x08
#define RW_VERIFY   0x10 /* checks the range, moves nothing */
#define RW_CMD      0x80 /* set for every command of the kind */

#define SETF_WCACHE_ON         0x02
#define SETF_XFER_MODE         0x03
#define SETF_WCACHE_OFF        0x82
#define XFER_PIO_DEFAULT_IORDY 0x01
#define XFER_PIO_FLOW          0x08 /* | mode 0..4 */
#define XFER_MWDMA             0x20 /* | mode 0..2 */

enum ide_xfer { XFER_NONE, XFER_PIO_IN, XFER_PIO_OUT, XFER_DMA };

struct ide_drive {
    struct block_image *img; /* NULL: nobody at this position */
    uint64_t sectors;
    uint8_t status, error;
    bool intrq; /* the drive wants an interrupt (the line also needs nIEN clear) */
    /* Settings the host changes with commands. */
    uint8_t multiple;   /* sectors per block of READ/WRITE MULTIPLE, 0 = not enabled */
    uint8_t mwdma;      /* selected multiword DMA mode */
    uint8_t heads, spt; /* CHS translation (INITIALIZE DEVICE PARAMETERS) */
    bool wcache;
    /* The command in progress. */
    enum ide_xfer xfer;
    bool write;
    uint64_t lba;       /* next sector to transfer */
    uint32_t remaining; /* sectors not yet transferred */
    unsigned block;     /* sectors per DRQ block */
    unsigned pos, len;  /* PIO: bytes of buf done and in this block */
    uint8_t buf[MAX_MULTIPLE * SECTOR];
    /* I/O limits. */
    struct rate_limiter *limits; /* NULL: unlimited */
    int timer_fd;                /* expires when a deferred transfer may go */
    bool throttled;              /* a transfer waits for timer_fd */
    bool op_charged;             /* the command in progress counted as an op */
};

struct ide_channel {
    struct piix_ide *ide;
    struct hv_device cmd_dev, ctl_dev;
    unsigned irq;
    bool irq_level;
    struct ide_drive drive[2];
    /* The task file; hob_* are the previous contents for LBA48. */
    uint8_t feature, nsect, lbal, lbam, lbah;
    uint8_t hob_feature, hob_nsect, hob_lbal, hob_lbam, hob_lbah;
    uint8_t device, devctl;
    /* Bus-master DMA engine. */
    uint8_t bm_cmd, bm_status;
    uint32_t bm_prd;
};

struct piix_ide {
    struct pci_device pdev;
    const struct hv_platform *platform;
    struct ide_channel ch[2];
    struct iovec iov[PRD_MAX]; /* one PRD table walk; all work is under the bus lock */
    struct hv_bus *bus;        /* its lock, for the limits thread */
    int epoll_fd, stop_fd;
    pthread_t thread;
    bool thread_started;
    /* Parking the thread for a snapshot: park_req asks, parked answers; wake_fd interrupts
     * its wait so it sees the request. */
    pthread_mutex_t park_lock;
    pthread_cond_t park_cond;
    bool park_req, parked;
    int wake_fd;
};

/* epoll tags: 0-3 a drive's timer (channel * 2 + drive) */
#define TAG_STOP 4
#define TAG_WAKE 5

static const struct {
    uint16_t cmd_base, ctl_base;
    unsigned irq;
} channel_res[2] = {{0x1f0, 0x3f6, 14}, {0x170, 0x376, 15}};

static struct ide_drive *selected(struct ide_channel *ch)
{
    return &ch->drive[(ch->device & DEV_SEL) ? 1 : 0];
}

/* The channel's IRQ follows the selected drive's INTRQ unless nIEN masks it. */
static void update_irq(struct ide_channel *ch)
{
    struct ide_drive *d = selected(ch);
    bool level = d->img && d->intrq && !(ch->devctl & CTL_NIEN);
    const struct hv_platform *p = ch->ide->platform;

    if (level == ch->irq_level)
        return;
    ch->irq_level = level;
    /* PIIX latches every rising edge of the IDE interrupt into the BM status. */
    if (level)
        ch->bm_status |= BM_ST_INTR;
    p->set_irq(p->opaque, ch->irq, level);
}

static void raise_intrq(struct ide_channel *ch, struct ide_drive *d)
{
    d->intrq = true;
    update_irq(ch);
}

static void command_done(struct ide_channel *ch, struct ide_drive *d)
{
    d->xfer = XFER_NONE;
    d->status = ST_READY;
    raise_intrq(ch, d);
}

static void command_error(struct ide_channel *ch, struct ide_drive *d, uint8_t error)
{
    d->xfer = XFER_NONE;
    d->status = ST_READY | ST_ERR;
    d->error = error;
    raise_intrq(ch, d);
}

/* A failed image transfer. A read-only image refuses writes with ABRT, as QEMU's
 * disks do: UNC would tell the guest the medium is damaged, which it is not. */
static void io_error(struct ide_channel *ch, struct ide_drive *d, int rc)
{
    command_error(ch, d, rc == -EROFS ? ERR_ABRT : ERR_UNC);
}

/* The ATA device signature after a reset or diagnostic, device 0 selected. */
static void set_signature(struct ide_channel *ch)
{
    ch->nsect = 1;
    ch->lbal = 1;
    ch->lbam = 0;
    ch->lbah = 0;
    ch->hob_nsect = ch->hob_lbal = ch->hob_lbam = ch->hob_lbah = 0;
    ch->device = 0;
    for (unsigned i = 0; i < 2; i++) {
        ch->drive[i].status = ST_READY;
        ch->drive[i].error = DIAG_OK;
    }
}

/* --- IDENTIFY DEVICE ------------------------------------------------------ */

/* ATA strings put the first character of each pair in the high byte, space padded. */
static void id_string(uint16_t *id, unsigned word, unsigned words, const char *s)
{
    size_t len = strlen(s);

    for (unsigned i = 0; i < 2 * words; i++) {
        uint8_t c = i < len ? (uint8_t)s[i] : ' ';
        if (i & 1)
            id[word + i / 2] |= c;
        else
            id[word + i / 2] = (uint16_t)(c << 8);
    }
}

static uint16_t chs_cylinders(const struct ide_drive *d, unsigned heads, unsigned spt)
{
    uint64_t cyl = d->sectors / (heads * spt);

    return (uint16_t)(cyl > 16383 ? 16383 : cyl);
}

static void identify(struct ide_drive *d, bool slave)
{
    uint16_t id[SECTOR / 2];
    uint64_t lba28 = d->sectors < LBA28_LIMIT ? d->sectors : LBA28_LIMIT;
    uint16_t cur_cyl = chs_cylinders(d, d->heads, d->spt);
    uint32_t cur_capacity = (uint32_t)cur_cyl * d->heads * d->spt;

    memset(id, 0, sizeof(id));
    id[0] = 0x0040; /* ATA device, fixed */
    id[1] = chs_cylinders(d, CHS_HEADS, CHS_SECTORS);
    id[3] = CHS_HEADS;
    id[6] = CHS_SECTORS;
    id_string(id, 10, 10, d->img->serial);
    id_string(id, 23, 4, "1.0");
    id_string(id, 27, 20, "VMMD HARDDISK");
    id[47] = 0x8000 | MAX_MULTIPLE;
    id[49] = 1u << 11 | 1u << 10 | 1u << 9 | 1u << 8; /* IORDY, IORDY off, LBA, DMA */
    id[50] = 0x4000;
    id[51] = 2 << 8; /* obsolete PIO timing mode */
    id[53] = 0x0007; /* words 54-58, 64-70 and 88 are valid */
    id[54] = cur_cyl;
    id[55] = d->heads;
    id[56] = d->spt;
    id[57] = (uint16_t)cur_capacity;
    id[58] = (uint16_t)(cur_capacity >> 16);
    if (d->multiple)
        id[59] = 0x0100 | d->multiple;
    id[60] = (uint16_t)lba28;
    id[61] = (uint16_t)(lba28 >> 16);
    id[63] = 0x0007 | (uint16_t)(0x100u << d->mwdma); /* MWDMA 0-2, the selected one */
    id[64] = 0x0003;                                  /* PIO 3 and 4 */
    id[65] = id[66] = id[67] = id[68] = 120;          /* ns cycle times */
    id[80] = 0x00f0;                                  /* ATA/ATAPI-4 to -7 */
    id[82] = 1u << 5;                                 /* write cache */
    id[83] = 0x4000 | 1u << 13 | 1u << 12 | 1u << 10; /* FLUSH CACHE EXT, FLUSH CACHE, LBA48 */
    id[84] = 0x4000;
    id[85] = d->wcache ? 1u << 5 : 0;
    id[86] = 1u << 13 | 1u << 12 | 1u << 10;
    id[87] = 0x4000;
    /* Hardware reset result: 80-conductor cable, how the device number was set. */
    id[93] = slave ? 0x6300 : 0x600b;
    for (unsigned i = 0; i < 4; i++)
        id[100 + i] = (uint16_t)(d->sectors >> (16 * i));
    for (unsigned i = 0; i < SECTOR / 2; i++) {
        d->buf[2 * i] = (uint8_t)id[i];
        d->buf[2 * i + 1] = (uint8_t)(id[i] >> 8);
    }
}

/* --- PIO and DMA data transfer ------------------------------------------- */

/* Whether d's limiter lets bytes through now (the first transfer of a command also takes its
 * op); if not, the transfer is deferred until the drive's timer. */
static bool limits_allow(struct ide_drive *d, uint64_t bytes)
{
    uint64_t wait;

    if (!d->limits)
        return true;
    wait = rate_limiter_consume(d->limits, bytes, d->op_charged ? 0 : 1, rate_limiter_now_ns());
    if (wait == 0) {
        d->op_charged = true;
        return true;
    }
    d->throttled = rate_limiter_arm_timer(d->timer_fd, wait) == 0;
    return false;
}

static void pio_in_block(struct ide_channel *ch, struct ide_drive *d)
{
    unsigned n = d->remaining < d->block ? d->remaining : d->block;
    struct iovec iov = {.iov_base = d->buf, .iov_len = (size_t)n * SECTOR};
    int rc;

    if (!limits_allow(d, (uint64_t)n * SECTOR)) {
        d->pos = d->len = 0; /* nothing to read until the block is there */
        d->status = ST_BSY;
        return;
    }
    rc = block_image_read(d->img, &iov, 1, d->lba * SECTOR);
    if (rc) {
        io_error(ch, d, rc);
        return;
    }
    d->pos = 0;
    d->len = n * SECTOR;
    d->status = ST_READY | ST_DRQ;
    raise_intrq(ch, d);
}

static void pio_out_block(struct ide_drive *d)
{
    unsigned n = d->remaining < d->block ? d->remaining : d->block;

    d->pos = 0;
    d->len = n * SECTOR;
    d->status = ST_READY | ST_DRQ;
}

static int flush_if_write_through(struct ide_drive *d)
{
    return d->wcache ? 0 : block_image_flush(d->img);
}

/* The host has read or written a whole DRQ block. */
static void pio_block_done(struct ide_channel *ch, struct ide_drive *d)
{
    unsigned n = d->len / SECTOR;

    if (d->xfer == XFER_PIO_OUT) {
        struct iovec iov = {.iov_base = d->buf, .iov_len = d->len};
        int rc;

        if (!limits_allow(d, d->len)) {
            d->status = ST_BSY; /* the block is taken, the disk is busy with it */
            return;
        }
        rc = block_image_write(d->img, &iov, 1, d->lba * SECTOR);
        if (!rc)
            rc = flush_if_write_through(d);
        if (rc) {
            io_error(ch, d, rc);
            return;
        }
    }
    d->lba += n;
    d->remaining -= n;
    if (d->remaining == 0) {
        /* PIO data-in ends quietly after its last block; data-out interrupts. */
        if (d->xfer == XFER_PIO_OUT) {
            command_done(ch, d);
        } else {
            d->xfer = XFER_NONE;
            d->status = ST_READY;
        }
    } else if (d->xfer == XFER_PIO_OUT) {
        pio_out_block(d);
        raise_intrq(ch, d);
    } else {
        pio_in_block(ch, d);
    }
}

static uint16_t data_read16(struct ide_channel *ch, struct ide_drive *d)
{
    uint16_t w;

    if (d->xfer != XFER_PIO_IN || d->pos >= d->len)
        return 0;
    w = (uint16_t)(d->buf[d->pos] | d->buf[d->pos + 1] << 8);
    d->pos += 2;
    if (d->pos == d->len)
        pio_block_done(ch, d);
    return w;
}

static void data_write16(struct ide_channel *ch, struct ide_drive *d, uint16_t w)
{
    if (d->xfer != XFER_PIO_OUT || d->pos >= d->len)
        return;
    d->buf[d->pos] = (uint8_t)w;
    d->buf[d->pos + 1] = (uint8_t)(w >> 8);
    d->pos += 2;
    if (d->pos == d->len)
        pio_block_done(ch, d);
}

/*
 * Maps the PRD table onto guest memory for a transfer of bytes. Returns the
 * number of iovecs, or -EFAULT when an entry lies outside RAM or the table
 * ends (EOT, or the end of its 64 KiB page: at most 8192 entries) before
 * the bytes do. *exact tells whether the transfer used the table up, which
 * is when the engine goes inactive by itself (SFF-8038i, status bits).
 */
static int prd_map(struct ide_channel *ch, uint64_t bytes, bool *exact)
{
    const struct hv_guest_mem *mem = ch->ide->platform->mem;
    uint64_t addr = ch->bm_prd, end = (addr & ~(uint64_t)(PRD_TABLE_SPAN - 1)) + PRD_TABLE_SPAN;
    int n = 0;

    *exact = false;
    while (bytes) {
        const uint8_t *entry = addr < end ? hv_gpa_to_hva(mem, addr, 8) : NULL;
        uint32_t base, count;
        uint64_t len;
        void *hva;

        if (!entry)
            return -EFAULT;
        memcpy(&base, entry, 4);
        memcpy(&count, entry + 4, 4);
        len = (count & 0xfffe) ? (count & 0xfffe) : 0x10000;
        *exact = (count & PRD_EOT) && len == bytes;
        if (len > bytes)
            len = bytes;
        hva = hv_gpa_to_hva(mem, base & ~1u, len);
        if (!hva)
            return -EFAULT;
        ch->ide->iov[n++] = (struct iovec){.iov_base = hva, .iov_len = len};
        bytes -= len;
        addr += 8;
        if ((count & PRD_EOT) && bytes)
            return -EFAULT;
    }
    return n;
}

/* Runs the selected drive's DMA command through the engine, all of it at once. */
static void dma_run(struct ide_channel *ch)
{
    struct ide_drive *d = selected(ch);
    bool to_memory = !d->write, exact;
    int n, rc;

    if (d->xfer != XFER_DMA)
        return;
    /*
     * An engine the guest pointed the wrong way, or may not master the bus,
     * would move garbage or hang on real hardware; end it with an error.
     */
    n = -EFAULT;
    if (pci_device_bus_master(&ch->ide->pdev) && !!(ch->bm_cmd & BM_CMD_WRITE_MEM) == to_memory)
        n = prd_map(ch, (uint64_t)d->remaining * SECTOR, &exact);
    if (n < 0) {
        ch->bm_status = (uint8_t)((ch->bm_status & ~BM_ST_ACTIVE) | BM_ST_ERROR);
        command_error(ch, d, ERR_ABRT);
        return;
    }
    if (!limits_allow(d, (uint64_t)d->remaining * SECTOR))
        return; /* the engine stays active, the interrupt comes with the data */
    rc = d->write ? block_image_write(d->img, ch->ide->iov, n, d->lba * SECTOR)
                  : block_image_read(d->img, ch->ide->iov, n, d->lba * SECTOR);
    if (!rc && d->write)
        rc = flush_if_write_through(d);
    if (rc) {
        ch->bm_status &= (uint8_t)~BM_ST_ACTIVE;
        io_error(ch, d, rc);
        return;
    }
    /* A table longer than the transfer keeps the engine active until the host stops it. */
    if (exact)
        ch->bm_status &= (uint8_t)~BM_ST_ACTIVE;
    d->lba += d->remaining;
    d->remaining = 0;
    command_done(ch, d);
}

/* --- Commands ------------------------------------------------------------- */

/* CHS to LBA with the current translation; false for an address outside it. */
static bool chs_to_lba(const struct ide_channel *ch, const struct ide_drive *d, uint64_t *lba)
{
    unsigned cyl = (unsigned)ch->lbah << 8 | ch->lbam, head = ch->device & 0x0f, sect = ch->lbal;

    if (sect == 0 || sect > d->spt || head >= d->heads)
        return false;
    *lba = ((uint64_t)cyl * d->heads + head) * d->spt + sect - 1;
    return true;
}

static void start_rw(struct ide_channel *ch, struct ide_drive *d, unsigned flags)
{
    uint64_t lba;
    uint32_t count;

    if (flags & RW_EXT) {
        lba = (uint64_t)ch->hob_lbah << 40 | (uint64_t)ch->hob_lbam << 32 |
              (uint64_t)ch->hob_lbal << 24 | (uint64_t)ch->lbah << 16 | (uint64_t)ch->lbam << 8 |
              ch->lbal;
        count = (uint32_t)ch->hob_nsect << 8 | ch->nsect;
        if (count == 0)
            count = 65536;
    } else {
        count = ch->nsect ? ch->nsect : 256;
        if (ch->device & DEV_LBA)
            lba = (uint64_t)(ch->device & 0x0f) << 24 | (uint64_t)ch->lbah << 16 |
                  (uint64_t)ch->lbam << 8 | ch->lbal;
        else if (!chs_to_lba(ch, d, &lba))
            lba = UINT64_MAX;
    }
    if (lba >= d->sectors || count > d->sectors - lba) {
        command_error(ch, d, ERR_IDNF);
        return;
    }
    if (((flags & RW_MULTIPLE) && !d->multiple) || ((flags & RW_WRITE) && d->img->readonly)) {
        command_error(ch, d, ERR_ABRT); /* see io_error() for read-only images */
        return;
    }
    if (flags & RW_VERIFY) {
        command_done(ch, d);
        return;
    }
    d->lba = lba;
    d->remaining = count;
    d->write = flags & RW_WRITE;
    d->op_charged = false;
    d->throttled = false;
    if (flags & RW_DMA) {
        d->xfer = XFER_DMA;
        d->status = ST_READY | ST_DRQ;
        if ((ch->bm_cmd & BM_CMD_START) && (ch->bm_status & BM_ST_ACTIVE))
            dma_run(ch);
        return;
    }
    d->block = (flags & RW_MULTIPLE) ? d->multiple : 1;
    if (d->write) {
        /* PIO data-out asks for its first block without an interrupt. */
        d->xfer = XFER_PIO_OUT;
        pio_out_block(d);
    } else {
        d->xfer = XFER_PIO_IN;
        pio_in_block(ch, d);
    }
}

/* The read, write and verify commands, by opcode; 0: not one of them. */
static const uint8_t rw_commands[256] = {
    [CMD_READ] = RW_CMD,
    [CMD_READ_ONCE] = RW_CMD,
    [CMD_READ_EXT] = RW_CMD | RW_EXT,
    [CMD_READ_MULTIPLE] = RW_CMD | RW_MULTIPLE,
    [CMD_READ_MULTIPLE_EXT] = RW_CMD | RW_MULTIPLE | RW_EXT,
    [CMD_READ_DMA] = RW_CMD | RW_DMA,
    [CMD_READ_DMA_ONCE] = RW_CMD | RW_DMA,
    [CMD_READ_DMA_EXT] = RW_CMD | RW_DMA | RW_EXT,
    [CMD_WRITE] = RW_CMD | RW_WRITE,
    [CMD_WRITE_ONCE] = RW_CMD | RW_WRITE,
    [CMD_WRITE_EXT] = RW_CMD | RW_WRITE | RW_EXT,
    [CMD_WRITE_MULTIPLE] = RW_CMD | RW_WRITE | RW_MULTIPLE,
    [CMD_WRITE_MULTIPLE_EXT] = RW_CMD | RW_WRITE | RW_MULTIPLE | RW_EXT,
    [CMD_WRITE_DMA] = RW_CMD | RW_WRITE | RW_DMA,
    [CMD_WRITE_DMA_ONCE] = RW_CMD | RW_WRITE | RW_DMA,
    [CMD_WRITE_DMA_EXT] = RW_CMD | RW_WRITE | RW_DMA | RW_EXT,
    [CMD_VERIFY] = RW_CMD | RW_VERIFY,
    [CMD_VERIFY_ONCE] = RW_CMD | RW_VERIFY,
    [CMD_VERIFY_EXT] = RW_CMD | RW_VERIFY | RW_EXT,
};

static void set_features(struct ide_channel *ch, struct ide_drive *d)
{
    uint8_t mode = ch->nsect;

    switch (ch->feature) {
    case SETF_WCACHE_ON:
    case SETF_WCACHE_OFF:
        d->wcache = ch->feature == SETF_WCACHE_ON;
        command_done(ch, d);
        return;
    case SETF_XFER_MODE:
        if (mode <= XFER_PIO_DEFAULT_IORDY ||
            (mode >= XFER_PIO_FLOW && mode <= XFER_PIO_FLOW + 4)) {
            command_done(ch, d);
            return;
        }
        if (mode >= XFER_MWDMA && mode <= XFER_MWDMA + 2) {
            d->mwdma = mode - XFER_MWDMA;
            command_done(ch, d);
            return;
        }
        break;
    }
    command_error(ch, d, ERR_ABRT);
}

static void execute_command(struct ide_channel *ch, uint8_t cmd)
{
    struct ide_drive *d = selected(ch);
    unsigned flags = rw_commands[cmd];

    if (!d->img || (ch->devctl & CTL_SRST))
        return; /* nobody listens, or the drives are held in reset */
    d->intrq = false;
    d->xfer = XFER_NONE;
    d->error = 0;
    update_irq(ch);
    if (flags) {
        start_rw(ch, d, flags);
        return;
    }
    switch (cmd) {
    case CMD_IDENTIFY:
        identify(d, d == &ch->drive[1]);
        d->xfer = XFER_PIO_IN;
        d->remaining = 1;
        d->pos = 0;
        d->len = SECTOR;
        d->status = ST_READY | ST_DRQ;
        raise_intrq(ch, d);
        return;
    case CMD_SET_MULTIPLE:
        /* Powers of two up to the IDENTIFY maximum; 0 turns multiple mode off. */
        if (ch->nsect > MAX_MULTIPLE || (ch->nsect & (ch->nsect - 1)))
            break;
        d->multiple = ch->nsect;
        command_done(ch, d);
        return;
    case CMD_SET_FEATURES:
        set_features(ch, d);
        return;
    case CMD_FLUSH:
    case CMD_FLUSH_EXT:
        /* A failed flush aborts: there is no one sector to report as unreadable. */
        if (block_image_flush(d->img))
            break;
        command_done(ch, d);
        return;
    case CMD_INIT_PARAMS:
        if (ch->nsect == 0)
            break;
        d->spt = ch->nsect;
        d->heads = (uint8_t)((ch->device & 0x0f) + 1);
        command_done(ch, d);
        return;
    case CMD_CHECK_POWER:
        ch->nsect = 0xff; /* active or idle */
        command_done(ch, d);
        return;
    case CMD_STANDBY_IMM:
    case CMD_IDLE_IMM:
    case CMD_STANDBY:
    case CMD_IDLE:
    case CMD_STANDBY_IMM_OLD:
    case CMD_IDLE_IMM_OLD:
    case CMD_STANDBY_OLD:
    case CMD_IDLE_OLD:
        command_done(ch, d);
        return;
    case CMD_DIAGNOSTIC:
        /* Both devices run it; device 0 reports. */
        ch->drive[0].xfer = ch->drive[1].xfer = XFER_NONE;
        set_signature(ch);
        d = ch->drive[0].img ? &ch->drive[0] : d;
        raise_intrq(ch, d);
        return;
    }
    /* NOP, IDENTIFY PACKET DEVICE (no ATAPI here) and everything unknown. */
    command_error(ch, d, ERR_ABRT);
}

/* --- Register access ------------------------------------------------------ */

static void put_byte(void *data, unsigned size, uint8_t v)
{
    memset(data, 0, size);
    *(uint8_t *)data = v;
}

static void cmd_read(struct hv_device *dev, uint64_t offset, void *data, unsigned size)
{
    struct ide_channel *ch = hv_container_of(dev, struct ide_channel, cmd_dev);
    struct ide_drive *d = selected(ch);
    bool hob = ch->devctl & CTL_HOB;
    uint8_t v = 0;

    if (!d->img) {
        memset(data, 0, size);
        return;
    }
    switch (offset) {
    case REG_DATA:
        if (size == 1) {
            /* 8-bit PIO is a CFA feature this disk does not offer: the bus floats. */
            put_byte(data, size, 0xff);
            return;
        }
        for (unsigned i = 0; i + 2 <= size; i += 2) {
            uint16_t w = data_read16(ch, d);
            memcpy((uint8_t *)data + i, &w, 2);
        }
        return;
    case REG_ERROR_FEATURE:
        v = hob ? ch->hob_feature : d->error;
        break;
    case REG_NSECT:
        v = hob ? ch->hob_nsect : ch->nsect;
        break;
    case REG_LBAL:
        v = hob ? ch->hob_lbal : ch->lbal;
        break;
    case REG_LBAM:
        v = hob ? ch->hob_lbam : ch->lbam;
        break;
    case REG_LBAH:
        v = hob ? ch->hob_lbah : ch->lbah;
        break;
    case REG_DEVICE:
        v = ch->device;
        break;
    case REG_STATUS_CMD:
        v = d->status;
        d->intrq = false; /* reading Status acknowledges the interrupt */
        update_irq(ch);
        break;
    }
    put_byte(data, size, v);
}

/* A write to a task file register pushes its old value into the HOB copy. */
static void tf_write(uint8_t *reg, uint8_t *hob, uint8_t v)
{
    *hob = *reg;
    *reg = v;
}

static void cmd_write(struct hv_device *dev, uint64_t offset, const void *data, unsigned size)
{
    struct ide_channel *ch = hv_container_of(dev, struct ide_channel, cmd_dev);
    uint8_t v = *(const uint8_t *)data;

    if (offset == REG_DATA) {
        for (unsigned i = 0; size > 1 && i + 2 <= size; i += 2) {
            uint16_t w;
            memcpy(&w, (const uint8_t *)data + i, 2);
            data_write16(ch, selected(ch), w);
        }
        return;
    }
    ch->devctl &= (uint8_t)~CTL_HOB; /* any command block write clears HOB */
    switch (offset) {
    case REG_ERROR_FEATURE:
        tf_write(&ch->feature, &ch->hob_feature, v);
        break;
    case REG_NSECT:
        tf_write(&ch->nsect, &ch->hob_nsect, v);
        break;
    case REG_LBAL:
        tf_write(&ch->lbal, &ch->hob_lbal, v);
        break;
    case REG_LBAM:
        tf_write(&ch->lbam, &ch->hob_lbam, v);
        break;
    case REG_LBAH:
        tf_write(&ch->lbah, &ch->hob_lbah, v);
        break;
    case REG_DEVICE:
        ch->device = v;
        update_irq(ch);
        break;
    case REG_STATUS_CMD:
        execute_command(ch, v);
        break;
    }
}

static void ctl_read(struct hv_device *dev, uint64_t offset, void *data, unsigned size)
{
    struct ide_channel *ch = hv_container_of(dev, struct ide_channel, ctl_dev);
    struct ide_drive *d = selected(ch);

    (void)offset;
    put_byte(data, size, d->img ? d->status : 0);
}

/* Device control: SRST holds both drives busy until released, then they show their signature. */
static void ctl_write(struct hv_device *dev, uint64_t offset, const void *data, unsigned size)
{
    struct ide_channel *ch = hv_container_of(dev, struct ide_channel, ctl_dev);
    uint8_t v = *(const uint8_t *)data, old = ch->devctl;

    (void)offset;
    (void)size;
    ch->devctl = v;
    if ((v & CTL_SRST) && !(old & CTL_SRST)) {
        for (unsigned i = 0; i < 2; i++) {
            ch->drive[i].xfer = XFER_NONE;
            ch->drive[i].intrq = false;
            ch->drive[i].status = ST_BSY;
        }
    } else if (!(v & CTL_SRST) && (old & CTL_SRST)) {
        set_signature(ch);
    }
    update_irq(ch);
}

/* --- Bus-master registers (BAR4) ----------------------------------------- */

static uint8_t bm_read8(struct ide_channel *ch, unsigned reg)
{
    switch (reg) {
    case 0:
        return ch->bm_cmd;
    case 2:
        return ch->bm_status;
    case 4:
    case 5:
    case 6:
    case 7:
        return (uint8_t)(ch->bm_prd >> (8 * (reg - 4)));
    }
    return 0;
}

static void bm_write8(struct ide_channel *ch, unsigned reg, uint8_t v)
{
    switch (reg) {
    case 0: {
        uint8_t old = ch->bm_cmd;
        ch->bm_cmd = v & (BM_CMD_START | BM_CMD_WRITE_MEM);
        if ((v & BM_CMD_START) && !(old & BM_CMD_START)) {
            ch->bm_status |= BM_ST_ACTIVE;
            dma_run(ch);
        } else if (!(v & BM_CMD_START)) {
            ch->bm_status &= (uint8_t)~BM_ST_ACTIVE; /* stopping aborts the engine */
        }
        break;
    }
    case 2:
        /* Active is read-only, error and interrupt are write-one-to-clear. */
        ch->bm_status = (uint8_t)((ch->bm_status & BM_ST_ACTIVE) | (v & BM_ST_DRV_DMA) |
                                  (ch->bm_status & ~v & (BM_ST_ERROR | BM_ST_INTR)));
        break;
    case 4:
    case 5:
    case 6:
    case 7: {
        unsigned shift = 8 * (reg - 4);
        ch->bm_prd = (ch->bm_prd & ~(0xffu << shift)) | (uint32_t)v << shift;
        ch->bm_prd &= ~3u; /* dword aligned: the low bits read as zero */
        break;
    }
    }
}

static void bm_bar_read(struct pci_device *pdev, unsigned bar, uint64_t offset, void *data,
                        unsigned size)
{
    struct piix_ide *ide = hv_container_of(pdev, struct piix_ide, pdev);

    (void)bar;
    for (unsigned i = 0; i < size; i++) {
        unsigned reg = (unsigned)offset + i;
        ((uint8_t *)data)[i] =
            bm_read8(&ide->ch[reg / PIIX_IDE_BM_CHANNEL], reg % PIIX_IDE_BM_CHANNEL);
    }
}

static void bm_bar_write(struct pci_device *pdev, unsigned bar, uint64_t offset, const void *data,
                         unsigned size)
{
    struct piix_ide *ide = hv_container_of(pdev, struct piix_ide, pdev);

    (void)bar;
    for (unsigned i = 0; i < size; i++) {
        unsigned reg = (unsigned)offset + i;
        bm_write8(&ide->ch[reg / PIIX_IDE_BM_CHANNEL], reg % PIIX_IDE_BM_CHANNEL,
                  ((const uint8_t *)data)[i]);
    }
}

/* --- Reset and set-up ----------------------------------------------------- */

static void channel_reset(struct ide_channel *ch)
{
    for (unsigned i = 0; i < 2; i++) {
        struct ide_drive *d = &ch->drive[i];
        d->xfer = XFER_NONE;
        d->intrq = false;
        d->throttled = false;
        d->multiple = 0;
        d->mwdma = 2;
        d->heads = CHS_HEADS;
        d->spt = CHS_SECTORS;
        d->wcache = true;
    }
    ch->feature = ch->hob_feature = 0;
    ch->devctl = 0;
    set_signature(ch);
    ch->bm_cmd = 0;
    ch->bm_prd = 0;
    /* Firmware marks the drives it found as DMA capable. */
    ch->bm_status = (ch->drive[0].img ? 0x20 : 0) | (ch->drive[1].img ? 0x40 : 0);
    update_irq(ch);
}

static void channel_dev_reset(struct hv_device *dev)
{
    channel_reset(hv_container_of(dev, struct ide_channel, cmd_dev));
}

/* What the BIOS leaves in the timing registers: both channels decode. */
static void config_reset(struct pci_device *pdev)
{
    memset(&pdev->config[PIIX_IDETIM_PRI], 0, PIIX_CFG_END - PIIX_IDETIM_PRI);
    pci_cfg_put16(pdev, PIIX_IDETIM_PRI, PIIX_IDETIM_DECODE);
    pci_cfg_put16(pdev, PIIX_IDETIM_SEC, PIIX_IDETIM_DECODE);
    pci_cfg_put16(pdev, PIIX_IOCFG, 0);
}

static void config_init(struct pci_device *pdev)
{
    memset(&pdev->wmask[PIIX_IDETIM_PRI], 0xff, PIIX_CFG_END - PIIX_IDETIM_PRI);
    pdev->wmask[PIIX_IOCFG] = pdev->wmask[PIIX_IOCFG + 1] = 0xff;
    /* The decode enable bits stay set: this controller cannot stop decoding its ports. */
    pdev->wmask[PIIX_IDETIM_PRI + 1] = pdev->wmask[PIIX_IDETIM_SEC + 1] = 0x7f;
    config_reset(pdev);
}

/* The limits thread: a drive's timer expired, its deferred transfer goes on (or waits more). */
static void resume_transfer(struct ide_channel *ch, struct ide_drive *d)
{
    if (!d->throttled)
        return; /* reset, or a new command, meanwhile */
    d->throttled = false;
    switch (d->xfer) {
    case XFER_DMA:
        if (d == selected(ch) && (ch->bm_cmd & BM_CMD_START) && (ch->bm_status & BM_ST_ACTIVE))
            dma_run(ch);
        break;
    case XFER_PIO_IN:
        pio_in_block(ch, d);
        break;
    case XFER_PIO_OUT:
        pio_block_done(ch, d);
        break;
    default:
        break;
    }
}

/* Between events: stays here while a snapshot has the thread parked. */
static void park_point(struct piix_ide *ide)
{
    pthread_mutex_lock(&ide->park_lock);
    if (ide->park_req) {
        ide->parked = true;
        pthread_cond_broadcast(&ide->park_cond);
        while (ide->park_req)
            pthread_cond_wait(&ide->park_cond, &ide->park_lock);
        ide->parked = false;
    }
    pthread_mutex_unlock(&ide->park_lock);
}

static void *limits_thread(void *arg)
{
    struct piix_ide *ide = arg;
    const struct hv_platform *p = ide->platform;
    struct epoll_event ev[6];

    if (p->thread_start)
        p->thread_start(p->opaque, HV_THREAD_IO);
    for (;;) {
        park_point(ide);
        int n = epoll_wait(ide->epoll_fd, ev, 6, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return NULL;
        for (int i = 0; i < n; i++) {
            unsigned tag = ev[i].data.u32;
            struct ide_channel *ch;
            uint64_t expirations;

            if (tag == TAG_STOP)
                return NULL;
            if (tag == TAG_WAKE) {
                if (read(ide->wake_fd, &expirations, sizeof(expirations)) < 0) {
                    /* drained already */
                }
                continue;
            }
            ch = &ide->ch[tag / 2];
            if (read(ch->drive[tag % 2].timer_fd, &expirations, sizeof(expirations)) < 0)
                continue; /* re-armed meanwhile */
            pthread_mutex_lock(&ide->bus->lock);
            resume_transfer(ch, &ch->drive[tag % 2]);
            pthread_mutex_unlock(&ide->bus->lock);
        }
    }
}

/* The timers and their thread, for a controller with limiters. */
static int start_limits(struct piix_ide *ide)
{
    struct epoll_event stop_ev = {.events = EPOLLIN, .data.u32 = TAG_STOP};
    struct epoll_event wake_ev = {.events = EPOLLIN, .data.u32 = TAG_WAKE};

    ide->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    ide->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ide->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ide->epoll_fd < 0 || ide->stop_fd < 0 || ide->wake_fd < 0 ||
        epoll_ctl(ide->epoll_fd, EPOLL_CTL_ADD, ide->stop_fd, &stop_ev) < 0 ||
        epoll_ctl(ide->epoll_fd, EPOLL_CTL_ADD, ide->wake_fd, &wake_ev) < 0)
        return -errno;
    for (unsigned i = 0; i < 4; i++) {
        struct ide_drive *d = &ide->ch[i / 2].drive[i % 2];
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};

        if (!d->limits)
            continue;
        d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (d->timer_fd < 0 || epoll_ctl(ide->epoll_fd, EPOLL_CTL_ADD, d->timer_fd, &ev) < 0)
            return -errno;
    }
    ide->thread_started = pthread_create(&ide->thread, NULL, limits_thread, ide) == 0;
    return ide->thread_started ? 0 : -EAGAIN;
}

void piix_ide_limits_changed(struct piix_ide *ide, unsigned index)
{
    struct ide_drive *d;

    if (index >= 4)
        return;
    d = &ide->ch[index / 2].drive[index % 2];
    /* A wait computed under the old limits may be far too long now: look again at once. */
    if (d->timer_fd >= 0)
        rate_limiter_arm_timer(d->timer_fd, 1);
}

int piix_ide_create(struct piix_ide **out, const struct hv_platform *platform,
                    struct block_image *const disks[4], struct rate_limiter *const limits[4],
                    struct hv_bus *bus, struct pci_bus *pb)
{
    bool limited = false;
    static const struct hv_device_ops cmd_ops = {
        .read = cmd_read, .write = cmd_write, .reset = channel_dev_reset};
    static const struct hv_device_ops ctl_ops = {.read = ctl_read, .write = ctl_write};
    static const struct pci_device_ops pci_ops = {
        .bar_read = bm_bar_read, .bar_write = bm_bar_write, .reset = config_reset};
    struct piix_ide *ide = calloc(1, sizeof(*ide));
    int rc;

    if (!ide)
        return -ENOMEM;
    ide->platform = platform;
    ide->bus = bus;
    ide->epoll_fd = ide->stop_fd = ide->wake_fd = -1;
    pthread_mutex_init(&ide->park_lock, NULL);
    pthread_cond_init(&ide->park_cond, NULL);
    pci_device_init(&ide->pdev, "piix-ide", &pci_ops, platform, PIIX_IDE_VENDOR, PIIX_IDE_DEVICE,
                    PIIX_IDE_CLASS, 0);
    if ((rc = pci_device_add_bar(&ide->pdev, PIIX_IDE_BM_BAR, PIIX_IDE_BM_SIZE, true)))
        goto err_free;
    config_init(&ide->pdev);
    for (unsigned c = 0; c < 2; c++) {
        struct ide_channel *ch = &ide->ch[c];
        ch->ide = ide;
        ch->irq = channel_res[c].irq;
        ch->cmd_dev = (struct hv_device){.name = "ide-cmd", .ops = &cmd_ops, .platform = platform};
        ch->ctl_dev = (struct hv_device){.name = "ide-ctl", .ops = &ctl_ops, .platform = platform};
        for (unsigned i = 0; i < 2; i++) {
            struct block_image *img = disks[2 * c + i];
            ch->drive[i].img = img;
            ch->drive[i].sectors = img ? img->size / SECTOR : 0;
            ch->drive[i].limits = img && limits ? limits[2 * c + i] : NULL;
            ch->drive[i].timer_fd = -1;
            limited |= ch->drive[i].limits != NULL;
        }
        channel_reset(ch);
    }
    /*
     * Neither the bus nor the PCI bus can forget a registration; a failure
     * here fails the machine, whose buses are torn down with it unused.
     */
    for (unsigned c = 0; c < 2; c++) {
        rc = hv_bus_register(bus, HV_BUS_PIO, channel_res[c].cmd_base, 8, &ide->ch[c].cmd_dev);
        if (!rc)
            rc = hv_bus_register(bus, HV_BUS_PIO, channel_res[c].ctl_base, 1, &ide->ch[c].ctl_dev);
        if (rc)
            goto err_free;
    }
    if ((rc = pci_bus_add(pb, &ide->pdev, PIIX_IDE_DEVFN)))
        goto err_free;
    *out = ide;
    if (limited && (rc = start_limits(ide))) {
        /* Registered already: the machine fails and its buses go with it; the caller
         * destroys the controller it was handed. */
        return rc;
    }
    return 0;

err_free:
    pthread_cond_destroy(&ide->park_cond);
    pthread_mutex_destroy(&ide->park_lock);
    free(ide);
    return rc;
}

void piix_ide_destroy(struct piix_ide *ide)
{
    uint64_t one = 1;

    if (!ide)
        return;
    if (ide->thread_started) {
        piix_ide_unpark(ide); /* a parked thread would never see the stop */
        if (write(ide->stop_fd, &one, sizeof(one)) < 0) {
            /* cannot fail for a fresh eventfd */
        }
        pthread_join(ide->thread, NULL);
    }
    for (unsigned i = 0; i < 4; i++)
        if (ide->ch[i / 2].drive[i % 2].timer_fd >= 0)
            close(ide->ch[i / 2].drive[i % 2].timer_fd);
    if (ide->epoll_fd >= 0)
        close(ide->epoll_fd);
    if (ide->stop_fd >= 0)
        close(ide->stop_fd);
    if (ide->wake_fd >= 0)
        close(ide->wake_fd);
    pthread_cond_destroy(&ide->park_cond);
    pthread_mutex_destroy(&ide->park_lock);
    free(ide);
}

void piix_ide_park(struct piix_ide *ide)
{
    uint64_t one = 1;

    if (!ide->thread_started)
        return;
    pthread_mutex_lock(&ide->park_lock);
    ide->park_req = true;
    if (write(ide->wake_fd, &one, sizeof(one)) < 0) {
        /* only fails when the counter is huge: the thread is being woken anyway */
    }
    while (!ide->parked)
        pthread_cond_wait(&ide->park_cond, &ide->park_lock);
    pthread_mutex_unlock(&ide->park_lock);
}

void piix_ide_unpark(struct piix_ide *ide)
{
    if (!ide->thread_started)
        return;
    pthread_mutex_lock(&ide->park_lock);
    ide->park_req = false;
    pthread_cond_broadcast(&ide->park_cond);
    pthread_mutex_unlock(&ide->park_lock);
}

/* --- Snapshot ------------------------------------------------------------- */

#define IDE_TAG SNAP_TAG('I', 'D', 'E', ' ')

static bool pio_xfer(enum ide_xfer x)
{
    return x == XFER_PIO_IN || x == XFER_PIO_OUT;
}

/* The image, geometry and limiter are configuration; the rest is the drive's state. */
static void drive_save(const struct ide_drive *d, struct snap_w *w)
{
    snap_w_bool(w, d->img != NULL);
    snap_w_u64(w, d->sectors);
    snap_w_u8(w, d->status);
    snap_w_u8(w, d->error);
    snap_w_bool(w, d->intrq);
    snap_w_u8(w, d->multiple);
    snap_w_u8(w, d->mwdma);
    snap_w_u8(w, d->heads);
    snap_w_u8(w, d->spt);
    snap_w_bool(w, d->wcache);
    snap_w_u8(w, (uint8_t)d->xfer);
    snap_w_bool(w, d->write);
    snap_w_u64(w, d->lba);
    snap_w_u32(w, d->remaining);
    snap_w_u32(w, d->block);
    snap_w_u32(w, d->pos);
    snap_w_u32(w, d->len);
    /* Only a PIO block in progress has data the guest has yet to read (or the disk to take). */
    if (pio_xfer(d->xfer))
        snap_w_bytes(w, d->buf, d->len);
    snap_w_bool(w, d->throttled);
    snap_w_bool(w, d->op_charged);
}

/* Reads drive `name` into t, checked against what the drive here (have) is. */
static void drive_load(struct snap_r *r, struct ide_drive *t, const struct ide_drive *have,
                       const char *name)
{
    bool present = snap_r_bool(r);
    uint8_t xfer;

    t->sectors = snap_r_u64(r);
    t->status = snap_r_u8(r);
    t->error = snap_r_u8(r);
    t->intrq = snap_r_bool(r);
    t->multiple = snap_r_u8(r);
    t->mwdma = snap_r_u8(r);
    t->heads = snap_r_u8(r);
    t->spt = snap_r_u8(r);
    t->wcache = snap_r_bool(r);
    xfer = snap_r_u8(r);
    t->write = snap_r_bool(r);
    t->lba = snap_r_u64(r);
    t->remaining = snap_r_u32(r);
    t->block = snap_r_u32(r);
    t->pos = snap_r_u32(r);
    t->len = snap_r_u32(r);
    if (!snap_r_ok(r))
        return;
    if (present != (have->img != NULL) || t->sectors != have->sectors) {
        snap_r_fail(r, -EINVAL, "ide %s: a disk of %llu sectors saved, %llu here", name,
                    present ? (unsigned long long)t->sectors : 0ull,
                    (unsigned long long)have->sectors);
        return;
    }
    if (xfer > XFER_DMA || (!present && xfer != XFER_NONE)) {
        snap_r_fail(r, -EINVAL, "ide %s: transfer kind %u", name, xfer);
        return;
    }
    t->xfer = (enum ide_xfer)xfer;
    /* What the commands that set them accept (SET MULTIPLE, SET FEATURES, INITIALIZE DEVICE
     * PARAMETERS): a zero geometry would divide by zero in IDENTIFY. */
    if (t->multiple > MAX_MULTIPLE || (t->multiple & (t->multiple - 1)) || t->mwdma > 2 ||
        t->heads == 0 || t->heads > 16 || t->spt == 0) {
        snap_r_fail(r, -EINVAL, "ide %s: multiple %u, mwdma %u or geometry %u/%u out of range",
                    name, t->multiple, t->mwdma, t->heads, t->spt);
        return;
    }
    /* The PIO block must fit the buffer, in whole sectors, with pos on a word inside it. A
     * transfer beyond the disk's end is refused by the image as well. */
    if (t->block > MAX_MULTIPLE || t->len > sizeof(t->buf) || t->len % SECTOR || t->pos > t->len ||
        t->pos % 2) {
        snap_r_fail(r, -EINVAL, "ide %s: PIO block of %u sectors, at byte %u of %u", name, t->block,
                    t->pos, t->len);
        return;
    }
    if (t->lba > t->sectors || t->remaining > t->sectors ||
        (pio_xfer(t->xfer) && t->len / SECTOR > t->remaining)) {
        snap_r_fail(r, -EINVAL, "ide %s: %u sectors left at LBA %llu (%u in the block)", name,
                    t->remaining, (unsigned long long)t->lba, t->len / SECTOR);
        return;
    }
    if (pio_xfer(t->xfer))
        snap_r_bytes(r, t->buf, t->len);
    t->throttled = snap_r_bool(r);
    t->op_charged = snap_r_bool(r);
}

void piix_ide_save(const struct piix_ide *ide, struct snap_w *w)
{
    size_t mark = snap_w_begin(w, IDE_TAG, 1);

    for (unsigned c = 0; c < 2; c++) {
        const struct ide_channel *ch = &ide->ch[c];
        const uint8_t regs[] = {ch->feature,  ch->nsect,       ch->lbal,      ch->lbam,
                                ch->lbah,     ch->hob_feature, ch->hob_nsect, ch->hob_lbal,
                                ch->hob_lbam, ch->hob_lbah,    ch->device,    ch->devctl,
                                ch->bm_cmd,   ch->bm_status};

        snap_w_bytes(w, regs, sizeof(regs));
        snap_w_u32(w, ch->bm_prd);
        for (unsigned i = 0; i < 2; i++)
            drive_save(&ch->drive[i], w);
    }
    /* Last, so that everything before it is checked before the PCI function changes. */
    pci_device_save(&ide->pdev, w);
    snap_w_end(w, mark);
}

/* The saved channel registers, in the order piix_ide_save writes them. */
static void channel_regs_load(struct snap_r *r, struct ide_channel *t)
{
    uint8_t *const regs[] = {&t->feature,  &t->nsect,       &t->lbal,      &t->lbam,
                             &t->lbah,     &t->hob_feature, &t->hob_nsect, &t->hob_lbal,
                             &t->hob_lbam, &t->hob_lbah,    &t->device,    &t->devctl,
                             &t->bm_cmd,   &t->bm_status};

    for (unsigned i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
        *regs[i] = snap_r_u8(r);
    t->bm_prd = snap_r_u32(r);
}

static void channel_apply(struct ide_channel *ch, const struct ide_channel *t)
{
    ch->feature = t->feature;
    ch->nsect = t->nsect;
    ch->lbal = t->lbal;
    ch->lbam = t->lbam;
    ch->lbah = t->lbah;
    ch->hob_feature = t->hob_feature;
    ch->hob_nsect = t->hob_nsect;
    ch->hob_lbal = t->hob_lbal;
    ch->hob_lbam = t->hob_lbam;
    ch->hob_lbah = t->hob_lbah;
    ch->device = t->device;
    ch->devctl = t->devctl;
    ch->bm_cmd = t->bm_cmd;
    ch->bm_status = t->bm_status;
    ch->bm_prd = t->bm_prd;
    for (unsigned i = 0; i < 2; i++) {
        struct ide_drive *d = &ch->drive[i];
        const struct ide_drive *s = &t->drive[i];
        d->status = s->status;
        d->error = s->error;
        d->intrq = s->intrq;
        d->multiple = s->multiple;
        d->mwdma = s->mwdma;
        d->heads = s->heads;
        d->spt = s->spt;
        d->wcache = s->wcache;
        d->xfer = s->xfer;
        d->write = s->write;
        d->lba = s->lba;
        d->remaining = s->remaining;
        d->block = s->block;
        d->pos = s->pos;
        d->len = s->len;
        memcpy(d->buf, s->buf, s->len);
        d->throttled = s->throttled;
        d->op_charged = s->op_charged;
    }
}

/* The derived things: the IRQ lines and the deferred transfers' timers. */
static void channel_restart(struct ide_channel *ch)
{
    const struct hv_platform *p = ch->ide->platform;
    struct ide_drive *sel = selected(ch);

    /* Straight to the level, not through update_irq: the BM interrupt bit is restored, and no
     * edge is latched again. */
    ch->irq_level = sel->img && sel->intrq && !(ch->devctl & CTL_NIEN);
    p->set_irq(p->opaque, ch->irq, ch->irq_level);
    for (unsigned i = 0; i < 2; i++) {
        struct ide_drive *d = &ch->drive[i];
        if (!d->throttled)
            continue;
        /* The limiter is new: ask it again at once. A drive with no limiter now has no reason
         * to wait and goes on here (the thread, if any, runs it once unparked). */
        if (d->timer_fd < 0 || rate_limiter_arm_timer(d->timer_fd, 1) != 0)
            resume_transfer(ch, d);
    }
}

int piix_ide_load(struct piix_ide *ide, struct snap_r *r)
{
    static const char *const names[2][2] = {{"primary master", "primary slave"},
                                            {"secondary master", "secondary slave"}};
    struct ide_channel *t = calloc(2, sizeof(*t)); /* 4 PIO buffers: not on the stack */
    struct snap_r sub, peek;
    uint32_t pcid_len;
    uint16_t ver;

    if (!t)
        return snap_r_fail(r, -ENOMEM, "ide: no memory");
    if (snap_r_section(r, IDE_TAG, "ide", 1, &sub, &ver))
        goto out;
    for (unsigned c = 0; c < 2; c++) {
        channel_regs_load(&sub, &t[c]);
        if (snap_r_ok(&sub) &&
            ((t[c].bm_cmd & ~(BM_CMD_START | BM_CMD_WRITE_MEM)) ||
             (t[c].bm_status & ~(BM_ST_ACTIVE | BM_ST_ERROR | BM_ST_INTR | BM_ST_DRV_DMA)) ||
             (t[c].bm_prd & 3)))
            snap_r_fail(&sub, -EINVAL,
                        "ide channel %u: bus master command 0x%x, status 0x%x or "
                        "PRD table 0x%x invalid",
                        c, t[c].bm_cmd, t[c].bm_status, t[c].bm_prd);
        for (unsigned i = 0; i < 2 && snap_r_ok(&sub); i++)
            drive_load(&sub, &t[c].drive[i], &ide->ch[c].drive[i], names[c][i]);
    }
    /* The PCI function's section must be all that is left: once loaded, it has changed the
     * function, so nothing may be refused after it. */
    peek = sub;
    snap_r_u32(&peek); /* its tag, which pci_device_load checks */
    pcid_len = snap_r_u32(&peek);
    if (!snap_r_ok(&peek))
        snap_r_fail(&sub, peek.err, "ide: %s", peek.what);
    else if (pcid_len != peek.len - peek.pos)
        snap_r_fail(&sub, -EINVAL,
                    "ide: the PCI function's state of %u bytes is not the "
                    "section's last %zu",
                    pcid_len, peek.len - peek.pos);
    if (snap_r_ok(&sub))
        pci_device_load(&ide->pdev, &sub);
    if (snap_r_end(r, &sub))
        goto out;
    for (unsigned c = 0; c < 2; c++)
        channel_apply(&ide->ch[c], &t[c]);
    for (unsigned c = 0; c < 2; c++)
        channel_restart(&ide->ch[c]);
out:
    free(t);
    return r->err;
}
