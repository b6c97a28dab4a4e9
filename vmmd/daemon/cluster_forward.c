/*
 * A request for a VM that lives on another member goes to that member, and
 * its answer (status, type, body) comes back as if this member had given
 * it. Members speak to each other over TLS with the cluster's secret as the
 * bearer token, checking the peer's public-key pin from its member record
 * (members' certificates are self-signed by default, so a CA proves
 * nothing). A forwarded request says so (Vmmd-Forwarded-By): the receiver
 * answers it itself and never forwards it again. libcurl runs on the thread
 * pool; the request stays suspended meanwhile.
 */
#include "cluster_forward.h"
#include "cluster.h"
#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FORWARD_TIMEOUT_S 60
#define ANSWER_MAX        (64u << 20)

struct forward {
    uv_work_t work;
    struct vmmd_daemon *d;
    struct http_request *req;
    bool create; /* POST /v1/vms: the new VM is known here at once, not a poll later */
    long timeout_ms;
    /* a fetch (cluster_fetch): its callback, instead of answering a request */
    cluster_fetch_fn fetched;
    void *ctx;
    char method[16];
    struct cluster_peer peer;
    char *body;
    size_t body_len;
    char content_type[128];
    /* the answer */
    long status;
    char *answer, answer_type[128], location[512];
    size_t answer_len;
    char error[CURL_ERROR_SIZE + 128];
};

static size_t collect(char *data, size_t size, size_t n, void *userp)
{
    struct forward *f = userp;
    size_t len = size * n;
    char *grown;

    if (f->answer_len + len > ANSWER_MAX || !(grown = realloc(f->answer, f->answer_len + len)))
        return 0;
    memcpy(grown + f->answer_len, data, len);
    f->answer = grown;
    f->answer_len += len;
    return len;
}

/* The answer's Location (a create's), passed on. */
static size_t header_line(char *data, size_t size, size_t n, void *userp)
{
    struct forward *f = userp;
    size_t len = size * n;

    if (len > 10 && strncasecmp(data, "Location:", 9) == 0 && len - 9 < sizeof(f->location)) {
        size_t start = 9 + strspn(data + 9, " \t"), end = len;
        while (end > start && (data[end - 1] == '\r' || data[end - 1] == '\n'))
            end--;
        snprintf(f->location, sizeof(f->location), "%.*s", (int)(end - start), data + start);
    }
    return len;
}

int cluster_peer_init(struct cluster *c, const char *member, const char *path,
                      struct cluster_peer *out)
{
    const char *url, *pin, *secret = cluster_secret(c);
    size_t len;

    *out = (struct cluster_peer){0};
    if (!cluster_member_address(c, member, &url, &pin))
        return -EHOSTUNREACH;
    len = strlen(url) + strlen(path) + 1;
    if ((out->url = malloc(len)))
        snprintf(out->url, len, "%s%s", url, path);
    out->pin = pin ? strdup(pin) : NULL;
    out->from = strdup(cluster_member_name(c));
    len = strlen(secret) + 32;
    if ((out->auth = malloc(len)))
        snprintf(out->auth, len, "Authorization: Bearer %s", secret);
    if (!out->url || (pin && !out->pin) || !out->from || !out->auth) {
        cluster_peer_clear(out);
        return -ENOMEM;
    }
    return 0;
}

void cluster_peer_clear(struct cluster_peer *p)
{
    free(p->url);
    free(p->pin);
    free(p->auth);
    free(p->from);
    *p = (struct cluster_peer){0};
}

CURL *cluster_peer_easy(const struct cluster_peer *p, struct curl_slist **headers, char *errbuf)
{
    char line[256];
    CURL *c = curl_easy_init();
    struct curl_slist *one;

    *headers = NULL;
    if (!c)
        return NULL;
    snprintf(line, sizeof(line), "Vmmd-Forwarded-By: %s", p->from);
    if (!(one = curl_slist_append(NULL, p->auth)) || !(*headers = curl_slist_append(one, line))) {
        curl_slist_free_all(one);
        curl_easy_cleanup(c);
        return NULL;
    }
    curl_easy_setopt(c, CURLOPT_URL, p->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (p->pin) {
        /* The pin is the proof of identity; the self-signed chain proves nothing. */
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, p->pin);
    }
    return c;
}

