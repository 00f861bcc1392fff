// SPDX-License-Identifier: GPL-2.0-only
/*
 * uffd_wp_test - write-protect mode on anonymous memory that was never touched
 * (UFFD_FEATURE_WP_UNPOPULATED): dirty tracking during swap-out write-protects whole
 * regions, populated or not, and must see the first write to any page of them.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "lib/contract.h"

#define NPAGES 2
#define VAL    0x5a

/* With UFFD_FEATURE_WP_UNPOPULATED, UFFDIO_WRITEPROTECT of never-touched anonymous
 * pages makes the first write to one of them a write-protect fault (FLAG_WP), and
 * un-protecting resolves it with the write landing: dirty tracking needs no
 * pre-faulting of untouched memory (Linux 6.4). */
TEST(wp_unpopulated_first_write_faults)
{
	struct ct_env env;
	struct ct_uffd u;
	struct ct_async a;
	struct ct_touch t;
	struct uffd_msg msg;
	uint64_t ioctls = 0;
	size_t ps;
	char *p;

	ct_env_init(&env);
	ps = env.page_size;
	CT_REQUIRE_KERNEL(&env, 6, 4, "UFFD_FEATURE_WP_UNPOPULATED");
	CT_UFFD_OPEN_OR_SKIP(&u, &env, CT_VIA_ANY | CT_USER_MODE_OK,
			     UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_UNPOPULATED);
	p = ct_anon_map(NPAGES * ps);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, ct_register(u.fd, p, NPAGES * ps, UFFDIO_REGISTER_MODE_WP, &ioctls));
	ASSERT_TRUE(ioctls & CT_IOCTL_BIT(_UFFDIO_WRITEPROTECT));
	ASSERT_EQ(0, ct_writeprotect(u.fd, p, NPAGES * ps, UFFDIO_WRITEPROTECT_MODE_WP));

	t = (struct ct_touch){ .addr = p + ps, .len = ps, .write = 1, .val = VAL };
	ASSERT_EQ(0, ct_async_start(&a, ct_touch_fn, &t));
	ASSERT_EQ(0, ct_uffd_next_msg(u.fd, &msg, CT_DEADLINE_MS))
		TH_LOG("the first write to a protected unpopulated page did not fault");
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	EXPECT_EQ((uintptr_t)(p + ps), msg.arg.pagefault.address);
	EXPECT_TRUE(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP);
	EXPECT_TRUE(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
	EXPECT_FALSE(ct_async_done_within(&a, CT_NEGATIVE_MS))
		TH_LOG("the writer went on while its page was protected");

	ASSERT_EQ(0, ct_writeprotect(u.fd, p + ps, ps, 0));
	ASSERT_TRUE(ct_async_done_within(&a, CT_DEADLINE_MS))
		TH_LOG("un-protecting did not release the writer");
	for (size_t i = 0; i < ps; i++) {
		if (p[ps + i] != VAL) {
			EXPECT_EQ(VAL, p[ps + i]) TH_LOG("byte %zu of the written page", i);
			break;
		}
	}
	/* Reading the other, still protected page is no event, and it is empty. */
	EXPECT_TRUE(ct_is_zero(p, ps));
	EXPECT_EQ(0, ct_uffd_wait_readable(u.fd, 0)) TH_LOG("another event was queued");
	ASSERT_EQ(0, ct_unregister(u.fd, p, NPAGES * ps));
	munmap(p, NPAGES * ps);
	ct_uffd_close(&u);
}

TEST_HARNESS_MAIN
