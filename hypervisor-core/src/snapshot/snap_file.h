/*
 * The snapshot state file's envelope: a 32-byte header, then the payload.
 *   0  "VMMDSNAP"   8  u32 format version   12 u32 header size (32)
 *   16 u64 payload length   24 u32 CRC-32C of the payload   28 u32 CRC-32C of bytes 0-27
 */
#ifndef HV_SNAP_FILE_H
#define HV_SNAP_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "snapshot/snap_buf.h"

#define HV_SNAP_HEADER_SIZE 32
#define HV_SNAP_TAG_META SNAP_TAG('M', 'E', 'T', 'A') /* the first section */
#define HV_SNAP_TAG_END SNAP_TAG('E', 'N', 'D', ' ')   /* the last */

uint32_t hv__crc32c(uint32_t crc, const void *buf, size_t len);
/* All of buf at off (pwrite, EINTR retried): 0 or -errno. */
int hv__write_at(int fd, const void *buf, size_t len, off_t off);
/* Truncates fd and writes header and payload from offset 0, then fdatasync. */
int hv__snap_file_write(int fd, const struct snap_w *payload);
/* Reads the whole file (at most HV_SNAPSHOT_STATE_MAX) and checks its header and checksums:
 * -EINVAL corrupt or truncated, -EPROTO another format version; one line in err. */
int hv__snap_file_read(int fd, uint8_t **payload, size_t *len, char *err, size_t errlen);

struct hv_snapshot_meta;
/* Reads a whole state file (hv__snap_file_read), then its META section into *meta; r is left
 * at the next section. The caller frees *payload (NULL on error). */
int hv__snap_load(int fd, uint8_t **payload, size_t *len, struct hv_snapshot_meta *meta,
                  struct snap_r *r, char *err, size_t errlen);

/* The same checks on a state file held in memory (a migration's): r reads the payload inside
 * file, from the section after META. */
int hv__snap_open(const uint8_t *file, size_t len, struct hv_snapshot_meta *meta, struct snap_r *r,
                  char *err, size_t errlen);
/* A whole state file (header and payload) in memory; *out: free(). */
int hv__snap_file_build(const struct snap_w *payload, uint8_t **out, size_t *len);

#endif
