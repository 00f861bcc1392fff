// SPDX-License-Identifier: MIT
/*
 * monitor_uffd_list.c - the uffds the monitor serves: one entry per process (the VMM and each
 * device process), registration over every guest region, and serving each
 * one's events by the event-loop rule (fault_server.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <vmmswap/log.h>
#include <vmmswap/state_machine.h>
#include <vmmswap/uffd.h>

#include "monitor_internal.h"

int vms_mon_ep_add(struct vms_monitor *m, int fd, uint64_t token)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = token };

	return epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

int vms_mon_add_uffd(struct vms_monitor *m, int fd, int pidfd, size_t *idx_out)
{
	size_t i;
	int ret;

	for (i = 0; i < m->nu && m->u[i].fd >= 0; i++)
		;
	if (i == m->nu) {
		struct uffd_ent *nu = realloc(m->u, (m->nu + 1) * sizeof(*nu));

		if (!nu)
			return -ENOMEM;
		m->u = nu;
		m->nu++;
	}
	m->u[i] = (struct uffd_ent){ .fd = fd, .pidfd = pidfd };
	vms_fs_init(&m->u[i].fs, m->ph, fd, NULL);
	ret = vms_mon_ep_add(m, fd, TOKEN(TOK_UFFD, i));
	if (!ret && pidfd >= 0) {
		ret = vms_mon_ep_add(m, pidfd, TOKEN(TOK_PIDFD, i));
		if (ret)
			epoll_ctl(m->epfd, EPOLL_CTL_DEL, fd, NULL);
	}
	if (ret) {
		m->u[i].fd = -1;
		m->u[i].pidfd = -1;
		return ret;
	}
	if (idx_out)
		*idx_out = i;
	return 0;
}

void vms_mon_drop_uffd(struct vms_monitor *m, size_t i)
{
	struct uffd_ent *e = &m->u[i];

	if (e->fd < 0)
		return;
	vms_log(VMS_LOG_INFO, "monitor: dropping the uffd of a process that exited");
	epoll_ctl(m->epfd, EPOLL_CTL_DEL, e->fd, NULL);
	close(e->fd);
	if (e->pidfd >= 0) {
		epoll_ctl(m->epfd, EPOLL_CTL_DEL, e->pidfd, NULL);
		close(e->pidfd);
	}
	vms_fs_destroy(&e->fs);
	*e = (struct uffd_ent){ .fd = -1, .pidfd = -1 };
}

bool vms_mon_pidfd_dead(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return pidfd >= 0 && poll(&p, 1, 0) == 1;
}

/*
 * Register every region on entry i. -ESRCH: its process is gone (ENOMEM from the
 * kernel, and the pidfd confirms it when there is one); other errors: nothing stays
 * registered.
 */
int vms_mon_register_uffd(struct vms_monitor *m, size_t i)
{
	const struct vms_monitor_config *c = m->cfg;
	struct uffd_ent *e = &m->u[i];
	size_t r;
	int ret = 0;

	for (r = 0; r < c->nregions; r++) {
		ret = vms_uffd_register(e->fd, c->regions[r].addr, c->regions[r].len,
					UFFDIO_REGISTER_MODE_MISSING, VMS_UFFD_MISSING_IOCTLS,
					NULL);
		if (ret)
			break;
	}
	if (!ret) {
		e->registered = true;
		return 0;
	}
	while (r--)
		vms_uffd_unregister(e->fd, c->regions[r].addr, c->regions[r].len);
	if (ret == -ENOMEM && e->pidfd >= 0) {
		/*
		 * ENOMEM also means "the mm is gone" (crosvm b/267124393): believe it only
		 * when the pidfd confirms the exit (it lags the mm teardown a little).
		 */
		struct pollfd p = { .fd = e->pidfd, .events = POLLIN };

		if (poll(&p, 1, 200) == 1)
			return -ESRCH;
	}
	(void)i;
	return ret;
}

void vms_mon_unregister_uffd(struct vms_monitor *m, size_t i)
{
	const struct vms_monitor_config *c = m->cfg;
	struct uffd_ent *e = &m->u[i];

	if (!e->registered)
		return;
	for (size_t r = 0; r < c->nregions; r++) {
		int ret = vms_uffd_unregister(e->fd, c->regions[r].addr, c->regions[r].len);

		if (ret == -ENOMEM)
			break; /* the process is gone */
		if (ret)
			vms_log(VMS_LOG_ERROR, "monitor: unregister: %d", ret);
	}
	e->registered = false;
}

void vms_mon_process_forked(struct vms_monitor *m, int *fds)
{
	struct queued c = { .reply_fd = fds[0],
			    .state = m->state,
			    .msg.cmd = VMS_CMD_PROCESS_FORKED };
	size_t idx;
	int ret;

	if (vms_mon_pidfd_dead(fds[2])) {
		close(fds[1]);
		close(fds[2]);
		vms_mon_reply_and_close(&c, VMS_REPLY_FAILED, m->state, -ESRCH);
		return;
	}
	ret = vms_mon_add_uffd(m, fds[1], fds[2], &idx);
	if (ret) {
		close(fds[1]);
		close(fds[2]);
		vms_mon_reply_and_close(&c, VMS_REPLY_FAILED, m->state, ret);
		return;
	}
	if (m->ph) {
		ret = vms_mon_register_uffd(m, idx);
		if (ret) {
			vms_log(VMS_LOG_WARN, "monitor: registering a device process: %d", ret);
			vms_mon_drop_uffd(m, idx);
			vms_mon_reply_and_close(&c, VMS_REPLY_FAILED, m->state, ret);
			return;
		}
	}
	vms_mon_reply_and_close(&c, VMS_REPLY_ACCEPTED, m->state, 0);
}

/*
 * Serve entry i's events by the event-loop rule (fault_server.h). The swap-in job
 * copies through a uffd too, so while it runs the read-and-remove step holds
 * m->gate, which the job holds around each chunk: a REMOVE is never read while a
 * chunk could copy the page it removes. (Faults wait for at most one swap-in
 * chunk.)
 */
void vms_mon_handle_uffd(struct vms_monitor *m, size_t i)
{
	struct uffd_ent *e = &m->u[i];
	bool gate = m->job.running && m->job.kind == VMS_JOB_SWAP_IN;
	uint64_t reads = e->fs.reads, events = e->fs.events;
	int ret;

	vms_fs_set_handler(&e->fs, m->ph);
	ret = vms_fs_serve(&e->fs, gate ? &m->gate : NULL);
	m->uffd_reads += e->fs.reads - reads;
	m->uffd_events += e->fs.events - events;
	if (ret == -ESRCH)
		vms_mon_drop_uffd(m, i);
}
