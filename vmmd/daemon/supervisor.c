/*
 * Worker supervision (see supervisor.h). Each worker has one persistent
 * connection; commands are queued and answered in order. The connection's
 * EOF is how we learn a worker ended; its exit file says why, and its
 * absence means it was killed. Every state change goes to the store in one
 * transaction with its event, then to the event stream.
 */
#include "supervisor.h"
#include "cluster.h"
#include "routes.h"
#include "networks.h"
#include "storage.h"
#include "vm_nics.h"
#include "daemon.h"
#include "lifecycle.h"
#include "log.h"
#include "vm_files.h"
#include "sandbox_host.h"
#include "vmmd/worker_proto.h"

#include "api/api.h"

#include <jansson.h>
#include <limits.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

#define CONNECT_RETRY_MS   5
#define CONNECT_TIMEOUT_MS 10000
/* From spawn to the worker's first status: building even a large VM takes well under this. */
#define START_TIMEOUT_MS 30000

struct cmd {
    struct cmd *next;
    char *line;
    sup_reply_fn fn;
    void *ctx;
    int fds[SUP_MAX_FDS]; /* sent with the line (SCM_RIGHTS), then closed */
    unsigned nfds;
};

static void free_cmd(struct cmd *c)
{
    for (unsigned i = 0; i < c->nfds; i++)
        close(c->fds[i]);
    free(c->line);
    free(c);
}

struct waiter {
    struct waiter *next;
    sup_done_fn fn;
    void *ctx;
};

struct worker {
    struct supervisor *sup;
    struct worker *next;
    char vm_id[DB_ID_LEN + 1];
    char *dir;
    int64_t pid;
    uv_pipe_t pipe;
    bool pipe_init, pipe_closing, connected, gone, reached_running, closing;
    unsigned open_handles; /* freed when the last of its libuv handles has closed */
    uv_connect_t connect_req;
    uv_timer_t timer; /* connect retries, then the kill deadline */
    unsigned waited_ms;
    uv_timer_t shutdown_timer;
    uv_timer_t kill_timer;  /* after a stop: the grace period */
    uv_timer_t start_timer; /* spawn to "running": the start's deadline */
    bool stop_requested;    /* a user's stop: it ends as "stopped", whatever the phase */
    bool status_seen;       /* it has answered the first status query */
    unsigned stop_grace_ms;
    char forced_reason[160]; /* the daemon ended it: "stopped" with this reason */
    uv_process_t *proc;
    struct cmd *head, *tail;
    char *rbuf;
    size_t rlen, rcap;
    json_t *header; /* a console reply waiting for its raw bytes */
    size_t expect_raw;
    sup_done_fn start_done;
    void *start_ctx;
    struct waiter *waiters;
    /* Its sandbox, as the kernel shows it (read_sandbox()): uid 0 when unconfined. */
    uint32_t uid;
    int64_t sandbox_pid; /* the sandboxed process; pid is its monitor */
    bool sandboxed;
};

struct supervisor {
    struct vmmd_daemon *d;
    struct worker *workers;
    struct sandbox_host sandbox;
};

static bool pid_is_our_worker(const struct worker *w);

static struct worker *find(struct supervisor *sup, const char *vm_id)
{
    for (struct worker *w = sup->workers; w; w = w->next)
        if (!w->gone && strcmp(w->vm_id, vm_id) == 0)
            return w;
    return NULL;
}

char *supervisor_vm_dir(struct supervisor *sup, const char *vm_id)
{
    size_t len = strlen(sup->d->run_dir) + strlen(vm_id) + 2;
    char *dir = malloc(len);

    if (dir)
        snprintf(dir, len, "%s/%s", sup->d->run_dir, vm_id);
    return dir;
}

static char *path_in(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);

    if (p)
        snprintf(p, len, "%s/%s", dir, name);
    return p;
}

int supervisor_open_run_file(const char *path, int flags, mode_t mode)
{
    int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode);
    struct stat st;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

/* Records a state change with its event and tells the event stream; 0 or -errno. */
static int set_state(struct vmmd_daemon *d, const char *vm_id, const char *state,
                     const char *reason, int64_t pid)
{
    int64_t ev = 0;
    int rc = db_vm_set_state(d->db, vm_id, state, reason, pid, &ev);

    if (rc)
        log_error("vm %s: cannot record state %s: %s", vm_id, state, strerror(-rc));
    else
        vmmd_event_committed(d, ev);
    return rc;
}

/* Why the worker ended, from its exit file: the new state and a reason. */
static void read_exit_file(struct worker *w, char *state, size_t slen, char *reason, size_t rlen)
{
    char *path = path_in(w->dir, WORKER_EXIT_FILE);
    int fd = path ? supervisor_open_run_file(path, O_RDONLY, 0) : -ENOMEM;
    json_error_t jerr;
    struct stat st;
    /* The worker wrote it: a small regular file, or it says nothing. */
    json_t *ex = fd >= 0 && fstat(fd, &st) == 0 && st.st_size <= 64 * 1024
                     ? json_loadfd(fd, 0, &jerr)
                     : NULL;
    const char *why = ex ? json_string_value(json_object_get(ex, "reason")) : NULL;
    const char *detail = ex ? json_string_value(json_object_get(ex, "detail")) : NULL;

    if (w->forced_reason[0]) {
        snprintf(state, slen, "stopped");
        snprintf(reason, rlen, "%s", w->forced_reason);
    } else if (w->stop_requested && (!why || strcmp(why, "poweroff") != 0)) {
        /* Asked to stop, it stopped: killed past its grace period or mid-start alike. */
        snprintf(state, slen, "stopped");
        snprintf(reason, rlen, "stopped");
    } else if (!why) {
        snprintf(state, slen, "crashed");
        snprintf(reason, rlen, "the worker process ended without saying why (killed?)");
    } else if (strcmp(why, "poweroff") == 0 || strcmp(why, "stopped") == 0) {
        snprintf(state, slen, "stopped");
        snprintf(reason, rlen, "%s",
                 strcmp(why, "poweroff") == 0 ? "guest powered off" : "stopped");
    } else if (strcmp(why, "fenced") == 0) {
        snprintf(state, slen, "stopped");
        snprintf(reason, rlen, "fenced: its daemon was gone, so the cluster may start it elsewhere");
    } else if (strcmp(why, "migrated") == 0) {
        /* It runs on another host now (the record goes: routes_migrations.c). */
        snprintf(state, slen, "stopped");
        snprintf(reason, rlen, "%s", detail ? detail : "migrated");
    } else if (strcmp(why, "reboot") == 0) {
        snprintf(state, slen, "stopped");
        snprintf(reason, rlen, "guest rebooted");
    } else if (strcmp(why, "error") == 0 && !w->reached_running) {
        /* The VMM could not set the VM up (not a kernel, too little memory...). */
        snprintf(state, slen, "stopped");
        snprintf(reason, rlen, "start failed: %s", detail ? detail : why);
    } else {
        snprintf(state, slen, "crashed");
        snprintf(reason, rlen, "%s: %s", why, detail ? detail : "");
    }
    json_decref(ex);
    if (fd >= 0)
        close(fd);
    free(path);
}

