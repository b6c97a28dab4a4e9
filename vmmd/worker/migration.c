/* Live migration between workers (see migration.h). */
#include "migration.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MIG_MAGIC        "VMMDMIG1"
#define HELLO_LEN        (8 + 4 + 4 + 8 + MIG_TICKET_BYTES)
#define RESULT_MAX       256
#define INT32_MAX_MS     2147483647
#define MAX_ROUNDS       30
#define IO_TIMEOUT_S     10 /* a peer that takes nothing (or sends nothing) this long is gone */
#define RESULT_TIMEOUT_S 30 /* the target loads the state and starts its VM meanwhile */
#define CONVERGED_PAGES  16 /* so few left that another round is pointless */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int mig_ticket_parse(const char *hex, uint8_t out[MIG_TICKET_BYTES])
{
    if (!hex || strlen(hex) != 2 * MIG_TICKET_BYTES)
        return -1;
    for (int i = 0; i < MIG_TICKET_BYTES; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", hex[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", hex[2 * i + 1]))
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static void set_timeouts(int fd, int seconds)
{
    struct timeval tv = {.tv_sec = seconds};
    int one = 1;

    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    /* The last frames and the answer are small and wait on each other: no Nagle delay. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* All of iov, or -errno (-ETIMEDOUT when the peer stalls). */
static int send_all(int fd, struct iovec *iov, int n)
{
    while (n) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t done = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        while (n && (size_t)done >= iov->iov_len) {
            done -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= (size_t)done;
        }
    }
    return 0;
}

