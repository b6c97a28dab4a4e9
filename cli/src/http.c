/*
 * libcurl glue for vmctl. The daemon listens on a Unix socket by default
 * (CURLOPT_UNIX_SOCKET_PATH, with a dummy host in the URL) or on TCP, where
 * every request carries "Authorization: Bearer <token>". On https the
 * daemon's certificate is checked against --cacert (its self-signed one, or
 * the CA that signed it), or the system's CAs, or, with --tls-pin, only its
 * public key's hash: curl checks the pin during the handshake, before the
 * token is sent.
 */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct buffer {
    char *data;
    size_t len, cap;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    struct buffer *b = opaque;
    size_t n = size * nmemb;

    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return 0; /* makes curl fail with a write error */
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

void cli_http_unreachable(const struct cli_ctx *ctx, const char *why)
{
    if (ctx->url)
        fprintf(stderr, "vmctl: cannot reach vmmd at %s: %s\n", ctx->url, why);
    else
        fprintf(stderr, "vmctl: cannot reach vmmd on %s: %s\n", ctx->socket_path, why);
    if (ctx->url && strncmp(ctx->url, "https://", 8) == 0 &&
        (strstr(why, "certificate") || strstr(why, "pinned")))
        fprintf(stderr, "hint: trust the daemon's certificate with --cacert (its self-signed one "
                        "is <state-dir>/tls-cert.pem) or its key with --tls-pin\n");
    else if (ctx->url && strncmp(ctx->url, "http://", 7) == 0)
        fprintf(stderr, "hint: vmmd serves https:// on TCP unless it runs with --insecure-http\n");
    else
        fprintf(stderr, "hint: start the daemon with scripts/start.sh or `vmmd serve`, or point "
                        "vmctl at it with --socket/VMMD_SOCKET or --url/VMMD_URL\n");
}

void cli_http_set_tls(const struct cli_ctx *ctx, CURL *curl)
{
    if (ctx->cacert)
        curl_easy_setopt(curl, CURLOPT_CAINFO, ctx->cacert);
    if (ctx->tls_pin) {
        /* The pin is the trust: a self-signed certificate names no CA to chain to. */
        curl_easy_setopt(curl, CURLOPT_PINNEDPUBLICKEY, ctx->tls_pin);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

/* A configured handle for path, or NULL. headers is set for the caller to free. */
static CURL *make_handle(const struct cli_ctx *ctx, const char *method, const char *path,
                         struct curl_slist **headers)
{
    CURL *curl = curl_easy_init();
    char url[8192], auth[4200];

    *headers = NULL;
    if (!curl)
        return NULL;
    if (ctx->url) {
        size_t n = strlen(ctx->url);
        while (n > 0 && ctx->url[n - 1] == '/')
            n--;
        snprintf(url, sizeof(url), "%.*s%s", (int)n, ctx->url, path);
        cli_http_set_tls(ctx, curl);
    } else {
        snprintf(url, sizeof(url), "http://vmmd%s", path);
        curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, ctx->socket_path);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    if (ctx->token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ctx->token);
        *headers = curl_slist_append(*headers, auth);
    }
    *headers = curl_slist_append(*headers, "Accept: application/json, application/problem+json");
    return curl;
}

static int perform(const struct cli_ctx *ctx, CURL *curl, struct curl_slist *headers)
{
    CURLcode rc;

    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    rc = curl_easy_perform(curl);
    if (rc == CURLE_OK || rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_WRITE_ERROR)
        return rc == CURLE_OK ? 0 : (int)rc;
    cli_http_unreachable(ctx, curl_easy_strerror(rc));
    return -1;
}

int cli_http_request(const struct cli_ctx *ctx, const char *method, const char *path,
                     const char *json_body, struct cli_response *resp)
{
    struct curl_slist *headers;
    struct buffer b = {0};
    CURL *curl = make_handle(ctx, method, path, &headers);
    int rc;

    memset(resp, 0, sizeof(*resp));
    if (!curl) {
        fprintf(stderr, "vmctl: cannot initialise libcurl\n");
        return CLI_EXIT_UNREACHABLE;
    }
    if (json_body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(json_body));
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 120000L);
    rc = perform(ctx, curl, headers);
    if (rc == 0) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
        if (!b.data) {
            b.data = calloc(1, 1);
        }
        resp->body = b.data;
        resp->len = b.len;
    } else {
        if (rc > 0)
            cli_http_unreachable(ctx, curl_easy_strerror((CURLcode)rc));
        free(b.data);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return rc == 0 ? 0 : CLI_EXIT_UNREACHABLE;
}

struct upload {
    FILE *f;
    int64_t sent, size;
    void (*on_sent)(void *opaque, int64_t sent);
    void *opaque;
    int error; /* errno of a failed read */
};

static size_t on_upload_read(char *ptr, size_t size, size_t nitems, void *opaque)
{
    struct upload *u = opaque;
    size_t want = size * nitems, n;

    /* Never more than Content-Length said, whatever the file has grown to since. */
    if ((int64_t)want > u->size - u->sent)
        want = (size_t)(u->size - u->sent);
    n = want ? fread(ptr, 1, want, u->f) : 0;
    if (n == 0 && want && ferror(u->f)) {
        u->error = errno;
        return CURL_READFUNC_ABORT;
    }
    u->sent += (int64_t)n;
    if (u->on_sent)
        u->on_sent(u->opaque, u->sent);
    return n;
}

int cli_http_upload(const struct cli_ctx *ctx, const char *path, FILE *body, int64_t size,
                    void (*on_sent)(void *opaque, int64_t sent), void *opaque,
                    struct cli_response *resp)
{
    struct upload u = {.f = body, .size = size, .on_sent = on_sent, .opaque = opaque};
    struct curl_slist *headers;
    struct buffer b = {0};
    CURL *curl = make_handle(ctx, "POST", path, &headers);
    CURLcode rc;
    int ret = 0;

    memset(resp, 0, sizeof(*resp));
    if (!curl) {
        fprintf(stderr, "vmctl: cannot initialise libcurl\n");
        return CLI_EXIT_UNREACHABLE;
    }
    headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
    /*
     * Always ask first: the daemon refuses a name taken or a pool too small from the headers
     * (Content-Length), and then no byte of a large file is sent for nothing.
     */
    headers = curl_slist_append(headers, "Expect: 100-continue");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_upload_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &u);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
    /* curl's own 64 KiB reads: a bar that moves for small files too. */
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    /* No overall timeout (an image takes as long as it takes), but not a stalled one. */
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 300L);
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    if (u.error) {
        fprintf(stderr, "vmctl: cannot read the file to upload: %s\n", strerror(u.error));
        ret = CLI_EXIT_REFUSED;
    } else if (rc != CURLE_OK && resp->status < 400) {
        cli_http_unreachable(ctx, curl_easy_strerror(rc));
        ret = CLI_EXIT_UNREACHABLE;
    }
    if (ret == 0) {
        resp->body = b.data ? b.data : calloc(1, 1);
        resp->len = b.len;
    } else {
        free(b.data);
        resp->status = 0;
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return ret;
}

