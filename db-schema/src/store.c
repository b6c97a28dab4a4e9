/*
 * The daemon's SQLite store; the contract is in include/db/store.h.
 *
 * One connection per struct db_store, opened without SQLite's connection
 * mutex because only the daemon's loop thread uses it (SQLite would otherwise
 * take and release that mutex in every sqlite3_column_*() call). Every
 * statement is prepared once at open and reset after each use, so the hot
 * path, listing VMs thousands of times a second, parses no SQL.
 *
 * Writes run in BEGIN IMMEDIATE transactions, which take the write lock up
 * front: a deferred transaction that read first could fail with SQLITE_BUSY
 * in the middle, where the busy timeout no longer helps. Each write and the
 * event announcing it go in the same transaction. The announcing events are
 * built in SQL with json_object() from the row itself, so their JSON is
 * always well-formed whatever the strings hold.
 */
#include "db/store.h"
#include "migrations.h"
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DB_BUSY_TIMEOUT_MS    5000
#define DB_MIN_SQLITE_VERSION 3037000 /* STRICT tables */

/* The columns of a VM row, in the order of enum vm_column. */
#define VM_COLUMNS                                                                                 \
    "id, name, mode, vcpus, memory_mib, kernel, initrd, cmdline, disks, nics, autostart, "         \
    "state, state_reason, created_at, updated_at, started_at, worker_pid, cpu_quota_pct, "         \
    "cpu_weight, boot, ha"

enum vm_column {
    COL_ID,
    COL_NAME,
    COL_MODE,
    COL_VCPUS,
    COL_MEMORY_MIB,
    COL_KERNEL,
    COL_INITRD,
    COL_CMDLINE,
    COL_DISKS,
    COL_NICS,
    COL_AUTOSTART,
    COL_STATE,
    COL_STATE_REASON,
    COL_CREATED_AT,
    COL_UPDATED_AT,
    COL_STARTED_AT,
    COL_WORKER_PID,
    COL_CPU_QUOTA_PCT,
    COL_CPU_WEIGHT,
    COL_BOOT,
    COL_HA,
};

/*
 * Every statement the store runs. The event inserts for VM writes select
 * from the VM's row: for vm.state_changed and vm.deleted they run before the
 * change, so "previous" and "name" come from the row as it was, and
 * "no row inserted" doubles as the -ENOENT check.
 */
#define DB_STATEMENTS(X)                                                                           \
    X(BEGIN, "BEGIN IMMEDIATE")                                                                    \
    X(COMMIT, "COMMIT")                                                                            \
    X(ROLLBACK, "ROLLBACK")                                                                        \
    X(VM_INSERT, "INSERT INTO vms (" VM_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "   \
                 "?10, ?11, 'stopped', NULL, ?12, ?12, 0, 0, ?13, ?14, ?15, ?16)")                      \
    X(VM_UPDATE,                                                                                   \
      "UPDATE vms SET name = ?2, mode = ?3, vcpus = ?4, memory_mib = ?5, kernel = ?6, "            \
      "initrd = ?7, cmdline = ?8, disks = ?9, nics = ?10, autostart = ?11, "                       \
      "updated_at = ?12, cpu_quota_pct = ?13, cpu_weight = ?14, boot = ?15, ha = ?16 "           \
      "WHERE id = ?1")                                                                             \
    X(VM_SET_STATE, "UPDATE vms SET state = ?2, state_reason = ?3, worker_pid = ?4, "              \
                    "updated_at = ?5, "                                                            \
                    "started_at = CASE WHEN ?2 = 'starting' THEN ?5 ELSE started_at END "          \
                    "WHERE id = ?1")                                                               \
    X(VM_DELETE, "DELETE FROM vms WHERE id = ?1")                                                  \
    X(VM_BY_ID, "SELECT " VM_COLUMNS " FROM vms WHERE id = ?1")                                    \
    X(VM_BY_NAME, "SELECT " VM_COLUMNS " FROM vms WHERE name = ?1")                                \
    /* Keyset pages: every name is non-empty, so after = '' is the whole list; LIMIT -1: all. */   \
    X(VM_LIST, "SELECT " VM_COLUMNS " FROM vms WHERE name > ?2 ORDER BY name LIMIT ?3")            \
    X(VM_LIST_STATE, "SELECT " VM_COLUMNS " FROM vms WHERE state = ?1 AND name > ?2 "              \
                     "ORDER BY name LIMIT ?3")                                                     \
    X(VM_COUNT, "SELECT count(*) FROM vms")                                                        \
    X(VM_COUNT_STATE, "SELECT count(*) FROM vms WHERE state = ?1")                                 \
    X(VM_TOTALS, "SELECT state, count(*), sum(vcpus), sum(memory_mib) FROM vms GROUP BY state")    \
    X(BEGIN_READ, "BEGIN")                                                                         \
    X(EV_CREATED, "INSERT INTO events (ts, type, vm_id, data) SELECT ?2, 'vm.created', id, "       \
                  "json_object('id', id, 'name', name, 'mode', mode, 'state', state) "             \
                  "FROM vms WHERE id = ?1")                                                        \
    X(EV_UPDATED, "INSERT INTO events (ts, type, vm_id, data) SELECT ?2, 'vm.updated', id, "       \
                  "json_object('id', id, 'name', name) FROM vms WHERE id = ?1")                    \
    X(EV_STATE_CHANGED, "INSERT INTO events (ts, type, vm_id, data) "                              \
                        "SELECT ?2, 'vm.state_changed', id, json_object('id', id, 'name', name, "  \
                        "'state', ?3, 'previous', state, 'reason', ?4) FROM vms WHERE id = ?1")    \
    X(EV_DELETED, "INSERT INTO events (ts, type, vm_id, data) SELECT ?2, 'vm.deleted', id, "       \
                  "json_object('id', id, 'name', name) FROM vms WHERE id = ?1")                    \
    X(EV_INSERT, "INSERT INTO events (ts, type, vm_id, data) VALUES (?1, ?2, ?3, ?4)")             \
    X(EV_SINCE, "SELECT id, ts, type, vm_id, data, origin FROM events WHERE id > ?1 "             \
                "ORDER BY id LIMIT ?2")                                                            \
    X(EV_RELAY_INSERT, "INSERT INTO events (ts, type, vm_id, data, origin) "                      \
                       "VALUES (?1, ?2, ?3, ?4, ?5)")                                              \
    X(RELAY_GET, "SELECT last_id FROM event_relay WHERE member_id = ?1")                           \
    X(RELAY_SET, "INSERT INTO event_relay (member_id, last_id) VALUES (?1, ?2) "                   \
                 "ON CONFLICT (member_id) DO UPDATE SET last_id = excluded.last_id")               \
    /* The last id handed out, not max(id): that stays right once old events are pruned. */        \
    X(EV_LAST_ID, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)")   \
    /* The first kept event, or the next id to come when none is kept: min(id) is one seek. */     \
    X(EV_OLDEST_ID, "SELECT coalesce((SELECT min(id) FROM events), "                               \
                    "(SELECT seq FROM sqlite_sequence WHERE name = 'events') + 1, 1)")             \
    /* The oldest events, for the retention check in db_events_prune (?1: how many). */            \
    X(EV_HEAD, "SELECT id, ts FROM events ORDER BY id LIMIT ?1")                                   \
    X(EV_DELETE_THROUGH, "DELETE FROM events WHERE id <= ?1")                                      \
    X(SIZE, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")

/* clang-format cannot tell that DB_STATEMENTS(X) expands to enumerators. */
/* clang-format off */
enum db_stmt_id {
#define X(name, sql) STMT_##name,
    DB_STATEMENTS(X)
#undef X
    STMT_COUNT
};
/* clang-format on */

_Static_assert(STMT_COUNT <= DB__STMT_MAX, "raise DB__STMT_MAX");

static const char *const stmt_sql[STMT_COUNT] = {
#define X(name, sql) [STMT_##name] = sql,
    DB_STATEMENTS(X)
#undef X
};


__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int64_t db__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sqlite_errno(sqlite3 *sql, int rc)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return -EEXIST;
    }
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: /* CHECK and NOT NULL: the caller passed a bad value */
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_MISUSE:
        return -EINVAL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_TOOBIG:
        return -E2BIG;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_CANTOPEN: {
        int e = sql ? sqlite3_system_errno(sql) : 0;
        return e > 0 ? -e : -EACCES;
    }
    default:
        return -EIO;
    }
}

