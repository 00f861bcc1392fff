// SPDX-License-Identifier: MIT
/*
 * page_handler_jobs.c - the chunked background jobs: swap-out (staging to a compacted
 * swap file), trim (drop zero and clean staged pages) and swap-in (everything
 * back through a uffd). Each plans under the state lock, does its I/O without
 * it and commits under it, re-checking every page a fault or a remove changed.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include <vmmswap/log.h>
#include <vmmswap/uffd.h>

#include "page_handler_internal.h"

/*
 * Write staged pages [pgoff, pgoff + n) to slots [slot, slot + n). In the kernel
 * from the memfd when it can (no page tables for staging, so the punch after it
 * has nothing to unmap), else from the staging mapping.
 */
static int swap_out_write(struct vms_page_handler *ph, uint64_t pgoff, uint32_t slot, uint64_t n)
{
	int ret = -EOPNOTSUPP;

	if (!ph->no_sendfile)
		ret = vms_swap_file_write_fd(&ph->swap_file, slot, ph->staging.memfd,
					     vms_pgoff_to_addr(pgoff), n);
	if (ret != -EOPNOTSUPP)
		return ret;
	ph->no_sendfile = true;
#ifdef MADV_POPULATE_READ
	/* Map the source in one call rather than one fault per 16 pages (5.14+; a
	 * failure only costs those faults). */
	(void)madvise(vms_staging_page(&ph->staging, pgoff), vms_pages_to_bytes(n),
		      MADV_POPULATE_READ);
#endif
	return vms_swap_file_write(&ph->swap_file, slot, vms_staging_page(&ph->staging, pgoff), n);
}

/*
 * One swap-out attempt: plan the lowest run of staged pages, write it without the
 * state lock, commit. *planned = pages in the run (0: nothing is staged);
 * *written = pages of it that became swapped (a page faulted in or removed during
 * the write is dropped from the run instead). Under the job lock.
 */
static int swap_out_run(struct vms_page_handler *ph, uint64_t max_pages, uint64_t *planned,
			uint64_t *written)
{
	uint32_t *slots = ph->job.slots;
	uint8_t *fresh = ph->job.fresh;
	uint64_t p, n, i, j, hwm, nw = 0;
	bool reuse = false;
	int ret = 0;

	*planned = 0;
	*written = 0;
	lock_state(ph);
	p = vms_bitmap_next_set(&ph->page_state.staged, ph->staged_hint, ph->npages);
	ph->staged_hint = p;
	if (p >= ph->npages) {
		unlock_state(ph);
		return 0;
	}
	/* The file does not care about region boundaries: runs may cross them. */
	n = vms_bitmap_next_clear(&ph->page_state.staged, p,
				  p + max_pages < ph->npages ? p + max_pages : ph->npages) -
	    p;
	for (i = 0; i < n; i++) {
		slots[i] = vms_ps_slot(&ph->page_state, p + i);
		fresh[i] = slots[i] == VMS_PS_NO_SLOT;
		if (fresh[i])
			ret = vms_swap_file_alloc(&ph->swap_file, &slots[i]);
		if (ret) {
			while (i--)
				if (fresh[i])
					vms_swap_file_free(&ph->swap_file, slots[i]);
			unlock_state(ph);
			return ret;
		}
		/*
		 * A reused CLEARED slot gets new bytes: a fault that read it while the
		 * page was last swapped (and is still running) must read it again, not
		 * serve the old bytes when the page is swapped in the same slot again.
		 */
		if (!fresh[i])
			reuse = true;
	}
	if (reuse)
		ph->seq++;
	unlock_state(ph);

	/*
	 * Write straight from the staging memfd. A page faulted or removed meanwhile
	 * may have its staging page freed (we then write zeros) and is skipped at
	 * commit; nothing can stage a page again while we hold the job lock.
	 */
	for (i = 0; i < n && !ret; i = j) {
		for (j = i + 1; j < n && slots[j] == slots[j - 1] + 1; j++)
			;
		ret = swap_out_write(ph, p + i, slots[i], j - i);
	}
	if (!ret)
		race_point(ph, VMS_PH_AT_SWAP_OUT_WRITTEN, p, n);

	lock_state(ph);
	if (ret) {
		/* Nothing changed: the pages are still staged; give the new slots back. */
		for (i = 0; i < n; i++)
			if (fresh[i])
				vms_swap_file_free(&ph->swap_file, slots[i]);
		unlock_state(ph);
		vms_log(VMS_LOG_ERROR, "page handler: swap-out of %llu pages at %llu: %d",
			(unsigned long long)n, (unsigned long long)p, ret);
		return ret;
	}
	for (i = 0; i < n; i++) {
		if (vms_ps_clear_staged(&ph->page_state, p + i)) {
			vms_ps_set_present(&ph->page_state, p + i, slots[i]);
			nw++;
		} else if (fresh[i]) {
			vms_swap_file_free(&ph->swap_file, slots[i]);
		}
		/* else: a reused CLEARED slot, still CLEARED (fault) or freed (remove) */
	}
	hwm = ph->swap_file.hwm;
	unlock_state(ph);
	/* One punch for the run: pages faulted meanwhile are punched again, harmlessly. */
	vms_phi_free_staging(ph, p, n);
	(void)vms_swap_file_shrink(&ph->swap_file, hwm);
	*planned = n;
	*written = nw;
	return 0;
}

