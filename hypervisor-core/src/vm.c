/*
 * VM setup and control: the KVM objects, guest RAM, the devices in their
 * explicit per-VM order, the loaded kernel, then one vCPU thread each.
 * Setup acquires in order and unwinds through err_* labels in reverse.
 */
#include "vm_internal.h"
#include "fail.h"
#include "snapshot/vm_snapshot.h"
#include "arch/x86/cpu.h"
#include "arch/x86/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define KVM_API_VERSION_EXPECTED 12

uint64_t hv__now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void kick_handler(int sig)
{
    (void)sig; /* only here so that the signal interrupts KVM_RUN */
}

static void install_kick_handler(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(hv__kick_signal(), &sa, NULL);
}

static int open_kvm(struct hv_vm *vm, const struct hv_vm_config *cfg, char *err, size_t errlen)
{
    int version;

    vm->kvm_fd = cfg->kvm_has_fd ? fcntl(cfg->kvm_fd, F_DUPFD_CLOEXEC, 3)
                                 : open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0)
        return hv__fail(err, errlen, -errno, "cannot open /dev/kvm: %s", strerror(errno));
    version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION_EXPECTED)
        return hv__fail(err, errlen, -ENOTSUP, "/dev/kvm speaks API version %d, need %d", version,
                    KVM_API_VERSION_EXPECTED);
    static const struct {
        int cap;
        const char *name;
    } required[] = {
        {KVM_CAP_IRQCHIP, "IRQCHIP"},
        {KVM_CAP_PIT2, "PIT2"},
        {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"},
        {KVM_CAP_EXT_CPUID, "EXT_CPUID"},
    };
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, required[i].cap) <= 0)
            return hv__fail(err, errlen, -ENOTSUP, "KVM lacks the %s capability", required[i].name);
    vm->run_size = (size_t)ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if ((long)vm->run_size <= 0)
        return hv__fail(err, errlen, -EIO, "KVM_GET_VCPU_MMAP_SIZE failed");
    return 0;
}

static int create_machine(struct hv_vm *vm, char *err, size_t errlen)
{
    struct kvm_pit_config pit = {.flags = 0};
    struct kvm_userspace_memory_region region;
    uint64_t identity = X86_IDENTITY_MAP_ADDR;

    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0)
        return hv__fail(err, errlen, -errno, "KVM_CREATE_VM: %s", strerror(errno));
    /* Only VMX uses these (real-mode emulation); harmless elsewhere. */
    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity);
    ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, X86_TSS_ADDR);

    memset(&region, 0, sizeof(region));
    region.slot = 0;
    region.guest_phys_addr = 0;
    region.memory_size = vm->mem.low_size;
    region.userspace_addr = (uintptr_t)vm->mem.host;
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return hv__fail(err, errlen, -errno, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
    if (vm->mem.size > vm->mem.low_size) {
        region.slot = 1;
        region.guest_phys_addr = HV_HIGH_MEM_START;
        region.memory_size = vm->mem.size - vm->mem.low_size;
        region.userspace_addr = (uintptr_t)(vm->mem.host + vm->mem.low_size);
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
            return hv__fail(err, errlen, -errno, "KVM_SET_USER_MEMORY_REGION (high): %s",
                        strerror(errno));
    }
    if (vm->boot.firmware) {
        /* Read-only, as a flash chip: guest writes exit and are dropped. */
        region.slot = 2;
        region.flags = KVM_MEM_READONLY;
        region.guest_phys_addr = hv_x86_firmware_base(&vm->firmware);
        region.memory_size = vm->firmware.size;
        region.userspace_addr = (uintptr_t)vm->firmware.image;
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
            return hv__fail(err, errlen, -errno, "mapping the firmware read-only: %s", strerror(errno));
    }
    /*
     * The irqchip comes after the memory slots on purpose: once it exists, every
     * slot change waits for an SRCU grace period (measured: 0.15 ms before, 7 ms
     * after, on this host), which would dominate VM start-up.
     */
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return hv__fail(err, errlen, -errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return hv__fail(err, errlen, -errno, "KVM_CREATE_PIT2: %s", strerror(errno));
    return 0;
}

/* The machine's devices, in the order they are brought up. */
static int create_devices(struct hv_vm *vm, const struct hv_vm_config *cfg)
{
    const struct hv_platform *p = &vm->platform;
    struct {
        enum hv_bus_space space;
        uint64_t base, len;
        struct hv_device *dev;
    } map[] = {
        {HV_BUS_PIO, UART8250_COM1_BASE, 8, &vm->uart.dev},
        {HV_BUS_PIO, I8042_BASE, I8042_LEN, &vm->i8042.dev},
        {HV_BUS_PIO, CMOS_RTC_BASE, CMOS_RTC_LEN, &vm->rtc.dev},
        {HV_BUS_PIO, PCI_HOST_BASE, PCI_HOST_LEN, &vm->pci.dev},
        {HV_BUS_PIO, ACPI_PM_BASE, ACPI_PM_LEN, &vm->acpi_pm.dev},
        {HV_BUS_PIO, DEBUG_EXIT_PORT, 1, &vm->debug_exit.dev},
        {HV_BUS_PIO, POST_CODE_PORT, 1, &vm->post_code.dev},
    };
    int rc;

    uart8250_init(&vm->uart, p, UART8250_COM1_IRQ, cfg->console_write, cfg->console_opaque);
    i8042_init(&vm->i8042, p);
    cmos_rtc_init(&vm->rtc, p, vm->mem.size, vm->nr_vcpus);
    pci_bus_init(&vm->pci_bus, p);
    if ((rc = pci_host_init(&vm->pci, p, &vm->pci_bus)))
        return rc;
    acpi_pm_init(&vm->acpi_pm, p);
    debug_exit_init(&vm->debug_exit, p);
    post_code_init(&vm->post_code, p);
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        rc = hv_bus_register(&vm->bus, map[i].space, map[i].base, map[i].len, map[i].dev);
        if (rc)
            return rc;
    }
    return pci_bus_register_windows(&vm->pci_bus, &vm->bus);
}

