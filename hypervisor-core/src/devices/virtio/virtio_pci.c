/*
 * virtio-pci modern transport. BAR0 (16 KiB, memory): common configuration
 * at 0x0000, ISR at 0x1000, device configuration at 0x2000, notifications
 * at 0x3000 (queue q at 0x3000 + 4q). BAR1 (4 KiB, memory): MSI-X table at
 * 0, pending bits at 0x800. Vector 0..n-1 for queues, any for config.
 */
#include "devices/virtio/virtio_pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#define BAR_REGS 0
#define BAR_MSIX 1
#define REGS_SIZE 0x4000
#define COMMON_OFF 0x0000
#define ISR_OFF 0x1000
#define DEVICE_OFF 0x2000
#define DEVICE_LEN 0x1000
#define NOTIFY_OFF 0x3000
#define NOTIFY_MULTIPLIER 4
#define MSIX_BAR_SIZE 0x1000
#define MSIX_PBA_OFF 0x800
#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define ISR_QUEUE 0x1
#define ISR_CONFIG 0x2
#define EPOLL_STOP 0x200u
#define EPOLL_PARK 0x201u
#define VIRTIO_ERRORS_LOGGED 5
#define VIRTIO_SERVE_ROUNDS 4
#define EPOLL_EXTRA 0x100u

static void raise_interrupt(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
    if (msix_enabled(&vp->msix)) {
        msix_notify(&vp->msix, vector);
        return;
    }
    vp->isr |= isr_bit;
    pci_device_set_intx(&vp->pdev, true);
}

/*
 * A guest mistake in a queue: stop the device until the driver resets it
 * (virtio 2.1.2). The first few are logged (the worker's log) so an operator
 * can tell why a disk went away; a guest repeating it cannot flood the log.
 */
static void mark_needs_reset(struct virtio_pci *vp, unsigned q)
{
    if (vp->status & VIRTIO_CONFIG_S_NEEDS_RESET)
        return;
    snprintf(vp->broken_reason, sizeof(vp->broken_reason), "queue %u: %s", q, vp->vqs[q].error);
    if (vp->errors_logged < VIRTIO_ERRORS_LOGGED)
        fprintf(stderr, "vmmd: %s at 00:%02x.0: %s; device needs reset%s\n", vp->ops->name,
                vp->pdev.devfn >> 3, vp->broken_reason,
                ++vp->errors_logged == VIRTIO_ERRORS_LOGGED ? " (further errors not logged)" : "");
    vp->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    vp->config_generation++;
    raise_interrupt(vp, vp->config_vector, ISR_CONFIG);
}

static void reset_device(struct virtio_pci *vp)
{
    vp->status = 0;
    vp->driver_features = 0;
    vp->device_feature_select = vp->driver_feature_select = 0;
    vp->queue_select = 0;
    vp->config_vector = VIRTIO_MSI_NO_VECTOR;
    vp->isr = 0;
    vp->broken_reason[0] = '\0';
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
        virtq_reset(&vp->vqs[q]);
        vp->vqs[q].size = vp->ops->queue_size;
        vp->queue_vector[q] = VIRTIO_MSI_NO_VECTOR;
    }
    vp->generation++;
    vp->inflight = 0;
    vp->reset_pending = false;
    pci_device_set_intx(&vp->pdev, false);
    if (vp->ops->reset)
        vp->ops->reset(vp);
}

static void set_status(struct virtio_pci *vp, uint8_t status)
{
    if (status == 0) {
        /* With requests in flight the reset completes with the last of them. */
        if (vp->inflight)
            vp->reset_pending = true;
        else
            reset_device(vp);
        return;
    }
    if (vp->reset_pending)
        return; /* the driver must wait for the reset to finish (status 0) */
    /* FEATURES_OK only sticks if the driver took a subset of the offer, with VERSION_1. */
    if ((status & VIRTIO_CONFIG_S_FEATURES_OK) && !(vp->status & VIRTIO_CONFIG_S_FEATURES_OK) &&
        ((vp->driver_features & ~vp->offered) ||
         !(vp->driver_features & (1ull << VIRTIO_F_VERSION_1))))
        status &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
    vp->status = (uint8_t)(status | (vp->status & VIRTIO_CONFIG_S_NEEDS_RESET));
}

static void enable_queue(struct virtio_pci *vp, unsigned q)
{
    struct virtq *vq = &vp->vqs[q];

    vq->event_idx = vp->driver_features & (1ull << VIRTIO_RING_F_EVENT_IDX);
    vq->indirect = vp->driver_features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
    if (vq->size > vp->ops->queue_size || virtq_enable(vq, vp->pdev.platform->mem) < 0) {
        if (!vq->error[0])
            snprintf(vq->error, sizeof(vq->error), "queue size %u above the maximum %u",
                     vq->size, vp->ops->queue_size);
        vq->broken = true;
        mark_needs_reset(vp, q);
    }
}

