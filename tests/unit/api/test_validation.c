/*
 * libvmmd_api: every field of a VM definition with valid and invalid values
 * and the status each gets, paths against a real directory tree (symlinks,
 * "..", prefix tricks), shutdown bodies, the error table and problem JSON,
 * the VM's JSON, and the OpenAPI document kept in step with the code.
 *
 * Request bodies are templates in which '@' stands for the temporary root
 * directory, e.g. {"name":"a","kernel":"@/images/vmlinuz"}.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"

/* --- fixture: a temporary tree --------------------------------------------------------------- */

static char root[PATH_MAX];   /* canonical mkdtemp directory */
static char images[PATH_MAX]; /* root/images: the image directory */
static char other[PATH_MAX];  /* root/other: a second image directory */
static const char *dirs[2];
static const struct api_limits limits = {dirs, 2};

/* snprintf that must not truncate (and whose result is used, which -Wformat-truncation wants). */
#define FMT(buf, ...) assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

static void path_of(char *out, const char *rel)
{
    assert_true(snprintf(out, PATH_MAX, "%s/%s", root, rel) < PATH_MAX);
}

static void make_dir(const char *rel)
{
    char p[PATH_MAX];

    path_of(p, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void make_file(const char *rel)
{
    char p[PATH_MAX];
    FILE *f;

    path_of(p, rel);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
}

static void make_link(const char *target_rel, const char *rel)
{
    char t[PATH_MAX], p[PATH_MAX];

    path_of(t, target_rel);
    path_of(p, rel);
    assert_int_equal(symlink(t, p), 0);
}

static int group_setup(void **state)
{
    char tmpl[] = "/tmp/vmmd-api-test-XXXXXX";
    char *canon;

    (void)state;
    if (!mkdtemp(tmpl))
        return -1;
    /* /tmp may itself be a symlink: the limits must be canonical. */
    canon = realpath(tmpl, NULL);
    if (!canon)
        return -1;
    snprintf(root, sizeof(root), "%s", canon);
    free(canon);
    path_of(images, "images");
    path_of(other, "other");
    dirs[0] = images;
    dirs[1] = other;

    make_dir("images");
    make_dir("other");
    make_dir("outside");
    make_dir("imagesx"); /* shares "images" as a string prefix, not as a directory */
    make_dir("images/sub");
    make_dir("images/dir");
    make_file("images/vmlinuz");
    make_file("images/initrd.img");
    for (int i = 0; i < 17; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "images/disk%d.img", i);
        make_file(rel);
    }
    make_file("images/sub/deep.img");
    make_file("other/k2");
    make_file("outside/secret");
    make_file("imagesx/evil.img");
    make_file("images/\xff.img"); /* not UTF-8 */
    make_link("outside/secret", "images/escape");
    make_link("outside/missing", "images/escape-dangling");
    make_link("images/disk0.img", "images/alias0");
    make_link("images/nothing", "images/dangling");
    make_link("images/\xff.img", "images/latin1");
    make_link("outside", "images/outdir");
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    (void)state;
    if (strncmp(root, "/tmp/vmmd-api-test-", 19) == 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

/* --- helpers --------------------------------------------------------------------------------- */

/* Replaces each '@' in tmpl with root. */
static char *expand(const char *tmpl)
{
    size_t n = 0, rl = strlen(root);
    char *out, *o;

    for (const char *p = tmpl; *p; p++)
        n += *p == '@' ? rl : 1;
    out = malloc(n + 1);
    assert_non_null(out);
    o = out;
    for (const char *p = tmpl; *p; p++) {
        if (*p == '@') {
            memcpy(o, root, rl);
            o += rl;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

enum kind { CREATE, PATCH };

/* Parses and returns 0 or the HTTP status of the error; detail into err. */
static int parse(enum kind k, const char *tmpl, struct api_vm_def *def, struct api_error *err)
{
    char *body = expand(tmpl);
    int rc;

    memset(err, 0, sizeof(*err));
    rc = k == CREATE ? api_parse_vm_create(body, strlen(body), &limits, def, err)
                     : api_parse_vm_patch(body, strlen(body), &limits, def, err);
    free(body);
    if (rc == 0)
        return 0;
    assert_int_equal(rc, -1);
    /* A failed parse leaves nothing to free. */
    assert_null(def->kernel);
    assert_null(def->disks_json);
    assert_null(def->nics_json);
    assert_null(def->cmdline);
    return api_error_status(err->kind);
}

/* Expects status (0: success) and a detail that starts with prefix (NULL: any). */
static void expect(enum kind k, const char *tmpl, int status, const char *prefix)
{
    struct api_vm_def def;
    struct api_error err;
    int got = parse(k, tmpl, &def, &err);

    if (got != status || (got && prefix && strncmp(err.detail, prefix, strlen(prefix)) != 0))
        print_error("body %s: expected %d \"%s...\", got %d \"%s\"\n", tmpl, status,
                    prefix ? prefix : "", got, got ? err.detail : "");
    assert_int_equal(got, status);
    if (got && prefix)
        assert_memory_equal(err.detail, prefix, strlen(prefix));
    if (got == 0)
        api_vm_def_free(&def);
}

#define KERNEL "\"kernel\":\"@/images/vmlinuz\""
#define BASE   "{\"name\":\"vm1\"," KERNEL

static void create_ok(const char *tmpl, struct api_vm_def *def)
{
    struct api_error err;
    int got = parse(CREATE, tmpl, def, &err);

    if (got)
        print_error("body %s: %d %s\n", tmpl, got, err.detail);
    assert_int_equal(got, 0);
}

static void patch_ok(const char *tmpl, struct api_vm_def *def)
{
    struct api_error err;
    int got = parse(PATCH, tmpl, def, &err);

    if (got)
        print_error("body %s: %d %s\n", tmpl, got, err.detail);
    assert_int_equal(got, 0);
}

/* BASE plus one more member: field_json is `"key":value`. */
static void expect_with(const char *member, int status, const char *prefix)
{
    char body[8192];

    snprintf(body, sizeof(body), BASE ",%s}", member);
    expect(CREATE, body, status, prefix);
}

static char *in_root(const char *rel)
{
    char p[PATH_MAX];

    path_of(p, rel);
    return strdup(p);
}

/* --- error table and problem JSON ------------------------------------------------------------ */

static void test_error_table(void **state)
{
    static const struct {
        enum api_error_kind kind;
        int status;
        const char *title;
    } want[] = {
        {API_ERR_BAD_REQUEST, 400, "Bad Request"},
        {API_ERR_UNAUTHORIZED, 401, "Unauthorized"},
        {API_ERR_FORBIDDEN, 403, "Forbidden"},
        {API_ERR_NOT_FOUND, 404, "Not Found"},
        {API_ERR_METHOD_NOT_ALLOWED, 405, "Method Not Allowed"},
        {API_ERR_CONFLICT, 409, "Conflict"},
        {API_ERR_PAYLOAD_TOO_LARGE, 413, "Payload Too Large"},
        {API_ERR_UNSUPPORTED_MEDIA, 415, "Unsupported Media Type"},
        {API_ERR_UNPROCESSABLE, 422, "Unprocessable Entity"},
        {API_ERR_INTERNAL, 500, "Internal Server Error"},
        {API_ERR_BAD_GATEWAY, 502, "Bad Gateway"},
        {API_ERR_UNAVAILABLE, 503, "Service Unavailable"},
        {API_ERR_INSUFFICIENT_STORAGE, 507, "Insufficient Storage"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(api_error_status(want[i].kind), want[i].status);
        assert_string_equal(api_error_title(want[i].kind), want[i].title);
    }
    /* A kind out of the table is answered as an internal error. */
    assert_int_equal(api_error_status((enum api_error_kind)99), 500);
    assert_int_equal(api_error_status((enum api_error_kind)(API_ERR_INSUFFICIENT_STORAGE + 1)),
                     500);
}

static void test_api_fail(void **state)
{
    struct api_error err;
    char big[1024];

    (void)state;
    assert_int_equal(api_fail(&err, API_ERR_CONFLICT, "vm %s is %s", "a", "running"), -1);
    assert_int_equal(err.kind, API_ERR_CONFLICT);
    assert_string_equal(err.detail, "vm a is running");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    api_fail(&err, API_ERR_INTERNAL, "%s", big);
    assert_int_equal(strlen(err.detail), sizeof(err.detail) - 1);
}

static json_t *problem_of(const struct api_error *err)
{
    char *text = api_problem_json(err);
    json_t *p;

    assert_non_null(text);
    p = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(p);
    return p;
}

static void test_problem_json(void **state)
{
    struct api_error err;
    json_t *p;

    (void)state;
    api_fail(&err, API_ERR_UNPROCESSABLE, "vcpus: must be an integer from 1 to 64");
    p = problem_of(&err);
    assert_int_equal(json_object_size(p), 4);
    assert_string_equal(json_string_value(json_object_get(p, "type")),
                        "https://vmmd.dev/problems/unprocessable");
    assert_string_equal(json_string_value(json_object_get(p, "title")), "Unprocessable Entity");
    assert_true(json_is_integer(json_object_get(p, "status")));
    assert_int_equal(json_integer_value(json_object_get(p, "status")), 422);
    assert_string_equal(json_string_value(json_object_get(p, "detail")),
                        "vcpus: must be an integer from 1 to 64");
    json_decref(p);

    /* Quotes and control characters in a detail are escaped, not passed through. */
    api_fail(&err, API_ERR_BAD_REQUEST, "a \"quoted\"\n\\ detail");
    p = problem_of(&err);
    assert_string_equal(json_string_value(json_object_get(p, "detail")), "a \"quoted\"\n\\ detail");
    assert_string_equal(json_string_value(json_object_get(p, "type")),
                        "https://vmmd.dev/problems/bad-request");
    json_decref(p);
}

static void test_problem_json_cut_utf8(void **state)
{
    struct api_error err;
    char big[1100] = "";
    json_t *p;

    (void)state;
    /* "é" is two bytes: 511 bytes of them end in half a character. */
    for (int i = 0; i < 540; i++)
        strcat(big, "\xc3\xa9");
    api_fail(&err, API_ERR_FORBIDDEN, "x%s", big);
    p = problem_of(&err);
    assert_int_equal(json_integer_value(json_object_get(p, "status")), 403);
    assert_true(json_string_length(json_object_get(p, "detail")) >= 500);
    json_decref(p);
}

static void test_problem_json_not_utf8(void **state)
{
    struct api_error err;
    json_t *p;

    (void)state;
    /* A query value that is not UTF-8 is shown byte by byte, not dropped with the detail. */
    api_fail(&err, API_ERR_BAD_REQUEST, "state: '%s' is not a state",
             "\xff\xfe\xc3\xa9\xed\xa0\x80");
    p = problem_of(&err);
    assert_string_equal(json_string_value(json_object_get(p, "detail")),
                        "state: '\\xff\\xfe\xc3\xa9\\xed\\xa0\\x80' is not a state");
    json_decref(p);
}

/* --- body shape ------------------------------------------------------------------------------ */

static void test_malformed_json(void **state)
{
    struct api_vm_def def;
    struct api_error err;

    (void)state;
    assert_int_equal(parse(CREATE, "{\"name\": \"a\",\n \"vcpus\": }", &def, &err), 400);
    assert_non_null(strstr(err.detail, "malformed JSON at line 2, column"));
    expect(CREATE, "{\"name\":\"a\"", 400, "body: malformed JSON at line 1");
    expect(CREATE, "{'name':'a'}", 400, "body: malformed JSON");
    expect(CREATE, BASE "} trailing", 400, "body: malformed JSON");
    expect(CREATE, BASE "}{}", 400, "body: malformed JSON");
    expect(CREATE, "{\"name\":\"a\\u0000b\"," KERNEL "}", 400, "body: malformed JSON");
    expect(CREATE, "", 400, "body: a JSON object is required");
    expect(CREATE, " \n\t", 400, "body: a JSON object is required");
    expect(PATCH, "", 400, "body: a JSON object is required");
    /* Duplicate keys: which one would count is a guess, so neither does. */
    expect(CREATE, "{\"name\":\"a\",\"name\":\"b\"," KERNEL "}", 400, "body: malformed JSON");
    /* Bigger than jansson's integers. */
    expect_with("\"memory_mib\":99999999999999999999999", 400, "body: malformed JSON");
    assert_int_equal(api_parse_vm_create(NULL, 0, &limits, &def, &err), -1);
    assert_int_equal(err.kind, API_ERR_BAD_REQUEST);
}

static void test_not_an_object(void **state)
{
    static const char *const bodies[] = {"[]",  "[{\"name\":\"a\"}]", "42", "\"vm\"", "null",
                                         "true"};
    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        expect(CREATE, bodies[i], 400, "body: must be a JSON object");
        expect(PATCH, bodies[i], 400, "body: must be a JSON object");
    }
}

static void test_body_too_large(void **state)
{
    struct api_vm_def def;
    struct api_error err;
    size_t len = API_BODY_MAX + 1;
    char *body = malloc(len);

    (void)state;
    assert_non_null(body);
    memset(body, ' ', len);
    body[0] = '{';
    body[len - 1] = '}';
    assert_int_equal(api_parse_vm_create(body, len, &limits, &def, &err), -1);
    assert_int_equal(api_error_status(err.kind), 413);
    assert_int_equal(api_parse_vm_patch(body, len, &limits, &def, &err), -1);
    assert_int_equal(api_error_status(err.kind), 413);
    /* The length is what counts: a body not NUL-terminated is fine. */
    memcpy(body, "{\"autostart\":true}", 18);
    assert_int_equal(api_parse_vm_patch(body, 18, &limits, &def, &err), 0);
    assert_true(def.autostart);
    api_vm_def_free(&def);
    free(body);
}

static void test_unknown_fields(void **state)
{
    (void)state;
    expect_with("\"color\":\"red\"", 400, "color: unknown field");
    expect_with("\"Name\":\"x\"", 400, "Name: unknown field");
    expect(PATCH, "{\"memory\":512}", 400, "memory: unknown field");
    expect_with("\"disks\":[{\"path\":\"@/images/disk0.img\",\"ro\":true}]", 400,
                "disks[0].ro: unknown field");
    expect_with("\"disks\":[{\"path\":\"@/images/disk0.img\"},{\"path\":\"@/images/disk1.img\","
                "\"cache\":\"none\"}]",
                400, "disks[1].cache: unknown field");
    expect_with("\"nics\":[{\"tap\":\"tap0\",\"model\":\"e1000\"}]", 400,
                "nics[0].model: unknown field");
    /* An unknown field wins over a bad value elsewhere: shape before values. */
    expect_with("\"vcpus\":0,\"extra\":1", 400, "extra: unknown field");
    expect_with("\"vcpus\":0,\"nics\":[{\"tap\":\"t\",\"x\":1}]", 400, "nics[0].x: unknown field");
}

/* --- create: required fields and defaults ---------------------------------------------------- */

static void test_create_defaults(void **state)
{
    struct api_vm_def def;
    char *kernel = in_root("images/vmlinuz");

    (void)state;
    create_ok(BASE "}", &def);
    assert_int_equal(def.present, API_F_NAME | API_F_KERNEL);
    assert_string_equal(def.name, "vm1");
    assert_string_equal(def.mode, "pv");
    assert_int_equal(def.vcpus, 1);
    assert_int_equal(def.memory_mib, 256);
    assert_string_equal(def.kernel, kernel);
    assert_null(def.initrd);
    assert_null(def.cmdline);
    assert_string_equal(def.disks_json, "[]");
    assert_string_equal(def.nics_json, "[]");
    assert_false(def.autostart);
    api_vm_def_free(&def);
    free(kernel);
}

static void test_create_everything(void **state)
{
    struct api_vm_def def;
    char want[2 * PATH_MAX];

    (void)state;
    create_ok("{\"name\":\"web-01\",\"mode\":\"full\",\"vcpus\":4,\"memory_mib\":2048,"
              "\"kernel\":\"@/images/vmlinuz\",\"initrd\":\"@/images/initrd.img\","
              "\"cmdline\":\"console=ttyS0 root=/dev/vda\",\"disks\":[{\"path\":"
              "\"@/images/disk0.img\"},{\"path\":\"@/other/k2\",\"readonly\":true}],"
              "\"nics\":[{\"tap\":\"tap0\",\"mac\":\"52:54:00:AB:cd:Ef\"},{\"bridge\":\"br-lan\"}],"
              "\"autostart\":true}",
              &def);
    assert_int_equal(def.present, API_F_NAME | API_F_MODE | API_F_VCPUS | API_F_MEMORY |
                                      API_F_KERNEL | API_F_INITRD | API_F_CMDLINE | API_F_DISKS |
                                      API_F_NICS | API_F_AUTOSTART);
    assert_string_equal(def.name, "web-01");
    assert_string_equal(def.mode, "full");
    assert_int_equal(def.vcpus, 4);
    assert_int_equal(def.memory_mib, 2048);
    FMT(want, "%s/images/initrd.img", root);
    assert_string_equal(def.initrd, want);
    assert_string_equal(def.cmdline, "console=ttyS0 root=/dev/vda");
    FMT(want,
        "[{\"path\":\"%s/images/disk0.img\",\"readonly\":false},"
        "{\"path\":\"%s/other/k2\",\"readonly\":true}]",
        root, root);
    assert_string_equal(def.disks_json, want);
    assert_string_equal(
        def.nics_json,
        "[{\"tap\":\"tap0\",\"mac\":\"52:54:00:ab:cd:ef\"},{\"bridge\":\"br-lan\"}]");
    assert_true(def.autostart);
    api_vm_def_free(&def);
}

static void test_create_required(void **state)
{
    (void)state;
    expect(CREATE, "{}", 422, "name: is required");
    expect(CREATE, "{" KERNEL "}", 422, "name: is required");
    expect(CREATE, "{\"name\":\"a\"}", 422, "kernel: is required");
    expect(CREATE, "{\"name\":\"a\",\"vcpus\":2}", 422, "kernel: is required");
}

/* --- each field ------------------------------------------------------------------------------ */

static void test_name(void **state)
{
    char n63[64], n64[65], body[256];

    (void)state;
    memset(n63, 'a', 63);
    n63[63] = '\0';
    memset(n64, 'b', 64);
    n64[64] = '\0';
    assert_true(api_name_valid("a"));
    assert_true(api_name_valid("0"));
    assert_true(api_name_valid("9-lives"));
    assert_true(api_name_valid("a-"));
    assert_true(api_name_valid("a--b"));
    assert_true(api_name_valid(n63));
    assert_false(api_name_valid(n64));
    assert_false(api_name_valid(""));
    assert_false(api_name_valid(NULL));
    assert_false(api_name_valid("-a"));
    assert_false(api_name_valid("A"));
    assert_false(api_name_valid("vmA"));
    assert_false(api_name_valid("a_b"));
    assert_false(api_name_valid("a.b"));
    assert_false(api_name_valid("a b"));
    assert_false(api_name_valid("a/b"));
    assert_false(api_name_valid("caf\xc3\xa9"));
    assert_true(api_name_is_uuid("4334cc99-6dbb-404f-8098-7fc1ea3e1c1b"));
    assert_false(api_name_is_uuid("4334cc99-6dbb-404f-8098-7fc1ea3e1c1"));   /* one short */
    assert_false(api_name_is_uuid("4334cc99-6dbb-404f-8098-7fc1ea3e1c1bb")); /* one long */
    assert_false(api_name_is_uuid("4334cc99-6dbb-404f-8098-7fc1ea3e1c1g"));  /* not hex */
    assert_false(api_name_is_uuid("4334cc99x6dbb-404f-8098-7fc1ea3e1c1b"));

    snprintf(body, sizeof(body), "{\"name\":\"%s\"," KERNEL "}", n63);
    expect(CREATE, body, 0, NULL);
    snprintf(body, sizeof(body), "{\"name\":\"%s\"," KERNEL "}", n64);
    expect(CREATE, body, 422, "name: must match [a-z0-9][a-z0-9-]{0,62}");
    /* A name in the form of an id would be found instead of, or shadow, another VM. */
    expect(CREATE, "{\"name\":\"4334cc99-6dbb-404f-8098-7fc1ea3e1c1b\"," KERNEL "}", 422,
           "name: must not have the form of a VM id");
    expect(PATCH, "{\"name\":\"4334cc99-6dbb-404f-8098-7fc1ea3e1c1b\"}", 422,
           "name: must not have the form of a VM id");
    static const char *const bad[] = {"\"\"",           "\"-a\"", "\"Web\"", "\"a_b\"", "\"a.b\"",
                                      "\"caf\\u00e9\"", "1",      "null",    "true",    "[\"a\"]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"name\":%s," KERNEL "}", bad[i]);
        expect(CREATE, body, 422, "name: ");
        snprintf(body, sizeof(body), "{\"name\":%s}", bad[i]);
        expect(PATCH, body, 422, "name: ");
    }
}

static void test_mode(void **state)
{
    struct api_vm_def def;

    (void)state;
    create_ok(BASE ",\"mode\":\"full\"}", &def);
    assert_string_equal(def.mode, "full");
    assert_true(def.present & API_F_MODE);
    api_vm_def_free(&def);
    create_ok(BASE ",\"mode\":\"pv\"}", &def);
    assert_string_equal(def.mode, "pv");
    api_vm_def_free(&def);
    static const char *const bad[] = {"\"FULL\"", "\"hvm\"", "\"\"", "\"pv \"", "1", "null", "{}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char m[64];
        snprintf(m, sizeof(m), "\"mode\":%s", bad[i]);
        expect_with(m, 422, "mode: must be \"full\" or \"pv\"");
    }
}

static void test_vcpus(void **state)
{
    struct api_vm_def def;

    (void)state;
    create_ok(BASE ",\"vcpus\":1}", &def);
    assert_int_equal(def.vcpus, 1);
    api_vm_def_free(&def);
    create_ok(BASE ",\"vcpus\":64}", &def);
    assert_int_equal(def.vcpus, 64);
    api_vm_def_free(&def);
    static const char *const bad[] = {"0",     "65",   "-1",    "1.0",  "2.5", "1e1",
                                      "\"2\"", "true", "false", "null", "[2]", "4294967297"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char m[64];
        snprintf(m, sizeof(m), "\"vcpus\":%s", bad[i]);
        expect_with(m, 422, "vcpus: must be an integer from 1 to 64");
    }
}

static void test_memory(void **state)
{
    struct api_vm_def def;

    (void)state;
    create_ok(BASE ",\"memory_mib\":16}", &def);
    assert_int_equal(def.memory_mib, 16);
    api_vm_def_free(&def);
    create_ok(BASE ",\"memory_mib\":1048576}", &def);
    assert_int_equal(def.memory_mib, 1048576);
    api_vm_def_free(&def);
    static const char *const bad[] = {"15",    "0",       "1048577", "-256", "256.0",
                                      "256.5", "\"256\"", "false",   "null", "{}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char m[64];
        snprintf(m, sizeof(m), "\"memory_mib\":%s", bad[i]);
        expect_with(m, 422, "memory_mib: must be an integer from 16 to 1048576");
    }
}

static void test_kernel_values(void **state)
{
    (void)state;
    expect(CREATE, "{\"name\":\"a\",\"kernel\":1}", 422, "kernel: must be a string");
    expect(CREATE, "{\"name\":\"a\",\"kernel\":null}", 422, "kernel: must be a string");
    expect(CREATE, "{\"name\":\"a\",\"kernel\":[\"@/images/vmlinuz\"]}", 422,
           "kernel: must be a string");
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"\"}", 422, "kernel: must be an absolute path");
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"images/vmlinuz\"}", 422,
           "kernel: must be an absolute path");
    /* A patch may clear it, for "boot": "disk"; the merged definition is checked later. */
    expect(PATCH, "{\"kernel\":null}", 0, NULL);
}

/* "boot": "disk" instead of a kernel: the firmware boots the first disk. */
static void test_boot_field(void **state)
{
    struct api_vm_def def;
    struct db_vm vm;

    (void)state;
    create_ok("{\"name\":\"a\",\"boot\":\"disk\",\"disks\":[{\"path\":\"@/images/disk0.img\"}]}",
              &def);
    assert_string_equal(def.boot, "disk");
    assert_null(def.kernel);
    api_vm_def_to_db(&def, &vm);
    assert_string_equal(vm.boot, "disk");
    api_vm_def_free(&def);
    db_vm_clear(&vm);
    create_ok("{\"name\":\"a\",\"kernel\":\"@/images/vmlinuz\"}", &def);
    assert_string_equal(def.boot, "kernel"); /* the default */
    api_vm_def_free(&def);
    expect(CREATE, "{\"name\":\"a\",\"boot\":\"kernel\",\"kernel\":\"@/images/vmlinuz\"}", 0, NULL);

    expect(CREATE, "{\"name\":\"a\",\"boot\":\"bios\",\"kernel\":\"@/images/vmlinuz\"}", 422,
           "boot: must be \"kernel\" or \"disk\"");
    expect(CREATE, "{\"name\":\"a\",\"boot\":1,\"kernel\":\"@/images/vmlinuz\"}", 422,
           "boot: must be");
    expect(CREATE, "{\"name\":\"a\",\"boot\":\"kernel\"}", 422, "kernel: is required");
    /* With disk boot, the kernel's fields must be absent, even as null. */
    expect(CREATE,
           "{\"name\":\"a\",\"boot\":\"disk\",\"kernel\":\"@/images/vmlinuz\","
           "\"disks\":[{\"path\":\"@/images/disk0.img\"}]}",
           422, "kernel: must be absent with \"boot\": \"disk\"");
    expect(CREATE,
           "{\"name\":\"a\",\"boot\":\"disk\",\"initrd\":null,"
           "\"disks\":[{\"path\":\"@/images/disk0.img\"}]}",
           422, "initrd: must be absent");
    expect(CREATE,
           "{\"name\":\"a\",\"boot\":\"disk\",\"cmdline\":\"quiet\","
           "\"disks\":[{\"path\":\"@/images/disk0.img\"}]}",
           422, "cmdline: must be absent");
    expect(CREATE, "{\"name\":\"a\",\"boot\":\"disk\"}", 422,
           "disks: \"boot\": \"disk\" needs at least one disk");
    expect(CREATE, "{\"name\":\"a\",\"boot\":\"disk\",\"disks\":[]}", 422,
           "disks: \"boot\": \"disk\" needs at least one disk");
    expect(PATCH, "{\"boot\":\"disk\"}", 0, NULL);
    expect(PATCH, "{\"boot\":\"floppy\"}", 422, "boot: must be");
}

static void test_paths_inside(void **state)
{
    struct api_vm_def def;
    char *want = in_root("images/disk0.img");
    char *deep = in_root("images/sub/deep.img");

    (void)state;
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images/sub/deep.img\"}", 0, NULL);
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/other/k2\"}", 0, NULL);
    /* Symlinks and ".." that stay inside are fine; the canonical path is stored. */
    create_ok("{\"name\":\"a\",\"kernel\":\"@/images/alias0\"}", &def);
    assert_string_equal(def.kernel, want);
    api_vm_def_free(&def);
    create_ok("{\"name\":\"a\",\"kernel\":\"@/images/sub/../disk0.img\"}", &def);
    assert_string_equal(def.kernel, want);
    api_vm_def_free(&def);
    create_ok("{\"name\":\"a\",\"kernel\":\"@//images/./sub//deep.img\"}", &def);
    assert_string_equal(def.kernel, deep);
    api_vm_def_free(&def);
    free(want);
    free(deep);
}

static void test_paths_outside(void **state)
{
    (void)state;
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/outside/secret\"}", 403, "kernel: ");
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"/etc/passwd\"}", 403,
           "kernel: /etc/passwd is outside the image directories");
    /* A symlink in the image directory that leads out of it. */
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images/escape\"}", 403, "kernel: ");
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images/outdir/secret\"}", 403, "kernel: ");
    /* ".." out of the image directory. */
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images/../outside/secret\"}", 403, "kernel: ");
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images/sub/../../outside/secret\"}", 403,
           "kernel: ");
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images/../../../../../../etc/passwd\"}", 403,
           "kernel: ");
    /* "images" is a string prefix of "imagesx" but not its parent directory. */
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/imagesx/evil.img\"}", 403, "kernel: ");
    /* The image directory itself is not a file under it. */
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images\"}", 403, "kernel: ");
    expect(CREATE, "{\"name\":\"a\"," KERNEL ",\"initrd\":\"@/outside/secret\"}", 403, "initrd: ");
    expect_with("\"disks\":[{\"path\":\"@/images/disk0.img\"},{\"path\":\"@/images/escape\"}]", 403,
                "disks[1].path: ");
}

