/* SPDX-License-Identifier: MIT */
/*
 * vmm/guest_abi.h - the contract between minivmm and its guest programs (fixtures/).
 * Its names carry minivmm's MVM_ / mvm_ prefix (vms_ is the library's).
 *
 * Included by the freestanding guest and by the VMM, so it needs nothing but
 * <stdint.h> (no libc, no host headers).
 *
 * Guest-physical layout (the VMM picks the RAM regions; the rest is fixed):
 *   [0, 2 MiB)           boot RAM, never swapped: libminivm's system area, the guest
 *                        program (at MVM_GUEST_LOAD_GPA), one stack and one mailbox
 *                        page per vCPU, and the info page.
 *   RAM regions          the swappable guest memory, one or more regions with gaps.
 *                        Guest commands address it by "RAM page index": the pages of
 *                        all regions, in region order, numbered from 0, so a range can
 *                        span a gap between regions.
 *   MVM_GUEST_MMIO_BASE  doorbells (no RAM behind them: every access exits to the VMM).
 *
 * Protocol, per vCPU: the guest reads MVM_DB_WAIT (the VMM blocks that read until a
 * command sits in the vCPU's mailbox and returns its sequence number), runs the
 * command, fills the result fields and writes its status (0 or a MVM_GERR_*) to
 * MVM_DB_DONE. The continuous writer writes MVM_DB_STARTED first, so the requester can
 * return while the writer keeps running until the VMM sets 'stop'. The balloon
 * commands write MVM_DB_BALLOON once per contiguous guest-physical run; the VMM
 * handles the run in another thread before the write completes.
 *
 * Why a blocking MMIO read instead of a spin loop or HLT: ring-3 guest code cannot
 * HLT, and spinning would burn a host core per idle vCPU.
 */
#ifndef MINIVM_GUEST_ABI_H
#define MINIVM_GUEST_ABI_H

#include <stdint.h> /* freestanding: the compiler's own header */

#include "vm/layout.h"

#define MVM_GUEST_PAGE_SIZE 4096ULL

#define MVM_GUEST_SYS_GPA     MINIVM_SYS_GPA
#define MVM_GUEST_INFO_GPA    0x80000ULL      /* struct mvm_guest_info */
#define MVM_GUEST_MAILBOX_GPA 0x81000ULL      /* one struct mvm_mailbox page per vCPU */
#define MVM_GUEST_LOAD_GPA    MINIVM_CODE_GPA /* guest program */
#define MVM_GUEST_LOAD_MAX    0x40000ULL
#define MVM_GUEST_STACK_GPA   0x140000ULL /* stacks, MVM_GUEST_STACK_SIZE per vCPU */
#define MVM_GUEST_STACK_SIZE  0x4000ULL
#define MVM_GUEST_BOOT_SIZE   MINIVM_BOOT_SIZE
#define MVM_GUEST_MAX_VCPUS   16
#define MVM_GUEST_MAX_REGIONS 8

#define MVM_GUEST_MMIO_BASE MINIVM_MMIO_BASE
#define MVM_DB_WAIT	    (MVM_GUEST_MMIO_BASE + 0x00) /* read: next command's seq */
#define MVM_DB_DONE	    (MVM_GUEST_MMIO_BASE + 0x08) /* write: status of the command */
#define MVM_DB_STARTED	    (MVM_GUEST_MMIO_BASE + 0x10) /* write: writer is running */
#define MVM_DB_BALLOON	    (MVM_GUEST_MMIO_BASE + 0x18) /* write: balloon run in mailbox */
#define MVM_DB_HALT	    (MVM_GUEST_MMIO_BASE + 0x20) /* write: guest exit status */
#define MVM_GUEST_EXC_GPA   MINIVM_EXC_GPA

/* Entry registers: rdi = vCPU id, rsi = its mailbox, rdx = the info page. */

#define MVM_GUEST_INFO_MAGIC 0x6f666e69736d6d76ULL /* "vmmsinfo" */