static uint64_t common_read(struct virtio_pci *vp, unsigned off)
{
    unsigned q = vp->queue_select;
    struct virtq *vq = q < vp->ops->num_queues ? &vp->vqs[q] : NULL;

    switch (off) {
    case VIRTIO_PCI_COMMON_DFSELECT: return vp->device_feature_select;
    case VIRTIO_PCI_COMMON_DF:
        return vp->device_feature_select < 2 ? (uint32_t)(vp->offered >> (32 * vp->device_feature_select)) : 0;
    case VIRTIO_PCI_COMMON_GFSELECT: return vp->driver_feature_select;
    case VIRTIO_PCI_COMMON_GF:
        return vp->driver_feature_select < 2
                   ? (uint32_t)(vp->driver_features >> (32 * vp->driver_feature_select))
                   : 0;
    case VIRTIO_PCI_COMMON_MSIX: return vp->config_vector;
    case VIRTIO_PCI_COMMON_NUMQ: return vp->ops->num_queues;
    case VIRTIO_PCI_COMMON_STATUS: return vp->status;
    case VIRTIO_PCI_COMMON_CFGGENERATION: return vp->config_generation;
    case VIRTIO_PCI_COMMON_Q_SELECT: return vp->queue_select;
    case VIRTIO_PCI_COMMON_Q_SIZE: return vq ? vq->size : 0;
    case VIRTIO_PCI_COMMON_Q_MSIX: return vq ? vp->queue_vector[q] : VIRTIO_MSI_NO_VECTOR;
    case VIRTIO_PCI_COMMON_Q_ENABLE: return vq ? vq->enabled : 0;
    case VIRTIO_PCI_COMMON_Q_NOFF: return vq ? q : 0;
    case VIRTIO_PCI_COMMON_Q_DESCLO: return vq ? (uint32_t)vq->desc_gpa : 0;
    case VIRTIO_PCI_COMMON_Q_DESCHI: return vq ? vq->desc_gpa >> 32 : 0;
    case VIRTIO_PCI_COMMON_Q_AVAILLO: return vq ? (uint32_t)vq->avail_gpa : 0;
    case VIRTIO_PCI_COMMON_Q_AVAILHI: return vq ? vq->avail_gpa >> 32 : 0;
    case VIRTIO_PCI_COMMON_Q_USEDLO: return vq ? (uint32_t)vq->used_gpa : 0;
    case VIRTIO_PCI_COMMON_Q_USEDHI: return vq ? vq->used_gpa >> 32 : 0;
    }
    return 0;
}

static void set_half(uint64_t *field, bool high, uint32_t v)
{
    *field = high ? (*field & 0xffffffffull) | (uint64_t)v << 32 : (*field & ~0xffffffffull) | v;
}

static uint16_t valid_vector(const struct virtio_pci *vp, uint32_t v)
{
    return v < vp->msix.nr_vectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
}

