/* Requests for another member's VMs, sent to that member and answered from its answer. */
#ifndef VMMD_CLUSTER_FORWARD_H
#define VMMD_CLUSTER_FORWARD_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon.h"

/* Whether req came from another member (it is answered here, never forwarded again). */
bool cluster_forwarded(struct http_request *req);
/* Sends req's method, path (with req's query) and body to member; the answer comes later.
 * On failure req is answered here (503 member unreachable, 500) and -errno returned. */
int cluster_forward(struct vmmd_daemon *d, struct http_request *req, const char *member,
                    const char *path, const char *body, size_t body_len);

/* A GET of another member's path (the cluster's credentials; timeout_ms in all) on the thread
 * pool; done gets status 0 and error when no answer came. -EHOSTUNREACH: the member is offline
 * or has no address (no callback then). */
typedef void (*cluster_fetch_fn)(void *ctx, unsigned status, const char *body, size_t len,
                                 const char *error);
int cluster_fetch(struct vmmd_daemon *d, const char *member, const char *path, long timeout_ms,
                  cluster_fetch_fn done, void *ctx);

/* What a call to another member needs, in copies a thread may keep. */
struct cluster_peer {
    char *url;  /* the member's address and the path */
    char *pin;  /* its public-key pin; NULL for plain HTTP */
    char *auth; /* "Authorization: Bearer <the cluster's secret>" */
    char *from; /* this member's name (Vmmd-Forwarded-By) */
};
/* 0, -EHOSTUNREACH (member offline or without an address) or -ENOMEM (nothing to clear). */
struct cluster;
int cluster_peer_init(struct cluster *c, const char *member, const char *path,
                      struct cluster_peer *out);
void cluster_peer_clear(struct cluster_peer *p);
/* A libcurl handle that calls p->url as this member, checking the pin. *headers is freed by
 * the caller after the transfer (curl_slist_free_all); errbuf has CURL_ERROR_SIZE. */
CURL *cluster_peer_easy(const struct cluster_peer *p, struct curl_slist **headers, char *errbuf);

#endif
