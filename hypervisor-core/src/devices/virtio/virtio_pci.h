/*
 * The virtio 1.x PCI transport (virtio 1.2 section 4.1), modern only: one
 * memory BAR holds the common configuration, ISR, device configuration and
 * notification areas, a second holds the MSI-X table. Queue notifications
 * arrive on ioeventfds and are served by one I/O thread per device, so disk
 * and network work never runs on a vCPU thread; interrupts leave through
 * MSI-X irqfds (or INTx when the driver has no MSI-X).
 *
 * Locking: vp->lock guards transport state, the queues and MSI-X. The
 * vCPU side (BAR accesses) holds it for each access. Device code on the
 * I/O thread takes it only through the virtio_pci_* helpers below, so the
 * slow part of a request (the disk read) runs unlocked. A device reset
 * bumps a generation; completions of requests popped before it are dropped.
 */
#ifndef HV_VIRTIO_PCI_H
#define HV_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/pci/msix.h"
#include "devices/pci/pci_device.h"
#include "devices/virtio/virtqueue.h"

#define VIRTIO_MAX_QUEUES 8
#define VIRTIO_MAX_EXTRA_FDS 3 /* virtio-net: its tap and two I/O-limit timers */

struct virtio_pci;

struct virtio_device_ops {
    const char *name;
    uint16_t device_id;  /* virtio device type: 1 net, 2 blk, 3 console, 4 rng */
    uint32_t class_code; /* PCI class */
    unsigned num_queues;
    uint16_t queue_size; /* maximum, power of two <= VIRTQ_MAX_SIZE */
    unsigned config_size;
    /* Device-specific feature bits (VERSION_1 and the ring features are the transport's). */
    uint64_t features;
    /* Under vp->lock. Reads of the device config area; offset + size <= config_size. */
    void (*config_read)(struct virtio_pci *vp, unsigned offset, void *data, unsigned size);
    /* I/O thread, no lock held: queue q was notified. */
    void (*queue_notify)(struct virtio_pci *vp, unsigned q);
    /* I/O thread, no lock held: an fd added with virtio_pci_watch_fd() is readable. */
    void (*fd_ready)(struct virtio_pci *vp, int fd);
    /* Under vp->lock: the driver reset the device. */
    void (*reset)(struct virtio_pci *vp);
    /* Optional, no vp lock held, I/O thread parked or not started: the device's own
     * state as one section of its own tag (virtio_pci_save calls it last). */
    void (*save)(struct virtio_pci *vp, struct snap_w *w);
    /* Optional, likewise: reads that section, after the transport state is in place
     * (so it may follow the negotiated features). 0, or r's error with the device's
     * own state unchanged. */
    int (*load)(struct virtio_pci *vp, struct snap_r *r);
};

struct virtio_pci {
    struct pci_device pdev;
    struct msix msix;
    const struct virtio_device_ops *ops;
    void *dev; /* the device's own state */
    pthread_mutex_t lock;

    uint64_t offered;         /* everything the device offers, transport bits included */
    uint64_t driver_features; /* what the driver acked */
    uint32_t device_feature_select, driver_feature_select;
    uint8_t status;
    uint8_t config_generation;
    uint8_t isr;
    uint16_t queue_select;
    uint16_t config_vector;
    struct virtq vqs[VIRTIO_MAX_QUEUES];
    uint16_t queue_vector[VIRTIO_MAX_QUEUES];
    unsigned generation; /* bumped by every reset */
    /* Requests popped and not yet completed in this generation. A reset the
     * driver asks for while some are in flight completes when the last one
     * does: until then the status stays non-zero (the driver polls for 0) and
     * the device touches guest RAM only for those requests. */
    unsigned inflight;
    bool reset_pending;
    char broken_reason[128];
    unsigned errors_logged;

    int kick_fd[VIRTIO_MAX_QUEUES];
    uint64_t notify_base; /* where the notify area decodes now, 0 if nowhere */
    int extra_fd[VIRTIO_MAX_EXTRA_FDS];
    unsigned nr_extra_fds;
    int epoll_fd, stop_fd;
    pthread_t thread;
    bool thread_started;