static void test_paths_missing(void **state)
{
    (void)state;
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images/nope\"}", 422, "kernel: ");
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images/nodir/nope\"}", 422, "kernel: ");
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images/dangling\"}", 422, "kernel: ");
    expect(CREATE, "{\"name\":\"a\"," KERNEL ",\"initrd\":\"@/images/nope\"}", 422, "initrd: ");
    expect_with("\"disks\":[{\"path\":\"@/images/nope.img\"}]", 422, "disks[0].path: ");
    /* A regular file is needed: a directory, or a file used as a directory, is not one. */
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images/dir\"}", 422, "kernel: ");
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images/vmlinuz/x\"}", 422, "kernel: ");
    /* Outside the image directories, missing and present look the same (no existence oracle). */
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/outside/missing\"}", 403, "kernel: ");
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"/nonexistent-dir/x\"}", 403, "kernel: ");
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images/../outside/missing\"}", 403, "kernel: ");
    /* A name that cannot go back out as a JSON string. */
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"@/images/latin1\"}", 422, "kernel: ");
}

static void test_check_path_direct(void **state)
{
    struct api_error err;
    char *canon, *p = in_root("images/vmlinuz");
    const char *slash_dirs[] = {"/"};
    struct api_limits slash = {slash_dirs, 1};
    char trailing[PATH_MAX + 1];
    const char *trailing_dirs[1] = {trailing};
    struct api_limits trail = {trailing_dirs, 1};
    struct api_limits none = {NULL, 0};

    (void)state;
    assert_int_equal(api_check_path("kernel", p, &limits, &canon, &err), 0);
    assert_string_equal(canon, p);
    free(canon);
    /* "/" as an image directory allows everything (that exists). */
    assert_int_equal(api_check_path("kernel", p, &slash, &canon, &err), 0);
    free(canon);
    /* A configured directory with a trailing slash still compares by component. */
    snprintf(trailing, sizeof(trailing), "%s/", images);
    assert_int_equal(api_check_path("kernel", p, &trail, &canon, &err), 0);
    free(canon);
    free(p);
    p = in_root("imagesx/evil.img");
    assert_int_equal(api_check_path("kernel", p, &trail, &canon, &err), -1);
    assert_int_equal(err.kind, API_ERR_FORBIDDEN);
    assert_null(canon);
    /* No image directories: nothing is allowed. */
    assert_int_equal(api_check_path("kernel", p, &none, &canon, &err), -1);
    assert_int_equal(err.kind, API_ERR_FORBIDDEN);
    free(p);
}

