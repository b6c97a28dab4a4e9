/* The worker's control socket server (protocol in worker_proto.h). */
#ifndef VMMD_WORKER_CONTROL_H
#define VMMD_WORKER_CONTROL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "console_buffer.h"
#include "vmmd/worker_proto.h"
#include "hv/hv.h"
#include "migration.h"

#define CONTROL_MAX_CLIENTS 16

/* What the control commands act on; vm is NULL between two boots of a reboot. */
struct worker_ctx {
    struct hv_vm *vm;
    struct console_buffer *console;
    bool paused;
    bool exit_on_reboot; /* set by "shutdown" */
    bool stop_requested; /* set by "stop" */
    unsigned boots;
    /* The devices' configuration, which "set_io_limits" updates for the next boot. */
    struct hv_disk_config *disks;
    struct hv_nic_config *nics;
    unsigned nr_disks, nr_nics;
    unsigned vcpus;
    /* A live migration out, started by "migrate": the VM moved when it reports DONE. */
    struct mig_send *migration;
    uint8_t ticket[MIG_TICKET_BYTES]; /* an incoming migration's */
    /* --fence-after: the VM stops when no daemon has been connected for this long */
    uint64_t fence_after_ms, lonely_since_ms;
    bool fenced;
};

#define CONTROL_MAX_FDS 2 /* descriptors a command line may carry (SCM_RIGHTS) */

struct control_client {
    int fd;
    int fds[CONTROL_MAX_FDS]; /* received with the line being read */
    unsigned nfds;
    bool attached; /* raw console mode */
    size_t len;
    char buf[WORKER_LINE_MAX];
};

struct control_server {
    int listen_fd;
    struct control_client clients[CONTROL_MAX_CLIENTS];
};

int control_server_open(struct control_server *s, const char *path);
void control_server_close(struct control_server *s);
/* Fills fds (room for 1 + CONTROL_MAX_CLIENTS) and returns how many. */
int control_server_pollfds(const struct control_server *s, struct pollfd *fds);
/* Connected clients (the daemon keeps one open while it runs). */
unsigned control_server_clients(const struct control_server *s);
/* Handles whatever poll() reported on the fds control_server_pollfds() gave. */
void control_server_handle(struct control_server *s, const struct pollfd *fds, int n,
                           struct worker_ctx *ctx);

#endif
