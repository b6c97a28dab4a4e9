/*
 * The interactive console. libcurl does not speak WebSocket in Debian 12's
 * version, so this takes a bare connection from it (Unix, TCP or TLS),
 * performs the RFC 6455 handshake and frames with vmmd's websocket.c: frames
 * from the server are unmasked, ours are masked (RFC 6455 5.3). Keyboard
 * input goes to the guest byte for byte; Ctrl-] closes the WebSocket and
 * leaves the VM running.
 */
#include "console.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "http.h"
#include "common/websocket.h"

/*
 * The connection is libcurl's, opened with CURLOPT_CONNECT_ONLY: the same
 * code reaches the Unix socket, http:// and https:// (TLS, with --cacert or
 * --tls-pin as for every other request), and curl_easy_send/recv carry the
 * bytes. With TLS, decrypted bytes may wait in the TLS library after poll()
 * said the socket had some, so reads drain until CURLE_AGAIN.
 */
struct ws_conn {
    CURL *curl;
    int fd; /* the socket, for poll() */
};

/* Connects; 0, or -1 after printing why. host is set for the Host header. */
static int conn_open(const struct cli_ctx *ctx, struct ws_conn *c, char *host, size_t host_len)
{
    char url[8192];
    curl_socket_t fd;
    CURLcode rc;

    c->curl = curl_easy_init();
    if (!c->curl)
        return -1;
    if (ctx->url) {
        const char *p = strstr(ctx->url, "://");
        p = p ? p + 3 : ctx->url;
        snprintf(host, host_len, "%.*s", (int)strcspn(p, "/"), p);
        snprintf(url, sizeof(url), "%s", ctx->url);
        cli_http_set_tls(ctx, c->curl);
    } else {
        snprintf(url, sizeof(url), "http://vmmd/");
        curl_easy_setopt(c->curl, CURLOPT_UNIX_SOCKET_PATH, ctx->socket_path);
    }
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    rc = curl_easy_perform(c->curl);
    if (rc == CURLE_OK)
        rc = curl_easy_getinfo(c->curl, CURLINFO_ACTIVESOCKET, &fd);
    if (rc != CURLE_OK) {
        cli_http_unreachable(ctx, curl_easy_strerror(rc));
        curl_easy_cleanup(c->curl);
        return -1;
    }
    c->fd = (int)fd;
    return 0;
}

static void conn_close(struct ws_conn *c)
{
    curl_easy_cleanup(c->curl);
}

static int wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};

    return poll(&p, 1, 30000) > 0 ? 0 : -1;
}

static int conn_write(struct ws_conn *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(c->curl, p, len, &n);
        if (rc == CURLE_AGAIN) {
            if (wait_fd(c->fd, POLLOUT))
                return -1;
            continue;
        }
        if (rc != CURLE_OK)
            return -1;
        p += n;
        len -= n;
    }
    return 0;
}

/* What is there to read without waiting: > 0 bytes, 0 none yet, -1 closed or failed. */
static ssize_t conn_read_some(struct ws_conn *c, void *buf, size_t cap)
{
    size_t n = 0;
    CURLcode rc = curl_easy_recv(c->curl, buf, cap, &n);

    if (rc == CURLE_AGAIN)
        return 0;
    if (rc != CURLE_OK || n == 0)
        return -1;
    return (ssize_t)n;
}

/* Waits for at least one byte: > 0, or -1 closed, failed or 30 s of silence. */
static ssize_t conn_read(struct ws_conn *c, void *buf, size_t cap)
{
    for (;;) {
        ssize_t n = conn_read_some(c, buf, cap);
        if (n != 0)
            return n;
        if (wait_fd(c->fd, POLLIN))
            return -1;
    }
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
static int send_frame(struct ws_conn *c, uint8_t opcode, const uint8_t *data, size_t len)
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
    rc = conn_write(c, frame, h + len);
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
static int handshake(const struct cli_ctx *ctx, struct ws_conn *c, const char *host, const char *path,
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
    if (conn_write(c, req, strlen(req)))
        return -1;
    *len = 0;
    for (;;) {
        ssize_t n = conn_read(c, buf + *len, cap - *len - 1);
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
    bool tty = isatty(STDIN_FILENO), stdin_open = true, detached = false, full = false;
    struct ws_conn conn, *c = &conn;
    int rc = CLI_EXIT_OK;

    if (conn_open(ctx, c, host, sizeof(host)))
        return CLI_EXIT_UNREACHABLE;
    switch (handshake(ctx, c, host, path, buf, sizeof(buf), &len)) {
    case -1:
        conn_close(c);
        cli_http_unreachable(ctx, "the connection closed during the WebSocket handshake");
        return CLI_EXIT_UNREACHABLE;
    case -2:
        conn_close(c);
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
        struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
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
                send_frame(c, WS_OP_PONG, payload, f.payload_len);
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
        /* A full buffer may have left decrypted bytes behind: look again at once. */
        pr = poll(p, stdin_open ? 2 : 1, full ? 0 : stdin_open ? -1 : 1000);
        if (full) {
            full = false;
            p[0].revents |= POLLIN;
            if (pr <= 0)
                pr = 1;
        }
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) /* stdin ended (not a terminal): a last second for output */
            break;
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = len < sizeof(buf) ? conn_read_some(c, buf + len, sizeof(buf) - len) : 0;
            /* Drain what TLS already decrypted: poll() cannot see it. */
            while (n > 0 && (len += (size_t)n) < sizeof(buf))
                n = conn_read_some(c, buf + len, sizeof(buf) - len);
            full = len == sizeof(buf);
            if (n < 0) {
                restore_tty();
                fprintf(stderr, "\nvmctl: the daemon closed the console\n");
                goto out;
            }
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
                    send_frame(c, WS_OP_BINARY, in, (size_t)(esc - in));
                detached = true;
                break;
            }
            if (send_frame(c, WS_OP_BINARY, in, (size_t)n)) {
                restore_tty();
                fprintf(stderr, "\nvmctl: the daemon closed the console\n");
                goto out;
            }
        }
    }
    send_frame(c, WS_OP_CLOSE, (const uint8_t *)"\x03\xe8", 2);
    restore_tty();
    if (detached)
        fprintf(stderr, "\nDetached from %s; it keeps running.\n", name);
out:
    restore_tty();
    conn_close(c);
    return rc;
}
