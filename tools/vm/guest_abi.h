/* SPDX-License-Identifier: MIT */
/*
 * vm/guest_abi.h - the contract between minivmm and its guest programs (fixtures/).
 *
 * Included by the freestanding guest and by the VMM, so it needs nothing but
 * <stdint.h> (no libc, no host headers).
 *
 * Guest-physical layout (the VMM picks the RAM regions; the rest is fixed):
 *   [0, 2 MiB)           boot RAM, never swapped: libminivm's system area, the guest
 *                        program (at VMS_GUEST_LOAD_GPA), one stack and one mailbox
 *                        page per vCPU, and the info page.
 *   RAM regions          the swappable guest memory, one or more regions with gaps.
 *                        Guest commands address it by "RAM page index": the pages of
 *                        all regions, in region order, numbered from 0, so a range can
 *                        span a gap between regions.
 *   VMS_GUEST_MMIO_BASE  doorbells (no RAM behind them: every access exits to the VMM).
 *
 * Protocol, per vCPU: the guest reads VMS_DB_WAIT (the VMM blocks that read until a
 * command sits in the vCPU's mailbox and returns its sequence number), runs the
 * command, fills the result fields and writes its status (0 or a VMS_GERR_*) to
 * VMS_DB_DONE. The continuous writer writes VMS_DB_STARTED first, so the requester can
 * return while the writer keeps running until the VMM sets 'stop'. The balloon
 * commands write VMS_DB_BALLOON once per contiguous guest-physical run; the VMM
 * handles the run in another thread before the write completes.
 *
 * Why a blocking MMIO read instead of a spin loop or HLT: ring-3 guest code cannot
 * HLT, and spinning would burn a host core per idle vCPU.
 */
#ifndef MINIVM_GUEST_ABI_H
#define MINIVM_GUEST_ABI_H

#include <stdint.h> /* freestanding: the compiler's own header */

#define VMS_GUEST_PAGE_SIZE 4096ULL

#define VMS_GUEST_SYS_GPA     0x1000ULL	  /* libminivm system area */
#define VMS_GUEST_INFO_GPA    0x80000ULL  /* struct vms_guest_info */
#define VMS_GUEST_MAILBOX_GPA 0x81000ULL  /* one struct vms_mailbox page per vCPU */
#define VMS_GUEST_LOAD_GPA    0x100000ULL /* guest program, entry at its first byte */
#define VMS_GUEST_LOAD_MAX    0x40000ULL
#define VMS_GUEST_STACK_GPA   0x140000ULL /* stacks, VMS_GUEST_STACK_SIZE per vCPU */
#define VMS_GUEST_STACK_SIZE  0x4000ULL
#define VMS_GUEST_BOOT_SIZE   0x200000ULL /* the boot region: [0, 2 MiB) */
#define VMS_GUEST_MAX_VCPUS   16
#define VMS_GUEST_MAX_REGIONS 8

#define VMS_GUEST_MMIO_BASE 0xd0000000ULL
#define VMS_DB_WAIT	    (VMS_GUEST_MMIO_BASE + 0x00)   /* read: next command's seq */
#define VMS_DB_DONE	    (VMS_GUEST_MMIO_BASE + 0x08)   /* write: status of the command */
#define VMS_DB_STARTED	    (VMS_GUEST_MMIO_BASE + 0x10)   /* write: writer is running */
#define VMS_DB_BALLOON	    (VMS_GUEST_MMIO_BASE + 0x18)   /* write: balloon run in mailbox */
#define VMS_DB_HALT	    (VMS_GUEST_MMIO_BASE + 0x20)   /* write: guest exit status */
#define VMS_GUEST_EXC_GPA   (VMS_GUEST_MMIO_BASE + 0x1000) /* libminivm exception reports */

/* Entry registers: rdi = vCPU id, rsi = its mailbox, rdx = the info page. */

#define VMS_GUEST_INFO_MAGIC 0x6f666e69736d6d76ULL /* "vmmsinfo" */

struct vms_guest_region {
	uint64_t gpa;
	uint64_t pages;
};

