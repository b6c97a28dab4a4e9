/*
 * vmctl's disk specs and storage one-liners (see storagespec.h). As with
 * the network specs, only the shape of a flag is checked here, so a typo is
 * a usage error (exit 2); the daemon checks the values and names the field.
 */
#include "storagespec.h"
#include "limitspec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * An option at the end of a spec: ",ro" or ",KEY=N". A path keeps commas that
 * are not followed by one ("/images/a,b.img"); anything shaped like a KEY=N
 * option must be a limit key, so a typo is never taken for part of a path.
 */
static bool option_shaped(const char *tok)
{
    size_t key = strspn(tok, "abcdefghijklmnopqrstuvwxyz_");

    return strcmp(tok, "ro") == 0 || (key > 0 && tok[key] == '=');
}

json_t *cli_disk_parse(const char *spec, const char **why)
{
    char *copy = strdup(spec), *target, *comma;
    const char *key = "path";
    json_t *disk = NULL;
    bool ro = false;

    *why = "out of memory";
    if (!copy)
        return NULL;
    target = copy;
    /* "volume=" picks a volume; anything else is a path, as before volumes existed. */
    if (strncmp(target, "volume=", 7) == 0) {
        key = "volume";
        target += 7;
    }
    disk = json_object();
    *why = NULL;
    /* Options from the end, as long as the last piece looks like one. */
    while ((comma = strrchr(target, ',')) && option_shaped(comma + 1)) {
        char *tok = comma + 1, *eq = strchr(tok, '=');

        *comma = '\0';
        if (!eq) {
            ro = true;
            continue;
        }
        *eq = '\0';
        if (cli_limit_option(disk, tok, eq + 1, why) != 1) {
            if (!*why)
                *why = "options are ro, bytes_per_s=N, ops_per_s=N, burst_bytes=N and burst_ops=N";
            goto fail;
        }
    }
    if (!*target) {
        *why = strcmp(key, "volume") ? "the path is empty" : "the volume name is empty";
        goto fail;
    }
    if (strcmp(key, "volume") == 0 && strchr(target, ',')) {
        *why = "a volume name has no comma; the options are ro and the limit keys";
        goto fail;
    }
    json_object_set_new(disk, key, json_string(target));
    json_object_set_new(disk, "readonly", json_boolean(ro));
    free(copy);
    *why = NULL;
    return disk;
fail:
    free(copy);
    json_decref(disk);
    return NULL;
}

void cli_disk_describe(json_t *disk, char *out, size_t size)
{
    const char *ro = json_is_true(json_object_get(disk, "readonly")) ? " (read-only)" : "";

    if (str(disk, "volume"))
        snprintf(out, size, "volume %s%s", str(disk, "volume"), ro);
    else
        snprintf(out, size, "%s%s", str(disk, "path") ? str(disk, "path") : "?", ro);
}

bool cli_image_format_valid(const char *format)
{
    return !strcmp(format, "auto") || !strcmp(format, "raw") || !strcmp(format, "qcow2");
}

void cli_sha256_short(const char *sha256, char out[13])
{
    snprintf(out, 13, "%s", sha256 && *sha256 ? sha256 : "-");
}

void cli_volume_origin(json_t *volume, char *out, size_t size)
{
    const char *image = str(volume, "image"), *clone = str(volume, "clone");

    if (!image) {
        snprintf(out, size, "empty");
        return;
    }
    if (clone && !strcmp(clone, "sparse-copy"))
        clone = "sparse copy";
    snprintf(out, size, "clone of %s (%s)", image, clone ? clone : "?");
}

void cli_volume_users(json_t *volume, char *out, size_t size)
{
    json_t *vms = json_object_get(volume, "vms"), *vm;
    size_t i, used = 0;

    snprintf(out, size, "-");
    json_array_foreach(vms, i, vm)
    {
        const char *name = str(vm, "name") ? str(vm, "name") : str(vm, "id");
        int n = snprintf(out + used, size - used, "%s%s", i ? ", " : "", name ? name : "?");
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
}
