// SPDX-License-Identifier: GPL-2.0-only
/*
 * uffd_remove_test - UFFD_EVENT_REMOVE on memfd MAP_SHARED memory: which discards
 * produce it, its range, how it blocks the remover, and how it interacts with the
 * fill ioctls and with fault events (spec 3.4, 5.6). The swap design tracks
 * balloon inflation through these events.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "lib/contract.h"

#define NPAGES	  8
#define NPRESENT  4	/* pages 0..3 hold data, 4..7 are missing */
#define SEED	  11

FIXTURE(rm)
{
	struct ct_env env;
	struct ct_uffd u;
	struct ct_mem m;
	size_t ps;
	struct ct_async a[2];
	struct ct_madv madv;
	struct ct_touch touch;
};

FIXTURE_SETUP(rm)
{
	ct_env_init(&self->env);
	CT_REQUIRE_KERNEL(&self->env, 4, 11, "UFFD_EVENT_REMOVE on shmem");
	self->ps = self->env.page_size;
	self->m.memfd = -1;
	self->u.fd = -1;
	CT_UFFD_OPEN_OR_SKIP(&self->u, &self->env, CT_VIA_ANY | CT_USER_MODE_OK,
			     UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE);
	ASSERT_EQ(0, ct_mem_create(&self->m, NPAGES * self->ps, true, 0));
	/* Populate through the alias: in the page cache, not mapped by m.addr. */
	ct_fill(self->m.alias, NPRESENT * self->ps, SEED);
	ASSERT_EQ(0, ct_register(self->u.fd, self->m.addr, self->m.len,
				 UFFDIO_REGISTER_MODE_MISSING, NULL));
}

/* Read events and serve faults until every helper thread has returned. */
static void unblock_all(FIXTURE_DATA(rm) *self)
{
	uint64_t deadline = ct_now_ms() + CT_DEADLINE_MS;

	while (ct_now_ms() < deadline) {
		struct uffd_msg msg;
		bool busy = false;

		while (ct_uffd_read_msg(self->u.fd, &msg) == 0) {
			void *pg;

			if (msg.event != UFFD_EVENT_PAGEFAULT)
				continue;
			pg = (void *)(uintptr_t)(msg.arg.pagefault.address & ~(self->ps - 1));
			if (ct_zeropage(self->u.fd, pg, self->ps, 0, NULL) == -EEXIST)
				ct_wake(self->u.fd, pg, self->ps);
		}
		for (int i = 0; i < 2; i++)
			if (self->a[i].started && !ct_async_done_within(&self->a[i], 5))
				busy = true;
		if (!busy)
			return;
	}
}

FIXTURE_TEARDOWN(rm)
{
	if (self->u.fd >= 0)
		unblock_all(self);
	ct_mem_destroy(&self->m);
	ct_uffd_close(&self->u);
}

static int start_madvise(FIXTURE_DATA(rm) *self, int i, void *addr, size_t len, int advice)
{
	self->madv = (struct ct_madv){ .addr = addr, .len = len, .advice = advice };
	return ct_async_start(&self->a[i], ct_madvise_fn, &self->madv);
}

static int start_touch(FIXTURE_DATA(rm) *self, int i, int pg)
{
	self->touch = (struct ct_touch){
		.addr = self->m.addr + pg * self->ps, .len = self->ps, .expect_pattern = 0,
	};
	return ct_async_start(&self->a[i], ct_touch_fn, &self->touch);
}

static void *page(FIXTURE_DATA(rm) *self, int pg)
{
	return self->m.addr + (size_t)pg * self->ps;
}

/* Expect the next event to be a MISSING fault on page pg; resolve it with a zero
 * page and check the faulting thread a[i] reads zeroes. */
