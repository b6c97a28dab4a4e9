/*
 * Unit tests of the daemon's SQLite store (db-schema/include/db/store.h):
 * migrations and the schema-version guard, VM CRUD, the event written with
 * every change, and string round trips. Each test gets a fresh temporary
 * directory. SQLite is also used directly, to build databases the store must
 * refuse and to look at what it wrote.
 */
#include "db/store.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#define ID1        "00000000-0000-4000-8000-000000000001"
#define ID2        "00000000-0000-4000-8000-000000000002"
#define ID3        "00000000-0000-4000-8000-000000000003"
#define ID_UNKNOWN "ffffffff-ffff-4fff-bfff-ffffffffffff"

struct fixture {
    char dir[PATH_MAX - 64]; /* room for the file name in path */
    char path[PATH_MAX];
    struct db_store *db;
};

/* A copy of one event as db_events_since() delivered it. */
struct event_copy {
    int64_t id, ts;
    char type[32];
    char vm_id[DB_ID_LEN + 1];
    char origin[DB_NAME_MAX + 1];
    char *data;
};

struct event_log {
    struct event_copy ev[64];
    size_t n;
    size_t stop_after; /* return 1 after this many; 0: never */
    int fail_with;     /* returned instead of 1 when non-zero */
    struct db_store *db;
    int nested_ret, write_ret; /* what calls back into the store returned */
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *xstrdup(const char *s)
{
    char *p = s ? strdup(s) : NULL;

    assert_true(!s || p);
    return p;
}

/* A valid definition with every string owned, so db_vm_clear() releases it. */
static void make_vm(struct db_vm *vm, const char *id, const char *name)
{
    memset(vm, 0, sizeof(*vm));
    snprintf(vm->id, sizeof(vm->id), "%s", id);
    snprintf(vm->name, sizeof(vm->name), "%s", name);
    snprintf(vm->mode, sizeof(vm->mode), "pv");
    vm->vcpus = 2;
    vm->memory_mib = 512;
    vm->kernel = xstrdup("/var/lib/vmmd/images/vmlinuz");
    vm->initrd = xstrdup("/var/lib/vmmd/images/initrd.img");
    vm->cmdline = xstrdup("console=hvc0 root=/dev/vda rw");
    vm->disks_json = xstrdup("[{\"path\":\"/var/lib/vmmd/images/root.img\",\"readonly\":false}]");
    vm->nics_json = xstrdup("[{\"tap\":\"tap0\",\"mac\":\"52:54:00:12:34:56\"}]");
    vm->autostart = true;
    snprintf(vm->state, sizeof(vm->state), "stopped");
}

static void insert_vm(struct db_store *db, const char *id, const char *name)
{
    struct db_vm vm;

    make_vm(&vm, id, name);
    assert_int_equal(db_vm_insert(db, &vm, NULL), 0);
    db_vm_clear(&vm);
}

static void assert_str_or_null_equal(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

/* The definition fields, the ones a caller writes. */
static void assert_definition_equal(const struct db_vm *a, const struct db_vm *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->mode, b->mode);
    assert_int_equal(a->vcpus, b->vcpus);
    assert_int_equal(a->memory_mib, b->memory_mib);
    assert_str_or_null_equal(a->kernel, b->kernel);
    assert_str_or_null_equal(a->initrd, b->initrd);
    assert_str_or_null_equal(a->cmdline, b->cmdline);
    assert_str_or_null_equal(a->disks_json, b->disks_json);
    assert_str_or_null_equal(a->nics_json, b->nics_json);
    assert_int_equal(a->autostart, b->autostart);
}

static int log_event(void *opaque, const struct db_event *ev)
{
    struct event_log *log = opaque;
    struct event_copy *c;

    assert_true(log->n < sizeof(log->ev) / sizeof(log->ev[0]));
    c = &log->ev[log->n++];
    c->id = ev->id;
    c->ts = ev->ts;
    snprintf(c->type, sizeof(c->type), "%s", ev->type);
    snprintf(c->vm_id, sizeof(c->vm_id), "%s", ev->vm_id);
    snprintf(c->origin, sizeof(c->origin), "%s", ev->origin);
    c->data = xstrdup(ev->data_json);
    if (log->db) {
        log->nested_ret = db_events_since(log->db, 0, 0, log_event, log);
        log->write_ret = db_event_insert(log->db, "test.nested", NULL, NULL, NULL);
    }
    if (log->stop_after && log->n == log->stop_after)
        return log->fail_with ? log->fail_with : 1;
    return 0;
}

static void log_free(struct event_log *log)
{
    for (size_t i = 0; i < log->n; i++)
        free(log->ev[i].data);
    log->n = 0;
}

/* All events after since, in a log the caller frees. */
static void read_events(struct db_store *db, int64_t since, struct event_log *log)
{
    memset(log, 0, sizeof(*log));
    assert_int_equal(db_events_since(db, since, 0, log_event, log), 0);
}

static size_t count_events(struct db_store *db)
{
    struct event_log log;
    size_t n;

    read_events(db, 0, &log);
    n = log.n;
    log_free(&log);
    return n;
}

/* The one event that the write just made, checked against type and exact JSON text. */
static void assert_one_new_event(struct db_store *db, int64_t before, int64_t event_id,
                                 const char *type, const char *vm_id, const char *data)
{
    struct event_log log;

    read_events(db, before, &log);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.ev[0].id, event_id);
    assert_int_equal(db_last_event_id(db), event_id);
    assert_string_equal(log.ev[0].type, type);
    assert_string_equal(log.ev[0].vm_id, vm_id);
    assert_string_equal(log.ev[0].data, data);
    assert_true(log.ev[0].ts > 0 && log.ev[0].ts <= now_ms());
    log_free(&log);
}

