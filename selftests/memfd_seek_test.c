// SPDX-License-Identifier: GPL-2.0-only
/*
 * memfd_seek_test - lseek(SEEK_DATA/SEEK_HOLE) on a memfd: the design counts resident
 * guest pages and finds pages to move with it, also while swap is disabled.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "lib/contract.h"

#define NPAGES 8

FIXTURE(seek)
{
	struct ct_env env;
	struct ct_mem m;
	size_t ps;
};

FIXTURE_SETUP(seek)
{
	char mode[32] = "";

	ct_env_init(&self->env);
	self->ps = self->env.page_size;
	self->m.memfd = -1;
	CT_REQUIRE_KERNEL(&self->env, 3, 17, "memfd_create");
	/* With shmem THP active a single write may allocate a huge folio. */
	if (ct_sysfs_choice(CT_THP_SHMEM, mode, sizeof(mode)) == 0 && strcmp(mode, "never") &&
	    strcmp(mode, "deny"))
		SKIP(return, "shmem THP is '%s': page-granular holes need small pages", mode);
	ASSERT_EQ(0, ct_mem_create(&self->m, NPAGES * self->ps, false, 0));
}

FIXTURE_TEARDOWN(seek)
{
	ct_mem_destroy(&self->m);
}

static off_t seek(FIXTURE_DATA(seek) *self, size_t off, int whence)
{
	return lseek(self->m.memfd, (off_t)off, whence);
}

/* Holes and data are reported at page granularity: one written byte makes its whole
 * page data, and only that page. */
TEST_F(seek, holes_page_granular)
{
	size_t ps = self->ps;

	EXPECT_EQ(-1, seek(self, 0, SEEK_DATA));
	EXPECT_EQ(ENXIO, errno) TH_LOG("an empty memfd has data");
	ASSERT_EQ(1, pwrite(self->m.memfd, "x", 1, 2 * ps + 100));
	ASSERT_EQ(1, pwrite(self->m.memfd, "y", 1, 5 * ps));
	EXPECT_EQ((off_t)(2 * ps), seek(self, 0, SEEK_DATA));
	EXPECT_EQ((off_t)(2 * ps + 7), seek(self, 2 * ps + 7, SEEK_DATA));
	EXPECT_EQ((off_t)(3 * ps), seek(self, 2 * ps, SEEK_HOLE));
	EXPECT_EQ((off_t)(5 * ps), seek(self, 3 * ps, SEEK_DATA));
	EXPECT_EQ((off_t)(6 * ps), seek(self, 5 * ps + 1, SEEK_HOLE));
	EXPECT_EQ(-1, seek(self, 6 * ps, SEEK_DATA));
	EXPECT_EQ(ENXIO, errno);
	/* An offset inside a hole is its own SEEK_HOLE answer. */
	EXPECT_EQ((off_t)(7 * ps + 3), seek(self, 7 * ps + 3, SEEK_HOLE));
}

/* MADV_REMOVE through a mapping punches the memfd: SEEK_DATA skips the page (the
 * balloon's discards lower the resident count). */
TEST_F(seek, reflects_madv_remove)
{
	size_t ps = self->ps;

	memset(self->m.addr, 0x5a, 4 * ps);
	EXPECT_EQ((off_t)(4 * ps), seek(self, 0, SEEK_HOLE));
	ASSERT_EQ(0, madvise(self->m.addr + ps, ps, MADV_REMOVE));
	EXPECT_EQ((off_t)ps, seek(self, 0, SEEK_HOLE));
	EXPECT_EQ((off_t)(2 * ps), seek(self, ps, SEEK_DATA));
	EXPECT_EQ(0, self->m.addr[ps]) TH_LOG("a removed page kept its data");
}

/* fallocate(PUNCH_HOLE) is visible to SEEK_HOLE/SEEK_DATA: the monitor's own punches
 * (after swap-out) lower the resident count. */
TEST_F(seek, reflects_punch_hole)
{
	size_t ps = self->ps;

	memset(self->m.addr, 0x5a, 4 * ps);
	ASSERT_EQ(0, fallocate(self->m.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (off_t)(2 * ps), (off_t)ps));
	EXPECT_EQ((off_t)(2 * ps), seek(self, 0, SEEK_HOLE));
	EXPECT_EQ((off_t)(3 * ps), seek(self, 2 * ps, SEEK_DATA));
	EXPECT_EQ((off_t)(4 * ps), seek(self, 3 * ps, SEEK_HOLE));
	EXPECT_EQ(0, self->m.addr[2 * ps]) TH_LOG("a punched page kept its data");
}

TEST_HARNESS_MAIN
