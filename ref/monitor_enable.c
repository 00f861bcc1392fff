// SPDX-License-Identifier: MIT
/*
 * monitor_enable.c - enabling (a page handler, every uffd registered) and disabling (every
 * uffd unregistered, the page handler and its files released).
 */
#include <errno.h>
#include <stdlib.h>

#include <vmmswap/log.h>

#include "monitor_internal.h"

int vms_mon_enable_from_ready(struct vms_monitor *m)
{
	const struct vms_monitor_config *c = m->cfg;
	struct vms_ph_region *pr;
	struct vms_ph_config pc;
	int ret;

	vms_mon_stop_cleanup(m);
	pr = calloc(c->nregions, sizeof(*pr));
	if (!pr)
		return -ENOMEM;
	for (size_t i = 0; i < c->nregions; i++)
		pr[i] = (struct vms_ph_region){ .addr = c->regions[i].addr,
						.len = c->regions[i].len,
						.memfd = c->regions[i].memfd,
						.memfd_off = c->regions[i].memfd_off };
	pc = (struct vms_ph_config){ .regions = pr,
				     .nregions = c->nregions,
				     .swap_dir = c->swap_dir,
				     .move_threads = c->move_threads,
				     .fault_around = c->fault_around_pages };
	ret = vms_ph_create(&pc, &m->ph);
	free(pr);
	if (ret) {
		vms_log(VMS_LOG_ERROR, "monitor: creating the page handler: %d", ret);
		return ret;
	}
	for (size_t i = 0; i < m->nu; i++) {
		if (m->u[i].fd < 0)
			continue;
		ret = vms_mon_register_uffd(m, i);
		if (ret == -ESRCH && i > 0) {
			vms_mon_drop_uffd(m, i);
			ret = 0;
		}
		if (ret) {
			vms_log(VMS_LOG_ERROR, "monitor: registering guest memory: %d", ret);
			for (size_t k = 0; k < m->nu; k++)
				if (m->u[k].fd >= 0)
					vms_mon_unregister_uffd(m, k);
			vms_ph_destroy(m->ph);
			m->ph = NULL;
			return ret;
		}
	}
	return 0;
}

/* Swap-in finished: back to Ready (crosvm's disabled loop). */
void vms_mon_finish_disable(struct vms_monitor *m)
{
	for (size_t i = 0; i < m->nu; i++)
		if (m->u[i].fd >= 0)
			vms_mon_unregister_uffd(m, i); /* wakes its blocked threads */
	/*
	 * The swap file is an O_TMPFILE owned by the page handler: destroying the
	 * handler releases its space at once, unless slow_file_cleanup keeps a dup of
	 * it for the truncator.
	 */
	if (m->slow_cleanup)
		vms_mon_start_cleanup(m);
	vms_ph_destroy(m->ph);
	m->ph = NULL;
}
