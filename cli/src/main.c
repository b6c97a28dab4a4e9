/*
 * vmctl: the command-line client of vmmd. main() reads the connection
 * settings (flags win over VMMD_SOCKET/VMMD_URL, which win over the default
 * ./var/vmmd.sock), finds the command and runs it. Commands live in
 * commands.c, the console in console.c, HTTP in http.c, tables in output.c.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const struct option common_options[] = {
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {"output", required_argument, NULL, CLI_OPT_OUTPUT},
    {"socket", required_argument, NULL, CLI_OPT_SOCKET},
    {"url", required_argument, NULL, CLI_OPT_URL},
    {"token-file", required_argument, NULL, CLI_OPT_TOKEN_FILE},
    {"cacert", required_argument, NULL, CLI_OPT_CACERT},
    {"tls-pin", required_argument, NULL, CLI_OPT_TLS_PIN},
};
#define N_COMMON (sizeof(common_options) / sizeof(common_options[0]))

static const char common_help[] =
    "  -o, --output table|json  output format (json: the API's body as returned)\n"
    "      --socket PATH        the daemon's Unix socket (VMMD_SOCKET; default ./var/vmmd.sock)\n"
    "      --url URL            the daemon over TCP, https://HOST:PORT (VMMD_URL)\n"
    "      --token-file PATH    bearer token for --url (VMMD_TOKEN_FILE)\n"
    "      --cacert PATH        trust this certificate for https, e.g. the daemon's\n"
    "                           self-signed <state-dir>/tls-cert.pem (VMMD_CACERT)\n"
    "      --tls-pin sha256//B64  trust the daemon whose public key has this hash, as\n"
    "                           `vmctl host` and its log show it (VMMD_TLS_PIN)\n"
    "  -h, --help               this help\n";

static bool socket_flag, url_flag;

static void print_command_help(const struct cli_command *cmd)
{
    printf("Usage: vmctl %s%s%s\n\n%s\n\nOptions:\n", cmd->name, *cmd->usage ? " " : "", cmd->usage,
           cmd->summary);
    if (cmd->help)
        fputs(cmd->help, stdout);
    fputs(common_help, stdout);
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "vmctl %s: ", cmd ? cmd->name : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'vmctl %s%s--help'.\n", cmd ? cmd->name : "", cmd ? " " : "");
    if (cmd)
        fprintf(stderr, "Usage: vmctl %s %s\n", cmd->name, cmd->usage);
    return CLI_EXIT_USAGE;
}

/* Handles one common option; returns 0 or CLI_EXIT_USAGE. */
static int common_option(struct cli_ctx *ctx, const struct cli_command *cmd, int id,
                         const char *arg)
{
    switch (id) {
    case CLI_OPT_OUTPUT:
        if (strcmp(arg, "table") == 0)
            ctx->output = CLI_OUTPUT_TABLE;
        else if (strcmp(arg, "json") == 0)
            ctx->output = CLI_OUTPUT_JSON;
        else
            return cli_usage_error(cmd, "--output must be table or json, not '%s'", arg);
        return 0;
    case CLI_OPT_SOCKET:
        ctx->socket_path = arg;
        socket_flag = true;
        return 0;
    case CLI_OPT_URL:
        ctx->url = arg;
        url_flag = true;
        return 0;
    case CLI_OPT_TOKEN_FILE:
        ctx->token_file = arg;
        return 0;
    case CLI_OPT_CACERT:
        ctx->cacert = arg;
        return 0;
    case CLI_OPT_TLS_PIN:
        if (strncmp(arg, "sha256//", 8) != 0)
            return cli_usage_error(cmd,
                                   "--tls-pin must be sha256//<base64>, as vmctl host shows it");
        ctx->tls_pin = arg;
        return 0;
    }
    return CLI_EXIT_USAGE;
}

