/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/state_machine.h - every transition of the swap state machine (spec 2.3),
 * as data, in two tables a reader can print (tools/vms_sm_dump):
 *
 *  1. state x command -> action (vms_sm_decide()): what the monitor does with a
 *     command in a state, whether a running background job must be aborted first
 *     (the command is then decided again in the state the aborted job left
 *     behind), and the state entered when the action is accepted. Two conditions
 *     outside the reported state take part, as guards: an accepted Exit that waits
 *     for its swap-in refuses every other command, and in Ready a Disable without
 *     slow_file_cleanup ends a running slow file cleanup.
 *  2. job x outcome -> state (vms_sm_job_end()): the state after a background job
 *     ends ok, aborted or failed, and what becomes of the last transition record
 *     (crosvm's SwapStatus.state_transition).
 *
 * The monitor (monitor_commands.c) carries out actions and jobs; it never writes a state
 * that one of these tables did not give it. "Ready" stands for crosvm's whole
 * disabled loop. Status, Info and ProcessForked are answered in every state
 * without a table lookup.
 * Explained in ref/CONTRACT.md (contract 2.3, 2.4); drawn in
 * ref/pictures/state_machine.svg by 'make docs'.
 */
#ifndef VMMSWAP_STATE_MACHINE_H
#define VMMSWAP_STATE_MACHINE_H

#include <stdbool.h>

#include <vmmswap/protocol.h>
#include <vmmswap/status.h>

enum vms_sm_action {
	VMS_ACT_IGNORE = 0,	    /* reply IGNORED naming the state; nothing changes */
	VMS_ACT_ENABLE,		    /* register, start the move job */
	VMS_ACT_REMOVE,		    /* already enabled: start the move job for what is resident */
	VMS_ACT_TRIM,		    /* start the trim job */
	VMS_ACT_SWAP_OUT,	    /* start the swap-out job */
	VMS_ACT_SWAP_IN,	    /* start the swap-in job */
	VMS_ACT_SET_CLEANUP,	    /* swap-in running: record slow_file_cleanup (latest wins) */
	VMS_ACT_EXIT,		    /* exit now (nothing to bring back) */
	VMS_ACT_EXIT_AFTER_SWAP_IN, /* bring everything back in, then exit */
	VMS_ACT_REFUSE_EXITING,	    /* guard: an Exit waits for its swap-in: FAILED, ESHUTDOWN */
	VMS_ACT_END_CLEANUP,	    /* guard: Ready, cleanup running: end it now, ACCEPTED */
	VMS_SM_NR_ACTIONS
};

/* The background jobs; each runs in one state, its "in progress" state. */
enum vms_sm_job {
	VMS_JOB_MOVE = 0, /* enable / re-enable: resident pages to staging (in Pending) */
	VMS_JOB_TRIM,	  /* TrimInProgress */
	VMS_JOB_SWAP_OUT, /* SwapOutInProgress */
	VMS_JOB_SWAP_IN,  /* SwapInInProgress */
	VMS_SM_NR_JOBS
};

enum vms_sm_outcome {
	VMS_OUT_OK = 0,	 /* the job did all its work */
	VMS_OUT_ABORTED, /* a command asked it to stop; what it did stays done */
	VMS_OUT_FAILED,	 /* an error: the job stopped; every page stays readable */
	VMS_SM_NR_OUTCOMES
};

/* What happens to the last transition record when a job ends. */
enum vms_sm_record {
	VMS_REC_SET = 0, /* the job's pages and time */
	VMS_REC_CLEAR,	 /* zeroed, as crosvm does on failure */
};

struct vms_sm_entry {
	unsigned char action; /* enum vms_sm_action */
	bool abort_job;	      /* abort the running job first, then decide again */
	signed char next;     /* enum vms_swap_state entered on acceptance; -1: unchanged */
	signed char job;      /* enum vms_sm_job the action starts; -1: none */
};

struct vms_sm_end {
	signed char next;     /* enum vms_swap_state after the job */
	unsigned char record; /* enum vms_sm_record */
};

/* The conditions besides the state that take part in a decision. */
struct vms_sm_guards {
	bool exiting;	      /* an accepted Exit waits for its swap-in */
	bool cleanup_running; /* Ready only: a slow file cleanup shrinks the old file */
	bool slow_cleanup;    /* the command carries slow_file_cleanup */
};

/*
 * The entry for (state, cmd) under the guards; cmd one of ENABLE, TRIM, SWAP_OUT,
 * DISABLE, EXIT. NULL for any other command or an unknown state.
 */
const struct vms_sm_entry *vms_sm_decide(int state, int cmd, const struct vms_sm_guards *g);
/* The plain table cell, without guards (what the printed table shows). */
const struct vms_sm_entry *vms_sm_lookup(int state, int cmd);

/* How a job's end changes the state; NULL for an unknown job or outcome. */
const struct vms_sm_end *vms_sm_job_end(int job, int outcome);
/* The state a job runs in. */
int vms_sm_job_state(int job);

const char *vms_sm_action_name(int action);
const char *vms_sm_job_name(int job);
const char *vms_sm_outcome_name(int outcome);

/* The commands of table 1, in column order (for printing). */
#define VMS_SM_NR_COMMANDS 5
int vms_sm_command(int column);

#endif /* VMMSWAP_STATE_MACHINE_H */
