/* /v1/storage, /v1/images, /v1/volumes (storage.c does the work; cluster_images.c in a
 * cluster, where images are the cluster's). */
#include "routes.h"
#include "cluster_images.h"
#include "storage.h"

#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void route_storage_get(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    (void)m;
    http_respond_json(req, 200, storage_pools_json(d->storage));
}

void route_images_list(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    struct api_error err;

    (void)m;
    routes_respond(req, 200,
                   d->cluster ? cluster_images_json(d, NULL, &err)
                              : storage_images_json(d->storage, NULL, &err),
                   &err);
}

void route_image_get(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    struct api_error err;

    routes_respond(req, 200,
                   d->cluster ? cluster_images_json(d, m->name, &err)
                              : storage_images_json(d->storage, m->name, &err),
                   &err);
}

/* The image's bytes straight from its file: MHD reads it as the client takes it. */
void route_image_content(struct vmmd_daemon *d, struct http_request *req,
                         const struct route_match *m)
{
    struct MHD_Response *resp;
    struct api_error err;
    uint64_t size;
    int fd;

    if (storage_image_open(d->storage, m->name, &fd, &size, &err)) {
        if (err.kind == API_ERR_NOT_FOUND)
            cluster_images_not_here(d, m->name, &err);
        http_respond_problem(req, &err);
        return;
    }
    if (!(resp = MHD_create_response_from_fd64(size, fd))) {
        close(fd);
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    http_respond_mhd(req, 200, resp);
}

void route_image_delete(struct vmmd_daemon *d, struct http_request *req,
                        const struct route_match *m)
{
    struct api_error err;

    if (cluster_images_delete(d, req, m->name))
        return;
    if (storage_image_delete(d->storage, m->name, &err))
        http_respond_problem(req, &err);
    else
        http_respond_empty(req, 204);
}

static bool is_upload(struct http_request *req)
{
    const char *type = http_header(req, "Content-Type");
    static const char octet[] = "application/octet-stream";

    return type && strncasecmp(type, octet, sizeof(octet) - 1) == 0 &&
           (type[sizeof(octet) - 1] == 0 || type[sizeof(octet) - 1] == ';');
}

/*
 * An upload request's state. After a failure (the pool filled up) the rest
 * of the body is still read and dropped, so the client, which is still
 * sending, reads the answer instead of a reset connection.
 */
struct upload_req {
    struct storage_upload *u; /* NULL once finished or failed */
    bool failed;
    struct api_error err;
};

/* The request ended (answered, or the client went away): an unfinished upload leaves nothing. */
static void upload_gone(void *stream)
{
    struct upload_req *ur = stream;

    storage_upload_abort(ur->u);
    free(ur);
}

static void upload_sink(struct http_request *req, const char *data, size_t len)
{
    struct upload_req *ur = req->stream;

    if (ur->failed || storage_upload_write(ur->u, data, len, &ur->err) == 0)
        return;
    storage_upload_abort(ur->u);
    ur->u = NULL;
    ur->failed = true;
}

void route_images_admit(struct vmmd_daemon *d, struct http_request *req,
                        const struct route_match *m)
{
    struct api_image_def def;
    struct api_error err;
    struct upload_req *ur;

    (void)m;
    if (!is_upload(req))
        return; /* a JSON import: collected and parsed as usual */
    if (!(ur = calloc(1, sizeof(*ur)))) {
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        return;
    }
    if (api_parse_image_upload(http_query(req, "name"), http_query(req, "format"),
                               http_query(req, "pool"), &def, &err) ||
        cluster_images_check_name(d, def.name, &err) ||
        !(ur->u =
              storage_upload_begin(d->storage, &def, http_header(req, "Content-Length"), &err))) {
        free(ur);
        http_respond_problem(req, &err);
        return;
    }
    req->stream = ur;
    req->stream_done = upload_gone;
    req->body_sink = upload_sink;
}

static void respond_image(struct http_request *req, unsigned status, json_t *image)
{
    char location[96];

    snprintf(location, sizeof(location), "/v1/images/%s",
             json_string_value(json_object_get(image, "name")));
    http_respond_json(req, status, image);
    http_add_header(req, "Location", location);
}

void route_images_create(struct vmmd_daemon *d, struct http_request *req,
                         const struct route_match *m)
{
    struct api_image_def def;
    struct api_error err;
    json_t *image = NULL;
    unsigned status = 202;

    (void)m;
    if (req->body_sink) {
        struct upload_req *ur = req->stream;
        struct storage_upload *u = ur->u;

        ur->u = NULL; /* finish frees it, whatever the outcome */
        if (ur->failed)
            http_respond_problem(req, &ur->err);
        else if (storage_upload_finish(u, &status, &image, &err) || !image)
            http_respond_problem(req, &err);
        else
            respond_image(req, status, image);
        return;
    }
    if (api_parse_image_import(req->body, req->body_len, storage_import_limits(d->storage), &def,
                               &err) ||
        cluster_images_check_name(d, def.name, &err) ||
        storage_image_import(d->storage, &def, &image, &err) || !image)
        http_respond_problem(req, &err);
    else
        respond_image(req, 202, image);
    api_image_def_free(&def);
}

void route_volumes_list(struct vmmd_daemon *d, struct http_request *req,
                        const struct route_match *m)
{
    struct api_error err;

    (void)m;
    routes_respond(req, 200, storage_volumes_json(d->storage, NULL, &err), &err);
}

void route_volume_get(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    struct api_error err;

    routes_respond(req, 200, storage_volumes_json(d->storage, m->name, &err), &err);
}

static void volume_made(void *ctx, unsigned status, json_t *body, const struct api_error *err)
{
    struct http_request *req = ctx;
    char location[96];

    routes_respond(req, status, body, err);
    if (body) {
        snprintf(location, sizeof(location), "/v1/volumes/%s",
                 json_string_value(json_object_get(body, "name")));
        http_add_header(req, "Location", location);
    }
}

void route_volumes_create(struct vmmd_daemon *d, struct http_request *req,
                          const struct route_match *m)
{
    struct api_volume_def def;
    struct api_error err;

    (void)m;
    if (api_parse_volume_create(req->body, req->body_len, &def, &err) ||
        cluster_images_volume_create(d, &def, volume_made, req, &err))
        http_respond_problem(req, &err);
    else
        http_suspend(req); /* the copy runs on the thread pool */
}

void route_volume_patch(struct vmmd_daemon *d, struct http_request *req,
                        const struct route_match *m)
{
    struct api_error err;
    uint64_t size_mib;
    json_t *out = NULL;

    if (api_parse_volume_patch(req->body, req->body_len, &size_mib, &err) ||
        storage_volume_resize(d->storage, m->name, size_mib, &out, &err))
        http_respond_problem(req, &err);
    else
        http_respond_json(req, 200, out);
}

void route_volume_delete(struct vmmd_daemon *d, struct http_request *req,
                         const struct route_match *m)
{
    struct api_error err;

    if (storage_volume_delete(d->storage, m->name, &err))
        http_respond_problem(req, &err);
    else
        http_respond_empty(req, 204);
}
