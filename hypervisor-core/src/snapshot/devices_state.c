/*
 * The devices' part of a snapshot: every device of the VM saves one section
 * (composite ones nest theirs), always in this order, so a restore into a
 * VM built from the same configuration finds each where it expects it.
 * Legacy devices run under the bus lock; the others lock themselves.
 */
#include "snapshot/devices_state.h"

#include "vm_internal.h"

void hv__devices_park(struct hv_vm *vm)
{
    if (vm->vcon)
        virtio_pci_park(virtio_console_transport(vm->vcon));
    if (vm->vrng)
        virtio_pci_park(virtio_rng_transport(vm->vrng));
    for (unsigned i = 0; i < vm->nr_nics; i++) {
        if (vm->vnet[i])
            virtio_pci_park(virtio_net_transport(vm->vnet[i]));
        if (vm->e1000[i])
            e1000_park(vm->e1000[i]);
    }
    for (unsigned i = 0; i < vm->nr_disks; i++)
        if (vm->vblk[i])
            virtio_pci_park(virtio_blk_transport(vm->vblk[i]));
    if (vm->ide)
        piix_ide_park(vm->ide);
}

void hv__devices_unpark(struct hv_vm *vm)
{
    if (vm->ide)
        piix_ide_unpark(vm->ide);
    for (unsigned i = 0; i < vm->nr_disks; i++)
        if (vm->vblk[i])
            virtio_pci_unpark(virtio_blk_transport(vm->vblk[i]));
    for (unsigned i = 0; i < vm->nr_nics; i++) {
        if (vm->vnet[i])
            virtio_pci_unpark(virtio_net_transport(vm->vnet[i]));
        if (vm->e1000[i])
            e1000_unpark(vm->e1000[i]);
    }
    if (vm->vrng)
        virtio_pci_unpark(virtio_rng_transport(vm->vrng));
    if (vm->vcon)
        virtio_pci_unpark(virtio_console_transport(vm->vcon));
}

void hv__devices_save(struct hv_vm *vm, struct snap_w *w)
{
    pthread_mutex_lock(&vm->bus.lock);
    uart8250_save(&vm->uart, w);
    i8042_save(&vm->i8042, w);
    cmos_rtc_save(&vm->rtc, w);
    acpi_pm_save(&vm->acpi_pm, w);
    pci_host_save(&vm->pci, w);
    if (vm->boot.firmware)
        fw_cfg_save(&vm->fw_cfg, w);
    if (vm->ide)
        piix_ide_save(vm->ide, w);
    pthread_mutex_unlock(&vm->bus.lock);
    if (vm->vcon)
        virtio_pci_save(virtio_console_transport(vm->vcon), w);
    if (vm->vrng)
        virtio_pci_save(virtio_rng_transport(vm->vrng), w);
    for (unsigned i = 0; i < vm->nr_nics; i++) {
        if (vm->vnet[i])
            virtio_pci_save(virtio_net_transport(vm->vnet[i]), w);
        if (vm->e1000[i])
            e1000_save(vm->e1000[i], w);
    }
    for (unsigned i = 0; i < vm->nr_disks; i++)
        if (vm->vblk[i])
            virtio_pci_save(virtio_blk_transport(vm->vblk[i]), w);
}

int hv__devices_load(struct hv_vm *vm, struct snap_r *r)
{
    pthread_mutex_lock(&vm->bus.lock);
    if (!uart8250_load(&vm->uart, r) && !i8042_load(&vm->i8042, r) &&
        !cmos_rtc_load(&vm->rtc, r) && !acpi_pm_load(&vm->acpi_pm, r) &&
        !pci_host_load(&vm->pci, r) && (!vm->boot.firmware || !fw_cfg_load(&vm->fw_cfg, r)) &&
        vm->ide)
        piix_ide_load(vm->ide, r);
    pthread_mutex_unlock(&vm->bus.lock);
    if (r->err)
        return r->err;
    if (vm->vcon && virtio_pci_load(virtio_console_transport(vm->vcon), r))
        return r->err;
    if (vm->vrng && virtio_pci_load(virtio_rng_transport(vm->vrng), r))
        return r->err;
    for (unsigned i = 0; i < vm->nr_nics; i++) {
        if (vm->vnet[i] && virtio_pci_load(virtio_net_transport(vm->vnet[i]), r))
            return r->err;
        if (vm->e1000[i] && e1000_load(vm->e1000[i], r))
            return r->err;
    }
    for (unsigned i = 0; i < vm->nr_disks; i++)
        if (vm->vblk[i] && virtio_pci_load(virtio_blk_transport(vm->vblk[i]), r))
            return r->err;
    return 0;
}
