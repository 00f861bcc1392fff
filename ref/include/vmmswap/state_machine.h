/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/state_machine.h - the swap state x command table (spec 2.3), as data.
 *
 * vms_sm_lookup(state, cmd) says what the monitor does with a command in a state:
 *  - the action, which the monitor's event loop carries out (monitor.c);
 *  - whether a running background job must be aborted first (the command is then
 *    handled again, by the table, in the state the aborted job left behind:
 *    Pending);
 *  - the state entered when the action is accepted (for actions that start a job,
 *    the job's "in progress" state; the job's end decides the state after it).
 * "Ready" stands for crosvm's whole disabled loop. Status and Info are answered in
 * every state without a table lookup. One case outside the table: in Ready, while a
 * slow file cleanup runs, Disable without slow_file_cleanup ends the cleanup and is
 * accepted (the monitor checks it before the lookup, see dispatch() in monitor.c).
 */
#ifndef VMMSWAP_STATE_MACHINE_H
#define VMMSWAP_STATE_MACHINE_H

#include <stdbool.h>

#include <vmmswap/protocol.h>
#include <vmmswap/status.h>

enum vms_sm_action {
	VMS_ACT_IGNORE = 0,  /* reply IGNORED naming the state; nothing changes */
	VMS_ACT_ENABLE,	     /* register, move resident pages to staging -> Pending/Failed */
	VMS_ACT_REMOVE,	     /* already enabled: move what is resident now -> Pending/Failed */
	VMS_ACT_TRIM,	     /* start trim -> TrimInProgress -> Pending */
	VMS_ACT_SWAP_OUT,    /* start swap-out -> SwapOutInProgress -> Active/Failed */
	VMS_ACT_SWAP_IN,     /* start swap-in -> SwapInInProgress -> Ready */
	VMS_ACT_SET_CLEANUP, /* swap-in running: record slow_file_cleanup (latest wins) */
	VMS_ACT_EXIT,	     /* exit now (nothing to bring back) */
	VMS_ACT_EXIT_AFTER_SWAP_IN, /* bring everything back in, then exit */
};

struct vms_sm_entry {
	unsigned char action; /* enum vms_sm_action */
	bool abort_job;	      /* abort the running job first, then look up again */
	signed char next;     /* enum vms_swap_state entered on acceptance; -1: unchanged */
};

/* The entry for (state, cmd); cmd one of ENABLE, TRIM, SWAP_OUT, DISABLE, EXIT. */
const struct vms_sm_entry *vms_sm_lookup(int state, int cmd);

const char *vms_sm_action_name(int action);

#endif /* VMMSWAP_STATE_MACHINE_H */
