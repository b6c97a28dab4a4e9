/*
 * etcd v3 over its HTTP/JSON gateway, driven by libcurl's multi-socket
 * interface on the daemon's loop: curl tells which sockets to watch
 * (socket_cb: one uv_poll_t each) and when to call it back (timer_cb: one
 * uv_timer_t); the loop tells curl what became ready; finished transfers are
 * collected after each call. int64 fields come back as JSON strings (the
 * gateway's protobuf mapping), keys and values as base64.
 */
#include "etcd.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ANSWER     (64u << 20) /* a range of every VM of a large cluster fits */
#define ROUND_PAUSE_MS 200         /* before trying every endpoint again (an election is short) */

struct etcd {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    char *endpoints[ETCD_MAX_ENDPOINTS];
    unsigned nendpoints, preferred, timeout_ms;
    struct etcd_req *inflight;
    uint64_t ok, failed;
};

struct etcd_req {
    struct etcd_req *next, **pprev;
    struct etcd *e;
    CURL *easy;
    struct curl_slist *headers;
    char *path, *body, *answer;
    size_t answer_len;
    bool too_big;
    unsigned endpoint, tries;
    uint64_t started_ms;
    uv_timer_t pause; /* between rounds over the endpoints */
    char error[256];
    etcd_done_fn fn;
    void *arg;
};

struct etcd_sock {
    uv_poll_t poll;
    struct etcd *e;
    curl_socket_t fd;
};

/* ---- base64 and keys ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_base64(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < len ? p[i + 2] : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? b64[v & 63] : '=';
    }
    *o = 0;
    return out;
}

char *etcd_unbase64(const char *text, size_t *len)
{
    size_t n = strlen(text), k = 0;
    char *out;

    if (n % 4)
        return NULL;
    out = malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        unsigned pad = 0;
        for (unsigned j = 0; j < 4; j++) {
            const char *c = text[i + j] == '=' ? NULL : strchr(b64, text[i + j]);
            if (text[i + j] == '=' && i + 4 == n && j >= 2) {
                pad++;
            } else if (!c || !text[i + j] || pad) {
                free(out);
                return NULL;
            }
            v = v << 6 | (c ? (uint32_t)(c - b64) : 0);
        }
        out[k++] = (char)(v >> 16);
        if (pad < 2)
            out[k++] = (char)(v >> 8);
        if (pad < 1)
            out[k++] = (char)v;
    }
    out[k] = 0;
    if (len)
        *len = k;
    return out;
}

char *etcd_prefix_end(const char *prefix)
{
    size_t n = strlen(prefix);
    char *end = strdup(prefix);

    /* The key after every key with this prefix: the last byte below 0xff, plus one. */
    while (end && n > 0) {
        if ((unsigned char)end[n - 1] < 0xff) {
            end[n - 1]++;
            end[n] = 0;
            return end;
        }
        end[--n] = 0;
    }
    return end; /* "": to the end of the key space */
}

/* {"key": b64(key)} plus range_end for a prefix. */
static json_t *key_object(const char *key, bool prefix)
{
    char *k = etcd_base64(key, strlen(key)), *end = NULL, *e64 = NULL;
    json_t *o = json_object();

    if (prefix) {
        end = etcd_prefix_end(key);
        e64 = end ? etcd_base64(end, strlen(end)) : NULL;
    }
    if (!k || !o || (prefix && !e64)) {
        json_decref(o);
        o = NULL;
    } else {
        json_object_set_new(o, "key", json_string(k));
        if (prefix)
            json_object_set_new(o, "range_end", json_string(*end ? e64 : "AA=="));
    }
    free(k);
    free(end);
    free(e64);
    return o;
}

static json_t *with_value(json_t *o, const char *value, int64_t lease)
{
    char *v = etcd_base64(value, strlen(value));

    if (!o || !v) {
        json_decref(o);
        free(v);
        return NULL;
    }
    json_object_set_new(o, "value", json_string(v));
    if (lease)
        json_object_set_new(o, "lease", json_integer(lease));
    free(v);
    return o;
}