int vms_ph_swap_out(struct vms_page_handler *ph, uint64_t max_pages, uint64_t *written)
{
	uint64_t planned;
	int ret;

	*written = 0;
	if (!max_pages)
		return -EINVAL;
	if (max_pages > ph->chunk_pages)
		max_pages = ph->chunk_pages;
	pthread_mutex_lock(&ph->job_lock);
	/*
	 * A run whose pages were all faulted in or removed during its write swaps
	 * nothing out; plan the next one rather than report 0, which would tell the
	 * caller that nothing is staged. Each attempt takes its run off staging and
	 * nothing stages pages while we hold the job lock, so this ends.
	 */
	do
		ret = swap_out_run(ph, max_pages, &planned, written);
	while (!ret && planned && !*written);
	pthread_mutex_unlock(&ph->job_lock);
	return ret;
}

static bool page_is_zero(const uint8_t *page, uint64_t len)
{
	const uint64_t *w = (const uint64_t *)page;
	uint64_t i, acc = 0;

	for (i = 0; i < len / sizeof(*w); i += 8) {
		acc |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
		       w[i + 7];
		if (acc)
			return false;
	}
	return true;
}

int vms_ph_trim(struct vms_page_handler *ph, struct vms_ph_trim *t, uint64_t max_pages,
		uint64_t *trimmed)
{
	uint64_t page_size = vms_page_size(), *cand = ph->job.pgoffs, ncand = 0, seen = 0;
	uint64_t p, i, j, zero = 0, clean = 0, zstart = 0, zlen = 0;
	uint32_t *slots = ph->job.slots;
	int ret = 0;

	if (trimmed)
		*trimmed = 0;
	if (t->done)
		return 0;
	pthread_mutex_lock(&ph->job_lock);
	lock_state(ph);
	p = t->cursor;
	while (seen < max_pages && ncand < ph->chunk_pages) {
		p = vms_bitmap_next_set(&ph->page_state.staged, p, ph->npages);
		if (p >= ph->npages)
			break;
		seen++;
		if (page_is_zero(vms_staging_page(&ph->staging, p), page_size)) {
			/* A zero page needs neither staging nor disk. */
			vms_ps_clear_staged(&ph->page_state, p);
			vms_phi_drop_slot(ph, p);
			if (zlen && zstart + zlen == p) {
				zlen++;
			} else {
				if (zlen)
					vms_phi_free_staging(ph, zstart, zlen);
				zstart = p;
				zlen = 1;
			}
			zero++;
		} else if (vms_ps_slot(&ph->page_state, p) != VMS_PS_NO_SLOT &&
			   !vms_ps_present(&ph->page_state, p)) {
			cand[ncand] = p;
			slots[ncand++] = vms_ps_slot(&ph->page_state, p);
		}
		p++;
	}
	t->cursor = p;
	if (p >= ph->npages)
		t->done = true;
	unlock_state(ph);
	if (zlen)
		vms_phi_free_staging(ph, zstart, zlen);

	/* Compare the CLEARED candidates with their slots, without the state lock. */
	for (i = 0; i < ncand && !ret; i = j) {
		for (j = i + 1; j < ncand && slots[j] == slots[j - 1] + 1; j++)
			;
		ret = vms_swap_file_read(&ph->swap_file, slots[i],
					 ph->job.buf + vms_pages_to_bytes(i), j - i);
	}
	if (ret) {
		vms_log(VMS_LOG_ERROR, "page handler: trim: reading the swap file: %d", ret);
		pthread_mutex_unlock(&ph->job_lock);
		return ret;
	}
	if (ncand)
		race_point(ph, VMS_PH_AT_TRIM_READ, cand[0], cand[ncand - 1] + 1 - cand[0]);
	for (i = 0; i < ncand; i++)
		if (memcmp(ph->job.buf + vms_pages_to_bytes(i),
			   vms_staging_page(&ph->staging, cand[i]), page_size))
			cand[i] = UINT64_MAX;

	lock_state(ph);
	for (i = 0; i < ncand; i++) {
		p = cand[i];
		/* Still staged with the same CLEARED slot (else a fault/remove intervened). */
		if (p == UINT64_MAX || !vms_ps_staged(&ph->page_state, p) ||
		    vms_ps_slot(&ph->page_state, p) != slots[i] ||
		    vms_ps_present(&ph->page_state, p)) {
			cand[i] = UINT64_MAX;
			continue;
		}
		vms_ps_clear_staged(&ph->page_state, p);
		vms_ps_set_present(&ph->page_state, p, slots[i]);
		clean++;
	}
	unlock_state(ph);
	for (i = 0; i < ncand; i++)
		if (cand[i] != UINT64_MAX)
			vms_phi_free_staging(ph, cand[i], 1);
	pthread_mutex_unlock(&ph->job_lock);
	t->zero_pages += zero;
	t->clean_pages += clean;
	if (trimmed)
		*trimmed = zero + clean;
	return 0;
}

