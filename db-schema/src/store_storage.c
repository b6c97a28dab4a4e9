/*
 * Images and volumes in the store (migration 004). Same rules as the other
 * writes: one transaction per write with its event, the event's JSON built
 * in SQL from the row, statements prepared on first use.
 */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define IMAGE_COLUMNS                                                                              \
    "name, pool, state, format, size_bytes, source_bytes, sha256, source, error, created_at, "     \
    "updated_at"
#define VOLUME_COLUMNS "name, pool, size_mib, image, clone, readonly, created_at, updated_at"

enum storage_stmt {
    IMG_INSERT,
    IMG_UPDATE,
    IMG_DELETE,
    IMG_GET,
    IMG_LIST,
    IMG_EVENT,
    VOL_INSERT,
    VOL_RESIZE,
    VOL_DELETE,
    VOL_GET,
    VOL_LIST,
    VOL_EVENT,
    VOL_USERS,
    STORAGE_STMT_COUNT
};

static const char *const storage_sql[STORAGE_STMT_COUNT] = {
    [IMG_INSERT] = "INSERT INTO images (" IMAGE_COLUMNS ") "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
    [IMG_UPDATE] = "UPDATE images SET state = ?3, format = ?4, size_bytes = ?5, "
                   "source_bytes = ?6, sha256 = ?7, error = ?9, updated_at = ?10 WHERE name = ?1",
    [IMG_DELETE] = "DELETE FROM images WHERE name = ?1",
    [IMG_GET] = "SELECT " IMAGE_COLUMNS " FROM images WHERE name = ?1",
    [IMG_LIST] = "SELECT " IMAGE_COLUMNS " FROM images ORDER BY name",
    [IMG_EVENT] = "INSERT INTO events (ts, type, vm_id, data) SELECT ?2, ?3, NULL, "
                  "json_object('name', name, 'pool', pool, 'state', state, 'format', format, "
                  "'size_bytes', size_bytes, 'sha256', nullif(sha256, ''), 'error', "
                  "nullif(error, '')) FROM images WHERE name = ?1",
    [VOL_INSERT] = "INSERT INTO volumes (" VOLUME_COLUMNS ") "
                   "VALUES (?1, ?2, ?3, nullif(?4, ''), ?5, ?6, ?7, ?7)",
    [VOL_RESIZE] = "UPDATE volumes SET size_mib = ?3, updated_at = ?7 WHERE name = ?1",
    [VOL_DELETE] = "DELETE FROM volumes WHERE name = ?1",
    [VOL_GET] = "SELECT " VOLUME_COLUMNS " FROM volumes WHERE name = ?1",
    [VOL_LIST] = "SELECT " VOLUME_COLUMNS " FROM volumes ORDER BY name",
    [VOL_EVENT] = "INSERT INTO events (ts, type, vm_id, data) SELECT ?2, ?3, NULL, "
                  "json_object('name', name, 'pool', pool, 'size_mib', size_mib, 'image', image) "
                  "FROM volumes WHERE name = ?1",
    /* disks is the API's normalised array: a volume disk is {"volume": name, ...}. */
    [VOL_USERS] = "SELECT DISTINCT v.id, v.name, coalesce(json_extract(d.value, '$.readonly'), 0) "
                  "FROM vms v, json_each(v.disks) d "
                  "WHERE json_extract(d.value, '$.volume') = ?1 ORDER BY v.name",
};

static sqlite3_stmt *stmt(struct db_store *db, enum storage_stmt which)
{
    _Static_assert(DB__LAZY_STORAGE + STORAGE_STMT_COUNT <= DB__LAZY_STMT_MAX, "too few slots");
    return db__lazy_stmt(db, DB__LAZY_STORAGE + which, storage_sql[which]);
}

