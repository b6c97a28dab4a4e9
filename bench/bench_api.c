/*
 * GET requests per second against a running vmmd, the same client for its
 * three ways in: the Unix socket, plain TCP (--insecure-http) and TLS, so
 * that the figures differ only by transport. CONNECTIONS threads each keep
 * one connection alive and send the next request when the previous answer
 * is in (no pipelining), for SECONDS; the TLS handshake happens once per
 * connection, before the clock starts, as a long-lived client's would (the
 * certificate is not checked: this measures the cost of the channel).
 * Prints one line: requests/s and failures.
 * Usage: bench_api unix:PATH|tcp:HOST:PORT|tls:HOST:PORT URL_PATH TOKEN CONNECTIONS SECONDS
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *target, *url_path, *token;
static double seconds;
static atomic_ulong done, failed;
static gnutls_certificate_credentials_t creds;
static pthread_barrier_t ready;

struct conn {
    int fd;
    gnutls_session_t tls; /* NULL: plain */
    char buf[1 << 20];
    size_t len;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_conn(struct conn *c)
{
    c->tls = NULL;
    c->len = 0;
    if (strncmp(target, "unix:", 5) == 0) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", target + 5);
        c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
        return connect(c->fd, (struct sockaddr *)&a, sizeof(a));
    }
    char host[64];
    const char *hp = target + 4, *colon = strrchr(hp, ':');
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    int one = 1;

    snprintf(host, sizeof(host), "%.*s", (int)(colon - hp), hp);
    inet_pton(AF_INET, host, &a.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (strncmp(target, "tls:", 4) != 0)
        return 0;
    gnutls_init(&c->tls, GNUTLS_CLIENT);
    gnutls_set_default_priority(c->tls);
    gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, creds);
    gnutls_transport_set_int(c->tls, c->fd);
    int rc;
    do
        rc = gnutls_handshake(c->tls);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    return rc < 0 ? -1 : 0;
}

static ssize_t conn_send(struct conn *c, const char *p, size_t n)
{
    return c->tls ? gnutls_record_send(c->tls, p, n) : write(c->fd, p, n);
}

static ssize_t conn_recv(struct conn *c)
{
    ssize_t n = c->tls ? gnutls_record_recv(c->tls, c->buf + c->len, sizeof(c->buf) - 1 - c->len)
                       : read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
    if (n > 0) {
        c->len += (size_t)n;
        c->buf[c->len] = 0;
    }
    return n;
}

/* One request and its whole answer; the status, or -1. */
static int round_trip(struct conn *c, const char *req, size_t req_len)
{
    char *end, *cl;
    size_t header_len, body_len;
    int status = 0;

    if (conn_send(c, req, req_len) != (ssize_t)req_len)
        return -1;
    while (!(end = strstr(c->buf, "\r\n\r\n")))
        if (conn_recv(c) <= 0)
            return -1;
    header_len = (size_t)(end + 4 - c->buf);
    cl = strcasestr(c->buf, "\r\nContent-Length:");
    if (!cl || cl > end || sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    body_len = strtoul(cl + 17, NULL, 10);
    while (c->len < header_len + body_len)
        if (conn_recv(c) <= 0)
            return -1;
    memmove(c->buf, c->buf + header_len + body_len, c->len - header_len - body_len);
    c->len -= header_len + body_len;
    c->buf[c->len] = 0;
    return status;
}

static void *client_main(void *arg)
{
    struct conn *c = malloc(sizeof(*c));
    char req[1024];
    int n;
    double end;

    (void)arg;
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n", url_path,
                 token);
    if (open_conn(c) < 0) {
        atomic_fetch_add(&failed, 1);
        c->fd = -1;
    }
    pthread_barrier_wait(&ready);
    end = now_s() + seconds;
    while (c->fd >= 0 && now_s() < end) {
        if (round_trip(c, req, (size_t)n) == 200) {
            atomic_fetch_add(&done, 1);
            continue;
        }
        atomic_fetch_add(&failed, 1);
        break;
    }
    if (c->tls) {
        gnutls_bye(c->tls, GNUTLS_SHUT_WR);
        gnutls_deinit(c->tls);
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned conns;
    pthread_t *threads;
    double start;

    if (argc != 6) {
        fprintf(stderr, "usage: bench_api unix:PATH|tcp:HOST:PORT|tls:HOST:PORT URL_PATH TOKEN "
                        "CONNECTIONS SECONDS\n");
        return 2;
    }
    target = argv[1];
    url_path = argv[2];
    token = argv[3];
    conns = (unsigned)atoi(argv[4]);
    seconds = atof(argv[5]);
    gnutls_global_init();
    gnutls_certificate_allocate_credentials(&creds);
    threads = calloc(conns, sizeof(*threads));
    pthread_barrier_init(&ready, NULL, conns + 1);
    for (unsigned i = 0; i < conns; i++)
        pthread_create(&threads[i], NULL, client_main, NULL);
    pthread_barrier_wait(&ready);
    start = now_s();
    for (unsigned i = 0; i < conns; i++)
        pthread_join(threads[i], NULL);
    printf("%s: %.0f requests/s (%lu in %.1f s, %u connections, %lu failed)\n", target,
           (double)done / (now_s() - start), (unsigned long)done, now_s() - start, conns,
           (unsigned long)failed);
    free(threads);
    gnutls_certificate_free_credentials(creds);
    gnutls_global_deinit();
    return failed ? 1 : 0;
}