/* json_extract(json, path) as text, through an in-memory database: a real JSON parser. */
static char *json_get(const char *json, const char *path)
{
    sqlite3 *sql;
    sqlite3_stmt *st;
    char *v = NULL;

    assert_int_equal(sqlite3_open(":memory:", &sql), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(sql, "SELECT json_extract(?1, ?2)", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    if (sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = xstrdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(sql);
    return v;
}

/* Runs SQL on a file with SQLite directly, as another program would. */
static void raw_exec(const char *path, const char *sql_text)
{
    sqlite3 *sql;
    char *msg = NULL;

    assert_int_equal(sqlite3_open(path, &sql), SQLITE_OK);
    if (sqlite3_exec(sql, sql_text, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql_text, msg);
    sqlite3_close(sql);
}

static char *raw_query_text(const char *path, const char *query)
{
    sqlite3 *sql;
    sqlite3_stmt *st;
    char *v = NULL;

    assert_int_equal(sqlite3_open_v2(path, &sql, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(sql, query, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = xstrdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(sql);
    return v;
}

static void assert_raw_query(const char *path, const char *query, const char *expect)
{
    char *v = raw_query_text(path, query);

    assert_non_null(v);
    assert_string_equal(v, expect);
    free(v);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static int setup_dir(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");

    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/vmmd-db-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/vmmd.db", f->dir);
    *state = f;
    return 0;
}

static int setup_db(void **state)
{
    struct fixture *f;
    char err[256];

    if (setup_dir(state))
        return -1;
    f = *state;
    if (db_open(f->path, &f->db, err, sizeof(err)) != 0) {
        print_error("db_open: %s\n", err);
        return -1;
    }
    return 0;
}

static void remove_suffixed(const char *path, const char *suffix)
{
    char p[PATH_MAX + 8];

    snprintf(p, sizeof(p), "%s%s", path, suffix);
    unlink(p);
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    db_close(f->db);
    remove_suffixed(f->path, "");
    remove_suffixed(f->path, "-wal");
    remove_suffixed(f->path, "-shm");
    remove_suffixed(f->path, "-journal");
    rmdir(f->dir);
    free(f);
    return 0;
}

static void test_fresh_db_gets_latest_version(void **state)
{
    struct fixture *f = *state;
    struct db_vm *vms = (struct db_vm *)1;
    size_t n = 99;
    char expect[16];

    assert_true(db_known_schema_version() >= 1);
    assert_int_equal(db_schema_version(f->db), db_known_schema_version());
    assert_int_equal(db_last_event_id(f->db), 0);
    assert_int_equal(db_vm_list(f->db, NULL, &vms, &n), 0);
    assert_null(vms);
    assert_int_equal(n, 0);
    assert_true(db_size_bytes(f->db) > 0);

    snprintf(expect, sizeof(expect), "%d", db_known_schema_version());
    assert_raw_query(f->path, "PRAGMA user_version", expect);
    assert_raw_query(f->path, "PRAGMA journal_mode", "wal");
    assert_raw_query(f->path,
                     "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_schema "
                     "WHERE name IN ('vms', 'events', 'vms_state_name') ORDER BY name)",
                     "events,vms,vms_state_name");
}

/* The file is 0600 whatever the umask: it holds every VM's kernel command line. */
static void test_new_file_is_private(void **state)
{
    struct fixture *f = *state;
    struct db_store *db;
    struct stat st;
    mode_t old = umask(0);
    char err[256];
    int ret;

    ret = db_open(f->path, &db, err, sizeof(err));
    umask(old);
    assert_int_equal(ret, 0);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    db_close(db);
}

static void test_reopen_is_idempotent(void **state)
{
    struct fixture *f = *state;
    struct db_store *second;
    struct db_vm vm;
    char err[256];
    int64_t last;

    insert_vm(f->db, ID1, "web");
    last = db_last_event_id(f->db);
    db_close(f->db);
    f->db = NULL;

    for (int i = 0; i < 2; i++) {
        assert_int_equal(db_open(f->path, &f->db, err, sizeof(err)), 0);
        assert_string_equal(err, "");
        assert_int_equal(db_schema_version(f->db), db_known_schema_version());
        assert_int_equal(db_last_event_id(f->db), last);
        assert_int_equal(count_events(f->db), 1);
        assert_int_equal(db_vm_get(f->db, "web", &vm), 0);
        assert_string_equal(vm.id, ID1);
        db_vm_clear(&vm);
        if (i == 0) {
            db_close(f->db);
            f->db = NULL;
        }
    }

    /* A second handle on the same file, as a work-queue thread would hold. */
    assert_int_equal(db_open(f->path, &second, err, sizeof(err)), 0);
    insert_vm(second, ID2, "db");
    assert_int_equal(db_vm_get(f->db, ID2, &vm), 0);
    assert_string_equal(vm.name, "db");
    db_vm_clear(&vm);
    assert_int_equal(db_last_event_id(f->db), db_last_event_id(second));
    db_close(second);
}

static void check_newer_schema_refused(struct fixture *f, const char *setup_sql)
{
    struct db_store *db = (struct db_store *)1;
    char err[256], wal[PATH_MAX + 8], shm[PATH_MAX + 8];
    char *before, *after;
    size_t before_len, after_len;

    raw_exec(f->path, setup_sql);
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    snprintf(shm, sizeof(shm), "%s-shm", f->path);
    assert_false(exists(wal));
    before = read_file(f->path, &before_len);

    assert_int_equal(db_open(f->path, &db, err, sizeof(err)), -EPROTO);
    assert_null(db);
    assert_non_null(strstr(err, "schema version 999"));
    assert_non_null(strstr(err, "upgrade vmmd"));
    assert_non_null(strstr(err, f->path));

    after = read_file(f->path, &after_len);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    assert_false(exists(wal));
    free(before);
    free(after);
}

static void test_newer_schema_refused(void **state)
{
    check_newer_schema_refused(*state, "CREATE TABLE future (x INTEGER);"
                                       "INSERT INTO future VALUES (42);"
                                       "PRAGMA user_version = 999;");
}

/* The same for a newer database already in WAL mode, as a newer vmmd leaves it. */
static void test_newer_wal_schema_refused(void **state)
{
    check_newer_schema_refused(*state, "PRAGMA journal_mode = WAL;"
                                       "CREATE TABLE future (x INTEGER);"
                                       "INSERT INTO future VALUES (42);"
                                       "PRAGMA user_version = 999;");
}

/*
 * A newer vmmd still running: its upgrade sits in the WAL, and the main
 * file's header still says version 0. The store must look through the WAL.
 */
static void test_newer_schema_in_live_wal_refused(void **state)
{
    struct fixture *f = *state;
    struct db_store *db;
    sqlite3 *holder;
    char err[256];
    char *before, *after;
    size_t before_len, after_len;

    assert_int_equal(sqlite3_open(f->path, &holder), SQLITE_OK);
    assert_int_equal(sqlite3_exec(holder,
                                  "PRAGMA journal_mode = WAL; CREATE TABLE future (x INTEGER);"
                                  "PRAGMA user_version = 999;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    before = read_file(f->path, &before_len);
    assert_int_equal(before[60] | before[61] | before[62] | before[63], 0);

    assert_int_equal(db_open(f->path, &db, err, sizeof(err)), -EPROTO);
    assert_null(db);
    assert_non_null(strstr(err, "schema version 999"));
    after = read_file(f->path, &after_len);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    free(before);
    free(after);
    sqlite3_close(holder);
}

static void test_not_a_database(void **state)
{
    struct fixture *f = *state;
    struct db_store *db;
    char junk[4096], err[256];
    char *after;
    size_t len;
    FILE *fp;

    memset(junk, 'x', sizeof(junk));
    fp = fopen(f->path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(junk, 1, sizeof(junk), fp), sizeof(junk));
    fclose(fp);

    assert_int_equal(db_open(f->path, &db, err, sizeof(err)), -EBADMSG);
    assert_null(db);
    assert_non_null(strstr(err, f->path));
    after = read_file(f->path, &len);
    assert_int_equal(len, sizeof(junk));
    assert_memory_equal(after, junk, len);
    free(after);
}

static void test_open_bad_path(void **state)
{
    struct fixture *f = *state;
    struct db_store *db;
    char path[PATH_MAX + 32], err[256];

    snprintf(path, sizeof(path), "%s/missing/vmmd.db", f->dir);
    assert_int_equal(db_open(path, &db, err, sizeof(err)), -ENOENT);
    assert_null(db);
    assert_non_null(strstr(err, "missing/vmmd.db"));
    assert_int_equal(db_open("", &db, err, sizeof(err)), -EINVAL);
}

static void test_insert_get_list(void **state)
{
    struct fixture *f = *state;
    struct db_vm in, out, *vms;
    int64_t t0 = now_ms(), t1;
    size_t n;

    make_vm(&in, ID1, "web");
    assert_int_equal(db_vm_insert(f->db, &in, NULL), 0);
    t1 = now_ms();
    insert_vm(f->db, ID2, "db");
    insert_vm(f->db, ID3, "cache");

    assert_int_equal(db_vm_get(f->db, ID1, &out), 0);
    assert_definition_equal(&out, &in);
    assert_string_equal(out.state, "stopped");
    assert_null(out.state_reason);
    assert_true(out.created_at >= t0 && out.created_at <= t1);
    assert_int_equal(out.updated_at, out.created_at);
    assert_int_equal(out.started_at, 0);
    assert_int_equal(out.worker_pid, 0);
    db_vm_clear(&out);

    assert_int_equal(db_vm_get(f->db, "web", &out), 0);
    assert_definition_equal(&out, &in);
    db_vm_clear(&out);
    db_vm_clear(&in);

    /* Ordered by name. */
    assert_int_equal(db_vm_list(f->db, NULL, &vms, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(vms[0].name, "cache");
    assert_string_equal(vms[1].name, "db");
    assert_string_equal(vms[2].name, "web");
    assert_string_equal(vms[2].id, ID1);
    assert_non_null(vms[2].kernel);
    db_vm_list_free(vms, n);

    assert_int_equal(db_vm_set_state(f->db, ID2, "running", NULL, 4242, NULL), 0);
    assert_int_equal(db_vm_list(f->db, "running", &vms, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(vms[0].id, ID2);
    assert_string_equal(vms[0].state, "running");
    db_vm_list_free(vms, n);
    assert_int_equal(db_vm_list(f->db, "stopped", &vms, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(vms[0].name, "cache");
    assert_string_equal(vms[1].name, "web");
    db_vm_list_free(vms, n);
    assert_int_equal(db_vm_list(f->db, "paused", &vms, &n), 0);
    assert_int_equal(n, 0);
    assert_null(vms);
}

/* A new definition is stopped with no worker, whatever the struct says; NULL JSON is "[]". */
static void test_insert_defaults(void **state)
{
    struct fixture *f = *state;
    struct db_vm in, out;

    make_vm(&in, ID1, "web");
    snprintf(in.state, sizeof(in.state), "running");
    in.worker_pid = 77;
    in.started_at = 5;
    free(in.disks_json);
    free(in.nics_json);
    free(in.initrd);
    free(in.cmdline);
    in.disks_json = in.nics_json = in.initrd = in.cmdline = NULL;
    assert_int_equal(db_vm_insert(f->db, &in, NULL), 0);
    assert_int_equal(db_vm_get(f->db, ID1, &out), 0);
    assert_string_equal(out.state, "stopped");
    assert_int_equal(out.worker_pid, 0);
    assert_int_equal(out.started_at, 0);
    assert_string_equal(out.disks_json, "[]");
    assert_string_equal(out.nics_json, "[]");
    assert_null(out.initrd);
    assert_null(out.cmdline);
    db_vm_clear(&out);
    db_vm_clear(&in);
}

/* "boot": "disk" (migration 005): no kernel, kept as '' in the NOT NULL column, read back NULL;
 * an older row, and a row written without a boot, read as "kernel". */
static void test_disk_boot(void **state)
{
    struct fixture *f = *state;
    struct db_vm in, out;

    make_vm(&in, ID1, "web");
    assert_int_equal(db_vm_insert(f->db, &in, NULL), 0);
    assert_int_equal(db_vm_get(f->db, ID1, &out), 0);
    assert_string_equal(out.boot, "kernel");
    db_vm_clear(&out);

    snprintf(in.boot, sizeof(in.boot), "disk");
    free(in.kernel);
    free(in.initrd);
    free(in.cmdline);
    in.kernel = in.initrd = in.cmdline = NULL;
    assert_int_equal(db_vm_update(f->db, &in, NULL), 0);
    assert_int_equal(db_vm_get(f->db, "web", &out), 0);
    assert_string_equal(out.boot, "disk");
    assert_null(out.kernel);
    assert_null(out.initrd);
    db_vm_clear(&out);
    db_vm_clear(&in);
}

static void test_duplicate_writes_nothing(void **state)
{
    struct fixture *f = *state;
    struct db_vm vm, *vms;
    int64_t last, ev = -1;
    size_t n;

    insert_vm(f->db, ID1, "web");
    last = db_last_event_id(f->db);

    make_vm(&vm, ID2, "web"); /* name taken */
    assert_int_equal(db_vm_insert(f->db, &vm, &ev), -EEXIST);
    assert_int_equal(ev, -1);
    assert_string_not_equal(db_last_error(f->db), "");
    db_vm_clear(&vm);
    make_vm(&vm, ID1, "other"); /* id taken */
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), -EEXIST);
    db_vm_clear(&vm);

    assert_int_equal(db_last_event_id(f->db), last);
    assert_int_equal(count_events(f->db), 1);
    assert_int_equal(db_vm_list(f->db, NULL, &vms, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(vms[0].name, "web");
    db_vm_list_free(vms, n);
    assert_int_equal(db_vm_get(f->db, "other", &vm), -ENOENT);
}

static void test_invalid_definitions(void **state)
{
    struct fixture *f = *state;
    struct db_vm vm;

    make_vm(&vm, ID1, "web");
    vm.vcpus = 0;
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), -EINVAL);
    assert_non_null(strstr(db_last_error(f->db), "vcpus"));
    vm.vcpus = 65;
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), -EINVAL);
    vm.vcpus = 64;
    vm.memory_mib = 8;
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), -EINVAL);
    vm.memory_mib = 1048577;
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), -EINVAL);
    vm.memory_mib = UINT64_MAX;
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), -EINVAL);
    vm.memory_mib = 1048576;
    snprintf(vm.mode, sizeof(vm.mode), "hvm");
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), -EINVAL);
    snprintf(vm.mode, sizeof(vm.mode), "full");
    free(vm.disks_json);
    vm.disks_json = xstrdup("{\"path\":\"/x\"}");
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), -EINVAL);
    free(vm.disks_json);
    vm.disks_json = xstrdup("[{\"path\":");
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), -EINVAL);
    free(vm.disks_json);
    vm.disks_json = NULL;
    snprintf(vm.boot, sizeof(vm.boot), "bios"); /* only kernel or disk */
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), -EINVAL);
    vm.boot[0] = '\0';
    vm.name[0] = '\0';
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), -EINVAL);
    memset(vm.name, 'a', sizeof(vm.name)); /* not terminated */
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), -EINVAL);
    snprintf(vm.name, sizeof(vm.name), "web");
    assert_int_equal(count_events(f->db), 0);

    /* The limits themselves are fine. */
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), 0);
    db_vm_clear(&vm);
    assert_int_equal(db_vm_get(f->db, "web", &vm), 0);
    assert_int_equal(vm.vcpus, 64);
    assert_int_equal(vm.memory_mib, 1048576);
    assert_string_equal(vm.mode, "full");
    db_vm_clear(&vm);
}

