/*
 * What the daemon hands nftables and dnsmasq for its managed networks, and
 * what it reads back from dnsmasq's lease file: pure text in, text out.
 * Where nft is installed, each rendered ruleset is also checked by nft
 * itself (nft -c: parsed and validated by the kernel, applied nowhere).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "net_dnsmasq.h"
#include "net_firewall.h"
#include "vm_nics.h"

static bool nft_usable(void)
{
    static const char *const argv[] = {"nft", "list", "tables", NULL};
    char out[256];

    return getuid() == 0 && vmmd_run_command(argv, NULL, out, sizeof(out), 5000) == 0;
}

/* nft's own verdict on a script: 0 when it would apply. */
static int nft_check(const char *script, char *out, size_t outlen)
{
    static const char *const argv[] = {"nft", "-c", "-f", "-", NULL};

    return vmmd_run_command(argv, script, out, outlen, 10000);
}

static const struct fw_network two_nets[] = {
    {.bridge = "vmmd-default", .cidr = "10.71.0.0/24", .nat = true},
    {.bridge = "vmmd-iso", .cidr = "192.168.90.0/28", .nat = false},
};
static const struct fw_forward two_fwds[] = {
    {.protocol = "tcp",
     .host_address = "",
     .host_port = 8080,
     .vm_ip = "10.71.0.10",
     .vm_port = 80},
    {.protocol = "udp",
     .host_address = "192.0.2.2",
     .host_port = 53,
     .vm_ip = "10.71.0.11",
     .vm_port = 5353},
};

static void test_firewall_rules(void **state)
{
    struct strbuf b = {0};
    char out[2048];

    (void)state;
    assert_int_equal(net_firewall_render(&b, "vmmd", two_nets, 2, two_fwds, 2), 0);
    /* One transaction that replaces the table, whatever was there. */
    assert_true(
        strncmp(b.buf, "table inet vmmd {}\ndelete table inet vmmd\ntable inet vmmd {\n", 60) == 0);
    assert_non_null(strstr(b.buf, "ip saddr 10.71.0.0/24 ip daddr != 10.71.0.0/24 masquerade"));
    assert_null(strstr(b.buf, "192.168.90.0/28 masquerade"));
    assert_null(strstr(b.buf, "ip saddr 192.168.90.0/28 ip daddr"));
    assert_null(strstr(b.buf, "iifname \"vmmd-iso\" ip saddr")); /* isolated: no way out */
    assert_non_null(strstr(b.buf, "iifname \"vmmd-default\" ip saddr 10.71.0.0/24 accept"));
    assert_non_null(strstr(b.buf, "iifname \"vmmd-default\" oifname { \"vmmd-iso\" } drop"));
    assert_non_null(strstr(b.buf, "iifname \"vmmd-iso\" oifname { \"vmmd-default\" } drop"));
    assert_non_null(strstr(b.buf, "iifname \"vmmd-iso\" drop"));
    assert_non_null(strstr(b.buf, "oifname \"vmmd-iso\" ct status dnat accept"));
    assert_non_null(strstr(b.buf, "fib daddr type local ip daddr != 127.0.0.0/8 tcp dport 8080 "
                                  "dnat ip to 10.71.0.10:80"));
    assert_non_null(strstr(b.buf, "ip daddr 192.0.2.2 udp dport 53 dnat ip to 10.71.0.11:5353"));
    /* Both directions of a forward: from outside (prerouting) and from the host (output). */
    assert_non_null(strstr(strstr(b.buf, "chain output"), "dport 8080"));
    if (nft_usable())
        assert_int_equal(nft_check(b.buf, out, sizeof(out)), 0);
    else
        print_message("nft not usable here (not root or not installed): syntax not checked\n");
    free(b.buf);
}

