/*
 * Images as cluster objects (issue 16): defined once in etcd, under
 * images/<name> = {"name","format":"raw","size_bytes","sha256","created_ms",
 * "member"}, when an import or upload completes on a member; realised on
 * demand: a volume made from an image this member lacks waits while the
 * image's bytes come from a member that holds a copy (GET
 * /v1/images/{name}/content over TLS with the cluster's secret and the
 * peer's pin), checked against the definition's size and sha256. Members say
 * which images they hold in their heartbeats ("images"). A definition that
 * goes takes every member's copy with it on their next poll.
 *
 * Stand-alone (d->cluster NULL) every entry point leaves storage as it was.
 */
#ifndef VMMD_CLUSTER_IMAGES_H
#define VMMD_CLUSTER_IMAGES_H

#include <jansson.h>
#include <stdbool.h>

#include "api/api.h"
#include "db/store.h"
#include "storage.h"

struct vmmd_daemon;
struct http_request;

/* POST /v1/images: 409 when the cluster defines an image of that name already. */
int cluster_images_check_name(struct vmmd_daemon *d, const char *name, struct api_error *err);
/* An image became ready here (storage.c): its definition is put in etcd if none exists. */
void cluster_images_ready(struct vmmd_daemon *d, const struct db_image *img);
/* GET /v1/images (name NULL) and /v1/images/{name} in cluster mode: the cluster's images
 * with "members" (who holds a copy), and this member's own that are not defined. */
json_t *cluster_images_json(struct vmmd_daemon *d, const char *name, struct api_error *err);
/* GET /v1/images/{name}/content of an image this member has no copy of (err is the 404): in a
 * cluster that defines it, the detail names the members that have one. */
void cluster_images_not_here(struct vmmd_daemon *d, const char *name, struct api_error *err);
/* DELETE /v1/images/{name}: false when the cluster does not define it (storage deletes it
 * as stand-alone); else the request is answered here (now or once etcd did). */
bool cluster_images_delete(struct vmmd_daemon *d, struct http_request *req, const char *name);
/* POST /v1/volumes: as storage_volume_create, but an image the cluster defines and this
 * member lacks is copied here first (done is called once both are over). */
int cluster_images_volume_create(struct vmmd_daemon *d, const struct api_volume_def *def,
                                 storage_done_fn done, void *ctx, struct api_error *err);

/* From the cluster's poll: copies whose definition went are deleted here. */
void cluster_images_poll(struct vmmd_daemon *d);
/* For this member's heartbeat: the names of the images ready here that are the cluster's
 * (or not defined), not an import that lost its name to another member's (a new array). */
json_t *cluster_images_held(struct vmmd_daemon *d);
/* The daemon drains: copies in flight give up, their volume requests get 503 now. */
void cluster_images_stop(struct vmmd_daemon *d);
/* At exit. */
void cluster_images_free(struct vmmd_daemon *d);

#endif
