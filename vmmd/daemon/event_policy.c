/* The slow event-stream client policy (see event_policy.h). */
#include "event_policy.h"

uint64_t event_client_lag(int64_t newest_id, int64_t sent_id, int64_t joined_id)
{
    int64_t from = sent_id > joined_id ? sent_id : joined_id;

    return newest_id > from ? (uint64_t)(newest_id - from) : 0;
}

bool event_client_should_drop(const struct event_lag_policy *p, uint64_t lag,
                              uint64_t stalled_ms)
{
    if (lag == 0)
        return false;
    return lag > p->max_lag || stalled_ms >= p->max_stall_ms;
}
