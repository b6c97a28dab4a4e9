/*
 * The storage parts of vmctl that need no daemon: parsing `--disk` specs
 * (a path or a volume by name) and `volume create` sizes, and the one-line
 * descriptions of disks, images and volumes that `show`, `image show` and
 * `volume show` print. Pure functions over jansson values, so tests/unit/cli
 * tests them directly.
 */
#ifndef VMCTL_STORAGESPEC_H
#define VMCTL_STORAGESPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The API's bounds of a volume's size_mib. */
#define CLI_VOLUME_MIB_MAX 16777216L

/*
 * "PATH[,ro][,LIMIT=N]..." or "volume=NAME[,ro][,LIMIT=N]..." as the API's
 * Disk object ({"path"|"volume", "readonly", "limits"}). NULL when the spec
 * is malformed, with *why saying how (a static string).
 */
json_t *cli_disk_parse(const char *spec, const char **why);

/* A disk of a VM definition in one line: "/images/a.img (read-only)", "volume web-root". */
void cli_disk_describe(json_t *disk, char *out, size_t size);

/* An import format: auto, raw or qcow2. */
bool cli_image_format_valid(const char *format);

/* The first 12 hex digits of a sha256 (or "-" while unknown) into out[13]. */
void cli_sha256_short(const char *sha256, char out[13]);

/*
 * How a volume came to be, in a few words: "clone of debian (reflink)",
 * "clone of debian (sparse copy)", "empty".
 */
void cli_volume_origin(json_t *volume, char *out, size_t size);

/* The names of the VMs of a volume's "vms" array, comma-separated, or "-". */
void cli_volume_users(json_t *volume, char *out, size_t size);

#endif
