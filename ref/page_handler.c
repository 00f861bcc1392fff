// SPDX-License-Identifier: MIT
/*
 * page_handler.c - a page handler's life (vmmswap/page_handler.h): creation (the
 * regions, the page state, staging and the swap file), the metrics, the test
 * seams, and the helpers the transition files share (page_handler_internal.h).
 * Conversions between the index spaces are in region_pgoff() and region_addr()
 * only (page_handler_internal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <vmmswap/log.h>
#include <vmmswap/memfd_data.h>

#include "page_handler_internal.h"

/* The region containing addr, or NULL. O(log regions). */
struct ph_region *vms_phi_find_region(const struct vms_page_handler *ph, uint64_t addr)
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
struct ph_region *vms_phi_pgoff_region(const struct vms_page_handler *ph, uint64_t pgoff)
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

/* F := NONE, freeing the slot. Under the state lock. */
void vms_phi_drop_slot(struct vms_page_handler *ph, uint64_t pgoff)
{
	uint32_t slot = vms_ps_set_none(&ph->page_state, pgoff);

	if (slot != VMS_PS_NO_SLOT) {
		vms_swap_file_free(&ph->swap_file, slot);
		ph->seq++;
	}
}

/* Free staging pages nobody may read any more; an error only leaks memory. */
void vms_phi_free_staging(struct vms_page_handler *ph, uint64_t pgoff, uint64_t npages)
{
	int ret = vms_staging_free(&ph->staging, pgoff, npages);

	if (ret)
		vms_log(VMS_LOG_WARN, "page handler: freeing %llu staging pages at %llu: %d",
			(unsigned long long)npages, (unsigned long long)pgoff, ret);
}

/* Punch the pending staging pages, coalescing runs. Under the state lock. */
void vms_phi_flush_pending_free(struct vms_page_handler *ph)
{
	uint64_t *pf = ph->deferred.pgoff, start, len;
	unsigned int i;

	if (!ph->deferred.n)
		return;
	start = pf[0];
	len = 1;
	for (i = 1; i < ph->deferred.n; i++) {
		if (pf[i] == start + len) {
			len++;
			continue;
		}
		vms_phi_free_staging(ph, start, len);
		start = pf[i];
		len = 1;
	}
	vms_phi_free_staging(ph, start, len);
	ph->deferred.n = 0;
}

/* Free one staging page later (see pending_free). Under the state lock. */
void vms_phi_defer_free_staging(struct vms_page_handler *ph, uint64_t pgoff)
{
	if (ph->deferred.n == sizeof(ph->deferred.pgoff) / sizeof(ph->deferred.pgoff[0]))
		vms_phi_flush_pending_free(ph);
	ph->deferred.pgoff[ph->deferred.n++] = pgoff;
}

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
	ph->staging.memfd = -1;
	ph->swap_file.fd = -1;
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
		ph->fa.streams[i].next = UINT64_MAX;
	ph->fa.max = cfg->fault_around > VMS_PH_MAX_FAULT_AROUND_PAGES
			     ? VMS_PH_MAX_FAULT_AROUND_PAGES
			     : cfg->fault_around;
	ph->chunk_pages = vms_bytes_to_pages(VMS_PH_MAX_CHUNK_BYTES);
	if (!ph->chunk_pages)
		ph->chunk_pages = 1;
	ph->job.buf = malloc(vms_pages_to_bytes(ph->chunk_pages));
	ph->job.slots = calloc(ph->chunk_pages, sizeof(*ph->job.slots));
	ph->job.fresh = calloc(ph->chunk_pages, sizeof(*ph->job.fresh));
	ph->job.pgoffs = calloc(ph->chunk_pages, sizeof(*ph->job.pgoffs));
	if (!ph->job.buf || !ph->job.slots || !ph->job.fresh || !ph->job.pgoffs) {
		ret = -ENOMEM;
		goto err_locks;
	}
	ret = vms_page_state_init(&ph->page_state, ph->npages);
	if (ret)
		goto err_locks;
	ret = vms_staging_init(&ph->staging, ph->npages);
	if (ret)
		goto err_locks;
	ret = vms_bitmap_init(&ph->removed, ph->npages);
	if (ret)
		goto err_locks;
	ret = vms_swap_file_open(&ph->swap_file, cfg->swap_dir ? cfg->swap_dir : "/tmp",
				 ph->npages);
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
	vms_swap_file_close(&ph->swap_file);
	vms_staging_destroy(&ph->staging);
	vms_page_state_destroy(&ph->page_state);
	vms_bitmap_destroy(&ph->removed);
	for (i = 0; i < ph->nregions; i++)
		if (ph->regions[i].memfd >= 0)
			close(ph->regions[i].memfd);
	free(ph->job.buf);
	free(ph->job.slots);
	free(ph->job.fresh);
	free(ph->job.pgoffs);
	free(ph->regions);
	free(ph->by_addr);
	pthread_mutex_destroy(&ph->lock);
	pthread_mutex_destroy(&ph->job_lock);
	free(ph);
}

uint64_t vms_ph_metadata_bytes(const struct vms_page_handler *ph)
{
	return vms_page_state_bytes(ph->npages) + vms_bitmap_bytes(ph->swap_file.max_slots) +
	       vms_bitmap_bytes(ph->npages);
}

void vms_ph_set_race_hook(struct vms_page_handler *ph, vms_ph_race_hook hook, void *arg)
{
	/* Atomic: a test may clear the hook while the event loop still serves faults. */
	__atomic_store_n(&ph->test.arg, arg, __ATOMIC_RELAXED);
	__atomic_store_n(&ph->test.hook, hook, __ATOMIC_RELEASE);
}

unsigned int vms_ph_lock_waiters(struct vms_page_handler *ph)
{
	return __atomic_load_n(&ph->test.lock_waiters, __ATOMIC_SEQ_CST);
}

void vms_ph_inject_write_error(struct vms_page_handler *ph, int err)
{
	vms_swap_file_inject_write_error(&ph->swap_file, err);
}

static int count_resident(const struct ph_region *r, uint64_t *pages)
{
	return vms_memfd_count_data_pages(r->memfd, r->memfd_off, r->len, pages);
}

/* The metrics, under the state lock (vms_ph_metrics() and vms_ph_check()). */
int vms_phi_metrics_locked(struct vms_page_handler *ph, struct vms_ph_metrics *m)
{
	int ret = 0;
	size_t i;

	*m = (struct vms_ph_metrics){ 0 };
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
	m->staging_pages = ph->page_state.staged.count;
	m->swap_pages = ph->page_state.present.count;
	m->swap_file_slots = ph->swap_file.hwm;
	return ret;
}

int vms_ph_metrics(struct vms_page_handler *ph, struct vms_ph_metrics *m)
{
	int ret;

	lock_state(ph);
	ret = vms_phi_metrics_locked(ph, m);
	unlock_state(ph);
	if (ret)
		vms_log(VMS_LOG_ERROR, "page handler: counting resident pages: %d", ret);
	return ret;
}

int vms_ph_dup_swap_file(struct vms_page_handler *ph)
{
	/* The fd never changes while ph exists, so no lock is needed to dup it. */
	int fd = fcntl(ph->swap_file.fd, F_DUPFD_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}
