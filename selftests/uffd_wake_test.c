// SPDX-License-Identifier: GPL-2.0-only
/*
 * uffd_wake_test - UFFDIO_WAKE with several threads blocked on neighbouring pages of
 * memfd MAP_SHARED memory: which threads a wake releases. Batched swap-in fills a
 * run of pages with UFFDIO_COPY_MODE_DONTWAKE and then wakes the whole run (or one
 * page) with a single UFFDIO_WAKE.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "lib/contract.h"

#define NPAGES 4
#define SEED   21	/* page i holds pattern SEED + i */

FIXTURE(wake)
{
	struct ct_env env;
	struct ct_uffd u;
	struct ct_mem m;
	size_t ps;
	char *src;
	struct ct_async a[NPAGES];
	struct ct_touch t[NPAGES];
};

FIXTURE_SETUP(wake)
{
	ct_env_init(&self->env);
	self->ps = self->env.page_size;
	self->m.memfd = -1;
	self->u.fd = -1;
	CT_REQUIRE_KERNEL(&self->env, 4, 11, "MISSING faults and UFFDIO_WAKE on shmem");
	CT_UFFD_OPEN_OR_SKIP(&self->u, &self->env, CT_VIA_ANY | CT_USER_MODE_OK,
			     UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE);
	ASSERT_EQ(0, ct_mem_create(&self->m, NPAGES * self->ps, false, 0));
	self->src = ct_anon_map(NPAGES * self->ps);
	ASSERT_NE(NULL, self->src);
	for (int i = 0; i < NPAGES; i++)
		ct_fill(self->src + i * self->ps, self->ps, SEED + i);
	ASSERT_EQ(0, ct_register(self->u.fd, self->m.addr, self->m.len,
				 UFFDIO_REGISTER_MODE_MISSING, NULL));
}

FIXTURE_TEARDOWN(wake)
{
	/* Release any thread still waiting in a fault, then join it. */
	if (self->u.fd >= 0 && self->m.addr) {
		for (size_t off = 0; off < self->m.len; off += self->ps)
			ct_zeropage(self->u.fd, self->m.addr + off, self->ps,
				    UFFDIO_ZEROPAGE_MODE_DONTWAKE, NULL);
		ct_wake(self->u.fd, self->m.addr, self->m.len);
	}
	for (int i = 0; i < NPAGES; i++)
		if (self->a[i].started && !ct_async_done_within(&self->a[i], CT_DEADLINE_MS))
			TH_LOG("helper thread %d did not finish", i);
	if (self->src)
		munmap(self->src, NPAGES * self->ps);
	ct_mem_destroy(&self->m);
	ct_uffd_close(&self->u);
}

static char *page(FIXTURE_DATA(wake) *self, int pg)
{
	return self->m.addr + (size_t)pg * self->ps;
}

/*
 * Thread i reads page i (checking for pattern SEED + i); wait until every thread has
 * its MISSING fault queued and sleeps in it, then fill every page without waking.
 */
static void block_all_then_fill_dontwake(struct __test_metadata *_metadata,
					 FIXTURE_DATA(wake) *self)
{
	unsigned int seen = 0;
	int64_t f = 0;

	for (int i = 0; i < NPAGES; i++) {
		self->t[i] = (struct ct_touch){
			.addr = page(self, i), .len = self->ps, .seed = SEED + i,
			.expect_pattern = 1,
		};
		ASSERT_EQ(0, ct_async_start(&self->a[i], ct_touch_fn, &self->t[i]));
	}
	for (int i = 0; i < NPAGES; i++) {
		struct uffd_msg msg;
		uintptr_t off;

		ASSERT_EQ(0, ct_uffd_next_msg(self->u.fd, &msg, CT_DEADLINE_MS))
			TH_LOG("%d of %d faults arrived", i, NPAGES);
		ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
		off = (uintptr_t)msg.arg.pagefault.address - (uintptr_t)self->m.addr;
		ASSERT_GT(self->m.len, off) TH_LOG("fault outside the range");
		EXPECT_EQ(0, off % self->ps);
		EXPECT_EQ(0, seen & (1u << (off / self->ps))) TH_LOG("two faults on one page");
		seen |= 1u << (off / self->ps);
	}
	for (int i = 0; i < NPAGES; i++) {
		ASSERT_EQ(0, ct_async_wait_sleeping(&self->a[i], CT_DEADLINE_MS))
			TH_LOG("the thread on page %d does not sleep in its fault", i);
	}
	ASSERT_EQ(0, ct_copy(self->u.fd, self->m.addr, self->src, self->m.len,
			     UFFDIO_COPY_MODE_DONTWAKE, &f));
	EXPECT_EQ((int64_t)self->m.len, f);
	EXPECT_FALSE(ct_async_done_within(&self->a[NPAGES - 1], CT_NEGATIVE_MS))
		TH_LOG("COPY(DONTWAKE) woke a faulting thread");
}

/* Wait for thread i to return and check it read its page's pattern. */
static void expect_released(struct __test_metadata *_metadata, FIXTURE_DATA(wake) *self,
			    int i)
{
	EXPECT_TRUE(ct_async_done_within(&self->a[i], CT_DEADLINE_MS))
		TH_LOG("the thread on page %d was not released", i);
	if (self->a[i].joined) {
		EXPECT_EQ(0, self->a[i].ret) TH_LOG("page %d did not hold its bytes", i);
	}
}

/* A one-page UFFDIO_WAKE releases only the thread on that page, not its neighbours on
 * either side; a wake of the whole run then releases the rest, the last page included:
 * the fault path wakes exactly the pages it filled. */
TEST_F(wake, one_page_then_range)
{
	block_all_then_fill_dontwake(_metadata, self);
	ASSERT_EQ(0, ct_wake(self->u.fd, page(self, 1), self->ps));
	expect_released(_metadata, self, 1);
	/* One window for all: the others had CT_NEGATIVE_MS to return. */
	EXPECT_FALSE(ct_async_done_within(&self->a[0], CT_NEGATIVE_MS))
		TH_LOG("waking page 1 released the thread on page 0");
	for (int i = 2; i < NPAGES; i++) {
		EXPECT_FALSE(ct_async_done_within(&self->a[i], 0))
			TH_LOG("waking page 1 released the thread on page %d", i);
	}

	ASSERT_EQ(0, ct_wake(self->u.fd, page(self, 0), self->m.len));
	for (int i = 0; i < NPAGES; i++)
		expect_released(_metadata, self, i);
	EXPECT_EQ(0, ct_uffd_wait_readable(self->u.fd, 0)) TH_LOG("an event was queued");
}

/* A multi-page UFFDIO_WAKE of pages 1..N-1 releases the thread on every one of them,
 * the last page included, and not the one on page 0 just before the range: batched
 * swap-in wakes a run with one call. */
TEST_F(wake, range_releases_every_page)
{
	block_all_then_fill_dontwake(_metadata, self);
	ASSERT_EQ(0, ct_wake(self->u.fd, page(self, 1), (NPAGES - 1) * self->ps));
	for (int i = 1; i < NPAGES; i++)
		expect_released(_metadata, self, i);
	EXPECT_FALSE(ct_async_done_within(&self->a[0], CT_NEGATIVE_MS))
		TH_LOG("the wake released the thread on page 0, outside its range");

	ASSERT_EQ(0, ct_wake(self->u.fd, page(self, 0), self->ps));
	expect_released(_metadata, self, 0);
	EXPECT_EQ(0, ct_uffd_wait_readable(self->u.fd, 0)) TH_LOG("an event was queued");
}

TEST_HARNESS_MAIN
