/* --disk and --nic values of `vmmd run`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "device_args.h"

static void test_disk(void **state)
{
    char buf[64], err[128];
    struct hv_disk_config d;

    (void)state;
    strcpy(buf, "/images/a.img");
    assert_int_equal(vmmd_parse_disk_arg(buf, &d, err, sizeof(err)), 0);
    assert_string_equal(d.path, "/images/a.img");
    assert_false(d.readonly);
    strcpy(buf, "/images/b.img,ro");
    assert_int_equal(vmmd_parse_disk_arg(buf, &d, err, sizeof(err)), 0);
    assert_string_equal(d.path, "/images/b.img");
    assert_true(d.readonly);
    strcpy(buf, "/images/c.img,rw");
    assert_int_not_equal(vmmd_parse_disk_arg(buf, &d, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "unknown option 'rw'"));
    strcpy(buf, ",ro");
    assert_int_not_equal(vmmd_parse_disk_arg(buf, &d, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "needs a path"));
    assert_false(d.has_fd);
    /* The daemon hands over descriptors it opened itself. */
    strcpy(buf, "/images/d.img,fd=7,ro");
    assert_int_equal(vmmd_parse_disk_arg(buf, &d, err, sizeof(err)), 0);
    assert_string_equal(d.path, "/images/d.img");
    assert_true(d.has_fd);
    assert_int_equal(d.fd, 7);
    assert_true(d.readonly);
    static const char *const bad_fds[] = {"fd=", "fd=2", "fd=-1", "fd=9x", "fd=99999999999"};
    for (size_t i = 0; i < sizeof(bad_fds) / sizeof(bad_fds[0]); i++) {
        snprintf(buf, sizeof(buf), "/images/e.img,%s", bad_fds[i]);
        assert_int_not_equal(vmmd_parse_disk_arg(buf, &d, err, sizeof(err)), 0);
        assert_non_null(strstr(err, "descriptor number"));
    }
}

static void test_nic(void **state)
{
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
    char buf[96], err[128];
    struct hv_nic_config n;

    (void)state;
    strcpy(buf, "tap=tap0");
    assert_int_equal(vmmd_parse_nic_arg(buf, &n, err, sizeof(err)), 0);
    assert_string_equal(n.tap, "tap0");
    assert_null(n.bridge);
    assert_false(n.mac_set);
    strcpy(buf, "bridge=br0,mac=52:54:00:AB:cd:ef");
    assert_int_equal(vmmd_parse_nic_arg(buf, &n, err, sizeof(err)), 0);
    assert_string_equal(n.bridge, "br0");
    assert_true(n.mac_set);
    assert_memory_equal(n.mac, mac, 6);
}

static void test_nic_errors(void **state)
{
    static const struct {
        const char *arg, *message;
    } cases[] = {
        {"tap=tap0,mac=01:00:00:00:00:01", "not a unicast MAC"}, /* multicast */
        {"tap=tap0,mac=52:54:00:00:00", "not a unicast MAC"},    /* five bytes */
        {"tap=tap0,mac=52:54:00:00:00:0g", "not a unicast MAC"},
        {"tap=tap0,mac=52:54:00:00:00:001", "not a unicast MAC"},
        {"tap=", "not a valid interface name"},
        {"tap=a-name-far-too-long", "not a valid interface name"},
        {"tap=../x", "not a valid interface name"},
        {"bridge=br%d", "not a valid interface name"},
        {"tap=t0,bridge=br0", "exactly one of"},
        {"mac=52:54:00:00:00:01", "exactly one of"},
        {"tap", "not key=value"},
        {"tap=t0,speed=10", "unknown key 'speed'"},
    };
    char buf[96], err[128];
    struct hv_nic_config n;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strcpy(buf, cases[i].arg);
        err[0] = '\0';
        assert_int_not_equal(vmmd_parse_nic_arg(buf, &n, err, sizeof(err)), 0);
        if (!strstr(err, cases[i].message))
            fail_msg("%s: got '%s', want '%s'", cases[i].arg, err, cases[i].message);
    }
}

static void test_limits(void **state)
{
    char buf[256], err[160];
    struct hv_disk_config d;
    struct hv_nic_config n;

    (void)state;
    strcpy(buf,
           "/images/a.img,fd=5,bytes_per_s=1048576,ops_per_s=100,burst_bytes=2097152,burst_ops=7");
    assert_int_equal(vmmd_parse_disk_arg(buf, &d, err, sizeof(err)), 0);
    assert_int_equal(d.limits.bytes_per_s, 1048576);
    assert_int_equal(d.limits.ops_per_s, 100);
    assert_int_equal(d.limits.burst_bytes, 2097152);
    assert_int_equal(d.limits.burst_ops, 7);
    strcpy(buf, "tap=t0,bytes_per_s=1000");
    assert_int_equal(vmmd_parse_nic_arg(buf, &n, err, sizeof(err)), 0);
    assert_string_equal(n.tap, "t0");
    assert_int_equal(n.limits.bytes_per_s, 1000);
    assert_int_equal(n.limits.ops_per_s, 0);
    /* Out of bounds, negative, not a number. */
    static const char *const bad[] = {"bytes_per_s=1099511627777", "ops_per_s=10000001",
                                      "bytes_per_s=-1", "burst_ops=1x", "ops_per_s="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(buf, sizeof(buf), "/images/a.img,%s", bad[i]);
        assert_int_not_equal(vmmd_parse_disk_arg(buf, &d, err, sizeof(err)), 0);
        assert_non_null(strstr(err, "within bounds"));
        snprintf(buf, sizeof(buf), "tap=t0,%s", bad[i]);
        assert_int_not_equal(vmmd_parse_nic_arg(buf, &n, err, sizeof(err)), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk),
        cmocka_unit_test(test_nic),
        cmocka_unit_test(test_nic_errors),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
