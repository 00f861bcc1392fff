// SPDX-License-Identifier: GPL-2.0-only
/*
 * page_handler_multi_process_test - one guest page faulted at once by two
 * processes, each through its own uffd: the VMM and a device process (spec 1.3,
 * 3.3). The first fault fills the shared page through the first process's uffd;
 * that wakes only the threads waiting on that uffd. The second fault's fill then
 * finds the page present (EEXIST on the second process's uffd) and must still
 * wake the thread waiting there, which then reads the bytes the first fill put
 * in (crosvm d37a6d71b: without the wake that thread waited for ever). For a
 * staged page, a swapped page and a never-written page, with either process
 * served first.
 *
 * Deterministic: no event loop runs. Both threads are blocked in their faults
 * (wchan) before anything is served, and the test serves them itself with
 * vms_ph_fault(), one uffd after the other, as the monitor would with the two
 * fault messages. The child keeps the parent's MAP_SHARED guest mappings (same
 * memfd, same addresses) across fork(), but not their registration (no
 * UFFD_FEATURE_EVENT_FORK), so it creates and registers its own uffd, as a
 * device process does, and passes it to the parent with SCM_RIGHTS.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vmmswap/pagesize.h>

#include "kselftest_harness.h"
#include "lib/handler_util.h"

#define NPAGES 4
#define TARGET 1 /* the page both processes fault on */

/* Parent <-> child messages (SOCK_SEQPACKET: one struct per message). */
enum { MSG_UFFD = 1, MSG_READ, MSG_STARTED, MSG_DONE };

struct mp_msg {
	int32_t kind;
	int32_t err;   /* MSG_UFFD: 0, or why the child has no uffd */
	uint64_t addr; /* MSG_READ: the page to read */
	uint64_t tag;  /* MSG_DONE: hu_page_tag() of what the child read */
};

static int send_msg(int sock, const struct mp_msg *m, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return n == sizeof(*m) ? 0 : -EMSGSIZE;
}

/*
 * One message; *fd (if fd) gets the fd it carried, or -1. 0, -EPIPE on EOF,
 * -ETIMEDOUT after deadline_ms (< 0: wait for ever), -EBADMSG if malformed.
 */
static int recv_msg(int sock, struct mp_msg *m, int *fd, int deadline_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c;
	ssize_t n;
	int ret;

	if (fd)
		*fd = -1;
	if (deadline_ms >= 0) {
		ret = hu_wait_readable(sock, deadline_ms);
		if (ret)
			return ret;
	}
	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		int got;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		memcpy(&got, CMSG_DATA(c), sizeof(got));
		if (fd && *fd < 0)
			*fd = got;
		else
			close(got);
	}
	if (n != sizeof(*m) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		return -EBADMSG;
	return 0;
}

/*
 * The device process: its own uffd over the guest regions, sent to the parent;
 * then, per MSG_READ, say MSG_STARTED and read the page (its only sleep from then
 * on is the fault), and send what it read. Ends at EOF.
 */
static void __attribute__((noreturn)) child_main(const struct hu_guest *g, int sock)
{
	struct vms_uffd u = { .fd = -1 };
	struct mp_msg m = { .kind = MSG_UFFD };
	int ret = hu_uffd_create(&u);

	if (!ret)
		ret = hu_uffd_register(&u, g);
	m.err = ret;
	if (send_msg(sock, &m, ret ? -1 : u.fd))
		_exit(1);
	for (;;) {
		ret = recv_msg(sock, &m, NULL, -1);
		if (ret == -EPIPE)
			_exit(0);
		if (ret || m.kind != MSG_READ)
			_exit(2);
		m.kind = MSG_STARTED;
		if (send_msg(sock, &m, -1))
			_exit(1);
		m.tag = hu_page_tag((const void *)(uintptr_t)m.addr);
		m.kind = MSG_DONE;
		if (send_msg(sock, &m, -1))
			_exit(1);
	}
}

