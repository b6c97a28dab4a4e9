/*
 * `vmmd serve`: configuration, state directory, store, API listeners, the
 * supervisor, then the libuv loop until SIGTERM. A restart (even after
 * kill -9) finds the workers still running and reattaches to them.
 */
#include "daemon.h"
#include "cluster.h"
#include "cluster_networks.h"
#include "cluster_images.h"
#include "log.h"
#include "sd_notify.h"
#include "routes.h"

#include <curl/curl.h>
#include "supervisor.h"
#include "networks.h"
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DRAIN_TIMEOUT_MS 10000

void routes_metrics_init(void);

void vmmd_event_committed(struct vmmd_daemon *d, int64_t event_id)
{
    d->metrics.events_emitted++;
    d->generation++;
    if (d->events)
        event_stream_notify(d->events, event_id);
    cluster_local_changed(d->cluster);
}

void vmmd_event(struct vmmd_daemon *d, const char *type, const char *vm_id, json_t *data)
{
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    int64_t ev = 0;

    if ((!data || text) && db_event_insert(d->db, type, vm_id, text, &ev) == 0)
        vmmd_event_committed(d, ev);
    else
        log_warn("cannot record event %s: %s", type, text ? db_last_error(d->db) : "out of memory");
    free(text);
    json_decref(data);
}

int vmmd_mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];

    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, mode) < 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* The bearer token for TCP: created once, 256 random bits, readable only by us. */
static int load_token(struct vmmd_daemon *d)
{
    const char *path = d->cfg->token_file;
    FILE *f = fopen(path, "r");
    uint8_t raw[32];

    if (f) {
        int ok = fscanf(f, "%64s", d->token) == 1 && strlen(d->token) >= 32;
        fclose(f);
        return ok ? 0 : -EINVAL;
    }
    if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
        return -EIO;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(d->token + 2 * i, 3, "%02x", raw[i]);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    dprintf(fd, "%s\n", d->token);
    close(fd);
    log_info("created the API token in %s", path);
    return 0;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd, probe;

    if (strlen(path) >= sizeof(addr.sun_path))
        return -ENAMETOOLONG;
    strcpy(addr.sun_path, path);
    /* A socket file nobody listens on is left over from a crash: replace it. */
    probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
        close(probe);
        return -EADDRINUSE;
    }
    if (probe >= 0)
        close(probe);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0660) < 0 ||
        listen(fd, 512) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int listen_tcp(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    int fd, one = 1;

    if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof(host))
        return -EINVAL;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = 0;
    }
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        return -EINVAL;
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 512) < 0) {
            int e = errno;
            close(fd);
            fd = -e;
        }
    } else {
        fd = -errno;
    }
    freeaddrinfo(res);
    return fd;
}

/* Workers run `vmmd run`: the small vmmd binary next to this one. */
static char *worker_binary(void)
{
    char *self = realpath("/proc/self/exe", NULL), *slash, *path;

    if (!self)
        return NULL;
    slash = strrchr(self, '/');
    *slash = 0;
    path = malloc(strlen(self) + sizeof("/vmmd"));
    if (path)
        sprintf(path, "%s/vmmd", self);
    free(self);
    return path;
}

static void on_autostart_done(struct vmmd_daemon *d, void *ctx, int rc, const char *detail)
{
    char *name = ctx;

    (void)d;
    if (rc)
        log_warn("autostart of %s failed: %s", name, detail ? detail : strerror(-rc));
    else
        log_info("autostarted %s", name);
    free(name);
}

static void autostart(struct vmmd_daemon *d)
{
    struct db_vm *vms = NULL;
    size_t n = 0;

    if (db_vm_list(d->db, NULL, &vms, &n))
        return;
    for (size_t i = 0; i < n; i++) {
        if (!vms[i].autostart || (strcmp(vms[i].state, "stopped") != 0 &&
                                  strcmp(vms[i].state, "crashed") != 0))
            continue;
        struct api_error err = {0};
        char *name = strdup(vms[i].name);
        if (supervisor_start(d->sup, &vms[i], NULL, on_autostart_done, name, &err)) {
            log_warn("autostart of %s failed: %s", vms[i].name, err.detail);
            free(name);
        }
    }
    db_vm_list_free(vms, n);
}

