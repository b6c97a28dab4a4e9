/*
 * The event-stream splitter (see sse.h). Events may arrive cut anywhere, so
 * what follows the last blank line waits in buf for the next chunk.
 */
#include "sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_sse_feed(void *sse, const char *data, size_t len)
{
    struct cli_sse *s = sse;
    char *end;

    if (s->len + len + 1 > s->cap) {
        size_t cap = (s->len + len + 1) * 2;
        char *grown = realloc(s->buf, cap);
        if (!grown)
            return 1;
        s->buf = grown;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    while ((end = strstr(s->buf, "\n\n"))) {
        char *line, *save = NULL, id[32] = "-", type[64] = "-";
        const char *payload = NULL;
        int stop = 0;

        *end = '\0';
        for (line = strtok_r(s->buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (strncmp(line, "id: ", 4) == 0)
                snprintf(id, sizeof(id), "%s", line + 4);
            else if (strncmp(line, "event: ", 7) == 0)
                snprintf(type, sizeof(type), "%s", line + 7);
            else if (strncmp(line, "data: ", 6) == 0)
                payload = line + 6;
        }
        if (payload)
            stop = s->on_event(s->opaque, id, type, payload);
        s->len -= (size_t)(end + 2 - s->buf);
        memmove(s->buf, end + 2, s->len + 1);
        if (stop)
            return stop;
    }
    return 0;
}
