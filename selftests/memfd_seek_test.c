// SPDX-License-Identifier: GPL-2.0-only
/*
 * memfd_seek_test - lseek(SEEK_DATA/SEEK_HOLE) on a memfd: the design counts resident
 * guest pages and finds pages to move with it, also while swap is disabled.
 *
 * The 'seek' tests need small pages. Their mapping is MADV_NOHUGEPAGE, and write(2)
 * gets small pages when shmem THP is "never", "deny" or "advise"; otherwise (e.g.
 * "always" or "within_size": then even a one-byte write may get a large folio) they
 * switch it to "never" for the test, as root, and SKIP without root. The 'seek_thp' test
 * needs a huge page: as root it switches shmem THP to "advise" (with MADV_HUGEPAGE)
 * when it is off. Either restores the old value in a teardown that runs in the parent
 * process, so a crash of the test body still restores it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "lib/contract.h"

#define NPAGES	      8
#define PMD_SIZE_FILE "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"

/* The shmem THP setting to restore in the teardown (changed: it was switched). */
struct thp_saved {
	char mode[32];
	bool changed;
};

/* Switch shmem THP to 'mode'. Call it last in a setup: after it nothing may fail. */
static int thp_switch(struct thp_saved *s, const char *mode)
{
	int r = ct_write_file(CT_THP_SHMEM, mode);

	s->changed = r == 0;
	return r;
}

static void thp_restore(struct __test_metadata *_metadata, struct thp_saved *s)
{
	if (s->changed && ct_write_file(CT_THP_SHMEM, s->mode))
		TH_LOG("could not restore %s to '%s'", CT_THP_SHMEM, s->mode);
	s->changed = false;
}

FIXTURE(seek)
{
	struct ct_env env;
	struct ct_mem m;
	size_t ps;
	struct thp_saved thp;
};

FIXTURE_SETUP(seek)
{
	int r;

	ct_env_init(&self->env);
	self->ps = self->env.page_size;
	self->m.memfd = -1;
	CT_REQUIRE_KERNEL(&self->env, 3, 17, "memfd_create");
	ASSERT_EQ(0, ct_mem_create(&self->m, NPAGES * self->ps, false, 0));
	/* No huge page for accesses through the mapping (EINVAL: no THP at all). */
	r = madvise(self->m.addr, self->m.len, MADV_NOHUGEPAGE);
	ASSERT_TRUE(r == 0 || errno == EINVAL) TH_LOG("MADV_NOHUGEPAGE: %s", strerror(errno));
	/* Other modes may give even a one-byte write(2) a large folio. */
	if (ct_sysfs_choice(CT_THP_SHMEM, self->thp.mode, sizeof(self->thp.mode)) ||
	    !strcmp(self->thp.mode, "never") || !strcmp(self->thp.mode, "deny") ||
	    !strcmp(self->thp.mode, "advise"))
		return;
	if (!self->env.root)
		SKIP(return, "shmem THP is '%s' (page-granular holes need small pages) and "
			     "switching it off needs root", self->thp.mode);
	/* Last step: nothing after this may fail, or the teardown would not run. */
	if (thp_switch(&self->thp, "never"))
		SKIP(return, "shmem THP is '%s' and %s cannot be written", self->thp.mode,
		     CT_THP_SHMEM);
}

FIXTURE_TEARDOWN_PARENT(seek)
{
	/* The memfd and its mapping belong to the test process and went with it. */
	thp_restore(_metadata, &self->thp);
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

FIXTURE(seek_thp)
{
	struct ct_env env;
	size_t hpage;
	struct thp_saved thp;
};

FIXTURE_SETUP(seek_thp)
{
	char buf[64];

	ct_env_init(&self->env);
	CT_REQUIRE_KERNEL(&self->env, 4, 8, "shmem huge pages");
	if (!self->env.root)
		SKIP(return, "needs root to write %s", CT_THP_SHMEM);
	if (ct_read_file(PMD_SIZE_FILE, buf, sizeof(buf)))
		SKIP(return, "no transparent huge pages (%s)", PMD_SIZE_FILE);
	self->hpage = strtoul(buf, NULL, 10);
	if (!self->hpage)
		SKIP(return, "no PMD size in %s", PMD_SIZE_FILE);
	if (ct_sysfs_choice(CT_THP_SHMEM, self->thp.mode, sizeof(self->thp.mode)))
		SKIP(return, "cannot read %s", CT_THP_SHMEM);
	/* Last step: nothing after this may fail, or the teardown would not run. */
	if ((!strcmp(self->thp.mode, "never") || !strcmp(self->thp.mode, "deny")) &&
	    thp_switch(&self->thp, "advise"))
		SKIP(return, "cannot write %s", CT_THP_SHMEM);
}

FIXTURE_TEARDOWN_PARENT(seek_thp)
{
	thp_restore(_metadata, &self->thp);
}

/* A memfd page held in a shmem huge page makes SEEK_DATA/SEEK_HOLE report data across
 * the whole huge page, up to its end: with THP-backed guest memory the resident count
 * and the pages moved to staging are huge-page granular, untouched pages included. */
TEST_F(seek_thp, data_across_huge_page)
{
	const size_t ps = self->env.page_size, hp = self->hpage, len = 2 * hp;
	const size_t off = 5 * ps; /* the page written, inside the first huge page */
	struct ct_mem m;
	char *buf;
	long pmd_kb;

	buf = ct_anon_map(ps);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, ct_mem_create(&m, len, false, hp));
	ASSERT_EQ(0, madvise(m.addr, len, MADV_HUGEPAGE));
	ct_fill(m.addr + off, ps, 41);
	pmd_kb = ct_smaps_field_kb(m.addr, "ShmemPmdMapped:");
	if (pmd_kb < (long)(hp / 1024)) {
		ct_mem_destroy(&m);
		SKIP(return, "the write got no shmem huge page (ShmemPmdMapped: %ld kB, "
			     "shmem THP '%s'): allocation fell back to small pages",
		     pmd_kb, self->thp.changed ? "advise" : self->thp.mode);
	}
	EXPECT_EQ(0, lseek(m.memfd, 0, SEEK_DATA)) TH_LOG("the huge page's start is not data");
	EXPECT_EQ((off_t)hp, lseek(m.memfd, 0, SEEK_HOLE));
	EXPECT_EQ((off_t)hp, lseek(m.memfd, off + ps, SEEK_HOLE))
		TH_LOG("the page after the written one is a hole");
	EXPECT_EQ((off_t)(hp - 1), lseek(m.memfd, hp - 1, SEEK_DATA));
	EXPECT_EQ(-1, lseek(m.memfd, hp, SEEK_DATA)) TH_LOG("the second huge page has data");
	EXPECT_EQ(ENXIO, errno);
	/* The written page holds its bytes; the rest of the huge page reads as zeroes. */
	ASSERT_EQ((ssize_t)ps, pread(m.memfd, buf, ps, (off_t)off));
	EXPECT_EQ(-1, ct_check(buf, ps, 41));
	ASSERT_EQ((ssize_t)ps, pread(m.memfd, buf, ps, 0));
	EXPECT_TRUE(ct_is_zero(buf, ps));
	ASSERT_EQ((ssize_t)ps, pread(m.memfd, buf, ps, (off_t)(hp - ps)));
	EXPECT_TRUE(ct_is_zero(buf, ps));
	ct_mem_destroy(&m);
	munmap(buf, ps);
}

TEST_HARNESS_MAIN
