/*
 * Snapshot and restore of a whole VM. A state file is a 32-byte header
 * (magic, format version, payload length, CRC-32C of the payload and of the
 * header itself) and a payload of sections in a fixed order:
 *
 *   META (the machine's shape), CPU per vCPU, IRQC, PIT, CLCK, the devices
 *   (devices_state.c), END.
 *
 * Guest RAM is a separate file of exactly the RAM's size: written with
 * all-zero pages left as holes, and mapped copy-on-write by a restore, so
 * restoring costs the same for 256 MiB and for 2 GiB (pages are read when
 * the guest first touches them).
 *
 * Saving waits until every vCPU is out of KVM_RUN with its port or MMIO
 * access completed (vcpu.c re-enters once with immediate_exit before it
 * parks, as the KVM API requires before state is read) and every device
 * thread is parked with no request in flight.
 */
#include "snapshot/vm_snapshot.h"
#include "fail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/vcpu_state.h"
#include "snapshot/devices_state.h"
#include "snapshot/snap_file.h"
#include "vm_internal.h"

#define TAG_IRQC SNAP_TAG('I', 'R', 'Q', 'C')
#define TAG_PIT  SNAP_TAG('P', 'I', 'T', ' ')
#define TAG_CLCK SNAP_TAG('C', 'L', 'C', 'K')
#define PAGE     4096u

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void save_meta(struct hv_vm *vm, struct snap_w *w)
{
    size_t mark = snap_w_begin(w, HV_SNAP_TAG_META, 1);
    snap_w_u32(w, (uint32_t)vm->mode);
    snap_w_u32(w, vm->nr_vcpus);
    snap_w_u64(w, vm->mem.size);
    snap_w_bool(w, vm->boot.firmware);
    snap_w_u32(w, vm->nr_disks);
    for (unsigned i = 0; i < vm->nr_disks; i++) {
        snap_w_u64(w, vm->disks[i].size);
        snap_w_bool(w, vm->disks[i].readonly);
    }
    snap_w_u32(w, vm->nr_nics);
    snap_w_u64(w, realtime_ns());
    snap_w_end(w, mark);
}

/* The in-kernel PIC pair and IOAPIC, the PIT and the KVM clock: uapi structures, as bytes. */
static int save_vm_state(struct hv_vm *vm, struct snap_w *w, char *err, size_t errlen)
{
    struct kvm_irqchip chip;
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
    size_t mark = snap_w_begin(w, TAG_IRQC, 1);

    for (unsigned id = KVM_IRQCHIP_PIC_MASTER; id <= KVM_IRQCHIP_IOAPIC; id++) {
        memset(&chip, 0, sizeof(chip));
        chip.chip_id = id;
        if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
            return hv__fail(err, errlen, -errno, "KVM_GET_IRQCHIP %u: %s", id, strerror(errno));
        snap_w_bytes(w, &chip.chip, sizeof(chip.chip));
    }
    snap_w_end(w, mark);
    if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
        return hv__fail(err, errlen, -errno, "KVM_GET_PIT2: %s", strerror(errno));
    mark = snap_w_begin(w, TAG_PIT, 1);
    snap_w_bytes(w, &pit, sizeof(pit));
    snap_w_end(w, mark);
    memset(&clock, 0, sizeof(clock));
    if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
        return hv__fail(err, errlen, -errno, "KVM_GET_CLOCK: %s", strerror(errno));
    mark = snap_w_begin(w, TAG_CLCK, 1);
    snap_w_u64(w, clock.clock);
    snap_w_u32(w, clock.flags);
    snap_w_u64(w, clock.flags & KVM_CLOCK_REALTIME ? clock.realtime : 0);
    snap_w_end(w, mark);
    return 0;
}

struct vm_state {
    struct kvm_irqchip chips[3];
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
};

static int read_vm_state(struct snap_r *r, struct vm_state *s)
{
    struct snap_r sub;
    uint16_t version;

    memset(s, 0, sizeof(*s));
    if (snap_r_section(r, TAG_IRQC, "irqchip", 1, &sub, &version))
        return r->err;
    for (unsigned id = 0; id < 3; id++) {
        s->chips[id].chip_id = id;
        snap_r_bytes(&sub, &s->chips[id].chip, sizeof(s->chips[id].chip));
    }
    if (snap_r_end(r, &sub) || snap_r_section(r, TAG_PIT, "PIT", 1, &sub, &version))
        return r->err;
    snap_r_bytes(&sub, &s->pit, sizeof(s->pit));
    if (snap_r_end(r, &sub) || snap_r_section(r, TAG_CLCK, "KVM clock", 1, &sub, &version))
        return r->err;
    s->clock.clock = snap_r_u64(&sub);
    s->clock.flags = snap_r_u32(&sub);
    s->clock.realtime = snap_r_u64(&sub);
    return snap_r_end(r, &sub);
}

