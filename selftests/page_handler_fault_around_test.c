// SPDX-License-Identifier: GPL-2.0-only
/*
 * page_handler_fault_around_test - adaptive fault-around (vms_ph_set_fault_around):
 * off by default; sequential faults on staged pages fill doubling runs up to the
 * limit; a fault continuing no stream fills its page alone; a run stops at the
 * first page that is not staged, at the region's end and at a page made resident
 * behind the handler's back (whose contents win); every page keeps its contents
 * when threads read the memory concurrently with fault-around on.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmmswap/pagesize.h>

#include "kselftest_harness.h"
#include "lib/handler_util.h"

HU_FIXTURE(fa)

static int stage_all(struct hu_ctx *c)
{
	uint64_t moved = 0;
	int ret = vms_ph_move_all_to_staging(c->ph, &moved);

	return ret ? ret : hu_check(c);
}

/* Is the page in the memfd (filled), as seen through the never-registered alias? */
static bool filled(struct hu_ctx *c, size_t region, uint64_t page)
{
	unsigned char v = 0;

	if (mincore(hu_alias_page(&c->g, region, page), vms_page_size(), &v))
		return false;
	return v & 1;
}

/* Fault page p of region 0 directly (as the event loop would). */
static int fault(struct hu_ctx *c, size_t region, uint64_t p)
{
	return vms_ph_fault(c->ph, c->u.fd, (uint64_t)(uintptr_t)hu_page(&c->g, region, p));
}

/* Pages of region 0 in [0, n) that are filled, as a bit mask. */
static uint64_t filled_mask(struct hu_ctx *c, size_t region, uint64_t n)
{
	uint64_t p, mask = 0;

	for (p = 0; p < n; p++)
		if (filled(c, region, p))
			mask |= 1ULL << p;
	return mask;
}

TEST_F(fa, off_by_default_fills_only_the_faulting_page)
{
	const uint64_t pages[] = { 16 };
	struct vms_ph_metrics m;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	hu_tag_pages(&self->c, 0, 0, 16, 0);
	ASSERT_EQ(0, stage_all(&self->c));
	ASSERT_EQ(0, fault(&self->c, 0, 0));
	ASSERT_EQ(0, fault(&self->c, 0, 1));
	ASSERT_EQ(0, fault(&self->c, 0, 2));
	ASSERT_EQ(0x7, filled_mask(&self->c, 0, 16));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(3, m.copied_from_staging_pages);
	ASSERT_EQ(0, m.fault_around_pages);
	ASSERT_EQ(13, m.staging_pages);
}

TEST_F(fa, limit_above_maximum_is_rejected)
{
	const uint64_t pages[] = { 4 };

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	ASSERT_EQ(-EINVAL, vms_ph_set_fault_around(self->c.ph,
						   VMS_PH_MAX_FAULT_AROUND_PAGES + 1));
	ASSERT_EQ(0, vms_ph_set_fault_around(self->c.ph, VMS_PH_MAX_FAULT_AROUND_PAGES));
	ASSERT_EQ(0, vms_ph_set_fault_around(self->c.ph, 0));
}

/* Runs 1, 2, 4, 8, 8 (the limit): each fault continues the stream. */
TEST_F(fa, sequential_faults_fill_doubling_runs_up_to_the_limit)
{
	const uint64_t pages[] = { 32 };
	struct vms_ph_metrics m;
	uint64_t p;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	ASSERT_EQ(0, vms_ph_set_fault_around(self->c.ph, 8));
	hu_tag_pages(&self->c, 0, 0, 32, 0);
	ASSERT_EQ(0, stage_all(&self->c));
	ASSERT_EQ(0, fault(&self->c, 0, 0));
	ASSERT_EQ(0x1, filled_mask(&self->c, 0, 32));
	ASSERT_EQ(0, fault(&self->c, 0, 1));
	ASSERT_EQ(0x7, filled_mask(&self->c, 0, 32));
	ASSERT_EQ(0, fault(&self->c, 0, 3));
	ASSERT_EQ(0x7f, filled_mask(&self->c, 0, 32));
	ASSERT_EQ(0, fault(&self->c, 0, 7));
	ASSERT_EQ(0x7fff, filled_mask(&self->c, 0, 32));
	ASSERT_EQ(0, fault(&self->c, 0, 15));
	ASSERT_EQ(0x7fffff, filled_mask(&self->c, 0, 32));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(23, m.copied_from_staging_pages);
	ASSERT_EQ(18, m.fault_around_pages);
	ASSERT_EQ(9, m.staging_pages);
	ASSERT_EQ(0, m.redundant_pages);
	/* The loop serves the rest; every page has its own contents. */
	ASSERT_EQ(0, hu_loop_start(&self->c.loop, self->c.ph, self->c.u.fd));
	for (p = 0; p < 32; p++)
		ASSERT_EQ(hu_tag(0, p, 0), hu_page_tag(hu_page(&self->c.g, 0, p)));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(32, m.copied_from_staging_pages);
	ASSERT_EQ(0, m.staging_pages);
	/* A new enable (move) resets the counter with the other fault counters. */
	ASSERT_EQ(0, stage_all(&self->c));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(0, m.fault_around_pages);
	ASSERT_EQ(32, m.staging_pages);
}

