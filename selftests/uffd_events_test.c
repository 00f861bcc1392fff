// SPDX-License-Identifier: GPL-2.0-only
/*
 * uffd_events_test - the non-fault events on memfd MAP_SHARED memory (FORK, REMAP,
 * UNMAP) and how read(2) hands out queued messages. A monitor that follows what a
 * VMM does to guest memory after registering it (fork() of a device process, mremap()
 * or munmap() of a region) learns about it only through these events.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "lib/contract.h"

#define NPAGES	 4
#define NTHREADS 3
#define SEED	 31	/* the fill served for faults */
#define SEED0	 32	/* page 0, written before the event */
#define FEATURES (UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE)

FIXTURE(ev)
{
	struct ct_env env;
	struct ct_uffd u;
	struct ct_mem m;
	size_t ps;
	char *src;		/* private pages, each with pattern SEED */
	char *hole;		/* the mremap() destination, while it is not the range */
	int child_fd;		/* the uffd of a fork()ed child, from its FORK event */
	pid_t child;
	struct ct_async a[NTHREADS];
	struct ct_touch t[NTHREADS];
};

FIXTURE_SETUP(ev)
{
	ct_env_init(&self->env);
	self->ps = self->env.page_size;
	self->m.memfd = -1;
	self->u.fd = -1;
	self->child_fd = -1;
	CT_REQUIRE_KERNEL(&self->env, 4, 11, "non-cooperative uffd events on shmem");
	ASSERT_EQ(0, ct_mem_create(&self->m, NPAGES * self->ps, true, 0));
	/* Page 0 holds data (in the page cache, not mapped at m.addr); 1.. are missing. */
	ct_fill(self->m.alias, self->ps, SEED0);
	self->src = ct_anon_map(NPAGES * self->ps);
	ASSERT_NE(NULL, self->src);
	for (int i = 0; i < NPAGES; i++)
		ct_fill(self->src + i * self->ps, self->ps, SEED);
}

FIXTURE_TEARDOWN(ev)
{
	/*
	 * Closing the uffds first releases every thread still waiting in a fault or for
	 * an event to be read (fork, mremap, munmap), and keeps the munmap below from
	 * queueing an UNMAP event nobody reads.
	 */
	if (self->child_fd >= 0)
		close(self->child_fd);
	ct_uffd_close(&self->u);
	for (int i = 0; i < NTHREADS; i++)
		if (self->a[i].started && !ct_async_done_within(&self->a[i], CT_DEADLINE_MS))
			TH_LOG("helper thread %d did not finish", i);
	if (self->child > 0) {
		int status;

		if (ct_waitpid_deadline(self->child, &status, CT_DEADLINE_MS))
			TH_LOG("the child did not exit");
	}
	if (self->hole)
		munmap(self->hole, self->m.len);
	if (self->src)
		munmap(self->src, NPAGES * self->ps);
	ct_mem_destroy(&self->m);
}

static char *page(FIXTURE_DATA(ev) *self, int pg)
{
	return self->m.addr + (size_t)pg * self->ps;
}

/* Open self->u with FEATURES | 'more' and register the whole range MISSING. */
#define OPEN_AND_REGISTER(more)                                                        \
	do {                                                                           \
		CT_UFFD_OPEN_OR_SKIP(&self->u, &self->env, CT_VIA_ANY | CT_USER_MODE_OK,   \
				     FEATURES | (more));                               \
		ASSERT_EQ(0, ct_register(self->u.fd, self->m.addr, self->m.len,        \
					 UFFDIO_REGISTER_MODE_MISSING, NULL));         \
	} while (0)

