/*
 * 8250/16550A UART. Transmission completes instantly (bytes go straight to
 * the console sink), so THR is always empty and the "THR empty" interrupt
 * fires right after each write, which is what Linux's driver expects.
 * Register semantics follow the National PC16550D datasheet.
 */
#include "uart8250.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
    REG_RBR_THR = 0, REG_IER = 1, REG_IIR_FCR = 2, REG_LCR = 3,
    REG_MCR = 4,     REG_LSR = 5, REG_MSR = 6,     REG_SCR = 7,
};

#define IER_RDI  0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI  0x08

#define IIR_NO_INT 0x01
#define IIR_MSI    0x00
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_RLSI   0x06
#define IIR_FIFO   0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR     0x01
#define LSR_OE     0x02
#define LSR_ERRORS 0x1e
#define LSR_THRE   0x20
#define LSR_TEMT   0x40

#define MSR_DELTAS 0x0f
#define MSR_CTS    0x10
#define MSR_DSR    0x20
#define MSR_RI     0x40
#define MSR_DCD    0x80

static uint8_t uart_iir(const struct uart8250 *u)
{
    uint8_t iir = IIR_NO_INT;

    if ((u->ier & IER_RLSI) && (u->lsr & LSR_ERRORS))
        iir = IIR_RLSI;
    else if ((u->ier & IER_RDI) && (u->lsr & LSR_DR))
        iir = IIR_RDI;
    else if ((u->ier & IER_THRI) && u->thr_ipending)
        iir = IIR_THRI;
    else if ((u->ier & IER_MSI) && (u->msr & MSR_DELTAS))
        iir = IIR_MSI;
    if (u->fcr & FCR_ENABLE)
        iir |= IIR_FIFO;
    return iir;
}

static void uart_update_irq(struct uart8250 *u)
{
    int level = !(uart_iir(u) & IIR_NO_INT);

    if (level != u->irq_level) {
        u->irq_level = level;
        u->dev.platform->set_irq(u->dev.platform->opaque, u->irq, level);
    }
}

static void rx_push(struct uart8250 *u, uint8_t byte)
{
    if (u->rx_count == UART8250_RX_BUF) {
        u->rx_dropped++;
        u->lsr |= LSR_OE;
        return;
    }
    u->rx[(u->rx_head + u->rx_count) % UART8250_RX_BUF] = byte;
    u->rx_count++;
    u->lsr |= LSR_DR;
}

static uint8_t rx_pop(struct uart8250 *u)
{
    uint8_t byte;

    if (u->rx_count == 0)
        return 0;
    byte = u->rx[u->rx_head];
    u->rx_head = (u->rx_head + 1) % UART8250_RX_BUF;
    if (--u->rx_count == 0)
        u->lsr &= ~LSR_DR;
    return byte;
}

/* In loopback mode the modem inputs mirror the modem control outputs. */
static uint8_t uart_msr(const struct uart8250 *u)
{
    if (!(u->mcr & MCR_LOOP))
        return u->msr;
    return (u->msr & MSR_DELTAS) | ((u->mcr & MCR_RTS) ? MSR_CTS : 0) |
           ((u->mcr & MCR_DTR) ? MSR_DSR : 0) | ((u->mcr & MCR_OUT1) ? MSR_RI : 0) |
           ((u->mcr & MCR_OUT2) ? MSR_DCD : 0);
}

static void uart_read(struct hv_device *dev, uint64_t offset, void *data, unsigned size)
{
    struct uart8250 *u = hv_container_of(dev, struct uart8250, dev);
    uint8_t val = 0xff;

    switch (offset) {
    case REG_RBR_THR:
        val = (u->lcr & LCR_DLAB) ? u->dll : rx_pop(u);
        break;
    case REG_IER:
        val = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
        break;
    case REG_IIR_FCR:
        val = uart_iir(u);
        if ((val & 0x0f) == IIR_THRI)
            u->thr_ipending = false;
        break;
    case REG_LCR:
        val = u->lcr;
        break;
    case REG_MCR:
        val = u->mcr;
        break;
    case REG_LSR:
        val = u->lsr;
        u->lsr &= ~(LSR_ERRORS);
        break;
    case REG_MSR:
        val = uart_msr(u);
        u->msr &= ~MSR_DELTAS;
        break;
    case REG_SCR:
        val = u->scr;
        break;
    }
    memset(data, 0, size);
    *(uint8_t *)data = val;
    uart_update_irq(u);
}

static void uart_write(struct hv_device *dev, uint64_t offset, const void *data, unsigned size)
{
    struct uart8250 *u = hv_container_of(dev, struct uart8250, dev);
    uint8_t val = *(const uint8_t *)data;

    (void)size;
    switch (offset) {
    case REG_RBR_THR:
        if (u->lcr & LCR_DLAB) {
            u->dll = val;
            break;
        }
        if (u->mcr & MCR_LOOP)
            rx_push(u, val);
        else if (u->out)
            u->out(u->out_opaque, &val, 1);
        u->lsr |= LSR_THRE | LSR_TEMT;
        u->thr_ipending = true;
        break;
    case REG_IER:
        if (u->lcr & LCR_DLAB) {
            u->dlm = val;
            break;
        }
        /* Enabling THRI with THR empty raises it at once: drivers rely on this to start TX. */
        if (!(u->ier & IER_THRI) && (val & IER_THRI) && (u->lsr & LSR_THRE))
            u->thr_ipending = true;
        u->ier = val & 0x0f;
        break;
    case REG_IIR_FCR:
        u->fcr = val & 0xc9;
        if (val & FCR_CLEAR_RX) {
            u->rx_head = u->rx_count = 0;
            u->lsr &= ~LSR_DR;
        }
        break;
    case REG_LCR:
        u->lcr = val;
        break;
    case REG_MCR:
        u->mcr = val & 0x1f;
        break;
    case REG_SCR:
        u->scr = val;
        break;
    default: /* LSR and MSR are read-only */
        break;
    }
    uart_update_irq(u);
}

