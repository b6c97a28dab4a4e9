/*
 * The pure parts of serving the dashboard's files: which names may be
 * served at all, the Content-Type for a name, and the validator a browser
 * revalidates with. Kept apart from the route so they are unit-tested.
 */
#ifndef VMMD_STATIC_FILE_H
#define VMMD_STATIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATIC_FILE_NAME_MAX 100
#define STATIC_FILE_ETAG_LEN 40 /* with the quotes and the NUL */

/*
 * A name is one path segment of [A-Za-z0-9._-], starting with a letter or a
 * digit, with no "..": so no traversal, no hidden files, no encoded tricks
 * (the URL is already decoded when it gets here).
 */
bool static_file_name_ok(const char *name);
/* The Content-Type for a name by its extension, NULL for an extension we do not serve. */
const char *static_file_type(const char *name);
/* A strong ETag from the file's size and modification time: "<size>-<mtime ns>" in hex. */
void static_file_etag(uint64_t size, int64_t mtime_ns, char out[STATIC_FILE_ETAG_LEN]);
/* True when an If-None-Match header value lists etag (or is "*"). */
bool static_file_etag_matches(const char *if_none_match, const char *etag);

#endif
