/*
 * `vmctl network ...`: the managed networks of the API (/v1/networks, their
 * leases and port forwards), with the same conventions as the VM commands:
 * a table or key/value block by default, the API's body as sent with
 * --output json, the problem's detail on stderr and exit 1 when the API
 * refuses, 2 for a usage error. Each subcommand is a cli_command of its own
 * (named "network create" and so on), so --help and usage errors read like
 * those of every other command.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "netspec.h"
#include "output.h"

const char cli_network_help[] =
    "  Subcommands (vmctl network SUBCOMMAND --help for each):\n"
    "    list                      the networks: state, CIDR, bridge, NAT, leases (and in a\n"
    "                              cluster the members that realised each)\n"
    "    show NAME                 one network, its dnsmasq and the VM NICs on it\n"
    "    create NAME [--cidr CIDR] [--no-nat] [--no-dhcp] [--dns-domain D] [--mtu N]\n"
    "    set NAME KEY=VALUE...     nat, dhcp, dns_domain, mtu\n"
    "    delete NAME               refused while a VM has a NIC on it\n"
    "    leases NAME               DHCP leases, with the VM each MAC belongs to\n"
    "    forward list NAME         port forwards\n"
    "    forward add NAME HOST_PORT VM[:PORT] [--protocol tcp|udp] [--host-address A]\n"
    "    forward delete NAME ID\n";

/* cli_call() on /v1/networks/{name}{suffix}. */
static int call_network(struct cli_ctx *ctx, const char *method, const char *name,
                        const char *suffix, const char *body, struct cli_response *r, json_t **root)
{
    return cli_call_object(ctx, method, "networks", name, suffix, body, r, root);
}

static const char *yes_no(json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key)) ? "yes" : "no";
}

/* A network's "members" (in a cluster: where it is realised), comma-separated; "" if none. */
static void members_text(json_t *net, char *out, size_t size)
{
    json_t *m;
    size_t i, len = 0;

    out[0] = 0;
    json_array_foreach(json_object_get(net, "members"), i, m)
    {
        if (json_is_string(m) && len < size)
            len += (size_t)snprintf(out + len, size - len, "%s%s", len ? "," : "",
                                    json_string_value(m));
    }
}

static void print_network(json_t *net)
{
    json_t *range = json_object_get(net, "dhcp_range"), *nics, *nic;
    char buf[256];
    size_t i;

    cli_kv("name:", cli_jstr(net, "name"));
    cli_kv("state:", cli_jstr(net, "state"));
    if (cli_jstr(net, "error"))
        cli_kv("error:", cli_jstr(net, "error"));
    cli_kv("cidr:", cli_jstr(net, "cidr"));
    cli_kv("gateway:", cli_jstr(net, "gateway"));
    cli_kv("bridge:", cli_jstr(net, "bridge"));
    cli_kv("nat:", yes_no(net, "nat"));
    if (json_is_object(range)) {
        snprintf(buf, sizeof(buf), "%s - %s",
                 cli_jstr(range, "start") ? cli_jstr(range, "start") : "?",
                 cli_jstr(range, "end") ? cli_jstr(range, "end") : "?");
        cli_kv("dhcp:", buf);
    } else {
        cli_kv("dhcp:", yes_no(net, "dhcp"));
    }
    cli_kv("dns domain:", cli_jstr(net, "dns_domain"));
    snprintf(buf, sizeof(buf), "%lld", cli_jint(net, "mtu"));
    cli_kv("mtu:", buf);
    if (json_is_integer(json_object_get(net, "dnsmasq_pid")))
        snprintf(buf, sizeof(buf), "pid %lld, restarted %lld times", cli_jint(net, "dnsmasq_pid"),
                 cli_jint(net, "dnsmasq_restarts"));
    else
        snprintf(buf, sizeof(buf), "not running (restarted %lld times)",
                 cli_jint(net, "dnsmasq_restarts"));
    cli_kv("dnsmasq:", buf);
    nics = json_object_get(net, "nics");
    if (json_array_size(nics) == 0)
        cli_kv("nics:", "-");
    json_array_foreach(nics, i, nic)
    {
        snprintf(buf, sizeof(buf), "%s net%lld mac %s ip %s",
                 cli_jstr(nic, "vm") ? cli_jstr(nic, "vm") : cli_jstr(nic, "vm_id"),
                 cli_jint(nic, "nic"), cli_jstr(nic, "mac") ? cli_jstr(nic, "mac") : "-",
                 cli_jstr(nic, "ip") ? cli_jstr(nic, "ip") : "dhcp");
        cli_kv(i == 0 ? "nics:" : "", buf);
    }
    snprintf(buf, sizeof(buf), "%lld", cli_jint(net, "forwards"));
    cli_kv("forwards:", buf);
    if (json_is_array(json_object_get(net, "members"))) {
        members_text(net, buf, sizeof(buf));
        cli_kv("members:", buf[0] ? buf : "- (realised nowhere yet)");
    }
    cli_kv("created:", cli_jstr(net, "created_at"));
}