/* Firmware device paths of the first disk, as SeaBIOS builds them to match "bootorder". */
#define BOOT_PATH_IDE    "/pci@i0cf8/ide@1/drive@0/disk@0"
#define BOOT_PATH_VIRTIO "/pci@i0cf8/scsi@3/disk@0,0" /* SLOT_FIRST_DISK */

/* The firmware's window on the machine: fw_cfg, filled like QEMU fills it. */
static int create_fw_cfg(struct hv_vm *vm)
{
    int rc;

    if ((rc = fw_cfg_init(&vm->fw_cfg, &vm->platform)))
        return rc;
    rc = hv_x86_firmware_describe(&vm->fw_cfg, vm->mem.size, vm->nr_vcpus,
                                  !vm->nr_disks              ? NULL
                                  : vm->mode == HV_MODE_FULL ? BOOT_PATH_IDE
                                                             : BOOT_PATH_VIRTIO);
    if (rc)
        return rc;
    return hv_bus_register(&vm->bus, HV_BUS_PIO, FW_CFG_PORT_SEL, FW_CFG_PORT_LEN, &vm->fw_cfg.dev);
}

static int open_disks(struct hv_vm *vm, const struct hv_vm_config *cfg, char *err, size_t errlen)
{
    for (unsigned i = 0; i < cfg->nr_disks; i++) {
        const struct hv_disk_config *d = &cfg->disks[i];
        int rc = block_image_open(&vm->disks[i], d->path, d->has_fd ? d->fd : -1, d->readonly,
                                  err, errlen);
        if (rc)
            return rc;
        vm->nr_disks = i + 1;
    }
    return 0;
}

/* PCI slots of the pv machine's virtio devices (and of the full machine's NICs). */
#define SLOT_CONSOLE 1
#define SLOT_RNG 2
#define SLOT_FIRST_DISK 3
#define SLOT_FIRST_NIC (SLOT_FIRST_DISK + HV_MAX_DISKS)

static int add_virtio(struct hv_vm *vm, struct virtio_pci *vp, unsigned slot)
{
    int rc = pci_bus_add(&vm->pci_bus, &vp->pdev, slot << 3);

    return rc ? rc : virtio_pci_start(vp);
}