static void fail_commands(struct worker *w, const char *why)
{
    while (w->head) {
        struct cmd *c = w->head;
        w->head = c->next;
        if (c->fn)
            c->fn(w->sup->d, c->ctx, NULL, NULL, 0, why);
        free_cmd(c);
    }
    w->tail = NULL;
}

static void free_worker(struct worker *w)
{
    free(w->rbuf);
    free(w->dir);
    json_decref(w->header);
    free(w);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct worker *w = h->data;

    if (--w->open_handles == 0)
        free_worker(w);
}

static void unlink_worker(struct worker *w)
{
    struct worker **pp = &w->sup->workers;

    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
}

static void close_worker(struct worker *w)
{
    unlink_worker(w);
    w->closing = true;
    if (w->proc)
        w->proc->data = NULL; /* the exit callback only reaps from now on */
    uv_close((uv_handle_t *)&w->timer, on_handle_closed);
    uv_close((uv_handle_t *)&w->shutdown_timer, on_handle_closed);
    uv_close((uv_handle_t *)&w->kill_timer, on_handle_closed);
    uv_close((uv_handle_t *)&w->start_timer, on_handle_closed);
    if (w->pipe_init && !w->pipe_closing) {
        w->pipe_closing = true;
        uv_close((uv_handle_t *)&w->pipe, on_handle_closed);
    }
}

/* The worker has ended (or never came up): record why, wake everyone waiting. */
static void worker_gone(struct worker *w)
{
    struct vmmd_daemon *d = w->sup->d;
    char state[16], reason[300];

    if (w->gone)
        return;
    w->gone = true;
    read_exit_file(w, state, sizeof(state), reason, sizeof(reason));
    log_info("vm %s: worker %lld ended: %s (%s)", w->vm_id, (long long)w->pid, state, reason);
    cgroup_vm_remove(&w->sup->sandbox.cgroup, w->vm_id);
    if (strcmp(state, "crashed") == 0)
        d->metrics.workers_lost++;
    set_state(d, w->vm_id, state, reason, 0);
    fail_commands(w, "the worker has ended");
    routes_migration_worker_ended(d, w->vm_id, reason);
    if (w->start_done) {
        sup_done_fn fn = w->start_done;
        w->start_done = NULL;
        fn(d, w->start_ctx, -EIO, reason);
    }
    while (w->waiters) {
        struct waiter *wt = w->waiters;
        w->waiters = wt->next;
        wt->fn(d, wt->ctx, 0, reason);
        free(wt);
    }
    close_worker(w);
}

static void deliver(struct worker *w, json_t *reply, const uint8_t *extra, size_t extra_len)
{
    struct cmd *c = w->head;

    if (!c) {
        json_decref(reply);
        return;
    }
    w->head = c->next;
    if (!w->head)
        w->tail = NULL;
    if (c->fn)
        c->fn(w->sup->d, c->ctx, reply, extra, extra_len, NULL);
    json_decref(reply);
    free_cmd(c);
}

/* Parses whole replies out of the read buffer. */
static void parse_replies(struct worker *w)
{
    for (;;) {
        if (w->header) {
            if (w->rlen < w->expect_raw)
                return;
            json_t *h = w->header;
            size_t n = w->expect_raw;
            w->header = NULL;
            w->expect_raw = 0;
            deliver(w, h, (const uint8_t *)w->rbuf, n);
            memmove(w->rbuf, w->rbuf + n, w->rlen - n);
            w->rlen -= n;
            continue;
        }
        char *nl = memchr(w->rbuf, '\n', w->rlen);
        if (!nl)
            return;
        *nl = 0;
        json_error_t jerr;
        json_t *reply = json_loads(w->rbuf, 0, &jerr);
        size_t used = (size_t)(nl - w->rbuf) + 1;
        memmove(w->rbuf, w->rbuf + used, w->rlen - used);
        w->rlen -= used;
        if (!reply) {
            log_warn("vm %s: worker sent a malformed reply", w->vm_id);
            continue;
        }
        json_t *bytes = json_object_get(reply, "bytes");
        if (json_is_integer(bytes) && (json_integer_value(bytes) < 0 ||
                                       json_integer_value(bytes) > WORKER_CONSOLE_TAIL_MAX)) {
            /* A worker that lies about sizes is not trusted with our memory. */
            log_warn("vm %s: worker announced %lld console bytes, dropping it", w->vm_id,
                     (long long)json_integer_value(bytes));
            json_decref(reply);
            if (pid_is_our_worker(w))
                kill((pid_t)w->pid, SIGKILL);
            return;
        }
        if (json_is_true(json_object_get(reply, "ok")) && json_is_integer(bytes)) {
            w->header = reply;
            w->expect_raw = (size_t)json_integer_value(bytes);
            continue;
        }
        deliver(w, reply, NULL, 0);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct worker *w = h->data;

    if (w->rcap - w->rlen < suggested) {
        char *grown = realloc(w->rbuf, w->rlen + suggested);
        if (!grown) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        w->rbuf = grown;
        w->rcap = w->rlen + suggested;
    }
    *buf = uv_buf_init(w->rbuf + w->rlen, (unsigned)(w->rcap - w->rlen));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct worker *w = s->data;

    (void)buf;
    if (n < 0) {
        worker_gone(w);
        return;
    }
    w->rlen += (size_t)n;
    parse_replies(w);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows up as EOF on the read side */
    free(req->data);
    free(req);
}

static int send_line(struct worker *w, const char *line)
{
    uv_write_t *req = malloc(sizeof(*req));
    size_t len = strlen(line);
    char *copy = malloc(len + 1);
    uv_buf_t buf;

    if (!req || !copy) {
        free(req);
        free(copy);
        return -ENOMEM;
    }
    memcpy(copy, line, len);
    copy[len] = '\n';
    req->data = copy;
    buf = uv_buf_init(copy, (unsigned)len + 1);
    int rc = uv_write(req, (uv_stream_t *)&w->pipe, &buf, 1, on_written);
    if (rc) {
        free(copy);
        free(req);
    }
    return rc;
}

/*
 * A line with descriptors goes out with sendmsg() on the pipe's socket itself (libuv sends
 * handles only on IPC pipes, whose framing the worker does not speak). Only when nothing is
 * queued in libuv, so that it cannot overtake an earlier line; then the descriptors are closed
 * here (the message holds its own references). A failure shows up as the command's error.
 */
static int send_cmd(struct worker *w, struct cmd *c)
{
    uv_os_fd_t fd;

    if (!c->nfds)
        return send_line(w, c->line);
    if (uv_stream_get_write_queue_size((uv_stream_t *)&w->pipe) ||
        uv_fileno((uv_handle_t *)&w->pipe, &fd))
        return -EAGAIN;
    size_t len = strlen(c->line);
    char *line = malloc(len + 1);
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int) * SUP_MAX_FDS)];
    } cbuf;
    if (!line)
        return -ENOMEM;
    memcpy(line, c->line, len);
    line[len] = '\n';
    struct iovec iov = {.iov_base = line, .iov_len = len + 1};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = cbuf.space,
                         .msg_controllen = CMSG_SPACE(sizeof(int) * c->nfds)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * c->nfds);
    memcpy(CMSG_DATA(cm), c->fds, sizeof(int) * c->nfds);
    ssize_t n;
    do
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    int rc = n < 0 ? -errno : (size_t)n < len + 1 ? -EAGAIN : 0;
    free(line);
    for (unsigned i = 0; i < c->nfds; i++)
        close(c->fds[i]);
    c->nfds = 0;
    return rc;
}

