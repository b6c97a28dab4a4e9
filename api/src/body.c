/*
 * Request bodies: every JSON body the API accepts is one object. Decoding
 * is strict so that what a client meant is never guessed: duplicate keys,
 * trailing garbage and NUL characters are refused, and the 400 names
 * jansson's line and column so a hand-written curl body is easy to fix.
 */
#include "api_internal.h"

#include <string.h>

bool api__body_blank(const char *body, size_t len)
{
    if (!body)
        return true;
    for (size_t i = 0; i < len; i++)
        if (!strchr(" \t\r\n", body[i]) || body[i] == '\0')
            return false;
    return true;
}

int api__parse_object(const char *body, size_t len, json_t **root, struct api_error *err)
{
    json_error_t jerr;
    json_t *v;

    *root = NULL;
    if (len > API_BODY_MAX)
        return api_fail(err, API_ERR_PAYLOAD_TOO_LARGE, "body: larger than %d bytes", API_BODY_MAX);
    if (api__body_blank(body, len))
        return api_fail(err, API_ERR_BAD_REQUEST, "body: a JSON object is required");
    /* DECODE_ANY so that a bare scalar gets the clearer "must be an object". */
    v = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!v)
        return api_fail(err, API_ERR_BAD_REQUEST, "body: malformed JSON at line %d, column %d: %s",
                        jerr.line, jerr.column, jerr.text);
    if (!json_is_object(v)) {
        json_decref(v);
        return api_fail(err, API_ERR_BAD_REQUEST, "body: must be a JSON object");
    }
    *root = v;
    return 0;
}

const char *api__unknown_key(json_t *obj, const char *const *allowed)
{
    /* jansson keeps keys in body order, so the first stray key is the one named. */
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        size_t i;

        for (i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0)
                break;
        if (!allowed[i])
            return key;
    }
    return NULL;
}

int api__get_uint(json_t *v, const char *field, json_int_t lo, json_int_t hi, uint64_t *out,
                  struct api_error *err)
{
    /* json_is_integer is false for 2.0, "2" and true: all refused. */
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        api_fail(err, API_ERR_UNPROCESSABLE, "%s: must be an integer from %lld to %lld", field,
                 (long long)lo, (long long)hi);
        return -1; /* a literal, so the optimizer sees *out is set whenever this returns 0 */
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int api__get_bool(json_t *v, const char *field, bool *out, struct api_error *err)
{
    if (!json_is_boolean(v))
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: must be true or false", field);
    *out = json_is_true(v);
    return 0;
}

int api__get_name(const char *field, const char *s, char out[DB_NAME_MAX + 1],
                  struct api_error *err)
{
    if (!s)
        return api_fail(err, API_ERR_UNPROCESSABLE, "%s: is required", field);
    if (!api_name_valid(s))
        return api_fail(err, API_ERR_UNPROCESSABLE,
                        "%s: must match [a-z0-9][a-z0-9-]{0,62} (1 to 63 characters)", field);
    strcpy(out, s);
    return 0;
}