/* The disks and NICs, as the mode's devices: emulated IDE in full mode, virtio in pv. */
static int create_io_devices(struct hv_vm *vm, const struct hv_vm_config *cfg, char *err,
                             size_t errlen)
{
    int rc = 0;

    if (vm->mode == HV_MODE_PV) {
        if ((rc = virtio_console_create(&vm->vcon, &vm->platform, cfg->console_write,
                                        cfg->console_opaque)) ||
            (rc = add_virtio(vm, virtio_console_transport(vm->vcon), SLOT_CONSOLE)) ||
            (rc = virtio_rng_create(&vm->vrng, &vm->platform)) ||
            (rc = add_virtio(vm, virtio_rng_transport(vm->vrng), SLOT_RNG)))
            return hv__fail(err, errlen, rc, "virtio console/rng: %s", strerror(-rc));
    }
    for (unsigned i = 0; i < cfg->nr_nics; i++) {
        if (vm->mode == HV_MODE_FULL) {
            /* An emulated 82540EM per NIC, on the slot virtio-net has in pv mode. */
            if ((rc = e1000_create(&vm->e1000[i], &vm->platform, &cfg->nics[i], err, errlen)))
                return rc;
            e1000_set_limits(vm->e1000[i], &vm->nic_limits[i][0], &vm->nic_limits[i][1]);
            if ((rc = pci_bus_add(&vm->pci_bus, e1000_pci(vm->e1000[i]),
                                  (SLOT_FIRST_NIC + i) << 3)) ||
                (rc = e1000_start(vm->e1000[i])))
                return hv__fail(err, errlen, rc, "e1000 %u: %s", i + 1, strerror(-rc));
            continue;
        }
        if ((rc = virtio_net_create(&vm->vnet[i], &vm->platform, &cfg->nics[i], err, errlen)))
            return rc;
        virtio_net_set_limits(vm->vnet[i], &vm->nic_limits[i][0], &vm->nic_limits[i][1]);
        if ((rc = add_virtio(vm, virtio_net_transport(vm->vnet[i]), SLOT_FIRST_NIC + i)))
            return hv__fail(err, errlen, rc, "virtio-net %u: %s", i + 1, strerror(-rc));
    }

    for (unsigned i = 0; vm->mode == HV_MODE_PV && i < vm->nr_disks; i++) {
        if ((rc = virtio_blk_create(&vm->vblk[i], &vm->platform, &vm->disks[i],
                                    &vm->disk_limits[i])) ||
            (rc = add_virtio(vm, virtio_blk_transport(vm->vblk[i]), SLOT_FIRST_DISK + i)))
            return hv__fail(err, errlen, rc, "virtio-blk for disk %u: %s", i + 1,
                        strerror(-rc));
    }

    if (vm->mode == HV_MODE_FULL && vm->nr_disks) {
        struct block_image *ide_disks[HV_MAX_IDE_DISKS] = {0};
        struct rate_limiter *ide_limits[HV_MAX_IDE_DISKS] = {0};
        for (unsigned i = 0; i < vm->nr_disks; i++) {
            ide_disks[i] = &vm->disks[i];
            ide_limits[i] = &vm->disk_limits[i];
        }
        rc =
            piix_ide_create(&vm->ide, &vm->platform, ide_disks, ide_limits, &vm->bus, &vm->pci_bus);
        if (rc)
            return hv__fail(err, errlen, rc, "IDE controller: %s", strerror(-rc));
    }
    return rc;
}

static int create_vcpus(struct hv_vm *vm, char *err, size_t errlen)
{
    struct kvm_cpuid2 *supported = hv_x86_cpuid_supported(vm->kvm_fd);
    int rc = 0;

    if (!supported)
        return hv__fail(err, errlen, -errno, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct hv_vcpu *vcpu = &vm->vcpus[i];
        struct kvm_cpuid2 *cpuid;

        vcpu->vm = vm;
        vcpu->index = i;
        vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, i);
        if (vcpu->fd < 0) {
            rc = hv__fail(err, errlen, -errno, "KVM_CREATE_VCPU %u: %s", i, strerror(errno));
            break;
        }
        vcpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
        if (vcpu->run == MAP_FAILED) {
            vcpu->run = NULL;
            rc = hv__fail(err, errlen, -errno, "mmap of vCPU %u: %s", i, strerror(errno));
            break;
        }
        cpuid = hv_x86_cpuid_for_vcpu(supported, vm->mode, i);
        if (!cpuid) {
            rc = hv__fail(err, errlen, -ENOMEM, "out of memory");
            break;
        }
        rc = hv_x86_vcpu_setup(vcpu->fd, cpuid, i == 0, &vm->boot);
        free(cpuid);
        if (rc) {
            hv__fail(err, errlen, rc, "setting up vCPU %u: %s", i, strerror(-rc));
            break;
        }
    }
    free(supported);
    return rc;
}

