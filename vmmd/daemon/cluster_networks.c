/*
 * Managed networks as cluster objects (see cluster_networks.h). The member
 * that takes a POST, PATCH or DELETE writes the definition with a
 * transaction (absent for a create, its mod revision for a change), so two
 * members cannot both define a name or overwrite each other's change.
 *
 * Every member reads the definitions with the cluster's poll, once a second.
 * What this member wrote itself is kept in `written` until a poll is as new
 * as the write, so that it reads its own writes at once (a create answered
 * 201 and then listed, a change realised here before the next poll).
 *
 * Which local networks are realisations is kept in the store's settings
 * ("cluster_network/<name>"): a network that was here before the member
 * joined, or a default network that differs from the cluster's, is this
 * member's own and is never removed by the poll.
 */
#include "cluster_networks.h"
#include "cluster.h"
#include "daemon.h"
#include "etcd.h"
#include "log.h"
#include "networks.h"
#include "routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_MAX 256

struct cluster_networks {
    json_t *beats;   /* member -> its heartbeat, as of the last poll */
    json_t *written; /* name -> {"value": definition or null (deleted), "rev"} */
    json_t *stuck;   /* realisations the poll cannot follow (logged once, until it can) */
    int64_t seen;    /* the revision of what this member knows of the definitions */
};

/* A write to etcd for a request, answered when etcd answers. */
struct net_write {
    struct vmmd_daemon *d;
    struct http_request *req;
    char name[DB_NAME_MAX + 1];
    json_t *value; /* the new definition; NULL for a delete */
    struct api_network_def patch;
    unsigned status; /* 201 create, 200 patch, 204 delete */
};

static struct cluster_networks *state(struct vmmd_daemon *d)
{
    if (!d->cluster_nets && (d->cluster_nets = calloc(1, sizeof(*d->cluster_nets)))) {
        d->cluster_nets->written = json_object();
        d->cluster_nets->stuck = json_object();
    }
    return d->cluster_nets;
}