static int insert_event(struct db_store *db, enum storage_stmt which, const char *name,
                        const char *type, int64_t ts, int64_t *ev)
{
    sqlite3_stmt *st = stmt(db, which);
    int rc = SQLITE_OK, ret;

    if (!st)
        return -EIO;
    db__bind_text(st, 1, name, &rc);
    db__bind_int(st, 2, ts, &rc);
    db__bind_text(st, 3, type, &rc);
    ret = db__run_bound(db, st, rc);
    if (ret)
        return ret;
    if (sqlite3_changes(db->sql) == 0)
        return db__fail(db, -ENOENT, "no such %s: %s", which == IMG_EVENT ? "image" : "volume",
                        name);
    *ev = sqlite3_last_insert_rowid(db->sql);
    return 0;
}

static bool image_terminated(const struct db_image *i)
{
    return memchr(i->name, 0, sizeof(i->name)) && memchr(i->pool, 0, sizeof(i->pool)) &&
           memchr(i->state, 0, sizeof(i->state)) && memchr(i->format, 0, sizeof(i->format)) &&
           memchr(i->sha256, 0, sizeof(i->sha256)) && memchr(i->source, 0, sizeof(i->source)) &&
           memchr(i->error, 0, sizeof(i->error));
}

static int write_image(struct db_store *db, enum storage_stmt which, const struct db_image *img,
                       const char *event_type, int64_t *event_id)
{
    sqlite3_stmt *st = stmt(db, which);
    int64_t now = db__now_ms(), ev = 0;
    int rc = SQLITE_OK, ret;

    if (!img || !image_terminated(img))
        return db__fail(db, -EINVAL, "image fields are not NUL-terminated");
    if (!st)
        return -EIO;
    ret = db__tx_begin(db);
    if (ret)
        return ret;
    db__bind_text(st, 1, img->name, &rc);
    if (which == IMG_INSERT) {
        db__bind_text(st, 2, img->pool, &rc);
        db__bind_text(st, 8, img->source, &rc);
    }
    db__bind_text(st, 3, img->state, &rc);
    db__bind_text(st, 4, img->format, &rc);
    db__bind_int(st, 5, (int64_t)img->size_bytes, &rc);
    db__bind_int(st, 6, (int64_t)img->source_bytes, &rc);
    db__bind_text(st, 7, img->sha256, &rc);
    db__bind_text(st, 9, img->error, &rc);
    db__bind_int(st, 10, now, &rc);
    ret = db__run_bound(db, st, rc);
    if (!ret && sqlite3_changes(db->sql) == 0)
        ret = db__fail(db, -ENOENT, "no image named %s", img->name);
    if (!ret && event_type)
        ret = insert_event(db, IMG_EVENT, img->name, event_type, now, &ev);
    return db__end_write(db, ret, ev, event_id);
}

int db_image_insert(struct db_store *db, const struct db_image *img, int64_t *event_id)
{
    return write_image(db, IMG_INSERT, img, "image.created", event_id);
}

int db_image_update(struct db_store *db, const struct db_image *img, const char *event_type,
                    int64_t *event_id)
{
    return write_image(db, IMG_UPDATE, img, event_type, event_id);
}

/* Deletes the row by name after inserting its event (while the row is there). */
static int delete_named(struct db_store *db, enum storage_stmt del, enum storage_stmt event,
                        const char *type, const char *name, int64_t *event_id)
{
    sqlite3_stmt *st = stmt(db, del);
    int64_t ev = 0;
    int rc = SQLITE_OK, ret;

    if (!name)
        return db__fail(db, -EINVAL, "a name is required");
    if (!st)
        return -EIO;
    ret = db__tx_begin(db);
    if (ret)
        return ret;
    ret = insert_event(db, event, name, type, db__now_ms(), &ev);
    if (!ret) {
        db__bind_text(st, 1, name, &rc);
        ret = db__run_bound(db, st, rc);
        /* ON DELETE RESTRICT fails as a trigger would (SQLITE_CONSTRAINT_TRIGGER). */
        if (ret == -EINVAL && (sqlite3_extended_errcode(db->sql) == SQLITE_CONSTRAINT_FOREIGNKEY ||
                               sqlite3_extended_errcode(db->sql) == SQLITE_CONSTRAINT_TRIGGER))
            ret = db__fail(db, -EBUSY, "volumes were cloned from image %s", name);
    }
    return db__end_write(db, ret, ev, event_id);
}