static void stop_loop_handles(struct vmmd_daemon *d)
{
    if (d->http_unix)
        http_server_destroy(d->http_unix);
    if (d->http_tcp)
        http_server_destroy(d->http_tcp);
    d->http_unix = d->http_tcp = NULL;
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    uv_close((uv_handle_t *)&d->drain_timer, NULL);
}

static unsigned active_requests(struct vmmd_daemon *d)
{
    return (d->http_unix ? http_server_active(d->http_unix) : 0) +
           (d->http_tcp ? http_server_active(d->http_tcp) : 0);
}

static void on_drain(uv_timer_t *t)
{
    struct vmmd_daemon *d = t->data;
    static unsigned waited;
    static bool cancelled;
    unsigned vms;

    waited += 20;
    if (active_requests(d) && waited < DRAIN_TIMEOUT_MS)
        return;
    if (!cancelled) {
        /* Answer whatever still waits on a worker, while MHD can still send it. */
        cancelled = true;
        vms = supervisor_worker_count(d->sup);
        routes_console_close_all();
        supervisor_destroy(d->sup);
        d->sup = NULL;
        /* Its dnsmasq watches would keep the loop alive; dnsmasq itself keeps serving. */
        networks_destroy(d->nets);
        d->nets = NULL;
        storage_stop(d->storage);
        routes_migrations_stop();
        cluster_images_stop(d);
        cluster_stop(d->cluster);
        d->cluster = NULL;
        log_info("stopped; %u VMs keep running in their workers", vms);
        if (active_requests(d)) {
            waited = DRAIN_TIMEOUT_MS - 1000;
            return;
        }
    }
    if (active_requests(d) && waited < DRAIN_TIMEOUT_MS)
        return;
    uv_timer_stop(t);
    stop_loop_handles(d);
}

static void on_signal(uv_signal_t *s, int signo)
{
    struct vmmd_daemon *d = s->data;

    if (signo == SIGHUP) {
        vmmd_log_reopen();
        log_info("log reopened");
        return;
    }
    if (d->stopping)
        return;
    d->stopping = true;
    log_info("signal %d: no new connections, finishing requests in flight", signo);
    vmmd_sd_notify("STOPPING=1");
    if (d->http_unix)
        http_server_quiesce(d->http_unix);
    if (d->http_tcp)
        http_server_quiesce(d->http_tcp);
    event_stream_close_all(d->events);
    uv_timer_start(&d->drain_timer, on_drain, 20, 20);
}

/* --listen: TLS unless the operator asked for plain HTTP by name. */
static int setup_tcp(struct vmmd_daemon *d, char *err, size_t errlen)
{
    struct vmmd_config *cfg = d->cfg;
    struct http_server_opts opts = {
        .listener = cfg->insecure_http ? HTTP_LISTENER_TCP : HTTP_LISTENER_TLS,
        .token = d->token,
        .cluster_token = cluster_secret(d->cluster),
        .max_per_ip = (unsigned)cfg->max_connections_per_ip,
        .header_timeout_s = (unsigned)cfg->header_timeout_s,
    };
    int fd, rc;

    if (!cfg->insecure_http) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "--listen %s: this libmicrohttpd has no TLS; use "
                     "--insecure-http for plain HTTP", cfg->listen);
            return -ENOTSUP;
        }
        if ((rc = vmmd_tls_load(cfg, &d->tls, err, errlen)))
            return rc;
        d->tls_enabled = true;
        opts.tls = &d->tls;
    }
    fd = listen_tcp(cfg->listen);
    if (fd < 0) {
        snprintf(err, errlen, "--listen %s: %s", cfg->listen, strerror(-fd));
        return fd;
    }
    if ((rc = http_server_start(d, d->loop, fd, &opts, vmmd_admit, vmmd_dispatch, &d->http_tcp))) {
        close(fd);
        snprintf(err, errlen, "%s server on %s failed", d->tls_enabled ? "HTTPS" : "HTTP",
                 cfg->listen);
        return rc;
    }
    if (d->tls_enabled)
        log_info("TLS on %s: certificate %s, SHA-256 fingerprint %s, public key %s%s",
                 cfg->listen, d->tls.cert_path, d->tls.fingerprint, d->tls.pin,
                 d->tls.client_ca_pem ? "; clients need a certificate from --tls-client-ca" : "");
    else
        log_warn("--insecure-http: the API on %s is plain HTTP, and its token crosses the "
                 "network in clear text", cfg->listen);
    return 0;
}

