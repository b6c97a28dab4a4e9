/*
 * ACPI PM1a event and control registers and the 24-bit PM timer
 * (ACPI 6.x, section 4.8). Writing SLP_TYP=5 with SLP_EN to PM1a_CNT is
 * how an ACPI guest powers off. SCI_EN reads as set: there is no SMI
 * command port, so the machine is always in ACPI mode. The PM timer gives
 * full-mode guests a second reference for TSC calibration besides the PIT.
 */
#include "acpi_pm.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#define PM1_CNT_SCI_EN 0x0001
#define PM1_CNT_SLP_EN 0x2000
#define PM1_CNT_SLP_TYP(v) (((v) >> 10) & 7)

static uint64_t monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define PM_TMR_MASK 0xffffffu /* a 24-bit counter (TMR_VAL_EXT clear in the FADT) */

static uint32_t clock_ticks(const struct acpi_pm *pm)
{
    return (uint32_t)((unsigned __int128)pm->now_ns() * ACPI_PM_TIMER_HZ / 1000000000u);
}

static uint32_t pm_timer(const struct acpi_pm *pm)
{
    return (clock_ticks(pm) + pm->tmr_offset) & PM_TMR_MASK;
}

static void acpi_pm_read(struct hv_device *dev, uint64_t offset, void *data, unsigned size)
{
    struct acpi_pm *pm = hv_container_of(dev, struct acpi_pm, dev);
    uint8_t regs[ACPI_PM_LEN];
    uint32_t tmr = pm_timer(pm);
    uint16_t cnt = pm->pm1_cnt | PM1_CNT_SCI_EN;

    memset(regs, 0, sizeof(regs));
    memcpy(regs + 0, &pm->pm1_sts, 2);
    memcpy(regs + 2, &pm->pm1_en, 2);
    memcpy(regs + 4, &cnt, 2);
    memcpy(regs + 8, &tmr, 4);
    memset(data, 0, size);
    if (offset + size <= ACPI_PM_LEN)
        memcpy(data, regs + offset, size);
}

static void set_byte(uint16_t *reg, unsigned which, uint8_t b)
{
    *reg = (uint16_t)((*reg & ~(0xffu << (8 * which))) | ((unsigned)b << (8 * which)));
}

static void acpi_pm_write(struct hv_device *dev, uint64_t offset, const void *data, unsigned size)
{
    struct acpi_pm *pm = hv_container_of(dev, struct acpi_pm, dev);
    const uint8_t *bytes = data;
    bool cnt_written = false;

    for (unsigned i = 0; i < size; i++) {
        uint64_t o = offset + i;
        if (o < 2) {
            pm->pm1_sts &= (uint16_t) ~((unsigned)bytes[i] << (8 * o)); /* write one to clear */
        } else if (o < 4) {
            set_byte(&pm->pm1_en, (unsigned)o - 2, bytes[i]);
        } else if (o < 6) {
            set_byte(&pm->pm1_cnt, (unsigned)o - 4, bytes[i]);
            cnt_written = true;
        } /* the timer is read-only */
    }
    if (cnt_written && (pm->pm1_cnt & PM1_CNT_SLP_EN)) {
        pm->pm1_cnt &= ~PM1_CNT_SLP_EN;
        if (PM1_CNT_SLP_TYP(pm->pm1_cnt) == ACPI_S5_SLP_TYP)
            dev->platform->request_stop(dev->platform->opaque, HV_STOP_POWEROFF, 0);
    }
}

void acpi_pm_init(struct acpi_pm *pm, const struct hv_platform *platform)
{
    static const struct hv_device_ops ops = {.read = acpi_pm_read, .write = acpi_pm_write};

    memset(pm, 0, sizeof(*pm));
    pm->dev = (struct hv_device){.name = "acpi-pm", .ops = &ops, .platform = platform};
    pm->now_ns = monotonic_ns;
}

#define ACPI_TAG SNAP_TAG('A', 'C', 'P', 'I')

void acpi_pm_save(const struct acpi_pm *pm, struct snap_w *w)
{
    size_t mark = snap_w_begin(w, ACPI_TAG, 1);

    snap_w_u16(w, pm->pm1_sts);
    snap_w_u16(w, pm->pm1_en);
    snap_w_u16(w, pm->pm1_cnt);
    snap_w_u32(w, pm_timer(pm));
    snap_w_end(w, mark);
}

int acpi_pm_load(struct acpi_pm *pm, struct snap_r *r)
{
    uint16_t sts, en, cnt, ver;
    uint32_t tmr;
    struct snap_r sub;

    if (snap_r_section(r, ACPI_TAG, "acpi pm", 1, &sub, &ver))
        return r->err;
    sts = snap_r_u16(&sub);
    en = snap_r_u16(&sub);
    cnt = snap_r_u16(&sub);
    tmr = snap_r_below(&sub, PM_TMR_MASK + 1, "acpi pm timer");
    /* acpi_pm_write acts on SLP_EN and clears it at once: a saved one is not a state. */
    if (snap_r_ok(&sub) && (cnt & PM1_CNT_SLP_EN))
        snap_r_fail(&sub, -EINVAL, "acpi pm: PM1_CNT 0x%x has SLP_EN set", cnt);
    if (snap_r_end(r, &sub))
        return r->err;
    pm->pm1_sts = sts;
    pm->pm1_en = en;
    pm->pm1_cnt = cnt;
    /* The guest's timer goes on from where it was, not from this host's clock: no jump. */
    pm->tmr_offset = (tmr - clock_ticks(pm)) & PM_TMR_MASK;
    return 0;
}