static int apply_vm_state(struct hv_vm *vm, const struct vm_state *s, char *err, size_t errlen)
{
    struct kvm_clock_data clock = {.clock = s->clock.clock};
    int caps = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK);

    for (unsigned id = 0; id < 3; id++)
        if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &s->chips[id]) < 0)
            return hv__fail(err, errlen, -errno, "KVM_SET_IRQCHIP %u: %s", id, strerror(errno));
    if (ioctl(vm->vm_fd, KVM_SET_PIT2, &s->pit) < 0)
        return hv__fail(err, errlen, -errno, "KVM_SET_PIT2: %s", strerror(errno));
    /*
     * With KVM_CLOCK_REALTIME KVM moves the clock on by the wall time since the save, so the
     * guest's clock is not behind by however long the snapshot lay on disk (or the migration
     * took). Without it the guest's clock resumes where it stopped.
     */
    if ((s->clock.flags & KVM_CLOCK_REALTIME) && caps > 0 && (caps & KVM_CLOCK_REALTIME)) {
        clock.flags = KVM_CLOCK_REALTIME;
        clock.realtime = s->clock.realtime;
    }
    if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
        return hv__fail(err, errlen, -errno, "KVM_SET_CLOCK: %s", strerror(errno));
    return 0;
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;
    for (unsigned i = 0; i < PAGE / 8; i++)
        if (q[i])
            return false;
    return true;
}

static void set_bits(uint64_t *bitmap, uint64_t first, uint64_t count)
{
    for (uint64_t p = first; p < first + count; p++)
        bitmap[p / 64] |= 1ull << (p % 64);
}

void hv_vm_memory_in_use(struct hv_vm *vm, bool no_swap, uint64_t *bitmap)
{
    uint64_t pages = vm->mem.size / PAGE;
    size_t words = HV_DIRTY_BITMAP_WORDS(vm->mem.size);
    unsigned char *present = no_swap ? malloc(pages) : NULL;

    if (!present || mincore(vm->mem.host, vm->mem.size, present)) {
        memset(bitmap, 0xff, words * sizeof(uint64_t));
        free(present);
        return;
    }
    memset(bitmap, 0, words * sizeof(uint64_t));
    for (uint64_t p = 0; p < pages; p++)
        if (present[p] & 1)
            set_bits(bitmap, p, 1);
    free(present);
    /* A restored VM's untouched pages are its memory file's: those in the file's data count. */
    for (off_t off = 0; vm->mem.file_backed && (uint64_t)off < vm->mem.size;) {
        off_t data = lseek(vm->mem.backing_fd, off, SEEK_DATA), hole;
        if (data < 0 && errno == ENXIO)
            break;
        if (data < 0 || (hole = lseek(vm->mem.backing_fd, data, SEEK_HOLE)) < 0) {
            memset(bitmap, 0xff, words * sizeof(uint64_t)); /* cannot tell: all of it */
            break;
        }
        uint64_t first = (uint64_t)data / PAGE, last = ((uint64_t)hole + PAGE - 1) / PAGE < pages
                                                           ? ((uint64_t)hole + PAGE - 1) / PAGE
                                                           : pages;
        set_bits(bitmap, first, last - first);
        off = hole;
    }
}

/*
 * RAM byte for byte; runs of zero pages stay holes of the truncated file. Only the pages that
 * may hold data are read: reading the others costs a page fault each (measured by
 * bench_snapshot.sh: 0.5 s of pause for an untouched 256 MiB guest and 1.4 s for 2 GiB, and
 * 8.7 s for 2 GiB restored from a sparse snapshot, when every page was read).
 */
