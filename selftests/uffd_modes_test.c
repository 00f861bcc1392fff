// SPDX-License-Identifier: GPL-2.0-only
/*
 * uffd_modes_test - the registration modes and ioctls beyond MISSING that a swap
 * design may build on: write-protect and MINOR on shmem, UFFDIO_MOVE on anonymous
 * memory, and UFFDIO_POISON. Each SKIPs when the kernel does not offer it.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "lib/contract.h"

/* Write-protect on shmem: a write to a protected page faults with FLAG_WP, and
 * unprotecting resolves it. Dirty tracking of guest memory during swap-out relies on
 * it (WP on shmem: Linux 5.19). */
TEST(wp_shmem_fault_and_unprotect)
{
	struct ct_env env;
	struct ct_uffd u;
	struct ct_mem m;
	struct ct_async a;
	struct ct_touch t;
	struct uffd_msg msg;
	uint64_t ioctls = 0;
	char *want, c = 0;

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 5, 19, "write-protect on shmem");
	CT_UFFD_OPEN_OR_SKIP(&u, &env, CT_VIA_ANY | CT_USER_MODE_OK,
			     UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
	ASSERT_EQ(0, ct_mem_create(&m, env.page_size, false, 0));
	ct_fill(m.addr, env.page_size, 4);
	ASSERT_EQ(0, ct_register(u.fd, m.addr, m.len, UFFDIO_REGISTER_MODE_WP, &ioctls));
	ASSERT_TRUE(ioctls & CT_IOCTL_BIT(_UFFDIO_WRITEPROTECT));
	ASSERT_EQ(0, ct_writeprotect(u.fd, m.addr, m.len, UFFDIO_WRITEPROTECT_MODE_WP));
	t = (struct ct_touch){ .addr = m.addr, .len = 1, .write = 1, .val = 0x42 };
	ASSERT_EQ(0, ct_async_start(&a, ct_touch_fn, &t));
	ASSERT_EQ(0, ct_uffd_next_msg(u.fd, &msg, CT_DEADLINE_MS));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	EXPECT_EQ((uintptr_t)m.addr, msg.arg.pagefault.address);
	EXPECT_TRUE(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP);
	EXPECT_TRUE(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
	/* Still protected: the byte is unchanged until the unprotect (read through the
	 * memfd, not the mapping the blocked thread is writing). */
	ASSERT_EQ(1, pread(m.memfd, &c, 1, 0));
	EXPECT_NE(0x42, c);
	ASSERT_EQ(0, ct_writeprotect(u.fd, m.addr, m.len, 0));
	ASSERT_TRUE(ct_async_done_within(&a, CT_DEADLINE_MS));
	EXPECT_EQ(0x42, m.addr[0]);
	want = ct_anon_map(env.page_size);
	ASSERT_NE(NULL, want);
	ct_fill(want, env.page_size, 4);
	EXPECT_EQ(0, memcmp(m.addr + 1, want + 1, env.page_size - 1));
	munmap(want, env.page_size);
	ct_mem_destroy(&m);
	ct_uffd_close(&u);
}

/* MINOR mode on shmem: a page present in the page cache but not mapped faults with
 * FLAG_MINOR, and UFFDIO_CONTINUE maps it: the basis of a page-cache-backed restore
 * (MINOR on shmem: Linux 5.14). */
TEST(minor_shmem_continue)
{
	struct ct_env env;
	struct ct_uffd u;
	struct ct_mem m;
	struct ct_async a;
	struct ct_touch t;
	struct uffd_msg msg;
	uint64_t ioctls = 0;
	int64_t f = 0;

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 5, 14, "MINOR faults on shmem");
	CT_UFFD_OPEN_OR_SKIP(&u, &env, CT_VIA_ANY | CT_USER_MODE_OK, UFFD_FEATURE_MINOR_SHMEM);
	ASSERT_EQ(0, ct_mem_create(&m, env.page_size, true, 0));
	ct_fill(m.alias, env.page_size, 6); /* in the page cache, not mapped at m.addr */
	ASSERT_EQ(0, ct_register(u.fd, m.addr, m.len, UFFDIO_REGISTER_MODE_MINOR, &ioctls));
	ASSERT_TRUE(ioctls & CT_IOCTL_BIT(_UFFDIO_CONTINUE));
	t = (struct ct_touch){ .addr = m.addr, .len = env.page_size, .seed = 6,
			       .expect_pattern = 1 };
	ASSERT_EQ(0, ct_async_start(&a, ct_touch_fn, &t));
	ASSERT_EQ(0, ct_uffd_next_msg(u.fd, &msg, CT_DEADLINE_MS));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	EXPECT_TRUE(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_MINOR);
	ASSERT_EQ(0, ct_continue(u.fd, m.addr, env.page_size, 0, &f));
	EXPECT_EQ((int64_t)env.page_size, f);
	ASSERT_TRUE(ct_async_done_within(&a, CT_DEADLINE_MS));
	EXPECT_EQ(0, a.ret);
	ct_mem_destroy(&m);
	ct_uffd_close(&u);
}

