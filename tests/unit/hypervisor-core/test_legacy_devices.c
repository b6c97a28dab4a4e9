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
    };
    return cmocka_run_group_tests_name("legacy_devices", tests, NULL, NULL);
}