static void expect_missing_fault(struct __test_metadata *_metadata, FIXTURE_DATA(rm) *self,
				 int i, int pg)
{
	struct uffd_msg msg;

	ASSERT_EQ(0, ct_uffd_next_msg(self->u.fd, &msg, CT_DEADLINE_MS))
		TH_LOG("no fault event for page %d", pg);
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	EXPECT_EQ((uintptr_t)page(self, pg), msg.arg.pagefault.address);
	EXPECT_EQ(0, msg.arg.pagefault.flags & (UFFD_PAGEFAULT_FLAG_WP |
						 UFFD_PAGEFAULT_FLAG_MINOR));
	ASSERT_EQ(0, ct_zeropage(self->u.fd, page(self, pg), self->ps, 0, NULL));
	ASSERT_TRUE(ct_async_done_within(&self->a[i], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[i].ret);
}

/* MADV_REMOVE gives a REMOVE with a page-exact range, rounded up (spec 3.4, exp2 "3"):
 * the handler relies on page-aligned ranges. */
TEST_F(rm, madv_remove_event_page_exact)
{
	struct uffd_msg msg;
	char buf[16];

	ASSERT_EQ(0, start_madvise(self, 0, page(self, 1), self->ps + 1, MADV_REMOVE));
	ASSERT_EQ(0, ct_uffd_next_msg(self->u.fd, &msg, CT_DEADLINE_MS));
	ASSERT_EQ(UFFD_EVENT_REMOVE, msg.event);
	EXPECT_EQ((uintptr_t)page(self, 1), msg.arg.remove.start);
	EXPECT_EQ((uintptr_t)page(self, 3), msg.arg.remove.end);
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[0].ret);
	/* Pages 1-2 are gone from the memfd, pages 0 and 3 keep their data. */
	ASSERT_EQ((ssize_t)sizeof(buf), pread(self->m.memfd, buf, sizeof(buf), self->ps));
	EXPECT_TRUE(ct_is_zero(buf, sizeof(buf)));
	EXPECT_EQ((off_t)self->ps, lseek(self->m.memfd, 0, SEEK_HOLE));
	EXPECT_EQ((off_t)(3 * self->ps), lseek(self->m.memfd, self->ps, SEEK_DATA));
	EXPECT_EQ(-1, ct_check(self->m.alias, self->ps, SEED));
}

/* The madvise caller blocks until the REMOVE is read (spec 3.4): a monitor that
 * stops reading stalls the guest's balloon. */
TEST_F(rm, remover_blocks_until_event_read)
{
	struct uffd_msg msg;

	ASSERT_EQ(0, start_madvise(self, 0, page(self, 2), self->ps, MADV_REMOVE));
	ASSERT_EQ(1, ct_uffd_wait_readable(self->u.fd, CT_DEADLINE_MS));
	EXPECT_FALSE(ct_async_done_within(&self->a[0], CT_NEGATIVE_MS))
		TH_LOG("madvise returned before its REMOVE was read");
	ASSERT_EQ(0, ct_uffd_read_msg(self->u.fd, &msg));
	ASSERT_EQ(UFFD_EVENT_REMOVE, msg.event);
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[0].ret);
}

/* MADV_DONTNEED on shmem also gives REMOVE, but the data stays in the page cache
 * (spec 5.6.6): freeing swap copies on it would lose data. */
TEST_F(rm, dontneed_event_data_survives)
{
	struct uffd_msg msg;
	char *buf = malloc(self->ps);
	char *want = malloc(2 * self->ps);

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, want);
	ct_fill(want, 2 * self->ps, SEED); /* what the setup wrote to pages 0-1 */
	ASSERT_EQ(0, start_madvise(self, 0, page(self, 1), self->ps, MADV_DONTNEED));
	ASSERT_EQ(0, ct_uffd_next_msg(self->u.fd, &msg, CT_DEADLINE_MS));
	ASSERT_EQ(UFFD_EVENT_REMOVE, msg.event);
	EXPECT_EQ((uintptr_t)page(self, 1), msg.arg.remove.start);
	EXPECT_EQ((uintptr_t)page(self, 2), msg.arg.remove.end);
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[0].ret);
	ASSERT_EQ((ssize_t)self->ps, pread(self->m.memfd, buf, self->ps, self->ps));
	EXPECT_EQ(0, memcmp(buf, want + self->ps, self->ps))
		TH_LOG("MADV_DONTNEED dropped the memfd's data");
	free(want);
	free(buf);
}

struct trunc_arg {
	int fd;
	off_t off, len;
	bool truncate;	/* ftruncate to off, then back to len; else punch [off, off+len) */
};

static long trunc_fn(void *arg)
{
	struct trunc_arg *t = arg;

	if (!t->truncate)
		return fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, t->off,
				 t->len);
	if (ftruncate(t->fd, t->off))
		return -1;
	return ftruncate(t->fd, t->len);
}

