/*
 * The daemon side of the worker processes: start one per running VM
 * (detached, so it outlives the daemon), hold a connection to its control
 * socket, send it commands, notice when it ends and record why, and after a
 * daemon restart find the workers still running and reattach to them.
 */
#ifndef VMMD_SUPERVISOR_H
#define VMMD_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "api/api.h"
#include "db/store.h"
#include "sandbox_host.h"

struct vmmd_daemon;
struct supervisor;

/* reply is NULL when the worker could not answer (error says why); extra is raw bytes (console). */
typedef void (*sup_reply_fn)(struct vmmd_daemon *d, void *ctx, json_t *reply, const uint8_t *extra,
                             size_t extra_len, const char *error);
/* rc 0: the worker runs / has ended as asked; otherwise detail says what went wrong. */
typedef void (*sup_done_fn)(struct vmmd_daemon *d, void *ctx, int rc, const char *detail);

struct supervisor *supervisor_create(struct vmmd_daemon *d);
/* Closes the connections; the workers keep running. */
void supervisor_destroy(struct supervisor *sup);

/*
 * Opens the VM's files (vm_files.h), records "starting" and only then starts
 * a worker; done() runs once it is "running" or has failed (a deadline
 * included). Refused when the VM has a worker, known or found listening on
 * its control socket (then adopted). 0, or -1 with err (status and detail).
 * With restore, the worker starts from a snapshot instead of booting.
 */
struct sup_restore {
    int state_fd, mem_fd; /* a snapshot's files (the caller keeps them), or -1 */
    /* Or the target of a live migration: the listening socket (the caller keeps it), the
     * source's ticket and how long the worker may take to have the VM running. */
    int incoming_fd;
    const char *ticket;
    unsigned start_timeout_ms;
};
int supervisor_start(struct supervisor *sup, const struct db_vm *vm,
                     const struct sup_restore *restore, sup_done_fn done, void *ctx,
                     struct api_error *err);
/* Sends {"cmd":...} (consumed). -ENOENT when the VM has no worker. */
int supervisor_command(struct supervisor *sup, const char *vm_id, json_t *cmd, sup_reply_fn fn,
                       void *ctx);
/* Sends cmd with descriptors (dup'd; the caller keeps its own) attached, when the worker has no
 * other command in flight: -EBUSY otherwise, -ENOENT without a worker. */
#define SUP_MAX_FDS 2
int supervisor_command_fds(struct supervisor *sup, const char *vm_id, json_t *cmd,
                           const int *fds, unsigned nfds, sup_reply_fn fn, void *ctx);
/* Calls done once the worker has ended (right away with -ENOENT if there is none). */
int supervisor_wait_exit(struct supervisor *sup, const char *vm_id, sup_done_fn done, void *ctx);
/* Asks the worker to stop, kills it after grace_ms; done() when it has ended. */
int supervisor_stop(struct supervisor *sup, const char *vm_id, unsigned grace_ms, sup_done_fn done,
                    void *ctx);
/* Sends "shutdown" and, if the worker still runs after timeout_s, stops it. */
int supervisor_shutdown(struct supervisor *sup, const char *vm_id, unsigned timeout_s);
bool supervisor_has_worker(struct supervisor *sup, const char *vm_id);
/* Applies the definition's CPU limits to a running VM's cgroup (nothing if it has no worker). */
int supervisor_set_limits(struct supervisor *sup, const struct db_vm *vm, struct api_error *err);
/* {"sandboxed","uid","pid","monitor_pid","cgroup"} of a running VM's worker, or NULL. */
json_t *supervisor_worker_json(struct supervisor *sup, const char *vm_id);
const struct sandbox_host *supervisor_sandbox(struct supervisor *sup);
unsigned supervisor_worker_count(struct supervisor *sup);
/* After a daemon (re)start: reattach to live workers, mark the dead ones. */
void supervisor_reattach_all(struct supervisor *sup);
/* The worker's run directory for a VM (owned by the caller). */
char *supervisor_vm_dir(struct supervisor *sup, const char *vm_id);
/*
 * Opens a file of a run directory, which its worker can write: never through
 * a symlink, never waiting on a FIFO, only a regular file. flags as open(2)
 * (O_CLOEXEC added); the descriptor, or -errno.
 */
int supervisor_open_run_file(const char *path, int flags, mode_t mode);

#endif
