/*
 * Networks and forwards as clients see them: the stored fields, the
 * addresses that follow from the CIDR (gateway, DHCP range), and null
 * rather than missing keys for "none".
 */
#include "api/api.h"

#include <stdio.h>

static json_t *ip_json(uint32_t a)
{
    char s[16];

    api_ipv4_format(a, s);
    return json_string(s);
}

json_t *api_network_to_json(const struct db_network *n)
{
    json_t *o = json_object(), *range = json_null();
    uint32_t net = 0, mask;
    unsigned prefix = 24;
    int rc = 0;

    if (!o)
        return NULL;
    api_ipv4_parse_cidr(n->cidr, &net, &prefix);
    mask = api_ipv4_mask(prefix);
    /* The gateway is the first host address; guests get the rest but the broadcast. */
    if (n->dhcp)
        range =
            json_pack("{s:o,s:o}", "start", ip_json(net + 2), "end", ip_json((net | ~mask) - 1));
    rc |= json_object_set_new(o, "name", json_string(n->name));
    rc |= json_object_set_new(o, "cidr", json_string(n->cidr));
    rc |= json_object_set_new(o, "gateway", ip_json(net + 1));
    rc |= json_object_set_new(o, "dhcp_range", range);
    rc |= json_object_set_new(o, "bridge", json_string(n->bridge));
    rc |= json_object_set_new(o, "nat", json_boolean(n->nat));
    rc |= json_object_set_new(o, "dhcp", json_boolean(n->dhcp));
    rc |= json_object_set_new(o, "dns_domain", json_string(n->dns_domain));
    rc |= json_object_set_new(o, "mtu", json_integer(n->mtu));
    rc |= json_object_set_new(o, "created_at", api_timestamp_json(n->created_at));
    rc |= json_object_set_new(o, "updated_at", api_timestamp_json(n->updated_at));
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *api_forward_to_json(const struct db_forward *f, const char *vm_name, const char *vm_ip)
{
    json_t *o = json_object();
    int rc = 0;

    if (!o)
        return NULL;
    rc |= json_object_set_new(o, "id", json_integer(f->id));
    rc |= json_object_set_new(o, "network", json_string(f->network));
    rc |= json_object_set_new(o, "protocol", json_string(f->protocol));
    rc |= json_object_set_new(o, "host_address",
                              f->host_address[0] ? json_string(f->host_address) : json_null());
    rc |= json_object_set_new(o, "host_port", json_integer(f->host_port));
    rc |= json_object_set_new(o, "vm_id", json_string(f->vm_id));
    rc |= json_object_set_new(o, "vm", vm_name ? json_string(vm_name) : json_null());
    rc |= json_object_set_new(o, "vm_ip", vm_ip ? json_string(vm_ip) : json_null());
    rc |= json_object_set_new(o, "vm_port", json_integer(f->vm_port));
    rc |= json_object_set_new(o, "created_at", api_timestamp_json(f->created_at));
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}
