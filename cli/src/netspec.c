/*
 * vmctl's network specs and one-line descriptions (see netspec.h). The
 * daemon validates every value again and names the field it refuses; what
 * is checked here is only the shape of a flag, so that a typo is a usage
 * error (exit 2) before anything is sent.
 */
#include "netspec.h"
#include "limitspec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const nic_keys[] = {"network", "tap", "bridge", "ip", "mac", NULL};

static bool known_nic_key(const char *key)
{
    for (size_t i = 0; nic_keys[i]; i++)
        if (strcmp(nic_keys[i], key) == 0)
            return true;
    return false;
}

json_t *cli_nic_parse(const char *spec, const char **why)
{
    json_t *nic = json_object();
    char *copy = strdup(spec), *save = NULL, *tok;
    int kinds = 0;

    *why = NULL;
    if (!nic || !copy) {
        *why = "out of memory";
        goto fail;
    }
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');

        if (!eq || eq == tok || !eq[1]) {
            *why = "each part is KEY=VALUE";
            goto fail;
        }
        *eq = '\0';
        switch (cli_limit_option(nic, tok, eq + 1, why)) {
        case 1:
            continue;
        case -1:
            goto fail;
        }
        if (!known_nic_key(tok)) {
            *why = "keys are network, ip, tap, bridge, mac and the limits (bytes_per_s, "
                   "ops_per_s, burst_bytes, burst_ops)";
            goto fail;
        }
        if (json_object_get(nic, tok)) {
            *why = "a key is given twice";
            goto fail;
        }
        if (!strcmp(tok, "network") || !strcmp(tok, "tap") || !strcmp(tok, "bridge"))
            kinds++;
        json_object_set_new(nic, tok, json_string(eq + 1));
    }
    if (kinds != 1) {
        *why = "exactly one of network=, tap= and bridge=";
        goto fail;
    }
    if (json_object_get(nic, "ip") && !json_object_get(nic, "network")) {
        *why = "ip= goes with network= (a managed network)";
        goto fail;
    }
    free(copy);
    return nic;
fail:
    free(copy);
    json_decref(nic);
    return NULL;
}

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

void cli_nic_describe(json_t *nic, const char *lease_ip, char *out, size_t size)
{
    const char *mac = str(nic, "mac") ? str(nic, "mac") : "-";

    if (str(nic, "network")) {
        char ip[64];

        if (str(nic, "ip"))
            snprintf(ip, sizeof(ip), "%s", str(nic, "ip"));
        else if (lease_ip)
            snprintf(ip, sizeof(ip), "%s (lease)", lease_ip);
        else
            snprintf(ip, sizeof(ip), "dhcp");
        snprintf(out, size, "network %s ip %s mac %s", str(nic, "network"), ip, mac);
    } else if (str(nic, "bridge")) {
        snprintf(out, size, "bridge %s mac %s", str(nic, "bridge"), mac);
    } else {
        snprintf(out, size, "tap %s mac %s", str(nic, "tap") ? str(nic, "tap") : "?", mac);
    }
}

const char *cli_lease_ip(json_t *leases, const char *mac, const char *vm_id)
{
    json_t *lease;
    size_t i;

    json_array_foreach(leases, i, lease)
    {
        const char *m = str(lease, "mac"), *id = str(lease, "vm_id");
        if (mac ? m && strcasecmp(m, mac) == 0 : vm_id && id && strcmp(id, vm_id) == 0)
            return str(lease, "ip");
    }
    return NULL;
}

int cli_forward_target(const char *spec, char *vm, size_t vm_size, long *port)
{
    const char *colon = strrchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);

    *port = 0;
    if (n == 0 || n >= vm_size)
        return -EINVAL;
    if (colon) {
        char *end;
        errno = 0;
        *port = strtol(colon + 1, &end, 10);
        if (errno || end == colon + 1 || *end || *port < 1 || *port > 65535)
            return -EINVAL;
    }
    memcpy(vm, spec, n);
    vm[n] = '\0';
    return 0;
}

void cli_forward_describe(json_t *fwd, char *out, size_t size)
{
    const char *proto = str(fwd, "protocol") ? str(fwd, "protocol") : "tcp";
    const char *addr = str(fwd, "host_address") ? str(fwd, "host_address") : "*";
    const char *vm = str(fwd, "vm") ? str(fwd, "vm") : str(fwd, "vm_id");

    snprintf(out, size, "%s %s:%lld -> %s %s:%lld", proto, addr,
             (long long)json_integer_value(json_object_get(fwd, "host_port")), vm ? vm : "?",
             str(fwd, "vm_ip") ? str(fwd, "vm_ip") : "?",
             (long long)json_integer_value(json_object_get(fwd, "vm_port")));
}
