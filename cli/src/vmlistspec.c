/*
 * `vmctl list`'s table (see vmlistspec.h). The MEMBER column goes right
 * after STATE: in a cluster, where a VM lives is read together with how it
 * is, above all for the "unknown" VMs of an offline member.
 */
#include "vmlistspec.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void cli_vm_uptime(json_t *vm, time_t now, char out[32])
{
    const char *state = cli_jstr(vm, "state");
    time_t started;

    if (!state || (strcmp(state, "running") && strcmp(state, "paused")) ||
        cli_parse_time(cli_jstr(vm, "started_at"), &started)) {
        snprintf(out, 32, "-");
        return;
    }
    cli_format_duration(difftime(now, started), out);
}

bool cli_vms_have_member(json_t *vms)
{
    json_t *vm;
    size_t i;

    json_array_foreach(vms, i, vm) if (cli_jstr(vm, "member")) return true;
    return false;
}

int cli_vm_list_table(json_t *vms, time_t now, struct cli_table *t)
{
    static const char *const plain[] = {"NAME",   "STATE",  "MODE",      "VCPUS",
                                        "MEMORY", "UPTIME", "AUTOSTART", "ID"};
    static const char *const clustered[] = {"NAME",   "STATE",  "MEMBER",    "MODE", "VCPUS",
                                            "MEMORY", "UPTIME", "AUTOSTART", "ID"};
    bool member = cli_vms_have_member(vms);
    size_t ncols = member ? 9 : 8, i;
    json_t *vm;

    cli_table_init(t, ncols, member ? clustered : plain);
    t->state_col = 1;
    json_array_foreach(vms, i, vm)
    {
        char vcpus[32], mem[32], up[32];
        const char *cells[9], **c = cells;

        snprintf(vcpus, sizeof(vcpus), "%lld", cli_jint(vm, "vcpus"));
        cli_format_mib(cli_jint(vm, "memory_mib"), mem);
        cli_vm_uptime(vm, now, up);
        *c++ = cli_jstr(vm, "name");
        *c++ = cli_jstr(vm, "state");
        if (member)
            *c++ = cli_jstr(vm, "member");
        *c++ = cli_jstr(vm, "mode");
        *c++ = vcpus;
        *c++ = mem;
        *c++ = up;
        *c++ = json_is_true(json_object_get(vm, "autostart")) ? "yes" : "no";
        *c++ = cli_jstr(vm, "id");
        if (cli_table_add(t, cells))
            return -ENOMEM;
    }
    return 0;
}
