/*
 * Per-VM cgroups against fake cgroup trees in a temporary directory: which
 * hierarchy is chosen from a mountinfo, the slice it delegates, the files
 * and values each version gets, and what a host without controllers reports.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cgroup.h"

static char root[64];

static void put(const char *rel, const char *text)
{
    char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *get(const char *rel)
{
    static char buf[256];
    char path[PATH_MAX];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    f = fopen(path, "r");
    if (!f)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void dir(const char *rel)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    assert_true(mkdir(path, 0755) == 0);
}

static int setup(void **state)
{
    (void)state;
    strcpy(root, "/tmp/vmmd-cgroup-test-XXXXXX");
    assert_non_null(mkdtemp(root));
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    return system(cmd);
}

static void mountinfo(const char *lines)
{
    char text[4096];

    /* "%R" stands for the fake root in the lines given. */
    size_t n = 0;
    for (const char *p = lines; *p && n < sizeof(text) - 80; p++) {
        if (p[0] == '%' && p[1] == 'R') {
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", root);
            p++;
        } else {
            text[n++] = *p;
        }
    }
    text[n] = 0;
    put("mountinfo", text);
}

static const struct cgroup_limits limits = {
    .memory_bytes = 64ull << 20, .pids = 40, .cpu_quota_pct = 150, .cpu_weight = 200};

static void test_v2_delegates_a_slice_and_writes_v2_files(void **state)
{
    struct cgroup_host h;
    char path[PATH_MAX], err[256];

    (void)state;
    dir("v2");
    put("v2/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma\n");
    put("v2/cgroup.subtree_control", "");
    mountinfo("30 1 0:26 / %R/v2 rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
    snprintf(path, sizeof(path), "%s/mountinfo", root);
    /* The slice does not exist in a fake tree until we make it and its control files. */
    dir("v2/vmmd.slice");
    put("v2/vmmd.slice/cgroup.subtree_control", "");
    cgroup_host_init(&h, path, "vmmd.slice");
    assert_int_equal(h.version, CGROUP_V2);
    assert_string_equal(get("v2/cgroup.subtree_control"), "+memory +cpu +pids");
    assert_string_equal(get("v2/vmmd.slice/cgroup.subtree_control"), "+memory +cpu +pids");

    cgroup_vm_dir(&h, CG_PIDS, "vm1", path);
    snprintf(err, sizeof(err), "%s/v2/vmmd.slice/vm1", root);
    assert_string_equal(path, err);
    dir("v2/vmmd.slice/vm1");
    for (const char *const *f =
             (const char *const[]){"memory.max", "cpu.max", "cpu.weight", "pids.max", NULL};
         *f; f++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "v2/vmmd.slice/vm1/%s", *f);
        put(rel, "");
    }
    assert_int_equal(cgroup_vm_create(&h, "vm1", &limits, err, sizeof(err)), 0);
    assert_string_equal(get("v2/vmmd.slice/vm1/memory.max"), "67108864");
    assert_string_equal(get("v2/vmmd.slice/vm1/cpu.max"), "150000 100000");
    assert_string_equal(get("v2/vmmd.slice/vm1/cpu.weight"), "200");
    assert_string_equal(get("v2/vmmd.slice/vm1/pids.max"), "40");
    /* No limits: the kernel's own words for none. */
    struct cgroup_limits none = {0};
    assert_int_equal(cgroup_vm_set_limits(&h, "vm1", &none, err, sizeof(err)), 0);
    assert_string_equal(get("v2/vmmd.slice/vm1/memory.max"), "max");
    assert_string_equal(get("v2/vmmd.slice/vm1/cpu.max"), "max 100000");
    assert_string_equal(get("v2/vmmd.slice/vm1/cpu.weight"), "100");
    assert_string_equal(get("v2/vmmd.slice/vm1/pids.max"), "max");
}

