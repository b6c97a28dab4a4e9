/*
 * /v1/networks: managed networks, their leases and port forwards (networks.c does the work).
 * In a cluster the networks themselves are the cluster's (cluster_networks.c); leases and
 * forwards stay this member's, as they are things of its host.
 */
#include "routes.h"
#include "cluster_networks.h"
#include "networks.h"

#include <stdio.h>
#include <stdlib.h>

void route_networks_list(struct vmmd_daemon *d, struct http_request *req,
                         const struct route_match *m)
{
    struct api_error err;

    (void)m;
    if (d->cluster)
        cluster_networks_list(d, req, NULL);
    else
        routes_respond(req, 200, networks_list_json(d->nets, NULL, &err), &err);
}

void route_network_get(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    struct api_error err;

    if (d->cluster)
        cluster_networks_list(d, req, m->name);
    else
        routes_respond(req, 200, networks_list_json(d->nets, m->name, &err), &err);
}

void route_networks_create(struct vmmd_daemon *d, struct http_request *req,
                           const struct route_match *m)
{
    struct api_network_def def;
    struct db_network net;
    struct api_error err;
    char location[96];

    (void)m;
    if (api_parse_network_create(req->body, req->body_len, &def, &err)) {
        http_respond_problem(req, &err);
        return;
    }
    if (d->cluster) {
        cluster_networks_create(d, req, &def);
        return;
    }
    if (networks_create_network(d->nets, &def, &net, &err)) {
        http_respond_problem(req, &err);
        return;
    }
    routes_respond(req, 201, networks_list_json(d->nets, net.name, &err), &err);
    snprintf(location, sizeof(location), "/v1/networks/%s", net.name);
    http_add_header(req, "Location", location);
}

void route_network_patch(struct vmmd_daemon *d, struct http_request *req,
                         const struct route_match *m)
{
    struct api_network_def def;
    struct api_error err;

    if (api_parse_network_patch(req->body, req->body_len, &def, &err)) {
        http_respond_problem(req, &err);
        return;
    }
    if (d->cluster) {
        cluster_networks_patch(d, req, m->name, &def);
        return;
    }
    if (networks_update(d->nets, m->name, &def, &err)) {
        http_respond_problem(req, &err);
        return;
    }
    routes_respond(req, 200, networks_list_json(d->nets, m->name, &err), &err);
}

void route_network_delete(struct vmmd_daemon *d, struct http_request *req,
                          const struct route_match *m)
{
    struct api_error err;

    if (d->cluster)
        cluster_networks_delete(d, req, m->name);
    else if (networks_delete(d->nets, m->name, &err))
        http_respond_problem(req, &err);
    else
        http_respond_empty(req, 204);
}

void route_network_leases(struct vmmd_daemon *d, struct http_request *req,
                          const struct route_match *m)
{
    struct api_error err;

    if (cluster_networks_elsewhere(d, req, m->name))
        return;
    routes_respond(req, 200, networks_leases_json(d->nets, m->name, &err), &err);
}

void route_network_forwards_list(struct vmmd_daemon *d, struct http_request *req,
                                 const struct route_match *m)
{
    struct api_error err;

    if (cluster_networks_elsewhere(d, req, m->name))
        return;
    routes_respond(req, 200, networks_forwards_json(d->nets, m->name, 0, &err), &err);
}

void route_network_forwards_create(struct vmmd_daemon *d, struct http_request *req,
                                   const struct route_match *m)
{
    struct api_forward_def def;
    struct api_error err;
    char location[200];
    int64_t id = 0;

    if (cluster_networks_elsewhere(d, req, m->name))
        return;
    if (api_parse_forward_create(req->body, req->body_len, &def, &err) ||
        networks_forward_add(d->nets, m->name, &def, &id, &err)) {
        http_respond_problem(req, &err);
        return;
    }
    routes_respond(req, 201, networks_forwards_json(d->nets, m->name, id, &err), &err);
    snprintf(location, sizeof(location), "/v1/networks/%s/forwards/%lld", m->name, (long long)id);
    http_add_header(req, "Location", location);
}

void route_network_forward_delete(struct vmmd_daemon *d, struct http_request *req,
                                  const struct route_match *m)
{
    struct api_error err;
    char *end;
    long long id = strtoll(m->id, &end, 10);

    if (cluster_networks_elsewhere(d, req, m->name))
        return;
    if (*end || id <= 0) {
        http_respond_error(req, API_ERR_NOT_FOUND, "no forward '%s': ids are positive integers",
                           m->id);
        return;
    }
    if (networks_forward_delete(d->nets, m->name, id, &err))
        http_respond_problem(req, &err);
    else
        http_respond_empty(req, 204);
}