static void common_write(struct virtio_pci *vp, unsigned off, uint32_t v)
{
    unsigned q = vp->queue_select;
    struct virtq *vq = q < vp->ops->num_queues ? &vp->vqs[q] : NULL;
    /* Queue layout may only change while the queue is disabled (virtio 4.1.4.3.2). */
    bool layout_ok = vq && !vq->enabled;

    switch (off) {
    case VIRTIO_PCI_COMMON_DFSELECT: vp->device_feature_select = v; break;
    case VIRTIO_PCI_COMMON_GFSELECT: vp->driver_feature_select = v; break;
    case VIRTIO_PCI_COMMON_GF:
        if (vp->driver_feature_select < 2 && !(vp->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
            uint64_t features = vp->driver_features;
            set_half(&features, vp->driver_feature_select == 1, v);
            vp->driver_features = features;
        }
        break;
    case VIRTIO_PCI_COMMON_MSIX: vp->config_vector = valid_vector(vp, v); break;
    case VIRTIO_PCI_COMMON_STATUS: set_status(vp, (uint8_t)v); break;
    case VIRTIO_PCI_COMMON_Q_SELECT: vp->queue_select = (uint16_t)v; break;
    case VIRTIO_PCI_COMMON_Q_SIZE:
        if (layout_ok)
            vq->size = (uint16_t)v;
        break;
    case VIRTIO_PCI_COMMON_Q_MSIX:
        if (vq)
            vp->queue_vector[q] = valid_vector(vp, v);
        break;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        if (layout_ok && v == 1)
            enable_queue(vp, q);
        break;
    case VIRTIO_PCI_COMMON_Q_DESCLO:
    case VIRTIO_PCI_COMMON_Q_DESCHI:
        if (layout_ok)
            set_half(&vq->desc_gpa, off == VIRTIO_PCI_COMMON_Q_DESCHI, v);
        break;
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
    case VIRTIO_PCI_COMMON_Q_AVAILHI:
        if (layout_ok)
            set_half(&vq->avail_gpa, off == VIRTIO_PCI_COMMON_Q_AVAILHI, v);
        break;
    case VIRTIO_PCI_COMMON_Q_USEDLO:
    case VIRTIO_PCI_COMMON_Q_USEDHI:
        if (layout_ok)
            set_half(&vq->used_gpa, off == VIRTIO_PCI_COMMON_Q_USEDHI, v);
        break;
    }
}

/* Width of each common configuration field; other accesses are ignored. */
static unsigned common_field_size(unsigned off)
{
    switch (off) {
    case VIRTIO_PCI_COMMON_STATUS:
    case VIRTIO_PCI_COMMON_CFGGENERATION: return 1;
    case VIRTIO_PCI_COMMON_MSIX:
    case VIRTIO_PCI_COMMON_NUMQ:
    case VIRTIO_PCI_COMMON_Q_SELECT:
    case VIRTIO_PCI_COMMON_Q_SIZE:
    case VIRTIO_PCI_COMMON_Q_MSIX:
    case VIRTIO_PCI_COMMON_Q_ENABLE:
    case VIRTIO_PCI_COMMON_Q_NOFF: return 2;
    default: return off < VIRTIO_PCI_COMMON_Q_USEDHI + 4 && off % 4 == 0 ? 4 : 0;
    }
}

static void notify_queue_fd(struct virtio_pci *vp, unsigned q)
{
    uint64_t one = 1;

    if (q < vp->ops->num_queues && write(vp->kick_fd[q], &one, sizeof(one)) < 0) {
        /* the counter can only overflow after 2^64 kicks; the thread is awake anyway */
    }
}

static void regs_read(struct virtio_pci *vp, uint64_t off, void *data, unsigned size)
{
    uint64_t v = 0;

    if (off < ISR_OFF) {
        if (size == 8 && off % 8 == 0 && common_field_size((unsigned)off) == 4)
            v = common_read(vp, (unsigned)off) | common_read(vp, (unsigned)off + 4) << 32;
        else if (common_field_size((unsigned)off) == size)
            v = common_read(vp, (unsigned)off);
    } else if (off == ISR_OFF) {
        v = vp->isr; /* reading acknowledges (virtio 4.1.4.5) */
        vp->isr = 0;
        pci_device_set_intx(&vp->pdev, false);
    } else if (off >= DEVICE_OFF && off - DEVICE_OFF + size <= vp->ops->config_size) {
        vp->ops->config_read(vp, (unsigned)(off - DEVICE_OFF), &v, size);
    }
    memcpy(data, &v, size);
}

static void regs_write(struct virtio_pci *vp, uint64_t off, const void *data, unsigned size)
{
    uint64_t v = 0;

    memcpy(&v, data, size);
    if (off < ISR_OFF) {
        if (size == 8 && off % 8 == 0 && common_field_size((unsigned)off) == 4) {
            common_write(vp, (unsigned)off, (uint32_t)v);
            common_write(vp, (unsigned)off + 4, (uint32_t)(v >> 32));
        } else if (common_field_size((unsigned)off) == size) {
            common_write(vp, (unsigned)off, (uint32_t)v);
        }
    } else if (off >= NOTIFY_OFF && off < NOTIFY_OFF + NOTIFY_MULTIPLIER * VIRTIO_MAX_QUEUES) {
        /* Only reached when KVM's ioeventfd did not take the write (other widths). */
        notify_queue_fd(vp, (unsigned)(off - NOTIFY_OFF) / NOTIFY_MULTIPLIER);
    }
    /* The device configuration areas of our devices are read-only. */
}

static void vp_bar_read(struct pci_device *pdev, unsigned bar, uint64_t off, void *data,
                        unsigned size)
{
    struct virtio_pci *vp = hv_container_of(pdev, struct virtio_pci, pdev);

    pthread_mutex_lock(&vp->lock);
    if (bar == BAR_REGS)
        regs_read(vp, off, data, size);
    else if (bar == BAR_MSIX)
        msix_bar_read(&vp->msix, off, data, size);
    pthread_mutex_unlock(&vp->lock);
}

static void vp_bar_write(struct pci_device *pdev, unsigned bar, uint64_t off, const void *data,
                         unsigned size)
{
    struct virtio_pci *vp = hv_container_of(pdev, struct virtio_pci, pdev);

    pthread_mutex_lock(&vp->lock);
    if (bar == BAR_REGS)
        regs_write(vp, off, data, size);
    else if (bar == BAR_MSIX)
        msix_bar_write(&vp->msix, off, data, size);
    pthread_mutex_unlock(&vp->lock);
}

/* Moves the queues' ioeventfds to wherever the guest put BAR0. */
static void vp_bar_mapped(struct pci_device *pdev, unsigned bar, uint64_t addr)
{
    struct virtio_pci *vp = hv_container_of(pdev, struct virtio_pci, pdev);
    const struct hv_platform *p = pdev->platform;

    if (bar != BAR_REGS || !p->ioeventfd)
        return;
    for (unsigned q = 0; q < vp->ops->num_queues; q++) {
        if (vp->notify_base)
            p->ioeventfd(p->opaque, vp->kick_fd[q], HV_BUS_MMIO,
                         vp->notify_base + NOTIFY_OFF + NOTIFY_MULTIPLIER * q, 2, false);
        if (addr)
            p->ioeventfd(p->opaque, vp->kick_fd[q], HV_BUS_MMIO,
                         addr + NOTIFY_OFF + NOTIFY_MULTIPLIER * q, 2, true);
    }
    vp->notify_base = addr;
}

static void vp_config_written(struct pci_device *pdev, unsigned reg, unsigned size)
{
    struct virtio_pci *vp = hv_container_of(pdev, struct virtio_pci, pdev);

    pthread_mutex_lock(&vp->lock);
    msix_config_written(&vp->msix, reg, size);
    pthread_mutex_unlock(&vp->lock);
}

static void vp_reset(struct pci_device *pdev)
{
    struct virtio_pci *vp = hv_container_of(pdev, struct virtio_pci, pdev);

    pthread_mutex_lock(&vp->lock);
    reset_device(vp);
    msix_reset(&vp->msix);
    pthread_mutex_unlock(&vp->lock);
}

/* A virtio_pci_cap (virtio 4.1.4) pointing into BAR0. */
static int add_virtio_cap(struct virtio_pci *vp, uint8_t type, uint32_t offset, uint32_t length,
                          bool notify)
{
    unsigned len = notify ? sizeof(struct virtio_pci_notify_cap) : sizeof(struct virtio_pci_cap);
    int at = pci_device_add_capability(&vp->pdev, PCI_CAP_ID_VENDOR, len);

    if (at < 0)
        return at;
    vp->pdev.config[at + 2] = (uint8_t)len;
    vp->pdev.config[at + 3] = type;
    vp->pdev.config[at + 4] = BAR_REGS;
    pci_cfg_put32(&vp->pdev, (unsigned)at + 8, offset);
    pci_cfg_put32(&vp->pdev, (unsigned)at + 12, length);
    if (notify)
        pci_cfg_put32(&vp->pdev, (unsigned)at + 16, NOTIFY_MULTIPLIER);
    return 0;
}

int virtio_pci_init(struct virtio_pci *vp, const struct virtio_device_ops *ops, void *dev,
                    const struct hv_platform *platform)
{
    static const struct pci_device_ops pci_ops = {
        .bar_read = vp_bar_read,
        .bar_write = vp_bar_write,
        .bar_mapped = vp_bar_mapped,
        .config_written = vp_config_written,
        .reset = vp_reset,
    };
    int rc;

    memset(vp, 0, sizeof(*vp));
    vp->ops = ops;
    vp->dev = dev;
    vp->epoll_fd = vp->stop_fd = vp->park_fd = -1;
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        vp->kick_fd[q] = -1;
    pthread_mutex_init(&vp->lock, NULL);
    pthread_mutex_init(&vp->park_lock, NULL);
    pthread_cond_init(&vp->park_cond, NULL);
    if (ops->num_queues == 0 || ops->num_queues > VIRTIO_MAX_QUEUES ||
        ops->config_size > DEVICE_LEN)
        return -EINVAL;
    vp->offered = ops->features | 1ull << VIRTIO_F_VERSION_1 |
                  1ull << VIRTIO_RING_F_INDIRECT_DESC | 1ull << VIRTIO_RING_F_EVENT_IDX;

    pci_device_init(&vp->pdev, ops->name, &pci_ops, platform, VIRTIO_PCI_VENDOR,
                    (uint16_t)(VIRTIO_PCI_DEVICE_BASE + ops->device_id), ops->class_code, 1);
    pci_device_set_subsystem(&vp->pdev, VIRTIO_PCI_VENDOR, 0x40);
    pci_device_enable_intx(&vp->pdev);
    if ((rc = pci_device_add_bar(&vp->pdev, BAR_REGS, REGS_SIZE, false)) ||
        (rc = pci_device_add_bar(&vp->pdev, BAR_MSIX, MSIX_BAR_SIZE, false)) ||
        (rc = add_virtio_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, COMMON_OFF, 0x38, false)) ||
        (rc = add_virtio_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, NOTIFY_OFF,
                             NOTIFY_MULTIPLIER * ops->num_queues, true)) ||
        (rc = add_virtio_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, ISR_OFF, 1, false)) ||
        (rc = add_virtio_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, DEVICE_OFF, DEVICE_LEN, false)) ||
        (rc = msix_init(&vp->msix, &vp->pdev, ops->num_queues + 1, BAR_MSIX, 0, MSIX_PBA_OFF)))
        return rc;
    for (unsigned q = 0; q < ops->num_queues; q++) {
        vp->kick_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vp->kick_fd[q] < 0)
            return -errno;
    }
    vp->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    vp->park_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    vp->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (vp->stop_fd < 0 || vp->park_fd < 0 || vp->epoll_fd < 0)
        return -errno;
    reset_device(vp);
    return 0;
}

