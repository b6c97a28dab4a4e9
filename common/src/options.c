/* Flag parsing and --help from one option table. */
#include "common/options.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

static const struct vmmd_opt *find(const struct vmmd_opt *opts, const char *name, size_t len)
{
    for (; opts->name; opts++)
        if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
            return opts;
    return NULL;
}

static int set_value(const struct vmmd_opt *o, void *target, const char *value, char *err,
                     size_t errlen)
{
    char *field = (char *)target + o->offset;

    switch (o->type) {
    case VMMD_OPT_STRING:
        *(const char **)field = value;
        return 0;
    case VMMD_OPT_UINT: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-' || v < o->min || v > o->max) {
            snprintf(err, errlen, "--%s: expected a whole number from %llu to %llu, got '%s'",
                     o->name, (unsigned long long)o->min, (unsigned long long)o->max, value);
            return -EINVAL;
        }
        *(uint64_t *)field = v;
        return 0;
    }
    case VMMD_OPT_CHOICE:
        for (int i = 0; o->choices[i]; i++) {
            if (strcmp(o->choices[i], value) == 0) {
                *(int *)field = i;
                return 0;
            }
        }
        snprintf(err, errlen, "--%s: '%s' is not one of the choices (see --help)", o->name, value);
        return -EINVAL;
    case VMMD_OPT_LIST: {
        struct vmmd_opt_list *list = (struct vmmd_opt_list *)field;
        if (list->count == VMMD_OPT_LIST_MAX) {
            snprintf(err, errlen, "--%s: at most %d allowed", o->name, VMMD_OPT_LIST_MAX);
            return -EINVAL;
        }
        list->items[list->count++] = value;
        return 0;
    }
    case VMMD_OPT_FLAG:
        *(bool *)field = true;
        return 0;
    }
    return -EINVAL;
}

int vmmd_opts_parse(const struct vmmd_opt *opts, void *target, int argc, char **argv, char *err,
                    size_t errlen)
{
    bool seen[64] = {false};

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *value = NULL, *eq;
        const struct vmmd_opt *o;
        size_t len;
        int rc;

        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
            return -EINVAL;
        }
        arg += 2;
        eq = strchr(arg, '=');
        len = eq ? (size_t)(eq - arg) : strlen(arg);
        o = find(opts, arg, len);
        if (!o) {
            snprintf(err, errlen, "unknown option --%.*s (see --help)", (int)len, arg);
            return -EINVAL;
        }
        if (o->type == VMMD_OPT_FLAG) {
            if (eq) {
                snprintf(err, errlen, "--%s takes no value", o->name);
                return -EINVAL;
            }
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errlen, "--%s needs a value", o->name);
            return -EINVAL;
        }
        if ((rc = set_value(o, target, value, err, errlen)))
            return rc;
        if (o - opts < 64)
            seen[o - opts] = true;
    }
    for (const struct vmmd_opt *o = opts; o->name; o++) {
        if (o->required && !seen[o - opts]) {
            snprintf(err, errlen, "--%s is required (see --help)", o->name);
            return -EINVAL;
        }
    }
    return 0;
}

void vmmd_opts_help(FILE *out, const char *usage, const struct vmmd_opt *opts)
{
    fprintf(out, "%s\n\nOptions:\n", usage);
    for (; opts->name; opts++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", opts->name, opts->metavar ? " " : "",
                 opts->metavar ? opts->metavar : "");
        fprintf(out, "  %-26s %s", left, opts->help);
        if (opts->choices) {
            fprintf(out, " (");
            for (int i = 0; opts->choices[i]; i++)
                fprintf(out, "%s%s", i ? "|" : "", opts->choices[i]);
            fprintf(out, ")");
        }
        fprintf(out, "\n");
    }
}

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = 0;
    return s;
}

int vmmd_opts_parse_file(const struct vmmd_opt *opts, void *target, const char *path,
                         char **storage, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *text = NULL, *line, *save = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    int rc = 0;

    *storage = NULL;
    if (!f) {
        snprintf(err, errlen, "config file %s: %s", path, strerror(errno));
        return -errno;
    }
    if (getdelim(&text, &cap, 0, f) < 0) {
        free(text);
        text = strdup("");
    }
    fclose(f);
    *storage = text;
    for (line = strtok_r(text, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save)) {
        char *hash = strchr(line, '#'), *eq, *name, *value;
        const struct vmmd_opt *o;
        char one[512];
        char *argv[2];

        lineno++;
        if (hash)
            *hash = 0;
        line = trim(line);
        if (!*line)
            continue;
        eq = strchr(line, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%u: expected name = value", path, lineno);
            return -EINVAL;
        }
        *eq = 0;
        name = trim(line);
        value = trim(eq + 1);
        o = find(opts, name, strlen(name));
        if (o && o->type == VMMD_OPT_FLAG) {
            if (strcmp(value, "true") == 0)
                *(bool *)((char *)target + o->offset) = true;
            else if (strcmp(value, "false") == 0)
                *(bool *)((char *)target + o->offset) = false;
            else
                rc = -EINVAL;
            if (rc)
                snprintf(err, errlen, "%s:%u: %s must be true or false", path, lineno, name);
            continue;
        }
        snprintf(one, sizeof(one), "--%s", name);
        argv[0] = one;
        argv[1] = value;
        rc = vmmd_opts_parse(opts, target, 2, argv, err, errlen);
        if (rc) {
            char why[256];
            snprintf(why, sizeof(why), "%s", err);
            snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
        }
    }
    return rc;
}
