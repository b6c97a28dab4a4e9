/*
 * Full VM lifecycles per second against a running vmmd: create, start
 * (returns once the worker reports running), stop, delete, over the Unix
 * socket with raw HTTP/1.1, sequentially and with N concurrent clients.
 * Usage: bench_lifecycle SOCKET KERNEL CLIENTS SECONDS
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *sock_path, *kernel;
static double seconds;
static atomic_ulong done, failed;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One request on a fresh connection; returns the status, body in out. */
static int request(const char *method, const char *path, const char *body, char *out, size_t outsz)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char req[2048];
    size_t len = 0;
    ssize_t n;
    int fd, status = 0;

    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        close(fd);
        return -1;
    }
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: vmmd\r\nConnection: close\r\nContent-Type: "
             "application/json\r\nContent-Length: %zu\r\n\r\n%s",
             method, path, body ? strlen(body) : 0, body ? body : "");
    if (write(fd, req, strlen(req)) < 0) {
        close(fd);
        return -1;
    }
    while (len < outsz - 1 && (n = read(fd, out + len, outsz - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = 0;
    close(fd);
    sscanf(out, "HTTP/1.%*d %d", &status);
    return status;
}

static int lifecycle(unsigned client, unsigned seq)
{
    char body[1024], resp[16384], path[128], id[64];
    const char *p;

    snprintf(body, sizeof(body), "{\"name\":\"bench-%u-%u\",\"kernel\":\"%s\",\"memory_mib\":32}",
             client, seq, kernel);
    if (request("POST", "/v1/vms", body, resp, sizeof(resp)) != 201)
        return -1;
    p = strstr(resp, "\"id\":\"");
    if (!p || sscanf(p + 6, "%36[^\"]", id) != 1)
        return -1;
    snprintf(path, sizeof(path), "/v1/vms/%s/start", id);
    if (request("POST", path, NULL, resp, sizeof(resp)) != 200 || !strstr(resp, "\"running\""))
        return -1;
    snprintf(path, sizeof(path), "/v1/vms/%s/stop", id);
    if (request("POST", path, NULL, resp, sizeof(resp)) != 200)
        return -1;
    snprintf(path, sizeof(path), "/v1/vms/%s", id);
    if (request("DELETE", path, NULL, resp, sizeof(resp)) != 204)
        return -1;
    return 0;
}

static void *client_main(void *arg)
{
    unsigned client = (unsigned)(uintptr_t)arg;
    double end = now_s() + seconds;

    for (unsigned seq = 0; now_s() < end; seq++) {
        if (lifecycle(client, seq))
            atomic_fetch_add(&failed, 1);
        else
            atomic_fetch_add(&done, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned clients;
    pthread_t threads[64];
    double t0;

    if (argc != 5) {
        fprintf(stderr, "usage: bench_lifecycle SOCKET KERNEL CLIENTS SECONDS\n");
        return 2;
    }
    sock_path = argv[1];
    kernel = argv[2];
    clients = (unsigned)atoi(argv[3]);
    seconds = atof(argv[4]);
    if (clients < 1 || clients > 64)
        return 2;
    t0 = now_s();
    for (unsigned i = 0; i < clients; i++)
        pthread_create(&threads[i], NULL, client_main, (void *)(uintptr_t)i);
    for (unsigned i = 0; i < clients; i++)
        pthread_join(threads[i], NULL);
    printf("lifecycles: %u client(s), %lu in %.1f s = %.1f per second, %lu failed\n", clients,
           atomic_load(&done), now_s() - t0, (double)atomic_load(&done) / (now_s() - t0),
           atomic_load(&failed));
    return atomic_load(&failed) ? 1 : 0;
}
