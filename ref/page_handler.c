// SPDX-License-Identifier: MIT
/*
 * page_handler.c - the page transitions (see vmmswap/page_handler.h).
 *
 * Index spaces: a guest address belongs to a region; its page has a pgoff in the
 * page-state index space (the regions concatenated in the order given at creation).
 * The same pgoff addresses the staging memfd. Swap-file slots are a third space,
 * mapped from pgoffs by the page state. Conversions are in region_pgoff() and
 * region_addr() only.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmmswap/log.h>
#include <vmmswap/memfd_data.h>
#include <vmmswap/page_handler.h>
#include <vmmswap/page_state.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/staging.h>
#include <vmmswap/swap_file.h>
#include <vmmswap/uffd.h>

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

	struct vms_page_state ps;
	struct vms_staging st;	 /* bytes: see staging.h for who may touch which page */
	struct vms_swap_file sf; /* allocation under 'lock', I/O outside */
	/*
	 * Bumped whenever a slot is freed (it may be reused) or is about to be
	 * rewritten (swap-out reusing a CLEARED slot): a slot read without the lock is
	 * valid only if seq did not change meanwhile.
	 */
	uint64_t seq;
	uint64_t staged_hint;	 /* no staged page below this pgoff */
	/*
	 * While a move runs (moving), the pages a REMOVE hit since it started: their
	 * copy in staging may predate the removal, so the move must not mark them.
	 */
	struct vms_bitmap removed;
	bool moving;
	/* Staging pages faulted in but not punched yet: the fault path frees them in
	 * batches. Flushed before any move, the only thing that writes staging. */
	uint64_t pending_free[64];
	unsigned int npending;
	/* Fault-around: the limit (<= 1: off) and the streams, oldest replaced first. */
	unsigned int fa_max;
	struct fa_stream fa[VMS_PH_FAULT_AROUND_STREAMS];
	unsigned int fa_oldest;

	bool no_sendfile; /* under 'job_lock': the staging memfd cannot be spliced */

	/* Test-only (vms_ph_set_race_hook); set before use, then read-only. */
	vms_ph_race_hook hook;
	void *hook_arg;
	unsigned int lock_waiters; /* atomic: see lock_state() */

	/* Job scratch space, under 'job_lock'. */
	uint8_t *job_buf;     /* chunk_pages pages */
	uint32_t *job_slots;  /* chunk_pages entries */
	uint8_t *job_new;     /* chunk_pages flags: slot allocated by this job */
	uint64_t *job_pgoffs; /* chunk_pages entries */
};

static uint64_t region_pgoff(const struct ph_region *r, uint64_t addr)
{
	return r->base + vms_addr_to_pgoff(addr - r->addr);
}

static uint64_t region_addr(const struct ph_region *r, uint64_t pgoff)
{
	return r->addr + vms_pgoff_to_addr(pgoff - r->base);
}

static uint64_t region_end_pgoff(const struct ph_region *r)
{
	return r->base + r->npages;
}

/* The region containing addr, or NULL. O(log regions). */
static struct ph_region *find_region(const struct vms_page_handler *ph, uint64_t addr)
{
	size_t lo = 0, hi = ph->nregions;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct ph_region *r = &ph->regions[ph->by_addr[mid]];

