// SPDX-License-Identifier: GPL-2.0-only
/*
 * hugetlb_uffd_test - userfaultfd on hugetlb guest memory: a memfd_create(MFD_HUGETLB |
 * MFD_HUGE_2MB) mapped MAP_SHARED and registered in MISSING mode. What the swap design
 * relies on when guest memory is backed by 2 MiB huge pages: the fault address, the
 * fill ioctls' granularity, REMOVE events, how residency can be counted, and what a
 * fill does when the huge page pool is exhausted.
 *
 * The program needs NRESERVE free 2 MiB huge pages. As root it raises nr_hugepages by
 * what is missing and writes the old value back in a teardown that runs in the parent
 * process (so a crash of the test body still restores it), and a destructor of the
 * main process restores it once more should a test have been killed on a timeout.
 * Without root and too few free huge pages, or without hugetlb, every test SKIPs.
 *
 * Version gates: MISSING faults on hugetlbfs (UFFD_FEATURE_MISSING_HUGETLBFS) and
 * UFFD_EVENT_REMOVE from MADV_REMOVE 4.11, hugetlbfs hole punching (what MADV_REMOVE
 * calls) 4.3, memfd_create(MFD_HUGETLB) 4.14, UFFD_FEATURE_EXACT_ADDRESS 5.18, zeroing
 * of a partial huge page by a hole punch 5.19 (commit 68d32527d340, "hugetlbfs: zero
 * partial pages during fallocate hole punch"; before, the partial range was ignored).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "lib/contract.h"

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif

#define HPAGE_KB  2048UL
#define NPAGES	  4	/* huge pages of the test mapping */
#define NRESERVE  8	/* free huge pages the program needs */
#define SEED	  31

/* nr_hugepages at start, for the destructor's last-resort restore. */
static struct ct_hugepages pool_at_start;
static long nr_at_start = -1;
static pid_t main_pid;

__attribute__((constructor)) static void pool_note(void)
{
	char why[256];

	main_pid = getpid();
	if (!ct_hugepages_init(&pool_at_start, HPAGE_KB, why, sizeof(why)))
		nr_at_start = ct_hugepages_read(&pool_at_start, "nr_hugepages");
}

__attribute__((destructor)) static void pool_backstop(void)
{
	if (getpid() != main_pid || nr_at_start < 0 || geteuid() != 0 ||
	    ct_hugepages_read(&pool_at_start, "nr_hugepages") == nr_at_start)
		return;
	pool_at_start.saved = nr_at_start;
	pool_at_start.changed = true;
	if (ct_hugepages_restore(&pool_at_start))
		fprintf(stderr, "# could not restore %s/nr_hugepages to %ld\n",
			pool_at_start.dir, nr_at_start);
}

FIXTURE(huge)
{
	struct ct_env env;
	struct ct_hugepages hp;
	struct ct_uffd u;
	size_t ps, hps, len;
	int memfd;
	char *addr;	/* the registered mapping */
	char *alias;	/* a second, unregistered mapping of the same memfd */
	char *src;	/* 2 huge pages: SEED and SEED + 1 patterns */
	uint64_t reg_ioctls;
	struct ct_async a;
	struct ct_touch t;
	struct ct_madv madv;
};

