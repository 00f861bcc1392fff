/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/page_handler.h - where every guest page is, and the transitions between
 * resident, staged, swapped and empty.
 *
 * A page handler covers one or more guest regions (page aligned, non-overlapping,
 * each backed by a memfd). Per page it knows S (staged) and F (swap-file slot:
 * NONE, PRESENT, CLEARED), see page_state.h. The operations:
 *  - vms_ph_fault(): fill a missing page from staging, else the swap file, else
 *    with zeros (UFFDIO_COPY / UFFDIO_ZEROPAGE through the given uffd).
 *  - vms_ph_remove(): a UFFD_EVENT_REMOVE (balloon MADV_REMOVE): forget the range.
 *  - vms_ph_move_to_staging(): enable: copy the resident pages to staging and punch
 *    them out of the guest memfd, so every later access faults.
 *  - vms_ph_trim(), vms_ph_swap_out(), vms_ph_swap_in(): background chunks that
 *    return their progress, so a caller can stop between any two.
 *
 * Threads and locks:
 *  - One mutex (the "state lock") protects the page state, the slot allocator, the
 *    metrics and the cursors. Every call takes it; fault takes it once per fault
 *    (twice when it must read the swap file) and remove once per range.
 *  - The "job lock" serialises move, trim, swap-out and swap-in against each other
 *    (one background job at a time); fault and remove never take it, so they are
 *    never blocked behind a job's I/O. Order: job lock, then state lock.
 *  - Disk I/O never runs under the state lock: jobs plan under it, do the I/O
 *    without it, and commit under it, re-checking every page that a fault or a
 *    remove changed meanwhile. A swap-file read by a fault is validated by a
 *    sequence number bumped whenever a slot is freed (and could be reused) and
 *    whenever swap-out is about to rewrite a reused CLEARED slot; a read that
 *    failed while the sequence moved is retried, not reported (the freed slot may
 *    lie past a swap-out's truncation of the file). (make stress found the second
 *    case: a fault that read slot S and stalled, while its page was swapped in,
 *    staged with new bytes and swapped out again into the same S, served the old
 *    bytes, because no slot had been freed.)
 *  - Invariant at every release of the state lock: a staged page is not resident
 *    in guest memory. The move therefore marks a window staged and punches it
 *    from the guest memfd in one hold of the lock. The interleaving this closes
 *    (issue 11, a reader saw a page with the wrong contents): the move marked the
 *    window and dropped the lock; a fault on a page of it, served then (typically
 *    a fault message the event loop had read before the processes were frozen),
 *    found the page still resident, took UFFDIO_COPY's EEXIST for "the guest
 *    refilled it", dropped the staged copy, and the punch then left the page with
 *    no copy anywhere: the next access filled it with zeros. Now that fault waits
 *    for the lock and fills the page from staging. A REMOVE applied while a move
 *    runs is remembered (one bit per page), and the move does not mark a removed
 *    page whose copy it took before the removal. The move still needs the REMOVEs
 *    read before it started to be complete (the freezer waits for the remover).
 *    page_handler_race_test forces each interleaving through vms_ph_set_race_hook().
 *  - Intended callers: one event-loop thread calling fault/remove, one background
 *    thread calling the chunked jobs; any thread may read the metrics.
 *
 * Errors: 0 or a negative errno. -EAGAIN from fault or swap-in means a REMOVE (or
 * another non-cooperative event) is pending on that uffd: nothing changed for the
 * page(s) not done; read the uffd's events, apply the removes, then call again.
 * -EFAULT: an address outside every region. -EINVAL: misaligned. -ESRCH: the
 * process owning the uffd exited (state unchanged).
 *
 * The event loop must keep this order so that a REMOVE wins over a fault on the
 * same page (the kernel hands out pending faults before older REMOVEs, and reading
 * a REMOVE lets the fill ioctls succeed again):
 *  1. after each read() of a batch of events, call vms_ph_remove() for every REMOVE
 *     in it before vms_ph_fault() for any fault in it;
 *  2. keep the faults that returned -EAGAIN and retry them only after a read()
 *     found no event pending; -EAGAIN may persist briefly after that (until the
 *     remover runs again), so poll with a short timeout while some are kept.
 *
 * Differences from crosvm (spec section 9): states change only after the copy or
 * write they describe succeeded, so a failed move or swap-out leaves every page
 * readable; EAGAIN is an expected outcome, not a crash; remove, trim and the run
 * queries cost O(pages staged or swapped), not O(guest pages); metrics are one
 * snapshot; the hugepage batching is aligned on memfd offsets, not addresses.
 *
 * Read with ref/CONTRACT.md (contract 3) and ref/TOUR.md, which follows one page
 * through every operation above, and the races between them.
 */
