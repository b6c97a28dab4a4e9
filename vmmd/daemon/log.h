/* Leveled logging to stderr or a file; arguments are not evaluated below the level. */
#ifndef VMMD_LOG_H
#define VMMD_LOG_H

enum vmmd_log_level { VMMD_LOG_ERROR, VMMD_LOG_WARN, VMMD_LOG_INFO, VMMD_LOG_DEBUG };

extern int vmmd_log_level;

/* path NULL: stderr. Returns 0 or -errno. */
int vmmd_log_open(const char *path);
/* For SIGHUP: reopen the same path (after logrotate moved it). */
int vmmd_log_reopen(void);
void vmmd_log_write(enum vmmd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define vmmd_log(level, ...)                                                                       \
    do {                                                                                           \
        if ((int)(level) <= vmmd_log_level)                                                        \
            vmmd_log_write(level, __VA_ARGS__);                                                    \
    } while (0)
#define log_error(...) vmmd_log(VMMD_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  vmmd_log(VMMD_LOG_WARN, __VA_ARGS__)
#define log_info(...)  vmmd_log(VMMD_LOG_INFO, __VA_ARGS__)
#define log_debug(...) vmmd_log(VMMD_LOG_DEBUG, __VA_ARGS__)

#endif
