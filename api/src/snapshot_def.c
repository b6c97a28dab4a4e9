/*
 * Snapshot requests: POST /v1/vms/{id}/snapshot ({"name","resume"}, both
 * optional), POST /v1/vms/{id}/restore ({"snapshot"}) and the clone form of
 * POST /v1/vms ({"name","from_snapshot":"vm/snapshot","autostart","disks"}).
 */
#include "api_internal.h"

#include <string.h>

int api_parse_snapshot_create(const char *body, size_t len, struct api_snapshot_req *out,
                              struct api_error *err)
{
    static const char *const keys[] = {"name", "resume", NULL};
    json_t *root, *v;
    const char *bad;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    out->resume = true;
    if (api__body_blank(body, len))
        return 0;
    if (api__parse_object(body, len, &root, err))
        return -1;
    if ((bad = api__unknown_key(root, keys))) {
        api_fail(err, API_ERR_BAD_REQUEST, "%.64s: unknown field (name and resume are)", bad);
    } else if (!(v = json_object_get(root, "resume")) ||
               !api__get_bool(v, "resume", &out->resume, err)) {
        v = json_object_get(root, "name");
        if (!v)
            ret = 0;
        else if (!json_is_string(v))
            api_fail(err, API_ERR_UNPROCESSABLE, "name: must be a string");
        else if (!api__get_name("name", json_string_value(v), out->name, err))
            ret = 0;
    }
    json_decref(root);
    return ret;
}

int api_parse_restore(const char *body, size_t len, char snapshot[DB_NAME_MAX + 1],
                      struct api_error *err)
{
    static const char *const keys[] = {"snapshot", NULL};
    json_t *root, *v;
    const char *bad;
    int ret = -1;

    if (api__parse_object(body, len, &root, err))
        return -1;
    if ((bad = api__unknown_key(root, keys)))
        api_fail(err, API_ERR_BAD_REQUEST, "%.64s: unknown field (only snapshot is)", bad);
    else if ((v = json_object_get(root, "snapshot")) && !json_is_string(v))
        api_fail(err, API_ERR_UNPROCESSABLE, "snapshot: must be a string");
    else
        ret = api__get_name("snapshot", json_string_value(v), snapshot, err);
    json_decref(root);
    return ret;
}

bool api_body_is_clone(const char *body, size_t len)
{
    json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, NULL);
    bool clone = json_is_object(root) && json_object_get(root, "from_snapshot");

    json_decref(root);
    return clone;
}

int api_parse_clone(const char *body, size_t len, struct api_clone_req *out, struct api_error *err)
{
    static const char *const keys[] = {"name", "from_snapshot", "autostart", "disks", NULL};
    json_t *root, *v;
    const char *bad, *from, *slash;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (api__parse_object(body, len, &root, err))
        return -1;
    if ((bad = api__unknown_key(root, keys))) {
        api_fail(err, API_ERR_BAD_REQUEST,
                 "%.64s: unknown field (a clone takes name, from_snapshot, autostart and disks; "
                 "the rest comes from the snapshot)",
                 bad);
        goto out;
    }
    v = json_object_get(root, "name");
    if (api__get_name("name", json_string_value(v), out->name, err))
        goto out;
    from = json_string_value(json_object_get(root, "from_snapshot"));
    slash = from ? strchr(from, '/') : NULL;
    if (!slash || (size_t)(slash - from) > DB_NAME_MAX || slash == from) {
        api_fail(err, API_ERR_UNPROCESSABLE,
                 "from_snapshot: must be \"<vm>/<snapshot>\", the VM by name or id");
        goto out;
    }
    memcpy(out->vm, from, (size_t)(slash - from));
    out->vm[slash - from] = 0;
    if (api__get_name("from_snapshot", slash + 1, out->snapshot, err))
        goto out;
    if ((v = json_object_get(root, "autostart"))) {
        if (api__get_bool(v, "autostart", &out->autostart, err))
            goto out;
        out->autostart_set = true;
    }
    if ((v = json_object_get(root, "disks"))) {
        if (!json_is_array(v)) {
            api_fail(err, API_ERR_UNPROCESSABLE, "disks: must be an array");
            goto out;
        }
        out->disks = json_incref(v);
    }
    ret = 0;
out:
    json_decref(root);
    return ret;
}

void api_clone_req_free(struct api_clone_req *req)
{
    json_decref(req->disks);
    req->disks = NULL;
}
