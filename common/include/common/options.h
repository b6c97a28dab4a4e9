/*
 * One typed option table per command: it parses --flags (and, for the
 * daemon later, the config file) and writes --help, so the three never
 * disagree. Values land in a caller's struct at the given offsets.
 */
#ifndef VMMD_OPTIONS_H
#define VMMD_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum vmmd_opt_type {
    VMMD_OPT_STRING, /* const char * */
    VMMD_OPT_UINT,   /* uint64_t within [min, max] */
    VMMD_OPT_FLAG,   /* bool, no value */
    VMMD_OPT_CHOICE, /* int: index into choices */
    VMMD_OPT_LIST,   /* struct vmmd_opt_list: repeatable string */
};

#define VMMD_OPT_LIST_MAX 16

struct vmmd_opt_list {
    const char *items[VMMD_OPT_LIST_MAX];
    unsigned count;
};

struct vmmd_opt {
    const char *name; /* without the leading "--" */
    enum vmmd_opt_type type;
    size_t offset;
    const char *metavar;
    const char *help;
    uint64_t min, max;
    const char *const *choices; /* NULL-terminated, for VMMD_OPT_CHOICE */
    int required;
};

/* Parses argv[0..argc) into target; -EINVAL with one line in err on a usage error. */
int vmmd_opts_parse(const struct vmmd_opt *opts, void *target, int argc, char **argv, char *err,
                    size_t errlen);
void vmmd_opts_help(FILE *out, const char *usage, const struct vmmd_opt *opts);
/*
 * Reads a config file of "name = value" lines (names as the flags, without
 * "--"; '#' starts a comment; flags take no value as "name = true") into
 * target. The strings it stores point into *storage, which the caller frees.
 */
int vmmd_opts_parse_file(const struct vmmd_opt *opts, void *target, const char *path,
                         char **storage, char *err, size_t errlen);

#endif
