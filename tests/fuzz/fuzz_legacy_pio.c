/*
 * libFuzzer harness for the machine's legacy port-I/O devices through the
 * port bus, registered exactly as vm.c's create_devices() does: the 8250
 * UART at COM1, the i8042, the CMOS RTC, the 0xCF8 PCI host bridge (with an
 * empty PCI bus), the ACPI PM block, the debug-exit and POST ports, and
 * fw_cfg filled as for a firmware boot (the files SeaBIOS reads). The
 * input is a program of port reads and writes of 1, 2, 4 (and 8, which the
 * bus passes on, as it does for MMIO) bytes, host console input for the UART, and device
 * resets. The clocks the RTC and the PM timer read are fixed, so that inputs
 * reproduce; the platform is the unit tests' fake (KVM's side).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "arch/x86/firmware.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/debug_ports.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/pci_host.h"
#include "devices/legacy/uart8250.h"
#include "fake_platform.h"

#define MAX_OPS 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct machine {
    struct fake_platform fp;
    struct hv_bus bus;
    struct pci_bus pb;
    struct uart8250 uart;
    struct i8042 kbd;
    struct cmos_rtc rtc;
    struct pci_host host;
    struct acpi_pm pm;
    struct debug_exit debug_exit;
    struct post_code post;
    struct fw_cfg fw_cfg;
};

static time_t fixed_time(void)
{
    return 1767225599; /* 2025-12-31 23:59:59 UTC: a year, month and day roll over */
}

static uint64_t fixed_ns(void)
{
    return 123456789;
}

static void console_discard(void *opaque, const uint8_t *buf, size_t len)
{
    (void)opaque, (void)buf, (void)len;
}

/* Every port of every device, and a few around them; a selector indexes this. */
static const uint16_t ports[] = {
    0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff, /* COM1 */
    0x60,  0x61,  0x62,  0x63,  0x64,                       /* i8042 (and port B) */
    0x70,  0x71,                                            /* CMOS RTC */
    0xcf8, 0xcf9, 0xcfa, 0xcfb, 0xcfc, 0xcfd, 0xcfe, 0xcff, /* PCI host */
    0x600, 0x601, 0x602, 0x603, 0x604, 0x605, 0x606, 0x607, 0x608, 0x609,
    0x60a, 0x60b,                                                         /* ACPI PM */
    0x501, 0x80,                                                          /* debug exit, POST */
    0x510, 0x511,                                                         /* fw_cfg */
    0x3f7, 0x400, 0x5ff, 0x60c, 0x502, 0xcf7, 0xd00, 0x7f,  0x50f, 0x512, /* just outside */
};
#define NR_PORTS (sizeof(ports) / sizeof(ports[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct machine m;
    const uint8_t *end = data + size;
    const struct hv_platform *p = &m.fp.platform;
    struct {
        uint64_t base, len;
        struct hv_device *dev;
    } map[] = {
        {UART8250_COM1_BASE, 8, &m.uart.dev},
        {I8042_BASE, I8042_LEN, &m.kbd.dev},
        {CMOS_RTC_BASE, CMOS_RTC_LEN, &m.rtc.dev},
        {PCI_HOST_BASE, PCI_HOST_LEN, &m.host.dev},
        {ACPI_PM_BASE, ACPI_PM_LEN, &m.pm.dev},
        {DEBUG_EXIT_PORT, 1, &m.debug_exit.dev},
        {POST_CODE_PORT, 1, &m.post.dev},
        {FW_CFG_PORT_SEL, FW_CFG_PORT_LEN, &m.fw_cfg.dev},
    };

    /* A fresh machine per input, in vm.c's order. */
    memset(&m, 0, sizeof(m));
    fake_platform_init(&m.fp);
    if (hv_bus_init(&m.bus) != 0)
        abort();
    uart8250_init(&m.uart, p, UART8250_COM1_IRQ, console_discard, NULL);
    i8042_init(&m.kbd, p);
    cmos_rtc_init(&m.rtc, p, 256ull << 20, 1);
    m.rtc.now = fixed_time;
    pci_bus_init(&m.pb, p);
    if (pci_host_init(&m.host, p, &m.pb) != 0)
        abort();
    acpi_pm_init(&m.pm, p);
    m.pm.now_ns = fixed_ns;
    debug_exit_init(&m.debug_exit, p);
    post_code_init(&m.post, p);
    if (fw_cfg_init(&m.fw_cfg, p) != 0 ||
        hv_x86_firmware_describe(&m.fw_cfg, 256ull << 20, 2, "/pci@i0cf8/*@3") != 0)
        abort();
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (hv_bus_register(&m.bus, HV_BUS_PIO, map[i].base, map[i].len, map[i].dev) != 0)
            abort();
    if (pci_bus_register_windows(&m.pb, &m.bus) != 0)
        abort();

    for (unsigned n = 0; n < MAX_OPS && end - data >= 2; n++) {
        uint8_t op = *data++, sel = *data++;
        unsigned len = 1u << (op >> 4 & 3); /* 1, 2, 4, 8 */
        uint16_t port = ports[sel % NR_PORTS];
        uint64_t v = 0;

        switch (op & 3) {
        case 0: /* out */
            for (unsigned i = 0; i < len && data < end; i++)
                v |= (uint64_t)*data++ << (8 * i);
            hv_bus_access(&m.bus, HV_BUS_PIO, port, &v, len, true);
            break;
        case 1: /* in */
            hv_bus_access(&m.bus, HV_BUS_PIO, port, &v, len, false);
            break;
        case 2: { /* host console input: up to sel & 63 bytes (the caller holds the bus lock) */
            size_t count = (size_t)(sel & 63) < (size_t)(end - data) ? (size_t)(sel & 63)
                                                                       : (size_t)(end - data);
            uart8250_receive(&m.uart, data, count);
            data += count;
            break;
        }
        default: /* a guest reboot */
            hv_bus_reset(&m.bus);
            break;
        }
    }
    hv_bus_destroy(&m.bus);
    fw_cfg_destroy(&m.fw_cfg);
    return 0;
}