int db_image_delete(struct db_store *db, const char *name, int64_t *event_id)
{
    return delete_named(db, IMG_DELETE, IMG_EVENT, "image.deleted", name, event_id);
}

static int image_row(struct db_store *db, sqlite3_stmt *st, void *out)
{
    struct db_image *i = out;
    int ret;

    memset(i, 0, sizeof(*i));
    ret = db__col_copy(db, st, 0, i->name, sizeof(i->name));
    if (!ret)
        ret = db__col_copy(db, st, 1, i->pool, sizeof(i->pool));
    if (!ret)
        ret = db__col_copy(db, st, 2, i->state, sizeof(i->state));
    if (!ret)
        ret = db__col_copy(db, st, 3, i->format, sizeof(i->format));
    if (!ret)
        ret = db__col_copy(db, st, 6, i->sha256, sizeof(i->sha256));
    if (!ret)
        ret = db__col_copy(db, st, 7, i->source, sizeof(i->source));
    if (!ret)
        ret = db__col_copy(db, st, 8, i->error, sizeof(i->error));
    i->size_bytes = (uint64_t)sqlite3_column_int64(st, 4);
    i->source_bytes = (uint64_t)sqlite3_column_int64(st, 5);
    i->created_at = sqlite3_column_int64(st, 9);
    i->updated_at = sqlite3_column_int64(st, 10);
    return ret;
}

static int volume_row(struct db_store *db, sqlite3_stmt *st, void *out)
{
    struct db_volume *v = out;
    int ret;

    memset(v, 0, sizeof(*v));
    ret = db__col_copy(db, st, 0, v->name, sizeof(v->name));
    if (!ret)
        ret = db__col_copy(db, st, 1, v->pool, sizeof(v->pool));
    if (!ret && sqlite3_column_type(st, 3) != SQLITE_NULL)
        ret = db__col_copy(db, st, 3, v->image, sizeof(v->image));
    if (!ret)
        ret = db__col_copy(db, st, 4, v->clone, sizeof(v->clone));
    v->size_mib = (uint64_t)sqlite3_column_int64(st, 2);
    v->readonly = sqlite3_column_int(st, 5) != 0;
    v->created_at = sqlite3_column_int64(st, 6);
    v->updated_at = sqlite3_column_int64(st, 7);
    return ret;
}

static int vm_ref_row(struct db_store *db, sqlite3_stmt *st, void *out)
{
    struct db_vm_ref *r = out;
    int ret;

    memset(r, 0, sizeof(*r));
    ret = db__col_copy(db, st, 0, r->id, sizeof(r->id));
    if (!ret)
        ret = db__col_copy(db, st, 1, r->name, sizeof(r->name));
    r->readonly = sqlite3_column_int(st, 2) != 0;
    return ret;
}

/* The one row keyed by name, into out (item_size bytes); -ENOENT naming what when none. */
static int get_named(struct db_store *db, enum storage_stmt which, const char *what,
                     const char *name, size_t item_size,
                     int (*from_row)(struct db_store *, sqlite3_stmt *, void *), void *out)
{
    sqlite3_stmt *st = stmt(db, which);
    void *found;
    size_t n;
    int rc = SQLITE_OK, ret;

    memset(out, 0, item_size);
    if (!name)
        return db__fail(db, -EINVAL, "%s name is required", what);
    if (!st)
        return -EIO;
    db__bind_text(st, 1, name, &rc);
    ret = db__collect(db, st, rc, item_size, from_row, &found, &n);
    if (ret)
        return ret;
    if (n == 0)
        ret = db__fail(db, -ENOENT, "no %s named %s", what, name);
    else
        memcpy(out, found, item_size);
    free(found);
    return ret;
}

static int list_all(struct db_store *db, enum storage_stmt which, size_t item_size,
                    int (*from_row)(struct db_store *, sqlite3_stmt *, void *), void **out,
                    size_t *count)
{
    sqlite3_stmt *st = stmt(db, which);

    if (!st)
        return -EIO;
    return db__collect(db, st, SQLITE_OK, item_size, from_row, out, count);
}

