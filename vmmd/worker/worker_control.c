/*
 * A worker's control socket: one JSON line in, one JSON line out, except
 * "console" (a header line then raw bytes) and "attach" (the connection
 * becomes the raw console in both directions). The daemon is the usual
 * client; a client that sends garbage gets an error line, never a crash.
 */
#include "worker_control.h"
#include "device_args.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

int control_server_open(struct control_server *s, const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        s->clients[i].fd = -1;
    if (strlen(path) >= sizeof(addr.sun_path))
        return -ENAMETOOLONG;
    strcpy(addr.sun_path, path);
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->listen_fd < 0)
        return -errno;
    unlink(path);
    if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0600) < 0 ||
        listen(s->listen_fd, 8) < 0) {
        int e = errno;
        close(s->listen_fd);
        s->listen_fd = -1;
        return -e;
    }
    return 0;
}

static void close_client_fds(struct control_client *c);

static void drop_client(struct control_client *c, struct worker_ctx *ctx)
{
    close_client_fds(c);
    if (c->attached && ctx)
        console_buffer_detach(ctx->console, c->fd);
    close(c->fd);
    c->fd = -1;
    c->attached = false;
    c->len = 0;
}

void control_server_close(struct control_server *s)
{
    /* The listener first: once the daemon sees its connection end, nothing answers on the
     * socket any more, and a new worker for the VM (a restore) can start at once. */
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    s->listen_fd = -1;
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (s->clients[i].fd >= 0)
            close(s->clients[i].fd);
}

int control_server_pollfds(const struct control_server *s, struct pollfd *fds)
{
    int n = 0;

    fds[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        fds[n++] = (struct pollfd){.fd = s->clients[i].fd, .events = POLLIN};
    return n;
}

static void send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

/* Sends one JSON object as a line and frees it. */
static void reply(int fd, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);

    if (text) {
        send_all(fd, text, strlen(text));
        send_all(fd, "\n", 1);
        free(text);
    }
    json_decref(obj);
}

