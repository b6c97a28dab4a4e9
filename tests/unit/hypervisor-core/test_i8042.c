/* i8042: controller self test, command byte, reset line, keyboard, Ctrl-Alt-Del. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>

#include "devices/legacy/i8042.h"
#include "fake_platform.h"
#include "snap_test.h"

#define DATA 0
#define CMD  4

struct fixture {
    struct fake_platform fp;
    struct i8042 k;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    fake_platform_init(&f->fp);
    i8042_init(&f->k, &f->fp.platform);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void test_self_test(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->k.dev;

    assert_int_equal(dev_in8(d, CMD) & 0x01, 0); /* output buffer empty */
    dev_out8(d, CMD, 0xaa);
    assert_int_equal(dev_in8(d, CMD) & 0x01, 0x01);
    assert_int_equal(dev_in8(d, DATA), 0x55);
    assert_int_equal(dev_in8(d, CMD) & 0x01, 0);
}

static void test_command_byte_round_trip(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->k.dev;

    dev_out8(d, CMD, 0x60);
    dev_out8(d, DATA, 0x47);
    dev_out8(d, CMD, 0x20);
    assert_int_equal(dev_in8(d, DATA), 0x47);
}

static void test_pulse_reset_line_reboots(void **state)
{
    struct fixture *f = *state;

    dev_out8(&f->k.dev, CMD, 0xfe);
    assert_int_equal(f->fp.stops, 1);
    assert_int_equal(f->fp.stop, HV_STOP_REBOOT);
}

static void test_output_port_reset(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->k.dev;

    dev_out8(d, CMD, 0xd1);
    dev_out8(d, DATA, 0x03); /* bit 0 high: no reset */
    assert_int_equal(f->fp.stops, 0);
    dev_out8(d, CMD, 0xd1);
    dev_out8(d, DATA, 0x02);
    assert_int_equal(f->fp.stop, HV_STOP_REBOOT);
}

static void test_other_pulses_do_not_reset(void **state)
{
    struct fixture *f = *state;

    dev_out8(&f->k.dev, CMD, 0xff); /* pulse nothing */
    dev_out8(&f->k.dev, CMD, 0xa7);
    assert_int_equal(f->fp.stops, 0);
}

static void test_keyboard_reset_and_irq(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->k.dev;

    dev_out8(d, DATA, 0xff);
    assert_int_equal(f->fp.irq_level[1], 1);
    assert_int_equal(dev_in8(d, DATA), 0xfa);
    assert_int_equal(dev_in8(d, DATA), 0xaa);
    assert_int_equal(f->fp.irq_level[1], 0);
    assert_int_equal(f->fp.irq_edges[1], 2); /* one edge per byte */
}

static void test_keyboard_parameter_commands(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->k.dev;

    dev_out8(d, DATA, 0xed); /* LEDs */
    assert_int_equal(dev_in8(d, DATA), 0xfa);
    dev_out8(d, DATA, 0x07);
    assert_int_equal(dev_in8(d, DATA), 0xfa);
    dev_out8(d, DATA, 0xf2); /* identify */
    assert_int_equal(dev_in8(d, DATA), 0xfa);
    assert_int_equal(dev_in8(d, DATA), 0xab);
    assert_int_equal(dev_in8(d, DATA), 0x41);
}

static void test_no_mouse(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->k.dev;

    dev_out8(d, CMD, 0xd4);
    dev_out8(d, DATA, 0xf4);
    assert_int_equal(dev_in8(d, CMD) & 0x21, 0x21); /* AUX data waiting */
    assert_int_equal(dev_in8(d, DATA), 0xfe);
}

static void test_ctrl_alt_del_scancodes(void **state)
{
    struct fixture *f = *state;
    struct hv_device *d = &f->k.dev;
    static const uint8_t expect[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};

    i8042_ctrl_alt_del(&f->k);
    assert_int_equal(f->fp.irq_level[1], 1);
    for (size_t i = 0; i < sizeof(expect); i++)
        assert_int_equal(dev_in8(d, DATA), expect[i]);
    assert_int_equal(dev_in8(d, CMD) & 0x01, 0);
}

static void test_queue_overflow_is_bounded(void **state)
{
    struct fixture *f = *state;

    for (int i = 0; i < 100; i++)
        dev_out8(&f->k.dev, CMD, 0xaa);
    assert_int_equal(f->k.count, I8042_QUEUE);
}

/* --- snapshot ------------------------------------------------------------ */

static void save_kbd(const void *dev, struct snap_w *w)
{
    i8042_save(dev, w);
}

static int load_kbd(void *dev, struct snap_r *r)
{
    return i8042_load(dev, r);
}

