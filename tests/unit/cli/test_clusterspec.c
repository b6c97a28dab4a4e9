/*
 * vmctl's cluster one-liners (cli/src/clusterspec.c): `cluster join-token`'s
 * --ttl and body, and the summary line and member rows `cluster list` prints,
 * from GET /v1/cluster answers as shared-cluster.md has them; --ha's value, and
 * `cluster evacuate`'s rows and the events its --wait follows (phase 2 of the
 * contract).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clusterspec.h"

/* A cluster seen from m1: itself online, m2 offline since 06:50, m3 never reported its load. */
static const char cluster[] =
    "{\"enabled\": true, \"name\": \"c1\", \"member\": \"m1\", \"writable\": true,"
    " \"detail\": null, \"lease_ttl_s\": 10, \"members\": ["
    " {\"name\": \"m1\", \"address\": \"https://127.0.0.1:8441\", \"state\": \"online\","
    "  \"version\": \"0.9.0\", \"joined_at\": \"2026-12-04T07:00:00Z\","
    "  \"last_heartbeat\": \"2026-12-04T07:01:02Z\","
    "  \"capacity\": {\"memory_bytes\": 8589934592, \"vcpus\": 8},"
    "  \"allocation\": {\"memory_bytes\": 1610612736, \"vcpus\": 3, \"vms\": 3,"
    "   \"vms_running\": 2}, \"self\": true},"
    " {\"name\": \"m2\", \"address\": null, \"state\": \"offline\", \"version\": \"0.9.0\","
    "  \"joined_at\": \"2026-12-04T07:00:00Z\", \"last_heartbeat\": \"2026-12-04T06:50:00Z\","
    "  \"capacity\": {\"memory_bytes\": 4294967296, \"vcpus\": 4},"
    "  \"allocation\": {\"memory_bytes\": 268435456, \"vcpus\": 1, \"vms\": 1,"
    "   \"vms_running\": 0}, \"self\": false},"
    " {\"name\": \"m3\", \"address\": \"https://10.0.0.3:8443\", \"state\": \"online\","
    "  \"version\": \"0.9.0\", \"joined_at\": \"2026-12-04T07:00:30Z\","
    "  \"last_heartbeat\": null, \"capacity\": null, \"allocation\": null, \"self\": false}"
    "]}";

/* 2026-12-04T07:01:05Z */
static const time_t now = 1796367665;

static void test_ttl(void **state)
{
    long ttl = -1;
    const char *why = "unset";

    (void)state;
    assert_true(cli_join_token_ttl("60", &ttl, &why));
    assert_int_equal(ttl, 60);
    assert_null(why);
    assert_true(cli_join_token_ttl("86400", &ttl, &why));
    assert_int_equal(ttl, 86400);
}

static void test_ttl_refused(void **state)
{
    static const char *const bad[] = {"",   "59",    "86401", "-60",
                                      "1h", "3600s", "1e3",   "99999999999999999999"};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long ttl = 42;
        const char *why = NULL;
        assert_false(cli_join_token_ttl(bad[i], &ttl, &why));
        assert_non_null(why);
        assert_int_equal(ttl, 42); /* untouched */
    }
}

static void test_body(void **state)
{
    json_t *body = cli_join_token_body(CLI_JOIN_TTL_DEFAULT);
    char *s = json_dumps(body, JSON_COMPACT);

    (void)state;
    assert_string_equal(s, "{\"ttl_s\":3600}");
    free(s);
    json_decref(body);
}

static void test_summary(void **state)
{
    json_t *c = json_loads(cluster, 0, NULL);
    char line[256];

    (void)state;
    assert_non_null(c);
    cli_cluster_summary(c, line, sizeof(line));
    assert_string_equal(line, "cluster c1, member m1, lease 10 s: writable");
    json_object_set_new(c, "writable", json_false());
    json_object_set_new(c, "detail", json_string("etcd unreachable: connection refused"));
    cli_cluster_summary(c, line, sizeof(line));
    assert_string_equal(line, "cluster c1, member m1, lease 10 s: READ-ONLY: etcd unreachable: "
                              "connection refused");
    /* Read-only without a detail still says so. */
    json_object_set_new(c, "detail", json_null());
    cli_cluster_summary(c, line, sizeof(line));
    assert_string_equal(line, "cluster c1, member m1, lease 10 s: READ-ONLY: the cluster store "
                              "is out of reach");
    /* A short buffer is cut, not overrun. */
    cli_cluster_summary(c, line, 12);
    assert_string_equal(line, "cluster c1,");
    /* A stand-alone daemon's answer: enabled false, the rest null or empty. */
    json_object_set_new(c, "enabled", json_false());
    cli_cluster_summary(c, line, sizeof(line));
    assert_string_equal(line, "not in a cluster: this vmmd runs stand-alone");
    json_decref(c);
}

/* The row of members[i]: its six cells, NAME STATE ADDRESS VMS MEMORY HEARTBEAT, as expected. */
static void expect_row(json_t *members, size_t i, const char *const want[CLI_CLUSTER_COLUMNS])
{
    struct cli_cluster_row row;
    const char *got[CLI_CLUSTER_COLUMNS] = {row.name, row.state,  row.address,
                                            row.vms,  row.memory, row.heartbeat};

    cli_cluster_row(json_array_get(members, i), now, &row);
    for (size_t c = 0; c < CLI_CLUSTER_COLUMNS; c++)
        assert_string_equal(got[c], want[c]);
}

