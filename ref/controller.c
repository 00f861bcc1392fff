// SPDX-License-Identifier: MIT
/*
 * controller.c - the VMM side: launch the monitor, send commands and wait for their
 * replies, freeze around enable, and the device-process registration (controller.h).
 *
 * Threads: ctl->lock serialises enable/trim/swap-out/disable/exit and the freeze
 * settings; status and device_forked take no lock (each call has its own reply
 * socket, see protocol.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vmmswap/controller.h>
#include <vmmswap/freezer.h>
#include <vmmswap/log.h>
#include <vmmswap/monitor.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/protocol.h>
#include <vmmswap/test_hooks.h>
#include <vmmswap/uffd.h>

#define UFFD_FEATURES (UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE)

struct vms_controller {
	int cmd_fd;
	pid_t monitor_pid;
	int monitor_pidfd;
	int timeout_ms;
	unsigned int flags;
	pthread_mutex_t lock;
	enum vms_freeze_mode freeze_mode;
	pid_t *freeze_pids;
	size_t nfreeze;
	struct vms_region regions[VMS_CTL_MAX_REGIONS];
	size_t nregions;
	char *swap_dir;
	int gate_fd; /* VMS_CTL_TEST_HOLD_JOBS: write end of the release pipe */
};

static void fail_reply(struct vms_reply *reply, int err)
{
	if (reply)
		*reply = (struct vms_reply){ .result = VMS_REPLY_FAILED,
					     .state = VMS_SWAP_READY,
					     .new_state = VMS_SWAP_READY,
					     .err = err };
}

/* Send cmd with a fresh reply socket and wait for the answer. */
static int command_info(struct vms_controller *ctl, int cmd, uint32_t flags,
			struct vms_reply *reply, struct vms_swap_status *st,
			struct vms_monitor_info *info)
{
	struct vms_reply r;
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		ret = -errno;
		goto fail;
	}
	ret = vms_proto_send_cmd(ctl->cmd_fd, cmd, flags, &sv[1], 1, ctl->timeout_ms);
	close(sv[1]);
	if (!ret)
		ret = vms_proto_recv_reply_info(sv[0], ctl->timeout_ms, &r, st, info);
	close(sv[0]);
	if (ret == -ECONNRESET || ret == -ECONNREFUSED)
		ret = -EPIPE;
	if (ret)
		goto fail;
	if (reply)
		*reply = r;
	return 0;
fail:
	vms_log(VMS_LOG_ERROR, "controller: %s: no reply from the monitor: %d",
		vms_cmd_name(cmd) ?: "?", ret);
	fail_reply(reply, ret);
	return ret;
}

static int command(struct vms_controller *ctl, int cmd, uint32_t flags, struct vms_reply *reply,
		   struct vms_swap_status *st)
{
	return command_info(ctl, cmd, flags, reply, st, NULL);
}

static int check_opts(const struct vms_controller_opts *o)
{
	uint64_t ps = vms_page_size();

	if (!o || !o->regions || !o->nregions || o->nregions > VMS_CTL_MAX_REGIONS ||
	    !o->swap_dir || o->reply_timeout_ms < 0 ||
	    o->fault_around_pages > VMS_MAX_FAULT_AROUND_PAGES ||
	    ((o->flags & VMS_CTL_FAULT_CPU) && (o->fault_cpu < 0 || o->fault_cpu >= CPU_SETSIZE)))
		return -EINVAL;
	for (size_t i = 0; i < o->nregions; i++) {
		const struct vms_region *r = &o->regions[i];

		if (!r->len || (r->addr | r->len | r->memfd_off) & (ps - 1) || r->memfd < 0 ||
		    r->addr + r->len < r->addr)
			return -EINVAL;
	}
	return 0;
}

static void reap(struct vms_controller *ctl)
{
	if (ctl->monitor_pid > 0)
		waitpid(ctl->monitor_pid, NULL, 0);
	ctl->monitor_pid = -1;
}