struct stream {
    int (*on_data)(void *opaque, const char *data, size_t len);
    void *opaque;
    long status;
    CURL *curl;
    struct buffer error; /* the body of an error response */
    size_t received;
    int stopped;
};

static size_t on_stream(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    struct stream *s = opaque;
    size_t n = size * nmemb;

    if (s->status == 0)
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
    s->received += n;
    if (s->status >= 400)
        return on_body(ptr, size, nmemb, &s->error);
    if (s->on_data(s->opaque, ptr, n)) {
        s->stopped = 1;
        return 0;
    }
    return n;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* The multi interface, so an idle stream can be ended after idle_ms. */
int cli_http_stream(const struct cli_ctx *ctx, const char *path,
                    int (*on_data)(void *opaque, const char *data, size_t len), void *opaque,
                    long timeout_ms, long idle_ms)
{
    struct curl_slist *headers;
    struct stream s = {.on_data = on_data, .opaque = opaque};
    CURL *curl = make_handle(ctx, "GET", path, &headers);
    CURLM *multi;
    CURLcode result = CURLE_OK;
    long long start = now_ms(), last = start;
    size_t seen = 0;
    int running = 1, ret = 0, done = 0;

    if (!curl) {
        fprintf(stderr, "vmctl: cannot initialise libcurl\n");
        return CLI_EXIT_UNREACHABLE;
    }
    s.curl = curl;
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    multi = curl_multi_init();
    curl_multi_add_handle(multi, curl);
    while (!done) {
        CURLMsg *msg;
        int left;

        curl_multi_perform(multi, &running);
        while ((msg = curl_multi_info_read(multi, &left)))
            if (msg->msg == CURLMSG_DONE) {
                result = msg->data.result;
                done = 1;
            }
        if (done || s.stopped)
            break;
        if (s.received != seen) {
            seen = s.received;
            last = now_ms();
        }
        if (timeout_ms > 0 && now_ms() - start >= timeout_ms)
            break;
        if (idle_ms > 0 && s.status > 0 && s.status < 400 && now_ms() - last >= idle_ms)
            break;
        curl_multi_poll(multi, NULL, 0, 50, NULL);
    }
    if (done && result != CURLE_OK && !s.stopped) {
        cli_http_unreachable(ctx, curl_easy_strerror(result));
        ret = CLI_EXIT_UNREACHABLE;
    } else {
        struct cli_response r = {.body = s.error.data, .len = s.error.len};
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
        if (r.status >= 400)
            ret = cli_http_check(&r);
    }
    curl_multi_remove_handle(multi, curl);
    curl_multi_cleanup(multi);
    free(s.error.data);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return ret;
}

int cli_http_check(const struct cli_response *resp)
{
    json_t *root, *detail;

    if (resp->status < 400)
        return 0;
    root = resp->body ? json_loads(resp->body, 0, NULL) : NULL;
    detail = root ? json_object_get(root, "detail") : NULL;
    if (json_is_string(detail))
        fprintf(stderr, "vmctl: %s\n", json_string_value(detail));
    else if (resp->status == 401)
        fprintf(stderr, "vmctl: the daemon wants a token (HTTP 401); pass --token-file\n");
    else
        fprintf(stderr, "vmctl: the daemon answered HTTP %ld\n", resp->status);
    json_decref(root);
    return CLI_EXIT_REFUSED;
}

void cli_response_free(struct cli_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}

char *cli_http_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1), *p = out;

    if (!out)
        return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}