static int check_config(const struct hv_vm_config *cfg, char *err, size_t errlen)
{
    if (cfg->vcpus < 1 || cfg->vcpus > HV_MAX_VCPUS)
        return hv__fail(err, errlen, -EINVAL, "vcpus must be between 1 and %d, not %u", HV_MAX_VCPUS,
                    cfg->vcpus);
    if (cfg->memory_mib < HV_MIN_MEMORY_MIB || cfg->memory_mib > HV_MAX_MEMORY_MIB)
        return hv__fail(err, errlen, -EINVAL, "memory must be between %d and %d MiB, not %llu",
                    HV_MIN_MEMORY_MIB, HV_MAX_MEMORY_MIB, (unsigned long long)cfg->memory_mib);
    if (cfg->mode != HV_MODE_FULL && cfg->mode != HV_MODE_PV)
        return hv__fail(err, errlen, -EINVAL, "unknown mode %d", (int)cfg->mode);
    if (cfg->nr_disks > (cfg->mode == HV_MODE_FULL ? HV_MAX_IDE_DISKS : HV_MAX_DISKS))
        return hv__fail(err, errlen, -EINVAL, "at most %d disks in %s mode, not %u",
                    cfg->mode == HV_MODE_FULL ? HV_MAX_IDE_DISKS : HV_MAX_DISKS,
                    hv_mode_name(cfg->mode), cfg->nr_disks);
    if (cfg->nr_nics > HV_MAX_NICS)
        return hv__fail(err, errlen, -EINVAL, "at most %d NICs, not %u", HV_MAX_NICS, cfg->nr_nics);
    for (unsigned i = 0; i < cfg->nr_disks; i++)
        if (!hv_io_limits_valid(&cfg->disks[i].limits))
            return hv__fail(err, errlen, -EINVAL, "disk %u: I/O limits out of bounds", i + 1);
    for (unsigned i = 0; i < cfg->nr_nics; i++)
        if (!hv_io_limits_valid(&cfg->nics[i].limits))
            return hv__fail(err, errlen, -EINVAL, "NIC %u: I/O limits out of bounds", i + 1);
    if (!cfg->kernel && !cfg->firmware)
        return hv__fail(err, errlen, -EINVAL, "no kernel or firmware given");
    if (cfg->kernel && cfg->firmware)
        return hv__fail(err, errlen, -EINVAL, "a kernel or a firmware, not both");
    return 0;
}

