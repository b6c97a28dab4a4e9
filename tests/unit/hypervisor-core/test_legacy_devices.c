/* CMOS RTC, PCI host bridge, ACPI PM block and the debug ports. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <stdlib.h>

#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/debug_ports.h"
#include "devices/legacy/pci_host.h"
#include "fake_platform.h"
#include "snap_test.h"

static time_t fixed_time(void)
{
    return 1795651200 + 3 * 3600 + 25 * 60 + 9; /* 2026-11-26 03:25:09 UTC */
}

/* A 256 MiB machine's RTC whose host clock stands still at fixed_time(). */
static void rtc_fixture(struct fake_platform *fp, struct cmos_rtc *rtc)
{
    fake_platform_init(fp);
    cmos_rtc_init(rtc, &fp->platform, 256ull << 20, 1);
    rtc->now = fixed_time;
}

static uint8_t cmos(struct cmos_rtc *rtc, uint8_t reg)
{
    dev_out8(&rtc->dev, 0, reg);
    return dev_in8(&rtc->dev, 1);
}

static void test_rtc_bcd_time(void **state)
{
    struct fake_platform fp;
    struct cmos_rtc rtc;

    (void)state;
    rtc_fixture(&fp, &rtc);
    assert_int_equal(cmos(&rtc, 0x00), 0x09);
    assert_int_equal(cmos(&rtc, 0x02), 0x25);
    assert_int_equal(cmos(&rtc, 0x04), 0x03);
    assert_int_equal(cmos(&rtc, 0x07), 0x26);
    assert_int_equal(cmos(&rtc, 0x08), 0x11);
    assert_int_equal(cmos(&rtc, 0x09), 0x26);
    assert_int_equal(cmos(&rtc, 0x32), 0x20);
    assert_int_equal(cmos(&rtc, 0x0a) & 0x80, 0); /* never update-in-progress */
    assert_int_equal(cmos(&rtc, 0x0d), 0x80);     /* valid RAM and time */
}

static void test_rtc_binary_and_12h(void **state)
{
    struct fake_platform fp;
    struct cmos_rtc rtc;

    (void)state;
    rtc_fixture(&fp, &rtc);
    dev_out8(&rtc.dev, 0, 0x0b);
    dev_out8(&rtc.dev, 1, 0x04); /* binary, 12-hour */
    assert_int_equal(cmos(&rtc, 0x02), 25);
    assert_int_equal(cmos(&rtc, 0x04), 3); /* 3 AM */
}

static void test_rtc_guest_sets_its_own_clock(void **state)
{
    struct fake_platform fp;
    struct cmos_rtc rtc;

    (void)state;
    rtc_fixture(&fp, &rtc);
    dev_out8(&rtc.dev, 0, 0x09);
    dev_out8(&rtc.dev, 1, 0x30); /* year 2030 */
    assert_int_equal(cmos(&rtc, 0x09), 0x30);
    assert_int_equal(cmos(&rtc, 0x02), 0x25);
}

static void test_rtc_nvram_and_memory_size(void **state)
{
    struct fake_platform fp;
    struct cmos_rtc rtc;

    (void)state;
    rtc_fixture(&fp, &rtc);
    dev_out8(&rtc.dev, 0, 0x80 | 0x40); /* NMI mask bit is not part of the index */
    dev_out8(&rtc.dev, 1, 0x99);
    assert_int_equal(cmos(&rtc, 0x40), 0x99);
    /* (256 - 16) MiB in 64 KiB units */
    assert_int_equal(cmos(&rtc, 0x34) | (cmos(&rtc, 0x35) << 8), 240 * 16);
}

/* What SeaBIOS reads to size memory and count CPUs when fw_cfg does not say. */
static void test_rtc_firmware_registers(void **state)
{
    struct fake_platform fp;
    struct cmos_rtc rtc;

    (void)state;
    fake_platform_init(&fp);
    /* 6 GiB: 3 GiB below the PCI hole, 3 GiB from 4 GiB up; 4 vCPUs. */
    cmos_rtc_init(&rtc, &fp.platform, 6ull << 30, 4);
    assert_int_equal(cmos(&rtc, 0x15) | (cmos(&rtc, 0x16) << 8), 640);
    assert_int_equal(cmos(&rtc, 0x17) | (cmos(&rtc, 0x18) << 8), 0xffff); /* 1-64 MiB, capped */
    assert_int_equal(cmos(&rtc, 0x30) | (cmos(&rtc, 0x31) << 8), 0xffff);
    /* (3 GiB - 16 MiB) in 64 KiB units */
    assert_int_equal(cmos(&rtc, 0x34) | (cmos(&rtc, 0x35) << 8), (3u << 14) - 256);
    /* 3 GiB above 4 GiB in 64 KiB units, three bytes */
    assert_int_equal(cmos(&rtc, 0x5b) | (cmos(&rtc, 0x5c) << 8) | (cmos(&rtc, 0x5d) << 16),
                     3u << 14);
    assert_int_equal(cmos(&rtc, 0x5f), 3);    /* CPUs minus one */
    assert_int_equal(cmos(&rtc, 0x3d), 0x02); /* boot from the hard disk */

    /* Small guests have nothing above 4 GiB and one CPU reads as 0. */
    cmos_rtc_init(&rtc, &fp.platform, 64ull << 20, 1);
    assert_int_equal(cmos(&rtc, 0x34) | (cmos(&rtc, 0x35) << 8), 48 * 16);
    assert_int_equal(cmos(&rtc, 0x5b) | cmos(&rtc, 0x5c) | cmos(&rtc, 0x5d), 0);
    assert_int_equal(cmos(&rtc, 0x5f), 0);
}