/* Expect a MISSING fault on 'addr' as the next message on 'fd'. */
static void expect_fault_at(struct __test_metadata *_metadata, int fd, void *addr)
{
	struct uffd_msg msg;

	ASSERT_EQ(0, ct_uffd_next_msg(fd, &msg, CT_DEADLINE_MS))
		TH_LOG("no fault event for %p", addr);
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	EXPECT_EQ((uintptr_t)addr, msg.arg.pagefault.address);
	EXPECT_EQ(0, msg.arg.pagefault.flags & (UFFD_PAGEFAULT_FLAG_WP |
						 UFFD_PAGEFAULT_FLAG_MINOR));
}

struct fork_arg {
	char *data;		/* a page holding pattern SEED0 */
	char *missing;		/* a missing registered page, to be served with SEED */
	size_t ps;
};

/* fork(); the child checks both pages and exits 0, 1 (missing page wrong) or 2. */
static long fork_fn(void *arg)
{
	struct fork_arg *f = arg;
	pid_t pid = fork();

	if (pid == 0) {
		if (ct_check(f->data, f->ps, SEED0) >= 0)
			_exit(2);
		_exit(ct_check(f->missing, f->ps, SEED) < 0 ? 0 : 1);
	}
	return pid;
}

/* With UFFD_FEATURE_EVENT_FORK, fork() queues a FORK event carrying a new uffd and
 * waits until it is read; the child's range stays registered on the new uffd, its
 * fault arrives there (not on the parent's) and is served through it: how a monitor
 * follows a device process forked after registration. */
TEST_F(ev, fork_event_child_faults_on_new_uffd)
{
	struct fork_arg arg = { .data = page(self, 0), .missing = page(self, 1),
				.ps = self->ps };
	struct uffd_msg msg;
	int64_t f = 0;
	int status = 0, r;

	OPEN_AND_REGISTER(UFFD_FEATURE_EVENT_FORK);
	ASSERT_EQ(0, ct_async_start(&self->a[0], fork_fn, &arg));
	ASSERT_EQ(1, ct_uffd_wait_readable(self->u.fd, CT_DEADLINE_MS)) TH_LOG("no FORK event");
	EXPECT_FALSE(ct_async_done_within(&self->a[0], CT_NEGATIVE_MS))
		TH_LOG("fork() returned before its FORK event was read");
	ASSERT_EQ(0, ct_uffd_read_msg(self->u.fd, &msg));
	ASSERT_EQ(UFFD_EVENT_FORK, msg.event);
	self->child_fd = (int)msg.arg.fork.ufd;
	ASSERT_LE(0, self->child_fd);
	EXPECT_NE(self->u.fd, self->child_fd);
	EXPECT_LE(0, fcntl(self->child_fd, F_GETFD)) TH_LOG("the FORK event's fd is not open");
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	ASSERT_LT(0, self->a[0].ret) TH_LOG("fork: %s", strerror(self->a[0].err));
	self->child = (pid_t)self->a[0].ret;

	/* The child read page 0 without a fault and now waits on page 1. */
	expect_fault_at(_metadata, self->child_fd, page(self, 1));
	EXPECT_EQ(0, ct_uffd_wait_readable(self->u.fd, 0))
		TH_LOG("the child's fault reached the parent's uffd");
	ASSERT_EQ(0, ct_copy(self->child_fd, page(self, 1), self->src, self->ps, 0, &f));
	EXPECT_EQ((int64_t)self->ps, f);
	r = ct_waitpid_deadline(self->child, &status, CT_DEADLINE_MS);
	self->child = 0; /* reaped, or killed and reaped */
	ASSERT_EQ(0, r) TH_LOG("the child did not exit after its page was served");
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("the child read wrong bytes on page %d", WEXITSTATUS(status) == 2 ? 0 : 1);
	/* The page was filled in the shared memfd: the parent sees it too. */
	EXPECT_EQ(-1, ct_check(self->m.alias + self->ps, self->ps, SEED));
}

struct remap_arg {
	void *from, *to;
	size_t len;
};

static long remap_fn(void *arg)
{
	struct remap_arg *r = arg;
	void *p = mremap(r->from, r->len, r->len, MREMAP_MAYMOVE | MREMAP_FIXED, r->to);

	return p == MAP_FAILED ? -1 : (long)(uintptr_t)p;
}

