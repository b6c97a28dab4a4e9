/*
 * vmctl's disk specs and storage one-liners (see storagespec.h). As with
 * the network specs, only the shape of a flag is checked here, so a typo is
 * a usage error (exit 2); the daemon checks the values and names the field.
 */
#include "storagespec.h"

#include <stdio.h>
#include <string.h>

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

json_t *cli_disk_parse(const char *spec, const char **why)
{
    size_t len = strlen(spec);
    bool ro = len >= 3 && strcmp(spec + len - 3, ",ro") == 0;
    const char *key = "path";

    *why = NULL;
    if (ro)
        len -= 3;
    /* "volume=" picks a volume; anything else is a path, as before volumes existed. */
    if (len >= 7 && strncmp(spec, "volume=", 7) == 0) {
        key = "volume";
        spec += 7;
        len -= 7;
        if (memchr(spec, ',', len)) {
            *why = "a volume name has no comma; the only option is ,ro";
            return NULL;
        }
    }
    if (len == 0) {
        *why = strcmp(key, "volume") ? "the path is empty" : "the volume name is empty";
        return NULL;
    }
    return json_pack("{s:s%, s:b}", key, spec, len, "readonly", ro);
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
