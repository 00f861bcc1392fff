// SPDX-License-Identifier: MIT
/*
 * proto_cmd - fuzz target for the monitor's command decoding (ref/protocol.c:
 * vms_proto_recv_cmd), the trust boundary between the monitor and every process that
 * holds the command socket: the VMM and each device process (ProcessForked, with its
 * uffd and pidfd). It then does what ref/monitor_commands.c does with a rejected message:
 * close the fds that are not the reply socket and send the error reply on it.
 *
 * Input: byte 0 = how many fds travel with the message (0..5), bytes 1..5 = the kind
 * of each (reply socket, userfaultfd, pidfd, regular file, eventfd), the rest = the
 * message; sent as one SOCK_SEQPACKET datagram with SCM_RIGHTS.
 *
 * Asserts: a message is accepted exactly when protocol.h's rules hold (size, magic,
 * version, command, flags for that command, reserved zero, exact fd count and fd
 * kinds); a rejection is one of the documented errnos, never -EPIPE (the sender is
 * alive, so even an empty datagram is -EBADMSG, not end-of-file); *msg holds the bytes sent; every fd that arrived (up to
 * VMS_PROTO_MAX_FDS) is handed over open and close-on-exec, in order; *reply_fd is
 * fds[0] when that is a socket, else -1; the error reply reaches the sender's end and
 * decodes; nothing leaks an fd.
 */
#include <linux/userfaultfd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <vmmswap/protocol.h>

#include "fuzz/fuzz.h"

#define MAX_SEND_FDS 5 /* more than the monitor keeps, and more than its buffer holds */

enum kind { K_REPLY, K_UFFD, K_PIDFD, K_FILE, K_EVENTFD, NR_KINDS };

static struct {
	bool ready;
	int tx, rx;			 /* command socket: a sender's end, the monitor's */
	int fd[NR_KINDS];		 /* one fd of each kind (K_REPLY: one per run) */
	enum vms_fd_kind want[NR_KINDS]; /* what each kind is */
	struct fuzz_fds fds;		 /* for the leak check */
} g;

static void setup(void)
{
	int sv[2];

	FUZZ_CHECK(!socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), "socketpair: %s",
		   strerror(errno));
	g.tx = sv[0];
	g.rx = sv[1];
	g.fd[K_REPLY] = -1;
	g.want[K_REPLY] = VMS_FD_SOCKET;

	/* Without a uffd or pidfd here, those kinds stand in as VMS_FD_OTHER. */
	g.fd[K_UFFD] = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (g.fd[K_UFFD] < 0)
		g.fd[K_UFFD] =
			(int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	g.want[K_UFFD] = g.fd[K_UFFD] >= 0 ? VMS_FD_UFFD : VMS_FD_OTHER;
	if (g.fd[K_UFFD] < 0)
		g.fd[K_UFFD] = eventfd(0, EFD_CLOEXEC);

	g.fd[K_PIDFD] = (int)syscall(SYS_pidfd_open, getpid(), 0);
	g.want[K_PIDFD] = g.fd[K_PIDFD] >= 0 ? VMS_FD_PIDFD : VMS_FD_OTHER;
	if (g.fd[K_PIDFD] < 0)
		g.fd[K_PIDFD] = eventfd(0, EFD_CLOEXEC);

	g.fd[K_FILE] = open("/dev/null", O_RDWR | O_CLOEXEC);
	g.want[K_FILE] = VMS_FD_OTHER;
	g.fd[K_EVENTFD] = eventfd(0, EFD_CLOEXEC);
	g.want[K_EVENTFD] = VMS_FD_OTHER;
	for (int k = K_UFFD; k < NR_KINDS; k++) {
		FUZZ_CHECK(g.fd[k] >= 0, "fd of kind %d: %s", k, strerror(errno));
		FUZZ_CHECK(vms_proto_fd_kind(g.fd[k]) == g.want[k], "kind %d seen as %d", k,
			   vms_proto_fd_kind(g.fd[k]));
	}
	fuzz_fds_mark(&g.fds);
	g.ready = true;
}

static void send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_SEND_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

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
	n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	FUZZ_CHECK(n == (ssize_t)len, "sendmsg of %zu bytes, %zu fds: %zd (%s)", len, nfds, n,
		   strerror(errno));
}

