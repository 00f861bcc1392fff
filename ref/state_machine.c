// SPDX-License-Identifier: MIT
/*
 * state_machine.c - the two transition tables (state_machine.h). Differences from
 * crosvm: swap-out runs on the background thread, so Enable/Disable/Exit during
 * SwapOutInProgress abort it first like a trim; Exit swaps in on the background
 * thread too, serving faults meanwhile; Disable while Ready is IGNORED.
 */
#include <stddef.h>

#include <vmmswap/state_machine.h>

/* One table cell per line reads better than a reflowed macro. */
/* clang-format off */
#define E(act, ab, nx, jb) { .action = VMS_ACT_##act, .abort_job = ab, .next = nx, .job = jb }
/* clang-format on */
#define IGN	    E(IGNORE, false, -1, -1)
#define MOVE(ab)    E(REMOVE, ab, VMS_SWAP_PENDING, VMS_JOB_MOVE)
#define SWAP_IN(ab) E(SWAP_IN, ab, VMS_SWAP_SWAP_IN_IN_PROGRESS, VMS_JOB_SWAP_IN)
#define EXIT_IN(ab) E(EXIT_AFTER_SWAP_IN, ab, VMS_SWAP_SWAP_IN_IN_PROGRESS, VMS_JOB_SWAP_IN)

/* Column order: Enable, Trim, SwapOut, Disable, Exit. */
enum { C_ENABLE, C_TRIM, C_SWAP_OUT, C_DISABLE, C_EXIT, NCOLS };

static const struct vms_sm_entry table[VMS_SWAP_NR_STATES][NCOLS] = {
	[VMS_SWAP_READY] = {
		E(ENABLE, false, VMS_SWAP_PENDING, VMS_JOB_MOVE), IGN, IGN, IGN,
		E(EXIT, false, -1, -1),
	},
	[VMS_SWAP_PENDING] = {
		MOVE(false),
		E(TRIM, false, VMS_SWAP_TRIM_IN_PROGRESS, VMS_JOB_TRIM),
		E(SWAP_OUT, false, VMS_SWAP_SWAP_OUT_IN_PROGRESS, VMS_JOB_SWAP_OUT),
		SWAP_IN(false), EXIT_IN(false),
	},
	[VMS_SWAP_TRIM_IN_PROGRESS] = {
		MOVE(true), IGN, IGN, SWAP_IN(true), EXIT_IN(true),
	},
	[VMS_SWAP_SWAP_OUT_IN_PROGRESS] = {
		MOVE(true), IGN, IGN, SWAP_IN(true), EXIT_IN(true),
	},
	[VMS_SWAP_ACTIVE] = {
		MOVE(false), IGN, IGN, SWAP_IN(false), EXIT_IN(false),
	},
	[VMS_SWAP_SWAP_IN_IN_PROGRESS] = {
		MOVE(true), IGN, IGN,
		E(SET_CLEANUP, false, -1, -1),
		/* The running swap-in is the one the Exit waits for. */
		E(EXIT_AFTER_SWAP_IN, false, -1, -1),
	},
	[VMS_SWAP_FAILED] = {
		MOVE(false), IGN, IGN, SWAP_IN(false), EXIT_IN(false),
	},
};

/* The guards' cells: not tied to one state, so outside the table. */
static const struct vms_sm_entry refuse_exiting = E(REFUSE_EXITING, false, -1, -1);
static const struct vms_sm_entry end_cleanup = E(END_CLEANUP, false, -1, -1);

/*
 * Job x outcome. A job that ends without an error leaves a record of its pages
 * and time; a failed one clears it and leaves Failed (every page still readable:
 * page_handler.h). An aborted job goes back to Pending, from where the command
 * that aborted it is decided again. The move cannot be aborted; its row says what
 * an abort would mean all the same.
 */
static const struct vms_sm_end job_end[VMS_SM_NR_JOBS][VMS_SM_NR_OUTCOMES] = {
	[VMS_JOB_MOVE] = {
		[VMS_OUT_OK] = { VMS_SWAP_PENDING, VMS_REC_SET },
		[VMS_OUT_ABORTED] = { VMS_SWAP_PENDING, VMS_REC_SET },
		[VMS_OUT_FAILED] = { VMS_SWAP_FAILED, VMS_REC_CLEAR },
	},
	[VMS_JOB_TRIM] = {
		[VMS_OUT_OK] = { VMS_SWAP_PENDING, VMS_REC_SET },
		[VMS_OUT_ABORTED] = { VMS_SWAP_PENDING, VMS_REC_SET },
		[VMS_OUT_FAILED] = { VMS_SWAP_FAILED, VMS_REC_CLEAR },
	},
	[VMS_JOB_SWAP_OUT] = {
		[VMS_OUT_OK] = { VMS_SWAP_ACTIVE, VMS_REC_SET },
		[VMS_OUT_ABORTED] = { VMS_SWAP_PENDING, VMS_REC_SET },
		[VMS_OUT_FAILED] = { VMS_SWAP_FAILED, VMS_REC_CLEAR },
	},
	[VMS_JOB_SWAP_IN] = {
		[VMS_OUT_OK] = { VMS_SWAP_READY, VMS_REC_SET },
		[VMS_OUT_ABORTED] = { VMS_SWAP_PENDING, VMS_REC_SET },
		[VMS_OUT_FAILED] = { VMS_SWAP_FAILED, VMS_REC_CLEAR },
	},
};

