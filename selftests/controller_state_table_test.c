// SPDX-License-Identifier: GPL-2.0-only
/*
 * controller_state_table_test.c - every cell of the state x command table (spec 2.3,
 * with this implementation's replies): drive a real monitor into each state (jobs
 * held with the VMS_CTL_TEST_HOLD_JOBS hook, Failed through an injected swap-out
 * write error), send each command, and check the reply (result and the state it
 * names), the next state, and every guest page, both while in the new state and in
 * the VMM after exit. The expectations below are written out independently of
 * ref/state_machine.c.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include <vmmswap/controller.h>
#include <vmmswap/protocol.h>
#include <vmmswap/status.h>
#include <vmmswap/test_hooks.h>

#include "lib/ctl_util.h"

#define CMD_STATUS 100
#define EXITED 100

FIXTURE(cell)
{
	struct cu_guest g;
	struct cu_expect e;
	struct vms_controller *ctl;
};

FIXTURE_VARIANT(cell)
{
	int state; /* enum vms_swap_state to reach */
	int cmd; /* VMS_CMD_* or CMD_STATUS */
	int result; /* expected reply */
	int next; /* expected state afterwards, or EXITED */
};
FIXTURE_VARIANT_ADD(cell, ready_enable)
{
	.state = VMS_SWAP_READY,
	.cmd = VMS_CMD_ENABLE,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_PENDING,
};
FIXTURE_VARIANT_ADD(cell, ready_trim)
{
	.state = VMS_SWAP_READY,
	.cmd = VMS_CMD_TRIM,
	.result = VMS_REPLY_IGNORED,
	.next = VMS_SWAP_READY,
};
FIXTURE_VARIANT_ADD(cell, ready_swap_out)
{
	.state = VMS_SWAP_READY,
	.cmd = VMS_CMD_SWAP_OUT,
	.result = VMS_REPLY_IGNORED,
	.next = VMS_SWAP_READY,
};
FIXTURE_VARIANT_ADD(cell, ready_disable)
{
	.state = VMS_SWAP_READY,
	.cmd = VMS_CMD_DISABLE,
	.result = VMS_REPLY_IGNORED,
	.next = VMS_SWAP_READY,
};
FIXTURE_VARIANT_ADD(cell, ready_exit)
{
	.state = VMS_SWAP_READY,
	.cmd = VMS_CMD_EXIT,
	.result = VMS_REPLY_ACCEPTED,
	.next = EXITED,
};
FIXTURE_VARIANT_ADD(cell, ready_status)
{
	.state = VMS_SWAP_READY,
	.cmd = CMD_STATUS,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_READY,
};
FIXTURE_VARIANT_ADD(cell, pending_enable)
{
	.state = VMS_SWAP_PENDING,
	.cmd = VMS_CMD_ENABLE,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_PENDING,
};
FIXTURE_VARIANT_ADD(cell, pending_trim)
{
	.state = VMS_SWAP_PENDING,
	.cmd = VMS_CMD_TRIM,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_TRIM_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, pending_swap_out)
{
	.state = VMS_SWAP_PENDING,
	.cmd = VMS_CMD_SWAP_OUT,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_SWAP_OUT_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, pending_disable)
{
	.state = VMS_SWAP_PENDING,
	.cmd = VMS_CMD_DISABLE,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_SWAP_IN_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, pending_exit)
{
	.state = VMS_SWAP_PENDING,
	.cmd = VMS_CMD_EXIT,
	.result = VMS_REPLY_ACCEPTED,
	.next = EXITED,
};
FIXTURE_VARIANT_ADD(cell, pending_status)
{
	.state = VMS_SWAP_PENDING,
	.cmd = CMD_STATUS,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_PENDING,
};
FIXTURE_VARIANT_ADD(cell, trim_in_progress_enable)
{
	.state = VMS_SWAP_TRIM_IN_PROGRESS,
	.cmd = VMS_CMD_ENABLE,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_PENDING,
};
FIXTURE_VARIANT_ADD(cell, trim_in_progress_trim)
{
	.state = VMS_SWAP_TRIM_IN_PROGRESS,
	.cmd = VMS_CMD_TRIM,
	.result = VMS_REPLY_IGNORED,
	.next = VMS_SWAP_TRIM_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, trim_in_progress_swap_out)
{
	.state = VMS_SWAP_TRIM_IN_PROGRESS,
	.cmd = VMS_CMD_SWAP_OUT,
	.result = VMS_REPLY_IGNORED,
	.next = VMS_SWAP_TRIM_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, trim_in_progress_disable)
{
	.state = VMS_SWAP_TRIM_IN_PROGRESS,
	.cmd = VMS_CMD_DISABLE,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_SWAP_IN_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, trim_in_progress_exit)
{
	.state = VMS_SWAP_TRIM_IN_PROGRESS,
	.cmd = VMS_CMD_EXIT,
	.result = VMS_REPLY_ACCEPTED,
	.next = EXITED,
};
FIXTURE_VARIANT_ADD(cell, trim_in_progress_status)
{
	.state = VMS_SWAP_TRIM_IN_PROGRESS,
	.cmd = CMD_STATUS,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_TRIM_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, swap_out_in_progress_enable)
{
	.state = VMS_SWAP_SWAP_OUT_IN_PROGRESS,
	.cmd = VMS_CMD_ENABLE,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_PENDING,
};
FIXTURE_VARIANT_ADD(cell, swap_out_in_progress_trim)
{
	.state = VMS_SWAP_SWAP_OUT_IN_PROGRESS,
	.cmd = VMS_CMD_TRIM,
	.result = VMS_REPLY_IGNORED,
	.next = VMS_SWAP_SWAP_OUT_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, swap_out_in_progress_swap_out)
{
	.state = VMS_SWAP_SWAP_OUT_IN_PROGRESS,
	.cmd = VMS_CMD_SWAP_OUT,
	.result = VMS_REPLY_IGNORED,
	.next = VMS_SWAP_SWAP_OUT_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, swap_out_in_progress_disable)
{
	.state = VMS_SWAP_SWAP_OUT_IN_PROGRESS,
	.cmd = VMS_CMD_DISABLE,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_SWAP_IN_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, swap_out_in_progress_exit)
{
	.state = VMS_SWAP_SWAP_OUT_IN_PROGRESS,
	.cmd = VMS_CMD_EXIT,
	.result = VMS_REPLY_ACCEPTED,
	.next = EXITED,
};
FIXTURE_VARIANT_ADD(cell, swap_out_in_progress_status)
{
	.state = VMS_SWAP_SWAP_OUT_IN_PROGRESS,
	.cmd = CMD_STATUS,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_SWAP_OUT_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, active_enable)
{
	.state = VMS_SWAP_ACTIVE,
	.cmd = VMS_CMD_ENABLE,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_PENDING,
};
FIXTURE_VARIANT_ADD(cell, active_trim)
{
	.state = VMS_SWAP_ACTIVE,
	.cmd = VMS_CMD_TRIM,
	.result = VMS_REPLY_IGNORED,
	.next = VMS_SWAP_ACTIVE,
};
FIXTURE_VARIANT_ADD(cell, active_swap_out)
{
	.state = VMS_SWAP_ACTIVE,
	.cmd = VMS_CMD_SWAP_OUT,
	.result = VMS_REPLY_IGNORED,
	.next = VMS_SWAP_ACTIVE,
};
FIXTURE_VARIANT_ADD(cell, active_disable)
{
	.state = VMS_SWAP_ACTIVE,
	.cmd = VMS_CMD_DISABLE,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_SWAP_IN_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, active_exit)
{
	.state = VMS_SWAP_ACTIVE,
	.cmd = VMS_CMD_EXIT,
	.result = VMS_REPLY_ACCEPTED,
	.next = EXITED,
};
FIXTURE_VARIANT_ADD(cell, active_status)
{
	.state = VMS_SWAP_ACTIVE,
	.cmd = CMD_STATUS,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_ACTIVE,
};
FIXTURE_VARIANT_ADD(cell, swap_in_in_progress_enable)
{
	.state = VMS_SWAP_SWAP_IN_IN_PROGRESS,
	.cmd = VMS_CMD_ENABLE,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_PENDING,
};
FIXTURE_VARIANT_ADD(cell, swap_in_in_progress_trim)
{
	.state = VMS_SWAP_SWAP_IN_IN_PROGRESS,
	.cmd = VMS_CMD_TRIM,
	.result = VMS_REPLY_IGNORED,
	.next = VMS_SWAP_SWAP_IN_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, swap_in_in_progress_swap_out)
{
	.state = VMS_SWAP_SWAP_IN_IN_PROGRESS,
	.cmd = VMS_CMD_SWAP_OUT,
	.result = VMS_REPLY_IGNORED,
	.next = VMS_SWAP_SWAP_IN_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, swap_in_in_progress_disable)
{
	.state = VMS_SWAP_SWAP_IN_IN_PROGRESS,
	.cmd = VMS_CMD_DISABLE,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_SWAP_IN_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, swap_in_in_progress_exit)
{
	.state = VMS_SWAP_SWAP_IN_IN_PROGRESS,
	.cmd = VMS_CMD_EXIT,
	.result = VMS_REPLY_ACCEPTED,
	.next = EXITED,
};
FIXTURE_VARIANT_ADD(cell, swap_in_in_progress_status)
{
	.state = VMS_SWAP_SWAP_IN_IN_PROGRESS,
	.cmd = CMD_STATUS,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_SWAP_IN_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, failed_enable)
{
	.state = VMS_SWAP_FAILED,
	.cmd = VMS_CMD_ENABLE,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_PENDING,
};
FIXTURE_VARIANT_ADD(cell, failed_trim)
{
	.state = VMS_SWAP_FAILED,
	.cmd = VMS_CMD_TRIM,
	.result = VMS_REPLY_IGNORED,
	.next = VMS_SWAP_FAILED,
};
FIXTURE_VARIANT_ADD(cell, failed_swap_out)
{
	.state = VMS_SWAP_FAILED,
	.cmd = VMS_CMD_SWAP_OUT,
	.result = VMS_REPLY_IGNORED,
	.next = VMS_SWAP_FAILED,
};
FIXTURE_VARIANT_ADD(cell, failed_disable)
{
	.state = VMS_SWAP_FAILED,
	.cmd = VMS_CMD_DISABLE,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_SWAP_IN_IN_PROGRESS,
};
FIXTURE_VARIANT_ADD(cell, failed_exit)
{
	.state = VMS_SWAP_FAILED,
	.cmd = VMS_CMD_EXIT,
	.result = VMS_REPLY_ACCEPTED,
	.next = EXITED,
};
FIXTURE_VARIANT_ADD(cell, failed_status)
{
	.state = VMS_SWAP_FAILED,
	.cmd = CMD_STATUS,
	.result = VMS_REPLY_ACCEPTED,
	.next = VMS_SWAP_FAILED,
};