static void test_update(void **state)
{
    struct fixture *f = *state;
    struct db_vm vm, out;
    int64_t before, ev;
    char data[128];

    insert_vm(f->db, ID1, "web");
    insert_vm(f->db, ID2, "db");
    assert_int_equal(db_vm_get(f->db, ID1, &vm), 0);
    int64_t created = vm.created_at;

    snprintf(vm.name, sizeof(vm.name), "web2");
    vm.vcpus = 4;
    vm.memory_mib = 2048;
    vm.autostart = false;
    free(vm.cmdline);
    vm.cmdline = NULL;
    before = db_last_event_id(f->db);
    assert_int_equal(db_vm_update(f->db, &vm, &ev), 0);
    snprintf(data, sizeof(data), "{\"id\":\"%s\",\"name\":\"web2\"}", ID1);
    assert_one_new_event(f->db, before, ev, "vm.updated", ID1, data);

    assert_int_equal(db_vm_get(f->db, "web2", &out), 0);
    assert_definition_equal(&out, &vm);
    assert_int_equal(out.created_at, created);
    assert_true(out.updated_at >= created);
    assert_string_equal(out.state, "stopped");
    db_vm_clear(&out);
    assert_int_equal(db_vm_get(f->db, "web", &out), -ENOENT);

    /* Renaming onto another VM's name changes nothing and announces nothing. */
    before = db_last_event_id(f->db);
    snprintf(vm.name, sizeof(vm.name), "db");
    assert_int_equal(db_vm_update(f->db, &vm, NULL), -EEXIST);
    assert_int_equal(db_last_event_id(f->db), before);
    assert_int_equal(db_vm_get(f->db, ID1, &out), 0);
    assert_string_equal(out.name, "web2");
    db_vm_clear(&out);

    /* Nor does an invalid change. */
    snprintf(vm.name, sizeof(vm.name), "web3");
    vm.vcpus = 0;
    assert_int_equal(db_vm_update(f->db, &vm, NULL), -EINVAL);
    assert_int_equal(db_last_event_id(f->db), before);

    vm.vcpus = 1;
    snprintf(vm.id, sizeof(vm.id), ID_UNKNOWN);
    assert_int_equal(db_vm_update(f->db, &vm, NULL), -ENOENT);
    assert_int_equal(db_last_event_id(f->db), before);
    db_vm_clear(&vm);
}

