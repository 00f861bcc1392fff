/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/page_state.h - compact per-page state of guest memory and run queries.
 *
 * Every guest page has an index ("pgoff" in the page-state index space: the guest
 * regions concatenated in the order they were given) and two pieces of state:
 *  - S: staged. The page's bytes live in the staging memfd at the same pgoff.
 *  - F: its swap-file slot: NONE; PRESENT(slot) (the slot holds the page's
 *    authoritative content); CLEARED(slot) (the slot is kept but may be stale; only
 *    trim reads it, and only to compare).
 * Residency in guest memory is not stored (the guest memfd knows it).
 *
 * Layout (the whole cost, stated for 4 KiB pages, per GiB of guest memory = 262144
 * pages):
 *  - one u32 per page packing F: 0 = NONE, else bit 31 = PRESENT and bits 0-30 =
 *    slot + 1                                                   1048576 bytes
 *  - three bitmaps (staged, present, has-a-slot), 1 bit per page  98304 bytes
 *  - a summary bit per 64-bit bitmap word, so that scans skip 4096
 *    empty pages per summary bit                                  1536 bytes
 * = 1148416 bytes (1.10 MiB, 0.107 % of guest memory) per GiB. The swap file adds
 * 4 bytes + 1 bit per slot ever allocated (see swap_file.h).
 * vms_page_state_bytes() returns the exact figure for a given page count.
 *
 * Run queries scan the bitmaps a 64-bit word at a time and skip empty words via
 * the summary, so finding the next staged or swapped page costs O(pages found +
 * pages / 4096), not O(guest pages).
 *
 * Not thread-safe: the owner (the page handler) serialises access with its mutex.
 * The kinds of page S and F make and every transition between them: contract 3.1
 * (ref/CONTRACT.md), the table in ref/page_transitions.c, and ref/TOUR.md.
 */
#ifndef VMMSWAP_PAGE_STATE_H
#define VMMSWAP_PAGE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest slot number a u32 state can hold (slot + 1 must fit in 31 bits). */
#define VMS_MAX_SLOT ((1U << 31) - 2)
/* Largest number of pages a page state can track (crosvm's limit, ~8 TiB). */
#define VMS_MAX_PAGES ((uint64_t)VMS_MAX_SLOT)

/* A bitmap with a one-bit-per-word summary and a population count. */
struct vms_bitmap {
	uint64_t *words;
	uint64_t *summary; /* bit w set <=> words[w] != 0 */
	uint64_t nbits;
	uint64_t count; /* number of set bits */
};

int vms_bitmap_init(struct vms_bitmap *bm, uint64_t nbits);
void vms_bitmap_destroy(struct vms_bitmap *bm);
/* Bytes allocated for a bitmap of nbits (words + summary). */
uint64_t vms_bitmap_bytes(uint64_t nbits);

static inline bool vms_bitmap_test(const struct vms_bitmap *bm, uint64_t bit)
{
	return (bm->words[bit / 64] >> (bit % 64)) & 1;
}

/* Set / clear one bit; return the old value. */
bool vms_bitmap_set(struct vms_bitmap *bm, uint64_t bit);
bool vms_bitmap_clear(struct vms_bitmap *bm, uint64_t bit);
/* Set or clear every bit of [start, end). */
void vms_bitmap_set_range(struct vms_bitmap *bm, uint64_t start, uint64_t end);
void vms_bitmap_clear_range(struct vms_bitmap *bm, uint64_t start, uint64_t end);
/* Lowest set (clear) bit in [from, limit), or limit if none. */
uint64_t vms_bitmap_next_set(const struct vms_bitmap *bm, uint64_t from, uint64_t limit);
uint64_t vms_bitmap_next_clear(const struct vms_bitmap *bm, uint64_t from, uint64_t limit);

/* The per-page state of all guest pages. */
struct vms_page_state {
	uint32_t *file;		   /* F per page, see above */
	struct vms_bitmap staged;  /* S */
	struct vms_bitmap present; /* F = PRESENT */
	struct vms_bitmap slotted; /* F = PRESENT or CLEARED */
	uint64_t npages;
};

#define VMS_PS_NO_SLOT UINT32_MAX

int vms_page_state_init(struct vms_page_state *ps, uint64_t npages);
void vms_page_state_destroy(struct vms_page_state *ps);
/* Heap bytes used by the page state for npages pages. */
uint64_t vms_page_state_bytes(uint64_t npages);

static inline bool vms_ps_staged(const struct vms_page_state *ps, uint64_t pgoff)
{
	return vms_bitmap_test(&ps->staged, pgoff);
}

static inline bool vms_ps_present(const struct vms_page_state *ps, uint64_t pgoff)
{
	return ps->file[pgoff] >> 31;
}

/* The page's slot (PRESENT or CLEARED), or VMS_PS_NO_SLOT. */
static inline uint32_t vms_ps_slot(const struct vms_page_state *ps, uint64_t pgoff)
{
	uint32_t v = ps->file[pgoff] & ~(1U << 31);

	return v ? v - 1 : VMS_PS_NO_SLOT;
}

/* S := 1 / S := 0 (return the old S). */
bool vms_ps_set_staged(struct vms_page_state *ps, uint64_t pgoff);
bool vms_ps_clear_staged(struct vms_page_state *ps, uint64_t pgoff);
/* F := PRESENT(slot). */
void vms_ps_set_present(struct vms_page_state *ps, uint64_t pgoff, uint32_t slot);
/* F: PRESENT(slot) -> CLEARED(slot); no-op otherwise. */
void vms_ps_set_cleared(struct vms_page_state *ps, uint64_t pgoff);
/* F := NONE; returns the slot it had, or VMS_PS_NO_SLOT. */
uint32_t vms_ps_set_none(struct vms_page_state *ps, uint64_t pgoff);

#endif /* VMMSWAP_PAGE_STATE_H */
