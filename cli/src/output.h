/*
 * vmctl's human output: aligned tables with a header, key/value blocks,
 * human units (MiB/GiB, uptime as 3h12m) and state colours. Pure
 * formatting, so tests/unit/cli tests it without a daemon.
 */
#ifndef VMCTL_OUTPUT_H
#define VMCTL_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define CLI_TABLE_MAX_COLS 12

struct cli_table {
    size_t ncols, nrows, cap;
    const char *headers[CLI_TABLE_MAX_COLS];
    char **cells;  /* nrows * ncols, owned */
    int state_col; /* column coloured by VM state, or -1 */
};

void cli_table_init(struct cli_table *t, size_t ncols, const char *const *headers);
/* Adds a row of ncols strings (copied; NULL prints as "-"). Returns 0 or -ENOMEM. */
int cli_table_add(struct cli_table *t, const char *const *cells);
void cli_table_print(const struct cli_table *t, FILE *out, bool colour);
void cli_table_free(struct cli_table *t);

/* "3h12m", "2d4h", "45s"; negative gives "-". out has room for 32 bytes. */
void cli_format_duration(double seconds, char out[32]);
/* "512 MiB", "2 GiB", "1.5 GiB". */
void cli_format_mib(int64_t mib, char out[32]);
/* Bytes as B, KiB, MiB, GiB. */
void cli_format_bytes(int64_t bytes, char out[32]);
/* Parses an RFC 3339 UTC time ("2026-11-26T14:42:27.123Z"); 0 or -EINVAL. */
int cli_parse_time(const char *s, time_t *out);
/*
 * A string field of an API object, or NULL; a number field as an integer, or 0. Here rather
 * than in commands.c so that the pure files that build tables from answers can use them too.
 */
const char *cli_jstr(json_t *o, const char *key);
long long cli_jint(json_t *o, const char *key);
/* The ANSI colour escape for a VM state ("" for unknown states). */
const char *cli_state_colour(const char *state);

#endif