static const int job_state[VMS_SM_NR_JOBS] = {
	[VMS_JOB_MOVE] = VMS_SWAP_PENDING,
	[VMS_JOB_TRIM] = VMS_SWAP_TRIM_IN_PROGRESS,
	[VMS_JOB_SWAP_OUT] = VMS_SWAP_SWAP_OUT_IN_PROGRESS,
	[VMS_JOB_SWAP_IN] = VMS_SWAP_SWAP_IN_IN_PROGRESS,
};

static const int columns[NCOLS] = {
	[C_ENABLE] = VMS_CMD_ENABLE,   [C_TRIM] = VMS_CMD_TRIM, [C_SWAP_OUT] = VMS_CMD_SWAP_OUT,
	[C_DISABLE] = VMS_CMD_DISABLE, [C_EXIT] = VMS_CMD_EXIT,
};

int vms_sm_command(int column)
{
	return column >= 0 && column < NCOLS ? columns[column] : -1;
}

const struct vms_sm_entry *vms_sm_lookup(int state, int cmd)
{
	int col;

	switch (cmd) {
	case VMS_CMD_ENABLE:
		col = C_ENABLE;
		break;
	case VMS_CMD_TRIM:
		col = C_TRIM;
		break;
	case VMS_CMD_SWAP_OUT:
		col = C_SWAP_OUT;
		break;
	case VMS_CMD_DISABLE:
		col = C_DISABLE;
		break;
	case VMS_CMD_EXIT:
		col = C_EXIT;
		break;
	default:
		return NULL;
	}
	if (state < 0 || state >= VMS_SWAP_NR_STATES)
		return NULL;
	return &table[state][col];
}

const struct vms_sm_entry *vms_sm_decide(int state, int cmd, const struct vms_sm_guards *g)
{
	const struct vms_sm_entry *e = vms_sm_lookup(state, cmd);

	if (!e)
		return NULL;
	if (g->exiting && cmd != VMS_CMD_EXIT)
		return &refuse_exiting;
	if (state == VMS_SWAP_READY && cmd == VMS_CMD_DISABLE && g->cleanup_running &&
	    !g->slow_cleanup)
		return &end_cleanup; /* as crosvm: a plain Disable ends a slow cleanup */
	return e;
}

const struct vms_sm_end *vms_sm_job_end(int job, int outcome)
{
	if (job < 0 || job >= VMS_SM_NR_JOBS || outcome < 0 || outcome >= VMS_SM_NR_OUTCOMES)
		return NULL;
	return &job_end[job][outcome];
}

int vms_sm_job_state(int job)
{
	return job >= 0 && job < VMS_SM_NR_JOBS ? job_state[job] : -1;
}

static const char *const action_names[] = {
	[VMS_ACT_IGNORE] = "ignore",
	[VMS_ACT_ENABLE] = "enable",
	[VMS_ACT_REMOVE] = "re-move",
	[VMS_ACT_TRIM] = "trim",
	[VMS_ACT_SWAP_OUT] = "swap-out",
	[VMS_ACT_SWAP_IN] = "swap-in",
	[VMS_ACT_SET_CLEANUP] = "set-cleanup",
	[VMS_ACT_EXIT] = "exit",
	[VMS_ACT_EXIT_AFTER_SWAP_IN] = "swap-in-then-exit",
	[VMS_ACT_REFUSE_EXITING] = "refuse (exiting)",
	[VMS_ACT_END_CLEANUP] = "end-cleanup",
};

static const char *const job_names[] = {
	[VMS_JOB_MOVE] = "move",
	[VMS_JOB_TRIM] = "trim",
	[VMS_JOB_SWAP_OUT] = "swap-out",
	[VMS_JOB_SWAP_IN] = "swap-in",
};

static const char *const outcome_names[] = {
	[VMS_OUT_OK] = "ok",
	[VMS_OUT_ABORTED] = "aborted",
	[VMS_OUT_FAILED] = "failed",
};

const char *vms_sm_action_name(int action)
{
	if (action < 0 || (size_t)action >= sizeof(action_names) / sizeof(action_names[0]))
		return "?";
	return action_names[action];
}

const char *vms_sm_job_name(int job)
{
	return job >= 0 && job < VMS_SM_NR_JOBS ? job_names[job] : "?";
}

const char *vms_sm_outcome_name(int outcome)
{
	return outcome >= 0 && outcome < VMS_SM_NR_OUTCOMES ? outcome_names[outcome] : "?";
}
