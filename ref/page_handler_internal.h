/* SPDX-License-Identifier: MIT */
/*
 * page_handler_internal.h - what the page handler's files share (private to
 * ref/page_handler*.c): the handler's state, grouped by what protects it, the
 * index-space conversions, the lock wrappers, and the staging and slot helpers.
 * Index spaces: a guest address belongs to a region; its page has a pgoff in the
 * page-state index space (the regions concatenated in the order given at
 * creation). The same pgoff addresses the staging memfd. Swap-file slots are a
 * third space, mapped from pgoffs by the page state.
 */
#ifndef VMMSWAP_PAGE_HANDLER_INTERNAL_H
#define VMMSWAP_PAGE_HANDLER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmmswap/page_handler.h>
#include <vmmswap/page_state.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/staging.h>
#include <vmmswap/swap_file.h>
#include <vmmswap/test_hooks.h>

struct ph_region {
	uint64_t addr;
	uint64_t len;
	uint64_t npages;
	uint64_t base; /* first pgoff of the region in the page-state index space */
	int memfd;     /* owned (dup), or -1 */
	uint64_t memfd_off;
	/* Per-enable counters (reset by a move of this region); under the state lock. */
	uint64_t copied_from_file;
	uint64_t copied_from_staging;
	uint64_t zeroed;
	uint64_t redundant;
	uint64_t swap_in;
	uint64_t fault_around; /* of copied_from_staging: filled by fault-around */
};

/* A sequential fault stream: where its next fault is expected, its last run. */
struct fa_stream {
	uint64_t next; /* pgoff right after the last run; UINT64_MAX: unused */
	uint64_t run;  /* pages the last run was allowed */
};

/*
 * Staging pages faulted in but not punched yet: the fault path frees them in
 * batches. Flushed before any move, the only thing that writes staging.
 */
struct ph_deferred_frees {
	uint64_t pgoff[64];
	unsigned int n;
};

/* Fault-around: the limit (<= 1: off) and the streams, oldest replaced first. */
struct ph_fault_around {
	unsigned int max;
	struct fa_stream streams[VMS_PH_FAULT_AROUND_STREAMS];
	unsigned int oldest;
};

/* A job's scratch space: chunk_pages entries each (buf: pages). */
struct ph_job_scratch {
	uint8_t *buf;
	uint32_t *slots;
	uint8_t *fresh; /* flags: slot allocated by this job */
	uint64_t *pgoffs;
};

/* Test-only (vms_ph_set_race_hook); hook and arg are accessed atomically. */
struct ph_test_hooks {
	vms_ph_race_hook hook;
	void *arg;
	unsigned int lock_waiters; /* atomic: see lock_state() */
};

struct vms_page_handler {
	/* The state lock: protects everything below it except where noted. */
	pthread_mutex_t lock;
	/* Serialises the jobs (move, trim, swap-out, swap-in); taken before 'lock'. */
	pthread_mutex_t job_lock;

	/* Immutable after creation (counters inside are under 'lock'). */
	struct ph_region *regions; /* in page-state index order */
	size_t nregions;
	size_t *by_addr; /* region indices sorted by address */
	uint64_t npages;
	unsigned int move_threads;
	uint64_t chunk_pages; /* VMS_PH_MAX_CHUNK_BYTES in pages */

	struct vms_page_state page_state;
	struct vms_staging staging;	/* bytes: see staging.h for who may touch which page */
	struct vms_swap_file swap_file; /* allocation under 'lock', I/O outside */
	/*
	 * Bumped whenever a slot is freed (it may be reused) or is about to be
	 * rewritten (swap-out reusing a CLEARED slot): a slot read without the lock is
	 * valid only if seq did not change meanwhile.
	 */
	uint64_t seq;
	uint64_t staged_hint; /* no staged page below this pgoff */
	/*
	 * While a move runs (moving), the pages a REMOVE hit since it started: their
	 * copy in staging may predate the removal, so the move must not mark them.
	 */
	struct vms_bitmap removed;
	bool moving;
	struct ph_deferred_frees deferred;
	struct ph_fault_around fa;

	bool no_sendfile;	   /* under 'job_lock': the staging memfd cannot be spliced */
	struct ph_job_scratch job; /* under 'job_lock' */
	struct ph_test_hooks test;
};

static inline uint64_t region_pgoff(const struct ph_region *r, uint64_t addr)
{
	return r->base + vms_addr_to_pgoff(addr - r->addr);
}

static inline uint64_t region_addr(const struct ph_region *r, uint64_t pgoff)
{
	return r->addr + vms_pgoff_to_addr(pgoff - r->base);
}

static inline uint64_t region_end_pgoff(const struct ph_region *r)
{
	return r->base + r->npages;
}

static inline void lock_state(struct vms_page_handler *ph)
{
	if (!pthread_mutex_trylock(&ph->lock))
		return;
	/* Contended: counted so that a race test can see a thread wait here. */
	__atomic_add_fetch(&ph->test.lock_waiters, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&ph->lock);
	__atomic_sub_fetch(&ph->test.lock_waiters, 1, __ATOMIC_SEQ_CST);
}

static inline void unlock_state(struct vms_page_handler *ph)
{
	pthread_mutex_unlock(&ph->lock);
}

/* Call the test's race hook, if any (see enum vms_ph_race_point). */
static inline void race_point(struct vms_page_handler *ph, enum vms_ph_race_point at,
			      uint64_t pgoff, uint64_t npages)
{
	vms_ph_race_hook hook = __atomic_load_n(&ph->test.hook, __ATOMIC_ACQUIRE);

	if (__builtin_expect(hook != NULL, 0))
		hook(__atomic_load_n(&ph->test.arg, __ATOMIC_RELAXED), at, pgoff, npages);
}

/* The region containing addr, or NULL. O(log regions). */
struct ph_region *vms_phi_find_region(const struct vms_page_handler *ph, uint64_t addr);
/* The region holding pgoff (< npages). */
struct ph_region *vms_phi_pgoff_region(const struct vms_page_handler *ph, uint64_t pgoff);
/* F := NONE, freeing the slot. Under the state lock. */
void vms_phi_drop_slot(struct vms_page_handler *ph, uint64_t pgoff);
/* Free staging pages nobody may read any more; an error only leaks memory. */
void vms_phi_free_staging(struct vms_page_handler *ph, uint64_t pgoff, uint64_t npages);
/* Punch the pending staging pages, coalescing runs. Under the state lock. */
void vms_phi_flush_pending_free(struct vms_page_handler *ph);
/* Free one staging page later (see pending_free). Under the state lock. */
void vms_phi_defer_free_staging(struct vms_page_handler *ph, uint64_t pgoff);
/* vms_ph_metrics() for a caller that holds the state lock. */
int vms_phi_metrics_locked(struct vms_page_handler *ph, struct vms_ph_metrics *m);

#endif /* VMMSWAP_PAGE_HANDLER_INTERNAL_H */
