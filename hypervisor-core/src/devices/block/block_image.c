/* Raw image file I/O for the emulated disks. */
#include "devices/block/block_image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STAT_ADD(field, n) __atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED)

/* A stable, printable serial: the last 20 characters of the file name. */
static void make_serial(char *serial, const char *path)
{
    const char *base = strrchr(path, '/');
    size_t len;

    base = base ? base + 1 : path;
    len = strlen(base);
    if (len > 20)
        base += len - 20;
    snprintf(serial, 21, "%s", base);
    for (char *p = serial; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            *p = '_';
}

int block_image_open(struct block_image *img, const char *path, int fd, bool readonly, char *err,
                     size_t errlen)
{
    struct stat st;

    memset(img, 0, sizeof(*img));
    if (fd >= 0) {
        int mode = fcntl(fd, F_GETFL);
        if (mode < 0 || (!readonly && (mode & O_ACCMODE) != O_RDWR)) {
            snprintf(err, errlen, "disk image %s: the descriptor given is not open for %s", path,
                     readonly ? "reading" : "writing");
            return -EBADF;
        }
        img->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    } else {
        img->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    }
    if (img->fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open disk image %s%s: %s", path,
                 readonly ? "" : " for writing", strerror(e));
        return -e;
    }
    if (fstat(img->fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
        snprintf(err, errlen, "disk image %s is not a regular file or block device", path);
        goto err_fd;
    }
    if (S_ISREG(st.st_mode)) {
        img->size = (uint64_t)st.st_size;
    } else {
        off_t end = lseek(img->fd, 0, SEEK_END);
        img->size = end > 0 ? (uint64_t)end : 0;
    }
    img->size -= img->size % BLOCK_SECTOR_SIZE;
    if (img->size == 0) {
        snprintf(err, errlen, "disk image %s is smaller than one %d-byte sector", path,
                 BLOCK_SECTOR_SIZE);
        goto err_fd;
    }
    img->readonly = readonly;
    make_serial(img->serial, path);
    return 0;

err_fd:
    close(img->fd);
    img->fd = -1;
    return -EINVAL;
}

void block_image_close(struct block_image *img)
{
    if (img->fd >= 0)
        close(img->fd);
    img->fd = -1;
}

static uint64_t iov_total(const struct iovec *iov, int iovcnt)
{
    uint64_t n = 0;

    for (int i = 0; i < iovcnt; i++)
        n += iov[i].iov_len;
    return n;
}

/* Loops over short transfers (signals, page-cache boundaries) until done. */
static int transfer(struct block_image *img, const struct iovec *iov, int iovcnt,
                    uint64_t offset, bool write)
{
    uint64_t total = iov_total(iov, iovcnt), done = 0;
    struct iovec local[64];

    if (offset > img->size || total > img->size - offset)
        return -EINVAL;
    while (done < total) {
        /* Rebuild the remaining vector, at most 64 pieces at a time. */
        uint64_t skip = done;
        int n = 0;
        for (int i = 0; i < iovcnt && n < 64; i++) {
            if (skip >= iov[i].iov_len) {
                skip -= iov[i].iov_len;
                continue;
            }
            local[n].iov_base = (char *)iov[i].iov_base + skip;
            local[n].iov_len = iov[i].iov_len - skip;
            skip = 0;
            n++;
        }
        ssize_t r = write ? pwritev(img->fd, local, n, (off_t)(offset + done))
                          : preadv(img->fd, local, n, (off_t)(offset + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        done += (uint64_t)r;
    }
    return 0;
}

int block_image_read(struct block_image *img, const struct iovec *iov, int iovcnt,
                     uint64_t offset)
{
    int rc = transfer(img, iov, iovcnt, offset, false);

    if (rc) {
        STAT_ADD(img->stats.errors, 1);
        return rc;
    }
    STAT_ADD(img->stats.read_ops, 1);
    STAT_ADD(img->stats.read_bytes, iov_total(iov, iovcnt));
    return 0;
}

int block_image_write(struct block_image *img, const struct iovec *iov, int iovcnt,
                      uint64_t offset)
{
    int rc = img->readonly ? -EROFS : transfer(img, iov, iovcnt, offset, true);

    if (rc) {
        STAT_ADD(img->stats.errors, 1);
        return rc;
    }
    STAT_ADD(img->stats.write_ops, 1);
    STAT_ADD(img->stats.write_bytes, iov_total(iov, iovcnt));
    return 0;
}

int block_image_flush(struct block_image *img)
{
    if (img->readonly)
        return 0;
    if (fdatasync(img->fd) < 0) {
        STAT_ADD(img->stats.errors, 1);
        return -errno;
    }
    STAT_ADD(img->stats.flush_ops, 1);
    return 0;
}

void block_image_count_error(struct block_image *img)
{
    STAT_ADD(img->stats.errors, 1);
}

void block_image_get_stats(const struct block_image *img, struct block_image_stats *out)
{
    out->read_bytes = __atomic_load_n(&img->stats.read_bytes, __ATOMIC_RELAXED);
    out->write_bytes = __atomic_load_n(&img->stats.write_bytes, __ATOMIC_RELAXED);
    out->read_ops = __atomic_load_n(&img->stats.read_ops, __ATOMIC_RELAXED);
    out->write_ops = __atomic_load_n(&img->stats.write_ops, __ATOMIC_RELAXED);
    out->flush_ops = __atomic_load_n(&img->stats.flush_ops, __ATOMIC_RELAXED);
    out->errors = __atomic_load_n(&img->stats.errors, __ATOMIC_RELAXED);
}
