/* Ports for test guests and firmware habits: debug exit (0x501) and the POST code port (0x80). */
#ifndef HV_DEBUG_PORTS_H
#define HV_DEBUG_PORTS_H

#include <stdint.h>

#include "bus.h"

#define DEBUG_EXIT_PORT 0x501
#define POST_CODE_PORT  0x80

struct debug_exit {
    struct hv_device dev;
};

struct post_code {
    struct hv_device dev;
    uint8_t last;
};

void debug_exit_init(struct debug_exit *d, const struct hv_platform *platform);
void post_code_init(struct post_code *p, const struct hv_platform *platform);

#endif
