/*
 * Integration: libhvcore's control API on a real /dev/kvm with the test
 * guests: console in and out, pause stops the vCPUs (no exits while paused),
 * resume continues, a stop request ends every vCPU thread, stats count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hv/hv.h"

struct console {
    pthread_mutex_t lock;
    char buf[8192];
    size_t len;
};

static void console_write(void *opaque, const uint8_t *buf, size_t len)
{
    struct console *c = opaque;

    pthread_mutex_lock(&c->lock);
    if (len > sizeof(c->buf) - 1 - c->len)
        len = sizeof(c->buf) - 1 - c->len;
    memcpy(c->buf + c->len, buf, len);
    c->len += len;
    c->buf[c->len] = 0;
    pthread_mutex_unlock(&c->lock);
}

static bool console_has(struct console *c, const char *s)
{
    bool found;

    pthread_mutex_lock(&c->lock);
    found = strstr(c->buf, s) != NULL;
    pthread_mutex_unlock(&c->lock);
    return found;
}

static bool wait_for(struct console *c, const char *s, int timeout_ms)
{
    for (int i = 0; i < timeout_ms / 10; i++) {
        if (console_has(c, s))
            return true;
        usleep(10000);
    }
    return console_has(c, s);
}

static struct hv_vm *create(const char *guest, unsigned vcpus, struct console *c)
{
    struct hv_vm_config cfg = {
        .mode = HV_MODE_PV,
        .vcpus = vcpus,
        .memory_mib = 64,
        .kernel = guest,
        .console_write = console_write,
        .console_opaque = c,
    };
    struct hv_vm *vm = NULL;
    char err[256];

    pthread_mutex_init(&c->lock, NULL);
    c->len = 0;
    c->buf[0] = 0;
    if (hv_vm_create(&cfg, &vm, err, sizeof(err)) != 0)
        fail_msg("hv_vm_create: %s", err);
    return vm;
}

static uint64_t total_exits(struct hv_vm *vm)
{
    struct hv_vm_stats st;
    uint64_t n = 0;

    hv_vm_get_stats(vm, &st);
    for (int k = 0; k < HV_EXIT_KIND_COUNT; k++)
        if (k != HV_EXIT_INTR)
            n += st.exits[k];
    return n;
}

static void test_pause_resume_console(void **state)
{
    struct console c;
    struct hv_vm *vm = create(GUEST_DIR "/guest-echo.elf", 1, &c);
    uint64_t before, after;

    (void)state;
    assert_int_equal(hv_vm_start(vm), 0);
    assert_true(wait_for(&c, "echo: ready", 10000));

    assert_int_equal(hv_vm_pause(vm), 0);
    before = total_exits(vm);
    hv_vm_console_input(vm, (const uint8_t *)"ping\r", 5);
    usleep(200000);
    after = total_exits(vm);
    assert_int_equal(before, after); /* a paused guest does not run */
    assert_false(console_has(&c, "ping"));

    assert_int_equal(hv_vm_resume(vm), 0);
    assert_true(wait_for(&c, "ping", 10000));
    assert_true(total_exits(vm) > after);

    hv_vm_request_stop(vm);
    assert_int_equal(hv_vm_wait(vm), HV_STOP_REQUESTED);
    hv_vm_destroy(vm);
}

static void test_guest_poweroff_and_stats(void **state)
{
    struct console c;
    struct hv_vm *vm = create(GUEST_DIR "/guest-io-storm.elf", 1, &c);
    struct hv_vm_stats st;
    char poll_buf[8];

    (void)state;
    assert_int_equal(hv_vm_start(vm), 0);
    assert_int_equal(hv_vm_wait(vm), HV_STOP_POWEROFF);
    assert_int_equal(hv_vm_exit_code(vm), 0);
    /* The stopped fd has turned readable. */
    assert_int_equal(read(hv_vm_stopped_fd(vm), poll_buf, 8), 8);
    hv_vm_get_stats(vm, &st);
    assert_true(st.exits[HV_EXIT_IO] >= 100000);
    assert_int_equal(st.memory_bytes, 64ull << 20);
    assert_true(st.first_exit_ns >= st.start_ns);
    assert_true(console_has(&c, "io-storm: done"));
    hv_vm_destroy(vm);
}

static void test_pause_resume_smp_repeatedly(void **state)
{
    struct console c;
    struct hv_vm *vm = create(GUEST_DIR "/guest-smp.elf", 4, &c);

    (void)state;
    assert_int_equal(hv_vm_start(vm), 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(hv_vm_pause(vm), 0);
        assert_int_equal(hv_vm_resume(vm), 0);
    }
    assert_int_equal(hv_vm_wait(vm), HV_STOP_POWEROFF);
    assert_int_equal(hv_vm_exit_code(vm), 0);
    assert_true(console_has(&c, "smp: all 4 cpus up"));
    hv_vm_destroy(vm);
}

static void test_stop_while_paused(void **state)
{
    struct console c;
    struct hv_vm *vm = create(GUEST_DIR "/guest-echo.elf", 2, &c);

    (void)state;
    assert_int_equal(hv_vm_start(vm), 0);
    assert_true(wait_for(&c, "echo: ready", 10000));
    assert_int_equal(hv_vm_pause(vm), 0);
    hv_vm_request_stop(vm);
    assert_int_equal(hv_vm_wait(vm), HV_STOP_REQUESTED);
    hv_vm_destroy(vm);
}

static void test_destroy_running_vm(void **state)
{
    struct console c;
    struct hv_vm *vm = create(GUEST_DIR "/guest-echo.elf", 1, &c);

    (void)state;
    assert_int_equal(hv_vm_start(vm), 0);
    hv_vm_destroy(vm); /* stops and joins its threads */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pause_resume_console),
        cmocka_unit_test(test_guest_poweroff_and_stats),
        cmocka_unit_test(test_pause_resume_smp_repeatedly),
        cmocka_unit_test(test_stop_while_paused),
        cmocka_unit_test(test_destroy_running_vm),
    };

    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        fprintf(stderr, "SKIPPED: /dev/kvm is not available here; vm_control tests did not run\n");
        return 77;
    }
    return cmocka_run_group_tests_name("vm_control", tests, NULL, NULL);
}
