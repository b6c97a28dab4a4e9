/*
 * Network and port forward bodies (POST/PATCH /v1/networks, POST
 * .../forwards) into checked structs. As for VMs: unknown keys → 400 first,
 * then each field's type and range in a fixed order → 422 naming it. Whether
 * a CIDR overlaps, a name is taken or a VM exists is the daemon's to say.
 */
#include "api_internal.h"

#include <stdio.h>
#include <string.h>

static const char *const network_keys[] = {"name",       "cidr", "nat", "dhcp",
                                           "dns_domain", "mtu",  NULL};
static const char *const forward_keys[] = {"protocol", "host_address", "host_port",
                                           "vm",       "vm_port",      NULL};

/* Labels of [a-z0-9-], not starting or ending with '-', joined by single dots. */
static bool dns_domain_valid(const char *s)
{
    size_t n = strlen(s), label = 0;

    if (n < 1 || n > DB_NAME_MAX)
        return false;
    for (size_t i = 0; i <= n; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label > 0)))
            return false;
        label++;
    }
    return true;
}

static int get_cidr(json_t *v, struct api_network_def *out, struct api_error *err)
{
    uint32_t net;
    unsigned prefix;
    char addr[16];

    if (!json_is_string(v) || api_ipv4_parse_cidr(json_string_value(v), &net, &prefix))
        return api_fail(err, API_ERR_UNPROCESSABLE,
                        "cidr: must be an IPv4 network like 10.71.0.0/24");
    if (prefix < API_NET_MIN_PREFIX || prefix > API_NET_MAX_PREFIX)
        return api_fail(err, API_ERR_UNPROCESSABLE, "cidr: the prefix must be from /%d to /%d",
                        API_NET_MIN_PREFIX, API_NET_MAX_PREFIX);
    if (net & ~api_ipv4_mask(prefix)) {
        api_ipv4_format(net & api_ipv4_mask(prefix), addr);
        return api_fail(err, API_ERR_UNPROCESSABLE,
                        "cidr: %s has host bits set; the network is %s/%u", json_string_value(v),
                        addr, prefix);
    }
    api_ipv4_format(net, addr);
    snprintf(out->cidr, sizeof(out->cidr), "%s/%u", addr, prefix);
    out->present |= API_NF_CIDR;
    return 0;
}

/* The fields a patch may carry too, in the order of the object. */
static int parse_settable(json_t *root, struct api_network_def *out, struct api_error *err)
{
    json_t *v;
    uint64_t n;

    if ((v = json_object_get(root, "nat"))) {
        if (api__get_bool(v, "nat", &out->nat, err))
            return -1;
        out->present |= API_NF_NAT;
    }
    if ((v = json_object_get(root, "dhcp"))) {
        if (api__get_bool(v, "dhcp", &out->dhcp, err))
            return -1;
        out->present |= API_NF_DHCP;
    }
    if ((v = json_object_get(root, "dns_domain"))) {
        if (!json_is_string(v) || !dns_domain_valid(json_string_value(v)))
            return api_fail(err, API_ERR_UNPROCESSABLE,
                            "dns_domain: must be a DNS name of labels [a-z0-9-] joined by dots, "
                            "at most %d characters",
                            DB_NAME_MAX);
        strcpy(out->dns_domain, json_string_value(v)); /* fits: checked above */
        out->present |= API_NF_DNS_DOMAIN;
    }
    if ((v = json_object_get(root, "mtu"))) {
        if (api__get_uint(v, "mtu", API_NET_MIN_MTU, API_NET_MAX_MTU, &n, err))
            return -1;
        out->mtu = (uint32_t)n;
        out->present |= API_NF_MTU;
    }
    return 0;
}

