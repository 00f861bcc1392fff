// SPDX-License-Identifier: GPL-2.0-only
/*
 * page_handler_swap_test - swap-out and swap-in (spec 3.7, 3.8, 7.2): what lands
 * in the file, pages handled meanwhile, rewrites and slot reuse, region
 * boundaries, swap-in racing faults, swap-in while a REMOVE is pending (EAGAIN),
 * and what a chunk that moved nothing reports.
 * Contents are checked page by page.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <vmmswap/log.h>
#include <vmmswap/pagesize.h>

#include "kselftest_harness.h"
#include "lib/handler_util.h"

HU_FIXTURE(ph)

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
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, (1 << 20) / vms_page_size()));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(2, m.swap_pages);
	ASSERT_EQ(2, m.swap_file_slots);
	for (p = 0; p < 3; p++) {
		ASSERT_EQ(p == 1 ? hu_tag(0, 1, 0) : 0, hu_page_tag(hu_page(&self->c.g, 0, p)));
		ASSERT_EQ(p == 1 ? hu_tag(1, 1, 0) : 0, hu_page_tag(hu_page(&self->c.g, 1, p)));
	}
	m = hu_metrics(self->c.ph);
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
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	m = hu_metrics(self->c.ph);
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
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	ASSERT_EQ(4, hu_metrics(self->c.ph).swap_file_slots);
	/* Fault region 0 back, rewrite pages 1 and 2 (2 was empty), swap out again. */
	for (p = 0; p < 3; p++)
		ASSERT_EQ(p < 2 ? hu_tag(0, p, 0) : 0, hu_page_tag(hu_page(&self->c.g, 0, p)));
	hu_fill(hu_page(&self->c.g, 0, 1), hu_tag(0, 1, 1));
	hu_fill(hu_page(&self->c.g, 0, 2), hu_tag(0, 2, 1));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	m = hu_metrics(self->c.ph);
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
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	ASSERT_EQ(hu_tag(0, 1, 0), hu_page_tag(hu_page(&self->c.g, 0, 1)));
	ASSERT_EQ(hu_tag(1, 1, 0), hu_page_tag(hu_page(&self->c.g, 1, 1)));
	hu_fill(hu_page(&self->c.g, 1, 1), hu_tag(1, 1, 1));
	ASSERT_EQ(0, vms_ph_move_to_staging(self->c.ph, self->c.g.regions[1].addr, NULL));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(1, m.staging_pages);
	ASSERT_EQ(1, m.swap_pages);
	ASSERT_EQ(0, hu_swap_in_all(&self->c, 512));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
	m = hu_metrics(self->c.ph);
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
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512)); /* runs cross the boundary */
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
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	ASSERT_EQ(2 * EDGE_PAGES, hu_metrics(self->c.ph).swap_pages);
	ASSERT_EQ(0, hu_swap_in_all(&self->c, 512));
	m = hu_metrics(self->c.ph);
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

	s->ret = hu_swap_in_all(s->c, 512);
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
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	ASSERT_EQ(0, hu_thread_start(&tr, race_reader, &s));
	ASSERT_EQ(0, hu_thread_start(&ts, race_swap_in, &s));
	ASSERT_EQ(0, hu_thread_join(&ts, HU_DEADLINE_MS));
	ASSERT_EQ(0, hu_thread_join(&tr, HU_DEADLINE_MS));
	ASSERT_EQ(0, s.ret);
	ASSERT_EQ(0, s.bad);
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(RACE_PAGES, m.swap_in_pages + m.copied_from_file_pages);
	ASSERT_EQ(RACE_PAGES, m.resident_pages);
	TH_LOG("swap-in %llu, faults from file %llu, redundant %llu",
	       (unsigned long long)m.swap_in_pages, (unsigned long long)m.copied_from_file_pages,
	       (unsigned long long)m.redundant_pages);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/*
 * A swap-in chunk can fill nothing although pages remain: every page of its run
 * was found resident (a device wrote it through another mapping: the guest's
 * page wins). Deterministic: a staged run and a swapped run made of such pages,
 * each followed by a run that still needs filling. 0 pages filled must still
 * mean "nothing staged or swapped" (hu_swap_in_all() checks that on every 0).
 */