/* Close this process's fds of ctl and free it; the mutex is the caller's business. */
static void release_ctl(struct vms_controller *ctl)
{
	if (ctl->cmd_fd >= 0)
		close(ctl->cmd_fd);
	if (ctl->monitor_pidfd >= 0)
		close(ctl->monitor_pidfd);
	if (ctl->gate_fd >= 0)
		close(ctl->gate_fd);
	free(ctl->freeze_pids);
	free(ctl->swap_dir);
	free(ctl);
}

static void free_ctl(struct vms_controller *ctl)
{
	pthread_mutex_destroy(&ctl->lock);
	release_ctl(ctl);
}

int vms_controller_launch(const struct vms_controller_opts *opts, struct vms_controller **out)
{
	struct vms_controller *ctl;
	struct vms_swap_status st;
	struct vms_uffd u = { .fd = -1 };
	pid_t vmm = getpid(), pid;
	int sv[2], gate[2] = { -1, -1 }, ret, fd;

	*out = NULL;
	ret = check_opts(opts);
	if (ret)
		return ret;
	/* The swap file is an O_TMPFILE: find out now whether the directory can. */
	fd = open(opts->swap_dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		vms_log(VMS_LOG_ERROR, "controller: no O_TMPFILE in %s: %d", opts->swap_dir, ret);
		return ret;
	}
	close(fd);
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return -ENOMEM;
	ctl->cmd_fd = -1;
	ctl->monitor_pidfd = -1;
	ctl->gate_fd = -1;
	ctl->monitor_pid = -1;
	ctl->timeout_ms = opts->reply_timeout_ms ?: VMS_CTL_DEFAULT_TIMEOUT_MS;
	ctl->flags = opts->flags;
	ctl->freeze_mode =
		opts->flags & VMS_CTL_NO_FREEZE ? VMS_FREEZE_NONE : VMS_FREEZE_DESCENDANTS;
	pthread_mutex_init(&ctl->lock, NULL);
	memcpy(ctl->regions, opts->regions, opts->nregions * sizeof(*opts->regions));
	ctl->nregions = opts->nregions;
	ctl->swap_dir = strdup(opts->swap_dir);
	if (!ctl->swap_dir) {
		free_ctl(ctl);
		return -ENOMEM;
	}
	ret = vms_uffd_create(&u, UFFD_FEATURES, 0);
	if (ret) {
		vms_log(VMS_LOG_ERROR, "controller: creating the VMM's userfaultfd: %d", ret);
		free_ctl(ctl);
		return ret;
	}
	if ((opts->flags & VMS_CTL_TEST_HOLD_JOBS) && pipe2(gate, O_CLOEXEC)) {
		ret = -errno;
		vms_uffd_close(&u);
		free_ctl(ctl);
		return ret;
	}
	ctl->gate_fd = gate[1];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		ret = -errno;
		if (gate[0] >= 0)
			close(gate[0]);
		vms_uffd_close(&u);
		free_ctl(ctl);
		return ret;
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(sv[0]);
		close(sv[1]);
		if (gate[0] >= 0)
			close(gate[0]);
		vms_uffd_close(&u);
		free_ctl(ctl);
		return ret;
	}
	if (pid == 0) {
		struct vms_monitor_config mc = {
			.regions = ctl->regions,
			.nregions = ctl->nregions,
			.cmd_fd = sv[1],
			.main_uffd = u.fd,
			.vmm_pid = vmm,
			.swap_dir = ctl->swap_dir,
			.move_threads = opts->move_threads,
			.fault_around_pages = opts->fault_around_pages,
			.cleanup_interval_ms = opts->cleanup_interval_ms,
			.cleanup_step_bytes = opts->cleanup_step_bytes,
			.fault_cpu = opts->flags & VMS_CTL_FAULT_CPU ? opts->fault_cpu : -1,
			.flags = opts->flags,
			.test_gate_fd = gate[0],
		};

		close(sv[0]);
		_exit(vms_monitor_run(&mc) ? 1 : 0);
	}
	close(sv[1]);
	if (gate[0] >= 0)
		close(gate[0]);
	vms_uffd_close(&u);
	ctl->cmd_fd = sv[0];
	ctl->monitor_pid = pid;
	ctl->monitor_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	/* Readiness handshake: the monitor must answer Ready. */
	ret = vms_controller_status(ctl, &st);
	if (!ret && st.state != VMS_SWAP_READY)
		ret = -EPROTO;
	if (ret) {
		kill(pid, SIGKILL);
		reap(ctl);
		free_ctl(ctl);
		return ret;
	}
	*out = ctl;
	return 0;
}