int hv_vm_create(const struct hv_vm_config *cfg, struct hv_vm **out, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct hv_vm *vm;
    int rc;

    if ((rc = check_config(cfg, err, errlen)))
        return rc;
    pthread_once(&once, install_kick_handler);
    vm = calloc(1, sizeof(*vm));
    if (!vm)
        return hv__fail(err, errlen, -ENOMEM, "out of memory");
    vm->mode = cfg->mode;
    vm->nr_vcpus = cfg->vcpus;
    vm->thread_start = cfg->thread_start;
    vm->thread_opaque = cfg->thread_opaque;
    vm->kvm_fd = vm->vm_fd = vm->stopped_fd = -1;
    for (unsigned i = 0; i < HV_MAX_VCPUS; i++)
        vm->vcpus[i].fd = -1;
    for (unsigned i = 0; i < HV_MAX_DISKS; i++) {
        vm->disks[i].fd = -1;
        rate_limiter_init(&vm->disk_limits[i], i < cfg->nr_disks ? &cfg->disks[i].limits : NULL,
                          rate_limiter_now_ns());
    }
    for (unsigned i = 0; i < HV_MAX_NICS; i++)
        for (unsigned dir = 0; dir < 2; dir++)
            rate_limiter_init(&vm->nic_limits[i][dir],
                              i < cfg->nr_nics ? &cfg->nics[i].limits : NULL,
                              rate_limiter_now_ns());
    vm->nr_nics = cfg->nr_nics;
    hv__platform_init(vm);
    pthread_mutex_init(&vm->ctl_lock, NULL);
    pthread_cond_init(&vm->ctl_cond, NULL);
    if ((rc = hv_bus_init(&vm->bus)))
        goto err_vm;

    vm->stopped_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->stopped_fd < 0) {
        rc = hv__fail(err, errlen, -errno, "eventfd: %s", strerror(errno));
        goto err_vm;
    }
    if ((rc = open_disks(vm, cfg, err, errlen)))
        goto err_vm;
    if (cfg->restore_has_fd) {
        struct hv_snapshot_meta meta;
        if ((rc = hv_snapshot_inspect(cfg->restore_state_fd, &meta, err, errlen)))
            goto err_vm;
        if (meta.memory_mib != cfg->memory_mib) {
            rc = hv__fail(err, errlen, -EINVAL, "the snapshot has %llu MiB of memory, the VM %llu",
                      (unsigned long long)meta.memory_mib, (unsigned long long)cfg->memory_mib);
            goto err_vm;
        }
        if ((rc = hv__snapshot_map_memory(vm, cfg->restore_mem_fd, cfg->memory_mib << 20, err,
                                          errlen)))
            goto err_vm;
    } else if ((rc = hv_guest_mem_init(&vm->mem, cfg->memory_mib << 20))) {
        hv__fail(err, errlen, rc, "cannot map %llu MiB of guest memory: %s",
             (unsigned long long)cfg->memory_mib, strerror(-rc));
        goto err_vm;
    }
    if (cfg->firmware) {
        rc = hv_x86_firmware_load(cfg->firmware, cfg->firmware_has_fd ? cfg->firmware_fd : -1,
                                  &vm->firmware, err, errlen);
        if (rc)
            goto err_vm;
        vm->boot.firmware = true;
        /* A restored VM's RAM already holds the firmware's low copy, and whatever it became. */
        if (!cfg->restore_has_fd && !cfg->incoming &&
            (rc = hv_x86_firmware_copy_low(&vm->mem, &vm->firmware))) {
            hv__fail(err, errlen, rc, "too little memory for the firmware");
            goto err_vm;
        }
    } else if (!cfg->restore_has_fd && !cfg->incoming) {
        rc = hv_x86_load_kernel(&vm->mem, cfg->kernel, cfg->kernel_has_fd ? cfg->kernel_fd : -1,
                                cfg->initrd, cfg->initrd_has_fd ? cfg->initrd_fd : -1, cfg->cmdline,
                                &vm->boot, err, errlen);
        if (rc)
            goto err_vm;
        if ((rc = hv_x86_acpi_build(&vm->mem, vm->nr_vcpus)) ||
            (rc = hv_x86_write_boot_tables(&vm->mem))) {
            hv__fail(err, errlen, rc, "too little memory for the boot tables");
            goto err_vm;
        }
    }
    if ((rc = open_kvm(vm, cfg, err, errlen)) || (rc = create_machine(vm, err, errlen)))
        goto err_vm;
    if ((rc = create_devices(vm, cfg)) || (vm->boot.firmware && (rc = create_fw_cfg(vm)))) {
        hv__fail(err, errlen, rc, "device setup: %s", strerror(-rc));
        goto err_vm;
    }
    if ((rc = create_io_devices(vm, cfg, err, errlen)))
        goto err_vm;
    if ((rc = create_vcpus(vm, err, errlen)))
        goto err_vm;
    if (cfg->restore_has_fd && (rc = hv__snapshot_restore(vm, cfg->restore_state_fd, err, errlen)))
        goto err_vm;
    *out = vm;
    return 0;

err_vm:
    hv_vm_destroy(vm);
    return rc;
}

int hv_vm_start(struct hv_vm *vm)
{
    sigset_t kick, old;
    int rc = 0;

    /* vCPU threads start with the kick signal blocked and unblock it themselves. */
    sigemptyset(&kick);
    sigaddset(&kick, hv__kick_signal());
    pthread_sigmask(SIG_BLOCK, &kick, &old);
    vm->start_ns = hv__now_ns();
    pthread_mutex_lock(&vm->ctl_lock);
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        rc = -pthread_create(&vm->vcpus[i].thread, NULL, hv__vcpu_thread, &vm->vcpus[i]);
        if (rc) {
            vm->stop_reason = HV_STOP_ERROR;
            snprintf(vm->stop_detail, sizeof(vm->stop_detail), "cannot start vCPU thread: %s",
                     strerror(-rc));
            break;
        }
        vm->vcpus[i].thread_started = true;
        vm->threads_running++;
    }
    pthread_mutex_unlock(&vm->ctl_lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        hv__vm_kick_all(vm);
    return rc;
}

