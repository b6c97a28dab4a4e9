/*
 * The route table and dispatch. A path that matches no template is 404; a
 * path that matches with another method is 405 with an Allow header. The
 * same table prints with `vmmd routes`, which the OpenAPI test compares
 * against api/openapi.json.
 */
#include "routes.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct route {
    const char *method;
    const char *path;
    route_fn fn;
} routes[] = {
    {"GET", "/v1/host", route_host_get},
    {"GET", "/v1/vms", route_vms_list},
    {"POST", "/v1/vms", route_vms_create},
    {"GET", "/v1/vms/{id}", route_vm_get},
    {"PATCH", "/v1/vms/{id}", route_vm_patch},
    {"DELETE", "/v1/vms/{id}", route_vm_delete},
    {"POST", "/v1/vms/{id}/start", route_vm_start},
    {"POST", "/v1/vms/{id}/stop", route_vm_stop},
    {"POST", "/v1/vms/{id}/shutdown", route_vm_shutdown},
    {"POST", "/v1/vms/{id}/reboot", route_vm_reboot},
    {"POST", "/v1/vms/{id}/pause", route_vm_pause},
    {"POST", "/v1/vms/{id}/resume", route_vm_resume},
    {"GET", "/v1/vms/{id}/console", route_vm_console},
    {"GET", "/v1/vms/{id}/stats", route_vm_stats},
    {"GET", "/v1/events", route_events},
    {"GET", "/metrics", route_metrics},
    {"GET", "/v1/openapi.json", route_openapi},
};

#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* Matches one template against a path, capturing {id}. */
static bool match(const char *tmpl, const char *path, struct route_match *m)
{
    while (*tmpl && *path) {
        if (strncmp(tmpl, "{id}", 4) == 0) {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= sizeof(m->id))
                return false;
            memcpy(m->id, path, n);
            m->id[n] = 0;
            tmpl += 4;
            path += n;
            continue;
        }
        if (*tmpl++ != *path++)
            return false;
    }
    return *tmpl == 0 && *path == 0;
}

void vmmd_dispatch(struct vmmd_daemon *d, struct http_request *req)
{
    struct route_match m = {.id = ""};
    char allow[64] = "";
    bool path_known = false;

    if (d->stopping) {
        /* A kept-alive connection may still ask: the workers are no longer ours. */
        http_respond_error(req, API_ERR_UNAVAILABLE, "vmmd is shutting down");
        return;
    }

    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!match(routes[i].path, req->url, &m))
            continue;
        path_known = true;
        if (strcmp(routes[i].method, req->method) == 0) {
            req->route = routes[i].path;
            routes[i].fn(d, req, &m);
            return;
        }
        snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s", allow[0] ? ", " : "",
                 routes[i].method);
    }
    if (path_known) {
        http_respond_error(req, API_ERR_METHOD_NOT_ALLOWED, "%s %s: allowed methods are %s",
                           req->method, req->url, allow);
        http_add_header(req, "Allow", allow);
        return;
    }
    http_respond_error(req, API_ERR_NOT_FOUND, "no such route: %s %s", req->method, req->url);
}

void vmmd_print_routes(void)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        printf("%s %s\n", routes[i].method, routes[i].path);
}

int routes_load_vm(struct vmmd_daemon *d, struct http_request *req, const char *id,
                   struct db_vm *vm)
{
    int rc = db_vm_get(d->db, id, vm);

    if (rc == -ENOENT)
        http_respond_error(req, API_ERR_NOT_FOUND, "no VM with id or name '%s'", id);
    else if (rc)
        http_respond_error(req, API_ERR_INTERNAL, "store: %s", strerror(-rc));
    return rc;
}

void route_openapi(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    (void)d;
    (void)m;
    http_respond_bytes(req, 200, "application/json", api_openapi_json, strlen(api_openapi_json));
}
