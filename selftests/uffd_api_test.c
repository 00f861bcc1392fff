// SPDX-License-Identifier: GPL-2.0-only
/*
 * uffd_api_test - the userfaultfd creation paths and the UFFDIO_API handshake
 * (spec 5.1): what the monitor relies on before it registers any memory.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "kselftest_harness.h"
#include "lib/contract.h"

/* The features the swap design requests on every uffd. */
#define DESIGN_FEATURES (UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE)

/* /dev/userfaultfd + USERFAULTFD_IOC_NEW + UFFDIO_API works: the monitor's preferred path. */
TEST(device_path_handshake)
{
	struct ct_env env;
	struct ct_uffd u;

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 6, 1, "/dev/userfaultfd");
	CT_UFFD_OPEN_OR_SKIP(&u, &env, CT_VIA_DEVICE, DESIGN_FEATURES);
	EXPECT_EQ(CT_VIA_DEVICE, u.via);
	EXPECT_EQ(DESIGN_FEATURES, u.offered & DESIGN_FEATURES);
	ct_uffd_close(&u);
}

/* userfaultfd(2) + UFFDIO_API works: the fallback when the device node is unusable. */
TEST(syscall_path_handshake)
{
	struct ct_env env;
	struct ct_uffd u;

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 4, 11, "userfaultfd(2) with MISSING_SHMEM and EVENT_REMOVE");
	CT_UFFD_OPEN_OR_SKIP(&u, &env, CT_VIA_SYSCALL | CT_USER_MODE_OK, DESIGN_FEATURES);
	EXPECT_EQ(CT_VIA_SYSCALL, u.via);
	EXPECT_EQ(DESIGN_FEATURES, u.offered & DESIGN_FEATURES);
	if (u.user_mode_only)
		TH_LOG("no CAP_SYS_PTRACE: handshake checked on a UFFD_USER_MODE_ONLY uffd");
	ct_uffd_close(&u);
}

/* A second UFFDIO_API on one fd fails with EINVAL: the handshake is one-shot, so a
 * probe needs a throw-away uffd. */
TEST(second_api_einval)
{
	struct ct_env env;
	struct ct_uffd u;
	int r;

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 4, 11, "MISSING_SHMEM and EVENT_REMOVE");
	CT_UFFD_OPEN_OR_SKIP(&u, &env, CT_VIA_ANY | CT_USER_MODE_OK, DESIGN_FEATURES);
	r = ct_uffd_api(u.fd, DESIGN_FEATURES, NULL, NULL);
	EXPECT_EQ(-EINVAL, r);
	r = ct_uffd_api(u.fd, 0, NULL, NULL);
	EXPECT_EQ(-EINVAL, r);
	ct_uffd_close(&u);
}

/* An unknown feature bit fails with EINVAL: requesting only offered bits matters. */
TEST(unknown_feature_einval)
{
	struct ct_env env;
	unsigned int via;
	bool umo;
	char why[256];
	uint64_t offered = 0;
	int fd, r;

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 4, 3, "userfaultfd");
	fd = ct_uffd_raw(&env, CT_VIA_ANY | CT_USER_MODE_OK, &via, &umo, why, sizeof(why));
	if (fd < 0)
		SKIP(return, "%s", why);
	r = ct_uffd_api(fd, 1ULL << 63, NULL, NULL);
	EXPECT_EQ(-EINVAL, r);
	/* Not relied on, only reported: whether the failed handshake can be redone. */
	r = ct_uffd_api(fd, 0, &offered, NULL);
	TH_LOG("UFFDIO_API after a refused feature: %s", r ? strerror(-r) : "succeeds");
	close(fd);
}

/* A wrong api number fails with EINVAL. */
TEST(wrong_api_einval)
{
	struct uffdio_api api = { .api = UFFD_API + 1 };
	struct ct_env env;
	unsigned int via;
	bool umo;
	char why[256];
	int fd;

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 4, 3, "userfaultfd");
	fd = ct_uffd_raw(&env, CT_VIA_ANY | CT_USER_MODE_OK, &via, &umo, why, sizeof(why));
	if (fd < 0)
		SKIP(return, "%s", why);
	EXPECT_EQ(-1, ioctl(fd, UFFDIO_API, &api));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