void hv__vm_kick_all(struct hv_vm *vm)
{
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct hv_vcpu *vcpu = &vm->vcpus[i];
        if (!vcpu->run)
            continue;
        __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        if (vcpu->thread_started)
            pthread_kill(vcpu->thread, hv__kick_signal());
    }
}

void hv__vm_stop(struct hv_vm *vm, enum hv_stop_reason reason, int code, const char *detail)
{
    pthread_mutex_lock(&vm->ctl_lock);
    if (vm->stop_reason == HV_STOP_NONE) {
        vm->stop_reason = reason;
        vm->exit_code = code;
        snprintf(vm->stop_detail, sizeof(vm->stop_detail), "%s", detail);
    }
    pthread_cond_broadcast(&vm->ctl_cond);
    pthread_mutex_unlock(&vm->ctl_lock);
    hv__vm_kick_all(vm);
}

void hv_vm_request_stop(struct hv_vm *vm)
{
    hv__vm_stop(vm, HV_STOP_REQUESTED, 0, "stopped by the VMM");
}

void hv_vm_request_reboot(struct hv_vm *vm)
{
    hv__vm_stop(vm, HV_STOP_REBOOT, 0, "reboot requested by the VMM");
}

int hv_vm_stopped_fd(const struct hv_vm *vm)
{
    return vm->stopped_fd;
}

enum hv_stop_reason hv_vm_wait(struct hv_vm *vm)
{
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        if (vm->vcpus[i].thread_started) {
            pthread_join(vm->vcpus[i].thread, NULL);
            vm->vcpus[i].thread_started = false;
        }
    }
    return vm->stop_reason;
}

const char *hv_vm_stop_detail(const struct hv_vm *vm)
{
    return vm->stop_detail;
}

int hv_vm_exit_code(const struct hv_vm *vm)
{
    return vm->exit_code;
}

int hv_vm_pause(struct hv_vm *vm)
{
    pthread_mutex_lock(&vm->ctl_lock);
    vm->pause_requested = true;
    pthread_mutex_unlock(&vm->ctl_lock);
    hv__vm_kick_all(vm);
    pthread_mutex_lock(&vm->ctl_lock);
    while (vm->parked < vm->threads_running && vm->stop_reason == HV_STOP_NONE)
        pthread_cond_wait(&vm->ctl_cond, &vm->ctl_lock);
    pthread_mutex_unlock(&vm->ctl_lock);
    return 0;
}

int hv_vm_resume(struct hv_vm *vm)
{
    pthread_mutex_lock(&vm->ctl_lock);
    vm->pause_requested = false;
    pthread_cond_broadcast(&vm->ctl_cond);
    pthread_mutex_unlock(&vm->ctl_lock);
    return 0;
}

size_t hv_vm_console_input(struct hv_vm *vm, const uint8_t *buf, size_t len)
{
    size_t n;

    pthread_mutex_lock(&vm->bus.lock);
    n = uart8250_receive(&vm->uart, buf, len);
    pthread_mutex_unlock(&vm->bus.lock);
    /* The same keys reach hvc0, so a guest may use either console. */
    if (vm->vcon && n)
        virtio_console_receive(vm->vcon, buf, n);
    return n;
}

int hv_vm_send_ctrl_alt_del(struct hv_vm *vm)
{
    pthread_mutex_lock(&vm->bus.lock);
    i8042_ctrl_alt_del(&vm->i8042);
    pthread_mutex_unlock(&vm->bus.lock);
    return 0;
}

