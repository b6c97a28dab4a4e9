/*
 * The route table and dispatch. A path that matches no template is 404; a
 * path that matches with another method is 405 with an Allow header. The
 * same table prints with `vmmd routes`, which the OpenAPI test compares
 * against api/openapi.json.
 *
 * On TCP each route says how a client proves it holds the token: the
 * Authorization header (the API), or also ?token= for the two routes a
 * browser opens without being able to set headers (EventSource and
 * WebSocket), or not at all for the dashboard's static files, which hold
 * nothing secret and must load before the login. Whatever a route says,
 * a method that changes state (anything but GET and HEAD) needs the header
 * on TCP: a page on another site can make an operator's browser send a
 * form POST, never an Authorization header, and a token in a URL is a GET.
 *
 * Before any of that, on every listener, a request whose Origin header is
 * neither the daemon's own (the listener's scheme and the Host header) nor
 * one of --allowed-origin is refused with 403: a browser sends Origin with
 * every WebSocket handshake and every cross-origin request, so a page on
 * another site cannot open the console or the event stream with a token it
 * got hold of, nor read a 401 to learn which routes exist. Clients that send
 * no Origin (curl, vmctl) are not browsers and pass. The Unix socket is
 * checked too, with either scheme: a browser reaches it only through a
 * proxy, which passes Origin on.
 */
#include "routes.h"
#include "access.h"
#include "cluster.h"
#include "cluster_forward.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum route_auth {
    AUTH_HEADER,          /* Authorization: Bearer <token> */
    AUTH_HEADER_OR_QUERY, /* that, or ?token=<token> */
    AUTH_NONE,
};

