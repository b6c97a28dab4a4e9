/*
 * VM definitions from POST /v1/vms and PATCH /v1/vms/{id} bodies into a
 * checked struct api_vm_def, and from there into the store's struct db_vm.
 *
 * Checks run in three passes so that the answer does not depend on the
 * order of keys in the body: first the shape (unknown keys anywhere → 400),
 * then each field's type and range in a fixed order (→ 422), and only then
 * the filesystem (paths: 403 outside the image directories, 422 missing),
 * so a request that is wrong anyway never makes the daemon touch a file.
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const vm_keys[] = {
    "name",  "mode", "vcpus",     "memory_mib",    "kernel",     "initrd", "cmdline",
    "disks", "nics", "autostart", "cpu_quota_pct", "cpu_weight", "boot",   "ha",   NULL};
static const char *const disk_keys[] = {"path", "volume", "readonly", "limits", NULL};
static const char *const nic_keys[] = {"tap", "bridge", "network", "ip", "mac", "limits", NULL};

#define IFNAME_MAX     15 /* IFNAMSIZ - 1 */

/* ASCII ranges rather than islower()/isdigit(), which follow the locale. */
/* 8-4-4-4-12 lowercase hex digits: the form of a VM id, which lookups try before names. */
bool api_name_is_uuid(const char *name)
{
    size_t i;

    for (i = 0; name[i]; i++) {
        char c = name[i];
        bool hyphen_here = i == 8 || i == 13 || i == 18 || i == 23;
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        if (i >= 36 || (hyphen_here ? c != '-' : !hex))
            return false;
    }
    return i == 36;
}

bool api_name_valid(const char *name)
{
    size_t i;

    if (!name)
        return false;
    for (i = 0; name[i]; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0)))
            return false;
    }
    return i >= 1 && i <= DB_NAME_MAX;
}

/* Interface names as the kernel takes them (dev_valid_name): no "/", no blanks, not "." or "..". */
static bool ifname_valid(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > IFNAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "52:54:00:AB:cd:ef" → "52:54:00:ab:cd:ef"; unicast and not all zero. */
static int mac_normalise(const char *field, const char *s, char out[18], struct api_error *err)
{
    unsigned char b[6];
    int any = 0;

    if (strlen(s) != 17)
        goto bad;
    for (int i = 0; i < 6; i++) {
        int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);

        if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
            goto bad;
        b[i] = (unsigned char)(hi << 4 | lo);
        any |= b[i];
    }
    /* The low bit of the first octet marks a group address: no NIC can own one. */
    if (b[0] & 1)
        return api_fail(err, API_ERR_UNPROCESSABLE,
                        "%s: must be a unicast address (low bit of the first octet clear)", field);
    if (!any)
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: must not be all zeros", field);
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
    return 0;
bad:
    return api_fail(err, API_ERR_UNPROCESSABLE,
                    "%s: must be six hex pairs separated by ':' (like 52:54:00:12:34:56)", field);
}

/* Pass 1: keys. Unknown keys inside disks[] and nics[] objects are found here too. */
static int check_keys(json_t *root, struct api_error *err)
{
    const char *bad = api__unknown_key(root, vm_keys);
    static const struct {
        const char *field;
        const char *const *keys;
    } nested[] = {{"disks", disk_keys}, {"nics", nic_keys}};

    if (bad)
        return api_fail(err, API_ERR_BAD_REQUEST, "%.64s: unknown field", bad);
    for (size_t n = 0; n < sizeof(nested) / sizeof(nested[0]); n++) {
        json_t *arr = json_object_get(root, nested[n].field);

        if (!json_is_array(arr))
            continue; /* its type is pass 2's business */
        for (size_t i = 0; i < json_array_size(arr); i++) {
            json_t *item = json_array_get(arr, i);

            if (json_is_object(item) && (bad = api__unknown_key(item, nested[n].keys)))
                return api_fail(err, API_ERR_BAD_REQUEST, "%s[%zu].%.64s: unknown field",
                                nested[n].field, i, bad);
            if ((bad = api__io_limits_unknown_key(item)))
                return api_fail(err, API_ERR_BAD_REQUEST, "%s[%zu].limits.%.64s: unknown field",
                                nested[n].field, i, bad);
        }
    }
    return 0;
}

