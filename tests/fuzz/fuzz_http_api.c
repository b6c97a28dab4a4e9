/*
 * libFuzzer harness for the HTTP API from request line to response: the
 * whole daemon (vmmd_serve_main, every source of vmmd-daemon but its
 * main()) runs in this process on a thread of its own, with its own state
 * directory, image directory and dashboard files, and each input is one
 * connection to its Unix socket: the input's bytes are sent as they are
 * (request line, headers, body, chunked or not, pipelined or cut short),
 * the client then half-closes, and the answer is read to its end. So every
 * layer runs as in production: libmicrohttpd's parser, admission and the
 * route table, query and body validation, the handlers, SQLite, JSON
 * rendering, problem+json, metrics.
 *
 * Why a real daemon rather than calling vmmd_dispatch(): a request and its
 * answer are tied to an MHD connection (http_server.c), and the handlers
 * suspend and resume connections; a fake would test the fake. The price is
 * speed (a connection and two thread switches per input) and state that
 * carries over between inputs, which the harness bounds: a VM an input
 * created is deleted after it, and every 256 inputs the VMs are put back to
 * the two the harness made at start ("a", pv, and "b", full with a disk).
 * A crash therefore reproduces from its input alone in most cases, and from
 * the run's log otherwise.
 *
 * "@IMG@" in an input becomes the image directory, so inputs can name
 * kernels and disks the daemon accepts. Starting a VM runs no guest: the
 * worker binary the daemon looks for beside this one does not exist, so the
 * start fails at the spawn, after the handler, the file checks and the
 * store have done their part.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "daemon.h"

#define MAX_REQUEST (64 * 1024)
/* Longer only for a request the daemon cannot finish (MHD waits for the rest of a head cut short). */
#define FIRST_BYTE_MS 250
#define QUIET_MS 30        /* a stream (events, console) that has gone quiet is done */
#define RESET_EVERY 256

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], img_dir[96], sock_path[108];
static unsigned inputs;

static void write_file(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
        abort();
    close(fd);
}

static void *daemon_thread(void *arg)
{
    static char state[96], images[96], log[96], www[96], level[] = "error", max[] = "64";
    static char o_state[] = "--state-dir", o_images[] = "--image-dir", o_log[] = "--log-file",
                o_level[] = "--log-level", o_max[] = "--max-vms", o_www[] = "--dashboard-dir",
                o_nonet[] = "--no-networks"; /* no bridges, firewall or dnsmasq on the host */
    char *args[] = {o_state, state, o_images, images, o_log,   log,
                    o_level, level, o_max,    max,    o_www,   www,
                    o_nonet, NULL};

    (void)arg;
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(images, sizeof(images), "%s", img_dir);
    snprintf(log, sizeof(log), "%s/vmmd.log", dir);
    snprintf(www, sizeof(www), "%s/www", dir);
    fprintf(stderr, "fuzz_http_api: the daemon exited with %d\n",
            vmmd_serve_main((int)(sizeof(args) / sizeof(args[0])) - 1, args));
    abort();
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* The run's directory goes with the process (the daemon thread is still in it: that is fine). */
static void remove_dir(void)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Sends req, half-closes, reads the answer into out (NUL-terminated, truncated to max). */
static size_t exchange(const void *req, size_t len, char *out, size_t max)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    size_t got = 0;
    char sink[4096];

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, (const char *)req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, got ? QUIET_MS : FIRST_BYTE_MS) <= 0)
            break;
        if (got + 1 < max)
            n = recv(fd, out + got, max - got - 1, 0);
        else
            n = recv(fd, sink, sizeof(sink), 0);
        if (n <= 0)
            break;
        if (got + 1 < max)
            got += (size_t)n;
    }
    close(fd);
    if (max)
        out[got] = 0;
    return got;
}

static void request(const char *method, const char *path, const char *json, char *out, size_t max)
{
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, json ? strlen(json) : 0, json ? json : "");

    exchange(req, (size_t)n, out, max);
}