static void test_v1_when_v2_lacks_the_controllers(void **state)
{
    struct cgroup_host h;
    char path[PATH_MAX], err[256];

    (void)state;
    dir("unified");
    put("unified/cgroup.controllers", "hugetlb\n");
    dir("memory");
    dir("cpu,cpuacct");
    dir("pids");
    mountinfo("41 31 0:38 / %R/unified rw,relatime - cgroup2 cgroup2 rw\n"
              "35 31 0:32 / %R/memory rw,relatime - cgroup cgroup rw,memory\n"
              "32 31 0:29 / %R/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
              "39 31 0:36 / %R/pids rw,relatime - cgroup cgroup rw,pids\n");
    snprintf(path, sizeof(path), "%s/mountinfo", root);
    cgroup_host_init(&h, path, "vmmd.slice");
    assert_int_equal(h.version, CGROUP_V1);
    assert_non_null(strstr(h.detail, "lacks the memory controller"));
    dir("memory/vmmd.slice/vm1");
    dir("cpu,cpuacct/vmmd.slice/vm1");
    dir("pids/vmmd.slice/vm1");
    put("memory/vmmd.slice/vm1/memory.limit_in_bytes", "");
    put("cpu,cpuacct/vmmd.slice/vm1/cpu.cfs_quota_us", "");
    put("cpu,cpuacct/vmmd.slice/vm1/cpu.shares", "");
    put("pids/vmmd.slice/vm1/pids.max", "");
    assert_int_equal(cgroup_vm_create(&h, "vm1", &limits, err, sizeof(err)), 0);
    assert_string_equal(get("memory/vmmd.slice/vm1/memory.limit_in_bytes"), "67108864");
    assert_string_equal(get("cpu,cpuacct/vmmd.slice/vm1/cpu.cfs_quota_us"), "150000");
    assert_string_equal(get("cpu,cpuacct/vmmd.slice/vm1/cpu.shares"), "2048");
    assert_string_equal(get("pids/vmmd.slice/vm1/pids.max"), "40");
    /* The lowest weight still gives the kernel's minimum share. */
    struct cgroup_limits light = {.cpu_weight = 1};
    assert_int_equal(cgroup_vm_set_limits(&h, "vm1", &light, err, sizeof(err)), 0);
    assert_string_equal(get("cpu,cpuacct/vmmd.slice/vm1/cpu.shares"), "10");
    assert_string_equal(get("cpu,cpuacct/vmmd.slice/vm1/cpu.cfs_quota_us"), "-1");
    assert_string_equal(get("memory/vmmd.slice/vm1/memory.limit_in_bytes"), "-1");
}

static void test_none_without_hierarchies(void **state)
{
    struct cgroup_host h;
    char path[PATH_MAX], err[256];

    (void)state;
    mountinfo("22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n");
    snprintf(path, sizeof(path), "%s/mountinfo", root);
    cgroup_host_init(&h, path, "vmmd.slice");
    assert_int_equal(h.version, CGROUP_NONE);
    assert_string_equal(h.detail, "no cgroup v2 mount");
    cgroup_vm_dir(&h, CG_MEMORY, "vm1", path);
    assert_string_equal(path, "");
    /* A VM still starts: nothing to create, nothing to fail. */
    assert_int_equal(cgroup_vm_create(&h, "vm1", &limits, err, sizeof(err)), 0);
}

static void test_a_write_the_kernel_refuses_names_the_file(void **state)
{
    struct cgroup_host h;
    char path[PATH_MAX], err[512];

    (void)state;
    dir("pids");
    dir("memory");
    dir("cpu");
    mountinfo("35 31 0:32 / %R/memory rw - cgroup cgroup rw,memory\n"
              "32 31 0:29 / %R/cpu rw - cgroup cgroup rw,cpu\n"
              "39 31 0:36 / %R/pids rw - cgroup cgroup rw,pids\n");
    snprintf(path, sizeof(path), "%s/mountinfo", root);
    cgroup_host_init(&h, path, "vmmd.slice");
    assert_int_equal(h.version, CGROUP_V1);
    /* The VM's directories exist but hold no control files: every write fails. */
    assert_int_not_equal(cgroup_vm_create(&h, "vm2", &limits, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "memory.limit_in_bytes"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_v2_delegates_a_slice_and_writes_v2_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_v1_when_v2_lacks_the_controllers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_none_without_hierarchies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_write_the_kernel_refuses_names_the_file, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