/* Payload offsets of the fields the tests corrupt. */
#define KBD_OFF_PENDING_CTRL 11
#define KBD_OFF_HEAD         14
#define KBD_OFF_COUNT        18
#define KBD_OFF_AUX          54

/* Both interrupts on, a wrapped queue of keyboard and AUX bytes, a keyboard command waiting
 * for its parameter and a controller command waiting for its data byte. */
static void drive_kbd(struct fixture *f)
{
    struct hv_device *d = &f->k.dev;

    for (unsigned i = 0; i < 30; i++)
        dev_out8(d, CMD, 0xaa);
    for (unsigned i = 0; i < 30; i++)
        assert_int_equal(dev_in8(d, DATA), 0x55);
    dev_out8(d, CMD, 0x60);
    dev_out8(d, DATA, 0x43);
    dev_out8(d, DATA, 0xff); /* keyboard reset: ACK, 0xAA */
    dev_out8(d, CMD, 0xd3);
    dev_out8(d, DATA, 0x77); /* as if from the mouse */
    dev_out8(d, DATA, 0xed); /* LEDs: ACK, then waits for the parameter */
    dev_out8(d, CMD, 0xd2);
    assert_int_equal(f->k.count, 4);
    assert_int_equal(f->k.pending_kbd, 0xed);
    assert_int_equal(f->k.pending_ctrl, 0xd2);
    assert_int_equal(f->fp.irq_level[I8042_KBD_IRQ], 1);
}

static void test_snapshot_round_trip(void **state)
{
    struct fixture *f = *state, *g;
    struct hv_device *a = &f->k.dev, *b;
    struct snap_w w;

    drive_kbd(f);
    snap_test_save(&f->k, save_kbd, &w);
    setup((void **)&g);
    b = &g->k.dev;
    assert_int_equal(snap_test_load(&g->k, load_kbd, w.buf, w.len, NULL, 0), 0);
    snap_assert_saves(&g->k, save_kbd, &w);
    assert_int_equal(g->fp.irq_level[I8042_KBD_IRQ], 1);
    assert_int_equal(g->fp.irq_level[I8042_AUX_IRQ], 0);
    /* The same bytes, status and lines; then the waiting commands take their bytes alike. */
    dev_out8(a, DATA, 0x12);
    dev_out8(b, DATA, 0x12);
    dev_out8(a, DATA, 0x02); /* the LED parameter, after 0xD2 took 0x12 */
    dev_out8(b, DATA, 0x02);
    for (unsigned i = 0; i < 6; i++) {
        assert_int_equal(dev_in8(b, CMD), dev_in8(a, CMD));
        assert_int_equal(g->fp.irq_level[I8042_KBD_IRQ], f->fp.irq_level[I8042_KBD_IRQ]);
        assert_int_equal(g->fp.irq_level[I8042_AUX_IRQ], f->fp.irq_level[I8042_AUX_IRQ]);
        assert_int_equal(dev_in8(b, DATA), dev_in8(a, DATA));
    }
    assert_int_equal(dev_in8(b, CMD) & 0x01, 0);
    assert_int_equal(g->fp.irq_edges[I8042_AUX_IRQ], 1);
    snap_w_free(&w);
    teardown((void **)&g);
}

static void test_snapshot_refused(void **state)
{
    struct fixture *f = *state, *g;
    struct snap_w w;

    drive_kbd(f);
    snap_test_save(&f->k, save_kbd, &w);
    setup((void **)&g);
    assert_int_equal(snap_test_load(&g->k, load_kbd, w.buf, w.len, NULL, 0), 0);
    snap_assert_corruption_refused(&g->k, save_kbd, load_kbd, &w, 1);
    snap_assert_field_refused(&g->k, save_kbd, load_kbd, &w, KBD_OFF_HEAD, I8042_QUEUE, 4, "head");
    snap_assert_field_refused(&g->k, save_kbd, load_kbd, &w, KBD_OFF_COUNT, I8042_QUEUE + 1, 4,
                              "count");
    snap_assert_field_refused(&g->k, save_kbd, load_kbd, &w, KBD_OFF_PENDING_CTRL, 0x61, 1,
                              "pending");
    snap_assert_field_refused(&g->k, save_kbd, load_kbd, &w, KBD_OFF_AUX, 2, 1, "boolean");
    assert_int_equal(g->fp.irq_level[I8042_KBD_IRQ], 1);
    assert_int_equal(g->fp.irq_edges[I8042_KBD_IRQ], 1);
    snap_w_free(&w);
    teardown((void **)&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_self_test, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_byte_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pulse_reset_line_reboots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_port_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_pulses_do_not_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard_reset_and_irq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard_parameter_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_mouse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_alt_del_scancodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_overflow_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_refused, setup, teardown),
    };
    return cmocka_run_group_tests_name("i8042", tests, NULL, NULL);
}