TEST_F(fa, faults_continuing_no_stream_fill_one_page)
{
	const uint64_t pages[] = { 32 };
	struct vms_ph_metrics m;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	ASSERT_EQ(0, vms_ph_set_fault_around(self->c.ph, 16));
	hu_tag_pages(&self->c, 0, 0, 32, 0);
	ASSERT_EQ(0, stage_all(&self->c));
	ASSERT_EQ(0, fault(&self->c, 0, 10));
	ASSERT_EQ(0, fault(&self->c, 0, 20));
	ASSERT_EQ(0, fault(&self->c, 0, 5));
	ASSERT_EQ(0, fault(&self->c, 0, 9)); /* before a stream's page, not after it */
	ASSERT_EQ(1ULL << 5 | 1ULL << 9 | 1ULL << 10 | 1ULL << 20,
		  filled_mask(&self->c, 0, 32));
	/* Two streams at once: each continues (run 2), as for two vCPUs. */
	ASSERT_EQ(0, fault(&self->c, 0, 21));
	ASSERT_EQ(0, fault(&self->c, 0, 6));
	ASSERT_EQ(1ULL << 5 | 3ULL << 6 | 1ULL << 9 | 1ULL << 10 | 1ULL << 20 | 3ULL << 21,
		  filled_mask(&self->c, 0, 32));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(8, m.copied_from_staging_pages);
	ASSERT_EQ(2, m.fault_around_pages);
}

/* A run ends before an unstaged page and at the end of its region. */
TEST_F(fa, run_stops_at_unstaged_page_and_region_end)
{
	const uint64_t pages[] = { 8, 8 };
	struct vms_ph_metrics m;
	uint64_t p;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 2, 0, NULL, false));
	ASSERT_EQ(0, vms_ph_set_fault_around(self->c.ph, 16));
	hu_tag_pages(&self->c, 0, 0, 5, 0); /* page 5 stays a hole: not staged */
	hu_tag_pages(&self->c, 0, 6, 2, 0);
	hu_tag_pages(&self->c, 1, 0, 8, 0);
	ASSERT_EQ(0, stage_all(&self->c));
	ASSERT_EQ(15, hu_metrics(self->c.ph).staging_pages);
	ASSERT_EQ(0, fault(&self->c, 0, 0));
	ASSERT_EQ(0, fault(&self->c, 0, 1)); /* run 2: 1, 2 */
	ASSERT_EQ(0, fault(&self->c, 0, 3)); /* run 4 wanted, 3 and 4 staged */
	ASSERT_EQ(0x1f, filled_mask(&self->c, 0, 8));
	ASSERT_EQ(0, fault(&self->c, 0, 6)); /* new stream */
	ASSERT_EQ(0, fault(&self->c, 0, 7)); /* run 2 wanted, the region ends */
	ASSERT_EQ(0xdf, filled_mask(&self->c, 0, 8));
	ASSERT_EQ(0, filled_mask(&self->c, 1, 8));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(7, m.copied_from_staging_pages);
	ASSERT_EQ(2, m.fault_around_pages);
	ASSERT_EQ(8, m.staging_pages);
	ASSERT_EQ(0, hu_loop_start(&self->c.loop, self->c.ph, self->c.u.fd));
	for (p = 0; p < 8; p++) {
		ASSERT_EQ(p == 5 ? 0 : hu_tag(0, p, 0), hu_page_tag(hu_page(&self->c.g, 0, p)));
		ASSERT_EQ(hu_tag(1, p, 0), hu_page_tag(hu_page(&self->c.g, 1, p)));
	}
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/*
 * A page filled behind the handler's back ends the run before it and keeps its
 * contents; its own fault later finds it filled (redundant), as without
 * fault-around.
 */