static void reply_error(int fd, const char *msg)
{
    reply(fd, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
}

static json_t *counters_json(const void *stats, const struct hv_stat_field *f)
{
    json_t *o = json_object();

    for (; f->name; f++)
        json_object_set_new(o, f->name, json_integer((json_int_t)hv_stat_value(stats, f)));
    return o;
}

static json_t *device_stats_json(const struct hv_vm_stats *st)
{
    json_t *disks = json_array(), *nics = json_array();

    for (unsigned i = 0; i < st->nr_disks; i++)
        json_array_append_new(disks, counters_json(&st->disks[i], hv_disk_stat_fields));
    for (unsigned i = 0; i < st->nr_nics; i++)
        json_array_append_new(nics, counters_json(&st->nics[i], hv_nic_stat_fields));
    return json_pack("{s:o, s:o}", "disks", disks, "nics", nics);
}

static json_t *stats_json(struct worker_ctx *ctx)
{
    struct hv_vm_stats st;
    json_t *exits = json_object(), *out;

    hv_vm_get_stats(ctx->vm, &st);
    for (int k = 0; k < HV_EXIT_KIND_COUNT; k++)
        json_object_set_new(exits, hv_exit_kind_name(k), json_integer((json_int_t)st.exits[k]));
    out =
        json_pack("{s:b, s:I, s:I, s:I, s:I, s:o, s:i}", "ok", 1, "uptime_ns",
                  (json_int_t)st.uptime_ns, "memory_bytes", (json_int_t)st.memory_bytes,
                  "console_bytes", (json_int_t)console_buffer_total(ctx->console), "writes_ignored",
                  (json_int_t)st.io_writes_ignored, "exits", exits, "boots", (int)ctx->boots);
    json_object_update_new(out, device_stats_json(&st));
    return out;
}

/* {"bytes_per_s": N, ...} into l; false on anything but such an object (or null: none). */
static bool limits_from_json(json_t *o, struct hv_io_limits *l)
{
    const char *key;
    json_t *v;
    char num[24];

    *l = (struct hv_io_limits){0};
    if (json_is_null(o))
        return true;
    if (!json_is_object(o))
        return false;
    json_object_foreach(o, key, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return false;
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        if (vmmd_parse_limit_opt(key, num, l) != 1)
            return false;
    }
    return true;
}

/*
 * "set_io_limits": {"disks": [limits|null, ...], "nics": [...]}, by index; a device left out
 * keeps its limits. Everything is checked before anything changes.
 */
static void set_io_limits(int fd, json_t *req, struct worker_ctx *ctx)
{
    json_t *disks = json_object_get(req, "disks"), *nics = json_object_get(req, "nics");
    struct hv_io_limits dl[HV_MAX_DISKS], nl[HV_MAX_NICS];
    size_t nd = json_array_size(disks), nn = json_array_size(nics);

    if (nd > ctx->nr_disks || nn > ctx->nr_nics) {
        reply_error(fd, "more devices than the VM has");
        return;
    }
    for (size_t i = 0; i < nd; i++)
        if (!limits_from_json(json_array_get(disks, i), &dl[i])) {
            reply_error(fd, "bad disk limits");
            return;
        }
    for (size_t i = 0; i < nn; i++)
        if (!limits_from_json(json_array_get(nics, i), &nl[i])) {
            reply_error(fd, "bad nic limits");
            return;
        }
    for (size_t i = 0; i < nd; i++) {
        ctx->disks[i].limits = dl[i];
        if (ctx->vm)
            hv_vm_set_disk_limits(ctx->vm, (unsigned)i, &dl[i]);
    }
    for (size_t i = 0; i < nn; i++) {
        ctx->nics[i].limits = nl[i];
        if (ctx->vm)
            hv_vm_set_nic_limits(ctx->vm, (unsigned)i, &nl[i]);
    }
    reply(fd, json_pack("{s:b}", "ok", 1));
}

static void send_console_tail(int fd, struct worker_ctx *ctx, json_int_t want)
{
    static uint8_t buf[CONSOLE_RING_SIZE];
    size_t n;

    if (want < 0)
        want = 0;
    n = console_buffer_tail(ctx->console, buf, (size_t)want);
    reply(fd, json_pack("{s:b, s:I}", "ok", 1, "bytes", (json_int_t)n));
    send_all(fd, buf, n);
}

/*
 * "snapshot": the state and memory files come as the two descriptors sent with the line
 * (the sandboxed worker cannot open files), so the daemon decides where they live.
 */
static void take_snapshot(struct control_client *c, json_t *req, struct worker_ctx *ctx)
{
    struct hv_snapshot_info info;
    char err[256];
    bool leave_paused = json_is_true(json_object_get(req, "leave_paused"));

    if (c->nfds != 2) {
        reply_error(c->fd, "snapshot needs two descriptors (state, memory) sent with the line");
        return;
    }
    unsigned flags = (leave_paused ? HV_SNAPSHOT_LEAVE_PAUSED : 0) |
                     (json_is_true(json_object_get(req, "no_swap")) ? HV_SNAPSHOT_NO_SWAP : 0);

    if (hv_vm_snapshot(ctx->vm, c->fds[0], c->fds[1], flags, &info, err, sizeof(err))) {
        reply_error(c->fd, err);
        return;
    }
    if (leave_paused)
        ctx->paused = true;
    reply(c->fd, json_pack("{s:b, s:I, s:I, s:I, s:I, s:s}", "ok", 1, "state_bytes",
                           (json_int_t)info.state_bytes, "memory_bytes",
                           (json_int_t)info.memory_bytes, "memory_written",
                           (json_int_t)info.memory_written, "paused_ns",
                           (json_int_t)info.paused_ns, "state",
                           ctx->paused ? "paused" : "running"));
}

/*
 * "migrate": the connection to the target comes as the descriptor sent with the line (the
 * daemon made it); the pre-copy runs on a thread of its own, "migrate_status" follows it.
 */
static void start_migration(struct control_client *c, json_t *req, struct worker_ctx *ctx)
{
    struct mig_send *m;
    json_int_t downtime = json_integer_value(json_object_get(req, "max_downtime_ms")),
               timeout = json_integer_value(json_object_get(req, "timeout_ms"));

    if (c->nfds != 1) {
        reply_error(c->fd, "migrate needs the connection to the target sent with the line");
        return;
    }
    if (ctx->migration) {
        struct mig_progress p;
        mig_send_progress(ctx->migration, &p);
        if (p.phase != MIG_FAILED) {
            reply_error(c->fd, "a migration is running");
            return;
        }
        /* The last one failed and the VM ran on here: it may go again. */
        mig_send_join(ctx->migration);
        free(ctx->migration);
        ctx->migration = NULL;
    }
    if (downtime < 1 || timeout < 1) {
        reply_error(c->fd, "max_downtime_ms and timeout_ms must be positive");
        return;
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        reply_error(c->fd, "out of memory");
        return;
    }
    if (mig_ticket_parse(json_string_value(json_object_get(req, "ticket")), m->ticket)) {
        free(m);
        reply_error(c->fd, "ticket: 64 hex digits expected");
        return;
    }
    m->vm = ctx->vm;
    m->fd = c->fds[0];
    m->vcpus = ctx->vcpus;
    m->max_downtime_ms = (uint64_t)downtime;
    m->timeout_ms = (uint64_t)timeout;
    m->resend_dirtied = json_is_true(json_object_get(req, "resend_dirtied"));
    m->no_swap = json_is_true(json_object_get(req, "no_swap"));
    c->nfds = 0; /* the thread owns the connection now */
    if (mig_send_start(m)) {
        close(m->fd);
        free(m);
        reply_error(c->fd, "cannot start the migration thread");
        return;
    }
    ctx->migration = m;
    reply(c->fd, json_pack("{s:b}", "ok", 1));
}

static void migration_status(struct control_client *c, struct worker_ctx *ctx)
{
    static const char *const phases[] = {"idle", "precopy", "stopping", "done", "failed"};
    struct mig_progress p;

    if (!ctx->migration) {
        reply_error(c->fd, "no migration");
        return;
    }
    mig_send_progress(ctx->migration, &p);
    reply(c->fd, json_pack("{s:b, s:s, s:i, s:I, s:I, s:I, s:f, s:I, s:f, s:s}", "ok", 1, "phase",
                           phases[p.phase], "round", (int)p.round, "pages_total",
                           (json_int_t)p.pages_total, "pages_left", (json_int_t)p.pages_left,
                           "bytes_sent", (json_int_t)p.bytes_sent, "throughput_mbps",
                           p.throughput_mbps, "elapsed_ms", (json_int_t)p.elapsed_ms,
                           "downtime_ms", (double)p.downtime_us / 1000.0, "error", p.error));
}

static void close_client_fds(struct control_client *c)
{
    for (unsigned i = 0; i < c->nfds; i++)
        close(c->fds[i]);
    c->nfds = 0;
}

static void handle_command(struct control_client *c, const char *line, struct worker_ctx *ctx)
{
    json_error_t jerr;
    json_t *req = json_loads(line, 0, &jerr);
    const char *cmd = req ? json_string_value(json_object_get(req, "cmd")) : NULL;

    if (!cmd) {
        reply_error(c->fd, "expected a JSON object with a \"cmd\" string");
        json_decref(req);
        return;
    }
    if (strcmp(cmd, "set_io_limits") == 0) {
        set_io_limits(c->fd, req, ctx); /* also between two boots: the next one has them */
    } else if (!ctx->vm) {
        reply_error(c->fd, "the guest is rebooting, try again");
    } else if (strcmp(cmd, "status") == 0) {
        reply(c->fd, json_pack("{s:b, s:s, s:i, s:i}", "ok", 1, "state",
                               ctx->paused ? "paused" : "running", "pid", (int)sandbox_host_pid(),
                               "boots", (int)ctx->boots));
    } else if (strcmp(cmd, "snapshot") == 0) {
        take_snapshot(c, req, ctx);
    } else if (strcmp(cmd, "migrate") == 0) {
        start_migration(c, req, ctx);
    } else if (strcmp(cmd, "migrate_status") == 0) {
        migration_status(c, ctx);
    } else if (strcmp(cmd, "stats") == 0) {
        reply(c->fd, stats_json(ctx));
    } else if (strcmp(cmd, "pause") == 0) {
        hv_vm_pause(ctx->vm);
        ctx->paused = true;
        reply(c->fd, json_pack("{s:b}", "ok", 1));
    } else if (strcmp(cmd, "resume") == 0) {
        hv_vm_resume(ctx->vm);
        ctx->paused = false;
        reply(c->fd, json_pack("{s:b}", "ok", 1));
    } else if (strcmp(cmd, "stop") == 0) {
        ctx->stop_requested = true;
        hv_vm_request_stop(ctx->vm);
        reply(c->fd, json_pack("{s:b}", "ok", 1));
    } else if (strcmp(cmd, "reboot") == 0) {
        /* The run loop restarts the guest in place, like a reset button. */
        ctx->paused = false;
        hv_vm_resume(ctx->vm);
        hv_vm_request_reboot(ctx->vm);
        reply(c->fd, json_pack("{s:b}", "ok", 1));
    } else if (strcmp(cmd, "shutdown") == 0) {
        ctx->exit_on_reboot = true;
        if (ctx->paused) {
            hv_vm_resume(ctx->vm);
            ctx->paused = false;
        }
        hv_vm_send_ctrl_alt_del(ctx->vm);
        reply(c->fd, json_pack("{s:b}", "ok", 1));
    } else if (strcmp(cmd, "console") == 0) {
        send_console_tail(c->fd, ctx, json_integer_value(json_object_get(req, "tail")));
    } else if (strcmp(cmd, "selftest-forbidden-syscall") == 0) {
        /* Proves the filter to its tests: a sandboxed worker dies here, reporting openat. */
        int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        reply(c->fd, json_pack("{s:b, s:b}", "ok", 1, "opened", fd >= 0));
        if (fd >= 0)
            close(fd);
    } else if (strcmp(cmd, "attach") == 0) {
        json_int_t tail = json_integer_value(json_object_get(req, "tail"));
        if (console_buffer_attach(ctx->console, c->fd, "{\"ok\":true}\n",
                                  tail > 0 ? (size_t)tail : 0) == 0)
            c->attached = true;
        else
            reply_error(c->fd, "too many console clients");
    } else {
        reply_error(c->fd, "unknown command");
    }
    json_decref(req);
}

unsigned control_server_clients(const struct control_server *s)
{
    unsigned n = 0;

    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        n += s->clients[i].fd >= 0;
    return n;
}

static void accept_client(struct control_server *s)
{
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0)
        return;
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        if (s->clients[i].fd < 0) {
            s->clients[i] = (struct control_client){.fd = fd};
            return;
        }
    }
    close(fd); /* full: the client sees EOF and retries */
}

