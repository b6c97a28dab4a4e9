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

/* The length of the well-formed UTF-8 sequence (RFC 3629) at s, or 0. */
static size_t utf8_sequence(const unsigned char *s)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4;
    else
        return 0;
    /* No overlong forms, no UTF-16 surrogates, nothing past U+10FFFF. */
    if (s[0] == 0xe0)
        lo = 0xa0;
    else if (s[0] == 0xed)
        hi = 0x9f;
    else if (s[0] == 0xf0)
        lo = 0x90;
    else if (s[0] == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/*
 * A detail often quotes what the client sent (a query value, a path), which
 * need not be UTF-8, and jansson refuses a string that is not: each byte
 * outside a well-formed sequence becomes the text \xHH, so the detail still
 * says what was wrong with which parameter. vsnprintf may also have cut a
 * long detail inside a character; its first bytes show the same way.
 */
static json_t *detail_string(const char *detail)
{
    const unsigned char *s = (const unsigned char *)detail;
    size_t len = strnlen(detail, sizeof(((struct api_error *)0)->detail)), o = 0;
    char out[sizeof(((struct api_error *)0)->detail) * 4];

    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence(s + i);
        if (n) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        } else {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", s[i++]);
        }
    }
    return json_stringn(out, o);
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