static void test_rows(void **state)
{
    static const char *const m1[] = {
        "m1", "online", "https://127.0.0.1:8441", "3 (2 running)", "1.5 GiB of 8 GiB", "3s ago"};
    /* No --advertise: no address. */
    static const char *const m2[] = {
        "m2", "offline", "-", "1 (0 running)", "256 MiB of 4 GiB", "11m5s ago"};
    /* Nothing reported yet: dashes, not zeros. */
    static const char *const m3[] = {"m3", "online", "https://10.0.0.3:8443", "-", "-", "-"};
    json_t *c = json_loads(cluster, 0, NULL), *members = json_object_get(c, "members");

    (void)state;
    expect_row(members, 0, m1);
    expect_row(members, 1, m2);
    expect_row(members, 2, m3);
    json_decref(c);
}

/* A member with part of its record: a clock ahead of ours, a capacity but no allocation. */
static void test_row_partial(void **state)
{
    /* The member's clock is two seconds ahead of ours. */
    static const char *const m4[] = {"m4", "online", "-", "-", "- of 2 GiB", "0s ago"};
    json_t *members =
        json_pack("[{s:s, s:s, s:s, s:{s:I}}]", "name", "m4", "state", "online", "last_heartbeat",
                  "2026-12-04T07:01:07Z", "capacity", "memory_bytes", (json_int_t)2147483648);

    (void)state;
    /* And it has not told its allocation: the capacity is still worth showing. */
    expect_row(members, 0, m4);
    json_decref(members);
}

static void test_ha(void **state)
{
    json_t *v;

    (void)state;
    v = cli_ha_value("restart");
    assert_string_equal(json_string_value(v), "restart");
    json_decref(v);
    /* none is null: what a PATCH sends to turn ha off. */
    assert_true(json_is_null(cli_ha_value("none")));
    assert_null(cli_ha_value(""));
    assert_null(cli_ha_value("Restart"));
    assert_null(cli_ha_value("always"));
}

/* POST /v1/cluster/members/m2/evacuate's 202: one VM migrated, one moved, one with less. */
static const char evacuation[] =
    "{\"member\": \"m2\", \"vms\": ["
    " {\"id\": \"a1\", \"name\": \"web\", \"state\": \"running\", \"action\": \"migrate\","
    "  \"target\": \"m1\"},"
    " {\"id\": \"a2\", \"name\": \"db\", \"state\": \"stopped\", \"action\": \"move\","
    "  \"target\": \"m3\"},"
    " {\"id\": \"a3\", \"name\": \"odd\"}]}";

static void test_evacuation_rows(void **state)
{
    static const char *const want[][CLI_EVACUATION_COLUMNS] = {{"web", "running", "migrate", "m1"},
                                                               {"db", "stopped", "move", "m3"},
                                                               {"odd", "-", "-", "-"}};
    json_t *a = json_loads(evacuation, 0, NULL), *vms = json_object_get(a, "vms");

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct cli_evacuation_row row;
        const char *got[CLI_EVACUATION_COLUMNS] = {row.name, row.state, row.action, row.target};
        cli_evacuation_row(json_array_get(vms, i), &row);
        for (size_t c = 0; c < CLI_EVACUATION_COLUMNS; c++)
            assert_string_equal(got[c], want[i][c]);
    }
    json_decref(a);
}

/* The events --wait sees: every member's, each naming its member in "member". */
static enum cli_evac_event feed(const char *type, const char *data, char *line, long long *failed)
{
    json_t *d = json_loads(data, 0, NULL);
    enum cli_evac_event e;

    assert_non_null(d);
    e = cli_evacuation_event("m2", type, d, line, 256, failed);
    json_decref(d);
    return e;
}

static void test_evacuation_events(void **state)
{
    char line[256] = "";
    long long failed = -1;

    (void)state;
    assert_int_equal(
        feed("cluster.evacuation_started", "{\"member\":\"m2\",\"vms\":2}", line, &failed),
        CLI_EVAC_OTHER);
    assert_int_equal(
        feed("vm.migrated",
             "{\"vm\":\"web\",\"target\":\"https://127.0.0.1:8441\",\"member\":\"m2\"}", line,
             &failed),
        CLI_EVAC_PROGRESS);
    assert_string_equal(line, "  web: migrated to https://127.0.0.1:8441");
    assert_int_equal(feed("vm.migration_failed",
                          "{\"vm\":\"db\",\"error\":\"target full\",\"member\":\"m2\"}", line,
                          &failed),
                     CLI_EVAC_PROGRESS);
    assert_string_equal(line, "  db: migration failed: target full");
    /* Another member's migration, another member's evacuation, an event without a member. */
    assert_int_equal(feed("vm.migrated", "{\"vm\":\"x\",\"member\":\"m3\"}", line, &failed),
                     CLI_EVAC_OTHER);
    assert_int_equal(feed("cluster.evacuation_done", "{\"member\":\"m3\",\"moved\":1,\"failed\":0}",
                          line, &failed),
                     CLI_EVAC_OTHER);
    assert_int_equal(feed("vm.migrated", "{\"vm\":\"x\"}", line, &failed), CLI_EVAC_OTHER);
    assert_int_equal(failed, -1);
    assert_int_equal(feed("cluster.evacuation_done", "{\"member\":\"m2\",\"moved\":1,\"failed\":1}",
                          line, &failed),
                     CLI_EVAC_DONE);
    assert_string_equal(line, "evacuated m2: 1 moved, 1 failed");
    assert_int_equal(failed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_ttl_refused),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_row_partial),
        cmocka_unit_test(test_ha),
        cmocka_unit_test(test_evacuation_rows),
        cmocka_unit_test(test_evacuation_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
