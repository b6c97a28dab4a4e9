/*
 * Image and volume requests (POST /v1/images as JSON or an upload's query,
 * POST/PATCH /v1/volumes) into checked structs. As for VMs: unknown keys →
 * 400 first, then each field → 422 naming it. Whether a pool or an image
 * exists, or a name is taken, is the daemon's to say.
 */
#include "api_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const import_keys[] = {"name", "path", "format", "pool", NULL};
static const char *const volume_keys[] = {"name", "image", "size_mib", "pool", "readonly", NULL};
static const char *const format_names[] = {
    [API_IMAGE_AUTO] = "auto", [API_IMAGE_RAW] = "raw", [API_IMAGE_QCOW2] = "qcow2"};

const char *api_image_format_name(enum api_image_format f)
{
    return format_names[f];
}

static int get_format(const char *s, enum api_image_format *out, struct api_error *err)
{
    for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
        if (s && strcmp(s, format_names[i]) == 0) {
            *out = (enum api_image_format)i;
            return 0;
        }
    }
    return api_fail(err, API_ERR_UNPROCESSABLE, "format: must be auto, raw or qcow2");
}

/* A string member, "" when it is there but not a string (so the checks name it), NULL when absent.
 */
static const char *member(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);

    return v ? (json_is_string(v) ? json_string_value(v) : "") : NULL;
}

/* The checks an import and an upload share: name, format, pool. */
static int parse_common(const char *name, const char *format, const char *pool,
                        struct api_image_def *out, struct api_error *err)
{
    memset(out, 0, sizeof(*out));
    if (api__get_name("name", name, out->name, err))
        return -1;
    if (format && get_format(format, &out->format, err))
        return -1;
    if (pool && api__get_name("pool", pool, out->pool, err))
        return -1;
    return 0;
}

int api_parse_image_import(const char *body, size_t len, const struct api_limits *limits,
                           struct api_image_def *out, struct api_error *err)
{
    json_t *root;
    const char *bad, *path;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (api__parse_object(body, len, &root, err))
        return -1;
    if ((bad = api__unknown_key(root, import_keys))) {
        api_fail(err, API_ERR_BAD_REQUEST, "%.64s: unknown field", bad);
        goto out;
    }
    if (parse_common(member(root, "name"), member(root, "format"), member(root, "pool"), out, err))
        goto out;
    path = member(root, "path");
    if (!path || !path[0]) {
        api_fail(err, API_ERR_UNPROCESSABLE,
                 "path: is required (an image file under an import directory); to upload, "
                 "send the file as application/octet-stream with ?name=");
        goto out;
    }
    if (strlen(path) > DB_SOURCE_MAX) {
        api_fail(err, API_ERR_UNPROCESSABLE, "path: longer than %d bytes", DB_SOURCE_MAX);
        goto out;
    }
    ret = api__check_path("path", path, limits, false, &out->path, err);
out:
    json_decref(root);
    return ret;
}

int api_parse_image_upload(const char *name, const char *format, const char *pool,
                           struct api_image_def *out, struct api_error *err)
{
    return parse_common(name, format, pool, out, err);
}

void api_image_def_free(struct api_image_def *def)
{
    free(def->path);
    def->path = NULL;
}

int api_parse_volume_create(const char *body, size_t len, struct api_volume_def *out,
                            struct api_error *err)
{
    json_t *root, *v;
    const char *bad;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (api__parse_object(body, len, &root, err))
        return -1;
    if ((bad = api__unknown_key(root, volume_keys))) {
        api_fail(err, API_ERR_BAD_REQUEST, "%.64s: unknown field", bad);
        goto out;
    }
    if (api__get_name("name", member(root, "name"), out->name, err))
        goto out;
    if (member(root, "image") && api__get_name("image", member(root, "image"), out->image, err))
        goto out;
    if ((v = json_object_get(root, "size_mib")) &&
        api__get_uint(v, "size_mib", 1, API_VOLUME_MAX_MIB, &out->size_mib, err))
        goto out;
    if (!out->image[0] && !out->size_mib) {
        api_fail(err, API_ERR_UNPROCESSABLE,
                 "size_mib: is required for an empty volume (or give image to clone)");
        goto out;
    }
    if (member(root, "pool") && api__get_name("pool", member(root, "pool"), out->pool, err))
        goto out;
    if ((v = json_object_get(root, "readonly")) &&
        api__get_bool(v, "readonly", &out->readonly, err))
        goto out;
    ret = 0;
out:
    json_decref(root);
    return ret;
}

int api_parse_volume_patch(const char *body, size_t len, uint64_t *size_mib, struct api_error *err)
{
    static const char *const keys[] = {"size_mib", NULL};
    json_t *root, *v;
    const char *bad;
    int ret = -1;

    if (api__parse_object(body, len, &root, err))
        return -1;
    if ((bad = api__unknown_key(root, keys)))
        api_fail(err, API_ERR_BAD_REQUEST, "%.64s: unknown field (only size_mib can change)", bad);
    else if (!(v = json_object_get(root, "size_mib")))
        api_fail(err, API_ERR_UNPROCESSABLE, "size_mib: is required");
    else
        ret = api__get_uint(v, "size_mib", 1, API_VOLUME_MAX_MIB, size_mib, err);
    json_decref(root);
    return ret;
}