static void check_discard_no_event(struct __test_metadata *_metadata, FIXTURE_DATA(rm) *self,
				   bool truncate)
{
	struct trunc_arg t = {
		.fd = self->m.memfd, .off = (off_t)self->ps,
		.len = truncate ? (off_t)self->m.len : (off_t)self->ps, .truncate = truncate,
	};

	ASSERT_EQ(0, ct_async_start(&self->a[0], trunc_fn, &t));
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS))
		TH_LOG("the discard blocked (waiting for a uffd event?)");
	ASSERT_EQ(0, self->a[0].ret);
	EXPECT_EQ(0, ct_uffd_wait_readable(self->u.fd, 0)) TH_LOG("an event was queued");
	/* The discarded page faults again as MISSING; page 0 keeps its data. */
	ASSERT_EQ(0, start_touch(self, 1, 1));
	expect_missing_fault(_metadata, self, 1, 1);
	EXPECT_EQ(-1, ct_check(self->m.alias, self->ps, SEED));
}

/* fallocate(PUNCH_HOLE) on the memfd produces no REMOVE, and the page faults again as
 * MISSING (spec 5.6.6): the monitor's own punches are silent. */
TEST_F(rm, punch_hole_no_event)
{
	CT_REQUIRE_KERNEL(&self->env, 4, 14, "UFFDIO_ZEROPAGE on shmem");
	check_discard_no_event(_metadata, self, false);
}

/* ftruncate() shrinking the memfd produces no REMOVE; the page faults again as MISSING. */
TEST_F(rm, ftruncate_no_event)
{
	CT_REQUIRE_KERNEL(&self->env, 4, 14, "UFFDIO_ZEROPAGE on shmem");
	check_discard_no_event(_metadata, self, true);
}

/* While a REMOVE is unread, COPY/ZEROPAGE/CONTINUE/POISON/MOVE on that uffd fail with
 * EAGAIN and report "nothing done" (spec 5.6.2): the fill loop must not advance. */
TEST_F(rm, ops_eagain_while_remove_pending)
{
	const uint64_t optional = UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_POISON |
				  UFFD_FEATURE_MOVE;
	uint64_t offered = 0, features;
	struct ct_uffd u2;
	struct ct_mem m2;
	struct uffd_msg msg;
	char why[256] = "";
	char *src, *adst;
	int64_t f;
	int r;

	CT_REQUIRE_KERNEL(&self->env, 4, 18, "EAGAIN from fill ioctls while an event is pending");
	/* A uffd with every optional feature this kernel offers. */
	ASSERT_EQ(0, ct_uffd_offered(&self->env, CT_VIA_ANY | CT_USER_MODE_OK, &offered, NULL,
				     why, sizeof(why)));
	features = UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE | (offered & optional);
	ASSERT_EQ(0, ct_uffd_open(&u2, &self->env, CT_VIA_ANY | CT_USER_MODE_OK, features, why,
				  sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, ct_mem_create(&m2, 2 * self->ps, true, 0));
	src = ct_anon_map(2 * self->ps);
	adst = ct_anon_map(self->ps);
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, adst);
	ct_fill(src, 2 * self->ps, 5);
	ct_fill(m2.alias + self->ps, self->ps, 5); /* for CONTINUE: in cache, unmapped */
	ASSERT_EQ(0, ct_register(u2.fd, m2.addr, m2.len, UFFDIO_REGISTER_MODE_MISSING |
			 ((features & UFFD_FEATURE_MINOR_SHMEM) ? UFFDIO_REGISTER_MODE_MINOR : 0),
			 NULL));
	ASSERT_EQ(0, ct_register(u2.fd, adst, self->ps, UFFDIO_REGISTER_MODE_MISSING, NULL));
	/* The REMOVE comes from the fixture's memory, registered on u2 as well. */
	ASSERT_EQ(0, ct_unregister(self->u.fd, self->m.addr, self->m.len));
	ASSERT_EQ(0, ct_register(u2.fd, self->m.addr, self->m.len,
				 UFFDIO_REGISTER_MODE_MISSING, NULL));
	ct_uffd_close(&self->u);
	self->u = u2;

	ASSERT_EQ(0, start_madvise(self, 0, page(self, 1), self->ps, MADV_REMOVE));
	ASSERT_EQ(1, ct_uffd_wait_readable(self->u.fd, CT_DEADLINE_MS));

#define CHECK_EAGAIN(name, call)                                                           \
	do {                                                                               \
		f = 0;                                                                     \
		r = call;                                                                  \
		EXPECT_EQ(-EAGAIN, r) TH_LOG(name ": %s", strerror(-r));                   \
		EXPECT_TRUE(f == 0 || f == -EAGAIN) TH_LOG(name ": field %lld", (long long)f); \
		TH_LOG(name " while REMOVE pending: %s, field %lld (%s)", strerror(-r),   \
		       (long long)f, f == 0 ? "left 0" : f == -EAGAIN ? "-EAGAIN" : "?"); \
	} while (0)

	CHECK_EAGAIN("COPY", ct_copy(self->u.fd, m2.addr, src, self->ps, 0, &f));
	CHECK_EAGAIN("ZEROPAGE", ct_zeropage(self->u.fd, m2.addr, self->ps, 0, &f));
	if (features & UFFD_FEATURE_MINOR_SHMEM)
		CHECK_EAGAIN("CONTINUE", ct_continue(self->u.fd, m2.addr + self->ps, self->ps,
						     0, &f));
	else
		TH_LOG("MINOR_SHMEM not offered: CONTINUE not checked");
	if (features & UFFD_FEATURE_POISON)
		CHECK_EAGAIN("POISON", ct_poison(self->u.fd, m2.addr, self->ps, 0, &f));
	else
		TH_LOG("POISON not offered: not checked");
	if (features & UFFD_FEATURE_MOVE)
		CHECK_EAGAIN("MOVE", ct_move(self->u.fd, adst, src, self->ps, 0, &f));
	else
		TH_LOG("MOVE not offered: not checked");
#undef CHECK_EAGAIN
	/* Nothing was filled by the failed calls. */
	EXPECT_EQ(0, lseek(m2.memfd, 0, SEEK_HOLE));

	ASSERT_EQ(0, ct_uffd_read_msg(self->u.fd, &msg));
	ASSERT_EQ(UFFD_EVENT_REMOVE, msg.event);
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	/* Once the remover has resumed, the same COPY succeeds. */
	f = 0;
	EXPECT_EQ(0, ct_copy(self->u.fd, m2.addr, src, self->ps, 0, &f));
	EXPECT_EQ((int64_t)self->ps, f);
	munmap(src, 2 * self->ps);
	munmap(adst, self->ps);
	ct_mem_destroy(&m2);
}