FIXTURE_SETUP(huge)
{
	char why[256] = "";
	int r;

	ct_env_init(&self->env);
	self->ps = self->env.page_size;
	self->hps = HPAGE_KB * 1024;
	self->len = NPAGES * self->hps;
	self->memfd = -1;
	self->u.fd = -1;
	CT_REQUIRE_KERNEL(&self->env, 4, 14, "memfd_create(MFD_HUGETLB)");
	r = ct_hugepages_init(&self->hp, HPAGE_KB, why, sizeof(why));
	if (r == CT_SKIP)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, r);
	self->memfd = memfd_create("vmmswap-hugetlb", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB);
	if (self->memfd < 0 && (errno == EINVAL || errno == ENOSYS) && self->env.any_kernel)
		SKIP(return, "memfd_create(MFD_HUGETLB | MFD_HUGE_2MB): %s (" CT_ENV_ANY_KERNEL
		     "=1: skipped)", strerror(errno));
	ASSERT_LE(0, self->memfd) TH_LOG("memfd_create(MFD_HUGETLB | MFD_HUGE_2MB): %s",
					 strerror(errno));
	ASSERT_EQ(0, ftruncate(self->memfd, (off_t)self->len));
	CT_UFFD_OPEN_OR_SKIP(&self->u, &self->env, CT_VIA_ANY | CT_USER_MODE_OK,
			     UFFD_FEATURE_MISSING_HUGETLBFS | UFFD_FEATURE_EVENT_REMOVE);
	self->src = ct_anon_map(2 * self->hps);
	ASSERT_NE(NULL, self->src);
	ct_fill(self->src, self->hps, SEED);
	ct_fill(self->src + self->hps, self->hps, SEED + 1);
	/* Last step: nothing after this may fail, or the teardown would not run. */
	r = ct_hugepages_reserve(&self->hp, &self->env, NRESERVE, why, sizeof(why));
	if (r == CT_SKIP)
		SKIP(return, "%s", why);
	if (r)
		SKIP(return, "cannot reserve %d huge pages: %s (%s)", NRESERVE, strerror(-r),
		     why);
}

FIXTURE_TEARDOWN_PARENT(huge)
{
	/* The mappings, the memfd and the uffd belong to the test process, gone now. */
	if (ct_hugepages_restore(&self->hp))
		TH_LOG("could not restore %s/nr_hugepages to %ld", self->hp.dir, self->hp.saved);
}

/* Map the memfd twice (reserving its huge pages) and register 'addr' MISSING on u. */
static void map_huge(struct __test_metadata *_metadata, FIXTURE_DATA(huge) *self,
		     int mmap_flags)
{
	self->addr = mmap(NULL, self->len, PROT_READ | PROT_WRITE, MAP_SHARED | mmap_flags,
			  self->memfd, 0);
	ASSERT_NE(MAP_FAILED, self->addr) TH_LOG("mmap: %s", strerror(errno));
	self->alias = mmap(NULL, self->len, PROT_READ | PROT_WRITE, MAP_SHARED | mmap_flags,
			   self->memfd, 0);
	ASSERT_NE(MAP_FAILED, self->alias) TH_LOG("mmap alias: %s", strerror(errno));
	ASSERT_EQ(0, (uintptr_t)self->addr % self->hps);
	ASSERT_EQ(0, ct_register(self->u.fd, self->addr, self->len,
				 UFFDIO_REGISTER_MODE_MISSING, &self->reg_ioctls));
}

static char *hpage(FIXTURE_DATA(huge) *self, int pg)
{
	return self->addr + (size_t)pg * self->hps;
}

/* Huge pages the memfd holds, from st_blocks (512-byte units). */
static long resident(struct __test_metadata *_metadata, FIXTURE_DATA(huge) *self)
{
	struct stat st;

	if (fstat(self->memfd, &st)) {
		TH_LOG("fstat: %s", strerror(errno));
		return -1;
	}
	return (long)((size_t)st.st_blocks * 512 / self->hps);
}

/* A thread reads 'p' (its first byte first: the fault address). */
static void start_read(struct __test_metadata *_metadata, FIXTURE_DATA(huge) *self,
		       char *p, size_t len, int expect_pattern, unsigned int seed)
{
	self->t = (struct ct_touch){
		.addr = p, .len = len, .seed = seed, .expect_pattern = expect_pattern,
	};
	ASSERT_EQ(0, ct_async_start(&self->a, ct_touch_fn, &self->t));
}

