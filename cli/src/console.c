/*
 * The interactive console. libcurl does not speak WebSocket in Debian 12's
 * version, so this opens the socket itself (Unix, or TCP for --url),
 * performs the RFC 6455 handshake and frames with vmmd's websocket.c: frames
 * from the server are unmasked, ours are masked (RFC 6455 5.3). Keyboard
 * input goes to the guest byte for byte; Ctrl-] closes the WebSocket and
 * leaves the VM running.
 */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "http.h"
#include "common/websocket.h"

static int connect_unix(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* http://HOST[:PORT][/...]; sets host (for the Host header). */
static int connect_tcp(const char *url, char *host, size_t host_len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    char port[16] = "80";
    const char *p = url, *end;
    int fd = -1;

    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strstr(p, "://")) {
        errno = EPROTONOSUPPORT;
        return -1;
    }
    end = p + strcspn(p, "/");
    snprintf(host, host_len, "%.*s", (int)(end - p), p);
    {
        char *colon = strrchr(host, ':');
        char name[256];
        if (colon && !strchr(colon, ']')) {
            snprintf(port, sizeof(port), "%s", colon + 1);
            snprintf(name, sizeof(name), "%.*s", (int)(colon - host), host);
        } else {
            snprintf(name, sizeof(name), "%s", host);
        }
        if (name[0] == '[') { /* [v6] */
            memmove(name, name + 1, strlen(name));
            name[strcspn(name, "]")] = '\0';
        }
        if (getaddrinfo(name, port, &hints, &res)) {
            errno = EHOSTUNREACH;
            return -1;
        }
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void random_bytes(uint8_t *out, size_t len)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

    if (fd < 0 || read(fd, out, len) != (ssize_t)len) {
        for (size_t i = 0; i < len; i++)
            out[i] = (uint8_t)rand();
    }
    if (fd >= 0)
        close(fd);
}

/* One masked client frame. */
static int send_frame(int fd, uint8_t opcode, const uint8_t *data, size_t len)
{
    uint8_t hdr[14], mask[4], *frame;
    size_t h = 0;
    int rc;

    hdr[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        hdr[h++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t)(len >> 8);
        hdr[h++] = (uint8_t)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    random_bytes(mask, 4);
    memcpy(hdr + h, mask, 4);
    h += 4;
    frame = malloc(h + len);
    if (!frame)
        return -1;
    memcpy(frame, hdr, h);
    for (size_t i = 0; i < len; i++)
        frame[h + i] = data[i] ^ mask[i % 4];
    rc = write_all(fd, frame, h + len);
    free(frame);
    return rc;
}

static void base64(const uint8_t *in, size_t len, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

static struct termios saved_tio;
static bool tio_saved;

static void restore_tty(void)
{
    if (tio_saved)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
    tio_saved = false;
}

/* The handshake; leaves any bytes after the headers in buf/len. */
static int handshake(const struct cli_ctx *ctx, int fd, const char *host, const char *path,
                     uint8_t *buf, size_t cap, size_t *len)
{
    uint8_t nonce[16];
    char key[32], accept[29], req[8192], auth[4200] = "";
    char *end;

    random_bytes(nonce, sizeof(nonce));
    base64(nonce, sizeof(nonce), key);
    if (ctx->token)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", ctx->token);
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
             path, host, key, auth);
    if (write_all(fd, req, strlen(req)))
        return -1;
    *len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + *len, cap - *len - 1);
        if (n <= 0)
            return -1;
        *len += (size_t)n;
        buf[*len] = '\0';
        if ((end = strstr((char *)buf, "\r\n\r\n")))
            break;
        if (*len + 1 >= cap)
            return -1;
    }
    ws_accept_key(key, accept);
    if (strncmp((char *)buf, "HTTP/1.1 101", 12) != 0) {
        /* A refusal: the body is problem+json; print its detail. */
        struct cli_response r = {.status = strtol((char *)buf + 9, NULL, 10)};
        size_t hdr = (size_t)(end + 4 - (char *)buf);
        r.body = (char *)buf + hdr;
        r.len = *len - hdr;
        if (r.status < 400)
            r.status = 500;
        cli_http_check(&r);
        return -2;
    }
    {
        char expect[64];
        snprintf(expect, sizeof(expect), "Sec-WebSocket-Accept: %s", accept);
        if (!strcasestr((char *)buf, expect)) {
            fprintf(stderr, "vmctl: the daemon's WebSocket handshake is wrong\n");
            return -2;
        }
    }
    {
        size_t hdr = (size_t)(end + 4 - (char *)buf);
        memmove(buf, buf + hdr, *len - hdr);
        *len -= hdr;
    }
    return 0;
}

