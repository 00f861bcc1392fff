// SPDX-License-Identifier: MIT
/*
 * vms_page_dump - print the life of a guest page: the page-state transition table of
 * ref/page_transitions.c (from-kind x event -> to-kind, the function that changes
 * the state, the system calls it makes, the metric it counts).
 *
 * Usage: vms_page_dump [--dot] [--help]
 *   (none)  the kinds (R, S, F and what a fault does) and the table, as text
 *   --dot   the transitions as a Graphviz digraph (make docs draws it into
 *           ref/pictures/): one node per kind, one edge per (from, to) pair
 *           labelled with its events and functions
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <vmmswap/page_transitions.h>

static void print_text(void)
{
	const struct vms_page_transition *t;
	size_t n, i;
	int k;

	printf("kinds of page (R resident in guest memory, S staged, F swap-file slot)\n");
	for (k = 0; k < VMS_PK_NR; k++) {
		const struct vms_page_kind_info *ki = vms_page_kind_info(k);

		printf("  %-14s R=%c S=%c F=%-8s fault: %s\n", ki->name, ki->r, ki->s, ki->f,
		       ki->fault);
	}
	printf("\nfrom x event -> to: where (ref/), system calls [metric]\n");
	t = vms_page_transitions(&n);
	for (i = 0; i < n; i++) {
		printf("%-14s %-12s -> %-14s %s\n", vms_page_kind_info(t[i].from)->name,
		       vms_page_event_name(t[i].event), vms_page_kind_info(t[i].to)->name,
		       t[i].where);
		printf("%47s %s%s%s%s\n", "", t[i].io, t[i].counts ? " [" : "",
		       t[i].counts ? t[i].counts : "", t[i].counts ? "]" : "");
	}
}

/* The function part of "file.c:function". */
static const char *func_of(const char *where)
{
	const char *c = strchr(where, ':');

	return c ? c + 1 : where;
}

static const char *const colors[VMS_PE_NR] = {
	[VMS_PE_ENABLE] = "gray40",	  [VMS_PE_MOVE] = "darkorange3",
	[VMS_PE_FAULT] = "blue3",	  [VMS_PE_REMOVE] = "red3",
	[VMS_PE_TRIM_ZERO] = "darkgreen", [VMS_PE_TRIM_CLEAN] = "darkgreen",
	[VMS_PE_SWAP_OUT] = "purple3",	  [VMS_PE_SWAP_IN] = "deepskyblue4",
	[VMS_PE_DISABLE] = "gray40",
};

/*
 * One edge per (from, to, event) with the functions of its rows; rows that differ
 * only in their system calls (the "as above" rows) share the edge's function.
 */
static void print_dot(void)
{
	const struct vms_page_transition *t;
	size_t n, i, j;
	int k;

	t = vms_page_transitions(&n);
	printf("digraph page_states {\n\trankdir=TB;\n");
	printf("\tlabel=\"life of a guest page (ref/page_transitions.c): R resident, "
	       "S staged, F swap-file slot\";\n");
	printf("\tlabelloc=t;\n\tfontname=\"Helvetica\";\n");
	printf("\tnode [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
	printf("\tedge [fontname=\"Helvetica\", fontsize=10];\n");
	for (k = 0; k < VMS_PK_NR; k++) {
		const struct vms_page_kind_info *ki = vms_page_kind_info(k);

		if (k == VMS_PK_UNTRACKED)
			printf("\t\"%s\" [label=\"%s\\n(swap disabled)\", "
			       "style=\"rounded,dashed\"];\n",
			       ki->name, ki->name);
		else
			printf("\t\"%s\" [label=\"%s\\nR=%c S=%c F=%s\"];\n", ki->name, ki->name,
			       ki->r, ki->s, ki->f);
	}
	for (i = 0; i < n; i++) {
		bool seen = false;

		for (j = 0; j < i && !seen; j++)
			seen = t[j].from == t[i].from && t[j].to == t[i].to &&
			       t[j].event == t[i].event;
		if (seen)
			continue;
		printf("\t\"%s\" -> \"%s\" [color=%s, fontcolor=%s, label=\"%s\\n%s%s%s\"];\n",
		       vms_page_kind_info(t[i].from)->name, vms_page_kind_info(t[i].to)->name,
		       colors[t[i].event], colors[t[i].event], vms_page_event_name(t[i].event),
		       func_of(t[i].where), t[i].counts ? "\\n" : "",
		       t[i].counts ? t[i].counts : "");
	}
	printf("}\n");
}

int main(int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--dot") && strcmp(argv[1], "--help"))) {
		fprintf(stderr, "usage: vms_page_dump [--dot] [--help]\n");
		return 2;
	}
	if (argc == 2 && !strcmp(argv[1], "--help")) {
		printf("usage: vms_page_dump [--dot]: print the page-state transition table\n");
		return 0;
	}
	if (argc == 2)
		print_dot();
	else
		print_text();
	return 0;
}