static int get_path_string(json_t *v, const char *field, const char **out, struct api_error *err)
{
    const char *s = json_string_value(v);

    if (!s)
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: must be a string (a path)", field);
    if (s[0] != '/')
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: must be an absolute path", field);
    *out = s;
    return 0;
}

static int check_cmdline(json_t *v, struct api_error *err)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);

    if (!s)
        return api_fail(err, API_ERR_UNPROCESSABLE, "cmdline: must be a string or null");
    if (len > API_CMDLINE_MAX)
        return api_fail(err, API_ERR_UNPROCESSABLE, "cmdline: longer than %d bytes",
                        API_CMDLINE_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return api_fail(err, API_ERR_UNPROCESSABLE, "cmdline: control character at byte %zu",
                            i);
    return 0;
}

/* Pass 2 for disks: shape and types only; the paths are pass 3's. */
static int check_disks(json_t *v, struct api_error *err)
{
    if (!json_is_array(v))
        return api_fail(err, API_ERR_UNPROCESSABLE, "disks: must be an array");
    if (json_array_size(v) > API_MAX_DISKS)
        return api_fail(err, API_ERR_UNPROCESSABLE, "disks: at most %d disks", API_MAX_DISKS);
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *d = json_array_get(v, i);
        char field[48]; /* "disks[<size_t>].path" */
        json_t *ro;
        const char *path;

        if (!json_is_object(d))
            return api_fail(err, API_ERR_UNPROCESSABLE, "disks[%zu]: must be an object", i);
        if (json_object_get(d, "path") && json_object_get(d, "volume"))
            return api_fail(err, API_ERR_UNPROCESSABLE,
                            "disks[%zu]: give path or volume, not both", i);
        if (json_object_get(d, "volume")) {
            json_t *vol = json_object_get(d, "volume");
            char name[DB_NAME_MAX + 1];

            snprintf(field, sizeof(field), "disks[%zu].volume", i);
            if (api__get_name(field, json_is_string(vol) ? json_string_value(vol) : "", name,
                              err))
                return -1;
        } else {
            snprintf(field, sizeof(field), "disks[%zu].path", i);
            if (!json_object_get(d, "path"))
                return api_fail(err, API_ERR_UNPROCESSABLE,
                                "%s: is required (or disks[%zu].volume)", field, i);
            if (get_path_string(json_object_get(d, "path"), field, &path, err))
                return -1;
        }
        ro = json_object_get(d, "readonly");
        if (ro && !json_is_boolean(ro))
            return api_fail(err, API_ERR_UNPROCESSABLE,
                            "disks[%zu].readonly: must be true or false", i);
        if (json_object_get(d, "limits")) {
            json_t *scratch = json_object();
            int rc = scratch ? api__io_limits_build(d, "disks", i, scratch, err)
                             : api_fail(err, API_ERR_INTERNAL, "disks: out of memory");
            json_decref(scratch);
            if (rc)
                return -1;
        }
    }
    return 0;
}

