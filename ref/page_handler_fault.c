// SPDX-License-Identifier: MIT
/*
 * page_handler_fault.c - the event-loop side of the page handler: a fault filled from
 * staging (with adaptive fault-around), from the swap file or with zeros, and a
 * REMOVE forgetting a range.
 */
#include <errno.h>
#include <stdlib.h>

#include <vmmswap/log.h>
#include <vmmswap/uffd.h>

#include "page_handler_internal.h"

int vms_ph_set_fault_around(struct vms_page_handler *ph, unsigned int max_pages)
{
	unsigned int i;

	if (max_pages > VMS_PH_MAX_FAULT_AROUND_PAGES)
		return -EINVAL;
	lock_state(ph);
	ph->fa.max = max_pages;
	for (i = 0; i < VMS_PH_FAULT_AROUND_STREAMS; i++)
		ph->fa.streams[i].next = UINT64_MAX;
	unlock_state(ph);
	return 0;
}

/*
 * How many pages a fault on staged page pgoff may fill (1 when fault-around is off
 * or the fault starts a new stream), and the stream it belongs to. Under the lock.
 */
static uint64_t fa_window(struct vms_page_handler *ph, uint64_t pgoff, struct fa_stream **sp)
{
	struct fa_stream *s;
	unsigned int i;

	*sp = NULL;
	if (ph->fa.max <= 1)
		return 1;
	for (i = 0; i < VMS_PH_FAULT_AROUND_STREAMS; i++) {
		s = &ph->fa.streams[i];
		if (s->next == pgoff) {
			s->run = s->run * 2 < ph->fa.max ? s->run * 2 : ph->fa.max;
			*sp = s;
			return s->run;
		}
	}
	s = &ph->fa.streams[ph->fa.oldest];
	ph->fa.oldest = (ph->fa.oldest + 1) % VMS_PH_FAULT_AROUND_STREAMS;
	s->run = 1;
	*sp = s;
	return 1;
}

/*
 * Fill the staged run [pgoff, pgoff + n) of region r from staging with one copy.
 * Returns 0 when the faulting page (the first) was filled, or found filled and its
 * waiters woken (the wake's error otherwise, the page leaving staging all the same,
 * as it is resident); else a negative errno with nothing changed. The pages filled
 * leave staging (*filled of them); a neighbour the copy did not reach stays
 * staged. Under the state lock.
 */
static int fault_staged(struct vms_page_handler *ph, int uffd, struct ph_region *r, uint64_t pgoff,
			uint64_t n, uint64_t *filled)
{
	uint64_t page_size = vms_page_size(), dst = region_addr(r, pgoff), done = 0, k, i;
	int ret;

	ret = vms_uffd_copy(uffd, dst, vms_staging_page(&ph->staging, pgoff), n * page_size, 0,
			    &done);
	k = done / page_size;
	if (!k) {
		if (ret != -EEXIST)
			return ret;
		/* Filled behind our back: the guest's page wins. */
		vms_log(VMS_LOG_WARN, "page handler: staged page %#llx was resident",
			(unsigned long long)dst);
		ret = vms_uffd_wake(uffd, dst, page_size);
		r->redundant++;
		k = 1;
	} else {
		ret = 0;
		/* The faulting page is in: a neighbour's EEXIST or EAGAIN only ends the run. */
		r->copied_from_staging += k;
		r->fault_around += k - 1;
	}
	for (i = 0; i < k; i++) {
		vms_ps_clear_staged(&ph->page_state, pgoff + i);
		vms_phi_defer_free_staging(ph, pgoff + i);
	}
	*filled = k;
	return ret;
}