/* ---- list, show ---------------------------------------------------------- */

static int net_list(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    static const char *const headers[] = {"NAME",   "STATE",   "CIDR",     "BRIDGE", "NAT",
                                          "DHCP",   "LEASES",  "VM NICS",  "FORWARDS",
                                          "MEMBERS"};
    struct cli_response r;
    struct cli_table t;
    json_t *nets, *net;
    bool clustered = false;
    int first, rc;
    size_t i;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 0, 0, &first)))
        return rc;
    if ((rc = cli_call(ctx, "GET", "/v1/networks", NULL, &r, &nets)))
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        cli_print_body(&r);
        json_decref(nets);
        cli_response_free(&r);
        return 0;
    }
    /* In a cluster each network says which members realised it. */
    json_array_foreach(nets, i, net) clustered |= json_is_array(json_object_get(net, "members"));
    cli_table_init(&t, clustered ? 10 : 9, headers);
    json_array_foreach(nets, i, net)
    {
        char leases[32] = "-", nics[32], forwards[32], members[256] = "";
        const char *cells[10];
        struct cli_response lr;
        json_t *l;

        /* The lease count is one more request a network; a refusal leaves it "-". A
         * network a cluster defines but this member did not realise has none here. */
        if (json_is_true(json_object_get(net, "dhcp")) && cli_jstr(net, "bridge") &&
            call_network(ctx, "GET", cli_jstr(net, "name"), "/leases", NULL, &lr, &l) == 0) {
            snprintf(leases, sizeof(leases), "%zu", json_array_size(l));
            json_decref(l);
            cli_response_free(&lr);
        }
        snprintf(nics, sizeof(nics), "%zu", json_array_size(json_object_get(net, "nics")));
        snprintf(forwards, sizeof(forwards), "%lld", cli_jint(net, "forwards"));
        members_text(net, members, sizeof(members));
        cells[0] = cli_jstr(net, "name");
        cells[1] = cli_jstr(net, "state");
        cells[2] = cli_jstr(net, "cidr");
        cells[3] = cli_jstr(net, "bridge");
        cells[4] = yes_no(net, "nat");
        cells[5] = yes_no(net, "dhcp");
        cells[6] = leases;
        cells[7] = nics;
        cells[8] = forwards;
        cells[9] = members[0] ? members : "-";
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout, false);
    cli_table_free(&t);
    json_decref(nets);
    cli_response_free(&r);
    return 0;
}

static int net_show(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct cli_response r;
    json_t *net;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 1, 1, &first)))
        return rc;
    if ((rc = call_network(ctx, "GET", argv[first], NULL, NULL, &r, &net)))
        return rc;
    return cli_print_answer(ctx, &r, net, print_network);
}

/* ---- create, set, delete -------------------------------------------------- */

enum { OPT_CIDR = CLI_OPT_FIRST, OPT_NO_NAT, OPT_NO_DHCP, OPT_DNS_DOMAIN, OPT_MTU };

