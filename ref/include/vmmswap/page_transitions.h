/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/page_transitions.h - the life of one guest page, as data: every way the
 * page handler changes a page's state, with the function that does it, the system
 * calls it makes and the metric it counts. A table for readers (tools/vms_page_dump
 * prints it and draws it for ref/pictures/; ref/CONTRACT.md section 3.1 and
 * ref/TOUR.md explain it). The page handler does not consult it;
 * selftests/page_transitions_test.c replays every row through the page handler
 * and fails when a row says something the code does not do.
 *
 * A page's state is three facts (page_state.h): S (staged: its bytes are in the
 * staging memfd), F (its swap-file slot: NONE, PRESENT = the slot is the
 * authoritative copy, CLEARED = a slot kept with a possibly stale copy, for trim)
 * and R (resident in the guest memfd; not stored: SEEK_DATA knows it). Of the
 * twelve combinations, six are the kinds below; R=0 S=0 F=CLEARED arises only when
 * guest memory is discarded without a REMOVE (fallocate PUNCH_HOLE) and then
 * faults like an empty page; the other five never hold (page_handler_check.c).
 * "Untracked" is every page while swap is disabled (no page handler exists).
 *
 * Honesty rules for the table: a row exists only for a change the reference
 * makes (or the kernel makes on its behalf, for a REMOVE); a row names the
 * function in which the state words change; a page the reference leaves alone
 * (a hole during a move, a REMOVE of an empty page) has no row.
 */
#ifndef VMMSWAP_PAGE_TRANSITIONS_H
#define VMMSWAP_PAGE_TRANSITIONS_H

#include <stddef.h>

enum vms_page_kind {
	VMS_PK_UNTRACKED = 0,	 /* swap disabled: no page handler */
	VMS_PK_EMPTY,		 /* R=0 S=0 F=NONE: a fault fills zeros */
	VMS_PK_RESIDENT,	 /* R=1 S=0 F=NONE */
	VMS_PK_RESIDENT_CLEARED, /* R=1 S=0 F=CLEARED: resident, a stale slot kept */
	VMS_PK_STAGED,		 /* R=0 S=1 F=NONE */
	VMS_PK_STAGED_CLEARED,	 /* R=0 S=1 F=CLEARED */
	VMS_PK_SWAPPED,		 /* R=0 S=0 F=PRESENT */
	VMS_PK_NR
};

enum vms_page_event {
	VMS_PE_ENABLE = 0, /* a page handler is created (Enable in Ready) */
	VMS_PE_MOVE,	   /* enable / re-enable: resident pages to staging */
	VMS_PE_FAULT,	   /* a page fault message served */
	VMS_PE_REMOVE,	   /* UFFD_EVENT_REMOVE applied (balloon MADV_REMOVE) */
	VMS_PE_TRIM_ZERO,  /* trim: the staged bytes are all zero */
	VMS_PE_TRIM_CLEAN, /* trim: the staged bytes equal the CLEARED slot */
	VMS_PE_SWAP_OUT,   /* a swap-out chunk */
	VMS_PE_SWAP_IN,	   /* a swap-in chunk */
	VMS_PE_DISABLE,	   /* swap-in done: the page handler is destroyed */
	VMS_PE_NR
};

/* The three facts of a kind; for VMS_PK_UNTRACKED all are meaningless (0). */
struct vms_page_kind_info {
	const char *name;  /* "staged", "resident+slot", ... */
	char r, s;	   /* '0' or '1'; '-' when untracked */
	const char *f;	   /* "NONE", "PRESENT", "CLEARED"; "-" when untracked */
	const char *fault; /* what a fault does in this kind */
};

struct vms_page_transition {
	unsigned char from, to; /* enum vms_page_kind */
	unsigned char event;	/* enum vms_page_event */
	const char *where;	/* "file.c:function" in ref/ where the state changes */
	const char *io;		/* the system calls and ioctls made for it */
	const char *counts;	/* the metric counted, or NULL */
};

/* The rows in reading order: life of a page from enable to disable. */
const struct vms_page_transition *vms_page_transitions(size_t *n);

const struct vms_page_kind_info *vms_page_kind_info(int kind);
const char *vms_page_event_name(int event);

#endif /* VMMSWAP_PAGE_TRANSITIONS_H */
