/* Exit dispatch with synthetic kvm_run exits: routing, counting, stops, hostile data. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <stdlib.h>

#include "exit_dispatch.h"
#include "fake_platform.h"

#define RUN_SIZE 4096

struct recorder {
    struct hv_device dev;
    uint64_t last_offset;
    uint32_t last_value;
    unsigned writes, reads;
};

static void rec_read(struct hv_device *dev, uint64_t offset, void *data, unsigned size)
{
    struct recorder *r = hv_container_of(dev, struct recorder, dev);
    uint32_t v = 0xa5a5a5a5;

    r->reads++;
    r->last_offset = offset;
    memcpy(data, &v, size > 4 ? 4 : size);
}

static void rec_write(struct hv_device *dev, uint64_t offset, const void *data, unsigned size)
{
    struct recorder *r = hv_container_of(dev, struct recorder, dev);

    r->writes++;
    r->last_offset = offset;
    r->last_value = 0;
    memcpy(&r->last_value, data, size > 4 ? 4 : size);
}

static const struct hv_device_ops rec_ops = {.read = rec_read, .write = rec_write};

struct fixture {
    struct hv_bus bus;
    struct recorder rec;
    struct hv_exit_counters counters;
    struct hv_exit_result result;
    struct kvm_run *run;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    hv_bus_init(&f->bus);
    f->rec.dev = (struct hv_device){.name = "rec", .ops = &rec_ops};
    assert_int_equal(hv_bus_register(&f->bus, HV_BUS_PIO, 0x3f8, 8, &f->rec.dev), 0);
    assert_int_equal(hv_bus_register(&f->bus, HV_BUS_MMIO, 0xd0000000, 0x1000, &f->rec.dev), 0);
    f->run = calloc(1, RUN_SIZE);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    hv_bus_destroy(&f->bus);
    free(f->run);
    free(f);
    return 0;
}

static void io_exit(struct kvm_run *run, uint8_t dir, uint16_t port, uint8_t size, uint32_t count)
{
    run->exit_reason = KVM_EXIT_IO;
    run->io.direction = dir;
    run->io.port = port;
    run->io.size = size;
    run->io.count = count;
    run->io.data_offset = 1024;
}

static void dispatch(struct fixture *f)
{
    hv_exit_dispatch(f->run, RUN_SIZE, &f->bus, &f->counters, &f->result);
}

static void test_io_out_reaches_device(void **state)
{
    struct fixture *f = *state;

    io_exit(f->run, KVM_EXIT_IO_OUT, 0x3fb, 1, 1);
    ((uint8_t *)f->run)[1024] = 0x42;
    dispatch(f);
    assert_int_equal(f->result.stop, HV_STOP_NONE);
    assert_int_equal(f->rec.writes, 1);
    assert_int_equal(f->rec.last_offset, 3);
    assert_int_equal(f->rec.last_value, 0x42);
    assert_int_equal(f->counters.exits[HV_EXIT_IO], 1);
}

static void test_io_in_fills_data(void **state)
{
    struct fixture *f = *state;

    io_exit(f->run, KVM_EXIT_IO_IN, 0x3f8, 1, 1);
    dispatch(f);
    assert_int_equal(((uint8_t *)f->run)[1024], 0xa5);
    assert_int_equal(f->rec.reads, 1);
}

static void test_string_io_repeats(void **state)
{
    struct fixture *f = *state;

    io_exit(f->run, KVM_EXIT_IO_OUT, 0x3f8, 1, 10); /* rep outsb */
    dispatch(f);
    assert_int_equal(f->rec.writes, 10);
    assert_int_equal(f->counters.exits[HV_EXIT_IO], 1);
}

static void test_unclaimed_port_reads_all_ones(void **state)
{
    struct fixture *f = *state;
    uint32_t v;

    io_exit(f->run, KVM_EXIT_IO_IN, 0x1234, 4, 1);
    dispatch(f);
    memcpy(&v, (uint8_t *)f->run + 1024, 4);
    assert_int_equal(v, 0xffffffffu);
    assert_int_equal(f->result.stop, HV_STOP_NONE);
    assert_int_equal(f->counters.exits[HV_EXIT_IO_UNHANDLED], 1);
    assert_int_equal(f->counters.writes_ignored, 0);
}

static void test_unclaimed_write_is_counted(void **state)
{
    struct fixture *f = *state;

    io_exit(f->run, KVM_EXIT_IO_OUT, 0x1234, 2, 3);
    dispatch(f);
    assert_int_equal(f->result.stop, HV_STOP_NONE);
    assert_int_equal(f->counters.writes_ignored, 3);
}