static const char *find_block_device(void)
{
    static char path[PATH_MAX];
    DIR *d = opendir("/dev");
    struct dirent *e;
    struct stat st;

    if (!d)
        return NULL;
    while ((e = readdir(d))) {
        snprintf(path, sizeof(path), "/dev/%s", e->d_name);
        if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
            closedir(d);
            return path;
        }
    }
    closedir(d);
    return NULL;
}

static void test_block_devices(void **state)
{
    const char *dev = find_block_device();
    const char *dev_dirs[] = {"/dev"};
    struct api_limits dev_limits = {dev_dirs, 1};
    struct api_error err;
    char *canon;

    (void)state;
    if (!dev)
        skip();
    /* Disks may be block devices; a kernel may not. */
    assert_int_equal(api_check_path("disks[0].path", dev, &dev_limits, &canon, &err), 0);
    free(canon);
    assert_int_equal(api_check_path("kernel", dev, &dev_limits, &canon, &err), -1);
    assert_int_equal(err.kind, API_ERR_UNPROCESSABLE);
    assert_non_null(strstr(err.detail, "not a regular file"));
    /* A character device is no disk. */
    assert_int_equal(api_check_path("disks[0].path", "/dev/null", &dev_limits, &canon, &err), -1);
    assert_int_equal(err.kind, API_ERR_UNPROCESSABLE);
}

static void test_initrd(void **state)
{
    struct api_vm_def def;

    (void)state;
    create_ok(BASE ",\"initrd\":null}", &def);
    assert_null(def.initrd);
    api_vm_def_free(&def);
    expect_with("\"initrd\":1", 422, "initrd: must be a string");
    expect_with("\"initrd\":false", 422, "initrd: must be a string");
    expect_with("\"initrd\":\"initrd.img\"", 422, "initrd: must be an absolute path");
}

static void test_cmdline(void **state)
{
    struct api_vm_def def;
    char *body = malloc(API_CMDLINE_MAX + 256);
    char *line = malloc(API_CMDLINE_MAX + 2);

    (void)state;
    create_ok(BASE ",\"cmdline\":\"console=ttyS0 quiet \\\"x y\\\" caf\\u00e9\"}", &def);
    assert_string_equal(def.cmdline, "console=ttyS0 quiet \"x y\" caf\xc3\xa9");
    api_vm_def_free(&def);
    create_ok(BASE ",\"cmdline\":\"\"}", &def);
    assert_string_equal(def.cmdline, "");
    api_vm_def_free(&def);
    create_ok(BASE ",\"cmdline\":null}", &def);
    assert_null(def.cmdline);
    api_vm_def_free(&def);

    memset(line, 'c', API_CMDLINE_MAX);
    line[API_CMDLINE_MAX] = '\0';
    snprintf(body, API_CMDLINE_MAX + 256, BASE ",\"cmdline\":\"%s\"}", line);
    create_ok(body, &def);
    assert_int_equal(strlen(def.cmdline), API_CMDLINE_MAX);
    api_vm_def_free(&def);
    strcat(line, "c");
    snprintf(body, API_CMDLINE_MAX + 256, BASE ",\"cmdline\":\"%s\"}", line);
    expect(CREATE, body, 422, "cmdline: longer than 4095 bytes");
    free(body);
    free(line);

    expect_with("\"cmdline\":\"a\\nb\"", 422, "cmdline: control character at byte 1");
    expect_with("\"cmdline\":\"a\\tb\"", 422, "cmdline: control character");
    expect_with("\"cmdline\":\"\\u001b[31m\"", 422, "cmdline: control character at byte 0");
    expect_with("\"cmdline\":\"x\\u007f\"", 422, "cmdline: control character at byte 1");
    expect_with("\"cmdline\":42", 422, "cmdline: must be a string");
    expect_with("\"cmdline\":[\"a\"]", 422, "cmdline: must be a string");
}

static void test_disks(void **state)
{
    struct api_vm_def def;
    char want[PATH_MAX * 2];
    char body[16384];
    size_t n;

    (void)state;
    create_ok(BASE ",\"disks\":[]}", &def);
    assert_string_equal(def.disks_json, "[]");
    assert_true(def.present & API_F_DISKS);
    api_vm_def_free(&def);
    /* Through a symlink, readonly explicit: stored canonical. */
    create_ok(BASE ",\"disks\":[{\"path\":\"@/images/alias0\",\"readonly\":true}]}", &def);
    FMT(want, "[{\"path\":\"%s/images/disk0.img\",\"readonly\":true}]", root);
    assert_string_equal(def.disks_json, want);
    api_vm_def_free(&def);
    create_ok(BASE ",\"disks\":[{\"readonly\":false,\"path\":\"@/images/disk1.img\"}]}", &def);
    FMT(want, "[{\"path\":\"%s/images/disk1.img\",\"readonly\":false}]", root);
    assert_string_equal(def.disks_json, want);
    api_vm_def_free(&def);

    /* 16 disks are fine, 17 are not. */
    n = (size_t)snprintf(body, sizeof(body), BASE ",\"disks\":[");
    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%s{\"path\":\"@/images/disk%d.img\"}",
                              i ? "," : "", i);
    snprintf(body + n, sizeof(body) - n, "]}");
    create_ok(body, &def);
    {
        json_t *arr = json_loads(def.disks_json, 0, NULL);
        assert_int_equal(json_array_size(arr), 16);
        json_decref(arr);
    }
    api_vm_def_free(&def);
    body[n] = '\0';
    snprintf(body + n, sizeof(body) - n, ",{\"path\":\"@/images/disk16.img\"}]}");
    expect(CREATE, body, 422, "disks: at most 16 disks");

    expect_with("\"disks\":{}", 422, "disks: must be an array");
    expect_with("\"disks\":null", 422, "disks: must be an array");
    expect_with("\"disks\":\"@/images/disk0.img\"", 422, "disks: must be an array");
    expect_with("\"disks\":[\"@/images/disk0.img\"]", 422, "disks[0]: must be an object");
    expect_with("\"disks\":[{}]", 422, "disks[0].path: is required");
    expect_with("\"disks\":[{\"readonly\":true}]", 422, "disks[0].path: is required");
    expect_with("\"disks\":[{\"path\":7}]", 422, "disks[0].path: must be a string");
    expect_with("\"disks\":[{\"path\":\"disk0.img\"}]", 422, "disks[0].path: must be an absolute");
    expect_with("\"disks\":[{\"path\":\"@/images/disk0.img\",\"readonly\":\"yes\"}]", 422,
                "disks[0].readonly: must be true or false");
    expect_with("\"disks\":[{\"path\":\"@/images/disk0.img\",\"readonly\":1}]", 422,
                "disks[0].readonly: must be true or false");
    expect_with("\"disks\":[{\"path\":\"@/images/dir\"}]", 422, "disks[0].path: ");
    /* The same image twice, even under two names. */
    expect_with("\"disks\":[{\"path\":\"@/images/disk0.img\"},{\"path\":\"@/images/alias0\"}]", 422,
                "disks[1].path: same file as disks[0].path");
}

