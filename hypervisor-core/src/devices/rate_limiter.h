/*
 * I/O limits of one device (or one direction of a NIC): two token buckets,
 * one counting bytes and one counting operations, both of which a request
 * must pass. A bucket holds at most its burst and refills at its rate by
 * CLOCK_MONOTONIC time the caller passes in (so tests inject their own).
 *
 * Like Firecracker's rate limiter, a guest past its limit is delayed, never
 * refused: rate_limiter_consume() answers "wait this long" and the device
 * stops serving until then. A request bigger than the whole bucket passes
 * once the bucket is full and leaves it in debt, so the long-run rate still
 * holds and nothing is stuck forever.
 *
 * Thread safety: every function takes the limiter's own lock, so limits can
 * change (hv_vm_set_disk_limits) and stats be read from other threads while
 * the device's thread consumes.
 */
#ifndef HV_RATE_LIMITER_H
#define HV_RATE_LIMITER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv/hv.h"

struct token_bucket {
    uint64_t rate;     /* tokens per second, 0 = unlimited */
    uint64_t capacity; /* the burst: what a full bucket holds */
    int64_t tokens;    /* negative after a request bigger than what was there */
    uint64_t frac;     /* refill remainder, in token-nanoseconds (< 1e9) */
    uint64_t last_ns;  /* when tokens were last refilled */
};

struct rate_limiter {
    pthread_mutex_t lock;
    struct token_bucket bytes, ops;
    bool throttled; /* a request is waiting for tokens */
    uint64_t throttle_start_ns;
    uint64_t throttled_ns;     /* time spent waiting, not counting the current wait */
    uint64_t throttled_events; /* how many times a request had to wait */
};

void rate_limiter_init(struct rate_limiter *rl, const struct hv_io_limits *limits, uint64_t now_ns);
void rate_limiter_destroy(struct rate_limiter *rl);
/* New limits, effective at once. Tokens kept are capped at the new burst; a bucket that was
 * unlimited starts full. */
void rate_limiter_set(struct rate_limiter *rl, const struct hv_io_limits *limits, uint64_t now_ns);
void rate_limiter_get(struct rate_limiter *rl, struct hv_io_limits *out);
/*
 * Takes bytes and ops tokens for one request. 0: granted (tokens taken). Otherwise nothing is
 * taken and the answer is how many nanoseconds to wait before asking again; the time until the
 * next grant counts as throttled.
 */
uint64_t rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t ops,
                              uint64_t now_ns);
/* Takes tokens without asking (may leave the buckets in debt): for a cost only known after the
 * fact, e.g. a received packet's length once a consume() for its first byte granted it. */
void rate_limiter_charge(struct rate_limiter *rl, uint64_t bytes, uint64_t ops);
/* Gives back tokens taken for a request that then moved less (a short packet read). */
void rate_limiter_refund(struct rate_limiter *rl, uint64_t bytes, uint64_t ops);
/* Total throttled time (the current wait included) and the number of waits. */
void rate_limiter_stats(struct rate_limiter *rl, uint64_t now_ns, uint64_t *throttled_ns,
                        uint64_t *events);
bool rate_limiter_unlimited(struct rate_limiter *rl);

/* CLOCK_MONOTONIC now, what devices pass as now_ns. */
uint64_t rate_limiter_now_ns(void);
#define RATE_LIMITER_MAX_WAIT_NS 100000000ull /* 100 ms */

/* Arms a CLOCK_MONOTONIC timerfd to expire once, wait_ns from now (1 ns .. the max wait). */
int rate_limiter_arm_timer(int timer_fd, uint64_t wait_ns);

/* One bucket on its own (what the limiter is made of; exposed for its tests). */
void token_bucket_config(struct token_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns);
/* Refills, then 0 if a request of cost would pass now, else the nanoseconds until it would. */
uint64_t token_bucket_wait(struct token_bucket *b, uint64_t cost, uint64_t now_ns);
void token_bucket_take(struct token_bucket *b, uint64_t cost);

#endif