int db_image_get(struct db_store *db, const char *name, struct db_image *out)
{
    return get_named(db, IMG_GET, "image", name, sizeof(*out), image_row, out);
}

int db_image_list(struct db_store *db, struct db_image **out, size_t *count)
{
    return list_all(db, IMG_LIST, sizeof(**out), image_row, (void **)out, count);
}

int db_volume_insert(struct db_store *db, const struct db_volume *v, int64_t *event_id)
{
    sqlite3_stmt *st = stmt(db, VOL_INSERT);
    int64_t now = db__now_ms(), ev = 0;
    int rc = SQLITE_OK, ret;

    if (!v || !memchr(v->name, 0, sizeof(v->name)) || !memchr(v->pool, 0, sizeof(v->pool)) ||
        !memchr(v->image, 0, sizeof(v->image)) || !memchr(v->clone, 0, sizeof(v->clone)))
        return db__fail(db, -EINVAL, "volume fields are not NUL-terminated");
    if (!st)
        return -EIO;
    ret = db__tx_begin(db);
    if (ret)
        return ret;
    db__bind_text(st, 1, v->name, &rc);
    db__bind_text(st, 2, v->pool, &rc);
    db__bind_int(st, 3, (int64_t)v->size_mib, &rc);
    db__bind_text(st, 4, v->image, &rc);
    db__bind_text(st, 5, v->clone, &rc);
    db__bind_int(st, 6, v->readonly, &rc);
    db__bind_int(st, 7, now, &rc);
    ret = db__run_bound(db, st, rc);
    if (ret == -EINVAL && sqlite3_extended_errcode(db->sql) == SQLITE_CONSTRAINT_FOREIGNKEY)
        ret = db__fail(db, -ENOENT, "no image named %s", v->image);
    if (!ret)
        ret = insert_event(db, VOL_EVENT, v->name, "volume.created", now, &ev);
    return db__end_write(db, ret, ev, event_id);
}

int db_volume_resize(struct db_store *db, const char *name, uint64_t size_mib, int64_t *event_id)
{
    sqlite3_stmt *st = stmt(db, VOL_RESIZE);
    int64_t now = db__now_ms(), ev = 0;
    int rc = SQLITE_OK, ret;

    if (!name)
        return db__fail(db, -EINVAL, "volume name is required");
    if (!st)
        return -EIO;
    ret = db__tx_begin(db);
    if (ret)
        return ret;
    db__bind_text(st, 1, name, &rc);
    db__bind_int(st, 3, (int64_t)size_mib, &rc);
    db__bind_int(st, 7, now, &rc);
    ret = db__run_bound(db, st, rc);
    if (!ret && sqlite3_changes(db->sql) == 0)
        ret = db__fail(db, -ENOENT, "no volume named %s", name);
    if (!ret)
        ret = insert_event(db, VOL_EVENT, name, "volume.resized", now, &ev);
    return db__end_write(db, ret, ev, event_id);
}

int db_volume_delete(struct db_store *db, const char *name, int64_t *event_id)
{
    return delete_named(db, VOL_DELETE, VOL_EVENT, "volume.deleted", name, event_id);
}

int db_volume_get(struct db_store *db, const char *name, struct db_volume *out)
{
    return get_named(db, VOL_GET, "volume", name, sizeof(*out), volume_row, out);
}

int db_volume_list(struct db_store *db, struct db_volume **out, size_t *count)
{
    return list_all(db, VOL_LIST, sizeof(**out), volume_row, (void **)out, count);
}

int db_volume_users(struct db_store *db, const char *name, struct db_vm_ref **out, size_t *count)
{
    sqlite3_stmt *st = stmt(db, VOL_USERS);
    int rc = SQLITE_OK;

    *out = NULL;
    *count = 0;
    if (!name)
        return db__fail(db, -EINVAL, "volume name is required");
    if (!st)
        return -EIO;
    db__bind_text(st, 1, name, &rc);
    return db__collect(db, st, rc, sizeof(**out), vm_ref_row, (void **)out, count);
}