#ifndef VMMSWAP_PAGE_HANDLER_H
#define VMMSWAP_PAGE_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmmswap/types.h>

/* Largest swap-out / swap-in chunk: 2 MiB of consecutive pages (crosvm's value). */
#define VMS_PH_MAX_CHUNK_BYTES (2ULL << 20)
/* crosvm's trim batch. */
#define VMS_PH_TRIM_BATCH_PAGES 1024

struct vms_ph_region {
	uint64_t addr;	    /* start, as seen by the processes whose uffds fault on it */
	uint64_t len;	    /* bytes, page multiple, > 0 */
	int memfd;	    /* guest memory backing the region; dup'ed. -1: none (no move) */
	uint64_t memfd_off; /* page aligned */
};

struct vms_ph_config {
	const struct vms_ph_region *regions;
	size_t nregions;
	const char *swap_dir;	   /* directory for the O_TMPFILE swap file */
	unsigned int move_threads; /* 0: online CPUs, at most 8 */
	unsigned int fault_around; /* see vms_ph_set_fault_around(); 0: off */
};

/* Largest fault-around run: one swap chunk. */
#define VMS_PH_MAX_FAULT_AROUND_PAGES VMS_MAX_FAULT_AROUND_PAGES
/* Sequential fault streams the fault-around tracks at once (e.g. one per vCPU). */
#define VMS_PH_FAULT_AROUND_STREAMS 8

/*
 * crosvm's metrics (spec 3.9). The four fault counters and swap_in_pages are per
 * region and reset when that region is moved to staging (i.e. per enable).
 */
struct vms_ph_metrics {
	uint64_t resident_pages;	    /* SEEK_DATA over every region's memfd range */
	uint64_t copied_from_file_pages;    /* faults served from the swap file */
	uint64_t copied_from_staging_pages; /* faults served from staging */
	uint64_t zeroed_pages;		    /* faults served by a successful ZEROPAGE */
	uint64_t redundant_pages;	    /* faults on an already filled page (EEXIST + wake) */
	uint64_t staging_pages;		    /* S = 1 */
	uint64_t swap_pages;		    /* F = PRESENT (CLEARED not counted) */
	uint64_t swap_in_pages;		    /* filled by swap-in (not reported by crosvm) */
	uint64_t swap_file_slots;	    /* high-water mark of the swap file, in slots */
	/* Of copied_from_staging_pages, those filled by fault-around, not by their own
	 * fault (per region, reset like the fault counters; not reported by crosvm). */
	uint64_t fault_around_pages;
};

struct vms_page_handler;

/*
 * Validate the regions (-EINVAL: empty, misaligned, overflowing or overlapping
 * regions, each logged) and create the staging memfd and the swap file.
 */
int vms_ph_create(const struct vms_ph_config *cfg, struct vms_page_handler **out);
void vms_ph_destroy(struct vms_page_handler *ph);

/*
 * Serve a page fault at addr (any byte of the page) on uffd. With fault-around on,
 * a staged page may bring staged neighbours along (see vms_ph_set_fault_around()).
 */
int vms_ph_fault(struct vms_page_handler *ph, int uffd, uint64_t addr);

