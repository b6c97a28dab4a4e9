/* Requests for another member's VMs, sent to that member and answered from its answer. */
#ifndef VMMD_CLUSTER_FORWARD_H
#define VMMD_CLUSTER_FORWARD_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon.h"

/* Whether req came from another member (it is answered here, never forwarded again). */
bool cluster_forwarded(struct http_request *req);
/* Sends req's method, path (with req's query) and body to member; the answer comes later.
 * On failure req is answered here (503 member unreachable, 500) and -errno returned. */
int cluster_forward(struct vmmd_daemon *d, struct http_request *req, const char *member,
                    const char *path, const char *body, size_t body_len);

#endif
