// SPDX-License-Identifier: GPL-2.0-only
/*
 * uffd_missing_test - MISSING mode on memfd MAP_SHARED memory (guest memory in the
 * swap design): how faults are resolved and who gets woken (spec 3.3, 5.6).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "lib/contract.h"

#define NPAGES 4

FIXTURE(missing)
{
	struct ct_env env;
	struct ct_uffd u;
	struct ct_mem m;
	size_t ps;
	char *src;		/* private source pages with a pattern */
	struct ct_async a[2];
	struct ct_touch t[2];
};

FIXTURE_SETUP(missing)
{
	ct_env_init(&self->env);
	self->ps = self->env.page_size;
	self->m.memfd = -1;
	self->u.fd = -1;
	CT_REQUIRE_KERNEL(&self->env, 4, 11, "MISSING faults on shmem");
	CT_UFFD_OPEN_OR_SKIP(&self->u, &self->env, CT_VIA_ANY | CT_USER_MODE_OK,
			     UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE);
	ASSERT_EQ(0, ct_mem_create(&self->m, NPAGES * self->ps, true, 0));
	self->src = ct_anon_map(NPAGES * self->ps);
	ASSERT_NE(NULL, self->src);
	ct_fill(self->src, NPAGES * self->ps, 7);
	ASSERT_EQ(0, ct_register(self->u.fd, self->m.addr, self->m.len,
				 UFFDIO_REGISTER_MODE_MISSING, NULL));
}

FIXTURE_TEARDOWN(missing)
{
	/* Release any thread still waiting in a fault, then join it. */
	if (self->u.fd >= 0 && self->m.addr) {
		for (size_t off = 0; off < self->m.len; off += self->ps)
			ct_zeropage(self->u.fd, self->m.addr + off, self->ps,
				    UFFDIO_ZEROPAGE_MODE_DONTWAKE, NULL);
		ct_wake(self->u.fd, self->m.addr, self->m.len);
	}
	for (int i = 0; i < 2; i++)
		if (self->a[i].started && !ct_async_done_within(&self->a[i], CT_DEADLINE_MS))
			TH_LOG("helper thread %d did not finish", i);
	if (self->src)
		munmap(self->src, NPAGES * self->ps);
	ct_mem_destroy(&self->m);
	ct_uffd_close(&self->u);
}

/* Start a thread reading page 'pg' (checking for pattern 'seed', or zeroes if
 * seed < 0) and wait for its PAGEFAULT event. */
static int fault_page(FIXTURE_DATA(missing) *self, int i, int pg, int seed,
		      struct uffd_msg *msg)
{
	struct ct_touch *t = &self->t[i];
	int r;

	*t = (struct ct_touch){
		.addr = self->m.addr + pg * self->ps, .len = self->ps,
		.seed = seed < 0 ? 0 : (unsigned int)seed, .expect_pattern = seed < 0 ? 0 : 1,
	};
	r = ct_async_start(&self->a[i], ct_touch_fn, t);
	if (r || !msg)
		return r;
	return ct_uffd_next_msg(self->u.fd, msg, CT_DEADLINE_MS);
}

/* UFFDIO_COPY resolves a MISSING fault and wakes the faulting thread: the fault
 * path's swap-in of one page. */
TEST_F(missing, copy_wakes_faulting_thread)
{
	struct uffd_msg msg;
	int64_t f = 0;

	ASSERT_EQ(0, fault_page(self, 0, 1, 7, &msg));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	EXPECT_EQ((uintptr_t)(self->m.addr + self->ps), msg.arg.pagefault.address);
	EXPECT_EQ(0, msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
	ASSERT_EQ(0, ct_copy(self->u.fd, self->m.addr + self->ps, self->src, self->ps, 0, &f));
	EXPECT_EQ((int64_t)self->ps, f);
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[0].ret);
}

