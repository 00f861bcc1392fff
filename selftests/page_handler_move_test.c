// SPDX-License-Identifier: GPL-2.0-only
/*
 * page_handler_move_test - moving resident guest pages to staging (enable, spec
 * 3.5, 7.2): what moves, hugepage-sized batches, the base-address check, and that
 * a second move only takes pages that became resident again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <vmmswap/pagesize.h>

#include "kselftest_harness.h"
#include "lib/handler_util.h"

HU_FIXTURE(ph)

/* crosvm's move_to_staging_data_written_before_enabling. */
TEST_F(ph, data_written_before_enable_moves_to_staging)
{
	const uint64_t pages[] = { 3, 3 };
	const uint64_t want[2][3] = { { 0, hu_tag(0, 1, 0), 0 },
				      { 0, hu_tag(1, 1, 0), hu_tag(1, 2, 0) } };
	uint64_t moved = 0, p;
	struct vms_ph_metrics m;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 2, 0, NULL, true));
	ASSERT_EQ(3 * vms_page_size(), self->c.g.regions[1].memfd_off);
	hu_fill(hu_alias_page(&self->c.g, 0, 1), hu_tag(0, 1, 0));
	hu_fill(hu_alias_page(&self->c.g, 1, 1), hu_tag(1, 1, 0));
	hu_fill(hu_alias_page(&self->c.g, 1, 2), hu_tag(1, 2, 0));
	ASSERT_EQ(3, hu_metrics(self->c.ph).resident_pages);
	ASSERT_EQ(0, vms_ph_move_to_staging(self->c.ph, self->c.g.regions[0].addr, &moved));
	ASSERT_EQ(0, vms_ph_move_to_staging(self->c.ph, self->c.g.regions[1].addr, &moved));
	ASSERT_EQ(3, moved);
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(0, m.resident_pages);
	ASSERT_EQ(3, m.staging_pages);
	for (p = 0; p < 3; p++) {
		ASSERT_EQ(want[0][p], hu_page_tag(hu_page(&self->c.g, 0, p)));
		ASSERT_EQ(want[1][p], hu_page_tag(hu_page(&self->c.g, 1, p)));
	}
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

static bool in(uint64_t p, uint64_t a, uint64_t b)
{
	return p >= a && p < b;
}

/*
 * crosvm's move_to_staging_hugepage_chunks: extents that straddle or fill THP
 * blocks, in THP-aligned regions of 5 blocks each; every page keeps its value.
 */
TEST_F(ph, move_keeps_hugepage_sized_chunks_intact)
{
	const uint64_t T = vms_thp_size() / vms_page_size();
	const uint64_t pages[] = { 5 * T, 5 * T };
	uint64_t moved = 0, p, expect_moved = 0;
	bool data[2];

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 2, HU_THP_ALIGN, NULL, true));
	for (p = 0; p < 5 * T; p++) {
		data[0] = in(p, 1, 3) || in(p, T - 1, T + 1) || in(p, 2 * T + 1, 3 * T + 2);
		data[1] = in(p, T, 2 * T) || in(p, 2 * T + 1, 5 * T - 1);
		if (data[0])
			hu_fill(hu_alias_page(&self->c.g, 0, p), hu_tag(0, p, 0));
		if (data[1])
			hu_fill(hu_alias_page(&self->c.g, 1, p), hu_tag(1, p, 0));
		expect_moved += data[0] + data[1];
	}
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, &moved));
	ASSERT_EQ(expect_moved, moved);
	ASSERT_EQ(0, hu_metrics(self->c.ph).resident_pages);
	for (p = 0; p < 5 * T; p++) {
		data[0] = in(p, 1, 3) || in(p, T - 1, T + 1) || in(p, 2 * T + 1, 3 * T + 2);
		data[1] = in(p, T, 2 * T) || in(p, 2 * T + 1, 5 * T - 1);
		ASSERT_EQ(data[0] ? hu_tag(0, p, 0) : 0, hu_page_tag(hu_page(&self->c.g, 0, p)));
		ASSERT_EQ(data[1] ? hu_tag(1, p, 0) : 0, hu_page_tag(hu_page(&self->c.g, 1, p)));
	}
	ASSERT_EQ(expect_moved, hu_metrics(self->c.ph).copied_from_staging_pages);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/* crosvm's move_to_staging_invalid_base_addr. */
