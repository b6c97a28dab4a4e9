/*
 * The daemon/worker boundary. A worker is `vmmd run` started detached with
 * --control: it serves a Unix stream socket where each request is one line
 * of JSON and each reply is one line of JSON:
 *
 *   {"cmd":"status"}            {"ok":true,"state":"running"|"paused","pid":N,"boots":N}
 *                               (pid: as the host sees it, also inside the sandbox)
 *   {"cmd":"stats"}             {"ok":true,"uptime_ns":N,"memory_bytes":N,"console_bytes":N,
 *                                "exits":{"io":N,...},"writes_ignored":N,"boots":N,
 *                                "disks":[{"read_bytes":N,...}],"nics":[{"rx_bytes":N,...}]}
 *   {"cmd":"pause"|"resume"|"stop"|"reboot"}           {"ok":true}
 *   {"cmd":"shutdown"}          Ctrl-Alt-Del, and the next reboot ends the worker: {"ok":true}
 *   {"cmd":"console","tail":N}  {"ok":true,"bytes":M} followed by M raw bytes
 *   {"cmd":"attach","tail":N}   {"ok":true}, then the connection is the raw console both ways,
 *                               starting with the last N bytes of output (tail optional)
 *   {"cmd":"set_io_limits","disks":[L|null,...],"nics":[...]}  {"ok":true}: each device's
 *                               I/O limits (L: {"bytes_per_s":N,"ops_per_s":N,"burst_bytes":N,
 *                               "burst_ops":N}, keys optional), by index, at once; the disks
 *                               and nics of "stats" carry "throttled_ns", "throttled_events"
 *   {"cmd":"snapshot","leave_paused":B,"no_swap":B}  with two descriptors (SCM_RIGHTS): the
 *                               state and memory files to write; {"ok":true,"state_bytes":N,
 *                               "memory_bytes":N,"memory_written":N,"paused_ns":N,"state":S}
 *   {"cmd":"migrate","ticket":HEX,"max_downtime_ms":N,"timeout_ms":N,"resend_dirtied":B}
 *                               with one descriptor, the connection to the target's worker:
 *                               {"ok":true} once the pre-copy thread runs; then
 *   {"cmd":"migrate_status"}    {"ok":true,"phase":"precopy|stopping|done|failed","round":N,
 *                                "pages_total":N,"pages_left":N,"bytes_sent":N,
 *                                "throughput_mbps":F,"elapsed_ms":N,"downtime_ms":F,"error":S}
 *                               A worker whose VM moved exits with reason "migrated".
 *   A migration's target is a worker started with --incoming-fd (see migration.h).
 *   {"cmd":"selftest-forbidden-syscall"}  opens "/": a sandboxed worker dies of its system
 *                               call filter (exit reason "seccomp"); others reply {"ok":true}
 *
 * Errors: {"ok":false,"error":"..."}. When the worker ends it first writes
 * its exit file (JSON {"reason":"poweroff|reboot|crash|error|stopped|seccomp|migrated",
 * "detail":"...","status":N}) so the daemon knows why even if it was not
 * running at the time. No exit file and a dead worker means it was killed.
 */
#ifndef VMMD_WORKER_PROTO_H
#define VMMD_WORKER_PROTO_H

#include <sched.h>

/* The namespaces a sandboxed worker runs in (the daemon probes that it can make them). */
#define WORKER_NAMESPACES (CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET)

#define WORKER_CONTROL_SOCKET "control.sock"
#define WORKER_CONSOLE_LOG    "console.log"
#define WORKER_EXIT_FILE      "exit.json"
#define WORKER_LOG            "worker.log"
#define WORKER_LINE_MAX       4096
#define WORKER_CONSOLE_LOG_MAX (1024 * 1024)
#define WORKER_CONSOLE_TAIL_MAX (64 * 1024) /* the ring buffer: no reply is longer */

#endif
