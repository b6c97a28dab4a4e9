/*
 * libFuzzer harness for the API's VM definitions (api/src/vm_def.c): each
 * input is a request body given both to api_parse_vm_create (POST /v1/vms)
 * and to api_parse_vm_patch (PATCH /v1/vms/{id}), exactly len bytes with no
 * terminating NUL, as the HTTP server hands them over. What parses is taken
 * on as the daemon does: into a stored VM (a patch onto a fixed one), the
 * cross-field device rules, and the VM's JSON; what fails gets its
 * problem+json.
 *
 * As in tests/unit/api/test_validation.c, '@' in a body stands for a
 * temporary root holding the image directories images/ and other/ (files,
 * a symlink out, a dangling one) and outside/, so the corpus can name real
 * paths. A parsed definition's paths must be canonical and inside the image
 * directories, and its name valid: anything else aborts. With
 * The same bodies go to the network and port forward parsers
 * (POST/PATCH /v1/networks, POST .../forwards): what they accept must be a
 * CIDR the daemon can use as it is (normalised, /16../29, no host bits), a
 * valid DNS domain and name, and a forward with ports in range. With
 * VMMD_FUZZ_VERBOSE set, each verdict is printed (to check a seed does what
 * its name says: `VMMD_FUZZ_VERBOSE=1 fuzz_vm_def SEED...`).
 */
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[PATH_MAX];
static char images[PATH_MAX + 8], other[PATH_MAX + 8];
static const char *dirs[2] = {images, other};
static const struct api_limits limits = {dirs, 2};
static bool verbose;

static void put(const char *rel, const char *link_to)
{
    char p[PATH_MAX + 64];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    if (link_to) {
        char t[PATH_MAX + 64];
        snprintf(t, sizeof(t), "%s/%s", root, link_to);
        if (symlink(t, p) != 0)
            abort();
    } else if (rel[strlen(rel) - 1] == '/') {
        if (mkdir(p, 0755) != 0)
            abort();
    } else {
        f = fopen(p, "w");
        if (!f)
            abort();
        fputs("x", f);
        fclose(f);
    }
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_root(void)
{
    nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char tmpl[] = "/tmp/vmmd-fuzz-api-XXXXXX";
    char *canon;

    (void)argc, (void)argv;
    if (!mkdtemp(tmpl) || !(canon = realpath(tmpl, NULL)))
        abort();
    snprintf(root, sizeof(root), "%s", canon);
    free(canon);
    snprintf(images, sizeof(images), "%s/images", root);
    snprintf(other, sizeof(other), "%s/other", root);
    put("images/", NULL);
    put("other/", NULL);
    put("outside/", NULL);
    put("images/sub/", NULL);
    put("images/vmlinuz", NULL);
    put("images/initrd.img", NULL);
    put("images/disk0.img", NULL);
    put("images/disk1.img", NULL);
    put("images/sub/deep.img", NULL);
    put("other/k2", NULL);
    put("outside/secret", NULL);
    put("images/escape", "outside/secret");
    put("images/dangling", "images/nothing");
    put("images/alias0", "images/disk0.img");
    atexit(remove_root);
    verbose = getenv("VMMD_FUZZ_VERBOSE") != NULL;
    return 0;
}

/* The body with each '@' replaced by root, in a buffer of exactly its length. */
static char *expand(const uint8_t *data, size_t size, size_t *len)
{
    size_t rl = strlen(root), n = 0;
    char *out, *o;

    for (size_t i = 0; i < size; i++)
        n += data[i] == '@' ? rl : 1;
    out = malloc(n ? n : 1);
    if (!out)
        abort();
    o = out;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '@') {
            memcpy(o, root, rl);
            o += rl;
        } else {
            *o++ = (char)data[i];
        }
    }
    *len = n;
    return out;
}

static void check_path(const char *p)
{
    if (!p)
        return;
    if (strncmp(p, images, strlen(images)) != 0 && strncmp(p, other, strlen(other)) != 0)
        abort();
    if (strstr(p, "/../") || strstr(p, "/./") || strstr(p, "//"))
        abort();
}

static void check_def(const struct api_vm_def *def)
{
    json_t *disks;
    size_t i;
    json_t *d;

    if ((def->present & API_F_NAME) && !api_name_valid(def->name))
        abort();
    check_path(def->kernel);
    check_path(def->initrd);
    if (!def->disks_json)
        return;
    disks = json_loads(def->disks_json, 0, NULL);
    if (!json_is_array(disks))
        abort();
    json_array_foreach(disks, i, d) {
        json_t *vol = json_object_get(d, "volume");

        /* A disk is a checked path or a volume's valid name, never both. */
        if (vol) {
            if (!json_is_string(vol) || !api_name_valid(json_string_value(vol)) ||
                json_object_get(d, "path"))
                abort();
            continue;
        }
        if (!json_is_string(json_object_get(d, "path")))
            abort();
        check_path(json_string_value(json_object_get(d, "path")));
    }
    json_decref(disks);
}

/* What the daemon does with a stored VM: the device rules, then its JSON. */
static void use_vm(struct db_vm *vm)
{
    struct api_error err;
    json_t *j;
    char *text;

    if (api_check_vm_devices(vm, &err) != 0)
        free(api_problem_json(&err));
    j = api_vm_to_json(vm);
    if (!j)
        abort();
    text = json_dumps(j, JSON_COMPACT);
    free(text);
    json_decref(j);
}

