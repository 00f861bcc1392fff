// SPDX-License-Identifier: MIT
/*
 * monitor_commands.c - commands: the queue, the decisions of the state tables
 * (state_machine.h) carried out, the replies, and the end of each job.
 */
#include <errno.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <vmmswap/clock.h>
#include <vmmswap/log.h>
#include <vmmswap/state_machine.h>
#include <vmmswap/test_hooks.h>

#include "monitor_internal.h"

static void dispatch(struct vms_monitor *m, struct queued *c);

void vms_mon_reply_and_close(struct queued *c, int result, int new_state, int err)
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
		vms_mon_finish_disable(m);
	m->state = end->next;
}

/* Start the job of an accepted action and enter its state. */
static int start_action_job(struct vms_monitor *m, const struct vms_sm_entry *e)
{
	int ret = vms_mon_start_job(m, e->job);

	if (!ret && e->next >= 0)
		m->state = e->next;
	return ret;
}

static void start_move(struct vms_monitor *m, struct queued *c, const struct vms_sm_entry *e)
{
	int ret = start_action_job(m, e);

	if (ret) {
		end_job(m, VMS_JOB_MOVE, VMS_OUT_FAILED, NULL);
		vms_mon_reply_and_close(c, VMS_REPLY_FAILED, m->state, ret);
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
		vms_mon_reply_and_close(c, VMS_REPLY_ACCEPTED, m->state, 0);
		return;
	}
	m->exit_after_swap_in = true;
	atomic_store(&m->job.release, true);
	if (e->job >= 0) {
		ret = start_action_job(m, e);
		if (ret) {
			/* Nothing can bring the pages back: exit anyway. */
			m->exit_after_swap_in = false;
			vms_mon_reply_and_close(c, VMS_REPLY_FAILED, m->state, ret);
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
		vms_mon_reply_and_close(c, VMS_REPLY_FAILED, m->state, -EOPNOTSUPP);
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
		vms_mon_reply_and_close(c, VMS_REPLY_IGNORED, m->state, 0);
		return;
	case VMS_ACT_REFUSE_EXITING:
		vms_mon_reply_and_close(c, VMS_REPLY_FAILED, m->state, -ESHUTDOWN);
		return;
	case VMS_ACT_END_CLEANUP:
		vms_mon_stop_cleanup(m);
		vms_mon_reply_and_close(c, VMS_REPLY_ACCEPTED, m->state, 0);
		return;
	case VMS_ACT_ENABLE:
		ret = vms_mon_enable_from_ready(m);
		if (ret) {
			vms_mon_reply_and_close(c, VMS_REPLY_FAILED, m->state, ret);
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
			vms_mon_reply_and_close(c, VMS_REPLY_FAILED, m->state, ret);
			return;
		}
		vms_mon_reply_and_close(c, VMS_REPLY_ACCEPTED, m->state, 0);
		return;
	case VMS_ACT_SET_CLEANUP:
		m->slow_cleanup = slow;
		vms_log(VMS_LOG_INFO, "monitor: swap in is in progress");
		vms_mon_reply_and_close(c, VMS_REPLY_ACCEPTED, m->state, 0);
		return;
	case VMS_ACT_EXIT:
		vms_mon_reply_and_close(c, VMS_REPLY_ACCEPTED, m->state, 0);
		m->should_exit = true;
		return;
	case VMS_ACT_EXIT_AFTER_SWAP_IN:
		exit_after_swap_in(m, c, e);
		return;
	default:
		vms_mon_reply_and_close(c, VMS_REPLY_FAILED, m->state, -EINVAL);
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
void vms_mon_job_done(struct vms_monitor *m)
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
					    (uint64_t)(vms_now_ms() - j->start_ms) };
	outcome = j->result ? VMS_OUT_FAILED : j->aborted ? VMS_OUT_ABORTED : VMS_OUT_OK;
	log_job_end(j, outcome, &rec);
	end_job(m, j->kind, outcome, &rec);
	if (j->kind == VMS_JOB_MOVE && m->have_enable) {
		m->have_enable = false;
		vms_mon_reply_and_close(&m->enable_cmd,
					j->result ? VMS_REPLY_FAILED : VMS_REPLY_ACCEPTED, m->state,
					j->result);
	}
	if (j->kind == VMS_JOB_SWAP_IN && m->exit_after_swap_in && !j->aborted) {
		m->exit_after_swap_in = false;
		vms_mon_reply_and_close(&m->exit_cmd,
					j->result ? VMS_REPLY_FAILED : VMS_REPLY_ACCEPTED,
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

void vms_mon_handle_commands(struct vms_monitor *m)
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
			vms_mon_reply_and_close(&c, VMS_REPLY_FAILED, m->state, ret);
			continue;
		}
		c = (struct queued){ .msg = msg, .reply_fd = fds[0], .state = m->state };
		if (msg.cmd == VMS_CMD_STATUS) {
			struct vms_reply r = { .result = VMS_REPLY_ACCEPTED,
					       .state = m->state,
					       .new_state = m->state };
			struct vms_swap_status st;

			vms_mon_fill_status(m, &st);
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

			if (m->cfg->flags & VMS_CTL_TEST_SANDBOX_PROBE)
				(void)socket(AF_INET, SOCK_STREAM, 0); /* not allowed */
			vms_mon_fill_info(m, &info);
			ret = vms_proto_send_info_reply(c.reply_fd, &r, &info);
			if (ret)
				vms_log(VMS_LOG_WARN, "monitor: could not answer Info: %d", ret);
			close(c.reply_fd);
			continue;
		}
		if (msg.cmd == VMS_CMD_PROCESS_FORKED) {
			vms_mon_process_forked(m, fds);
			continue;
		}
		if (m->qn == QUEUE_MAX) {
			vms_mon_reply_and_close(&c, VMS_REPLY_FAILED, m->state, -EBUSY);
			continue;
		}
		m->q[(m->qhead + m->qn) % QUEUE_MAX] = c;
		m->qn++;
		run_queue(m);
	}
}