/* Nics need no filesystem, so they are checked and normalised in one go. */
static int build_nics(json_t *v, char **out, struct api_error *err)
{
    json_t *norm;
    char macs[API_MAX_NICS][18];

    if (!json_is_array(v))
        return api_fail(err, API_ERR_UNPROCESSABLE, "nics: must be an array");
    if (json_array_size(v) > API_MAX_NICS)
        return api_fail(err, API_ERR_UNPROCESSABLE, "nics: at most %d nics", API_MAX_NICS);
    norm = json_array();
    if (!norm)
        goto oom;
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *n = json_array_get(v, i);
        json_t *tap, *bridge, *net, *ip, *mac, *item;
        const char *kind, *ifname;
        char field[48]; /* "nics[<size_t>].mac" */

        if (!json_is_object(n)) {
            api_fail(err, API_ERR_UNPROCESSABLE, "nics[%zu]: must be an object", i);
            goto fail;
        }
        tap = json_object_get(n, "tap");
        bridge = json_object_get(n, "bridge");
        net = json_object_get(n, "network");
        if (!!tap + !!bridge + !!net != 1) {
            api_fail(err, API_ERR_UNPROCESSABLE,
                     "nics[%zu]: must have exactly one of \"tap\", \"bridge\" and \"network\"",
                     i);
            goto fail;
        }
        kind = tap ? "tap" : bridge ? "bridge" : "network";
        ifname = json_string_value(tap ? tap : bridge ? bridge : net);
        if (net && !api_name_valid(ifname)) {
            api_fail(err, API_ERR_UNPROCESSABLE,
                     "nics[%zu].network: must be a network name ([a-z0-9][a-z0-9-]{0,62})", i);
            goto fail;
        }
        if (!net && (!ifname || !ifname_valid(ifname))) {
            api_fail(err, API_ERR_UNPROCESSABLE,
                     "nics[%zu].%s: must be an interface name of 1 to %d characters from "
                     "[A-Za-z0-9_.-]",
                     i, kind, IFNAME_MAX);
            goto fail;
        }
        item = json_pack("{s:s}", kind, ifname);
        if (!item || json_array_append_new(norm, item))
            goto oom;
        if (api__io_limits_build(n, "nics", i, item, err))
            goto fail;
        if ((ip = json_object_get(n, "ip"))) {
            char addr[16];
            uint32_t a;

            /* A static address needs a network whose DHCP server can hand it out. */
            if (!net) {
                api_fail(err, API_ERR_UNPROCESSABLE,
                         "nics[%zu].ip: only a NIC on a managed \"network\" has an ip", i);
                goto fail;
            }
            if (!json_is_string(ip) || api_ipv4_parse(json_string_value(ip), &a)) {
                api_fail(err, API_ERR_UNPROCESSABLE,
                         "nics[%zu].ip: must be an IPv4 address like 10.71.0.10", i);
                goto fail;
            }
            api_ipv4_format(a, addr);
            if (json_object_set_new(item, "ip", json_string(addr)))
                goto oom;
        }
        mac = json_object_get(n, "mac");
        macs[i][0] = '\0';
        if (mac) {
            snprintf(field, sizeof(field), "nics[%zu].mac", i);
            if (!json_is_string(mac)) {
                api_fail(err, API_ERR_UNPROCESSABLE, "%s: must be a string", field);
                goto fail;
            }
            if (mac_normalise(field, json_string_value(mac), macs[i], err))
                goto fail;
            /* Two NICs with one address would confuse every switch on the way. */
            for (size_t j = 0; j < i; j++) {
                if (strcmp(macs[j], macs[i]) == 0) {
                    api_fail(err, API_ERR_UNPROCESSABLE, "%s: same address as nics[%zu].mac", field,
                             j);
                    goto fail;
                }
            }
            if (json_object_set_new(item, "mac", json_string(macs[i])))
                goto oom;
        }
    }
    *out = json_dumps(norm, JSON_COMPACT);
    json_decref(norm);
    if (!*out)
        return api_fail(err, API_ERR_INTERNAL, "nics: out of memory");
    return 0;
oom:
    api_fail(err, API_ERR_INTERNAL, "nics: out of memory");
fail:
    json_decref(norm);
    return -1;
}

/* Pass 3 for disks: resolve each path and write the normalised array. */
static int build_disks(json_t *v, const struct api_limits *limits, char **out,
                       struct api_error *err)
{
    json_t *norm = json_array();

