/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/types.h - the types the controller, the monitor and the messages between
 * them share: guest regions, the reply to a command, the monitor's Info, and the
 * launch flags. The bottom of the layering: it includes nothing of vmmswap.
 */
#ifndef VMMSWAP_TYPES_H
#define VMMSWAP_TYPES_H

#include <stdint.h>

/* One guest memory region, mapped MAP_SHARED at addr in the VMM and every device. */
struct vms_region {
	uint64_t addr;	    /* host virtual address, page aligned */
	uint64_t len;	    /* bytes, page multiple, > 0 */
	int memfd;	    /* the memfd backing it (the monitor keeps a dup) */
	uint64_t memfd_off; /* offset of addr in memfd, page aligned */
};

#define VMS_CTL_MAX_REGIONS 64

/* vms_controller_opts.flags */
#define VMS_CTL_KEEP_CAPS  0x1u /* monitor: do not drop capabilities (tests, debugging) */
#define VMS_CTL_NO_FREEZE  0x2u /* enable: do not freeze any process (see set_freeze) */
#define VMS_CTL_FAULT_CPU  0x4u /* opts.fault_cpu is an affinity hint (see there) */
#define VMS_CTL_NO_SANDBOX 0x8u /* monitor: no seccomp allowlist (debugging only) */

/* Largest fault-around run (pages): one swap chunk (see page_handler.h). */
#define VMS_MAX_FAULT_AROUND_PAGES 512

enum vms_reply_result {
	VMS_REPLY_ACCEPTED = 0, /* done (enable: the move finished) or started */
	VMS_REPLY_IGNORED = 1,	/* not valid in the state named by reply.state; no change */
	VMS_REPLY_FAILED = 2,	/* error reply.err (negative errno) */
};

struct vms_reply {
	int32_t result;	   /* enum vms_reply_result */
	int32_t state;	   /* enum vms_swap_state the monitor was in on receipt */
	int32_t new_state; /* the state after handling the command */
	int32_t err;	   /* 0, or a negative errno when result == VMS_REPLY_FAILED */
};

/*
 * Monitor details that crosvm's status does not carry (tools, benchmarks, tests).
 * Answered like Status: at once, in every state, without the command lock.
 */
#define VMS_INFO_CLEANUP_RUNNING 0x1u /* a slow file cleanup is shrinking the file */
#define VMS_INFO_CLEANUP_FAILED	 0x2u /* the last slow file cleanup met an error */
struct vms_monitor_info {
	uint32_t fault_around_pages;  /* the configured fault-around limit */
	uint32_t flags;		      /* VMS_INFO_* */
	uint64_t fault_around_filled; /* pages filled by fault-around, this enable */
	uint64_t swap_file_size;      /* st_size of the swap file (enabled or being cleaned) */
	uint64_t swap_file_alloc;     /* its allocated bytes (st_blocks * 512) */
	uint64_t cleanup_steps;	      /* truncation steps of the running / last cleanup */
	uint64_t uffd_reads;	      /* read()s of uffd events since launch */
	uint64_t uffd_events;	      /* events they returned */
};

#endif /* VMMSWAP_TYPES_H */
