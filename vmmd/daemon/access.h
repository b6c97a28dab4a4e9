/*
 * Who may ask, as pure functions the unit tests reach: the token compare,
 * which takes the same time wherever the first difference lies, and the
 * browser Origin policy of the console WebSocket, the event stream and
 * every other route.
 */
#ifndef VMMD_ACCESS_H
#define VMMD_ACCESS_H

#include <stdbool.h>

#include "common/options.h"

/* True when candidate is token. Its time depends on the lengths only, never on the contents. */
bool access_token_equal(const char *candidate, const char *token);

enum access_listener { ACCESS_UNIX, ACCESS_TCP_PLAIN, ACCESS_TCP_TLS };

/*
 * May a request with this Origin header (NULL: none) reach the API? No Origin
 * (curl, vmctl, any non-browser client) is allowed; otherwise the Origin must
 * be the daemon's own, the scheme of the listener with the Host header's
 * host[:port] (http or https on the Unix socket, which only a proxy can put
 * in front of a browser), or one of the allowed list, compared whole and
 * without regard to case. "null" (a sandboxed frame, a file: page) is the
 * daemon's own origin never.
 */
bool access_origin_allowed(const char *origin, const char *host, enum access_listener listener,
                           const struct vmmd_opt_list *allowed);

#endif