    if (!norm)
        return api_fail(err, API_ERR_INTERNAL, "disks: out of memory");
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *d = json_array_get(v, i);
        char field[48]; /* "disks[<size_t>].path" */
        const char *key = json_object_get(d, "volume") ? "volume" : "path";
        char *canon;
        json_t *item;

        snprintf(field, sizeof(field), "disks[%zu].%s", i, key);
        if (key[0] == 'v')
            canon = strdup(json_string_value(json_object_get(d, "volume")));
        else if (api__check_path(field, json_string_value(json_object_get(d, "path")), limits,
                                 true, &canon, err))
            goto fail;
        /* One image attached twice: two devices writing it, neither knowing of the other. */
        for (size_t j = 0; canon && j < json_array_size(norm); j++) {
            const char *other = json_string_value(json_object_get(json_array_get(norm, j), key));

            if (other && strcmp(other, canon) == 0) {
                api_fail(err, API_ERR_UNPROCESSABLE, "%s: same %s as disks[%zu].%s", field,
                         key[0] == 'v' ? "volume" : "file", j, key);
                free(canon);
                goto fail;
            }
        }
        item = canon ? json_pack("{s:s, s:b}", key, canon, "readonly",
                                 json_is_true(json_object_get(d, "readonly")))
                     : NULL;
        free(canon);
        if (!item || json_array_append_new(norm, item)) {
            api_fail(err, API_ERR_INTERNAL, "disks: out of memory");
            goto fail;
        }
        if (api__io_limits_build(d, "disks", i, item, err))
            goto fail;
    }
    *out = json_dumps(norm, JSON_COMPACT);
    json_decref(norm);
    if (!*out)
        return api_fail(err, API_ERR_INTERNAL, "disks: out of memory");
    return 0;
fail:
    json_decref(norm);
    return -1;
}

static int copy_string(json_t *v, char **out, struct api_error *err, const char *field)
{
    *out = strdup(json_string_value(v));
    if (!*out)
        return api_fail(err, API_ERR_INTERNAL, "%s: out of memory", field);
    return 0;
}

static int parse_vm(const char *body, size_t len, const struct api_limits *limits, bool create,
                    struct api_vm_def *out, struct api_error *err)
{
    static const char *const kernel_keys[] = {"kernel", "initrd", "cmdline", NULL};
    json_t *root, *v;
    const char *kernel = NULL, *initrd = NULL;
    bool disk_boot;
    uint64_t n;

    memset(out, 0, sizeof(*out));
    if (api__parse_object(body, len, &root, err))
        return -1;
    if (check_keys(root, err))
        goto fail;
    if (!create && json_object_size(root) == 0) {
        api_fail(err, API_ERR_BAD_REQUEST, "body: at least one field is required");
        goto fail;
    }
    if (create && !json_object_get(root, "name")) {
        api_fail(err, API_ERR_UNPROCESSABLE, "name: is required");
        goto fail;
    }
    /* "boot": "disk" replaces the kernel: the firmware finds one on the first disk. */
    v = json_object_get(root, "boot");
    disk_boot = json_is_string(v) && strcmp(json_string_value(v), "disk") == 0;
    if (create && !disk_boot && !json_object_get(root, "kernel")) {
        api_fail(err, API_ERR_UNPROCESSABLE, "kernel: is required (or \"boot\": \"disk\")");
        goto fail;
    }
    for (const char *const *k = kernel_keys; create && disk_boot && *k; k++) {
        if (json_object_get(root, *k)) {
            api_fail(err, API_ERR_UNPROCESSABLE,
                     "%s: must be absent with \"boot\": \"disk\" (the bootloader on the disk "
                     "loads the kernel)",
                     *k);
            goto fail;
        }
    }