/* UFFDIO_ZEROPAGE resolves a MISSING fault and wakes: the path for never-swapped pages. */
TEST_F(missing, zeropage_wakes_faulting_thread)
{
	struct uffd_msg msg;
	int64_t f = 0;

	CT_REQUIRE_KERNEL(&self->env, 4, 14, "UFFDIO_ZEROPAGE on shmem");
	ASSERT_EQ(0, fault_page(self, 0, 2, -1, &msg));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	ASSERT_EQ(0, ct_zeropage(self->u.fd, self->m.addr + 2 * self->ps, self->ps, 0, &f));
	EXPECT_EQ((int64_t)self->ps, f);
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[0].ret);
}

/* UFFDIO_COPY with DONTWAKE fills but does not wake; UFFDIO_WAKE does: batched
 * swap-in fills pages with DONTWAKE and relies on the fault path to wake. */
TEST_F(missing, copy_dontwake_needs_wake)
{
	struct uffd_msg msg;
	int64_t f = 0;

	ASSERT_EQ(0, fault_page(self, 0, 0, 7, &msg));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	ASSERT_EQ(0, ct_copy(self->u.fd, self->m.addr, self->src, self->ps,
			     UFFDIO_COPY_MODE_DONTWAKE, &f));
	EXPECT_EQ((int64_t)self->ps, f);
	EXPECT_FALSE(ct_async_done_within(&self->a[0], CT_NEGATIVE_MS))
		TH_LOG("COPY(DONTWAKE) woke the faulting thread");
	ASSERT_EQ(0, ct_wake(self->u.fd, self->m.addr, self->ps));
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[0].ret);
}

/* A fill that fails with EEXIST (someone else filled the page) does not wake the
 * faulting thread; an explicit UFFDIO_WAKE is needed (spec 3.3 step 4). */
TEST_F(missing, eexist_does_not_wake)
{
	struct uffd_msg msg;
	int64_t f = 0;

	CT_REQUIRE_KERNEL(&self->env, 4, 14, "UFFDIO_ZEROPAGE on shmem");
	ASSERT_EQ(0, fault_page(self, 0, 3, 9, &msg));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	/* "Someone else" fills the page through an unregistered alias mapping. */
	ct_fill(self->m.alias + 3 * self->ps, self->ps, 9);
	EXPECT_EQ(-EEXIST, ct_copy(self->u.fd, self->m.addr + 3 * self->ps, self->src,
				   self->ps, 0, &f));
	EXPECT_EQ(-EEXIST, f);
	f = 0;
	EXPECT_EQ(-EEXIST, ct_zeropage(self->u.fd, self->m.addr + 3 * self->ps, self->ps, 0,
				       &f));
	EXPECT_EQ(-EEXIST, f);
	EXPECT_FALSE(ct_async_done_within(&self->a[0], CT_NEGATIVE_MS))
		TH_LOG("a failed fill (EEXIST) woke the faulting thread");
	ASSERT_EQ(0, ct_wake(self->u.fd, self->m.addr + 3 * self->ps, self->ps));
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[0].ret) TH_LOG("the woken thread did not see the alias's data");
}

/* Two threads faulting the same page give two events, and one COPY releases both:
 * the fault path must tolerate duplicate events (spec 3.3, exp2 "5"). */
TEST_F(missing, two_threads_two_events_one_copy)
{
	struct uffd_msg m0, m1;
	int64_t f = 0;
	int r;

	ASSERT_EQ(0, fault_page(self, 0, 1, 7, &m0));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, m0.event);
	ASSERT_EQ(0, fault_page(self, 1, 1, 7, &m1));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, m1.event);
	EXPECT_EQ(m0.arg.pagefault.address, m1.arg.pagefault.address);
	ASSERT_EQ(0, ct_copy(self->u.fd, self->m.addr + self->ps, self->src, self->ps, 0, &f));
	ASSERT_TRUE(ct_async_done_within(&self->a[0], CT_DEADLINE_MS));
	ASSERT_TRUE(ct_async_done_within(&self->a[1], CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a[0].ret);
	EXPECT_EQ(0, self->a[1].ret);
	r = ct_uffd_wait_readable(self->u.fd, 0);
	EXPECT_EQ(0, r) TH_LOG("a third event was queued");
}