/* Keeps SQLite's message for db_last_error() and returns the matching errno. */
int db__error(struct db_store *db, int rc)
{
    snprintf(db->errmsg, sizeof(db->errmsg), "%s", sqlite3_errmsg(db->sql));
    return sqlite_errno(db->sql, rc);
}

int db__fail(struct db_store *db, int ret, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof(db->errmsg), fmt, ap);
    va_end(ap);
    return ret;
}

/* Resets a cached statement; bindings are cleared so none points at a caller's memory. */
void db__stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows. */
int db__stmt_run(struct db_store *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : db__error(db, rc);

    db__stmt_done(st);
    return ret;
}

/* Binders that keep the first failure in *rc, so a run of binds is checked once. */
void db__bind_text(sqlite3_stmt *st, int i, const char *s, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

void db__bind_int(sqlite3_stmt *st, int i, int64_t v, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = sqlite3_bind_int64(st, i, v);
}

int db__tx_begin(struct db_store *db)
{
    if (db->in_events_since)
        return db__fail(db, -EBUSY, "write from a db_events_since() callback");
    return db__stmt_run(db, db->stmt[STMT_BEGIN]);
}

static void tx_rollback(struct db_store *db)
{
    /* Some errors (SQLITE_FULL, SQLITE_IOERR) have rolled back already. */
    if (!sqlite3_get_autocommit(db->sql)) {
        sqlite3_step(db->stmt[STMT_ROLLBACK]);
        sqlite3_reset(db->stmt[STMT_ROLLBACK]);
    }
}

static int tx_commit(struct db_store *db)
{
    int ret = db__stmt_run(db, db->stmt[STMT_COMMIT]);

    if (ret)
        tx_rollback(db);
    return ret;
}

/* Fixed-size struct fields must be NUL-terminated before SQLite reads them with strlen(). */
static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static int vm_check(struct db_store *db, const struct db_vm *vm)
{
    if (!vm)
        return db__fail(db, -EINVAL, "no VM given");
    if (!terminated(vm->id, sizeof(vm->id)) || !terminated(vm->name, sizeof(vm->name)) ||
        !terminated(vm->mode, sizeof(vm->mode)))
        return db__fail(db, -EINVAL, "VM id, name or mode is not NUL-terminated");
    /* The rest (empty strings, ranges, JSON) is left to the table's CHECKs. */
    return 0;
}

/*
 * Binds ?1..?11, ?13 and ?14 of VM_INSERT and VM_UPDATE, which share their
 * numbering, and ?12 = now; returns the first bind error, for db__run_bound().
 */
static int bind_vm_definition(sqlite3_stmt *st, const struct db_vm *vm, int64_t now)
{
    int rc = SQLITE_OK;

    db__bind_text(st, 1, vm->id, &rc);
    db__bind_text(st, 2, vm->name, &rc);
    db__bind_text(st, 3, vm->mode, &rc);
    db__bind_int(st, 4, vm->vcpus, &rc);
    /* Above INT64_MAX it turns negative, which the CHECK refuses: good. */
    db__bind_int(st, 5, (int64_t)vm->memory_mib, &rc);
    /* NOT NULL since 001: a disk-booted VM has '' (see 005_boot.sql). */
    db__bind_text(st, 6, vm->kernel ? vm->kernel : "", &rc);
    db__bind_text(st, 7, vm->initrd, &rc);
    db__bind_text(st, 8, vm->cmdline, &rc);
    db__bind_text(st, 9, vm->disks_json ? vm->disks_json : "[]", &rc);
    db__bind_text(st, 10, vm->nics_json ? vm->nics_json : "[]", &rc);
    db__bind_int(st, 11, vm->autostart, &rc);
    db__bind_int(st, 12, now, &rc);
    db__bind_int(st, 13, vm->cpu_quota_pct, &rc);
    db__bind_int(st, 14, vm->cpu_weight ? vm->cpu_weight : 100, &rc);
    db__bind_text(st, 15, vm->boot[0] ? vm->boot : "kernel", &rc);
    db__bind_text(st, 16, vm->ha, &rc);
    return rc;
}

/* Runs a statement whose parameters are bound; bind_rc is the first bind error, if any. */
int db__run_bound(struct db_store *db, sqlite3_stmt *st, int bind_rc)
{
    if (bind_rc != SQLITE_OK) {
        db__stmt_done(st);
        return db__error(db, bind_rc);
    }
    return db__stmt_run(db, st);
}

/*
 * Runs one of the EV_* statements that insert an event from the VM's row
 * (?1 id, ?2 ts, then extra text parameters). -ENOENT when there is no such
 * VM, since then nothing was inserted.
 */
static int insert_vm_event(struct db_store *db, enum db_stmt_id which, const char *id, int64_t ts,
                           const char *p3, const char *p4, int64_t *event_id)
{
    sqlite3_stmt *st = db->stmt[which];
    int rc = SQLITE_OK;
    int ret;

    db__bind_text(st, 1, id, &rc);
    db__bind_int(st, 2, ts, &rc);
    if (which == STMT_EV_STATE_CHANGED) {
        db__bind_text(st, 3, p3, &rc);
        db__bind_text(st, 4, p4, &rc);
    }
    ret = db__run_bound(db, st, rc);
    if (ret)
        return ret;
    if (sqlite3_changes(db->sql) == 0)
        return db__fail(db, -ENOENT, "no VM with id %s", id);
    *event_id = sqlite3_last_insert_rowid(db->sql);
    return 0;
}

/*
 * Ends a write transaction: commits the change and its event when every step
 * succeeded (ret 0), rolls both back otherwise.
 */
int db__end_write(struct db_store *db, int ret, int64_t ev, int64_t *event_id)
{
    if (ret) {
        tx_rollback(db);
        return ret;
    }
    ret = tx_commit(db);
    if (!ret && event_id)
        *event_id = ev;
    return ret;
}

/*
 * Inserts or updates a definition and its event in one transaction. A taken
 * id or name fails the statement, before the event: the rollback leaves no trace.
 */
static int write_definition(struct db_store *db, enum db_stmt_id which, enum db_stmt_id event,
                            const struct db_vm *vm, int64_t *event_id)
{
    sqlite3_stmt *st = db->stmt[which];
    int64_t now = db__now_ms(), ev = 0;
    int ret;

    ret = vm_check(db, vm);
    if (ret)
        return ret;
    ret = db__tx_begin(db);
    if (ret)
        return ret;
    ret = db__run_bound(db, st, bind_vm_definition(st, vm, now));
    if (!ret && which == STMT_VM_UPDATE && sqlite3_changes(db->sql) == 0)
        ret = db__fail(db, -ENOENT, "no VM with id %s", vm->id);
    if (!ret)
        ret = insert_vm_event(db, event, vm->id, now, NULL, NULL, &ev);
    return db__end_write(db, ret, ev, event_id);
}

int db_vm_insert(struct db_store *db, const struct db_vm *vm, int64_t *event_id)
{
    return write_definition(db, STMT_VM_INSERT, STMT_EV_CREATED, vm, event_id);
}

int db_vm_update(struct db_store *db, const struct db_vm *vm, int64_t *event_id)
{
    return write_definition(db, STMT_VM_UPDATE, STMT_EV_UPDATED, vm, event_id);
}

int db_vm_set_state(struct db_store *db, const char *id, const char *state, const char *reason,
                    int64_t worker_pid, int64_t *event_id)
{
    sqlite3_stmt *st = db->stmt[STMT_VM_SET_STATE];
    int64_t now = db__now_ms(), ev = 0;
    int rc = SQLITE_OK;
    int ret;

    if (!id || !state)
        return db__fail(db, -EINVAL, "VM id and state are required");
    ret = db__tx_begin(db);
    if (ret)
        return ret;
    /* The event first, while the row still holds the previous state. */
    ret = insert_vm_event(db, STMT_EV_STATE_CHANGED, id, now, state, reason, &ev);
    if (!ret) {
        db__bind_text(st, 1, id, &rc);
        db__bind_text(st, 2, state, &rc);
        db__bind_text(st, 3, reason, &rc);
        db__bind_int(st, 4, worker_pid, &rc);
        db__bind_int(st, 5, now, &rc);
        /* An unknown state fails the CHECK here and takes the event with it. */
        ret = db__run_bound(db, st, rc);
    }
    return db__end_write(db, ret, ev, event_id);
}

int db_vm_delete(struct db_store *db, const char *id, int64_t *event_id)
{
    sqlite3_stmt *st = db->stmt[STMT_VM_DELETE];
    int64_t ev = 0;
    int rc = SQLITE_OK;
    int ret;

    if (!id)
        return db__fail(db, -EINVAL, "VM id is required");
    ret = db__tx_begin(db);
    if (ret)
        return ret;
    /* The event first, while the row can still give its name. */
    ret = insert_vm_event(db, STMT_EV_DELETED, id, db__now_ms(), NULL, NULL, &ev);
    if (!ret) {
        db__bind_text(st, 1, id, &rc);
        ret = db__run_bound(db, st, rc);
    }
    return db__end_write(db, ret, ev, event_id);
}

int db_event_insert(struct db_store *db, const char *type, const char *vm_id, const char *data_json,
                    int64_t *event_id)
{
    sqlite3_stmt *st = db->stmt[STMT_EV_INSERT];
    int rc = SQLITE_OK;
    int ret;

    if (!type)
        return db__fail(db, -EINVAL, "event type is required");
    ret = db__tx_begin(db);
    if (ret)
        return ret;
    db__bind_int(st, 1, db__now_ms(), &rc);
    db__bind_text(st, 2, type, &rc);
    db__bind_text(st, 3, vm_id && vm_id[0] ? vm_id : NULL, &rc);
    db__bind_text(st, 4, data_json ? data_json : "{}", &rc);
    /* Malformed JSON, or JSON that is not an object, fails the CHECK: -EINVAL. */
    ret = db__run_bound(db, st, rc);
    return db__end_write(db, ret, ret ? 0 : sqlite3_last_insert_rowid(db->sql), event_id);
}

static int64_t query_int(struct db_store *db, enum db_stmt_id which);

/* Within a transaction: the member's relay position. */
static int relay_get(struct db_store *db, const char *member_id, int64_t *last)
{
    sqlite3_stmt *st = db->stmt[STMT_RELAY_GET];
    int rc = SQLITE_OK;

    *last = 0;
    db__bind_text(st, 1, member_id, &rc);
    if (rc != SQLITE_OK) {
        db__stmt_done(st);
        return db__error(db, rc);
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *last = sqlite3_column_int64(st, 0);
    db__stmt_done(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db__error(db, rc);
}

static int relay_set(struct db_store *db, const char *member_id, int64_t last)
{
    sqlite3_stmt *st = db->stmt[STMT_RELAY_SET];
    int rc = SQLITE_OK;

    db__bind_text(st, 1, member_id, &rc);
    db__bind_int(st, 2, last, &rc);
    return db__run_bound(db, st, rc);
}

int db_event_relay(struct db_store *db, const char *member_id, const char *origin,
                   int64_t origin_id, const struct db_event *ev, int64_t *event_id)
{
    sqlite3_stmt *st = db->stmt[STMT_EV_RELAY_INSERT];
    int rc = SQLITE_OK;
    int64_t last;
    int ret;

    if (!member_id || !member_id[0] || !origin || !origin[0] || origin_id <= 0)
        return db__fail(db, -EINVAL, "a relayed event needs its member and its id there");
    ret = db__tx_begin(db);
    if (ret)
        return ret;
    ret = relay_get(db, member_id, &last);
    if (!ret && origin_id <= last)
        ret = db__fail(db, -EALREADY, "event %lld of %s was copied already",
                       (long long)origin_id, origin);
    if (!ret) {
        db__bind_int(st, 1, db__now_ms(), &rc);
        db__bind_text(st, 2, ev->type, &rc);
        db__bind_text(st, 3, ev->vm_id[0] ? ev->vm_id : NULL, &rc);
        db__bind_text(st, 4, ev->data_json ? ev->data_json : "{}", &rc);
        db__bind_text(st, 5, origin, &rc);
        ret = db__run_bound(db, st, rc);
    }
    int64_t id = ret ? 0 : sqlite3_last_insert_rowid(db->sql);
    if (!ret)
        ret = relay_set(db, member_id, origin_id);
    return db__end_write(db, ret, id, event_id);
}

int db_event_relay_position(struct db_store *db, const char *member_id, int64_t *last)
{
    return relay_get(db, member_id, last);
}

int db_event_relay_start(struct db_store *db, const char *member_id, int64_t last)
{
    int64_t have;
    int ret = db__tx_begin(db);

    if (ret)
        return ret;
    ret = relay_get(db, member_id, &have);
    if (!ret && have == 0)
        ret = relay_set(db, member_id, last);
    return db__end_write(db, ret, 0, NULL);
}

int db_events_prune(struct db_store *db, int64_t before_ts, uint64_t keep_count, size_t batch,
                    size_t *deleted)
{
    sqlite3_stmt *head = db->stmt[STMT_EV_HEAD], *del = db->stmt[STMT_EV_DELETE_THROUGH];
    int64_t last, through = 0, gone = 0;
    size_t n = 0;
    int rc = SQLITE_OK, ret;

    if (deleted)
        *deleted = 0;
    if (batch == 0 || batch > INT32_MAX)
        return db__fail(db, -EINVAL, "prune batch must be 1 to %d events", INT32_MAX);
    ret = db__tx_begin(db);
    if (ret)
        return ret;
    last = query_int(db, STMT_EV_LAST_ID);
    if (last < 0) {
        ret = (int)last;
        goto out;
    }
    /*
     * Only a prefix of the table goes, so what is kept is always one run of
     * ids from db_events_oldest_id() on: an event newer than the cut-off
     * stops the walk even if an older timestamp (the clock stepped back)
     * follows it.
     */
    db__bind_int(head, 1, (int64_t)batch, &rc);
    while (rc == SQLITE_OK && (rc = sqlite3_step(head)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(head, 0), ts = sqlite3_column_int64(head, 1);
        bool over_count = keep_count < (uint64_t)INT64_MAX && id <= last - (int64_t)keep_count;

        if (!over_count && ts >= before_ts)
            break;
        through = id;
        n++;
        rc = SQLITE_OK;
    }
    ret = rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db__error(db, rc);
    db__stmt_done(head);
    if (!ret && n) {
        rc = SQLITE_OK;
        db__bind_int(del, 1, through, &rc);
        ret = db__run_bound(db, del, rc);
    }
out:
    ret = db__end_write(db, ret, (int64_t)n, &gone);
    if (!ret && deleted)
        *deleted = (size_t)gone;
    return ret;
}

/*
 * Column readers. The table's CHECKs bound what lands in the fixed-size
 * fields, so text that does not fit means the file was edited behind our
 * back: refuse it rather than truncate an id.
 */
int db__col_copy(struct db_store *db, sqlite3_stmt *st, int col, char *buf, size_t size)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);

    if (!s) {
        if (sqlite3_errcode(db->sql) == SQLITE_NOMEM)
            return db__fail(db, -ENOMEM, "out of memory");
        return db__fail(db, -EBADMSG, "column %s is NULL", sqlite3_column_name(st, col));
    }
    if (n >= size)
        return db__fail(db, -EBADMSG, "column %s holds %zu bytes, at most %zu fit",
                       sqlite3_column_name(st, col), n, size - 1);
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 0;
}

int db__col_dup(struct db_store *db, sqlite3_stmt *st, int col, char **out)
{
    const unsigned char *s;
    size_t n;

    *out = NULL;
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return 0;
    s = sqlite3_column_text(st, col);
    n = (size_t)sqlite3_column_bytes(st, col);
    if (!s || !(*out = malloc(n + 1)))
        return db__fail(db, -ENOMEM, "out of memory");
    memcpy(*out, s, n);
    (*out)[n] = '\0';
    return 0;
}

static int vm_from_row(struct db_store *db, sqlite3_stmt *st, struct db_vm *vm)
{
    int ret;

    memset(vm, 0, sizeof(*vm));
    ret = db__col_copy(db, st, COL_ID, vm->id, sizeof(vm->id));
    if (!ret)
        ret = db__col_copy(db, st, COL_NAME, vm->name, sizeof(vm->name));
    if (!ret)
        ret = db__col_copy(db, st, COL_MODE, vm->mode, sizeof(vm->mode));
    if (!ret)
        ret = db__col_copy(db, st, COL_STATE, vm->state, sizeof(vm->state));
    if (!ret)
        ret = db__col_copy(db, st, COL_BOOT, vm->boot, sizeof(vm->boot));
    if (!ret)
        ret = db__col_copy(db, st, COL_HA, vm->ha, sizeof(vm->ha));
    if (!ret && sqlite3_column_bytes(st, COL_KERNEL) > 0)
        ret = db__col_dup(db, st, COL_KERNEL, &vm->kernel);
    if (!ret)
        ret = db__col_dup(db, st, COL_INITRD, &vm->initrd);
    if (!ret)
        ret = db__col_dup(db, st, COL_CMDLINE, &vm->cmdline);
    if (!ret)
        ret = db__col_dup(db, st, COL_DISKS, &vm->disks_json);
    if (!ret)
        ret = db__col_dup(db, st, COL_NICS, &vm->nics_json);
    if (!ret)
        ret = db__col_dup(db, st, COL_STATE_REASON, &vm->state_reason);
    if (ret) {
        db_vm_clear(vm);
        return ret;
    }
    vm->vcpus = (uint32_t)sqlite3_column_int64(st, COL_VCPUS);
    vm->memory_mib = (uint64_t)sqlite3_column_int64(st, COL_MEMORY_MIB);
    vm->autostart = sqlite3_column_int(st, COL_AUTOSTART) != 0;
    vm->created_at = sqlite3_column_int64(st, COL_CREATED_AT);
    vm->updated_at = sqlite3_column_int64(st, COL_UPDATED_AT);
    vm->started_at = sqlite3_column_int64(st, COL_STARTED_AT);
    vm->worker_pid = sqlite3_column_int64(st, COL_WORKER_PID);
    vm->cpu_quota_pct = (uint32_t)sqlite3_column_int64(st, COL_CPU_QUOTA_PCT);
    vm->cpu_weight = (uint32_t)sqlite3_column_int64(st, COL_CPU_WEIGHT);
    return 0;
}

static int vm_lookup(struct db_store *db, enum db_stmt_id which, const char *key, struct db_vm *out)
{
    sqlite3_stmt *st = db->stmt[which];
    int rc = SQLITE_OK;
    int ret;

    db__bind_text(st, 1, key, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        ret = vm_from_row(db, st, out);
    else if (rc == SQLITE_DONE)
        ret = db__fail(db, -ENOENT, "no VM with id or name %s", key);
    else
        ret = db__error(db, rc);
    db__stmt_done(st);
    return ret;
}

int db_vm_get(struct db_store *db, const char *id_or_name, struct db_vm *out)
{
    int ret;

    memset(out, 0, sizeof(*out));
    if (!id_or_name)
        return db__fail(db, -EINVAL, "VM id or name is required");
    ret = vm_lookup(db, STMT_VM_BY_ID, id_or_name, out);
    if (ret == -ENOENT)
        ret = vm_lookup(db, STMT_VM_BY_NAME, id_or_name, out);
    return ret;
}

int db_vm_list_page(struct db_store *db, const char *state_or_null, const char *after, size_t limit,
                    struct db_vm **out, size_t *count)
{
    sqlite3_stmt *st = db->stmt[state_or_null ? STMT_VM_LIST_STATE : STMT_VM_LIST];
    struct db_vm *vms = NULL, *grown;
    size_t n = 0, cap = 0;
    int rc = SQLITE_OK;
    int ret;

    *out = NULL;
    *count = 0;
    if (state_or_null)
        db__bind_text(st, 1, state_or_null, &rc);
    db__bind_text(st, 2, after ? after : "", &rc);
    db__bind_int(st, 3, limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit, &rc);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            grown = realloc(vms, cap * sizeof(*vms));
            if (!grown) {
                ret = db__fail(db, -ENOMEM, "out of memory");
                goto err_free;
            }
            vms = grown;
        }
        ret = vm_from_row(db, st, &vms[n]);
        if (ret)
            goto err_free;
        n++;
    }
    if (rc != SQLITE_DONE) {
        ret = db__error(db, rc);
        goto err_free;
    }
    db__stmt_done(st);
    *out = vms;
    *count = n;
    return 0;

err_free:
    db__stmt_done(st);
    db_vm_list_free(vms, n);
    return ret;
}

int db_vm_list(struct db_store *db, const char *state_or_null, struct db_vm **out, size_t *count)
{
    return db_vm_list_page(db, state_or_null, NULL, 0, out, count);
}

int db_vm_count(struct db_store *db, const char *state_or_null, uint64_t *out)
{
    sqlite3_stmt *st = db->stmt[state_or_null ? STMT_VM_COUNT_STATE : STMT_VM_COUNT];
    int rc = SQLITE_OK;
    int ret = 0;

    *out = 0;
    if (state_or_null)
        db__bind_text(st, 1, state_or_null, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    else
        ret = db__error(db, rc);
    db__stmt_done(st);
    return ret;
}

int db_vm_totals(struct db_store *db, struct db_state_total *out, size_t max, size_t *count)
{
    sqlite3_stmt *st = db->stmt[STMT_VM_TOTALS];
    size_t n = 0;
    int rc, ret = 0;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < max) {
        ret = db__col_copy(db, st, 0, out[n].state, sizeof(out[n].state));
        if (ret)
            break;
        out[n].vms = (uint64_t)sqlite3_column_int64(st, 1);
        out[n].vcpus = (uint64_t)sqlite3_column_int64(st, 2);
        out[n].memory_mib = (uint64_t)sqlite3_column_int64(st, 3);
        n++;
    }
    if (!ret && rc != SQLITE_DONE && rc != SQLITE_ROW)
        ret = db__error(db, rc);
    db__stmt_done(st);
    *count = n;
    return ret;
}

int db_read_begin(struct db_store *db)
{
    return db__stmt_run(db, db->stmt[STMT_BEGIN_READ]);
}

void db_read_end(struct db_store *db)
{
    if (!sqlite3_get_autocommit(db->sql))
        db__stmt_run(db, db->stmt[STMT_COMMIT]);
}

void db_vm_clear(struct db_vm *vm)
{
    if (!vm)
        return;
    free(vm->kernel);
    free(vm->initrd);
    free(vm->cmdline);
    free(vm->disks_json);
    free(vm->nics_json);
    free(vm->state_reason);
    /* Zeroed so a second clear, or a clear after a failed get, is harmless. */
    memset(vm, 0, sizeof(*vm));
}

void db_vm_list_free(struct db_vm *vms, size_t count)
{
    for (size_t i = 0; i < count; i++)
        db_vm_clear(&vms[i]);
    free(vms);
}

/* Returns 0, a negative errno, or fn's return value when that is negative. */
int db_events_since(struct db_store *db, int64_t since, size_t limit,
                    int (*fn)(void *opaque, const struct db_event *ev), void *opaque)
{
    sqlite3_stmt *st = db->stmt[STMT_EV_SINCE];
    int rc = SQLITE_OK;
    int ret = 0;

    if (!fn)
        return db__fail(db, -EINVAL, "no callback given");
    if (db->in_events_since)
        return db__fail(db, -EBUSY, "db_events_since() from its own callback");
    db__bind_int(st, 1, since, &rc);
    /* LIMIT -1 is SQLite's "no limit". */
    db__bind_int(st, 2, limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit, &rc);
    if (rc != SQLITE_OK) {
        db__stmt_done(st);
        return db__error(db, rc);
    }
    db->in_events_since = true;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_event ev = {
            .id = sqlite3_column_int64(st, 0),
            .ts = sqlite3_column_int64(st, 1),
        };

        ret = db__col_copy(db, st, 2, ev.type, sizeof(ev.type));
        if (!ret && sqlite3_column_type(st, 3) != SQLITE_NULL)
            ret = db__col_copy(db, st, 3, ev.vm_id, sizeof(ev.vm_id));
        if (ret)
            break;
        if (!ret)
            ret = db__col_copy(db, st, 5, ev.origin, sizeof(ev.origin));
        if (ret)
            break;
        ev.data_json = (const char *)sqlite3_column_text(st, 4);
        if (!ev.data_json) {
            ret = db__fail(db, -ENOMEM, "out of memory");
            break;
        }
        ret = fn(opaque, &ev);
        if (ret) {
            ret = ret < 0 ? ret : 0;
            break;
        }
    }
    db->in_events_since = false;
    if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = db__error(db, rc);
    db__stmt_done(st);
    return ret;
}

