/*
 * GET /v1/host: version, KVM flavour and what it means, capacity and
 * allocation, image directories, and the lifecycle table (which actions
 * each state allows: the dashboard enables its buttons from it).
 */
#include "routes.h"
#include "lifecycle.h"
#include "supervisor.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct kvm_flavour {
    const char *name;
    const char *meaning;
};

/* Which KVM this host has, read from the loaded modules. */
static struct kvm_flavour kvm_flavour(void)
{
    struct stat st;

    if (stat("/dev/kvm", &st) != 0)
        return (struct kvm_flavour){"none", "no /dev/kvm: VMs cannot run on this host"};
    if (stat("/sys/module/kvm_pvm", &st) == 0)
        return (struct kvm_flavour){
            "pvm", "PVM (no VT-x/AMD-V): only PVM-enabled guest kernels run natively; any other "
                   "guest code, in full and pv mode alike, runs through KVM's instruction "
                   "emulator (about 1.4 M instructions/s), fine for small test guests, far too "
                   "slow for a general-purpose Linux guest"};
    if (stat("/sys/module/kvm_intel", &st) == 0)
        return (struct kvm_flavour){"vmx", "Intel VT-x: full and pv guests run at native speed; "
                                           "pv adds kvm-clock and paravirt features"};
    if (stat("/sys/module/kvm_amd", &st) == 0)
        return (struct kvm_flavour){"svm", "AMD-V: full and pv guests run at native speed; pv "
                                           "adds kvm-clock and paravirt features"};
    return (struct kvm_flavour){"unknown", "a KVM of unknown kind"};
}

/* {"stopped":["start","delete","edit"],...}: the lifecycle table, so clients need no copy. */
static json_t *lifecycle_json(void)
{
    json_t *table = json_object();

    for (int s = 0; s < VMMD_STATE_COUNT; s++) {
        json_t *actions = json_array();
        for (int a = 0; a < VMMD_ACTION_COUNT; a++)
            if (vmmd_action_allowed((enum vmmd_state)s, (enum vmmd_action)a))
                json_array_append_new(actions, json_string(vmmd_action_name((enum vmmd_action)a)));
        json_object_set_new(table, vmmd_state_name((enum vmmd_state)s), actions);
    }
    return table;
}

/* What a TCP client should expect: TLS or not, and how to recognise the certificate. */
static json_t *tls_json(const struct vmmd_daemon *d)
{
    if (!d->tls_enabled)
        return json_pack("{s:b, s:b}", "enabled", 0, "listening", d->cfg->listen != NULL);
    return json_pack("{s:b, s:b, s:s, s:s, s:s, s:b}", "enabled", 1, "listening", 1,
                     "certificate", d->tls.cert_path, "fingerprint_sha256", d->tls.fingerprint,
                     "public_key_pin", d->tls.pin, "client_certificates",
                     d->tls.client_ca_pem != NULL);
}

void route_host_get(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m)
{
    struct kvm_flavour kvm = kvm_flavour();
    struct vm_allocation a;
    json_t *dirs = json_array();

    (void)m;
    routes_allocation(d, &a);
    for (size_t i = 0; i < d->limits.n_image_dirs; i++)
        json_array_append_new(dirs, json_string(d->limits.image_dirs[i]));
    http_respond_json(
        req, 200,
        json_pack("{s:s, s:{s:s, s:s}, s:{s:i, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}, "
                  "s:o, s:o, s:o, s:o}",
                  "version", VMMD_VERSION, "kvm", "flavour", kvm.name, "meaning", kvm.meaning,
                  "capacity", "cpus", (int)d->host_cpus, "memory_mib",
                  (json_int_t)(d->host_memory_bytes >> 20), "max_vcpus",
                  (json_int_t)d->cfg->max_vcpus, "max_memory_mib",
                  (json_int_t)((d->host_memory_bytes >> 20) * d->cfg->memory_overcommit_pct / 100),
                  "max_vms", (json_int_t)d->cfg->max_vms,
                  "allocation", "vms_defined", (json_int_t)a.defined, "vms_running",
                  (json_int_t)a.running, "vcpus", (json_int_t)a.vcpus, "memory_mib",
                  (json_int_t)a.memory_mib, "image_dirs", dirs, "lifecycle", lifecycle_json(),
                  "sandbox", sandbox_host_json(supervisor_sandbox(d->sup)), "tls",
                  tls_json(d)));
}
