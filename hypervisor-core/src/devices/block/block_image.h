/*
 * A raw disk image file, the backend of both the virtio-blk and the IDE
 * disk. Reads and writes go through the host page cache with
 * preadv/pwritev; a read-only image refuses writes with -EROFS. The
 * counters are updated atomically so stats can be read from any thread.
 */
#ifndef HV_BLOCK_IMAGE_H
#define HV_BLOCK_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define BLOCK_SECTOR_SIZE 512

struct block_image_stats {
    uint64_t read_bytes, write_bytes;
    uint64_t read_ops, write_ops, flush_ops;
    uint64_t errors;
};

struct block_image {
    int fd;
    bool readonly;
    uint64_t size;    /* bytes, rounded down to whole sectors */
    char serial[21];  /* ATA/virtio id: 20 characters, derived from the path */
    struct block_image_stats stats;
};

/* Opens path (read-only or read-write), or with fd >= 0 takes a duplicate of that open
 * descriptor of path instead; one line into err on failure. */
int block_image_open(struct block_image *img, const char *path, int fd, bool readonly, char *err,
                     size_t errlen);
void block_image_close(struct block_image *img);
/* Whole-transfer helpers: return 0 or a negative errno; -EIO on a short transfer,
 * -EINVAL when [offset, offset + length) is not inside the image. */
int block_image_read(struct block_image *img, const struct iovec *iov, int iovcnt,
                     uint64_t offset);
int block_image_write(struct block_image *img, const struct iovec *iov, int iovcnt,
                      uint64_t offset);
int block_image_flush(struct block_image *img);
/* Counts a request the device refused before it reached the image (bad range, bad shape). */
void block_image_count_error(struct block_image *img);
void block_image_get_stats(const struct block_image *img, struct block_image_stats *out);

#endif