int virtio_pci_watch_fd(struct virtio_pci *vp, int fd)
{
    if (vp->nr_extra_fds == VIRTIO_MAX_EXTRA_FDS || vp->thread_started)
        return -ENOSPC;
    vp->extra_fd[vp->nr_extra_fds++] = fd;
    return 0;
}

static void drain(int fd)
{
    uint64_t n;

    while (read(fd, &n, sizeof(n)) > 0) {
    }
}

/*
 * The I/O thread calls this between events, where every request it popped has
 * been completed (the devices serve a request within one event). Returns false
 * when the thread must leave instead (destroy).
 */
static bool park_point(struct virtio_pci *vp)
{
    bool go_on;

    pthread_mutex_lock(&vp->park_lock);
    if (vp->park_req && !vp->stopping) {
        vp->parked = true;
        pthread_cond_broadcast(&vp->park_cond);
        while (vp->park_req && !vp->stopping)
            pthread_cond_wait(&vp->park_cond, &vp->park_lock);
        vp->parked = false;
    }
    go_on = !vp->stopping;
    pthread_mutex_unlock(&vp->park_lock);
    return go_on;
}

static void *io_thread(void *arg)
{
    struct virtio_pci *vp = arg;
    struct epoll_event events[VIRTIO_MAX_QUEUES + VIRTIO_MAX_EXTRA_FDS + 1];
    const struct hv_platform *p = vp->pdev.platform;

    if (p->thread_start)
        p->thread_start(p->opaque, HV_THREAD_IO);
    for (;;) {
        if (!park_point(vp))
            return NULL;
        int n = epoll_wait(vp->epoll_fd, events, (int)(sizeof(events) / sizeof(events[0])), -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return NULL;
        for (int i = 0; i < n; i++) {
            uint32_t tag = events[i].data.u32;
            /* Events of this batch that wait out a park are still served after it: a kick
             * drains and looks at the queue, a tap or timer read finds nothing harmlessly. */
            if (tag == EPOLL_STOP || !park_point(vp))
                return NULL;
            if (tag == EPOLL_PARK) {
                drain(vp->park_fd);
                continue;
            }
            if (tag >= EPOLL_EXTRA) {
                int fd = vp->extra_fd[tag - EPOLL_EXTRA];
                if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                    /* Gone for good (a deleted tap): epoll cannot mask errors, so stop watching. */
                    epoll_ctl(vp->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
                    fprintf(stderr, "vmmd: %s at 00:%02x.0: its host side failed; no more input\n",
                            vp->ops->name, vp->pdev.devfn >> 3);
                    continue;
                }
                vp->ops->fd_ready(vp, fd);
                continue;
            }
            drain(vp->kick_fd[tag]);
            if (virtio_pci_queue_ready(vp, tag))
                vp->ops->queue_notify(vp, tag);
        }
    }
}

static int watch(struct virtio_pci *vp, int fd, uint32_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};

    return epoll_ctl(vp->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void virtio_pci_watch_fd_enable(struct virtio_pci *vp, int fd, bool enable)
{
    for (unsigned i = 0; i < vp->nr_extra_fds; i++) {
        struct epoll_event ev = {.events = enable ? EPOLLIN : 0, .data.u32 = EPOLL_EXTRA + i};
        if (vp->extra_fd[i] == fd)
            epoll_ctl(vp->epoll_fd, EPOLL_CTL_MOD, fd, &ev);
    }
}

int virtio_pci_start(struct virtio_pci *vp)
{
    int rc;

    for (unsigned q = 0; q < vp->ops->num_queues; q++)
        if ((rc = watch(vp, vp->kick_fd[q], q)))
            return rc;
    for (unsigned i = 0; i < vp->nr_extra_fds; i++)
        if ((rc = watch(vp, vp->extra_fd[i], EPOLL_EXTRA + i)))
            return rc;
    if ((rc = watch(vp, vp->stop_fd, EPOLL_STOP)) || (rc = watch(vp, vp->park_fd, EPOLL_PARK)))
        return rc;
    rc = -pthread_create(&vp->thread, NULL, io_thread, vp);
    vp->thread_started = rc == 0;
    return rc;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
    uint64_t one = 1;

    if (!vp->ops)
        return;
    if (vp->thread_started) {
        pthread_mutex_lock(&vp->park_lock);
        vp->stopping = true; /* a parked thread leaves too */
        pthread_cond_broadcast(&vp->park_cond);
        pthread_mutex_unlock(&vp->park_lock);
        if (write(vp->stop_fd, &one, sizeof(one)) < 0) {
            /* cannot fail for a fresh eventfd */
        }
        pthread_join(vp->thread, NULL);
        vp->thread_started = false;
    }
    msix_destroy(&vp->msix);
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        if (vp->kick_fd[q] >= 0)
            close(vp->kick_fd[q]);
    if (vp->stop_fd >= 0)
        close(vp->stop_fd);
    if (vp->park_fd >= 0)
        close(vp->park_fd);
    if (vp->epoll_fd >= 0)
        close(vp->epoll_fd);
    pthread_mutex_destroy(&vp->lock);
    pthread_mutex_destroy(&vp->park_lock);
    pthread_cond_destroy(&vp->park_cond);
    vp->ops = NULL;
}

/* A queue is served only while the driver wants it and bus mastering is on:
 * Linux clears that bit to stop a device's DMA (kexec, shutdown). */
static bool queue_ready_locked(const struct virtio_pci *vp, unsigned q)
{
    return q < vp->ops->num_queues && (vp->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
           !(vp->status & VIRTIO_CONFIG_S_NEEDS_RESET) && !vp->reset_pending &&
           pci_device_bus_master(&vp->pdev) && vp->vqs[q].enabled && !vp->vqs[q].broken;
}

bool virtio_pci_queue_ready(struct virtio_pci *vp, unsigned q)
{
    bool ready;

    pthread_mutex_lock(&vp->lock);
    ready = queue_ready_locked(vp, q);
    pthread_mutex_unlock(&vp->lock);
    return ready;
}

bool virtio_pci_driver_ok(struct virtio_pci *vp)
{
    bool ok;

    pthread_mutex_lock(&vp->lock);
    ok = (vp->status & VIRTIO_CONFIG_S_DRIVER_OK) && !(vp->status & VIRTIO_CONFIG_S_NEEDS_RESET);
    pthread_mutex_unlock(&vp->lock);
    return ok;
}

uint64_t virtio_pci_active_features(struct virtio_pci *vp)
{
    uint64_t f = 0;

    pthread_mutex_lock(&vp->lock);
    if ((vp->status & VIRTIO_CONFIG_S_DRIVER_OK) && !(vp->status & VIRTIO_CONFIG_S_NEEDS_RESET))
        f = vp->driver_features;
    pthread_mutex_unlock(&vp->lock);
    return f;
}

int virtio_pci_pop(struct virtio_pci *vp, unsigned q, struct virtq_elem *elem, unsigned *gen)
{
    int rc = 0;

    pthread_mutex_lock(&vp->lock);
    if (queue_ready_locked(vp, q)) {
        rc = virtq_pop(&vp->vqs[q], elem);
        if (rc < 0)
            mark_needs_reset(vp, q);
        if (rc == 1)
            vp->inflight++;
    }
    *gen = vp->generation;
    pthread_mutex_unlock(&vp->lock);
    return rc;
}

/* A request of generation gen is done; the last one finishes a pending reset. */
static void request_done(struct virtio_pci *vp, unsigned gen)
{
    if (gen != vp->generation || vp->inflight == 0)
        return;
    if (--vp->inflight == 0 && vp->reset_pending)
        reset_device(vp);
}

void virtio_pci_unpop(struct virtio_pci *vp, unsigned q, unsigned gen)
{
    pthread_mutex_lock(&vp->lock);
    if (gen == vp->generation && queue_ready_locked(vp, q))
        virtq_unpop(&vp->vqs[q]);
    request_done(vp, gen);
    pthread_mutex_unlock(&vp->lock);
}

void virtio_pci_push(struct virtio_pci *vp, unsigned q, const struct virtq_elem *elem,
                     uint32_t written, unsigned gen)
{
    pthread_mutex_lock(&vp->lock);
    if (gen == vp->generation && queue_ready_locked(vp, q))
        virtq_push(&vp->vqs[q], elem, written);
    request_done(vp, gen);
    pthread_mutex_unlock(&vp->lock);
}

void virtio_pci_serve_queue(struct virtio_pci *vp, unsigned q,
                            bool (*serve_one)(struct virtio_pci *vp, unsigned q))
{
    for (unsigned round = 0; round < VIRTIO_SERVE_ROUNDS; round++) {
        /*
         * Signal each completion at once (NO_INTERRUPT and EVENT_IDX let the
         * driver suppress it): a driver keeping a few large requests in
         * flight must not wait for the whole batch, or the queue drains
         * before it refills. virtio-blk, 4 x 1 MiB in flight, guest halting
         * until each interrupt: 4.3 -> 5.7 GB/s (the virtio-blk guest's bench).
         */
        for (unsigned served = 0; served < VIRTQ_MAX_SIZE && serve_one(vp, q); served++)
            virtio_pci_notify(vp, q);
        if (!virtio_pci_rearm(vp, q))
            return;
    }
    notify_queue_fd(vp, q); /* more work waits: come back after the other fds */
}

void virtio_pci_notify(struct virtio_pci *vp, unsigned q)
{
    pthread_mutex_lock(&vp->lock);
    if (queue_ready_locked(vp, q) && virtq_should_notify(&vp->vqs[q]))
        raise_interrupt(vp, vp->queue_vector[q], ISR_QUEUE);
    pthread_mutex_unlock(&vp->lock);
}

bool virtio_pci_rearm(struct virtio_pci *vp, unsigned q)
{
    bool more = false;

    pthread_mutex_lock(&vp->lock);
    if (queue_ready_locked(vp, q)) {
        struct virtq *vq = &vp->vqs[q];
        virtq_set_avail_event(vq);
        more = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->last_avail;
    }
    pthread_mutex_unlock(&vp->lock);
    return more;
}

/* --- Snapshot ------------------------------------------------------------------ */

void virtio_pci_park(struct virtio_pci *vp)
{
    uint64_t one = 1;

    pthread_mutex_lock(&vp->park_lock);
    vp->park_req = true;
    if (vp->thread_started && !vp->parked) {
        if (write(vp->park_fd, &one, sizeof(one)) < 0) {
            /* only on counter overflow: the thread has been woken anyway */
        }
        while (!vp->parked && !vp->stopping)
            pthread_cond_wait(&vp->park_cond, &vp->park_lock);
    }
    pthread_mutex_unlock(&vp->park_lock);
}

void virtio_pci_unpark(struct virtio_pci *vp)
{
    pthread_mutex_lock(&vp->park_lock);
    vp->park_req = false;
    pthread_cond_broadcast(&vp->park_cond);
    pthread_mutex_unlock(&vp->park_lock);
}

#define VIRT_TAG SNAP_TAG('V', 'I', 'R', 'T')

void virtio_pci_save(struct virtio_pci *vp, struct snap_w *w)
{
    size_t mark = snap_w_begin(w, VIRT_TAG, 1);
    size_t reason_len = strnlen(vp->broken_reason, sizeof(vp->broken_reason) - 1);

    pthread_mutex_lock(&vp->lock);
    snap_w_u16(w, vp->ops->device_id);
    snap_w_u32(w, vp->ops->num_queues);
    pci_device_save(&vp->pdev, w);
    msix_save(&vp->msix, w);
    snap_w_u64(w, vp->driver_features);
    snap_w_u32(w, vp->device_feature_select);
    snap_w_u32(w, vp->driver_feature_select);
    snap_w_u8(w, vp->status);
    snap_w_u8(w, vp->config_generation);
    snap_w_u8(w, vp->isr);
    snap_w_u16(w, vp->queue_select);
    snap_w_u16(w, vp->config_vector);
    snap_w_u8(w, (uint8_t)reason_len);
    snap_w_bytes(w, vp->broken_reason, reason_len);
    for (unsigned q = 0; q < vp->ops->num_queues; q++) {
        snap_w_u16(w, vp->queue_vector[q]);
        virtq_save(&vp->vqs[q], w);
    }
    pthread_mutex_unlock(&vp->lock);
    /* Outside vp->lock: the hook takes its own locks (and vp->lock through the helpers). */
    if (vp->ops->save)
        vp->ops->save(vp, w);
    snap_w_end(w, mark);
}

/* The transport's registers and queues as read from a file, applied only once all are valid. */
struct transport_state {
    uint64_t driver_features;
    uint32_t device_feature_select, driver_feature_select;
    uint8_t status, config_generation, isr;
    uint16_t queue_select, config_vector;
    uint16_t queue_vector[VIRTIO_MAX_QUEUES];
    struct virtq vqs[VIRTIO_MAX_QUEUES];
    char broken_reason[sizeof(((struct virtio_pci *)0)->broken_reason)];
};

static void check_vector(const struct virtio_pci *vp, struct snap_r *r, uint16_t v,
                         const char *what)
{
    if (snap_r_ok(r) && v != VIRTIO_MSI_NO_VECTOR && v >= vp->msix.nr_vectors)
        snap_r_fail(r, -EINVAL, "%s: %s vector %u, the device has %u", vp->ops->name, what, v,
                    vp->msix.nr_vectors);
}

static void read_transport(struct virtio_pci *vp, struct snap_r *r, struct transport_state *t)
{
    const struct hv_guest_mem *mem = vp->pdev.platform ? vp->pdev.platform->mem : NULL;
    uint8_t reason_len;

    t->driver_features = snap_r_u64(r);
    t->device_feature_select = snap_r_u32(r);
    t->driver_feature_select = snap_r_u32(r);
    t->status = snap_r_u8(r);
    t->config_generation = snap_r_u8(r);
    t->isr = snap_r_u8(r);
    t->queue_select = snap_r_u16(r);
    t->config_vector = snap_r_u16(r);
    check_vector(vp, r, t->config_vector, "configuration");
    /* Accepted features are a subset of the offer (set_status): anything else is another device. */
    if (snap_r_ok(r) && (t->status & VIRTIO_CONFIG_S_FEATURES_OK) &&
        (t->driver_features & ~vp->offered))
        snap_r_fail(r, -EINVAL, "%s: negotiated features %#llx not offered", vp->ops->name,
                    (unsigned long long)t->driver_features);
    reason_len = snap_r_u8(r);
    if (snap_r_ok(r) && reason_len >= sizeof(t->broken_reason))
        snap_r_fail(r, -EINVAL, "%s: reason of %u bytes", vp->ops->name, reason_len);
    snap_r_bytes(r, t->broken_reason, snap_r_ok(r) ? reason_len : 0);
    t->broken_reason[snap_r_ok(r) ? reason_len : 0] = '\0';
    for (unsigned q = 0; q < vp->ops->num_queues && snap_r_ok(r); q++) {
        t->queue_vector[q] = snap_r_u16(r);
        check_vector(vp, r, t->queue_vector[q], "queue");
        t->vqs[q] = vp->vqs[q];
        if (!snap_r_ok(r) || virtq_load(&t->vqs[q], r, mem))
            break;
        if (t->vqs[q].enabled && t->vqs[q].size > vp->ops->queue_size)
            snap_r_fail(r, -EINVAL, "%s: queue %u of size %u, the device's maximum is %u",
                        vp->ops->name, q, t->vqs[q].size, vp->ops->queue_size);
    }
}

static int load_state(struct virtio_pci *vp, struct snap_r *r)
{
    struct transport_state *t = calloc(1, sizeof(*t));
    struct snap_r sub;
    uint16_t version, device_id;
    uint32_t num_queues;

    if (!t)
        return snap_r_fail(r, -ENOMEM, "%s: out of memory", vp->ops->name);
    if (snap_r_section(r, VIRT_TAG, "virtio transport", 1, &sub, &version))
        goto out;
    /* First the kind of device, so that a file for another one says so. */
    device_id = snap_r_u16(&sub);
    num_queues = snap_r_u32(&sub);
    if (snap_r_ok(&sub) && (device_id != vp->ops->device_id || num_queues != vp->ops->num_queues))
        snap_r_fail(&sub, -EINVAL, "virtio device type %u with %u queues saved, this is %s",
                    device_id, num_queues, vp->ops->name);
    if (!snap_r_ok(&sub) || pci_device_load(&vp->pdev, &sub))
        goto end;
    pthread_mutex_lock(&vp->lock);
    msix_load(&vp->msix, &sub);
    pthread_mutex_unlock(&vp->lock);
    read_transport(vp, &sub, t);
    if (!snap_r_ok(&sub))
        goto end;
    pthread_mutex_lock(&vp->lock);
    vp->driver_features = t->driver_features;
    vp->device_feature_select = t->device_feature_select;
    vp->driver_feature_select = t->driver_feature_select;
    vp->status = t->status;
    vp->config_generation = t->config_generation;
    vp->isr = t->isr;
    vp->queue_select = t->queue_select;
    vp->config_vector = t->config_vector;
    memcpy(vp->broken_reason, t->broken_reason, sizeof(vp->broken_reason));
    for (unsigned q = 0; q < vp->ops->num_queues; q++) {
        vp->queue_vector[q] = t->queue_vector[q];
        vp->vqs[q] = t->vqs[q];
    }
    /* Saved parked: nothing was in flight, so no reset can be waiting for a request. */
    vp->inflight = 0;
    vp->reset_pending = false;
    vp->generation++;
    pthread_mutex_unlock(&vp->lock);
    if (vp->ops->load)
        vp->ops->load(vp, &sub);
end:
    snap_r_end(r, &sub);
out:
    free(t);
    return r->err;
}

int virtio_pci_load(struct virtio_pci *vp, struct snap_r *r)
{
    struct snap_w backup;
    int rc;

    if (r->err)
        return r->err;
    /*
     * The nested sections apply as they are read (the PCI function re-decodes its
     * BARs, MSI-X sets routes), so a later bad field would leave a mix: the device's
     * state as it was is saved first and loaded again on error.
     */
    snap_w_init(&backup);
    virtio_pci_save(vp, &backup);
    rc = load_state(vp, r);
    if (rc && !backup.err) {
        struct snap_r again;
        snap_r_init(&again, backup.buf, backup.len);
        load_state(vp, &again);
    }
    snap_w_free(&backup);
    return rc;
}