/* With UFFD_FEATURE_EVENT_REMAP, mremap() of a registered range queues a REMAP event
 * with the old address, the new one and the length, and waits until it is read; the
 * range stays registered at the new address, where faults arrive and are served: how
 * a monitor follows guest memory the VMM moves. */
TEST_F(ev, remap_event_then_faults_at_new_address)
{
	struct remap_arg arg;
	struct uffd_msg msg;
	char *old = self->m.addr;
	int64_t f = 0;

	OPEN_AND_REGISTER(UFFD_FEATURE_EVENT_REMAP);
	self->hole = mmap(NULL, self->m.len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->hole);
	arg = (struct remap_arg){ .from = old, .to = self->hole, .len = self->m.len };
	ASSERT_EQ(0, ct_async_start(&self->a[0], remap_fn, &arg));
	ASSERT_EQ(1, ct_uffd_wait_readable(self->u.fd, CT_DEADLINE_MS)) TH_LOG("no REMAP event");
	EXPECT_FALSE(ct_async_done_within(&self->a[0], CT_NEGATIVE_MS))
		TH_LOG("mremap() returned before its REMAP event was read");
	ASSERT_EQ(0, ct_uffd_read_msg(self->u.fd, &msg));
	ASSERT_EQ(UFFD_EVENT_REMAP, msg.event);
	EXPECT_EQ((uintptr_t)old, msg.arg.remap.from);
	EXPECT_EQ((uintptr_t)self->hole, msg.arg.remap.to);
	EXPECT_EQ(self->m.len, msg.arg.remap.len);
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	ASSERT_EQ((long)(uintptr_t)self->hole, self->a[0].ret)
		TH_LOG("mremap: %s", strerror(self->a[0].err));
	self->m.addr = self->hole;
	self->hole = NULL;
	EXPECT_EQ(0, ct_uffd_wait_readable(self->u.fd, 0)) TH_LOG("another event was queued");

	self->t[1] = (struct ct_touch){ .addr = page(self, 2), .len = self->ps, .seed = SEED,
					.expect_pattern = 1 };
	ASSERT_EQ(0, ct_async_start(&self->a[1], ct_touch_fn, &self->t[1]));
	expect_fault_at(_metadata, self->u.fd, page(self, 2));
	ASSERT_EQ(0, ct_copy(self->u.fd, page(self, 2), self->src, self->ps, 0, &f));
	EXPECT_EQ((int64_t)self->ps, f);
	ASSERT_TRUE(ct_async_done_within(&self->a[1], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[1].ret) TH_LOG("the served page did not hold its bytes");
	EXPECT_EQ(-1, ct_check(self->m.alias + 2 * self->ps, self->ps, SEED));
}

static long unmap_fn(void *arg)
{
	struct ct_madv *m = arg;

	return munmap(m->addr, m->len);
}

/* With UFFD_FEATURE_EVENT_UNMAP, munmap() of part of a registered range queues an
 * UNMAP event with that range and waits until it is read: how a monitor learns that
 * guest memory is gone before it fills it. */
TEST_F(ev, unmap_event_range)
{
	struct ct_madv arg = { .addr = page(self, 2), .len = self->ps };
	struct uffd_msg msg;

	OPEN_AND_REGISTER(UFFD_FEATURE_EVENT_UNMAP);
	ASSERT_EQ(0, ct_async_start(&self->a[0], unmap_fn, &arg));
	ASSERT_EQ(1, ct_uffd_wait_readable(self->u.fd, CT_DEADLINE_MS)) TH_LOG("no UNMAP event");
	EXPECT_FALSE(ct_async_done_within(&self->a[0], CT_NEGATIVE_MS))
		TH_LOG("munmap() returned before its UNMAP event was read");
	ASSERT_EQ(0, ct_uffd_read_msg(self->u.fd, &msg));
	ASSERT_EQ(UFFD_EVENT_UNMAP, msg.event);
	EXPECT_EQ((uintptr_t)page(self, 2), msg.arg.remove.start);
	EXPECT_EQ((uintptr_t)page(self, 3), msg.arg.remove.end);
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[0].ret) TH_LOG("munmap: %s", strerror(self->a[0].err));
	EXPECT_EQ(0, ct_uffd_wait_readable(self->u.fd, 0)) TH_LOG("another event was queued");
	/* The rest of the range stays registered: page 3 still faults, and is served. */
	self->t[1] = (struct ct_touch){ .addr = page(self, 3), .len = self->ps, .seed = SEED,
					.expect_pattern = 1 };
	ASSERT_EQ(0, ct_async_start(&self->a[1], ct_touch_fn, &self->t[1]));
	expect_fault_at(_metadata, self->u.fd, page(self, 3));
	ASSERT_EQ(0, ct_copy(self->u.fd, page(self, 3), self->src, self->ps, 0, NULL));
	ASSERT_TRUE(ct_async_done_within(&self->a[1], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[1].ret) TH_LOG("the served page did not hold its bytes");
}

/* read(2) hands out as many queued messages as fit in its buffer, one for a buffer of
 * one, and fails with EAGAIN once none is left: the monitor reads events in batches. */
TEST_F(ev, read_hands_out_queued_messages)
{
	struct uffd_msg msgs[8];
	unsigned int seen = 0;
	int64_t f = 0;
	ssize_t n;

	OPEN_AND_REGISTER(0);
	for (int i = 0; i < NTHREADS; i++) {
		self->t[i] = (struct ct_touch){ .addr = page(self, i + 1), .len = self->ps,
						.seed = SEED, .expect_pattern = 1 };
		ASSERT_EQ(0, ct_async_start(&self->a[i], ct_touch_fn, &self->t[i]));
	}
	/* A thread sleeping in its fault has its message queued. */
	for (int i = 0; i < NTHREADS; i++) {
		ASSERT_EQ(0, ct_async_wait_sleeping(&self->a[i], CT_DEADLINE_MS))
			TH_LOG("thread %d does not sleep in its fault", i);
	}
	n = read(self->u.fd, msgs, sizeof(msgs[0]));
	ASSERT_EQ((ssize_t)sizeof(msgs[0]), n) TH_LOG("read of one: %zd", n);
	n = read(self->u.fd, msgs + 1, 7 * sizeof(msgs[0]));
	ASSERT_EQ((ssize_t)((NTHREADS - 1) * sizeof(msgs[0])), n) TH_LOG("read of 7: %zd", n);
	EXPECT_EQ(-1, read(self->u.fd, msgs, sizeof(msgs)));
	EXPECT_EQ(EAGAIN, errno) TH_LOG("an empty non-blocking uffd: %s", strerror(errno));
	for (int i = 0; i < NTHREADS; i++) {
		uintptr_t off = (uintptr_t)msgs[i].arg.pagefault.address -
				(uintptr_t)self->m.addr;

		ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msgs[i].event);
		ASSERT_GT(self->m.len, off);
		seen |= 1u << (off / self->ps);
	}
	EXPECT_EQ(((1u << NTHREADS) - 1) << 1, seen) TH_LOG("pages faulted: 0x%x", seen);
	/* One COPY over the three pages releases the three threads. */
	ASSERT_EQ(0, ct_copy(self->u.fd, page(self, 1), self->src, NTHREADS * self->ps, 0, &f));
	EXPECT_EQ((int64_t)(NTHREADS * self->ps), f);
	for (int i = 0; i < NTHREADS; i++) {
		ASSERT_TRUE(ct_async_done_within(&self->a[i], CT_DEADLINE_MS));
		EXPECT_EQ(0, self->a[i].ret) TH_LOG("page %d did not hold its bytes", i + 1);
	}
}

TEST_HARNESS_MAIN