/* protocol.h's rules, written down independently of protocol.c. */
static bool valid_cmd(const struct vms_msg_cmd *m, size_t len, const int *kinds, size_t nsent)
{
	static const enum vms_fd_kind want[] = { VMS_FD_SOCKET, VMS_FD_UFFD, VMS_FD_PIDFD };
	size_t need;

	if (len != sizeof(*m) || m->magic != VMS_PROTO_MAGIC || m->version != VMS_PROTO_VERSION)
		return false;
	if (m->cmd < VMS_CMD_ENABLE || m->cmd > VMS_CMD_INFO || m->reserved)
		return false;
	if (m->flags & ~(m->cmd == VMS_CMD_DISABLE ? VMS_CMD_F_SLOW_FILE_CLEANUP : 0u))
		return false;
	need = m->cmd == VMS_CMD_PROCESS_FORKED ? 3 : 1;
	if (nsent != need)
		return false;
	for (size_t i = 0; i < need; i++) {
		if (g.want[kinds[i]] != want[i])
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sent[MAX_SEND_FDS], kinds[MAX_SEND_FDS], peers[MAX_SEND_FDS];
	int fds[VMS_PROTO_MAX_FDS], reply_fd, ret;
	struct vms_msg_cmd msg, want_msg = { 0 };
	size_t nsent, nfds, len, i;
	const uint8_t *payload;
	bool valid;

	if (!g.ready)
		setup();
	if (size < 1 + MAX_SEND_FDS)
		return 0;
	nsent = data[0] % (MAX_SEND_FDS + 1);
	for (i = 0; i < nsent; i++) {
		int sv[2];

		kinds[i] = data[1 + i] % NR_KINDS;
		peers[i] = -1;
		if (kinds[i] != K_REPLY) {
			sent[i] = g.fd[kinds[i]];
			continue;
		}
		FUZZ_CHECK(!socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv),
			   "socketpair: %s", strerror(errno));
		peers[i] = sv[0];
		sent[i] = sv[1];
	}
	payload = data + 1 + MAX_SEND_FDS;
	len = size - 1 - MAX_SEND_FDS;
	memcpy(&want_msg, payload, len < sizeof(want_msg) ? len : sizeof(want_msg));

	send_with_fds(g.tx, payload, len, sent, nsent);
	for (i = 0; i < nsent; i++) {
		if (kinds[i] == K_REPLY)
			close(sent[i]); /* the datagram holds its own reference */
	}
	ret = vms_proto_recv_cmd(g.rx, &msg, fds, &nfds, &reply_fd);
	valid = valid_cmd(&want_msg, len, kinds, nsent);

	FUZZ_CHECK(ret == 0 || ret == -EBADMSG || ret == -EPROTONOSUPPORT || ret == -EOPNOTSUPP ||
			   ret == -EINVAL || ret == -EPIPE,
		   "undocumented result %d", ret);
	/* The sender is alive: even an empty message is malformed, not end-of-file. */
	FUZZ_CHECK(ret != -EPIPE, "end-of-file reported for %zu bytes, %zu fds from a live sender",
		   len, nsent);
	FUZZ_CHECK(len || nsent || ret == -EBADMSG, "result %d for an empty message", ret);
	FUZZ_CHECK((ret == 0) == valid, "result %d but the message is %svalid (%zu bytes, %zu fds)",
		   ret, valid ? "" : "in", len, nsent);
	FUZZ_CHECK(!memcmp(&msg, &want_msg, sizeof(msg)), "*msg is not what was sent");
	FUZZ_CHECK(nfds == (nsent < VMS_PROTO_MAX_FDS ? nsent : VMS_PROTO_MAX_FDS),
		   "%zu fds handed over of %zu sent", nfds, nsent);
	for (i = 0; i < nfds; i++) {
		int fl = fcntl(fds[i], F_GETFD);

		FUZZ_CHECK(fl >= 0 && (fl & FD_CLOEXEC), "fd %zu: flags %d", i, fl);
		FUZZ_CHECK(vms_proto_fd_kind(fds[i]) == g.want[kinds[i]], "fd %zu out of order", i);
	}
	if (nfds && kinds[0] == K_REPLY)
		FUZZ_CHECK(reply_fd == fds[0], "reply_fd %d, fds[0] %d", reply_fd, fds[0]);
	else
		FUZZ_CHECK(reply_fd == -1, "reply_fd %d without a reply socket", reply_fd);

	if (ret && reply_fd >= 0) {
		/* As the monitor does: FAILED with the errno, on the reply socket. */
		struct vms_reply r = { .result = VMS_REPLY_FAILED,
				       .state = VMS_SWAP_ACTIVE,
				       .new_state = VMS_SWAP_ACTIVE,
				       .err = ret };
		struct vms_swap_status st;
		struct vms_reply got;
		int rr;

		rr = vms_proto_send_reply(reply_fd, &r, NULL);
		FUZZ_CHECK(!rr, "error reply not sent: %d", rr);
		rr = vms_proto_recv_reply(peers[0], 0, &got, &st);
		FUZZ_CHECK(!rr && !memcmp(&got, &r, sizeof(r)), "error reply: %d", rr);
	}
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	for (i = 0; i < nsent; i++) {
		if (peers[i] >= 0)
			close(peers[i]);
	}
	fuzz_fds_check(&g.fds);
	return 0;
}