/* Expect the next message to be a MISSING fault at 'want' and the thread asleep in it. */
static void expect_fault(struct __test_metadata *_metadata, FIXTURE_DATA(huge) *self,
			 uintptr_t want)
{
	struct uffd_msg msg;

	ASSERT_EQ(0, ct_uffd_next_msg(self->u.fd, &msg, CT_DEADLINE_MS)) TH_LOG("no fault");
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	EXPECT_EQ(want, msg.arg.pagefault.address)
		TH_LOG("fault address %#llx, the huge page at %p",
		       (unsigned long long)msg.arg.pagefault.address,
		       (void *)(want & ~(uintptr_t)(self->hps - 1)));
	EXPECT_EQ(0, msg.arg.pagefault.flags & (UFFD_PAGEFAULT_FLAG_WP |
						 UFFD_PAGEFAULT_FLAG_MINOR));
	ASSERT_EQ(0, ct_async_wait_sleeping(&self->a, CT_DEADLINE_MS));
}

/* The first, middle and last byte of huge page 'p' hold pattern 'seed', and all between. */
static void expect_hpage_pattern(struct __test_metadata *_metadata, FIXTURE_DATA(huge) *self,
				 const char *p, unsigned int seed)
{
	const char *want = self->src + (seed - SEED) * self->hps;
	const size_t at[] = { 0, self->hps / 2, self->hps - 1 };

	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(want[at[i]], p[at[i]]) TH_LOG("byte %zu of the huge page", at[i]);
	}
	EXPECT_EQ(-1, ct_check(p, self->hps, seed));
}

/*
 * A MISSING fault on a hugetlb memfd mapping reports the huge-page-aligned address,
 * not the faulting one (hugetlb_fault() passes address & huge_page_mask): the handler
 * must fill the whole 2 MiB page that contains it.
 */
TEST_F(huge, fault_address_huge_aligned)
{
	size_t off = self->hps + 5 * self->ps + 123;

	map_huge(_metadata, self, 0);
	start_read(_metadata, self, self->addr + off, 1, -1, 0);
	expect_fault(_metadata, self, (uintptr_t)hpage(self, 1));
	ASSERT_EQ(0, ct_copy(self->u.fd, hpage(self, 1), self->src, self->hps, 0, NULL));
	ASSERT_TRUE(ct_async_done_within(&self->a, CT_DEADLINE_MS));
	EXPECT_EQ(self->src[off - self->hps], self->t.first);
}

/*
 * With UFFD_FEATURE_EXACT_ADDRESS the same fault reports the exact byte address
 * (vmf->real_address), not even 4 KiB aligned: a handler that asks for it must round
 * down to the huge page itself.
 */
TEST_F(huge, fault_address_exact)
{
	size_t off = 2 * self->hps + 7 * self->ps + 123;
	struct ct_uffd u2;

	CT_REQUIRE_KERNEL(&self->env, 5, 18, "UFFD_FEATURE_EXACT_ADDRESS");
	CT_UFFD_OPEN_OR_SKIP(&u2, &self->env, CT_VIA_ANY | CT_USER_MODE_OK,
			     UFFD_FEATURE_MISSING_HUGETLBFS | UFFD_FEATURE_EXACT_ADDRESS);
	ct_uffd_close(&self->u);
	self->u = u2;
	map_huge(_metadata, self, 0);
	start_read(_metadata, self, self->addr + off, 1, -1, 0);
	expect_fault(_metadata, self, (uintptr_t)self->addr + off);
	ASSERT_EQ(0, ct_copy(self->u.fd, hpage(self, 2), self->src, self->hps, 0, NULL));
	ASSERT_TRUE(ct_async_done_within(&self->a, CT_DEADLINE_MS));
	EXPECT_EQ(self->src[off - 2 * self->hps], self->t.first);
}

/*
 * UFFDIO_COPY on hugetlb takes only a huge-page-aligned dst and a multiple of 2 MiB
 * (EINVAL for 4 KiB, nothing filled, the thread still waits); a 2 MiB copy fills the
 * whole huge page and wakes the faulting thread.
 */
