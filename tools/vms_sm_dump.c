// SPDX-License-Identifier: MIT
/*
 * vms_sm_dump - print every transition of the swap state machine, read from the
 * two tables in ref/state_machine.c (so what it prints cannot drift from what
 * the monitor does): state x command -> action, and job x outcome -> state.
 *
 * Usage: vms_sm_dump [--dot] [--help]
 *   (none)  the two tables as text
 *   --dot   the state machine as a Graphviz digraph: an edge per accepted command
 *           and per job end, labelled with the command or "job: outcome"
 */
#include <stdio.h>
#include <string.h>

#include <vmmswap/state_machine.h>

static void print_commands(void)
{
	int s, col;

	printf("state x command -> action [abort the job first] -> state entered\n");
	for (s = 0; s < VMS_SWAP_NR_STATES; s++) {
		printf("%s\n", vms_swap_state_name(s));
		for (col = 0; col < VMS_SM_NR_COMMANDS; col++) {
			int cmd = vms_sm_command(col);
			const struct vms_sm_entry *e = vms_sm_lookup(s, cmd);

			printf("  %-9s %-18s%s", vms_cmd_name(cmd), vms_sm_action_name(e->action),
			       e->abort_job ? " [abort]" : "");
			if (e->job >= 0)
				printf(" job %s", vms_sm_job_name(e->job));
			if (e->next >= 0)
				printf(" -> %s", vms_swap_state_name(e->next));
			printf("\n");
		}
	}
	printf("guards: while an accepted Exit waits for its swap-in, every other command: %s\n",
	       vms_sm_action_name(VMS_ACT_REFUSE_EXITING));
	printf("        Ready, slow file cleanup running, Disable without slow_file_cleanup: %s\n",
	       vms_sm_action_name(VMS_ACT_END_CLEANUP));
}

static void print_jobs(void)
{
	int j, o;

	printf("\njob (runs in state) x outcome -> state, transition record\n");
	for (j = 0; j < VMS_SM_NR_JOBS; j++) {
		printf("%s (%s)\n", vms_sm_job_name(j), vms_swap_state_name(vms_sm_job_state(j)));
		for (o = 0; o < VMS_SM_NR_OUTCOMES; o++) {
			const struct vms_sm_end *e = vms_sm_job_end(j, o);

			printf("  %-8s -> %-17s record %s\n", vms_sm_outcome_name(o),
			       vms_swap_state_name(e->next),
			       e->record == VMS_REC_SET ? "set" : "cleared");
		}
	}
}

static void print_dot(void)
{
	int s, col, j, o;

	printf("digraph vmm_swap {\n\trankdir=LR;\n\tnode [shape=box, style=rounded];\n");
	for (s = 0; s < VMS_SWAP_NR_STATES; s++)
		printf("\t\"%s\";\n", vms_swap_state_name(s));
	for (s = 0; s < VMS_SWAP_NR_STATES; s++) {
		for (col = 0; col < VMS_SM_NR_COMMANDS; col++) {
			int cmd = vms_sm_command(col);
			const struct vms_sm_entry *e = vms_sm_lookup(s, cmd);

			if (e->action == VMS_ACT_IGNORE || e->next < 0)
				continue;
			printf("\t\"%s\" -> \"%s\" [label=\"%s%s\"];\n", vms_swap_state_name(s),
			       vms_swap_state_name(e->next), vms_cmd_name(cmd),
			       e->abort_job ? " (abort)" : "");
		}
	}
	for (j = 0; j < VMS_SM_NR_JOBS; j++) {
		for (o = 0; o < VMS_SM_NR_OUTCOMES; o++) {
			const struct vms_sm_end *e = vms_sm_job_end(j, o);

			printf("\t\"%s\" -> \"%s\" [style=dashed, label=\"%s: %s\"];\n",
			       vms_swap_state_name(vms_sm_job_state(j)),
			       vms_swap_state_name(e->next), vms_sm_job_name(j),
			       vms_sm_outcome_name(o));
		}
	}
	printf("}\n");
}

int main(int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--dot") && strcmp(argv[1], "--help"))) {
		fprintf(stderr, "usage: vms_sm_dump [--dot] [--help]\n");
		return 2;
	}
	if (argc == 2 && !strcmp(argv[1], "--help")) {
		printf("usage: vms_sm_dump [--dot]: print the swap state machine's tables\n");
		return 0;
	}
	if (argc == 2) {
		print_dot();
		return 0;
	}
	print_commands();
	print_jobs();
	return 0;
}