/* COPY over [missing, present] returns EAGAIN with copy == one page, the retry
 * EEXIST: the copy loop must advance by the positive count (spec 3.3). */
TEST_F(missing, copy_partial_eagain_then_eexist)
{
	int64_t f = 0;

	ct_fill(self->m.alias + 2 * self->ps, self->ps, 3);
	EXPECT_EQ(-EAGAIN, ct_copy(self->u.fd, self->m.addr + self->ps, self->src,
				   2 * self->ps, 0, &f));
	EXPECT_EQ((int64_t)self->ps, f);
	f = 0;
	EXPECT_EQ(-EEXIST, ct_copy(self->u.fd, self->m.addr + 2 * self->ps, self->src + self->ps,
				   self->ps, 0, &f));
	EXPECT_EQ(-EEXIST, f);
	EXPECT_EQ(-1, ct_check(self->m.alias + self->ps, self->ps, 7));
	EXPECT_EQ(-1, ct_check(self->m.alias + 2 * self->ps, self->ps, 3));
}

/* COPY over [present, ...] returns EEXIST with nothing copied (spec 3.3). */
TEST_F(missing, copy_over_present_eexist)
{
	int64_t f = 0;

	ct_fill(self->m.alias, self->ps, 3);
	EXPECT_EQ(-EEXIST, ct_copy(self->u.fd, self->m.addr, self->src, 2 * self->ps, 0, &f));
	EXPECT_EQ(-EEXIST, f);
	EXPECT_EQ(-1, ct_check(self->m.alias, self->ps, 3));
	EXPECT_EQ(-1, lseek(self->m.memfd, self->ps, SEEK_DATA));
	EXPECT_EQ(ENXIO, errno) TH_LOG("page 1 was filled although the copy failed");
}

/* UFFDIO_ZEROPAGE on shmem allocates a real page, visible to SEEK_DATA (spec 5.6.7):
 * resident-page accounting by lseek counts zero-filled pages. */
TEST_F(missing, zeropage_allocates_shmem_page)
{
	int64_t f = 0;
	char buf[64];

	CT_REQUIRE_KERNEL(&self->env, 4, 14, "UFFDIO_ZEROPAGE on shmem");
	EXPECT_EQ(-1, lseek(self->m.memfd, 0, SEEK_DATA));
	EXPECT_EQ(ENXIO, errno);
	ASSERT_EQ(0, ct_zeropage(self->u.fd, self->m.addr + 2 * self->ps, self->ps, 0, &f));
	EXPECT_EQ((off_t)(2 * self->ps), lseek(self->m.memfd, 0, SEEK_DATA));
	EXPECT_EQ((off_t)(3 * self->ps), lseek(self->m.memfd, 2 * self->ps, SEEK_HOLE));
	ASSERT_EQ((ssize_t)sizeof(buf), pread(self->m.memfd, buf, sizeof(buf), 2 * self->ps));
	EXPECT_TRUE(ct_is_zero(buf, sizeof(buf)));
}

/* COPY into an address that is no longer mapped fails with ENOENT (spec 3.3 table):
 * the target process unmapped the memory. */
TEST_F(missing, copy_unmapped_enoent)
{
	int64_t f = 0;

	CT_REQUIRE_KERNEL(&self->env, 4, 18, "ENOENT from UFFDIO_COPY without a VMA");
	ASSERT_EQ(0, munmap(self->m.addr + 3 * self->ps, self->ps));
	EXPECT_EQ(-ENOENT, ct_copy(self->u.fd, self->m.addr + 3 * self->ps, self->src,
				   self->ps, 0, &f));
	TH_LOG("copy field after ENOENT: %lld", (long long)f);
	/* Put a mapping back so that teardown's munmap covers a mapped range. */
	ASSERT_NE(MAP_FAILED, mmap(self->m.addr + 3 * self->ps, self->ps,
				   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
				   self->m.memfd, 3 * self->ps));
}

TEST_HARNESS_MAIN
