/*
 * Intel 8042 keyboard controller with a keyboard that answers the commands
 * Linux's atkbd probe sends and no mouse (AUX commands get NAK). Pulsing the
 * output port's bit 0 (command 0xFE, or 0xD1 with bit 0 clear) is the PC's
 * reset line: Linux's reboot=kbd path ends up there.
 */
#include "i8042.h"

#include <errno.h>
#include <string.h>

#define OFF_DATA   0
#define OFF_STATUS 4

#define STS_OBF     0x01
#define STS_SYS     0x04
#define STS_CMD     0x08
#define STS_AUX_OBF 0x20

#define CB_KBD_INT   0x01
#define CB_AUX_INT   0x02
#define CB_KBD_OFF   0x10
#define CB_AUX_OFF   0x20
#define CB_TRANSLATE 0x40

#define KBD_ACK 0xfa

static void irq_levels(const struct i8042 *k, int *kbd_level, int *aux_level)
{
    bool aux = k->count && k->queue_aux[k->head];

    *kbd_level = k->count && !aux && (k->cmd_byte & CB_KBD_INT);
    *aux_level = k->count && aux && (k->cmd_byte & CB_AUX_INT);
}

static void update_irqs(struct i8042 *k)
{
    int kbd_level, aux_level;
    const struct hv_platform *p = k->dev.platform;

    irq_levels(k, &kbd_level, &aux_level);
    if (kbd_level != k->kbd_level) {
        k->kbd_level = kbd_level;
        p->set_irq(p->opaque, I8042_KBD_IRQ, kbd_level);
    }
    if (aux_level != k->aux_level) {
        k->aux_level = aux_level;
        p->set_irq(p->opaque, I8042_AUX_IRQ, aux_level);
    }
}

static void queue_byte(struct i8042 *k, uint8_t byte, bool aux)
{
    unsigned slot;

    if (k->count == I8042_QUEUE)
        return;
    slot = (k->head + k->count) % I8042_QUEUE;
    k->queue[slot] = byte;
    k->queue_aux[slot] = aux;
    k->count++;
}

static void reset_line(struct i8042 *k)
{
    k->dev.platform->request_stop(k->dev.platform->opaque, HV_STOP_REBOOT, 0);
}

static void keyboard_command(struct i8042 *k, uint8_t val)
{
    if (k->pending_kbd) {
        uint8_t cmd = k->pending_kbd;
        k->pending_kbd = 0;
        queue_byte(k, KBD_ACK, false);
        if (cmd == 0xf0 && val == 0)
            queue_byte(k, 0x02, false); /* current scan code set */
        return;
    }
    switch (val) {
    case 0xff: /* reset and self test */
        queue_byte(k, KBD_ACK, false);
        queue_byte(k, 0xaa, false);
        break;
    case 0xf2: /* identify: MF2 keyboard */
        queue_byte(k, KBD_ACK, false);
        queue_byte(k, 0xab, false);
        queue_byte(k, (k->cmd_byte & CB_TRANSLATE) ? 0x41 : 0x83, false);
        break;
    case 0xee: /* echo */
        queue_byte(k, 0xee, false);
        break;
    case 0xed: /* LEDs, typematic, scan code set: one parameter byte follows */
    case 0xf3:
    case 0xf0:
        k->pending_kbd = val;
        queue_byte(k, KBD_ACK, false);
        break;
    default:
        queue_byte(k, KBD_ACK, false);
        break;
    }
}

static void controller_data(struct i8042 *k, uint8_t val)
{
    uint8_t cmd = k->pending_ctrl;

    k->pending_ctrl = 0;
    switch (cmd) {
    case 0x60:
        k->cmd_byte = val;
        break;
    case 0xd1: /* write output port: bit 0 low holds the CPU in reset */
        if (!(val & 1))
            reset_line(k);
        break;
    case 0xd2:
        queue_byte(k, val, false);
        break;
    case 0xd3:
        queue_byte(k, val, true);
        break;
    case 0xd4: /* to the mouse: there is none */
        queue_byte(k, 0xfe, true);
        break;
    default:
        k->cmd_byte &= ~CB_KBD_OFF;
        keyboard_command(k, val);
        break;
    }
}

