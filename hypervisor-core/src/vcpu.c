/*
 * One thread per vCPU, each an explicit loop: look at the run-control
 * flags (stop, pause), enter KVM_RUN, dispatch the exit. Kicking a vCPU
 * uses kvm_run.immediate_exit plus a signal, in the order the KVM API
 * documents, so a kick can never be lost between the flag check and
 * KVM_RUN: the thread clears immediate_exit before it looks at the flags,
 * the kicker sets the flags before it sets immediate_exit.
 */
#include "vm_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

int hv__kick_signal(void)
{
    return SIGRTMIN;
}

/* Returns false when the thread should end. Parks while the VM is paused. */
static bool vcpu_may_run(struct hv_vcpu *vcpu)
{
    struct hv_vm *vm = vcpu->vm;
    bool run;

    __atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&vm->ctl_lock);
    if (vm->pause_requested && vm->stop_reason == HV_STOP_NONE) {
        /*
         * A port or MMIO read just handled completes only in the next KVM_RUN: until then
         * the guest's registers are not final. Enter once with immediate_exit, which finishes
         * it without running another instruction, so a paused vCPU's state can be saved.
         */
        pthread_mutex_unlock(&vm->ctl_lock);
        __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        ioctl(vcpu->fd, KVM_RUN, 0);
        __atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
        pthread_mutex_lock(&vm->ctl_lock);
    }
    if (vm->pause_requested && vm->stop_reason == HV_STOP_NONE) {
        vm->parked++;
        pthread_cond_broadcast(&vm->ctl_cond);
        while (vm->pause_requested && vm->stop_reason == HV_STOP_NONE)
            pthread_cond_wait(&vm->ctl_cond, &vm->ctl_lock);
        vm->parked--;
    }
    run = vm->stop_reason == HV_STOP_NONE;
    pthread_mutex_unlock(&vm->ctl_lock);
    return run;
}

static void vcpu_thread_done(struct hv_vm *vm)
{
    uint64_t one = 1;

    pthread_mutex_lock(&vm->ctl_lock);
    if (--vm->threads_running == 0) {
        if (write(vm->stopped_fd, &one, sizeof(one)) < 0) {
            /* an eventfd write of 1 cannot fail short of overflow; nothing to do */
        }
    }
    pthread_cond_broadcast(&vm->ctl_cond);
    pthread_mutex_unlock(&vm->ctl_lock);
}

void *hv__vcpu_thread(void *arg)
{
    struct hv_vcpu *vcpu = arg;
    struct hv_vm *vm = vcpu->vm;
    struct hv_exit_result result;
    sigset_t kick;

    if (vm->thread_start)
        vm->thread_start(vm->thread_opaque, HV_THREAD_VCPU);
    sigemptyset(&kick);
    sigaddset(&kick, hv__kick_signal());
    pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

    while (vcpu_may_run(vcpu)) {
        if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                __atomic_fetch_add(&vcpu->counters.exits[HV_EXIT_INTR], 1, __ATOMIC_RELAXED);
                continue;
            }
            char detail[96];
            snprintf(detail, sizeof(detail), "KVM_RUN failed on vCPU %u: %s", vcpu->index,
                     strerror(errno));
            hv__vm_stop(vm, HV_STOP_ERROR, 0, detail);
            break;
        }
        if (!__atomic_load_n(&vm->first_exit_ns, __ATOMIC_RELAXED)) {
            uint64_t zero = 0, t = hv__now_ns();
            __atomic_compare_exchange_n(&vm->first_exit_ns, &zero, t, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED);
        }
        hv_exit_dispatch(vcpu->run, vm->run_size, &vm->bus, &vcpu->counters, &result);
        if (result.stop != HV_STOP_NONE) {
            char detail[160];
            snprintf(detail, sizeof(detail), "vCPU %u: %s", vcpu->index, result.detail);
            hv__vm_stop(vm, result.stop, 0, detail);
        }
    }
    vcpu_thread_done(vm);
    return NULL;
}