void cluster_networks_free(struct cluster_networks *cn)
{
    if (!cn)
        return;
    json_decref(cn->written);
    json_decref(cn->stuck);
    free(cn);
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- definitions ------------------------------------------------------------ */

/* Every definition (name -> value), this member's writes over the last poll's (a new object). */
static json_t *definitions(struct vmmd_daemon *d)
{
    json_t *out = json_object(), *o, *polled = cluster_objects(d->cluster, "networks");
    struct cluster_networks *cn = state(d);
    const char *name;

    json_object_foreach(polled, name, o) json_object_set(out, name, json_object_get(o, "value"));
    json_object_foreach(cn ? cn->written : NULL, name, o)
    {
        json_t *v = json_object_get(o, "value");
        if (json_is_object(v))
            json_object_set(out, name, v);
        else
            json_object_del(out, name);
    }
    return out;
}

/* The definition of name (borrowed) and its mod revision, or NULL. */
static json_t *definition(struct vmmd_daemon *d, const char *name, int64_t *rev)
{
    struct cluster_networks *cn = state(d);
    json_t *o = cn ? json_object_get(cn->written, name) : NULL;

    if (!o)
        o = json_object_get(cluster_objects(d->cluster, "networks"), name);
    if (rev)
        *rev = json_integer_value(json_object_get(o, "rev"));
    o = json_object_get(o, "value");
    return json_is_object(o) ? o : NULL;
}

bool cluster_networks_defines(struct vmmd_daemon *d, const char *name)
{
    return definition(d, name, NULL) != NULL;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* A definition as the network fields of the store (no bridge: that is per member). */
static void to_network(const json_t *v, struct db_network *net)
{
    memset(net, 0, sizeof(*net));
    snprintf(net->name, sizeof(net->name), "%s", str(v, "name"));
    snprintf(net->cidr, sizeof(net->cidr), "%s", str(v, "cidr"));
    net->nat = json_is_true(json_object_get(v, "nat"));
    net->dhcp = json_is_true(json_object_get(v, "dhcp"));
    snprintf(net->dns_domain, sizeof(net->dns_domain), "%s", str(v, "dns_domain"));
    net->mtu = (uint32_t)json_integer_value(json_object_get(v, "mtu"));
    net->created_at = json_integer_value(json_object_get(v, "created_ms"));
    net->updated_at = json_integer_value(json_object_get(v, "updated_ms"));
}

static json_t *to_definition(const struct db_network *net)
{
    return json_pack("{s:s,s:s,s:b,s:b,s:s,s:I,s:I,s:I}", "name", net->name, "cidr", net->cidr,
                     "nat", net->nat, "dhcp", net->dhcp, "dns_domain", net->dns_domain, "mtu",
                     (json_int_t)net->mtu, "created_ms", (json_int_t)net->created_at, "updated_ms",
                     (json_int_t)net->updated_at);
}

/* A definition checked as a create's body is: another member wrote it, and it is realised here
 * as it says. */
static int to_def(const json_t *v, struct api_network_def *def, struct api_error *err)
{
    json_t *body = json_copy((json_t *)v);
    char *text;
    int rc;

    json_object_del(body, "created_ms");
    json_object_del(body, "updated_ms");
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return api_fail(err, API_ERR_INTERNAL, "out of memory");
    rc = api_parse_network_create(text, strlen(text), def, err);
    free(text);
    if (!rc && !def->cidr[0])
        rc = api_fail(err, API_ERR_UNPROCESSABLE, "cidr: missing");
    return rc;
}

/* ---- realisations -------------------------------------------------------------- */

static void setting_key(const char *name, char out[KEY_MAX])
{
    snprintf(out, KEY_MAX, "cluster_network/%s", name);
}

static bool is_realisation(struct vmmd_daemon *d, const char *name)
{
    char k[KEY_MAX], v[16];

    setting_key(name, k);
    return db_setting_get(d->db, k, v, sizeof(v)) == 0 && strcmp(v, "realised") == 0;
}

static void mark_realisation(struct vmmd_daemon *d, const char *name, bool realised)
{
    char k[KEY_MAX];

    setting_key(name, k);
    if (db_setting_set(d->db, k, realised ? "realised" : ""))
        log_warn("network %s: cannot record whether it realises the cluster's: %s", name,
                 db_last_error(d->db));
}

int cluster_networks_realise(struct vmmd_daemon *d, const char *name, struct api_error *err)
{
    json_t *v = definition(d, name, NULL);
    struct api_network_def def;
    struct db_network net;
    struct api_error why;

    if (!v || !d->nets)
        return api_fail(err, API_ERR_UNPROCESSABLE, "no network named '%s'", name);
    if (to_def(v, &def, &why))
        return api_fail(err, API_ERR_CONFLICT,
                        "the cluster's definition of network '%s' is not valid (%s); delete it "
                        "and define it again",
                        name, why.detail);
    if (networks_create_network(d->nets, &def, &net, &why)) {
        /* Another member's realisation on this host, a host route: the definition stands. */
        return api_fail(err, why.kind,
                        "network '%s' of the cluster cannot be realised on member %s: %s", name,
                        cluster_member_name(d->cluster), why.detail);
    }
    mark_realisation(d, name, true);
    log_info("network %s of the cluster realised here (%s on %s)", name, net.cidr, net.bridge);
    vmmd_event(d, "network.realised", "",
               json_pack("{s:s,s:s,s:s,s:s}", "network", name, "member", cluster_member_name(d->cluster),
                   "cidr", net.cidr, "bridge", net.bridge));
    return 0;
}

bool cluster_networks_overlap(struct vmmd_daemon *d, const char *name, uint32_t net,
                              unsigned prefix, char *why, size_t len)
{
    json_t *all = definitions(d), *v;
    const char *other;
    bool hit = false;

    json_object_foreach(all, other, v)
    {
        uint32_t a;
        unsigned p, shorter;

        if ((name && strcmp(other, name) == 0) || api_ipv4_parse_cidr(str(v, "cidr"), &a, &p))
            continue;
        shorter = p < prefix ? p : prefix;
        if (((a ^ net) & api_ipv4_mask(shorter)) == 0) {
            snprintf(why, len, "overlaps the cluster's network '%s' (%s)", other, str(v, "cidr"));
            hit = true;
            break;
        }
    }
    json_decref(all);
    return hit;
}

/* The same network but for name, bridge and times. */
static bool same_network(const struct db_network *a, const struct db_network *b)
{
    return strcmp(a->cidr, b->cidr) == 0 && a->nat == b->nat && a->dhcp == b->dhcp &&
           a->mtu == b->mtu && strcmp(a->dns_domain, b->dns_domain) == 0;
}

/* The poll comes back every second: what cannot be followed is logged once, until it can. */
static void stuck(struct cluster_networks *cn, const char *name, const char *what,
                  const char *detail)
{
    if (cn && !json_object_get(cn->stuck, name)) {
        log_warn("network %s: %s: %s", name, what, detail);
        json_object_set_new(cn->stuck, name, json_true());
    }
}

/* The local realisation of name brought to its definition v (NULL: the definition went). */
static void follow(struct vmmd_daemon *d, const char *name, const json_t *v)
{
    struct cluster_networks *cn = state(d);
    struct db_network local, want;
    struct api_network_def def;
    struct api_error err;

    if (db_network_get(d->db, name, &local))
        return;
    if (v) {
        to_network(v, &want);
        if (same_network(&want, &local))
            goto done;
        /* Another cidr: deleted and defined again between two polls; the old one goes. */
        if (strcmp(want.cidr, local.cidr) == 0) {
            if (to_def(v, &def, &err) || networks_update(d->nets, name, &def, &err)) {
                stuck(cn, name, "the cluster's change is not applied here", err.detail);
                return;
            }
            log_info("network %s: the cluster's change applied", name);
            goto done;
        }
    }
    if (networks_delete(d->nets, name, &err)) {
        /* A VM defined here since the definition went (a race with the DELETE's check). */
        stuck(cn, name, "gone from the cluster but kept here", err.detail);
        return;
    }
    mark_realisation(d, name, false);
    log_info("network %s: its definition went from the cluster; realisation removed", name);
done:
    if (cn)
        json_object_del(cn->stuck, name);
}

void cluster_networks_poll(struct vmmd_daemon *d, int64_t revision)
{
    struct cluster_networks *cn = state(d);
    struct db_network *nets;
    size_t count;
    const char *name;
    json_t *o, *tmp;

    /* The polls while joining come before d->cluster is set: nothing to follow yet. */
    if (!cn || !d->cluster)
        return;
    if (revision > cn->seen)
        cn->seen = revision;
    /* The poll is as new as this member's writes: it tells from now on. */
    json_object_foreach_safe(cn->written, tmp, name, o)
    {
        if (json_integer_value(json_object_get(o, "rev")) <= revision)
            json_object_del(cn->written, name);
    }
    if (!d->nets || networks_unavailable(d->nets) || db_network_list(d->db, &nets, &count))
        return;
    for (size_t i = 0; i < count; i++)
        if (is_realisation(d, nets[i].name))
            follow(d, nets[i].name, definition(d, nets[i].name, NULL));
    free(nets);
}

/* ---- the default network ------------------------------------------------------- */

struct default_put {
    struct vmmd_daemon *d;
    struct db_network net;
};

static void default_put_done(void *arg, const struct etcd_reply *r)
{
    struct default_put *dp = arg;
    struct db_network theirs;
    json_t *v;

    if (r->rc == -ECANCELED) {
    } else if (r->rc) {
        log_warn("the default network: not published to the cluster (etcd: %s); it stays "
                 "this member's own",
                 r->error);
    } else if (r->succeeded) {
        mark_realisation(dp->d, dp->net.name, true);
        log_info("the default network (%s) is the cluster's default now", dp->net.cidr);
    } else if (r->nkvs && (v = json_loads(r->kvs[0].value, 0, NULL))) {
        to_network(v, &theirs);
        json_decref(v);
        if (same_network(&theirs, &dp->net)) {
            mark_realisation(dp->d, dp->net.name, true);
        } else {
            log_warn("the default network: the cluster's is %s, this member's %s; this member "
                     "keeps its own (VMs here on \"default\" use %s)",
                     theirs.cidr, dp->net.cidr, dp->net.cidr);
        }
    }
    free(dp);
}

/* A definition's JSON text (a new string; NULL when out of memory). */
static char *definition_text(const struct db_network *net)
{
    json_t *v = to_definition(net);
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;

    json_decref(v);
    return text;
}

void cluster_networks_publish_default(struct vmmd_daemon *d, const struct db_network *net)
{
    struct default_put *dp = calloc(1, sizeof(*dp));
    char k[KEY_MAX], *text = definition_text(net);

    cluster_key(d->cluster, k, sizeof(k), "networks", net->name);
    if (dp) {
        dp->d = d;
        dp->net = *net;
    }
    /* Put if absent; else read what is there, to compare. */
    if (!dp || !text ||
        etcd_txn(cluster_etcd(d->cluster), json_pack("[o]", etcd_cmp_absent(k)),
                 json_pack("[o]", etcd_op_put(k, text, 0)),
                 json_pack("[o]", etcd_op_range(k, false)), default_put_done, dp))
        free(dp);
    free(text);
}

/* ---- the routes ------------------------------------------------------------------ */

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The members that realised name, sorted: this one by its store, the others by their
 * heartbeats (so at most a heartbeat old). */
static json_t *members_of(struct vmmd_daemon *d, const char *name)
{
    struct db_network local;

    return cluster_members_listing(d->cluster, "networks", name,
                                   db_network_get(d->db, name, &local) == 0);
}

/*
 * One network as a member of the cluster shows it: its realisation here (what runs on this
 * host: bridge, dnsmasq, NICs, forwards) when there is one, else the definition in state
 * "defined"; with "members" either way. v: the definition (NULL for a network of this
 * member's own).
 */
static json_t *view(struct vmmd_daemon *d, const char *name, const json_t *v)
{
    struct api_error err;
    struct db_network net;
    json_t *o = NULL;

    if (d->nets && db_network_get(d->db, name, &net) == 0)
        o = networks_list_json(d->nets, name, &err);
    if (!o && v) {
        to_network(v, &net);
        if ((o = api_network_to_json(&net))) {
            json_object_set_new(o, "bridge", json_null());
            json_object_set_new(o, "state", json_string("defined"));
            json_object_set_new(o, "error", json_null());
            json_object_set_new(o, "dnsmasq_pid", json_null());
            json_object_set_new(o, "dnsmasq_restarts", json_integer(0));
            json_object_set_new(o, "nics", json_array());
            json_object_set_new(o, "forwards", json_integer(0));
        }
    }
    if (o)
        json_object_set_new(o, "members", members_of(d, name));
    return o;
}

void cluster_networks_list(struct vmmd_daemon *d, struct http_request *req, const char *name)
{
    json_t *defs = definitions(d), *all, *v, *arr;
    struct db_network *local = NULL;
    size_t n = 0, count = 0;
    const char **names;
    const char *key;

    if (name) {
        json_t *o = view(d, name, json_object_get(defs, name));
        if (o)
            http_respond_json(req, 200, o);
        else
            http_respond_error(req, API_ERR_NOT_FOUND, "no network named '%s'", name);
        json_decref(defs);
        return;
    }
    /* The cluster's networks, and this member's own (from before it joined), by name. */
    all = json_copy(defs);
    if (db_network_list(d->db, &local, &count) == 0)
        for (size_t i = 0; i < count; i++)
            if (!json_object_get(all, local[i].name))
                json_object_set_new(all, local[i].name, json_null());
    free(local);
    names = calloc(json_object_size(all) + 1, sizeof(*names));
    arr = json_array();
    if (!names || !arr) {
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        goto out;
    }
    json_object_foreach(all, key, v) names[n++] = key;
    qsort(names, n, sizeof(names[0]), by_string);
    for (size_t i = 0; i < n; i++) {
        v = json_object_get(all, names[i]);
        json_array_append_new(arr, view(d, names[i], json_is_object(v) ? v : NULL));
    }
    http_respond_json(req, 200, json_incref(arr));
out:
    json_decref(arr);
    free(names);
    json_decref(all);
    json_decref(defs);
}

/* VMs of the whole cluster with a NIC on name ("vm (member m)", comma-separated) into out. */
static void users(struct vmmd_daemon *d, const char *name, char *out, size_t size)
{
    json_t *remote = cluster_remote_vms(d->cluster), *vm, *nic;
    char here[1024] = "";
    size_t len = 0, i, k;

    out[0] = 0;
    if (d->nets)
        networks_attached_vms(d->nets, name, here, sizeof(here));
    if (here[0])
        len = (size_t)snprintf(out, size, "%s (member %s)", here, cluster_member_name(d->cluster));
    json_array_foreach(remote, i, vm)
    {
        json_array_foreach(json_object_get(vm, "nics"), k, nic)
        {
            if (strcmp(str(nic, "network"), name) == 0 && len < size) {
                len += (size_t)snprintf(out + len, size - len, "%s%s (member %s)", len ? ", " : "",
                                        str(vm, "name"), str(vm, "member"));
                break;
            }
        }
    }
    json_decref(remote);
}

static void write_done(void *arg, const struct etcd_reply *r)
{
    struct net_write *w = arg;
    struct vmmd_daemon *d = w->d;
    struct cluster_networks *cn = state(d);
    bool here = is_realisation(d, w->name) && d->nets;
    struct api_error err;
    char location[96];
    json_t *o;

    if (r->rc) {
        http_respond_error(w->req, API_ERR_UNAVAILABLE,
                           "the cluster is read-only: etcd %s; nothing was changed",
                           r->error ? r->error : "gave no answer");
        goto out;
    }
    if (!r->succeeded) {
        /* A create's failure range reads its key: taken, or another network came meanwhile. */
        if (w->status == 201 && r->nkvs)
            http_respond_error(w->req, API_ERR_CONFLICT, "network '%s' exists", w->name);
        else if (w->status == 201)
            http_respond_error(w->req, API_ERR_CONFLICT,
                               "the cluster's networks changed meanwhile (one defined now may "
                               "overlap this one); try again");
        else
            http_respond_error(w->req, API_ERR_CONFLICT,
                               "network '%s' was changed or deleted meanwhile; read it and try "
                               "again",
                               w->name);
        goto out;
    }
    if (cn && r->revision > cn->seen)
        cn->seen = r->revision;
    if (cn)
        json_object_set_new(
            cn->written, w->name,
            json_pack("{s:O?,s:I}", "value", w->value, "rev", (json_int_t)r->revision));
    /* The realisation here follows at once (its store records the event); the others at
     * their next poll. */
    if (w->status == 204) {
        if (here && networks_delete(d->nets, w->name, &err) == 0)
            mark_realisation(d, w->name, false);
        else
            vmmd_event(d, "network.deleted", "", json_pack("{s:s}", "name", w->name));
        http_respond_empty(w->req, 204);
        goto out;
    }
    if (w->status == 200 && here) {
        if (networks_update(d->nets, w->name, &w->patch, &err))
            log_error("network %s: changed in the cluster, not here: %s", w->name, err.detail);
    } else {
        vmmd_event(d, w->status == 201 ? "network.created" : "network.updated", "",
                   json_pack("{s:s,s:s}", "name", w->name, "cidr", str(w->value, "cidr")));
    }
    o = view(d, w->name, w->value);
    if (!o) {
        http_respond_error(w->req, API_ERR_INTERNAL, "out of memory");
        goto out;
    }
    http_respond_json(w->req, w->status, o);
    if (w->status == 201) {
        snprintf(location, sizeof(location), "/v1/networks/%s", w->name);
        http_add_header(w->req, "Location", location);
    }
out:
    json_decref(w->value);
    free(w);
}

/* Sends the write (value NULL: a delete) under compare; the answer comes from write_done. */
static void write_definition(struct vmmd_daemon *d, struct http_request *req, const char *name,
                             json_t *value, json_t *compare, unsigned status,
                             const struct api_network_def *patch)
{
    struct net_write *w = calloc(1, sizeof(*w));
    char k[KEY_MAX], *text = value ? json_dumps(value, JSON_COMPACT) : NULL;

    cluster_key(d->cluster, k, sizeof(k), "networks", name);
    if (!w || (value && !text)) {
        json_decref(compare);
        json_decref(value);
        free(w);
        free(text);
        http_respond_error(req, API_ERR_INTERNAL, "out of memory");
        return;
    }
    *w = (struct net_write){.d = d, .req = req, .value = value, .status = status};
    snprintf(w->name, sizeof(w->name), "%s", name);
    if (patch)
        w->patch = *patch;
    if (etcd_txn(cluster_etcd(d->cluster), compare,
                 json_pack("[o]", value ? etcd_op_put(k, text, 0) : etcd_op_delete(k, false)),
                 status == 201 ? json_pack("[o]", etcd_op_range(k, false)) : NULL, write_done, w)) {
        json_decref(value);
        free(w);
        http_respond_error(req, API_ERR_INTERNAL, "cannot ask etcd");
    } else {
        http_suspend(req);
    }
    free(text);
}

static void key_of(struct vmmd_daemon *d, const char *name, char k[KEY_MAX])
{
    cluster_key(d->cluster, k, KEY_MAX, "networks", name);
}

void cluster_networks_create(struct vmmd_daemon *d, struct http_request *req,
                             const struct api_network_def *def)
{
    struct cluster_networks *cn = state(d);
    struct db_network net = {0};
    struct api_error err;
    char k[KEY_MAX], prefix[KEY_MAX];

    if (definition(d, def->name, NULL) || db_network_get(d->db, def->name, &net) == 0) {
        http_respond_error(req, API_ERR_CONFLICT, "network '%s' exists", def->name);
        return;
    }
    /* Picked here, not where it is realised: every member realises the same cidr. */
    if (networks_choose_cidr(d->nets, def, net.cidr, &err)) {
        http_respond_problem(req, &err);
        return;
    }
    snprintf(net.name, sizeof(net.name), "%s", def->name);
    net.nat = def->nat;
    net.dhcp = def->dhcp;
    snprintf(net.dns_domain, sizeof(net.dns_domain), "%s", def->dns_domain);
    net.mtu = def->mtu;
    net.created_at = net.updated_at = wall_ms();
    key_of(d, def->name, k);
    cluster_key(d->cluster, prefix, sizeof(prefix), "networks", "");
    /* Only if no network was defined since the ones its cidr was checked against: two
     * members picking (or being given) overlapping cidrs at once cannot both win. */
    write_definition(d, req, def->name, to_definition(&net),
                     json_pack("[o,o]", etcd_cmp_absent(k),
                               etcd_cmp_unchanged(prefix, cn ? cn->seen : 0)),
                     201, NULL);
}

void cluster_networks_patch(struct vmmd_daemon *d, struct http_request *req, const char *name,
                            const struct api_network_def *def)
{
    int64_t rev = 0;
    json_t *v = definition(d, name, &rev);
    struct db_network net;
    struct api_error err;
    char k[KEY_MAX];

    if (!v) {
        /* This member's own network (not the cluster's): changed as stand-alone. */
        if (networks_update(d->nets, name, def, &err))
            http_respond_problem(req, &err);
        else
            routes_respond(req, 200, view(d, name, NULL), &err);
        return;
    }
    to_network(v, &net);
    api_network_def_apply(def, &net);
    net.updated_at = wall_ms();
    key_of(d, name, k);
    write_definition(d, req, name, to_definition(&net), json_pack("[o]", etcd_cmp_mod(k, rev)), 200,
                     def);
}

void cluster_networks_delete(struct vmmd_daemon *d, struct http_request *req, const char *name)
{
    int64_t rev = 0;
    json_t *v = definition(d, name, &rev);
    struct api_error err;
    char k[KEY_MAX], vms[2048];

    if (!v) {
        if (networks_delete(d->nets, name, &err))
            http_respond_problem(req, &err);
        else
            http_respond_empty(req, 204);
        return;
    }
    users(d, name, vms, sizeof(vms));
    if (vms[0]) {
        http_respond_error(req, API_ERR_CONFLICT,
                           "network '%s' is used by VMs: %s; remove their NICs on it first", name,
                           vms);
        return;
    }
    key_of(d, name, k);
    write_definition(d, req, name, NULL, json_pack("[o]", etcd_cmp_mod(k, rev)), 204, NULL);
}

bool cluster_networks_elsewhere(struct vmmd_daemon *d, struct http_request *req, const char *name)
{
    struct db_network net;
    json_t *members;
    char list[512] = "";
    size_t i, len = 0;
    json_t *m;

    if (!d->cluster || !cluster_networks_defines(d, name) || db_network_get(d->db, name, &net) == 0)
        return false;
    members = members_of(d, name);
    json_array_foreach(members, i, m)
    {
        if (len < sizeof(list))
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", len ? ", " : "",
                                    json_string_value(m));
    }
    json_decref(members);
    http_respond_error(req, API_ERR_NOT_FOUND,
                       "network '%s' is not realised on member %s; its leases and forwards are "
                       "those of the members that realised it (%s)",
                       name, cluster_member_name(d->cluster), list[0] ? list : "none yet");
    return true;
}