static void controller_command(struct i8042 *k, uint8_t cmd)
{
    switch (cmd) {
    case 0x20:
        queue_byte(k, k->cmd_byte, false);
        break;
    case 0x60:
    case 0xd1:
    case 0xd2:
    case 0xd3:
    case 0xd4:
        k->pending_ctrl = cmd;
        break;
    case 0xa7:
        k->cmd_byte |= CB_AUX_OFF;
        break;
    case 0xa8:
        k->cmd_byte &= ~CB_AUX_OFF;
        break;
    case 0xa9: /* AUX interface test: OK */
    case 0xab: /* keyboard interface test: OK */
        queue_byte(k, 0x00, false);
        break;
    case 0xaa: /* controller self test */
        queue_byte(k, 0x55, false);
        break;
    case 0xad:
        k->cmd_byte |= CB_KBD_OFF;
        break;
    case 0xae:
        k->cmd_byte &= ~CB_KBD_OFF;
        break;
    case 0xd0: /* read output port: A20 on, not in reset */
        queue_byte(k, 0x03, false);
        break;
    default:
        /* 0xF0-0xFF pulse output port bits low for 6 us; bit 0 is the reset line. */
        if (cmd >= 0xf0 && !(cmd & 1))
            reset_line(k);
        break;
    }
}

static void i8042_read(struct hv_device *dev, uint64_t offset, void *data, unsigned size)
{
    struct i8042 *k = hv_container_of(dev, struct i8042, dev);
    uint8_t val = 0xff;

    if (offset == OFF_DATA) {
        if (k->count) {
            val = k->queue[k->head];
            k->head = (k->head + 1) % I8042_QUEUE;
            k->count--;
            /* ISA IRQs are edge triggered: drop the line so the next byte makes a new edge. */
            if (k->kbd_level || k->aux_level) {
                const struct hv_platform *p = k->dev.platform;
                p->set_irq(p->opaque, k->kbd_level ? I8042_KBD_IRQ : I8042_AUX_IRQ, 0);
                k->kbd_level = k->aux_level = 0;
            }
        } else {
            val = 0;
        }
    } else if (offset == OFF_STATUS) {
        val = STS_SYS | (k->last_was_cmd ? STS_CMD : 0);
        if (k->count)
            val |= STS_OBF | (k->queue_aux[k->head] ? STS_AUX_OBF : 0);
    }
    memset(data, 0, size);
    *(uint8_t *)data = val;
    update_irqs(k);
}

static void i8042_write(struct hv_device *dev, uint64_t offset, const void *data, unsigned size)
{
    struct i8042 *k = hv_container_of(dev, struct i8042, dev);
    uint8_t val = *(const uint8_t *)data;

    (void)size;
    if (offset == OFF_DATA) {
        k->last_was_cmd = false;
        controller_data(k, val);
    } else if (offset == OFF_STATUS) {
        k->last_was_cmd = true;
        controller_command(k, val);
    }
    update_irqs(k);
}

static void i8042_reset(struct hv_device *dev)
{
    struct i8042 *k = hv_container_of(dev, struct i8042, dev);

    k->cmd_byte = CB_KBD_INT | CB_TRANSLATE | CB_AUX_OFF;
    k->pending_ctrl = k->pending_kbd = 0;
    k->head = k->count = 0;
    k->last_was_cmd = false;
    update_irqs(k);
}

static const struct hv_device_ops i8042_ops = {
    .read = i8042_read,
    .write = i8042_write,
    .reset = i8042_reset,
};

void i8042_init(struct i8042 *k, const struct hv_platform *platform)
{
    memset(k, 0, sizeof(*k));
    k->dev = (struct hv_device){.name = "i8042", .ops = &i8042_ops, .platform = platform};
    i8042_reset(&k->dev);
}

