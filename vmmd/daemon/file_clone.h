/*
 * Copying a disk file the cheap way: a reflink (FICLONE: the copy shares the
 * source's blocks until either is written, on XFS and btrfs), else a sparse
 * copy that moves only the extents holding data (SEEK_DATA/SEEK_HOLE and
 * copy_file_range, which the kernel may still offload). Runs on a thread of
 * the pool: a sparse copy of a large image takes a while.
 */
#ifndef VMMD_FILE_CLONE_H
#define VMMD_FILE_CLONE_H

#include <stdbool.h>
#include <stdint.h>

enum file_clone_kind { FILE_CLONE_REFLINK, FILE_CLONE_SPARSE };

const char *file_clone_kind_name(enum file_clone_kind k); /* "reflink" | "sparse-copy" */

/*
 * Copies src_fd's whole content into dst_fd (an empty, writable file), then
 * makes dst size bytes long if that is larger (holes at the end). *kind
 * says how; with allow_reflink false (tests, benchmarks) never a reflink.
 * 0 or a negative errno (-ENOSPC when the filesystem is full).
 */
int file_clone(int src_fd, int dst_fd, uint64_t size, bool allow_reflink,
               enum file_clone_kind *kind);
/* The sparse copy alone: the data extents of src into dst at the same offsets. */
int file_copy_sparse(int src_fd, int dst_fd);
/* Whether dir's filesystem can reflink (tries FICLONE on two scratch files). */
bool file_clone_reflink_supported(const char *dir);
/* Bytes the file takes on disk (st_blocks), which a sparse file keeps small. */
uint64_t file_allocated_bytes(int fd);

#endif