static int setup(struct vmmd_daemon *d, char *err, size_t errlen)
{
    struct vmmd_config *cfg = d->cfg;
    char path[PATH_MAX], *db_path;
    int rc, fd, lock_fd;

    if ((rc = vmmd_mkdir_p(cfg->state_dir, 0700))) {
        snprintf(err, errlen, "state directory %.300s: %s", cfg->state_dir, strerror(-rc));
        return rc;
    }
    snprintf(path, sizeof(path), "%s/vmmd.lock", cfg->state_dir);
    lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "another vmmd uses %.300s", cfg->state_dir);
        return -EBUSY;
    }
    snprintf(path, sizeof(path), "%s/run", cfg->state_dir);
    d->run_dir = realpath(cfg->state_dir, NULL);
    if (!d->run_dir || vmmd_mkdir_p(path, 0700)) {
        snprintf(err, errlen, "run directory %.300s: %s", path, strerror(errno));
        return -errno;
    }
    free(d->run_dir);
    d->run_dir = realpath(path, NULL);
    for (unsigned i = 0; i < cfg->image_dirs.count; i++) {
        vmmd_mkdir_p(cfg->image_dirs.items[i], 0755); /* the default one may not exist yet */
        d->image_dirs[i] = realpath(cfg->image_dirs.items[i], NULL);
        if (!d->image_dirs[i]) {
            snprintf(err, errlen, "image directory %.300s: %s", cfg->image_dirs.items[i],
                     strerror(errno));
            return -errno;
        }
    }
    if (cfg->dashboard_dir) {
        d->dashboard_dir_fd = open(cfg->dashboard_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d->dashboard_dir_fd < 0) {
            rc = -errno;
            snprintf(err, errlen, "dashboard directory %.300s: %s", cfg->dashboard_dir,
                     strerror(-rc));
            return rc;
        }
    } else {
        log_warn("no dashboard files found: GET / answers 404 (see --dashboard-dir)");
    }
    d->limits.image_dirs = (const char *const *)d->image_dirs;
    d->limits.n_image_dirs = cfg->image_dirs.count;
    if ((rc = load_token(d))) {
        snprintf(err, errlen, "token file %.300s: %s", cfg->token_file, strerror(-rc));
        return rc;
    }
    snprintf(path, sizeof(path), "%s/vmmd.db", cfg->state_dir);
    db_path = path;
    if ((rc = db_open(db_path, &d->db, err, errlen)))
        return rc;
    if ((rc = db_open_reader(db_path, &d->db_reader, err, errlen)))
        return rc;
    if (!(d->storage = storage_create(d, err, errlen)))
        return -EINVAL;
    /* Before the API answers: a member that cannot join must not serve. */
    if (cfg->cluster_etcd && (rc = cluster_join(d, &d->cluster, err, errlen)))
        return rc;

    fd = listen_unix(cfg->socket_path);
    if (fd < 0) {
        snprintf(err, errlen, "API socket %.300s: %s", cfg->socket_path,
                 fd == -EADDRINUSE ? "another vmmd is listening there" : strerror(-fd));
        return fd;
    }
    if ((rc = http_server_start(d, d->loop, fd,
                                &(struct http_server_opts){.listener = HTTP_LISTENER_UNIX},
                                vmmd_admit, vmmd_dispatch, &d->http_unix))) {
        snprintf(err, errlen, "HTTP server on %s failed", cfg->socket_path);
        return rc;
    }
    if (cfg->listen)
        return setup_tcp(d, err, errlen);
    return 0;
}

/* close_range(CLOSE_RANGE_CLOEXEC) needs Linux 5.11; before it, one descriptor at a time. */
static void mark_inherited_fds_cloexec(void)
{
    DIR *dir;
    struct dirent *e;

    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
    dir = opendir("/proc/self/fd");
    while (dir && (e = readdir(dir))) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != dirfd(dir))
            fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    }
    if (dir)
        closedir(dir);
}