TEST_F(ph, swap_in_chunk_of_resident_pages_does_not_report_the_end)
{
	const uint64_t pages[] = { 8, 4 };
	struct vms_ph_metrics m;
	uint64_t p, n;

	vms_set_log_level(VMS_LOG_ERROR); /* the "was resident" warnings */
	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 2, 0, NULL, true));
	hu_tag_pages(&self->c, 0, 0, 3, 0);
	hu_tag_pages(&self->c, 0, 4, 3, 0);
	ASSERT_EQ(0, vms_ph_move_to_staging(self->c.ph, self->c.g.regions[0].addr, NULL));
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	hu_tag_pages(&self->c, 1, 0, 3, 0);
	ASSERT_EQ(0, vms_ph_move_to_staging(self->c.ph, self->c.g.regions[1].addr, NULL));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(6, m.swap_pages);
	ASSERT_EQ(3, m.staging_pages);
	/* Runs [0, 3) of region 0 (swapped) and [0, 2) of region 1 (staged) turn
	 * resident behind the handler's back. */
	hu_tag_pages(&self->c, 0, 0, 3, 1);
	hu_tag_pages(&self->c, 1, 0, 2, 1);

	/* The staged chunk: its first two pages are resident, the third is filled. */
	ASSERT_EQ(0, vms_ph_swap_in(self->c.ph, self->c.u.fd, 512, &n));
	ASSERT_EQ(1, n);
	/* The first swapped run is all resident: the chunk goes on to [4, 7). */
	ASSERT_EQ(0, vms_ph_swap_in(self->c.ph, self->c.u.fd, 512, &n));
	ASSERT_EQ(3, n);
	ASSERT_EQ(0, vms_ph_swap_in(self->c.ph, self->c.u.fd, 512, &n));
	ASSERT_EQ(0, n);
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(0, m.swap_pages);
	ASSERT_EQ(4, m.swap_in_pages);
	for (p = 0; p < 8; p++)
		ASSERT_EQ(p < 3 ? hu_tag(0, p, 1) : p > 3 && p < 7 ? hu_tag(0, p, 0) : 0,
			  hu_page_tag(hu_page(&self->c.g, 0, p)));
	for (p = 0; p < 4; p++)
		ASSERT_EQ(p < 2 ? hu_tag(1, p, 1) : p == 2 ? hu_tag(1, p, 0) : 0,
			  hu_page_tag(hu_page(&self->c.g, 1, p)));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

#define CHASE_PAGES 1024
#define CHASE_ROUNDS 8

struct chase {
	struct hu_ctx *c;
	uint64_t pages;
	unsigned int gen;
	uint64_t chunk;
	uint64_t chunks; /* calls made */
	uint64_t total; /* sum of the pages they reported */
	int ret;
	int bad;
	uint64_t bad_page, bad_tag; /* the first page read wrong, and what it held */
};

static void *chase_reader(void *arg)
{
	struct chase *s = arg;
	uint64_t p, tag;

	/* In the order swap-in fills, so that faults land on the run it is reading. */
	for (p = 0; p < s->pages; p++) {
		tag = hu_page_tag(hu_page(&s->c->g, 0, p));
		if (tag == hu_tag(0, p, s->gen))
			continue;
		if (!s->bad++) {
			s->bad_page = p;
			s->bad_tag = tag;
		}
	}
	return NULL;
}

static void *chase_swap_in(void *arg)
{
	struct chase *s = arg;
	uint64_t end = hu_now_ms() + HU_DEADLINE_MS, n;
	struct vms_ph_metrics m;

	for (;;) {
		s->ret = vms_ph_swap_in(s->c->ph, s->c->u.fd, s->chunk, &n);
		if (s->ret == -EAGAIN && hu_now_ms() < end)
			continue;
		if (s->ret)
			return NULL;
		s->chunks++;
		s->total += n;
		if (!n)
			break;
	}
	/* The caller believes swap-in is over: it must be. */
	m = hu_metrics(s->c->ph);
	if (m.staging_pages || m.swap_pages)
		s->ret = -EPROTO;
	return NULL;
}

/*
 * A REMOVE pending on the uffd (queued, not read yet) makes every fill fail with
 * EAGAIN: swap-in must return -EAGAIN with nothing changed, the pages it could not
 * fill still staged or swapped, and bring every one of them back once the REMOVE
 * was read (an EAGAIN taken for "filled" drops the page: it comes back as zeros).
 */