static void read_client(struct control_client *c, struct worker_ctx *ctx)
{
    char buf[WORKER_LINE_MAX];
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int) * CONTROL_MAX_FDS)];
    } cbuf;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.space, .msg_controllen = sizeof(cbuf)};
    ssize_t n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
    char *nl;

    /* Descriptors sent with a line belong to its command; any beyond what one takes are closed. */
    for (struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        unsigned got = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        if (got > CONTROL_MAX_FDS) /* the buffer holds no more; the kernel dropped the rest */
            got = CONTROL_MAX_FDS;
        int fds[CONTROL_MAX_FDS];
        memcpy(fds, CMSG_DATA(cm), got * sizeof(int));
        for (unsigned i = 0; i < got; i++) {
            if (c->nfds < CONTROL_MAX_FDS)
                c->fds[c->nfds++] = fds[i];
            else
                close(fds[i]);
        }
    }
    if (n <= 0) {
        drop_client(c, ctx);
        return;
    }
    if (c->attached) {
        if (ctx->vm)
            hv_vm_console_input(ctx->vm, (const uint8_t *)buf, (size_t)n);
        return;
    }
    if (c->len + (size_t)n >= sizeof(c->buf)) {
        reply_error(c->fd, "request line too long");
        drop_client(c, ctx);
        return;
    }
    memcpy(c->buf + c->len, buf, (size_t)n);
    c->len += (size_t)n;
    c->buf[c->len] = 0;
    while (!c->attached && (nl = memchr(c->buf, '\n', c->len))) {
        size_t used = (size_t)(nl - c->buf) + 1;
        *nl = 0;
        /* A NUL would cut the line short of what the client sent: refused, not guessed at. */
        if (memchr(c->buf, 0, used - 1))
            reply_error(c->fd, "a request line must not contain NUL bytes");
        else
            handle_command(c, c->buf, ctx);
        close_client_fds(c);
        memmove(c->buf, c->buf + used, c->len - used + 1);
        c->len -= used;
    }
    /* What followed "attach" in the same read is already console input. */
    if (c->attached && c->len) {
        if (ctx->vm)
            hv_vm_console_input(ctx->vm, (const uint8_t *)c->buf, c->len);
        c->len = 0;
    }
}

void control_server_handle(struct control_server *s, const struct pollfd *fds, int n,
                           struct worker_ctx *ctx)
{
    if (n > 0 && fds[0].revents)
        accept_client(s);
    for (int i = 1; i < n && i <= CONTROL_MAX_CLIENTS; i++) {
        struct control_client *c = &s->clients[i - 1];
        if (c->fd >= 0 && fds[i].fd == c->fd && fds[i].revents)
            read_client(c, ctx);
    }
}