/* {"key", "result", "target", field: v}, the gateway's Compare; v stolen. */
static json_t *compare_keys(const char *key, bool prefix, const char *result,
                            const char *target, const char *field, json_t *v)
{
    json_t *o = key_object(key, prefix);

    if (!o || !v) {
        json_decref(o);
        json_decref(v);
        return NULL;
    }
    json_object_set_new(o, "result", json_string(result));
    json_object_set_new(o, "target", json_string(target));
    json_object_set_new(o, field, v);
    return o;
}

static json_t *compare(const char *key, const char *result, const char *target, const char *field,
                       json_t *v)
{
    return compare_keys(key, false, result, target, field, v);
}

json_t *etcd_cmp_unchanged(const char *prefix, int64_t rev)
{
    return compare_keys(prefix, true, "LESS", "MOD", "mod_revision", json_integer(rev + 1));
}

json_t *etcd_cmp_absent(const char *key)
{
    return compare(key, "EQUAL", "CREATE", "create_revision", json_integer(0));
}

json_t *etcd_cmp_present(const char *key)
{
    return compare(key, "GREATER", "VERSION", "version", json_integer(0));
}

json_t *etcd_cmp_mod(const char *key, int64_t rev)
{
    return compare(key, "EQUAL", "MOD", "mod_revision", json_integer(rev));
}

json_t *etcd_cmp_lease(const char *key, int64_t lease)
{
    return compare(key, "EQUAL", "LEASE", "lease", json_integer(lease));
}

json_t *etcd_cmp_value(const char *key, const char *value)
{
    char *v = etcd_base64(value, strlen(value));
    json_t *o = compare(key, "EQUAL", "VALUE", "value", v ? json_string(v) : NULL);

    free(v);
    return o;
}

json_t *etcd_op_put(const char *key, const char *value, int64_t lease)
{
    json_t *o = with_value(key_object(key, false), value, lease);
    return o ? json_pack("{s:o}", "request_put", o) : NULL;
}

json_t *etcd_op_delete(const char *key, bool prefix)
{
    json_t *o = key_object(key, prefix);
    return o ? json_pack("{s:o}", "request_delete_range", o) : NULL;
}

json_t *etcd_op_range(const char *key, bool prefix)
{
    json_t *o = key_object(key, prefix);
    return o ? json_pack("{s:o}", "request_range", o) : NULL;
}

/* ---- answers ---- */

/* An int64 the gateway sends as a string (or, for small ones, a number); 0 if absent. */
static int64_t int64_of(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);

    if (json_is_integer(v))
        return json_integer_value(v);
    return json_is_string(v) ? strtoll(json_string_value(v), NULL, 10) : 0;
}

static void free_kvs(struct etcd_kv *kvs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kvs[i].key);
        free(kvs[i].value);
    }
    free(kvs);
}

static int parse_kvs(json_t *arr, struct etcd_reply *r)
{
    size_t i;
    json_t *kv;

    if (!json_is_array(arr) || !json_array_size(arr))
        return 0;
    r->kvs = calloc(json_array_size(arr), sizeof(*r->kvs));
    if (!r->kvs)
        return -ENOMEM;
    json_array_foreach(arr, i, kv)
    {
        const char *k = json_string_value(json_object_get(kv, "key"));
        const char *v = json_string_value(json_object_get(kv, "value"));
        struct etcd_kv *out = &r->kvs[r->nkvs];
        if (!k)
            return -EPROTO;
        out->key = etcd_unbase64(k, NULL);
        out->value = etcd_unbase64(v ? v : "", NULL);
        r->nkvs++;
        if (!out->key || !out->value)
            return -EPROTO;
        out->create_revision = int64_of(kv, "create_revision");
        out->mod_revision = int64_of(kv, "mod_revision");
        out->lease = int64_of(kv, "lease");
    }
    return 0;
}

