// SPDX-License-Identifier: MIT
/*
 * page_handler_move.c - enable's move of resident guest pages to staging: the data
 * extents cut into THP windows, copied by a small worker pool, each window
 * committed (marked staged and punched from guest memory) under the state lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <vmmswap/log.h>
#include <vmmswap/memfd_data.h>

#include "page_handler_internal.h"

/* A data extent clipped to one THP window, as byte offsets into the region. */
struct move_piece {
	uint64_t off;
	uint64_t len;
};

struct move_window {
	size_t first; /* index into pieces */
	size_t n;
};

struct move_ctx {
	struct vms_page_handler *ph;
	struct ph_region *r;
	const uint8_t *src; /* read-only mapping of the region's memfd range */
	struct move_piece *pieces;
	struct move_window *windows;
	size_t nwindows;
	size_t next;	 /* atomic: next window to take */
	int err;	 /* atomic: first error */
	uint64_t moved;	 /* atomic */
	bool no_copy_fd; /* atomic: copy_file_range from the memfd does not work */
};

/*
 * Mark (staged = true) or unmark the pages of a window, except those a REMOVE hit
 * since the move started. Under the state lock. Returns the pages (un)marked.
 */
static uint64_t mark_window(struct move_ctx *c, const struct move_window *w, bool staged)
{
	struct vms_page_handler *ph = c->ph;
	uint64_t n = 0, p, q;
	size_t i;

	for (i = 0; i < w->n; i++) {
		const struct move_piece *pc = &c->pieces[w->first + i];
		uint64_t p0 = c->r->base + vms_addr_to_pgoff(pc->off);
		uint64_t p1 = p0 + vms_bytes_to_pages(pc->len);

		for (p = vms_bitmap_next_clear(&ph->removed, p0, p1); p < p1;
		     p = vms_bitmap_next_clear(&ph->removed, q, p1)) {
			q = vms_bitmap_next_set(&ph->removed, p, p1);
			n += q - p;
			if (!staged) {
				vms_bitmap_clear_range(&ph->page_state.staged, p, q);
				continue;
			}
			for (uint64_t k = vms_bitmap_next_set(&ph->page_state.present, p, q); k < q;
			     k = vms_bitmap_next_set(&ph->page_state.present, k + 1, q))
				vms_ps_set_cleared(&ph->page_state, k); /* resident data is newer */
			vms_bitmap_set_range(&ph->page_state.staged, p, q);
		}
	}
	return n;
}

/*
 * Commit a window that is in staging: mark its pages staged and punch them out of
 * guest memory in one hold of the state lock, so that nobody ever finds a page
 * staged while it is still resident. (Issue 11: with the lock dropped between the
 * two, a fault served in between got EEXIST, took the page for one the guest had
 * refilled, dropped the staged copy, and the punch then left the page with no copy
 * anywhere: it read as zero.) The punch is a page-cache operation on a memfd, not
 * disk I/O. Pages a REMOVE hit since the move started are punched but not marked:
 * their copy may predate the removal.
 */
static int commit_window(struct move_ctx *c, const struct move_window *w, uint64_t *npages)
{
	struct vms_page_handler *ph = c->ph;
	struct ph_region *r = c->r;
	const struct move_piece *first = &c->pieces[w->first];
	const struct move_piece *last = &c->pieces[w->first + w->n - 1];
	int ret = 0;

	lock_state(ph);
	/* Mark only after the copy (crosvm marks first, spec 9.3). */
	*npages = mark_window(c, w, true);
	if (r->base + vms_addr_to_pgoff(first->off) < ph->staged_hint)
		ph->staged_hint = r->base + vms_addr_to_pgoff(first->off);
	race_point(ph, VMS_PH_AT_MOVE_COMMIT, r->base + vms_addr_to_pgoff(first->off),
		   vms_addr_to_pgoff(last->off + last->len - first->off));
	/*
	 * One punch per window, from the first to the last data byte: holes inside are
	 * harmless and the window never crosses a THP boundary of the memfd, so a shmem
	 * huge page is punched whole or not at all. A punch on the fd is what
	 * MADV_REMOVE does on a mapping; neither produces a uffd event here.
	 */
	if (fallocate(r->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(r->memfd_off + first->off),
		      (off_t)(last->off + last->len - first->off)) < 0) {
		ret = -errno;
		/* Roll back: the guest still has the pages. */
		mark_window(c, w, false);
		*npages = 0;
	}
	unlock_state(ph);
	return ret;
}

