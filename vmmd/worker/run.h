/* `vmmd run`: one VM in the foreground, its serial console on stdin/stdout. */
#ifndef VMMD_RUN_H
#define VMMD_RUN_H

/* Exit statuses of `vmmd run`, besides the debug-exit port's own values. */
#define VMMD_RUN_EXIT_OK      0 /* the guest powered off */
#define VMMD_RUN_EXIT_FAILURE 1 /* setup error, triple fault, VMM error */
#define VMMD_RUN_EXIT_USAGE   2
#define VMMD_RUN_EXIT_REBOOT  3 /* the guest rebooted and --on-reboot=exit */

int vmmd_run_main(int argc, char **argv);

#endif
