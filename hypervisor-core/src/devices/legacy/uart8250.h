/* 16550A-compatible UART (COM1): the console of every guest. */
#ifndef HV_UART8250_H
#define HV_UART8250_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "bus.h"
#include "snapshot/snap_buf.h"

#define UART8250_COM1_BASE 0x3f8
#define UART8250_COM1_IRQ  4
#define UART8250_RX_BUF    4096

struct uart8250 {
    struct hv_device dev;
    unsigned irq;
    hv_console_write_fn out;
    void *out_opaque;

    uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
    bool thr_ipending;
    int irq_level;

    uint8_t rx[UART8250_RX_BUF];
    size_t rx_head, rx_count;
    uint64_t rx_dropped;
};

void uart8250_init(struct uart8250 *u, const struct hv_platform *platform, unsigned irq,
                   hv_console_write_fn out, void *out_opaque);
/* Queues host input for the guest (caller holds the bus lock). */
size_t uart8250_receive(struct uart8250 *u, const uint8_t *buf, size_t len);
/* Snapshot (section 'UART', see snapshot/snap_buf.h): registers and the receive buffer.
 * The load re-drives the IRQ line. Caller holds the bus lock. */
void uart8250_save(const struct uart8250 *u, struct snap_w *w);
int uart8250_load(struct uart8250 *u, struct snap_r *r);

#endif