static void test_delete(void **state)
{
    struct fixture *f = *state;
    struct db_vm vm;
    int64_t before, ev;
    char data[128];

    insert_vm(f->db, ID1, "web");
    before = db_last_event_id(f->db);
    assert_int_equal(db_vm_delete(f->db, ID1, &ev), 0);
    snprintf(data, sizeof(data), "{\"id\":\"%s\",\"name\":\"web\"}", ID1);
    assert_one_new_event(f->db, before, ev, "vm.deleted", ID1, data);
    assert_int_equal(db_vm_get(f->db, ID1, &vm), -ENOENT);
    assert_int_equal(db_vm_get(f->db, "web", &vm), -ENOENT);

    before = db_last_event_id(f->db);
    assert_int_equal(db_vm_delete(f->db, ID1, NULL), -ENOENT);
    assert_int_equal(db_last_event_id(f->db), before);

    /* The name is free again. */
    insert_vm(f->db, ID2, "web");
}

static void test_every_write_one_event(void **state)
{
    struct fixture *f = *state;
    struct db_vm vm;
    int64_t before, ev;
    char data[256];

    make_vm(&vm, ID1, "web");
    before = db_last_event_id(f->db);
    assert_int_equal(db_vm_insert(f->db, &vm, &ev), 0);
    snprintf(data, sizeof(data),
             "{\"id\":\"%s\",\"name\":\"web\",\"mode\":\"pv\",\"state\":\"stopped\"}", ID1);
    assert_one_new_event(f->db, before, ev, "vm.created", ID1, data);

    before = ev;
    snprintf(vm.name, sizeof(vm.name), "web2");
    assert_int_equal(db_vm_update(f->db, &vm, &ev), 0);
    snprintf(data, sizeof(data), "{\"id\":\"%s\",\"name\":\"web2\"}", ID1);
    assert_one_new_event(f->db, before, ev, "vm.updated", ID1, data);

    before = ev;
    assert_int_equal(db_vm_set_state(f->db, ID1, "starting", "start requested", 100, &ev), 0);
    snprintf(data, sizeof(data),
             "{\"id\":\"%s\",\"name\":\"web2\",\"state\":\"starting\",\"previous\":\"stopped\","
             "\"reason\":\"start requested\"}",
             ID1);
    assert_one_new_event(f->db, before, ev, "vm.state_changed", ID1, data);

    before = ev;
    assert_int_equal(db_event_insert(f->db, "daemon.started", NULL, "{\"version\":\"0.1.0\"}", &ev),
                     0);
    assert_one_new_event(f->db, before, ev, "daemon.started", "", "{\"version\":\"0.1.0\"}");

    before = ev;
    assert_int_equal(db_vm_delete(f->db, ID1, &ev), 0);
    snprintf(data, sizeof(data), "{\"id\":\"%s\",\"name\":\"web2\"}", ID1);
    assert_one_new_event(f->db, before, ev, "vm.deleted", ID1, data);
    assert_int_equal(count_events(f->db), 5);
    db_vm_clear(&vm);
}

static void test_set_state(void **state)
{
    struct fixture *f = *state;
    struct db_vm vm;
    struct event_log log;
    int64_t before, started;

    insert_vm(f->db, ID1, "web");

    before = db_last_event_id(f->db);
    assert_int_equal(db_vm_set_state(f->db, ID1, "starting", "api", 1234, NULL), 0);
    assert_int_equal(db_vm_get(f->db, ID1, &vm), 0);
    assert_string_equal(vm.state, "starting");
    assert_string_equal(vm.state_reason, "api");
    assert_int_equal(vm.worker_pid, 1234);
    assert_true(vm.started_at > 0);
    assert_int_equal(vm.started_at, vm.updated_at);
    started = vm.started_at;
    db_vm_clear(&vm);

    /* started_at marks the last start only; a NULL reason is JSON null. */
    assert_int_equal(db_vm_set_state(f->db, ID1, "running", NULL, 1234, NULL), 0);
    assert_int_equal(db_vm_set_state(f->db, ID1, "crashed", "worker died", 0, NULL), 0);
    assert_int_equal(db_vm_get(f->db, ID1, &vm), 0);
    assert_string_equal(vm.state, "crashed");
    assert_string_equal(vm.state_reason, "worker died");
    assert_int_equal(vm.worker_pid, 0);
    assert_int_equal(vm.started_at, started);
    db_vm_clear(&vm);

    read_events(f->db, before, &log);
    assert_int_equal(log.n, 3);
    const char *expect[][3] = {
        {"starting", "stopped", "api"},
        {"running", "starting", NULL},
        {"crashed", "running", "worker died"},
    };
    for (size_t i = 0; i < 3; i++) {
        char *st = json_get(log.ev[i].data, "$.state");
        char *prev = json_get(log.ev[i].data, "$.previous");
        char *reason = json_get(log.ev[i].data, "$.reason");
        char *name = json_get(log.ev[i].data, "$.name");

        assert_string_equal(log.ev[i].type, "vm.state_changed");
        assert_true(i == 0 || log.ev[i].id > log.ev[i - 1].id);
        assert_string_equal(st, expect[i][0]);
        assert_string_equal(prev, expect[i][1]);
        assert_str_or_null_equal(reason, expect[i][2]);
        assert_string_equal(name, "web");
        free(st);
        free(prev);
        free(reason);
        free(name);
    }
    assert_non_null(strstr(log.ev[1].data, "\"reason\":null"));
    log_free(&log);

    /* An unknown state is refused together with its event. */
    before = db_last_event_id(f->db);
    assert_int_equal(db_vm_set_state(f->db, ID1, "exploded", NULL, 0, NULL), -EINVAL);
    assert_int_equal(db_last_event_id(f->db), before);
    assert_int_equal(db_vm_get(f->db, ID1, &vm), 0);
    assert_string_equal(vm.state, "crashed");
    db_vm_clear(&vm);
}

static void test_unknown_id(void **state)
{
    struct fixture *f = *state;
    struct db_vm vm;

    insert_vm(f->db, ID1, "web");
    int64_t before = db_last_event_id(f->db);

    assert_int_equal(db_vm_get(f->db, ID_UNKNOWN, &vm), -ENOENT);
    assert_int_equal(db_vm_get(f->db, "nobody", &vm), -ENOENT);
    assert_int_equal(db_vm_set_state(f->db, ID_UNKNOWN, "running", NULL, 1, NULL), -ENOENT);
    assert_int_equal(db_vm_delete(f->db, ID_UNKNOWN, NULL), -ENOENT);
    /* State changes and deletes take ids, not names. */
    assert_int_equal(db_vm_set_state(f->db, "web", "running", NULL, 1, NULL), -ENOENT);
    assert_int_equal(db_vm_delete(f->db, "web", NULL), -ENOENT);
    make_vm(&vm, ID_UNKNOWN, "ghost");
    assert_int_equal(db_vm_update(f->db, &vm, NULL), -ENOENT);
    db_vm_clear(&vm);
    assert_int_equal(db_last_event_id(f->db), before);
}

