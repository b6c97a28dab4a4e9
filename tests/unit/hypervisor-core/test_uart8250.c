/* 8250 UART: register behaviour, interrupts, console input and output. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>

#include "devices/legacy/uart8250.h"
#include "fake_platform.h"
#include "snap_test.h"

struct sink {
    char buf[256];
    size_t len;
};

static void sink_write(void *opaque, const uint8_t *buf, size_t len)
{
    struct sink *s = opaque;
    memcpy(s->buf + s->len, buf, len);
    s->len += len;
}

struct fixture {
    struct fake_platform fp;
    struct uart8250 uart;
    struct sink sink;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    fake_platform_init(&f->fp);
    uart8250_init(&f->uart, &f->fp.platform, 4, sink_write, &f->sink);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void test_transmit_goes_to_sink(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->uart.dev;

    assert_int_equal(dev_in8(d, 5) & 0x60, 0x60); /* THRE and TEMT */
    dev_out8(d, 0, 'h');
    dev_out8(d, 0, 'i');
    assert_int_equal(f->sink.len, 2);
    assert_memory_equal(f->sink.buf, "hi", 2);
    assert_int_equal(dev_in8(d, 5) & 0x60, 0x60);
}

static void test_divisor_latch_does_not_transmit(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->uart.dev;

    dev_out8(d, 3, 0x80); /* DLAB */
    dev_out8(d, 0, 0x01);
    dev_out8(d, 1, 0x00);
    assert_int_equal(dev_in8(d, 0), 0x01);
    dev_out8(d, 3, 0x03); /* 8N1 */
    assert_int_equal(f->sink.len, 0);
    assert_int_equal(dev_in8(d, 3), 0x03);
}

static void test_receive_sets_data_ready_and_irq(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->uart.dev;

    dev_out8(d, 1, 0x01); /* RDI */
    assert_int_equal(f->fp.irq_level[4], 0);
    assert_int_equal(dev_in8(d, 2) & 0x0f, 0x01); /* no interrupt */
    assert_int_equal(uart8250_receive(&f->uart, (const uint8_t *)"ab", 2), 2);
    assert_int_equal(f->fp.irq_level[4], 1);
    assert_int_equal(dev_in8(d, 2) & 0x0f, 0x04); /* received data available */
    assert_int_equal(dev_in8(d, 5) & 0x01, 0x01);
    assert_int_equal(dev_in8(d, 0), 'a');
    assert_int_equal(dev_in8(d, 0), 'b');
    assert_int_equal(dev_in8(d, 5) & 0x01, 0);
    assert_int_equal(f->fp.irq_level[4], 0);
}

static void test_thre_interrupt_after_enable_and_write(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->uart.dev;

    dev_out8(d, 1, 0x02); /* THRI with THR empty: fires at once */
    assert_int_equal(f->fp.irq_level[4], 1);
    assert_int_equal(dev_in8(d, 2) & 0x0f, 0x02);
    /* Reading IIR that reports THRE clears it. */
    assert_int_equal(f->fp.irq_level[4], 0);
    assert_int_equal(dev_in8(d, 2) & 0x0f, 0x01);
    dev_out8(d, 0, 'x');
    assert_int_equal(f->fp.irq_level[4], 1);
    assert_int_equal(f->fp.irq_edges[4], 2);
}

static void test_fifo_bits_in_iir(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->uart.dev;

    dev_out8(d, 2, 0x07); /* enable and clear FIFOs */
    assert_int_equal(dev_in8(d, 2) & 0xc0, 0xc0); /* 16550A */
    uart8250_receive(&f->uart, (const uint8_t *)"z", 1);
    dev_out8(d, 2, 0x03); /* clear RX */
    assert_int_equal(dev_in8(d, 5) & 0x01, 0);
}

static void test_loopback(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->uart.dev;

    dev_out8(d, 4, 0x10 | 0x0a); /* loop, RTS, OUT2 */
    assert_int_equal(dev_in8(d, 6) & 0xf0, 0x90); /* CTS and DCD mirror RTS and OUT2 */
    dev_out8(d, 0, 'L');
    assert_int_equal(f->sink.len, 0);
    assert_int_equal(dev_in8(d, 0), 'L');
}

static void test_scratch_register(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->uart.dev;

    dev_out8(d, 7, 0x5a);
    assert_int_equal(dev_in8(d, 7), 0x5a);
}

static void test_receive_overflow_is_bounded(void **state)
{
    struct fixture *f = *state;
    static uint8_t big[UART8250_RX_BUF + 100];

    memset(big, 'q', sizeof(big));
    assert_int_equal(uart8250_receive(&f->uart, big, sizeof(big)), UART8250_RX_BUF);
    assert_int_equal(uart8250_receive(&f->uart, big, 1), 0);
}

static void test_reset_restores_power_on_state(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->uart.dev;

    dev_out8(d, 1, 0x0f);
    dev_out8(d, 3, 0x1b);
    uart8250_receive(&f->uart, (const uint8_t *)"r", 1);
    d->ops->reset(d);
    assert_int_equal(dev_in8(d, 1), 0);
    assert_int_equal(dev_in8(d, 3), 0);
    assert_int_equal(dev_in8(d, 5), 0x60);
    assert_int_equal(f->fp.irq_level[4], 0);
}