TEST_F(huge, copy_needs_huge_alignment)
{
	int64_t f;
	int r;

	map_huge(_metadata, self, 0);
	start_read(_metadata, self, hpage(self, 0), self->hps, 1, SEED);
	expect_fault(_metadata, self, (uintptr_t)hpage(self, 0));

	f = 0;
	r = ct_copy(self->u.fd, hpage(self, 0) + self->ps, self->src, self->hps, 0, &f);
	EXPECT_EQ(-EINVAL, r) TH_LOG("COPY to a 4 KiB-aligned dst: %s", strerror(-r));
	EXPECT_EQ(-EINVAL, f);
	f = 0;
	r = ct_copy(self->u.fd, hpage(self, 0), self->src, self->ps, 0, &f);
	EXPECT_EQ(-EINVAL, r) TH_LOG("COPY of 4 KiB: %s", strerror(-r));
	EXPECT_EQ(-EINVAL, f);
	EXPECT_EQ(0, resident(_metadata, self)) TH_LOG("a failed COPY filled a huge page");
	EXPECT_FALSE(ct_async_done_within(&self->a, CT_NEGATIVE_MS))
		TH_LOG("a failed COPY released the faulting thread");

	f = 0;
	ASSERT_EQ(0, ct_copy(self->u.fd, hpage(self, 0), self->src, self->hps, 0, &f));
	EXPECT_EQ((int64_t)self->hps, f);
	ASSERT_TRUE(ct_async_done_within(&self->a, CT_DEADLINE_MS))
		TH_LOG("the COPY did not wake the faulting thread");
	EXPECT_EQ(0, self->a.ret) TH_LOG("the thread did not read the copied bytes");
	expect_hpage_pattern(_metadata, self, self->alias, SEED);
	EXPECT_EQ(1, resident(_metadata, self));
}

/*
 * A second UFFDIO_COPY of a present huge page fails with EEXIST and changes nothing, and
 * does not wake; UFFDIO_WAKE then releases the thread waiting on it (the EEXIST path of
 * a racing swap-in).
 */
TEST_F(huge, copy_eexist_then_wake)
{
	int64_t f = 0;
	int r;

	map_huge(_metadata, self, 0);
	start_read(_metadata, self, hpage(self, 1), self->hps, 1, SEED);
	expect_fault(_metadata, self, (uintptr_t)hpage(self, 1));
	ASSERT_EQ(0, ct_copy(self->u.fd, hpage(self, 1), self->src, self->hps,
			     UFFDIO_COPY_MODE_DONTWAKE, &f));
	EXPECT_EQ((int64_t)self->hps, f);
	EXPECT_FALSE(ct_async_done_within(&self->a, CT_NEGATIVE_MS))
		TH_LOG("COPY(DONTWAKE) woke the faulting thread");

	f = 0;
	r = ct_copy(self->u.fd, hpage(self, 1), self->src + self->hps, self->hps, 0, &f);
	EXPECT_EQ(-EEXIST, r) TH_LOG("second COPY of a present huge page: %s", strerror(-r));
	EXPECT_EQ(-EEXIST, f);
	EXPECT_FALSE(ct_async_done_within(&self->a, CT_NEGATIVE_MS))
		TH_LOG("the failed COPY woke the faulting thread");
	ASSERT_EQ(0, ct_wake(self->u.fd, hpage(self, 1), self->hps));
	ASSERT_TRUE(ct_async_done_within(&self->a, CT_DEADLINE_MS))
		TH_LOG("UFFDIO_WAKE did not release the thread");
	EXPECT_EQ(0, self->a.ret) TH_LOG("the thread did not read the first COPY's bytes");
	expect_hpage_pattern(_metadata, self, self->alias + self->hps, SEED);
}

/*
 * There is no UFFDIO_ZEROPAGE on hugetlb: the registration does not offer it, and the
 * call fails with EINVAL (a 2 MiB or a 4 KiB range alike): zero huge pages must be
 * filled with UFFDIO_COPY from a zeroed buffer.
 */