FIXTURE_SETUP(cell)
{
	unsigned int flags = VMS_CTL_TEST_HOLD_JOBS;

	cu_quiet_log(); /* before the fork: the monitor inherits it */
	if (variant->state == VMS_SWAP_FAILED)
		flags |= VMS_CTL_TEST_FAIL_SWAP_OUT;
	CU_SETUP(&self->g, NULL, flags, NULL, &self->ctl);
	cu_write_crosvm_data(&self->g, &self->e);
}

FIXTURE_TEARDOWN(cell)
{
	cu_teardown(&self->g, &self->ctl);
}

/* Drive a fresh controller (Ready) into 'state'. */
static int reach(struct vms_controller *ctl, int state)
{
	struct vms_reply r;
	int ret;

	if (state == VMS_SWAP_READY)
		return 0;
	ret = cu_accepted(vms_controller_enable(ctl, &r), &r);
	if (ret || state == VMS_SWAP_PENDING)
		return ret;
	if (state == VMS_SWAP_TRIM_IN_PROGRESS)
		return cu_accepted(vms_controller_trim(ctl, &r), &r);
	ret = cu_accepted(vms_controller_swap_out(ctl, &r), &r);
	if (ret || state == VMS_SWAP_SWAP_OUT_IN_PROGRESS)
		return ret;
	ret = vms_controller_test_release_job(ctl);
	if (ret)
		return ret;
	if (state == VMS_SWAP_FAILED)
		return cu_wait_state(ctl, VMS_SWAP_FAILED, CU_DEADLINE_MS, NULL);
	ret = cu_wait_state(ctl, VMS_SWAP_ACTIVE, CU_DEADLINE_MS, NULL);
	if (ret || state == VMS_SWAP_ACTIVE)
		return ret;
	return cu_accepted(vms_controller_disable(ctl, false, &r), &r);
}