static void test_access_straddling_range_end_is_unclaimed(void **state)
{
    struct fixture *f = *state;

    io_exit(f->run, KVM_EXIT_IO_OUT, 0x3fe, 4, 1); /* 0x3fe..0x401 leaves the device */
    dispatch(f);
    assert_int_equal(f->rec.writes, 0);
    assert_int_equal(f->counters.writes_ignored, 1);
}

static void test_io_data_outside_run_stops_vm(void **state)
{
    struct fixture *f = *state;

    io_exit(f->run, KVM_EXIT_IO_OUT, 0x3f8, 4, 0x10000000);
    dispatch(f);
    assert_int_equal(f->result.stop, HV_STOP_ERROR);
    assert_int_equal(f->rec.writes, 0);
    io_exit(f->run, KVM_EXIT_IO_OUT, 0x3f8, 1, 1);
    f->run->io.data_offset = RUN_SIZE + 10;
    dispatch(f);
    assert_int_equal(f->result.stop, HV_STOP_ERROR);
}

static void test_mmio_read_and_unclaimed(void **state)
{
    struct fixture *f = *state;
    uint32_t v;

    f->run->exit_reason = KVM_EXIT_MMIO;
    f->run->mmio.phys_addr = 0xd0000010;
    f->run->mmio.len = 4;
    f->run->mmio.is_write = 0;
    dispatch(f);
    memcpy(&v, f->run->mmio.data, 4);
    assert_int_equal(v, 0xa5a5a5a5);
    assert_int_equal(f->rec.last_offset, 0x10);

    f->run->mmio.phys_addr = 0xe0000000;
    f->run->mmio.len = 200; /* bogus length is clamped to the data array */
    dispatch(f);
    assert_int_equal(f->counters.exits[HV_EXIT_MMIO_UNHANDLED], 1);
    memcpy(&v, f->run->mmio.data, 4);
    assert_int_equal(v, 0xffffffffu);
}

static void test_shutdown_is_a_crash(void **state)
{
    struct fixture *f = *state;

    f->run->exit_reason = KVM_EXIT_SHUTDOWN;
    dispatch(f);
    assert_int_equal(f->result.stop, HV_STOP_CRASH);
    assert_non_null(strstr(f->result.detail, "triple fault"));
}

static void test_internal_error_is_a_crash(void **state)
{
    struct fixture *f = *state;

    f->run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
    f->run->internal.suberror = 1;
    dispatch(f);
    assert_int_equal(f->result.stop, HV_STOP_CRASH);
    assert_int_equal(f->counters.exits[HV_EXIT_INTERNAL_ERROR], 1);
}

static void test_system_events(void **state)
{
    struct fixture *f = *state;

    f->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
    f->run->system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
    dispatch(f);
    assert_int_equal(f->result.stop, HV_STOP_POWEROFF);
    f->run->system_event.type = KVM_SYSTEM_EVENT_RESET;
    dispatch(f);
    assert_int_equal(f->result.stop, HV_STOP_REBOOT);
}

static void test_intr_and_hlt_continue(void **state)
{
    struct fixture *f = *state;

    f->run->exit_reason = KVM_EXIT_INTR;
    dispatch(f);
    assert_int_equal(f->result.stop, HV_STOP_NONE);
    f->run->exit_reason = KVM_EXIT_HLT;
    dispatch(f);
    assert_int_equal(f->result.stop, HV_STOP_NONE);
    assert_int_equal(f->counters.exits[HV_EXIT_INTR], 1);
    assert_int_equal(f->counters.exits[HV_EXIT_HLT], 1);
}

static void test_unknown_exit_stops_with_error(void **state)
{
    struct fixture *f = *state;

    f->run->exit_reason = 9999;
    dispatch(f);
    assert_int_equal(f->result.stop, HV_STOP_ERROR);
    assert_int_equal(f->counters.exits[HV_EXIT_OTHER], 1);
}

static void test_bus_refuses_overlap(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(hv_bus_register(&f->bus, HV_BUS_PIO, 0x3fc, 4, &f->rec.dev), -EEXIST);
    assert_int_equal(hv_bus_register(&f->bus, HV_BUS_PIO, 0x400, 0, &f->rec.dev), -EINVAL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_io_out_reaches_device),
        T(test_io_in_fills_data),
        T(test_string_io_repeats),
        T(test_unclaimed_port_reads_all_ones),
        T(test_unclaimed_write_is_counted),
        T(test_access_straddling_range_end_is_unclaimed),
        T(test_io_data_outside_run_stops_vm),
        T(test_mmio_read_and_unclaimed),
        T(test_shutdown_is_a_crash),
        T(test_internal_error_is_a_crash),
        T(test_system_events),
        T(test_intr_and_hlt_continue),
        T(test_unknown_exit_stops_with_error),
        T(test_bus_refuses_overlap),
    };
#undef T
    return cmocka_run_group_tests_name("exit_dispatch", tests, NULL, NULL);
}