/* "limits" of disks and NICs: normalised, bounded, unknown keys 400, bad values 422. */
static void test_io_limits(void **state)
{
    struct api_vm_def def;
    char want[PATH_MAX * 2];

    (void)state;
    create_ok(BASE ",\"disks\":[{\"path\":\"@/images/disk0.img\",\"limits\":{\"bytes_per_s\":"
                   "1048576,\"ops_per_s\":0,\"burst_ops\":10}}],\"nics\":[{\"tap\":\"t0\","
                   "\"limits\":{\"ops_per_s\":10000000,\"bytes_per_s\":1099511627776}}]}",
              &def);
    /* Zeros are left out; the keys keep the canonical order. */
    FMT(want,
        "[{\"path\":\"%s/images/disk0.img\",\"readonly\":false,\"limits\":{\"bytes_per_s\":"
        "1048576,\"burst_ops\":10}}]",
        root);
    assert_string_equal(def.disks_json, want);
    assert_string_equal(def.nics_json, "[{\"tap\":\"t0\",\"limits\":{\"bytes_per_s\":"
                                       "1099511627776,\"ops_per_s\":10000000}}]");
    api_vm_def_free(&def);
    /* Nothing limited, or null: no limits stored at all. */
    create_ok(BASE ",\"disks\":[{\"path\":\"@/images/disk0.img\",\"limits\":{}}],"
                   "\"nics\":[{\"tap\":\"t0\",\"limits\":null}]}",
              &def);
    FMT(want, "[{\"path\":\"%s/images/disk0.img\",\"readonly\":false}]", root);
    assert_string_equal(def.disks_json, want);
    assert_string_equal(def.nics_json, "[{\"tap\":\"t0\"}]");
    api_vm_def_free(&def);

    expect_with("\"disks\":[{\"path\":\"@/images/disk0.img\",\"limits\":{\"bps\":1}}]", 400,
                "disks[0].limits.bps: unknown field");
    expect_with("\"nics\":[{\"tap\":\"t0\"},{\"tap\":\"t1\",\"limits\":{\"iops\":1}}]", 400,
                "nics[1].limits.iops: unknown field");
    expect_with("\"disks\":[{\"path\":\"@/images/disk0.img\",\"limits\":[]}]", 422,
                "disks[0].limits: must be an object");
    expect_with("\"disks\":[{\"path\":\"@/images/disk0.img\",\"limits\":{\"bytes_per_s\":"
                "1099511627777}}]",
                422, "disks[0].limits.bytes_per_s: must be an integer from 0 to 1099511627776");
    expect_with("\"disks\":[{\"path\":\"@/images/disk0.img\",\"limits\":{\"ops_per_s\":-1}}]", 422,
                "disks[0].limits.ops_per_s: must be an integer");
    expect_with("\"disks\":[{\"path\":\"@/images/disk0.img\",\"limits\":{\"burst_bytes\":"
                "1.5}}]",
                422, "disks[0].limits.burst_bytes: must be an integer");
    expect_with("\"nics\":[{\"tap\":\"t0\",\"limits\":{\"burst_ops\":\"10\"}}]", 422,
                "nics[0].limits.burst_ops: must be an integer");
    expect_with("\"nics\":[{\"tap\":\"t0\",\"limits\":{\"ops_per_s\":10000001}}]", 422,
                "nics[0].limits.ops_per_s: must be an integer from 0 to 10000000");
    /* A bad limit is found before the filesystem is asked about the path. */
    expect_with("\"disks\":[{\"path\":\"@/images/missing.img\",\"limits\":{\"ops_per_s\":"
                "true}}]",
                422, "disks[0].limits.ops_per_s: must be an integer");
}

/* What a PATCH of a running VM may change: the devices' limits, nothing else about them. */
static void test_limits_only_change(void **state)
{
    const char *a = "[{\"path\":\"/i/a\",\"readonly\":false}]";
    const char *a_lim = "[{\"path\":\"/i/a\",\"readonly\":false,\"limits\":{\"ops_per_s\":5}}]";
    const char *b = "[{\"path\":\"/i/b\",\"readonly\":false,\"limits\":{\"ops_per_s\":5}}]";
    json_t *arr;

    (void)state;
    assert_true(api_devices_differ_only_in_limits(a, a_lim));
    assert_true(api_devices_differ_only_in_limits(a_lim, a));
    assert_true(api_devices_differ_only_in_limits(a, a));
    assert_false(api_devices_differ_only_in_limits(a_lim, b));
    assert_false(api_devices_differ_only_in_limits(a, "[]"));
    assert_false(api_devices_differ_only_in_limits(a, "[{\"path\":\"/i/a\",\"readonly\":true}]"));
    arr = api_io_limits_array(a_lim);
    assert_int_equal(json_array_size(arr), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "ops_per_s")), 5);
    json_decref(arr);
    arr = api_io_limits_array(a);
    assert_int_equal(json_object_size(json_array_get(arr, 0)), 0);
    json_decref(arr);
}

static void test_nics(void **state)
{
    struct api_vm_def def;
    char body[4096];
    size_t n;

    (void)state;
    create_ok(BASE ",\"nics\":[{\"tap\":\"tap0\"},{\"network\":\"default\"},"
                   "{\"tap\":\"a.b-c_D\",\"mac\":\"02:00:00:00:00:01\"}]}",
              &def);
    assert_string_equal(def.nics_json, "[{\"tap\":\"tap0\"},{\"network\":\"default\"},"
                                       "{\"tap\":\"a.b-c_D\",\"mac\":\"02:00:00:00:00:01\"}]");
    api_vm_def_free(&def);
    create_ok(BASE ",\"nics\":[{\"mac\":\"52:54:00:AB:CD:EF\",\"tap\":\"123456789012345\"}]}",
              &def);
    assert_string_equal(def.nics_json,
                        "[{\"tap\":\"123456789012345\",\"mac\":\"52:54:00:ab:cd:ef\"}]");
    api_vm_def_free(&def);

    expect_with("\"nics\":{}", 422, "nics: must be an array");
    expect_with("\"nics\":[\"tap0\"]", 422, "nics[0]: must be an object");
    expect_with("\"nics\":[{}]", 422, "nics[0]: must have exactly one of");
    expect_with("\"nics\":[{\"mac\":\"52:54:00:12:34:56\"}]", 422,
                "nics[0]: must have exactly one");
    expect_with("\"nics\":[{\"tap\":\"t\"},{\"tap\":\"t1\",\"network\":\"n\"}]", 422,
                "nics[1]: must have exactly one");
    expect_with("\"nics\":[{\"bridge\":\"b\",\"network\":\"n\"}]", 422,
                "nics[0]: must have exactly one");
    static const char *const bad_names[] = {
        "\"\"",   "\"1234567890123456\"", "\"a/b\"", "\"a b\"", "\"a:b\"", "\".\"",
        "\"..\"", "\"t\\u00e9\"",         "1",       "null",    "true"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        snprintf(body, sizeof(body), "\"nics\":[{\"tap\":%s}]", bad_names[i]);
        expect_with(body, 422, "nics[0].tap: must be an interface name");
        snprintf(body, sizeof(body), "\"nics\":[{\"bridge\":%s}]", bad_names[i]);
        expect_with(body, 422, "nics[0].bridge: must be an interface name");
        if (i == 1)
            continue; /* too long for an interface, a fine network name */
        snprintf(body, sizeof(body), "\"nics\":[{\"network\":%s}]", bad_names[i]);
        expect_with(body, 422, "nics[0].network: must be a network name");
    }
    expect_with("\"nics\":[{\"network\":\"Default\"}]", 422, "nics[0].network: must be a");

    /* A static address: only on a managed network, only an IPv4 address, normalised. */
    create_ok(BASE ",\"nics\":[{\"network\":\"default\",\"ip\":\"10.71.0.10\","
                   "\"mac\":\"52:54:00:00:00:01\"}]}",
              &def);
    assert_string_equal(def.nics_json, "[{\"network\":\"default\",\"ip\":\"10.71.0.10\","
                                       "\"mac\":\"52:54:00:00:00:01\"}]");
    api_vm_def_free(&def);
    expect_with("\"nics\":[{\"tap\":\"t\",\"ip\":\"10.0.0.2\"}]", 422,
                "nics[0].ip: only a NIC on a managed");
    static const char *const bad_ips[] = {"\"10.0.0\"",    "\"10.0.0.256\"", "\"010.0.0.1\"",
                                          "\"10.0.0.1 \"", "\"::1\"",        "167772161",
                                          "null"};
    for (size_t i = 0; i < sizeof(bad_ips) / sizeof(bad_ips[0]); i++) {
        snprintf(body, sizeof(body), "\"nics\":[{\"network\":\"n\",\"ip\":%s}]", bad_ips[i]);
        expect_with(body, 422, "nics[0].ip: must be an IPv4 address");
    }

    /* 8 nics are fine, 9 are not. */
    n = (size_t)snprintf(body, sizeof(body), BASE ",\"nics\":[");
    for (int i = 0; i < 8; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%s{\"tap\":\"tap%d\"}", i ? "," : "", i);
    snprintf(body + n, sizeof(body) - n, "]}");
    expect(CREATE, body, 0, NULL);
    snprintf(body + n, sizeof(body) - n, ",{\"tap\":\"tap8\"}]}");
    expect(CREATE, body, 422, "nics: at most 8 nics");
}

static void test_macs(void **state)
{
    static const char *const good[] = {"52:54:00:12:34:56", "02:00:00:00:00:00",
                                       "fe:ff:ff:ff:ff:ff", "00:00:00:00:00:01",
                                       "AA:bb:Cc:dD:00:11"};
    static const char *const bad_format[] = {"52-54-00-12-34-56",
                                             "5254.0012.3456",
                                             "525400123456",
                                             "52:54:00:12:34",
                                             "52:54:00:12:34:5g",
                                             "52:54:00:12:34:567",
                                             " 52:54:00:12:34:56",
                                             "52:54:00:12:34:56 ",
                                             "52:54:00:12:34:5",
                                             "5:54:00:12:34:56:",
                                             "",
                                             "52:54::00:12:34:56",
                                             "52:54:00:12:34:56:78"};
    static const char *const multicast[] = {"01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff",
                                            "33:33:00:00:00:01", "03:00:00:00:00:00"};
    char member[128];

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(member, sizeof(member), "\"nics\":[{\"tap\":\"t\",\"mac\":\"%s\"}]", good[i]);
        expect_with(member, 0, NULL);
    }
    for (size_t i = 0; i < sizeof(bad_format) / sizeof(bad_format[0]); i++) {
        snprintf(member, sizeof(member), "\"nics\":[{\"tap\":\"t\",\"mac\":\"%s\"}]",
                 bad_format[i]);
        expect_with(member, 422, "nics[0].mac: must be six hex pairs separated by ':'");
    }
    for (size_t i = 0; i < sizeof(multicast) / sizeof(multicast[0]); i++) {
        snprintf(member, sizeof(member), "\"nics\":[{\"tap\":\"t\",\"mac\":\"%s\"}]", multicast[i]);
        expect_with(member, 422, "nics[0].mac: must be a unicast address");
    }
    expect_with("\"nics\":[{\"tap\":\"t\",\"mac\":\"00:00:00:00:00:00\"}]", 422,
                "nics[0].mac: must not be all zeros");
    expect_with("\"nics\":[{\"tap\":\"t\",\"mac\":525400123456}]", 422,
                "nics[0].mac: must be a string");
    expect_with("\"nics\":[{\"tap\":\"t\",\"mac\":null}]", 422, "nics[0].mac: must be a string");
    /* Case does not make two addresses different. */
    expect_with("\"nics\":[{\"tap\":\"t\",\"mac\":\"52:54:00:aa:bb:cc\"},"
                "{\"tap\":\"u\",\"mac\":\"52:54:00:AA:BB:CC\"}]",
                422, "nics[1].mac: same address as nics[0].mac");
}