/* A name that looks like another VM's id: the id wins, as the header promises. */
static void test_get_prefers_id(void **state)
{
    struct fixture *f = *state;
    struct db_vm vm;

    insert_vm(f->db, ID1, "web");
    insert_vm(f->db, ID2, ID1);
    assert_int_equal(db_vm_get(f->db, ID1, &vm), 0);
    assert_string_equal(vm.name, "web");
    db_vm_clear(&vm);
}

static void test_events_since(void **state)
{
    struct fixture *f = *state;
    struct event_log log;
    int64_t ids[10];
    char data[32];

    assert_int_equal(db_event_insert(f->db, "daemon.started", "", NULL, NULL), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(data, sizeof(data), "{\"n\":%d}", i);
        assert_int_equal(db_event_insert(f->db, "test.event", ID1, data, &ids[i]), 0);
    }

    read_events(f->db, 0, &log);
    assert_int_equal(log.n, 11);
    assert_string_equal(log.ev[0].type, "daemon.started");
    assert_string_equal(log.ev[0].vm_id, "");
    assert_string_equal(log.ev[0].data, "{}");
    for (size_t i = 1; i < log.n; i++) {
        char expect[32];

        assert_true(log.ev[i].id > log.ev[i - 1].id);
        assert_true(log.ev[i].ts >= log.ev[i - 1].ts);
        assert_int_equal(log.ev[i].id, ids[i - 1]);
        assert_string_equal(log.ev[i].vm_id, ID1);
        snprintf(expect, sizeof(expect), "{\"n\":%zu}", i - 1);
        assert_string_equal(log.ev[i].data, expect);
    }
    log_free(&log);

    /* The three after ids[4]. */
    memset(&log, 0, sizeof(log));
    assert_int_equal(db_events_since(f->db, ids[4], 3, log_event, &log), 0);
    assert_int_equal(log.n, 3);
    assert_int_equal(log.ev[0].id, ids[5]);
    assert_int_equal(log.ev[2].id, ids[7]);
    log_free(&log);

    read_events(f->db, ids[9], &log);
    assert_int_equal(log.n, 0);

    /* A callback stops the walk with 1, or fails it with a negative errno. */
    memset(&log, 0, sizeof(log));
    log.stop_after = 2;
    assert_int_equal(db_events_since(f->db, 0, 0, log_event, &log), 0);
    assert_int_equal(log.n, 2);
    log_free(&log);
    log.stop_after = 4;
    log.fail_with = -ECANCELED;
    assert_int_equal(db_events_since(f->db, 0, 0, log_event, &log), -ECANCELED);
    assert_int_equal(log.n, 4);
    log_free(&log);

    /* Calling back into the store mid-walk: refused, and the walk goes on. */
    memset(&log, 0, sizeof(log));
    log.db = f->db;
    log.stop_after = 1;
    assert_int_equal(db_events_since(f->db, 0, 0, log_event, &log), 0);
    assert_int_equal(log.nested_ret, -EBUSY);
    assert_int_equal(log.write_ret, -EBUSY);
    log_free(&log);
    assert_int_equal(db_last_event_id(f->db), ids[9]);
    read_events(f->db, 0, &log);
    assert_int_equal(log.n, 11);
    log_free(&log);
}

/* Retention: by count and by age, a prefix at a time, in bounded batches. */
/* A cluster's relayed events: marked with their member, each copied once, positions kept. */
static void test_event_relay(void **state)
{
    struct fixture *f = *state;
    struct db_event ev = {.type = "vm.created", .vm_id = ID1, .data_json = "{\"name\":\"a\"}"};
    struct event_log log;
    int64_t own, copied, pos = -1;

    assert_int_equal(db_event_relay_position(f->db, "m2id", &pos), 0);
    assert_int_equal(pos, 0);
    assert_int_equal(db_event_relay_start(f->db, "m2id", 40), 0);
    assert_int_equal(db_event_relay_start(f->db, "m2id", 7), 0); /* has one: kept */
    assert_int_equal(db_event_relay_position(f->db, "m2id", &pos), 0);
    assert_int_equal(pos, 40);
    assert_int_equal(db_event_insert(f->db, "daemon.started", "", NULL, &own), 0);
    assert_int_equal(db_event_relay(f->db, "m2id", "m2", 41, &ev, &copied), 0);
    assert_true(copied > own);
    /* Again, or an older one (a relay that reconnected): nothing written. */
    assert_int_equal(db_event_relay(f->db, "m2id", "m2", 41, &ev, NULL), -EALREADY);
    assert_int_equal(db_event_relay(f->db, "m2id", "m2", 12, &ev, NULL), -EALREADY);
    assert_int_equal(db_event_relay(f->db, "m3id", "m3", 0, &ev, NULL), -EINVAL);
    assert_int_equal(db_event_relay(f->db, "", "m3", 5, &ev, NULL), -EINVAL);
    ev.data_json = "[1]"; /* not an object: the CHECK refuses it, the position stays */
    assert_int_equal(db_event_relay(f->db, "m2id", "m2", 42, &ev, NULL), -EINVAL);
    assert_int_equal(db_event_relay_position(f->db, "m2id", &pos), 0);
    assert_int_equal(pos, 41);

    read_events(f->db, 0, &log);
    assert_int_equal(log.n, 2);
    assert_string_equal(log.ev[0].origin, "");
    assert_int_equal(log.ev[1].id, copied);
    assert_string_equal(log.ev[1].origin, "m2");
    assert_string_equal(log.ev[1].type, "vm.created");
    assert_string_equal(log.ev[1].vm_id, ID1);
    assert_string_equal(log.ev[1].data, "{\"name\":\"a\"}");
    log_free(&log);
}

