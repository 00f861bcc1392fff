// SPDX-License-Identifier: GPL-2.0-only
/*
 * page_handler_swap_test - swap-out and swap-in (spec 3.7, 3.8, 7.2): what lands
 * in the file, pages handled meanwhile, rewrites and slot reuse, region
 * boundaries, and swap-in racing faults. Contents are checked page by page.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <vmmswap/pagesize.h>

#include "kselftest_harness.h"
#include "lib/handler_util.h"

FIXTURE(ph)
{
	struct hu_ctx c;
};

FIXTURE_SETUP(ph)
{
	int r;

	hu_ctx_preinit(&self->c);
	r = hu_ctx_uffd(&self->c);
	if (hu_uffd_unavailable(r))
		SKIP(return, "userfaultfd unavailable: %s", strerror(-r));
	ASSERT_EQ(0, r);
}

FIXTURE_TEARDOWN(ph)
{
	hu_ctx_destroy(&self->c);
}

static struct vms_ph_metrics metrics(struct vms_page_handler *ph)
{
	struct vms_ph_metrics m;

	if (vms_ph_metrics(ph, &m))
		memset(&m, 0xff, sizeof(m));
	return m;
}

static int swap_out_all(struct vms_page_handler *ph, uint64_t chunk)
{
	uint64_t n;
	int ret;

	do
		ret = vms_ph_swap_out(ph, chunk, &n);
	while (!ret && n);
	return ret;
}

/* Swap everything in; -EAGAIN (a REMOVE pending) is retried after the loop read it. */
static int swap_in_all(struct hu_ctx *c, uint64_t chunk)
{
	uint64_t end = hu_now_ms() + HU_DEADLINE_MS, n;
	int ret;

	for (;;) {
		ret = vms_ph_swap_in(c->ph, c->u.fd, chunk, &n);
		if (ret == -EAGAIN && hu_now_ms() < end) {
			sched_yield();
			continue;
		}
		if (ret || !n)
			return ret;
	}
}

/* crosvm's swap_out_success. */
TEST_F(ph, swap_out_then_faults_read_from_file)
{
	const uint64_t pages[] = { 3, 3 };
	struct vms_ph_metrics m;
	uint64_t p;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 2, 0, NULL, true));
	hu_fill(hu_alias_page(&self->c.g, 0, 1), hu_tag(0, 1, 0));
	hu_fill(hu_alias_page(&self->c.g, 1, 1), hu_tag(1, 1, 0));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, swap_out_all(self->c.ph, (1 << 20) / vms_page_size()));
	m = metrics(self->c.ph);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(2, m.swap_pages);
	ASSERT_EQ(2, m.swap_file_slots);
	for (p = 0; p < 3; p++) {
		ASSERT_EQ(p == 1 ? hu_tag(0, 1, 0) : 0, hu_page_tag(hu_page(&self->c.g, 0, p)));
		ASSERT_EQ(p == 1 ? hu_tag(1, 1, 0) : 0, hu_page_tag(hu_page(&self->c.g, 1, p)));
	}
	m = metrics(self->c.ph);
	ASSERT_EQ(2, m.copied_from_file_pages);
	ASSERT_EQ(4, m.zeroed_pages);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/* crosvm's swap_out_handled_page: a page faulted in before swap-out stays put. */
TEST_F(ph, swap_out_skips_page_faulted_before)
{
	const uint64_t pages[] = { 3 };
	struct vms_ph_metrics m;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	hu_fill(hu_alias_page(&self->c.g, 0, 1), hu_tag(0, 1, 0));
	hu_fill(hu_alias_page(&self->c.g, 0, 2), hu_tag(0, 2, 0));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(hu_tag(0, 1, 0), hu_page_tag(hu_page(&self->c.g, 0, 1)));
	ASSERT_EQ(0, swap_out_all(self->c.ph, 512));
	m = metrics(self->c.ph);
	ASSERT_EQ(1, m.swap_pages);
	ASSERT_EQ(1, m.resident_pages);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
	/* Page 1 is resident: readable with no handler running. */
	ASSERT_EQ(hu_tag(0, 1, 0), hu_page_tag(hu_page(&self->c.g, 0, 1)));
}

/*
 * crosvm's swap_out_twice, checking contents: rewritten pages overwrite their
 * CLEARED slots, new ones get new slots, untouched ones stay in the file.
 */
