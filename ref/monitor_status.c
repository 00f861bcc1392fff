// SPDX-License-Identifier: MIT
/*
 * monitor_status.c - the Status and Info answers: crosvm's SwapStatus and the monitor's
 * own counters, filled from the page handler and the job.
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmmswap/clock.h>
#include <vmmswap/memfd_data.h>

#include "monitor_internal.h"

static int count_resident(const struct vms_monitor_config *c, uint64_t *pages)
{
	*pages = 0;
	for (size_t i = 0; i < c->nregions; i++) {
		const struct vms_region *r = &c->regions[i];
		int ret = vms_memfd_count_data_pages(r->memfd, r->memfd_off, r->len, pages);

		if (ret)
			return ret;
	}
	return 0;
}

void vms_mon_fill_status(struct vms_monitor *m, struct vms_swap_status *st)
{
	memset(st, 0, sizeof(*st));
	st->state = m->state;
	if (m->ph) {
		struct vms_ph_metrics pm;

		if (!vms_ph_metrics(m->ph, &pm)) {
			st->metrics.resident_pages = pm.resident_pages;
			st->metrics.copied_from_file_pages = pm.copied_from_file_pages;
			st->metrics.copied_from_staging_pages = pm.copied_from_staging_pages;
			st->metrics.zeroed_pages = pm.zeroed_pages;
			st->metrics.redundant_pages = pm.redundant_pages;
			st->metrics.staging_pages = pm.staging_pages;
			st->metrics.swap_pages = pm.swap_pages;
		}
	} else if (count_resident(m->cfg, &st->metrics.resident_pages)) {
		st->metrics.resident_pages = 0;
	}
	if (m->job.running) {
		st->state_transition.pages = atomic_load(&m->job.pages);
		st->state_transition.time_ms = (uint64_t)(vms_now_ms() - m->job.start_ms);
	} else {
		st->state_transition = m->trans;
	}
}

static void file_sizes(int fd, struct vms_monitor_info *info)
{
	struct stat st;

	if (fd >= 0 && !fstat(fd, &st)) {
		info->swap_file_size = (uint64_t)st.st_size;
		info->swap_file_alloc = (uint64_t)st.st_blocks * 512;
	}
}

void vms_mon_fill_info(struct vms_monitor *m, struct vms_monitor_info *info)
{
	struct vms_truncator_info ti = m->last_cleanup;

	memset(info, 0, sizeof(*info));
	info->fault_around_pages = m->cfg->fault_around_pages;
	info->uffd_reads = m->uffd_reads;
	info->uffd_events = m->uffd_events;
	if (m->ph) {
		struct vms_ph_metrics pm;
		int fd = vms_ph_dup_swap_file(m->ph);

		if (!vms_ph_metrics(m->ph, &pm))
			info->fault_around_filled = pm.fault_around_pages;
		file_sizes(fd, info);
		if (fd >= 0)
			close(fd);
	}
	if (m->trunc) {
		vms_truncator_info(m->trunc, &ti);
		if (!ti.done)
			info->flags |= VMS_INFO_CLEANUP_RUNNING;
		info->swap_file_size = ti.size;
		info->swap_file_alloc = ti.alloc;
	}
	if (ti.err)
		info->flags |= VMS_INFO_CLEANUP_FAILED;
	info->cleanup_steps = ti.ticks;
}