int cli_parse_options(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
                      const struct option *extra, int (*on_opt)(void *st, int id, const char *arg),
                      void *st, int min_pos, int max_pos, int *first)
{
    struct option all[48];
    size_t n = 0;
    int id, npos;

    /*
     * The command's own options first: getopt_long takes the first of two with one name, so a
     * command may give a common option's name its own meaning (migrate's --token-file is the
     * target's token; the source's comes before the command or from VMMD_TOKEN_FILE).
     */
    for (; extra && extra->name && n < 40; extra++)
        all[n++] = *extra;
    for (size_t i = 0; i < N_COMMON; i++)
        all[n++] = common_options[i];
    memset(&all[n], 0, sizeof(all[n]));
    optind = 0; /* glibc: full reinitialisation */
    opterr = 1;
    while ((id = getopt_long(argc, argv, "ho:", all, NULL)) != -1) {
        int rc;

        if (id == '?')
            return cli_usage_error(cmd, "bad option");
        if (id == CLI_OPT_HELP) {
            print_command_help(cmd);
            return CLI_HELP_SHOWN;
        }
        if (id >= CLI_OPT_FIRST)
            rc = on_opt ? on_opt(st, id, optarg) : CLI_EXIT_USAGE;
        else
            rc = common_option(ctx, cmd, id, optarg);
        if (rc)
            return rc;
    }
    npos = argc - optind;
    if (npos < min_pos)
        return cli_usage_error(cmd, "missing argument");
    if (max_pos >= 0 && npos > max_pos)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + max_pos]);
    *first = optind;
    if (socket_flag && !url_flag)
        ctx->url = NULL; /* --socket wins over VMMD_URL */
    return cli_load_token(ctx);
}

int cli_load_token(struct cli_ctx *ctx)
{
    char buf[4096];
    size_t n;
    FILE *f;

    if (!ctx->token_file || ctx->token)
        return 0;
    f = fopen(ctx->token_file, "r");
    if (!f) {
        fprintf(stderr, "vmctl: cannot read the token file %s: %s\n", ctx->token_file,
                strerror(errno));
        return CLI_EXIT_USAGE;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    ctx->token = strdup(buf);
    return ctx->token ? 0 : CLI_EXIT_USAGE;
}

static void print_main_help(void)
{
    printf("Usage: vmctl [OPTIONS] COMMAND [ARGS]\n\n"
           "The command-line client of vmmd. Commands:\n");
    for (const struct cli_command *c = cli_commands; c->name; c++)
        printf("  %-10s %s\n", c->name, c->summary);
    printf(
        "\n'vmctl COMMAND --help' describes a command. Options (before or after the command):\n");
    fputs(common_help, stdout);
    printf("\nExit status: 0 success, 1 the API refused, 2 usage error, 3 cannot reach the "
           "daemon,\n4 timeout in wait or shutdown.\n");
}

const struct cli_command *cli_find_command(const char *name)
{
    for (const struct cli_command *c = cli_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

int main(int argc, char **argv)
{
    struct cli_ctx ctx = {0};
    const struct cli_command *cmd;
    const char *env;
    int id, rc;

    ctx.socket_path = "./var/vmmd.sock";
    if ((env = getenv("VMMD_SOCKET")) && *env)
        ctx.socket_path = env;
    if ((env = getenv("VMMD_URL")) && *env)
        ctx.url = env;
    if ((env = getenv("VMMD_TOKEN_FILE")) && *env)
        ctx.token_file = env;
    if ((env = getenv("VMMD_CACERT")) && *env)
        ctx.cacert = env;
    if ((env = getenv("VMMD_TLS_PIN")) && *env)
        ctx.tls_pin = env;
    ctx.colour = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");

    /* Options before the command ("+": stop at the first non-option). */
    {
        struct option all[N_COMMON + 2];
        memcpy(all, common_options, sizeof(common_options));
        all[N_COMMON] = (struct option){"version", no_argument, NULL, 'V'};
        memset(&all[N_COMMON + 1], 0, sizeof(all[0]));
        while ((id = getopt_long(argc, argv, "+ho:", all, NULL)) != -1) {
            if (id == '?') {
                fprintf(stderr, "Try 'vmctl --help'.\n");
                return CLI_EXIT_USAGE;
            }
            if (id == CLI_OPT_HELP) {
                print_main_help();
                return CLI_EXIT_OK;
            }
            if (id == 'V') {
                printf("vmctl %s\n", VMMD_VERSION);
                return CLI_EXIT_OK;
            }
            if (common_option(&ctx, NULL, id, optarg))
                return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        print_main_help();
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[optind], "help") == 0) {
        if (optind + 1 < argc && (cmd = cli_find_command(argv[optind + 1]))) {
            char *help_argv[] = {argv[optind + 1], (char *)"--help", NULL};
            return cmd->run(&ctx, 2, help_argv) == CLI_HELP_SHOWN ? 0 : 0;
        }
        print_main_help();
        return CLI_EXIT_OK;
    }
    cmd = cli_find_command(argv[optind]);
    if (!cmd) {
        fprintf(stderr, "vmctl: unknown command '%s'\nTry 'vmctl --help'.\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmd->run(&ctx, argc - optind, argv + optind);
    curl_global_cleanup();
    free(ctx.token);
    return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
}
