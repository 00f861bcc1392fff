// SPDX-License-Identifier: MIT
/*
 * page_transitions.c - the page-state transition table (page_transitions.h): what
 * the page handler does to one page, row by row, as the code in the named
 * functions does it. When one of those functions changes what it does to a page,
 * this table changes with it (and 'make docs' redraws ref/pictures/).
 */
#include <stddef.h>

#include <vmmswap/page_transitions.h>

static const struct vms_page_kind_info kinds[VMS_PK_NR] = {
	[VMS_PK_UNTRACKED] = { "untracked", '-', '-', "-",
			       "no uffd registered: the kernel allocates (zero or the memfd's "
			       "data)" },
	[VMS_PK_EMPTY] = { "empty", '0', '0', "NONE", "UFFDIO_ZEROPAGE" },
	[VMS_PK_RESIDENT] = { "resident", '1', '0', "NONE",
			      "none (a late message: ZEROPAGE EEXIST, WAKE)" },
	[VMS_PK_RESIDENT_CLEARED] = { "resident+slot", '1', '0', "CLEARED",
				      "none (a late message: ZEROPAGE EEXIST, WAKE)" },
	[VMS_PK_STAGED] = { "staged", '0', '1', "NONE", "UFFDIO_COPY from staging" },
	[VMS_PK_STAGED_CLEARED] = { "staged+slot", '0', '1', "CLEARED",
				    "UFFDIO_COPY from staging" },
	[VMS_PK_SWAPPED] = { "swapped", '0', '0', "PRESENT", "pread the slot, UFFDIO_COPY" },
};

static const char *const events[VMS_PE_NR] = {
	[VMS_PE_ENABLE] = "enable",	    [VMS_PE_MOVE] = "move",
	[VMS_PE_FAULT] = "fault",	    [VMS_PE_REMOVE] = "remove",
	[VMS_PE_TRIM_ZERO] = "trim (zero)", [VMS_PE_TRIM_CLEAN] = "trim (clean)",
	[VMS_PE_SWAP_OUT] = "swap-out",	    [VMS_PE_SWAP_IN] = "swap-in",
	[VMS_PE_DISABLE] = "disable",
};

/* One row per line reads better than a reflowed initializer. */
/* clang-format off */
#define T(f, e, t, w, i, c) { VMS_PK_##f, VMS_PK_##t, VMS_PE_##e, w, i, c }

