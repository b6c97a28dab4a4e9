/*
 * GET /v1/cluster, DELETE /v1/cluster/members/{name} and
 * POST /v1/cluster/join-tokens (see cluster.h). A stand-alone daemon
 * answers GET with "enabled": false and the others with 404.
 */
#include "routes.h"
#include "cluster.h"
#include "cluster_forward.h"

#include <errno.h>
#include <string.h>

#define TOKEN_TTL_DEFAULT_S 3600
#define TOKEN_TTL_MIN_S     60
#define TOKEN_TTL_MAX_S     86400

static bool in_cluster(struct vmmd_daemon *d, struct http_request *req)
{
    if (!d->cluster)
        http_respond_error(req, API_ERR_NOT_FOUND,
                           "this vmmd is not in a cluster (start it with --cluster-etcd)");
    return d->cluster != NULL;
}

void route_cluster_get(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    (void)m;
    if (!d->cluster) {
        http_respond_json(req, 200,
                          json_pack("{s:b,s:n,s:n,s:b,s:n,s:n,s:[]}", "enabled", 0, "name",
                                    "member", "writable", 1, "detail", "lease_ttl_s", "members"));
        return;
    }
    http_respond_json(req, 200, cluster_status_json(d->cluster));
}

static void member_removed(void *arg, int rc, const char *detail)
{
    struct http_request *req = arg;

    if (rc == 0)
        http_respond_empty(req, 204);
    else
        http_respond_error(req, rc == -EBUSY ? API_ERR_CONFLICT : API_ERR_UNAVAILABLE, "%s",
                           detail);
}

void route_cluster_member_delete(struct vmmd_daemon *d, struct http_request *req,
                                 const struct route_match *m)
{
    int rc;

    if (!in_cluster(d, req))
        return;
    rc = cluster_remove_member(d->cluster, m->name, member_removed, req);
    if (rc == -ENOENT)
        http_respond_error(req, API_ERR_NOT_FOUND, "no member '%s' in this cluster", m->name);
    else if (rc == -EBUSY)
        http_respond_error(req, API_ERR_CONFLICT,
                           strcmp(m->name, cluster_member_name(d->cluster)) == 0
                               ? "member '%s' is this one: remove it from another member"
                               : "member '%s' is online: only an offline member can be removed "
                                 "(evacuate it and stop its vmmd first)",
                           m->name);
    else if (rc)
        http_respond_error(req, API_ERR_INTERNAL, "cannot ask etcd: %s", strerror(-rc));
    else
        http_suspend(req);
}

static void token_made(void *arg, int rc, const char *token, const char *detail)
{
    struct http_request *req = arg;

    if (rc)
        http_respond_error(req, API_ERR_UNAVAILABLE, "%s", detail);
    else
        http_respond_json(req, 201, json_pack("{s:s,s:s}", "token", token, "expires_at", detail));
}

void route_cluster_join_token(struct vmmd_daemon *d, struct http_request *req,
                              const struct route_match *m)
{
    json_int_t ttl = TOKEN_TTL_DEFAULT_S;
    json_t *body = NULL, *v;
    json_error_t jerr;
    const char *field;
    int rc;

    (void)m;
    if (!in_cluster(d, req))
        return;
    if (req->body_len) {
        body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(body)) {
            http_respond_error(req, API_ERR_BAD_REQUEST, "the body must be a JSON object: %s",
                               body ? "it is not one" : jerr.text);
            json_decref(body);
            return;
        }
        json_object_foreach(body, field, v)
        {
            if (strcmp(field, "ttl_s")) {
                http_respond_error(req, API_ERR_BAD_REQUEST, "%s: unknown field", field);
                json_decref(body);
                return;
            }
            if (!json_is_integer(v) || json_integer_value(v) < TOKEN_TTL_MIN_S ||
                json_integer_value(v) > TOKEN_TTL_MAX_S) {
                http_respond_error(req, API_ERR_BAD_REQUEST,
                                   "ttl_s: must be an integer from %d to %d (seconds)",
                                   TOKEN_TTL_MIN_S, TOKEN_TTL_MAX_S);
                json_decref(body);
                return;
            }
            ttl = json_integer_value(v);
        }
        json_decref(body);
    }
    rc = cluster_make_join_token(d->cluster, (unsigned)ttl, token_made, req);
    if (rc)
        http_respond_error(req, API_ERR_INTERNAL, "cannot ask etcd: %s", strerror(-rc));
    else
        http_suspend(req);
}

void route_cluster_evacuate(struct vmmd_daemon *d, struct http_request *req,
                            const struct route_match *m)
{
    json_t *status, *plan;
    bool known = false;
    char why[300];
    size_t i;
    json_t *member;
    int rc;

    if (!in_cluster(d, req))
        return;
    if (req->body_len && strspn(req->body, " \t\r\n") != req->body_len) {
        json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
        bool empty = json_is_object(body) && json_object_size(body) == 0;
        json_decref(body);
        if (!empty) {
            http_respond_error(req, API_ERR_BAD_REQUEST,
                               "body: no fields are taken (send {} or nothing)");
            return;
        }
    }
    status = cluster_status_json(d->cluster);
    json_array_foreach(json_object_get(status, "members"), i, member) known |=
        !strcmp(json_string_value(json_object_get(member, "name")) ?: "", m->name);
    json_decref(status);
    if (!known) {
        http_respond_error(req, API_ERR_NOT_FOUND, "no member '%s' in this cluster", m->name);
        return;
    }
    if (strcmp(m->name, cluster_member_name(d->cluster))) {
        if (!cluster_forwarded(req))
            cluster_forward(d, req, m->name, req->url, req->body, req->body_len);
        else
            http_respond_error(req, API_ERR_CONFLICT, "member '%s' is not this one", m->name);
        return;
    }
    rc = cluster_evacuate(d->cluster, &plan, why, sizeof(why));
    if (rc)
        http_respond_error(req, rc == -EBUSY || rc == -ENOSPC ? API_ERR_CONFLICT : API_ERR_INTERNAL,
                           "%s", why);
    else
        http_respond_json(req, 202, json_pack("{s:s,s:o}", "member", m->name, "vms", plan));
}
