/*
 * POST /v1/vms/{id}/shutdown: the only lifecycle action with a body. The
 * body is optional (curl -X POST with nothing is the common case); when
 * given, timeout_s says how long the guest gets to power off after the
 * ACPI/Ctrl-Alt-Del request before the daemon falls back to a hard stop.
 */
#include "api_internal.h"

#define SHUTDOWN_DEFAULT_TIMEOUT 30
#define SHUTDOWN_MAX_TIMEOUT     3600

int api_parse_shutdown(const char *body, size_t len, uint32_t *timeout_s, struct api_error *err)
{
    static const char *const keys[] = {"timeout_s", NULL};
    json_t *root, *v;
    const char *bad;

    *timeout_s = SHUTDOWN_DEFAULT_TIMEOUT;
    if (len <= API_BODY_MAX && api__body_blank(body, len))
        return 0;
    if (api__parse_object(body, len, &root, err))
        return -1;
    if ((bad = api__unknown_key(root, keys))) {
        api_fail(err, API_ERR_BAD_REQUEST, "%.64s: unknown field", bad);
        json_decref(root);
        return -1;
    }
    v = json_object_get(root, "timeout_s");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > SHUTDOWN_MAX_TIMEOUT) {
            api_fail(err, API_ERR_UNPROCESSABLE, "timeout_s: must be an integer from 1 to %d",
                     SHUTDOWN_MAX_TIMEOUT);
            json_decref(root);
            return -1;
        }
        *timeout_s = (uint32_t)json_integer_value(v);
    }
    json_decref(root);
    return 0;
}
