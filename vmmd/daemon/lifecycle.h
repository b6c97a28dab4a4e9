/*
 * The VM lifecycle as a table: which action is allowed in which state and
 * which state it leads to. Handlers ask here before touching a worker, so an
 * action in the wrong state is a 409 that names the current state.
 */
#ifndef VMMD_LIFECYCLE_H
#define VMMD_LIFECYCLE_H

#include <stdbool.h>

#define VMMD_STATES(X)                                                                             \
    X(STOPPED, "stopped")                                                                          \
    X(STARTING, "starting")                                                                        \
    X(RUNNING, "running")                                                                          \
    X(PAUSED, "paused")                                                                            \
    X(STOPPING, "stopping")                                                                        \
    X(CRASHED, "crashed")

enum vmmd_state {
#define VMMD_X_STATE(name, str) VMMD_ST_##name,
    VMMD_STATES(VMMD_X_STATE)
#undef VMMD_X_STATE
        VMMD_STATE_COUNT
};

#define VMMD_ACTIONS(X)                                                                            \
    X(START, "start")                                                                              \
    X(STOP, "stop")                                                                                \
    X(SHUTDOWN, "shutdown")                                                                        \
    X(REBOOT, "reboot")                                                                            \
    X(PAUSE, "pause")                                                                              \
    X(RESUME, "resume")                                                                            \
    X(DELETE, "delete")                                                                            \
    X(EDIT, "edit") /* change the definition (PATCH of anything but name and autostart) */

enum vmmd_action {
#define VMMD_X_ACTION(name, str) VMMD_ACT_##name,
    VMMD_ACTIONS(VMMD_X_ACTION)
#undef VMMD_X_ACTION
        VMMD_ACTION_COUNT
};

const char *vmmd_state_name(enum vmmd_state s);
/* -1 for an unknown name. */
int vmmd_state_parse(const char *name);
const char *vmmd_action_name(enum vmmd_action a);
int vmmd_action_parse(const char *name);
bool vmmd_action_allowed(enum vmmd_state s, enum vmmd_action a);
/* The state an allowed action moves the VM into right away. */
enum vmmd_state vmmd_action_next_state(enum vmmd_state s, enum vmmd_action a);
/* Whether a worker process exists in this state. */
bool vmmd_state_has_worker(enum vmmd_state s);

#endif
