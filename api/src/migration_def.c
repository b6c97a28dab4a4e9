/*
 * Live migration requests: POST /v1/vms/{id}/migrate (the source's user) and
 * POST /v1/migrations (the source daemon, to the target).
 */
#include "api_internal.h"

#include <string.h>

int api_parse_migrate(const char *body, size_t len, struct api_migrate_req *out,
                      struct api_error *err)
{
    static const char *const keys[] = {"target",    "token",    "max_downtime_ms",
                                       "timeout_s", "insecure", NULL};
    json_t *root, *v;
    const char *bad, *target, *token;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    out->max_downtime_ms = API_MIGRATE_DEFAULT_DOWNTIME_MS;
    out->timeout_s = API_MIGRATE_DEFAULT_TIMEOUT_S;
    if (api__parse_object(body, len, &root, err))
        return -1;
    target = json_string_value(json_object_get(root, "target"));
    token = json_string_value(json_object_get(root, "token"));
    if ((bad = api__unknown_key(root, keys))) {
        api_fail(err, API_ERR_BAD_REQUEST, "%.64s: unknown field", bad);
    } else if (!target) {
        api_fail(err, API_ERR_UNPROCESSABLE, "target: is required (a string)");
    } else if (strlen(target) >= sizeof(out->target) ||
               !(strncmp(target, "unix:/", 6) == 0 || strncmp(target, "http://", 7) == 0 ||
                 strncmp(target, "https://", 8) == 0) ||
               strpbrk(target, " \t\r\n")) {
        api_fail(err, API_ERR_UNPROCESSABLE,
                 "target: must be unix:/path/to/vmmd.sock, http://host:port or "
                 "https://host:port (another vmmd)");
    } else if ((v = json_object_get(root, "token")) &&
               (!token || strlen(token) >= sizeof(out->token) || strpbrk(token, " \t\r\n"))) {
        api_fail(err, API_ERR_UNPROCESSABLE, "token: must be the target's API token");
    } else if (!(v = json_object_get(root, "max_downtime_ms")) ||
               !api__get_uint(v, "max_downtime_ms", 1, 60000, &out->max_downtime_ms, err)) {
        /* Each optional field in turn; the first bad one has filled err. */
        if ((!(v = json_object_get(root, "timeout_s")) ||
             !api__get_uint(v, "timeout_s", 1, 3600, &out->timeout_s, err)) &&
            (!(v = json_object_get(root, "insecure")) ||
             !api__get_bool(v, "insecure", &out->insecure, err))) {
            strcpy(out->target, target);
            if (token)
                strcpy(out->token, token);
            ret = 0;
        }
    }
    json_decref(root);
    return ret;
}

int api_parse_incoming(const char *body, size_t len, json_t **vm, uint64_t *timeout_s,
                       struct api_error *err)
{
    static const char *const keys[] = {"vm", "timeout_s", NULL};
    json_t *root, *v;
    const char *bad;
    int ret = -1;

    *vm = NULL;
    *timeout_s = API_MIGRATE_DEFAULT_TIMEOUT_S;
    if (api__parse_object(body, len, &root, err))
        return -1;
    if ((bad = api__unknown_key(root, keys)))
        api_fail(err, API_ERR_BAD_REQUEST, "%.64s: unknown field", bad);
    else if (!json_is_object(json_object_get(root, "vm")))
        api_fail(err, API_ERR_UNPROCESSABLE, "vm: is required (the VM as its daemon shows it)");
    else if ((v = json_object_get(root, "timeout_s")) &&
             api__get_uint(v, "timeout_s", 1, 3600, timeout_s, err))
        ;
    else {
        *vm = json_incref(json_object_get(root, "vm"));
        ret = 0;
    }
    json_decref(root);
    return ret;
}