struct vms_guest_info {
	uint64_t magic;
	uint32_t nr_vcpus;
	uint32_t nr_regions;
	uint64_t total_pages; /* sum of regions[].pages: valid RAM page indexes */
	struct vms_guest_region regions[VMS_GUEST_MAX_REGIONS];
};

enum vms_guest_cmd {
	VMS_GCMD_PING = 1,	  /* nothing; proves the vCPU runs commands */
	VMS_GCMD_FILL = 2,	  /* write pattern(seed, page) over [start, start + count) */
	VMS_GCMD_VERIFY = 3,	  /* compare against pattern(seed); first mismatch */
	VMS_GCMD_VERIFY_ZERO = 4, /* compare against zeroes */
	VMS_GCMD_READ_TOUCH = 5,  /* read one word per page */
	VMS_GCMD_WRITE_TOUCH = 6, /* rewrite one word per page with its own value */
	VMS_GCMD_CHECKSUM = 7,	  /* checksum of every word of the range */
	VMS_GCMD_WRITER = 8,	  /* fill passes seed, seed+1, ... until 'stop' */
	VMS_GCMD_INFLATE = 9,	  /* give the pages to the balloon (VMM discards them) */
	VMS_GCMD_DEFLATE = 10,	  /* take them back; they must read as zero */
	VMS_GCMD_HALT = 11,	  /* write 'seed' as exit status to VMS_DB_HALT */
};

/* Guest command status (written to VMS_DB_DONE). */
enum vms_guest_err {
	VMS_GERR_OK = 0,
	VMS_GERR_RANGE = 1,    /* start/count outside [0, total_pages) */
	VMS_GERR_MISMATCH = 2, /* verify found differences, see the result fields */
	VMS_GERR_BALLOON = 3,  /* the VMM refused or failed a balloon run */
	VMS_GERR_CMD = 4,      /* unknown command */
};

enum vms_balloon_op {
	VMS_BALLOON_INFLATE = 1,
	VMS_BALLOON_DEFLATE = 2,
};

/* One page per vCPU; 'volatile' on the fields the other side changes concurrently. */
struct vms_mailbox {
	/* Command, written by the VMM before it answers VMS_DB_WAIT. */
	uint64_t seq;
	uint32_t cmd; /* enum vms_guest_cmd */
	uint32_t flags;
	uint64_t start; /* first RAM page index */
	uint64_t count; /* pages */
	uint64_t seed;
	volatile uint32_t stop; /* writer: finish the current pass and report */
	uint32_t pad0;

	/* Results, written by the guest before VMS_DB_DONE. */
	uint64_t pages_done;
	uint64_t mismatched_pages;
	uint64_t bad_page; /* first mismatch: RAM page index ... */
	uint64_t bad_word; /* ... 8-byte word within the page ... */
	uint64_t expected; /* ... and the values */
	uint64_t actual;
	uint64_t checksum;
	volatile uint64_t passes; /* writer: completed passes (live) */
	uint64_t last_seed;	  /* writer: seed of the last complete pass */

	/* Balloon run, written by the guest before VMS_DB_BALLOON. */
	uint64_t bl_gpa;
	uint64_t bl_len;
	uint32_t bl_op;	   /* enum vms_balloon_op */
	int32_t bl_status; /* written by the VMM: 0 or a negative errno */
};

/*
 * The pattern in word 'word' (0..511) of RAM page 'page' after a fill with 'seed':
 * a 64-bit mix of the three, never zero (so a page that lost its data and reads as
 * zero never passes a verify). Shared by the guest and the device processes' DMA.
 */
static inline uint64_t vms_pattern(uint64_t seed, uint64_t page, uint64_t word)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL ^ (page << 9 | word);

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 32;
	return x | 1;
}

/* The checksum step over consecutive words (order matters). */
static inline uint64_t vms_checksum_step(uint64_t sum, uint64_t word)
{
	sum = (sum << 7 | sum >> 57) ^ word;
	return sum * 0x100000001b3ULL;
}

#endif /* MINIVM_GUEST_ABI_H */
