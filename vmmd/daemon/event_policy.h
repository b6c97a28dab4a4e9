/*
 * When the daemon stops serving an event stream client that cannot keep up.
 * Streams pull events from SQLite, so a slow reader costs no memory; but a
 * client far behind is better told so at once than fed a stale view: it is
 * disconnected, and its EventSource reconnects with Last-Event-ID and
 * replays what it missed from the store, losing nothing.
 */
#ifndef VMMD_EVENT_POLICY_H
#define VMMD_EVENT_POLICY_H

#include <stdbool.h>
#include <stdint.h>

struct event_lag_policy {
    uint64_t max_lag;      /* live events not yet handed to the client */
    uint64_t max_stall_ms; /* time it may take nothing while it has events waiting */
};

#define EVENT_STALL_MS_DEFAULT 30000

/*
 * The client's lag: events committed after the last one it was handed and
 * after it connected. The history it asked to replay (?since=) does not
 * count: a client catching up fast is not a slow one.
 */
uint64_t event_client_lag(int64_t newest_id, int64_t sent_id, int64_t joined_id);
/* stalled_ms: since it last took data or last fell behind, whichever is later. */
bool event_client_should_drop(const struct event_lag_policy *p, uint64_t lag,
                              uint64_t stalled_ms);

#endif