/* Runs one of the single-integer queries. */
static int64_t query_int(struct db_store *db, enum db_stmt_id which)
{
    sqlite3_stmt *st = db->stmt[which];
    int rc = sqlite3_step(st);
    int64_t v;

    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        v = rc == SQLITE_DONE ? 0 : db__error(db, rc);
    db__stmt_done(st);
    return v;
}

int64_t db_last_event_id(struct db_store *db)
{
    return query_int(db, STMT_EV_LAST_ID);
}

int64_t db_events_oldest_id(struct db_store *db)
{
    return query_int(db, STMT_EV_OLDEST_ID);
}

int64_t db_size_bytes(struct db_store *db)
{
    return query_int(db, STMT_SIZE);
}

const char *db_last_error(struct db_store *db)
{
    return db->errmsg;
}

int db_schema_version(struct db_store *db)
{
    return db->schema_version;
}

int db_known_schema_version(void)
{
    return db__migrations[db__migration_count - 1].number;
}

/* Reads an integer pragma such as user_version; returns an SQLite result code. */
static int pragma_int(sqlite3 *sql, const char *pragma, int *out)
{
    sqlite3_stmt *st;
    int rc;

    rc = sqlite3_prepare_v2(sql, pragma, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int check_version(const char *path, int version, char *err, size_t errlen)
{
    if (version <= db_known_schema_version())
        return 0;
    set_err(err, errlen,
            "database %s has schema version %d, this vmmd knows up to %d: upgrade vmmd", path,
            version, db_known_schema_version());
    return -EPROTO;
}

static bool sidecar_exists(const char *path, const char *suffix, bool need_data)
{
    char p[PATH_MAX + 16];
    struct stat st;

    if ((size_t)snprintf(p, sizeof(p), "%s%s", path, suffix) >= sizeof(p))
        return true; /* cannot tell: assume the worst */
    if (stat(p, &st) != 0)
        return false;
    return !need_data || st.st_size > 0;
}

/* The schema version through SQLite, read-only, for when the file header may be stale. */
static int probe_with_sqlite(const char *path, char *err, size_t errlen)
{
    sqlite3 *sql = NULL;
    int rc, ret, version = 0;

    rc = sqlite3_open_v2(path, &sql, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(sql, 1);
        sqlite3_busy_timeout(sql, DB_BUSY_TIMEOUT_MS);
        rc = pragma_int(sql, "PRAGMA user_version", &version);
    }
    if (rc == SQLITE_OK) {
        ret = check_version(path, version, err, errlen);
    } else if ((rc & 0xff) == SQLITE_READONLY) {
        /*
         * A hot journal or a WAL needing recovery cannot be read read-only.
         * Recovery only restores the last committed state, so let the
         * read-write open do it and check the version there instead.
         */
        ret = 0;
    } else {
        ret = sqlite_errno(sql, rc);
        set_err(err, errlen, "cannot open %s: %s", path,
                sql ? sqlite3_errmsg(sql) : sqlite3_errstr(rc));
    }
    sqlite3_close(sql);
    return ret;
}

/*
 * Refuses an existing file from a newer vmmd before anything could write to
 * it: even switching it to WAL rewrites its header. The version is read from
 * the file header (https://www.sqlite.org/fileformat.html, 1.3: "SQLite
 * format 3\0", user_version big-endian at offset 60) rather than through a
 * read-only SQLite connection, because such a connection creates the -wal and
 * -shm files of a WAL database that has none. The header is authoritative
 * unless a non-empty -wal or a -journal exists (a newer page 1 may sit in the
 * WAL, a crashed writer may have torn it); then SQLite reads it, read-only.
 */
static int probe_version(const char *path, char *err, size_t errlen)
{
    unsigned char hdr[100];
    ssize_t n;
    int fd, ret, version;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ret = -errno;
        set_err(err, errlen, "cannot open %s: %s", path, strerror(-ret));
        return ret;
    }
    n = pread(fd, hdr, sizeof(hdr), 0);
    ret = n < 0 ? -errno : 0;
    close(fd);
    if (ret) {
        set_err(err, errlen, "cannot read %s: %s", path, strerror(-ret));
        return ret;
    }
    if (n == 0)
        return 0; /* an empty file is an empty database */
    if (n < (ssize_t)sizeof(hdr) || memcmp(hdr, "SQLite format 3", 16) != 0) {
        set_err(err, errlen, "%s is not an SQLite database", path);
        return -EBADMSG;
    }
    if (sidecar_exists(path, "-wal", true) || sidecar_exists(path, "-journal", false))
        return probe_with_sqlite(path, err, errlen);
    version =
        (int)((uint32_t)hdr[60] << 24 | (uint32_t)hdr[61] << 16 | (uint32_t)hdr[62] << 8 | hdr[63]);
    return check_version(path, version, err, errlen);
}

/*
 * Makes sure path exists before SQLite opens it. SQLite would create the file
 * 0644 less the umask, but it holds every VM's definition: create it 0600
 * ourselves (SQLite then gives its -wal and -shm files the same mode).
 */
static int prepare_file(const char *path, char *err, size_t errlen)
{
    int fd, ret;

    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        return 0; /* an empty file is an empty database */
    }
    if (errno != EEXIST) {
        ret = -errno;
        set_err(err, errlen, "cannot create %s: %s", path, strerror(-ret));
        return ret;
    }
    return probe_version(path, err, errlen);
}