static const struct vms_page_transition table[] = {
	/* Enable in Ready: a fresh page state, every page S=0 F=NONE. */
	T(UNTRACKED, ENABLE, RESIDENT, "page_handler.c:vms_ph_create",
	  "memfd_create (staging), open(O_TMPFILE) (swap file); "
	  "UFFDIO_REGISTER MISSING on every uffd", NULL),
	T(UNTRACKED, ENABLE, EMPTY, "page_handler.c:vms_ph_create",
	  "as above; the page is a hole of the guest memfd", NULL),
	/* The move: copied, then marked staged and punched in one hold of the lock. */
	T(RESIDENT, MOVE, STAGED, "page_handler_move.c:commit_window",
	  "lseek SEEK_DATA/SEEK_HOLE, copy_file_range guest memfd -> staging, "
	  "fallocate PUNCH_HOLE guest memfd", NULL),
	T(RESIDENT_CLEARED, MOVE, STAGED_CLEARED, "page_handler_move.c:commit_window",
	  "as above; the CLEARED slot is kept for trim", NULL),
	/* Faults. */
	T(STAGED, FAULT, RESIDENT, "page_handler_fault.c:fault_staged",
	  "UFFDIO_COPY from the staging mapping; "
	  "staging page punched later (fallocate PUNCH_HOLE, batched)",
	  "copied_from_staging_pages"),
	T(STAGED_CLEARED, FAULT, RESIDENT_CLEARED, "page_handler_fault.c:fault_staged",
	  "as above", "copied_from_staging_pages"),
	T(SWAPPED, FAULT, RESIDENT_CLEARED, "page_handler_fault.c:vms_ph_fault",
	  "pread of the slot without the lock, UFFDIO_COPY; the slot is kept (CLEARED)",
	  "copied_from_file_pages"),
	T(EMPTY, FAULT, RESIDENT, "page_handler_fault.c:vms_ph_fault",
	  "UFFDIO_ZEROPAGE", "zeroed_pages"),
	T(RESIDENT, FAULT, RESIDENT, "page_handler_fault.c:vms_ph_fault",
	  "UFFDIO_ZEROPAGE fails with EEXIST, UFFDIO_WAKE", "redundant_pages"),
	T(RESIDENT_CLEARED, FAULT, RESIDENT_CLEARED, "page_handler_fault.c:vms_ph_fault",
	  "UFFDIO_ZEROPAGE fails with EEXIST, UFFDIO_WAKE", "redundant_pages"),
	/* A balloon REMOVE: forget every copy; the kernel punches the guest page. */
	T(RESIDENT, REMOVE, EMPTY, "page_handler_fault.c:vms_ph_remove",
	  "none by the monitor: the remover's MADV_REMOVE punches the guest page", NULL),
	T(RESIDENT_CLEARED, REMOVE, EMPTY, "page_handler_fault.c:vms_ph_remove",
	  "the slot is freed; MADV_REMOVE punches the guest page", NULL),
	T(STAGED, REMOVE, EMPTY, "page_handler_fault.c:vms_ph_remove",
	  "fallocate PUNCH_HOLE staging", NULL),
	T(STAGED_CLEARED, REMOVE, EMPTY, "page_handler_fault.c:vms_ph_remove",
	  "fallocate PUNCH_HOLE staging; the slot is freed", NULL),
	T(SWAPPED, REMOVE, EMPTY, "page_handler_fault.c:vms_ph_remove",
	  "the slot is freed (the file shrinks at the next swap-out if it was the top)", NULL),
	/* Trim: only staged pages are looked at. */
	T(STAGED, TRIM_ZERO, EMPTY, "page_handler_jobs.c:vms_ph_trim",
	  "compare in the staging mapping; fallocate PUNCH_HOLE staging", NULL),
	T(STAGED_CLEARED, TRIM_ZERO, EMPTY, "page_handler_jobs.c:vms_ph_trim",
	  "as above; the slot is freed", NULL),
	T(STAGED_CLEARED, TRIM_CLEAN, SWAPPED, "page_handler_jobs.c:vms_ph_trim",
	  "pread of the slot without the lock, memcmp, fallocate PUNCH_HOLE staging", NULL),
	/* Swap-out: a run of staged pages written, committed if still staged. */
	T(STAGED, SWAP_OUT, SWAPPED, "page_handler_jobs.c:swap_out_run",
	  "lowest free slot; sendfile staging memfd -> swap file; fallocate PUNCH_HOLE staging", NULL),
	T(STAGED_CLEARED, SWAP_OUT, SWAPPED, "page_handler_jobs.c:swap_out_run",
	  "as above, rewriting the page's own CLEARED slot", NULL),
	/* Swap-in: staged runs first, then swapped runs, through one uffd. */
	T(STAGED, SWAP_IN, RESIDENT, "page_handler_jobs.c:swap_in_staged",
	  "UFFDIO_COPY of the run from the staging mapping; fallocate PUNCH_HOLE staging", NULL),
	T(STAGED_CLEARED, SWAP_IN, RESIDENT_CLEARED, "page_handler_jobs.c:swap_in_staged",
	  "as above", NULL),
	T(SWAPPED, SWAP_IN, RESIDENT_CLEARED, "page_handler_jobs.c:swap_in_file",
	  "posix_fadvise WILLNEED (next run), "
	  "MADV_POPULATE_READ of the file mapping (or pread), UFFDIO_COPY",
	  NULL),
	/* Disable: the swap-in left nothing staged or swapped; the state goes. */
	T(RESIDENT, DISABLE, UNTRACKED, "monitor_enable.c:vms_mon_finish_disable",
	  "UFFDIO_UNREGISTER on every uffd; page handler destroyed, swap file released", NULL),
	T(RESIDENT_CLEARED, DISABLE, UNTRACKED, "monitor_enable.c:vms_mon_finish_disable",
	  "as above", NULL),
	T(EMPTY, DISABLE, UNTRACKED, "monitor_enable.c:vms_mon_finish_disable",
	  "as above", NULL),
};
/* clang-format on */

const struct vms_page_transition *vms_page_transitions(size_t *n)
{
	*n = sizeof(table) / sizeof(table[0]);
	return table;
}

const struct vms_page_kind_info *vms_page_kind_info(int kind)
{
	return kind >= 0 && kind < VMS_PK_NR ? &kinds[kind] : NULL;
}

const char *vms_page_event_name(int event)
{
	return event >= 0 && event < VMS_PE_NR ? events[event] : "?";
}
