/*
 * vmctl's network specs (cli/src/netspec.c): what `--nic` accepts and
 * refuses before anything is sent, forward targets, and the one-line
 * descriptions of NICs (static ip, lease, dhcp, tap, bridge) and forwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "limitspec.h"
#include "storagespec.h"
#include "netspec.h"

/* The Nic a spec parses to, compact, or NULL. Caller frees. */
static char *nic_json(const char *spec, const char **why)
{
    json_t *nic = cli_nic_parse(spec, why);
    char *out = nic ? json_dumps(nic, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

    json_decref(nic);
    return out;
}

static void test_nic_parse(void **state)
{
    const char *why;
    char *s;

    (void)state;
    s = nic_json("network=default", &why);
    assert_string_equal(s, "{\"network\":\"default\"}");
    free(s);
    s = nic_json("network=default,ip=10.71.0.10,mac=52:54:00:12:34:56", &why);
    assert_string_equal(
        s, "{\"ip\":\"10.71.0.10\",\"mac\":\"52:54:00:12:34:56\",\"network\":\"default\"}");
    free(s);
    s = nic_json("bridge=br0", &why);
    assert_string_equal(s, "{\"bridge\":\"br0\"}");
    free(s);
    s = nic_json("tap=tap0,mac=52:54:00:00:00:01", &why);
    assert_string_equal(s, "{\"mac\":\"52:54:00:00:00:01\",\"tap\":\"tap0\"}");
    free(s);
    assert_null(why);
}

static void test_nic_refused(void **state)
{
    static const char *const bad[] = {
        "",                       /* nothing */
        "mac=52:54:00:12:34:56",  /* no kind */
        "network=a,tap=t",        /* two kinds */
        "network=a,network=b",    /* a key twice */
        "tap=t,ip=10.0.0.2",      /* ip without a network */
        "bridge=br0,ip=10.0.0.2", /* the same */
        "network=a,colour=blue",  /* an unknown key */
        "network",                /* not KEY=VALUE */
        "network=",               /* an empty value */
        "=default",               /* an empty key */
    };
    const char *why;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *nic = cli_nic_parse(bad[i], &why);
        if (nic)
            print_error("accepted '%s'\n", bad[i]);
        assert_null(nic);
        assert_non_null(why);
    }
}

static void test_nic_describe(void **state)
{
    json_t *nic;
    char line[256];

    (void)state;
    nic = json_pack("{s:s, s:s, s:s}", "network", "default", "ip", "10.71.0.10", "mac",
                    "52:54:00:12:34:56");
    cli_nic_describe(nic, "10.71.0.99", line, sizeof(line));
    assert_string_equal(line, "network default ip 10.71.0.10 mac 52:54:00:12:34:56");
    json_decref(nic);

    nic = json_pack("{s:s, s:s}", "network", "default", "mac", "52:54:00:12:34:57");
    cli_nic_describe(nic, "10.71.0.57", line, sizeof(line));
    assert_string_equal(line, "network default ip 10.71.0.57 (lease) mac 52:54:00:12:34:57");
    cli_nic_describe(nic, NULL, line, sizeof(line));
    assert_string_equal(line, "network default ip dhcp mac 52:54:00:12:34:57");
    json_decref(nic);

    nic = json_pack("{s:s}", "bridge", "br0");
    cli_nic_describe(nic, NULL, line, sizeof(line));
    assert_string_equal(line, "bridge br0 mac -");
    json_decref(nic);
    nic = json_pack("{s:s, s:s}", "tap", "tap0", "mac", "52:54:00:00:00:01");
    cli_nic_describe(nic, NULL, line, sizeof(line));
    assert_string_equal(line, "tap tap0 mac 52:54:00:00:00:01");
    json_decref(nic);
}

static void test_lease_ip(void **state)
{
    json_t *leases = json_loads("[{\"mac\":\"52:54:00:aa:bb:cc\",\"ip\":\"10.71.0.57\","
                                "\"vm_id\":null},"
                                "{\"mac\":\"52:54:00:00:00:01\",\"ip\":\"10.71.0.58\","
                                "\"vm_id\":\"u1\"}]",
                                0, NULL);

    (void)state;
    assert_string_equal(cli_lease_ip(leases, "52:54:00:AA:BB:CC", "u1"), "10.71.0.57");
    assert_string_equal(cli_lease_ip(leases, "52:54:00:00:00:01", NULL), "10.71.0.58");
    assert_null(cli_lease_ip(leases, "52:54:00:00:00:02", "u1")); /* the MAC decides */
    assert_string_equal(cli_lease_ip(leases, NULL, "u1"), "10.71.0.58");
    assert_null(cli_lease_ip(leases, NULL, "u2"));
    assert_null(cli_lease_ip(leases, NULL, NULL));
    assert_null(cli_lease_ip(NULL, "52:54:00:00:00:01", "u1"));
    json_decref(leases);
}

