// SPDX-License-Identifier: MIT
/*
 * monitor.c - the monitor process: event loop, uffd list, command handling through
 * the state table, and the background jobs (monitor.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <vmmswap/fault_server.h>
#include <vmmswap/file_truncator.h>
#include <vmmswap/log.h>
#include <vmmswap/memfd_data.h>
#include <vmmswap/monitor.h>
#include <vmmswap/page_handler.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/protocol.h>
#include <vmmswap/state_machine.h>
#include <vmmswap/status.h>
#include <vmmswap/uffd.h>

#define QUEUE_MAX   32
#define MAX_EPOLL   64

enum tok_kind { TOK_CMD = 1, TOK_JOB, TOK_SIG, TOK_VMM, TOK_UFFD, TOK_PIDFD };
#define TOKEN(kind, idx) (((uint64_t)(kind) << 32) | (uint32_t)(idx))

#define JOB_NONE (-1) /* job.kind when no job ran since the last one ended */

/* One process whose address space the monitor serves. */
struct uffd_ent {
	int fd;	   /* -1: free slot */
	int pidfd; /* -1 for the VMM (its death ends the monitor) */
	bool registered;
	struct vms_fault_server fs; /* its events: the event-loop rule, faults kept */
};

/* A command waiting its turn; it owns reply_fd. */
struct queued {
	struct vms_msg_cmd msg;
	int reply_fd;
	int state; /* state on receipt, for the reply */
};

struct job {
	int kind; /* enum vms_sm_job, or JOB_NONE */
	bool running; /* thread created and not yet joined (loop thread only) */
	pthread_t thread;
	atomic_bool abort;
	atomic_bool release; /* test hook: an Exit lets a held job run */
	atomic_uint_fast64_t pages;
	int64_t start_ms;
	int uffd;     /* swap-in: a dup owned by the job */
	int result;   /* written by the job before it signals; read after the join */
	bool aborted; /* likewise */
	struct vms_monitor *m;
};

struct vms_monitor {
	const struct vms_monitor_config *cfg;
	int epfd, jobfd, sigfd, vmm_pidfd;
	bool cmd_open;
	int state;		     /* enum vms_swap_state as reported */
	struct vms_page_handler *ph; /* non-NULL while enabled */
	struct uffd_ent *u;
	size_t nu;
	struct job job;
	struct vms_swap_transition trans; /* record when no job runs */
	struct queued q[QUEUE_MAX];
	size_t qhead, qn;
	struct queued parked; /* waits for the move or an abort to end */
	bool have_parked;
	struct queued enable_cmd; /* the Enable whose move runs */
	bool have_enable;
	struct queued exit_cmd; /* the Exit waiting for the swap-in */
	bool exit_after_swap_in;
	bool slow_cleanup;
	/*
	 * The previous swap file while a slow file cleanup shrinks it (state Ready only;
	 * NULL otherwise). last_cleanup: how the last one ended, for Info.
	 */
	struct vms_truncator *trunc;
	struct vms_truncator_info last_cleanup;
	uint64_t uffd_reads, uffd_events; /* Info counters */
	bool pinned; /* the loop thread runs on cfg->fault_cpu; jobs get orig_cpus */
	cpu_set_t orig_cpus;
	bool should_exit;
	pthread_mutex_t gate; /* swap-in chunk vs reading REMOVE events (handle_uffd) */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- replies ---- */

static void reply_and_close(struct queued *c, int result, int new_state, int err)
{
	struct vms_reply r = {
		.result = result,
		.state = c->state,
		.new_state = new_state,
		.err = err,
	};

	if (c->reply_fd < 0)
		return;
	if (vms_proto_send_reply(c->reply_fd, &r, NULL))
		vms_log(VMS_LOG_WARN, "monitor: could not reply to %s",
			vms_cmd_name(c->msg.cmd) ?: "?");
	close(c->reply_fd);
	c->reply_fd = -1;
}

/* ---- uffd list ---- */

static int ep_add(struct vms_monitor *m, int fd, uint64_t token)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = token };

	return epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int add_uffd(struct vms_monitor *m, int fd, int pidfd, size_t *idx_out)
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
	ret = ep_add(m, fd, TOKEN(TOK_UFFD, i));
	if (!ret && pidfd >= 0) {
		ret = ep_add(m, pidfd, TOKEN(TOK_PIDFD, i));
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

static void drop_uffd(struct vms_monitor *m, size_t i)
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

static bool pidfd_dead(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return pidfd >= 0 && poll(&p, 1, 0) == 1;
}

/*
 * Register every region on entry i. -ESRCH: its process is gone (ENOMEM from the
 * kernel, and the pidfd confirms it when there is one); other errors: nothing stays
 * registered.
 */
static int register_uffd(struct vms_monitor *m, size_t i)
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

static void unregister_uffd(struct vms_monitor *m, size_t i)
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

/* ---- status ---- */

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

static void fill_status(struct vms_monitor *m, struct vms_swap_status *st)
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
		st->state_transition.time_ms = (uint64_t)(now_ms() - m->job.start_ms);
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

static void fill_info(struct vms_monitor *m, struct vms_monitor_info *info)
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

/* ---- background jobs (job thread) ---- */

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

static int start_job(struct vms_monitor *m, int kind)
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
	j->start_ms = now_ms();
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

/* ---- enabling and disabling ---- */

/*
 * Slow file cleanup (Ready only). The truncator gets a dup of the page handler's swap
 * file just before the handler is destroyed, so the file outlives the handler and
 * only the truncator thread writes it from then on.
 */
static void start_cleanup(struct vms_monitor *m)
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
static void stop_cleanup(struct vms_monitor *m)
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

static int enable_from_ready(struct vms_monitor *m)
{
	const struct vms_monitor_config *c = m->cfg;
	struct vms_ph_region *pr;
	struct vms_ph_config pc;
	int ret;

	stop_cleanup(m);
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
		ret = register_uffd(m, i);
		if (ret == -ESRCH && i > 0) {
			drop_uffd(m, i);
			ret = 0;
		}
		if (ret) {
			vms_log(VMS_LOG_ERROR, "monitor: registering guest memory: %d", ret);
			for (size_t k = 0; k < m->nu; k++)
				if (m->u[k].fd >= 0)
					unregister_uffd(m, k);
			vms_ph_destroy(m->ph);
			m->ph = NULL;
			return ret;
		}
	}
	return 0;
}