		if (addr < r->addr)
			hi = mid;
		else if (addr - r->addr >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

/* The region holding pgoff (< npages). */
static struct ph_region *pgoff_region(const struct vms_page_handler *ph, uint64_t pgoff)
{
	size_t lo = 0, hi = ph->nregions;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (ph->regions[mid].base <= pgoff)
			lo = mid;
		else
			hi = mid;
	}
	return &ph->regions[lo];
}

static void lock_state(struct vms_page_handler *ph)
{
	if (!pthread_mutex_trylock(&ph->lock))
		return;
	/* Contended: counted so that a race test can see a thread wait here. */
	__atomic_add_fetch(&ph->lock_waiters, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&ph->lock);
	__atomic_sub_fetch(&ph->lock_waiters, 1, __ATOMIC_SEQ_CST);
}

/* Call the test's race hook, if any (see enum vms_ph_race_point). */
static void race_point(struct vms_page_handler *ph, enum vms_ph_race_point at, uint64_t pgoff,
		       uint64_t npages)
{
	if (__builtin_expect(ph->hook != NULL, 0))
		ph->hook(ph->hook_arg, at, pgoff, npages);
}

static void unlock_state(struct vms_page_handler *ph)
{
	pthread_mutex_unlock(&ph->lock);
}

/* F := NONE, freeing the slot. Under the state lock. */
static void drop_slot(struct vms_page_handler *ph, uint64_t pgoff)
{
	uint32_t slot = vms_ps_set_none(&ph->ps, pgoff);

	if (slot != VMS_PS_NO_SLOT) {
		vms_swap_file_free(&ph->sf, slot);
		ph->seq++;
	}
}

/* Free staging pages nobody may read any more; an error only leaks memory. */
static void free_staging(struct vms_page_handler *ph, uint64_t pgoff, uint64_t npages)
{
	int ret = vms_staging_free(&ph->st, pgoff, npages);

	if (ret)
		vms_log(VMS_LOG_WARN, "page handler: freeing %llu staging pages at %llu: %d",
			(unsigned long long)npages, (unsigned long long)pgoff, ret);
}

/* Punch the pending staging pages, coalescing runs. Under the state lock. */
static void flush_pending_free(struct vms_page_handler *ph)
{
	uint64_t *pf = ph->pending_free, start, len;
	unsigned int i;

	if (!ph->npending)
		return;
	start = pf[0];
	len = 1;
	for (i = 1; i < ph->npending; i++) {
		if (pf[i] == start + len) {
			len++;
			continue;
		}
		free_staging(ph, start, len);
		start = pf[i];
		len = 1;
	}
	free_staging(ph, start, len);
	ph->npending = 0;
}

/* Free one staging page later (see pending_free). Under the state lock. */
static void defer_free_staging(struct vms_page_handler *ph, uint64_t pgoff)
{
	if (ph->npending == sizeof(ph->pending_free) / sizeof(ph->pending_free[0]))
		flush_pending_free(ph);
	ph->pending_free[ph->npending++] = pgoff;
}

/* ---- creation ---- */

static int cmp_by_addr(const void *a, const void *b, void *arg)
{
	const struct ph_region *regions = arg;
	uint64_t x = regions[*(const size_t *)a].addr;
	uint64_t y = regions[*(const size_t *)b].addr;

	return x < y ? -1 : x > y;
}

static int check_regions(const struct vms_ph_config *cfg)
{
	size_t i;

	if (!cfg->nregions || !cfg->regions) {
		vms_log(VMS_LOG_ERROR, "page handler: no regions");
		return -EINVAL;
	}
	for (i = 0; i < cfg->nregions; i++) {
		const struct vms_ph_region *r = &cfg->regions[i];

		if (!r->len || r->addr + r->len < r->addr) {
			vms_log(VMS_LOG_ERROR, "page handler: region %zu [%#llx, +%#llx) is %s", i,
				(unsigned long long)r->addr, (unsigned long long)r->len,
				r->len ? "overflowing" : "empty");
			return -EINVAL;
		}
		if (!vms_is_page_aligned(r->addr) || !vms_is_page_aligned(r->len) ||
		    !vms_is_page_aligned(r->memfd_off)) {
			vms_log(VMS_LOG_ERROR,
				"page handler: region %zu [%#llx, +%#llx) at memfd offset %#llx "
				"is not page aligned",
				i, (unsigned long long)r->addr, (unsigned long long)r->len,
				(unsigned long long)r->memfd_off);
			return -EINVAL;
		}
	}
	return 0;
}

int vms_ph_create(const struct vms_ph_config *cfg, struct vms_page_handler **out)
{
	struct vms_page_handler *ph;
	uint64_t base = 0;
	size_t i;
	int ret;

	*out = NULL;
	ret = check_regions(cfg);
	if (ret)
		return ret;
	ph = calloc(1, sizeof(*ph));
	if (!ph)
		return -ENOMEM;
	ph->st.memfd = -1;
	ph->sf.fd = -1;
	ph->nregions = cfg->nregions;
	ph->regions = calloc(cfg->nregions, sizeof(*ph->regions));
	ph->by_addr = calloc(cfg->nregions, sizeof(*ph->by_addr));
	if (!ph->regions || !ph->by_addr) {
		free(ph->regions);
		free(ph->by_addr);
		free(ph);
		return -ENOMEM;
	}
	for (i = 0; i < cfg->nregions; i++) {
		struct ph_region *r = &ph->regions[i];

		r->addr = cfg->regions[i].addr;
		r->len = cfg->regions[i].len;
		r->npages = vms_bytes_to_pages(r->len);
		r->base = base;
		r->memfd = -1;
		r->memfd_off = cfg->regions[i].memfd_off;
		base += r->npages;
		ph->by_addr[i] = i;
	}
	ph->npages = base;
	qsort_r(ph->by_addr, ph->nregions, sizeof(*ph->by_addr), cmp_by_addr, ph->regions);
	for (i = 0; i + 1 < ph->nregions; i++) {
		const struct ph_region *a = &ph->regions[ph->by_addr[i]];
		const struct ph_region *b = &ph->regions[ph->by_addr[i + 1]];

		if (a->addr + a->len > b->addr) {
			vms_log(VMS_LOG_ERROR,
				"page handler: region [%#llx, %#llx) overlaps [%#llx, %#llx)",
				(unsigned long long)a->addr, (unsigned long long)(a->addr + a->len),
				(unsigned long long)b->addr,
				(unsigned long long)(b->addr + b->len));
			ret = -EINVAL;
			goto err;
		}
	}
	if (ph->npages > VMS_MAX_PAGES) {
		vms_log(VMS_LOG_ERROR, "page handler: %llu pages is more than %llu",
			(unsigned long long)ph->npages, (unsigned long long)VMS_MAX_PAGES);
		ret = -E2BIG;
		goto err;
	}
	for (i = 0; i < cfg->nregions; i++) {
		if (cfg->regions[i].memfd < 0)
			continue;
		ph->regions[i].memfd = fcntl(cfg->regions[i].memfd, F_DUPFD_CLOEXEC, 0);
		if (ph->regions[i].memfd < 0) {
			ret = -errno;
			goto err;
		}
	}
	pthread_mutex_init(&ph->lock, NULL);
	pthread_mutex_init(&ph->job_lock, NULL);
	ph->move_threads = cfg->move_threads;
	if (!ph->move_threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		ph->move_threads = n < 1 ? 1 : n > 8 ? 8 : (unsigned int)n;
	}
	for (i = 0; i < VMS_PH_FAULT_AROUND_STREAMS; i++)
		ph->fa[i].next = UINT64_MAX;
	ph->fa_max = cfg->fault_around > VMS_PH_MAX_FAULT_AROUND_PAGES
			     ? VMS_PH_MAX_FAULT_AROUND_PAGES
			     : cfg->fault_around;
	ph->chunk_pages = vms_bytes_to_pages(VMS_PH_MAX_CHUNK_BYTES);
	if (!ph->chunk_pages)
		ph->chunk_pages = 1;
	ph->job_buf = malloc(vms_pages_to_bytes(ph->chunk_pages));
	ph->job_slots = calloc(ph->chunk_pages, sizeof(*ph->job_slots));
	ph->job_new = calloc(ph->chunk_pages, sizeof(*ph->job_new));
	ph->job_pgoffs = calloc(ph->chunk_pages, sizeof(*ph->job_pgoffs));
	if (!ph->job_buf || !ph->job_slots || !ph->job_new || !ph->job_pgoffs) {
		ret = -ENOMEM;
		goto err_locks;
	}
	ret = vms_page_state_init(&ph->ps, ph->npages);
	if (ret)
		goto err_locks;
	ret = vms_staging_init(&ph->st, ph->npages);
	if (ret)
		goto err_locks;
	ret = vms_bitmap_init(&ph->removed, ph->npages);
	if (ret)
		goto err_locks;
	ret = vms_swap_file_open(&ph->sf, cfg->swap_dir ? cfg->swap_dir : "/tmp", ph->npages);
	if (ret)
		goto err_locks;
	*out = ph;
	return 0;
err_locks:
	vms_ph_destroy(ph);
	return ret;
err:
	for (i = 0; i < ph->nregions; i++)
		if (ph->regions[i].memfd >= 0)
			close(ph->regions[i].memfd);
	free(ph->regions);
	free(ph->by_addr);
	free(ph);
	return ret;
}

void vms_ph_destroy(struct vms_page_handler *ph)
{
	size_t i;

	if (!ph)
		return;
	vms_swap_file_close(&ph->sf);
	vms_staging_destroy(&ph->st);
	vms_page_state_destroy(&ph->ps);
	vms_bitmap_destroy(&ph->removed);
	for (i = 0; i < ph->nregions; i++)
		if (ph->regions[i].memfd >= 0)
			close(ph->regions[i].memfd);
	free(ph->job_buf);
	free(ph->job_slots);
	free(ph->job_new);
	free(ph->job_pgoffs);
	free(ph->regions);
	free(ph->by_addr);
	pthread_mutex_destroy(&ph->lock);
	pthread_mutex_destroy(&ph->job_lock);
	free(ph);
}

uint64_t vms_ph_metadata_bytes(const struct vms_page_handler *ph)
{
	return vms_page_state_bytes(ph->npages) + vms_bitmap_bytes(ph->sf.max_slots) +
	       vms_bitmap_bytes(ph->npages);
}

void vms_ph_set_race_hook(struct vms_page_handler *ph, vms_ph_race_hook hook, void *arg)
{
	ph->hook_arg = arg;
	ph->hook = hook;
}

unsigned int vms_ph_lock_waiters(struct vms_page_handler *ph)
{
	return __atomic_load_n(&ph->lock_waiters, __ATOMIC_SEQ_CST);
}

void vms_ph_inject_write_error(struct vms_page_handler *ph, int err)
{
	vms_swap_file_inject_write_error(&ph->sf, err);
}

/* ---- fault ---- */

int vms_ph_set_fault_around(struct vms_page_handler *ph, unsigned int max_pages)
{
	unsigned int i;

	if (max_pages > VMS_PH_MAX_FAULT_AROUND_PAGES)
		return -EINVAL;
	lock_state(ph);
	ph->fa_max = max_pages;
	for (i = 0; i < VMS_PH_FAULT_AROUND_STREAMS; i++)
		ph->fa[i].next = UINT64_MAX;
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
	if (ph->fa_max <= 1)
		return 1;
	for (i = 0; i < VMS_PH_FAULT_AROUND_STREAMS; i++) {
		s = &ph->fa[i];
		if (s->next == pgoff) {
			s->run = s->run * 2 < ph->fa_max ? s->run * 2 : ph->fa_max;
			*sp = s;
			return s->run;
		}
	}
	s = &ph->fa[ph->fa_oldest];
	ph->fa_oldest = (ph->fa_oldest + 1) % VMS_PH_FAULT_AROUND_STREAMS;
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
	uint64_t ps = vms_page_size(), dst = region_addr(r, pgoff), done = 0, k, i;
	int ret;

	ret = vms_uffd_copy(uffd, dst, vms_staging_page(&ph->st, pgoff), n * ps, 0, &done);
	k = done / ps;
	if (!k) {
		if (ret != -EEXIST)
			return ret;
		/* Filled behind our back: the guest's page wins. */
		vms_log(VMS_LOG_WARN, "page handler: staged page %#llx was resident",
			(unsigned long long)dst);
		ret = vms_uffd_wake(uffd, dst, ps);
		r->redundant++;
		k = 1;
	} else {
		ret = 0;
		/* The faulting page is in: a neighbour's EEXIST or EAGAIN only ends the run. */
		r->copied_from_staging += k;
		r->fault_around += k - 1;
	}
	for (i = 0; i < k; i++) {
		vms_ps_clear_staged(&ph->ps, pgoff + i);
		defer_free_staging(ph, pgoff + i);
	}
	*filled = k;
	return ret;
}

int vms_ph_fault(struct vms_page_handler *ph, int uffd, uint64_t addr)
{
	uint64_t ps = vms_page_size(), pgoff, dst, done, buf_seq = 0;
	uint32_t buf_slot = VMS_PS_NO_SLOT;
	struct ph_region *r;
	/* A 4 KiB page is read on the stack: no allocation on the fault path. */
	uint64_t stack_buf[4096 / sizeof(uint64_t)];
	uint8_t *buf = NULL;
	int ret;

	lock_state(ph);
	r = find_region(ph, addr);
	if (!r) {
		unlock_state(ph);
		vms_log(VMS_LOG_ERROR, "page handler: fault at %#llx outside every region",
			(unsigned long long)addr);
		return -EFAULT;
	}
	pgoff = region_pgoff(r, addr);
	dst = region_addr(r, pgoff);
	for (;;) {
		if (vms_ps_staged(&ph->ps, pgoff)) {
			uint64_t n, end = region_end_pgoff(r), k = 0;
			struct fa_stream *s;

			n = fa_window(ph, pgoff, &s);
			if (n > 1)
				n = vms_bitmap_next_clear(&ph->ps.staged, pgoff,
							  end - pgoff > n ? pgoff + n : end) -
				    pgoff;
			ret = fault_staged(ph, uffd, r, pgoff, n, &k);
			/* The stream continues after what the copy reached. */
			if (s)
				s->next = ret ? UINT64_MAX : pgoff + k;
			break;
		}
		if (vms_ps_present(&ph->ps, pgoff)) {
			uint32_t slot = vms_ps_slot(&ph->ps, pgoff);

			if (buf_slot != slot || buf_seq != ph->seq) {
				/* Read the slot without the lock, then look again. */
				buf_seq = ph->seq;
				buf_slot = slot;
				unlock_state(ph);
				race_point(ph, VMS_PH_AT_FAULT_READ, pgoff, 1);
				if (!buf)
					buf = ps <= sizeof(stack_buf) ? (uint8_t *)stack_buf
								      : malloc(ps);
				ret = buf ? vms_swap_file_read(&ph->sf, slot, buf, 1) : -ENOMEM;
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
			ret = vms_uffd_copy(uffd, dst, buf, ps, 0, &done);
			if (!ret) {
				r->copied_from_file++;
			} else if (ret == -EEXIST) {
				vms_log(VMS_LOG_WARN,
					"page handler: swapped page %#llx was resident",
					(unsigned long long)dst);
				ret = vms_uffd_wake(uffd, dst, ps);
				r->redundant++;
			} else {
				break;
			}
			/* Keep the slot (CLEARED): trim may find the page unchanged. */
			vms_ps_set_cleared(&ph->ps, pgoff);
			break;
		}
		ret = vms_uffd_zeropage(uffd, dst, ps, 0, &done);
		if (!ret) {
			r->zeroed++;
		} else if (ret == -EEXIST) {
			/* Another fault or swap-in filled it: release the waiters. */
			ret = vms_uffd_wake(uffd, dst, ps);
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

/* ---- remove ---- */

int vms_ph_remove(struct vms_page_handler *ph, uint64_t start, uint64_t end)
{
	struct vms_page_state *ps = &ph->ps;
	uint64_t a;

	if (!vms_is_page_aligned(start) || !vms_is_page_aligned(end) || end < start) {
		vms_log(VMS_LOG_ERROR, "page handler: remove of [%#llx, %#llx) is misaligned",
			(unsigned long long)start, (unsigned long long)end);
		return -EINVAL;
	}
	lock_state(ph);
	/* Check first, so that a bad range changes nothing. */
	for (a = start; a < end;) {
		struct ph_region *r = find_region(ph, a);

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
		struct ph_region *r = find_region(ph, a);
		uint64_t e = end < r->addr + r->len ? end : r->addr + r->len;
		uint64_t p0 = region_pgoff(r, a), p1 = region_pgoff(r, e - 1) + 1, p, q;

		if (ph->moving)
			vms_bitmap_set_range(&ph->removed, p0, p1);
		for (p = vms_bitmap_next_set(&ps->staged, p0, p1); p < p1;
		     p = vms_bitmap_next_set(&ps->staged, q, p1)) {
			q = vms_bitmap_next_clear(&ps->staged, p, p1);
			vms_bitmap_clear_range(&ps->staged, p, q);
			free_staging(ph, p, q - p);
		}
		for (p = vms_bitmap_next_set(&ps->slotted, p0, p1); p < p1;
		     p = vms_bitmap_next_set(&ps->slotted, p + 1, p1))
			drop_slot(ph, p);
		a = e;
	}
	unlock_state(ph);
	return 0;
}

/* ---- move to staging ---- */

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
				vms_bitmap_clear_range(&ph->ps.staged, p, q);
				continue;
			}
			for (uint64_t k = vms_bitmap_next_set(&ph->ps.present, p, q); k < q;
			     k = vms_bitmap_next_set(&ph->ps.present, k + 1, q))
				vms_ps_set_cleared(&ph->ps, k); /* resident data is newer */
			vms_bitmap_set_range(&ph->ps.staged, p, q);
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
			ret = vms_staging_copy_fd(&ph->st, pgoff, r->memfd, r->memfd_off + pc->off,
						  n);
		if (ret == -EOPNOTSUPP) {
			__atomic_store_n(&c->no_copy_fd, true, __ATOMIC_RELAXED);
			ret = vms_staging_write(&ph->st, pgoff, c->src + pc->off, n);
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
	flush_pending_free(ph); /* before anything writes staging again */
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
	struct ph_region *r = find_region(ph, base_addr);
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

/* ---- swap-out ---- */

/*
 * Write staged pages [pgoff, pgoff + n) to slots [slot, slot + n). In the kernel
 * from the memfd when it can (no page tables for staging, so the punch after it
 * has nothing to unmap), else from the staging mapping.
 */
static int swap_out_write(struct vms_page_handler *ph, uint64_t pgoff, uint32_t slot, uint64_t n)
{
	int ret = -EOPNOTSUPP;

	if (!ph->no_sendfile)
		ret = vms_swap_file_write_fd(&ph->sf, slot, ph->st.memfd, vms_pgoff_to_addr(pgoff),
					     n);
	if (ret != -EOPNOTSUPP)
		return ret;
	ph->no_sendfile = true;
#ifdef MADV_POPULATE_READ
	/* Map the source in one call rather than one fault per 16 pages (5.14+; a
	 * failure only costs those faults). */
	(void)madvise(vms_staging_page(&ph->st, pgoff), vms_pages_to_bytes(n), MADV_POPULATE_READ);
#endif
	return vms_swap_file_write(&ph->sf, slot, vms_staging_page(&ph->st, pgoff), n);
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
	uint32_t *slots = ph->job_slots;
	uint8_t *fresh = ph->job_new;
	uint64_t p, n, i, j, hwm, nw = 0;
	bool reuse = false;
	int ret = 0;

	*planned = 0;
	*written = 0;
	lock_state(ph);
	p = vms_bitmap_next_set(&ph->ps.staged, ph->staged_hint, ph->npages);
	ph->staged_hint = p;
	if (p >= ph->npages) {
		unlock_state(ph);
		return 0;
	}
	/* The file does not care about region boundaries: runs may cross them. */
	n = vms_bitmap_next_clear(&ph->ps.staged, p,
				  p + max_pages < ph->npages ? p + max_pages : ph->npages) -
	    p;
	for (i = 0; i < n; i++) {
		slots[i] = vms_ps_slot(&ph->ps, p + i);
		fresh[i] = slots[i] == VMS_PS_NO_SLOT;
		if (fresh[i])
			ret = vms_swap_file_alloc(&ph->sf, &slots[i]);
		if (ret) {
			while (i--)
				if (fresh[i])
					vms_swap_file_free(&ph->sf, slots[i]);
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
				vms_swap_file_free(&ph->sf, slots[i]);
		unlock_state(ph);
		vms_log(VMS_LOG_ERROR, "page handler: swap-out of %llu pages at %llu: %d",
			(unsigned long long)n, (unsigned long long)p, ret);
		return ret;
	}
	for (i = 0; i < n; i++) {
		if (vms_ps_clear_staged(&ph->ps, p + i)) {
			vms_ps_set_present(&ph->ps, p + i, slots[i]);
			nw++;
		} else if (fresh[i]) {
			vms_swap_file_free(&ph->sf, slots[i]);
		}
		/* else: a reused CLEARED slot, still CLEARED (fault) or freed (remove) */
	}
	hwm = ph->sf.hwm;
	unlock_state(ph);
	/* One punch for the run: pages faulted meanwhile are punched again, harmlessly. */
	free_staging(ph, p, n);
	(void)vms_swap_file_shrink(&ph->sf, hwm);
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

/* ---- trim ---- */

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
	uint64_t ps = vms_page_size(), *cand = ph->job_pgoffs, ncand = 0, seen = 0;
	uint64_t p, i, j, zero = 0, clean = 0, zstart = 0, zlen = 0;
	uint32_t *slots = ph->job_slots;
	int ret = 0;

	if (trimmed)
		*trimmed = 0;
	if (t->done)
		return 0;
	pthread_mutex_lock(&ph->job_lock);
	lock_state(ph);
	p = t->cursor;
	while (seen < max_pages && ncand < ph->chunk_pages) {
		p = vms_bitmap_next_set(&ph->ps.staged, p, ph->npages);
		if (p >= ph->npages)
			break;
		seen++;
		if (page_is_zero(vms_staging_page(&ph->st, p), ps)) {
			/* A zero page needs neither staging nor disk. */
			vms_ps_clear_staged(&ph->ps, p);
			drop_slot(ph, p);
			if (zlen && zstart + zlen == p) {
				zlen++;
			} else {
				if (zlen)
					free_staging(ph, zstart, zlen);
				zstart = p;
				zlen = 1;
			}
			zero++;
		} else if (vms_ps_slot(&ph->ps, p) != VMS_PS_NO_SLOT &&
			   !vms_ps_present(&ph->ps, p)) {
			cand[ncand] = p;
			slots[ncand++] = vms_ps_slot(&ph->ps, p);
		}
		p++;
	}
	t->cursor = p;
	if (p >= ph->npages)
		t->done = true;
	unlock_state(ph);
	if (zlen)
		free_staging(ph, zstart, zlen);

	/* Compare the CLEARED candidates with their slots, without the state lock. */
	for (i = 0; i < ncand && !ret; i = j) {
		for (j = i + 1; j < ncand && slots[j] == slots[j - 1] + 1; j++)
			;
		ret = vms_swap_file_read(&ph->sf, slots[i], ph->job_buf + vms_pages_to_bytes(i),
					 j - i);
	}
	if (ret) {
		vms_log(VMS_LOG_ERROR, "page handler: trim: reading the swap file: %d", ret);
		pthread_mutex_unlock(&ph->job_lock);
		return ret;
	}
	if (ncand)
		race_point(ph, VMS_PH_AT_TRIM_READ, cand[0], cand[ncand - 1] + 1 - cand[0]);
	for (i = 0; i < ncand; i++)
		if (memcmp(ph->job_buf + vms_pages_to_bytes(i), vms_staging_page(&ph->st, cand[i]),
			   ps))
			cand[i] = UINT64_MAX;

	lock_state(ph);
	for (i = 0; i < ncand; i++) {
		p = cand[i];
		/* Still staged with the same CLEARED slot (else a fault/remove intervened). */
		if (p == UINT64_MAX || !vms_ps_staged(&ph->ps, p) ||
		    vms_ps_slot(&ph->ps, p) != slots[i] || vms_ps_present(&ph->ps, p)) {
			cand[i] = UINT64_MAX;
			continue;
		}
		vms_ps_clear_staged(&ph->ps, p);
		vms_ps_set_present(&ph->ps, p, slots[i]);
		clean++;
	}
	unlock_state(ph);
	for (i = 0; i < ncand; i++)
		if (cand[i] != UINT64_MAX)
			free_staging(ph, cand[i], 1);
	pthread_mutex_unlock(&ph->job_lock);
	t->zero_pages += zero;
	t->clean_pages += clean;
	if (trimmed)
		*trimmed = zero + clean;
	return 0;
}

/* ---- swap-in ---- */

/* Fill the run of staged pages at p (under the state lock). */
static int swap_in_staged(struct vms_page_handler *ph, int uffd, uint64_t p, uint64_t max_pages,
			  uint64_t *filled, uint64_t *freed)
{
	struct ph_region *r = pgoff_region(ph, p);
	uint64_t lim = region_end_pgoff(r), n, k, done = 0;
	int ret;

	if (p + max_pages < lim)
		lim = p + max_pages;
	n = vms_bitmap_next_clear(&ph->ps.staged, p, lim) - p;
	ret = vms_uffd_copy(uffd, region_addr(r, p), vms_staging_page(&ph->st, p),
			    vms_pages_to_bytes(n), 0, &done);
	k = vms_bytes_to_pages(done);
	vms_bitmap_clear_range(&ph->ps.staged, p, p + k);
	r->swap_in += k;
	*filled = k;
	*freed = k;
	if (ret == -EEXIST) {
		/* Resident already, though staged: the guest's page wins. */
		vms_log(VMS_LOG_WARN, "page handler: swap-in: staged page %#llx was resident",
			(unsigned long long)region_addr(r, p + k));
		vms_ps_clear_staged(&ph->ps, p + k);
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
			ret = vms_swap_file_populate(&ph->sf, slots[i], j - i);
			if (ret == -EOPNOTSUPP) {
				*mapped = false;
				ret = 0;
				j = 0; /* read everything from the start */
			}
			continue;
		}
		ret = vms_swap_file_read(&ph->sf, slots[i], ph->job_buf + vms_pages_to_bytes(i),
					 j - i);
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
	uint32_t *slots = ph->job_slots;
	struct ph_region *r;
	bool mapped;
	int ret;

	p = vms_bitmap_next_set(&ph->ps.present, 0, ph->npages);
	r = pgoff_region(ph, p);
	q = region_end_pgoff(r);
	if (p + max_pages < q)
		q = p + max_pages;
	n = vms_bitmap_next_clear(&ph->ps.present, p, q) - p;
	for (i = 0; i < n; i++)
		slots[i] = vms_ps_slot(&ph->ps, p + i);
	/* The next run's slots, for readahead while we copy this one. */
	pf = vms_bitmap_next_set(&ph->ps.present, p + n, ph->npages);
	if (pf < ph->npages) {
		uint32_t s0 = vms_ps_slot(&ph->ps, pf);

		q = vms_bitmap_next_clear(&ph->ps.present, pf,
					  pf + max_pages < ph->npages ? pf + max_pages
								      : ph->npages);
		for (npf = 1; pf + npf < q && vms_ps_slot(&ph->ps, pf + npf) == s0 + npf; npf++)
			;
		pf = s0;
	}
	unlock_state(ph);
	if (npf)
		vms_swap_file_prefetch(&ph->sf, (uint32_t)pf, npf);
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

		if (!vms_ps_present(&ph->ps, p + i) || vms_ps_slot(&ph->ps, p + i) != slots[i]) {
			j = i + 1;
			continue;
		}
		for (j = i + 1; j < n && vms_ps_present(&ph->ps, p + j) &&
				vms_ps_slot(&ph->ps, p + j) == slots[j] &&
				(!mapped || slots[j] == slots[j - 1] + 1);
		     j++)
			;
		src = mapped ? vms_swap_file_slot_map(&ph->sf, slots[i])
			     : ph->job_buf + vms_pages_to_bytes(i);
		done = 0;
		ret = vms_uffd_copy(uffd, region_addr(r, p + i), src, vms_pages_to_bytes(j - i), 0,
				    &done);
		k = vms_bytes_to_pages(done);
		for (q = p + i; q < p + i + k; q++)
			vms_ps_set_cleared(&ph->ps, q);
		r->swap_in += k;
		*filled += k;
		if (ret == -EEXIST) {
			vms_log(VMS_LOG_WARN,
				"page handler: swap-in: swapped page %#llx was resident",
				(unsigned long long)region_addr(r, p + i + k));
			vms_ps_set_cleared(&ph->ps, p + i + k);
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
			vms_swap_file_unmap(&ph->sf, slots[i], j - i);
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
		p = vms_bitmap_next_set(&ph->ps.staged, ph->staged_hint, ph->npages);
		ph->staged_hint = p;
		if (p < ph->npages) {
			/* Staging first: memory to memory, fine under the lock. */
			ret = swap_in_staged(ph, uffd, p, max_pages, filled, &freed);
			unlock_state(ph);
			free_staging(ph, p, freed);
			lock_state(ph);
		} else if (ph->ps.present.count) {
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

/* ---- metrics ---- */

static int count_resident(const struct ph_region *r, uint64_t *pages)
{
	return vms_memfd_count_data_pages(r->memfd, r->memfd_off, r->len, pages);
}

int vms_ph_metrics(struct vms_page_handler *ph, struct vms_ph_metrics *m)
{
	int ret = 0;
	size_t i;

	*m = (struct vms_ph_metrics){ 0 };
	lock_state(ph);
	for (i = 0; i < ph->nregions; i++) {
		const struct ph_region *r = &ph->regions[i];

		m->copied_from_file_pages += r->copied_from_file;
		m->copied_from_staging_pages += r->copied_from_staging;
		m->zeroed_pages += r->zeroed;
		m->redundant_pages += r->redundant;
		m->swap_in_pages += r->swap_in;
		m->fault_around_pages += r->fault_around;
		if (r->memfd >= 0 && !ret)
			ret = count_resident(r, &m->resident_pages);
	}
	m->staging_pages = ph->ps.staged.count;
	m->swap_pages = ph->ps.present.count;
	m->swap_file_slots = ph->sf.hwm;
	unlock_state(ph);
	if (ret)
		vms_log(VMS_LOG_ERROR, "page handler: counting resident pages: %d", ret);
	return ret;
}

int vms_ph_dup_swap_file(struct vms_page_handler *ph)
{
	/* The fd never changes while ph exists, so no lock is needed to dup it. */
	int fd = fcntl(ph->sf.fd, F_DUPFD_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}