static void test_autostart(void **state)
{
    struct api_vm_def def;

    (void)state;
    create_ok(BASE ",\"autostart\":true}", &def);
    assert_true(def.autostart);
    assert_true(def.present & API_F_AUTOSTART);
    api_vm_def_free(&def);
    create_ok(BASE ",\"autostart\":false}", &def);
    assert_false(def.autostart);
    assert_true(def.present & API_F_AUTOSTART);
    api_vm_def_free(&def);
    expect_with("\"autostart\":\"true\"", 422, "autostart: must be true or false");
    expect_with("\"autostart\":1", 422, "autostart: must be true or false");
    expect_with("\"autostart\":null", 422, "autostart: must be true or false");
}

/* CPU limits for the VM's cgroup: defaults, bounds, and no other types. */
static void test_cpu_limits(void **state)
{
    struct api_vm_def def;
    struct db_vm vm;

    (void)state;
    create_ok(BASE "}", &def);
    assert_int_equal(def.cpu_quota_pct, 0);
    assert_int_equal(def.cpu_weight, API_DEFAULT_CPU_WEIGHT);
    api_vm_def_free(&def);
    create_ok(BASE ",\"cpu_quota_pct\":6400,\"cpu_weight\":1}", &def);
    assert_true(def.present & API_F_CPU_QUOTA);
    assert_true(def.present & API_F_CPU_WEIGHT);
    api_vm_def_to_db(&def, &vm);
    assert_int_equal(vm.cpu_quota_pct, 6400);
    assert_int_equal(vm.cpu_weight, 1);
    db_vm_clear(&vm);
    api_vm_def_free(&def);
    expect_with("\"cpu_quota_pct\":6401", 422, "cpu_quota_pct: ");
    expect_with("\"cpu_quota_pct\":-1", 422, "cpu_quota_pct: ");
    expect_with("\"cpu_weight\":0", 422, "cpu_weight: ");
    expect_with("\"cpu_weight\":10001", 422, "cpu_weight: ");
    expect_with("\"cpu_weight\":\"100\"", 422, "cpu_weight: ");
    /* Both may change while the VM runs; the rest of the definition may not. */
    assert_true((API_F_CPU_QUOTA | API_F_CPU_WEIGHT) & API_F_LIVE);
    assert_false((API_F_MEMORY | API_F_VCPUS) & API_F_LIVE);
}

/* Checks run in a fixed order, whatever the order of keys in the body. */
static void test_error_order(void **state)
{
    (void)state;
    expect(CREATE, "{\"vcpus\":0,\"name\":\"Bad\"," KERNEL "}", 422, "name: ");
    expect(CREATE, "{\"memory_mib\":1,\"vcpus\":0,\"name\":\"a\"," KERNEL "}", 422, "vcpus: ");
    /* Values are checked before the filesystem is. */
    expect(CREATE, "{\"name\":\"a\",\"kernel\":\"/etc/passwd\",\"autostart\":0}", 422,
           "autostart: ");
}

/* --- patch ----------------------------------------------------------------------------------- */

static void test_patch(void **state)
{
    struct api_vm_def def;
    char *kernel = in_root("images/vmlinuz");

    (void)state;
    expect(PATCH, "{}", 400, "body: at least one field is required");

    patch_ok("{\"name\":\"renamed\"}", &def);
    assert_int_equal(def.present, API_F_NAME);
    assert_string_equal(def.name, "renamed");
    assert_null(def.kernel);
    assert_null(def.disks_json);
    assert_null(def.nics_json);
    api_vm_def_free(&def);

    patch_ok("{\"autostart\":true,\"memory_mib\":512}", &def);
    assert_int_equal(def.present, API_F_AUTOSTART | API_F_MEMORY);
    assert_true(def.autostart);
    assert_int_equal(def.memory_mib, 512);
    api_vm_def_free(&def);

    patch_ok("{\"initrd\":null,\"cmdline\":null}", &def);
    assert_int_equal(def.present, API_F_INITRD | API_F_CMDLINE);
    assert_null(def.initrd);
    assert_null(def.cmdline);
    api_vm_def_free(&def);

    patch_ok("{\"kernel\":\"@/images/alias0\",\"disks\":[],\"nics\":[]}", &def);
    assert_int_equal(def.present, API_F_KERNEL | API_F_DISKS | API_F_NICS);
    assert_non_null(strstr(def.kernel, "/images/disk0.img"));
    assert_string_equal(def.disks_json, "[]");
    assert_string_equal(def.nics_json, "[]");
    api_vm_def_free(&def);

    patch_ok("{\"mode\":\"full\",\"vcpus\":8}", &def);
    assert_int_equal(def.present, API_F_MODE | API_F_VCPUS);
    api_vm_def_free(&def);

    expect(PATCH, "{\"vcpus\":0}", 422, "vcpus: ");
    expect(PATCH, "{\"name\":null}", 422, "name: ");
    expect(PATCH, "{\"disks\":null}", 422, "disks: must be an array");
    expect(PATCH, "{\"nics\":null}", 422, "nics: must be an array");
    expect(PATCH, "{\"autostart\":null}", 422, "autostart: ");
    expect(PATCH, "{\"kernel\":\"@/outside/secret\"}", 403, "kernel: ");
    expect(PATCH, "{\"initrd\":\"@/images/gone\"}", 422, "initrd: ");
    expect(PATCH, "{\"state\":\"running\"}", 400, "state: unknown field");
    expect(PATCH, "{\"id\":\"x\"}", 400, "id: unknown field");
    expect(PATCH, "{\"autostart\":true", 400, "body: malformed JSON");
    free(kernel);
}

static void stored_vm(struct db_vm *vm)
{
    memset(vm, 0, sizeof(*vm));
    strcpy(vm->id, "0b0e6f1c-7a6e-4c9a-9a57-3d1a4a5e9c01");
    strcpy(vm->name, "old");
    strcpy(vm->mode, "pv");
    strcpy(vm->boot, "kernel");
    vm->vcpus = 2;
    vm->memory_mib = 1024;
    vm->kernel = strdup("/images/old-kernel");
    vm->initrd = strdup("/images/old-initrd");
    vm->cmdline = strdup("old cmdline");
    vm->disks_json = strdup("[{\"path\":\"/images/a.img\",\"readonly\":false}]");
    vm->nics_json = strdup("[{\"tap\":\"tap9\"}]");
    vm->autostart = false;
    strcpy(vm->state, "stopped");
    vm->created_at = 1000;
    vm->updated_at = 2000;
}

/* Rules across fields: mode full means IDE disks (at most four). */
static void test_device_rules(void **state)
{
    struct api_error err;
    struct db_vm vm;

    (void)state;
    stored_vm(&vm);
    assert_int_equal(api_check_vm_devices(&vm, &err), 0); /* pv: a disk and a NIC are fine */
    strcpy(vm.mode, "full");                              /* a NIC is an emulated e1000 there */
    assert_int_equal(api_check_vm_devices(&vm, &err), 0);
    free(vm.disks_json);
    vm.disks_json = strdup("[{\"path\":\"/a\"},{\"path\":\"/b\"},{\"path\":\"/c\"},"
                           "{\"path\":\"/d\"},{\"path\":\"/e\"}]");
    assert_int_equal(api_check_vm_devices(&vm, &err), -1);
    assert_non_null(strstr(err.detail, "disks: mode full has at most 4 disks"));
    strcpy(vm.mode, "pv");
    assert_int_equal(api_check_vm_devices(&vm, &err), 0);

    /* What a patch may leave: boot "disk" with a kernel, or without a disk; "kernel" without one.
     */
    strcpy(vm.boot, "disk");
    assert_int_equal(api_check_vm_devices(&vm, &err), -1);
    assert_string_equal(err.detail, "kernel: must be null with \"boot\": \"disk\"");
    free(vm.kernel);
    vm.kernel = NULL;
    assert_int_equal(api_check_vm_devices(&vm, &err), -1);
    assert_string_equal(err.detail, "initrd: must be null with \"boot\": \"disk\"");
    free(vm.initrd);
    free(vm.cmdline);
    vm.initrd = vm.cmdline = NULL;
    assert_int_equal(api_check_vm_devices(&vm, &err), 0);
    free(vm.disks_json);
    vm.disks_json = strdup("[]");
    assert_int_equal(api_check_vm_devices(&vm, &err), -1);
    assert_non_null(strstr(err.detail, "disks: \"boot\": \"disk\" needs at least one disk"));
    strcpy(vm.boot, "kernel");
    assert_int_equal(api_check_vm_devices(&vm, &err), -1);
    assert_string_equal(err.detail, "kernel: is required with \"boot\": \"kernel\"");
    db_vm_clear(&vm);
}

static void test_apply(void **state)
{
    struct api_vm_def def;
    struct db_vm vm;

    (void)state;
    stored_vm(&vm);
    patch_ok("{\"name\":\"new\",\"memory_mib\":64,\"initrd\":null,\"cmdline\":\"quiet\","
             "\"autostart\":true}",
             &def);
    api_vm_def_apply(&def, &vm);
    api_vm_def_free(&def);
    assert_string_equal(vm.name, "new");
    assert_int_equal(vm.memory_mib, 64);
    assert_null(vm.initrd);
    assert_string_equal(vm.cmdline, "quiet");
    assert_true(vm.autostart);
    /* Untouched fields stay. */
    assert_string_equal(vm.id, "0b0e6f1c-7a6e-4c9a-9a57-3d1a4a5e9c01");
    assert_string_equal(vm.mode, "pv");
    assert_int_equal(vm.vcpus, 2);
    assert_string_equal(vm.kernel, "/images/old-kernel");
    assert_string_equal(vm.disks_json, "[{\"path\":\"/images/a.img\",\"readonly\":false}]");
    assert_string_equal(vm.nics_json, "[{\"tap\":\"tap9\"}]");
    assert_string_equal(vm.state, "stopped");
    assert_int_equal(vm.created_at, 1000);

    patch_ok("{\"kernel\":\"@/images/vmlinuz\",\"disks\":[],\"nics\":[{\"network\":\"n\"}],"
             "\"mode\":\"full\",\"vcpus\":3}",
             &def);
    api_vm_def_apply(&def, &vm);
    api_vm_def_free(&def);
    assert_non_null(strstr(vm.kernel, "/images/vmlinuz"));
    assert_string_equal(vm.disks_json, "[]");
    assert_string_equal(vm.nics_json, "[{\"network\":\"n\"}]");
    assert_string_equal(vm.mode, "full");
    assert_int_equal(vm.vcpus, 3);
    assert_string_equal(vm.cmdline, "quiet");
    db_vm_clear(&vm);
}

static void test_to_db(void **state)
{
    struct api_vm_def def;
    struct db_vm vm;

    (void)state;
    create_ok(BASE ",\"cmdline\":\"console=ttyS0\",\"nics\":[{\"tap\":\"t0\"}]}", &def);
    memset(&vm, 0xa5, sizeof(vm));
    api_vm_def_to_db(&def, &vm);
    assert_string_equal(vm.id, "");
    assert_string_equal(vm.name, "vm1");
    assert_string_equal(vm.mode, "pv");
    assert_int_equal(vm.vcpus, 1);
    assert_int_equal(vm.memory_mib, 256);
    assert_string_equal(vm.kernel, def.kernel);
    assert_true(vm.kernel != def.kernel); /* a copy: def is freed independently */
    assert_null(vm.initrd);
    assert_string_equal(vm.cmdline, "console=ttyS0");
    assert_string_equal(vm.disks_json, "[]");
    assert_string_equal(vm.nics_json, "[{\"tap\":\"t0\"}]");
    assert_false(vm.autostart);
    assert_string_equal(vm.state, "stopped");
    assert_null(vm.state_reason);
    assert_int_equal(vm.created_at, 0);
    assert_int_equal(vm.started_at, 0);
    assert_int_equal(vm.worker_pid, 0);
    api_vm_def_free(&def);
    db_vm_clear(&vm);
}

/* --- shutdown -------------------------------------------------------------------------------- */

static int shutdown_status(const char *body, uint32_t *t, struct api_error *err)
{
    if (api_parse_shutdown(body, body ? strlen(body) : 0, t, err) == 0)
        return 0;
    return api_error_status(err->kind);
}