/* Fills r from a 200 answer; -EPROTO with r->error set if it is not one. */
static int parse_answer(json_t *root, struct etcd_reply *r)
{
    json_t *res = json_object_get(root, "result"); /* keep-alive wraps its answer */
    json_t *responses;

    if (json_is_object(res))
        root = res;
    if (!json_is_object(root))
        return -EPROTO;
    r->revision = int64_of(json_object_get(root, "header"), "revision");
    r->succeeded = json_is_true(json_object_get(root, "succeeded"));
    r->lease_id = int64_of(root, "ID");
    r->ttl = int64_of(root, "TTL");
    responses = json_object_get(root, "responses");
    if (json_is_array(responses)) {
        size_t i;
        json_t *one;
        json_array_foreach(responses, i, one)
        {
            json_t *range = json_object_get(one, "response_range");
            if (range)
                return parse_kvs(json_object_get(range, "kvs"), r);
        }
        return 0;
    }
    return parse_kvs(json_object_get(root, "kvs"), r);
}

/* ---- transfers ---- */

static size_t collect(char *data, size_t size, size_t n, void *userp)
{
    struct etcd_req *q = userp;
    size_t len = size * n;
    char *grown;

    if (q->answer_len + len > MAX_ANSWER) {
        q->too_big = true;
        return 0;
    }
    grown = realloc(q->answer, q->answer_len + len + 1);
    if (!grown)
        return 0;
    memcpy(grown + q->answer_len, data, len);
    q->answer = grown;
    q->answer_len += len;
    q->answer[q->answer_len] = 0;
    return len;
}