static int save_memory(struct hv_vm *vm, int fd, bool no_swap, uint64_t *written)
{
    const uint8_t *mem = vm->mem.host;
    uint64_t size = vm->mem.size, run = 0, run_start = 0;
    uint64_t *in_use = malloc(HV_DIRTY_BITMAP_WORDS(size) * sizeof(uint64_t));
    int rc = 0;

    *written = 0;
    if (!in_use)
        return -ENOMEM;
    hv_vm_memory_in_use(vm, no_swap, in_use);
    if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0) {
        rc = -errno;
        goto out;
    }
    for (uint64_t off = 0; off <= size; off += PAGE) {
        bool data = off < size && ((in_use[off / PAGE / 64] >> (off / PAGE % 64)) & 1) &&
                    !page_is_zero(mem + off);
        /* Flush a run at a zero page, at the end, or every 8 MiB (bounded write size). */
        if (run && (!data || run == 8u << 20)) {
            if ((rc = hv__write_at(fd, mem + run_start, run, (off_t)run_start)))
                goto out;
            *written += run;
            run = 0;
        }
        if (data) {
            if (!run)
                run_start = off;
            run += PAGE;
        }
    }
    rc = fdatasync(fd) < 0 ? -errno : 0;
out:
    free(in_use);
    return rc;
}

static int take_state(struct hv_vm *vm, struct snap_w *w, char *err, size_t errlen)
{
    int rc;

    save_meta(vm, w);
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        if ((rc = hv_x86_vcpu_save(vm->kvm_fd, vm->vcpus[i].fd, i, w, err, errlen)))
            return rc;
    if ((rc = save_vm_state(vm, w, err, errlen)))
        return rc;
    hv__devices_save(vm, w);
    size_t mark = snap_w_begin(w, HV_SNAP_TAG_END, 1);
    snap_w_end(w, mark);
    return w->err ? hv__fail(err, errlen, w->err, "out of memory for the state") : 0;
}

int hv_vm_snapshot(struct hv_vm *vm, int state_fd, int mem_fd, unsigned flags,
                   struct hv_snapshot_info *info, char *err, size_t errlen)
{
    struct snap_w w;
    bool was_paused;
    uint64_t t0 = hv__now_ns();
    int rc;

    memset(info, 0, sizeof(*info));
    if ((rc = hv_vm_freeze(vm, &was_paused)))
        return hv__fail(err, errlen, rc, "the VM is not running");
    snap_w_init(&w);
    rc = take_state(vm, &w, err, errlen);
    if (!rc && (rc = hv__snap_file_write(state_fd, &w)))
        hv__fail(err, errlen, rc, "writing the state file: %s", strerror(-rc));
    if (!rc && (rc = save_memory(vm, mem_fd, flags & HV_SNAPSHOT_NO_SWAP, &info->memory_written)))
        hv__fail(err, errlen, rc, "writing the memory file: %s", strerror(-rc));
    info->state_bytes = HV_SNAP_HEADER_SIZE + w.len;
    info->memory_bytes = vm->mem.size;
    snap_w_free(&w);
    hv_vm_thaw(vm, (flags & HV_SNAPSHOT_LEAVE_PAUSED) || was_paused);
    info->paused_ns = hv__now_ns() - t0;
    return rc;
}

/* A fresh VM from cfg must have the snapshot's shape; each mismatch named. */
static int check_shape(const struct hv_vm *vm, const struct hv_snapshot_meta *m, char *err,
                       size_t errlen)
{
    if (m->mode != vm->mode)
        return hv__fail(err, errlen, -EINVAL, "the snapshot is of a %s-mode VM, not %s",
                        hv_mode_name(m->mode), hv_mode_name(vm->mode));
    if (m->vcpus != vm->nr_vcpus)
        return hv__fail(err, errlen, -EINVAL, "the snapshot has %u vCPUs, the VM %u", m->vcpus,
                        vm->nr_vcpus);
    if (m->memory_mib << 20 != vm->mem.size)
        return hv__fail(err, errlen, -EINVAL, "the snapshot has %llu MiB of memory, the VM %llu",
                        (unsigned long long)m->memory_mib,
                        (unsigned long long)(vm->mem.size >> 20));
    if (m->firmware != vm->boot.firmware)
        return hv__fail(err, errlen, -EINVAL, "the snapshot was %s, the VM is not",
                        m->firmware ? "booted by firmware" : "booted from a kernel");
    if (m->nr_disks != vm->nr_disks || m->nr_nics != vm->nr_nics)
        return hv__fail(err, errlen, -EINVAL,
                        "the snapshot has %u disks and %u NICs, the VM %u and %u", m->nr_disks,
                        m->nr_nics, vm->nr_disks, vm->nr_nics);
    for (unsigned i = 0; i < m->nr_disks; i++) {
        if (m->disk_bytes[i] != vm->disks[i].size)
            return hv__fail(err, errlen, -EINVAL,
                            "disk %u is %llu bytes, the snapshot expects %llu: it changed", i + 1,
                            (unsigned long long)vm->disks[i].size,
                            (unsigned long long)m->disk_bytes[i]);
        if (m->disk_readonly[i] != vm->disks[i].readonly)
            return hv__fail(err, errlen, -EINVAL, "disk %u is %s, in the snapshot it was %s", i + 1,
                            vm->disks[i].readonly ? "read-only" : "writable",
                            m->disk_readonly[i] ? "read-only" : "writable");
    }
    return 0;
}

