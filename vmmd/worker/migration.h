/*
 * Live migration between two workers, over a TCP connection the daemons
 * set up (the source's daemon connects, the target's listens; a sandboxed
 * worker opens no sockets itself). Pre-copy: all of RAM while the VM runs,
 * then the pages dirtied meanwhile in rounds, until what is left fits the
 * downtime budget; then the VM is frozen, the rest and the device state go
 * over, and the target answers once its VM runs. The source never stops its
 * VM before that answer: a target that fails or dies leaves it running.
 *
 * The stream is frames of a 16-byte header (u32 type, u32 zero, u64 length,
 * little-endian) and a payload:
 *   READY  (target to source, first, empty) its VM is built: the source starts
 *   HELLO  "VMMDMIG1", u32 version, u32 vcpus, u64 RAM bytes, 32-byte ticket
 *   PAGES  u64 first page, then whole 4 KiB pages (at most MIG_MAX_PAGES_PER_FRAME)
 *   STATE  a snapshot state file's bytes (hv_vm_save_state)
 *   RESULT (target to source) u32 status (0: running), then a message
 * The target refuses anything else: a wrong ticket, a frame of an unknown
 * type or over its bound, pages outside RAM, a stream that ends early. It
 * then answers RESULT with the reason if it can and ends; its daemon is not
 * involved in parsing, so a hostile stream costs at most that worker.
 */
#ifndef VMMD_MIGRATION_H
#define VMMD_MIGRATION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv/hv.h"

#define MIG_VERSION             1
#define MIG_TICKET_BYTES        32
#define MIG_MAX_PAGES_PER_FRAME 256 /* 1 MiB of RAM per frame */

enum mig_frame { MIG_HELLO = 1, MIG_PAGES = 2, MIG_STATE = 3, MIG_RESULT = 4, MIG_READY = 5 };

enum mig_phase { MIG_IDLE, MIG_PRECOPY, MIG_STOPPING, MIG_DONE, MIG_FAILED };

/* What "migrate_status" reports; written by the sending thread, read under lock. */
struct mig_progress {
    enum mig_phase phase;
    unsigned round;
    uint64_t pages_total, pages_left, bytes_sent;
    double throughput_mbps;
    uint64_t elapsed_ms, downtime_us;
    char error[200];
};

struct mig_send {
    struct hv_vm *vm;
    int fd;
    uint8_t ticket[MIG_TICKET_BYTES];
    unsigned vcpus;
    uint64_t max_downtime_ms, timeout_ms;
    /*
     * Resend, in the final round, every page reported dirty during the migration. On PVM
     * hosts KVM's dirty log reports the first write to a page after each fetch but misses
     * later ones until the vCPU's mappings are flushed (measured with the counter guest: a
     * table entry rewritten after the last fetch was never reported, even with the vCPUs
     * stopped), so only the pages never dirtied can be trusted to be clean.
     */
    bool resend_dirtied;
    bool no_swap; /* the host does not swap: untouched RAM need not be read (hv_vm_memory_in_use) */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    struct mig_progress progress;
};

/* "64 hex digits" -> 32 bytes; -1 if it is not that. */
int mig_ticket_parse(const char *hex, uint8_t out[MIG_TICKET_BYTES]);

/* Starts the sending thread (it owns fd from then on). On DONE the source's VM has been
 * asked to stop (hv_vm_request_stop): it has moved. */
int mig_send_start(struct mig_send *m);
void mig_send_progress(struct mig_send *m, struct mig_progress *out);
/* Joins the thread (after DONE or FAILED). */
void mig_send_join(struct mig_send *m);

/*
 * The target: accepts one connection on listen_fd within timeout_ms, checks the HELLO, fills
 * the VM's RAM and loads the state. Returns the connection, on which the caller answers with
 * mig_answer() once it has started the VM (or could not); or -errno with err saying why (the
 * source was told) and the VM must be destroyed.
 */
int mig_receive(struct hv_vm *vm, int listen_fd, const uint8_t ticket[MIG_TICKET_BYTES],
                unsigned vcpus, uint64_t timeout_ms, char *err, size_t errlen);
/* RESULT: status 0 (the VM runs here) or not, with a message; closes fd. */
void mig_answer(int fd, int status, const char *message);

#endif