static void forward_work(uv_work_t *w)
{
    struct forward *f = w->data;
    struct curl_slist *h = NULL;
    char line[256], errbuf[CURL_ERROR_SIZE] = "";
    const char *ctype = NULL;
    CURL *c = cluster_peer_easy(&f->peer, &h, errbuf);
    CURLcode rc;

    if (!c) {
        snprintf(f->error, sizeof(f->error), "out of memory");
        return;
    }
    if (f->content_type[0]) {
        snprintf(line, sizeof(line), "Content-Type: %s", f->content_type);
        h = curl_slist_append(h, line);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, f->method);
    if (strcmp(f->method, "GET") && strcmp(f->method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, f->body ? f->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)f->body_len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_line);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, f->timeout_ms);
    rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        snprintf(f->error, sizeof(f->error), "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype);
        snprintf(f->answer_type, sizeof(f->answer_type), "%s", ctype ? ctype : "text/plain");
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void forward_free(struct forward *f)
{
    cluster_peer_clear(&f->peer);
    free(f->body);
    free(f->answer);
    free(f);
}

static void forward_done(uv_work_t *w, int status)
{
    struct forward *f = w->data;
    bool failed = status || f->error[0] || f->status < 100 || f->status > 599;

    if (f->fetched)
        f->fetched(f->ctx, failed ? 0 : (unsigned)f->status, f->answer ? f->answer : "",
                   f->answer_len, f->error[0] ? f->error : "no HTTP answer");
    else if (failed)
        http_respond_error(f->req, API_ERR_BAD_GATEWAY, "the VM's member did not answer: %s",
                           f->error[0] ? f->error : "no HTTP answer");
    else {
        json_t *vm = f->create && f->status == 201 && f->d->cluster
                         ? json_loadb(f->answer ? f->answer : "", f->answer_len, 0, NULL)
                         : NULL;
        if (vm)
            cluster_note_vm(f->d->cluster, vm);
        json_decref(vm);
        http_respond_bytes(f->req, (unsigned)f->status, f->answer_type, f->answer ? f->answer : "",
                           f->answer_len);
        if (f->location[0])
            http_add_header(f->req, "Location", f->location);
    }
    forward_free(f);
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    struct forward *f = cls;
    char *k, *v, *grown;
    size_t len;

    (void)kind;
    k = curl_easy_escape(NULL, key, 0);
    v = value ? curl_easy_escape(NULL, value, 0) : NULL;
    len = strlen(f->peer.url) + (k ? strlen(k) : 0) + (v ? strlen(v) : 0) + 3;
    grown = k ? realloc(f->peer.url, len) : NULL;
    if (grown) {
        f->peer.url = grown;
        snprintf(grown + strlen(grown), len - strlen(grown), "%s%s%s%s",
                 strchr(grown, '?') ? "&" : "?", k, v ? "=" : "", v ? v : "");
    }
    curl_free(k);
    curl_free(v);
    return grown ? MHD_YES : MHD_NO;
}

bool cluster_forwarded(struct http_request *req)
{
    return http_header(req, "Vmmd-Forwarded-By") != NULL;
}

/* A call to member's path: -EHOSTUNREACH (offline, no address) or -ENOMEM, else 0 with *out. */
static int forward_new(struct vmmd_daemon *d, const char *member, const char *path,
                       struct forward **out)
{
    struct forward *f = calloc(1, sizeof(*f));
    int rc;

    if (!f)
        return -ENOMEM;
    if ((rc = cluster_peer_init(d->cluster, member, path, &f->peer))) {
        free(f);
        return rc;
    }
    f->work.data = f;
    f->d = d;
    f->timeout_ms = FORWARD_TIMEOUT_S * 1000L;
    *out = f;
    return 0;
}

int cluster_forward(struct vmmd_daemon *d, struct http_request *req, const char *member,
                    const char *path, const char *body, size_t body_len)
{
    struct forward *f = NULL;
    const char *ctype = http_header(req, "Content-Type");
    int rc = forward_new(d, member, path, &f);

    if (rc == -EHOSTUNREACH) {
        http_respond_error(req, API_ERR_UNAVAILABLE,
                           "member %s is offline or advertises no address (--advertise): "
                           "its VMs cannot be reached now",
                           member);
        return rc;
    }
    if (rc)
        goto oom;
    f->req = req;
    f->create = strcmp(req->method, "POST") == 0 && strcmp(path, "/v1/vms") == 0;
    snprintf(f->method, sizeof(f->method), "%s", req->method);
    if (body_len && (f->body = malloc(body_len)))
        memcpy(f->body, body, body_len);
    f->body_len = body_len;
    if (ctype)
        snprintf(f->content_type, sizeof(f->content_type), "%s", ctype);
    if ((body_len && !f->body) ||
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_arg, f) < 0)
        goto oom;
    if (uv_queue_work(d->loop, &f->work, forward_work, forward_done))
        goto oom;
    log_debug("cluster: %s %s forwarded to %s", req->method, path, member);
    http_suspend(req);
    return 0;
oom:
    if (f)
        forward_free(f);
    http_respond_error(req, API_ERR_INTERNAL, "out of memory");
    return -ENOMEM;
}

int cluster_fetch(struct vmmd_daemon *d, const char *member, const char *path, long timeout_ms,
                  cluster_fetch_fn done, void *ctx)
{
    struct forward *f = NULL;
    int rc = forward_new(d, member, path, &f);

    if (rc)
        return rc;
    snprintf(f->method, sizeof(f->method), "GET");
    f->timeout_ms = timeout_ms;
    f->fetched = done;
    f->ctx = ctx;
    if (uv_queue_work(d->loop, &f->work, forward_work, forward_done)) {
        forward_free(f);
        return -ENOMEM;
    }
    return 0;
}
