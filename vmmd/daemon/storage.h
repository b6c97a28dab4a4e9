/*
 * Storage: pools (directories), the images imported into them and the
 * volumes made in them. The store holds one row per image and volume; the
 * file is <pool dir>/<name>.img or <name>.vol, written under a hidden
 * ".<name>.*.part" name and renamed into place only when complete, so a
 * file under its real name is always whole. Copies and conversions run on
 * libuv's thread pool; everything else runs on the daemon's loop thread.
 */
#ifndef VMMD_STORAGE_H
#define VMMD_STORAGE_H

#include <jansson.h>
#include <limits.h>

#include "api/api.h"
#include "db/store.h"
#include "strbuf.h"

struct vmmd_daemon;
struct storage;
struct storage_upload;

/* Pools from the configuration: made if missing, canonical paths, reflink probed. */
struct storage *storage_create(struct vmmd_daemon *d, char *err, size_t errlen);
/* Daemon start: imports a previous daemon left unfinished are failed and their files removed. */
void storage_start(struct storage *s);
/* On drain: imports and copies cancelled (they end on the loop). */
void storage_stop(struct storage *s);
/* After the loop: waits for what was cancelled, then frees. */
void storage_destroy(struct storage *s);

json_t *storage_pools_json(struct storage *s);
/* One image or volume (name), or all of them (NULL); 404 for an unknown name. */
json_t *storage_images_json(struct storage *s, const char *name_or_null, struct api_error *err);
json_t *storage_volumes_json(struct storage *s, const char *name_or_null, struct api_error *err);

/* The directories an import by path may read from (image and import directories). */
const struct api_limits *storage_import_limits(struct storage *s);
/* POST /v1/images {"path"}: checked, recorded (importing) and started; *out is the image. */
int storage_image_import(struct storage *s, const struct api_image_def *def, json_t **out,
                         struct api_error *err);
int storage_image_delete(struct storage *s, const char *name, struct api_error *err);
/* A ready image's file, opened for reading (GET /v1/images/{name}/content), and its size. */
int storage_image_open(struct storage *s, const char *name, int *fd, uint64_t *size,
                       struct api_error *err);
/*
 * A copy of an image another cluster member holds (cluster_images.c): part_open makes a
 * hidden file for it in the default image pool (409 name taken, 507 no room for size);
 * adopt renames the finished, checked file into place and records it ready, source saying
 * where it came from (the part file is gone either way).
 */
int storage_image_part_open(struct storage *s, const char *name, uint64_t size,
                            char part[PATH_MAX], int *fd, struct api_error *err);
int storage_image_adopt(struct storage *s, const char *name, const char *part, uint64_t size,
                        const char *sha256, const char *source, struct api_error *err);

/*
 * An upload, as its body arrives (the HTTP server hands it over piece by
 * piece): begin with the headers (refuses what it can before a byte is
 * read: name taken, no room for content_length), write each piece, then
 * finish (201 with a raw image, 202 while a qcow2 converts) or abort
 * (nothing is left behind: no file, no row).
 */
struct storage_upload *storage_upload_begin(struct storage *s, const struct api_image_def *def,
                                            const char *content_length, struct api_error *err);
int storage_upload_write(struct storage_upload *u, const void *data, size_t len,
                         struct api_error *err);
int storage_upload_finish(struct storage_upload *u, unsigned *status, json_t **out,
                          struct api_error *err);
void storage_upload_abort(struct storage_upload *u);

/* Called on the loop when a volume is made: status 201 and the volume, or an error. */
typedef void (*storage_done_fn)(void *ctx, unsigned status, json_t *body,
                                const struct api_error *err);
/* Checks now (-1 with err), then copies on the pool and calls done (0 returned). */
int storage_volume_create(struct storage *s, const struct api_volume_def *def, storage_done_fn done,
                          void *ctx, struct api_error *err);
int storage_volume_resize(struct storage *s, const char *name, uint64_t size_mib, json_t **out,
                          struct api_error *err);
int storage_volume_delete(struct storage *s, const char *name, struct api_error *err);

/*
 * A VM definition's disks against the storage: each volume exists (422), a
 * read-write one is no other VM's (409 naming it; a read-only volume is
 * attached read-only wherever it is); a path may not name a pool's file
 * (422: it would bypass those rules).
 */
int storage_check_vm(struct storage *s, const struct db_vm *vm, struct api_error *err);
/*
 * At start: the disks with each volume replaced by its file ({"path",
 * "readonly", "pool": true}) for vm_files_open() (*out: free()).
 */
int storage_resolve_disks(struct storage *s, const char *disks_json, char **out,
                          struct api_error *err);
/* The pools' directories, beneath which vm_files_open() opens volume files. */
const struct api_limits *storage_pool_limits(struct storage *s);

/* The storage series of /metrics. */
void storage_metrics(struct storage *s, struct strbuf *out);

#endif
