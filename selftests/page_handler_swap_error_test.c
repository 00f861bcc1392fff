// SPDX-License-Identifier: GPL-2.0-only
/*
 * page_handler_swap_error_test - swap-out failures (crosvm spec 9.2: a failed write
 * left pages both staged and "in the file"). A failed write must change no page
 * state: every page stays readable with its contents, and trim, swap-out and
 * swap-in keep working afterwards.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <vmmswap/log.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/test_hooks.h>

#include "kselftest_harness.h"
#include "lib/handler_util.h"

FIXTURE(ph)
{
	struct hu_ctx c;
	char dir[64];
	bool mounted;
};

FIXTURE_SETUP(ph)
{
	HU_CTX_SETUP(&self->c);
	vms_set_log_level(VMS_LOG_ERROR);
}

FIXTURE_TEARDOWN(ph)
{
	EXPECT_EQ(0, hu_ctx_destroy(&self->c));
	if (self->mounted)
		umount2(self->dir, MNT_DETACH);
	if (self->dir[0])
		rmdir(self->dir);
}

TEST_F(ph, swap_out_write_error_leaves_pages_readable)
{
	const uint64_t pages[] = { 16 };
	struct vms_ph_metrics m;
	uint64_t p, n;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	for (p = 0; p < 16; p++)
		hu_fill(hu_alias_page(&self->c.g, 0, p), hu_tag(0, p, 0));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	vms_ph_inject_write_error(self->c.ph, EIO);
	ASSERT_EQ(-EIO, vms_ph_swap_out(self->c.ph, 8, &n));
	ASSERT_EQ(0, n);
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(16, m.staging_pages);
	ASSERT_EQ(0, m.swap_pages);
	ASSERT_EQ(0, m.swap_file_slots); /* the slots taken for the write were returned */
	/* Served from staging, intact. */
	for (p = 0; p < 4; p++)
		ASSERT_EQ(hu_tag(0, p, 0), hu_page_tag(hu_page(&self->c.g, 0, p)));
	/* The handler is still usable: the retry writes what is still staged. */
	ASSERT_EQ(0, vms_ph_swap_out(self->c.ph, 512, &n));
	ASSERT_EQ(12, n);
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(12, m.swap_pages);
	for (p = 4; p < 10; p++)
		ASSERT_EQ(hu_tag(0, p, 0), hu_page_tag(hu_page(&self->c.g, 0, p)));
	ASSERT_EQ(0, hu_swap_in_all(&self->c, 512));
	ASSERT_EQ(16, hu_metrics(self->c.ph).resident_pages);
	for (p = 0; p < 16; p++)
		ASSERT_EQ(hu_tag(0, p, 0), hu_page_tag(hu_page(&self->c.g, 0, p)));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/*
 * A failed rewrite into CLEARED slots leaves new, torn and old bytes there: trim
 * may take a slot as a clean copy only where its bytes equal the staged page.
 */
TEST_F(ph, failed_rewrite_of_cleared_slots_is_trimmed_only_where_equal)
{
	const uint64_t pages[] = { 8 };
	struct vms_ph_trim t;
	struct vms_ph_metrics m;
	uint64_t p, n;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	for (p = 0; p < 8; p++)
		hu_fill(hu_alias_page(&self->c.g, 0, p), hu_tag(0, p, 0));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, vms_ph_swap_out(self->c.ph, 512, &n));
	for (p = 0; p < 8; p++) {
		ASSERT_EQ(hu_tag(0, p, 0), hu_page_tag(hu_page(&self->c.g, 0, p)));
		hu_fill(hu_page(&self->c.g, 0, p), hu_tag(0, p, 1));
	}
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	/* The injected failure writes 3.5 of the 8 pages, then fails. */
	vms_ph_inject_write_error(self->c.ph, EIO);
	ASSERT_EQ(-EIO, vms_ph_swap_out(self->c.ph, 512, &n));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(8, m.staging_pages);
	ASSERT_EQ(0, m.swap_pages);
	vms_ph_trim_init(&t);
	while (!t.done)
		ASSERT_EQ(0, vms_ph_trim(self->c.ph, &t, 1024, NULL));
	ASSERT_EQ(3, t.clean_pages); /* 0-2 landed; 3 is torn; 4-7 hold old data */
	ASSERT_EQ(0, t.zero_pages);
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(5, m.staging_pages);
	ASSERT_EQ(3, m.swap_pages);
	for (p = 0; p < 8; p++)
		ASSERT_EQ(hu_tag(0, p, 1), hu_page_tag(hu_page(&self->c.g, 0, p)));
	ASSERT_EQ(3, hu_metrics(self->c.ph).copied_from_file_pages);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

#define FULL_PAGES 512 /* 2 MiB of guest data into a 1 MiB file system */

TEST_F(ph, swap_out_into_full_filesystem_keeps_pages_readable)
{
	const uint64_t pages[] = { FULL_PAGES };
	struct vms_ph_metrics m;
	uint64_t p, n, out = 0;
	int ret;

	/* A private mount namespace, before any thread exists (unshare needs that). */
	if (unshare(CLONE_NEWNS))
		SKIP(return, "cannot unshare the mount namespace (no CAP_SYS_ADMIN): %s",
		     strerror(errno));
	ASSERT_EQ(0, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	snprintf(self->dir, sizeof(self->dir), "/tmp/vms-full-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	if (mount("tmpfs", self->dir, "tmpfs", 0, "size=1m"))
		SKIP(return, "cannot mount tmpfs: %s", strerror(errno));
	self->mounted = true;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, self->dir, true));
	for (p = 0; p < FULL_PAGES; p++)
		hu_fill(hu_alias_page(&self->c.g, 0, p), hu_tag(0, p, 0));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	do {
		ret = vms_ph_swap_out(self->c.ph, 64, &n);
		out += n;
	} while (!ret && n);
	ASSERT_EQ(-ENOSPC, ret);
	m = hu_metrics(self->c.ph);
	TH_LOG("swapped %llu pages before ENOSPC", (unsigned long long)out);
	ASSERT_EQ(out, m.swap_pages);
	ASSERT_EQ(FULL_PAGES, m.staging_pages + m.swap_pages);
	ASSERT_EQ(-ENOSPC, vms_ph_swap_out(self->c.ph, 64, &n)); /* still full, still sane */
	ASSERT_EQ(FULL_PAGES, hu_metrics(self->c.ph).staging_pages + hu_metrics(self->c.ph).swap_pages);
	/* Faults from file and from staging. */
	for (p = 0; p < FULL_PAGES; p += 7)
		ASSERT_EQ(hu_tag(0, p, 0), hu_page_tag(hu_page(&self->c.g, 0, p)));
	ASSERT_EQ(0, hu_swap_in_all(&self->c, 512));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(0, m.swap_pages);
	ASSERT_EQ(FULL_PAGES, m.resident_pages);
	for (p = 0; p < FULL_PAGES; p++)
		ASSERT_EQ(hu_tag(0, p, 0), hu_page_tag(hu_page(&self->c.g, 0, p)));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

TEST_HARNESS_MAIN