struct mvm_guest_region {
	uint64_t gpa;
	uint64_t pages;
};

struct mvm_guest_info {
	uint64_t magic;
	uint32_t nr_vcpus;
	uint32_t nr_regions;
	uint64_t total_pages; /* sum of regions[].pages: valid RAM page indexes */
	struct mvm_guest_region regions[MVM_GUEST_MAX_REGIONS];
};

enum mvm_guest_cmd {
	MVM_GCMD_PING = 1,	  /* nothing; proves the vCPU runs commands */
	MVM_GCMD_FILL = 2,	  /* write pattern(seed, page) over [start, start + count) */
	MVM_GCMD_VERIFY = 3,	  /* compare against pattern(seed); first mismatch */
	MVM_GCMD_VERIFY_ZERO = 4, /* compare against zeroes */
	MVM_GCMD_READ_TOUCH = 5,  /* read one word per page */
	MVM_GCMD_WRITE_TOUCH = 6, /* rewrite one word per page with its own value */
	MVM_GCMD_CHECKSUM = 7,	  /* checksum of every word of the range */
	MVM_GCMD_WRITER = 8,	  /* fill passes seed, seed+1, ... until 'stop' */
	MVM_GCMD_INFLATE = 9,	  /* give the pages to the balloon (VMM discards them) */
	MVM_GCMD_DEFLATE = 10,	  /* take them back; they must read as zero */
	MVM_GCMD_HALT = 11,	  /* write 'seed' as exit status to MVM_DB_HALT */
};

/* Guest command status (written to MVM_DB_DONE). */
enum mvm_guest_err {
	MVM_GERR_OK = 0,
	MVM_GERR_RANGE = 1,    /* start/count outside [0, total_pages) */
	MVM_GERR_MISMATCH = 2, /* verify found differences, see the result fields */
	MVM_GERR_BALLOON = 3,  /* the VMM refused or failed a balloon run */
	MVM_GERR_CMD = 4,      /* unknown command */
};

enum mvm_balloon_op {
	MVM_BALLOON_INFLATE = 1,
	MVM_BALLOON_DEFLATE = 2,
};

/* One page per vCPU; 'volatile' on the fields the other side changes concurrently. */
struct mvm_mailbox {
	/* Command, written by the VMM before it answers MVM_DB_WAIT. */
	uint64_t seq;
	uint32_t cmd; /* enum mvm_guest_cmd */
	uint32_t flags;
	uint64_t start; /* first RAM page index */
	uint64_t count; /* pages */
	uint64_t seed;
	volatile uint32_t stop; /* writer: finish the current pass and report */
	uint32_t pad0;

	/* Results, written by the guest before MVM_DB_DONE. */
	uint64_t pages_done;
	uint64_t mismatched_pages;
	uint64_t bad_page; /* first mismatch: RAM page index ... */
	uint64_t bad_word; /* ... 8-byte word within the page ... */
	uint64_t expected; /* ... and the values */
	uint64_t actual;
	uint64_t checksum;
	volatile uint64_t passes; /* writer: completed passes (live) */
	uint64_t last_seed;	  /* writer: seed of the last complete pass */

	/* Balloon run, written by the guest before MVM_DB_BALLOON. */
	uint64_t bl_gpa;
	uint64_t bl_len;
	uint32_t bl_op;	   /* enum mvm_balloon_op */
	int32_t bl_status; /* written by the VMM: 0 or a negative errno */
};

/*
 * The pattern in word 'word' (0..511) of RAM page 'page' after a fill with 'seed':
 * a 64-bit mix of the three, never zero (so a page that lost its data and reads as
 * zero never passes a verify). Shared by the guest and the device processes' DMA.
 */
static inline uint64_t mvm_pattern(uint64_t seed, uint64_t page, uint64_t word)
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
static inline uint64_t mvm_checksum_step(uint64_t sum, uint64_t word)
{
	sum = (sum << 7 | sum >> 57) ^ word;
	return sum * 0x100000001b3ULL;
}

#endif /* MINIVM_GUEST_ABI_H */
