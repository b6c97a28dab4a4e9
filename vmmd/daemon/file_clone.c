/* Reflinks and sparse copies of disk files (see file_clone.h). */
#include "file_clone.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_CHUNK (64u << 20) /* per copy_file_range call: keeps each bounded */

const char *file_clone_kind_name(enum file_clone_kind k)
{
    return k == FILE_CLONE_REFLINK ? "reflink" : "sparse-copy";
}

/* pread/pwrite, for where copy_file_range cannot (across filesystems on old kernels, FUSE). */
static int copy_plain(int src, int dst, off_t off, uint64_t len)
{
    size_t size = 1u << 20;
    char *buf = malloc(size);
    int rc = 0;

    if (!buf)
        return -ENOMEM;
    while (len && !rc) {
        ssize_t n = pread(src, buf, len < size ? (size_t)len : size, off);

        if (n <= 0)
            rc = n < 0 ? -errno : -EIO; /* 0: the source shrank under us */
        else if (pwrite(dst, buf, (size_t)n, off) != n)
            rc = errno ? -errno : -EIO;
        else {
            off += n;
            len -= (uint64_t)n;
        }
    }
    free(buf);
    return rc;
}

static int copy_range(int src, int dst, off_t off, uint64_t len)
{
    while (len) {
        size_t want = len > COPY_CHUNK ? COPY_CHUNK : (size_t)len;
        off_t in = off, out = off;
        ssize_t n = copy_file_range(src, &in, dst, &out, want, 0);

        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
            return copy_plain(src, dst, off, len);
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO; /* the source shrank under us */
        off += n;
        len -= (uint64_t)n;
    }
    return 0;
}

int file_copy_sparse(int src_fd, int dst_fd)
{
    struct stat st;
    off_t data = 0, hole;
    int rc;

    if (fstat(src_fd, &st) < 0)
        return -errno;
    while (data < st.st_size) {
        data = lseek(src_fd, data, SEEK_DATA);
        if (data < 0)
            return errno == ENXIO ? 0 : -errno; /* ENXIO: only a hole is left */
        hole = lseek(src_fd, data, SEEK_HOLE);
        if (hole < 0)
            return -errno;
        rc = copy_range(src_fd, dst_fd, data, (uint64_t)(hole - data));
        if (rc)
            return rc;
        data = hole;
    }
    return 0;
}

int file_clone(int src_fd, int dst_fd, uint64_t size, bool allow_reflink,
               enum file_clone_kind *kind)
{
    struct stat st;
    int rc;

    if (fstat(src_fd, &st) < 0)
        return -errno;
    if (allow_reflink && ioctl(dst_fd, FICLONE, src_fd) == 0) {
        *kind = FILE_CLONE_REFLINK;
    } else {
        *kind = FILE_CLONE_SPARSE;
        rc = file_copy_sparse(src_fd, dst_fd);
        if (rc)
            return rc;
    }
    /* The holes at the end too: the copy is as long as the source, or size. */
    if (ftruncate(dst_fd, (off_t)size > st.st_size ? (off_t)size : st.st_size) < 0)
        return -errno;
    return 0;
}

bool file_clone_reflink_supported(const char *dir)
{
    char a[4096], b[4096];
    int fa, fb;
    bool ok = false;

    snprintf(a, sizeof(a), "%s/.reflink-probe-a", dir);
    snprintf(b, sizeof(b), "%s/.reflink-probe-b", dir);
    fa = open(a, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    fb = open(b, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fa >= 0 && fb >= 0 && write(fa, "x", 1) == 1)
        ok = ioctl(fb, FICLONE, fa) == 0;
    if (fa >= 0)
        close(fa);
    if (fb >= 0)
        close(fb);
    unlink(a);
    unlink(b);
    return ok;
}

uint64_t file_allocated_bytes(int fd)
{
    struct stat st;

    return fstat(fd, &st) < 0 ? 0 : (uint64_t)st.st_blocks * 512;
}
