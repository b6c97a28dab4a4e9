/* Names, types and validators for the dashboard's static files (see static_file.h). */
#include "static_file.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool static_file_name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > STATIC_FILE_NAME_MAX || strstr(name, ".."))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
};

const char *static_file_type(const char *name)
{
    const char *dot = strrchr(name, '.');

    if (!dot)
        return NULL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

void static_file_etag(uint64_t size, int64_t mtime_ns, char out[STATIC_FILE_ETAG_LEN])
{
    snprintf(out, STATIC_FILE_ETAG_LEN, "\"%llx-%llx\"", (unsigned long long)size,
             (unsigned long long)mtime_ns);
}

bool static_file_etag_matches(const char *if_none_match, const char *etag)
{
    size_t n = strlen(etag);
    const char *p = if_none_match;

    if (!p)
        return false;
    /* A comma-separated list; W/ (weak) prefixes compare equal for GET (RFC 9110 13.1.2). */
    while (*p) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (strncmp(p, etag, n) == 0 && (p[n] == 0 || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
            return true;
        p += strcspn(p, ",");
    }
    return false;
}