    /* Parking the I/O thread for a snapshot (virtio_pci_park). */
    pthread_mutex_t park_lock;
    pthread_cond_t park_cond;
    int park_fd;   /* eventfd: wakes the thread to look at park_req */
    bool park_req; /* someone wants it parked */
    bool parked;   /* it is: between events, serving nothing */
    bool stopping; /* destroy: a parked thread leaves instead */
};

/* Builds the PCI function and its queues' eventfds. dev is the device's state. */
int virtio_pci_init(struct virtio_pci *vp, const struct virtio_device_ops *ops, void *dev,
                    const struct hv_platform *platform);
/* Before virtio_pci_start: also wake the I/O thread when fd is readable. */
int virtio_pci_watch_fd(struct virtio_pci *vp, int fd);
/* From the I/O thread: stop or resume waking up for a watched fd (e.g. no buffers to receive into). */
void virtio_pci_watch_fd_enable(struct virtio_pci *vp, int fd, bool enable);
/* After pci_bus_add: starts the I/O thread. */
int virtio_pci_start(struct virtio_pci *vp);
/* Stops the thread, releases eventfds; the caller frees vp. */
void virtio_pci_destroy(struct virtio_pci *vp);

/*
 * Snapshot (section 'VIRT', version 1): nests the PCI function ('PCID'), MSI-X
 * ('MSIX'), the transport's registers and queue vectors, each queue ('VQ  '), then
 * the device's own section through ops->save. The I/O thread must be parked (or
 * not started) so that no request is in flight: none is saved. Load is for a device
 * created the same way (same kind, same backends), parked or not yet started;
 * enabled queues are mapped again against the platform's guest memory, routes and
 * INTx re-established. On error the device is put back as it was (its own state
 * saved first and loaded again) and r says why.
 */
void virtio_pci_save(struct virtio_pci *vp, struct snap_w *w);
int virtio_pci_load(struct virtio_pci *vp, struct snap_r *r);
/*
 * Returns once the I/O thread is parked between events with no request in flight
 * (the ones it had popped were completed first); it then serves no queue, fd or
 * timer until virtio_pci_unpark. Idempotent; with no thread started yet it only
 * records the wish, and a thread started meanwhile begins parked.
 */
void virtio_pci_park(struct virtio_pci *vp);
void virtio_pci_unpark(struct virtio_pci *vp);

/* I/O-thread helpers (they take vp->lock). pop: 1 got a request (gen says when),
 * 0 none, <0 the queue broke and the device now needs a reset. Every request
 * popped must end in exactly one push or unpop. */
int virtio_pci_pop(struct virtio_pci *vp, unsigned q, struct virtq_elem *elem, unsigned *gen);
/* Gives back the request just popped (e.g. no packet to put in it after all). */
void virtio_pci_unpop(struct virtio_pci *vp, unsigned q, unsigned gen);
/* Completes a request; dropped if the device was reset since gen. */
void virtio_pci_push(struct virtio_pci *vp, unsigned q, const struct virtq_elem *elem,
                     uint32_t written, unsigned gen);
/*
 * Serves queue q on the I/O thread: serve_one pops and completes one request
 * and returns false when there was none. Interrupts the driver after each
 * completion (if it wants), in rounds of at most a queue's worth, re-arms
 * notifications after each round, and after a few
 * rounds kicks the queue again and returns, so a guest that refills as fast
 * as we serve cannot keep the thread from its other queues and fds.
 */
void virtio_pci_serve_queue(struct virtio_pci *vp, unsigned q,
                            bool (*serve_one)(struct virtio_pci *vp, unsigned q));
/* Interrupts the driver for queue q if it wants to be. */
void virtio_pci_notify(struct virtio_pci *vp, unsigned q);
/* After draining q: re-arms notifications; true if more work arrived meanwhile. */
bool virtio_pci_rearm(struct virtio_pci *vp, unsigned q);
bool virtio_pci_driver_ok(struct virtio_pci *vp);
/* The features the driver negotiated once it is running (DRIVER_OK, no reset needed), else 0:
 * what a device's datapath follows. */
uint64_t virtio_pci_active_features(struct virtio_pci *vp);
/* Whether queue q is enabled and usable now. */
bool virtio_pci_queue_ready(struct virtio_pci *vp, unsigned q);

#endif
