/*
 * The slow clients of the front-door test (test_front_door.sh), as an
 * attacker would write them, in C so that CI needs nothing more than the
 * compiler:
 *
 *   slow_client hold http|tls HOST PORT SRC N
 *     opens N TCP connections from source address SRC and sends each the
 *     start of a request whose headers never end (tls: the start of a TLS
 *     record that would hold a 16 KiB ClientHello, so the handshake never
 *     ends either); prints "open K" (how many the server has not closed)
 *     once they are all tried and then every second, until killed.
 *   slow_client trickle http|tls HOST PORT SRC SECONDS_PER_BYTE
 *     one connection that sends the same a byte at a time, one byte every
 *     SECONDS_PER_BYTE, never finishing; prints "closed after S s" when the
 *     server ends it (exit 0), or "still open after 60 s" (exit 1).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char http_start[] = "GET /v1/vms HTTP/1.1\r\nHost: x\r\nX-Slow: ";
/* A handshake record (22) of TLS 1.0 framing, 0x4000 bytes long, then a ClientHello's type. */
static const char tls_start[] = "\x16\x03\x01\x40\x00\x01\x00\x3f\xfc\x03\x03";
static const char *partial;
static size_t partial_len;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_from(const char *host, int port, const char *src)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in from = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || inet_pton(AF_INET, host, &to.sin_addr) != 1 ||
        inet_pton(AF_INET, src, &from.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Not closed by the peer: nothing to read, or data but no end of stream. */
static int still_open(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[256];

    if (poll(&p, 1, 0) == 0)
        return 1;
    return recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
}

static _Noreturn void hold(const char *host, int port, const char *src, int n)
{
    int *fds = calloc((size_t)n, sizeof(int));
    struct rlimit rl;

    /* One descriptor per connection: raise the soft limit as far as the hard one allows. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (int i = 0; i < n; i++) {
        fds[i] = connect_from(host, port, src);
        if (fds[i] >= 0 && send(fds[i], partial, partial_len, MSG_NOSIGNAL) < 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
    for (;;) {
        int open = 0;
        for (int i = 0; i < n; i++) {
            if (fds[i] >= 0 && !still_open(fds[i])) {
                close(fds[i]);
                fds[i] = -1;
            }
            open += fds[i] >= 0;
        }
        printf("open %d\n", open);
        fflush(stdout);
        sleep(1);
    }
}

static int trickle(const char *host, int port, const char *src, double every)
{
    int fd = connect_from(host, port, src);
    double start = now_s();
    size_t sent = 0;

    if (fd < 0) {
        perror("connect");
        return 2;
    }
    while (now_s() - start < 60) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c = sent < partial_len ? partial[sent] : 'a';

        if (send(fd, &c, 1, MSG_NOSIGNAL) < 0 ||
            (poll(&p, 1, (int)(every * 1000)) > 0 && !still_open(fd))) {
            printf("closed after %.1f s (%zu bytes sent)\n", now_s() - start, sent);
            return 0;
        }
        sent++;
    }
    printf("still open after 60 s (%zu bytes sent)\n", sent);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 7 && (strcmp(argv[2], "http") == 0 || strcmp(argv[2], "tls") == 0)) {
        bool tls = strcmp(argv[2], "tls") == 0;
        partial = tls ? tls_start : http_start;
        partial_len = tls ? sizeof(tls_start) - 1 : sizeof(http_start) - 1;
        if (strcmp(argv[1], "hold") == 0)
            hold(argv[3], atoi(argv[4]), argv[5], atoi(argv[6]));
        if (strcmp(argv[1], "trickle") == 0)
            return trickle(argv[3], atoi(argv[4]), argv[5], atof(argv[6]));
    }
    fprintf(stderr, "usage: slow_client hold|trickle http|tls HOST PORT SRC N|SECONDS\n");
    return 2;
}