/* A page fault is read before an older, still-pending REMOVE, and resolving it fails
 * with EAGAIN until the REMOVE is read (spec 5.6.3): the monitor must drain events
 * before retrying. */
TEST_F(rm, fault_read_before_older_remove)
{
	struct uffd_msg msg[2];
	ssize_t n;
	int r;

	CT_REQUIRE_KERNEL(&self->env, 4, 18, "EAGAIN from fill ioctls while an event is pending");
	ASSERT_EQ(0, start_madvise(self, 0, page(self, 1), self->ps, MADV_REMOVE));
	ASSERT_EQ(1, ct_uffd_wait_readable(self->u.fd, CT_DEADLINE_MS));
	/* The REMOVE is queued; now fault a missing page and wait until it sleeps. */
	ASSERT_EQ(0, start_touch(self, 1, 5));
	ASSERT_EQ(0, ct_async_wait_sleeping(&self->a[1], CT_DEADLINE_MS));
	r = ct_zeropage(self->u.fd, page(self, 5), self->ps, 0, NULL);
	EXPECT_EQ(-EAGAIN, r) TH_LOG("ZEROPAGE with a REMOVE pending: %s", strerror(-r));
	n = read(self->u.fd, msg, sizeof(msg));
	ASSERT_EQ((ssize_t)sizeof(msg), n) TH_LOG("read returned %zd", n);
	EXPECT_EQ(UFFD_EVENT_PAGEFAULT, msg[0].event);
	EXPECT_EQ(UFFD_EVENT_REMOVE, msg[1].event);
	TH_LOG("read order: %u then %u", msg[0].event, msg[1].event);
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	ASSERT_EQ(0, ct_zeropage(self->u.fd, page(self, 5), self->ps, 0, NULL));
	ASSERT_TRUE(ct_async_done_within(&self->a[1], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[1].ret);
}

/* No REMOVE for a range unregistered before the madvise: disabling swap stops the
 * events (and the remover does not block). */
TEST_F(rm, no_remove_after_unregister)
{
	ASSERT_EQ(0, ct_unregister(self->u.fd, page(self, 1), self->ps));
	ASSERT_EQ(0, start_madvise(self, 0, page(self, 1), self->ps, MADV_REMOVE));
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS))
		TH_LOG("madvise on an unregistered range blocked");
	EXPECT_EQ(0, self->a[0].ret);
	EXPECT_EQ(0, ct_uffd_wait_readable(self->u.fd, 0)) TH_LOG("an event was queued");
}

/* A REMOVE queued before UNREGISTER is still readable afterwards (spec 5.6.1,
 * b/272620051): the disabled loop must keep draining its uffds. */