static int parse_network(const char *body, size_t len, bool create, struct api_network_def *out,
                         struct api_error *err)
{
    json_t *root, *v;
    const char *bad;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    out->nat = out->dhcp = true;
    out->mtu = API_NET_DEFAULT_MTU;
    strcpy(out->dns_domain, API_NET_DEFAULT_DOMAIN);
    if (api__parse_object(body, len, &root, err))
        return -1;
    if ((bad = api__unknown_key(root, network_keys))) {
        api_fail(err, API_ERR_BAD_REQUEST, "%.64s: unknown field", bad);
        goto out;
    }
    if (!create) {
        if (json_object_get(root, "name") || json_object_get(root, "cidr")) {
            api_fail(err, API_ERR_UNPROCESSABLE, "%s: cannot change; create a new network instead",
                     json_object_get(root, "name") ? "name" : "cidr");
            goto out;
        }
        if (json_object_size(root) == 0) {
            api_fail(err, API_ERR_BAD_REQUEST, "body: at least one field is required");
            goto out;
        }
    } else {
        v = json_object_get(root, "name");
        if (api__get_name("name", v ? (json_is_string(v) ? json_string_value(v) : "") : NULL,
                          out->name, err))
            goto out;
        if ((v = json_object_get(root, "cidr")) && get_cidr(v, out, err))
            goto out;
    }
    ret = parse_settable(root, out, err);
out:
    json_decref(root);
    return ret;
}

int api_parse_network_create(const char *body, size_t len, struct api_network_def *out,
                             struct api_error *err)
{
    return parse_network(body, len, true, out, err);
}

int api_parse_network_patch(const char *body, size_t len, struct api_network_def *out,
                            struct api_error *err)
{
    return parse_network(body, len, false, out, err);
}

void api_network_def_apply(const struct api_network_def *def, struct db_network *net)
{
    if (def->present & API_NF_NAT)
        net->nat = def->nat;
    if (def->present & API_NF_DHCP)
        net->dhcp = def->dhcp;
    if (def->present & API_NF_DNS_DOMAIN)
        strcpy(net->dns_domain, def->dns_domain);
    if (def->present & API_NF_MTU)
        net->mtu = def->mtu;
}

int api_parse_forward_create(const char *body, size_t len, struct api_forward_def *out,
                             struct api_error *err)
{
    json_t *root, *v;
    const char *bad, *s;
    uint64_t n;
    uint32_t addr;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    strcpy(out->protocol, "tcp");
    if (api__parse_object(body, len, &root, err))
        return -1;
    if ((bad = api__unknown_key(root, forward_keys))) {
        api_fail(err, API_ERR_BAD_REQUEST, "%.64s: unknown field", bad);
        goto out;
    }
    if ((v = json_object_get(root, "protocol"))) {
        s = json_string_value(v);
        if (!s || (strcmp(s, "tcp") != 0 && strcmp(s, "udp") != 0)) {
            api_fail(err, API_ERR_UNPROCESSABLE, "protocol: must be \"tcp\" or \"udp\"");
            goto out;
        }
        strcpy(out->protocol, s);
    }
    if ((v = json_object_get(root, "host_address")) && !json_is_null(v)) {
        if (!json_is_string(v) || api_ipv4_parse(json_string_value(v), &addr)) {
            api_fail(err, API_ERR_UNPROCESSABLE,
                     "host_address: must be an IPv4 address of the host, or null for all");
            goto out;
        }
        api_ipv4_format(addr, out->host_address);
    }
    if (!(v = json_object_get(root, "host_port"))) {
        api_fail(err, API_ERR_UNPROCESSABLE, "host_port: is required");
        goto out;
    }
    if (api__get_uint(v, "host_port", 1, 65535, &n, err))
        goto out;
    out->host_port = out->vm_port = (uint32_t)n;
    v = json_object_get(root, "vm");
    if (!v || !json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) >= sizeof(out->vm)) {
        api_fail(err, API_ERR_UNPROCESSABLE, "vm: is required (a VM's id or name)");
        goto out;
    }
    strcpy(out->vm, json_string_value(v));
    if ((v = json_object_get(root, "vm_port"))) {
        if (api__get_uint(v, "vm_port", 1, 65535, &n, err))
            goto out;
        out->vm_port = (uint32_t)n;
    }
    ret = 0;
out:
    json_decref(root);
    return ret;
}