static void test_events_prune(void **state)
{
    struct fixture *f = *state;
    struct event_log log;
    int64_t ids[20];
    size_t deleted = 99;

    /* Nothing yet: the next id to come is the oldest kept. */
    assert_int_equal(db_events_oldest_id(f->db), 1);
    assert_int_equal(db_events_prune(f->db, INT64_MAX, 0, 10, &deleted), 0);
    assert_int_equal(deleted, 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(db_event_insert(f->db, "test.event", ID1, NULL, &ids[i]), 0);
    assert_int_equal(db_events_oldest_id(f->db), ids[0]);

    /* Keep 15 by count: 5 go, but at most a batch of 3 at a time. */
    assert_int_equal(db_events_prune(f->db, 0, 15, 3, &deleted), 0);
    assert_int_equal(deleted, 3);
    assert_int_equal(db_events_oldest_id(f->db), ids[3]);
    assert_int_equal(db_events_prune(f->db, 0, 15, 3, &deleted), 0);
    assert_int_equal(deleted, 2);
    assert_int_equal(db_events_prune(f->db, 0, 15, 3, &deleted), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(db_events_oldest_id(f->db), ids[5]);
    read_events(f->db, 0, &log);
    assert_int_equal(log.n, 15);
    assert_int_equal(log.ev[0].id, ids[5]);
    log_free(&log);

    /* By age: the first five kept get an old timestamp, and only they go. */
    raw_exec(f->path, "UPDATE events SET ts = 1000 WHERE id < 11");
    assert_int_equal(db_events_prune(f->db, 2000, UINT64_MAX, 100, &deleted), 0);
    assert_int_equal(deleted, 5);
    assert_int_equal(db_events_oldest_id(f->db), ids[10]);

    /* A prefix only: an old event behind a new one stays, so what is kept has no hole. */
    raw_exec(f->path, "UPDATE events SET ts = 1000 WHERE id = 12");
    assert_int_equal(db_events_prune(f->db, 2000, UINT64_MAX, 100, &deleted), 0);
    assert_int_equal(deleted, 0);

    /* Count 0 empties the table; ids go on from where they were. */
    assert_int_equal(db_events_prune(f->db, 0, 0, 100, &deleted), 0);
    assert_int_equal(deleted, 10);
    assert_int_equal(db_events_oldest_id(f->db), ids[19] + 1);
    assert_int_equal(db_last_event_id(f->db), ids[19]);
    assert_int_equal(db_events_prune(f->db, 0, 0, 0, NULL), -EINVAL);
}

static void test_event_insert_validation(void **state)
{
    struct fixture *f = *state;
    char long_type[40];

    memset(long_type, 't', sizeof(long_type) - 1);
    long_type[sizeof(long_type) - 1] = '\0';
    assert_int_equal(db_event_insert(f->db, "x.y", NULL, "not json", NULL), -EINVAL);
    assert_int_equal(db_event_insert(f->db, "x.y", NULL, "[1, 2]", NULL), -EINVAL);
    assert_int_equal(db_event_insert(f->db, "x.y", NULL, "\"text\"", NULL), -EINVAL);
    assert_int_equal(db_event_insert(f->db, "", NULL, NULL, NULL), -EINVAL);
    assert_int_equal(db_event_insert(f->db, long_type, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(db_event_insert(f->db, NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(db_last_event_id(f->db), 0);
}

static void test_strings_round_trip(void **state)
{
    struct fixture *f = *state;
    static const char reason[] = "guest said \"bye\" 'now'\\n\nline two\ttab — ✓ 🚀 é ü";
    struct db_vm in, out;
    struct event_log log;
    char *v;
    int64_t ev;

    make_vm(&in, ID1, "quoted");
    free(in.kernel);
    free(in.initrd);
    free(in.cmdline);
    free(in.disks_json);
    free(in.nics_json);
    in.kernel = xstrdup("/var/lib/vmmd/ядро/vmlinuz-6.1 \"x\"");
    in.initrd = xstrdup("/srv/it's here/initrd.img");
    in.cmdline = xstrdup("console=ttyS0 init=\"/bin/sh -c 'echo \\\"hi\\\"'\" ü=✓ 😀 '; DROP "
                         "TABLE vms; --");
    in.disks_json = xstrdup("[{\"path\":\"/images/диск \\\"a\\\".img\",\"readonly\":true}]");
    in.nics_json = xstrdup("[{\"network\":\"lan \\u00e9\",\"mac\":\"52:54:00:00:00:01\"}]");
    assert_int_equal(db_vm_insert(f->db, &in, NULL), 0);
    assert_int_equal(db_vm_get(f->db, ID1, &out), 0);
    assert_definition_equal(&out, &in);
    db_vm_clear(&out);

    assert_int_equal(db_vm_set_state(f->db, ID1, "stopping", reason, 0, &ev), 0);
    assert_int_equal(db_vm_get(f->db, "quoted", &out), 0);
    assert_string_equal(out.state_reason, reason);
    db_vm_clear(&out);

    /* The event's JSON parses back to the same string. */
    read_events(f->db, ev - 1, &log);
    assert_int_equal(log.n, 1);
    v = json_get(log.ev[0].data, "$.reason");
    assert_non_null(v);
    assert_string_equal(v, reason);
    free(v);
    log_free(&log);

    v = raw_query_text(f->path, "SELECT count(*) FROM vms");
    assert_string_equal(v, "1");
    free(v);
    db_vm_clear(&in);
}

static void test_size_bytes(void **state)
{
    struct fixture *f = *state;
    char data[1100];
    int64_t size = db_size_bytes(f->db);

    assert_true(size > 0);
    assert_int_equal(size % 512, 0);
    memset(data, ' ', sizeof(data));
    memcpy(data, "{\"pad\":\"", 8);
    memset(data + 8, 'p', 1024);
    snprintf(data + 8 + 1024, sizeof(data) - 8 - 1024, "\"}");
    for (int i = 0; i < 200; i++)
        assert_int_equal(db_event_insert(f->db, "test.pad", NULL, data, NULL), 0);
    assert_true(db_size_bytes(f->db) >= size + 200 * 1024);
}

static void test_clear(void **state)
{
    struct fixture *f = *state;
    struct db_vm vm;

    insert_vm(f->db, ID1, "web");
    assert_int_equal(db_vm_set_state(f->db, ID1, "running", "because", 1, NULL), 0);
    assert_int_equal(db_vm_get(f->db, ID1, &vm), 0);
    assert_non_null(vm.state_reason);
    db_vm_clear(&vm);
    assert_null(vm.kernel);
    assert_null(vm.initrd);
    assert_null(vm.cmdline);
    assert_null(vm.disks_json);
    assert_null(vm.nics_json);
    assert_null(vm.state_reason);
    db_vm_clear(&vm);
    db_vm_clear(NULL);
    db_vm_list_free(NULL, 0);
}

/*
 * The daemon's hot path: GET /v1/vms with ~100 VMs on the loop thread. Prints
 * the cost per call; asserts only a generous bound, since the machines are
 * shared and the sanitizer build is several times slower.
 */
static void test_list_timing(void **state)
{
    struct fixture *f = *state;
    struct db_vm *vms;
    struct timespec t0, t1;
    const int loops = 2000;
    size_t n;
    double us_all, us_state;

    for (int i = 0; i < 100; i++) {
        char id[DB_ID_LEN + 1], name[16];

        snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i + 100);
        snprintf(name, sizeof(name), "vm-%03d", i);
        insert_vm(f->db, id, name);
        if (i % 2)
            assert_int_equal(
                db_vm_set_state(f->db, id, "running", "started by test", 1000 + i, NULL), 0);
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < loops; i++) {
        assert_int_equal(db_vm_list(f->db, NULL, &vms, &n), 0);
        assert_int_equal(n, 100);
        db_vm_list_free(vms, n);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    us_all = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / loops;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < loops; i++) {
        assert_int_equal(db_vm_list(f->db, "running", &vms, &n), 0);
        assert_int_equal(n, 50);
        db_vm_list_free(vms, n);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    us_state = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / loops;

    print_message("db_vm_list: 100 VMs %.1f us/call, 50 of 100 by state %.1f us/call\n", us_all,
                  us_state);
    assert_true(us_all < 20000);
}

static void make_network(struct db_network *n, const char *name, const char *bridge,
                         const char *cidr)
{
    memset(n, 0, sizeof(*n));
    snprintf(n->name, sizeof(n->name), "%s", name);
    snprintf(n->bridge, sizeof(n->bridge), "%s", bridge);
    snprintf(n->cidr, sizeof(n->cidr), "%s", cidr);
    n->nat = true;
    n->dhcp = true;
    snprintf(n->dns_domain, sizeof(n->dns_domain), "vmmd");
    n->mtu = 1500;
}

static void test_networks(void **state)
{
    struct fixture *f = *state;
    struct db_network n, out, *list;
    struct event_log log = {0};
    int64_t ev = 0, first = db_last_event_id(f->db);
    size_t count;

    make_network(&n, "default", "vmmd-default", "10.71.0.0/24");
    assert_int_equal(db_network_insert(f->db, &n, &ev), 0);
    assert_true(ev > first);
    /* Name, bridge and CIDR are each unique, and a refused insert leaves no event. */
    make_network(&n, "default", "vmmd-other", "10.72.0.0/24");
    assert_int_equal(db_network_insert(f->db, &n, NULL), -EEXIST);
    make_network(&n, "other", "vmmd-default", "10.72.0.0/24");
    assert_int_equal(db_network_insert(f->db, &n, NULL), -EEXIST);
    make_network(&n, "other", "vmmd-other", "10.71.0.0/24");
    assert_int_equal(db_network_insert(f->db, &n, NULL), -EEXIST);
    assert_int_equal(db_last_event_id(f->db), ev);
    /* The table's CHECKs: an MTU out of range, an empty bridge name. */
    make_network(&n, "other", "vmmd-other", "10.72.0.0/24");
    n.mtu = 100;
    assert_int_equal(db_network_insert(f->db, &n, NULL), -EINVAL);
    make_network(&n, "other", "", "10.72.0.0/24");
    assert_int_equal(db_network_insert(f->db, &n, NULL), -EINVAL);
    make_network(&n, "iso", "vmmd-iso", "192.168.90.0/28");
    n.nat = false;
    assert_int_equal(db_network_insert(f->db, &n, NULL), 0);

    assert_int_equal(db_network_get(f->db, "iso", &out), 0);
    assert_string_equal(out.bridge, "vmmd-iso");
    assert_string_equal(out.cidr, "192.168.90.0/28");
    assert_false(out.nat);
    assert_true(out.dhcp);
    assert_int_equal(out.mtu, 1500);
    assert_int_equal(db_network_get(f->db, "nope", &out), -ENOENT);
    assert_int_equal(db_network_list(f->db, &list, &count), 0);
    assert_int_equal(count, 2);
    assert_string_equal(list[0].name, "default");
    assert_string_equal(list[1].name, "iso");
    free(list);

    /* An update changes what may change; bridge and CIDR stay. */
    make_network(&n, "iso", "ignored", "10.99.0.0/24");
    n.dhcp = false;
    n.mtu = 9000;
    assert_int_equal(db_network_update(f->db, &n, NULL), 0);
    assert_int_equal(db_network_get(f->db, "iso", &out), 0);
    assert_false(out.dhcp);
    assert_int_equal(out.mtu, 9000);
    assert_string_equal(out.bridge, "vmmd-iso");
    assert_string_equal(out.cidr, "192.168.90.0/28");
    make_network(&n, "nope", "x", "10.1.0.0/24");
    assert_int_equal(db_network_update(f->db, &n, NULL), -ENOENT);

    assert_int_equal(db_network_delete(f->db, "iso", NULL), 0);
    assert_int_equal(db_network_delete(f->db, "iso", NULL), -ENOENT);
    assert_int_equal(db_events_since(f->db, first, 0, log_event, &log), 0);
    assert_int_equal(log.n, 4);
    assert_string_equal(log.ev[0].type, "network.created");
    assert_string_equal(log.ev[1].type, "network.created");
    assert_string_equal(log.ev[2].type, "network.updated");
    assert_string_equal(log.ev[3].type, "network.deleted");
    assert_string_equal(log.ev[3].vm_id, "");
    assert_non_null(strstr(log.ev[3].data, "\"name\":\"iso\""));
    assert_non_null(strstr(log.ev[3].data, "\"bridge\":\"vmmd-iso\""));
    log_free(&log);
}

static void make_image(struct db_image *img, const char *name, const char *state)
{
    memset(img, 0, sizeof(*img));
    snprintf(img->name, sizeof(img->name), "%s", name);
    snprintf(img->pool, sizeof(img->pool), "images");
    snprintf(img->state, sizeof(img->state), "%s", state);
    snprintf(img->format, sizeof(img->format), "qcow2");
    snprintf(img->source, sizeof(img->source), "upload");
}

static void make_volume(struct db_volume *v, const char *name, const char *image)
{
    memset(v, 0, sizeof(*v));
    snprintf(v->name, sizeof(v->name), "%s", name);
    snprintf(v->pool, sizeof(v->pool), "volumes");
    snprintf(v->image, sizeof(v->image), "%s", image);
    snprintf(v->clone, sizeof(v->clone), "%s", image[0] ? "sparse-copy" : "empty");
    v->size_mib = 64;
}

static void test_images_and_volumes(void **state)
{
    struct fixture *f = *state;
    struct db_image img, out, *images;
    struct db_volume vol, vout, *vols;
    struct db_vm_ref *users;
    struct db_vm vm;
    struct event_log log = {0};
    int64_t first = db_last_event_id(f->db);
    size_t count;

    make_image(&img, "debian", "importing");
    assert_int_equal(db_image_insert(f->db, &img, NULL), 0);
    assert_int_equal(db_image_insert(f->db, &img, NULL), -EEXIST);
    /* CHECKs: a sha256 that is not 64 characters, an unknown state. */
    make_image(&img, "bad", "importing");
    snprintf(img.sha256, sizeof(img.sha256), "abc");
    assert_int_equal(db_image_insert(f->db, &img, NULL), -EINVAL);
    make_image(&img, "bad", "done");
    assert_int_equal(db_image_insert(f->db, &img, NULL), -EINVAL);

    /* The import finishes: sizes, digest and state in one write with image.ready. */
    make_image(&img, "debian", "ready");
    img.size_bytes = 1 << 20;
    img.source_bytes = 4096;
    memset(img.sha256, 'a', 64);
    assert_int_equal(db_image_update(f->db, &img, "image.ready", NULL), 0);
    /* A progress-only write has no event. */
    assert_int_equal(db_image_update(f->db, &img, NULL, NULL), 0);
    assert_int_equal(db_image_get(f->db, "debian", &out), 0);
    assert_string_equal(out.state, "ready");
    assert_int_equal(out.size_bytes, 1 << 20);
    assert_int_equal(out.source_bytes, 4096);
    assert_int_equal(strlen(out.sha256), 64);
    assert_string_equal(out.source, "upload");
    assert_int_equal(db_image_get(f->db, "nope", &out), -ENOENT);
    make_image(&img, "nope", "ready");
    assert_int_equal(db_image_update(f->db, &img, "image.ready", NULL), -ENOENT);

    /* A clone of it and an empty volume; a clone of an image that is not there is refused. */
    make_volume(&vol, "web-root", "debian");
    assert_int_equal(db_volume_insert(f->db, &vol, NULL), 0);
    assert_int_equal(db_volume_insert(f->db, &vol, NULL), -EEXIST);
    make_volume(&vol, "data", "");
    assert_int_equal(db_volume_insert(f->db, &vol, NULL), 0);
    make_volume(&vol, "orphan", "nope");
    assert_int_equal(db_volume_insert(f->db, &vol, NULL), -ENOENT);
    make_volume(&vol, "huge", "");
    vol.size_mib = 0;
    assert_int_equal(db_volume_insert(f->db, &vol, NULL), -EINVAL);
    assert_int_equal(db_volume_get(f->db, "data", &vout), 0);
    assert_string_equal(vout.image, "");
    assert_string_equal(vout.clone, "empty");
    assert_int_equal(db_volume_list(f->db, &vols, &count), 0);
    assert_int_equal(count, 2);
    assert_string_equal(vols[0].name, "data");
    assert_string_equal(vols[1].image, "debian");
    free(vols);
    assert_int_equal(db_volume_resize(f->db, "data", 128, NULL), 0);
    assert_int_equal(db_volume_get(f->db, "data", &vout), 0);
    assert_int_equal(vout.size_mib, 128);
    assert_int_equal(db_volume_resize(f->db, "nope", 128, NULL), -ENOENT);

    /* The image cannot go while a volume was cloned from it. */
    assert_int_equal(db_image_delete(f->db, "debian", NULL), -EBUSY);
    assert_int_equal(db_image_get(f->db, "debian", &out), 0);

    /* Which VMs name a volume in their disks. */
    make_vm(&vm, ID1, "web");
    free(vm.disks_json);
    vm.disks_json = xstrdup("[{\"path\":\"/x.img\"},{\"volume\":\"web-root\",\"readonly\":true}]");
    assert_int_equal(db_vm_insert(f->db, &vm, NULL), 0);
    db_vm_clear(&vm);
    insert_vm(f->db, ID2, "other");
    assert_int_equal(db_volume_users(f->db, "web-root", &users, &count), 0);
    assert_int_equal(count, 1);
    assert_string_equal(users[0].name, "web");
    assert_string_equal(users[0].id, ID1);
    assert_true(users[0].readonly);
    free(users);
    assert_int_equal(db_volume_users(f->db, "data", &users, &count), 0);
    assert_int_equal(count, 0);
    free(users);

    assert_int_equal(db_volume_delete(f->db, "web-root", NULL), 0);
    assert_int_equal(db_volume_delete(f->db, "web-root", NULL), -ENOENT);
    assert_int_equal(db_image_delete(f->db, "debian", NULL), 0);
    assert_int_equal(db_image_list(f->db, &images, &count), 0);
    assert_int_equal(count, 0);
    free(images);

    assert_int_equal(db_events_since(f->db, first, 0, log_event, &log), 0);
    {
        static const char *const want[] = {"image.created", "image.ready", "volume.created",
                                           "volume.created", "volume.resized", "vm.created",
                                           "vm.created", "volume.deleted", "image.deleted"};
        assert_int_equal(log.n, sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < log.n; i++)
            assert_string_equal(log.ev[i].type, want[i]);
    }
    assert_non_null(strstr(log.ev[1].data, "\"state\":\"ready\""));
    assert_non_null(strstr(log.ev[2].data, "\"image\":\"debian\""));
    log_free(&log);
}

static void test_forwards(void **state)
{
    struct fixture *f = *state;
    struct db_network n;
    struct db_forward fwd = {0}, *list;
    struct event_log log = {0};
    int64_t first;
    size_t count;

    insert_vm(f->db, ID1, "web");
    make_network(&n, "default", "vmmd-default", "10.71.0.0/24");
    assert_int_equal(db_network_insert(f->db, &n, NULL), 0);
    make_network(&n, "second", "vmmd-second", "10.72.0.0/24");
    assert_int_equal(db_network_insert(f->db, &n, NULL), 0);
    first = db_last_event_id(f->db);

    snprintf(fwd.network, sizeof(fwd.network), "default");
    snprintf(fwd.protocol, sizeof(fwd.protocol), "tcp");
    snprintf(fwd.vm_id, sizeof(fwd.vm_id), "%s", ID1);
    fwd.host_port = 8080;
    fwd.vm_port = 80;
    assert_int_equal(db_forward_insert(f->db, &fwd, NULL), 0);
    assert_true(fwd.id > 0);
    /* The same protocol, port and address again; another protocol is fine. */
    assert_int_equal(db_forward_insert(f->db, &fwd, NULL), -EEXIST);
    snprintf(fwd.protocol, sizeof(fwd.protocol), "udp");
    assert_int_equal(db_forward_insert(f->db, &fwd, NULL), 0);
    /* A VM or network that does not exist. */
    snprintf(fwd.protocol, sizeof(fwd.protocol), "tcp");
    fwd.host_port = 9090;
    snprintf(fwd.vm_id, sizeof(fwd.vm_id), "%s", ID2);
    assert_int_equal(db_forward_insert(f->db, &fwd, NULL), -ENOENT);
    snprintf(fwd.vm_id, sizeof(fwd.vm_id), "%s", ID1);
    snprintf(fwd.network, sizeof(fwd.network), "nope");
    assert_int_equal(db_forward_insert(f->db, &fwd, NULL), -ENOENT);
    snprintf(fwd.network, sizeof(fwd.network), "second");
    snprintf(fwd.host_address, sizeof(fwd.host_address), "192.0.2.2");
    fwd.host_port = 0;
    assert_int_equal(db_forward_insert(f->db, &fwd, NULL), -EINVAL);
    fwd.host_port = 2222;
    fwd.vm_port = 22;
    assert_int_equal(db_forward_insert(f->db, &fwd, NULL), 0);

    assert_int_equal(db_forward_list(f->db, "default", &list, &count), 0);
    assert_int_equal(count, 2);
    assert_string_equal(list[0].protocol, "tcp");
    assert_string_equal(list[0].host_address, "");
    assert_int_equal(list[0].host_port, 8080);
    assert_int_equal(list[0].vm_port, 80);
    assert_string_equal(list[0].vm_id, ID1);
    free(list);
    assert_int_equal(db_forward_list(f->db, NULL, &list, &count), 0);
    assert_int_equal(count, 3);
    assert_string_equal(list[2].host_address, "192.0.2.2");
    /* An id of another network is not this network's to delete. */
    assert_int_equal(db_forward_delete(f->db, "default", list[2].id, NULL), -ENOENT);
    assert_int_equal(db_forward_delete(f->db, "second", list[2].id, NULL), 0);
    free(list);

    assert_int_equal(db_events_since(f->db, first, 0, log_event, &log), 0);
    assert_int_equal(log.n, 4);
    assert_string_equal(log.ev[0].type, "network.forward_added");
    assert_string_equal(log.ev[0].vm_id, ID1);
    assert_non_null(strstr(log.ev[0].data, "\"vm\":\"web\""));
    assert_non_null(strstr(log.ev[0].data, "\"host_port\":8080"));
    assert_string_equal(log.ev[3].type, "network.forward_removed");
    log_free(&log);

    /* Deleting the VM or the network takes its forwards along. */
    assert_int_equal(db_network_delete(f->db, "default", NULL), 0);
    assert_int_equal(db_forward_list(f->db, NULL, &list, &count), 0);
    assert_int_equal(count, 0);
    free(list);
}

static void test_settings(void **state)
{
    struct fixture *f = *state;
    char buf[16];

    assert_int_equal(db_setting_get(f->db, "default_network", buf, sizeof(buf)), -ENOENT);
    assert_int_equal(db_setting_set(f->db, "default_network", "created"), 0);
    assert_int_equal(db_setting_set(f->db, "default_network", "done"), 0);
    assert_int_equal(db_setting_get(f->db, "default_network", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "done");
    assert_int_equal(db_setting_get(f->db, "default_network", buf, 3), -EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_db_gets_latest_version, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_new_file_is_private, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_is_idempotent, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_newer_wal_schema_refused, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_in_live_wal_refused, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_open_bad_path, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_insert_get_list, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_insert_defaults, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_disk_boot, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_writes_nothing, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_definitions, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_update, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_every_write_one_event, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_set_state, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_id, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_get_prefers_id, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_events_since, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_event_relay, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_events_prune, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_event_insert_validation, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_strings_round_trip, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_size_bytes, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_clear, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_list_timing, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_networks, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_forwards, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_images_and_volumes, setup_db, teardown),
        cmocka_unit_test_setup_teardown(test_settings, setup_db, teardown),
    };

    return cmocka_run_group_tests_name("db.store", tests, NULL, NULL);
}
