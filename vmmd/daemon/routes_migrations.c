/*
 * Live migration, both ends:
 *
 *   POST /v1/vms/{id}/migrate   (source) asks the target daemon for a place,
 *                               connects to it, hands the connection to the
 *                               VM's worker, which does the pre-copy; 202
 *   GET  /v1/vms/{id}/migration  where it stands
 *   POST /v1/migrations         (target) records the VM, starts a worker that
 *                               listens for the source; 201 with the port and
 *                               a one-time ticket
 *
 * The source asks the target with libcurl on the thread pool (a target may
 * be slow or far), and never gives the worker anything but a connected
 * socket: the worker holds no network of its own. The source's worker keeps
 * its VM running until the target's worker says its copy runs; then it stops
 * and exits with "migrated", and the record here goes (the VM lives there
 * now). Progress comes from polling the worker, as events.
 */
#include "routes.h"
#include "cluster.h"
#include "log.h"
#include "supervisor.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS                  250
#define PROGRESS_EVENT_MS        250 /* at most 4 progress events a second */
#define CONNECT_TIMEOUT_MS       5000
#define TARGET_REQUEST_TIMEOUT_S 30
#define TARGET_START_SLACK_MS    30000 /* beyond the migration's own timeout */

/* One migration out of this daemon (kept after it ended, for GET, until the next one). */
struct migration {
    struct migration *next;
    struct vmmd_daemon *d;
    char vm_id[DB_ID_LEN + 1];
    char vm_name[DB_NAME_MAX + 1];
    struct api_migrate_req req;
    char state[16]; /* connecting | precopy | stopping | done | failed */
    json_t *progress;
    char error[768];
    uint64_t started_ms, last_event_ms;
    uv_timer_t timer;
    bool timer_active, polling;
    /* The thread-pool part: the target's answer and the connection. */
    uv_work_t work;
    struct http_request *req_http;
    char *offer; /* the JSON sent to the target */
    int fd;
    char ticket[2 * 32 + 1];
};

static struct migration *migrations;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct migration *find(const char *vm_id)
{
    for (struct migration *m = migrations; m; m = m->next)
        if (strcmp(m->vm_id, vm_id) == 0)
            return m;
    return NULL;
}

static bool running(const struct migration *m)
{
    return strcmp(m->state, "done") && strcmp(m->state, "failed");
}

static json_t *migration_json(const struct migration *m)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "vm", m->vm_name, "vm_id", m->vm_id,
                          "target", m->req.target, "state", m->state, "elapsed_ms",
                          (json_int_t)(mono_ms() - m->started_ms));
    static const char *const keys[] = {"round",      "pages_total",     "pages_left",
                                       "bytes_sent", "throughput_mbps", NULL};

    for (size_t i = 0; o && keys[i]; i++)
        json_object_set(o, keys[i], json_object_get(m->progress, keys[i]) ?: json_integer(0));
    json_object_set_new(o, "downtime_ms",
                        strcmp(m->state, "done") == 0
                            ? json_incref(json_object_get(m->progress, "downtime_ms"))
                            : json_null());
    json_object_set_new(o, "error", m->error[0] ? json_string(m->error) : json_null());
    return o ? o : json_object();
}

static void emit(struct vmmd_daemon *d, const char *type, const char *vm_id, json_t *data)
{
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    int64_t ev = 0;

    if (text && db_event_insert(d->db, type, vm_id, text, &ev) == 0)
        vmmd_event_committed(d, ev);
    free(text);
    json_decref(data);
    /* An evacuation counts its VMs' migrations as they end. */
    if (d->cluster && (!strcmp(type, "vm.migrated") || !strcmp(type, "vm.migration_failed")))
        cluster_migration_ended(d->cluster, vm_id, !strcmp(type, "vm.migrated"));
    if (d->cluster && !strcmp(type, "vm.migrated_in"))
        cluster_vm_arrived(d->cluster, vm_id);
}

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

static void stop_polling(struct migration *m)
{
    if (m->timer_active) {
        uv_timer_stop(&m->timer);
        uv_close((uv_handle_t *)&m->timer, on_timer_closed);
        m->timer_active = false;
    }
}