static void fail(const char *what, const struct api_error *err)
{
    char *problem = api_problem_json(err);

    if (verbose)
        fprintf(stderr, "%s: %d %s\n", what, api_error_status(err->kind), err->detail);
    if (api_error_status(err->kind) < 400 || !problem)
        abort();
    free(problem);
}

/* A parsed network body and forward body, used as the daemon uses them. */
static void networks(const char *body, size_t len)
{
    struct api_network_def net;
    struct api_forward_def fwd;
    struct db_network stored = {.name = "n", .bridge = "vmmd-n", .cidr = "10.71.0.0/24",
                                .dns_domain = "vmmd", .mtu = 1500};
    struct api_error err;
    uint32_t addr;
    unsigned prefix;
    char again[32];

    if (api_parse_network_create(body, len, &net, &err) == 0) {
        if (!api_name_valid(net.name) || net.mtu < API_NET_MIN_MTU || net.mtu > API_NET_MAX_MTU)
            abort();
        if (net.cidr[0]) {
            if (api_ipv4_parse_cidr(net.cidr, &addr, &prefix) || prefix < API_NET_MIN_PREFIX ||
                prefix > API_NET_MAX_PREFIX || (addr & ~api_ipv4_mask(prefix)))
                abort();
            api_ipv4_format(addr, again);
            snprintf(again + strlen(again), sizeof(again) - strlen(again), "/%u", prefix);
            if (strcmp(again, net.cidr) != 0)
                abort(); /* normalised: what nft and dnsmasq get is what was checked */
        }
        snprintf(stored.cidr, sizeof(stored.cidr), "%s", net.cidr[0] ? net.cidr : "10.71.0.0/24");
        json_decref(api_network_to_json(&stored));
    } else {
        fail("network create", &err);
    }
    if (api_parse_network_patch(body, len, &net, &err) == 0) {
        api_network_def_apply(&net, &stored);
        if (strchr(stored.dns_domain, ' ') || strchr(stored.dns_domain, '\n'))
            abort();
    } else {
        fail("network patch", &err);
    }
    if (api_parse_forward_create(body, len, &fwd, &err) == 0) {
        if (fwd.host_port < 1 || fwd.host_port > 65535 || fwd.vm_port < 1 || fwd.vm_port > 65535 ||
            (fwd.host_address[0] && api_ipv4_parse(fwd.host_address, &addr)))
            abort();
    } else {
        fail("forward create", &err);
    }
}

/* Image import and volume bodies, and the same bytes as an upload's query values. */
static void storage(const char *body, size_t len)
{
    struct api_image_def img;
    struct api_volume_def vol;
    struct api_error err;
    uint64_t size;

    if (api_parse_image_import(body, len, &limits, &img, &err) == 0) {
        if (!api_name_valid(img.name) || !img.path || img.path[0] != '/' ||
            (img.pool[0] && !api_name_valid(img.pool)))
            abort();
        api_image_def_free(&img);
    } else {
        fail("image import", &err);
    }
    /* Query values arrive as C strings (MHD decodes them): the bytes up to the first NUL. */
    char *query = strndup(body, len);
    if (query && api_parse_image_upload(query, query, query, &img, &err) == 0 &&
        !api_name_valid(img.name))
        abort();
    free(query);
    if (api_parse_volume_create(body, len, &vol, &err) == 0) {
        if (!api_name_valid(vol.name) || vol.size_mib > API_VOLUME_MAX_MIB ||
            (!vol.image[0] && vol.size_mib == 0) || (vol.image[0] && !api_name_valid(vol.image)))
            abort();
    } else {
        fail("volume create", &err);
    }
    if (api_parse_volume_patch(body, len, &size, &err) == 0 &&
        (size < 1 || size > API_VOLUME_MAX_MIB))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char base_body[] = "{\"name\":\"base\",\"kernel\":\"%s/vmlinuz\"}";
    struct api_vm_def def, base;
    struct api_error err;
    struct db_vm vm;
    char base_json[PATH_MAX + 64];
    size_t len;
    char *body = expand(data, size, &len);

    if (api_parse_vm_create(body, len, &limits, &def, &err) == 0) {
        if (verbose)
            fprintf(stderr, "create: ok\n");
        check_def(&def);
        api_vm_def_to_db(&def, &vm);
        use_vm(&vm);
        db_vm_clear(&vm);
        api_vm_def_free(&def);
    } else {
        fail("create", &err);
    }

    if (api_parse_vm_patch(body, len, &limits, &def, &err) == 0) {
        if (verbose)
            fprintf(stderr, "patch: ok\n");
        check_def(&def);
        snprintf(base_json, sizeof(base_json), base_body, images);
        if (api_parse_vm_create(base_json, strlen(base_json), &limits, &base, &err) != 0)
            abort();
        api_vm_def_to_db(&base, &vm);
        api_vm_def_apply(&def, &vm);
        use_vm(&vm);
        db_vm_clear(&vm);
        api_vm_def_free(&base);
        api_vm_def_free(&def);
    } else {
        fail("patch", &err);
    }
    networks(body, len);
    storage(body, len);
    free(body);
    return 0;
}