static int create_opt(void *st, int id, const char *arg)
{
    struct cli_body_opts *o = st;
    long n;

    switch (id) {
    case OPT_CIDR:
        json_object_set_new(o->body, "cidr", json_string(arg));
        break;
    case OPT_NO_NAT:
        json_object_set_new(o->body, "nat", json_false());
        break;
    case OPT_NO_DHCP:
        json_object_set_new(o->body, "dhcp", json_false());
        break;
    case OPT_DNS_DOMAIN:
        json_object_set_new(o->body, "dns_domain", json_string(arg));
        break;
    case OPT_MTU:
        if (cli_parse_long(arg, 1, 65535, &n))
            return cli_usage_error(o->cmd, "--mtu wants a number of bytes, not '%s'", arg);
        json_object_set_new(o->body, "mtu", json_integer(n));
        break;
    }
    return 0;
}

static int net_create(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"cidr", required_argument, NULL, OPT_CIDR},
        {"no-nat", no_argument, NULL, OPT_NO_NAT},
        {"no-dhcp", no_argument, NULL, OPT_NO_DHCP},
        {"dns-domain", required_argument, NULL, OPT_DNS_DOMAIN},
        {"mtu", required_argument, NULL, OPT_MTU},
        {0},
    };
    struct cli_body_opts o = {.cmd = cmd, .body = json_object()};
    int first, rc;

    rc = cli_parse_options(ctx, cmd, argc, argv, opts, create_opt, &o, 1, 1, &first);
    if (rc) {
        json_decref(o.body);
        return rc;
    }
    return cli_post_named(ctx, "/v1/networks", argv[first], o.body, print_network);
}

/* A value of `network set KEY=VALUE`, typed by key; NULL when it does not parse. */
static json_t *set_value(char key[64], const char *value)
{
    long n;

    if (strcmp(key, "mtu") == 0)
        return cli_parse_long(value, 0, 1000000, &n) ? NULL : json_integer(n);
    if (strcmp(key, "nat") == 0 || strcmp(key, "dhcp") == 0)
        return cli_json_bool(value);
    /* dns_domain, and name or cidr, which the daemon refuses with its own words. */
    return json_string(value);
}

static int net_set(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct cli_response r;
    json_t *patch = NULL, *net;
    char *body;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 2, -1, &first)))
        return rc;
    if ((rc = cli_patch_args(cmd, argc, argv, first + 1, set_value, &patch)))
        return rc;
    body = json_dumps(patch, JSON_COMPACT);
    json_decref(patch);
    rc = call_network(ctx, "PATCH", argv[first], NULL, body, &r, &net);
    free(body);
    if (rc)
        return rc;
    return cli_print_answer(ctx, &r, net, print_network);
}

static int net_delete(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    return cli_delete_named(ctx, cmd, argc, argv, "networks", "deleted network");
}

/* ---- leases ----------------------------------------------------------------- */

/* "in 59m12s", "expired", "never". */
static void lease_expiry(json_t *lease, char out[40])
{
    time_t at;
    char d[32];

    if (cli_parse_time(cli_jstr(lease, "expires_at"), &at)) {
        snprintf(out, 40, "never");
        return;
    }
    if (difftime(at, time(NULL)) <= 0) {
        snprintf(out, 40, "expired");
        return;
    }
    cli_format_duration(difftime(at, time(NULL)), d);
    snprintf(out, 40, "in %s", d);
}