TEST_F(ph, page_rewritten_after_swap_out_is_swapped_again)
{
	const uint64_t pages[] = { 3, 3 };
	const uint64_t want[2][3] = { { hu_tag(0, 0, 0), hu_tag(0, 1, 1), hu_tag(0, 2, 1) },
				      { hu_tag(1, 0, 0), 0, hu_tag(1, 2, 0) } };
	struct vms_ph_metrics m;
	uint64_t p;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 2, 0, NULL, true));
	hu_fill(hu_alias_page(&self->c.g, 0, 0), hu_tag(0, 0, 0));
	hu_fill(hu_alias_page(&self->c.g, 0, 1), hu_tag(0, 1, 0));
	hu_fill(hu_alias_page(&self->c.g, 1, 0), hu_tag(1, 0, 0));
	hu_fill(hu_alias_page(&self->c.g, 1, 2), hu_tag(1, 2, 0));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, swap_out_all(self->c.ph, 512));
	ASSERT_EQ(4, metrics(self->c.ph).swap_file_slots);
	/* Fault region 0 back, rewrite pages 1 and 2 (2 was empty), swap out again. */
	for (p = 0; p < 3; p++)
		ASSERT_EQ(p < 2 ? hu_tag(0, p, 0) : 0, hu_page_tag(hu_page(&self->c.g, 0, p)));
	hu_fill(hu_page(&self->c.g, 0, 1), hu_tag(0, 1, 1));
	hu_fill(hu_page(&self->c.g, 0, 2), hu_tag(0, 2, 1));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, swap_out_all(self->c.ph, 512));
	m = metrics(self->c.ph);
	ASSERT_EQ(5, m.swap_pages); /* region 0 was faulted in, moved and written again */
	ASSERT_EQ(5, m.swap_file_slots); /* two slots reused, one new */
	ASSERT_EQ(0, m.staging_pages);
	for (p = 0; p < 3; p++) {
		ASSERT_EQ(want[0][p], hu_page_tag(hu_page(&self->c.g, 0, p)));
		ASSERT_EQ(want[1][p], hu_page_tag(hu_page(&self->c.g, 1, p)));
	}
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/* crosvm's swap_in_success: staging first, then the file; every page comes back. */
TEST_F(ph, swap_in_restores_staged_and_swapped_pages)
{
	const uint64_t pages[] = { 3, 3 };
	const uint64_t want[2][3] = { { 0, hu_tag(0, 1, 0), 0 },
				      { 0, hu_tag(1, 1, 1), hu_tag(1, 2, 0) } };
	struct vms_ph_metrics m;
	uint64_t p;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 2, 0, NULL, true));
	hu_fill(hu_alias_page(&self->c.g, 0, 1), hu_tag(0, 1, 0));
	hu_fill(hu_alias_page(&self->c.g, 1, 1), hu_tag(1, 1, 0));
	hu_fill(hu_alias_page(&self->c.g, 1, 2), hu_tag(1, 2, 0));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, swap_out_all(self->c.ph, 512));
	ASSERT_EQ(hu_tag(0, 1, 0), hu_page_tag(hu_page(&self->c.g, 0, 1)));
	ASSERT_EQ(hu_tag(1, 1, 0), hu_page_tag(hu_page(&self->c.g, 1, 1)));
	hu_fill(hu_page(&self->c.g, 1, 1), hu_tag(1, 1, 1));
	ASSERT_EQ(0, vms_ph_move_to_staging(self->c.ph, self->c.g.regions[1].addr, NULL));
	m = metrics(self->c.ph);
	ASSERT_EQ(1, m.staging_pages);
	ASSERT_EQ(1, m.swap_pages);
	ASSERT_EQ(0, swap_in_all(&self->c, 512));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
	m = metrics(self->c.ph);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(0, m.swap_pages);
	ASSERT_EQ(2, m.swap_in_pages);
	ASSERT_EQ(3, m.resident_pages); /* page 0,1 of region 0 faulted; 1 filled */
	/* The loop is stopped: reading a missing page would hang, so read only pages
	 * that must be resident now, and the rest with the loop running again. */
	ASSERT_EQ(want[0][1], hu_page_tag(hu_page(&self->c.g, 0, 1)));
	ASSERT_EQ(want[1][1], hu_page_tag(hu_page(&self->c.g, 1, 1)));
	ASSERT_EQ(want[1][2], hu_page_tag(hu_page(&self->c.g, 1, 2)));
	ASSERT_EQ(0, hu_loop_start(&self->c.loop, self->c.ph, self->c.u.fd));
	for (p = 0; p < 3; p++) {
		ASSERT_EQ(want[0][p], hu_page_tag(hu_page(&self->c.g, 0, p)));
		ASSERT_EQ(want[1][p], hu_page_tag(hu_page(&self->c.g, 1, p)));
	}
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

#define EDGE_PAGES 300

/*
 * Regression for crosvm b/324344124: a swap-in run that is consecutive in the
 * page index space but crosses from one region into the next must be split;
 * here the regions are not adjacent (a gap, and in reverse address order), and two
 * swap-out rounds scatter the slots.
 */
