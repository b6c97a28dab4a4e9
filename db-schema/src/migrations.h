/*
 * The schema migrations compiled into vmmd. The table itself is generated at
 * build time from migrations/NNN_<name>.sql by cmake/embed_migrations.cmake,
 * which guarantees numbers 1..db__migration_count in order.
 */
#ifndef DB_MIGRATIONS_H
#define DB_MIGRATIONS_H

#include <stddef.h>

struct db__migration {
    int number;       /* recorded in PRAGMA user_version once applied */
    const char *name; /* file name without number and .sql, for messages */
    const char *sql;
};

extern const struct db__migration db__migrations[];
extern const size_t db__migration_count;

#endif
