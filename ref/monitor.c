// SPDX-License-Identifier: MIT
/*
 * monitor.c - the monitor process (monitor.h): setup (fds, privileges, pinning),
 * the event loop that hands each ready fd to its concern, and teardown.
 * The concerns live in monitor_*.c, behind monitor_internal.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/capability.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vmmswap/clock.h>
#include <vmmswap/log.h>

#include "monitor_internal.h"

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* Close every fd except stdio and the ones the monitor needs. */
static void close_other_fds(const struct vms_monitor_config *c)
{
	int keep[VMS_CTL_MAX_REGIONS + 4];
	size_t n = 0;
	unsigned int from = 3;

	if (c->test_gate_fd >= 0)
		keep[n++] = c->test_gate_fd;
	keep[n++] = c->cmd_fd;
	keep[n++] = c->main_uffd;
	for (size_t i = 0; i < c->nregions; i++)
		keep[n++] = c->regions[i].memfd;
	qsort(keep, n, sizeof(*keep), cmp_int);
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < (int)from)
			continue;
		if ((unsigned int)keep[i] > from)
			syscall(SYS_close_range, from, (unsigned int)keep[i] - 1, 0);
		from = (unsigned int)keep[i] + 1;
	}
	syscall(SYS_close_range, from, ~0u, 0);
}

static int drop_privileges(const struct vms_monitor_config *c)
{
	cap_t caps;
	int ret = 0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (c->flags & VMS_CTL_KEEP_CAPS)
		return 0;
	/* The monitor works on fds it was given: it needs no capability at all. */
	caps = cap_init();
	if (!caps)
		return -errno;
	if (cap_set_proc(caps))
		ret = -errno;
	cap_free(caps);
	return ret;
}

/* The fault_cpu hint: pin this (the loop) thread, remembering the original mask. */
static void pin_fault_thread(struct vms_monitor *m)
{
	int cpu = m->cfg->fault_cpu, ret;
	cpu_set_t one;

	if (cpu < 0)
		return;
	ret = sched_getaffinity(0, sizeof(m->orig_cpus), &m->orig_cpus) ? -errno : 0;
	if (!ret && (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &m->orig_cpus)))
		ret = -EINVAL;
	if (!ret) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		ret = -pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
	}
	if (ret) {
		vms_log(VMS_LOG_WARN, "monitor: cannot run on CPU %d (%d); not pinned", cpu, ret);
		return;
	}
	m->pinned = true;
}

static int setup(struct vms_monitor *m)
{
	const struct vms_monitor_config *c = m->cfg;
	sigset_t set;
	int ret;

	prctl(PR_SET_NAME, "vms monitor", 0, 0, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -EINVAL;
	signal(SIGPIPE, SIG_IGN);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0))
		return -errno;
	/* The check: the VMM may have died before the prctl. */
	if (getppid() != c->vmm_pid)
		return -ESRCH;
	m->vmm_pidfd = (int)syscall(SYS_pidfd_open, c->vmm_pid, 0);
	if (m->vmm_pidfd < 0)
		return -errno;
	ret = drop_privileges(c);
	if (ret) {
		vms_log(VMS_LOG_ERROR, "monitor: dropping privileges: %d", ret);
		return ret;
	}
	m->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	m->jobfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m->sigfd < 0 || m->jobfd < 0 || m->epfd < 0)
		return -errno;
	if ((ret = vms_mon_ep_add(m, c->cmd_fd, TOKEN(TOK_CMD, 0))) ||
	    (ret = vms_mon_ep_add(m, m->jobfd, TOKEN(TOK_JOB, 0))) ||
	    (ret = vms_mon_ep_add(m, m->sigfd, TOKEN(TOK_SIG, 0))) ||
	    (ret = vms_mon_ep_add(m, m->vmm_pidfd, TOKEN(TOK_VMM, 0))))
		return ret;
	m->cmd_open = true;
	pin_fault_thread(m);
	ret = vms_mon_add_uffd(m, c->main_uffd, -1, NULL);
	if (ret || (c->flags & VMS_CTL_NO_SANDBOX))
		return ret;
	/* Last: from here on the monitor can only do what it needs (monitor_sandbox.c). */
	return vms_mon_sandbox();
}