/* The request that started the migration gets the error (an evacuation's has none). */
static void refuse(struct migration *m, enum api_error_kind kind, const char *text)
{
    if (m->req_http)
        http_respond_error(m->req_http, kind, "%s", text);
}

static void fail(struct migration *m, const char *why)
{
    snprintf(m->state, sizeof(m->state), "failed");
    snprintf(m->error, sizeof(m->error), "%s", why);
    stop_polling(m);
    m->d->metrics.migrations_failed++;
    log_warn("vm %s: migration to %s failed: %s", m->vm_name, m->req.target, why);
    emit(m->d, "vm.migration_failed", m->vm_id,
         json_pack("{s:s, s:s, s:s}", "vm", m->vm_name, "target", m->req.target, "error", why));
}

/* ---- following the worker ---- */

static void on_status(struct vmmd_daemon *d, void *ctx, json_t *reply, const uint8_t *extra,
                      size_t extra_len, const char *error)
{
    struct migration *m = ctx;
    const char *phase = json_string_value(json_object_get(reply, "phase"));

    (void)extra;
    (void)extra_len;
    m->polling = false;
    if (!running(m))
        return;
    if (!reply || !phase) {
        /* Gone: its exit file says whether it migrated (routes_vm_migrated_away). */
        (void)error;
        return;
    }
    json_decref(m->progress);
    m->progress = json_incref(reply);
    if (strcmp(phase, "failed") == 0) {
        fail(m, json_string_value(json_object_get(reply, "error")) ?: "the worker gave up");
        return;
    }
    snprintf(m->state, sizeof(m->state), "%s", strcmp(phase, "done") == 0 ? "stopping" : phase);
    if (mono_ms() - m->last_event_ms >= PROGRESS_EVENT_MS) {
        m->last_event_ms = mono_ms();
        emit(d, "vm.migration_progress", m->vm_id,
             json_pack("{s:s, s:O, s:O, s:O, s:O}", "vm", m->vm_name, "round",
                       json_object_get(reply, "round"), "pages_left",
                       json_object_get(reply, "pages_left"), "bytes_sent",
                       json_object_get(reply, "bytes_sent"), "throughput_mbps",
                       json_object_get(reply, "throughput_mbps")));
    }
}

static void on_poll(uv_timer_t *t)
{
    struct migration *m = t->data;

    if (m->polling || !running(m))
        return;
    if (supervisor_command(m->d->sup, m->vm_id, json_pack("{s:s}", "cmd", "migrate_status"),
                           on_status, m) == 0)
        m->polling = true;
}

/* The worker ended with "migrated": the VM runs on the target, its record here goes. */
static void migrated_away(struct vmmd_daemon *d, const char *vm_id, const char *detail)
{
    struct migration *m = find(vm_id);
    struct db_vm vm = {0};
    int64_t ev = 0;
    unsigned rounds = 0;
    unsigned long long bytes = 0;
    double downtime = 0;

    if (db_vm_get(d->db, vm_id, &vm))
        return;
    /* The worker's last words (its exit file) have the figures: the last poll may be older. */
    sscanf(detail, "migrated: %u rounds, %llu bytes sent, %lf ms downtime", &rounds, &bytes,
           &downtime);
    if (m) {
        uint64_t total_ms = mono_ms() - m->started_ms;
        snprintf(m->state, sizeof(m->state), "done");
        stop_polling(m);
        json_object_set_new(m->progress, "round", json_integer(rounds));
        json_object_set_new(m->progress, "pages_left", json_integer(0));
        json_object_set_new(m->progress, "bytes_sent", json_integer((json_int_t)bytes));
        json_object_set_new(m->progress, "downtime_ms", json_real(downtime));
        json_object_set_new(
            m->progress, "throughput_mbps",
            json_real((double)bytes / 1e6 / ((double)(total_ms ? total_ms : 1) / 1e3)));
        d->metrics.migrations_done++;
        d->metrics.migration_downtime_us += (uint64_t)(downtime * 1000);
        emit(d, "vm.migrated", vm_id,
             json_pack("{s:s, s:s, s:f, s:I, s:i, s:I}", "vm", vm.name, "target", m->req.target,
                       "downtime_ms", downtime, "total_ms", (json_int_t)total_ms, "rounds",
                       (int)rounds, "bytes_sent", (json_int_t)bytes));
    } else {
        /* Found after a daemon restart: the worker moved it while no one was watching. */
        emit(d, "vm.migrated", vm_id, json_pack("{s:s, s:s}", "vm", vm.name, "detail", detail));
    }
    log_info("vm %s: %s; its record goes, the VM lives on the target", vm.name, detail);
    if (db_vm_delete(d->db, vm_id, &ev) == 0)
        vmmd_event_committed(d, ev);
    routes_snapshots_remove_all(d, vm_id);
    routes_remove_run_dir(d, vm_id);
    db_vm_clear(&vm);
}