static const struct route {
    const char *method;
    const char *path;
    route_fn fn;
    enum route_auth auth;
} routes[] = {
    {"GET", "/v1/host", route_host_get, AUTH_HEADER},
    {"GET", "/v1/vms", route_vms_list, AUTH_HEADER},
    {"POST", "/v1/vms", route_vms_create, AUTH_HEADER},
    {"GET", "/v1/vms/{id}", route_vm_get, AUTH_HEADER},
    {"PATCH", "/v1/vms/{id}", route_vm_patch, AUTH_HEADER},
    {"DELETE", "/v1/vms/{id}", route_vm_delete, AUTH_HEADER},
    {"POST", "/v1/vms/{id}/start", route_vm_start, AUTH_HEADER},
    {"POST", "/v1/vms/{id}/stop", route_vm_stop, AUTH_HEADER},
    {"POST", "/v1/vms/{id}/shutdown", route_vm_shutdown, AUTH_HEADER},
    {"POST", "/v1/vms/{id}/reboot", route_vm_reboot, AUTH_HEADER},
    {"POST", "/v1/vms/{id}/pause", route_vm_pause, AUTH_HEADER},
    {"POST", "/v1/vms/{id}/resume", route_vm_resume, AUTH_HEADER},
    {"GET", "/v1/vms/{id}/console", route_vm_console, AUTH_HEADER_OR_QUERY},
    {"GET", "/v1/vms/{id}/stats", route_vm_stats, AUTH_HEADER},
    {"POST", "/v1/vms/{id}/snapshot", route_vm_snapshot, AUTH_HEADER},
    {"GET", "/v1/vms/{id}/snapshots", route_vm_snapshots_list, AUTH_HEADER},
    {"GET", "/v1/vms/{id}/snapshots/{name}", route_vm_snapshot_get, AUTH_HEADER},
    {"DELETE", "/v1/vms/{id}/snapshots/{name}", route_vm_snapshot_delete, AUTH_HEADER},
    {"POST", "/v1/vms/{id}/restore", route_vm_restore, AUTH_HEADER},
    {"POST", "/v1/vms/{id}/migrate", route_vm_migrate, AUTH_HEADER},
    {"GET", "/v1/vms/{id}/migration", route_vm_migration, AUTH_HEADER},
    {"POST", "/v1/migrations", route_migrations_accept, AUTH_HEADER},
    {"GET", "/v1/networks", route_networks_list, AUTH_HEADER},
    {"POST", "/v1/networks", route_networks_create, AUTH_HEADER},
    {"GET", "/v1/networks/{name}", route_network_get, AUTH_HEADER},
    {"PATCH", "/v1/networks/{name}", route_network_patch, AUTH_HEADER},
    {"DELETE", "/v1/networks/{name}", route_network_delete, AUTH_HEADER},
    {"GET", "/v1/networks/{name}/leases", route_network_leases, AUTH_HEADER},
    {"GET", "/v1/networks/{name}/forwards", route_network_forwards_list, AUTH_HEADER},
    {"POST", "/v1/networks/{name}/forwards", route_network_forwards_create, AUTH_HEADER},
    {"DELETE", "/v1/networks/{name}/forwards/{id}", route_network_forward_delete, AUTH_HEADER},
    {"GET", "/v1/events", route_events, AUTH_HEADER_OR_QUERY},
    {"GET", "/v1/storage", route_storage_get, AUTH_HEADER},
    {"GET", "/v1/images", route_images_list, AUTH_HEADER},
    {"POST", "/v1/images", route_images_create, AUTH_HEADER},
    {"GET", "/v1/images/{name}", route_image_get, AUTH_HEADER},
    {"GET", "/v1/images/{name}/content", route_image_content, AUTH_HEADER},
    {"DELETE", "/v1/images/{name}", route_image_delete, AUTH_HEADER},
    {"GET", "/v1/volumes", route_volumes_list, AUTH_HEADER},
    {"POST", "/v1/volumes", route_volumes_create, AUTH_HEADER},
    {"GET", "/v1/volumes/{name}", route_volume_get, AUTH_HEADER},
    {"PATCH", "/v1/volumes/{name}", route_volume_patch, AUTH_HEADER},
    {"DELETE", "/v1/volumes/{name}", route_volume_delete, AUTH_HEADER},
    {"GET", "/v1/cluster", route_cluster_get, AUTH_HEADER},
    {"DELETE", "/v1/cluster/members/{name}", route_cluster_member_delete, AUTH_HEADER},
    {"POST", "/v1/cluster/join-tokens", route_cluster_join_token, AUTH_HEADER},
    {"POST", "/v1/cluster/members/{name}/evacuate", route_cluster_evacuate, AUTH_HEADER},
    {"GET", "/metrics", route_metrics, AUTH_HEADER},
    {"GET", "/v1/openapi.json", route_openapi, AUTH_HEADER},
    {"GET", "/", route_dashboard_index, AUTH_NONE},
    {"GET", "/assets/{file}", route_dashboard_asset, AUTH_NONE},
};

#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* The routes that see the headers before the body arrives (an upload sets up its sink). */
static const struct {
    route_fn fn, admit;
} admit_hooks[] = {{route_images_create, route_images_admit}};

/* Captures one path segment into out; false if it is empty or too long. */
static bool capture(const char **path, char *out, size_t size)
{
    size_t n = strcspn(*path, "/");

    if (n == 0 || n >= size)
        return false;
    memcpy(out, *path, n);
    out[n] = 0;
    *path += n;
    return true;
}

/* Matches one template against a path, capturing {id}, {name} or {file}. */
static bool match(const char *tmpl, const char *path, struct route_match *m)
{
    while (*tmpl && *path) {
        if (strncmp(tmpl, "{id}", 4) == 0) {
            if (!capture(&path, m->id, sizeof(m->id)))
                return false;
            tmpl += 4;
            continue;
        }
        if (strncmp(tmpl, "{name}", 6) == 0) {
            if (!capture(&path, m->name, sizeof(m->name)))
                return false;
            tmpl += 6;
            continue;
        }
        if (strncmp(tmpl, "{file}", 6) == 0) {
            if (!capture(&path, m->file, sizeof(m->file)))
                return false;
            tmpl += 6;
            continue;
        }
        if (*tmpl++ != *path++)
            return false;
    }
    return *tmpl == 0 && *path == 0;
}

static bool changes_state(const struct http_request *req)
{
    return strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0;
}