static int recv_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return -ECONNRESET;
        if (n < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_frame(int fd, enum mig_frame type, const void *a, size_t alen, const void *b,
                      size_t blen)
{
    uint8_t h[16];
    struct iovec iov[3] = {{h, sizeof(h)}, {(void *)a, alen}, {(void *)b, blen}};

    put_le(h, type, 4);
    put_le(h + 4, 0, 4);
    put_le(h + 8, alen + blen, 8);
    return send_all(fd, iov, 3);
}

static int recv_header(int fd, uint32_t *type, uint64_t *len)
{
    uint8_t h[16];
    int rc = recv_all(fd, h, sizeof(h));

    if (rc)
        return rc;
    *type = (uint32_t)get_le(h, 4);
    *len = get_le(h + 8, 8);
    return get_le(h + 4, 4) ? -EPROTO : 0;
}

/* ---- source ---- */

static void progress_set(struct mig_send *m, void (*fn)(struct mig_progress *, void *), void *arg)
{
    pthread_mutex_lock(&m->lock);
    fn(&m->progress, arg);
    pthread_mutex_unlock(&m->lock);
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;
    for (unsigned i = 0; i < HV_PAGE_SIZE / 8; i++)
        if (q[i])
            return false;
    return true;
}

struct round_stats {
    uint64_t pages, bytes;
};

/*
 * Sends the pages whose bits are set, in runs of at most MIG_MAX_PAGES_PER_FRAME; with
 * skip_zero (the first round: the target's RAM starts zeroed) not those that are all zeroes.
 */
static int send_pages(struct mig_send *m, const uint8_t *ram, uint64_t pages,
                      const uint64_t *bitmap, bool skip_zero, struct round_stats *st)
{
    uint64_t run_start = 0, run = 0;
    uint8_t first[8];
    int rc;

    for (uint64_t p = 0; p <= pages; p++) {
        bool take = p < pages && ((bitmap[p / 64] >> (p % 64)) & 1) &&
                    !(skip_zero && page_is_zero(ram + p * HV_PAGE_SIZE));
        if (run && (!take || run == MIG_MAX_PAGES_PER_FRAME)) {
            put_le(first, run_start, 8);
            if ((rc = send_frame(m->fd, MIG_PAGES, first, 8, ram + run_start * HV_PAGE_SIZE,
                                 run * HV_PAGE_SIZE)))
                return rc;
            st->pages += run;
            st->bytes += run * HV_PAGE_SIZE + 24;
            run = 0;
        }
        if (take) {
            if (!run)
                run_start = p;
            run++;
        }
    }
    return 0;
}

struct round_update {
    unsigned round;
    uint64_t left, sent;
    double mbps;
    uint64_t elapsed;
};

static void apply_round(struct mig_progress *p, void *arg)
{
    struct round_update *u = arg;
    p->round = u->round;
    p->pages_left = u->left;
    p->bytes_sent = u->sent;
    p->throughput_mbps = u->mbps;
    p->elapsed_ms = u->elapsed;
}

static void apply_phase(struct mig_progress *p, void *arg)
{
    p->phase = *(enum mig_phase *)arg;
}

struct failure {
    char text[200];
};

static void apply_failure(struct mig_progress *p, void *arg)
{
    p->phase = MIG_FAILED;
    snprintf(p->error, sizeof(p->error), "%s", ((struct failure *)arg)->text);
}

static void fail_send(struct mig_send *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail_send(struct mig_send *m, const char *fmt, ...)
{
    struct failure f;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f.text, sizeof(f.text), fmt, ap);
    va_end(ap);
    progress_set(m, apply_failure, &f);
}

static void apply_done(struct mig_progress *p, void *arg)
{
    p->phase = MIG_DONE;
    p->downtime_us = *(uint64_t *)arg;
    p->pages_left = 0;
}

/* A fetch of the dirty log; with resend_dirtied, what it returns is also kept in ever and
 * bitmap gets all of ever. */
static int fetch_dirty(struct mig_send *m, uint64_t *bitmap, uint64_t *ever, size_t words)
{
    int rc = hv_vm_dirty_log_fetch(m->vm, bitmap);

    if (!rc && m->resend_dirtied) {
        hv_dirty_bitmap_merge(ever, bitmap, words);
        memcpy(bitmap, ever, words * sizeof(uint64_t));
    }
    return rc;
}

/* The pre-copy rounds; 0 when what is left fits the downtime budget. */
static int precopy(struct mig_send *m, const uint8_t *ram, uint64_t pages, uint64_t *bitmap,
                   uint64_t *ever, struct round_stats *total, uint64_t t0)
{
    size_t words = HV_DIRTY_BITMAP_WORDS(pages * HV_PAGE_SIZE);
    struct round_stats st = {0};
    uint64_t r0 = now_ms(), ms;
    int rc;

    /* All of RAM that may hold data (untouched RAM is not read: a fault a page). */
    hv_vm_memory_in_use(m->vm, m->no_swap, bitmap);
    if ((rc = send_pages(m, ram, pages, bitmap, true, &st))) {
        fail_send(m, "sending RAM: %s", strerror(-rc));
        return rc;
    }
    for (unsigned round = 1;; round++) {
        ms = now_ms() - r0;
        total->pages += st.pages;
        total->bytes += st.bytes;
        /* bytes per ms of the last round: what the final one will manage too */
        double rate = (double)st.bytes / (double)(ms ? ms : 1);
        if ((rc = fetch_dirty(m, bitmap, ever, words))) {
            fail_send(m, "reading the dirty log: %s", strerror(-rc));
            return rc;
        }
        uint64_t left = hv_dirty_bitmap_count(bitmap, words);
        struct round_update u = {round, left, total->bytes, rate * 1000.0 / 1e6, now_ms() - t0};
        progress_set(m, apply_round, &u);
        if (left <= CONVERGED_PAGES ||
            (double)(left * HV_PAGE_SIZE) / rate <= (double)m->max_downtime_ms)
            return 0;
        if (now_ms() - t0 > m->timeout_ms || round >= MAX_ROUNDS) {
            fail_send(
                m,
                "did not converge: %llu pages (%.1f MiB) still dirty after %u rounds and %.1f "
                "s, at %.0f MB/s that is more than the %llu ms downtime allowed",
                (unsigned long long)left, (double)left * HV_PAGE_SIZE / 1048576.0, round,
                (double)(now_ms() - t0) / 1000.0, rate * 1000.0 / 1e6,
                (unsigned long long)m->max_downtime_ms);
            return -ETIMEDOUT;
        }
        st = (struct round_stats){0};
        r0 = now_ms();
        if ((rc = send_pages(m, ram, pages, bitmap, false, &st))) {
            fail_send(m, "sending dirty pages: %s", strerror(-rc));
            return rc;
        }
    }
}

/* Frozen: the last dirty pages and the state, then the target's word. */
static int finish(struct mig_send *m, const uint8_t *ram, uint64_t pages, uint64_t *bitmap,
                  uint64_t *ever, struct round_stats *total)
{
    uint8_t *state = NULL, result[RESULT_MAX];
    size_t state_len = 0;
    uint32_t type;
    uint64_t len;
    char err[256];
    int rc;

    if ((rc = fetch_dirty(m, bitmap, ever, HV_DIRTY_BITMAP_WORDS(pages * HV_PAGE_SIZE))) ||
        (rc = send_pages(m, ram, pages, bitmap, false, total))) {
        fail_send(m, "sending the last pages: %s", strerror(-rc));
        return rc;
    }
    if ((rc = hv_vm_save_state(m->vm, &state, &state_len, err, sizeof(err)))) {
        fail_send(m, "saving the state: %s", err);
        return rc;
    }
    rc = send_frame(m->fd, MIG_STATE, state, state_len, NULL, 0);
    free(state);
    if (rc) {
        fail_send(m, "sending the state: %s", strerror(-rc));
        return rc;
    }
    set_timeouts(m->fd, RESULT_TIMEOUT_S);
    if ((rc = recv_header(m->fd, &type, &len)) ||
        (type != MIG_RESULT || len < 4 || len > RESULT_MAX ? (rc = -EPROTO) : 0) ||
        (rc = recv_all(m->fd, result, len))) {
        fail_send(m, "no answer from the target: %s",
                  rc == -EPROTO ? "a malformed answer" : strerror(-rc));
        return rc ? rc : -EPROTO;
    }
    if (get_le(result, 4) != 0) {
        fail_send(m, "the target could not start the VM: %.*s", (int)len - 4,
                  (const char *)result + 4);
        return -EREMOTEIO;
    }
    return 0;
}

/*
 * The dirty bitmaps are mapped, not malloc'ed: freed in this thread, 64 KiB or more of a
 * non-main arena shrink its heap, and glibc's first shrink_heap opens
 * /proc/sys/vm/overcommit_memory, which the sandbox's filter kills the worker for (a
 * 2048 MiB VM died so right after the target took it over).
 */
static uint64_t *bitmap_alloc(uint64_t words)
{
    void *p = mmap(NULL, words * sizeof(uint64_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

static void bitmap_free(uint64_t *bitmap, uint64_t words)
{
    if (bitmap)
        munmap(bitmap, words * sizeof(uint64_t));
}

static void *send_thread(void *arg)
{
    struct mig_send *m = arg;
    uint64_t size, t0 = now_ms(), words, frozen_us = 0;
    const uint8_t *ram = hv_vm_memory(m->vm, &size);
    uint64_t pages = size / HV_PAGE_SIZE, *bitmap, *ever;
    uint8_t hello[HELLO_LEN];
    struct round_stats total = {0};
    enum mig_phase phase = MIG_PRECOPY;
    bool frozen = false, was_paused = false, logging = false;
    int rc;

    words = HV_DIRTY_BITMAP_WORDS(size);
    bitmap = bitmap_alloc(words);
    ever = bitmap_alloc(words);
    /* The target's worker may still be starting: nothing counts until it says it listens
     * with its VM built, or the first rounds would wait in the socket and the target's
     * start-up would land in the downtime. */
    set_timeouts(m->fd, (int)(m->timeout_ms / 1000 + 1));
    uint32_t type;
    uint64_t len;
    if ((rc = recv_header(m->fd, &type, &len)) || type != MIG_READY || len != 0) {
        fail_send(m, "the target did not get ready: %s",
                  rc ? strerror(-rc) : "an unexpected frame");
        goto out;
    }
    set_timeouts(m->fd, IO_TIMEOUT_S);
    memcpy(hello, MIG_MAGIC, 8);
    put_le(hello + 8, MIG_VERSION, 4);
    put_le(hello + 12, m->vcpus, 4);
    put_le(hello + 16, size, 8);
    memcpy(hello + 24, m->ticket, MIG_TICKET_BYTES);
    progress_set(m, apply_phase, &phase);
    if (!bitmap || !ever) {
        fail_send(m, "out of memory");
        goto out;
    }
    if ((rc = send_frame(m->fd, MIG_HELLO, hello, sizeof(hello), NULL, 0))) {
        fail_send(m, "sending to the target: %s", strerror(-rc));
        goto out;
    }
    if ((rc = hv_vm_dirty_log_start(m->vm))) {
        fail_send(m, "starting dirty logging: %s", strerror(-rc));
        goto out;
    }
    logging = true;
    if (precopy(m, ram, pages, bitmap, ever, &total, t0))
        goto out;
    phase = MIG_STOPPING;
    progress_set(m, apply_phase, &phase);
    frozen_us = now_us();
    if ((rc = hv_vm_freeze(m->vm, &was_paused))) {
        fail_send(m, "the VM stopped meanwhile");
        goto out;
    }
    frozen = true;
    if (finish(m, ram, pages, bitmap, ever, &total))
        goto out;
    /* The target runs it: this copy must never run again. */
    uint64_t downtime = now_us() - frozen_us;
    hv_vm_dirty_log_stop(m->vm);
    logging = false;
    struct round_update u = {m->progress.round + 1, 0, total.bytes, m->progress.throughput_mbps,
                             now_ms() - t0};
    progress_set(m, apply_round, &u);
    progress_set(m, apply_done, &downtime);
    hv_vm_request_stop(m->vm);
    goto done;
out:
    /* Failed: the source goes on. The device bitmap goes only while the devices are parked. */
    if (logging) {
        if (!frozen && hv_vm_freeze(m->vm, &was_paused) == 0)
            frozen = true;
        hv_vm_dirty_log_stop(m->vm);
    }
    if (frozen)
        hv_vm_thaw(m->vm, was_paused);
done:
    bitmap_free(bitmap, words);
    bitmap_free(ever, words);
    close(m->fd);
    m->fd = -1;
    return NULL;
}

int mig_send_start(struct mig_send *m)
{
    int rc;

    pthread_mutex_init(&m->lock, NULL);
    memset(&m->progress, 0, sizeof(m->progress));
    m->progress.phase = MIG_PRECOPY;
    uint64_t size;
    hv_vm_memory(m->vm, &size);
    m->progress.pages_total = size / HV_PAGE_SIZE;
    m->progress.pages_left = m->progress.pages_total;
    rc = -pthread_create(&m->thread, NULL, send_thread, m);
    m->thread_started = rc == 0;
    return rc;
}

void mig_send_progress(struct mig_send *m, struct mig_progress *out)
{
    pthread_mutex_lock(&m->lock);
    *out = m->progress;
    pthread_mutex_unlock(&m->lock);
}

void mig_send_join(struct mig_send *m)
{
    if (m->thread_started)
        pthread_join(m->thread, NULL);
    m->thread_started = false;
}

/* ---- target ---- */

static int fail_recv(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_recv(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* Time-constant, so a wrong ticket's timing says nothing about the right one. */
static bool ticket_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t diff = 0;
    for (int i = 0; i < MIG_TICKET_BYTES; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}

static int accept_source(int listen_fd, uint64_t timeout_ms, char *err, size_t errlen)
{
    struct pollfd p = {.fd = listen_fd, .events = POLLIN};
    int n;

    do
        n = poll(&p, 1, (int)(timeout_ms > INT32_MAX_MS ? INT32_MAX_MS : timeout_ms));
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return fail_recv(err, errlen, -ETIMEDOUT, "no source connected within %llu s",
                         (unsigned long long)(timeout_ms / 1000));
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return fail_recv(err, errlen, -errno, "accepting the source: %s", strerror(errno));
    set_timeouts(fd, IO_TIMEOUT_S);
    /* The VM is built: the source may start the clock. */
    if (send_frame(fd, MIG_READY, NULL, 0, NULL, 0)) {
        close(fd);
        return fail_recv(err, errlen, -ECONNRESET, "the source went away");
    }
    return fd;
}

static int check_hello(int fd, struct hv_vm *vm, const uint8_t *ticket, unsigned vcpus, char *err,
                       size_t errlen)
{
    uint8_t hello[HELLO_LEN];
    uint32_t type;
    uint64_t len, size;
    int rc;

    hv_vm_memory(vm, &size);
    if ((rc = recv_header(fd, &type, &len)) || type != MIG_HELLO || len != HELLO_LEN ||
        (rc = recv_all(fd, hello, sizeof(hello))) || memcmp(hello, MIG_MAGIC, 8))
        return fail_recv(err, errlen, rc ? rc : -EPROTO, "not a vmmd migration stream");
    if (!ticket_equal(hello + 24, ticket))
        return fail_recv(err, errlen, -EACCES, "wrong migration ticket");
    if (get_le(hello + 8, 4) != MIG_VERSION)
        return fail_recv(err, errlen, -EPROTO, "migration protocol version %u, this vmmd speaks %u",
                         (unsigned)get_le(hello + 8, 4), MIG_VERSION);
    if (get_le(hello + 12, 4) != vcpus || get_le(hello + 16, 8) != size)
        return fail_recv(err, errlen, -EINVAL,
                         "the source's VM has %u vCPUs and %llu bytes of RAM, this one %u and %llu",
                         (unsigned)get_le(hello + 12, 4), (unsigned long long)get_le(hello + 16, 8),
                         vcpus, (unsigned long long)size);
    return 0;
}

int mig_receive(struct hv_vm *vm, int listen_fd, const uint8_t ticket[MIG_TICKET_BYTES],
                unsigned vcpus, uint64_t timeout_ms, char *err, size_t errlen)
{
    uint64_t size, len;
    uint8_t *ram = hv_vm_memory(vm, &size), first[8];
    uint32_t type;
    int fd = accept_source(listen_fd, timeout_ms, err, errlen), rc;

    if (fd < 0)
        return fd;
    if ((rc = check_hello(fd, vm, ticket, vcpus, err, errlen)))
        goto fail;
    for (;;) {
        if ((rc = recv_header(fd, &type, &len))) {
            fail_recv(err, errlen, rc, "the stream ended early: %s", strerror(-rc));
            goto fail;
        }
        if (type == MIG_PAGES) {
            uint64_t count = len >= 8 ? (len - 8) / HV_PAGE_SIZE : 0, p;
            if (len < 8 + HV_PAGE_SIZE || (len - 8) % HV_PAGE_SIZE ||
                count > MIG_MAX_PAGES_PER_FRAME || (rc = recv_all(fd, first, 8)) ||
                (p = get_le(first, 8)) >= size / HV_PAGE_SIZE || count > size / HV_PAGE_SIZE - p) {
                fail_recv(err, errlen, rc ? rc : -EPROTO, "a malformed page frame");
                rc = rc ? rc : -EPROTO;
                goto fail;
            }
            if ((rc = recv_all(fd, ram + p * HV_PAGE_SIZE, count * HV_PAGE_SIZE))) {
                fail_recv(err, errlen, rc, "the stream ended early: %s", strerror(-rc));
                goto fail;
            }
        } else if (type == MIG_STATE && len <= HV_SNAPSHOT_STATE_MAX + 64) {
            uint8_t *state = malloc(len ? len : 1);
            if (!state || (rc = recv_all(fd, state, len))) {
                free(state);
                fail_recv(err, errlen, state ? rc : -ENOMEM, "reading the state: %s",
                          state ? strerror(-rc) : "out of memory");
                rc = state ? rc : -ENOMEM;
                goto fail;
            }
            rc = hv_vm_load_state(vm, state, len, err, errlen);
            free(state);
            if (rc)
                goto fail;
            return fd; /* the caller starts the VM and answers (mig_answer) */
        } else {
            rc = fail_recv(err, errlen, -EPROTO, "an unexpected frame (type %u, %llu bytes)", type,
                           (unsigned long long)len);
            goto fail;
        }
    }
fail:
    mig_answer(fd, rc, err);
    return rc;
}

void mig_answer(int fd, int status, const char *message)
{
    uint8_t code[4];
    size_t n = message ? strnlen(message, RESULT_MAX - 4) : 0;

    put_le(code, status ? 1 : 0, 4);
    send_frame(fd, MIG_RESULT, code, 4, message, n);
    close(fd);
}