TEST_F(huge, no_zeropage)
{
	int64_t f = 0;
	int r;

	map_huge(_metadata, self, 0);
	EXPECT_EQ(0, self->reg_ioctls & CT_IOCTL_BIT(_UFFDIO_ZEROPAGE))
		TH_LOG("hugetlb registration offers ZEROPAGE: ioctls %#llx",
		       (unsigned long long)self->reg_ioctls);
	EXPECT_NE(0, self->reg_ioctls & CT_IOCTL_BIT(_UFFDIO_COPY));
	EXPECT_NE(0, self->reg_ioctls & CT_IOCTL_BIT(_UFFDIO_WAKE));
	r = ct_zeropage(self->u.fd, hpage(self, 0), self->hps, 0, &f);
	EXPECT_EQ(-EINVAL, r) TH_LOG("ZEROPAGE of a huge page: %s", strerror(-r));
	EXPECT_EQ(-EINVAL, f);
	r = ct_zeropage(self->u.fd, hpage(self, 0), self->ps, 0, NULL);
	EXPECT_EQ(-EINVAL, r) TH_LOG("ZEROPAGE of 4 KiB: %s", strerror(-r));
	EXPECT_EQ(0, resident(_metadata, self));
}

/* MADV_REMOVE of 'len' bytes at 'p' on a helper thread; return the REMOVE read. */
static void remove_expect_event(struct __test_metadata *_metadata, FIXTURE_DATA(huge) *self,
				char *p, size_t len, struct uffd_msg *msg)
{
	self->madv = (struct ct_madv){ .addr = p, .len = len, .advice = MADV_REMOVE };
	ASSERT_EQ(0, ct_async_start(&self->a, ct_madvise_fn, &self->madv));
	ASSERT_EQ(0, ct_uffd_next_msg(self->u.fd, msg, CT_DEADLINE_MS)) TH_LOG("no REMOVE");
	ASSERT_EQ(UFFD_EVENT_REMOVE, msg->event);
	ASSERT_TRUE(ct_async_done_within(&self->a, CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a.ret) TH_LOG("madvise(MADV_REMOVE): %s", strerror(self->a.err));
}

/*
 * MADV_REMOVE of a whole huge page of the registered mapping gives a REMOVE of exactly
 * that huge page; the page is gone from the memfd (st_blocks), its neighbours keep their
 * data, and the next access faults MISSING again: balloon discards on hugetlb.
 */
TEST_F(huge, madv_remove_whole_page)
{
	struct uffd_msg msg;

	CT_REQUIRE_KERNEL(&self->env, 4, 11, "UFFD_EVENT_REMOVE from MADV_REMOVE on hugetlb");
	map_huge(_metadata, self, 0);
	for (int i = 0; i < 3; i++)
		memcpy(self->alias + i * self->hps, self->src, self->hps);
	ASSERT_EQ(3, resident(_metadata, self));

	remove_expect_event(_metadata, self, hpage(self, 1), self->hps, &msg);
	EXPECT_EQ((uintptr_t)hpage(self, 1), msg.arg.remove.start);
	EXPECT_EQ((uintptr_t)hpage(self, 2), msg.arg.remove.end);
	EXPECT_EQ(2, resident(_metadata, self)) TH_LOG("the removed huge page is still held");
	expect_hpage_pattern(_metadata, self, self->alias, SEED);
	expect_hpage_pattern(_metadata, self, self->alias + 2 * self->hps, SEED);

	start_read(_metadata, self, hpage(self, 1), self->hps, 1, SEED + 1);
	expect_fault(_metadata, self, (uintptr_t)hpage(self, 1));
	ASSERT_EQ(0, ct_copy(self->u.fd, hpage(self, 1), self->src + self->hps, self->hps, 0,
			     NULL));
	ASSERT_TRUE(ct_async_done_within(&self->a, CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a.ret);
}

/* Bytes [from, to) of huge page 0 are zero, the rest holds pattern SEED. */
static void expect_zeroed_inside(struct __test_metadata *_metadata, FIXTURE_DATA(huge) *self,
				 size_t from, size_t to)
{
	const char *p = self->alias;

	EXPECT_EQ(-1, ct_check(p, from, SEED)) TH_LOG("bytes before the range changed");
	EXPECT_TRUE(ct_is_zero(p + from, to - from)) TH_LOG("the range was not zeroed");
	for (size_t i = to; i < self->hps; i++) {
		if (p[i] != self->src[i]) {
			EXPECT_EQ(self->src[i], p[i]) TH_LOG("byte %zu after the range", i);
			break;
		}
	}
}

/* The page stays mapped-able without a fault: a read through addr returns, no message. */
static void expect_no_fault(struct __test_metadata *_metadata, FIXTURE_DATA(huge) *self)
{
	start_read(_metadata, self, hpage(self, 0), 1, -1, 0);
	EXPECT_TRUE(ct_async_done_within(&self->a, CT_DEADLINE_MS))
		TH_LOG("reading the partly removed huge page blocked (a MISSING fault?)");
	EXPECT_EQ(0, ct_uffd_wait_readable(self->u.fd, 0)) TH_LOG("a message was queued");
}

/*
 * MADV_REMOVE of a partial huge page range (4 KiB aligned) succeeds: the REMOVE event
 * carries the 4 KiB-exact range, the range reads as zeroes and the huge page stays
 * (no MISSING fault): the handler must not drop swap copies of the whole huge page.
 */
TEST_F(huge, madv_remove_partial_zeroes)
{
	const size_t from = 3 * self->ps, to = 19 * self->ps;
	struct uffd_msg msg;

	CT_REQUIRE_KERNEL(&self->env, 5, 19, "zeroing of a partial huge page hole punch");
	map_huge(_metadata, self, 0);
	memcpy(self->alias, self->src, self->hps);
	remove_expect_event(_metadata, self, hpage(self, 0) + from, to - from, &msg);
	EXPECT_EQ((uintptr_t)hpage(self, 0) + from, msg.arg.remove.start);
	EXPECT_EQ((uintptr_t)hpage(self, 0) + to, msg.arg.remove.end);
	EXPECT_EQ(1, resident(_metadata, self)) TH_LOG("the huge page was dropped");
	expect_zeroed_inside(_metadata, self, from, to);
	expect_no_fault(_metadata, self);
}

/*
 * fallocate(PUNCH_HOLE) of a partial huge page range zeroes that range and keeps the
 * huge page, with no event: the monitor cannot free part of a huge page.
 */
TEST_F(huge, punch_partial_zeroes)
{
	const size_t from = 100, to = self->hps / 2 + 1;

	CT_REQUIRE_KERNEL(&self->env, 5, 19, "zeroing of a partial huge page hole punch");
	map_huge(_metadata, self, 0);
	memcpy(self->alias, self->src, self->hps);
	ASSERT_EQ(0, fallocate(self->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (off_t)from, (off_t)(to - from)));
	EXPECT_EQ(1, resident(_metadata, self)) TH_LOG("the huge page was dropped");
	expect_zeroed_inside(_metadata, self, from, to);
	EXPECT_EQ(0, ct_uffd_wait_readable(self->u.fd, 0)) TH_LOG("an event was queued");
	expect_no_fault(_metadata, self);
}

/*
 * SEEK_DATA/SEEK_HOLE on a hugetlb memfd do not see holes (hugetlbfs has the generic
 * default_llseek): the whole file is data, present huge pages or not, so the resident
 * count must come from st_blocks, which counts present huge pages; fallocate(PUNCH_HOLE)
 * of whole huge pages frees them (st_blocks), they read as zeroes and fault again.
 */
TEST_F(huge, seek_sees_no_holes_punch_frees)
{
	const off_t len = (off_t)self->len, hps = (off_t)self->hps;
	char buf[64];

	map_huge(_metadata, self, 0);
	EXPECT_EQ(0, lseek(self->memfd, 0, SEEK_DATA)) TH_LOG("an empty hugetlb memfd");
	EXPECT_EQ(len, lseek(self->memfd, 0, SEEK_HOLE));
	EXPECT_EQ(0, resident(_metadata, self));
	memcpy(self->alias + self->hps, self->src, self->hps);
	memcpy(self->alias + 2 * self->hps, self->src, self->hps);
	EXPECT_EQ(2, resident(_metadata, self));
	EXPECT_EQ(5, lseek(self->memfd, 5, SEEK_DATA)) TH_LOG("a hole before the data");
	EXPECT_EQ(len, lseek(self->memfd, hps + 5, SEEK_HOLE));
	EXPECT_EQ(3 * hps + 1, lseek(self->memfd, 3 * hps + 1, SEEK_DATA))
		TH_LOG("the never-touched last huge page is no data");
	EXPECT_EQ(-1, lseek(self->memfd, len, SEEK_DATA));
	EXPECT_EQ(ENXIO, errno);

	ASSERT_EQ(0, fallocate(self->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, hps,
			       hps));
	EXPECT_EQ(1, resident(_metadata, self)) TH_LOG("the punched huge page is still held");
	EXPECT_EQ(len, lseek(self->memfd, 0, SEEK_HOLE)) TH_LOG("SEEK_HOLE saw the punch");
	ASSERT_EQ((ssize_t)sizeof(buf), pread(self->memfd, buf, sizeof(buf), hps));
	EXPECT_TRUE(ct_is_zero(buf, sizeof(buf)));
	ASSERT_EQ((ssize_t)sizeof(buf), pread(self->memfd, buf, sizeof(buf), 2 * hps));
	EXPECT_EQ(0, memcmp(buf, self->src, sizeof(buf)));
	EXPECT_EQ(0, ct_uffd_wait_readable(self->u.fd, 0)) TH_LOG("an event was queued");

	start_read(_metadata, self, hpage(self, 1), self->hps, 1, SEED + 1);
	expect_fault(_metadata, self, (uintptr_t)hpage(self, 1));
	ASSERT_EQ(0, ct_copy(self->u.fd, hpage(self, 1), self->src + self->hps, self->hps, 0,
			     NULL));
	ASSERT_TRUE(ct_async_done_within(&self->a, CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a.ret);
}

/*
 * Take every free, unreserved huge page with a reserving mapping of a second memfd.
 * SKIPs when surplus pages could be allocated (nr_overcommit_hugepages > 0).
 */
static bool exhaust_pool(struct __test_metadata *_metadata, FIXTURE_DATA(huge) *self,
			 int *hog_fd, void **hog, size_t *hog_len)
{
	long avail = ct_hugepages_read(&self->hp, "free_hugepages") -
		     ct_hugepages_read(&self->hp, "resv_hugepages");
	long over = ct_hugepages_read(&self->hp, "nr_overcommit_hugepages");

	*hog = NULL;
	*hog_fd = -1;
	*hog_len = 0;
	if (over != 0) {
		TH_LOG("nr_overcommit_hugepages is %ld: the pool cannot be exhausted", over);
		return false;
	}
	if (avail <= 0)
		return true;
	*hog_len = (size_t)avail * self->hps;
	*hog_fd = memfd_create("vmmswap-hugetlb-hog", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB);
	if (*hog_fd < 0 || ftruncate(*hog_fd, (off_t)*hog_len)) {
		TH_LOG("hog memfd: %s", strerror(errno));
		return false;
	}
	*hog = mmap(NULL, *hog_len, PROT_READ | PROT_WRITE, MAP_SHARED, *hog_fd, 0);
	if (*hog == MAP_FAILED) {
		TH_LOG("hog mmap of %ld huge pages: %s", avail, strerror(errno));
		*hog = NULL;
		return false;
	}
	return ct_hugepages_read(&self->hp, "free_hugepages") ==
	       ct_hugepages_read(&self->hp, "resv_hugepages");
}

static void release_pool(int hog_fd, void *hog, size_t hog_len)
{
	if (hog)
		munmap(hog, hog_len);
	if (hog_fd >= 0)
		close(hog_fd);
}

/*
 * With too few free huge pages, mmap(MAP_SHARED) of the hugetlb memfd fails with ENOMEM
 * (the mapping reserves its huge pages up front): guest memory that mapped has a huge
 * page for every fault.
 */
TEST_F(huge, exhausted_mmap_enomem)
{
	size_t hog_len;
	int hog_fd;
	void *hog, *p;

	if (!exhaust_pool(_metadata, self, &hog_fd, &hog, &hog_len)) {
		release_pool(hog_fd, hog, hog_len);
		SKIP(return, "could not exhaust the huge page pool");
	}
	p = mmap(NULL, self->len, PROT_READ | PROT_WRITE, MAP_SHARED, self->memfd, 0);
	EXPECT_EQ(MAP_FAILED, p) TH_LOG("mmap with the pool exhausted succeeded");
	EXPECT_EQ(ENOMEM, errno);
	if (p != MAP_FAILED)
		munmap(p, self->len);
	release_pool(hog_fd, hog, hog_len);
}

/*
 * A punched huge page gives its reservation back: with the pool then exhausted, the
 * fault on it is delivered but UFFDIO_COPY fails, nothing filled and the thread still
 * waiting, until a huge page is free again: a swapped-out hugetlb page may not be
 * restorable, and the fill must be retried, not the fault dropped. The errno: 6.12's
 * hugetlb_mfill_atomic_pte() returns ENOMEM when alloc_hugetlb_folio() fails, 6.18
 * (observed) returns EEXIST although the page is not present: on hugetlb an EEXIST
 * from COPY does not prove the page is there (check st_blocks before waking).
 */
TEST_F(huge, exhausted_copy_fails_after_punch)
{
	size_t hog_len;
	int64_t f = 0;
	int hog_fd, r;
	void *hog;

	map_huge(_metadata, self, 0);
	memcpy(self->alias, self->src, self->hps);
	ASSERT_EQ(0, fallocate(self->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
			       (off_t)self->hps));
	ASSERT_EQ(0, resident(_metadata, self));
	if (!exhaust_pool(_metadata, self, &hog_fd, &hog, &hog_len)) {
		release_pool(hog_fd, hog, hog_len);
		SKIP(return, "could not exhaust the huge page pool");
	}
	start_read(_metadata, self, hpage(self, 0), self->hps, 1, SEED + 1);
	expect_fault(_metadata, self, (uintptr_t)hpage(self, 0));
	r = ct_copy(self->u.fd, hpage(self, 0), self->src + self->hps, self->hps, 0, &f);
	EXPECT_TRUE(r == -ENOMEM || r == -EEXIST)
		TH_LOG("COPY with the pool exhausted: %s", strerror(-r));
	EXPECT_EQ(r, f);
	TH_LOG("COPY with the pool exhausted: %s", strerror(-r));
	EXPECT_EQ(0, resident(_metadata, self)) TH_LOG("the failed COPY filled the page");
	EXPECT_FALSE(ct_async_done_within(&self->a, CT_NEGATIVE_MS))
		TH_LOG("the failed COPY released the faulting thread");

	release_pool(hog_fd, hog, hog_len);
	ASSERT_EQ(0, ct_copy(self->u.fd, hpage(self, 0), self->src + self->hps, self->hps, 0,
			     NULL));
	ASSERT_TRUE(ct_async_done_within(&self->a, CT_DEADLINE_MS));
	EXPECT_EQ(0, self->a.ret);
}

/*
 * Without a reservation (MAP_NORESERVE) and the pool exhausted, a plain access to a
 * missing huge page of an unregistered mapping gets SIGBUS: what the guest would see
 * if the monitor let such a fault through.
 */
TEST_F(huge, exhausted_noreserve_access_sigbus)
{
	size_t hog_len;
	int hog_fd, status;
	void *hog;
	char *p;
	pid_t pid;

	if (!exhaust_pool(_metadata, self, &hog_fd, &hog, &hog_len)) {
		release_pool(hog_fd, hog, hog_len);
		SKIP(return, "could not exhaust the huge page pool");
	}
	p = mmap(NULL, self->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		 self->memfd, 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap(MAP_NORESERVE): %s", strerror(errno));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		signal(SIGBUS, SIG_DFL); /* not a sanitizer's report: the plain signal */
		p[self->hps] = 1;
		_exit(0);
	}
	ASSERT_EQ(0, ct_waitpid_deadline(pid, &status, CT_DEADLINE_MS));
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS)
		TH_LOG("the access: status %#x, not SIGBUS", status);
	EXPECT_EQ(0, resident(_metadata, self));
	munmap(p, self->len);
	release_pool(hog_fd, hog, hog_len);
}

TEST_HARNESS_MAIN
