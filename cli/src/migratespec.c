/*
 * vmctl's migration specs and one-liners (see migratespec.h). As with the
 * other specs, a TARGET of the wrong shape is a usage error (exit 2) here;
 * whether the target daemon is there and agrees is the daemon's to say.
 */
#include "migratespec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool num(json_t *o, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

bool cli_migrate_target_is_unix(const char *target)
{
    return strncmp(target, "unix:", 5) == 0;
}

/* HOST[:PORT] after http:// or https://: a host, a port of digits (1..65535), no path. */
static const char *authority_problem(const char *s)
{
    const char *colon, *end = s + strlen(s);
    long port;
    char *stop;

    if (*s == '[') { /* [v6]:port */
        const char *close = strchr(s, ']');
        if (!close || close == s + 1)
            return "a bracketed IPv6 address wants [ADDRESS]";
        colon = close[1] == ':' ? close + 1 : NULL;
        if (!colon && close[1])
            return "after ] only :PORT may follow";
    } else {
        colon = strrchr(s, ':');
        if (colon == s || s == end)
            return "the host is empty";
    }
    if (strpbrk(s, "/?#@ "))
        return "it wants scheme://HOST[:PORT], without a path, user or spaces";
    if (!colon)
        return NULL;
    errno = 0;
    port = strtol(colon + 1, &stop, 10);
    if (!colon[1] || *stop || errno || port < 1 || port > 65535)
        return "the port must be a number from 1 to 65535";
    return NULL;
}

bool cli_migrate_target_valid(const char *target, const char **why)
{
    *why = NULL;
    if (cli_migrate_target_is_unix(target)) {
        if (!target[5])
            *why = "unix: wants the target daemon's socket, unix:/PATH";
        else if (target[5] != '/')
            *why = "unix: wants an absolute path (the daemon opens it, not vmctl)";
    } else if (!strncmp(target, "http://", 7)) {
        *why = authority_problem(target + 7);
    } else if (!strncmp(target, "https://", 8)) {
        *why = authority_problem(target + 8);
    } else {
        *why = "it wants unix:/PATH, http://HOST:PORT or https://HOST:PORT";
    }
    return *why == NULL;
}

json_t *cli_migrate_body(const char *target, const char *token, long max_downtime_ms,
                         long timeout_s, bool insecure)
{
    json_t *body = json_pack("{s:s}", "target", target);

    if (!body)
        return NULL;
    if (token)
        json_object_set_new(body, "token", json_string(token));
    if (max_downtime_ms >= 0)
        json_object_set_new(body, "max_downtime_ms", json_integer(max_downtime_ms));
    if (timeout_s >= 0)
        json_object_set_new(body, "timeout_s", json_integer(timeout_s));
    if (insecure)
        json_object_set_new(body, "insecure", json_true());
    return body;
}

char *cli_migrate_read_token(const char *path, const char **why)
{
    char buf[4096];
    size_t n;
    FILE *f = fopen(path, "r");

    *why = NULL;
    if (!f) {
        *why = strerror(errno);
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    if (n == 0) {
        *why = "the file holds no token";
        return NULL;
    }
    return strdup(buf);
}

void cli_migrate_progress_line(json_t *p, char *out, size_t size)
{
    double round = 0, left = 0, mbps;
    int n;

    num(p, "round", &round);
    num(p, "pages_left", &left);
    n = snprintf(out, size, "round %.0f: %.0f pages left", round, left);
    if (n >= 0 && (size_t)n < size && num(p, "throughput_mbps", &mbps))
        snprintf(out + n, size - (size_t)n, ", %.0f MB/s", mbps);
}

void cli_migrate_done_line(const char *vm, const char *target, json_t *ev, char *out, size_t size)
{
    char downtime[32] = "?", total[32] = "?", rounds[32] = "? rounds";
    double v;

    if (num(ev, "downtime_ms", &v))
        snprintf(downtime, sizeof(downtime), "%.1f ms", v);
    if (num(ev, "total_ms", &v))
        snprintf(total, sizeof(total), "%.1f s", v / 1000.0);
    if (num(ev, "rounds", &v))
        snprintf(rounds, sizeof(rounds), "%.0f round%s", v, v == 1 ? "" : "s");
    snprintf(out, size, "migrated %s to %s: downtime %s, total %s, %s", vm, target, downtime, total,
             rounds);
}

json_t *cli_migrate_final(json_t *started, const char *type, json_t *ev)
{
    json_t *m = started ? json_deep_copy(started) : json_object();
    bool done = !strcmp(type, "vm.migrated");
    static const struct {
        const char *from, *to;
    } figures[] = {
        {"rounds", "round"},
        {"bytes_sent", "bytes_sent"},
        {"downtime_ms", "downtime_ms"},
        {"total_ms", "elapsed_ms"},
    };

    if (!m)
        return NULL;
    json_object_set_new(m, "state", json_string(done ? "done" : "failed"));
    for (size_t i = 0; i < sizeof(figures) / sizeof(figures[0]); i++) {
        json_t *v = json_object_get(ev, figures[i].from);
        if (json_is_number(v))
            json_object_set(m, figures[i].to, v);
    }
    if (done) {
        json_object_set_new(m, "pages_left", json_integer(0));
        json_object_set_new(m, "error", json_null());
    } else {
        json_t *err = json_object_get(ev, "error");
        if (json_is_string(err))
            json_object_set(m, "error", err);
        else
            json_object_set_new(m, "error", json_string("no reason given"));
    }
    return m;
}