TEST_F(fa, resident_neighbour_ends_the_run_and_keeps_its_contents)
{
	const uint64_t pages[] = { 8 };
	uint64_t ps = vms_page_size(), done = 0, p;
	struct vms_ph_metrics m;
	uint8_t buf[4096];
	char why[256];

	ASSERT_EQ(4096, ps);
	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	ASSERT_EQ(0, vms_ph_set_fault_around(self->c.ph, 8));
	hu_tag_pages(&self->c, 0, 0, 8, 0);
	ASSERT_EQ(0, stage_all(&self->c));
	hu_fill(buf, hu_tag(0, 2, 9));
	ASSERT_EQ(0, vms_uffd_copy(self->c.u.fd, (uint64_t)(uintptr_t)hu_page(&self->c.g, 0, 2),
				   buf, ps, 0, &done));
	ASSERT_EQ(0, fault(&self->c, 0, 0));
	ASSERT_EQ(0, fault(&self->c, 0, 1)); /* run 1..2 stops at the resident page 2 */
	/*
	 * Not hu_metrics(): page 2 is staged and resident on purpose, until its
	 * fault, and the consistency check says so.
	 */
	ASSERT_EQ(0, vms_ph_metrics(self->c.ph, &m));
	ASSERT_EQ(-EPROTO, vms_ph_check(self->c.ph, why, sizeof(why)));
	ASSERT_NE(NULL, strstr(why, "pgoff 2 (region 0 page 2): staged, but resident"))
		TH_LOG("%s", why);
	ASSERT_EQ(2, m.copied_from_staging_pages);
	ASSERT_EQ(0, m.fault_around_pages);
	ASSERT_EQ(6, m.staging_pages);
	ASSERT_EQ(0, fault(&self->c, 0, 2)); /* staged but resident: wake, redundant */
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(1, m.redundant_pages);
	ASSERT_EQ(5, m.staging_pages);
	ASSERT_EQ(0, hu_loop_start(&self->c.loop, self->c.ph, self->c.u.fd));
	for (p = 0; p < 8; p++)
		ASSERT_EQ(hu_tag(0, p, p == 2 ? 9 : 0), hu_page_tag(hu_page(&self->c.g, 0, p)));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

struct walker {
	struct hu_ctx *c;
	uint64_t pages;
	bool backwards;
	uint64_t bad; /* pages with wrong contents */
};

static void *walk(void *arg)
{
	struct walker *w = arg;
	uint64_t i;

	for (i = 0; i < w->pages; i++) {
		uint64_t p = w->backwards ? w->pages - 1 - i : i;

		if (hu_page_tag(hu_page(&w->c->g, 0, p)) != hu_tag(0, p, 0))
			w->bad++;
	}
	return NULL;
}

/*
 * One reader through the event loop: runs 1, 2, 4, ..., 64, then 64 each, so 22
 * faults fill 1024 pages.
 */
TEST_F(fa, sequential_reader_through_the_loop_takes_22_faults_for_1024_pages)
{
	const uint64_t pages[] = { 1024 };
	struct walker w = { &self->c, 1024, false, 0 };
	struct vms_ph_metrics m;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	ASSERT_EQ(0, vms_ph_set_fault_around(self->c.ph, 64));
	hu_tag_pages(&self->c, 0, 0, 1024, 0);
	ASSERT_EQ(0, stage_all(&self->c));
	walk(&w);
	ASSERT_EQ(0, w.bad);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(1024, m.copied_from_staging_pages);
	ASSERT_EQ(1002, m.fault_around_pages);
	ASSERT_EQ(22, hu_loop_count(&self->c.loop.fs.faults));
	ASSERT_EQ(0, m.redundant_pages);
}

/* One reader forwards, one backwards, fault-around on: every page intact. */
TEST_F(fa, concurrent_readers_see_every_page_intact)
{
	const uint64_t pages[] = { 1024 };
	struct walker w[2] = { { &self->c, 1024, false, 0 }, { &self->c, 1024, true, 0 } };
	struct hu_thread t[2];
	struct vms_ph_metrics m;
	int i;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	ASSERT_EQ(0, vms_ph_set_fault_around(self->c.ph, 64));
	hu_tag_pages(&self->c, 0, 0, 1024, 0);
	ASSERT_EQ(0, stage_all(&self->c));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, hu_thread_start(&t[i], walk, &w[i]));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, hu_thread_join(&t[i], HU_DEADLINE_MS));
		ASSERT_EQ(0, w[i].bad);
	}
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(1024, m.copied_from_staging_pages);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(0, m.zeroed_pages);
	/* How much fault-around helped depends on the interleaving: only logged. */
	TH_LOG("%llu of 1024 pages filled by fault-around, %llu redundant faults",
	       (unsigned long long)m.fault_around_pages, (unsigned long long)m.redundant_pages);
}

TEST_HARNESS_MAIN