static void test_firewall_empty(void **state)
{
    struct strbuf b = {0};

    (void)state;
    assert_int_equal(net_firewall_render(&b, "t1", NULL, 0, NULL, 0), 0);
    assert_string_equal(b.buf, "table inet t1 {}\ndelete table inet t1\n");
    free(b.buf);
    memset(&b, 0, sizeof(b));
    /* One network: no set of other bridges to drop towards. */
    assert_int_equal(net_firewall_render(&b, "t1", two_nets, 1, NULL, 0), 0);
    assert_null(strstr(b.buf, "oifname {"));
    if (nft_usable()) {
        char out[2048];
        assert_int_equal(nft_check(b.buf, out, sizeof(out)), 0);
    }
    free(b.buf);
}

static const struct dnsmasq_host hosts[] = {
    {.mac = "52:54:00:aa:00:10", .ip = "10.71.0.10", .name = "web"},
    {.mac = "52:54:00:aa:00:11", .ip = NULL, .name = "db"},
};

static void test_dnsmasq_conf(void **state)
{
    struct dnsmasq_conf c = {.name = "default",
                             .dir = "/var/lib/vmmd/networks/default",
                             .bridge = "vmmd-default",
                             .domain = "vmmd",
                             .net = 10u << 24 | 71u << 16,
                             .prefix = 24,
                             .dhcp = true,
                             .nat = true,
                             .mtu = 1500,
                             .hosts = hosts,
                             .n_hosts = 2};
    struct strbuf b = {0};

    (void)state;
    assert_int_equal(dnsmasq_render_conf(&b, &c), 0);
    assert_non_null(strstr(b.buf, "\ninterface=vmmd-default\nexcept-interface=lo\nbind-dynamic\n"));
    assert_non_null(strstr(b.buf, "\npid-file=/var/lib/vmmd/networks/default/dnsmasq.pid\n"));
    assert_non_null(strstr(b.buf, "\ndhcp-range=10.71.0.2,10.71.0.254,255.255.255.0,1h\n"));
    assert_non_null(strstr(b.buf, "\ndhcp-option=option:router,10.71.0.1\n"));
    assert_non_null(strstr(b.buf, "\ndhcp-host=52:54:00:aa:00:10,10.71.0.10,web\n"));
    assert_non_null(strstr(b.buf, "\nhost-record=web.vmmd,web,10.71.0.10\n"));
    assert_non_null(strstr(b.buf, "\ndhcp-host=52:54:00:aa:00:11,db\n"));
    assert_null(strstr(b.buf, "host-record=db"));
    assert_null(strstr(b.buf, "no-resolv"));
    assert_null(strstr(b.buf, "option:mtu"));
    free(b.buf);
    memset(&b, 0, sizeof(b));

    /* Isolated, a /29, jumbo frames, DHCP off: DNS records stay, no range, no router. */
    c.nat = false;
    c.prefix = 29;
    c.net = 192u << 24 | 168u << 16 | 9u << 8 | 8u;
    c.mtu = 9000;
    assert_int_equal(dnsmasq_render_conf(&b, &c), 0);
    assert_non_null(strstr(b.buf, "\nno-resolv\n"));
    assert_non_null(strstr(b.buf, "\ndhcp-range=192.168.9.10,192.168.9.14,255.255.255.248,1h\n"));
    assert_non_null(strstr(b.buf, "\ndhcp-option=option:router\n"));
    assert_non_null(strstr(b.buf, "\ndhcp-option=option:mtu,9000\n"));
    free(b.buf);
    memset(&b, 0, sizeof(b));
    c.dhcp = false;
    assert_int_equal(dnsmasq_render_conf(&b, &c), 0);
    assert_null(strstr(b.buf, "dhcp-range"));
    assert_null(strstr(b.buf, "dhcp-host"));
    assert_non_null(strstr(b.buf, "\nhost-record=web.vmmd,web,10.71.0.10\n"));
    free(b.buf);
}

