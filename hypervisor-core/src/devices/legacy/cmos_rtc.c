/*
 * CMOS RTC: wall-clock time (UTC) from the host clock, BCD or binary and
 * 12/24-hour as register B selects, plus the NVRAM bytes firmware would have
 * written (memory sizes). Update-in-progress never reads as set, so guests
 * never wait on it. A guest that sets the clock shifts its own time only.
 */
#include "cmos_rtc.h"

#include <errno.h>
#include <string.h>

enum {
    RTC_SEC = 0x00, RTC_MIN = 0x02, RTC_HOUR = 0x04, RTC_WDAY = 0x06,
    RTC_MDAY = 0x07, RTC_MON = 0x08, RTC_YEAR = 0x09,
    RTC_REG_A = 0x0a, RTC_REG_B = 0x0b, RTC_REG_C = 0x0c, RTC_REG_D = 0x0d,
    RTC_CENTURY = 0x32,
};

#define REG_B_24H    0x02
#define REG_B_BINARY 0x04
#define REG_B_SET    0x80
#define REG_D_VRT    0x80

static time_t host_time(void)
{
    return time(NULL);
}

static uint8_t to_bcd(unsigned v)
{
    return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static unsigned from_bcd(uint8_t v)
{
    return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t encode(const struct cmos_rtc *rtc, unsigned v)
{
    return (rtc->nvram[RTC_REG_B] & REG_B_BINARY) ? (uint8_t)v : to_bcd(v);
}

static unsigned decode(const struct cmos_rtc *rtc, uint8_t v)
{
    return (rtc->nvram[RTC_REG_B] & REG_B_BINARY) ? v : from_bcd(v);
}

static uint8_t encode_hour(const struct cmos_rtc *rtc, unsigned hour)
{
    unsigned h12;

    if (rtc->nvram[RTC_REG_B] & REG_B_24H)
        return encode(rtc, hour);
    h12 = hour % 12 ? hour % 12 : 12;
    return encode(rtc, h12) | (hour >= 12 ? 0x80 : 0);
}

static uint8_t time_register(const struct cmos_rtc *rtc, uint8_t reg)
{
    time_t t = rtc->now() + rtc->offset_s;
    struct tm tm;

    gmtime_r(&t, &tm);
    switch (reg) {
    case RTC_SEC:
        return encode(rtc, (unsigned)tm.tm_sec);
    case RTC_MIN:
        return encode(rtc, (unsigned)tm.tm_min);
    case RTC_HOUR:
        return encode_hour(rtc, (unsigned)tm.tm_hour);
    case RTC_WDAY:
        return encode(rtc, (unsigned)tm.tm_wday + 1);
    case RTC_MDAY:
        return encode(rtc, (unsigned)tm.tm_mday);
    case RTC_MON:
        return encode(rtc, (unsigned)tm.tm_mon + 1);
    case RTC_YEAR:
        return encode(rtc, (unsigned)tm.tm_year % 100);
    case RTC_CENTURY:
        return encode(rtc, (unsigned)(tm.tm_year + 1900) / 100);
    }
    return 0;
}

static bool is_time_register(uint8_t reg)
{
    return (reg <= RTC_YEAR && reg != 1 && reg != 3 && reg != 5) || reg == RTC_CENTURY;
}

/* A guest write to a time field moves the guest's clock, not the host's. */
static void set_time_register(struct cmos_rtc *rtc, uint8_t reg, uint8_t val)
{
    time_t t = rtc->now() + rtc->offset_s;
    struct tm tm;
    unsigned v;

    gmtime_r(&t, &tm);
    if (reg == RTC_HOUR && !(rtc->nvram[RTC_REG_B] & REG_B_24H)) {
        v = decode(rtc, val & 0x7f) % 12 + ((val & 0x80) ? 12 : 0);
    } else {
        v = decode(rtc, val);
    }
    switch (reg) {
    case RTC_SEC: tm.tm_sec = (int)v; break;
    case RTC_MIN: tm.tm_min = (int)v; break;
    case RTC_HOUR: tm.tm_hour = (int)v; break;
    case RTC_WDAY: return;
    case RTC_MDAY: tm.tm_mday = (int)v; break;
    case RTC_MON: tm.tm_mon = (int)v - 1; break;
    case RTC_YEAR: tm.tm_year = (tm.tm_year / 100) * 100 + (int)v; break;
    case RTC_CENTURY: tm.tm_year = (int)v * 100 - 1900 + tm.tm_year % 100; break;
    }
    rtc->offset_s = (int64_t)(timegm(&tm) - rtc->now());
}

static void rtc_read(struct hv_device *dev, uint64_t offset, void *data, unsigned size)
{
    struct cmos_rtc *rtc = hv_container_of(dev, struct cmos_rtc, dev);
    uint8_t reg = rtc->index, val;

    if (offset == 0) {
        val = 0xff; /* the index port is write-only */
    } else if (is_time_register(reg)) {
        val = time_register(rtc, reg);
    } else if (reg == RTC_REG_C) {
        val = 0; /* no interrupt sources are ever active */
    } else {
        val = rtc->nvram[reg];
    }
    memset(data, 0, size);
    *(uint8_t *)data = val;
}

static void rtc_write(struct hv_device *dev, uint64_t offset, const void *data, unsigned size)
{
    struct cmos_rtc *rtc = hv_container_of(dev, struct cmos_rtc, dev);
    uint8_t val = *(const uint8_t *)data;

    (void)size;
    if (offset == 0) {
        rtc->index = val & 0x7f; /* bit 7 is the NMI mask */
        return;
    }
    if (is_time_register(rtc->index)) {
        set_time_register(rtc, rtc->index, val);
    } else if (rtc->index == RTC_REG_A) {
        rtc->nvram[RTC_REG_A] = val & 0x7f; /* UIP is read-only */
    } else if (rtc->index == RTC_REG_B) {
        rtc->nvram[RTC_REG_B] = val & ~REG_B_SET;
    } else if (rtc->index != RTC_REG_C && rtc->index != RTC_REG_D) {
        rtc->nvram[rtc->index] = val;
    }
}

static const struct hv_device_ops cmos_rtc_ops = {
    .read = rtc_read,
    .write = rtc_write,
};

void cmos_rtc_init(struct cmos_rtc *rtc, const struct hv_platform *platform, uint64_t memory_bytes,
                   unsigned nr_vcpus)
{
    uint64_t above_16m, above_4g;
    uint64_t below_4g = memory_bytes < 0xc0000000ull ? memory_bytes : 0xc0000000ull;

    memset(rtc, 0, sizeof(*rtc));
    rtc->dev = (struct hv_device){.name = "cmos-rtc", .ops = &cmos_rtc_ops, .platform = platform};
    rtc->now = host_time;
    rtc->nvram[RTC_REG_A] = 0x26; /* 32.768 kHz base, 1024 Hz periodic rate */
    rtc->nvram[RTC_REG_B] = REG_B_24H;
    rtc->nvram[RTC_REG_D] = REG_D_VRT;
    /* Memory sizes as a PC BIOS records them: base KiB, 1-16 MiB in KiB, above in 64 KiB. */
    rtc->nvram[0x15] = 640 & 0xff;
    rtc->nvram[0x16] = 640 >> 8;
    rtc->nvram[0x17] = rtc->nvram[0x30] = 0xff;
    rtc->nvram[0x18] = rtc->nvram[0x31] = 0xff;
    above_16m = below_4g > (16u << 20) ? (below_4g - (16u << 20)) >> 16 : 0;
    if (above_16m > 0xffff)
        above_16m = 0xffff;
    rtc->nvram[0x34] = (uint8_t)above_16m;
    rtc->nvram[0x35] = (uint8_t)(above_16m >> 8);
    above_4g = memory_bytes > below_4g ? (memory_bytes - below_4g) >> 16 : 0;
    rtc->nvram[0x5b] = (uint8_t)above_4g;
    rtc->nvram[0x5c] = (uint8_t)(above_4g >> 8);
    rtc->nvram[0x5d] = (uint8_t)(above_4g >> 16);
    /* What QEMU's PC adds and SeaBIOS reads: CPUs present minus one, boot from hard disk. */
    rtc->nvram[0x5f] = (uint8_t)(nr_vcpus ? nr_vcpus - 1 : 0);
    rtc->nvram[0x3d] = 0x02;
}

#define RTC_TAG SNAP_TAG('R', 'T', 'C', ' ')
/* Far beyond any date the registers can express (year 16599 with BCD 0xff centuries), and
 * small enough that now + offset cannot overflow time_t nor gmtime_r fail. */
#define RTC_MAX_OFFSET_S (1ll << 40)

void cmos_rtc_save(const struct cmos_rtc *rtc, struct snap_w *w)
{
    size_t mark = snap_w_begin(w, RTC_TAG, 1);

    snap_w_u8(w, rtc->index);
    snap_w_bytes(w, rtc->nvram, sizeof(rtc->nvram));
    snap_w_u64(w, (uint64_t)rtc->offset_s);
    snap_w_end(w, mark);
}

int cmos_rtc_load(struct cmos_rtc *rtc, struct snap_r *r)
{
    uint8_t index, nvram[sizeof(rtc->nvram)];
    int64_t offset_s;
    struct snap_r sub;
    uint16_t ver;

    if (snap_r_section(r, RTC_TAG, "cmos rtc", 1, &sub, &ver))
        return r->err;
    index = snap_r_u8(&sub);
    snap_r_bytes(&sub, nvram, sizeof(nvram));
    offset_s = (int64_t)snap_r_u64(&sub);
    if (snap_r_ok(&sub) && index >= sizeof(nvram))
        snap_r_fail(&sub, -EINVAL, "cmos rtc: index %u, must be below %zu", index, sizeof(nvram));
    if (snap_r_ok(&sub) && (offset_s > RTC_MAX_OFFSET_S || offset_s < -RTC_MAX_OFFSET_S))
        snap_r_fail(&sub, -EINVAL, "cmos rtc: guest time offset of %lld s", (long long)offset_s);
    if (snap_r_end(r, &sub))
        return r->err;
    rtc->index = index;
    memcpy(rtc->nvram, nvram, sizeof(nvram));
    rtc->offset_s = offset_s;
    return 0;
}