static bool authorized(struct http_request *req, const struct route *r)
{
    if (req->bearer_ok)
        return true;
    if (changes_state(req))
        return false;
    if (r && r->auth == AUTH_NONE)
        return true;
    return r && r->auth == AUTH_HEADER_OR_QUERY && http_query(req, "token") &&
           http_token_matches(req, http_query(req, "token"));
}

/* The route for the request's method and path, or NULL; *any is one for its path with
 * another method, whose methods are listed in allow. */
static const struct route *lookup(const struct http_request *req, struct route_match *m,
                                  const struct route **any, char allow[64])
{
    *any = NULL;
    allow[0] = 0;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!match(routes[i].path, req->url, m))
            continue;
        *any = &routes[i];
        if (strcmp(routes[i].method, req->method) == 0)
            return &routes[i];
        snprintf(allow + strlen(allow), 64 - strlen(allow), "%s%s", allow[0] ? ", " : "",
                 routes[i].method);
    }
    return NULL;
}

static bool refuse_if_stopping(struct vmmd_daemon *d, struct http_request *req)
{
    /* A kept-alive connection may still ask: the workers are no longer ours. */
    if (d->stopping)
        http_respond_error(req, API_ERR_UNAVAILABLE, "vmmd is shutting down");
    return d->stopping;
}

static bool refuse_foreign_origin(struct vmmd_daemon *d, struct http_request *req)
{
    static const enum access_listener kinds[] = {
        [HTTP_LISTENER_UNIX] = ACCESS_UNIX,
        [HTTP_LISTENER_TCP] = ACCESS_TCP_PLAIN,
        [HTTP_LISTENER_TLS] = ACCESS_TCP_TLS,
    };
    const char *origin = http_header(req, "Origin");

    if (access_origin_allowed(origin, http_header(req, "Host"), kinds[http_listener_of(req)],
                              &d->cfg->allowed_origins))
        return false;
    http_respond_error(req, API_ERR_FORBIDDEN,
                       "Origin %.200s is not this daemon's own origin nor in --allowed-origin",
                       origin);
    return true;
}

/* With the headers, before the body: everything that is answered without it. */
void vmmd_admit(struct vmmd_daemon *d, struct http_request *req)
{
    struct route_match m = {.id = ""};
    const struct route *found, *any;
    char allow[64];

    if (refuse_if_stopping(d, req) || refuse_foreign_origin(d, req))
        return;
    found = lookup(req, &m, &any, allow);
    if (found) {
        req->route = found->path;
        req->route_entry = found;
    }
    /* Unknown paths need the token too: without it nothing says which routes exist. */
    if (!authorized(req, found ? found : any)) {
        http_respond_error(req, API_ERR_UNAUTHORIZED, "%s",
                           changes_state(req)
                               ? "a request that changes state needs Authorization: Bearer "
                                 "<token> (never ?token=)"
                           : found && found->auth == AUTH_HEADER_OR_QUERY
                               ? "this endpoint needs Authorization: Bearer <token> or ?token="
                               : "this endpoint needs Authorization: Bearer <token>");
        http_add_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"vmmd\"");
        return;
    }
    if (found) {
        for (size_t i = 0; i < sizeof(admit_hooks) / sizeof(admit_hooks[0]); i++)
            if (admit_hooks[i].fn == found->fn)
                admit_hooks[i].admit(d, req, &m);
        return;
    }
    if (any) {
        http_respond_error(req, API_ERR_METHOD_NOT_ALLOWED, "%s %s: allowed methods are %s",
                           req->method, req->url, allow);
        http_add_header(req, "Allow", allow);
        return;
    }
    http_respond_error(req, API_ERR_NOT_FOUND, "no such route: %s %s", req->method, req->url);
}