/* Runs SQL that returns nothing of interest, with the message in err on failure. */
static int exec_sql(struct db_store *db, const char *path, const char *sql, const char *what,
                    char *err, size_t errlen)
{
    int rc = sqlite3_exec(db->sql, sql, NULL, NULL, NULL);

    if (rc == SQLITE_OK)
        return 0;
    set_err(err, errlen, "%s: %s: %s", path, what, sqlite3_errmsg(db->sql));
    return sqlite_errno(db->sql, rc);
}

static int set_wal(struct db_store *db, const char *path, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc, ret = 0;

    rc = sqlite3_prepare_v2(db->sql, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        /* It answers with the mode in force: not "wal" when the file system cannot do it. */
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (!mode || strcmp(mode, "wal") != 0) {
            set_err(err, errlen, "%s: cannot use WAL mode (journal mode is %s)", path,
                    mode ? mode : "unknown");
            ret = -ENOTSUP;
        }
    } else {
        set_err(err, errlen, "%s: setting WAL mode: %s", path, sqlite3_errmsg(db->sql));
        ret = sqlite_errno(db->sql, rc);
    }
    sqlite3_finalize(st);
    if (!ret) {
        /*
         * Keep the -wal and -shm files when the daemon closes the database:
         * a restart then needs no new file and no new block, so a daemon
         * restarted on a full filesystem still opens the store and serves
         * reads (writes get 507 until there is room).
         */
        int one = 1;
        sqlite3_file_control(db->sql, "main", SQLITE_FCNTL_PERSIST_WAL, &one);
    }
    return ret;
}