    /* Pass 2: types and ranges, in the order of the definition. */
    if ((v = json_object_get(root, "name"))) {
        if (!json_is_string(v) || !api_name_valid(json_string_value(v))) {
            api_fail(err, API_ERR_UNPROCESSABLE,
                     "name: must match [a-z0-9][a-z0-9-]{0,62} (1 to 63 characters)");
            goto fail;
        }
        if (api_name_is_uuid(json_string_value(v))) {
            /* It would shadow, or be shadowed by, the VM that has it as its id. */
            api_fail(err, API_ERR_UNPROCESSABLE,
                     "name: must not have the form of a VM id (a UUID)");
            goto fail;
        }
        strcpy(out->name, json_string_value(v)); /* fits: api_name_valid caps the length */
        out->present |= API_F_NAME;
    }
    strcpy(out->mode, API_DEFAULT_MODE);
    if ((v = json_object_get(root, "mode"))) {
        const char *m = json_string_value(v);

        if (!m || (strcmp(m, "full") != 0 && strcmp(m, "pv") != 0)) {
            api_fail(err, API_ERR_UNPROCESSABLE, "mode: must be \"full\" or \"pv\"");
            goto fail;
        }
        strcpy(out->mode, m);
        out->present |= API_F_MODE;
    }
    out->vcpus = API_DEFAULT_VCPUS;
    if ((v = json_object_get(root, "vcpus"))) {
        if (api__get_uint(v, "vcpus", 1, API_MAX_VCPUS, &n, err))
            goto fail;
        out->vcpus = (uint32_t)n;
        out->present |= API_F_VCPUS;
    }
    out->memory_mib = API_DEFAULT_MEMORY_MIB;
    if ((v = json_object_get(root, "memory_mib"))) {
        if (api__get_uint(v, "memory_mib", API_MIN_MEMORY, API_MAX_MEMORY, &out->memory_mib, err))
            goto fail;
        out->present |= API_F_MEMORY;
    }
    if ((v = json_object_get(root, "cpu_quota_pct"))) {
        if (api__get_uint(v, "cpu_quota_pct", 0, API_MAX_CPU_QUOTA_PCT, &n, err))
            goto fail;
        out->cpu_quota_pct = (uint32_t)n;
        out->present |= API_F_CPU_QUOTA;
    }
    out->cpu_weight = API_DEFAULT_CPU_WEIGHT;
    if ((v = json_object_get(root, "cpu_weight"))) {
        if (api__get_uint(v, "cpu_weight", 1, API_MAX_CPU_WEIGHT, &n, err))
            goto fail;
        out->cpu_weight = (uint32_t)n;
        out->present |= API_F_CPU_WEIGHT;
    }
    strcpy(out->boot, "kernel");
    if ((v = json_object_get(root, "boot"))) {
        const char *b = json_string_value(v);

        if (!b || (strcmp(b, "kernel") != 0 && strcmp(b, "disk") != 0)) {
            api_fail(err, API_ERR_UNPROCESSABLE, "boot: must be \"kernel\" or \"disk\"");
            goto fail;
        }
        strcpy(out->boot, b);
        out->present |= API_F_BOOT;
    }
    if ((v = json_object_get(root, "ha"))) {
        const char *h = json_string_value(v);

        if (!json_is_null(v) && (!h || strcmp(h, "restart") != 0)) {
            api_fail(err, API_ERR_UNPROCESSABLE, "ha: must be \"restart\" or null");
            goto fail;
        }
        snprintf(out->ha, sizeof(out->ha), "%s", h ? h : "");
        out->present |= API_F_HA;
    }
    /* A patch may clear the kernel (null) when it switches to "boot": "disk". */
    if ((v = json_object_get(root, "kernel"))) {
        if (!(!create && json_is_null(v)) && get_path_string(v, "kernel", &kernel, err))
            goto fail;
        out->present |= API_F_KERNEL;
    }
    /* null clears initrd and cmdline in a patch, and means "none" in a create. */
    if ((v = json_object_get(root, "initrd"))) {
        if (!json_is_null(v) && get_path_string(v, "initrd", &initrd, err))
            goto fail;
        out->present |= API_F_INITRD;
    }
    if ((v = json_object_get(root, "cmdline"))) {
        if (!json_is_null(v)) {
            if (check_cmdline(v, err) || copy_string(v, &out->cmdline, err, "cmdline"))
                goto fail;
        }
        out->present |= API_F_CMDLINE;
    }
    if ((v = json_object_get(root, "disks"))) {
        if (check_disks(v, err))
            goto fail;
        out->present |= API_F_DISKS;
    }
    if (create && disk_boot && json_array_size(json_object_get(root, "disks")) == 0) {
        api_fail(err, API_ERR_UNPROCESSABLE,
                 "disks: \"boot\": \"disk\" needs at least one disk to boot from");
        goto fail;
    }
    if ((v = json_object_get(root, "nics"))) {
        if (build_nics(v, &out->nics_json, err))
            goto fail;
        out->present |= API_F_NICS;
    }
    if ((v = json_object_get(root, "autostart"))) {
        if (!json_is_boolean(v)) {
            api_fail(err, API_ERR_UNPROCESSABLE, "autostart: must be true or false");
            goto fail;
        }
        out->autostart = json_is_true(v);
        out->present |= API_F_AUTOSTART;
    }