static uint32_t pci_read(struct pci_host *h, uint32_t addr)
{
    uint32_t v;

    h->dev.ops->write(&h->dev, 0, &addr, 4);
    h->dev.ops->read(&h->dev, 4, &v, 4);
    return v;
}

static void test_pci_host_bridge_and_absent_devices(void **state)
{
    struct fake_platform fp;
    struct pci_host h;
    struct pci_bus pb;
    uint32_t addr = 0x80000000, back;
    uint16_t vendor;

    (void)state;
    fake_platform_init(&fp);
    pci_bus_init(&pb, &fp.platform);
    pci_host_init(&h, &fp.platform, &pb);
    h.dev.ops->write(&h.dev, 0, &addr, 4);
    h.dev.ops->read(&h.dev, 0, &back, 4);
    assert_int_equal(back, addr); /* mechanism #1 is detected this way */
    assert_int_equal(pci_read(&h, 0x80000000), 0x12378086);
    assert_int_equal(pci_read(&h, 0x80000008) >> 16, 0x0600);
    assert_int_equal(pci_read(&h, 0x80000800), 0xffffffffu); /* 00:01.0 absent */
    assert_int_equal(pci_read(&h, 0x80010000), 0xffffffffu); /* bus 1 absent */
    assert_int_equal(pci_read(&h, 0x00000000), 0xffffffffu); /* enable bit clear */
    /* 16-bit read at an offset within the data window */
    h.dev.ops->write(&h.dev, 0, &(uint32_t){0x80000000}, 4);
    h.dev.ops->read(&h.dev, 6, &vendor, 2);
    assert_int_equal(vendor, 0x1237);
    assert_int_equal(fp.stops, 0);
}

static void test_pci_reset_control_register(void **state)
{
    struct fake_platform fp;
    struct pci_host h;
    struct pci_bus pb;

    (void)state;
    fake_platform_init(&fp);
    pci_bus_init(&pb, &fp.platform);
    pci_host_init(&h, &fp.platform, &pb);
    dev_out8(&h.dev, 1, 0x02); /* no reset bit */
    assert_int_equal(fp.stops, 0);
    dev_out8(&h.dev, 1, 0x06);
    assert_int_equal(fp.stop, HV_STOP_REBOOT);
}

static uint64_t fake_ns;
static uint64_t fake_now(void)
{
    return fake_ns;
}

static void test_acpi_pm_timer_and_poweroff(void **state)
{
    struct fake_platform fp;
    struct acpi_pm pm;
    uint32_t t0, t1;
    uint16_t cnt;

    (void)state;
    fake_platform_init(&fp);
    acpi_pm_init(&pm, &fp.platform);
    pm.now_ns = fake_now;
    fake_ns = 0;
    pm.dev.ops->read(&pm.dev, 8, &t0, 4);
    fake_ns = 1000000000ull;
    pm.dev.ops->read(&pm.dev, 8, &t1, 4);
    assert_int_equal((t1 - t0) & 0xffffff, ACPI_PM_TIMER_HZ & 0xffffff);

    pm.dev.ops->read(&pm.dev, 4, &cnt, 2);
    assert_int_equal(cnt & 1, 1); /* SCI_EN: always in ACPI mode */
    cnt = (uint16_t)((3 << 10) | (1 << 13)); /* S3 is not supported: ignored */
    pm.dev.ops->write(&pm.dev, 4, &cnt, 2);
    assert_int_equal(fp.stops, 0);
    cnt = (uint16_t)((ACPI_S5_SLP_TYP << 10) | (1 << 13));
    pm.dev.ops->write(&pm.dev, 4, &cnt, 2);
    assert_int_equal(fp.stop, HV_STOP_POWEROFF);
}