/* Swap-in finished: back to Ready (crosvm's disabled loop). */
static void finish_disable(struct vms_monitor *m)
{
	for (size_t i = 0; i < m->nu; i++)
		if (m->u[i].fd >= 0)
			unregister_uffd(m, i); /* wakes its blocked threads */
	/*
	 * The swap file is an O_TMPFILE owned by the page handler: destroying the
	 * handler releases its space at once, unless slow_file_cleanup keeps a dup of
	 * it for the truncator.
	 */
	if (m->slow_cleanup)
		start_cleanup(m);
	vms_ph_destroy(m->ph);
	m->ph = NULL;
}

/* ---- commands ---- */

static void dispatch(struct vms_monitor *m, struct queued *c);

static bool queue_busy(const struct vms_monitor *m)
{
	return m->have_parked || (m->job.running && m->job.kind == VMS_JOB_MOVE);
}

static void run_queue(struct vms_monitor *m)
{
	while (m->qn && !queue_busy(m) && !m->should_exit) {
		struct queued c = m->q[m->qhead];

		m->qhead = (m->qhead + 1) % QUEUE_MAX;
		m->qn--;
		dispatch(m, &c);
	}
}

/*
 * A job ended (or could not start) with this outcome: enter the state the job
 * table gives, and keep or clear the transition record. Ready means disabled:
 * give up the registrations and the page handler, unless an Exit waits for this
 * swap-in (the monitor then exits in the state it has).
 */
static void end_job(struct vms_monitor *m, int job, int outcome,
		    const struct vms_swap_transition *rec)
{
	const struct vms_sm_end *end = vms_sm_job_end(job, outcome);

	m->trans = end->record == VMS_REC_SET && rec ? *rec : (struct vms_swap_transition){ 0 };
	if (end->next == VMS_SWAP_READY && m->exit_after_swap_in)
		return;
	if (end->next == VMS_SWAP_READY)
		finish_disable(m);
	m->state = end->next;
}

/* Start the job of an accepted action and enter its state. */
static int start_action_job(struct vms_monitor *m, const struct vms_sm_entry *e)
{
	int ret = start_job(m, e->job);

	if (!ret && e->next >= 0)
		m->state = e->next;
	return ret;
}

