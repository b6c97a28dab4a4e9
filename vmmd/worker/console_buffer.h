/*
 * The serial console of a worker's VM: the last bytes in a ring buffer (for
 * `GET /console?tail=N`), everything in a size-capped log file, and a live
 * copy to every attached client socket. Written from vCPU threads, read from
 * the worker's control loop, hence the lock.
 */
#ifndef VMMD_CONSOLE_BUFFER_H
#define VMMD_CONSOLE_BUFFER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "vmmd/worker_proto.h"

#define CONSOLE_RING_SIZE   WORKER_CONSOLE_TAIL_MAX
#define CONSOLE_MAX_CLIENTS 8

struct console_buffer {
    pthread_mutex_t lock;
    uint8_t ring[CONSOLE_RING_SIZE];
    uint64_t total; /* bytes ever written; ring holds the last min(total, size) */
    int log_fd;     /* -1 when no log file */
    int old_fd;     /* the log's previous generation, PATH.1 */
    uint64_t log_size, log_max;
    int clients[CONSOLE_MAX_CLIENTS]; /* attached sockets, -1 when free */
    int also_fd;                      /* stdout in the foreground, -1 in a worker */
};

int console_buffer_init(struct console_buffer *c, const char *log_path, uint64_t log_max,
                        int also_fd);
void console_buffer_destroy(struct console_buffer *c);
/* hv_console_write_fn: the VM's serial output. */
void console_buffer_write(void *opaque, const uint8_t *buf, size_t len);
/* Copies the last min(max, available) bytes into out; returns how many. */
size_t console_buffer_tail(struct console_buffer *c, uint8_t *out, size_t max);
uint64_t console_buffer_total(struct console_buffer *c);
/*
 * Adds a client socket that receives output from now on; -ENOSPC when full
 * (then nothing is sent). Before any live output it sends the greeting and
 * the last `tail` bytes, all under the lock, so the client sees the history
 * and the live stream without a gap or an overlap.
 */
int console_buffer_attach(struct console_buffer *c, int fd, const char *greeting, size_t tail);
void console_buffer_detach(struct console_buffer *c, int fd);

#endif
