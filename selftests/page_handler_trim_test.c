// SPDX-License-Identifier: GPL-2.0-only
/*
 * page_handler_trim_test - trim (spec 3.6, 7.2): staged zero pages are dropped,
 * staged pages identical to their CLEARED slot go back to the file, changed pages
 * stay staged; in bounded batches.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <vmmswap/pagesize.h>

#include "kselftest_harness.h"
#include "lib/handler_util.h"

HU_FIXTURE(ph)

static int trim_all(struct vms_page_handler *ph, struct vms_ph_trim *t, uint64_t batch)
{
	int ret = 0;

	vms_ph_trim_init(t);
	while (!t->done && !ret)
		ret = vms_ph_trim(ph, t, batch, NULL);
	return ret;
}

/* crosvm's trim_success, as totals (our trim does not stop at region ends). */
TEST_F(ph, trim_drops_zero_pages_and_returns_clean_pages_to_file)
{
	const uint64_t pages[] = { 3, 3 };
	const uint64_t want[2][3] = { { 0, hu_tag(0, 1, 0), 0 },
				      { 0, hu_tag(1, 1, 1), hu_tag(1, 2, 0) } };
	struct vms_ph_trim t;
	struct vms_ph_metrics m;
	uint64_t p, n;
	size_t r;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 2, 0, NULL, true));
	memset(hu_alias_page(&self->c.g, 0, 0), 0, vms_page_size()); /* explicit zero */
	hu_fill(hu_alias_page(&self->c.g, 0, 1), hu_tag(0, 1, 0));
	memset(hu_alias_page(&self->c.g, 1, 0), 0, vms_page_size());
	hu_fill(hu_alias_page(&self->c.g, 1, 1), hu_tag(1, 1, 0));
	hu_fill(hu_alias_page(&self->c.g, 1, 2), hu_tag(1, 2, 0));
	n = 0;
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, &n));
	ASSERT_EQ(5, n);
	ASSERT_EQ(0, trim_all(self->c.ph, &t, 1024));
	ASSERT_EQ(2, t.zero_pages);
	ASSERT_EQ(0, t.clean_pages);
	ASSERT_EQ(3, hu_metrics(self->c.ph).staging_pages);

	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	for (r = 0; r < 2; r++)
		for (p = 0; p < 3; p++) /* the zero fills make every page resident */
			ASSERT_EQ(r == 1 && p == 1 ? hu_tag(1, 1, 0) : want[r][p],
				  hu_page_tag(hu_page(&self->c.g, r, p)));
	hu_fill(hu_page(&self->c.g, 1, 1), hu_tag(1, 1, 1));
	n = 0;
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, &n));
	ASSERT_EQ(6, n);
	ASSERT_EQ(0, trim_all(self->c.ph, &t, 1024));
	ASSERT_EQ(3, t.zero_pages); /* zero-filled by faults: r0p0, r0p2, r1p0 */
	ASSERT_EQ(2, t.clean_pages); /* r0p1 and r1p2: unchanged since swap-out */
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(1, m.staging_pages); /* r1p1 was rewritten */
	ASSERT_EQ(2, m.swap_pages);
	ASSERT_EQ(3, m.swap_file_slots);
	ASSERT_EQ(0, hu_swap_in_all(&self->c, 512));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(0, m.swap_pages);
	for (r = 0; r < 2; r++)
		for (p = 0; p < 3; p++)
			ASSERT_EQ(want[r][p], hu_page_tag(hu_page(&self->c.g, r, p)));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

#define BATCH_PAGES 1000

/* Each call looks at no more than its batch of staged pages. */
TEST_F(ph, trim_works_in_bounded_batches)
{
	const uint64_t pages[] = { 4 * BATCH_PAGES };
	struct vms_ph_trim t;
	uint64_t p, n, calls = 0, total = 0;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	/* Every 4th page staged: half zero, half data. */
	for (p = 0; p < 4 * BATCH_PAGES; p += 4) {
		if (p % 8)
			hu_fill(hu_alias_page(&self->c.g, 0, p), hu_tag(0, p, 0));
		else
			memset(hu_alias_page(&self->c.g, 0, p), 0, vms_page_size());
	}
	n = 0;
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, &n));
	ASSERT_EQ(BATCH_PAGES, n);
	vms_ph_trim_init(&t);
	while (!t.done) {
		ASSERT_EQ(0, vms_ph_trim(self->c.ph, &t, 100, &n));
		ASSERT_LE(n, 100);
		total += n;
		calls++;
		ASSERT_LE(calls, 11);
	}
	ASSERT_EQ(BATCH_PAGES / 2, total);
	ASSERT_EQ(BATCH_PAGES / 2, t.zero_pages);
	ASSERT_EQ(BATCH_PAGES / 2, hu_metrics(self->c.ph).staging_pages);
	for (p = 0; p < 4 * BATCH_PAGES; p++)
		ASSERT_EQ(p % 4 == 0 && p % 8 ? hu_tag(0, p, 0) : 0,
			  hu_page_tag(hu_page(&self->c.g, 0, p)));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

TEST_HARNESS_MAIN