/* UFFDIO_MOVE on anonymous private memory moves a page into a missing destination,
 * wakes the faulting thread and leaves the source empty: zero-copy swap-in from a
 * staging area (Linux 6.8). */
TEST(move_anon)
{
	struct ct_env env;
	struct ct_uffd u;
	struct ct_async a;
	struct ct_touch t;
	struct uffd_msg msg;
	char *src, *dst;
	int64_t f = 0;

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 6, 8, "UFFDIO_MOVE");
	CT_UFFD_OPEN_OR_SKIP(&u, &env, CT_VIA_ANY | CT_USER_MODE_OK, UFFD_FEATURE_MOVE);
	src = ct_anon_map(env.page_size);
	dst = ct_anon_map(env.page_size);
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ct_fill(src, env.page_size, 8);
	ASSERT_EQ(0, ct_register(u.fd, dst, env.page_size, UFFDIO_REGISTER_MODE_MISSING, NULL));
	t = (struct ct_touch){ .addr = dst, .len = env.page_size, .seed = 8,
			       .expect_pattern = 1 };
	ASSERT_EQ(0, ct_async_start(&a, ct_touch_fn, &t));
	ASSERT_EQ(0, ct_uffd_next_msg(u.fd, &msg, CT_DEADLINE_MS));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	ASSERT_EQ(0, ct_move(u.fd, dst, src, env.page_size, 0, &f));
	EXPECT_EQ((int64_t)env.page_size, f);
	ASSERT_TRUE(ct_async_done_within(&a, CT_DEADLINE_MS));
	EXPECT_EQ(0, a.ret);
	EXPECT_TRUE(ct_is_zero(src, env.page_size)) TH_LOG("the source kept its data");
	munmap(src, env.page_size);
	munmap(dst, env.page_size);
	ct_uffd_close(&u);
}

static sigjmp_buf poison_jmp;
static volatile sig_atomic_t got_sigbus;

static void poison_handler(int sig)
{
	got_sigbus = sig;
	siglongjmp(poison_jmp, 1);
}

/* UFFDIO_POISON marks a missing page so that an access raises SIGBUS: how a monitor
 * reports a page it cannot restore, instead of handing out zeroes (Linux 6.6). */
TEST(poison_sigbus)
{
	struct sigaction sa = { .sa_handler = poison_handler }, old;
	struct ct_env env;
	struct ct_uffd u;
	struct ct_mem m;
	int64_t f = 0;
	volatile char c = 0;

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 6, 6, "UFFDIO_POISON");
	CT_UFFD_OPEN_OR_SKIP(&u, &env, CT_VIA_ANY | CT_USER_MODE_OK, UFFD_FEATURE_POISON);
	ASSERT_EQ(0, ct_mem_create(&m, 2 * env.page_size, false, 0));
	ASSERT_EQ(0, ct_register(u.fd, m.addr, m.len, UFFDIO_REGISTER_MODE_MISSING, NULL));
	ASSERT_EQ(0, ct_poison(u.fd, m.addr + env.page_size, env.page_size, 0, &f));
	EXPECT_EQ((int64_t)env.page_size, f);
	ASSERT_EQ(0, sigaction(SIGBUS, &sa, &old));
	got_sigbus = 0;
	if (sigsetjmp(poison_jmp, 1) == 0)
		c = m.addr[env.page_size];
	sigaction(SIGBUS, &old, NULL);
	EXPECT_EQ(SIGBUS, got_sigbus) TH_LOG("read of a poisoned page gave %d", c);
	EXPECT_EQ(0, ct_uffd_wait_readable(u.fd, 0)) TH_LOG("the access made an event");
	ct_mem_destroy(&m);
	ct_uffd_close(&u);
}

TEST_HARNESS_MAIN
