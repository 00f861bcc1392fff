// SPDX-License-Identifier: MIT
/*
 * state_machine.c - the state x command table (state_machine.h). Differences from
 * crosvm: swap-out runs on the background thread, so Enable/Disable/Exit during
 * SwapOutInProgress abort it first like a trim; Exit swaps in on the background
 * thread too, serving faults meanwhile; Disable while Ready is IGNORED.
 */
#include <stddef.h>

#include <vmmswap/state_machine.h>

/* One table cell per line reads better than a reflowed macro. */
/* clang-format off */
#define E(act, ab, nx) { .action = VMS_ACT_##act, .abort_job = ab, .next = nx }
/* clang-format on */
#define IGN E(IGNORE, false, -1)

/* Column order: Enable, Trim, SwapOut, Disable, Exit. */
enum { C_ENABLE, C_TRIM, C_SWAP_OUT, C_DISABLE, C_EXIT, NCOLS };

static const struct vms_sm_entry table[VMS_SWAP_NR_STATES][NCOLS] = {
	[VMS_SWAP_READY] = {
		E(ENABLE, false, VMS_SWAP_PENDING), IGN, IGN, IGN,
		E(EXIT, false, -1),
	},
	[VMS_SWAP_PENDING] = {
		E(REMOVE, false, VMS_SWAP_PENDING),
		E(TRIM, false, VMS_SWAP_TRIM_IN_PROGRESS),
		E(SWAP_OUT, false, VMS_SWAP_SWAP_OUT_IN_PROGRESS),
		E(SWAP_IN, false, VMS_SWAP_SWAP_IN_IN_PROGRESS),
		E(EXIT_AFTER_SWAP_IN, false, VMS_SWAP_SWAP_IN_IN_PROGRESS),
	},
	[VMS_SWAP_TRIM_IN_PROGRESS] = {
		E(REMOVE, true, VMS_SWAP_PENDING), IGN, IGN,
		E(SWAP_IN, true, VMS_SWAP_SWAP_IN_IN_PROGRESS),
		E(EXIT_AFTER_SWAP_IN, true, VMS_SWAP_SWAP_IN_IN_PROGRESS),
	},
	[VMS_SWAP_SWAP_OUT_IN_PROGRESS] = {
		E(REMOVE, true, VMS_SWAP_PENDING), IGN, IGN,
		E(SWAP_IN, true, VMS_SWAP_SWAP_IN_IN_PROGRESS),
		E(EXIT_AFTER_SWAP_IN, true, VMS_SWAP_SWAP_IN_IN_PROGRESS),
	},
	[VMS_SWAP_ACTIVE] = {
		E(REMOVE, false, VMS_SWAP_PENDING), IGN, IGN,
		E(SWAP_IN, false, VMS_SWAP_SWAP_IN_IN_PROGRESS),
		E(EXIT_AFTER_SWAP_IN, false, VMS_SWAP_SWAP_IN_IN_PROGRESS),
	},
	[VMS_SWAP_SWAP_IN_IN_PROGRESS] = {
		E(REMOVE, true, VMS_SWAP_PENDING), IGN, IGN,
		E(SET_CLEANUP, false, -1),
		E(EXIT_AFTER_SWAP_IN, false, -1),
	},
	[VMS_SWAP_FAILED] = {
		E(REMOVE, false, VMS_SWAP_PENDING), IGN, IGN,
		E(SWAP_IN, false, VMS_SWAP_SWAP_IN_IN_PROGRESS),
		E(EXIT_AFTER_SWAP_IN, false, VMS_SWAP_SWAP_IN_IN_PROGRESS),
	},
};

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
};

const char *vms_sm_action_name(int action)
{
	if (action < 0 || (size_t)action >= sizeof(action_names) / sizeof(action_names[0]))
		return "?";
	return action_names[action];
}
