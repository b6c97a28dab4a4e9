/*
 * Table and unit formatting for vmctl. Column widths count bytes of the
 * uncoloured text; colour escapes go around the padded cell so alignment
 * holds with colour on.
 */
#include "output.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void cli_table_init(struct cli_table *t, size_t ncols, const char *const *headers)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols < CLI_TABLE_MAX_COLS ? ncols : CLI_TABLE_MAX_COLS;
    for (size_t i = 0; i < t->ncols; i++)
        t->headers[i] = headers[i];
    t->state_col = -1;
}

int cli_table_add(struct cli_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **grown = realloc(t->cells, cap * t->ncols * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        t->cells = grown;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] : "-");
    t->nrows++;
    return 0;
}

void cli_table_print(const struct cli_table *t, FILE *out, bool colour)
{
    size_t width[CLI_TABLE_MAX_COLS];

    for (size_t c = 0; c < t->ncols; c++) {
        width[c] = strlen(t->headers[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            const char *cell = t->cells[r * t->ncols + c];
            size_t n = cell ? strlen(cell) : 1;
            if (n > width[c])
                width[c] = n;
        }
    }
    for (size_t c = 0; c < t->ncols; c++) {
        if (c + 1 == t->ncols)
            fprintf(out, "%s\n", t->headers[c]);
        else
            fprintf(out, "%-*s  ", (int)width[c], t->headers[c]);
    }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            const char *on = "";
            bool last = c + 1 == t->ncols;

            if (!cell)
                cell = "-";
            if (colour && (int)c == t->state_col)
                on = cli_state_colour(cell);
            fputs(on, out);
            if (last)
                fputs(cell, out);
            else
                fprintf(out, "%-*s", (int)width[c], cell);
            if (*on)
                fputs("\033[0m", out);
            fputs(last ? "\n" : "  ", out);
        }
    }
}

void cli_table_free(struct cli_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

void cli_format_duration(double seconds, char out[32])
{
    long long s;

    if (seconds < 0) {
        snprintf(out, 32, "-");
        return;
    }
    s = (long long)seconds;
    if (s < 60)
        snprintf(out, 32, "%llds", s);
    else if (s < 3600)
        snprintf(out, 32, "%lldm%llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, 32, "%lldh%lldm", s / 3600, (s % 3600) / 60);
    else
        snprintf(out, 32, "%lldd%lldh", s / 86400, (s % 86400) / 3600);
}

void cli_format_mib(int64_t mib, char out[32])
{
    if (mib >= 1024 && mib % 1024 == 0)
        snprintf(out, 32, "%lld GiB", (long long)(mib / 1024));
    else if (mib >= 1024)
        snprintf(out, 32, "%.1f GiB", (double)mib / 1024.0);
    else
        snprintf(out, 32, "%lld MiB", (long long)mib);
}

void cli_format_bytes(int64_t bytes, char out[32])
{
    if (bytes >= 1024LL * 1024 && bytes % (1024LL * 1024) == 0)
        cli_format_mib(bytes / (1024 * 1024), out);
    else if (bytes >= 1024LL * 1024 * 1024)
        snprintf(out, 32, "%.1f GiB", (double)bytes / (1024.0 * 1024 * 1024));
    else if (bytes >= 1024LL * 1024)
        snprintf(out, 32, "%.1f MiB", (double)bytes / (1024.0 * 1024));
    else if (bytes >= 1024)
        snprintf(out, 32, "%.1f KiB", (double)bytes / 1024.0);
    else
        snprintf(out, 32, "%lld B", (long long)bytes);
}

int cli_parse_time(const char *s, time_t *out)
{
    struct tm tm = {0};
    const char *rest;

    if (!s)
        return -EINVAL;
    rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -EINVAL;
    *out = timegm(&tm);
    return 0;
}

const char *cli_state_colour(const char *state)
{
    static const struct {
        const char *state, *colour;
    } table[] = {
        {"running", "\033[32m"},  {"paused", "\033[33m"},  {"starting", "\033[36m"},
        {"stopping", "\033[36m"}, {"crashed", "\033[31m"}, {"stopped", "\033[2m"},
        {"unknown", "\033[35m"}, /* a VM of an offline cluster member */
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(state, table[i].state) == 0)
            return table[i].colour;
    return "";
}

const char *cli_jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

long long cli_jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? (long long)json_number_value(v) : 0;
}
