/*
 * Managed networks, their port forwards and the daemon's settings in the
 * store (migration 003). Same rules as the VMs' writes in store.c: one
 * transaction per write with its event, the event's JSON built in SQL from
 * the row, statements prepared once (here on first use).
 */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NETWORK_COLUMNS "name, bridge, cidr, nat, dhcp, dns_domain, mtu, created_at, updated_at"
#define FORWARD_COLUMNS "id, network, protocol, host_address, host_port, vm_id, vm_port, created_at"
#define NETWORK_EVENT(type)                                                                        \
    "INSERT INTO events (ts, type, vm_id, data) SELECT ?2, '" type "', NULL, "                     \
    "json_object('name', name, 'cidr', cidr, 'bridge', bridge) FROM networks WHERE name = ?1"
#define FORWARD_EVENT(type)                                                                        \
    "INSERT INTO events (ts, type, vm_id, data) SELECT ?2, '" type "', f.vm_id, "                  \
    "json_object('network', f.network, 'id', f.id, 'protocol', f.protocol, 'host_port', "          \
    "f.host_port, 'vm_id', f.vm_id, 'vm', v.name, 'vm_port', f.vm_port) "                          \
    "FROM port_forwards f JOIN vms v ON v.id = f.vm_id WHERE f.id = ?1"

enum net_stmt {
    NET_INSERT,
    NET_UPDATE,
    NET_DELETE,
    NET_GET,
    NET_LIST,
    NET_EV_CREATED,
    NET_EV_UPDATED,
    NET_EV_DELETED,
    FWD_INSERT,
    FWD_DELETE,
    FWD_LIST,
    FWD_LIST_NET,
    FWD_EV_ADDED,
    FWD_EV_REMOVED,
    SETTING_GET,
    SETTING_SET,
    NET_STMT_COUNT
};

static const char *const net_sql[NET_STMT_COUNT] = {
    [NET_INSERT] = "INSERT INTO networks (" NETWORK_COLUMNS ") "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    [NET_UPDATE] = "UPDATE networks SET nat = ?4, dhcp = ?5, dns_domain = ?6, mtu = ?7, "
                   "updated_at = ?8 WHERE name = ?1",
    [NET_DELETE] = "DELETE FROM networks WHERE name = ?1",
    [NET_GET] = "SELECT " NETWORK_COLUMNS " FROM networks WHERE name = ?1",
    [NET_LIST] = "SELECT " NETWORK_COLUMNS " FROM networks ORDER BY name",
    [NET_EV_CREATED] = NETWORK_EVENT("network.created"),
    [NET_EV_UPDATED] = NETWORK_EVENT("network.updated"),
    [NET_EV_DELETED] = NETWORK_EVENT("network.deleted"),
    [FWD_INSERT] = "INSERT INTO port_forwards (network, protocol, host_address, host_port, vm_id, "
                   "vm_port, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [FWD_DELETE] = "DELETE FROM port_forwards WHERE id = ?1",
    [FWD_LIST] = "SELECT " FORWARD_COLUMNS " FROM port_forwards ORDER BY id",
    [FWD_LIST_NET] = "SELECT " FORWARD_COLUMNS " FROM port_forwards WHERE network = ?1 ORDER BY id",
    [FWD_EV_ADDED] = FORWARD_EVENT("network.forward_added"),
    [FWD_EV_REMOVED] = FORWARD_EVENT("network.forward_removed"),
    [SETTING_GET] = "SELECT value FROM settings WHERE key = ?1",
    [SETTING_SET] = "INSERT INTO settings (key, value) VALUES (?1, ?2) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
};

static sqlite3_stmt *stmt(struct db_store *db, enum net_stmt which)
{
    _Static_assert(NET_STMT_COUNT <= DB__LAZY_STORAGE - DB__LAZY_NETWORKS, "slots overlap");
    return db__lazy_stmt(db, DB__LAZY_NETWORKS + which, net_sql[which]);
}

/* Runs one of the *_EV_* inserts (?1 key, ?2 ts); -ENOENT when the row is not there. */
static int insert_event(struct db_store *db, enum net_stmt which, const char *key, int64_t id,
                        int64_t ts, int64_t *ev)
{
    sqlite3_stmt *st = stmt(db, which);
    int rc = SQLITE_OK, ret;

    if (!st)
        return -EIO;
    if (key)
        db__bind_text(st, 1, key, &rc);
    else
        db__bind_int(st, 1, id, &rc);
    db__bind_int(st, 2, ts, &rc);
    ret = db__run_bound(db, st, rc);
    if (ret)
        return ret;
    if (sqlite3_changes(db->sql) == 0)
        return db__fail(db, -ENOENT, "no such %s", key ? "network" : "forward");
    *ev = sqlite3_last_insert_rowid(db->sql);
    return 0;
}

static bool network_terminated(const struct db_network *n)
{
    return memchr(n->name, 0, sizeof(n->name)) && memchr(n->bridge, 0, sizeof(n->bridge)) &&
           memchr(n->cidr, 0, sizeof(n->cidr)) && memchr(n->dns_domain, 0, sizeof(n->dns_domain));
}

