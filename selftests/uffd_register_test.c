// SPDX-License-Identifier: GPL-2.0-only
/*
 * uffd_register_test - UFFDIO_REGISTER on memfd MAP_SHARED memory: which ranges it
 * refuses, one owner per range, and the ioctls it reports for a MISSING range. The
 * monitor registers every guest region of every process on its own uffd.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "lib/contract.h"

#define NPAGES	 2
#define FEATURES (UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE)

FIXTURE(reg)
{
	struct ct_env env;
	struct ct_uffd u;
	struct ct_mem m;
	size_t ps;
};

FIXTURE_SETUP(reg)
{
	ct_env_init(&self->env);
	self->ps = self->env.page_size;
	self->m.memfd = -1;
	self->u.fd = -1;
	CT_REQUIRE_KERNEL(&self->env, 4, 11, "userfaultfd on shmem");
	CT_UFFD_OPEN_OR_SKIP(&self->u, &self->env, CT_VIA_ANY | CT_USER_MODE_OK, FEATURES);
	ASSERT_EQ(0, ct_mem_create(&self->m, NPAGES * self->ps, false, 0));
}

FIXTURE_TEARDOWN(reg)
{
	ct_uffd_close(&self->u);
	ct_mem_destroy(&self->m);
}

/* REGISTER and UNREGISTER refuse a start or length that is not page-aligned with
 * EINVAL, and register nothing: the monitor registers whole pages only. */
TEST_F(reg, unaligned_range_einval)
{
	char *a = self->m.addr;

	EXPECT_EQ(-EINVAL, ct_register(self->u.fd, a + 1, self->ps,
				       UFFDIO_REGISTER_MODE_MISSING, NULL));
	EXPECT_EQ(-EINVAL, ct_register(self->u.fd, a, self->ps + 1,
				       UFFDIO_REGISTER_MODE_MISSING, NULL));
	ASSERT_EQ(0, ct_register(self->u.fd, a, self->m.len, UFFDIO_REGISTER_MODE_MISSING,
				 NULL));
	EXPECT_EQ(-EINVAL, ct_unregister(self->u.fd, a, 1));
	EXPECT_EQ(-EINVAL, ct_unregister(self->u.fd, a + 1, self->ps));
	EXPECT_EQ(0, ct_unregister(self->u.fd, a, self->m.len));
}

/* A range registered on one uffd cannot be registered on another (EBUSY) until it is
 * unregistered: each range has one owner, so a uffd must let go of a range before
 * another can take it. */
TEST_F(reg, second_uffd_ebusy_until_unregistered)
{
	struct ct_uffd u2;
	int r;

	CT_UFFD_OPEN_OR_SKIP(&u2, &self->env, CT_VIA_ANY | CT_USER_MODE_OK, FEATURES);
	ASSERT_EQ(0, ct_register(self->u.fd, self->m.addr, self->m.len,
				 UFFDIO_REGISTER_MODE_MISSING, NULL));
	r = ct_register(u2.fd, self->m.addr + self->ps, self->ps,
			UFFDIO_REGISTER_MODE_MISSING, NULL);
	EXPECT_EQ(-EBUSY, r) TH_LOG("second REGISTER: %s", r ? strerror(-r) : "ok");
	/* Registering again on the same uffd is fine. */
	EXPECT_EQ(0, ct_register(self->u.fd, self->m.addr, self->m.len,
				 UFFDIO_REGISTER_MODE_MISSING, NULL));
	ASSERT_EQ(0, ct_unregister(self->u.fd, self->m.addr + self->ps, self->ps));
	EXPECT_EQ(0, ct_register(u2.fd, self->m.addr + self->ps, self->ps,
				 UFFDIO_REGISTER_MODE_MISSING, NULL));
	/* Page 0 is still the first uffd's. */
	EXPECT_EQ(-EBUSY, ct_register(u2.fd, self->m.addr, self->ps,
				      UFFDIO_REGISTER_MODE_MISSING, NULL));
	ct_uffd_close(&u2);
}

/* A MISSING-only registration reports COPY, ZEROPAGE and WAKE but neither CONTINUE
 * nor WRITEPROTECT: the monitor checks the reported ioctls against what it will call,
 * and refuses a range that lacks one. */
TEST_F(reg, missing_range_ioctls)
{
	const uint64_t need = CT_IOCTL_BIT(_UFFDIO_COPY) | CT_IOCTL_BIT(_UFFDIO_ZEROPAGE) |
			      CT_IOCTL_BIT(_UFFDIO_WAKE);
	const uint64_t other_modes = CT_IOCTL_BIT(_UFFDIO_CONTINUE) |
				     CT_IOCTL_BIT(_UFFDIO_WRITEPROTECT);
	uint64_t ioctls = 0;

	ASSERT_EQ(0, ct_register(self->u.fd, self->m.addr, self->m.len,
				 UFFDIO_REGISTER_MODE_MISSING, &ioctls));
	TH_LOG("range ioctls 0x%llx", (unsigned long long)ioctls);
	EXPECT_EQ(need, ioctls & need);
	EXPECT_EQ(0, ioctls & other_modes);
}

TEST_HARNESS_MAIN