/*
 * Applies the embedded migrations newer than version, each in its own
 * transaction with the user_version that records it, so a failure leaves
 * the database at the last migration that succeeded. foreign_keys is already
 * ON and cannot change inside a transaction: a migration that rebuilds a
 * referenced table must keep references valid or use PRAGMA defer_foreign_keys.
 */
static int migrate(struct db_store *db, const char *path, int version, char *err, size_t errlen)
{
    char what[96], pragma[48];
    int rc, ret, current;

    for (size_t i = 0; i < db__migration_count; i++) {
        const struct db__migration *m = &db__migrations[i];

        if (m->number <= version)
            continue;
        snprintf(what, sizeof(what), "migration %03d_%s", m->number, m->name);
        ret = exec_sql(db, path, "BEGIN IMMEDIATE", what, err, errlen);
        if (ret)
            return ret;
        /* Another vmmd may have applied it while we waited for the write lock. */
        current = 0;
        rc = pragma_int(db->sql, "PRAGMA user_version", &current);
        if (rc != SQLITE_OK) {
            set_err(err, errlen, "%s: %s: %s", path, what, sqlite3_errmsg(db->sql));
            ret = sqlite_errno(db->sql, rc);
            goto err_rollback;
        }
        if (current >= m->number) {
            version = current;
            ret = exec_sql(db, path, "COMMIT", what, err, errlen);
            if (ret)
                goto err_rollback;
            continue;
        }
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", m->number);
        ret = exec_sql(db, path, m->sql, what, err, errlen);
        if (!ret)
            ret = exec_sql(db, path, pragma, what, err, errlen);
        if (!ret)
            ret = exec_sql(db, path, "COMMIT", what, err, errlen);
        if (ret)
            goto err_rollback;
        version = m->number;
    }
    db->schema_version = version;
    return 0;

err_rollback:
    if (!sqlite3_get_autocommit(db->sql))
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

sqlite3_stmt *db__lazy_stmt(struct db_store *db, unsigned slot, const char *sql)
{
    int rc;

    if (slot >= DB__LAZY_STMT_MAX) {
        db__fail(db, -EINVAL, "statement slot %u out of range", slot);
        return NULL;
    }
    if (!db->lazy_stmt[slot]) {
        rc = sqlite3_prepare_v3(db->sql, sql, -1, SQLITE_PREPARE_PERSISTENT, &db->lazy_stmt[slot],
                                NULL);
        if (rc != SQLITE_OK) {
            db__error(db, rc);
            return NULL;
        }
    }
    return db->lazy_stmt[slot];
}

static void db_free(struct db_store *db)
{
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(db->stmt[i]);
    for (int i = 0; i < DB__LAZY_STMT_MAX; i++)
        sqlite3_finalize(db->lazy_stmt[i]);
    sqlite3_close(db->sql);
    free(db);
}

/* The last step of an open: every statement prepared, then *out = db; db freed on failure. */
static int prepare_and_hand_over(struct db_store *db, const char *path, struct db_store **out,
                                 char *err, size_t errlen)
{
    for (int i = 0; i < STMT_COUNT; i++) {
        int rc = sqlite3_prepare_v3(db->sql, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &db->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            set_err(err, errlen, "%s: preparing \"%s\": %s", path, stmt_sql[i],
                    sqlite3_errmsg(db->sql));
            rc = sqlite_errno(db->sql, rc);
            db_free(db);
            return rc;
        }
    }
    *out = db;
    return 0;
}

int db_open(const char *path, struct db_store **out, char *err, size_t errlen)
{
    struct db_store *db;
    int rc, ret, version = 0;

    set_err(err, errlen, "%s", "");
    if (!out || !path || !path[0]) {
        set_err(err, errlen, "no database path given");
        return -EINVAL;
    }
    *out = NULL;
    if (sqlite3_libversion_number() < DB_MIN_SQLITE_VERSION) {
        set_err(err, errlen, "SQLite %s is too old: vmmd needs 3.37 or newer",
                sqlite3_libversion());
        return -ENOTSUP;
    }
    ret = prepare_file(path, err, errlen);
    if (ret)
        return ret;

    db = calloc(1, sizeof(*db));
    if (!db) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* No SQLITE_OPEN_CREATE: prepare_file() made the file with the right mode. */
    rc = sqlite3_open_v2(path, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "cannot open %s: %s", path,
                db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc));
        ret = sqlite_errno(db->sql, rc);
        goto err_free;
    }
    sqlite3_extended_result_codes(db->sql, 1);
    sqlite3_busy_timeout(db->sql, DB_BUSY_TIMEOUT_MS);

    /* Again, before the first write: prepare_file() may have deferred it, or lost a race. */
    rc = pragma_int(db->sql, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "cannot read %s: %s", path, sqlite3_errmsg(db->sql));
        ret = sqlite_errno(db->sql, rc);
        goto err_free;
    }
    ret = check_version(path, version, err, errlen);
    if (ret)
        goto err_free;

    ret = set_wal(db, path, err, errlen);
    if (ret)
        goto err_free;
    /* NORMAL is durable in WAL mode except for the last commits before a power loss. */
    ret = exec_sql(db, path, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
                   "setting pragmas", err, errlen);
    if (ret)
        goto err_free;

    ret = migrate(db, path, version, err, errlen);
    if (ret)
        goto err_free;
    ret = check_version(path, db->schema_version, err, errlen);
    if (ret)
        goto err_free;

    /* After the migrations: the statements need the tables. */
    return prepare_and_hand_over(db, path, out, err, errlen);