void routes_migration_worker_ended(struct vmmd_daemon *d, const char *vm_id, const char *reason)
{
    struct migration *m = find(vm_id);
    char why[400];

    if (strncmp(reason, "migrated", 8) == 0) {
        migrated_away(d, vm_id, reason);
    } else if (m && running(m) && strcmp(m->state, "connecting")) {
        /* It died mid-way: the target, hearing no more from it, drops its copy. */
        snprintf(why, sizeof(why), "the VM's worker ended: %.300s", reason);
        fail(m, why);
    }
}

/* ---- the source: asking the target, on the thread pool ---- */

struct grow {
    char *buf;
    size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *ctx)
{
    struct grow *g = ctx;
    size_t add = size * n;
    char *b = g->len + add < 64 * 1024 ? realloc(g->buf, g->len + add + 1) : NULL;

    if (!b)
        return 0;
    memcpy(b + g->len, p, add);
    g->len += add;
    b[g->len] = 0;
    g->buf = b;
    return add;
}

static int connect_to(const char *host, unsigned port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    char service[8];
    int fd = -1, rc;

    snprintf(service, sizeof(service), "%u", port);
    if ((rc = getaddrinfo(host, service, &hints, &res))) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int so = 0;
        socklen_t sl = sizeof(so);
        if ((connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) ||
            poll(&p, 1, CONNECT_TIMEOUT_MS) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) || so) {
            snprintf(err, errlen, "cannot connect to %s port %u: %s", host, port,
                     strerror(so      ? so
                              : errno ? errno
                                      : ETIMEDOUT));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static void ask_target(uv_work_t *w)
{
    struct migration *m = w->data;
    CURL *c = curl_easy_init();
    struct curl_slist *headers = NULL;
    struct grow answer = {0};
    char url[600], auth[160], host[256] = "127.0.0.1";
    long status = 0;
    json_t *reply = NULL;
    CURLcode cc;

    m->fd = -1;
    if (!c) {
        snprintf(m->error, sizeof(m->error), "out of memory");
        return;
    }
    if (strncmp(m->req.target, "unix:", 5) == 0) {
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, m->req.target + 5);
        snprintf(url, sizeof(url), "http://localhost/v1/migrations");
    } else {
        snprintf(url, sizeof(url), "%s/v1/migrations", m->req.target);
        CURLU *u = curl_url();
        char *h = NULL;
        if (u && !curl_url_set(u, CURLUPART_URL, m->req.target, 0) &&
            !curl_url_get(u, CURLUPART_HOST, &h, 0))
            snprintf(host, sizeof(host), "%s", h);
        curl_free(h);
        curl_url_cleanup(u);
    }
    headers = curl_slist_append(headers, "Content-Type: application/json");
    if (m->req.token[0]) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", m->req.token);
        headers = curl_slist_append(headers, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, m->offer);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)TARGET_REQUEST_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (m->req.insecure || m->req.pin[0]) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    /* A member's certificate is self-signed: its pin is what identifies it. */
    if (m->req.pin[0])
        curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, m->req.pin);
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    reply = answer.buf ? json_loads(answer.buf, 0, NULL) : NULL;
    if (cc != CURLE_OK) {
        snprintf(m->error, sizeof(m->error), "cannot reach the target %s: %s", m->req.target,
                 curl_easy_strerror(cc));
    } else if (status != 201) {
        snprintf(m->error, sizeof(m->error), "the target refused (%ld): %s", status,
                 json_string_value(json_object_get(reply, "detail")) ?: "no detail");
    } else {
        json_int_t port = json_integer_value(json_object_get(reply, "port"));
        const char *ticket = json_string_value(json_object_get(reply, "ticket"));
        if (port < 1 || port > 65535 || !ticket || strlen(ticket) != sizeof(m->ticket) - 1)
            snprintf(m->error, sizeof(m->error), "the target answered without a port and ticket");
        else {
            snprintf(m->ticket, sizeof(m->ticket), "%s", ticket);
            m->fd = connect_to(host, (unsigned)port, m->error, sizeof(m->error));
        }
    }
    json_decref(reply);
    free(answer.buf);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
}

