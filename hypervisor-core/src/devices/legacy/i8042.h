/* i8042 keyboard controller: its reset line reboots, its keyboard sends Ctrl-Alt-Del. */
#ifndef HV_I8042_H
#define HV_I8042_H

#include <stdint.h>
#include <stdbool.h>

#include "bus.h"
#include "snapshot/snap_buf.h"

#define I8042_BASE     0x60 /* data at 0x60, status/command at 0x64 */
#define I8042_LEN      5
#define I8042_KBD_IRQ  1
#define I8042_AUX_IRQ  12
#define I8042_QUEUE    32

struct i8042 {
    struct hv_device dev;
    uint8_t cmd_byte;
    uint8_t pending_ctrl; /* controller command waiting for its data byte */
    uint8_t pending_kbd;  /* keyboard command waiting for its parameter */
    bool last_was_cmd;
    uint8_t queue[I8042_QUEUE];
    bool queue_aux[I8042_QUEUE];
    unsigned head, count;
    int kbd_level, aux_level;
};

void i8042_init(struct i8042 *k, const struct hv_platform *platform);
/* Queues the make and break codes of Ctrl-Alt-Del (caller holds the bus lock). */
void i8042_ctrl_alt_del(struct i8042 *k);
/* Snapshot (section 'KBD '): command byte, pending commands and the output queue. The load
 * re-drives IRQ 1 and 12. Caller holds the bus lock. */
void i8042_save(const struct i8042 *k, struct snap_w *w);
int i8042_load(struct i8042 *k, struct snap_r *r);

#endif
