// SPDX-License-Identifier: GPL-2.0-only
/*
 * state_machine_table_test - the two transition tables of ref/state_machine.c are
 * consistent with each other and with the contract (the behaviour through the
 * monitor is checked cell by cell in controller_state_table_test):
 *  - an action that starts a job enters the state that job runs in;
 *  - a job is aborted only from a state in which a job runs;
 *  - every job end leads to a real state, a failure clears the record;
 *  - the guards: an Exit in progress refuses everything but Exit, and a plain
 *    Disable in Ready ends a slow cleanup while one with slow_file_cleanup does not.
 */
#include <vmmswap/state_machine.h>

#include "kselftest_harness.h"

static bool job_runs_in(int state)
{
	for (int j = 0; j < VMS_SM_NR_JOBS; j++)
		if (vms_sm_job_state(j) == state)
			return true;
	return false;
}

TEST(a_started_job_enters_its_own_state)
{
	for (int s = 0; s < VMS_SWAP_NR_STATES; s++) {
		for (int col = 0; col < VMS_SM_NR_COMMANDS; col++) {
			const struct vms_sm_entry *e = vms_sm_lookup(s, vms_sm_command(col));

			ASSERT_NE(NULL, e);
			if (e->job < 0)
				continue;
			EXPECT_EQ(vms_sm_job_state(e->job), e->next)
			TH_LOG("%s in %s", vms_cmd_name(vms_sm_command(col)),
			       vms_swap_state_name(s));
		}
	}
}

TEST(only_a_running_job_is_aborted)
{
	for (int s = 0; s < VMS_SWAP_NR_STATES; s++) {
		for (int col = 0; col < VMS_SM_NR_COMMANDS; col++) {
			if (!vms_sm_lookup(s, vms_sm_command(col))->abort_job)
				continue;
			EXPECT_TRUE(job_runs_in(s))
			TH_LOG("%s", vms_swap_state_name(s));
		}
	}
}

TEST(every_job_end_is_a_state_and_failure_clears_the_record)
{
	for (int j = 0; j < VMS_SM_NR_JOBS; j++) {
		for (int o = 0; o < VMS_SM_NR_OUTCOMES; o++) {
			const struct vms_sm_end *e = vms_sm_job_end(j, o);

			ASSERT_NE(NULL, e);
			ASSERT_GE(e->next, 0);
			ASSERT_LT(e->next, VMS_SWAP_NR_STATES);
			ASSERT_EQ(o == VMS_OUT_FAILED ? VMS_REC_CLEAR : VMS_REC_SET, e->record);
			if (o == VMS_OUT_FAILED)
				ASSERT_EQ(VMS_SWAP_FAILED, e->next);
			if (o == VMS_OUT_ABORTED)
				ASSERT_EQ(VMS_SWAP_PENDING, e->next);
		}
	}
	ASSERT_EQ(VMS_SWAP_ACTIVE, vms_sm_job_end(VMS_JOB_SWAP_OUT, VMS_OUT_OK)->next);
	ASSERT_EQ(VMS_SWAP_READY, vms_sm_job_end(VMS_JOB_SWAP_IN, VMS_OUT_OK)->next);
	ASSERT_EQ(NULL, vms_sm_job_end(VMS_SM_NR_JOBS, VMS_OUT_OK));
	ASSERT_EQ(NULL, vms_sm_job_end(VMS_JOB_MOVE, -1));
}

TEST(guards_decide_before_the_table)
{
	struct vms_sm_guards exiting = { .exiting = true };
	struct vms_sm_guards cleanup = { .cleanup_running = true };
	struct vms_sm_guards slow = { .cleanup_running = true, .slow_cleanup = true };

	for (int s = 0; s < VMS_SWAP_NR_STATES; s++) {
		for (int col = 0; col < VMS_SM_NR_COMMANDS; col++) {
			int cmd = vms_sm_command(col);
			const struct vms_sm_entry *e = vms_sm_decide(s, cmd, &exiting);

			if (cmd == VMS_CMD_EXIT) {
				ASSERT_EQ(vms_sm_lookup(s, cmd), e);
			} else {
				ASSERT_EQ(VMS_ACT_REFUSE_EXITING, e->action);
			}
		}
	}
	ASSERT_EQ(VMS_ACT_END_CLEANUP,
		  vms_sm_decide(VMS_SWAP_READY, VMS_CMD_DISABLE, &cleanup)->action);
	ASSERT_EQ(VMS_ACT_IGNORE, vms_sm_decide(VMS_SWAP_READY, VMS_CMD_DISABLE, &slow)->action);
	ASSERT_EQ(VMS_ACT_SWAP_IN,
		  vms_sm_decide(VMS_SWAP_ACTIVE, VMS_CMD_DISABLE, &cleanup)->action);
	ASSERT_EQ(NULL, vms_sm_decide(VMS_SWAP_READY, VMS_CMD_STATUS, &cleanup));
	ASSERT_EQ(NULL, vms_sm_decide(VMS_SWAP_NR_STATES, VMS_CMD_ENABLE, &cleanup));
}

TEST_HARNESS_MAIN