TEST_F(ph, swap_in_across_region_boundary_keeps_every_page)
{
	const uint64_t pages[] = { EDGE_PAGES, EDGE_PAGES };
	struct vms_ph_metrics m;
	uint64_t p;
	size_t r;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 2, HU_GAP | HU_REVERSED, NULL, true));
	ASSERT_LT(self->c.g.regions[1].addr, self->c.g.regions[0].addr);
	for (r = 0; r < 2; r++)
		for (p = 0; p < EDGE_PAGES; p++)
			hu_fill(hu_alias_page(&self->c.g, r, p), hu_tag(r, p, 0));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, swap_out_all(self->c.ph, 512)); /* runs cross the boundary */
	/* Round two: rewrite pages on both sides of the boundary. */
	for (p = EDGE_PAGES - 20; p < EDGE_PAGES; p += 2) {
		ASSERT_EQ(hu_tag(0, p, 0), hu_page_tag(hu_page(&self->c.g, 0, p)));
		hu_fill(hu_page(&self->c.g, 0, p), hu_tag(0, p, 1));
	}
	for (p = 0; p < 20; p += 3) {
		ASSERT_EQ(hu_tag(1, p, 0), hu_page_tag(hu_page(&self->c.g, 1, p)));
		hu_fill(hu_page(&self->c.g, 1, p), hu_tag(1, p, 1));
	}
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, swap_out_all(self->c.ph, 512));
	ASSERT_EQ(2 * EDGE_PAGES, metrics(self->c.ph).swap_pages);
	ASSERT_EQ(0, swap_in_all(&self->c, 512));
	m = metrics(self->c.ph);
	ASSERT_EQ(0, m.swap_pages);
	ASSERT_EQ(2 * EDGE_PAGES, m.resident_pages); /* nothing can fault any more */
	ASSERT_EQ(0, m.copied_from_file_pages);
	for (p = 0; p < EDGE_PAGES; p++) {
		unsigned int g0 = p >= EDGE_PAGES - 20 && (p % 2) == 0;
		unsigned int g1 = p < 20 && p % 3 == 0;

		ASSERT_EQ(hu_tag(0, p, g0), hu_page_tag(hu_page(&self->c.g, 0, p)));
		ASSERT_EQ(hu_tag(1, p, g1), hu_page_tag(hu_page(&self->c.g, 1, p)));
	}
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

#define RACE_PAGES 4096

struct race {
	struct hu_ctx *c;
	int ret;
	int bad;
};

static void *race_swap_in(void *arg)
{
	struct race *s = arg;

	s->ret = swap_in_all(s->c, 512);
	return NULL;
}

static void *race_reader(void *arg)
{
	struct race *s = arg;
	uint64_t i, p;

	/* Walk down while swap-in walks up, so that they meet in the middle. */
	for (i = 0; i < RACE_PAGES; i++) {
		p = RACE_PAGES - 1 - i;
		if (hu_page_tag(hu_page(&s->c->g, 0, p)) != hu_tag(0, p, 0))
			s->bad++;
	}
	return NULL;
}

/* Swap-in and faults on the same pages at once: every page once, none lost. */
TEST_F(ph, swap_in_concurrent_with_faults_fills_each_page_once)
{
	const uint64_t pages[] = { RACE_PAGES };
	struct race s = { .c = &self->c };
	struct hu_thread ts, tr;
	struct vms_ph_metrics m;
	uint64_t p;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	for (p = 0; p < RACE_PAGES; p++)
		hu_fill(hu_alias_page(&self->c.g, 0, p), hu_tag(0, p, 0));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, swap_out_all(self->c.ph, 512));
	ASSERT_EQ(0, hu_thread_start(&tr, race_reader, &s));
	ASSERT_EQ(0, hu_thread_start(&ts, race_swap_in, &s));
	ASSERT_EQ(0, hu_thread_join(&ts, HU_DEADLINE_MS));
	ASSERT_EQ(0, hu_thread_join(&tr, HU_DEADLINE_MS));
	ASSERT_EQ(0, s.ret);
	ASSERT_EQ(0, s.bad);
	m = metrics(self->c.ph);
	ASSERT_EQ(RACE_PAGES, m.swap_in_pages + m.copied_from_file_pages);
	ASSERT_EQ(RACE_PAGES, m.resident_pages);
	TH_LOG("swap-in %llu, faults from file %llu, redundant %llu",
	       (unsigned long long)m.swap_in_pages, (unsigned long long)m.copied_from_file_pages,
	       (unsigned long long)m.redundant_pages);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

TEST_HARNESS_MAIN
