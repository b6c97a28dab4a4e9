/*
 * vmctl's progress bar on stderr, for `image import`: on a terminal one line
 * redrawn in place (bar, percent, MB/s, MB done of total), at most ten
 * times a second; otherwise (a log, a pipe) one line each time another
 * 10 % is done, so a log stays short. The formatting is pure, so
 * tests/unit/cli tests it without a terminal.
 */
#ifndef VMCTL_PROGRESS_H
#define VMCTL_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The width of the bar between its brackets. */
#define CLI_PROGRESS_BAR 30

struct cli_progress {
    FILE *out;
    const char *label; /* "uploading debian", "converting debian" */
    bool tty;
    long long start_ms, drawn_ms; /* monotonic */
    int64_t done, total;          /* total 0: not known yet */
    int decile;                   /* the last tenth reported off a tty */
    bool drawn;                   /* a tty line is on screen */
};

/*
 * "[###############---------------]  50%   12.3 MB/s   5.0 / 10.0 MB"; without a
 * total, "12.3 MB/s   5.0 MB". elapsed_s <= 0 leaves the rate out.
 */
void cli_progress_format(int64_t done, int64_t total, double elapsed_s, char *out, size_t size);

/* The tenths of total that done has reached, 0 to 10 (0 without a total). */
int cli_progress_decile(int64_t done, int64_t total);

void cli_progress_start(struct cli_progress *p, FILE *out, bool tty, const char *label);
/* New figures; draws when it is time to. */
void cli_progress_update(struct cli_progress *p, int64_t done, int64_t total);
/* Draws the last figures and ends the line (a tty's bar stays on screen). */
void cli_progress_end(struct cli_progress *p);

#endif
