/*
 * The API's error kinds: the X-macro table in api.h gives each one its HTTP
 * status, problem type slug and title; this file turns a filled api_error
 * into the application/problem+json body (RFC 7807) a handler sends back.
 */
#include "api/api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct error_entry {
    int status;
    const char *slug;
    const char *title;
};

static const struct error_entry error_table[] = {
#define API_X_ENTRY(name, status, slug, title) [API_ERR_##name] = {status, slug, title},
    API_ERRORS(API_X_ENTRY)
#undef API_X_ENTRY
};

#define N_ERRORS (sizeof(error_table) / sizeof(error_table[0]))

/* An out-of-range kind is a bug in the caller; answer as an internal error, never crash. */
static const struct error_entry *entry(enum api_error_kind kind)
{
    if ((unsigned)kind >= N_ERRORS)
        return &error_table[API_ERR_INTERNAL];
    return &error_table[kind];
}

int api_error_status(enum api_error_kind kind)
{
    return entry(kind)->status;
}

const char *api_error_title(enum api_error_kind kind)
{
    return entry(kind)->title;
}

int api_fail(struct api_error *err, enum api_error_kind kind, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return -1;
    err->kind = kind;
    va_start(ap, fmt);
    /* A detail longer than the buffer is cut, never overflowed: it is for humans. */
    vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * vsnprintf may cut a detail inside a multi-byte UTF-8 sequence, which
 * jansson refuses; drop up to three trailing bytes before giving up on it.
 */
static json_t *detail_string(const char *detail)
{
    size_t len = strnlen(detail, sizeof(((struct api_error *)0)->detail));

    for (size_t cut = 0; cut < 4 && cut <= len; cut++) {
        json_t *s = json_stringn(detail, len - cut);
        if (s)
            return s;
    }
    return json_string("");
}

char *api_problem_json(const struct api_error *err)
{
    const struct error_entry *e = entry(err->kind);
    char type[128];
    json_t *obj;
    char *text;

    snprintf(type, sizeof(type), "https://vmmd.dev/problems/%s", e->slug);
    obj = json_pack("{s:s, s:s, s:i, s:o}", "type", type, "title", e->title, "status", e->status,
                    "detail", detail_string(err->detail));
    if (!obj)
        return NULL;
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return text;
}