static void uart_reset(struct hv_device *dev)
{
    struct uart8250 *u = hv_container_of(dev, struct uart8250, dev);

    u->ier = u->lcr = u->mcr = u->scr = u->fcr = u->dlm = 0;
    u->dll = 12; /* 9600 baud */
    u->lsr = LSR_THRE | LSR_TEMT;
    u->msr = MSR_DCD | MSR_DSR | MSR_CTS;
    u->thr_ipending = false;
    u->rx_head = u->rx_count = 0;
    uart_update_irq(u);
}

static const struct hv_device_ops uart8250_ops = {
    .read = uart_read,
    .write = uart_write,
    .reset = uart_reset,
};

void uart8250_init(struct uart8250 *u, const struct hv_platform *platform, unsigned irq,
                   hv_console_write_fn out, void *out_opaque)
{
    memset(u, 0, sizeof(*u));
    u->dev = (struct hv_device){.name = "uart8250", .ops = &uart8250_ops, .platform = platform};
    u->irq = irq;
    u->out = out;
    u->out_opaque = out_opaque;
    uart_reset(&u->dev);
}

#define UART_TAG SNAP_TAG('U', 'A', 'R', 'T')

/* rx_dropped is a statistic, not guest-visible state: it is not saved. */
void uart8250_save(const struct uart8250 *u, struct snap_w *w)
{
    size_t mark = snap_w_begin(w, UART_TAG, 1);

    snap_w_u8(w, u->ier);
    snap_w_u8(w, u->lcr);
    snap_w_u8(w, u->mcr);
    snap_w_u8(w, u->lsr);
    snap_w_u8(w, u->msr);
    snap_w_u8(w, u->scr);
    snap_w_u8(w, u->dll);
    snap_w_u8(w, u->dlm);
    snap_w_u8(w, u->fcr);
    snap_w_bool(w, u->thr_ipending);
    snap_w_u32(w, (uint32_t)u->rx_head);
    snap_w_u32(w, (uint32_t)u->rx_count);
    snap_w_bytes(w, u->rx, UART8250_RX_BUF);
    snap_w_end(w, mark);
}

int uart8250_load(struct uart8250 *u, struct snap_r *r)
{
    struct uart8250 *t = malloc(sizeof(*t)); /* 4 KiB of buffer: not on a vCPU's stack */
    const struct hv_platform *p = u->dev.platform;
    struct snap_r sub;
    uint16_t ver;

    if (!t)
        return snap_r_fail(r, -ENOMEM, "uart: no memory");
    if (snap_r_section(r, UART_TAG, "uart", 1, &sub, &ver)) {
        free(t);
        return r->err;
    }
    t->ier = snap_r_u8(&sub);
    t->lcr = snap_r_u8(&sub);
    t->mcr = snap_r_u8(&sub);
    t->lsr = snap_r_u8(&sub);
    t->msr = snap_r_u8(&sub);
    t->scr = snap_r_u8(&sub);
    t->dll = snap_r_u8(&sub);
    t->dlm = snap_r_u8(&sub);
    t->fcr = snap_r_u8(&sub);
    t->thr_ipending = snap_r_bool(&sub);
    t->rx_head = snap_r_below(&sub, UART8250_RX_BUF, "uart rx_head");
    t->rx_count = snap_r_below(&sub, UART8250_RX_BUF + 1, "uart rx_count");
    snap_r_bytes(&sub, t->rx, UART8250_RX_BUF);
    /* The bits uart_write keeps; anything else no guest could have written. */
    if (snap_r_ok(&sub) && ((t->ier & ~0x0fu) || (t->mcr & ~0x1fu) || (t->fcr & ~0xc9u)))
        snap_r_fail(&sub, -EINVAL, "uart: ier 0x%x, mcr 0x%x or fcr 0x%x has reserved bits", t->ier,
                    t->mcr, t->fcr);
    if (snap_r_end(r, &sub)) {
        free(t);
        return r->err;
    }
    u->ier = t->ier;
    u->lcr = t->lcr;
    u->mcr = t->mcr;
    u->lsr = t->lsr;
    u->msr = t->msr;
    u->scr = t->scr;
    u->dll = t->dll;
    u->dlm = t->dlm;
    u->fcr = t->fcr;
    u->thr_ipending = t->thr_ipending;
    u->rx_head = t->rx_head;
    u->rx_count = t->rx_count;
    memcpy(u->rx, t->rx, UART8250_RX_BUF);
    free(t);
    /* The line follows the registers; tell the platform even if the level looks unchanged. */
    u->irq_level = !(uart_iir(u) & IIR_NO_INT);
    p->set_irq(p->opaque, u->irq, u->irq_level);
    return 0;
}

size_t uart8250_receive(struct uart8250 *u, const uint8_t *buf, size_t len)
{
    size_t room = UART8250_RX_BUF - u->rx_count;
    size_t n = len < room ? len : room;

    for (size_t i = 0; i < n; i++)
        rx_push(u, buf[i]);
    if (n)
        uart_update_irq(u);
    return n;
}