static int start_attempt(struct etcd_req *q)
{
    struct etcd *e = q->e;
    char url[512];

    snprintf(url, sizeof(url), "%s%s", e->endpoints[q->endpoint], q->path);
    free(q->answer);
    q->answer = NULL;
    q->answer_len = 0;
    q->easy = curl_easy_init();
    if (!q->easy)
        return -ENOMEM;
    curl_easy_setopt(q->easy, CURLOPT_URL, url);
    curl_easy_setopt(q->easy, CURLOPT_HTTPHEADER, q->headers);
    curl_easy_setopt(q->easy, CURLOPT_POSTFIELDS, q->body);
    curl_easy_setopt(q->easy, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(q->easy, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(q->easy, CURLOPT_PRIVATE, q);
    curl_easy_setopt(q->easy, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
    curl_easy_setopt(q->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
    curl_easy_setopt(q->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(q->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (curl_multi_add_handle(e->multi, q->easy) != CURLM_OK) {
        curl_easy_cleanup(q->easy);
        q->easy = NULL;
        return -ENOMEM;
    }
    return 0;
}

static void req_closed(uv_handle_t *h)
{
    free(h->data);
}

static void req_free(struct etcd_req *q)
{
    if (q->easy) {
        curl_multi_remove_handle(q->e->multi, q->easy);
        curl_easy_cleanup(q->easy);
    }
    curl_slist_free_all(q->headers);
    free(q->path);
    free(q->body);
    free(q->answer);
    uv_close((uv_handle_t *)&q->pause, req_closed);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void finish(struct etcd_req *q, struct etcd_reply *r)
{
    struct etcd *e = q->e;

    *q->pprev = q->next;
    if (q->next)
        q->next->pprev = q->pprev;
    if (r->rc)
        e->failed++;
    else
        e->ok++;
    if (q->fn)
        q->fn(q->arg, r);
    free_kvs(r->kvs, r->nkvs);
    req_free(q);
}

static void finish(struct etcd_req *q, struct etcd_reply *r);

static void next_round(uv_timer_t *t)
{
    struct etcd_req *q = t->data;
    struct etcd_reply r = {.rc = -ENOMEM, .error = "out of memory"};

    if (start_attempt(q))
        finish(q, &r);
}

/* A finished attempt: the answer, an etcd refusal, or the next endpoint. */
static void attempt_done(struct etcd_req *q, CURLcode code)
{
    struct etcd *e = q->e;
    struct etcd_reply r = {0};
    long status = 0;
    json_t *root = NULL;
    bool retry;

    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(e->multi, q->easy);
    curl_easy_cleanup(q->easy);
    q->easy = NULL;
    if (code == CURLE_OK && q->answer)
        root = json_loadb(q->answer, q->answer_len, 0, NULL);
    if (code != CURLE_OK) {
        snprintf(q->error, sizeof(q->error), "%s: %s", e->endpoints[q->endpoint],
                 q->too_big ? "answer too large" : curl_easy_strerror(code));
        retry = !q->too_big;
    } else if (status != 200) {
        const char *msg = json_string_value(json_object_get(root, "message"));
        if (!msg)
            msg = json_string_value(json_object_get(root, "error"));
        snprintf(q->error, sizeof(q->error), "%s: HTTP %ld: %s", e->endpoints[q->endpoint], status,
                 msg ? msg : "no message");
        /* A member without a leader or quorum answers 5xx; another may have both. */
        retry = status >= 500;
    } else {
        r.rc = parse_answer(root, &r);
        if (r.rc)
            snprintf(q->error, sizeof(q->error), "%s: an answer that is not etcd's",
                     e->endpoints[q->endpoint]);
        json_decref(root);
        if (!r.rc)
            e->preferred = q->endpoint;
        r.error = r.rc ? q->error : NULL;
        finish(q, &r);
        return;
    }
    json_decref(root);
    /* The next endpoint; after a round that failed (refused, no leader: an election, which
     * takes a second or two), another round after a pause, while the request is younger
     * than three attempts' time. */
    if (retry && ++q->tries % e->nendpoints) {
        q->endpoint = (q->endpoint + 1) % e->nendpoints;
        if (start_attempt(q) == 0)
            return;
    } else if (retry && mono_ms() - q->started_ms + ROUND_PAUSE_MS < 3 * e->timeout_ms) {
        q->endpoint = (q->endpoint + 1) % e->nendpoints;
        uv_timer_start(&q->pause, next_round, ROUND_PAUSE_MS, 0);
        return;
    }
    r.rc = retry ? -EHOSTUNREACH : -EIO;
    r.error = q->error;
    finish(q, &r);
}

static void check_multi(struct etcd *e)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(e->multi, &left))) {
        struct etcd_req *q = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&q);
        if (q)
            attempt_done(q, msg->data.result);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct etcd_sock *s = h->data;
    int flags = 0, running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(s->e->multi, s->fd, flags, &running);
    check_multi(s->e);
}

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct etcd *e = userp;
    struct etcd_sock *s = socketp;
    int events = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            curl_multi_assign(e->multi, fd, NULL);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s || uv_poll_init_socket(e->loop, &s->poll, fd) < 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->e = e;
        s->poll.data = s;
        curl_multi_assign(e->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct etcd *e = t->data;
    int running;

    curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi(e);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct etcd *e = userp;

    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&e->timer);
    else /* 0 means at once: from the loop, not from inside curl */
        uv_timer_start(&e->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- client ---- */

struct etcd *etcd_new(uv_loop_t *loop, const char *endpoints, unsigned timeout_ms, char *err,
                      size_t errlen)
{
    struct etcd *e = calloc(1, sizeof(*e));
    char *list = strdup(endpoints ? endpoints : ""), *save = NULL;

    if (!e || !list) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t n = strlen(tok);
        while (n && tok[n - 1] == '/')
            tok[--n] = 0;
        if (strncmp(tok, "http://", 7) && strncmp(tok, "https://", 8)) {
            snprintf(err, errlen, "etcd endpoint '%.200s' is not an http:// or https:// URL", tok);
            goto fail;
        }
        if (e->nendpoints == ETCD_MAX_ENDPOINTS) {
            snprintf(err, errlen, "more than %d etcd endpoints", ETCD_MAX_ENDPOINTS);
            goto fail;
        }
        e->endpoints[e->nendpoints++] = strdup(tok);
    }
    if (!e->nendpoints) {
        snprintf(err, errlen, "no etcd endpoint given");
        goto fail;
    }
    e->loop = loop;
    e->timeout_ms = timeout_ms;
    e->multi = curl_multi_init();
    if (!e->multi) {
        snprintf(err, errlen, "curl_multi_init failed");
        goto fail;
    }
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
    uv_timer_init(loop, &e->timer);
    e->timer.data = e;
    free(list);
    return e;
fail:
    free(list);
    if (e)
        for (unsigned i = 0; i < e->nendpoints; i++)
            free(e->endpoints[i]);
    free(e);
    return NULL;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct etcd *e = h->data;

    curl_multi_cleanup(e->multi);
    for (unsigned i = 0; i < e->nendpoints; i++)
        free(e->endpoints[i]);
    free(e);
}

void etcd_free(struct etcd *e)
{
    if (!e)
        return;
    while (e->inflight) {
        struct etcd_reply r = {.rc = -ECANCELED, .error = "the etcd client closed"};
        finish(e->inflight, &r);
    }
    uv_timer_stop(&e->timer);
    uv_close((uv_handle_t *)&e->timer, on_timer_closed);
}

void etcd_counts(const struct etcd *e, uint64_t *ok, uint64_t *failed)
{
    *ok = e ? e->ok : 0;
    *failed = e ? e->failed : 0;
}

/* Sends body (stolen) to path; the callback comes from the loop. */
static int submit(struct etcd *e, const char *path, json_t *body, etcd_done_fn fn, void *arg)
{
    struct etcd_req *q = body ? calloc(1, sizeof(*q)) : NULL;

    if (q) {
        q->e = e;
        q->fn = fn;
        q->arg = arg;
        q->endpoint = e->preferred;
        q->started_ms = mono_ms();
        uv_timer_init(e->loop, &q->pause);
        q->pause.data = q;
        q->path = strdup(path);
        q->body = json_dumps(body, JSON_COMPACT);
        q->headers = curl_slist_append(NULL, "Content-Type: application/json");
    }
    json_decref(body);
    if (!q || !q->path || !q->body || !q->headers || start_attempt(q)) {
        if (q)
            req_free(q);
        return -ENOMEM;
    }
    q->next = e->inflight;
    if (q->next)
        q->next->pprev = &q->next;
    q->pprev = &e->inflight;
    e->inflight = q;
    return 0;
}

int etcd_range(struct etcd *e, const char *key, bool prefix, etcd_done_fn fn, void *arg)
{
    return submit(e, "/v3/kv/range", key_object(key, prefix), fn, arg);
}

int etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease, etcd_done_fn fn,
             void *arg)
{
    return submit(e, "/v3/kv/put", with_value(key_object(key, false), value, lease), fn, arg);
}

int etcd_delete(struct etcd *e, const char *key, bool prefix, etcd_done_fn fn, void *arg)
{
    return submit(e, "/v3/kv/deleterange", key_object(key, prefix), fn, arg);
}

int etcd_lease_grant(struct etcd *e, int64_t ttl_s, etcd_done_fn fn, void *arg)
{
    return submit(e, "/v3/lease/grant", json_pack("{s:I}", "TTL", (json_int_t)ttl_s), fn, arg);
}

int etcd_lease_keepalive(struct etcd *e, int64_t lease, etcd_done_fn fn, void *arg)
{
    return submit(e, "/v3/lease/keepalive", json_pack("{s:I}", "ID", (json_int_t)lease), fn, arg);
}

int etcd_lease_revoke(struct etcd *e, int64_t lease, etcd_done_fn fn, void *arg)
{
    return submit(e, "/v3/lease/revoke", json_pack("{s:I}", "ID", (json_int_t)lease), fn, arg);
}

int etcd_txn(struct etcd *e, json_t *compare, json_t *success, json_t *failure, etcd_done_fn fn,
             void *arg)
{
    json_t *body = json_object();

    if (!body || !compare || !success) {
        json_decref(body);
        json_decref(compare);
        json_decref(success);
        json_decref(failure);
        return -ENOMEM;
    }
    json_object_set_new(body, "compare", compare);
    json_object_set_new(body, "success", success);
    if (failure)
        json_object_set_new(body, "failure", failure);
    return submit(e, "/v3/kv/txn", body, fn, arg);
}