int hv__snapshot_map_memory(struct hv_vm *vm, int mem_fd, uint64_t size, char *err, size_t errlen)
{
    struct stat st;
    int rc;

    if (fstat(mem_fd, &st) < 0)
        return hv__fail(err, errlen, -errno, "memory file: %s", strerror(errno));
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
        return hv__fail(err, errlen, -EINVAL,
                        "the memory file is %llu bytes, the snapshot's memory %llu: truncated or "
                        "not this snapshot's",
                        (unsigned long long)st.st_size, (unsigned long long)size);
    if ((rc = hv_guest_mem_init_file(&vm->mem, size, mem_fd)))
        return hv__fail(err, errlen, rc, "mapping the memory file: %s", strerror(-rc));
    return 0;
}

/* The payload after META, read and checked in full before anything is applied. */
static int restore_payload(struct hv_vm *vm, const struct hv_snapshot_meta *meta, struct snap_r *r,
                           char *err, size_t errlen)
{
    struct hv_x86_vcpu_state *cpus[HV_MAX_VCPUS] = {0};
    struct vm_state vs;
    struct snap_r end;
    uint16_t version;
    int rc;

    if ((rc = check_shape(vm, meta, err, errlen)))
        return rc;
    for (unsigned i = 0; i < vm->nr_vcpus && !r->err; i++)
        hv_x86_vcpu_state_read(r, i, &cpus[i]);
    if (!r->err)
        read_vm_state(r, &vs);
    if (r->err) {
        rc = hv__fail(err, errlen, r->err, "snapshot state: %s", r->what);
        goto out;
    }
    hv__devices_park(vm);
    rc = hv__devices_load(vm, r);
    if (!rc && !snap_r_section(r, HV_SNAP_TAG_END, "end marker", 1, &end, &version))
        snap_r_end(r, &end);
    if (!rc && !r->err && r->pos != r->len)
        snap_r_fail(r, -EINVAL, "%zu bytes after the end marker", r->len - r->pos);
    if (rc || r->err) {
        rc = hv__fail(err, errlen, r->err ? r->err : rc, "snapshot state: %s", r->what);
        goto out_unpark;
    }
    if ((rc = apply_vm_state(vm, &vs, err, errlen)))
        goto out_unpark;
    /*
     * A full-mode guest has no kvm-clock: it keeps time with the TSC (or the ACPI PM timer).
     * Moving the TSC on by the wall time since the save is what KVM_CLOCK_REALTIME does for
     * kvm-clock, so a TSC-timed guest's clock is not behind by the time the snapshot lay on
     * disk or the migration took. A guest on the PM timer cannot be helped from outside.
     */
    uint64_t now = realtime_ns();
    if (vm->mode == HV_MODE_FULL && meta->saved_realtime_ns && now > meta->saved_realtime_ns)
        for (unsigned i = 0; i < vm->nr_vcpus; i++)
            hv_x86_vcpu_state_advance_tsc(cpus[i], now - meta->saved_realtime_ns);
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        if ((rc = hv_x86_vcpu_state_apply(cpus[i], vm->vcpus[i].fd, err, errlen)))
            goto out_unpark;
    /* Tell a pv guest it was stopped, so its watchdogs do not call the gap a lockup. */
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        ioctl(vm->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0);
out_unpark:
    hv__devices_unpark(vm);
out:
    for (unsigned i = 0; i < HV_MAX_VCPUS; i++)
        hv_x86_vcpu_state_free(cpus[i]);
    return rc;
}

int hv__snapshot_restore(struct hv_vm *vm, int state_fd, char *err, size_t errlen)
{
    struct hv_snapshot_meta meta;
    uint8_t *payload;
    size_t len;
    struct snap_r r;
    int rc = hv__snap_load(state_fd, &payload, &len, &meta, &r, err, errlen);

    if (rc)
        return rc;
    rc = restore_payload(vm, &meta, &r, err, errlen);
    free(payload);
    return rc;
}

int hv_vm_load_state(struct hv_vm *vm, const uint8_t *state, size_t len, char *err, size_t errlen)
{
    struct hv_snapshot_meta meta;
    struct snap_r r;
    int rc = hv__snap_open(state, len, &meta, &r, err, errlen);

    return rc ? rc : restore_payload(vm, &meta, &r, err, errlen);
}