/* --- snapshot ------------------------------------------------------------ */

static void save_uart(const void *dev, struct snap_w *w)
{
    uart8250_save(dev, w);
}

static int load_uart(void *dev, struct snap_r *r)
{
    return uart8250_load(dev, r);
}

/* Payload offsets (after the 10-byte section header) of the fields the tests corrupt. */
#define UART_OFF_IER     10
#define UART_OFF_THR_IRQ 19
#define UART_OFF_RX_HEAD 20
#define UART_OFF_RX_CNT  24

/* Registers set, divisor latched, and a receive ring that has wrapped around. */
static void drive_uart(struct fixture *f)
{
    struct hv_device *d = &f->uart.dev;
    uint8_t in[3000];

    dev_out8(d, 3, 0x83); /* DLAB */
    dev_out8(d, 0, 1);
    dev_out8(d, 1, 0);
    dev_out8(d, 3, 0x03);
    dev_out8(d, 2, 0x01); /* FIFO on */
    dev_out8(d, 4, 0x0b);
    dev_out8(d, 7, 0x5a);
    dev_out8(d, 1, 0x01); /* RDI */
    for (unsigned i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 13 + 1);
    assert_int_equal(uart8250_receive(&f->uart, in, sizeof(in)), sizeof(in));
    for (unsigned i = 0; i < 2000; i++)
        dev_in8(d, 0);
    assert_int_equal(uart8250_receive(&f->uart, in, sizeof(in)), sizeof(in));
    assert_int_equal(f->uart.rx_count, 4000);
    assert_int_equal(f->fp.irq_level[4], 1);
}

/* A saved UART loads into a fresh one that then saves the same bytes, holds the line high
 * and reads back the same registers and the same 4000 queued bytes. */
static void test_snapshot_round_trip(void **state)
{
    struct fixture *f = *state, *g;
    struct snap_w w;
    struct hv_device *a = &f->uart.dev, *b;

    drive_uart(f);
    snap_test_save(&f->uart, save_uart, &w);
    setup((void **)&g);
    b = &g->uart.dev;
    assert_int_equal(snap_test_load(&g->uart, load_uart, w.buf, w.len, NULL, 0), 0);
    snap_assert_saves(&g->uart, save_uart, &w);
    assert_int_equal(g->fp.irq_level[4], 1);
    for (unsigned reg = 1; reg < 8; reg++)
        assert_int_equal(dev_in8(b, reg), dev_in8(a, reg));
    dev_out8(a, 3, 0x83);
    dev_out8(b, 3, 0x83);
    assert_int_equal(dev_in8(b, 0), 1); /* the divisor */
    assert_int_equal(dev_in8(b, 1), 0);
    dev_out8(a, 3, 0x03);
    dev_out8(b, 3, 0x03);
    for (unsigned i = 0; i < 4000; i++)
        assert_int_equal(dev_in8(b, 0), dev_in8(a, 0));
    assert_int_equal(dev_in8(b, 5), dev_in8(a, 5));
    assert_int_equal(g->fp.irq_level[4], 0);
    assert_int_equal(f->fp.irq_level[4], 0);
    snap_w_free(&w);
    teardown((void **)&g);
}

/* Truncations, a wrong tag, a newer version and out-of-range fields are refused, and the
 * device (here one loaded from a good snapshot) is left as it was, line included. */
static void test_snapshot_refused(void **state)
{
    struct fixture *f = *state, *g;
    struct snap_w w;

    drive_uart(f);
    snap_test_save(&f->uart, save_uart, &w);
    setup((void **)&g);
    assert_int_equal(snap_test_load(&g->uart, load_uart, w.buf, w.len, NULL, 0), 0);
    snap_assert_corruption_refused(&g->uart, save_uart, load_uart, &w, 1);
    snap_assert_field_refused(&g->uart, save_uart, load_uart, &w, UART_OFF_RX_HEAD, 4096, 4,
                              "rx_head");
    snap_assert_field_refused(&g->uart, save_uart, load_uart, &w, UART_OFF_RX_CNT, 4097, 4,
                              "rx_count");
    snap_assert_field_refused(&g->uart, save_uart, load_uart, &w, UART_OFF_THR_IRQ, 2, 1,
                              "boolean");
    snap_assert_field_refused(&g->uart, save_uart, load_uart, &w, UART_OFF_IER, 0x10, 1,
                              "reserved");
    assert_int_equal(g->fp.irq_level[4], 1);
    assert_int_equal(g->fp.irq_edges[4], 1);
    snap_w_free(&w);
    teardown((void **)&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_transmit_goes_to_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_divisor_latch_does_not_transmit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_sets_data_ready_and_irq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thre_interrupt_after_enable_and_write, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fifo_bits_in_iir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scratch_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_overflow_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_restores_power_on_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_refused, setup, teardown),
    };
    return cmocka_run_group_tests_name("uart8250", tests, NULL, NULL);
}