static void start_move(struct vms_monitor *m, struct queued *c, const struct vms_sm_entry *e)
{
	int ret = start_action_job(m, e);

	if (ret) {
		end_job(m, VMS_JOB_MOVE, VMS_OUT_FAILED, NULL);
		reply_and_close(c, VMS_REPLY_FAILED, m->state, ret);
		return;
	}
	m->enable_cmd = *c;
	m->have_enable = true;
}

/* Exit: everything comes back in first, on the background thread. */
static void exit_after_swap_in(struct vms_monitor *m, struct queued *c,
			       const struct vms_sm_entry *e)
{
	int ret;

	if (m->exit_after_swap_in) {
		reply_and_close(c, VMS_REPLY_ACCEPTED, m->state, 0);
		return;
	}
	m->exit_after_swap_in = true;
	atomic_store(&m->job.release, true);
	if (e->job >= 0) {
		ret = start_action_job(m, e);
		if (ret) {
			/* Nothing can bring the pages back: exit anyway. */
			m->exit_after_swap_in = false;
			reply_and_close(c, VMS_REPLY_FAILED, m->state, ret);
			m->should_exit = true;
			return;
		}
	}
	m->exit_cmd = *c;
}

/* Carry out a command by the state table (state_machine.h). */
static void dispatch(struct vms_monitor *m, struct queued *c)
{
	bool slow = c->msg.flags & VMS_CMD_F_SLOW_FILE_CLEANUP;
	struct vms_sm_guards g = { .exiting = m->exit_after_swap_in,
				   .cleanup_running = m->trunc != NULL,
				   .slow_cleanup = slow };
	const struct vms_sm_entry *e = vms_sm_decide(m->state, c->msg.cmd, &g);
	int ret;

	if (!e) {
		reply_and_close(c, VMS_REPLY_FAILED, m->state, -EOPNOTSUPP);
		return;
	}
	if (e->abort_job && m->job.running) {
		atomic_store(&m->job.abort, true);
		m->parked = *c;
		m->have_parked = true;
		return;
	}
	switch (e->action) {
	case VMS_ACT_IGNORE:
		vms_log(VMS_LOG_WARN, "monitor: %s ignored in state %s", vms_cmd_name(c->msg.cmd),
			vms_swap_state_name(m->state));
		reply_and_close(c, VMS_REPLY_IGNORED, m->state, 0);
		return;
	case VMS_ACT_REFUSE_EXITING:
		reply_and_close(c, VMS_REPLY_FAILED, m->state, -ESHUTDOWN);
		return;
	case VMS_ACT_END_CLEANUP:
		stop_cleanup(m);
		reply_and_close(c, VMS_REPLY_ACCEPTED, m->state, 0);
		return;
	case VMS_ACT_ENABLE:
		ret = enable_from_ready(m);
		if (ret) {
			reply_and_close(c, VMS_REPLY_FAILED, m->state, ret);
			return;
		}
		start_move(m, c, e);
		return;
	case VMS_ACT_REMOVE:
		start_move(m, c, e);
		return;
	case VMS_ACT_SWAP_IN:
		m->slow_cleanup = slow;
		/* fall through */
	case VMS_ACT_TRIM:
	case VMS_ACT_SWAP_OUT:
		ret = start_action_job(m, e);
		if (ret) {
			reply_and_close(c, VMS_REPLY_FAILED, m->state, ret);
			return;
		}
		reply_and_close(c, VMS_REPLY_ACCEPTED, m->state, 0);
		return;
	case VMS_ACT_SET_CLEANUP:
		m->slow_cleanup = slow;
		vms_log(VMS_LOG_INFO, "monitor: swap in is in progress");
		reply_and_close(c, VMS_REPLY_ACCEPTED, m->state, 0);
		return;
	case VMS_ACT_EXIT:
		reply_and_close(c, VMS_REPLY_ACCEPTED, m->state, 0);
		m->should_exit = true;
		return;
	case VMS_ACT_EXIT_AFTER_SWAP_IN:
		exit_after_swap_in(m, c, e);
		return;
	default:
		reply_and_close(c, VMS_REPLY_FAILED, m->state, -EINVAL);
		return;
	}
}