TEST_F(ph, move_with_wrong_base_address_fails)
{
	const uint64_t pages[] = { 3 };
	uint64_t base, ps = vms_page_size();

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	hu_fill(hu_alias_page(&self->c.g, 0, 0), hu_tag(0, 0, 0));
	base = self->c.g.regions[0].addr;
	ASSERT_EQ(-EINVAL, vms_ph_move_to_staging(self->c.ph, base + ps, NULL));
	ASSERT_EQ(-EINVAL, vms_ph_move_to_staging(self->c.ph, base - ps, NULL));
	ASSERT_EQ(1, hu_metrics(self->c.ph).resident_pages);
	ASSERT_EQ(0, hu_metrics(self->c.ph).staging_pages);
	ASSERT_EQ(hu_tag(0, 0, 0), hu_page_tag(hu_page(&self->c.g, 0, 0)));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/* Staged and swapped pages are not resident: a second move takes only new ones. */
TEST_F(ph, second_move_takes_only_pages_resident_again)
{
	const uint64_t pages[] = { 8 };
	uint64_t moved = 0, n, p;
	struct vms_ph_metrics m;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	for (p = 0; p < 8; p++)
		hu_fill(hu_alias_page(&self->c.g, 0, p), hu_tag(0, p, 0));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, &moved));
	ASSERT_EQ(8, moved);
	ASSERT_EQ(0, vms_ph_swap_out(self->c.ph, 4, &n)); /* pages 0-3 to the file */
	ASSERT_EQ(4, n);
	ASSERT_EQ(hu_tag(0, 1, 0), hu_page_tag(hu_page(&self->c.g, 0, 1))); /* file */
	ASSERT_EQ(hu_tag(0, 6, 0), hu_page_tag(hu_page(&self->c.g, 0, 6))); /* staging */
	hu_fill(hu_page(&self->c.g, 0, 6), hu_tag(0, 6, 1));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(1, m.copied_from_file_pages);
	ASSERT_EQ(1, m.copied_from_staging_pages);

	moved = 0;
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, &moved));
	ASSERT_EQ(2, moved);
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(0, m.resident_pages);
	ASSERT_EQ(5, m.staging_pages); /* 1, 4, 5, 6, 7 */
	ASSERT_EQ(3, m.swap_pages); /* 0, 2, 3; page 1 keeps a CLEARED slot */
	ASSERT_EQ(0, m.copied_from_file_pages); /* the counters restart per enable */
	ASSERT_EQ(0, m.copied_from_staging_pages);
	for (p = 0; p < 8; p++)
		ASSERT_EQ(hu_tag(0, p, p == 6), hu_page_tag(hu_page(&self->c.g, 0, p)));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/* 64 MiB with holes: the worker threads move every populated page exactly once. */
TEST_F(ph, parallel_move_of_large_region_keeps_every_page)
{
	const uint64_t npages = (64ULL << 20) / vms_page_size();
	const uint64_t pages[] = { npages };
	uint64_t moved = 0, p, want = 0;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, HU_THP_ALIGN, NULL, true));
	for (p = 0; p < npages; p++) {
		if (p % 7 == 3)
			continue; /* holes */
		hu_fill(hu_alias_page(&self->c.g, 0, p), hu_tag(0, p, 0));
		want++;
	}
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, &moved));
	ASSERT_EQ(want, moved);
	ASSERT_EQ(0, hu_metrics(self->c.ph).resident_pages);
	ASSERT_EQ(want, hu_metrics(self->c.ph).staging_pages);
	for (p = 0; p < npages; p++)
		ASSERT_EQ(p % 7 == 3 ? 0 : hu_tag(0, p, 0), hu_page_tag(hu_page(&self->c.g, 0, p)));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

TEST_HARNESS_MAIN
