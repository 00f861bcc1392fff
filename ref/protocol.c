// SPDX-License-Identifier: MIT
/*
 * protocol.c - command and reply messages over SOCK_SEQPACKET with SCM_RIGHTS
 * (protocol.h). No state; every function may be called from any thread.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vmmswap/clock.h>
#include <vmmswap/protocol.h>

static const char *const cmd_names[VMS_CMD_MAX] = {
	[VMS_CMD_ENABLE] = "Enable",
	[VMS_CMD_TRIM] = "Trim",
	[VMS_CMD_SWAP_OUT] = "SwapOut",
	[VMS_CMD_DISABLE] = "Disable",
	[VMS_CMD_STATUS] = "Status",
	[VMS_CMD_EXIT] = "Exit",
	[VMS_CMD_PROCESS_FORKED] = "ProcessForked",
	[VMS_CMD_INFO] = "Info",
};

const char *vms_cmd_name(int cmd)
{
	if (cmd <= 0 || cmd >= VMS_CMD_MAX)
		return NULL;
	return cmd_names[cmd];
}

size_t vms_cmd_nfds(int cmd)
{
	if (cmd <= 0 || cmd >= VMS_CMD_MAX)
		return 0;
	return cmd == VMS_CMD_PROCESS_FORKED ? 3 : 1;
}

/* poll one fd for 'events' until deadline (< 0: forever). 0, -ETIMEDOUT, -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int t = -1, r;

		if (deadline >= 0) {
			int64_t left = deadline - vms_now_ms();

			t = left < 0 ? 0 : left > 1000000 ? 1000000 : (int)left;
		}
		r = poll(&p, 1, t);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		return 0;
	}
}

static int send_msg(int sock, const void *buf, size_t len, const int *fds, size_t nfds, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VMS_PROTO_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > VMS_PROTO_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

int vms_proto_send_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
	return send_msg(sock, buf, len, fds, nfds, 0);
}

int vms_proto_send_cmd(int sock, int cmd, uint32_t flags, const int *fds, size_t nfds,
		       int timeout_ms)
{
	struct vms_msg_cmd m = {
		.magic = VMS_PROTO_MAGIC,
		.version = VMS_PROTO_VERSION,
		.cmd = (uint16_t)cmd,
		.flags = flags,
	};
	int64_t deadline = timeout_ms < 0 ? -1 : vms_now_ms() + timeout_ms;
	int ret;

	for (;;) {
		ret = send_msg(sock, &m, sizeof(m), fds, nfds, MSG_DONTWAIT);
		if (ret != -EAGAIN)
			return ret;
		ret = wait_fd(sock, POLLOUT, deadline);
		if (ret)
			return ret;
	}
}

enum vms_fd_kind vms_proto_fd_kind(int fd)
{
	char path[64], link[64];
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st))
		return VMS_FD_OTHER;
	if (S_ISSOCK(st.st_mode))
		return VMS_FD_SOCKET;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return VMS_FD_OTHER;
	link[n] = '\0';
	if (strcmp(link, "anon_inode:[userfaultfd]") == 0)
		return VMS_FD_UFFD;
	if (strcmp(link, "anon_inode:[pidfd]") == 0)
		return VMS_FD_PIDFD;
	/* pidfds on a pidfs kernel (6.9+) are not anon inodes. */
	if (strncmp(link, "pidfd:", 6) == 0)
		return VMS_FD_PIDFD;
	return VMS_FD_OTHER;
}

static int validate_cmd(const struct vms_msg_cmd *m, ssize_t len, const int *fds, size_t nfds)
{
	static const enum vms_fd_kind want[VMS_PROTO_MAX_FDS] = { VMS_FD_SOCKET, VMS_FD_UFFD,
								  VMS_FD_PIDFD };

	if (len != (ssize_t)sizeof(*m) || m->magic != VMS_PROTO_MAGIC)
		return -EBADMSG;
	if (m->version != VMS_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (!vms_cmd_name(m->cmd))
		return -EOPNOTSUPP;
	if (m->reserved)
		return -EINVAL;
	if (m->flags & ~(m->cmd == VMS_CMD_DISABLE ? VMS_CMD_F_SLOW_FILE_CLEANUP : 0u))
		return -EINVAL;
	if (nfds != vms_cmd_nfds(m->cmd))
		return -EINVAL;
	for (size_t i = 0; i < nfds; i++)
		if (vms_proto_fd_kind(fds[i]) != want[i])
			return -EINVAL;
	return 0;
}

/*
 * SEQPACKET returns 0 bytes both at end-of-file and for an empty message. Only
 * the first means that every sender is gone, and only then is POLLHUP set: an
 * empty message from a live sender is just malformed.
 */
static bool peer_gone(int sock)
{
	struct pollfd p = { .fd = sock, .events = POLLIN | POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP));
}

