/*
 * Helpers shared by api/'s source files and by nothing else: the body
 * decoder every parser starts with and the path check with the file kind
 * spelled out (api_check_path() infers it from the field name).
 */
#ifndef API_INTERNAL_H
#define API_INTERNAL_H

#include "api/api.h"

/*
 * Decodes a request body that must be one JSON object. Fills *root (caller
 * decrefs) or err: 413 over API_BODY_MAX, 400 for malformed JSON (with
 * jansson's line and column), a duplicate key or anything but an object.
 */
int api__parse_object(const char *body, size_t len, json_t **root, struct api_error *err);

/* True when the body is absent or only JSON whitespace. */
bool api__body_blank(const char *body, size_t len);

/* The first key of obj not in allowed (NULL-terminated), or NULL. */
const char *api__unknown_key(json_t *obj, const char *const *allowed);

/* api_check_path() with the accepted kinds explicit: regular files, and block devices too. */
int api__check_path(const char *field, const char *path, const struct api_limits *limits,
                    bool allow_blockdev, char **canonical, struct api_error *err);

/* An integer from lo to hi (not 2.0, "2" or true); 422 naming field. */
int api__get_uint(json_t *v, const char *field, json_int_t lo, json_int_t hi, uint64_t *out,
                  struct api_error *err);

/* true or false (not 1, "true"); 422 naming field. */
int api__get_bool(json_t *v, const char *field, bool *out, struct api_error *err);
/* A name ([a-z0-9][a-z0-9-]{0,62}) into out; s NULL → 422 "is required", naming field. */
int api__get_name(const char *field, const char *s, char out[DB_NAME_MAX + 1],
                  struct api_error *err);
/* The first unknown key in a device's "limits" object, or NULL (pass 1, 400). */
const char *api__io_limits_unknown_key(json_t *device);
/* Checks device's "limits" (422 naming "<array>[index].limits.<key>") and puts its normalised
 * form into norm (nothing when no limit is set). */
int api__io_limits_build(json_t *device, const char *array, size_t index, json_t *norm,
                         struct api_error *err);

#endif
