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
	return ret ? ret : hu_check_ph(ph);
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

/* The one non-zero byte of each page the next test stages, and what it holds. */
static uint64_t lone_byte_offset(unsigned int i)
{
	uint64_t ps = vms_page_size();
	const uint64_t offs[] = {
		64,	     /* the first byte past the first cache line */
		ps / 2 + 7,  /* the middle, not word aligned */
		ps - 1,	     /* the very last byte */
		9,	     /* in the first cache line, not in its first word */
	};

	return offs[i];
}
#define LONE_PAGES 4
#define LONE_VALUE 0x5a

/* Page p of the next test: page 0 all zero, page i + 1 zero but for lone byte i. */
static void lone_fill(uint8_t *page, uint64_t p)
{
	memset(page, 0, vms_page_size());
	if (p)
		page[lone_byte_offset((unsigned int)(p - 1))] = LONE_VALUE;
}

/*
 * Trim drops only pages whose every byte is zero. A page that is zero but for
 * one byte anywhere (past the first cache line, in the middle, the very last
 * byte) is data: it must keep that byte through trim, swap-out, a fault and a
 * full swap-in (a zero test that looked at a prefix only would drop it, and the
 * page would come back as zeros).
 */
TEST_F(ph, trim_keeps_a_page_whose_only_nonzero_byte_is_anywhere)
{
	const uint64_t pages[] = { LONE_PAGES + 1 };
	uint64_t ps = vms_page_size(), p, n = 0;
	uint8_t *want = malloc(ps);
	struct vms_ph_metrics m;
	struct vms_ph_trim t;

	ASSERT_NE(NULL, want);
	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	for (p = 0; p <= LONE_PAGES; p++)
		lone_fill(hu_alias_page(&self->c.g, 0, p), p);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, &n));
	ASSERT_EQ(LONE_PAGES + 1, n);
	ASSERT_EQ(0, trim_all(self->c.ph, &t, 1024));
	ASSERT_EQ(1, t.zero_pages); /* page 0 only */
	ASSERT_EQ(0, t.clean_pages);
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(LONE_PAGES, m.staging_pages);

	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(LONE_PAGES, m.swap_pages);
	ASSERT_EQ(LONE_PAGES, m.swap_file_slots);
	/* A fault from the file: the last-byte page. */
	lone_fill(want, 3);
	ASSERT_EQ(0, memcmp(want, hu_page(&self->c.g, 0, 3), ps));
	ASSERT_EQ(1, hu_metrics(self->c.ph).copied_from_file_pages);
	/* Disable: everything else back by swap-in. */
	ASSERT_EQ(0, hu_swap_in_all(&self->c, 512));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(LONE_PAGES - 1, m.swap_in_pages);
	ASSERT_EQ(0, m.swap_pages);
	for (p = 0; p <= LONE_PAGES; p++) {
		lone_fill(want, p);
		ASSERT_EQ(0, memcmp(want, hu_page(&self->c.g, 0, p), ps))
			TH_LOG("page %llu lost its byte", (unsigned long long)p);
	}
	/* Page 0 was dropped, so its read was a zero fill. */
	ASSERT_EQ(1, hu_metrics(self->c.ph).zeroed_pages);
	free(want);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/*
 * A staged page that trim drops as zero needs no copy anywhere: the CLEARED slot
 * it kept from an earlier swap-out is given back, and the file can shrink (a
 * kept slot would stay allocated, unused, until the next disable).
 */
TEST_F(ph, trim_of_a_zeroed_page_gives_its_slot_back)
{
	const uint64_t pages[] = { 8 };
	struct vms_ph_metrics m;
	struct vms_ph_trim t;
	uint64_t p;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	hu_tag_pages(&self->c, 0, 0, 8, 0);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	ASSERT_EQ(8, hu_metrics(self->c.ph).swap_file_slots);
	/* Faulted back (each keeps its slot, CLEARED); the guest zeroes pages 4-7. */
	for (p = 0; p < 8; p++) {
		ASSERT_EQ(hu_tag(0, p, 0), hu_page_tag(hu_page(&self->c.g, 0, p)));
		if (p >= 4)
			memset(hu_page(&self->c.g, 0, p), 0, vms_page_size());
	}
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, trim_all(self->c.ph, &t, 1024));
	ASSERT_EQ(4, t.zero_pages);
	ASSERT_EQ(4, t.clean_pages);
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(4, m.swap_pages);
	ASSERT_EQ(4, m.swap_file_slots); /* slots 4-7 given back */
	for (p = 0; p < 8; p++)
		ASSERT_EQ(p < 4 ? hu_tag(0, p, 0) : 0, hu_page_tag(hu_page(&self->c.g, 0, p)));
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