/* Copy one window to staging, then commit it (mark staged, punch from the guest). */
static int move_window(struct move_ctx *c, const struct move_window *w)
{
	struct vms_page_handler *ph = c->ph;
	struct ph_region *r = c->r;
	const struct move_piece *first = &c->pieces[w->first];
	const struct move_piece *last = &c->pieces[w->first + w->n - 1];
	uint64_t npages = 0;
	size_t i;
	int ret;

	for (i = 0; i < w->n; i++) {
		const struct move_piece *pc = &c->pieces[w->first + i];
		uint64_t pgoff = r->base + vms_addr_to_pgoff(pc->off);
		uint64_t n = vms_bytes_to_pages(pc->len);

		/* In the kernel, fd to fd; through the source mapping where it cannot. */
		ret = -EOPNOTSUPP;
		if (!__atomic_load_n(&c->no_copy_fd, __ATOMIC_RELAXED))
			ret = vms_staging_copy_fd(&ph->staging, pgoff, r->memfd,
						  r->memfd_off + pc->off, n);
		if (ret == -EOPNOTSUPP) {
			__atomic_store_n(&c->no_copy_fd, true, __ATOMIC_RELAXED);
			ret = vms_staging_write(&ph->staging, pgoff, c->src + pc->off, n);
		}
		if (ret)
			return ret; /* nothing marked: the pages stay resident */
	}
	race_point(ph, VMS_PH_AT_MOVE_COPIED, r->base + vms_addr_to_pgoff(first->off),
		   vms_addr_to_pgoff(last->off + last->len - first->off));
	ret = commit_window(c, w, &npages);
	if (ret)
		return ret;
	__atomic_add_fetch(&c->moved, npages, __ATOMIC_RELAXED);
	return 0;
}

