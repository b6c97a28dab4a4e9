/*
 * virtio-console: queue 0 carries input to the guest, queue 1 its output.
 * Input waits in a small buffer guarded by its own lock (the vCPU-side
 * caller must not wait for the I/O thread); an eventfd tells the I/O thread
 * to move it into receive buffers. Input typed before the guest's driver is
 * up is kept (up to the buffer size), as a terminal would.
 */
#include "devices/virtio/virtio_console.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>

#define RX_QUEUE 0
#define TX_QUEUE 1
#define INPUT_MAX 4096
#define OUTPUT_CHUNK 4096

struct virtio_console {
    struct virtio_pci vp;
    hv_console_write_fn write;
    void *opaque;
    int input_fd; /* eventfd: input is waiting */
    pthread_mutex_t input_lock;
    uint8_t input[INPUT_MAX];
    size_t input_len;
    struct virtq_elem elem;
};

static void console_config_read(struct virtio_pci *vp, unsigned offset, void *data, unsigned size)
{
    struct virtio_console_config cfg = {.cols = 80, .rows = 25, .max_nr_ports = 1};

    (void)vp;
    if (offset + size <= sizeof(cfg))
        memcpy(data, (uint8_t *)&cfg + offset, size);
}

/* Moves waiting input into as many receive buffers as it fills. */
static void deliver_input(struct virtio_console *con)
{
    struct virtio_pci *vp = &con->vp;
    bool delivered = false;
    unsigned gen;

    pthread_mutex_lock(&con->input_lock);
    while (con->input_len) {
        int got = virtio_pci_pop(vp, RX_QUEUE, &con->elem, &gen);
        if (got != 1) {
            /* Out of buffers: have the driver kick when it posts more (EVENT_IDX). */
            if (got == 0 && virtio_pci_rearm(vp, RX_QUEUE))
                continue;
            break;
        }
        uint64_t n = virtq_copy_to_in(&con->elem, 0, con->input, con->input_len);
        memmove(con->input, con->input + n, con->input_len - n);
        con->input_len -= n;
        virtio_pci_push(vp, RX_QUEUE, &con->elem, (uint32_t)n, gen);
        delivered = true;
    }
    pthread_mutex_unlock(&con->input_lock);
    if (delivered)
        virtio_pci_notify(vp, RX_QUEUE);
}

static bool transmit_one(struct virtio_pci *vp, unsigned q)
{
    struct virtio_console *con = vp->dev;
    uint8_t chunk[OUTPUT_CHUNK];
    unsigned gen;

    if (virtio_pci_pop(vp, q, &con->elem, &gen) != 1)
        return false;
    for (uint64_t off = 0; off < con->elem.out_len;) {
        uint64_t n = virtq_copy_from_out(&con->elem, off, chunk, sizeof(chunk));
        if (con->write)
            con->write(con->opaque, chunk, n);
        off += n;
    }
    virtio_pci_push(vp, q, &con->elem, 0, gen);
    return true;
}

static void console_queue_notify(struct virtio_pci *vp, unsigned q)
{
    struct virtio_console *con = vp->dev;

    if (q == TX_QUEUE)
        virtio_pci_serve_queue(vp, q, transmit_one);
    else
        deliver_input(con); /* new receive buffers: anything waiting can go */
}

static void console_fd_ready(struct virtio_pci *vp, int fd)
{
    uint64_t n;

    if (read(fd, &n, sizeof(n)) < 0) {
        /* nothing to drain: a spurious wake-up */
    }
    if (virtio_pci_queue_ready(vp, RX_QUEUE))
        deliver_input(vp->dev);
}

#define VCON_TAG SNAP_TAG('V', 'C', 'O', 'N')

/* Input the host typed that the guest has not taken yet is the console's state. */
static void console_save(struct virtio_pci *vp, struct snap_w *w)
{
    struct virtio_console *con = vp->dev;
    size_t mark = snap_w_begin(w, VCON_TAG, 1);

    pthread_mutex_lock(&con->input_lock);
    snap_w_u32(w, (uint32_t)con->input_len);
    snap_w_bytes(w, con->input, con->input_len);
    pthread_mutex_unlock(&con->input_lock);
    snap_w_end(w, mark);
}

static int console_load(struct virtio_pci *vp, struct snap_r *r)
{
    struct virtio_console *con = vp->dev;
    uint8_t *input = malloc(INPUT_MAX);
    struct snap_r sub;
    uint16_t version;
    uint32_t len;
    uint64_t one = 1;

    if (!input)
        return snap_r_fail(r, -ENOMEM, "virtio-console: out of memory");
    if (snap_r_section(r, VCON_TAG, "virtio-console", 1, &sub, &version))
        goto out;
    len = snap_r_below(&sub, INPUT_MAX + 1, "virtio-console input length");
    snap_r_bytes(&sub, input, len);
    if (snap_r_end(r, &sub))
        goto out;
    pthread_mutex_lock(&con->input_lock);
    memcpy(con->input, input, len);
    con->input_len = len;
    pthread_mutex_unlock(&con->input_lock);
    /* The I/O thread delivers it once it runs, as if it had just been typed. */
    if (len && write(con->input_fd, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow here */
    }
out:
    free(input);
    return r->err;
}

static const struct virtio_device_ops console_ops = {
    .name = "virtio-console",
    .device_id = VIRTIO_ID_CONSOLE,
    .class_code = 0x078000, /* communication controller, other */
    .num_queues = 2,
    .queue_size = 64,
    .config_size = sizeof(struct virtio_console_config),
    .config_read = console_config_read,
    .queue_notify = console_queue_notify,
    .fd_ready = console_fd_ready,
    .save = console_save,
    .load = console_load,
};

int virtio_console_create(struct virtio_console **out, const struct hv_platform *platform,
                          hv_console_write_fn write, void *opaque)
{
    struct virtio_console *con = calloc(1, sizeof(*con));
    int rc;

    if (!con)
        return -ENOMEM;
    con->write = write;
    con->opaque = opaque;
    pthread_mutex_init(&con->input_lock, NULL);
    con->input_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (con->input_fd < 0) {
        rc = -errno;
        goto err;
    }
    if ((rc = virtio_pci_init(&con->vp, &console_ops, con, platform)) ||
        (rc = virtio_pci_watch_fd(&con->vp, con->input_fd)))
        goto err;
    *out = con;
    return 0;
err:
    virtio_console_destroy(con);
    return rc;
}

struct virtio_pci *virtio_console_transport(struct virtio_console *con)
{
    return &con->vp;
}

size_t virtio_console_receive(struct virtio_console *con, const uint8_t *buf, size_t len)
{
    uint64_t one = 1;
    size_t n;

    pthread_mutex_lock(&con->input_lock);
    n = INPUT_MAX - con->input_len < len ? INPUT_MAX - con->input_len : len;
    memcpy(con->input + con->input_len, buf, n);
    con->input_len += n;
    pthread_mutex_unlock(&con->input_lock);
    if (n && write(con->input_fd, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow here; the thread is woken either way */
    }
    return n;
}

void virtio_console_destroy(struct virtio_console *con)
{
    if (!con)
        return;
    virtio_pci_destroy(&con->vp);
    if (con->input_fd >= 0)
        close(con->input_fd);
    pthread_mutex_destroy(&con->input_lock);
    free(con);
}
