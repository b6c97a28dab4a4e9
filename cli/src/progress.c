/*
 * The progress bar (see progress.h). Rates are in MB/s (10^6 bytes), as dd
 * and curl print them, so they compare with those at a glance.
 */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define REDRAW_MS 100

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void cli_progress_format(int64_t done, int64_t total, double elapsed_s, char *out, size_t size)
{
    char rate[32] = "";
    size_t n = 0;

    if (elapsed_s > 0)
        snprintf(rate, sizeof(rate), "%7.1f MB/s   ", (double)done / 1e6 / elapsed_s);
    if (total > 0) {
        char bar[CLI_PROGRESS_BAR + 1];
        int64_t shown = done > total ? total : done;
        int fill = (int)(shown * CLI_PROGRESS_BAR / total);

        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '-', (size_t)(CLI_PROGRESS_BAR - fill));
        bar[CLI_PROGRESS_BAR] = '\0';
        n = (size_t)snprintf(out, size, "[%s] %3d%%  %s", bar, (int)(shown * 100 / total), rate);
        if (n < size)
            snprintf(out + n, size - n, "%.1f / %.1f MB", (double)done / 1e6, (double)total / 1e6);
        return;
    }
    snprintf(out, size, "%s%.1f MB", rate, (double)done / 1e6);
}

int cli_progress_decile(int64_t done, int64_t total)
{
    if (total <= 0)
        return 0;
    if (done >= total)
        return 10;
    return (int)(done * 10 / total);
}

void cli_progress_start(struct cli_progress *p, FILE *out, bool tty, const char *label)
{
    memset(p, 0, sizeof(*p));
    p->out = out;
    p->tty = tty;
    p->label = label;
    p->start_ms = now_ms();
}

static void draw(struct cli_progress *p, long long now)
{
    char line[160];
    double elapsed = (double)(now - p->start_ms) / 1000.0;

    cli_progress_format(p->done, p->total, elapsed, line, sizeof(line));
    if (p->tty) {
        /* \r and erase-to-end: the new line may be shorter than the old. */
        fprintf(p->out, "\r%s %s\033[K", p->label, line);
        p->drawn = true;
    } else {
        fprintf(p->out, "%s %s\n", p->label, line);
    }
    fflush(p->out);
    p->drawn_ms = now;
}

void cli_progress_update(struct cli_progress *p, int64_t done, int64_t total)
{
    long long now = now_ms();
    int decile;

    p->done = done;
    if (total > 0)
        p->total = total;
    if (p->tty) {
        if (!p->drawn || now - p->drawn_ms >= REDRAW_MS)
            draw(p, now);
        return;
    }
    decile = cli_progress_decile(p->done, p->total);
    if (decile > p->decile) {
        p->decile = decile;
        draw(p, now);
    }
}

void cli_progress_end(struct cli_progress *p)
{
    /*
     * Nothing done and nothing on screen (an upload refused from its headers, an import done
     * before its first event): no empty bar.
     */
    if (!p->drawn && p->done == 0)
        return;
    if (p->tty) {
        draw(p, now_ms());
        fputc('\n', p->out);
        fflush(p->out);
    } else if (cli_progress_decile(p->done, p->total) > p->decile || p->total == 0) {
        draw(p, now_ms());
    }
}