static int write_network(struct db_store *db, enum net_stmt which, enum net_stmt event,
                         const struct db_network *n, int64_t *event_id)
{
    sqlite3_stmt *st = stmt(db, which);
    int64_t now = db__now_ms(), ev = 0;
    int rc = SQLITE_OK, ret;

    if (!n || !network_terminated(n))
        return db__fail(db, -EINVAL, "network fields are not NUL-terminated");
    if (!st)
        return -EIO;
    ret = db__tx_begin(db);
    if (ret)
        return ret;
    db__bind_text(st, 1, n->name, &rc);
    if (which == NET_INSERT) {
        db__bind_text(st, 2, n->bridge, &rc);
        db__bind_text(st, 3, n->cidr, &rc);
    }
    db__bind_int(st, 4, n->nat, &rc);
    db__bind_int(st, 5, n->dhcp, &rc);
    db__bind_text(st, 6, n->dns_domain, &rc);
    db__bind_int(st, 7, n->mtu, &rc);
    db__bind_int(st, 8, now, &rc);
    ret = db__run_bound(db, st, rc);
    if (!ret && sqlite3_changes(db->sql) == 0)
        ret = db__fail(db, -ENOENT, "no network named %s", n->name);
    if (!ret)
        ret = insert_event(db, event, n->name, 0, now, &ev);
    return db__end_write(db, ret, ev, event_id);
}

int db_network_insert(struct db_store *db, const struct db_network *net, int64_t *event_id)
{
    return write_network(db, NET_INSERT, NET_EV_CREATED, net, event_id);
}

int db_network_update(struct db_store *db, const struct db_network *net, int64_t *event_id)
{
    return write_network(db, NET_UPDATE, NET_EV_UPDATED, net, event_id);
}

/* Deletes the row keyed by name or id after inserting its event (while the row is there). */
static int delete_row(struct db_store *db, enum net_stmt del, enum net_stmt event, const char *name,
                      int64_t id, int64_t *event_id)
{
    sqlite3_stmt *st = stmt(db, del);
    int64_t ev = 0;
    int rc = SQLITE_OK, ret;

    if (!st)
        return -EIO;
    ret = db__tx_begin(db);
    if (ret)
        return ret;
    ret = insert_event(db, event, name, id, db__now_ms(), &ev);
    if (!ret) {
        if (name)
            db__bind_text(st, 1, name, &rc);
        else
            db__bind_int(st, 1, id, &rc);
        ret = db__run_bound(db, st, rc);
    }
    return db__end_write(db, ret, ev, event_id);
}

int db_network_delete(struct db_store *db, const char *name, int64_t *event_id)
{
    if (!name)
        return db__fail(db, -EINVAL, "network name is required");
    /* Its forwards go by ON DELETE CASCADE, in the same transaction. */
    return delete_row(db, NET_DELETE, NET_EV_DELETED, name, 0, event_id);
}

static int network_from_row(struct db_store *db, sqlite3_stmt *st, struct db_network *n)
{
    int ret;

    memset(n, 0, sizeof(*n));
    ret = db__col_copy(db, st, 0, n->name, sizeof(n->name));
    if (!ret)
        ret = db__col_copy(db, st, 1, n->bridge, sizeof(n->bridge));
    if (!ret)
        ret = db__col_copy(db, st, 2, n->cidr, sizeof(n->cidr));
    if (!ret)
        ret = db__col_copy(db, st, 5, n->dns_domain, sizeof(n->dns_domain));
    n->nat = sqlite3_column_int(st, 3) != 0;
    n->dhcp = sqlite3_column_int(st, 4) != 0;
    n->mtu = (uint32_t)sqlite3_column_int64(st, 6);
    n->created_at = sqlite3_column_int64(st, 7);
    n->updated_at = sqlite3_column_int64(st, 8);
    return ret;
}

static int forward_from_row(struct db_store *db, sqlite3_stmt *st, struct db_forward *f)
{
    int ret;

    memset(f, 0, sizeof(*f));
    f->id = sqlite3_column_int64(st, 0);
    ret = db__col_copy(db, st, 1, f->network, sizeof(f->network));
    if (!ret)
        ret = db__col_copy(db, st, 2, f->protocol, sizeof(f->protocol));
    if (!ret)
        ret = db__col_copy(db, st, 3, f->host_address, sizeof(f->host_address));
    if (!ret)
        ret = db__col_copy(db, st, 5, f->vm_id, sizeof(f->vm_id));
    f->host_port = (uint32_t)sqlite3_column_int64(st, 4);
    f->vm_port = (uint32_t)sqlite3_column_int64(st, 6);
    f->created_at = sqlite3_column_int64(st, 7);
    return ret;
}

static int network_row(struct db_store *db, sqlite3_stmt *st, void *out)
{
    return network_from_row(db, st, out);
}