static void test_forward_target(void **state)
{
    char vm[16];
    long port;

    (void)state;
    assert_int_equal(cli_forward_target("web", vm, sizeof(vm), &port), 0);
    assert_string_equal(vm, "web");
    assert_int_equal(port, 0);
    assert_int_equal(cli_forward_target("web:80", vm, sizeof(vm), &port), 0);
    assert_string_equal(vm, "web");
    assert_int_equal(port, 80);
    assert_int_not_equal(cli_forward_target("web:0", vm, sizeof(vm), &port), 0);
    assert_int_not_equal(cli_forward_target("web:65536", vm, sizeof(vm), &port), 0);
    assert_int_not_equal(cli_forward_target("web:http", vm, sizeof(vm), &port), 0);
    assert_int_not_equal(cli_forward_target("web:", vm, sizeof(vm), &port), 0);
    assert_int_not_equal(cli_forward_target(":80", vm, sizeof(vm), &port), 0);
    assert_int_not_equal(cli_forward_target("a-name-longer-than-16", vm, sizeof(vm), &port), 0);
}

static void test_forward_describe(void **state)
{
    json_t *fwd = json_loads("{\"id\":3,\"network\":\"default\",\"protocol\":\"tcp\","
                             "\"host_address\":null,\"host_port\":8080,\"vm\":\"web\","
                             "\"vm_ip\":\"10.71.0.10\",\"vm_port\":80}",
                             0, NULL);
    char line[128];

    (void)state;
    cli_forward_describe(fwd, line, sizeof(line));
    assert_string_equal(line, "tcp *:8080 -> web 10.71.0.10:80");
    json_object_set_new(fwd, "host_address", json_string("192.0.2.1"));
    json_object_set_new(fwd, "protocol", json_string("udp"));
    cli_forward_describe(fwd, line, sizeof(line));
    assert_string_equal(line, "udp 192.0.2.1:8080 -> web 10.71.0.10:80");
    json_decref(fwd);
}

/* The limit keys of --disk and --nic, and how show prints them. */
static void test_limits(void **state)
{
    const char *why = NULL;
    json_t *d, *n;
    char line[160], *text;

    (void)state;
    d = cli_disk_parse("/img/a.img,ro,bytes_per_s=1048576,ops_per_s=0,burst_ops=8", &why);
    assert_non_null(d);
    text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"limits\":{\"burst_ops\":8,\"bytes_per_s\":1048576},"
                              "\"path\":\"/img/a.img\",\"readonly\":true}");
    free(text);
    cli_limits_describe(d, line, sizeof(line));
    assert_string_equal(line, "bytes_per_s=1048576 burst_ops=8");
    json_decref(d);
    d = cli_disk_parse("/img/b.img", &why);
    cli_limits_describe(d, line, sizeof(line));
    assert_string_equal(line, "unlimited");
    assert_null(json_object_get(d, "limits"));
    json_decref(d);
    assert_null(cli_disk_parse("/img/a.img,bps=1", &why));
    assert_non_null(why);
    assert_null(cli_disk_parse("/img/a.img,ops_per_s=-1", &why));
    assert_null(cli_disk_parse("/img/a.img,ops_per_s=1k", &why));
    assert_null(cli_disk_parse(",ro", &why));
    n = cli_nic_parse("tap=t0,ops_per_s=1000,mac=52:54:00:00:00:01", &why);
    assert_non_null(n);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(n, "limits"), "ops_per_s")),
                     1000);
    json_decref(n);
    assert_null(cli_nic_parse("tap=t0,bytes_per_s=x", &why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nic_parse),      cmocka_unit_test(test_nic_refused),
        cmocka_unit_test(test_nic_describe),   cmocka_unit_test(test_lease_ip),
        cmocka_unit_test(test_forward_target), cmocka_unit_test(test_forward_describe),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
