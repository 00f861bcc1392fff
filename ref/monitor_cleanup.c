// SPDX-License-Identifier: MIT
/*
 * monitor_cleanup.c - slow file cleanup: the previous swap file shrunk step by step by a file
 * truncator while Ready, ended at once on Enable, a plain Disable, or exit.
 */
#include <errno.h>
#include <unistd.h>

#include <vmmswap/log.h>

#include "monitor_internal.h"

/*
 * Slow file cleanup (Ready only). The truncator gets a dup of the page handler's swap
 * file just before the handler is destroyed, so the file outlives the handler and
 * only the truncator thread writes it from then on.
 */
void vms_mon_start_cleanup(struct vms_monitor *m)
{
	const struct vms_monitor_config *c = m->cfg;
	struct vms_truncator_opts o = { .step_bytes = c->cleanup_step_bytes,
					.interval_ms = c->cleanup_interval_ms,
					.tick_fd = -1 };
	int fd = vms_ph_dup_swap_file(m->ph), ret;

	m->last_cleanup = (struct vms_truncator_info){ 0 };
	if (fd < 0) {
		/* Destroying the handler then releases the space at once. */
		vms_log(VMS_LOG_ERROR, "monitor: slow file cleanup: %d", fd);
		return;
	}
	ret = vms_truncator_start(fd, &o, &m->trunc);
	if (ret) {
		vms_log(VMS_LOG_ERROR, "monitor: starting the file truncator: %d", ret);
		if (ftruncate(fd, 0))
			vms_log(VMS_LOG_ERROR, "monitor: truncating the swap file: %d", -errno);
		close(fd);
	}
}

/*
 * Stop a slow file cleanup and release the rest of the file at once (the file is
 * closed: every enable creates a fresh one). Unlike crosvm, an error of the cleanup
 * is only logged (and shown by Info): the next enable does not depend on that file.
 */
void vms_mon_stop_cleanup(struct vms_monitor *m)
{
	int ret;

	if (!m->trunc)
		return;
	vms_truncator_info(m->trunc, &m->last_cleanup);
	ret = vms_truncator_stop(m->trunc, NULL);
	m->trunc = NULL;
	if (ret) {
		vms_log(VMS_LOG_ERROR, "monitor: slow file cleanup: %d", ret);
		if (!m->last_cleanup.err)
			m->last_cleanup.err = ret;
	}
	m->last_cleanup.size = 0;
	m->last_cleanup.alloc = 0;
	m->last_cleanup.done = true;
}
