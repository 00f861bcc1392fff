// SPDX-License-Identifier: MIT
/*
 * monitor_jobs.c - the background jobs (the worker): one thread at a time runs the move to
 * staging, trim, swap-out or swap-in in chunks, checks the abort flag between
 * chunks and signals the loop when it ends; it never touches the state.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <vmmswap/clock.h>
#include <vmmswap/log.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/state_machine.h>
#include <vmmswap/test_hooks.h>

#include "monitor_internal.h"

static void job_move(struct job *j)
{
	const struct vms_monitor_config *c = j->m->cfg;

	for (size_t i = 0; i < c->nregions; i++) {
		uint64_t moved = 0;

		j->result = vms_ph_move_to_staging(j->m->ph, c->regions[i].addr, &moved);
		atomic_fetch_add(&j->pages, moved);
		if (j->result)
			return;
	}
}

/*
 * VMS_CTL_TEST_HOLD_JOBS: wait for a release byte, or the abort flag. false: aborted.
 * Polls with a 1 ms timeout for the flag; test builds only.
 */
static bool job_gate(struct job *j)
{
	int fd = j->m->cfg->test_gate_fd;

	if (!(j->m->cfg->flags & VMS_CTL_TEST_HOLD_JOBS) || fd < 0)
		return true;
	while (!atomic_load(&j->abort)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char b;

		if (atomic_load(&j->release))
			return true;
		if (poll(&p, 1, 1) == 1 && read(fd, &b, 1) == 1)
			return true;
	}
	j->aborted = true;
	return false;
}

static void job_trim(struct job *j)
{
	struct vms_ph_trim t;

	vms_ph_trim_init(&t);
	if (!job_gate(j))
		return;
	while (!t.done) {
		uint64_t n = 0;

		if (atomic_load(&j->abort)) {
			j->aborted = true;
			break;
		}
		j->result = vms_ph_trim(j->m->ph, &t, VMS_PH_TRIM_BATCH_PAGES, &n);
		atomic_fetch_add(&j->pages, n);
		if (j->result)
			return;
	}
	vms_log(VMS_LOG_INFO, "monitor: trimmed %llu clean pages and %llu zero pages%s",
		(unsigned long long)t.clean_pages, (unsigned long long)t.zero_pages,
		j->aborted ? " (aborted)" : "");
}

/*
 * A chunk that did nothing ends the job only when nothing is left to do: the page
 * handler can return 0 pages while work remains, when every page of the run it
 * planned was faulted in (or removed) before it committed.
 */
static bool nothing_left(struct vms_page_handler *ph, bool swapped_too)
{
	struct vms_ph_metrics pm;

	if (vms_ph_metrics(ph, &pm))
		return true; /* logged; do not spin */
	if (!pm.staging_pages && (!swapped_too || !pm.swap_pages))
		return true;
	vms_log(VMS_LOG_INFO,
		"monitor: an empty chunk with %llu staged and %llu swapped pages left",
		(unsigned long long)pm.staging_pages, (unsigned long long)pm.swap_pages);
	return false;
}

static void job_swap_out(struct job *j)
{
	uint64_t max = vms_bytes_to_pages(VMS_PH_MAX_CHUNK_BYTES);

	if (!job_gate(j))
		return;
	if (j->m->cfg->flags & VMS_CTL_TEST_FAIL_SWAP_OUT)
		vms_ph_inject_write_error(j->m->ph, -ENOSPC);
	for (;;) {
		uint64_t n = 0;

		if (atomic_load(&j->abort)) {
			j->aborted = true;
			return;
		}
		j->result = vms_ph_swap_out(j->m->ph, max, &n);
		if (j->result || (!n && nothing_left(j->m->ph, false)))
			return;
		atomic_fetch_add(&j->pages, n);
	}
}

static void job_swap_in(struct job *j)
{
	uint64_t max = vms_bytes_to_pages(VMS_PH_MAX_CHUNK_BYTES);

	if (!job_gate(j))
		return;
	for (;;) {
		uint64_t n = 0;

		if (atomic_load(&j->abort)) {
			j->aborted = true;
			return;
		}
		pthread_mutex_lock(&j->m->gate);
		j->result = vms_ph_swap_in(j->m->ph, j->uffd, max, &n);
		pthread_mutex_unlock(&j->m->gate);
		atomic_fetch_add(&j->pages, n);
		if (j->result == -EAGAIN) {
			/* A REMOVE is in flight on this uffd: the loop thread reads it; the
			 * remover must run again before the kernel lets us fill. */
			struct timespec ts = { 0, 200000 };

			nanosleep(&ts, NULL);
			continue;
		}
		if (j->result || (!n && nothing_left(j->m->ph, true)))
			return;
	}
}

static void *job_main(void *arg)
{
	struct job *j = arg;
	uint64_t one = 1;

	switch (j->kind) {
	case VMS_JOB_MOVE:
		job_move(j);
		break;
	case VMS_JOB_TRIM:
		job_trim(j);
		break;
	case VMS_JOB_SWAP_OUT:
		job_swap_out(j);
		break;
	case VMS_JOB_SWAP_IN:
		job_swap_in(j);
		break;
	default:
		j->result = -EINVAL;
		break;
	}
	if (write(j->m->jobfd, &one, sizeof(one)) != sizeof(one))
		vms_log(VMS_LOG_ERROR, "monitor: signalling job completion failed");
	return NULL;
}

int vms_mon_start_job(struct vms_monitor *m, int kind)
{
	struct job *j = &m->job;
	pthread_attr_t attr;
	int ret;

	j->kind = kind;
	j->m = m;
	j->result = 0;
	j->aborted = false;
	j->uffd = -1;
	atomic_store(&j->abort, false);
	atomic_store(&j->release, m->exit_after_swap_in);
	atomic_store(&j->pages, 0);
	j->start_ms = vms_now_ms();
	if (kind == VMS_JOB_SWAP_IN) {
		/* Fill through the VMM's uffd, else any live one: the pages are shared. */
		for (size_t i = 0; i < m->nu && j->uffd < 0; i++)
			if (m->u[i].fd >= 0 && m->u[i].registered)
				j->uffd = fcntl(m->u[i].fd, F_DUPFD_CLOEXEC, 0);
		if (j->uffd < 0)
			return -ESRCH;
	}
	/* Jobs do bulk copies: keep them off the fault-serving CPU when it is pinned. */
	pthread_attr_init(&attr);
	if (m->pinned)
		pthread_attr_setaffinity_np(&attr, sizeof(m->orig_cpus), &m->orig_cpus);
	ret = -pthread_create(&j->thread, &attr, job_main, j);
	pthread_attr_destroy(&attr);
	if (ret) {
		if (j->uffd >= 0)
			close(j->uffd);
		return ret;
	}
	j->running = true;
	return 0;
}
