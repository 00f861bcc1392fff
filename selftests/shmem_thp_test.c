// SPDX-License-Identifier: GPL-2.0-only
/*
 * shmem_thp_test - guest memory backed by shmem huge pages: a balloon discard of part
 * of a huge page must still leave MISSING holes for the monitor to fill, and must not
 * disturb the rest of the huge page.
 *
 * Needs root: it sets CT_THP_SHMEM to "always" for the test and restores it in a
 * teardown that runs in the parent process, so a crash of the test body still
 * restores it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "lib/contract.h"

#define PMD_SIZE_FILE "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"

FIXTURE(thp)
{
	struct ct_env env;
	char saved[32];
	bool changed;
	size_t hpage;
};

FIXTURE_SETUP(thp)
{
	char buf[64];

	ct_env_init(&self->env);
	if (!self->env.root)
		SKIP(return, "needs root to write %s", CT_THP_SHMEM);
	if (ct_read_file(PMD_SIZE_FILE, buf, sizeof(buf)))
		SKIP(return, "no transparent huge pages (%s)", PMD_SIZE_FILE);
	self->hpage = strtoul(buf, NULL, 10);
	if (!self->hpage)
		SKIP(return, "no PMD size in %s", PMD_SIZE_FILE);
	if (ct_sysfs_choice(CT_THP_SHMEM, self->saved, sizeof(self->saved)))
		SKIP(return, "cannot read %s", CT_THP_SHMEM);
	/* Last step: nothing after this may fail, or the teardown would not run. */
	if (strcmp(self->saved, "always")) {
		if (ct_write_file(CT_THP_SHMEM, "always"))
			SKIP(return, "cannot write %s", CT_THP_SHMEM);
		self->changed = true;
	}
}

FIXTURE_TEARDOWN_PARENT(thp)
{
	if (self->changed && ct_write_file(CT_THP_SHMEM, self->saved))
		TH_LOG("could not restore %s to '%s'", CT_THP_SHMEM, self->saved);
}

/* MADV_REMOVE of a sub-range of a (possibly) huge shmem page gives a REMOVE for that
 * range; later accesses to it fault as MISSING, while the rest of the huge page keeps
 * its data: the balloon works on 4K pages even when guest memory uses THP. */
TEST_F_TIMEOUT(thp, madv_remove_subrange_faults_missing, 60)
{
	const size_t ps = self->env.page_size, len = 2 * self->hpage;
	const size_t off = 16 * ps, rlen = 2 * ps; /* inside the first huge page */
	struct ct_uffd u;
	struct ct_mem m;
	struct ct_reader r;
	struct ct_async a;
	struct ct_madv madv;
	struct uffd_msg msg;
	char *want;
	long pmd_kb;
	int w;

	CT_REQUIRE_KERNEL(&self->env, 4, 14, "UFFDIO_ZEROPAGE on shmem (THP)");
	CT_UFFD_OPEN_OR_SKIP(&u, &self->env, CT_VIA_ANY | CT_USER_MODE_OK,
			     UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE);
	want = ct_anon_map(len);
	ASSERT_NE(NULL, want);
	ct_fill(want, len, 13);
	ASSERT_EQ(0, ct_mem_create(&m, len, false, self->hpage));
	memcpy(m.addr, want, len);
	pmd_kb = ct_smaps_field_kb(m.addr, "ShmemPmdMapped:");
	TH_LOG("ShmemPmdMapped: %ld kB of %zu kB (huge pages %s)", pmd_kb, len / 1024,
	       pmd_kb > 0 ? "in use" : "not in use");

	ASSERT_EQ(0, ct_register(u.fd, m.addr, m.len, UFFDIO_REGISTER_MODE_MISSING, NULL));
	/* Serve faults with zero pages, so an unexpected fault cannot hang the test. */
	ASSERT_EQ(0, ct_reader_start(&r, u.fd, CT_SERVE_ZERO, ps));

	madv = (struct ct_madv){ .addr = m.addr + off, .len = rlen, .advice = MADV_REMOVE };
	ASSERT_EQ(0, ct_async_start(&a, ct_madvise_fn, &madv));
	ASSERT_EQ(0, ct_reader_wait(&r, UFFD_EVENT_REMOVE, &msg, CT_DEADLINE_MS));
	EXPECT_EQ((uintptr_t)(m.addr + off), msg.arg.remove.start);
	EXPECT_EQ((uintptr_t)(m.addr + off + rlen), msg.arg.remove.end);
	ASSERT_TRUE(ct_async_done_within(&a, CT_DEADLINE_MS));
	ASSERT_EQ(0, a.ret);

	/* The rest of both huge pages keeps its data, without any fault. */
	EXPECT_EQ(0, memcmp(m.addr, want, off));
	EXPECT_EQ(0, memcmp(m.addr + off + rlen, want + off + rlen, len - off - rlen));
	EXPECT_EQ(0, ct_reader_nr_faults(&r))
		TH_LOG("kept pages faulted (served as zero)");

	/* The removed sub-range faults as MISSING, page by page. */
	EXPECT_TRUE(ct_is_zero(m.addr + off, rlen));
	for (size_t i = 0; i < rlen / ps; i++) {
		w = ct_reader_wait(&r, UFFD_EVENT_PAGEFAULT, &msg, CT_NEGATIVE_MS);

		EXPECT_EQ(0, w) TH_LOG("no MISSING fault for removed page %zu (zeroed in place?)",
				       i);
		if (w)
			break;
		EXPECT_EQ((uintptr_t)(m.addr + off + i * ps), msg.arg.pagefault.address);
		EXPECT_EQ(0, msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_MINOR);
	}
	w = ct_reader_stop(&r);
	EXPECT_EQ(0, w) TH_LOG("reader error %s", strerror(-w));
	ct_mem_destroy(&m);
	munmap(want, len);
	ct_uffd_close(&u);
}

TEST_HARNESS_MAIN
