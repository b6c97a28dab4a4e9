/* MC146818 CMOS real-time clock and NVRAM at ports 0x70/0x71. */
#ifndef HV_CMOS_RTC_H
#define HV_CMOS_RTC_H

#include <stdint.h>
#include <time.h>

#include "bus.h"
#include "snapshot/snap_buf.h"

#define CMOS_RTC_BASE 0x70
#define CMOS_RTC_LEN  2

struct cmos_rtc {
    struct hv_device dev;
    uint8_t index;
    uint8_t nvram[128];
    int64_t offset_s; /* guest time minus host time, set by guest writes */
    time_t (*now)(void); /* the host clock, replaceable in tests */
};

void cmos_rtc_init(struct cmos_rtc *rtc, const struct hv_platform *platform,
                   uint64_t memory_bytes, unsigned nr_vcpus);
/* Snapshot (section 'RTC '): index, NVRAM and the guest's offset from host time; the host
 * clock goes on meanwhile, so a restored guest reads the wall clock of the restore. The RTC
 * raises no interrupts, so there is no line to re-drive. Caller holds the bus lock. */
void cmos_rtc_save(const struct cmos_rtc *rtc, struct snap_w *w);
int cmos_rtc_load(struct cmos_rtc *rtc, struct snap_r *r);

#endif
