/*
 * Exit dispatch. Port and MMIO accesses go to the bus; nothing the guest
 * does here can crash the VMM: unclaimed reads return all ones, unclaimed
 * writes are counted and dropped, and a kvm_run whose I/O data would lie
 * outside the mapped area (it never should) stops the VM instead of being
 * trusted. A triple fault arrives as SHUTDOWN, or on PVM hosts as
 * INTERNAL_ERROR from the instruction emulator: both mean the guest died.
 */
#include "exit_dispatch.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static void stop(struct hv_exit_result *r,
                                                        enum hv_stop_reason reason,
                                                        const char *fmt, ...)
{
    va_list ap;

    r->stop = reason;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
    va_end(ap);
}

static void dispatch_io(struct kvm_run *run, size_t run_size, struct hv_bus *bus,
                        struct hv_exit_counters *c, struct hv_exit_result *r)
{
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
    uint64_t bytes = (uint64_t)run->io.size * run->io.count;

    c->exits[HV_EXIT_IO]++;
    if (run->io.data_offset > run_size || bytes > run_size - run->io.data_offset) {
        stop(r, HV_STOP_ERROR, "I/O exit data outside kvm_run (offset %llu, %llu bytes)",
             (unsigned long long)run->io.data_offset, (unsigned long long)bytes);
        return;
    }
    for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
        if (!hv_bus_access(bus, HV_BUS_PIO, run->io.port, data, run->io.size, is_write)) {
            c->exits[HV_EXIT_IO_UNHANDLED]++;
            if (is_write)
                c->writes_ignored++;
        }
    }
}

static void dispatch_mmio(struct kvm_run *run, struct hv_bus *bus, struct hv_exit_counters *c)
{
    unsigned len = run->mmio.len <= sizeof(run->mmio.data) ? run->mmio.len : sizeof(run->mmio.data);

    c->exits[HV_EXIT_MMIO]++;
    if (!hv_bus_access(bus, HV_BUS_MMIO, run->mmio.phys_addr, run->mmio.data, len,
                       run->mmio.is_write)) {
        c->exits[HV_EXIT_MMIO_UNHANDLED]++;
        if (run->mmio.is_write)
            c->writes_ignored++;
    }
}

static void dispatch_system_event(struct kvm_run *run, struct hv_exit_counters *c,
                                  struct hv_exit_result *r)
{
    c->exits[HV_EXIT_SYSTEM_EVENT]++;
    switch (run->system_event.type) {
    case KVM_SYSTEM_EVENT_SHUTDOWN:
        stop(r, HV_STOP_POWEROFF, "guest powered off");
        break;
    case KVM_SYSTEM_EVENT_RESET:
        stop(r, HV_STOP_REBOOT, "guest reset");
        break;
    default:
        stop(r, HV_STOP_CRASH, "guest system event %u", run->system_event.type);
        break;
    }
}

void hv_exit_dispatch(struct kvm_run *run, size_t run_size, struct hv_bus *bus,
                      struct hv_exit_counters *c, struct hv_exit_result *r)
{
    r->stop = HV_STOP_NONE;
    r->detail[0] = '\0';
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        dispatch_io(run, run_size, bus, c, r);
        break;
    case KVM_EXIT_MMIO:
        dispatch_mmio(run, bus, c);
        break;
    case KVM_EXIT_HLT:
        c->exits[HV_EXIT_HLT]++;
        break;
    case KVM_EXIT_INTR:
        c->exits[HV_EXIT_INTR]++;
        break;
    case KVM_EXIT_SHUTDOWN:
        c->exits[HV_EXIT_SHUTDOWN]++;
        stop(r, HV_STOP_CRASH, "guest triple fault (shutdown)");
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        c->exits[HV_EXIT_INTERNAL_ERROR]++;
        stop(r, HV_STOP_CRASH, "guest crashed (triple fault or emulation failure): KVM internal error, suberror %u",
             run->internal.suberror);
        break;
    case KVM_EXIT_FAIL_ENTRY:
        c->exits[HV_EXIT_OTHER]++;
        stop(r, HV_STOP_CRASH, "guest crashed: VM entry failed, hardware reason %#llx",
             (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        break;
    case KVM_EXIT_SYSTEM_EVENT:
        dispatch_system_event(run, c, r);
        break;
    default:
        c->exits[HV_EXIT_OTHER]++;
        stop(r, HV_STOP_ERROR, "unexpected KVM exit reason %u", run->exit_reason);
        break;
    }
}
