/* The lifecycle table (see lifecycle.h). */
#include "lifecycle.h"

#include <string.h>

static const char *const state_names[] = {
#define VMMD_X_NAME(name, str) str,
    VMMD_STATES(VMMD_X_NAME)
#undef VMMD_X_NAME
};

static const char *const action_names[] = {
#define VMMD_X_NAME(name, str) str,
    VMMD_ACTIONS(VMMD_X_NAME)
#undef VMMD_X_NAME
};

#define S(x) (1u << VMMD_ST_##x)

/* For each action: the states it is allowed in, and where it leads. */
static const struct {
    unsigned from;
    enum vmmd_state to; /* VMMD_STATE_COUNT: stays where it is */
} rules[VMMD_ACTION_COUNT] = {
    [VMMD_ACT_START] = {S(STOPPED) | S(CRASHED), VMMD_ST_STARTING},
    /* stop is also the way out of a shutdown that takes too long */
    [VMMD_ACT_STOP] = {S(STARTING) | S(RUNNING) | S(PAUSED) | S(STOPPING), VMMD_ST_STOPPING},
    [VMMD_ACT_SHUTDOWN] = {S(RUNNING) | S(PAUSED), VMMD_ST_STOPPING},
    [VMMD_ACT_REBOOT] = {S(RUNNING) | S(PAUSED), VMMD_ST_RUNNING},
    [VMMD_ACT_PAUSE] = {S(RUNNING), VMMD_ST_PAUSED},
    [VMMD_ACT_RESUME] = {S(PAUSED), VMMD_ST_RUNNING},
    [VMMD_ACT_DELETE] = {S(STOPPED) | S(CRASHED), VMMD_STATE_COUNT},
    [VMMD_ACT_EDIT] = {S(STOPPED) | S(CRASHED), VMMD_STATE_COUNT},
};

const char *vmmd_state_name(enum vmmd_state s)
{
    return (unsigned)s < VMMD_STATE_COUNT ? state_names[s] : "unknown";
}

int vmmd_state_parse(const char *name)
{
    for (int i = 0; i < VMMD_STATE_COUNT; i++)
        if (strcmp(state_names[i], name) == 0)
            return i;
    return -1;
}

const char *vmmd_action_name(enum vmmd_action a)
{
    return (unsigned)a < VMMD_ACTION_COUNT ? action_names[a] : "unknown";
}

int vmmd_action_parse(const char *name)
{
    for (int i = 0; i < VMMD_ACTION_COUNT; i++)
        if (strcmp(action_names[i], name) == 0)
            return i;
    return -1;
}

bool vmmd_action_allowed(enum vmmd_state s, enum vmmd_action a)
{
    return (unsigned)s < VMMD_STATE_COUNT && (unsigned)a < VMMD_ACTION_COUNT &&
           (rules[a].from & (1u << s));
}

enum vmmd_state vmmd_action_next_state(enum vmmd_state s, enum vmmd_action a)
{
    return rules[a].to == VMMD_STATE_COUNT ? s : rules[a].to;
}

bool vmmd_state_has_worker(enum vmmd_state s)
{
    return s == VMMD_ST_STARTING || s == VMMD_ST_RUNNING || s == VMMD_ST_PAUSED ||
           s == VMMD_ST_STOPPING;
}