static void log_job_end(const struct job *j, int outcome, const struct vms_swap_transition *rec)
{
	if (outcome == VMS_OUT_FAILED) {
		vms_log(VMS_LOG_ERROR, "monitor: %s: %d", vms_sm_job_name(j->kind), j->result);
		return;
	}
	if (outcome == VMS_OUT_ABORTED) {
		vms_log(VMS_LOG_INFO, "monitor: %s is aborted", vms_sm_job_name(j->kind));
		return;
	}
	if (j->kind == VMS_JOB_SWAP_OUT || j->kind == VMS_JOB_SWAP_IN)
		vms_log(VMS_LOG_INFO, "monitor: %s of all %llu pages in %llu ms",
			vms_sm_job_name(j->kind), (unsigned long long)rec->pages,
			(unsigned long long)rec->time_ms);
}

/* The job thread signalled its end: join it, then the job table decides. */
static void job_done(struct vms_monitor *m)
{
	struct job *j = &m->job;
	struct vms_swap_transition rec;
	uint64_t v;
	int outcome;

	if (read(m->jobfd, &v, sizeof(v)) != sizeof(v) || !j->running)
		return;
	pthread_join(j->thread, NULL);
	j->running = false;
	if (j->uffd >= 0) {
		close(j->uffd);
		j->uffd = -1;
	}
	rec = (struct vms_swap_transition){ atomic_load(&j->pages),
					    (uint64_t)(now_ms() - j->start_ms) };
	outcome = j->result ? VMS_OUT_FAILED : j->aborted ? VMS_OUT_ABORTED : VMS_OUT_OK;
	log_job_end(j, outcome, &rec);
	end_job(m, j->kind, outcome, &rec);
	if (j->kind == VMS_JOB_MOVE && m->have_enable) {
		m->have_enable = false;
		reply_and_close(&m->enable_cmd, j->result ? VMS_REPLY_FAILED : VMS_REPLY_ACCEPTED,
				m->state, j->result);
	}
	if (j->kind == VMS_JOB_SWAP_IN && m->exit_after_swap_in && !j->aborted) {
		m->exit_after_swap_in = false;
		reply_and_close(&m->exit_cmd, j->result ? VMS_REPLY_FAILED : VMS_REPLY_ACCEPTED,
				j->result ? m->state : VMS_SWAP_READY, j->result);
		m->should_exit = true;
	}
	j->kind = JOB_NONE;
	if (m->have_parked) {
		struct queued c = m->parked;

		m->have_parked = false;
		dispatch(m, &c);
	}
	run_queue(m);
}

static void handle_process_forked(struct vms_monitor *m, int *fds)
{
	struct queued c = { .reply_fd = fds[0],
			    .state = m->state,
			    .msg.cmd = VMS_CMD_PROCESS_FORKED };
	size_t idx;
	int ret;

	if (pidfd_dead(fds[2])) {
		close(fds[1]);
		close(fds[2]);
		reply_and_close(&c, VMS_REPLY_FAILED, m->state, -ESRCH);
		return;
	}
	ret = add_uffd(m, fds[1], fds[2], &idx);
	if (ret) {
		close(fds[1]);
		close(fds[2]);
		reply_and_close(&c, VMS_REPLY_FAILED, m->state, ret);
		return;
	}
	if (m->ph) {
		ret = register_uffd(m, idx);
		if (ret) {
			vms_log(VMS_LOG_WARN, "monitor: registering a device process: %d", ret);
			drop_uffd(m, idx);
			reply_and_close(&c, VMS_REPLY_FAILED, m->state, ret);
			return;
		}
	}
	reply_and_close(&c, VMS_REPLY_ACCEPTED, m->state, 0);
}

