/*
 * The services a VM's devices get from the machine (struct hv_platform),
 * backed by KVM: interrupt lines, stop requests, MSI routes, irqfds and
 * ioeventfds. KVM_SET_GSI_ROUTING replaces the whole table, so the table
 * starts as a copy of KVM's default irqchip routing (every GSI 0-15 on both
 * the PIC and the IOAPIC, 16-23 on the IOAPIC) and MSI routes are added to it.
 */
#include "vm_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define IOAPIC_PINS 24
#define PIC_IRQS 16
#define FIRST_MSI_GSI IOAPIC_PINS
#define MAX_ROUTES 1024

static void platform_set_irq(void *opaque, unsigned irq, int level)
{
    struct hv_vm *vm = opaque;
    struct kvm_irq_level line = {.irq = irq, .level = (uint32_t)level};
    unsigned *holders;

    if (irq < PIC_IRQS || irq >= IOAPIC_PINS) {
        ioctl(vm->vm_fd, KVM_IRQ_LINE, &line);
        return;
    }
    /* A shared PCI line: KVM keeps one level per line for userspace, so OR here. */
    pthread_mutex_lock(&vm->routes_lock);
    holders = &vm->intx_holders[irq - PIC_IRQS];
    if (level ? (*holders)++ == 0 : (*holders > 0 && --*holders == 0))
        ioctl(vm->vm_fd, KVM_IRQ_LINE, &line);
    pthread_mutex_unlock(&vm->routes_lock);
}

static void platform_request_stop(void *opaque, enum hv_stop_reason reason, int code)
{
    const char *detail = reason == HV_STOP_REBOOT ? "guest reset the machine"
                         : code ? "guest wrote a non-zero status to the debug-exit port"
                                : "guest powered off";

    hv__vm_stop(opaque, reason, code, detail);
}

static struct kvm_irq_routing_entry *add_route(struct hv_vm *vm)
{
    struct kvm_irq_routing_entry *e;

    if (!vm->routes) {
        vm->routes = calloc(1, sizeof(*vm->routes) + MAX_ROUTES * sizeof(vm->routes->entries[0]));
        if (!vm->routes)
            return NULL;
    }
    if (vm->routes->nr == MAX_ROUTES)
        return NULL;
    e = &vm->routes->entries[vm->routes->nr++];
    memset(e, 0, sizeof(*e));
    return e;
}

/* KVM's default table (virt/kvm/irqchip.c, arch/x86/kvm/irq_comm.c), which setting any route replaces. */
static int add_default_routes(struct hv_vm *vm)
{
    for (unsigned gsi = 0; gsi < IOAPIC_PINS; gsi++) {
        struct kvm_irq_routing_entry *e = add_route(vm);
        if (!e)
            return -ENOMEM;
        e->gsi = gsi;
        e->type = KVM_IRQ_ROUTING_IRQCHIP;
        e->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
        e->u.irqchip.pin = gsi;
        if (gsi >= PIC_IRQS)
            continue;
        if (!(e = add_route(vm)))
            return -ENOMEM;
        e->gsi = gsi;
        e->type = KVM_IRQ_ROUTING_IRQCHIP;
        e->u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
        e->u.irqchip.pin = gsi % 8;
    }
    return 0;
}

static int platform_msi_route_alloc(void *opaque)
{
    struct hv_vm *vm = opaque;
    struct kvm_irq_routing_entry *e;
    int gsi = -ENOSPC;

    pthread_mutex_lock(&vm->routes_lock);
    if ((vm->routes || add_default_routes(vm) == 0) && (e = add_route(vm))) {
        /* A route to nowhere until the guest programs the vector: address 0 is never used. */
        e->gsi = vm->next_msi_gsi++;
        e->type = KVM_IRQ_ROUTING_MSI;
        gsi = (int)e->gsi;
    }
    pthread_mutex_unlock(&vm->routes_lock);
    return gsi;
}

static int platform_msi_route_set(void *opaque, unsigned gsi, uint64_t addr, uint32_t data)
{
    struct hv_vm *vm = opaque;
    int rc = -ENOENT;

    pthread_mutex_lock(&vm->routes_lock);
    for (unsigned i = 0; vm->routes && i < vm->routes->nr; i++) {
        struct kvm_irq_routing_entry *e = &vm->routes->entries[i];
        if (e->gsi != gsi || e->type != KVM_IRQ_ROUTING_MSI)
            continue;
        e->u.msi.address_lo = (uint32_t)addr;
        e->u.msi.address_hi = (uint32_t)(addr >> 32);
        e->u.msi.data = data;
        rc = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, vm->routes) < 0 ? -errno : 0;
        break;
    }
    pthread_mutex_unlock(&vm->routes_lock);
    return rc;
}

static int platform_irqfd(void *opaque, int fd, unsigned gsi, bool assign)
{
    struct hv_vm *vm = opaque;
    struct kvm_irqfd irqfd = {.fd = (uint32_t)fd, .gsi = gsi,
                              .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN};

    return ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

static int platform_ioeventfd(void *opaque, int fd, enum hv_bus_space space, uint64_t addr,
                              unsigned len, bool assign)
{
    struct hv_vm *vm = opaque;
    struct kvm_ioeventfd ioev = {.addr = addr, .len = len, .fd = fd};

    if (space == HV_BUS_PIO)
        ioev.flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (!assign)
        ioev.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
    return ioctl(vm->vm_fd, KVM_IOEVENTFD, &ioev) < 0 ? -errno : 0;
}

static void platform_thread_start(void *opaque, enum hv_thread_kind kind)
{
    struct hv_vm *vm = opaque;

    if (vm->thread_start)
        vm->thread_start(vm->thread_opaque, kind);
}

void hv__platform_init(struct hv_vm *vm)
{
    pthread_mutex_init(&vm->routes_lock, NULL);
    vm->next_msi_gsi = FIRST_MSI_GSI;
    vm->platform = (struct hv_platform){
        .set_irq = platform_set_irq,
        .request_stop = platform_request_stop,
        .msi_route_alloc = platform_msi_route_alloc,
        .msi_route_set = platform_msi_route_set,
        .irqfd = platform_irqfd,
        .ioeventfd = platform_ioeventfd,
        .mem = &vm->mem,
        .thread_start = platform_thread_start,
        .opaque = vm,
    };
}

void hv__platform_destroy(struct hv_vm *vm)
{
    free(vm->routes);
    vm->routes = NULL;
    pthread_mutex_destroy(&vm->routes_lock);
}