static void on_worker_took_it(struct vmmd_daemon *d, void *ctx, json_t *reply, const uint8_t *extra,
                              size_t extra_len, const char *error)
{
    struct migration *m = ctx;
    const char *why = reply ? json_string_value(json_object_get(reply, "error")) : error;

    (void)extra;
    (void)extra_len;
    if (!reply || !json_is_true(json_object_get(reply, "ok"))) {
        char text[400];
        snprintf(text, sizeof(text), "the VM's worker refused: %.300s", why ? why : "no answer");
        fail(m, text);
        refuse(m, API_ERR_CONFLICT, text);
        return;
    }
    snprintf(m->state, sizeof(m->state), "precopy");
    uv_timer_init(d->loop, &m->timer);
    m->timer.data = m;
    m->timer_active = true;
    uv_timer_start(&m->timer, on_poll, POLL_MS, POLL_MS);
    log_info("vm %s: migrating to %s", m->vm_name, m->req.target);
    emit(d, "vm.migration_started", m->vm_id,
         json_pack("{s:s, s:s}", "vm", m->vm_name, "target", m->req.target));
    if (m->req_http)
        http_respond_json(m->req_http, 202, migration_json(m));
}

/*
 * Whether to trust KVM's dirty log for rewrites: on PVM hosts it misses them (see the worker's
 * migration.h), and nested under another hypervisor it did too (the TCG lab: real Linux on
 * the target crashed until every page dirtied during the migration was sent again). Only on
 * bare metal (no hypervisor flag in /proc/cpuinfo) is the log taken at its word.
 */
static bool host_needs_resend(void)
{
    struct stat st;
    char line[4096];
    bool guest = false;
    FILE *f;

    if (stat("/sys/module/kvm_pvm", &st) == 0)
        return true;
    if (!(f = fopen("/proc/cpuinfo", "r")))
        return true;
    while (!guest && fgets(line, sizeof(line), f))
        guest = strncmp(line, "flags", 5) == 0 && strstr(line, " hypervisor");
    fclose(f);
    return guest;
}

static void target_answered(uv_work_t *w, int status)
{
    struct migration *m = w->data;
    struct vmmd_daemon *d = m->d;
    int rc;

    free(m->offer);
    m->offer = NULL;
    if (status || m->fd < 0) {
        if (!m->error[0])
            snprintf(m->error, sizeof(m->error), "cancelled");
        char why[sizeof(m->error)];
        snprintf(why, sizeof(why), "%s", m->error);
        fail(m, why);
        refuse(m, API_ERR_BAD_GATEWAY, why);
        return;
    }
    json_t *cmd = json_pack("{s:s, s:s, s:I, s:I, s:b, s:b}", "cmd", "migrate", "ticket", m->ticket,
                            "max_downtime_ms", (json_int_t)m->req.max_downtime_ms, "timeout_ms",
                            (json_int_t)(m->req.timeout_s * 1000), "resend_dirtied",
                            host_needs_resend(), "no_swap", !routes_host_swaps());
    rc = supervisor_command_fds(d->sup, m->vm_id, cmd, &m->fd, 1, on_worker_took_it, m);
    close(m->fd);
    m->fd = -1;
    if (rc) {
        char why[200];
        snprintf(why, sizeof(why), "cannot reach the VM's worker: %s",
                 rc == -EBUSY ? "it is busy with another command" : strerror(-rc));
        fail(m, why);
        refuse(m, API_ERR_CONFLICT, why);
    }
}

