// SPDX-License-Identifier: MIT
/*
 * page_handler_check.c - vms_ph_check() (test-only, see vmmswap/test_hooks.h): the
 * page handler's invariants, verified from its state between two jobs, so that a
 * test finds a wrong state when it is made, not when some later access reads
 * wrong bytes (or never, when nobody reads that page again).
 *
 * The invariants, with the state lock held and no job running:
 *  1. Encoding. A page's F word and the bitmaps agree: present <=> bit 31, slotted
 *     <=> F != 0, and a PRESENT word carries a slot. Each bitmap's count is its
 *     population, its summary marks exactly its non-zero words, no bit is set
 *     past its end.
 *  2. Slots. The slot a PRESENT or CLEARED page holds is below max_slots, in use
 *     in the swap file and held by no other page; every slot in use is held by
 *     some page (else it leaked); hwm is 1 + the highest slot in use (0 if none:
 *     swap_file.h's compaction contract, and the swap_file_slots metric); no
 *     slot below free_hint is free; the file is at least hwm slots long (a fault
 *     may read any slot in use).
 *  3. Guest memory. A staged page is not resident in its region's memfd
 *     (page_handler.h), and neither is a PRESENT one: every fill of such a page
 *     changes its state in the same hold of the lock. Staged and PRESENT never
 *     both hold (two authoritative copies: the move makes PRESENT CLEARED). Both
 *     hold only as long as every writer of guest memory faults through a
 *     registered uffd; a test that writes through an unregistered view breaks
 *     them on purpose and must let the handler resolve that before checking.
 *  4. Staging. A staged page's staging page is data, never a hole: the move wrote
 *     it, and every path that frees it clears S first (a staged page whose bytes
 *     are all zero is data too: the move writes zeros like any bytes). A page
 *     pending a deferred free is not staged, or the flush would destroy its copy.
 *     NOT an invariant: the staging page of a page that is not staged may still
 *     hold data (a deferred free not flushed yet, a punch inside a shmem huge
 *     page, which zero-fills instead of freeing, a rolled-back move window, a
 *     failed punch, which only leaks); so nothing is checked there.
 *  5. Cursors. No staged page below staged_hint; no move is running; the
 *     fault-around streams are within their table.
 *  6. Metrics. The snapshot vms_ph_metrics() returns agrees with the state
 *     recounted here: staging_pages, swap_pages and swap_file_slots exactly;
 *     resident_pages no more than the pages that are not staged (its exact
 *     value can change under the lock: a device writing through its own mapping,
 *     the kernel punching a removed page); fault_around_pages within
 *     copied_from_staging_pages, per region.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmmswap/memfd_data.h>

#include "page_handler_internal.h"

struct check {
	struct vms_page_handler *ph;
	char *why;
	size_t len;
	struct vms_bitmap held; /* slots found held by a page so far */
	uint64_t staged;	/* pages recounted */
	uint64_t present;
	uint64_t top; /* 1 + the highest slot in use, 0 if none */
};

