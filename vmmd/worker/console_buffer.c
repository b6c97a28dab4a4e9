/* Console output fan-out: ring buffer, capped log file, attached clients. */
#include "console_buffer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

/* Copies len bytes from the start of in to the start of out. */
static void copy_log(int in, int out, uint64_t len)
{
    loff_t ioff = 0, ooff = 0;
    uint8_t buf[16384];

    while (ioff < (loff_t)len) {
        ssize_t n = copy_file_range(in, &ioff, out, &ooff, len - (uint64_t)ioff, 0);
        if (n > 0)
            continue;
        if (n == 0)
            return;
        /* Not on every filesystem pair: copy through a buffer. */
        n = pread(in, buf, sizeof(buf), ioff);
        if (n <= 0 || pwrite(out, buf, (size_t)n, ooff) != n)
            return;
        ioff += n;
        ooff += n;
    }
}

/*
 * Keeps one previous generation (.1) so a log never grows past twice log_max.
 * Both files were opened at start: a sandboxed worker can no longer rename or
 * open anything, so the log moves by copying, not by renaming.
 */
static void rotate_log(struct console_buffer *c)
{
    if (c->old_fd >= 0 && ftruncate(c->old_fd, 0) == 0)
        copy_log(c->log_fd, c->old_fd, c->log_size);
    if (ftruncate(c->log_fd, 0) == 0)
        c->log_size = 0;
}

int console_buffer_init(struct console_buffer *c, const char *log_path, uint64_t log_max,
                        int also_fd)
{
    char old[PATH_MAX];

    memset(c, 0, sizeof(*c));
    c->log_fd = c->old_fd = -1;
    c->also_fd = also_fd;
    for (int i = 0; i < CONSOLE_MAX_CLIENTS; i++)
        c->clients[i] = -1;
    if (log_path) {
        int flags = O_CREAT | O_NOFOLLOW | O_CLOEXEC;

        if (snprintf(old, sizeof(old), "%s.1", log_path) >= (int)sizeof(old))
            return -ENAMETOOLONG;
        c->log_fd = open(log_path, O_RDWR | O_APPEND | flags, 0640);
        if (c->log_fd < 0)
            return -errno;
        c->old_fd = open(old, O_WRONLY | flags, 0640);
        if (c->old_fd < 0) {
            int e = errno;
            close(c->log_fd);
            return -e;
        }
        c->log_size = (uint64_t)lseek(c->log_fd, 0, SEEK_END);
        c->log_max = log_max;
    }
    return -pthread_mutex_init(&c->lock, NULL);
}

void console_buffer_destroy(struct console_buffer *c)
{
    if (c->log_fd >= 0)
        close(c->log_fd);
    if (c->old_fd >= 0)
        close(c->old_fd);
    pthread_mutex_destroy(&c->lock);
}

void console_buffer_write(void *opaque, const uint8_t *buf, size_t len)
{
    struct console_buffer *c = opaque;

    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < len; i++)
        c->ring[(c->total + i) % CONSOLE_RING_SIZE] = buf[i];
    c->total += len;
    if (c->log_fd >= 0) {
        if (c->log_max && c->log_size + len > c->log_max)
            rotate_log(c);
        write_all(c->log_fd, buf, len);
        c->log_size += len;
    }
    for (int i = 0; i < CONSOLE_MAX_CLIENTS; i++) {
        /* Clients are non-blocking: a slow reader loses output, the guest never stalls.
         * A broken one is only forgotten here; the control server owns and closes it. */
        if (c->clients[i] >= 0 && send(c->clients[i], buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
            errno != EAGAIN)
            c->clients[i] = -1;
    }
    pthread_mutex_unlock(&c->lock);
    if (c->also_fd >= 0)
        write_all(c->also_fd, buf, len);
}

static size_t tail_locked(struct console_buffer *c, uint8_t *out, size_t max)
{
    size_t n = c->total < CONSOLE_RING_SIZE ? (size_t)c->total : CONSOLE_RING_SIZE;
    uint64_t start;

    if (n > max)
        n = max;
    start = c->total - n;
    for (size_t i = 0; i < n; i++)
        out[i] = c->ring[(start + i) % CONSOLE_RING_SIZE];
    return n;
}

size_t console_buffer_tail(struct console_buffer *c, uint8_t *out, size_t max)
{
    size_t n;

    pthread_mutex_lock(&c->lock);
    n = tail_locked(c, out, max);
    pthread_mutex_unlock(&c->lock);
    return n;
}

uint64_t console_buffer_total(struct console_buffer *c)
{
    uint64_t t;

    pthread_mutex_lock(&c->lock);
    t = c->total;
    pthread_mutex_unlock(&c->lock);
    return t;
}

int console_buffer_attach(struct console_buffer *c, int fd, const char *greeting, size_t tail)
{
    static uint8_t history[CONSOLE_RING_SIZE]; /* only touched under the lock */
    int rc = -ENOSPC;

    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < CONSOLE_MAX_CLIENTS; i++) {
        if (c->clients[i] < 0) {
            /* The guest waits for these two writes: at most a line and the ring's size. */
            write_all(fd, (const uint8_t *)greeting, strlen(greeting));
            write_all(fd, history, tail_locked(c, history, tail));
            c->clients[i] = fd;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void console_buffer_detach(struct console_buffer *c, int fd)
{
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < CONSOLE_MAX_CLIENTS; i++)
        if (c->clients[i] == fd)
            c->clients[i] = -1;
    pthread_mutex_unlock(&c->lock);
}