void hv_vm_get_stats(struct hv_vm *vm, struct hv_vm_stats *out)
{
    uint64_t now = rate_limiter_now_ns();

    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        const struct hv_exit_counters *c = &vm->vcpus[i].counters;
        for (int k = 0; k < HV_EXIT_KIND_COUNT; k++)
            out->exits[k] += __atomic_load_n(&c->exits[k], __ATOMIC_RELAXED);
        out->io_writes_ignored += __atomic_load_n(&c->writes_ignored, __ATOMIC_RELAXED);
    }
    for (unsigned i = 0; i < vm->nr_disks; i++) {
        struct block_image_stats d;
        block_image_get_stats(&vm->disks[i], &d);
        out->disks[i] = (struct hv_disk_stats){
            .read_bytes = d.read_bytes, .write_bytes = d.write_bytes, .read_ops = d.read_ops,
            .write_ops = d.write_ops, .flush_ops = d.flush_ops, .errors = d.errors};
        rate_limiter_stats(&vm->disk_limits[i], now, &out->disks[i].throttled_ns,
                           &out->disks[i].throttled_events);
    }
    out->nr_disks = vm->nr_disks;
    for (unsigned i = 0; i < HV_MAX_NICS && (vm->vnet[i] || vm->e1000[i]); i++) {
        if (vm->vnet[i])
            virtio_net_get_stats(vm->vnet[i], &out->nics[i]);
        else
            e1000_get_stats(vm->e1000[i], &out->nics[i]);
        for (unsigned dir = 0; dir < 2; dir++) {
            uint64_t ns, events;
            rate_limiter_stats(&vm->nic_limits[i][dir], now, &ns, &events);
            out->nics[i].throttled_ns += ns;
            out->nics[i].throttled_events += events;
        }
        out->nr_nics = i + 1;
    }
    out->memory_bytes = vm->mem.size;
    out->uptime_ns = vm->start_ns ? hv__now_ns() - vm->start_ns : 0;
    out->start_ns = vm->start_ns;
    out->first_exit_ns = __atomic_load_n(&vm->first_exit_ns, __ATOMIC_RELAXED);
}

void hv_vm_destroy(struct hv_vm *vm)
{
    if (!vm)
        return;
    /* Not only when threads_running says so: threads that already ended still need joining. */
    hv_vm_request_stop(vm);
    hv_vm_wait(vm);
    /* Devices first: their I/O threads use the VM's fd until they are joined. */
    piix_ide_destroy(vm->ide);
    for (unsigned i = 0; i < HV_MAX_DISKS; i++)
        virtio_blk_destroy(vm->vblk[i]);
    for (unsigned i = 0; i < HV_MAX_NICS; i++) {
        virtio_net_destroy(vm->vnet[i]);
        e1000_destroy(vm->e1000[i]);
    }
    virtio_console_destroy(vm->vcon);
    virtio_rng_destroy(vm->vrng);
    for (unsigned i = 0; i < HV_MAX_VCPUS; i++) {
        if (vm->vcpus[i].run)
            munmap(vm->vcpus[i].run, vm->run_size);
        if (vm->vcpus[i].fd >= 0)
            close(vm->vcpus[i].fd);
    }
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    if (vm->stopped_fd >= 0)
        close(vm->stopped_fd);
    for (unsigned i = 0; i < HV_MAX_DISKS; i++) {
        block_image_close(&vm->disks[i]);
        rate_limiter_destroy(&vm->disk_limits[i]);
    }
    for (unsigned i = 0; i < HV_MAX_NICS; i++) {
        rate_limiter_destroy(&vm->nic_limits[i][0]);
        rate_limiter_destroy(&vm->nic_limits[i][1]);
    }
    hv_guest_mem_destroy(&vm->mem);
    hv_x86_firmware_free(&vm->firmware);
    fw_cfg_destroy(&vm->fw_cfg);
    hv_bus_destroy(&vm->bus);
    hv__platform_destroy(vm);
    pthread_cond_destroy(&vm->ctl_cond);
    pthread_mutex_destroy(&vm->ctl_lock);
    free(vm);
}

int hv_vm_set_disk_limits(struct hv_vm *vm, unsigned index, const struct hv_io_limits *limits)
{
    if (index >= vm->nr_disks)
        return -ENODEV;
    if (!hv_io_limits_valid(limits))
        return -EINVAL;
    rate_limiter_set(&vm->disk_limits[index], limits, rate_limiter_now_ns());
    if (vm->vblk[index])
        virtio_blk_limits_changed(vm->vblk[index]);
    if (vm->ide)
        piix_ide_limits_changed(vm->ide, index);
    return 0;
}

int hv_vm_set_nic_limits(struct hv_vm *vm, unsigned index, const struct hv_io_limits *limits)
{
    if (index >= vm->nr_nics)
        return -ENODEV;
    if (!hv_io_limits_valid(limits))
        return -EINVAL;
    for (unsigned dir = 0; dir < 2; dir++)
        rate_limiter_set(&vm->nic_limits[index][dir], limits, rate_limiter_now_ns());
    if (vm->vnet[index])
        virtio_net_limits_changed(vm->vnet[index]);
    if (vm->e1000[index])
        e1000_limits_changed(vm->e1000[index]);
    return 0;
}