static void test_acpi_pm_status_write_one_to_clear(void **state)
{
    struct fake_platform fp;
    struct acpi_pm pm;
    uint16_t v;

    (void)state;
    fake_platform_init(&fp);
    acpi_pm_init(&pm, &fp.platform);
    pm.pm1_sts = 0x0101;
    v = 0x0001;
    pm.dev.ops->write(&pm.dev, 0, &v, 2);
    assert_int_equal(pm.pm1_sts, 0x0100);
    v = 0xabcd;
    pm.dev.ops->write(&pm.dev, 2, &v, 2);
    pm.dev.ops->read(&pm.dev, 2, &v, 2);
    assert_int_equal(v, 0xabcd);
}

/* --- snapshots ------------------------------------------------------------- */

static void save_rtc(const void *dev, struct snap_w *w)
{
    cmos_rtc_save(dev, w);
}

static int load_rtc(void *dev, struct snap_r *r)
{
    return cmos_rtc_load(dev, r);
}

static time_t later_time(void)
{
    return fixed_time() + 100;
}

#define RTC_OFF_INDEX  10
#define RTC_OFF_OFFSET (10 + 1 + 128)

/* The guest's own year, NVRAM and register B travel; the host clock goes on (here 100 s). */
static void test_rtc_snapshot(void **state)
{
    struct fake_platform fp, gp;
    struct cmos_rtc rtc, g;
    struct snap_w w;

    (void)state;
    rtc_fixture(&fp, &rtc);
    dev_out8(&rtc.dev, 0, 0x09);
    dev_out8(&rtc.dev, 1, 0x30); /* year 2030 */
    dev_out8(&rtc.dev, 0, 0x0b);
    dev_out8(&rtc.dev, 1, 0x06); /* binary, 24-hour */
    dev_out8(&rtc.dev, 0, 0x40);
    dev_out8(&rtc.dev, 1, 0xab);
    dev_out8(&rtc.dev, 0, 0x02); /* the index the guest left: minutes */
    snap_test_save(&rtc, save_rtc, &w);

    rtc_fixture(&gp, &g);
    assert_int_equal(snap_test_load(&g, load_rtc, w.buf, w.len, NULL, 0), 0);
    snap_assert_saves(&g, save_rtc, &w);
    assert_int_equal(dev_in8(&g.dev, 1), 25); /* no index write: still minutes */
    assert_int_equal(cmos(&g, 0x09), 30);
    assert_int_equal(cmos(&g, 0x40), 0xab);
    assert_int_equal(cmos(&g, 0x0b), 0x06);
    g.now = later_time;
    assert_int_equal(cmos(&g, 0x00), 49);
    assert_int_equal(cmos(&g, 0x02), 26);
    assert_int_equal(cmos(&g, 0x09), 30);
    g.now = fixed_time;

    snap_assert_corruption_refused(&g, save_rtc, load_rtc, &w, 1);
    snap_assert_field_refused(&g, save_rtc, load_rtc, &w, RTC_OFF_INDEX, 128, 1, "index");
    snap_assert_field_refused(&g, save_rtc, load_rtc, &w, RTC_OFF_OFFSET, 1ull << 41, 8, "offset");
    snap_assert_field_refused(&g, save_rtc, load_rtc, &w, RTC_OFF_OFFSET, (uint64_t)(-(1ll << 41)),
                              8, "offset");
    assert_int_equal(cmos(&g, 0x09), 30);
    snap_w_free(&w);
}

static void save_pcih(const void *dev, struct snap_w *w)
{
    pci_host_save(dev, w);
}

static int load_pcih(void *dev, struct snap_r *r)
{
    return pci_host_load(dev, r);
}

/* The address register selects the same register of the same function after a load. */
static void test_pci_host_snapshot(void **state)
{
    struct fake_platform fp;
    struct pci_host h, g;
    struct pci_bus pb, gb;
    uint32_t addr = 0x80000008, back, a, b;
    struct snap_w w;

    (void)state;
    fake_platform_init(&fp);
    pci_bus_init(&pb, &fp.platform);
    pci_host_init(&h, &fp.platform, &pb);
    pci_bus_init(&gb, &fp.platform);
    pci_host_init(&g, &fp.platform, &gb);
    h.dev.ops->write(&h.dev, 0, &addr, 4);
    snap_test_save(&h, save_pcih, &w);
    assert_int_equal(snap_test_load(&g, load_pcih, w.buf, w.len, NULL, 0), 0);
    snap_assert_saves(&g, save_pcih, &w);
    g.dev.ops->read(&g.dev, 0, &back, 4);
    assert_int_equal(back, addr);
    h.dev.ops->read(&h.dev, 4, &a, 4);
    g.dev.ops->read(&g.dev, 4, &b, 4);
    assert_int_equal(b, a);
    assert_int_equal(b >> 16, 0x0600);
    snap_assert_corruption_refused(&g, save_pcih, load_pcih, &w, 1);
    snap_w_free(&w);
}