static void test_shutdown(void **state)
{
    struct api_error err;
    uint32_t t;
    char *big;

    (void)state;
    assert_int_equal(shutdown_status(NULL, &t, &err), 0);
    assert_int_equal(t, 30);
    assert_int_equal(shutdown_status("", &t, &err), 0);
    assert_int_equal(t, 30);
    assert_int_equal(shutdown_status(" \r\n", &t, &err), 0);
    assert_int_equal(t, 30);
    assert_int_equal(shutdown_status("{}", &t, &err), 0);
    assert_int_equal(t, 30);
    assert_int_equal(shutdown_status("{\"timeout_s\":1}", &t, &err), 0);
    assert_int_equal(t, 1);
    assert_int_equal(shutdown_status("{\"timeout_s\":3600}", &t, &err), 0);
    assert_int_equal(t, 3600);
    static const char *const bad[] = {"0", "3601", "-5", "1.5", "\"30\"", "null", "true", "[]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"timeout_s\":%s}", bad[i]);
        assert_int_equal(shutdown_status(body, &t, &err), 422);
        assert_string_equal(err.detail, "timeout_s: must be an integer from 1 to 3600");
    }
    assert_int_equal(shutdown_status("{\"timeout\":5}", &t, &err), 400);
    assert_string_equal(err.detail, "timeout: unknown field");
    assert_int_equal(shutdown_status("{\"timeout_s\":5,\"force\":true}", &t, &err), 400);
    assert_int_equal(shutdown_status("[]", &t, &err), 400);
    assert_int_equal(shutdown_status("30", &t, &err), 400);
    assert_int_equal(shutdown_status("{timeout_s:5}", &t, &err), 400);
    assert_non_null(strstr(err.detail, "line 1, column"));
    big = malloc(API_BODY_MAX + 1);
    memset(big, ' ', API_BODY_MAX + 1);
    assert_int_equal(api_parse_shutdown(big, API_BODY_MAX + 1, &t, &err), -1);
    assert_int_equal(api_error_status(err.kind), 413);
    free(big);
}

/* --- VM JSON --------------------------------------------------------------------------------- */

static void test_vm_to_json(void **state)
{
    static const char *const keys[] = {"id",         "name",         "mode",          "vcpus",
                                       "memory_mib", "boot",         "kernel",        "initrd",
                                       "cmdline",    "disks",        "nics",          "autostart",
                                       "state",      "state_reason", "created_at",    "updated_at",
                                       "started_at", "worker_pid",   "cpu_quota_pct", "cpu_weight",
                                       "ha"};
    struct db_vm vm;
    json_t *j;

    (void)state;
    stored_vm(&vm);
    free(vm.initrd);
    vm.initrd = NULL;
    free(vm.cmdline);
    vm.cmdline = NULL;
    vm.created_at = 1714566896789LL; /* 2024-05-01T12:34:56.789Z */
    vm.updated_at = 1714566896007LL;
    vm.started_at = 0;
    vm.worker_pid = 0;
    j = api_vm_to_json(&vm);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_non_null(json_object_get(j, keys[i]));
    assert_string_equal(json_string_value(json_object_get(j, "id")), vm.id);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "old");
    assert_string_equal(json_string_value(json_object_get(j, "mode")), "pv");
    assert_int_equal(json_integer_value(json_object_get(j, "vcpus")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "memory_mib")), 1024);
    assert_string_equal(json_string_value(json_object_get(j, "kernel")), "/images/old-kernel");
    assert_true(json_is_null(json_object_get(j, "initrd")));
    assert_true(json_is_null(json_object_get(j, "cmdline")));
    assert_true(json_is_array(json_object_get(j, "disks")));
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "disks"), 0), "path")),
        "/images/a.img");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "nics"), 0), "tap")),
        "tap9");
    assert_true(json_is_false(json_object_get(j, "autostart")));
    assert_string_equal(json_string_value(json_object_get(j, "state")), "stopped");
    assert_true(json_is_null(json_object_get(j, "state_reason")));
    assert_string_equal(json_string_value(json_object_get(j, "created_at")),
                        "2024-05-01T12:34:56.789Z");
    assert_string_equal(json_string_value(json_object_get(j, "updated_at")),
                        "2024-05-01T12:34:56.007Z");
    assert_true(json_is_null(json_object_get(j, "started_at")));
    assert_true(json_is_null(json_object_get(j, "worker_pid")));
    json_decref(j);

    /* A running VM: pid, start time, reason, initrd and cmdline present. */
    vm.initrd = strdup("/images/initrd");
    vm.cmdline = strdup("console=ttyS0");
    vm.state_reason = strdup("started by autostart");
    strcpy(vm.state, "running");
    vm.started_at = 1000;
    vm.worker_pid = 4242;
    j = api_vm_to_json(&vm);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "initrd")), "/images/initrd");
    assert_string_equal(json_string_value(json_object_get(j, "cmdline")), "console=ttyS0");
    assert_string_equal(json_string_value(json_object_get(j, "state_reason")),
                        "started by autostart");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "running");
    assert_string_equal(json_string_value(json_object_get(j, "started_at")),
                        "1970-01-01T00:00:01.000Z");
    assert_int_equal(json_integer_value(json_object_get(j, "worker_pid")), 4242);
    json_decref(j);

    /* Damaged stored arrays show as empty rather than failing the listing. */
    free(vm.disks_json);
    vm.disks_json = strdup("not json");
    free(vm.nics_json);
    vm.nics_json = NULL;
    j = api_vm_to_json(&vm);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "disks")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "nics")), 0);
    json_decref(j);
    db_vm_clear(&vm);
}

/* --- the OpenAPI document -------------------------------------------------------------------- */

static json_t *openapi(void)
{
    json_error_t jerr;
    json_t *doc = json_loads(api_openapi_json, JSON_REJECT_DUPLICATES, &jerr);

    if (!doc)
        print_error("openapi.json: line %d: %s\n", jerr.line, jerr.text);
    assert_non_null(doc);
    return doc;
}

/* Resolves a local "#/a/b" reference. */
static json_t *resolve(json_t *doc, const char *ref)
{
    char buf[256], *save, *tok;
    json_t *node = doc;

    if (strncmp(ref, "#/", 2) != 0 || strlen(ref) >= sizeof(buf))
        return NULL;
    strcpy(buf, ref + 2);
    for (tok = strtok_r(buf, "/", &save); tok && node; tok = strtok_r(NULL, "/", &save))
        node = json_object_get(node, tok);
    return node;
}

static void check_refs(json_t *doc, json_t *node)
{
    if (json_is_object(node)) {
        for (void *it = json_object_iter(node); it; it = json_object_iter_next(node, it)) {
            const char *key = json_object_iter_key(it);
            json_t *v = json_object_iter_value(it);

            if (strcmp(key, "$ref") == 0) {
                if (!resolve(doc, json_string_value(v)))
                    print_error("unresolved $ref %s\n", json_string_value(v));
                assert_non_null(resolve(doc, json_string_value(v)));
            } else {
                check_refs(doc, v);
            }
        }
    } else if (json_is_array(node)) {
        for (size_t i = 0; i < json_array_size(node); i++)
            check_refs(doc, json_array_get(node, i));
    }
}

static void test_openapi_document(void **state)
{
    static const struct {
        const char *path, *method;
    } routes[] = {
        {"/v1/host", "get"},
        {"/v1/vms", "get"},
        {"/v1/vms", "post"},
        {"/v1/vms/{id}", "get"},
        {"/v1/vms/{id}", "patch"},
        {"/v1/vms/{id}", "delete"},
        {"/v1/vms/{id}/start", "post"},
        {"/v1/vms/{id}/stop", "post"},
        {"/v1/vms/{id}/shutdown", "post"},
        {"/v1/vms/{id}/reboot", "post"},
        {"/v1/vms/{id}/pause", "post"},
        {"/v1/vms/{id}/resume", "post"},
        {"/v1/vms/{id}/console", "get"},
        {"/v1/vms/{id}/stats", "get"},
        {"/v1/networks", "get"},
        {"/v1/networks", "post"},
        {"/v1/networks/{name}", "get"},
        {"/v1/networks/{name}", "patch"},
        {"/v1/networks/{name}", "delete"},
        {"/v1/networks/{name}/leases", "get"},
        {"/v1/networks/{name}/forwards", "get"},
        {"/v1/networks/{name}/forwards", "post"},
        {"/v1/networks/{name}/forwards/{id}", "delete"},
        {"/v1/storage", "get"},
        {"/v1/images", "get"},
        {"/v1/images", "post"},
        {"/v1/images/{name}", "get"},
        {"/v1/images/{name}", "delete"},
        {"/v1/images/{name}/content", "get"},
        {"/v1/volumes", "get"},
        {"/v1/volumes", "post"},
        {"/v1/volumes/{name}", "get"},
        {"/v1/volumes/{name}", "patch"},
        {"/v1/volumes/{name}", "delete"},
        {"/v1/vms/{id}/snapshot", "post"},
        {"/v1/vms/{id}/snapshots", "get"},
        {"/v1/vms/{id}/snapshots/{name}", "get"},
        {"/v1/vms/{id}/snapshots/{name}", "delete"},
        {"/v1/vms/{id}/restore", "post"},
        {"/v1/vms/{id}/migrate", "post"},
        {"/v1/vms/{id}/migration", "get"},
        {"/v1/migrations", "post"},
        {"/v1/cluster", "get"},
        {"/v1/cluster/members/{name}", "delete"},
        {"/v1/cluster/members/{name}/evacuate", "post"},
        {"/v1/cluster/join-tokens", "post"},
        {"/v1/events", "get"},
        {"/metrics", "get"},
        {"/v1/openapi.json", "get"},
        {"/", "get"},
        {"/assets/{file}", "get"},
    };
    json_t *doc = openapi(), *paths, *ids = json_object(), *schemas;
    size_t n_ops = 0;

    (void)state;
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "info"), "version")),
                        VMMD_VERSION);
    paths = json_object_get(doc, "paths");
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        json_t *op = json_object_get(json_object_get(paths, routes[i].path), routes[i].method);

        if (!op)
            print_error("missing %s %s\n", routes[i].method, routes[i].path);
        assert_non_null(op);
        assert_non_null(json_object_get(op, "responses"));
        /* 500 can happen on every operation, 401 on all but the public ones (the dashboard's
         * files), which say so with an empty security requirement. */
        assert_non_null(json_object_get(json_object_get(op, "responses"), "500"));
        json_t *security = json_object_get(op, "security");
        bool public_op =
            json_array_size(security) == 1 && json_object_size(json_array_get(security, 0)) == 0;
        if (public_op)
            assert_null(json_object_get(json_object_get(op, "responses"), "401"));
        else
            assert_non_null(json_object_get(json_object_get(op, "responses"), "401"));
    }
    /* No undocumented extras either, and operationIds are unique. */
    for (void *pi = json_object_iter(paths); pi; pi = json_object_iter_next(paths, pi)) {
        json_t *item = json_object_iter_value(pi);

        for (void *mi = json_object_iter(item); mi; mi = json_object_iter_next(item, mi)) {
            json_t *op = json_object_iter_value(mi);
            const char *id = json_string_value(json_object_get(op, "operationId"));

            assert_non_null(id);
            assert_null(json_object_get(ids, id));
            json_object_set_new(ids, id, json_true());
            n_ops++;
        }
    }
    assert_int_equal(n_ops, sizeof(routes) / sizeof(routes[0]));
    json_decref(ids);

    /* Statuses the handlers send where the brief says they can happen. */
    {
        json_t *create = json_object_get(json_object_get(json_object_get(paths, "/v1/vms"), "post"),
                                         "responses");
        static const char *const codes[] = {"201", "400", "401", "403", "409", "413", "422", "500"};
        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
            assert_non_null(json_object_get(create, codes[i]));
        assert_non_null(json_object_get(json_object_get(json_object_get(create, "201"), "headers"),
                                        "Location"));
    }
    /* The storage statuses of issue 14: an upload's and a path import's, and every 409. */
    {
        json_t *import = json_object_get(json_object_get(paths, "/v1/images"), "post");
        json_t *responses = json_object_get(import, "responses");
        static const char *const codes[] = {"201", "202", "400", "403", "409", "422", "507"};
        static const struct {
            const char *path, *method;
        } conflicts[] = {{"/v1/images", "post"},
                         {"/v1/images/{name}", "delete"},
                         {"/v1/volumes", "post"},
                         {"/v1/volumes/{name}", "patch"},
                         {"/v1/volumes/{name}", "delete"},
                         {"/v1/vms/{id}/snapshot", "post"},
                         {"/v1/vms/{id}/restore", "post"}};
        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
            assert_non_null(json_object_get(responses, codes[i]));
        assert_non_null(
            json_object_get(json_object_get(json_object_get(import, "requestBody"), "content"),
                            "application/octet-stream"));
        for (size_t i = 0; i < sizeof(conflicts) / sizeof(conflicts[0]); i++)
            assert_non_null(json_object_get(
                json_object_get(
                    json_object_get(json_object_get(paths, conflicts[i].path), conflicts[i].method),
                    "responses"),
                "409"));
    }
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(doc, "components"), "securitySchemes"),
                            "bearerAuth"),
            "scheme")),
        "bearer");
    assert_non_null(json_object_get(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(json_object_get(paths, "/v1/events"), "get"),
                                "responses"),
                "200"),
            "content"),
        "text/event-stream"));
    schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    static const char *const names[] = {
        "VM",          "VMCreate", "VMPatch",       "Disk",       "Nic",           "Host",
        "Stats",       "Event",    "Problem",       "Network",    "NetworkCreate", "NetworkPatch",
        "Lease",       "Forward",  "ForwardCreate", "Pool",       "Storage",       "Image",
        "ImageImport", "Volume",   "VolumeCreate",  "VolumePatch", "Snapshot"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_non_null(json_object_get(schemas, names[i]));
    static const char *const migration_names[] = {"Migration", "MigrateRequest",
                                                  "IncomingMigration", "IncomingMigrationTicket",
                                                  "MigrationEvent"};
    for (size_t i = 0; i < sizeof(migration_names) / sizeof(migration_names[0]); i++)
        assert_non_null(json_object_get(schemas, migration_names[i]));
    static const char *const cluster_names[] = {
        "Cluster",      "ClusterMember", "JoinTokenCreate", "JoinToken",
        "ClusterEvent", "Evacuation",    "EvacuationVM",    "HaRestartedEvent"};
    for (size_t i = 0; i < sizeof(cluster_names) / sizeof(cluster_names[0]); i++)
        assert_non_null(json_object_get(schemas, cluster_names[i]));
    check_refs(doc, doc);
    json_decref(doc);
}