/* The returned features and ioctls contain what the design needs, and a MISSING
 * registration of memfd memory offers COPY, ZEROPAGE and WAKE. */
TEST(design_features_and_ioctls)
{
	const uint64_t api_ioctls = CT_IOCTL_BIT(_UFFDIO_API) |
				    CT_IOCTL_BIT(_UFFDIO_REGISTER) |
				    CT_IOCTL_BIT(_UFFDIO_UNREGISTER);
	const uint64_t range_ioctls = CT_IOCTL_BIT(_UFFDIO_COPY) |
				      CT_IOCTL_BIT(_UFFDIO_ZEROPAGE) |
				      CT_IOCTL_BIT(_UFFDIO_WAKE);
	struct ct_env env;
	struct ct_uffd u;
	struct ct_mem m;
	uint64_t ioctls = 0;

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 4, 14, "UFFDIO_ZEROPAGE on shmem");
	CT_UFFD_OPEN_OR_SKIP(&u, &env, CT_VIA_ANY | CT_USER_MODE_OK, DESIGN_FEATURES);
	TH_LOG("offered features 0x%llx, ioctls 0x%llx", (unsigned long long)u.offered,
	       (unsigned long long)u.ioctls);
	EXPECT_EQ(DESIGN_FEATURES, u.offered & DESIGN_FEATURES);
	EXPECT_EQ(api_ioctls, u.ioctls & api_ioctls);
	ASSERT_EQ(0, ct_mem_create(&m, 4 * env.page_size, false, 0));
	ASSERT_EQ(0, ct_register(u.fd, m.addr, m.len, UFFDIO_REGISTER_MODE_MISSING, &ioctls));
	TH_LOG("range ioctls 0x%llx", (unsigned long long)ioctls);
	EXPECT_EQ(range_ioctls, ioctls & range_ioctls);
	EXPECT_EQ(0, ct_unregister(u.fd, m.addr, m.len));
	ct_mem_destroy(&m);
	ct_uffd_close(&u);
}

/* A blocking uffd (no O_NONBLOCK) reports POLLERR to poll(2); a non-blocking one
 * does not: why the monitor must create every uffd O_NONBLOCK (spec 5.1). */
TEST(blocking_uffd_pollerr)
{
	struct ct_env env;
	struct ct_uffd ub, un;
	struct pollfd p;

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 4, 11, "MISSING_SHMEM and EVENT_REMOVE");
	CT_UFFD_OPEN_OR_SKIP(&ub, &env, CT_VIA_ANY | CT_USER_MODE_OK | CT_BLOCKING,
			     DESIGN_FEATURES);
	p = (struct pollfd){ .fd = ub.fd, .events = POLLIN };
	ASSERT_EQ(1, poll(&p, 1, 0));
	EXPECT_TRUE(p.revents & POLLERR);
	ct_uffd_close(&ub);

	CT_UFFD_OPEN_OR_SKIP(&un, &env, CT_VIA_ANY | CT_USER_MODE_OK, DESIGN_FEATURES);
	p = (struct pollfd){ .fd = un.fd, .events = POLLIN };
	EXPECT_EQ(0, poll(&p, 1, 0));
	ct_uffd_close(&un);
}

/* Registering memfd memory works even without requesting MISSING_SHMEM (spec 5.1,
 * exp2 "1"): observed, and required only in the sense that registration succeeds. */
TEST(register_shmem_without_missing_shmem)
{
	struct ct_env env;
	struct ct_uffd u;
	struct ct_mem m;
	int r;

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 4, 11, "userfaultfd on shmem");
	CT_UFFD_OPEN_OR_SKIP(&u, &env, CT_VIA_ANY | CT_USER_MODE_OK, 0);
	ASSERT_EQ(0, ct_mem_create(&m, env.page_size, false, 0));
	r = ct_register(u.fd, m.addr, m.len, UFFDIO_REGISTER_MODE_MISSING, NULL);
	TH_LOG("REGISTER(shmem) without MISSING_SHMEM: %s", r ? strerror(-r) : "ok");
	EXPECT_EQ(0, r);
	ct_mem_destroy(&m);
	ct_uffd_close(&u);
}

TEST_HARNESS_MAIN
