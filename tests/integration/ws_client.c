/*
 * A minimal WebSocket client for the console test: connects over the
 * daemon's Unix socket, checks the 101 and Sec-WebSocket-Accept, sends
 * argv[3] as one masked text frame after the first output arrives (or at
 * once), prints every frame's payload for argv[4] ms, then closes.
 * Usage: ws_client SOCKET PATH TEXT WAIT_MS
 *
 * With --flood ping|text SECONDS instead it is the client that never reads:
 * it sends PING frames (or text the echo guest sends back) as fast as the
 * socket takes them, and reports when the daemon hangs up on it. Exit 0 if
 * it was disconnected within SECONDS, 1 if it was still connected.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/websocket.h"

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Builds one masked client frame of at most 512 payload bytes; returns its size. */
static size_t masked_frame(uint8_t opcode, const char *text, uint8_t frame[512 + 14])
{
    size_t len = strlen(text);
    uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
    size_t h = 0;

    if (len > 512)
        len = 512;
    frame[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        frame[h++] = (uint8_t)(0x80 | len);
    } else {
        frame[h++] = 0x80 | 126;
        frame[h++] = (uint8_t)(len >> 8);
        frame[h++] = (uint8_t)len;
    }
    memcpy(frame + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        frame[h + i] = (uint8_t)text[i] ^ mask[i % 4];
    return h + len;
}

static void send_masked(int fd, uint8_t opcode, const char *text)
{
    uint8_t frame[512 + 14];

    if (write(fd, frame, masked_frame(opcode, text, frame)) < 0)
        perror("write");
}

/* Sends frames without ever reading until the daemon hangs up or the time is out. */
static int flood(int fd, const char *kind, long seconds)
{
    uint8_t frame[512 + 14];
    char payload[126];
    size_t len, off = 0;
    unsigned long long sent = 0;
    long long start = now_ms(), deadline = start + seconds * 1000;

    memset(payload, 'x', sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = 0;
    len = masked_frame(strcmp(kind, "ping") == 0 ? WS_OP_PING : WS_OP_TEXT, payload, frame);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    while (now_ms() < deadline) {
        ssize_t n = send(fd, frame + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            off = (off + (size_t)n) % len;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            printf("disconnected after %lld ms, %llu bytes sent (%s)\n", now_ms() - start, sent,
                   strerror(errno));
            return 0;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, 100);
        if (p.revents & (POLLHUP | POLLERR)) {
            printf("disconnected after %lld ms, %llu bytes sent (hangup)\n", now_ms() - start,
                   sent);
            return 0;
        }
    }
    printf("still connected after %ld s, %llu bytes sent\n", seconds, sent);
    return 1;
}

int main(int argc, char **argv)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    char req[1024], expect[64], accept[29];
    static uint8_t buf[1 << 20];
    size_t len = 0;
    int fd, sent = 0;
    long long deadline;

    if (argc != 5 && !(argc == 6 && strcmp(argv[3], "--flood") == 0)) {
        fprintf(stderr, "usage: ws_client SOCKET PATH TEXT WAIT_MS\n"
                        "       ws_client SOCKET PATH --flood ping|text SECONDS\n");
        return 2;
    }
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", argv[1]);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        perror("connect");
        return 1;
    }
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: vmmd\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
             argv[2], key);
    if (write(fd, req, strlen(req)) < 0)
        return 1;
    /* Response headers. */
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len - 1);
        if (n <= 0) {
            fprintf(stderr, "ws_client: no upgrade response\n");
            return 1;
        }
        len += (size_t)n;
        buf[len] = 0;
        if (strstr((char *)buf, "\r\n\r\n"))
            break;
    }
    ws_accept_key(key, accept);
    snprintf(expect, sizeof(expect), "Sec-WebSocket-Accept: %s", accept);
    if (strncmp((char *)buf, "HTTP/1.1 101", 12) != 0 || !strcasestr((char *)buf, expect)) {
        fprintf(stderr, "ws_client: bad handshake:\n%s\n", buf);
        return 1;
    }
    if (strcmp(argv[3], "--flood") == 0)
        return flood(fd, argv[4], atol(argv[5]));
    size_t hdr_end = (size_t)(strstr((char *)buf, "\r\n\r\n") - (char *)buf) + 4;
    memmove(buf, buf + hdr_end, len - hdr_end);
    len -= hdr_end;

    deadline = now_ms() + atol(argv[4]);
    while (now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        struct ws_frame f;

        while (ws_parse_frame(buf, len, false, &f) == 1) {
            fwrite(buf + f.header_len, 1, f.payload_len, stdout);
            fflush(stdout);
            if (f.opcode == WS_OP_CLOSE)
                return 0;
            memmove(buf, buf + f.header_len + f.payload_len, len - f.header_len - f.payload_len);
            len -= f.header_len + f.payload_len;
            if (!sent) {
                send_masked(fd, WS_OP_TEXT, argv[3]);
                sent = 1;
            }
        }
        if (poll(&p, 1, 50) == 1) {
            ssize_t n = read(fd, buf + len, sizeof(buf) - len);
            if (n <= 0)
                break;
            len += (size_t)n;
        } else if (!sent) {
            send_masked(fd, WS_OP_TEXT, argv[3]);
            sent = 1;
        }
    }
    send_masked(fd, WS_OP_CLOSE, "");
    close(fd);
    return 0;
}