/* Back to the two VMs the run started with: inputs rename and delete them. */
static void reset_vms(void)
{
    static char answer[1 << 20];
    char json[512], path[128], tmp[256];
    const char *body;
    json_t *list;
    size_t i;
    json_t *vm;

    request("GET", "/v1/vms", NULL, answer, sizeof(answer));
    body = strstr(answer, "\r\n\r\n");
    list = body ? json_loads(body + 4, 0, NULL) : NULL;
    json_array_foreach(list, i, vm)
    {
        const char *id = json_string_value(json_object_get(vm, "id"));
        const char *name = json_string_value(json_object_get(vm, "name"));
        if (id && name && strcmp(name, "a") != 0 && strcmp(name, "b") != 0) {
            snprintf(path, sizeof(path), "/v1/vms/%s?force=true", id);
            request("DELETE", path, NULL, tmp, sizeof(tmp));
        }
    }
    json_decref(list);
    snprintf(json, sizeof(json), "{\"name\":\"a\",\"kernel\":\"%s/kernel\",\"memory_mib\":32}",
             img_dir);
    request("POST", "/v1/vms", json, tmp, sizeof(tmp));
    snprintf(json, sizeof(json),
             "{\"name\":\"b\",\"mode\":\"full\",\"kernel\":\"%s/kernel\",\"memory_mib\":64,"
             "\"disks\":[{\"path\":\"%s/disk.img\",\"readonly\":true}]}",
             img_dir, img_dir);
    request("POST", "/v1/vms", json, tmp, sizeof(tmp));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[160], answer[256];
    pthread_t t;

    (void)argc, (void)argv;
    snprintf(dir, sizeof(dir), "/tmp/vmmd-fuzz-http-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(img_dir, sizeof(img_dir), "%s/images", dir);
    snprintf(sock_path, sizeof(sock_path), "%s/state/vmmd.sock", dir);
    snprintf(path, sizeof(path), "%s/www", dir);
    if (mkdir(img_dir, 0755) != 0 || mkdir(path, 0755) != 0)
        abort();
    snprintf(path, sizeof(path), "%s/kernel", img_dir);
    write_file(path, "\177ELF not really", 16);
    snprintf(path, sizeof(path), "%s/disk.img", img_dir);
    write_file(path, "", 0);
    if (truncate(path, 1 << 20) != 0)
        abort();
    snprintf(path, sizeof(path), "%s/www/index.html", dir);
    write_file(path, "<!doctype html><title>vmmd</title>\n", 35);
    snprintf(path, sizeof(path), "%s/www/app.js", dir);
    write_file(path, "export {};\n", 11);
    atexit(remove_dir);
    if (pthread_create(&t, NULL, daemon_thread, NULL) != 0)
        abort();
    for (int i = 0; i < 500; i++) {
        request("GET", "/v1/host", NULL, answer, sizeof(answer));
        if (strncmp(answer, "HTTP/1.1 200", 12) == 0)
            break;
        usleep(10000);
    }
    if (strncmp(answer, "HTTP/1.1 200", 12) != 0) {
        fprintf(stderr, "fuzz_http_api: the daemon did not answer (log: %s/vmmd.log)\n", dir);
        abort();
    }
    reset_vms();
    return 0;
}

/* The input with every "@IMG@" replaced by the image directory. */
static size_t expand(const uint8_t *data, size_t size, char *out, size_t max)
{
    size_t n = 0, imglen = strlen(img_dir);

    for (size_t i = 0; i < size && n < max;) {
        if (size - i >= 5 && memcmp(data + i, "@IMG@", 5) == 0 && n + imglen <= max) {
            memcpy(out + n, img_dir, imglen);
            n += imglen;
            i += 5;
        } else {
            out[n++] = (char)data[i++];
        }
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char req[MAX_REQUEST], answer[8192];
    char path[128], tmp[256];
    const char *loc;
    size_t len;

    len = expand(data, size, req, sizeof(req));
    exchange(req, len, answer, sizeof(answer));
    /* What the input created goes again, so the store stays small. */
    if (strncmp(answer, "HTTP/1.1 201", 12) == 0 && (loc = strstr(answer, "\nLocation: "))) {
        int n = 0;
        sscanf(loc + 11, "%100[^\r\n]%n", path, &n);
        if (n > 0 && strlen(path) + sizeof("?force=true") < sizeof(path)) {
            strcat(path, "?force=true");
            request("DELETE", path, NULL, tmp, sizeof(tmp));
        }
    }
    if (++inputs % RESET_EVERY == 0)
        reset_vms();
    return 0;
}
