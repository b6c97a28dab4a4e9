/*
 * An etcd v3 client for the daemon's libuv loop: the HTTP/JSON gateway
 * (/v3/kv/..., /v3/lease/...) through libcurl's multi-socket interface, so a
 * request never blocks the loop. Keys and values are bytes on the wire
 * (base64 in the gateway's JSON); here they are C strings.
 *
 * Several endpoints: a request that cannot reach one (refused, timed out, an
 * etcd error that says it has no leader) is tried on the next, and the one
 * that answered is tried first from then on. A request gives up after every
 * endpoint failed once; its callback then gets rc < 0.
 */
#ifndef VMMD_ETCD_H
#define VMMD_ETCD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define ETCD_MAX_ENDPOINTS 8

struct etcd;

struct etcd_kv {
    char *key, *value;
    int64_t create_revision, mod_revision, lease;
};

struct etcd_reply {
    int rc;              /* 0; -EHOSTUNREACH every endpoint failed; -EPROTO an answer not
                            understood; -EIO etcd refused the request; -ECANCELED client closed */
    const char *error;   /* what went wrong when rc < 0 */
    int64_t revision;    /* the store's revision the answer is from */
    bool succeeded;      /* a transaction's compares held */
    struct etcd_kv *kvs; /* a range's keys (and a transaction's first range), in key order */
    size_t nkvs;
    int64_t lease_id, ttl; /* lease grant and keep-alive; ttl 0: the lease is gone */
};

typedef void (*etcd_done_fn)(void *arg, const struct etcd_reply *reply);

/* endpoints: comma-separated URLs (http://host:port); timeout_ms bounds each attempt. */
struct etcd *etcd_new(uv_loop_t *loop, const char *endpoints, unsigned timeout_ms, char *err,
                      size_t errlen);
/* Cancels what is in flight (callbacks get -ECANCELED) and frees the client. */
void etcd_free(struct etcd *e);

/* Each returns 0 with the callback to come, or -errno (no callback) when it cannot start. */
int etcd_range(struct etcd *e, const char *key, bool prefix, etcd_done_fn fn, void *arg);
int etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease, etcd_done_fn fn,
             void *arg);
int etcd_delete(struct etcd *e, const char *key, bool prefix, etcd_done_fn fn, void *arg);
int etcd_lease_grant(struct etcd *e, int64_t ttl_s, etcd_done_fn fn, void *arg);
int etcd_lease_keepalive(struct etcd *e, int64_t lease, etcd_done_fn fn, void *arg);
int etcd_lease_revoke(struct etcd *e, int64_t lease, etcd_done_fn fn, void *arg);

/*
 * A transaction: if every compare holds, the success operations, else the
 * failure ones. The arrays are built with the helpers below and stolen.
 */
int etcd_txn(struct etcd *e, json_t *compare, json_t *success, json_t *failure, etcd_done_fn fn,
             void *arg);
/* key does not exist (its create revision is 0) */
json_t *etcd_cmp_absent(const char *key);
/* key exists (its version is above 0) */
json_t *etcd_cmp_present(const char *key);
/* key was last written at revision rev (0: it does not exist) */
json_t *etcd_cmp_mod(const char *key, int64_t rev);
/* no key starting with prefix was written after revision rev (a new one neither) */
json_t *etcd_cmp_unchanged(const char *prefix, int64_t rev);
/* key is attached to lease */
json_t *etcd_cmp_lease(const char *key, int64_t lease);
/* key's value is value */
json_t *etcd_cmp_value(const char *key, const char *value);
json_t *etcd_op_put(const char *key, const char *value, int64_t lease);
json_t *etcd_op_delete(const char *key, bool prefix);
json_t *etcd_op_range(const char *key, bool prefix);

/* Requests answered and failed since the start, for /metrics. */
void etcd_counts(const struct etcd *e, uint64_t *ok, uint64_t *failed);

/* base64 (RFC 4648, padded) of len bytes into a new string; NULL when out of memory. */
char *etcd_base64(const void *data, size_t len);
/* The bytes of a base64 string, NUL-terminated, in a new buffer; NULL if malformed. */
char *etcd_unbase64(const char *text, size_t *len);
/* The range end that covers every key starting with prefix ("" if none does). */
char *etcd_prefix_end(const char *prefix);

#endif
