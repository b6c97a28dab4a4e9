/* The host's sandbox abilities (see sandbox_host.h). */
#include "sandbox_host.h"
#include "config.h"
#include "log.h"
#include "vmmd/worker_proto.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Creates the namespaces a worker will, in a child that ends at once. */
static bool can_create_namespaces(void)
{
    int status;
    pid_t pid = (pid_t)syscall(SYS_clone, WORKER_NAMESPACES | SIGCHLD, NULL, NULL, NULL, NULL);

    if (pid == 0)
        _exit(0);
    if (pid < 0)
        return false;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void sandbox_host_init(struct sandbox_host *h, const struct vmmd_config *cfg)
{
    memset(h, 0, sizeof(*h));
    h->required = cfg->require_sandbox;
    h->uid_base = (uint32_t)cfg->sandbox_uid_base;
    h->uid_count = (uint32_t)cfg->sandbox_uid_count;
    h->seccomp = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
    h->namespaces = geteuid() == 0 && can_create_namespaces();
    cgroup_host_init(&h->cgroup, "/proc/self/mountinfo", "vmmd.slice");
    if (cfg->no_sandbox)
        snprintf(h->detail, sizeof(h->detail), "turned off with --no-sandbox");
    else if (geteuid() != 0)
        snprintf(h->detail, sizeof(h->detail),
                 "the daemon does not run as root, so workers cannot change uid or namespaces");
    else if (!h->namespaces)
        snprintf(h->detail, sizeof(h->detail), "the kernel refused new namespaces");
    else if (!h->seccomp)
        snprintf(h->detail, sizeof(h->detail), "the kernel has no seccomp");
    else
        h->enabled = true;
    if (cfg->no_sandbox)
        log_warn("SANDBOX OFF (--no-sandbox): workers run as root, unfiltered, in the host's "
                 "namespaces; a guest that escapes a device model owns this host");
    else if (!h->enabled)
        log_warn("workers cannot be sandboxed: %s%s", h->detail,
                 h->required ? " (--require-sandbox: no VM will start)" : "");
    else
        log_info("workers are sandboxed: uids %u-%u, namespaces, seccomp; %s", h->uid_base,
                 h->uid_base + h->uid_count - 1, h->cgroup.detail);
}

json_t *sandbox_host_json(const struct sandbox_host *h)
{
    static const char *const versions[] = {"none", "v1", "v2"};
    json_t *ns = json_array();

    if (h->enabled)
        for (const char *const *n =
                 (const char *const[]){"pid", "mount", "ipc", "uts", "net", NULL};
             *n; n++)
            json_array_append_new(ns, json_string(*n));
    return json_pack("{s:b, s:b, s:s?, s:o, s:b, s:b, s:[I, I], s:{s:s, s:s}}", "enabled",
                     h->enabled, "required", h->required, "detail", h->enabled ? NULL : h->detail,
                     "namespaces", ns, "seccomp", h->enabled && h->seccomp, "own_uid_per_vm",
                     h->enabled, "uid_range", (json_int_t)h->uid_base,
                     (json_int_t)(h->uid_base + h->uid_count - 1), "cgroup", "version",
                     versions[h->cgroup.version], "detail", h->cgroup.detail);
}