static struct cmd *make_cmd(json_t *cmd, sup_reply_fn fn, void *ctx)
{
    struct cmd *c = calloc(1, sizeof(*c));

    if (c) {
        c->line = json_dumps(cmd, JSON_COMPACT);
        c->fn = fn;
        c->ctx = ctx;
    }
    json_decref(cmd);
    return c;
}

static int queue_command(struct worker *w, json_t *cmd, sup_reply_fn fn, void *ctx)
{
    struct cmd *c = make_cmd(cmd, fn, ctx);

    if (!c)
        return -ENOMEM;
    if (w->tail)
        w->tail->next = c;
    else
        w->head = c;
    w->tail = c;
    /* A failed write means the connection is going: its EOF fails the queue, c included. */
    if (w->connected)
        send_line(w, c->line);
    return 0;
}

/*
 * A start the daemon gives up on (no answer in time, or a state it cannot
 * record): the worker is killed, so no VM runs that the store does not
 * know of, and it ends as "stopped" with the reason.
 */
static void fail_start(struct worker *w, const char *why)
{
    sup_done_fn fn = w->start_done;

    w->start_done = NULL;
    uv_timer_stop(&w->start_timer);
    snprintf(w->forced_reason, sizeof(w->forced_reason), "start failed: %s", why);
    log_warn("vm %s: %s", w->vm_id, w->forced_reason);
    if (pid_is_our_worker(w))
        kill((pid_t)w->pid, SIGKILL);
    if (fn)
        fn(w->sup->d, w->start_ctx, -EIO, w->forced_reason);
}

/* A worker started or found again must answer its first status in time. */
static void on_start_deadline(uv_timer_t *t)
{
    struct worker *w = t->data;
    bool ours = pid_is_our_worker(w);

    if (w->gone || w->status_seen)
        return;
    fail_start(w, "the worker did not report within the start deadline");
    if (!ours)
        worker_gone(w); /* no kill, so no EOF will tell */
}

/*
 * What the kernel says of the worker's sandbox, not what the worker says (its
 * guest may have taken it over): the monitor's child runs the VM, and its
 * uid and seccomp mode are in its status. Unsandboxed, the worker is alone.
 */
static void read_sandbox(struct worker *w)
{
    char path[96], line[128];
    long long child = 0;
    unsigned uid = 0;
    int seccomp = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%lld/task/%lld/children", (long long)w->pid,
             (long long)w->pid);
    if ((f = fopen(path, "re"))) {
        if (fscanf(f, "%lld", &child) != 1)
            child = 0;
        fclose(f);
    }
    w->sandbox_pid = child > 0 ? child : w->pid;
    snprintf(path, sizeof(path), "/proc/%lld/status", (long long)w->sandbox_pid);
    if ((f = fopen(path, "re"))) {
        while (fgets(line, sizeof(line), f)) {
            sscanf(line, "Uid: %u", &uid);
            sscanf(line, "Seccomp: %d", &seccomp);
        }
        fclose(f);
    }
    w->uid = uid;
    w->sandboxed = child > 0 && uid != 0 && seccomp == 2;
}

static void on_status(struct vmmd_daemon *d, void *ctx, json_t *reply, const uint8_t *extra,
                      size_t extra_len, const char *error)
{
    struct worker *w = ctx;
    const char *state = reply ? json_string_value(json_object_get(reply, "state")) : NULL;
    int rc;

    (void)extra;
    (void)extra_len;
    (void)error;
    if (!state || w->forced_reason[0])
        return; /* it ended meanwhile, or the daemon gave up on it: worker_gone() records it */
    w->status_seen = true;
    w->reached_running = true;
    read_sandbox(w);
    rc = set_state(d, w->vm_id, state, NULL, w->pid);
    if (rc && w->start_done) {
        char why[128];
        snprintf(why, sizeof(why), "the state store cannot record it: %s", strerror(-rc));
        fail_start(w, why);
        return;
    }
    uv_timer_stop(&w->start_timer);
    if (w->start_done) {
        sup_done_fn fn = w->start_done;
        w->start_done = NULL;
        fn(d, w->start_ctx, 0, NULL);
    }
}

static void try_connect(struct worker *w);
static void on_kill_deadline(uv_timer_t *t);

/*
 * Whether pid is still this VM's worker: after a host reboot or a long daemon
 * outage the stored pid may belong to anything, which must never be killed.
 */
