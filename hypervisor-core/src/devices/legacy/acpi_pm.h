/* ACPI fixed hardware: PM1 event/control blocks (power off) and the PM timer. */
#ifndef HV_ACPI_PM_H
#define HV_ACPI_PM_H

#include <stdint.h>

#include "bus.h"
#include "snapshot/snap_buf.h"

#define ACPI_PM_BASE      0x600
#define ACPI_PM_LEN       12
#define ACPI_PM1_EVT_BLK  (ACPI_PM_BASE + 0)
#define ACPI_PM1_CNT_BLK  (ACPI_PM_BASE + 4)
#define ACPI_PM_TMR_BLK   (ACPI_PM_BASE + 8)
#define ACPI_SCI_IRQ      9
#define ACPI_S5_SLP_TYP   5 /* must match the \_S5 package in the DSDT */
#define ACPI_PM_TIMER_HZ  3579545

struct acpi_pm {
    struct hv_device dev;
    uint16_t pm1_sts, pm1_en, pm1_cnt;
    uint64_t (*now_ns)(void); /* monotonic clock, replaceable in tests */
    uint32_t tmr_offset;      /* added to the clock's ticks: a restored timer continues */
};

void acpi_pm_init(struct acpi_pm *pm, const struct hv_platform *platform);
/* Snapshot (section 'ACPI'): the PM1 registers and the PM timer's value, from which the
 * restored timer counts on. Caller holds the bus lock. */
void acpi_pm_save(const struct acpi_pm *pm, struct snap_w *w);
int acpi_pm_load(struct acpi_pm *pm, struct snap_r *r);

#endif
