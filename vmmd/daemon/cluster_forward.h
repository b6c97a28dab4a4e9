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

/* A libcurl handle that calls url as this member (from): auth is the "Authorization: Bearer"
 * line with the cluster's secret, pin the peer's public key (NULL: plain HTTP). *headers is
 * freed by the caller after the transfer (curl_slist_free_all); errbuf has CURL_ERROR_SIZE. */
CURL *cluster_peer_easy(const char *url, const char *pin, const char *auth, const char *from,
                        struct curl_slist **headers, char *errbuf);

#endif
