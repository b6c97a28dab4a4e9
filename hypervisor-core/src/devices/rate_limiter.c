/*
 * Token buckets for per-device I/O limits (see rate_limiter.h). Refill is
 * exact: the remainder of elapsed time x rate that did not make a whole
 * token is kept, so a bucket refilled every microsecond gains as much as
 * one refilled once a second.
 */
#include "devices/rate_limiter.h"

#include <errno.h>
#include <sys/timerfd.h>
#include <time.h>

#define NS_PER_S 1000000000ull

typedef unsigned __int128 u128;

void token_bucket_config(struct token_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns)
{
    bool was_unlimited = b->rate == 0;
    uint64_t capacity = burst ? burst : rate; /* default burst: one second's worth */

    if (!was_unlimited)
        token_bucket_wait(b, 0, now_ns); /* what the old rate earned up to now */
    b->rate = rate;
    b->capacity = capacity;
    if (was_unlimited || b->tokens > (int64_t)capacity)
        b->tokens = (int64_t)capacity;
    if (was_unlimited)
        b->frac = 0;
    b->last_ns = now_ns;
}

static void refill(struct token_bucket *b, uint64_t now_ns)
{
    u128 earned;

    if (now_ns <= b->last_ns)
        return;
    earned = (u128)(now_ns - b->last_ns) * b->rate + b->frac;
    b->last_ns = now_ns;
    if (b->tokens >= (int64_t)b->capacity) {
        b->frac = 0;
        return;
    }
    /* Enough to fill the bucket from its deepest debt caps the sum: no overflow below. */
    if (earned / NS_PER_S >= (u128)((int64_t)b->capacity - b->tokens)) {
        b->tokens = (int64_t)b->capacity;
        b->frac = 0;
        return;
    }
    b->tokens += (int64_t)(earned / NS_PER_S);
    b->frac = (uint64_t)(earned % NS_PER_S);
}

uint64_t token_bucket_wait(struct token_bucket *b, uint64_t cost, uint64_t now_ns)
{
    uint64_t need;
    u128 missing;

    if (b->rate == 0)
        return 0;
    refill(b, now_ns);
    /* A request bigger than the bucket passes when the bucket is full. */
    need = cost < b->capacity ? cost : b->capacity;
    if (b->tokens >= (int64_t)need)
        return 0;
    missing = (u128)((int64_t)need - b->tokens) * NS_PER_S - b->frac;
    return (uint64_t)((missing + b->rate - 1) / b->rate);
}

void token_bucket_take(struct token_bucket *b, uint64_t cost)
{
    if (b->rate)
        b->tokens -= (int64_t)cost;
}

void rate_limiter_init(struct rate_limiter *rl, const struct hv_io_limits *limits, uint64_t now_ns)
{
    *rl = (struct rate_limiter){0};
    pthread_mutex_init(&rl->lock, NULL);
    if (limits)
        rate_limiter_set(rl, limits, now_ns);
}

void rate_limiter_destroy(struct rate_limiter *rl)
{
    pthread_mutex_destroy(&rl->lock);
}

void rate_limiter_set(struct rate_limiter *rl, const struct hv_io_limits *limits, uint64_t now_ns)
{
    pthread_mutex_lock(&rl->lock);
    token_bucket_config(&rl->bytes, limits->bytes_per_s, limits->burst_bytes, now_ns);
    token_bucket_config(&rl->ops, limits->ops_per_s, limits->burst_ops, now_ns);
    pthread_mutex_unlock(&rl->lock);
}

void rate_limiter_get(struct rate_limiter *rl, struct hv_io_limits *out)
{
    pthread_mutex_lock(&rl->lock);
    *out = (struct hv_io_limits){.bytes_per_s = rl->bytes.rate,
                                 .ops_per_s = rl->ops.rate,
                                 .burst_bytes = rl->bytes.capacity,
                                 .burst_ops = rl->ops.capacity};
    pthread_mutex_unlock(&rl->lock);
}

uint64_t rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t ops,
                              uint64_t now_ns)
{
    uint64_t wb, wo, wait;

    pthread_mutex_lock(&rl->lock);
    wb = token_bucket_wait(&rl->bytes, bytes, now_ns);
    wo = token_bucket_wait(&rl->ops, ops, now_ns);
    wait = wb > wo ? wb : wo;
    if (wait == 0) {
        token_bucket_take(&rl->bytes, bytes);
        token_bucket_take(&rl->ops, ops);
        if (rl->throttled) {
            rl->throttled = false;
            rl->throttled_ns += now_ns - rl->throttle_start_ns;
        }
    } else if (!rl->throttled) {
        rl->throttled = true;
        rl->throttle_start_ns = now_ns;
        rl->throttled_events++;
    }
    pthread_mutex_unlock(&rl->lock);
    return wait;
}

void rate_limiter_charge(struct rate_limiter *rl, uint64_t bytes, uint64_t ops)
{
    pthread_mutex_lock(&rl->lock);
    token_bucket_take(&rl->bytes, bytes);
    token_bucket_take(&rl->ops, ops);
    pthread_mutex_unlock(&rl->lock);
}

static void give_back(struct token_bucket *b, uint64_t n)
{
    if (b->rate == 0)
        return;
    b->tokens += (int64_t)n;
    if (b->tokens > (int64_t)b->capacity)
        b->tokens = (int64_t)b->capacity;
}

void rate_limiter_refund(struct rate_limiter *rl, uint64_t bytes, uint64_t ops)
{
    pthread_mutex_lock(&rl->lock);
    give_back(&rl->bytes, bytes);
    give_back(&rl->ops, ops);
    pthread_mutex_unlock(&rl->lock);
}

void rate_limiter_stats(struct rate_limiter *rl, uint64_t now_ns, uint64_t *throttled_ns,
                        uint64_t *events)
{
    pthread_mutex_lock(&rl->lock);
    *throttled_ns = rl->throttled_ns;
    if (rl->throttled && now_ns > rl->throttle_start_ns)
        *throttled_ns += now_ns - rl->throttle_start_ns;
    *events = rl->throttled_events;
    pthread_mutex_unlock(&rl->lock);
}

bool rate_limiter_unlimited(struct rate_limiter *rl)
{
    bool unlimited;

    pthread_mutex_lock(&rl->lock);
    unlimited = rl->bytes.rate == 0 && rl->ops.rate == 0;
    pthread_mutex_unlock(&rl->lock);
    return unlimited;
}

uint64_t rate_limiter_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

int rate_limiter_arm_timer(int timer_fd, uint64_t wait_ns)
{
    struct itimerspec its = {0};

    if (wait_ns == 0)
        wait_ns = 1; /* an all-zero value would disarm it */
    /* A device looks again at least this often, so a limit changed meanwhile (even one that
     * raced with this arming) takes effect soon, however long the old one said to wait. */
    if (wait_ns > RATE_LIMITER_MAX_WAIT_NS)
        wait_ns = RATE_LIMITER_MAX_WAIT_NS;
    its.it_value.tv_sec = (time_t)(wait_ns / NS_PER_S);
    its.it_value.tv_nsec = (long)(wait_ns % NS_PER_S);
    return timerfd_settime(timer_fd, 0, &its, NULL) < 0 ? -errno : 0;
}