    /* Pass 3: the filesystem. */
    if (kernel && api__check_path("kernel", kernel, limits, false, &out->kernel, err))
        goto fail;
    if (initrd && api__check_path("initrd", initrd, limits, false, &out->initrd, err))
        goto fail;
    if ((out->present & API_F_DISKS) &&
        build_disks(json_object_get(root, "disks"), limits, &out->disks_json, err))
        goto fail;

    if (create) {
        if (!out->disks_json && !(out->disks_json = strdup("[]")))
            goto oom;
        if (!out->nics_json && !(out->nics_json = strdup("[]")))
            goto oom;
    }
    json_decref(root);
    return 0;
oom:
    api_fail(err, API_ERR_INTERNAL, "out of memory");
fail:
    json_decref(root);
    api_vm_def_free(out);
    return -1;
}

int api_parse_vm_create(const char *body, size_t len, const struct api_limits *limits,
                        struct api_vm_def *out, struct api_error *err)
{
    return parse_vm(body, len, limits, true, out, err);
}

int api_parse_vm_patch(const char *body, size_t len, const struct api_limits *limits,
                       struct api_vm_def *out, struct api_error *err)
{
    return parse_vm(body, len, limits, false, out, err);
}

void api_vm_def_free(struct api_vm_def *def)
{
    if (!def)
        return;
    free(def->kernel);
    free(def->initrd);
    free(def->cmdline);
    free(def->disks_json);
    free(def->nics_json);
    memset(def, 0, sizeof(*def));
}

/* NULL stays NULL; false only when a copy was needed and failed. */
static bool dup_or_null(const char *src, char **dst)
{
    *dst = src ? strdup(src) : NULL;
    return !src || *dst;
}

static void replace(char **field, char *value)
{
    free(*field);
    *field = value;
}

/*
 * All copies are made before anything in vm changes, so that running out of
 * memory leaves the stored VM as it was rather than half patched.
 */
