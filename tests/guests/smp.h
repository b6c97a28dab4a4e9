/*
 * smp: constants shared by smp.c and smp-trampoline.S.
 */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#define SMP_MAX_CPUS 64
#define SMP_AP_STACK_SHIFT 14 /* 16 KiB per AP */
/* The SIPI vector is a page number: vector 0x08 starts an AP in real mode
 * at CS=0x0800, IP=0, i.e. physical 0x8000. */
#define SMP_TRAMPOLINE_BASE 0x8000
#define SMP_SIPI_VECTOR (SMP_TRAMPOLINE_BASE >> 12)

#ifndef __ASSEMBLER__
#include <stdint.h>

/* Defined in smp-trampoline.S. */
extern const char smp_trampoline_start[], smp_trampoline_end[];
/* Used by smp-trampoline.S: the next free AP stack index, and the stacks. */
extern uint32_t smp_ap_next;
extern uint8_t smp_ap_stacks[SMP_MAX_CPUS - 1][1u << SMP_AP_STACK_SHIFT];
/* Called by smp-trampoline.S on each AP's own stack. */
__attribute__((noreturn)) void smp_ap_main(void);
#endif

#endif