void route_vm_migrate(struct vmmd_daemon *d, struct http_request *req, const struct route_match *m_)
{
    struct api_migrate_req mr;
    struct api_error err = {0};
    struct db_vm vm = {0};

    if (api_parse_migrate(req->body, req->body_len, &mr, &err)) {
        http_respond_problem(req, &err);
        return;
    }
    if (routes_load_vm(d, req, m_->id, &vm))
        return;
    routes_migration_begin(d, req, &vm, &mr);
    db_vm_clear(&vm);
}

int routes_migration_begin(struct vmmd_daemon *d, struct http_request *req,
                           const struct db_vm *vm_, const struct api_migrate_req *req_)
{
    struct api_migrate_req mr = *req_;
    const struct db_vm vm = *vm_;
    struct migration *m;
    int rc = -1;

    if (strcmp(vm.state, "running") && strcmp(vm.state, "paused")) {
        if (req)
            http_respond_error(req, API_ERR_CONFLICT,
                               "cannot migrate VM '%s': it is %s (only a running or paused VM "
                               "moves)",
                               vm.name, vm.state);
        goto out;
    }
    m = find(vm.id);
    if (m && running(m)) {
        if (req)
            http_respond_error(req, API_ERR_CONFLICT, "VM '%s' is migrating to %s already",
                               vm.name, m->req.target);
        goto out;
    }
    if (!m) {
        if (!(m = calloc(1, sizeof(*m)))) {
            if (req)
                http_respond_error(req, API_ERR_INTERNAL, "out of memory");
            goto out;
        }
        m->next = migrations;
        migrations = m;
    }
    json_decref(m->progress);
    memset(&m->work, 0, sizeof(m->work));
    m->progress = json_pack("{s:I, s:I}", "pages_total", (json_int_t)(vm.memory_mib << 8),
                            "pages_left", (json_int_t)(vm.memory_mib << 8));
    m->d = d;
    m->req = mr;
    m->error[0] = 0;
    m->polling = false;
    m->fd = -1;
    m->started_ms = mono_ms();
    m->last_event_ms = 0;
    m->req_http = req;
    snprintf(m->state, sizeof(m->state), "connecting");
    snprintf(m->vm_id, sizeof(m->vm_id), "%s", vm.id);
    snprintf(m->vm_name, sizeof(m->vm_name), "%s", vm.name);
    json_t *offer =
        json_pack("{s:o, s:I}", "vm", api_vm_to_json(&vm), "timeout_s", (json_int_t)mr.timeout_s);
    m->offer = offer ? json_dumps(offer, JSON_COMPACT) : NULL;
    json_decref(offer);
    m->work.data = m;
    if (!m->offer || uv_queue_work(d->loop, &m->work, ask_target, target_answered)) {
        snprintf(m->state, sizeof(m->state), "failed");
        if (req)
            http_respond_error(req, API_ERR_INTERNAL, "cannot start the migration");
        goto out;
    }
    if (req)
        http_suspend(req);
    rc = 0;
out:
    return rc;
}

void route_vm_migration(struct vmmd_daemon *d, struct http_request *req,
                        const struct route_match *m_)
{
    struct db_vm vm = {0};
    struct migration *m;

    if (routes_load_vm(d, req, m_->id, &vm))
        return;
    if (!(m = find(vm.id)))
        http_respond_error(req, API_ERR_NOT_FOUND,
                           "VM '%s' has not been migrated since the "
                           "daemon started",
                           vm.name);
    else
        http_respond_json(req, 200, migration_json(m));
    db_vm_clear(&vm);
}

unsigned routes_migrations_running(void)
{
    unsigned n = 0;
    for (struct migration *m = migrations; m; m = m->next)
        n += running(m);
    return n;
}

void routes_migrations_stop(void)
{
    for (struct migration *m = migrations; m; m = m->next)
        stop_polling(m);
}