void api_vm_def_apply(const struct api_vm_def *def, struct db_vm *vm)
{
    char *kernel = NULL, *initrd = NULL, *cmdline = NULL, *disks = NULL, *nics = NULL;
    unsigned p = def->present;

    if (((p & API_F_KERNEL) && !dup_or_null(def->kernel, &kernel)) ||
        ((p & API_F_INITRD) && !dup_or_null(def->initrd, &initrd)) ||
        ((p & API_F_CMDLINE) && !dup_or_null(def->cmdline, &cmdline)) ||
        ((p & API_F_DISKS) && !dup_or_null(def->disks_json, &disks)) ||
        ((p & API_F_NICS) && !dup_or_null(def->nics_json, &nics))) {
        free(kernel);
        free(initrd);
        free(cmdline);
        free(disks);
        free(nics);
        return;
    }
    if (p & API_F_NAME)
        snprintf(vm->name, sizeof(vm->name), "%s", def->name);
    if (p & API_F_BOOT)
        snprintf(vm->boot, sizeof(vm->boot), "%s", def->boot);
    if (p & API_F_MODE)
        snprintf(vm->mode, sizeof(vm->mode), "%s", def->mode);
    if (p & API_F_VCPUS)
        vm->vcpus = def->vcpus;
    if (p & API_F_MEMORY)
        vm->memory_mib = def->memory_mib;
    if (p & API_F_KERNEL)
        replace(&vm->kernel, kernel);
    if (p & API_F_INITRD)
        replace(&vm->initrd, initrd);
    if (p & API_F_CMDLINE)
        replace(&vm->cmdline, cmdline);
    if (p & API_F_DISKS)
        replace(&vm->disks_json, disks);
    if (p & API_F_NICS)
        replace(&vm->nics_json, nics);
    if (p & API_F_AUTOSTART)
        vm->autostart = def->autostart;
    if (p & API_F_CPU_QUOTA)
        vm->cpu_quota_pct = def->cpu_quota_pct;
    if (p & API_F_CPU_WEIGHT)
        vm->cpu_weight = def->cpu_weight;
    if (p & API_F_HA)
        snprintf(vm->ha, sizeof(vm->ha), "%s", def->ha);
}

void api_vm_def_to_db(const struct api_vm_def *def, struct db_vm *vm)
{
    memset(vm, 0, sizeof(*vm));
    snprintf(vm->name, sizeof(vm->name), "%s", def->name);
    snprintf(vm->mode, sizeof(vm->mode), "%s", def->mode[0] ? def->mode : API_DEFAULT_MODE);
    snprintf(vm->boot, sizeof(vm->boot), "%s", def->boot[0] ? def->boot : "kernel");
    vm->vcpus = def->vcpus;
    vm->memory_mib = def->memory_mib;
    vm->autostart = def->autostart;
    vm->cpu_quota_pct = def->cpu_quota_pct;
    vm->cpu_weight = def->cpu_weight;
    snprintf(vm->ha, sizeof(vm->ha), "%s", def->ha);
    /* void by contract: a failed copy leaves that member NULL for the caller to notice. */
    dup_or_null(def->kernel, &vm->kernel);
    dup_or_null(def->initrd, &vm->initrd);
    dup_or_null(def->cmdline, &vm->cmdline);
    dup_or_null(def->disks_json ? def->disks_json : "[]", &vm->disks_json);
    dup_or_null(def->nics_json ? def->nics_json : "[]", &vm->nics_json);
    strcpy(vm->state, "stopped");
}

int api_check_vm_devices(const struct db_vm *vm, struct api_error *err)
{
    json_t *disks;
    size_t nr_disks;
    bool disk_boot = strcmp(vm->boot, "disk") == 0;

    disks = json_loads(vm->disks_json ? vm->disks_json : "[]", 0, NULL);
    nr_disks = json_array_size(disks);
    json_decref(disks);
    /* What a patch can leave behind: the boot method without what it needs. */
    if (disk_boot && nr_disks == 0)
        return api_fail(err, API_ERR_UNPROCESSABLE,
                        "disks: \"boot\": \"disk\" needs at least one disk to boot from");
    if (disk_boot && (vm->kernel || vm->initrd || vm->cmdline))
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: must be null with \"boot\": \"disk\"",
                        vm->kernel   ? "kernel"
                        : vm->initrd ? "initrd"
                                     : "cmdline");
    if (!disk_boot && !vm->kernel)
        return api_fail(err, API_ERR_UNPROCESSABLE,
                        "kernel: is required with \"boot\": \"kernel\"");
    if (strcmp(vm->mode, "full") != 0)
        return 0;
    if (nr_disks > API_MAX_IDE_DISKS)
        return api_fail(err, API_ERR_UNPROCESSABLE,
                        "disks: mode full has at most %d disks (two IDE channels), not %zu",
                        API_MAX_IDE_DISKS, nr_disks);
    return 0;
}