int vms_ph_fault(struct vms_page_handler *ph, int uffd, uint64_t addr)
{
	uint64_t page_size = vms_page_size(), pgoff, dst, done, buf_seq = 0;
	uint32_t buf_slot = VMS_PS_NO_SLOT;
	struct ph_region *r;
	/* A 4 KiB page is read on the stack: no allocation on the fault path. */
	uint64_t stack_buf[4096 / sizeof(uint64_t)];
	uint8_t *buf = NULL;
	int ret;

	lock_state(ph);
	r = vms_phi_find_region(ph, addr);
	if (!r) {
		unlock_state(ph);
		vms_log(VMS_LOG_ERROR, "page handler: fault at %#llx outside every region",
			(unsigned long long)addr);
		return -EFAULT;
	}
	pgoff = region_pgoff(r, addr);
	dst = region_addr(r, pgoff);
	for (;;) {
		if (vms_ps_staged(&ph->page_state, pgoff)) {
			uint64_t n, end = region_end_pgoff(r), k = 0;
			struct fa_stream *s;

			n = fa_window(ph, pgoff, &s);
			if (n > 1)
				n = vms_bitmap_next_clear(&ph->page_state.staged, pgoff,
							  end - pgoff > n ? pgoff + n : end) -
				    pgoff;
			ret = fault_staged(ph, uffd, r, pgoff, n, &k);
			/* The stream continues after what the copy reached. */
			if (s)
				s->next = ret ? UINT64_MAX : pgoff + k;
			break;
		}
		if (vms_ps_present(&ph->page_state, pgoff)) {
			uint32_t slot = vms_ps_slot(&ph->page_state, pgoff);

			if (buf_slot != slot || buf_seq != ph->seq) {
				/* Read the slot without the lock, then look again. */
				buf_seq = ph->seq;
				buf_slot = slot;
				unlock_state(ph);
				race_point(ph, VMS_PH_AT_FAULT_READ, pgoff, 1);
				if (!buf)
					buf = page_size <= sizeof(stack_buf) ? (uint8_t *)stack_buf
									     : malloc(page_size);
				ret = buf ? vms_swap_file_read(&ph->swap_file, slot, buf, 1)
					  : -ENOMEM;
				race_point(ph, VMS_PH_AT_FAULT_READ_DONE, pgoff, 1);
				lock_state(ph);
				if (ret && buf && buf_seq != ph->seq) {
					/*
					 * The slot was freed meanwhile and the file may have
					 * shrunk below it: a short read is the race, not an
					 * I/O error. Look at the page again.
					 */
					buf_slot = VMS_PS_NO_SLOT;
					ret = 0;
					continue;
				}
				if (ret) {
					vms_log(VMS_LOG_ERROR,
						"page handler: reading slot %u for %#llx: %d", slot,
						(unsigned long long)dst, ret);
					break;
				}
				continue;
			}
			ret = vms_uffd_copy(uffd, dst, buf, page_size, 0, &done);
			if (!ret) {
				r->copied_from_file++;
			} else if (ret == -EEXIST) {
				vms_log(VMS_LOG_WARN,
					"page handler: swapped page %#llx was resident",
					(unsigned long long)dst);
				ret = vms_uffd_wake(uffd, dst, page_size);
				r->redundant++;
			} else {
				break;
			}
			/* Keep the slot (CLEARED): trim may find the page unchanged. */
			vms_ps_set_cleared(&ph->page_state, pgoff);
			break;
		}
		ret = vms_uffd_zeropage(uffd, dst, page_size, 0, &done);
		if (!ret) {
			r->zeroed++;
		} else if (ret == -EEXIST) {
			/* Another fault or swap-in filled it: release the waiters. */
			ret = vms_uffd_wake(uffd, dst, page_size);
			r->redundant++;
		}
		break;
	}
	unlock_state(ph);
	if (buf != (uint8_t *)stack_buf)
		free(buf);
	if (ret && ret != -EAGAIN)
		vms_log(ret == -ESRCH ? VMS_LOG_INFO : VMS_LOG_ERROR,
			"page handler: fault at %#llx: %d", (unsigned long long)addr, ret);
	return ret;
}

int vms_ph_remove(struct vms_page_handler *ph, uint64_t start, uint64_t end)
{
	struct vms_page_state *pst = &ph->page_state;
	uint64_t a;

	if (!vms_is_page_aligned(start) || !vms_is_page_aligned(end) || end < start) {
		vms_log(VMS_LOG_ERROR, "page handler: remove of [%#llx, %#llx) is misaligned",
			(unsigned long long)start, (unsigned long long)end);
		return -EINVAL;
	}
	lock_state(ph);
	/* Check first, so that a bad range changes nothing. */
	for (a = start; a < end;) {
		struct ph_region *r = vms_phi_find_region(ph, a);

		if (!r) {
			unlock_state(ph);
			vms_log(VMS_LOG_ERROR,
				"page handler: remove of [%#llx, %#llx): %#llx is in no region",
				(unsigned long long)start, (unsigned long long)end,
				(unsigned long long)a);
			return -EFAULT;
		}
		a = r->addr + r->len;
	}
	for (a = start; a < end;) {
		struct ph_region *r = vms_phi_find_region(ph, a);
		uint64_t e = end < r->addr + r->len ? end : r->addr + r->len;
		uint64_t p0 = region_pgoff(r, a), p1 = region_pgoff(r, e - 1) + 1, p, q;

		if (ph->moving)
			vms_bitmap_set_range(&ph->removed, p0, p1);
		for (p = vms_bitmap_next_set(&pst->staged, p0, p1); p < p1;
		     p = vms_bitmap_next_set(&pst->staged, q, p1)) {
			q = vms_bitmap_next_clear(&pst->staged, p, p1);
			vms_bitmap_clear_range(&pst->staged, p, q);
			vms_phi_free_staging(ph, p, q - p);
		}
		for (p = vms_bitmap_next_set(&pst->slotted, p0, p1); p < p1;
		     p = vms_bitmap_next_set(&pst->slotted, p + 1, p1))
			vms_phi_drop_slot(ph, p);
		a = e;
	}
	unlock_state(ph);
	return 0;
}