int vmmd_serve_main(int argc, char **argv)
{
    static struct vmmd_daemon daemon;
    struct vmmd_daemon *d = &daemon;
    struct vmmd_config cfg;
    char err[512] = "";
    int64_t ev = 0;
    int rc;

    /* Whatever started the daemon may have left descriptors open (a pipe, a socket): none of
     * them may reach a worker, which gets only what it is handed. */
    mark_inherited_fds_cloexec();
    /* Before any thread: live migration asks the target from the thread pool. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (vmmd_config_load(&cfg, argc, argv, err, sizeof(err))) {
        fprintf(stderr, "vmmd: %s\n", err);
        vmmd_config_free(&cfg);
        return 2;
    }
    if (cfg.help) {
        vmmd_config_help();
        vmmd_config_free(&cfg);
        return 0;
    }
    vmmd_log_level = cfg.log_level;
    if (cfg.log_file && (rc = vmmd_log_open(cfg.log_file))) {
        fprintf(stderr, "vmmd: log file %s: %s\n", cfg.log_file, strerror(-rc));
        vmmd_config_free(&cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    d->cfg = &cfg;
    /* libuv's pool (4 threads by default) runs image copies, forwards, fetches from other
     * members and list renders: one long copy must not queue the rest behind it. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
    d->loop = uv_default_loop();
    d->self_exe = worker_binary();
    d->dashboard_dir_fd = -1;
    d->host_cpus = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    d->host_memory_bytes = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    d->sup = supervisor_create(d);
    d->nets = networks_create(d);
    d->events = event_stream_create(d);
    routes_metrics_init();
    if ((rc = setup(d, err, sizeof(err)))) {
        fprintf(stderr, "vmmd: %s\n", err);
        log_error("%s", err);
        goto out;
    }
    uv_signal_init(d->loop, &d->sig_term);
    uv_signal_init(d->loop, &d->sig_int);
    uv_signal_init(d->loop, &d->sig_hup);
    d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
    uv_signal_start(&d->sig_term, on_signal, SIGTERM);
    uv_signal_start(&d->sig_int, on_signal, SIGINT);
    uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
    uv_timer_init(d->loop, &d->drain_timer);
    d->drain_timer.data = d;

    if (db_event_insert(d->db, "daemon.started", "", "{\"version\":\"" VMMD_VERSION "\"}", &ev) == 0)
        vmmd_event_committed(d, ev);
    /* Networks first: autostarted VMs join their bridges. */
    networks_start(d->nets);
    storage_start(d->storage);
    supervisor_reattach_all(d->sup);
    autostart(d);
    log_info("vmmd %s serving on %s%s%s%s, state in %s", VMMD_VERSION, cfg.socket_path,
             cfg.listen ? " and " : "", d->tls_enabled ? "https://" : cfg.listen ? "http://" : "",
             cfg.listen ? cfg.listen : "", cfg.state_dir);
    cluster_serving(d->cluster);
    /* Type=notify: systemd counts the service started once the API answers. */
    int notified = vmmd_sd_notify("READY=1\nSTATUS=serving the API");
    if (notified < 0)
        log_warn("cannot tell the service manager we are ready: %s", strerror(-notified));

    uv_run(d->loop, UV_RUN_DEFAULT);
    unlink(cfg.socket_path);

out:
    /* After a failed setup some of this was never made; each step copes with NULL. */
    if (d->http_unix)
        http_server_destroy(d->http_unix);
    if (d->http_tcp)
        http_server_destroy(d->http_tcp);
    event_stream_destroy(d->events);
    cluster_stop(d->cluster);
    uv_run(d->loop, UV_RUN_NOWAIT); /* let the closes finish */
    if (d->sup)
        supervisor_destroy(d->sup);
    networks_destroy(d->nets);
    cluster_networks_free(d->cluster_nets);
    storage_destroy(d->storage);
    cluster_images_free(d);
    routes_migrations_free();
    /* uv_run has returned, so no list render is using the reader any more. */
    if (d->db_reader)
        db_close(d->db_reader);
    if (d->db)
        db_close(d->db);
    uv_loop_close(d->loop);
    for (unsigned i = 0; i < cfg.image_dirs.count; i++)
        free(d->image_dirs[i]);
    if (d->dashboard_dir_fd >= 0)
        close(d->dashboard_dir_fd);
    free(d->run_dir);
    free(d->self_exe);
    vmmd_tls_free(&d->tls);
    vmmd_config_free(&cfg);
    return rc ? 1 : 0;
}