static int __attribute__((format(printf, 3, 4)))
fail(struct check *c, int err, const char *fmt, ...)
{
	va_list ap;

	if (c->len) {
		va_start(ap, fmt);
		vsnprintf(c->why, c->len, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* "pgoff P (region R page N)", for messages. */
static const char *page_name(const struct vms_page_handler *ph, uint64_t pgoff, char *buf,
			     size_t len)
{
	const struct ph_region *r = vms_phi_pgoff_region(ph, pgoff);

	snprintf(buf, len, "pgoff %llu (region %zu page %llu)", (unsigned long long)pgoff,
		 (size_t)(r - ph->regions), (unsigned long long)(pgoff - r->base));
	return buf;
}

static int check_bitmap(struct check *c, const struct vms_bitmap *bm, const char *name)
{
	uint64_t nw = (bm->nbits + 63) / 64, nsw = (nw + 63) / 64, w, count = 0;

	for (w = 0; w < nw; w++) {
		bool marked = (bm->summary[w / 64] >> (w % 64)) & 1;

		count += (uint64_t)__builtin_popcountll(bm->words[w]);
		if (marked != (bm->words[w] != 0))
			return fail(c, -EPROTO, "%s bitmap: summary bit %llu is %d, word is %#llx",
				    name, (unsigned long long)w, marked,
				    (unsigned long long)bm->words[w]);
	}
	if (bm->nbits % 64 && bm->words[nw - 1] >> (bm->nbits % 64))
		return fail(c, -EPROTO, "%s bitmap: bits set past its %llu bits", name,
			    (unsigned long long)bm->nbits);
	if (nw % 64 && nsw && bm->summary[nsw - 1] >> (nw % 64))
		return fail(c, -EPROTO, "%s bitmap: summary bits set past its %llu words", name,
			    (unsigned long long)nw);
	if (count != bm->count)
		return fail(c, -EPROTO, "%s bitmap: count %llu, but %llu bits are set", name,
			    (unsigned long long)bm->count, (unsigned long long)count);
	return 0;
}

static int check_bitmaps(struct check *c)
{
	struct vms_page_handler *ph = c->ph;
	const struct vms_page_state *ps = &ph->page_state;
	int ret;

	if (ps->npages != ph->npages || ps->staged.nbits != ph->npages ||
	    ps->present.nbits != ph->npages || ps->slotted.nbits != ph->npages ||
	    ph->removed.nbits != ph->npages)
		return fail(c, -EPROTO, "page state sized for %llu pages, handler has %llu",
			    (unsigned long long)ps->npages, (unsigned long long)ph->npages);
	ret = check_bitmap(c, &ps->staged, "staged");
	if (!ret)
		ret = check_bitmap(c, &ps->present, "present");
	if (!ret)
		ret = check_bitmap(c, &ps->slotted, "slotted");
	if (!ret)
		ret = check_bitmap(c, &ph->removed, "removed");
	if (!ret)
		ret = check_bitmap(c, &ph->swap_file.used, "swap-file slot");
	return ret;
}

/* The page before pgoff that holds slot, for the message about a shared slot. */
static uint64_t other_holder(const struct vms_page_handler *ph, uint64_t pgoff, uint32_t slot)
{
	uint64_t q;

	for (q = 0; q < pgoff; q++)
		if (vms_ps_slot(&ph->page_state, q) == slot)
			return q;
	return pgoff;
}

/* Invariants 1 and 2 per page, and 3's "not both staged and PRESENT". */
static int check_pages(struct check *c)
{
	struct vms_page_handler *ph = c->ph;
	const struct vms_page_state *ps = &ph->page_state;
	const struct vms_swap_file *sf = &ph->swap_file;
	char a[96], b[96];
	uint64_t p;

	for (p = 0; p < ph->npages; p++) {
		uint32_t f = ps->file[p], field = f & ~(1U << 31), slot = field - 1;
		bool present = f >> 31, staged = vms_bitmap_test(&ps->staged, p);

		if (present != vms_bitmap_test(&ps->present, p) ||
		    (f != 0) != vms_bitmap_test(&ps->slotted, p))
			return fail(
				c, -EPROTO, "%s: F word %#x, but present bit %d and slotted bit %d",
				page_name(ph, p, a, sizeof(a)), f, vms_bitmap_test(&ps->present, p),
				vms_bitmap_test(&ps->slotted, p));
		if (present && !field)
			return fail(c, -EPROTO, "%s: PRESENT without a slot",
				    page_name(ph, p, a, sizeof(a)));
		if (staged && present)
			return fail(c, -EPROTO,
				    "%s: staged and PRESENT(slot %u): two authoritative copies",
				    page_name(ph, p, a, sizeof(a)), slot);
		c->staged += staged;
		c->present += present;
		if (!field)
			continue;
		if (slot >= sf->max_slots)
			return fail(c, -EPROTO, "%s: slot %u is past the %llu slots",
				    page_name(ph, p, a, sizeof(a)), slot,
				    (unsigned long long)sf->max_slots);
		if (!vms_bitmap_test(&sf->used, slot))
			return fail(c, -EPROTO,
				    "%s: %s(slot %u), but slot %u is free in the swap file",
				    page_name(ph, p, a, sizeof(a)), present ? "PRESENT" : "CLEARED",
				    slot, slot);
		if (slot >= sf->hwm)
			return fail(
				c, -EPROTO, "%s: slot %u is at or above the high-water mark %llu",
				page_name(ph, p, a, sizeof(a)), slot, (unsigned long long)sf->hwm);
		if (vms_bitmap_set(&c->held, slot))
			return fail(c, -EPROTO, "slot %u is held by %s and by %s", slot,
				    page_name(ph, other_holder(ph, p, slot), a, sizeof(a)),
				    page_name(ph, p, b, sizeof(b)));
	}
	return 0;
}

/* Invariant 2 per slot, and the file. */
static int check_slots(struct check *c)
{
	const struct vms_swap_file *sf = &c->ph->swap_file;
	uint64_t s, hint = sf->free_hint < sf->max_slots ? sf->free_hint : sf->max_slots;
	struct stat st;

	for (s = vms_bitmap_next_set(&sf->used, 0, sf->max_slots); s < sf->max_slots;
	     s = vms_bitmap_next_set(&sf->used, s + 1, sf->max_slots)) {
		if (!vms_bitmap_test(&c->held, s))
			return fail(c, -EPROTO, "slot %llu is in use, but no page holds it",
				    (unsigned long long)s);
		c->top = s + 1;
	}
	if (sf->hwm != c->top)
		return fail(c, -EPROTO, "high-water mark %llu, but the highest slot in use is %lld",
			    (unsigned long long)sf->hwm, (long long)c->top - 1);
	s = vms_bitmap_next_clear(&sf->used, 0, hint);
	if (s < hint)
		return fail(c, -EPROTO, "slot %llu is free, below the free hint %llu",
			    (unsigned long long)s, (unsigned long long)sf->free_hint);
	if (fstat(sf->fd, &st) < 0)
		return fail(c, -errno, "fstat of the swap file: %d", -errno);
	if ((uint64_t)st.st_size < vms_pages_to_bytes(sf->hwm))
		return fail(c, -EPROTO,
			    "the swap file is %lld bytes, short of its %llu slots in use",
			    (long long)st.st_size, (unsigned long long)sf->hwm);
	return 0;
}

/* Invariant 3 (residency) for one region: no data extent holds a staged or PRESENT page. */
static int check_region_resident(struct check *c, const struct ph_region *r)
{
	const struct vms_page_state *ps = &c->ph->page_state;
	uint64_t cur = r->memfd_off, end = r->memfd_off + r->len, start, stop, a, b, p;
	char name[96];
	int ret;

	while ((ret = vms_memfd_next_data(r->memfd, cur, end, &start, &stop)) > 0) {
		a = r->base + vms_addr_to_pgoff(start - r->memfd_off);
		b = r->base + vms_bytes_to_pages_up(stop - r->memfd_off);
		p = vms_bitmap_next_set(&ps->staged, a, b);
		if (p < b)
			return fail(c, -EPROTO, "%s: staged, but resident in the guest memfd",
				    page_name(c->ph, p, name, sizeof(name)));
		p = vms_bitmap_next_set(&ps->present, a, b);
		if (p < b)
			return fail(c, -EPROTO,
				    "%s: PRESENT(slot %u), but resident in the guest memfd",
				    page_name(c->ph, p, name, sizeof(name)), vms_ps_slot(ps, p));
		cur = stop;
	}
	if (ret < 0)
		return fail(c, ret, "SEEK_DATA over region %zu's memfd: %d",
			    (size_t)(r - c->ph->regions), ret);
	return 0;
}

/* Invariants 3 (residency), 4 and 5. */
static int check_memory(struct check *c)
{
	struct vms_page_handler *ph = c->ph;
	const struct vms_bitmap *staged = &ph->page_state.staged;
	uint64_t hint = ph->staged_hint < ph->npages ? ph->staged_hint : ph->npages, p, q;
	char name[96];
	unsigned int i;
	size_t k;
	int ret;

	if (ph->moving)
		return fail(c, -EPROTO, "a move is marked running between jobs");
	p = vms_bitmap_next_set(staged, 0, hint);
	if (p < hint)
		return fail(c, -EPROTO, "%s: staged, below the staged hint %llu",
			    page_name(ph, p, name, sizeof(name)),
			    (unsigned long long)ph->staged_hint);
	if (ph->deferred.n > sizeof(ph->deferred.pgoff) / sizeof(ph->deferred.pgoff[0]))
		return fail(c, -EPROTO, "%u deferred frees pending, more than fit", ph->deferred.n);
	for (i = 0; i < ph->deferred.n; i++) {
		p = ph->deferred.pgoff[i];
		if (p >= ph->npages)
			return fail(c, -EPROTO, "deferred free of pgoff %llu, past the %llu pages",
				    (unsigned long long)p, (unsigned long long)ph->npages);
		if (vms_bitmap_test(staged, p))
			return fail(c, -EPROTO, "%s: staged, with its staging page pending a free",
				    page_name(ph, p, name, sizeof(name)));
	}
	if (ph->fa.max > VMS_PH_MAX_FAULT_AROUND_PAGES ||
	    ph->fa.oldest >= VMS_PH_FAULT_AROUND_STREAMS)
		return fail(c, -EPROTO, "fault-around: limit %u, oldest stream %u", ph->fa.max,
			    ph->fa.oldest);
	for (k = 0; k < ph->nregions; k++) {
		if (ph->regions[k].memfd < 0)
			continue;
		ret = check_region_resident(c, &ph->regions[k]);
		if (ret)
			return ret;
	}
	/* Each staged run must be data in staging from its first to its last byte. */
	for (p = vms_bitmap_next_set(staged, 0, ph->npages); p < ph->npages;
	     p = vms_bitmap_next_set(staged, q, ph->npages)) {
		off_t hole;

		q = vms_bitmap_next_clear(staged, p, ph->npages);
		hole = lseek(ph->staging.memfd, (off_t)vms_pgoff_to_addr(p), SEEK_HOLE);
		if (hole < 0)
			return fail(c, -errno, "SEEK_HOLE in staging: %d", -errno);
		if ((uint64_t)hole < vms_pgoff_to_addr(q))
			return fail(c, -EPROTO, "%s: staged, but its staging page is a hole",
				    page_name(ph, vms_addr_to_pgoff((uint64_t)hole), name,
					      sizeof(name)));
	}
	return 0;
}

/* Invariant 6. */
static int check_metrics(struct check *c)
{
	struct vms_page_handler *ph = c->ph;
	struct vms_ph_metrics m;
	size_t k;
	int ret = vms_phi_metrics_locked(ph, &m);

	if (ret)
		return fail(c, ret, "metrics: counting resident pages: %d", ret);
	if (m.staging_pages != c->staged)
		return fail(c, -EPROTO, "metrics: staging_pages %llu, but %llu pages are staged",
			    (unsigned long long)m.staging_pages, (unsigned long long)c->staged);
	if (m.swap_pages != c->present)
		return fail(c, -EPROTO, "metrics: swap_pages %llu, but %llu pages are PRESENT",
			    (unsigned long long)m.swap_pages, (unsigned long long)c->present);
	if (m.swap_file_slots != c->top)
		return fail(
			c, -EPROTO,
			"metrics: swap_file_slots %llu, but 1 + the highest slot in use is %llu",
			(unsigned long long)m.swap_file_slots, (unsigned long long)c->top);
	if (m.resident_pages > ph->npages - c->staged)
		return fail(c, -EPROTO,
			    "metrics: resident_pages %llu, but only %llu pages are not staged",
			    (unsigned long long)m.resident_pages,
			    (unsigned long long)(ph->npages - c->staged));
	for (k = 0; k < ph->nregions; k++)
		if (ph->regions[k].fault_around > ph->regions[k].copied_from_staging)
			return fail(c, -EPROTO,
				    "region %zu: %llu pages filled by fault-around, but only %llu "
				    "from staging",
				    k, (unsigned long long)ph->regions[k].fault_around,
				    (unsigned long long)ph->regions[k].copied_from_staging);
	return 0;
}

int vms_ph_check(struct vms_page_handler *ph, char *why, size_t len)
{
	struct check c = { .ph = ph, .why = why, .len = len };
	int ret;

	if (len)
		why[0] = '\0';
	/* max_slots is fixed at creation: the bitmap can be made before locking. */
	ret = vms_bitmap_init(&c.held, ph->swap_file.max_slots);
	if (ret)
		return fail(&c, ret, "no memory to check %llu slots",
			    (unsigned long long)ph->swap_file.max_slots);
	/* The job lock too: a job between its plan and its commit owns slots no page holds. */
	pthread_mutex_lock(&ph->job_lock);
	lock_state(ph);
	ret = check_bitmaps(&c);
	if (!ret)
		ret = check_pages(&c);
	if (!ret)
		ret = check_slots(&c);
	if (!ret)
		ret = check_memory(&c);
	if (!ret)
		ret = check_metrics(&c);
	unlock_state(ph);
	pthread_mutex_unlock(&ph->job_lock);
	vms_bitmap_destroy(&c.held);
	return ret;
}
