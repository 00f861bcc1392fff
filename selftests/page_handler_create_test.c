// SPDX-License-Identifier: GPL-2.0-only
/*
 * page_handler_create_test - region validation at creation (spec 3.2, 7.2) and the
 * size of the per-page metadata (page_state.h states it per GiB of guest memory).
 * No userfaultfd is needed: these run unprivileged too.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmmswap/log.h>
#include <vmmswap/page_handler.h>
#include <vmmswap/page_state.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/test_hooks.h>

#include "kselftest_harness.h"

#define BASE 0x7f0000000000ULL

/* Create (and check: a fresh handler is consistent), then destroy. */
static int create(const struct vms_ph_region *r, size_t n, const char *dir)
{
	struct vms_ph_config cfg = { .regions = r, .nregions = n, .swap_dir = dir };
	struct vms_page_handler *ph = NULL;
	char why[256];
	int ret = vms_ph_create(&cfg, &ph);

	if (!ret) {
		ret = vms_ph_check(ph, why, sizeof(why));
		if (ret)
			fprintf(stderr, "# vms_ph_check: %s\n", why);
	}
	vms_ph_destroy(ph);
	return ret;
}

static struct vms_ph_region reg(uint64_t first_page, uint64_t npages)
{
	return (struct vms_ph_region){ .addr = BASE + first_page * vms_page_size(),
				       .len = npages * vms_page_size(),
				       .memfd = -1,
				       .memfd_off = 0 };
}

TEST(create_with_adjacent_regions_succeeds)
{
	struct vms_ph_region r[2] = { reg(0, 3), reg(3, 3) };

	ASSERT_EQ(0, create(r, 2, "/tmp"));
	/* Given in descending address order works too. */
	r[0] = reg(3, 3);
	r[1] = reg(0, 3);
	ASSERT_EQ(0, create(r, 2, "/tmp"));
}

/* crosvm's create_partially_overlap: identical, left, inside, right, covering. */
TEST(create_with_overlapping_regions_fails)
{
	const uint64_t second[][2] = { { 10, 4 }, { 8, 4 }, { 11, 2 }, { 12, 4 }, { 8, 8 } };
	size_t i;

	vms_set_log_level(VMS_LOG_ERROR);
	for (i = 0; i < sizeof(second) / sizeof(second[0]); i++) {
		struct vms_ph_region r[3] = { reg(0, 2), reg(10, 4),
					      reg(second[i][0], second[i][1]) };

		ASSERT_EQ(-EINVAL, create(r, 3, "/tmp")) TH_LOG("case %zu", i);
	}
}

TEST(create_with_invalid_range_fails)
{
	struct vms_ph_region r;

	r = reg(0, 0); /* empty */
	ASSERT_EQ(-EINVAL, create(&r, 1, "/tmp"));
	r = reg(0, 1); /* end before start (wraps) */
	r.len = UINT64_MAX - r.addr + vms_page_size() + 1;
	r.len &= ~(vms_page_size() - 1);
	ASSERT_EQ(-EINVAL, create(&r, 1, "/tmp"));
	r = reg(0, 1);
	r.addr += 1;
	ASSERT_EQ(-EINVAL, create(&r, 1, "/tmp"));
	r = reg(0, 1);
	r.len += 1;
	ASSERT_EQ(-EINVAL, create(&r, 1, "/tmp"));
	r = reg(0, 1);
	r.memfd_off = 512;
	ASSERT_EQ(-EINVAL, create(&r, 1, "/tmp"));
	ASSERT_EQ(-EINVAL, create(&r, 0, "/tmp"));
}

TEST(create_with_missing_swap_dir_fails)
{
	struct vms_ph_region r = reg(0, 4);

	ASSERT_EQ(-ENOENT, create(&r, 1, "/nonexistent-vmmswap-dir"));
}

/*
 * page_state.h states 1148416 bytes of page state per GiB and swap_file.h about
 * 33 KiB of slot bitmap, page_handler.h as much for the pages removed during a move:
 * measure what creation actually allocates.
 */
TEST(metadata_per_gib_matches_header)
{
	const uint64_t gib = 1ULL << 30, npages = gib / vms_page_size();
	struct vms_ph_region r = { .addr = BASE, .len = gib, .memfd = -1 };
	struct vms_ph_config cfg = { .regions = &r, .nregions = 1, .swap_dir = "/tmp" };
	struct vms_page_handler *ph = NULL;
	struct mallinfo2 before, after;
	uint64_t meta, heap, job = VMS_PH_MAX_CHUNK_BYTES;

	before = mallinfo2();
	ASSERT_EQ(0, vms_ph_create(&cfg, &ph));
	after = mallinfo2();
	meta = vms_ph_metadata_bytes(ph);
	heap = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
	TH_LOG("1 GiB guest: metadata %llu bytes (%.3f%%), heap growth %llu bytes "
	       "(incl. %llu of job buffers)",
	       (unsigned long long)meta, 100.0 * (double)meta / (double)gib,
	       (unsigned long long)heap, (unsigned long long)job);
	if (vms_page_size() == 4096) {
		ASSERT_EQ(1148416, vms_page_state_bytes(npages));
		/* slot bitmap, and the same bitmap size for the pages removed in a move */
		ASSERT_EQ(1148416 + 33280 + 33280, meta);
	}
	ASSERT_LE(meta, gib / 800); /* under 0.125 % */
	if (heap < meta) {
		/* A sanitizer's allocator does not feed mallinfo2(). */
		TH_LOG("heap growth not measurable with this allocator");
	} else {
		/* Besides metadata: job buffers (a chunk + 13 bytes per chunk page). */
		ASSERT_LE(heap, meta + job + 13 * (job / vms_page_size()) + 65536);
	}
	/* The consistency check copes with a large handler (after measuring). */
	ASSERT_EQ(0, vms_ph_check(ph, NULL, 0));
	vms_ph_destroy(ph);
}

TEST_HARNESS_MAIN