static void test_leases(void **state)
{
    struct dnsmasq_lease l[8];
    char longline[1024];
    size_t n;

    (void)state;
    n = dnsmasq_parse_leases("1764780000 52:54:00:aa:00:10 10.71.0.10 web 01:52:54:00:aa:00:10\n"
                             "0 52:54:00:aa:00:11 10.71.0.57 * *\n"
                             "garbage\n"
                             "1764780000 52:54:00:aa:00:12 fd00::5 v6 *\n"
                             "1764780000 52:54:00 10.71.0.9 short *\n"
                             "-5 52:54:00:aa:00:13 10.71.0.11 neg *\n"
                             "1764780000 52:54:00:aa:00:14 10.71.0.300 bad *\n"
                             "1764780000 52:54:00:aa:00:15 10.71.0.12 last",
                             l, 8);
    assert_int_equal(n, 3);
    assert_int_equal(l[0].expires, 1764780000);
    assert_string_equal(l[0].mac, "52:54:00:aa:00:10");
    assert_string_equal(l[0].ip, "10.71.0.10");
    assert_string_equal(l[0].hostname, "web");
    assert_int_equal(l[1].expires, 0);
    assert_string_equal(l[1].hostname, "");
    assert_string_equal(l[2].ip, "10.71.0.12");
    assert_int_equal(dnsmasq_parse_leases(NULL, l, 8), 0);
    assert_int_equal(dnsmasq_parse_leases("", l, 8), 0);
    /* At most max, and a line too long to be a lease is skipped whole. */
    assert_int_equal(dnsmasq_parse_leases("1 52:54:00:aa:00:10 10.0.0.2 a\n"
                                          "1 52:54:00:aa:00:11 10.0.0.3 b\n",
                                          l, 1),
                     1);
    memset(longline, 'x', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = 0;
    assert_int_equal(dnsmasq_parse_leases(longline, l, 8), 0);
}

static void test_run_command(void **state)
{
    static const char *const cat[] = {"cat", NULL};
    static const char *const fails[] = {"sh", "-c", "echo oops >&2; exit 3", NULL};
    static const char *const slow[] = {"sleep", "5", NULL};
    static const char *const missing[] = {"vmmd-no-such-tool", NULL};
    char out[64];

    (void)state;
    assert_int_equal(vmmd_run_command(cat, "hello\n\n", out, sizeof(out), 5000), 0);
    assert_string_equal(out, "hello");
    assert_int_equal(vmmd_run_command(fails, NULL, out, sizeof(out), 5000), 3);
    assert_string_equal(out, "oops");
    assert_int_equal(vmmd_run_command(slow, NULL, out, sizeof(out), 100), -ETIMEDOUT);
    assert_int_equal(vmmd_run_command(missing, NULL, out, sizeof(out), 5000), 127);
    assert_non_null(strstr(out, "cannot run vmmd-no-such-tool"));
}

static void test_nic_macs(void **state)
{
    char a[18], b[18];

    (void)state;
    vmmd_nic_mac("9894b0b5-891e-4a7c-9656-76c30054f751", 0, NULL, a);
    vmmd_nic_mac("9894b0b5-891e-4a7c-9656-76c30054f751", 0, NULL, b);
    assert_string_equal(a, b); /* stable: dnsmasq knows it before the VM runs */
    assert_true(strncmp(a, "52:54:00:", 9) == 0);
    vmmd_nic_mac("9894b0b5-891e-4a7c-9656-76c30054f751", 1, NULL, b);
    assert_string_not_equal(a, b);
    vmmd_nic_mac("x", 0, "02:00:00:00:00:01", a);
    assert_string_equal(a, "02:00:00:00:00:01");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_firewall_rules), cmocka_unit_test(test_firewall_empty),
        cmocka_unit_test(test_dnsmasq_conf),   cmocka_unit_test(test_leases),
        cmocka_unit_test(test_run_command),    cmocka_unit_test(test_nic_macs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
