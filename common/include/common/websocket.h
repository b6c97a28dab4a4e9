/*
 * RFC 6455 pieces for the interactive console: the handshake's accept key
 * and frame encoding/decoding. Pure functions, so they are unit-tested.
 */
#ifndef VMMD_WEBSOCKET_H
#define VMMD_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_OP_CONT   0x0
#define WS_OP_TEXT   0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE  0x8
#define WS_OP_PING   0x9
#define WS_OP_PONG   0xa

#define WS_MAX_PAYLOAD (1024 * 1024)

/* base64(SHA-1(key + the RFC's GUID)); out has room for 29 bytes. */
void ws_accept_key(const char *client_key, char out[29]);

struct ws_frame {
    bool fin;
    uint8_t opcode;
    size_t payload_len;
    size_t header_len; /* the payload starts here in the buffer */
};

/*
 * Parses the frame at the start of buf. Returns 1 when a whole frame is there
 * (and unmasks its payload in place), 0 when more bytes are needed, -1 for a
 * frame a server must refuse (unmasked from a client, oversized, reserved bits).
 */
int ws_parse_frame(uint8_t *buf, size_t len, bool require_mask, struct ws_frame *f);
/* Writes an unmasked server frame header for len payload bytes; returns its size (<= 10). */
size_t ws_frame_header(uint8_t opcode, size_t len, uint8_t out[10]);

void ws_sha1(const uint8_t *data, size_t len, uint8_t digest[20]);

#endif
