/*
 * systemd's readiness protocol (sd_notify(3)) without libsystemd: one
 * datagram of "KEY=VALUE\n" lines to the socket in $NOTIFY_SOCKET. The
 * protocol is small and stable, and the daemon needs no extra library.
 */
#ifndef VMMD_SD_NOTIFY_H
#define VMMD_SD_NOTIFY_H

/*
 * Sends state (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET, a path or
 * an abstract name ("@..."). Returns 1 when sent, 0 when not run by a
 * service manager (no $NOTIFY_SOCKET), -errno on failure.
 */
int vmmd_sd_notify(const char *state);

/* True when stderr is connected to the journal ($JOURNAL_STREAM names it). */
int vmmd_stderr_is_journal(void);

#endif