TEST_F(ph, swap_in_with_pending_remove_returns_eagain_and_loses_nothing)
{
	const uint64_t pages[] = { 8 };
	struct vms_ph_metrics m;
	struct hu_remover rm;
	struct hu_thread t;
	uint64_t p, n = 1;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	hu_tag_pages(&self->c, 0, 0, 4, 0);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512)); /* 0-3 in the file */
	hu_tag_pages(&self->c, 0, 4, 3, 0);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL)); /* 4-6 staged */
	hu_tag_pages(&self->c, 0, 7, 1, 0); /* 7 resident, to be removed */
	/* Queue the REMOVE with nobody reading (the loop starts below). */
	rm = (struct hu_remover){ .addr = hu_page(&self->c.g, 0, 7), .len = vms_page_size() };
	ASSERT_EQ(0, hu_thread_start(&t, hu_do_remove, &rm));
	ASSERT_EQ(0, hu_wait_readable(self->c.u.fd, HU_DEADLINE_MS));

	ASSERT_EQ(-EAGAIN, vms_ph_swap_in(self->c.ph, self->c.u.fd, 512, &n));
	ASSERT_EQ(0, n);
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(3, m.staging_pages);
	ASSERT_EQ(4, m.swap_pages);
	ASSERT_EQ(0, m.swap_in_pages);

	ASSERT_EQ(0, hu_loop_start(&self->c.loop, self->c.ph, self->c.u.fd));
	ASSERT_EQ(0, hu_thread_join(&t, HU_DEADLINE_MS));
	ASSERT_EQ(0, rm.ret);
	ASSERT_EQ(0, hu_swap_in_all(&self->c, 512));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(0, m.swap_pages);
	ASSERT_EQ(7, m.swap_in_pages);
	for (p = 0; p < 8; p++)
		ASSERT_EQ(p < 7 ? hu_tag(0, p, 0) : 0, hu_page_tag(hu_page(&self->c.g, 0, p)))
			TH_LOG("page %llu", (unsigned long long)p);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/*
 * Faults racing swap-in on the same run, one-page chunks: a fault served while
 * swap-in reads the page's slot (outside the lock) leaves the chunk nothing to
 * fill. The chunk must go on to the next page, not report the end: with the
 * early return, the caller stopped with pages still in the file.
 */