/* A request for another member's VM goes there (once: a forwarded one is answered here). */
static bool forward_to_owner(struct vmmd_daemon *d, struct http_request *req,
                             const struct route_match *m)
{
    struct db_vm vm = {0};
    json_t *remote;
    const char *member;
    char owner[DB_NAME_MAX + 1];

    if (cluster_forwarded(req) || db_vm_get(d->db, m->id, &vm) != -ENOENT) {
        db_vm_clear(&vm);
        return false;
    }
    remote = cluster_remote_vm(d->cluster, m->id);
    member = json_string_value(json_object_get(remote, "member"));
    if (!member) {
        json_decref(remote);
        return false;
    }
    snprintf(owner, sizeof(owner), "%s", member);
    json_decref(remote);
    if (http_header(req, "Upgrade")) /* a WebSocket cannot be relayed by a request */
        http_respond_error(req, API_ERR_CONFLICT,
                           "VM '%s' lives on member %s: open its console there", m->id, owner);
    else
        cluster_forward(d, req, owner, req->url, req->body, req->body_len);
    return true;
}

/* With the whole body, for a request vmmd_admit let through to its route. */
void vmmd_dispatch(struct vmmd_daemon *d, struct http_request *req)
{
    const struct route *r = req->route_entry;
    struct route_match m = {.id = ""};

    const char *detail;

    if (refuse_if_stopping(d, req) || !r || !match(r->path, req->url, &m))
        return;
    /* Without etcd nothing agreed can change: reads go on from the last known state. */
    if (d->cluster && changes_state(req) && cluster_read_only(d->cluster, &detail)) {
        http_respond_error(req, API_ERR_UNAVAILABLE,
                           "the cluster is read-only: %s; writes are refused until etcd "
                           "answers with a quorum again",
                           detail);
        return;
    }
    if (d->cluster && strncmp(r->path, "/v1/vms/{id}", 12) == 0 && forward_to_owner(d, req, &m))
        return;
    r->fn(d, req, &m);
}

void vmmd_print_routes(void)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        printf("%s %s\n", routes[i].method, routes[i].path);
}

void routes_respond_store_error(struct vmmd_daemon *d, struct http_request *req, int rc,
                                const char *what)
{
    enum api_error_kind kind;

    switch (rc) {
    case -ENOSPC:
        kind = API_ERR_INSUFFICIENT_STORAGE;
        break;
    case -EIO:
    case -EROFS:
    case -EBUSY:
        kind = API_ERR_UNAVAILABLE;
        break;
    case -ENOENT:
        kind = API_ERR_NOT_FOUND;
        break;
    default:
        kind = API_ERR_INTERNAL;
        break;
    }
    /* The transaction was rolled back: nothing of the change, nor its event, was kept. */
    http_respond_error(req, kind, "%s: the state store failed (%s: %s); nothing was changed",
                       what, strerror(-rc), db_last_error(d->db));
}

int routes_load_vm(struct vmmd_daemon *d, struct http_request *req, const char *id,
                   struct db_vm *vm)
{
    int rc = db_vm_get(d->db, id, vm);
    json_t *remote = rc == -ENOENT && d->cluster ? cluster_remote_vm(d->cluster, id) : NULL;

    if (remote && strcmp(req->method, "GET") == 0 && req->route &&
        strcmp(req->route, "/v1/vms/{id}") == 0) {
        http_respond_json(req, 200, remote);
    } else if (remote) {
        const char *member = json_string_value(json_object_get(remote, "member"));
        http_respond_error(req, API_ERR_CONFLICT,
                           "VM '%s' lives on member %s: a request forwarded to this member "
                           "is not forwarded again",
                           id, member ? member : "?");
        json_decref(remote);
    } else if (rc == -ENOENT)
        http_respond_error(req, API_ERR_NOT_FOUND, "no VM with id or name '%s'", id);
    else if (rc)
        routes_respond_store_error(d, req, rc, "read");
    return rc;
}

void route_openapi(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    (void)d;
    (void)m;
    http_respond_bytes(req, 200, "application/json", api_openapi_json, strlen(api_openapi_json));
}

void routes_respond(struct http_request *req, unsigned status, json_t *body,
                    const struct api_error *err)
{
    if (body)
        http_respond_json(req, status, body);
    else
        http_respond_problem(req, err);
}