/* Fill the run of staged pages at p (under the state lock). */
static int swap_in_staged(struct vms_page_handler *ph, int uffd, uint64_t p, uint64_t max_pages,
			  uint64_t *filled, uint64_t *freed)
{
	struct ph_region *r = vms_phi_pgoff_region(ph, p);
	uint64_t lim = region_end_pgoff(r), n, k, done = 0;
	int ret;

	if (p + max_pages < lim)
		lim = p + max_pages;
	n = vms_bitmap_next_clear(&ph->page_state.staged, p, lim) - p;
	ret = vms_uffd_copy(uffd, region_addr(r, p), vms_staging_page(&ph->staging, p),
			    vms_pages_to_bytes(n), 0, &done);
	k = vms_bytes_to_pages(done);
	vms_bitmap_clear_range(&ph->page_state.staged, p, p + k);
	r->swap_in += k;
	*filled = k;
	*freed = k;
	if (ret == -EEXIST) {
		/* Resident already, though staged: the guest's page wins. */
		vms_log(VMS_LOG_WARN, "page handler: swap-in: staged page %#llx was resident",
			(unsigned long long)region_addr(r, p + k));
		vms_ps_clear_staged(&ph->page_state, p + k);
		*freed = k + 1;
		ret = 0;
	}
	return ret;
}

/*
 * Bring the slots of a planned run into memory without the state lock: map them
 * (page cache, no copy) when the file mapping works, else pread them into the job
 * buffer. *mapped tells which. The slots' contents cannot change meanwhile: only
 * swap-out writes or truncates the file, and it needs the job lock we hold.
 */
static int swap_in_read(struct vms_page_handler *ph, const uint32_t *slots, uint64_t n,
			bool *mapped)
{
	uint64_t i, j;
	int ret = 0;

	*mapped = true;
	for (i = 0; i < n && !ret; i = j) {
		for (j = i + 1; j < n && slots[j] == slots[j - 1] + 1; j++)
			;
		if (*mapped) {
			ret = vms_swap_file_populate(&ph->swap_file, slots[i], j - i);
			if (ret == -EOPNOTSUPP) {
				*mapped = false;
				ret = 0;
				j = 0; /* read everything from the start */
			}
			continue;
		}
		ret = vms_swap_file_read(&ph->swap_file, slots[i],
					 ph->job.buf + vms_pages_to_bytes(i), j - i);
	}
	return ret;
}

/*
 * Fill the lowest run of swapped pages, in one region (consecutive guest
 * addresses: crosvm b/324344124 lost pages at region boundaries). Called and
 * returns with the state lock held; drops it for the file I/O. Pages faulted in
 * (CLEARED) or removed meanwhile are skipped, so *filled may be 0.
 */
