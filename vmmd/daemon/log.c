/*
 * Log lines: "2026-11-26T13:04:15.123Z info: message". When stderr is the
 * journal (run by systemd), "<6>info: message" instead: the journal adds its
 * own timestamp and takes the sd-daemon(3) prefix as the line's priority.
 */
#include "log.h"
#include "sd_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int vmmd_log_level = VMMD_LOG_INFO;
static int log_fd = STDERR_FILENO;
static char *log_path;
static int journal = -1; /* unknown until the first line */

int vmmd_log_open(const char *path)
{
    free(log_path);
    log_path = path ? strdup(path) : NULL;
    return vmmd_log_reopen();
}

int vmmd_log_reopen(void)
{
    int fd;

    if (!log_path)
        return 0;
    fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    return 0;
}

void vmmd_log_write(enum vmmd_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    static const int syslog_priority[] = {3, 4, 6, 7}; /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
    char line[2048];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    if (journal < 0)
        journal = vmmd_stderr_is_journal();
    if (journal && log_fd == STDERR_FILENO) {
        n = snprintf(line, sizeof(line), "<%d>%s: ", syslog_priority[level], names[level]);
    } else {
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[level]);
    }
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    if (write(log_fd, line, (size_t)n) < 0) {
        /* nowhere left to report it */
    }
}
