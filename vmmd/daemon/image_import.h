/*
 * Turning an image file into a pool's raw image: the sha256 of the source,
 * then a sparse copy (raw) or a conversion by qemu-img (qcow2). Images are
 * stored raw so the worker needs no image format code: reading qcow2 in the
 * hypervisor is a parser of hostile input in the guest's I/O path, while
 * qemu-img runs once, as a child with limits, before any VM sees the image.
 * image_job_run() blocks: it runs on a thread of the pool while the loop
 * reads its progress.
 */
#ifndef VMMD_IMAGE_IMPORT_H
#define VMMD_IMAGE_IMPORT_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "api/api.h"

#define IMAGE_QCOW2_MAGIC "QFI\xfb"

/* Whether the bytes are all zero: such blocks are left as holes in pool files. */
bool image_all_zero(const void *data, size_t n);

/* Writes data at off but its zero 4 KiB blocks, which stay holes; -1 with errno on failure. */
int image_write_sparse(int fd, const void *data, size_t n, off_t off);

/* qcow2 when the file starts with its magic, raw otherwise. */
enum api_image_format image_detect_format(int fd);

/*
 * Reads a qcow2's header with `qemu-img info` (quick: no data is read) from
 * fd, the file the daemon opened (qemu-img gets the descriptor, never the
 * path, which could have been swapped since): its virtual size. Refused with
 * a reason in err: a file qemu-img cannot read (corrupt, not qcow2), one
 * with a backing file or an external data file (either would make the
 * conversion read another file of the host's).
 */
int image_qcow2_probe(int fd, uint64_t *virtual_size, char *err, size_t errlen);

struct image_hash;

struct image_job {
    int src_fd;                   /* the source, opened by the caller; the job closes it */
    char src[PATH_MAX];           /* its name, for messages */
    char dst[PATH_MAX];           /* created here; the caller renames it into place */
    enum api_image_format format; /* raw or qcow2, decided before */
    bool hash_source;             /* false when the upload hashed the bytes already */
    uint64_t virtual_size;        /* qcow2: from image_qcow2_probe */
    /* Progress, read by the loop while the job runs. */
    _Atomic uint64_t done, total;
    atomic_bool cancel;
    /* The outcome. */
    int rc; /* 0 or a negative errno (-ENOSPC: the pool is full) */
    char error[256];
    char sha256[65];
    uint64_t size_bytes, source_bytes;
    struct image_hash *hash; /* the job's own, while it runs */
};

void image_job_run(struct image_job *job);

/* Streaming sha256 (GnuTLS) for the upload path, which hashes on the loop as bytes arrive. */
struct image_hash *image_hash_new(void);
void image_hash_update(struct image_hash *h, const void *data, size_t len);
/* Writes 64 hex digits and a NUL into out and frees h. */
void image_hash_finish(struct image_hash *h, char out[65]);
void image_hash_free(struct image_hash *h);

#endif