static bool pid_is_our_worker(const struct worker *w)
{
    char path[64], cmdline[8192], *sock;
    size_t len;
    bool ours = false;
    FILE *f;

    if (w->pid <= 0)
        return false;
    snprintf(path, sizeof(path), "/proc/%lld/cmdline", (long long)w->pid);
    f = fopen(path, "r");
    if (!f)
        return false;
    len = fread(cmdline, 1, sizeof(cmdline) - 1, f);
    fclose(f);
    sock = path_in(w->dir, WORKER_CONTROL_SOCKET);
    for (size_t i = 0; sock && i < len; i += strlen(cmdline + i) + 1) {
        cmdline[len] = 0;
        if (strcmp(cmdline + i, sock) == 0)
            ours = true;
    }
    free(sock);
    return ours;
}

static void on_retry(uv_timer_t *t)
{
    try_connect(t->data);
}

/* The failed connection's pipe is closed: try again, or give up. */
static void on_pipe_closed_after_failure(uv_handle_t *h)
{
    struct worker *w = h->data;
    bool alive = pid_is_our_worker(w);

    w->pipe_init = w->pipe_closing = false;
    if (--w->open_handles == 0 && w->closing) {
        free_worker(w);
        return;
    }
    if (w->closing || w->gone)
        return;
    /* An unknown pid (a start recorded just before its worker existed) gets the whole
     * connect deadline: its worker may still be coming up. */
    if ((!alive && w->pid != 0) || w->waited_ms >= CONNECT_TIMEOUT_MS) {
        if (alive)
            kill((pid_t)w->pid, SIGKILL); /* verified ours, but it never answered */
        worker_gone(w);
        return;
    }
    w->waited_ms += CONNECT_RETRY_MS;
    uv_timer_start(&w->timer, on_retry, CONNECT_RETRY_MS, 0);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct worker *w = req->data;
    struct cmd *st;

    if (w->closing || w->gone)
        return;
    if (status < 0) {
        /* Not listening yet (starting) or dead (after a daemon restart). */
        w->pipe_closing = true;
        uv_close((uv_handle_t *)&w->pipe, on_pipe_closed_after_failure);
        return;
    }
    w->connected = true;
    /* A worker found again (after a restart, or one the store lost): its pid from the kernel,
     * and only if that process is this VM's worker, run by us: anything else listening on
     * the socket is not adopted. A worker we spawned keeps the pid uv_spawn gave. */
    if (!w->proc) {
        uv_os_fd_t fd;
        struct ucred cred = {0};
        socklen_t clen = sizeof(cred);

        if (uv_fileno((uv_handle_t *)&w->pipe, &fd) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
            w->pid = cred.pid;
        if (cred.uid != geteuid() || !pid_is_our_worker(w)) {
            log_warn("vm %s: what listens on its control socket (pid %lld) is not its worker",
                     w->vm_id, (long long)w->pid);
            w->pid = 0; /* never signalled */
            snprintf(w->forced_reason, sizeof(w->forced_reason),
                     "its control socket was not served by its worker");
            worker_gone(w);
            return;
        }
    }
    uv_read_start((uv_stream_t *)&w->pipe, on_alloc, on_read);
    /* A status query goes first; commands queued meanwhile follow in order. */
    st = make_cmd(json_pack("{s:s}", "cmd", "status"), on_status, w);
    if (st) {
        st->next = w->head;
        w->head = st;
        if (!w->tail)
            w->tail = st;
    }
    for (struct cmd *c = w->head; c; c = c->next)
        send_line(w, c->line);
    /* A stop asked for before the connection: its kill may not have reached the worker. */
    if (w->stop_requested) {
        queue_command(w, json_pack("{s:s}", "cmd", "stop"), NULL, NULL);
        uv_timer_start(&w->kill_timer, on_kill_deadline, w->stop_grace_ms, 0);
    }
}

static void try_connect(struct worker *w)
{
    char *sock = path_in(w->dir, WORKER_CONTROL_SOCKET);

    uv_pipe_init(w->sup->d->loop, &w->pipe, 0);
    w->pipe.data = w;
    w->pipe_init = true;
    w->open_handles++;
    w->connect_req.data = w;
    uv_pipe_connect(&w->connect_req, &w->pipe, sock, on_connect);
    free(sock);
}

static struct worker *new_worker(struct supervisor *sup, const char *vm_id, int64_t pid)
{
    struct worker *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    w->sup = sup;
    snprintf(w->vm_id, sizeof(w->vm_id), "%s", vm_id);
    w->dir = supervisor_vm_dir(sup, vm_id);
    w->pid = pid;
    uv_timer_init(sup->d->loop, &w->timer);
    w->timer.data = w;
    uv_timer_init(sup->d->loop, &w->shutdown_timer);
    w->shutdown_timer.data = w;
    uv_timer_init(sup->d->loop, &w->kill_timer);
    w->kill_timer.data = w;
    uv_timer_init(sup->d->loop, &w->start_timer);
    w->start_timer.data = w;
    w->open_handles = 4;
    w->next = sup->workers;
    sup->workers = w;
    return w;
}

/* A worker process we started; freed with its handle (proc comes first). */
struct spawned {
    uv_process_t proc;
    struct supervisor *sup;
    char vm_id[DB_ID_LEN + 1];
};

static void on_process_exit(uv_process_t *proc, int64_t status, int signo)
{
    struct worker *w = proc->data;

    (void)status;
    (void)signo;
    struct spawned *sp = (struct spawned *)proc;

    /* Its processes are all gone now: a cgroup still busy at its EOF goes now, unless
     * the VM has been started again meanwhile. */
    if (!find(sp->sup, sp->vm_id))
        cgroup_vm_remove(&sp->sup->sandbox.cgroup, sp->vm_id);
    if (w) {
        w->proc = NULL;
        /* If it never connected, its exit is the only news we get. */
        if (!w->connected && !w->gone) {
            uv_timer_stop(&w->timer);
            worker_gone(w);
        }
    }
    uv_close((uv_handle_t *)proc, (uv_close_cb)free);
}

static void add_arg(char **argv, int *argc, const char *a)
{
    argv[(*argc)++] = (char *)a;
}

/* FNV-1a of a VM id: what a VM gets the same of each time (its MACs, its first uid). */
/* The worker flags for the VM's disks and NICs (definitions the API already validated). */
struct device_args {
    char text[API_MAX_DISKS + API_MAX_NICS][PATH_MAX + 160];
    unsigned n;
};

/* A file's descriptor number in the worker: stdio first, then the VM's files in order. */
#define CHILD_FD(idx) (3 + (idx))

/* A device's "limits" object as the worker's ",bytes_per_s=N,..." (the API checked it). */
static void append_limits(char *buf, size_t size, json_t *device)
{
    const char *key;
    json_t *v;

    json_object_foreach(json_object_get(device, "limits"), key, v)
    {
        size_t used = strlen(buf);
        if (json_integer_value(v) > 0)
            snprintf(buf + used, size - used, ",%s=%lld", key, (long long)json_integer_value(v));
    }
}

static void add_device_args(char **argv, int *argc, struct device_args *da, const struct db_vm *vm,
                            const struct vm_files *files, struct networks *nets)
{
    json_t *disks = json_loads(vm->disks_json, 0, NULL), *nics = json_loads(vm->nics_json, 0, NULL);
    json_t *item;
    size_t i;

    json_array_foreach(disks, i, item)
    {
        if (da->n == sizeof(da->text) / sizeof(da->text[0]))
            break;
        if (i >= files->nr_disks)
            break;
        snprintf(da->text[da->n], sizeof(da->text[0]), "%s%s,fd=%d",
                 json_string_value(json_object_get(item, "path")),
                 json_is_true(json_object_get(item, "readonly")) ? ",ro" : "",
                 CHILD_FD(files->disks[i]));
        append_limits(da->text[da->n], sizeof(da->text[0]), item);
        add_arg(argv, argc, "--disk");
        add_arg(argv, argc, da->text[da->n++]);
    }
    json_array_foreach(nics, i, item)
    {
        json_t *tap = json_object_get(item, "tap"), *bridge = json_object_get(item, "bridge");
        const char *net = json_string_value(json_object_get(item, "network"));
        char mac[18];

        if (da->n == sizeof(da->text) / sizeof(da->text[0]))
            break;
        vmmd_nic_mac(vm->id, i, json_string_value(json_object_get(item, "mac")), mac);
        /* A managed network is its bridge: the worker makes a tap and joins it. */
        snprintf(da->text[da->n], sizeof(da->text[0]), "%s=%s,mac=%s", tap ? "tap" : "bridge",
                 tap      ? json_string_value(tap)
                 : bridge ? json_string_value(bridge)
                          : networks_bridge_of(nets, net),
                 mac);
        append_limits(da->text[da->n], sizeof(da->text[0]), item);
        add_arg(argv, argc, "--nic");
        add_arg(argv, argc, da->text[da->n++]);
    }
    json_decref(disks);
    json_decref(nics);
}

/* Whether something listens on a worker control socket: a live worker, known or not. */
static bool socket_answers(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, rc;

    /* connect() would follow a symlink planted in the run directory. */
    if (strlen(path) >= sizeof(addr.sun_path) || lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return false;
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
    /* EAGAIN: a listener whose backlog is full is still a listener. */
    rc = rc == 0 || errno == EAGAIN || errno == EINPROGRESS;
    close(fd);
    return rc;
}

/* Connects to a worker found running, learns its state and records it. */
static void adopt(struct supervisor *sup, const char *vm_id, int64_t pid, bool reached_running)
{
    struct worker *w = new_worker(sup, vm_id, pid);

    if (!w)
        return;
    w->reached_running = reached_running;
    uv_timer_start(&w->start_timer, on_start_deadline, START_TIMEOUT_MS, 0);
    try_connect(w);
}

/*
 * The uid the VM's worker runs as: free among the live workers, and the same
 * one for a VM each time where it can be (its id picks where to look first).
 */
static uint32_t pick_uid(struct supervisor *sup, const char *vm_id)
{
    uint32_t h = vmmd_id_hash(vm_id), n = sup->sandbox.uid_count;

    for (uint32_t i = 0; i < n; i++) {
        uint32_t uid = sup->sandbox.uid_base + (h + i) % n;
        bool used = false;
        for (struct worker *w = sup->workers; w && !used; w = w->next)
            used = !w->gone && w->uid == uid;
        if (!used)
            return uid;
    }
    return sup->sandbox.uid_base; /* unreachable: --max-vms is below the range's size */
}

static void vm_cgroup_limits(const struct db_vm *vm, struct cgroup_limits *l)
{
    *l = (struct cgroup_limits){
        .memory_bytes = (vm->memory_mib << 20) + CGROUP_WORKER_OVERHEAD,
        /* The worker's threads (see vmmd/worker/run.c), with room for the monitor. */
        .pids = vm->vcpus + 2 + API_MAX_DISKS + API_MAX_NICS + 16,
        .cpu_quota_pct = vm->cpu_quota_pct,
        .cpu_weight = vm->cpu_weight,
    };
}

/* The VM's cgroup with its limits, and its directories for the worker's --cgroup. */
static int vm_cgroup_create(struct supervisor *sup, const struct db_vm *vm,
                            char dirs[CG_COUNT][PATH_MAX], struct api_error *err)
{
    struct cgroup_limits l;
    char why[PATH_MAX + 128];

    vm_cgroup_limits(vm, &l);
    for (int c = 0; c < CG_COUNT; c++)
        cgroup_vm_dir(&sup->sandbox.cgroup, (enum cgroup_controller)c, vm->id, dirs[c]);
    if (cgroup_vm_create(&sup->sandbox.cgroup, vm->id, &l, why, sizeof(why)))
        return api_fail(err, API_ERR_INTERNAL, "start failed: %s", why);
    return 0;
}

int supervisor_set_limits(struct supervisor *sup, const struct db_vm *vm, struct api_error *err)
{
    struct cgroup_limits l;
    char why[PATH_MAX + 128];

    if (!find(sup, vm->id))
        return 0; /* applied at its next start */
    vm_cgroup_limits(vm, &l);
    if (cgroup_vm_set_limits(&sup->sandbox.cgroup, vm->id, &l, why, sizeof(why)))
        return api_fail(err, API_ERR_INTERNAL, "%s", why);
    return 0;
}

json_t *supervisor_worker_json(struct supervisor *sup, const char *vm_id)
{
    struct worker *w = find(sup, vm_id);
    char dir[PATH_MAX];

    if (!w || !w->status_seen)
        return NULL;
    cgroup_vm_dir(&sup->sandbox.cgroup, CG_MEMORY, vm_id, dir);
    return json_pack("{s:b, s:I, s:I, s:I, s:s?}", "sandboxed", w->sandboxed, "uid",
                     (json_int_t)w->uid, "pid", (json_int_t)w->sandbox_pid, "monitor_pid",
                     (json_int_t)w->pid, "cgroup", dir[0] ? dir : NULL);
}

const struct sandbox_host *supervisor_sandbox(struct supervisor *sup)
{
    return &sup->sandbox;
}

int supervisor_start(struct supervisor *sup, const struct db_vm *vm,
                     const struct sup_restore *restore, sup_done_fn done, void *ctx,
                     struct api_error *err)
{
    struct vmmd_daemon *d = sup->d;
    struct worker *w;
    uv_process_options_t opts;
    uv_stdio_container_t stdio[3 + VM_FILES_MAX + 2];
    char vcpus[16], memory[24], kernel_fd[16], initrd_fd[16], restore_fd[2][16], *paths[4] = {0};
    char *argv[40 + 2 * (API_MAX_DISKS + API_MAX_NICS)];
    struct device_args *devices;
    char **opts_env = NULL;
    struct spawned *spawned;
    struct vm_files files;
    struct db_vm resolved = *vm; /* shares vm's strings but disks_json, which is its own */
    char sandbox_uid[16], cgroup_dirs[CG_COUNT][PATH_MAX];
    int argc = 0, log_fd, rc;

    resolved.disks_json = NULL;
    if (find(sup, vm->id))
        return api_fail(err, API_ERR_CONFLICT, "VM '%s' already has a worker", vm->name);
    if (networks_check_start(d->nets, vm, err))
        return -1;
    char *dir = supervisor_vm_dir(sup, vm->id);
    if (!dir)
        return api_fail(err, API_ERR_INTERNAL, "out of memory");
    paths[0] = path_in(dir, WORKER_CONTROL_SOCKET);
    paths[1] = path_in(dir, WORKER_CONSOLE_LOG);
    paths[2] = path_in(dir, WORKER_EXIT_FILE);
    paths[3] = path_in(dir, WORKER_LOG);
    free(dir);
    if (!paths[0] || !paths[1] || !paths[2] || !paths[3]) {
        rc = api_fail(err, API_ERR_INTERNAL, "out of memory");
        goto out_paths;
    }
    /* Never two workers on one VM's disks: one the store lost track of is adopted instead. */
    if (socket_answers(paths[0])) {
        log_warn("vm %s: a worker the store did not list is running; reattaching to it", vm->name);
        adopt(sup, vm->id, 0, true);
        rc = api_fail(err, API_ERR_CONFLICT,
                      "VM '%s' still has a live worker (its control socket answers); the daemon "
                      "has reattached to it",
                      vm->name);
        goto out_paths;
    }
    if (sup->sandbox.required && !sup->sandbox.enabled) {
        rc = api_fail(err, API_ERR_CONFLICT,
                      "this daemon requires a sandbox for every worker (--require-sandbox) and "
                      "this host cannot give one: %s",
                      sup->sandbox.detail);
        goto out_paths;
    }
    /* Volumes become their files here, at each start: the store names them, not paths. */
    if ((rc = storage_resolve_disks(d->storage, vm->disks_json, &resolved.disks_json, err)))
        goto out_paths;
    vm = &resolved;
    if ((rc = vm_files_open(&d->limits, storage_pool_limits(d->storage), vm, d->cfg->firmware,
                            &files, err)))
        goto out_paths;
    /* Recorded before the worker exists: a start the store cannot record does not run. */
    if ((rc = set_state(d, vm->id, "starting", NULL, 0))) {
        rc = api_fail(err, rc == -ENOSPC ? API_ERR_INSUFFICIENT_STORAGE : API_ERR_INTERNAL,
                      "the state store cannot record the start: %s", strerror(-rc));
        goto out_files;
    }
    w = new_worker(sup, vm->id, 0);
    if (!w || !w->dir) {
        if (w) {
            w->gone = true;
            close_worker(w);
        }
        set_state(d, vm->id, "stopped", "start failed: out of memory", 0);
        rc = api_fail(err, API_ERR_INTERNAL, "out of memory");
        goto out_files;
    }
    mkdir(d->run_dir, 0700);
    mkdir(w->dir, 0700);
    if (vm_cgroup_create(sup, vm, cgroup_dirs, err)) {
        w->gone = true;
        close_worker(w);
        set_state(d, vm->id, "stopped", err->detail, 0);
        rc = -1;
        goto out_files;
    }
    unlink(paths[0]);
    unlink(paths[2]); /* a stale exit file would explain the wrong death */
    log_fd = supervisor_open_run_file(paths[3], O_WRONLY | O_CREAT | O_APPEND, 0600);

    snprintf(vcpus, sizeof(vcpus), "%u", vm->vcpus);
    snprintf(memory, sizeof(memory), "%llu", (unsigned long long)vm->memory_mib);
    add_arg(argv, &argc, d->self_exe);
    add_arg(argv, &argc, "run");
    /* Early, so that pid_is_our_worker() finds it however long the rest is. */
    add_arg(argv, &argc, "--control");
    add_arg(argv, &argc, paths[0]);
    /* Paths only name the files in messages: the worker reads the descriptors. */
    if (files.firmware >= 0) {
        add_arg(argv, &argc, "--firmware");
        add_arg(argv, &argc, d->cfg->firmware);
        snprintf(kernel_fd, sizeof(kernel_fd), "%d", CHILD_FD(files.firmware));
        add_arg(argv, &argc, "--firmware-fd");
        add_arg(argv, &argc, kernel_fd);
    } else {
        add_arg(argv, &argc, "--kernel");
        add_arg(argv, &argc, vm->kernel);
        snprintf(kernel_fd, sizeof(kernel_fd), "%d", CHILD_FD(files.kernel));
        add_arg(argv, &argc, "--kernel-fd");
        add_arg(argv, &argc, kernel_fd);
    }
    if (vm->initrd) {
        add_arg(argv, &argc, "--initrd");
        add_arg(argv, &argc, vm->initrd);
        snprintf(initrd_fd, sizeof(initrd_fd), "%d", CHILD_FD(files.initrd));
        add_arg(argv, &argc, "--initrd-fd");
        add_arg(argv, &argc, initrd_fd);
    }
    if (vm->cmdline) {
        add_arg(argv, &argc, "--cmdline");
        add_arg(argv, &argc, vm->cmdline);
    }
    add_arg(argv, &argc, "--mode");
    add_arg(argv, &argc, vm->mode);
    add_arg(argv, &argc, "--vcpus");
    add_arg(argv, &argc, vcpus);
    add_arg(argv, &argc, "--memory");
    add_arg(argv, &argc, memory);
    add_arg(argv, &argc, "--console-log");
    add_arg(argv, &argc, paths[1]);
    add_arg(argv, &argc, "--exit-file");
    add_arg(argv, &argc, paths[2]);
    /* A cluster may start an "ha" VM elsewhere once this member's lease is gone: its worker
     * stops by itself well before that when this daemon is gone (cluster.c). */
    char fence[24];
    if (d->cluster && strcmp(vm->ha, "restart") == 0) {
        snprintf(fence, sizeof(fence), "%llu", (unsigned long long)cluster_fence_ms(d->cluster));
        add_arg(argv, &argc, "--fence-after");
        add_arg(argv, &argc, fence);
    }
    if (sup->sandbox.enabled) {
        w->uid = pick_uid(sup, vm->id);
        snprintf(sandbox_uid, sizeof(sandbox_uid), "%u", w->uid);
        add_arg(argv, &argc, "--sandbox-uid");
        add_arg(argv, &argc, sandbox_uid);
    }
    /* v2: one directory for every controller; v1: one per controller. */
    for (int c = 0; c < CG_COUNT && cgroup_dirs[c][0]; c++) {
        if (c && strcmp(cgroup_dirs[c], cgroup_dirs[0]) == 0)
            break;
        add_arg(argv, &argc, "--cgroup");
        add_arg(argv, &argc, cgroup_dirs[c]);
    }
    devices = calloc(1, sizeof(*devices));
    if (devices)
        add_device_args(argv, &argc, devices, vm, &files, sup->d->nets);
    /* A restore: the snapshot's files follow the VM's, as the last two descriptors. */
    unsigned nfds = files.count;
    char incoming_fd[16], *ticket_var = NULL;
    if (restore && restore->incoming_fd >= 0) {
        snprintf(incoming_fd, sizeof(incoming_fd), "%d", CHILD_FD(nfds));
        add_arg(argv, &argc, "--incoming-fd");
        add_arg(argv, &argc, incoming_fd);
        stdio[CHILD_FD(nfds)].flags = UV_INHERIT_FD;
        stdio[CHILD_FD(nfds)].data.fd = restore->incoming_fd;
        nfds++;
        /* The ticket in the environment: a command line is readable by every user. */
        size_t n = 0;
        while (environ[n])
            n++;
        opts_env = calloc(n + 2, sizeof(char *));
        if (opts_env && asprintf(&ticket_var, "VMMD_MIGRATION_TICKET=%s", restore->ticket) > 0) {
            memcpy(opts_env, environ, n * sizeof(char *));
            opts_env[n] = ticket_var;
        }
    } else if (restore) {
        static const char *const opt[2] = {"--restore-state-fd", "--restore-memory-fd"};
        const int fds[2] = {restore->state_fd, restore->mem_fd};
        for (int i = 0; i < 2; i++) {
            snprintf(restore_fd[i], sizeof(restore_fd[i]), "%d", CHILD_FD(nfds));
            add_arg(argv, &argc, opt[i]);
            add_arg(argv, &argc, restore_fd[i]);
            stdio[CHILD_FD(nfds)].flags = UV_INHERIT_FD;
            stdio[CHILD_FD(nfds)].data.fd = fds[i];
            nfds++;
        }
    }
    argv[argc] = NULL;

    memset(&opts, 0, sizeof(opts));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = stdio[2].flags = log_fd >= 0 ? UV_INHERIT_FD : UV_IGNORE;
    stdio[1].data.fd = stdio[2].data.fd = log_fd;
    for (unsigned i = 0; i < files.count; i++) {
        stdio[CHILD_FD(i)].flags = UV_INHERIT_FD;
        stdio[CHILD_FD(i)].data.fd = files.fds[i];
    }
    opts.file = d->self_exe;
    opts.args = argv;
    opts.stdio = stdio;
    opts.stdio_count = (int)CHILD_FD(nfds);
    opts.env = opts_env;
    opts.exit_cb = on_process_exit;
    /* Its own session: the worker outlives the daemon, even a kill -9 of it. */
    opts.flags = UV_PROCESS_DETACHED;
    spawned = devices ? calloc(1, sizeof(*spawned)) : NULL;
    if (spawned) {
        spawned->sup = sup;
        _Static_assert(sizeof(spawned->vm_id) == sizeof(vm->id), "an id fits");
        memcpy(spawned->vm_id, vm->id, sizeof(spawned->vm_id));
    }
    w->proc = spawned ? &spawned->proc : NULL;
    rc = w->proc ? uv_spawn(d->loop, w->proc, &opts) : UV_ENOMEM;
    free(devices);
    free(ticket_var);
    free(opts_env);
    if (log_fd >= 0)
        close(log_fd);
    if (rc) {
        char why[128];

        /* uv_spawn() registers the handle even when it fails: it must be closed. */
        if (w->proc)
            uv_close((uv_handle_t *)w->proc, (uv_close_cb)free);
        w->proc = NULL;
        w->gone = true;
        close_worker(w);
        snprintf(why, sizeof(why), "start failed: cannot start a worker: %s", uv_strerror(rc));
        set_state(d, vm->id, "stopped", why, 0);
        rc = api_fail(err, API_ERR_INTERNAL, "%s", why);
        goto out_files;
    }
    w->proc->data = w;
    w->pid = w->proc->pid;
    w->start_done = done;
    w->start_ctx = ctx;
    d->metrics.workers_started++;
    uv_timer_start(&w->start_timer, on_start_deadline,
                   restore && restore->start_timeout_ms ? restore->start_timeout_ms
                                                        : START_TIMEOUT_MS,
                   0);
    try_connect(w);
    rc = 0;
out_files:
    vm_files_close(&files);
out_paths:
    for (int i = 0; i < 4; i++)
        free(paths[i]);
    free(resolved.disks_json);
    return rc;
}

int supervisor_command_fds(struct supervisor *sup, const char *vm_id, json_t *cmd,
                           const int *fds, unsigned nfds, sup_reply_fn fn, void *ctx)
{
    struct worker *w = find(sup, vm_id);
    struct cmd *c;
    int rc;

    /* Alone on the connection: nothing queued that the direct send could overtake. */
    if (!w || !w->connected || w->head || nfds > SUP_MAX_FDS) {
        json_decref(cmd);
        return !w ? -ENOENT : -EBUSY;
    }
    c = make_cmd(cmd, fn, ctx);
    if (!c)
        return -ENOMEM;
    for (unsigned i = 0; i < nfds; i++) {
        c->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
        if (c->fds[i] < 0) {
            rc = -errno;
            free_cmd(c);
            return rc;
        }
        c->nfds = i + 1;
    }
    if ((rc = send_cmd(w, c))) {
        free_cmd(c);
        return rc;
    }
    w->head = w->tail = c;
    return 0;
}

int supervisor_command(struct supervisor *sup, const char *vm_id, json_t *cmd, sup_reply_fn fn,
                       void *ctx)
{
    struct worker *w = find(sup, vm_id);

    if (!w) {
        json_decref(cmd);
        return -ENOENT;
    }
    return queue_command(w, cmd, fn, ctx);
}

int supervisor_wait_exit(struct supervisor *sup, const char *vm_id, sup_done_fn done, void *ctx)
{
    struct worker *w = find(sup, vm_id);
    struct waiter *wt;

    if (!w) {
        done(sup->d, ctx, -ENOENT, NULL);
        return -ENOENT;
    }
    wt = calloc(1, sizeof(*wt));
    if (!wt)
        return -ENOMEM;
    wt->fn = done;
    wt->ctx = ctx;
    wt->next = w->waiters;
    w->waiters = wt;
    return 0;
}

static void on_kill_deadline(uv_timer_t *t)
{
    struct worker *w = t->data;

    if (pid_is_our_worker(w)) {
        log_warn("vm %s: worker %lld did not stop in time, killing it", w->vm_id,
                 (long long)w->pid);
        kill((pid_t)w->pid, SIGKILL);
    }
}

int supervisor_stop(struct supervisor *sup, const char *vm_id, unsigned grace_ms, sup_done_fn done,
                    void *ctx)
{
    struct worker *w = find(sup, vm_id);
    int rc;

    if (!w) {
        if (done)
            done(sup->d, ctx, -ENOENT, NULL);
        return -ENOENT;
    }
    if (done && (rc = supervisor_wait_exit(sup, vm_id, done, ctx)))
        return rc;
    w->stop_requested = true;
    w->stop_grace_ms = grace_ms;
    if (w->connected)
        queue_command(w, json_pack("{s:s}", "cmd", "stop"), NULL, NULL);
    uv_timer_stop(&w->shutdown_timer);
    /* Not connected yet: kill now; the connect retries then find it dead. */
    if (!uv_is_active((uv_handle_t *)&w->kill_timer))
        uv_timer_start(&w->kill_timer, on_kill_deadline, w->connected ? grace_ms : 0, 0);
    return 0;
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    struct worker *w = t->data;

    log_info("vm %s: the guest did not shut down in time, stopping it", w->vm_id);
    supervisor_stop(w->sup, w->vm_id, 5000, NULL, NULL);
}

int supervisor_shutdown(struct supervisor *sup, const char *vm_id, unsigned timeout_s)
{
    struct worker *w = find(sup, vm_id);
    int rc;

    if (!w)
        return -ENOENT;
    rc = queue_command(w, json_pack("{s:s}", "cmd", "shutdown"), NULL, NULL);
    uv_timer_start(&w->shutdown_timer, on_shutdown_timeout, (uint64_t)timeout_s * 1000, 0);
    return rc;
}

bool supervisor_has_worker(struct supervisor *sup, const char *vm_id)
{
    return find(sup, vm_id) != NULL;
}

unsigned supervisor_worker_count(struct supervisor *sup)
{
    unsigned n = 0;

    for (struct worker *w = sup->workers; w; w = w->next)
        n += !w->gone;
    return n;
}

void supervisor_reattach_all(struct supervisor *sup)
{
    struct db_vm *vms = NULL;
    size_t n = 0;

    if (db_vm_list(sup->d->db, NULL, &vms, &n))
        return;
    for (size_t i = 0; i < n; i++) {
        int st = vmmd_state_parse(vms[i].state);

        if (st < 0 || !vmmd_state_has_worker((enum vmmd_state)st))
            continue;
        log_info("vm %s: looking for its worker %lld", vms[i].name, (long long)vms[i].worker_pid);
        adopt(sup, vms[i].id, vms[i].worker_pid, st != VMMD_ST_STARTING);
    }
    /* Then every live worker of this state directory, listed or not: a start whose state
     * the store lost must not lead to a second worker on the same disks. */
    DIR *dir = opendir(sup->d->run_dir);
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        const struct db_vm *vm = NULL;
        char *vm_dir, *sock;

        if (e->d_name[0] == '.' || find(sup, e->d_name))
            continue;
        for (size_t i = 0; i < n && !vm; i++)
            if (strcmp(vms[i].id, e->d_name) == 0)
                vm = &vms[i];
        vm_dir = supervisor_vm_dir(sup, e->d_name);
        sock = vm_dir ? path_in(vm_dir, WORKER_CONTROL_SOCKET) : NULL;
        if (sock && socket_answers(sock)) {
            if (vm) {
                log_warn("vm %s: found a live worker the store lists as %s; reattaching", vm->name,
                         vm->state);
                adopt(sup, vm->id, 0, true);
            } else {
                log_warn("run directory %s: a live worker of a VM the store does not know",
                         e->d_name);
            }
        }
        free(sock);
        free(vm_dir);
    }
    if (dir)
        closedir(dir);
    db_vm_list_free(vms, n);
}

struct supervisor *supervisor_create(struct vmmd_daemon *d)
{
    struct supervisor *sup = calloc(1, sizeof(*sup));

    if (sup) {
        sup->d = d;
        sandbox_host_init(&sup->sandbox, d->cfg);
    }
    return sup;
}

void supervisor_destroy(struct supervisor *sup)
{
    while (sup->workers) {
        struct worker *w = sup->workers;
        w->gone = true; /* leaving, not ended: nothing to record */
        fail_commands(w, "the daemon is shutting down");
        if (w->start_done) {
            w->start_done(sup->d, w->start_ctx, -ECANCELED, "the daemon is shutting down");
            w->start_done = NULL;
        }
        if (w->proc) {
            /* Closing the handle leaves the process running: that is the point. */
            uv_close((uv_handle_t *)w->proc, (uv_close_cb)free);
            w->proc = NULL;
        }
        while (w->waiters) {
            struct waiter *wt = w->waiters;
            w->waiters = wt->next;
            wt->fn(sup->d, wt->ctx, -ECANCELED, "the daemon is shutting down");
            free(wt);
        }
        close_worker(w);
    }
    free(sup);
}