static int net_leases(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    static const char *const headers[] = {"MAC", "IP", "HOSTNAME", "VM", "EXPIRES", "STATIC"};
    struct cli_response r;
    struct cli_table t;
    json_t *leases, *lease;
    int first, rc;
    size_t i;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 1, 1, &first)))
        return rc;
    if ((rc = call_network(ctx, "GET", argv[first], "/leases", NULL, &r, &leases)))
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        cli_print_body(&r);
    } else {
        cli_table_init(&t, 6, headers);
        json_array_foreach(leases, i, lease)
        {
            char expires[40];
            const char *cells[6] = {cli_jstr(lease, "mac"),
                                    cli_jstr(lease, "ip"),
                                    cli_jstr(lease, "hostname"),
                                    cli_jstr(lease, "vm"),
                                    expires,
                                    yes_no(lease, "static")};
            lease_expiry(lease, expires);
            cli_table_add(&t, cells);
        }
        cli_table_print(&t, stdout, false);
        cli_table_free(&t);
    }
    json_decref(leases);
    cli_response_free(&r);
    return 0;
}

/* ---- forward add, list, delete ------------------------------------------------ */

enum { OPT_PROTOCOL = CLI_OPT_FIRST, OPT_HOST_ADDRESS };

static int forward_opt(void *st, int id, const char *arg)
{
    struct cli_body_opts *o = st;

    if (id == OPT_PROTOCOL) {
        if (strcmp(arg, "tcp") && strcmp(arg, "udp"))
            return cli_usage_error(o->cmd, "--protocol must be tcp or udp, not '%s'", arg);
        json_object_set_new(o->body, "protocol", json_string(arg));
    } else {
        json_object_set_new(o->body, "host_address", json_string(arg));
    }
    return 0;
}

static int fwd_add(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"protocol", required_argument, NULL, OPT_PROTOCOL},
        {"host-address", required_argument, NULL, OPT_HOST_ADDRESS},
        {0},
    };
    struct cli_body_opts o = {.cmd = cmd, .body = json_object()};
    struct cli_response r;
    json_t *fwd;
    char vm[256], line[384], *body;
    long host_port, vm_port;
    int first, rc;

    rc = cli_parse_options(ctx, cmd, argc, argv, opts, forward_opt, &o, 3, 3, &first);
    if (rc == 0 && cli_parse_long(argv[first + 1], 1, 65535, &host_port))
        rc = cli_usage_error(cmd, "HOST_PORT wants a port from 1 to 65535, not '%s'",
                             argv[first + 1]);
    if (rc == 0 && cli_forward_target(argv[first + 2], vm, sizeof(vm), &vm_port))
        rc = cli_usage_error(cmd, "'%s' is not VM or VM:PORT (a port from 1 to 65535)",
                             argv[first + 2]);
    if (rc) {
        json_decref(o.body);
        return rc;
    }
    json_object_set_new(o.body, "host_port", json_integer(host_port));
    json_object_set_new(o.body, "vm", json_string(vm));
    if (vm_port)
        json_object_set_new(o.body, "vm_port", json_integer(vm_port));
    body = json_dumps(o.body, JSON_COMPACT);
    json_decref(o.body);
    rc = call_network(ctx, "POST", argv[first], "/forwards", body, &r, &fwd);
    free(body);
    if (rc)
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        cli_print_body(&r);
    } else {
        cli_forward_describe(fwd, line, sizeof(line));
        printf("forward %lld on %s: %s\n", cli_jint(fwd, "id"), argv[first], line);
    }
    json_decref(fwd);
    cli_response_free(&r);
    return 0;
}

static int fwd_list(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    static const char *const headers[] = {"ID", "PROTOCOL", "HOST ADDRESS", "HOST PORT",
                                          "VM", "VM IP",    "VM PORT"};
    struct cli_response r;
    struct cli_table t;
    json_t *fwds, *fwd;
    int first, rc;
    size_t i;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 1, 1, &first)))
        return rc;
    if ((rc = call_network(ctx, "GET", argv[first], "/forwards", NULL, &r, &fwds)))
        return rc;
    if (ctx->output == CLI_OUTPUT_JSON) {
        cli_print_body(&r);
    } else {
        cli_table_init(&t, 7, headers);
        json_array_foreach(fwds, i, fwd)
        {
            char id[32], host_port[16], vm_port[16];
            const char *cells[7] = {id,
                                    cli_jstr(fwd, "protocol"),
                                    cli_jstr(fwd, "host_address") ? cli_jstr(fwd, "host_address")
                                                                  : "*",
                                    host_port,
                                    cli_jstr(fwd, "vm"),
                                    cli_jstr(fwd, "vm_ip"),
                                    vm_port};
            snprintf(id, sizeof(id), "%lld", cli_jint(fwd, "id"));
            snprintf(host_port, sizeof(host_port), "%lld", cli_jint(fwd, "host_port"));
            snprintf(vm_port, sizeof(vm_port), "%lld", cli_jint(fwd, "vm_port"));
            cli_table_add(&t, cells);
        }
        cli_table_print(&t, stdout, false);
        cli_table_free(&t);
    }
    json_decref(fwds);
    cli_response_free(&r);
    return 0;
}

