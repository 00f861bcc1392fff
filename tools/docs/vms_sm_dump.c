// SPDX-License-Identifier: MIT
/*
 * vms_sm_dump - print every transition of the swap state machine, read from the
 * two tables in ref/state_machine.c (so what it prints cannot drift from what
 * the monitor does): state x command -> action, and job x outcome -> state.
 *
 * Usage: vms_sm_dump [--dot] [--help]
 *   (none)  the two tables as text
 *   --dot   the state machine as a Graphviz digraph (make docs draws it into
 *           ref/pictures/): an edge per accepted command, labelled with the
 *           command and its action, and per job end, labelled "job: outcome";
 *           each state lists the commands it ignores
 */
#include <stdbool.h>
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

/* The commands a state ignores, for its node: "ignores Trim, SwapOut". */
static void print_ignored(int s)
{
	const char *sep = "\\nignores ";
	int col;

	for (col = 0; col < VMS_SM_NR_COMMANDS; col++) {
		int cmd = vms_sm_command(col);

		if (vms_sm_lookup(s, cmd)->action != VMS_ACT_IGNORE)
			continue;
		printf("%s%s", sep, vms_cmd_name(cmd));
		sep = ", ";
	}
}

/* Job ends that leave the job in its own state: "\nmove ok, aborted: stays". */
static void print_stays(int s)
{
	int j, o, k;

	for (j = 0; j < VMS_SM_NR_JOBS; j++) {
		if (vms_sm_job_state(j) != s)
			continue;
		for (o = 0, k = 0; o < VMS_SM_NR_OUTCOMES; o++) {
			if (vms_sm_job_end(j, o)->next != s)
				continue;
			if (k++)
				printf(", %s", vms_sm_outcome_name(o));
			else
				printf("\\n%s job %s", vms_sm_job_name(j), vms_sm_outcome_name(o));
		}
		if (k)
			printf(": stays");
	}
}

/* An edge of the picture; edges with the same ends and style share one label. */
struct dot_edge {
	const char *from, *to, *style;
	char label[256];
};

#define MAX_EDGES 64

static void add_edge(struct dot_edge *e, int *n, const char *from, const char *to,
		     const char *style, const char *label)
{
	int i;

	for (i = 0; i < *n; i++) {
		if (!strcmp(e[i].from, from) && !strcmp(e[i].to, to) &&
		    !strcmp(e[i].style, style)) {
			size_t l = strlen(e[i].label);

			snprintf(e[i].label + l, sizeof(e[i].label) - l, "\\n%s", label);
			return;
		}
	}
	if (*n == MAX_EDGES)
		return;
	e[*n].from = from;
	e[*n].to = to;
	e[*n].style = style;
	snprintf(e[*n].label, sizeof(e[*n].label), "%s", label);
	(*n)++;
}

/*
 * One edge per accepted command (a self-loop when the state does not change; Exit
 * from Ready to the "monitor exits" node) and per job end (dashed), merged where
 * they join the same two states. An Exit that waits for a swap-in leaves when that
 * swap-in ends ok (dotted). The guards of vms_sm_decide() are a note: they depend
 * on more than the state.
 */
static void print_dot(void)
{
	struct dot_edge edges[MAX_EDGES];
	int s, col, j, o, n = 0, i;
	bool exit_waits = false;
	char label[128];

	for (s = 0; s < VMS_SWAP_NR_STATES; s++) {
		for (col = 0; col < VMS_SM_NR_COMMANDS; col++) {
			int cmd = vms_sm_command(col);
			const struct vms_sm_entry *e = vms_sm_lookup(s, cmd);
			const char *to = vms_swap_state_name(e->next >= 0 ? e->next : s);

			if (e->action == VMS_ACT_IGNORE)
				continue;
			if (e->action == VMS_ACT_EXIT)
				to = "exit";
			if (e->action == VMS_ACT_EXIT_AFTER_SWAP_IN)
				exit_waits = true;
			snprintf(label, sizeof(label), "%s: %s%s", vms_cmd_name(cmd),
				 e->abort_job ? "abort, " : "", vms_sm_action_name(e->action));
			add_edge(edges, &n, vms_swap_state_name(s), to, "solid", label);
		}
	}
	for (j = 0; j < VMS_SM_NR_JOBS; j++) {
		for (o = 0; o < VMS_SM_NR_OUTCOMES; o++) {
			const struct vms_sm_end *e = vms_sm_job_end(j, o);

			if (e->next == vms_sm_job_state(j))
				continue; /* in the node's label: print_stays() */
			snprintf(label, sizeof(label), "%s %s%s", vms_sm_job_name(j),
				 vms_sm_outcome_name(o),
				 e->record == VMS_REC_CLEAR ? " (record cleared)" : "");
			add_edge(edges, &n, vms_swap_state_name(vms_sm_job_state(j)),
				 vms_swap_state_name(e->next), "dashed", label);
		}
	}
	if (exit_waits)
		add_edge(edges, &n, vms_swap_state_name(vms_sm_job_state(VMS_JOB_SWAP_IN)), "exit",
			 "dotted", "swap-in ok while an Exit waits");

	printf("digraph vmm_swap {\n\trankdir=TB;\n\tnodesep=0.5;\n\tranksep=0.7;\n");
	printf("\tlabel=\"swap state machine (ref/state_machine.c)\\nsolid: command accepted "
	       "(abort: the running job is aborted first)   dashed: background job ends\";\n");
	printf("\tlabelloc=t;\n\tfontname=\"Helvetica\";\n");
	printf("\tnode [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
	printf("\tedge [fontname=\"Helvetica\", fontsize=10];\n");
	for (s = 0; s < VMS_SWAP_NR_STATES; s++) {
		printf("\t\"%s\" [label=\"%s", vms_swap_state_name(s), vms_swap_state_name(s));
		print_ignored(s);
		print_stays(s);
		printf("\"%s];\n", s == VMS_SWAP_READY ? ", style=\"rounded,bold\"" : "");
	}
	printf("\t\"exit\" [label=\"monitor exits\", shape=doubleoctagon];\n");
	for (i = 0; i < n; i++)
		printf("\t\"%s\"%s -> \"%s\"%s [style=%s, label=\"%s\"];\n", edges[i].from,
		       strcmp(edges[i].from, edges[i].to) ? "" : ":s", edges[i].to,
		       strcmp(edges[i].from, edges[i].to) ? "" : ":e", edges[i].style,
		       edges[i].label);
	printf("\t\"guards\" [shape=note, label=\"guards (any state):\\n"
	       "an accepted Exit waits for its swap-in: every other command %s\\n"
	       "Ready with a slow file cleanup running, Disable without slow_file_cleanup: "
	       "%s\"];\n",
	       vms_sm_action_name(VMS_ACT_REFUSE_EXITING), vms_sm_action_name(VMS_ACT_END_CLEANUP));
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