int vms_proto_recv_cmd(int sock, struct vms_msg_cmd *msg, int *fds, size_t *nfds, int *reply_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * (VMS_PROTO_MAX_FDS + 1))];
		struct cmsghdr align;
	} cbuf;
	/* One byte more than a command, so an oversized message shows. */
	char data[sizeof(struct vms_msg_cmd) + 1];
	struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf.buf,
		.msg_controllen = sizeof(cbuf.buf),
	};
	struct cmsghdr *c;
	size_t got = 0; /* fds that came, also those beyond VMS_PROTO_MAX_FDS */
	ssize_t n;
	int ret;

	*nfds = 0;
	*reply_fd = -1;
	memset(msg, 0, sizeof(*msg));
	do {
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (n == 0 && mh.msg_controllen == 0)
		return peer_gone(sock) ? -EPIPE : -EBADMSG;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		got += k;
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < VMS_PROTO_MAX_FDS)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	memcpy(msg, data, (size_t)n < sizeof(*msg) ? (size_t)n : sizeof(*msg));
	if (*nfds && vms_proto_fd_kind(fds[0]) == VMS_FD_SOCKET)
		*reply_fd = fds[0];
	if (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))
		return n > (ssize_t)sizeof(*msg) ? -EBADMSG : -EINVAL;
	ret = validate_cmd(msg, n, fds, got);
	return ret;
}

static int send_reply(int sock, const struct vms_reply *reply, const struct vms_swap_status *status,
		      const struct vms_monitor_info *info)
{
	struct vms_msg_reply m = {
		.magic = VMS_PROTO_MAGIC,
		.version = VMS_PROTO_VERSION,
		.reply = *reply,
	};

	if (status)
		m.status = *status;
	if (info)
		m.info = *info;
	return send_msg(sock, &m, sizeof(m), NULL, 0, MSG_DONTWAIT);
}

int vms_proto_send_reply(int sock, const struct vms_reply *reply,
			 const struct vms_swap_status *status)
{
	return send_reply(sock, reply, status, NULL);
}

int vms_proto_send_info_reply(int sock, const struct vms_reply *reply,
			      const struct vms_monitor_info *info)
{
	return send_reply(sock, reply, NULL, info);
}

int vms_proto_recv_reply(int sock, int timeout_ms, struct vms_reply *reply,
			 struct vms_swap_status *status)
{
	return vms_proto_recv_reply_info(sock, timeout_ms, reply, status, NULL);
}

int vms_proto_recv_reply_info(int sock, int timeout_ms, struct vms_reply *reply,
			      struct vms_swap_status *status, struct vms_monitor_info *info)
{
	int64_t deadline = timeout_ms < 0 ? -1 : vms_now_ms() + timeout_ms;
	struct vms_msg_reply m;
	ssize_t n;
	int ret;

	for (;;) {
		n = recv(sock, &m, sizeof(m), MSG_DONTWAIT | MSG_TRUNC);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return errno == ECONNRESET ? -EPIPE : -errno;
		ret = wait_fd(sock, POLLIN, deadline);
		if (ret)
			return ret;
	}
	if (n == 0)
		return -EPIPE;
	if (n != (ssize_t)sizeof(m) || m.magic != VMS_PROTO_MAGIC ||
	    m.version != VMS_PROTO_VERSION || m.reply.result < VMS_REPLY_ACCEPTED ||
	    m.reply.result > VMS_REPLY_FAILED || !vms_swap_state_name(m.reply.state) ||
	    !vms_swap_state_name(m.reply.new_state) || m.reply.err > 0 ||
	    m.reply.err < -4095 /* MAX_ERRNO: callers negate err */)
		return -EBADMSG;
	*reply = m.reply;
	if (status)
		*status = m.status;
	if (info)
		*info = m.info;
	return 0;
}
