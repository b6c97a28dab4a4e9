/* WebSocket handshake key and framing (RFC 6455 sections 4.2.2 and 5.2). */
#include "common/websocket.h"

#include <string.h>

static uint32_t rol(uint32_t v, unsigned n)
{
    return (v << n) | (v >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];

    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
        uint32_t f, k, t;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void ws_sha1(const uint8_t *data, size_t len, uint8_t digest[20])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    uint8_t block[64];
    size_t i = 0;
    uint64_t bits = (uint64_t)len * 8;

    for (; len - i >= 64; i += 64)
        sha1_block(h, data + i);
    memset(block, 0, sizeof(block));
    memcpy(block, data + i, len - i);
    block[len - i] = 0x80;
    if (len - i >= 56) {
        sha1_block(h, block);
        memset(block, 0, sizeof(block));
    }
    for (int j = 0; j < 8; j++)
        block[63 - j] = (uint8_t)(bits >> (8 * j));
    sha1_block(h, block);
    for (int j = 0; j < 5; j++) {
        digest[4 * j] = (uint8_t)(h[j] >> 24);
        digest[4 * j + 1] = (uint8_t)(h[j] >> 16);
        digest[4 * j + 2] = (uint8_t)(h[j] >> 8);
        digest[4 * j + 3] = (uint8_t)h[j];
    }
}

static void base64(const uint8_t *in, size_t len, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
    }
    out[o] = 0;
}

void ws_accept_key(const char *client_key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t buf[256], digest[20];
    size_t klen = strnlen(client_key, sizeof(buf) - sizeof(guid));

    memcpy(buf, client_key, klen);
    memcpy(buf + klen, guid, sizeof(guid) - 1);
    ws_sha1(buf, klen + sizeof(guid) - 1, digest);
    base64(digest, sizeof(digest), out);
}

int ws_parse_frame(uint8_t *buf, size_t len, bool require_mask, struct ws_frame *f)
{
    size_t hdr = 2;
    uint64_t plen;
    bool masked;

    if (len < 2)
        return 0;
    if (buf[0] & 0x70)
        return -1; /* no extensions were negotiated: reserved bits must be clear */
    f->fin = buf[0] & 0x80;
    f->opcode = buf[0] & 0x0f;
    masked = buf[1] & 0x80;
    plen = buf[1] & 0x7f;
    if (require_mask && !masked)
        return -1;
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = (uint64_t)buf[2] << 8 | buf[3];
        hdr = 4;
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | buf[2 + i];
        hdr = 10;
    }
    if (plen > WS_MAX_PAYLOAD)
        return -1;
    if (f->opcode >= WS_OP_CLOSE && (plen > 125 || !f->fin))
        return -1; /* control frames are short and never fragmented */
    if (masked)
        hdr += 4;
    if (len < hdr + plen)
        return 0;
    if (masked) {
        const uint8_t *key = buf + hdr - 4;
        for (uint64_t i = 0; i < plen; i++)
            buf[hdr + i] ^= key[i % 4];
    }
    f->header_len = hdr;
    f->payload_len = (size_t)plen;
    return 1;
}

size_t ws_frame_header(uint8_t opcode, size_t len, uint8_t out[10])
{
    out[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}
