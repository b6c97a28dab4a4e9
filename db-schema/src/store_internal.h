/*
 * What the store's source files share: the connection with its prepared
 * statements, and the helpers every write and read goes through (store.c).
 * Not part of the store's contract (include/db/store.h).
 */
#ifndef DB_STORE_INTERNAL_H
#define DB_STORE_INTERNAL_H

#include "db/store.h"

#include <sqlite3.h>

#define DB__STMT_MAX      64 /* store.c's statements, prepared at open */
#define DB__LAZY_STMT_MAX 48 /* the other files', prepared on first use */
#define DB__LAZY_NETWORKS 0  /* store_networks.c's slots start here */
#define DB__LAZY_STORAGE  24 /* store_storage.c's */
#define DB__LAZY_SNAPSHOTS 40 /* store_snapshots.c's */

struct db_store {
    sqlite3 *sql;
    sqlite3_stmt *stmt[DB__STMT_MAX];
    sqlite3_stmt *lazy_stmt[DB__LAZY_STMT_MAX];
    int schema_version;
    /*
     * Set while db_events_since() calls back. Its statement is mid-scan, so a
     * nested db_events_since() would reset it under the caller, and a write
     * could append events the running scan then visits.
     */
    bool in_events_since;
    char errmsg[256];
};

int64_t db__now_ms(void);
/* Keeps SQLite's message for db_last_error() and returns the matching errno. */
int db__error(struct db_store *db, int rc);
/* Keeps a message of our own for db_last_error() and returns ret. */
int db__fail(struct db_store *db, int ret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void db__stmt_done(sqlite3_stmt *st);
int db__stmt_run(struct db_store *db, sqlite3_stmt *st);
void db__bind_text(sqlite3_stmt *st, int i, const char *s, int *rc);
void db__bind_int(sqlite3_stmt *st, int i, int64_t v, int *rc);
int db__run_bound(struct db_store *db, sqlite3_stmt *st, int bind_rc);
int db__tx_begin(struct db_store *db);
int db__end_write(struct db_store *db, int ret, int64_t ev, int64_t *event_id);
int db__col_copy(struct db_store *db, sqlite3_stmt *st, int col, char *buf, size_t size);
int db__col_dup(struct db_store *db, sqlite3_stmt *st, int col, char **out);
/*
 * Steps st (its parameters bound, bind_rc their first error) and collects
 * each row into a growing array (free()) of item_size elements with from_row.
 */
int db__collect(struct db_store *db, sqlite3_stmt *st, int bind_rc, size_t item_size,
                int (*from_row)(struct db_store *, sqlite3_stmt *, void *), void **out,
                size_t *count);
/* lazy_stmt[slot], prepared from sql the first time; NULL (db_last_error() says why) on failure. */
sqlite3_stmt *db__lazy_stmt(struct db_store *db, unsigned slot, const char *sql);

#endif
