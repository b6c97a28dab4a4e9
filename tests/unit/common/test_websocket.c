/* WebSocket handshake key and framing against RFC 6455's own examples. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "common/websocket.h"

static void test_accept_key_rfc_example(void **state)
{
    char out[29];

    (void)state;
    ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_sha1_known_vectors(void **state)
{
    uint8_t d[20];
    static const uint8_t abc[20] = {0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e,
                                    0x25, 0x71, 0x78, 0x50, 0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d};
    static const uint8_t empty[20] = {0xda, 0x39, 0xa3, 0xee, 0x5e, 0x6b, 0x4b, 0x0d, 0x32, 0x55,
                                      0xbf, 0xef, 0x95, 0x60, 0x18, 0x90, 0xaf, 0xd8, 0x07, 0x09};

    (void)state;
    ws_sha1((const uint8_t *)"abc", 3, d);
    assert_memory_equal(d, abc, 20);
    ws_sha1((const uint8_t *)"", 0, d);
    assert_memory_equal(d, empty, 20);
}

static void test_masked_text_frame_rfc_example(void **state)
{
    /* RFC 6455 5.7: a masked "Hello". */
    uint8_t buf[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct ws_frame f;

    (void)state;
    assert_int_equal(ws_parse_frame(buf, sizeof(buf), true, &f), 1);
    assert_true(f.fin);
    assert_int_equal(f.opcode, WS_OP_TEXT);
    assert_int_equal(f.payload_len, 5);
    assert_memory_equal(buf + f.header_len, "Hello", 5);
}

static void test_partial_and_refused_frames(void **state)
{
    uint8_t unmasked[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    uint8_t partial[] = {0x81, 0x85, 0x37, 0xfa};
    uint8_t reserved[] = {0xc1, 0x80, 0, 0, 0, 0};
    uint8_t huge[] = {0x82, 0xff, 0, 0, 0, 0, 0xff, 0, 0, 0, 1, 2, 3, 4};
    uint8_t long_ping[] = {0x89, 0xfe, 0x01, 0x00};
    struct ws_frame f;

    (void)state;
    assert_int_equal(ws_parse_frame(unmasked, sizeof(unmasked), true, &f), -1);
    assert_int_equal(ws_parse_frame(unmasked, sizeof(unmasked), false, &f), 1);
    assert_int_equal(ws_parse_frame(partial, sizeof(partial), true, &f), 0);
    assert_int_equal(ws_parse_frame(partial, 1, true, &f), 0);
    assert_int_equal(ws_parse_frame(reserved, sizeof(reserved), true, &f), -1);
    assert_int_equal(ws_parse_frame(huge, sizeof(huge), true, &f), -1);
    assert_int_equal(ws_parse_frame(long_ping, sizeof(long_ping), true, &f), -1);
}

static void test_frame_header_lengths(void **state)
{
    uint8_t h[10];
    uint8_t frame[10 + 300];
    struct ws_frame f;

    (void)state;
    assert_int_equal(ws_frame_header(WS_OP_BINARY, 5, h), 2);
    assert_int_equal(h[0], 0x82);
    assert_int_equal(h[1], 5);
    assert_int_equal(ws_frame_header(WS_OP_BINARY, 300, h), 4);
    assert_int_equal(h[1], 126);
    assert_int_equal((h[2] << 8) | h[3], 300);
    assert_int_equal(ws_frame_header(WS_OP_BINARY, 70000, h), 10);
    assert_int_equal(h[1], 127);
    /* Round trip through the parser. */
    size_t n = ws_frame_header(WS_OP_BINARY, 300, frame);
    memset(frame + n, 'z', 300);
    assert_int_equal(ws_parse_frame(frame, n + 300, false, &f), 1);
    assert_int_equal(f.payload_len, 300);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key_rfc_example),
        cmocka_unit_test(test_sha1_known_vectors),
        cmocka_unit_test(test_masked_text_frame_rfc_example),
        cmocka_unit_test(test_partial_and_refused_frames),
        cmocka_unit_test(test_frame_header_lengths),
    };
    return cmocka_run_group_tests_name("websocket", tests, NULL, NULL);
}