static void *move_worker(void *arg)
{
	struct move_ctx *c = arg;

	for (;;) {
		size_t i = __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED);
		int ret;

		if (i >= c->nwindows || __atomic_load_n(&c->err, __ATOMIC_RELAXED))
			break;
		ret = move_window(c, &c->windows[i]);
		if (ret) {
			int zero = 0;

			__atomic_compare_exchange_n(&c->err, &zero, ret, false, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

/* Find the data extents with SEEK_DATA/SEEK_HOLE and cut them into THP windows. */
static int plan_move(struct move_ctx *c, size_t *npieces_out)
{
	const struct ph_region *r = c->r;
	uint64_t thp = vms_thp_size(), cur = 0;
	size_t np = 0, cap = 0, nw = 0, wcap = 0;
	uint64_t last_win = UINT64_MAX;

	while (cur < r->len) {
		uint64_t start, stop, ds, he;
		int ret = vms_memfd_next_data(r->memfd, r->memfd_off + cur, r->memfd_off + r->len,
					      &start, &stop);

		if (ret < 0)
			return ret;
		if (!ret)
			break; /* no data left in the region */
		ds = vms_page_align_down(start - r->memfd_off);
		he = vms_page_align_down(stop - r->memfd_off + vms_page_size() - 1);
		while (ds < he) {
			/* Windows are aligned on memfd offsets, where shmem puts huge pages. */
			uint64_t abs = r->memfd_off + ds, win = abs / thp;
			uint64_t wend = (win + 1) * thp - r->memfd_off;
			uint64_t e = he < wend ? he : wend;

			if (np == cap) {
				void *p = realloc(c->pieces,
						  (cap = cap ? 2 * cap : 64) * sizeof(*c->pieces));

				if (!p)
					return -ENOMEM;
				c->pieces = p;
			}
			if (win != last_win) {
				if (nw == wcap) {
					void *p =
						realloc(c->windows, (wcap = wcap ? 2 * wcap : 64) *
									    sizeof(*c->windows));

					if (!p)
						return -ENOMEM;
					c->windows = p;
				}
				c->windows[nw++] = (struct move_window){ .first = np, .n = 0 };
				last_win = win;
			}
			c->pieces[np++] = (struct move_piece){ .off = ds, .len = e - ds };
			c->windows[nw - 1].n++;
			ds = e;
		}
		cur = he;
	}
	c->nwindows = nw;
	*npieces_out = np;
	return 0;
}

static int move_region(struct vms_page_handler *ph, struct ph_region *r, uint64_t *moved)
{
	struct move_ctx c = { .ph = ph, .r = r };
	pthread_t threads[8];
	unsigned int nthreads, started = 0, i;
	size_t npieces = 0;
	void *map;
	int ret;

	if (r->memfd < 0) {
		vms_log(VMS_LOG_ERROR, "page handler: region %#llx has no memfd to move",
			(unsigned long long)r->addr);
		return -EINVAL;
	}
	lock_state(ph);
	vms_phi_flush_pending_free(ph); /* before anything writes staging again */
	r->copied_from_file = r->copied_from_staging = r->zeroed = r->redundant = 0;
	r->swap_in = r->fault_around = 0;
	vms_bitmap_clear_range(&ph->removed, r->base, region_end_pgoff(r));
	ph->moving = true;
	unlock_state(ph);

	ret = plan_move(&c, &npieces);
	if (ret || !c.nwindows)
		goto out;
	map = mmap(NULL, r->len, PROT_READ, MAP_SHARED, r->memfd, (off_t)r->memfd_off);
	if (map == MAP_FAILED) {
		ret = -errno;
		goto out;
	}
	c.src = map;
	nthreads = ph->move_threads < 8 ? ph->move_threads : 8;
	if (nthreads > c.nwindows)
		nthreads = (unsigned int)c.nwindows;
	/* The calling thread works too; extra threads only when there is work. */
	for (i = 1; i < nthreads; i++) {
		if (pthread_create(&threads[started], NULL, move_worker, &c))
			break;
		started++;
	}
	move_worker(&c);
	for (i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	munmap(map, r->len);
	ret = c.err;
out:
	lock_state(ph);
	ph->moving = false;
	unlock_state(ph);
	if (ret)
		vms_log(VMS_LOG_ERROR, "page handler: moving region %#llx to staging: %d",
			(unsigned long long)r->addr, ret);
	if (moved)
		*moved += c.moved;
	free(c.pieces);
	free(c.windows);
	return ret;
}

int vms_ph_move_to_staging(struct vms_page_handler *ph, uint64_t base_addr, uint64_t *moved)
{
	struct ph_region *r = vms_phi_find_region(ph, base_addr);
	int ret;

	if (!r || r->addr != base_addr) {
		vms_log(VMS_LOG_ERROR, "page handler: %#llx is not the start of a region",
			(unsigned long long)base_addr);
		return -EINVAL;
	}
	pthread_mutex_lock(&ph->job_lock);
	ret = move_region(ph, r, moved);
	pthread_mutex_unlock(&ph->job_lock);
	return ret;
}

int vms_ph_move_all_to_staging(struct vms_page_handler *ph, uint64_t *moved)
{
	int ret = 0;
	size_t i;

	pthread_mutex_lock(&ph->job_lock);
	for (i = 0; i < ph->nregions && !ret; i++)
		ret = move_region(ph, &ph->regions[i], moved);
	pthread_mutex_unlock(&ph->job_lock);
	return ret;
}