static void save_acpi(const void *dev, struct snap_w *w)
{
    acpi_pm_save(dev, w);
}

static int load_acpi(void *dev, struct snap_r *r)
{
    return acpi_pm_load(dev, r);
}

/* The clock of the machine restored on: another host, another monotonic time. */
static uint64_t other_ns;
static uint64_t other_now(void)
{
    return other_ns;
}

#define ACPI_OFF_CNT 14
#define ACPI_OFF_TMR 16

/* PM1 registers travel; the PM timer counts on from its saved value, on another clock. */
static void test_acpi_pm_snapshot(void **state)
{
    struct fake_platform fp;
    struct acpi_pm pm, g;
    uint16_t v;
    uint32_t t, u;
    struct snap_w w;

    (void)state;
    fake_platform_init(&fp);
    acpi_pm_init(&pm, &fp.platform);
    acpi_pm_init(&g, &fp.platform);
    pm.now_ns = fake_now;
    g.now_ns = other_now;
    fake_ns = 5123456789ull;
    other_ns = 42;
    pm.pm1_sts = 0x0101;
    v = 0x0120;
    pm.dev.ops->write(&pm.dev, 2, &v, 2);
    v = ACPI_S5_SLP_TYP << 10; /* the type alone, no SLP_EN */
    pm.dev.ops->write(&pm.dev, 4, &v, 2);
    pm.dev.ops->read(&pm.dev, 8, &t, 4);
    snap_test_save(&pm, save_acpi, &w);

    assert_int_equal(snap_test_load(&g, load_acpi, w.buf, w.len, NULL, 0), 0);
    snap_assert_saves(&g, save_acpi, &w);
    g.dev.ops->read(&g.dev, 8, &u, 4);
    assert_int_equal(u, t);
    other_ns += 1000000000ull;
    g.dev.ops->read(&g.dev, 8, &u, 4);
    assert_int_equal((u - t) & 0xffffff, ACPI_PM_TIMER_HZ & 0xffffff);
    for (unsigned off = 0; off < 6; off += 2) {
        uint16_t a, b;
        pm.dev.ops->read(&pm.dev, off, &a, 2);
        g.dev.ops->read(&g.dev, off, &b, 2);
        assert_int_equal(b, a);
    }
    other_ns -= 1000000000ull;
    snap_assert_corruption_refused(&g, save_acpi, load_acpi, &w, 1);
    snap_assert_field_refused(&g, save_acpi, load_acpi, &w, ACPI_OFF_TMR, 1u << 24, 4, "timer");
    snap_assert_field_refused(&g, save_acpi, load_acpi, &w, ACPI_OFF_CNT, 0x2000 | (5 << 10), 2,
                              "SLP_EN");
    assert_int_equal(fp.stops, 0);
    snap_w_free(&w);
}

static void test_debug_exit_and_post_code(void **state)
{
    struct fake_platform fp;
    struct debug_exit d;
    struct post_code p;

    (void)state;
    fake_platform_init(&fp);
    debug_exit_init(&d, &fp.platform);
    post_code_init(&p, &fp.platform);
    dev_out8(&p.dev, 0, 0x42);
    assert_int_equal(dev_in8(&p.dev, 0), 0x42);
    assert_int_equal(fp.stops, 0);
    dev_out8(&d.dev, 0, 7);
    assert_int_equal(fp.stop, HV_STOP_POWEROFF);
    assert_int_equal(fp.stop_code, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rtc_bcd_time),
        cmocka_unit_test(test_rtc_binary_and_12h),
        cmocka_unit_test(test_rtc_guest_sets_its_own_clock),
        cmocka_unit_test(test_rtc_nvram_and_memory_size),
        cmocka_unit_test(test_rtc_firmware_registers),
        cmocka_unit_test(test_pci_host_bridge_and_absent_devices),
        cmocka_unit_test(test_pci_reset_control_register),
        cmocka_unit_test(test_acpi_pm_timer_and_poweroff),
        cmocka_unit_test(test_acpi_pm_status_write_one_to_clear),
        cmocka_unit_test(test_debug_exit_and_post_code),
        cmocka_unit_test(test_rtc_snapshot),
        cmocka_unit_test(test_pci_host_snapshot),
        cmocka_unit_test(test_acpi_pm_snapshot),
    };
    return cmocka_run_group_tests_name("legacy_devices", tests, NULL, NULL);
}
