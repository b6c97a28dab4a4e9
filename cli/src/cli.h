/*
 * vmctl's shared declarations: the connection settings every command uses,
 * exit codes, and the command table. vmctl talks to vmmd only through the
 * public HTTP API (api/openapi.json).
 */
#ifndef VMCTL_CLI_H
#define VMCTL_CLI_H

#include <stdbool.h>

/* Exit codes, as documented in vmctl(1). */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_REFUSED = 1,     /* the API answered with an error */
    CLI_EXIT_USAGE = 2,       /* bad flags or arguments */
    CLI_EXIT_UNREACHABLE = 3, /* cannot reach the daemon */
    CLI_EXIT_TIMEOUT = 4,     /* wait/shutdown ran out of time */
};

enum cli_output { CLI_OUTPUT_TABLE, CLI_OUTPUT_JSON };

struct cli_ctx {
    const char *socket_path; /* used when url is NULL */
    const char *url;         /* http://host:port or https://host:port, TCP */
    const char *cacert;      /* https: trust this CA (or self-signed) certificate */
    const char *tls_pin;     /* https: "sha256//..." of the daemon's public key, instead of a CA */
    char *token;             /* bearer token read from --token-file */
    const char *token_file;
    enum cli_output output;
    bool colour; /* stdout is a tty and NO_COLOR is unset */
};

struct cli_command {
    const char *name;
    int (*run)(struct cli_ctx *ctx, int argc, char **argv);
    const char *usage;   /* arguments after the command name */
    const char *summary; /* one line */
    const char *help;    /* the options, one per line; may be NULL */
};

extern const struct cli_command cli_commands[];
const struct cli_command *cli_find_command(const char *name);

/* Reads the token file named in ctx (if any). Returns 0 or an exit code. */
int cli_load_token(struct cli_ctx *ctx);

#endif

#include <getopt.h>

/* Option ids of the options every command takes. */
#define CLI_OPT_HELP       'h'
#define CLI_OPT_OUTPUT     'o'
#define CLI_OPT_SOCKET     0x1001
#define CLI_OPT_URL        0x1002
#define CLI_OPT_TOKEN_FILE 0x1003
#define CLI_OPT_CACERT     0x1004
#define CLI_OPT_TLS_PIN    0x1005
/* Command-specific option ids start here. */
#define CLI_OPT_FIRST 0x2000

/* cli_parse_options's result when --help was printed: the command exits 0. */
#define CLI_HELP_SHOWN (-1)

/*
 * Parses argv (argv[0] is the command name) with the common options plus
 * extra (terminated by a zero entry), calling on_opt for each extra option.
 * Leaves *first at the index of the first positional argument and checks
 * their count is within [min_pos, max_pos] (max_pos < 0: no limit). Returns
 * 0, CLI_HELP_SHOWN, or CLI_EXIT_USAGE after printing why.
 */
int cli_parse_options(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
                      const struct option *extra, int (*on_opt)(void *st, int id, const char *arg),
                      void *st, int min_pos, int max_pos, int *first);

/* Prints "vmctl CMD: msg" and the usage hint; returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