int vms_controller_enable(struct vms_controller *ctl, struct vms_reply *reply)
{
	struct vms_freezer fz = { 0 };
	int ret = 0;

	pthread_mutex_lock(&ctl->lock);
	if (ctl->freeze_mode != VMS_FREEZE_NONE) {
		struct vms_freeze_opts fo = {
			.pids = ctl->freeze_mode == VMS_FREEZE_PIDS ? ctl->freeze_pids : NULL,
			.npids = ctl->nfreeze,
			.exclude = ctl->monitor_pid,
		};
		pid_t none = 0;

		if (fo.pids == NULL && ctl->freeze_mode == VMS_FREEZE_PIDS)
			fo.pids = &none; /* an empty explicit list */
		ret = vms_freeze(&fz, &fo);
		if (ret) {
			vms_log(VMS_LOG_ERROR, "controller: freezing the device processes: %d",
				ret);
			fail_reply(reply, ret);
		}
	}
	if (!ret)
		ret = command(ctl, VMS_CMD_ENABLE, 0, reply, NULL);
	vms_thaw(&fz);
	pthread_mutex_unlock(&ctl->lock);
	return ret;
}

static int locked_command(struct vms_controller *ctl, int cmd, uint32_t flags,
			  struct vms_reply *reply)
{
	int ret;

	pthread_mutex_lock(&ctl->lock);
	ret = command(ctl, cmd, flags, reply, NULL);
	pthread_mutex_unlock(&ctl->lock);
	return ret;
}

int vms_controller_trim(struct vms_controller *ctl, struct vms_reply *reply)
{
	return locked_command(ctl, VMS_CMD_TRIM, 0, reply);
}

int vms_controller_swap_out(struct vms_controller *ctl, struct vms_reply *reply)
{
	return locked_command(ctl, VMS_CMD_SWAP_OUT, 0, reply);
}

int vms_controller_disable(struct vms_controller *ctl, bool slow_file_cleanup,
			   struct vms_reply *reply)
{
	return locked_command(ctl, VMS_CMD_DISABLE,
			      slow_file_cleanup ? VMS_CMD_F_SLOW_FILE_CLEANUP : 0, reply);
}

int vms_controller_status(struct vms_controller *ctl, struct vms_swap_status *st)
{
	struct vms_reply r;
	int ret = command(ctl, VMS_CMD_STATUS, 0, &r, st);

	if (!ret && r.result != VMS_REPLY_ACCEPTED)
		ret = r.err ?: -EPROTO;
	return ret;
}

int vms_controller_info(struct vms_controller *ctl, struct vms_monitor_info *info)
{
	struct vms_reply r;
	int ret = command_info(ctl, VMS_CMD_INFO, 0, &r, NULL, info);

	if (!ret && r.result != VMS_REPLY_ACCEPTED)
		ret = r.err ?: -EPROTO;
	return ret;
}

/* Wait until the monitor exited, at most timeout_ms. */
static int wait_monitor(struct vms_controller *ctl, int timeout_ms)
{
	struct pollfd p = { .fd = ctl->monitor_pidfd, .events = POLLIN };
	int r;

	if (ctl->monitor_pidfd < 0) {
		reap(ctl);
		return 0;
	}
	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r == 1) {
		reap(ctl);
		return 0;
	}
	return -ETIMEDOUT;
}

int vms_controller_exit(struct vms_controller *ctl)
{
	struct vms_reply r;
	int ret;

	pthread_mutex_lock(&ctl->lock);
	ret = command(ctl, VMS_CMD_EXIT, 0, &r, NULL);
	if (!ret && r.result == VMS_REPLY_FAILED)
		ret = r.err;
	pthread_mutex_unlock(&ctl->lock);
	/* A reply came (or the monitor is gone): it exits promptly. */
	if (wait_monitor(ctl, ret == -ETIMEDOUT ? 0 : ctl->timeout_ms)) {
		vms_log(VMS_LOG_ERROR, "controller: the monitor did not exit; killing it");
		kill(ctl->monitor_pid, SIGKILL);
		reap(ctl);
		ret = -ETIMEDOUT;
	}
	free_ctl(ctl);
	return ret;
}