static int swap_in_file(struct vms_page_handler *ph, int uffd, uint64_t max_pages, uint64_t *filled)
{
	uint64_t p, q, n, i, j, k, done, pf, npf = 0;
	uint32_t *slots = ph->job.slots;
	struct ph_region *r;
	bool mapped;
	int ret;

	p = vms_bitmap_next_set(&ph->page_state.present, 0, ph->npages);
	r = vms_phi_pgoff_region(ph, p);
	q = region_end_pgoff(r);
	if (p + max_pages < q)
		q = p + max_pages;
	n = vms_bitmap_next_clear(&ph->page_state.present, p, q) - p;
	for (i = 0; i < n; i++)
		slots[i] = vms_ps_slot(&ph->page_state, p + i);
	/* The next run's slots, for readahead while we copy this one. */
	pf = vms_bitmap_next_set(&ph->page_state.present, p + n, ph->npages);
	if (pf < ph->npages) {
		uint32_t s0 = vms_ps_slot(&ph->page_state, pf);

		q = vms_bitmap_next_clear(&ph->page_state.present, pf,
					  pf + max_pages < ph->npages ? pf + max_pages
								      : ph->npages);
		for (npf = 1; pf + npf < q && vms_ps_slot(&ph->page_state, pf + npf) == s0 + npf;
		     npf++)
			;
		pf = s0;
	}
	unlock_state(ph);
	if (npf)
		vms_swap_file_prefetch(&ph->swap_file, (uint32_t)pf, npf);
	ret = swap_in_read(ph, slots, n, &mapped);
	if (!ret)
		race_point(ph, VMS_PH_AT_SWAP_IN_READ, p, n);
	lock_state(ph);
	if (ret) {
		vms_log(VMS_LOG_ERROR, "page handler: swap-in: reading the swap file: %d", ret);
		return ret;
	}
	/*
	 * Copy the pages still swapped with the same slot, in sub-runs (of consecutive
	 * slots too when copying from the mapping). The mapping was populated just
	 * now, so the copy under the lock finds the page cache resident; only memory
	 * pressure evicting it in between could make it read the disk.
	 */
	for (i = 0; i < n; i = j) {
		const uint8_t *src;

		if (!vms_ps_present(&ph->page_state, p + i) ||
		    vms_ps_slot(&ph->page_state, p + i) != slots[i]) {
			j = i + 1;
			continue;
		}
		for (j = i + 1; j < n && vms_ps_present(&ph->page_state, p + j) &&
				vms_ps_slot(&ph->page_state, p + j) == slots[j] &&
				(!mapped || slots[j] == slots[j - 1] + 1);
		     j++)
			;
		src = mapped ? vms_swap_file_slot_map(&ph->swap_file, slots[i])
			     : ph->job.buf + vms_pages_to_bytes(i);
		done = 0;
		ret = vms_uffd_copy(uffd, region_addr(r, p + i), src, vms_pages_to_bytes(j - i), 0,
				    &done);
		k = vms_bytes_to_pages(done);
		for (q = p + i; q < p + i + k; q++)
			vms_ps_set_cleared(&ph->page_state, q);
		r->swap_in += k;
		*filled += k;
		if (ret == -EEXIST) {
			vms_log(VMS_LOG_WARN,
				"page handler: swap-in: swapped page %#llx was resident",
				(unsigned long long)region_addr(r, p + i + k));
			vms_ps_set_cleared(&ph->page_state, p + i + k);
			j = i + k + 1;
			ret = 0;
			continue;
		}
		if (ret)
			break;
	}
	if (mapped) {
		/* The pages are in the guest now; keep the page cache, not our PTEs. */
		for (i = 0; i < n; i = j) {
			for (j = i + 1; j < n && slots[j] == slots[j - 1] + 1; j++)
				;
			vms_swap_file_unmap(&ph->swap_file, slots[i], j - i);
		}
	}
	return ret;
}

int vms_ph_swap_in(struct vms_page_handler *ph, int uffd, uint64_t max_pages, uint64_t *filled)
{
	uint64_t p, freed;
	int ret = 0;

	*filled = 0;
	if (!max_pages)
		return -EINVAL;
	if (max_pages > ph->chunk_pages)
		max_pages = ph->chunk_pages;
	pthread_mutex_lock(&ph->job_lock);
	lock_state(ph);
	/*
	 * A run may fill nothing: every page of it was faulted in or removed while
	 * we read the file, or was found resident. Plan the next one then, so that
	 * 0 filled really means nothing is staged or swapped. Each attempt takes its
	 * run's pages out of the staged/swapped sets, and only jobs (excluded by the
	 * job lock) add to them, so this ends.
	 */
	while (!ret && !*filled) {
		p = vms_bitmap_next_set(&ph->page_state.staged, ph->staged_hint, ph->npages);
		ph->staged_hint = p;
		if (p < ph->npages) {
			/* Staging first: memory to memory, fine under the lock. */
			ret = swap_in_staged(ph, uffd, p, max_pages, filled, &freed);
			unlock_state(ph);
			vms_phi_free_staging(ph, p, freed);
			lock_state(ph);
		} else if (ph->page_state.present.count) {
			ret = swap_in_file(ph, uffd, max_pages, filled);
		} else {
			break;
		}
	}
	unlock_state(ph);
	pthread_mutex_unlock(&ph->job_lock);
	if (ret && ret != -EAGAIN)
		vms_log(VMS_LOG_ERROR, "page handler: swap-in: %d", ret);
	return ret;
}