static int send(struct vms_controller *ctl, int cmd, struct vms_reply *r)
{
	switch (cmd) {
	case VMS_CMD_ENABLE: return vms_controller_enable(ctl, r);
	case VMS_CMD_TRIM: return vms_controller_trim(ctl, r);
	case VMS_CMD_SWAP_OUT: return vms_controller_swap_out(ctl, r);
	case VMS_CMD_DISABLE: return vms_controller_disable(ctl, false, r);
	}
	return -EINVAL;
}

TEST_F(cell, reply_next_state_and_contents)
{
	struct vms_swap_status st;
	struct vms_reply r;
	char json[VMS_SWAP_STATUS_JSON_MAX], want[64];

	ASSERT_EQ(0, reach(self->ctl, variant->state));
	ASSERT_EQ(variant->state, cu_state(self->ctl));
	if (variant->cmd == CMD_STATUS) {
		ASSERT_EQ(0, vms_controller_status(self->ctl, &st));
		ASSERT_EQ(variant->state, st.state);
		ASSERT_GT(vms_swap_status_json(&st, json, sizeof(json)), 0);
		snprintf(want, sizeof(want), "{\"state\":\"%s\",",
			 vms_swap_state_name(variant->state));
		ASSERT_EQ(0, strncmp(json, want, strlen(want)));
	} else if (variant->cmd == VMS_CMD_EXIT) {
		/* Exit: everything comes back in, the monitor goes away. */
		pid_t mon = vms_controller_monitor_pid(self->ctl);
		int ret = vms_controller_exit(self->ctl);

		self->ctl = NULL;
		ASSERT_EQ(0, ret);
		ASSERT_EQ(0, cu_wait_pid_exit(mon, CU_DEADLINE_MS));
		ASSERT_EQ(-1, cu_check_memfd(&self->g, &self->e));
		ASSERT_EQ(-1, cu_check(&self->g, &self->e));
		return;
	} else {
		ASSERT_EQ(0, send(self->ctl, variant->cmd, &r));
		ASSERT_EQ(variant->result, r.result);
		ASSERT_EQ(variant->state, r.state); /* the state it was received in */
		ASSERT_EQ(variant->next, r.new_state);
		ASSERT_EQ(0, r.err);
		ASSERT_EQ(variant->next, cu_state(self->ctl));
	}
	/* Every page reads back right in the new state (faults served meanwhile). */
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	/* Let held jobs finish, then exit and check in the VMM. */
	ASSERT_EQ(0, vms_controller_test_release_job(self->ctl));
	ASSERT_EQ(0, vms_controller_test_release_job(self->ctl));
	ASSERT_EQ(0, vms_controller_exit(self->ctl));
	self->ctl = NULL;
	ASSERT_EQ(-1, cu_check_memfd(&self->g, &self->e));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
}

TEST_HARNESS_MAIN