/*
 * Adaptive fault-around for sequential access: a fault on a staged page that
 * continues a sequential stream (it is the page right after the run the previous
 * fault of that stream filled) fills a run of up to twice that run's length (at
 * most max_pages) with one UFFDIO_COPY: the faulting page and the staged pages
 * after it, in the same region, up to the first page that is not staged. A fault
 * that continues no stream fills its page alone and starts a new stream (the
 * oldest of VMS_PH_FAULT_AROUND_STREAMS is replaced). Pages from the swap file and
 * zero pages are always filled one by one. max_pages 0 or 1: off (the default);
 * -EINVAL above VMS_PH_MAX_FAULT_AROUND_PAGES. Safe at any time, from any thread.
 */
int vms_ph_set_fault_around(struct vms_page_handler *ph, unsigned int max_pages);

/* Apply a REMOVE of [start, end): both page aligned, every page in some region. */
int vms_ph_remove(struct vms_page_handler *ph, uint64_t start, uint64_t end);

/*
 * Move the resident pages of the region starting exactly at base_addr (else
 * -EINVAL) to staging. The processes using guest memory must be frozen. Adds the
 * number of pages moved to *moved (may be NULL).
 */
int vms_ph_move_to_staging(struct vms_page_handler *ph, uint64_t base_addr, uint64_t *moved);
/* The same for every region. */
int vms_ph_move_all_to_staging(struct vms_page_handler *ph, uint64_t *moved);

/*
 * Write the lowest run of at most max_pages consecutive staged pages (capped at
 * VMS_PH_MAX_CHUNK_BYTES) to the swap file. *written = pages of the run that
 * became swapped (a page a fault or remove took during the write is dropped from
 * staging, not counted). A run that ends up with none is followed by the next one
 * within the call, so *written is 0 with a 0 return only when nothing is staged.
 * On a write error no page of that run changed state and the error is returned
 * (the chunk can be retried).
 */
int vms_ph_swap_out(struct vms_page_handler *ph, uint64_t max_pages, uint64_t *written);

/* Trim progress; zero-initialise (or vms_ph_trim_init) before the first call. */
struct vms_ph_trim {
	uint64_t cursor;      /* next page index to look at */
	uint64_t zero_pages;  /* dropped: all zero */
	uint64_t clean_pages; /* dropped: identical to their CLEARED slot */
	bool done;
};

static inline void vms_ph_trim_init(struct vms_ph_trim *t)
{
	*t = (struct vms_ph_trim){ 0 };
}

/*
 * Look at up to max_pages staged pages from t->cursor and drop the zero and clean
 * ones. *trimmed (may be NULL) = pages dropped by this call; t->done once the
 * whole index space was walked.
 */
int vms_ph_trim(struct vms_page_handler *ph, struct vms_ph_trim *t, uint64_t max_pages,
		uint64_t *trimmed);

/*
 * Fill up to max_pages pages (capped at VMS_PH_MAX_CHUNK_BYTES) through uffd: staged
 * ones first, then swapped ones (one run of consecutive pages, within a region).
 * *filled = pages filled. A run that fills nothing (its pages were faulted in,
 * removed or found resident meanwhile) is followed by the next one within the
 * call, so 0 with a 0 return means nothing is staged or swapped any more.
 * -EAGAIN: drain uffd's events, call again.
 */
int vms_ph_swap_in(struct vms_page_handler *ph, int uffd, uint64_t max_pages, uint64_t *filled);

/* A consistent snapshot (one hold of the state lock). */
int vms_ph_metrics(struct vms_page_handler *ph, struct vms_ph_metrics *m);

/* Heap bytes of per-page metadata (page state + slot bitmap). */
uint64_t vms_ph_metadata_bytes(const struct vms_page_handler *ph);

/*
 * A dup (O_CLOEXEC) of the swap file's fd, owned by the caller, or a negative errno.
 * The file outlives vms_ph_destroy() through it (the monitor's slow file cleanup).
 * The caller must not write it while ph is in use.
 */
int vms_ph_dup_swap_file(struct vms_page_handler *ph);

#endif /* VMMSWAP_PAGE_HANDLER_H */