static bool vmm_gone(struct vms_monitor *m)
{
	return vms_mon_pidfd_dead(m->vmm_pidfd) || getppid() != m->cfg->vmm_pid;
}

static void teardown(struct vms_monitor *m)
{
	if (m->job.running) {
		atomic_store(&m->job.abort, true);
		pthread_join(m->job.thread, NULL);
		m->job.running = false;
		if (m->job.uffd >= 0)
			close(m->job.uffd);
	}
	if (m->have_parked)
		close(m->parked.reply_fd);
	if (m->have_enable)
		close(m->enable_cmd.reply_fd);
	if (m->exit_after_swap_in)
		close(m->exit_cmd.reply_fd);
	for (; m->qn; m->qn--, m->qhead = (m->qhead + 1) % QUEUE_MAX)
		if (m->q[m->qhead].reply_fd >= 0)
			close(m->q[m->qhead].reply_fd);
	vms_ph_destroy(m->ph);
	m->ph = NULL;
	/* Exit always releases the swap file, also during a slow cleanup. */
	vms_mon_stop_cleanup(m);
	for (size_t i = 0; i < m->nu; i++)
		if (m->u[i].fd >= 0) {
			close(m->u[i].fd);
			if (m->u[i].pidfd >= 0)
				close(m->u[i].pidfd);
			vms_fs_destroy(&m->u[i].fs);
		}
	free(m->u);
}

int vms_monitor_run(const struct vms_monitor_config *cfg)
{
	struct vms_monitor m = {
		.cfg = cfg,
		.epfd = -1,
		.jobfd = -1,
		.sigfd = -1,
		.vmm_pidfd = -1,
		.state = VMS_SWAP_READY,
		.job.uffd = -1,
		.job.kind = JOB_NONE,
	};
	int ret;

	pthread_mutex_init(&m.gate, NULL);
	close_other_fds(cfg);
	ret = setup(&m);
	if (ret)
		goto out;
	while (!m.should_exit) {
		struct epoll_event ev[MAX_EPOLL];
		bool retry = false;
		int n;

		for (size_t i = 0; i < m.nu; i++)
			retry |= m.u[i].fd >= 0 && vms_fs_has_kept(&m.u[i].fs);
		n = epoll_wait(m.epfd, ev, MAX_EPOLL, retry ? 1 : -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		for (int k = 0; k < n && !m.should_exit; k++) {
			uint32_t idx = (uint32_t)ev[k].data.u64;

			switch (ev[k].data.u64 >> 32) {
			case TOK_CMD:
				vms_mon_handle_commands(&m);
				break;
			case TOK_JOB:
				vms_mon_job_done(&m);
				break;
			case TOK_SIG: {
				struct signalfd_siginfo si;

				while (read(m.sigfd, &si, sizeof(si)) == sizeof(si))
					;
				if (vmm_gone(&m)) {
					vms_log(VMS_LOG_INFO, "monitor: the VMM died; exiting");
					m.should_exit = true;
				}
				break;
			}
			case TOK_VMM:
				vms_log(VMS_LOG_INFO, "monitor: the VMM exited; exiting");
				m.should_exit = true;
				break;
			case TOK_UFFD:
				if (idx < m.nu && m.u[idx].fd >= 0)
					vms_mon_handle_uffd(&m, idx);
				break;
			case TOK_PIDFD:
				if (idx < m.nu && m.u[idx].fd >= 0) {
					/* Serve what it queued, then forget it. */
					vms_mon_handle_uffd(&m, idx);
					vms_mon_drop_uffd(&m, idx);
				}
				break;
			}
		}
		if (retry)
			for (size_t i = 0; i < m.nu; i++)
				if (m.u[i].fd >= 0 && vms_fs_has_kept(&m.u[i].fs))
					vms_mon_handle_uffd(&m, i);
	}
out:
	teardown(&m);
	if (m.epfd >= 0)
		close(m.epfd);
	if (m.jobfd >= 0)
		close(m.jobfd);
	if (m.sigfd >= 0)
		close(m.sigfd);
	if (m.vmm_pidfd >= 0)
		close(m.vmm_pidfd);
	pthread_mutex_destroy(&m.gate);
	return ret;
}