/* The document and the code describe the same fields. */
static void test_openapi_matches_code(void **state)
{
    json_t *doc = openapi();
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    json_t *vm_props = json_object_get(json_object_get(schemas, "VM"), "properties");
    json_t *create_props = json_object_get(json_object_get(schemas, "VMCreate"), "properties");
    json_t *patch_props = json_object_get(json_object_get(schemas, "VMPatch"), "properties");
    json_t *j;
    struct db_vm vm;

    (void)state;
    /* Every key api_vm_to_json writes is in the VM schema, and the other way round; but for
     * "member", which only a cluster member's VMs have (issue 16). */
    stored_vm(&vm);
    j = api_vm_to_json(&vm);
    assert_non_null(json_object_get(vm_props, "member"));
    assert_int_equal(json_object_size(j) + (json_object_get(j, "member") ? 0 : 1),
                     json_object_size(vm_props));
    for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it)) {
        const char *key = json_object_iter_key(it);

        if (!json_object_get(vm_props, key))
            print_error("VM schema lacks %s\n", key);
        assert_non_null(json_object_get(vm_props, key));
    }
    json_decref(j);
    db_vm_clear(&vm);

    /* Every documented create/patch field is known to the parser (422 for a bad value, not
     * 400 unknown), and the parser knows no field the document does not list. */
    /* 14 fields and from_snapshot, which makes the create a clone (api_parse_clone). */
    assert_int_equal(json_object_size(create_props), 15);
    assert_non_null(json_object_get(create_props, "from_snapshot"));
    for (void *it = json_object_iter(patch_props); it;
         it = json_object_iter_next(patch_props, it)) {
        const char *key = json_object_iter_key(it);
        char body[128];
        struct api_vm_def def;
        struct api_error err;

        assert_non_null(json_object_get(create_props, key));
        snprintf(body, sizeof(body), "{\"%s\":{\"not\":\"valid\"}}", key);
        assert_int_equal(parse(PATCH, body, &def, &err), 422);
    }
    assert_int_equal(json_object_size(patch_props) + 1, json_object_size(create_props));
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(schemas, "VMCreate"), "required"), 0)),
                        "name");
    json_decref(doc);
}

/* A parser's outcome: accepted (status 0), or refused with status and a detail starting with prefix. */
static void expect_outcome(const char *body, int rc, const struct api_error *err, int status,
                           const char *prefix)
{
    if (status == 0) {
        if (rc)
            fail_msg("%s: unexpected %s", body, err->detail);
        return;
    }
    assert_int_equal(rc, -1);
    assert_int_equal(api_error_status(err->kind), status);
    if (strncmp(err->detail, prefix, strlen(prefix)) != 0)
        fail_msg("%s: detail \"%s\" does not start with \"%s\"", body, err->detail, prefix);
}

/* An image import, upload query or volume body: 0, or the status and the detail's start. */
static void expect_storage(int (*parser)(const char *, void *, struct api_error *),
                           const char *body, void *out, int status, const char *prefix)
{
    struct api_error err;
    int rc = parser(body, out, &err);

    expect_outcome(body, rc, &err, status, prefix);
}

static int parse_import(const char *body, void *out, struct api_error *err)
{
    struct api_image_def *def = out;
    int rc = api_parse_image_import(body, strlen(body), &limits, def, err);

    if (rc == 0)
        assert_non_null(def->path);
    return rc;
}

static int parse_volume(const char *body, void *out, struct api_error *err)
{
    return api_parse_volume_create(body, strlen(body), out, err);
}

static void test_storage_requests(void **state)
{
    struct api_image_def img;
    struct api_volume_def vol;
    struct api_error err;
    uint64_t size = 0;
    char body[PATH_MAX + 200];

    (void)state;
    snprintf(body, sizeof(body), "{\"name\":\"deb\",\"path\":\"%s/sub/deep.img\"}", images);
    expect_storage(parse_import, body, &img, 0, NULL);
    assert_string_equal(img.name, "deb");
    assert_int_equal(img.format, API_IMAGE_AUTO);
    assert_string_equal(img.pool, "");
    api_image_def_free(&img);
    snprintf(body, sizeof(body),
             "{\"name\":\"deb\",\"path\":\"%s/vmlinuz\",\"format\":\"qcow2\",\"pool\":\"fast\"}",
             images);
    expect_storage(parse_import, body, &img, 0, NULL);
    assert_int_equal(img.format, API_IMAGE_QCOW2);
    assert_string_equal(img.pool, "fast");
    api_image_def_free(&img);
    snprintf(body, sizeof(body), "{\"name\":\"x\",\"path\":\"%s/outside/secret\"}", root);
    expect_storage(parse_import, body, &img, 403, "path:");
    snprintf(body, sizeof(body), "{\"name\":\"x\",\"path\":\"%s/nope.img\"}", images);
    expect_storage(parse_import, body, &img, 422, "path:");
    snprintf(body, sizeof(body), "{\"name\":\"x\",\"path\":\"%s/vmlinuz\",\"format\":\"vmdk\"}",
             images);
    expect_storage(parse_import, body, &img, 422, "format:");
    expect_storage(parse_import, "{\"name\":\"x\"}", &img, 422, "path: is required");
    expect_storage(parse_import, "{\"name\":\"X y\",\"path\":\"/a\"}", &img, 422, "name:");
    expect_storage(parse_import, "{\"name\":\"x\",\"url\":\"http://a\"}", &img, 400,
                   "url: unknown field");
    expect_storage(parse_import, "[1]", &img, 400, "");

    assert_int_equal(api_parse_image_upload("deb", "raw", NULL, &img, &err), 0);
    assert_int_equal(img.format, API_IMAGE_RAW);
    assert_null(img.path);
    assert_int_equal(api_parse_image_upload(NULL, NULL, NULL, &img, &err), -1);
    assert_non_null(strstr(err.detail, "name: is required"));
    assert_int_equal(api_parse_image_upload("deb", "iso", NULL, &img, &err), -1);
    assert_int_equal(api_parse_image_upload("deb", NULL, "Bad", &img, &err), -1);
    assert_non_null(strstr(err.detail, "pool:"));
    assert_string_equal(api_image_format_name(API_IMAGE_QCOW2), "qcow2");

    expect_storage(parse_volume, "{\"name\":\"web\",\"image\":\"deb\"}", &vol, 0, NULL);
    assert_string_equal(vol.image, "deb");
    assert_int_equal(vol.size_mib, 0);
    expect_storage(parse_volume,
                   "{\"name\":\"d\",\"size_mib\":10,\"readonly\":true,\"pool\":\"p\"}", &vol, 0,
                   NULL);
    assert_true(vol.readonly);
    assert_int_equal(vol.size_mib, 10);
    expect_storage(parse_volume, "{\"name\":\"d\"}", &vol, 422, "size_mib: is required");
    expect_storage(parse_volume, "{\"name\":\"d\",\"size_mib\":0}", &vol, 422, "size_mib:");
    expect_storage(parse_volume, "{\"name\":\"d\",\"size_mib\":16777217}", &vol, 422, "size_mib:");
    expect_storage(parse_volume, "{\"name\":\"d\",\"size_mib\":1.5}", &vol, 422, "size_mib:");
    expect_storage(parse_volume, "{\"name\":\"d\",\"image\":7}", &vol, 422, "image:");
    expect_storage(parse_volume, "{\"name\":\"d\",\"size_mib\":1,\"readonly\":1}", &vol, 422,
                   "readonly:");
    expect_storage(parse_volume, "{\"name\":\"d\",\"size\":1}", &vol, 400, "size: unknown");

    const char *grow = "{\"size_mib\":2048}", *rename = "{\"name\":\"x\"}";

    assert_int_equal(api_parse_volume_patch(grow, strlen(grow), &size, &err), 0);
    assert_int_equal(size, 2048);
    assert_int_equal(api_parse_volume_patch(rename, strlen(rename), &size, &err), -1);
    assert_int_equal(api_error_status(err.kind), 400);
    assert_int_equal(api_parse_volume_patch("{}", 2, &size, &err), -1);
    assert_int_equal(api_error_status(err.kind), 422);
}

static void test_volume_disks(void **state)
{
    struct api_vm_def def;
    struct api_error err;
    char body[2 * PATH_MAX + 200];

    (void)state;
    snprintf(body, sizeof(body),
             "{\"name\":\"v\",\"kernel\":\"%s/vmlinuz\",\"disks\":[{\"volume\":\"root\"},"
             "{\"path\":\"%s/sub/deep.img\",\"readonly\":true}]}",
             images, images);
    assert_int_equal(parse(CREATE, body, &def, &err), 0);
    assert_non_null(strstr(def.disks_json, "{\"volume\":\"root\",\"readonly\":false}"));
    api_vm_def_free(&def);
    snprintf(body, sizeof(body),
             "{\"name\":\"v\",\"kernel\":\"%s/vmlinuz\",\"disks\":[{\"volume\":\"root\"},"
             "{\"volume\":\"root\",\"readonly\":true}]}",
             images);
    assert_int_equal(parse(CREATE, body, &def, &err), 422);
    assert_non_null(strstr(err.detail, "disks[1].volume: same volume as disks[0].volume"));
    snprintf(body, sizeof(body),
             "{\"name\":\"v\",\"kernel\":\"%s/vmlinuz\",\"disks\":[{\"volume\":\"Root\"}]}",
             images);
    assert_int_equal(parse(CREATE, body, &def, &err), 422);
    assert_non_null(strstr(err.detail, "disks[0].volume: must match"));
    snprintf(body, sizeof(body),
             "{\"name\":\"v\",\"kernel\":\"%s/vmlinuz\",\"disks\":[{\"volume\":\"a\","
             "\"path\":\"%s/vmlinuz\"}]}",
             images, images);
    assert_int_equal(parse(CREATE, body, &def, &err), 422);
    assert_non_null(strstr(err.detail, "disks[0]: give path or volume, not both"));
    snprintf(body, sizeof(body), "{\"name\":\"v\",\"kernel\":\"%s/vmlinuz\",\"disks\":[{}]}",
             images);
    assert_int_equal(parse(CREATE, body, &def, &err), 422);
    assert_non_null(strstr(err.detail, "disks[0].path: is required (or disks[0].volume)"));
}