static int forward_row(struct db_store *db, sqlite3_stmt *st, void *out)
{
    return forward_from_row(db, st, out);
}

int db_network_get(struct db_store *db, const char *name, struct db_network *out)
{
    sqlite3_stmt *st = stmt(db, NET_GET);
    struct db_network *found;
    size_t n;
    int rc = SQLITE_OK, ret;

    memset(out, 0, sizeof(*out));
    if (!name)
        return db__fail(db, -EINVAL, "network name is required");
    if (!st)
        return -EIO;
    db__bind_text(st, 1, name, &rc);
    ret = db__collect(db, st, rc, sizeof(*found), network_row, (void **)&found, &n);
    if (ret)
        return ret;
    if (n == 0)
        ret = db__fail(db, -ENOENT, "no network named %s", name);
    else
        *out = found[0];
    free(found);
    return ret;
}

int db_network_list(struct db_store *db, struct db_network **out, size_t *count)
{
    sqlite3_stmt *st = stmt(db, NET_LIST);

    if (!st)
        return -EIO;
    return db__collect(db, st, SQLITE_OK, sizeof(**out), network_row, (void **)out, count);
}

int db_forward_insert(struct db_store *db, struct db_forward *f, int64_t *event_id)
{
    sqlite3_stmt *st = stmt(db, FWD_INSERT);
    int64_t now = db__now_ms(), ev = 0;
    int rc = SQLITE_OK, ret;

    if (!f || !memchr(f->network, 0, sizeof(f->network)) ||
        !memchr(f->protocol, 0, sizeof(f->protocol)) ||
        !memchr(f->host_address, 0, sizeof(f->host_address)) ||
        !memchr(f->vm_id, 0, sizeof(f->vm_id)))
        return db__fail(db, -EINVAL, "forward fields are not NUL-terminated");
    if (!st)
        return -EIO;
    ret = db__tx_begin(db);
    if (ret)
        return ret;
    db__bind_text(st, 1, f->network, &rc);
    db__bind_text(st, 2, f->protocol, &rc);
    db__bind_text(st, 3, f->host_address, &rc);
    db__bind_int(st, 4, f->host_port, &rc);
    db__bind_text(st, 5, f->vm_id, &rc);
    db__bind_int(st, 6, f->vm_port, &rc);
    db__bind_int(st, 7, now, &rc);
    ret = db__run_bound(db, st, rc);
    /* A missing network or VM fails the foreign key, which SQLite reports as a constraint. */
    if (ret == -EINVAL && sqlite3_extended_errcode(db->sql) == SQLITE_CONSTRAINT_FOREIGNKEY)
        ret = db__fail(db, -ENOENT, "no network %s or no VM %s", f->network, f->vm_id);
    if (!ret) {
        f->id = sqlite3_last_insert_rowid(db->sql);
        f->created_at = now;
        ret = insert_event(db, FWD_EV_ADDED, NULL, f->id, now, &ev);
    }
    return db__end_write(db, ret, ev, event_id);
}

int db_forward_delete(struct db_store *db, const char *network, int64_t id, int64_t *event_id)
{
    struct db_forward *fwds;
    size_t n;
    bool found = false;
    int ret;

    /* Through the network's list, so an id of another network is "not found" here. */
    ret = db_forward_list(db, network, &fwds, &n);
    if (ret)
        return ret;
    for (size_t i = 0; i < n; i++)
        found |= fwds[i].id == id;
    free(fwds);
    if (!found)
        return db__fail(db, -ENOENT, "network %s has no forward %lld", network, (long long)id);
    return delete_row(db, FWD_DELETE, FWD_EV_REMOVED, NULL, id, event_id);
}

int db_forward_list(struct db_store *db, const char *network_or_null, struct db_forward **out,
                    size_t *count)
{
    sqlite3_stmt *st = stmt(db, network_or_null ? FWD_LIST_NET : FWD_LIST);
    int rc = SQLITE_OK;

    if (!st)
        return -EIO;
    if (network_or_null)
        db__bind_text(st, 1, network_or_null, &rc);
    return db__collect(db, st, rc, sizeof(**out), forward_row, (void **)out, count);
}

int db_setting_get(struct db_store *db, const char *key, char *buf, size_t size)
{
    sqlite3_stmt *st = stmt(db, SETTING_GET);
    int rc = SQLITE_OK, ret;

    if (!st)
        return -EIO;
    db__bind_text(st, 1, key, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        ret = db__col_copy(db, st, 0, buf, size);
    else if (rc == SQLITE_DONE)
        ret = db__fail(db, -ENOENT, "no setting %s", key);
    else
        ret = db__error(db, rc);
    db__stmt_done(st);
    return ret;
}

int db_setting_set(struct db_store *db, const char *key, const char *value)
{
    sqlite3_stmt *st = stmt(db, SETTING_SET);
    int rc = SQLITE_OK;

    if (!st)
        return -EIO;
    db__bind_text(st, 1, key, &rc);
    db__bind_text(st, 2, value, &rc);
    return db__run_bound(db, st, rc);
}