/* ---- live migration, source side ---- */

int hv_vm_freeze(struct hv_vm *vm, bool *was_paused)
{
    int rc;

    pthread_mutex_lock(&vm->ctl_lock);
    *was_paused = vm->pause_requested;
    rc = vm->stop_reason != HV_STOP_NONE || !vm->threads_running ? -ESRCH : 0;
    pthread_mutex_unlock(&vm->ctl_lock);
    if (rc)
        return rc;
    hv_vm_pause(vm);
    hv__devices_park(vm);
    return 0;
}

void hv_vm_thaw(struct hv_vm *vm, bool paused)
{
    hv__devices_unpark(vm);
    if (!paused)
        hv_vm_resume(vm);
}

int hv_vm_save_state(struct hv_vm *vm, uint8_t **state, size_t *len, char *err, size_t errlen)
{
    struct snap_w w;
    int rc;

    snap_w_init(&w);
    rc = take_state(vm, &w, err, errlen);
    if (!rc && (rc = hv__snap_file_build(&w, state, len)))
        hv__fail(err, errlen, rc, "out of memory for the state");
    snap_w_free(&w);
    return rc;
}

void *hv_vm_memory(struct hv_vm *vm, uint64_t *size)
{
    *size = vm->mem.size;
    return vm->mem.host;
}

/* The RAM slots with or without KVM's dirty logging (slot 0 low RAM, slot 1 above 4 GiB). */
static int set_dirty_logging(struct hv_vm *vm, bool on)
{
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        .guest_phys_addr = 0,
        .memory_size = vm->mem.low_size,
        .userspace_addr = (uintptr_t)vm->mem.host,
    };

    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return -errno;
    if (vm->mem.size > vm->mem.low_size) {
        region.slot = 1;
        region.guest_phys_addr = HV_HIGH_MEM_START;
        region.memory_size = vm->mem.size - vm->mem.low_size;
        region.userspace_addr = (uintptr_t)(vm->mem.host + vm->mem.low_size);
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
            return -errno;
    }
    return 0;
}

int hv_vm_dirty_log_start(struct hv_vm *vm)
{
    size_t words = HV_DIRTY_BITMAP_WORDS(vm->mem.size);
    uint64_t *devices = calloc(words, sizeof(uint64_t));
    int rc;

    if (!devices)
        return -ENOMEM;
    if ((rc = set_dirty_logging(vm, true))) {
        free(devices);
        return rc;
    }
    __atomic_store_n(&vm->mem.dirty, devices, __ATOMIC_RELEASE);
    return 0;
}

int hv_vm_dirty_log_fetch(struct hv_vm *vm, uint64_t *bitmap)
{
    uint64_t low_pages = vm->mem.low_size / HV_PAGE_SIZE;
    size_t words = HV_DIRTY_BITMAP_WORDS(vm->mem.size);
    struct kvm_dirty_log log = {.slot = 0, .dirty_bitmap = bitmap};

    /* KVM's bits for the low slot land at the start, the high slot's after them: the low
     * part is a whole number of MiB, so it ends on a 64-page word. */
    memset(bitmap, 0, words * sizeof(uint64_t));
    if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
        return -errno;
    if (vm->mem.size > vm->mem.low_size) {
        log.slot = 1;
        log.dirty_bitmap = bitmap + low_pages / 64;
        if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
            return -errno;
    }
    hv_dirty_bitmap_merge(bitmap, vm->mem.dirty, words);
    return 0;
}

void hv_vm_dirty_log_stop(struct hv_vm *vm)
{
    uint64_t *devices = __atomic_exchange_n(&vm->mem.dirty, NULL, __ATOMIC_ACQ_REL);

    set_dirty_logging(vm, false);
    /* Device threads may still hold the old pointer for an instant: they are parked or the
     * VM is going away when this is called (see hv.h). */
    free(devices);
}

void hv_dirty_bitmap_merge(uint64_t *into, const uint64_t *from, size_t words)
{
    for (size_t i = 0; from && i < words; i++)
        into[i] |= __atomic_load_n(&from[i], __ATOMIC_RELAXED);
}

uint64_t hv_dirty_bitmap_count(const uint64_t *bitmap, size_t words)
{
    uint64_t n = 0;
    for (size_t i = 0; i < words; i++)
        n += (uint64_t)__builtin_popcountll(bitmap[i]);
    return n;
}