int vms_controller_device_forked(struct vms_controller *ctl, int timeout_ms)
{
	struct vms_uffd u = { .fd = -1 };
	struct vms_reply r;
	int sv[2], fds[3], pidfd, ret;

	if (timeout_ms <= 0)
		timeout_ms = VMS_CTL_DEVICE_TIMEOUT_MS;
	ret = vms_uffd_create(&u, UFFD_FEATURES, 0);
	if (ret)
		return ret;
	pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (pidfd < 0) {
		ret = -errno;
		vms_uffd_close(&u);
		return ret;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		ret = -errno;
		close(pidfd);
		vms_uffd_close(&u);
		return ret;
	}
	fds[0] = sv[1];
	fds[1] = u.fd;
	fds[2] = pidfd;
	ret = vms_proto_send_cmd(ctl->cmd_fd, VMS_CMD_PROCESS_FORKED, 0, fds, 3, timeout_ms);
	close(sv[1]);
	close(pidfd);
	/* The monitor holds the uffd now; this process never reads it. */
	vms_uffd_close(&u);
	if (!ret)
		ret = vms_proto_recv_reply(sv[0], timeout_ms, &r, NULL);
	close(sv[0]);
	if (ret == -ECONNRESET || ret == -ECONNREFUSED)
		ret = -EPIPE;
	if (ret)
		return ret;
	if (r.result == VMS_REPLY_ACCEPTED)
		return 0;
	return r.err ?: -EPROTO;
}

int vms_controller_set_freeze(struct vms_controller *ctl, enum vms_freeze_mode mode,
			      const pid_t *pids, size_t npids)
{
	pid_t *copy = NULL;

	if (mode != VMS_FREEZE_DESCENDANTS && mode != VMS_FREEZE_PIDS && mode != VMS_FREEZE_NONE)
		return -EINVAL;
	if (mode == VMS_FREEZE_PIDS && npids) {
		if (!pids)
			return -EINVAL;
		copy = malloc(npids * sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, pids, npids * sizeof(*copy));
	}
	pthread_mutex_lock(&ctl->lock);
	free(ctl->freeze_pids);
	ctl->freeze_pids = copy;
	ctl->nfreeze = mode == VMS_FREEZE_PIDS ? npids : 0;
	ctl->freeze_mode = mode;
	pthread_mutex_unlock(&ctl->lock);
	return 0;
}

pid_t vms_controller_monitor_pid(const struct vms_controller *ctl)
{
	return ctl->monitor_pid;
}

int vms_controller_command_fd(const struct vms_controller *ctl)
{
	return ctl->cmd_fd;
}

int vms_controller_test_release_job(struct vms_controller *ctl)
{
	char b = 1;

	if (ctl->gate_fd < 0)
		return -EINVAL;
	return write(ctl->gate_fd, &b, 1) == 1 ? 0 : -errno;
}

void vms_controller_forget(struct vms_controller *ctl)
{
	if (!ctl)
		return;
	/* Not free_ctl(): the mutex may be a copy of a locked one (after fork). */
	release_ctl(ctl);
}

int vms_reply_describe(const struct vms_reply *reply, char *buf, size_t len)
{
	int n;

	switch (reply->result) {
	case VMS_REPLY_ACCEPTED:
		n = snprintf(buf, len, "accepted");
		break;
	case VMS_REPLY_IGNORED:
		n = snprintf(buf, len, "ignored in state %s",
			     vms_swap_state_name(reply->state) ?: "?");
		break;
	case VMS_REPLY_FAILED:
		n = snprintf(buf, len, "failed: %s", strerror(-reply->err));
		break;
	default:
		return -EINVAL;
	}
	if (n < 0)
		return -EINVAL;
	return (size_t)n < len ? n : -ENOSPC;
}