static void expect_network(bool create, const char *body, int status, const char *prefix)
{
    struct api_network_def def;
    struct api_error err;
    int rc = create ? api_parse_network_create(body, strlen(body), &def, &err)
                    : api_parse_network_patch(body, strlen(body), &def, &err);

    expect_outcome(body, rc, &err, status, prefix);
}

static void test_networks(void **state)
{
    struct api_network_def def;
    struct api_error err;
    struct db_network net = {.mtu = 1500};
    const char *b;

    (void)state;
    b = "{\"name\":\"lab\"}";
    assert_int_equal(api_parse_network_create(b, strlen(b), &def, &err), 0);
    assert_string_equal(def.cidr, "");
    assert_true(def.nat && def.dhcp);
    assert_string_equal(def.dns_domain, "vmmd");
    assert_int_equal(def.mtu, 1500);
    b = "{\"name\":\"iso\",\"cidr\":\"192.168.100.0/28\",\"nat\":false,\"dhcp\":false,"
        "\"dns_domain\":\"lab.example\",\"mtu\":9000}";
    assert_int_equal(api_parse_network_create(b, strlen(b), &def, &err), 0);
    assert_string_equal(def.cidr, "192.168.100.0/28");
    assert_false(def.nat || def.dhcp);
    assert_string_equal(def.dns_domain, "lab.example");
    assert_int_equal(def.mtu, 9000);
    assert_int_equal(def.present,
                     API_NF_CIDR | API_NF_NAT | API_NF_DHCP | API_NF_DNS_DOMAIN | API_NF_MTU);

    expect_network(true, "{\"name\":\"x\",\"vlan\":3}", 400, "vlan: unknown field");
    expect_network(true, "{\"cidr\":\"10.0.0.0/24\"}", 422, "name: is required");
    expect_network(true, "{\"name\":\"X\"}", 422, "name: must match");
    expect_network(true, "{\"name\":\"x\",\"cidr\":\"10.0.0.0/8\"}", 422,
                   "cidr: the prefix must be from /16 to /29");
    expect_network(true, "{\"name\":\"x\",\"cidr\":\"10.0.0.0/30\"}", 422, "cidr: the prefix");
    expect_network(true, "{\"name\":\"x\",\"cidr\":\"10.0.0.1/24\"}", 422,
                   "cidr: 10.0.0.1/24 has host bits set; the network is 10.0.0.0/24");
    static const char *const bad_cidrs[] = {"\"10.0.0.0\"",
                                            "\"10.0.0.0/\"",
                                            "\"10.0.0/24\"",
                                            "\"10.0.0.0/024\"",
                                            "\"10.0.0.0/33\"",
                                            "\"fd00::/64\"",
                                            "24",
                                            "null"};
    char body[128];
    for (size_t i = 0; i < sizeof(bad_cidrs) / sizeof(bad_cidrs[0]); i++) {
        snprintf(body, sizeof(body), "{\"name\":\"x\",\"cidr\":%s}", bad_cidrs[i]);
        expect_network(true, body, 422, "cidr: must be an IPv4 network");
    }
    expect_network(true, "{\"name\":\"x\",\"nat\":1}", 422, "nat: must be true or false");
    expect_network(true, "{\"name\":\"x\",\"mtu\":575}", 422, "mtu: must be an integer from 576");
    expect_network(true, "{\"name\":\"x\",\"mtu\":9001}", 422, "mtu: must be an integer");
    static const char *const bad_domains[] = {"\"\"",   "\"-a\"", "\"a-\"",  "\"a..b\"", "\".a\"",
                                              "\"a.\"", "\"A\"",  "\"a_b\"", "7"};
    for (size_t i = 0; i < sizeof(bad_domains) / sizeof(bad_domains[0]); i++) {
        snprintf(body, sizeof(body), "{\"name\":\"x\",\"dns_domain\":%s}", bad_domains[i]);
        expect_network(true, body, 422, "dns_domain: must be a DNS name");
    }

    expect_network(false, "{}", 400, "body: at least one field");
    expect_network(false, "{\"cidr\":\"10.0.0.0/24\"}", 422, "cidr: cannot change");
    expect_network(false, "{\"name\":\"y\"}", 422, "name: cannot change");
    b = "{\"mtu\":1400,\"nat\":false}";
    assert_int_equal(api_parse_network_patch(b, strlen(b), &def, &err), 0);
    net.nat = net.dhcp = true;
    api_network_def_apply(&def, &net);
    assert_false(net.nat);
    assert_true(net.dhcp);
    assert_int_equal(net.mtu, 1400);
}

static void test_network_json(void **state)
{
    struct db_network net = {.name = "default",
                             .bridge = "vmmd-default",
                             .cidr = "10.71.0.0/24",
                             .nat = true,
                             .dhcp = true,
                             .dns_domain = "vmmd",
                             .mtu = 1500};
    json_t *o;

    (void)state;
    o = api_network_to_json(&net);
    assert_string_equal(json_string_value(json_object_get(o, "gateway")), "10.71.0.1");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "dhcp_range"), "start")), "10.71.0.2");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "dhcp_range"), "end")),
                        "10.71.0.254");
    json_decref(o);
    net.dhcp = false;
    strcpy(net.cidr, "192.168.9.8/29");
    o = api_network_to_json(&net);
    assert_string_equal(json_string_value(json_object_get(o, "gateway")), "192.168.9.9");
    assert_true(json_is_null(json_object_get(o, "dhcp_range")));
    json_decref(o);
}

static void test_forwards(void **state)
{
    struct api_forward_def f;
    struct api_error err;
    const char *b;

    (void)state;
    b = "{\"host_port\":8080,\"vm\":\"web\"}";
    assert_int_equal(api_parse_forward_create(b, strlen(b), &f, &err), 0);
    assert_string_equal(f.protocol, "tcp");
    assert_string_equal(f.host_address, "");
    assert_int_equal(f.host_port, 8080);
    assert_int_equal(f.vm_port, 8080);
    assert_string_equal(f.vm, "web");
    b = "{\"protocol\":\"udp\",\"host_address\":\"192.0.2.2\",\"host_port\":53,\"vm\":\"dns\","
        "\"vm_port\":5353}";
    assert_int_equal(api_parse_forward_create(b, strlen(b), &f, &err), 0);
    assert_string_equal(f.protocol, "udp");
    assert_string_equal(f.host_address, "192.0.2.2");
    assert_int_equal(f.vm_port, 5353);
    static const struct {
        const char *body, *detail;
    } bad[] = {
        {"{\"host_port\":80,\"vm\":\"a\",\"to\":1}", "to: unknown field"},
        {"{\"vm\":\"a\"}", "host_port: is required"},
        {"{\"host_port\":0,\"vm\":\"a\"}", "host_port: must be an integer from 1 to 65535"},
        {"{\"host_port\":65536,\"vm\":\"a\"}", "host_port: must be an integer"},
        {"{\"host_port\":80}", "vm: is required"},
        {"{\"host_port\":80,\"vm\":\"\"}", "vm: is required"},
        {"{\"host_port\":80,\"vm\":\"a\",\"vm_port\":-1}", "vm_port: must be an integer"},
        {"{\"host_port\":80,\"vm\":\"a\",\"protocol\":\"sctp\"}", "protocol: must be"},
        {"{\"host_port\":80,\"vm\":\"a\",\"host_address\":\"0x7f.0.0.1\"}", "host_address: must"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(api_parse_forward_create(bad[i].body, strlen(bad[i].body), &f, &err), -1);
        if (strncmp(err.detail, bad[i].detail, strlen(bad[i].detail)) != 0)
            fail_msg("%s: \"%s\"", bad[i].body, err.detail);
    }
}

/* Every key of a schema's properties, each one present in the other object too. */
static void assert_keys_in(json_t *obj, json_t *props, const char *what)
{
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        if (!json_object_get(props, key))
            fail_msg("%s lacks %s", what, key);
    }
}

/* A body field of a network or forward with a value of the wrong type: 422 names it, never a
 * 400 unknown field, so every documented field is one the parser knows. */
static void assert_fields_known(json_t *props, const char *prefix,
                                int (*parse_body)(const char *body, size_t len, void *out,
                                                  struct api_error *err),
                                void *out)
{
    for (void *it = json_object_iter(props); it; it = json_object_iter_next(props, it)) {
        const char *key = json_object_iter_key(it);
        struct api_error err;
        char body[192];

        /* The prefix supplies a required name: not when the field is the name itself. */
        snprintf(body, sizeof(body), "{%s\"%s\":{\"not\":\"valid\"}}",
                 strcmp(key, "name") ? prefix : "", key);
        if (parse_body(body, strlen(body), out, &err) != -1 || api_error_status(err.kind) != 422)
            fail_msg("%s: not refused with 422 (%s)", body, err.detail);
    }
}

static int parse_network_create(const char *body, size_t len, void *out, struct api_error *err)
{
    return api_parse_network_create(body, len, out, err);
}

static int parse_network_patch(const char *body, size_t len, void *out, struct api_error *err)
{
    return api_parse_network_patch(body, len, out, err);
}

static int parse_forward_create(const char *body, size_t len, void *out, struct api_error *err)
{
    return api_parse_forward_create(body, len, out, err);
}

/* The networks' schemas and the code describe the same fields (issue 13). */
static void test_openapi_networks_match_code(void **state)
{
    json_t *doc = openapi();
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    struct db_network net = {.name = "default",
                             .bridge = "vmmd-default",
                             .cidr = "10.71.0.0/24",
                             .nat = true,
                             .dhcp = true,
                             .dns_domain = "vmmd",
                             .mtu = 1500};
    struct db_forward fwd = {.id = 3,
                             .network = "default",
                             .protocol = "tcp",
                             .host_port = 8080,
                             .vm_id = "4334cc99-6dbb-404f-8098-7fc1ea3e1c1b",
                             .vm_port = 80};
    struct api_network_def ndef;
    struct api_forward_def fdef;
    json_t *j;

    (void)state;
    /* The stored part of a network (the daemon adds its state, dnsmasq, nics and forwards). */
    j = api_network_to_json(&net);
    assert_keys_in(j, json_object_get(json_object_get(schemas, "Network"), "properties"),
                   "the Network schema");
    json_decref(j);
    j = api_forward_to_json(&fwd, "web", "10.71.0.10");
    assert_keys_in(j, json_object_get(json_object_get(schemas, "Forward"), "properties"),
                   "the Forward schema");
    assert_keys_in(json_object_get(json_object_get(schemas, "Forward"), "properties"), j,
                   "api_forward_to_json");
    json_decref(j);

    assert_fields_known(json_object_get(json_object_get(schemas, "NetworkCreate"), "properties"),
                        "\"name\":\"x\",", parse_network_create, &ndef);
    assert_fields_known(json_object_get(json_object_get(schemas, "NetworkPatch"), "properties"), "",
                        parse_network_patch, &ndef);
    assert_fields_known(json_object_get(json_object_get(schemas, "ForwardCreate"), "properties"),
                        "", parse_forward_create, &fdef);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_api_fail),
        cmocka_unit_test(test_problem_json),
        cmocka_unit_test(test_problem_json_cut_utf8),
        cmocka_unit_test(test_problem_json_not_utf8),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_create_defaults),
        cmocka_unit_test(test_create_everything),
        cmocka_unit_test(test_create_required),
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_mode),
        cmocka_unit_test(test_vcpus),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_kernel_values),
        cmocka_unit_test(test_boot_field),
        cmocka_unit_test(test_paths_inside),
        cmocka_unit_test(test_paths_outside),
        cmocka_unit_test(test_paths_missing),
        cmocka_unit_test(test_check_path_direct),
        cmocka_unit_test(test_block_devices),
        cmocka_unit_test(test_initrd),
        cmocka_unit_test(test_cmdline),
        cmocka_unit_test(test_disks),
        cmocka_unit_test(test_nics),
        cmocka_unit_test(test_io_limits),
        cmocka_unit_test(test_limits_only_change),
        cmocka_unit_test(test_networks),
        cmocka_unit_test(test_storage_requests),
        cmocka_unit_test(test_volume_disks),
        cmocka_unit_test(test_network_json),
        cmocka_unit_test(test_forwards),
        cmocka_unit_test(test_macs),
        cmocka_unit_test(test_autostart),
        cmocka_unit_test(test_cpu_limits),
        cmocka_unit_test(test_error_order),
        cmocka_unit_test(test_patch),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_to_db),
        cmocka_unit_test(test_device_rules),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_vm_to_json),
        cmocka_unit_test(test_openapi_document),
        cmocka_unit_test(test_openapi_matches_code),
        cmocka_unit_test(test_openapi_networks_match_code),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