FIXTURE(mp)
{
	struct hu_ctx c;
	pid_t child;
	int sock;		/* the parent's end */
	struct vms_uffd cu;	/* the child's uffd, as received */
	struct hu_reader r;	/* the parent's faulting thread: here, not on the */
	struct hu_thread t;	/* stack, as it may outlive a failed test body */
	bool reader_started;
};

FIXTURE_VARIANT(mp)
{
	bool child_first; /* the child's fault is served first (the parent gets EEXIST) */
};

FIXTURE_VARIANT_ADD(mp, parent_first)
{
	.child_first = false,
};

FIXTURE_VARIANT_ADD(mp, child_first)
{
	.child_first = true,
};

FIXTURE_SETUP(mp)
{
	self->child = -1;
	self->sock = -1;
	self->cu.fd = -1;
	self->reader_started = false;
	HU_CTX_SETUP(&self->c);
}

FIXTURE_TEARDOWN(mp)
{
	if (self->child > 0) {
		/* It may still wait in its fault if the test failed. */
		kill(self->child, SIGKILL);
		waitpid(self->child, NULL, 0);
	}
	if (self->sock >= 0)
		close(self->sock);
	vms_uffd_close(&self->cu);
	/* Closing the parent's uffd releases a reader still waiting on it. */
	vms_uffd_close(&self->c.u);
	if (self->reader_started)
		hu_thread_join(&self->t, HU_DEADLINE_MS);
	EXPECT_EQ(0, hu_ctx_destroy(&self->c));
}

/* Guest memory, the handler, and the device process with its uffd. */
static void start(struct __test_metadata *_metadata, FIXTURE_DATA(mp) *self)
{
	const uint64_t pages[] = { NPAGES };
	struct mp_msg m;
	int sv[2], fd;
	pid_t parent;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	parent = getpid();
	/* No thread runs in this process yet: the fork is clean. */
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		/*
		 * A child stuck in its fault must not outlive a test process that
		 * died (timeout) or skipped its teardown: it would hold the
		 * runner's stdout open for ever.
		 */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(3);
		close(sv[0]);
		child_main(&self->c.g, sv[1]);
	}
	close(sv[1]);
	self->sock = sv[0];
	ASSERT_EQ(0, recv_msg(self->sock, &m, &fd, HU_DEADLINE_MS));
	ASSERT_EQ(MSG_UFFD, m.kind);
	ASSERT_EQ(0, m.err);
	ASSERT_LE(0, fd);
	self->cu.fd = fd;
}

/* Stage page TARGET with its tag (the device process already exists, as at enable). */
static void stage(struct __test_metadata *_metadata, FIXTURE_DATA(mp) *self)
{
	uint64_t moved = 0;

	hu_tag_pages(&self->c, 0, TARGET, 1, 0);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, &moved));
	ASSERT_EQ(1, moved);
	ASSERT_EQ(1, hu_metrics(self->c.ph).staging_pages);
}

/* Wait for the child's next message, which must be of this kind. */
static int child_says(FIXTURE_DATA(mp) *self, int kind, struct mp_msg *m)
{
	int ret = recv_msg(self->sock, m, NULL, HU_DEADLINE_MS);

	return ret ? ret : m->kind == kind ? 0 : -EBADMSG;
}

/* The faulting thread of process 'child' (or the parent) finished and read want. */
static void finished(struct __test_metadata *_metadata, FIXTURE_DATA(mp) *self, bool child,
		     uint64_t want)
{
	struct mp_msg m;

	if (child) {
		ASSERT_EQ(0, child_says(self, MSG_DONE, &m))
			TH_LOG("the child's faulting thread did not finish");
		ASSERT_EQ(want, m.tag);
		return;
	}
	ASSERT_EQ(0, hu_thread_join(&self->t, HU_DEADLINE_MS))
		TH_LOG("the parent's faulting thread did not finish");
	self->reader_started = false;
	ASSERT_EQ(want, self->r.tag);
}

/*
 * Both processes fault on page TARGET; the test serves the first one's fault
 * through its uffd, then the second one's through the other uffd. Each thread
 * must finish within the deadline with the page's bytes (tag want).
 */
