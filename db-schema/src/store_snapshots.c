/*
 * Snapshots in the store (migration 006): one row per snapshot of a VM,
 * whose description (info) the daemon writes whole. Each write commits with
 * its event, built in SQL from the row: snapshot.created / .deleted
 * ({"vm","snapshot","paused_ms","memory_allocated_bytes"}).
 */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum snapshot_stmt { SNAP_INSERT, SNAP_DELETE, SNAP_GET, SNAP_LIST, SNAP_EVENT, SNAP_STMT_COUNT };

#define SNAP_COLUMNS "vm_id, name, info, created_at"

static const char *const snapshot_sql[SNAP_STMT_COUNT] = {
    [SNAP_INSERT] = "INSERT INTO snapshots (" SNAP_COLUMNS ") VALUES (?1, ?2, ?3, ?4)",
    [SNAP_DELETE] = "DELETE FROM snapshots WHERE vm_id = ?1 AND name = ?2",
    [SNAP_GET] = "SELECT " SNAP_COLUMNS " FROM snapshots WHERE vm_id = ?1 AND name = ?2",
    /* ?1 NULL: every VM's. */
    [SNAP_LIST] = "SELECT " SNAP_COLUMNS " FROM snapshots WHERE ?1 IS NULL OR vm_id = ?1 "
                  "ORDER BY vm_id, created_at, name",
    [SNAP_EVENT] = "INSERT INTO events (ts, type, vm_id, data) SELECT ?3, ?4, s.vm_id, "
                   "json_object('vm', v.name, 'snapshot', s.name, 'paused_ms', "
                   "json_extract(s.info, '$.paused_ms'), 'memory_allocated_bytes', "
                   "json_extract(s.info, '$.memory_allocated_bytes')) "
                   "FROM snapshots s JOIN vms v ON v.id = s.vm_id "
                   "WHERE s.vm_id = ?1 AND s.name = ?2",
};

static sqlite3_stmt *stmt(struct db_store *db, enum snapshot_stmt which)
{
    _Static_assert(DB__LAZY_SNAPSHOTS + SNAP_STMT_COUNT <= DB__LAZY_STMT_MAX, "too few slots");
    return db__lazy_stmt(db, DB__LAZY_SNAPSHOTS + which, snapshot_sql[which]);
}

static int insert_event(struct db_store *db, const char *vm_id, const char *name,
                        const char *type, int64_t *ev)
{
    sqlite3_stmt *st = stmt(db, SNAP_EVENT);
    int rc = SQLITE_OK, ret;

    if (!st)
        return -EIO;
    db__bind_text(st, 1, vm_id, &rc);
    db__bind_text(st, 2, name, &rc);
    db__bind_int(st, 3, db__now_ms(), &rc);
    db__bind_text(st, 4, type, &rc);
    if ((ret = db__run_bound(db, st, rc)))
        return ret;
    if (sqlite3_changes(db->sql) == 0)
        return db__fail(db, -ENOENT, "no snapshot %s of VM %s", name, vm_id);
    *ev = sqlite3_last_insert_rowid(db->sql);
    return 0;
}

int db_snapshot_insert(struct db_store *db, const struct db_snapshot *s, int64_t *event_id)
{
    sqlite3_stmt *st = stmt(db, SNAP_INSERT);
    int64_t ev = 0;
    int rc = SQLITE_OK, ret;

    if (!s || !memchr(s->vm_id, 0, sizeof(s->vm_id)) || !memchr(s->name, 0, sizeof(s->name)) ||
        !s->info_json)
        return db__fail(db, -EINVAL, "snapshot fields are missing or not NUL-terminated");
    if (!st)
        return -EIO;
    if ((ret = db__tx_begin(db)))
        return ret;
    db__bind_text(st, 1, s->vm_id, &rc);
    db__bind_text(st, 2, s->name, &rc);
    db__bind_text(st, 3, s->info_json, &rc);
    db__bind_int(st, 4, s->created_at ? s->created_at : db__now_ms(), &rc);
    ret = db__run_bound(db, st, rc);
    if (ret == -EINVAL) {
        int ext = sqlite3_extended_errcode(db->sql);
        if (ext == SQLITE_CONSTRAINT_PRIMARYKEY)
            ret = db__fail(db, -EEXIST, "VM %s already has a snapshot named %s", s->vm_id,
                           s->name);
        else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
            ret = db__fail(db, -ENOENT, "no VM %s", s->vm_id);
    }
    if (!ret)
        ret = insert_event(db, s->vm_id, s->name, "snapshot.created", &ev);
    return db__end_write(db, ret, ev, event_id);
}

int db_snapshot_delete(struct db_store *db, const char *vm_id, const char *name,
                       int64_t *event_id)
{
    sqlite3_stmt *st = stmt(db, SNAP_DELETE);
    int64_t ev = 0;
    int rc = SQLITE_OK, ret;

    if (!vm_id || !name)
        return db__fail(db, -EINVAL, "a VM and a snapshot name are required");
    if (!st)
        return -EIO;
    if ((ret = db__tx_begin(db)))
        return ret;
    /* The event first, while the row it is built from is there. */
    ret = insert_event(db, vm_id, name, "snapshot.deleted", &ev);
    if (!ret) {
        db__bind_text(st, 1, vm_id, &rc);
        db__bind_text(st, 2, name, &rc);
        ret = db__run_bound(db, st, rc);
    }
    return db__end_write(db, ret, ev, event_id);
}

static int snapshot_row(struct db_store *db, sqlite3_stmt *st, void *out)
{
    struct db_snapshot *s = out;
    int ret;

    memset(s, 0, sizeof(*s));
    ret = db__col_copy(db, st, 0, s->vm_id, sizeof(s->vm_id));
    if (!ret)
        ret = db__col_copy(db, st, 1, s->name, sizeof(s->name));
    if (!ret)
        ret = db__col_dup(db, st, 2, &s->info_json);
    s->created_at = sqlite3_column_int64(st, 3);
    return ret;
}

int db_snapshot_get(struct db_store *db, const char *vm_id, const char *name,
                    struct db_snapshot *out)
{
    struct db_snapshot *found = NULL;
    size_t n = 0;
    sqlite3_stmt *st = stmt(db, SNAP_GET);
    int rc = SQLITE_OK, ret;

    if (!st)
        return -EIO;
    db__bind_text(st, 1, vm_id, &rc);
    db__bind_text(st, 2, name, &rc);
    ret = db__collect(db, st, rc, sizeof(*found), snapshot_row, (void **)&found, &n);
    if (!ret && n == 0)
        ret = db__fail(db, -ENOENT, "no snapshot %s of VM %s", name, vm_id);
    if (!ret)
        *out = found[0];
    free(found);
    return ret;
}

int db_snapshot_list(struct db_store *db, const char *vm_id_or_null, struct db_snapshot **out,
                     size_t *count)
{
    sqlite3_stmt *st = stmt(db, SNAP_LIST);
    int rc = SQLITE_OK;

    if (!st)
        return -EIO;
    db__bind_text(st, 1, vm_id_or_null, &rc);
    return db__collect(db, st, rc, sizeof(**out), snapshot_row, (void **)out, count);
}

void db_snapshot_list_free(struct db_snapshot *list, size_t count)
{
    for (size_t i = 0; list && i < count; i++)
        free(list[i].info_json);
    free(list);
}
