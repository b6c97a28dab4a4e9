/* The VM object shared by vm.c (setup, control) and vcpu.c (the run loops). */
#ifndef HV_VM_INTERNAL_H
#define HV_VM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <linux/kvm.h>

#include "hv/hv.h"
#include "bus.h"
#include "exit_dispatch.h"
#include "guest_mem.h"
#include "arch/x86/boot.h"
#include "arch/x86/firmware.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/debug_ports.h"
#include "devices/legacy/fw_cfg.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/pci_host.h"
#include "devices/legacy/uart8250.h"
#include "devices/block/block_image.h"
#include "devices/legacy/piix_ide.h"
#include "devices/net/e1000.h"
#include "devices/pci/pci_bus.h"
#include "devices/rate_limiter.h"
#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_console.h"
#include "devices/virtio/virtio_net.h"
#include "devices/virtio/virtio_rng.h"

struct hv_vcpu {
    struct hv_vm *vm;
    unsigned index;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool thread_started;
    struct hv_exit_counters counters; /* written by this vCPU's thread only */
};

struct hv_vm {
    enum hv_mode mode;
    unsigned nr_vcpus;
    int kvm_fd, vm_fd;
    size_t run_size;
    struct hv_guest_mem mem;
    struct hv_x86_boot boot;
    struct hv_x86_firmware firmware; /* firmware boot: the image mapped below 4 GiB */

    struct hv_bus bus;
    struct hv_platform platform;
    void (*thread_start)(void *opaque, enum hv_thread_kind kind);
    void *thread_opaque;
    struct uart8250 uart;
    struct i8042 i8042;
    struct cmos_rtc rtc;
    struct pci_bus pci_bus;
    struct pci_host pci;
    struct acpi_pm acpi_pm;
    struct debug_exit debug_exit;
    struct post_code post_code;
    struct fw_cfg fw_cfg; /* firmware boot only */

    struct block_image disks[HV_MAX_DISKS];
    unsigned nr_disks;
    /* I/O limits, for the life of the VM; a NIC's are tx then rx. */
    struct rate_limiter disk_limits[HV_MAX_DISKS];
    struct rate_limiter nic_limits[HV_MAX_NICS][2];
    unsigned nr_nics;
    struct piix_ide *ide; /* full mode, when there are disks */
    struct e1000 *e1000[HV_MAX_NICS]; /* full mode's NICs */
    /* pv mode */
    struct virtio_blk *vblk[HV_MAX_DISKS];
    struct virtio_net *vnet[HV_MAX_NICS];
    struct virtio_console *vcon;
    struct virtio_rng *vrng;

    struct hv_vcpu vcpus[HV_MAX_VCPUS];

    /* GSI routing: KVM's default irqchip routes plus one MSI route per MSI-X vector. */
    pthread_mutex_t routes_lock;
    struct kvm_irq_routing *routes;
    unsigned next_msi_gsi;
    unsigned intx_holders[8]; /* devices holding each shared INTx line (GSI 16-23), routes_lock */

    /* Run control, under ctl_lock. */
    pthread_mutex_t ctl_lock;
    pthread_cond_t ctl_cond;
    bool pause_requested;
    unsigned parked;          /* vCPUs waiting while paused */
    unsigned threads_running;
    enum hv_stop_reason stop_reason;
    char stop_detail[160];
    int exit_code;
    int stopped_fd; /* eventfd, readable once every vCPU thread has ended */
    uint64_t start_ns;
    uint64_t first_exit_ns; /* set once, by whichever vCPU exits first */
};

/* Records why the VM stops (the first reason wins) and kicks every vCPU out of KVM_RUN. */
void hv__vm_stop(struct hv_vm *vm, enum hv_stop_reason reason, int code, const char *detail);
/* Makes every vCPU leave KVM_RUN soon and look at the run-control flags. */
void hv__vm_kick_all(struct hv_vm *vm);
void *hv__vcpu_thread(void *arg);
/* Fills vm->platform with the KVM-backed services devices use (platform.c). */
void hv__platform_init(struct hv_vm *vm);
void hv__platform_destroy(struct hv_vm *vm);
int hv__kick_signal(void);
uint64_t hv__now_ns(void);

#endif