static int fwd_delete(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    char suffix[48], said[160];
    int first, rc;
    long id;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 2, 2, &first)))
        return rc;
    if (cli_parse_long(argv[first + 1], 1, LONG_MAX, &id))
        return cli_usage_error(cmd, "ID wants a forward's id (a number), not '%s'",
                               argv[first + 1]);
    snprintf(suffix, sizeof(suffix), "/forwards/%ld", id);
    snprintf(said, sizeof(said), "deleted forward %ld of %s", id, argv[first]);
    return cli_delete_and_say(ctx, "networks", argv[first], suffix, said);
}

/* ---- dispatch ----------------------------------------------------------------- */

static const struct cli_subcommand subcommands[] = {
    {{"network list", NULL, "", "List the managed networks.", NULL}, "list", net_list},
    {{"network show", NULL, "NAME",
      "Show a network: addresses, bridge, NAT, dnsmasq, the VM NICs on it.", NULL},
     "show",
     net_show},
    {{"network create", NULL,
      "NAME [--cidr CIDR] [--no-nat] [--no-dhcp] [--dns-domain D] [--mtu N]",
      "Create a managed network: a bridge, NAT, and a dnsmasq for DHCP and DNS.",
      "      --cidr A.B.C.D/N     its IPv4 network, /16 to /29 (default: a free /24 the\n"
      "                           daemon picks)\n"
      "      --no-nat             isolated: guests cannot reach beyond the host\n"
      "      --no-dhcp            no DHCP (guests need static addresses)\n"
      "      --dns-domain D       guests resolve <vm>.D (default vmmd)\n"
      "      --mtu N              576 to 9000 (default 1500)\n"},
     "create",
     net_create},
    {{"network set", NULL, "NAME KEY=VALUE...",
      "Change a network's settings (applied at once: firewall rebuilt, dnsmasq restarted).",
      "  keys: nat, dhcp (true/false), dns_domain, mtu; name and cidr cannot change\n"},
     "set",
     net_set},
    {{"network delete", NULL, "NAME",
      "Delete a network with its bridge, dnsmasq and forwards (refused while VMs use it).", NULL},
     "delete",
     net_delete},
    {{"network leases", NULL, "NAME", "List a network's DHCP leases and the VMs they belong to.",
      NULL},
     "leases",
     net_leases},
    {{"network forward add", NULL,
      "NAME HOST_PORT VM[:PORT] [--protocol tcp|udp] [--host-address ADDR]",
      "Forward a host port to a VM's port (the VM needs a NIC on the network with a static ip).",
      "      --protocol tcp|udp   (default tcp)\n"
      "      --host-address ADDR  only this host address (default: every one)\n"
      "  PORT defaults to HOST_PORT.\n"},
     "forward add",
     fwd_add},
    {{"network forward list", NULL, "NAME", "List a network's port forwards.", NULL},
     "forward list",
     fwd_list},
    {{"network forward delete", NULL, "NAME ID", "Remove a port forward.", NULL},
     "forward delete",
     fwd_delete},
};

#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

int cli_cmd_network(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_dispatch(ctx, "network", subcommands, N_SUBCOMMANDS, argc, argv);
}