static void handle_commands(struct vms_monitor *m)
{
	for (int budget = 0; budget < 64; budget++) {
		int fds[VMS_PROTO_MAX_FDS], reply_fd;
		struct vms_msg_cmd msg;
		size_t nfds;
		struct queued c;
		int ret;

		ret = vms_proto_recv_cmd(m->cfg->cmd_fd, &msg, fds, &nfds, &reply_fd);
		if (ret == -EAGAIN)
			return;
		if (ret == -EPIPE) {
			/* Every sender is gone: as Exit, without a reply. */
			vms_log(VMS_LOG_INFO, "monitor: command socket closed");
			epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->cfg->cmd_fd, NULL);
			m->cmd_open = false;
			c = (struct queued){ .msg.cmd = VMS_CMD_EXIT,
					     .reply_fd = -1,
					     .state = m->state };
			if (m->qn < QUEUE_MAX) {
				m->q[(m->qhead + m->qn) % QUEUE_MAX] = c;
				m->qn++;
			} else {
				m->should_exit = true;
			}
			run_queue(m);
			return;
		}
		if (ret) {
			vms_log(VMS_LOG_WARN, "monitor: rejected a malformed message: %d", ret);
			c = (struct queued){ .msg = msg, .reply_fd = reply_fd, .state = m->state };
			for (size_t i = 0; i < nfds; i++)
				if (fds[i] != reply_fd)
					close(fds[i]);
			reply_and_close(&c, VMS_REPLY_FAILED, m->state, ret);
			continue;
		}
		c = (struct queued){ .msg = msg, .reply_fd = fds[0], .state = m->state };
		if (msg.cmd == VMS_CMD_STATUS) {
			struct vms_reply r = { .result = VMS_REPLY_ACCEPTED,
					       .state = m->state,
					       .new_state = m->state };
			struct vms_swap_status st;

			fill_status(m, &st);
			ret = vms_proto_send_reply(c.reply_fd, &r, &st);
			if (ret)
				vms_log(VMS_LOG_WARN, "monitor: could not answer Status: %d", ret);
			close(c.reply_fd);
			continue;
		}
		if (msg.cmd == VMS_CMD_INFO) {
			struct vms_reply r = { .result = VMS_REPLY_ACCEPTED,
					       .state = m->state,
					       .new_state = m->state };
			struct vms_monitor_info info;

			fill_info(m, &info);
			ret = vms_proto_send_info_reply(c.reply_fd, &r, &info);
			if (ret)
				vms_log(VMS_LOG_WARN, "monitor: could not answer Info: %d", ret);
			close(c.reply_fd);
			continue;
		}
		if (msg.cmd == VMS_CMD_PROCESS_FORKED) {
			handle_process_forked(m, fds);
			continue;
		}
		if (m->qn == QUEUE_MAX) {
			reply_and_close(&c, VMS_REPLY_FAILED, m->state, -EBUSY);
			continue;
		}
		m->q[(m->qhead + m->qn) % QUEUE_MAX] = c;
		m->qn++;
		run_queue(m);
	}
}

/* ---- uffd events ---- */

/*
 * Serve entry i's events by the event-loop rule (fault_server.h). The swap-in job
 * copies through a uffd too, so while it runs the read-and-remove step holds
 * m->gate, which the job holds around each chunk: a REMOVE is never read while a
 * chunk could copy the page it removes. (Faults wait for at most one swap-in
 * chunk.)
 */
static void handle_uffd(struct vms_monitor *m, size_t i)
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
		drop_uffd(m, i);
}

/* ---- process setup ---- */

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
	if ((ret = ep_add(m, c->cmd_fd, TOKEN(TOK_CMD, 0))) ||
	    (ret = ep_add(m, m->jobfd, TOKEN(TOK_JOB, 0))) ||
	    (ret = ep_add(m, m->sigfd, TOKEN(TOK_SIG, 0))) ||
	    (ret = ep_add(m, m->vmm_pidfd, TOKEN(TOK_VMM, 0))))
		return ret;
	m->cmd_open = true;
	pin_fault_thread(m);
	return add_uffd(m, c->main_uffd, -1, NULL);
}

static bool vmm_gone(struct vms_monitor *m)
{
	return pidfd_dead(m->vmm_pidfd) || getppid() != m->cfg->vmm_pid;
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
	stop_cleanup(m);
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
				handle_commands(&m);
				break;
			case TOK_JOB:
				job_done(&m);
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
					handle_uffd(&m, idx);
				break;
			case TOK_PIDFD:
				if (idx < m.nu && m.u[idx].fd >= 0) {
					/* Serve what it queued, then forget it. */
					handle_uffd(&m, idx);
					drop_uffd(&m, idx);
				}
				break;
			}
		}
		if (retry)
			for (size_t i = 0; i < m.nu; i++)
				if (m.u[i].fd >= 0 && vms_fs_has_kept(&m.u[i].fs))
					handle_uffd(&m, i);
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