TEST_F(rm, remove_readable_after_unregister)
{
	struct uffd_msg msg;

	ASSERT_EQ(0, start_madvise(self, 0, page(self, 2), self->ps, MADV_REMOVE));
	ASSERT_EQ(1, ct_uffd_wait_readable(self->u.fd, CT_DEADLINE_MS));
	ASSERT_EQ(0, ct_unregister(self->u.fd, self->m.addr, self->m.len));
	ASSERT_EQ(0, ct_uffd_next_msg(self->u.fd, &msg, CT_DEADLINE_MS));
	ASSERT_EQ(UFFD_EVENT_REMOVE, msg.event);
	EXPECT_EQ((uintptr_t)page(self, 2), msg.arg.remove.start);
	EXPECT_EQ((uintptr_t)page(self, 3), msg.arg.remove.end);
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[0].ret);
}

/* The COPY of the next test, on a helper thread: it blocks reading its source. */
struct blocked_copy {
	int fd;
	void *dst, *src;
	size_t len;
	int64_t field;
};

static long blocked_copy_fn(void *arg)
{
	struct blocked_copy *c = arg;

	return ct_copy(c->fd, c->dst, c->src, c->len, 0, &c->field);
}

/*
 * A REMOVE that starts while a COPY is already in the ioctl (here: the COPY waits
 * for its own source page, which a second uffd serves) still makes the COPY fail
 * with EAGAIN and fill nothing: the fill path checks for a pending event again
 * after it copied the source, under the lock (spec 5.6.2). Without that second
 * check the COPY would report a page filled that the remover is about to take.
 */
TEST_F(rm, copy_in_flight_when_remove_starts_gets_eagain)
{
	struct blocked_copy c = { .fd = self->u.fd, .dst = page(self, NPAGES - 1) };
	struct ct_uffd src_u = { .fd = -1 };
	struct uffd_msg msg;
	char why[256] = "";
	char *buf;
	int r;

	CT_REQUIRE_KERNEL(&self->env, 4, 18, "EAGAIN from a fill racing a new event");
	/* The source faults in the kernel's copy: the source uffd must take those. */
	r = ct_uffd_open(&src_u, &self->env, CT_VIA_ANY, 0, why, sizeof(why));
	if (r == CT_SKIP)
		SKIP(return, "kernel-mode faults not permitted: %s", why);
	ASSERT_EQ(0, r) TH_LOG("%s", why);
	c.len = self->ps;
	c.src = ct_anon_map(self->ps);
	buf = ct_anon_map(self->ps);
	ASSERT_NE(NULL, c.src);
	ASSERT_NE(NULL, buf);
	ct_fill(buf, self->ps, SEED + 1);
	ASSERT_EQ(0, ct_register(src_u.fd, c.src, self->ps, UFFDIO_REGISTER_MODE_MISSING, NULL));

	/* The COPY starts with no event pending, and blocks on its source. */
	ASSERT_EQ(0, ct_async_start(&self->a[0], blocked_copy_fn, &c));
	ASSERT_EQ(0, ct_uffd_next_msg(src_u.fd, &msg, CT_DEADLINE_MS));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	/* Now a REMOVE of the destination: queued, its remover waits for the read. */
	ASSERT_EQ(0, start_madvise(self, 1, c.dst, self->ps, MADV_REMOVE));
	ASSERT_EQ(1, ct_uffd_wait_readable(self->u.fd, CT_DEADLINE_MS));
	/* Serve the source (another uffd: no event pending there): the COPY goes on. */
	ASSERT_EQ(0, ct_copy(src_u.fd, c.src, buf, self->ps, 0, NULL));
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	EXPECT_EQ(-EAGAIN, self->a[0].ret) TH_LOG("COPY: %ld", self->a[0].ret);
	EXPECT_TRUE(c.field == 0 || c.field == -EAGAIN) TH_LOG("field %lld", (long long)c.field);
	/* The remover finishes once its event is read; the page is not there. */
	ASSERT_EQ(0, ct_uffd_next_msg(self->u.fd, &msg, CT_DEADLINE_MS));
	ASSERT_EQ(UFFD_EVENT_REMOVE, msg.event);
	ASSERT_TRUE(ct_async_done_within(&self->a[1], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[1].ret);
	{
		off_t off = (off_t)((NPAGES - 1) * self->ps);
		off_t d = lseek(self->m.memfd, off, SEEK_DATA);

		EXPECT_TRUE(d < 0 ? errno == ENXIO : d != off) TH_LOG("the page has data");
	}
	ct_uffd_close(&src_u);
	munmap(c.src, self->ps);
	munmap(buf, self->ps);
}

TEST_HARNESS_MAIN