void routes_migrations_free(void)
{
    while (migrations) {
        struct migration *m = migrations;
        migrations = m->next;
        json_decref(m->progress);
        free(m->offer);
        free(m);
    }
}

/* ---- the target ---- */

struct incoming {
    char vm_id[DB_ID_LEN + 1];
    char vm_name[DB_NAME_MAX + 1];
};

static void on_arrived(struct vmmd_daemon *d, void *ctx, int rc, const char *detail)
{
    struct incoming *in = ctx;
    int64_t ev = 0;

    if (rc == 0) {
        log_info("vm %s: arrived by live migration, running", in->vm_name);
        emit(d, "vm.migrated_in", in->vm_id, json_pack("{s:s}", "vm", in->vm_name));
    } else {
        /* It never ran here: no trace of it stays. The source keeps running it. */
        log_warn("vm %s: the incoming migration failed: %s", in->vm_name, detail ? detail : "");
        emit(d, "vm.migration_failed", in->vm_id,
             json_pack("{s:s, s:s}", "vm", in->vm_name, "error", detail ? detail : "failed"));
        if (db_vm_delete(d->db, in->vm_id, &ev) == 0)
            vmmd_event_committed(d, ev);
    }
    free(in);
}

/* A TCP socket on every address, on a port the kernel picks. */
static int listen_any(unsigned *port)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), off = 0;

    if (fd < 0)
        return -errno;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *port = ntohs(a.sin6_port);
    return fd;
}

void route_migrations_accept(struct vmmd_daemon *d, struct http_request *req,
                             const struct route_match *m_)
{
    struct api_error err = {0};
    struct db_vm vm = {0};
    struct incoming *in = NULL;
    json_t *offer = NULL, *def = NULL;
    uint64_t timeout_s;
    uint8_t raw[32];
    char ticket[65], *body = NULL;
    unsigned port = 0;
    int lfd = -1;

    (void)m_;
    if (api_parse_incoming(req->body, req->body_len, &offer, &timeout_s, &err)) {
        http_respond_problem(req, &err);
        return;
    }
    /* The VM as it is defined there; its MACs stay (the guest knows them). */
    def = routes_vm_definition(offer);
    json_object_set(def, "name", json_object_get(offer, "name"));
    body = json_dumps(def, JSON_COMPACT);
    const char *id = json_string_value(json_object_get(offer, "id"));
    if (!body || routes_vm_create_body(d, req, body, strlen(body), id, &vm))
        goto out;
    if (getrandom(raw, sizeof(raw), 0) != sizeof(raw) || (lfd = listen_any(&port)) < 0 ||
        !(in = calloc(1, sizeof(*in)))) {
        http_respond_error(req, API_ERR_INTERNAL, "cannot listen for the source: %s",
                           lfd < 0 ? strerror(-lfd) : "out of memory");
        goto out_delete;
    }
    for (int i = 0; i < 32; i++)
        snprintf(ticket + 2 * i, 3, "%02x", raw[i]);
    snprintf(in->vm_id, sizeof(in->vm_id), "%s", vm.id);
    snprintf(in->vm_name, sizeof(in->vm_name), "%s", vm.name);
    struct sup_restore incoming = {.state_fd = -1,
                                   .mem_fd = -1,
                                   .incoming_fd = lfd,
                                   .ticket = ticket,
                                   .start_timeout_ms =
                                       (unsigned)timeout_s * 1000 + TARGET_START_SLACK_MS};
    if (supervisor_start(d->sup, &vm, &incoming, on_arrived, in, &err)) {
        http_respond_problem(req, &err);
        free(in);
        goto out_delete;
    }
    http_respond_json(
        req, 201,
        json_pack("{s:s, s:i, s:s}", "vm_id", vm.id, "port", (int)port, "ticket", ticket));
    goto out;
out_delete : {
    int64_t ev = 0;
    if (db_vm_delete(d->db, vm.id, &ev) == 0)
        vmmd_event_committed(d, ev);
}
out:
    if (lfd >= 0)
        close(lfd);
    free(body);
    json_decref(def);
    json_decref(offer);
    db_vm_clear(&vm);
}