static void fault_from_both(struct __test_metadata *_metadata, FIXTURE_DATA(mp) *self,
			    const FIXTURE_VARIANT(mp) *variant, uint64_t want)
{
	uint8_t *page = hu_page(&self->c.g, 0, TARGET);
	uint64_t addr = (uint64_t)(uintptr_t)page;
	struct mp_msg m = { .kind = MSG_READ, .addr = addr };
	bool child_first = variant->child_first;
	struct vms_ph_metrics before, after;
	pid_t tid;

	before = hu_metrics(self->c.ph);
	self->r = (struct hu_reader){ .page = page };
	ASSERT_EQ(0, hu_thread_start(&self->t, hu_read_page, &self->r));
	self->reader_started = true;
	tid = hu_reader_tid(&self->r);
	ASSERT_EQ(0, hu_wait_blocked(tid, HU_DEADLINE_MS));
	ASSERT_EQ(0, send_msg(self->sock, &m, -1));
	ASSERT_EQ(0, child_says(self, MSG_STARTED, &m));
	ASSERT_EQ(0, hu_wait_task_blocked(self->child, self->child, HU_DEADLINE_MS));

	/* The first fill wakes the first process's thread only. */
	ASSERT_EQ(0, vms_ph_fault(self->c.ph, child_first ? self->cu.fd : self->c.u.fd, addr));
	finished(_metadata, self, child_first, want);
	ASSERT_EQ(0, hu_check(&self->c));
	/* ... and leaves the other one waiting: only its own uffd can wake it. */
	if (child_first) {
		ASSERT_EQ(0, hu_wait_blocked(tid, HU_DEADLINE_MS));
	} else {
		ASSERT_EQ(0, hu_wait_task_blocked(self->child, self->child, HU_DEADLINE_MS));
	}

	/* The second finds the page filled: EEXIST on its uffd, then the wake. */
	ASSERT_EQ(0, vms_ph_fault(self->c.ph, child_first ? self->c.u.fd : self->cu.fd, addr));
	finished(_metadata, self, !child_first, want);

	after = hu_metrics(self->c.ph);
	ASSERT_EQ(before.redundant_pages + 1, after.redundant_pages);
	ASSERT_EQ(0, after.staging_pages);
	ASSERT_EQ(0, after.swap_pages);
	ASSERT_EQ(want, hu_page_tag(hu_alias_page(&self->c.g, 0, TARGET)));
}

/* The device process exits cleanly at EOF: it was never stuck. */
static void stop_child(struct __test_metadata *_metadata, FIXTURE_DATA(mp) *self)
{
	int status;

	close(self->sock);
	self->sock = -1;
	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = -1;
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

TEST_F(mp, staged_page_filled_by_one_process_wakes_the_other)
{
	struct vms_ph_metrics m;

	start(_metadata, self);
	stage(_metadata, self);
	fault_from_both(_metadata, self, variant, hu_tag(0, TARGET, 0));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(1, m.copied_from_staging_pages);
	ASSERT_EQ(0, m.zeroed_pages);
	stop_child(_metadata, self);
}

TEST_F(mp, swapped_page_filled_by_one_process_wakes_the_other)
{
	struct vms_ph_metrics m;

	start(_metadata, self);
	stage(_metadata, self);
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	ASSERT_EQ(1, hu_metrics(self->c.ph).swap_pages);
	fault_from_both(_metadata, self, variant, hu_tag(0, TARGET, 0));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(1, m.copied_from_file_pages);
	ASSERT_EQ(0, m.copied_from_staging_pages);
	ASSERT_EQ(0, m.zeroed_pages);
	ASSERT_EQ(1, m.swap_file_slots); /* CLEARED: kept for trim */
	stop_child(_metadata, self);
}

TEST_F(mp, zero_page_filled_by_one_process_wakes_the_other)
{
	struct vms_ph_metrics m;

	start(_metadata, self);
	fault_from_both(_metadata, self, variant, 0);
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(1, m.zeroed_pages);
	ASSERT_EQ(0, m.copied_from_staging_pages);
	ASSERT_EQ(0, m.copied_from_file_pages);
	stop_child(_metadata, self);
}

TEST_HARNESS_MAIN