int cli_console_attach(const struct cli_ctx *ctx, const char *name, const char *path)
{
    static uint8_t buf[WS_MAX_PAYLOAD + 16];
    char host[256] = "vmmd";
    size_t len = 0;
    bool tty = isatty(STDIN_FILENO), stdin_open = true, detached = false;
    int fd, rc = CLI_EXIT_OK;

    fd = ctx->url ? connect_tcp(ctx->url, host, sizeof(host)) : connect_unix(ctx->socket_path);
    if (fd < 0) {
        cli_http_unreachable(ctx, strerror(errno));
        return CLI_EXIT_UNREACHABLE;
    }
    switch (handshake(ctx, fd, host, path, buf, sizeof(buf), &len)) {
    case -1:
        close(fd);
        cli_http_unreachable(ctx, "the connection closed during the WebSocket handshake");
        return CLI_EXIT_UNREACHABLE;
    case -2:
        close(fd);
        return CLI_EXIT_REFUSED;
    }
    if (tty && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        struct termios raw = saved_tio;
        cfmakeraw(&raw);
        tio_saved = true;
        atexit(restore_tty);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
    }
    fprintf(stderr, "Connected to %s's console; Ctrl-] detaches.%s", name, tty ? "\r\n" : "\n");

    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
        struct ws_frame f;
        int pr;

        /* Whole frames already in the buffer first. */
        while ((pr = ws_parse_frame(buf, len, false, &f)) == 1) {
            uint8_t *payload = buf + f.header_len;
            size_t used = f.header_len + f.payload_len;
            if (f.opcode == WS_OP_CLOSE) {
                restore_tty();
                fprintf(stderr, "\nvmctl: the console closed (the VM stopped?)\n");
                goto out;
            }
            if (f.opcode == WS_OP_PING)
                send_frame(fd, WS_OP_PONG, payload, f.payload_len);
            else if (f.opcode == WS_OP_BINARY || f.opcode == WS_OP_TEXT || f.opcode == WS_OP_CONT)
                write_all(STDOUT_FILENO, payload, f.payload_len);
            memmove(buf, buf + used, len - used);
            len -= used;
        }
        if (pr < 0) {
            fprintf(stderr, "\nvmctl: bad WebSocket frame from the daemon\n");
            rc = CLI_EXIT_REFUSED;
            goto out;
        }
        pr = poll(p, stdin_open ? 2 : 1, stdin_open ? -1 : 1000);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) /* stdin ended (not a terminal): a last second for output */
            break;
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(fd, buf + len, sizeof(buf) - len);
            if (n <= 0) {
                restore_tty();
                fprintf(stderr, "\nvmctl: the daemon closed the console\n");
                goto out;
            }
            len += (size_t)n;
        }
        if (stdin_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            uint8_t in[4096];
            ssize_t n = read(STDIN_FILENO, in, sizeof(in));
            uint8_t *esc;
            if (n <= 0) {
                stdin_open = false;
                continue;
            }
            esc = memchr(in, CLI_CONSOLE_ESCAPE, (size_t)n);
            if (esc) {
                if (esc > in)
                    send_frame(fd, WS_OP_BINARY, in, (size_t)(esc - in));
                detached = true;
                break;
            }
            if (send_frame(fd, WS_OP_BINARY, in, (size_t)n)) {
                restore_tty();
                fprintf(stderr, "\nvmctl: the daemon closed the console\n");
                goto out;
            }
        }
    }
    send_frame(fd, WS_OP_CLOSE, (const uint8_t *)"\x03\xe8", 2);
    restore_tty();
    if (detached)
        fprintf(stderr, "\nDetached from %s; it keeps running.\n", name);
out:
    restore_tty();
    close(fd);
    return rc;
}