void i8042_ctrl_alt_del(struct i8042 *k)
{
    /* Set 1 codes when the controller translates (Linux's default), set 2 otherwise. */
    static const uint8_t set1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
    static const uint8_t set2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14};
    const uint8_t *codes = (k->cmd_byte & CB_TRANSLATE) ? set1 : set2;
    unsigned n = (k->cmd_byte & CB_TRANSLATE) ? sizeof(set1) : sizeof(set2);

    for (unsigned i = 0; i < n; i++)
        queue_byte(k, codes[i], false);
    update_irqs(k);
}

#define KBD_TAG SNAP_TAG('K', 'B', 'D', ' ')

void i8042_save(const struct i8042 *k, struct snap_w *w)
{
    size_t mark = snap_w_begin(w, KBD_TAG, 1);

    snap_w_u8(w, k->cmd_byte);
    snap_w_u8(w, k->pending_ctrl);
    snap_w_u8(w, k->pending_kbd);
    snap_w_bool(w, k->last_was_cmd);
    snap_w_u32(w, k->head);
    snap_w_u32(w, k->count);
    snap_w_bytes(w, k->queue, I8042_QUEUE);
    for (unsigned i = 0; i < I8042_QUEUE; i++)
        snap_w_bool(w, k->queue_aux[i]);
    snap_w_end(w, mark);
}

/* The commands controller_command and keyboard_command leave waiting for a byte. */
static bool valid_pending(uint8_t ctrl, uint8_t kbd)
{
    bool ctrl_ok = ctrl == 0 || ctrl == 0x60 || (ctrl >= 0xd1 && ctrl <= 0xd4);
    bool kbd_ok = kbd == 0 || kbd == 0xed || kbd == 0xf3 || kbd == 0xf0;

    return ctrl_ok && kbd_ok;
}

int i8042_load(struct i8042 *k, struct snap_r *r)
{
    const struct hv_platform *p = k->dev.platform;
    struct i8042 t;
    struct snap_r sub;
    uint16_t ver;

    if (snap_r_section(r, KBD_TAG, "i8042", 1, &sub, &ver))
        return r->err;
    t.cmd_byte = snap_r_u8(&sub);
    t.pending_ctrl = snap_r_u8(&sub);
    t.pending_kbd = snap_r_u8(&sub);
    t.last_was_cmd = snap_r_bool(&sub);
    t.head = snap_r_below(&sub, I8042_QUEUE, "i8042 queue head");
    t.count = snap_r_below(&sub, I8042_QUEUE + 1, "i8042 queue count");
    snap_r_bytes(&sub, t.queue, I8042_QUEUE);
    for (unsigned i = 0; i < I8042_QUEUE; i++)
        t.queue_aux[i] = snap_r_bool(&sub);
    if (snap_r_ok(&sub) && !valid_pending(t.pending_ctrl, t.pending_kbd))
        snap_r_fail(&sub, -EINVAL, "i8042: pending commands 0x%x/0x%x are not ones it waits on",
                    t.pending_ctrl, t.pending_kbd);
    if (snap_r_end(r, &sub))
        return r->err;
    k->cmd_byte = t.cmd_byte;
    k->pending_ctrl = t.pending_ctrl;
    k->pending_kbd = t.pending_kbd;
    k->last_was_cmd = t.last_was_cmd;
    k->head = t.head;
    k->count = t.count;
    memcpy(k->queue, t.queue, sizeof(k->queue));
    memcpy(k->queue_aux, t.queue_aux, sizeof(k->queue_aux));
    /* The levels follow the queue. Both lines are driven whatever this device last said, but
     * straight to their level: a detour through 0 would be an extra edge on an ISA line. */
    irq_levels(k, &k->kbd_level, &k->aux_level);
    p->set_irq(p->opaque, I8042_KBD_IRQ, k->kbd_level);
    p->set_irq(p->opaque, I8042_AUX_IRQ, k->aux_level);
    return 0;
}