err_free:
    db_free(db);
    return ret;
}

/*
 * A reader never migrates: the writer's db_open() has, and a file of any
 * other version is not one this code can read. Its write statements are
 * prepared with the rest (preparing does not write) and fail if stepped.
 */
int db_open_reader(const char *path, struct db_store **out, char *err, size_t errlen)
{
    struct db_store *db;
    int rc, ret, version = 0;

    set_err(err, errlen, "%s", "");
    *out = NULL;
    db = calloc(1, sizeof(*db));
    if (!db) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = sqlite3_open_v2(path, &db->sql, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(db->sql, 1);
        sqlite3_busy_timeout(db->sql, DB_BUSY_TIMEOUT_MS);
        rc = pragma_int(db->sql, "PRAGMA user_version", &version);
    }
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "cannot read %s: %s", path,
                db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc));
        ret = sqlite_errno(db->sql, rc);
        goto err_free;
    }
    if (version != db_known_schema_version()) {
        set_err(err, errlen, "%s: schema version %d, this vmmd reads %d", path, version,
                db_known_schema_version());
        ret = -EPROTO;
        goto err_free;
    }
    db->schema_version = version;
    return prepare_and_hand_over(db, path, out, err, errlen);

err_free:
    db_free(db);
    return ret;
}

void db_close(struct db_store *db)
{
    if (db)
        db_free(db);
}

/*
 * Steps st (its parameters bound, bind_rc their first error) and collects
 * each row into a growing array of item_size elements with from_row.
 */
int db__collect(struct db_store *db, sqlite3_stmt *st, int bind_rc, size_t item_size,
                   int (*from_row)(struct db_store *, sqlite3_stmt *, void *), void **out,
                   size_t *count)
{
    char *items = NULL, *grown;
    size_t n = 0, cap = 0;
    int rc = bind_rc, ret = 0;

    *out = NULL;
    *count = 0;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            grown = realloc(items, cap * item_size);
            if (!grown) {
                ret = db__fail(db, -ENOMEM, "out of memory");
                goto out;
            }
            items = grown;
        }
        ret = from_row(db, st, items + n * item_size);
        if (ret)
            goto out;
        n++;
    }
    if (rc != SQLITE_DONE)
        ret = db__error(db, rc);
out:
    db__stmt_done(st);
    if (ret) {
        free(items);
        return ret;
    }
    *out = items;
    *count = n;
    return 0;
}
