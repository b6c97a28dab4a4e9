/* Per-VM cgroups (see cgroup.h). */
#include "cgroup.h"
#include "common/errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const v1_names[CG_COUNT] = {"memory", "cpu", "pids"};

#define CPU_PERIOD_US 100000u

static int write_value(const char *dir, const char *file, const char *value)
{
    char path[PATH_MAX + 64];
    size_t len = strlen(value);
    int fd, rc = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    fd = open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (write(fd, value, len) != (ssize_t)len)
        rc = -errno;
    close(fd);
    return rc;
}

/* Whether word is one of the tokens of list (separated by any of seps). */
static bool has_token(const char *list, const char *word, const char *seps)
{
    size_t n = strlen(word);

    for (const char *p = list; (p = strstr(p, word)); p += n) {
        bool starts = p == list || strchr(seps, p[-1]);
        bool ends = p[n] == 0 || strchr(seps, p[n]);
        if (starts && ends)
            return true;
    }
    return false;
}

static bool make_dir(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST;
}

/* cgroup v2 with the three controllers, delegated to a slice of ours. */
static bool try_v2(struct cgroup_host *h, const char *mount, const char *slice_name)
{
    char path[PATH_MAX + 32], ctl[256] = "";
    FILE *f;

    snprintf(path, sizeof(path), "%s/cgroup.controllers", mount);
    f = fopen(path, "re");
    if (f) {
        if (!fgets(ctl, sizeof(ctl), f))
            ctl[0] = 0;
        fclose(f);
    }
    for (int c = 0; c < CG_COUNT; c++) {
        if (!has_token(ctl, v1_names[c], " \n")) {
            snprintf(h->detail, sizeof(h->detail),
                     "cgroup v2 at %s lacks the %s controller (held by a v1 hierarchy?)", mount,
                     v1_names[c]);
            return false;
        }
    }
    snprintf(h->slice[0], sizeof(h->slice[0]), "%.*s/%s", PATH_MAX - 64, mount, slice_name);
    if (!make_dir(h->slice[0]) ||
        write_value(mount, "cgroup.subtree_control", "+memory +cpu +pids") ||
        write_value(h->slice[0], "cgroup.subtree_control", "+memory +cpu +pids")) {
        snprintf(h->detail, sizeof(h->detail), "cgroup v2 at %s: cannot delegate to %s: %s", mount,
                 h->slice[0], strerror(errno));
        return false;
    }
    for (int c = 1; c < CG_COUNT; c++)
        memcpy(h->slice[c], h->slice[0], sizeof(h->slice[0]));
    h->version = CGROUP_V2;
    snprintf(h->detail, sizeof(h->detail), "cgroup v2, slice %s", h->slice[0]);
    return true;
}

void cgroup_host_init(struct cgroup_host *h, const char *mountinfo, const char *slice_name)
{
    char line[4096], v2_mount[PATH_MAX] = "", v1_mount[CG_COUNT][PATH_MAX] = {{0}};
    FILE *f = fopen(mountinfo, "re");

    memset(h, 0, sizeof(*h));
    while (f && fgets(line, sizeof(line), f)) {
        char mount[PATH_MAX], fstype[64], superopts[512];
        const char *sep = strstr(line, " - ");

        /* id parent dev root MOUNT opts [optional...] - FSTYPE source SUPEROPTS */
        if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mount) != 1 ||
            sscanf(sep + 3, "%63s %*s %511s", fstype, superopts) != 2)
            continue;
        if (strcmp(fstype, "cgroup2") == 0 && !v2_mount[0])
            snprintf(v2_mount, sizeof(v2_mount), "%s", mount);
        for (int c = 0; c < CG_COUNT && strcmp(fstype, "cgroup") == 0; c++)
            if (has_token(superopts, v1_names[c], ",") && !v1_mount[c][0])
                snprintf(v1_mount[c], sizeof(v1_mount[c]), "%s", mount);
    }
    if (f)
        fclose(f);
    if (v2_mount[0] && try_v2(h, v2_mount, slice_name))
        return;
    if (!v2_mount[0])
        snprintf(h->detail, sizeof(h->detail), "no cgroup v2 mount");
    for (int c = 0; c < CG_COUNT; c++) {
        if (!v1_mount[c][0])
            return; /* the v2 detail stands */
        snprintf(h->slice[c], sizeof(h->slice[c]), "%.*s/%s", PATH_MAX - 64, v1_mount[c],
                 slice_name);
        if (!make_dir(h->slice[c])) {
            snprintf(h->detail, sizeof(h->detail), "cannot create %s: %s", h->slice[c],
                     strerror(errno));
            memset(h->slice, 0, sizeof(h->slice));
            return;
        }
    }
    h->version = CGROUP_V1;
    /* Keep why v2 was not used: an operator wants to know. */
    char why[sizeof(h->detail)];
    memcpy(why, h->detail, sizeof(why));
    snprintf(h->detail, sizeof(h->detail), "cgroup v1 (memory, cpu, pids hierarchies; %.*s)",
             (int)sizeof(why) - 64, why);
}

