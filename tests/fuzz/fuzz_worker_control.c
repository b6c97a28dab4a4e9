/*
 * libFuzzer harness for the worker's control protocol (vmmd/worker/
 * worker_control.c): what a client of a worker's control socket sends, JSON
 * command lines, split into reads at places the input chooses, parsed and
 * answered through control_server_handle() exactly as the worker's poll loop
 * calls it. The client is one end of a socketpair; the worker's end is
 * non-blocking so an answer the harness has not read yet never blocks it.
 *
 * The VM behind it is a fake (the hv_vm_* calls worker_control.c makes,
 * defined below): the protocol is under test here, not the hypervisor, and
 * a real VM needs /dev/kvm. Its console is a real console_buffer with output
 * the input writes, so "console" and "attach" send real tails. Each input
 * starts from a fresh connection; between inputs the VM may be "rebooting"
 * (ctx.vm NULL) as the input's first byte says.
 *
 * Input: byte 0 flags (bit 0: the guest is rebooting, bit 1: paused), then
 * records of [len][len bytes]: bytes sent on the socket as one write, each
 * followed by one round of the control loop; a record of length 0 writes
 * the next byte's worth of console output instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "console_buffer.h"
#include "sandbox.h"
#include "worker_control.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --- the fake VM ------------------------------------------------------------------------- */

struct hv_vm {
    unsigned pauses, resumes, stops, reboots, ctrl_alt_dels, limit_changes;
    size_t console_input;
};

/* Two disks and a NIC, as the worker's configuration (set_io_limits checks the index). */
static struct hv_disk_config disks[2];
static struct hv_nic_config nics[1];

int hv_vm_set_disk_limits(struct hv_vm *vm, unsigned index, const struct hv_io_limits *limits)
{
    if (index >= 2 || !hv_io_limits_valid(limits))
        abort(); /* the worker checks both before it asks */
    vm->limit_changes++;
    return 0;
}

int hv_vm_set_nic_limits(struct hv_vm *vm, unsigned index, const struct hv_io_limits *limits)
{
    if (index >= 1 || !hv_io_limits_valid(limits))
        abort();
    vm->limit_changes++;
    return 0;
}

int hv_vm_pause(struct hv_vm *vm)
{
    vm->pauses++;
    return 0;
}

int hv_vm_resume(struct hv_vm *vm)
{
    vm->resumes++;
    return 0;
}

void hv_vm_request_stop(struct hv_vm *vm)
{
    vm->stops++;
}

void hv_vm_request_reboot(struct hv_vm *vm)
{
    vm->reboots++;
}

int hv_vm_send_ctrl_alt_del(struct hv_vm *vm)
{
    vm->ctrl_alt_dels++;
    return 0;
}

size_t hv_vm_console_input(struct hv_vm *vm, const uint8_t *buf, size_t len)
{
    (void)buf;
    vm->console_input += len;
    return len;
}

void hv_vm_get_stats(struct hv_vm *vm, struct hv_vm_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->exits[0] = vm->pauses;
    out->uptime_ns = 1000000;
    out->memory_bytes = 32u << 20;
    out->nr_disks = 1;
    out->nr_nics = 1;
    out->disks[0].read_bytes = 4096;
}

/* Snapshots and migrations need descriptors sent with the line, which this harness's plain
 * writes never carry: worker_control.c refuses them first. These only link. */
int hv_vm_snapshot(struct hv_vm *vm, int state_fd, int mem_fd, unsigned flags,
                   struct hv_snapshot_info *info, char *err, size_t errlen)
{
    (void)vm, (void)state_fd, (void)mem_fd, (void)flags, (void)info;
    snprintf(err, errlen, "not in the fuzz harness");
    return -ENOSYS;
}

int mig_ticket_parse(const char *hex, uint8_t out[MIG_TICKET_BYTES])
{
    (void)out;
    return hex && strlen(hex) == 2 * MIG_TICKET_BYTES ? 0 : -1;
}

int mig_send_start(struct mig_send *m)
{
    (void)m;
    return -ENOSYS;
}

void mig_send_progress(struct mig_send *m, struct mig_progress *out)
{
    (void)m;
    memset(out, 0, sizeof(*out));
    out->phase = MIG_FAILED;
}

void mig_send_join(struct mig_send *m)
{
    (void)m;
}

/* The pid the status reply reports: this harness runs unsandboxed. */
pid_t sandbox_host_pid(void)
{
    return getpid();
}

/* --- the harness --------------------------------------------------------------------------- */

static struct console_buffer console;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (console_buffer_init(&console, NULL, 0, -1) != 0)
        abort();
    return 0;
}

static void drain(int fd)
{
    char buf[16384];

    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
}

static void loop_once(struct control_server *s, struct worker_ctx *ctx)
{
    struct pollfd fds[1 + CONTROL_MAX_CLIENTS];
    int n = control_server_pollfds(s, fds);

    /* What poll() would say: a connected client with bytes (or EOF) to read. */
    if (poll(fds, (nfds_t)n, 0) > 0)
        control_server_handle(s, fds, n, ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct control_server s = {.listen_fd = -1};
    struct hv_vm vm = {0};
    struct worker_ctx ctx = {
        .console = &console, .disks = disks, .nr_disks = 2, .nics = nics, .nr_nics = 1};
    int sv[2];

    if (size < 1)
        return 0;
    ctx.vm = data[0] & 1 ? NULL : &vm;
    ctx.paused = data[0] & 2;
    data++, size--;
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        s.clients[i].fd = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    s.clients[0] = (struct control_client){.fd = sv[0]};

    while (size) {
        size_t len = data[0];
        data++, size--;
        if (len == 0) { /* console output from the guest */
            size_t n = size ? data[0] : 0;
            if (size)
                data++, size--;
            n = n < size ? n : size;
            console_buffer_write(&console, data, n);
            data += n, size -= n;
            continue;
        }
        len = len < size ? len : size;
        if (send(sv[1], data, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
            break;
        data += len, size -= len;
        loop_once(&s, &ctx);
        drain(sv[1]);
    }
    /* The client hangs up: the server drops it (and detaches it from the console). */
    close(sv[1]);
    loop_once(&s, &ctx);
    control_server_close(&s);
    return 0;
}