TEST_F(ph, swap_in_chunk_emptied_by_faults_does_not_report_the_end)
{
	const uint64_t pages[] = { CHASE_PAGES };
	uint64_t raced = 0, r;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	for (r = 0; r < CHASE_ROUNDS; r++) {
		struct chase s = { .c = &self->c, .pages = CHASE_PAGES, .gen = (unsigned int)r,
				   .chunk = 1 };
		struct hu_thread ts, tr;
		struct vms_ph_metrics m;

		hu_tag_pages(&self->c, 0, 0, CHASE_PAGES, s.gen);
		ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
		ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
		ASSERT_EQ(0, hu_thread_start(&tr, chase_reader, &s));
		ASSERT_EQ(0, hu_thread_start(&ts, chase_swap_in, &s));
		ASSERT_EQ(0, hu_thread_join(&ts, HU_DEADLINE_MS));
		ASSERT_EQ(0, hu_thread_join(&tr, HU_DEADLINE_MS));
		ASSERT_EQ(0, s.ret) TH_LOG("round %llu", (unsigned long long)r);
		m = hu_metrics(self->c.ph);
		ASSERT_EQ(0, s.bad)
		{
			TH_LOG("round %llu: page %llu read tag %#llx, want %#llx; now %#llx; "
			       "swap-in %llu, from file %llu, from staging %llu, zeroed %llu, "
			       "redundant %llu",
			       (unsigned long long)r, (unsigned long long)s.bad_page,
			       (unsigned long long)s.bad_tag,
			       (unsigned long long)hu_tag(0, s.bad_page, s.gen),
			       (unsigned long long)hu_page_tag(hu_page(&self->c.g, 0, s.bad_page)),
			       (unsigned long long)m.swap_in_pages,
			       (unsigned long long)m.copied_from_file_pages,
			       (unsigned long long)m.copied_from_staging_pages,
			       (unsigned long long)m.zeroed_pages, (unsigned long long)m.redundant_pages);
		}
		/*
		 * Every page filled once, by swap-in or a fault. A fault from staging is
		 * possible too: a fault message the loop read in the previous round and
		 * serves late, after this round's move (page_handler_race_test forces
		 * the interleavings). No page may have been filled with zeros.
		 */
		ASSERT_EQ(0, m.zeroed_pages);
		ASSERT_EQ(CHASE_PAGES, m.swap_in_pages + m.copied_from_file_pages +
					       m.copied_from_staging_pages);
		ASSERT_EQ(m.swap_in_pages, s.total);
		ASSERT_EQ(CHASE_PAGES, m.resident_pages);
		raced += m.copied_from_file_pages;
	}
	TH_LOG("pages faulted from the file while swap-in ran: %llu", (unsigned long long)raced);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

#define SO_RACE_ROUNDS 6

struct so_race {
	struct hu_ctx *c;
	pthread_barrier_t go; /* both threads start together */
	unsigned int gen;
	uint64_t written; /* sum of *written */
	int ret;
	int bad;
};

static void *so_race_swap_out(void *arg)
{
	struct so_race *s = arg;
	uint64_t n;

	pthread_barrier_wait(&s->go);
	for (;;) {
		s->ret = vms_ph_swap_out(s->c->ph, 512, &n);
		if (s->ret || !n)
			break;
		s->written += n;
	}
	/* 0 written: nothing may be staged any more. */
	if (!s->ret && hu_metrics(s->c->ph).staging_pages)
		s->ret = -EPROTO;
	return NULL;
}

static void *so_race_reader(void *arg)
{
	struct so_race *s = arg;
	uint64_t i, p;

	pthread_barrier_wait(&s->go);
	/* From the top down while swap-out goes up: they meet inside a run. */
	for (i = 0; i < RACE_PAGES; i++) {
		p = RACE_PAGES - 1 - i;
		if (hu_page_tag(hu_page(&s->c->g, 0, p)) != hu_tag(0, p, s->gen))
			s->bad++;
	}
	return NULL;
}

/*
 * *written counts the pages that became swapped, not those planned: pages faulted
 * in while their run was being written are not in the file. Every page is read
 * once per round: from staging if the reader came first, else from the file, so
 * the pages swapped out are exactly those faulted from the file.
 */
TEST_F(ph, swap_out_counts_only_pages_that_became_swapped)
{
	const uint64_t pages[] = { RACE_PAGES };
	uint64_t from_staging = 0, from_file = 0, r;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	for (r = 0; r < SO_RACE_ROUNDS; r++) {
		struct so_race s = { .c = &self->c, .gen = (unsigned int)r };
		struct hu_thread ts, tr;
		struct vms_ph_metrics m;

		hu_tag_pages(&self->c, 0, 0, RACE_PAGES, s.gen);
		ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
		ASSERT_EQ(0, pthread_barrier_init(&s.go, NULL, 2));
		ASSERT_EQ(0, hu_thread_start(&tr, so_race_reader, &s));
		ASSERT_EQ(0, hu_thread_start(&ts, so_race_swap_out, &s));
		ASSERT_EQ(0, hu_thread_join(&ts, HU_DEADLINE_MS));
		ASSERT_EQ(0, hu_thread_join(&tr, HU_DEADLINE_MS));
		pthread_barrier_destroy(&s.go);
		ASSERT_EQ(0, s.ret);
		ASSERT_EQ(0, s.bad);
		m = hu_metrics(self->c.ph); /* counters reset by each move */
		ASSERT_EQ(0, m.staging_pages);
		ASSERT_EQ(0, m.swap_pages);
		ASSERT_EQ(RACE_PAGES, m.copied_from_staging_pages + m.copied_from_file_pages);
		ASSERT_EQ(m.copied_from_file_pages, s.written) TH_LOG("round %llu",
								    (unsigned long long)r);
		ASSERT_EQ(RACE_PAGES, m.resident_pages);
		from_staging += m.copied_from_staging_pages;
		from_file += m.copied_from_file_pages;
	}
	TH_LOG("faulted from staging %llu, swapped and faulted from the file %llu",
	       (unsigned long long)from_staging, (unsigned long long)from_file);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

TEST_HARNESS_MAIN