void cgroup_vm_dir(const struct cgroup_host *h, enum cgroup_controller c, const char *vm_id,
                   char out[PATH_MAX])
{
    out[0] = 0;
    if (h->version != CGROUP_NONE)
        snprintf(out, PATH_MAX, "%.*s/%s", PATH_MAX - 64, h->slice[c], vm_id);
}

int cgroup_vm_set_limits(const struct cgroup_host *h, const char *vm_id,
                         const struct cgroup_limits *l, char *err, size_t errlen)
{
    char dir[CG_COUNT][PATH_MAX], mem[32], pids[32], quota[48], weight[32];
    struct {
        enum cgroup_controller c;
        const char *file, *value;
    } w[5];
    unsigned n = 0;
    int rc;

    if (h->version == CGROUP_NONE)
        return 0;
    for (int c = 0; c < CG_COUNT; c++)
        cgroup_vm_dir(h, (enum cgroup_controller)c, vm_id, dir[c]);
    snprintf(pids, sizeof(pids), l->pids ? "%u" : "max", l->pids);
    if (h->version == CGROUP_V2) {
        snprintf(mem, sizeof(mem), l->memory_bytes ? "%llu" : "max",
                 (unsigned long long)l->memory_bytes);
        if (l->cpu_quota_pct)
            snprintf(quota, sizeof(quota), "%llu %u",
                     (unsigned long long)l->cpu_quota_pct * CPU_PERIOD_US / 100, CPU_PERIOD_US);
        else
            snprintf(quota, sizeof(quota), "max %u", CPU_PERIOD_US);
        snprintf(weight, sizeof(weight), "%u", l->cpu_weight ? l->cpu_weight : 100);
        w[n++] = (typeof(w[0])){CG_MEMORY, "memory.max", mem};
        w[n++] = (typeof(w[0])){CG_CPU, "cpu.max", quota};
        w[n++] = (typeof(w[0])){CG_CPU, "cpu.weight", weight};
    } else {
        snprintf(mem, sizeof(mem), "%lld", l->memory_bytes ? (long long)l->memory_bytes : -1LL);
        snprintf(quota, sizeof(quota), "%lld",
                 l->cpu_quota_pct ? (long long)l->cpu_quota_pct * CPU_PERIOD_US / 100 : -1LL);
        /* v1 shares: 1024 is the default, as weight 100 is in v2. */
        unsigned shares = (l->cpu_weight ? l->cpu_weight : 100) * 1024u / 100u;
        snprintf(weight, sizeof(weight), "%u", shares < 2 ? 2 : shares);
        w[n++] = (typeof(w[0])){CG_MEMORY, "memory.limit_in_bytes", mem};
        w[n++] = (typeof(w[0])){CG_CPU, "cpu.cfs_quota_us", quota};
        w[n++] = (typeof(w[0])){CG_CPU, "cpu.shares", weight};
    }
    w[n++] = (typeof(w[0])){CG_PIDS, "pids.max", pids};
    for (unsigned i = 0; i < n; i++)
        if ((rc = write_value(dir[w[i].c], w[i].file, w[i].value)))
            return vmmd_errf(err, errlen, rc, "cannot set %s/%s to %s: %s", dir[w[i].c], w[i].file,
                             w[i].value, strerror(-rc));
    return 0;
}

int cgroup_vm_create(const struct cgroup_host *h, const char *vm_id, const struct cgroup_limits *l,
                     char *err, size_t errlen)
{
    char dir[PATH_MAX];

    for (int c = 0; c < CG_COUNT && h->version != CGROUP_NONE; c++) {
        cgroup_vm_dir(h, (enum cgroup_controller)c, vm_id, dir);
        if (!make_dir(dir))
            return vmmd_errf(err, errlen, -errno, "cannot create cgroup %s: %s", dir,
                             strerror(errno));
    }
    return cgroup_vm_set_limits(h, vm_id, l, err, errlen);
}

void cgroup_vm_remove(const struct cgroup_host *h, const char *vm_id)
{
    char dir[PATH_MAX];

    for (int c = 0; c < CG_COUNT && h->version != CGROUP_NONE; c++) {
        cgroup_vm_dir(h, (enum cgroup_controller)c, vm_id, dir);
        rmdir(dir); /* v2: once, the same directory for every controller */
    }
}
