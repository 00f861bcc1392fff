// SPDX-License-Identifier: GPL-2.0-only
/*
 * uffd_process_test - userfaultfd across processes: a uffd whose process exited,
 * kernel-mode accesses with and without UFFD_USER_MODE_ONLY, and fork() without
 * UFFD_FEATURE_EVENT_FORK (spec 3.3, 5.1, 5.5, 5.6).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "lib/contract.h"

#define FEATURES (UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE)

/* A uffd created (and a page registered) by a child that then exited. */
FIXTURE(dead)
{
	struct ct_env env;
	struct ct_mem m;
	int fd;
	char *src;
};

FIXTURE_SETUP(dead)
{
	const unsigned int how = CT_VIA_ANY | CT_USER_MODE_OK;
	struct pollfd p;
	char why[256] = "";
	unsigned int via;
	bool umo;
	int sv[2], status = 0, fd;
	pid_t pid;

	self->fd = -1;
	self->m.memfd = -1;
	ct_env_init(&self->env);
	CT_REQUIRE_KERNEL(&self->env, 4, 11, "uffds that outlive their mm (on shmem)");
	/* Check in the parent whether a uffd can be made at all. */
	fd = ct_uffd_raw(&self->env, how, &via, &umo, why, sizeof(why));
	if (fd < 0)
		SKIP(return, "%s", why);
	close(fd);
	self->src = ct_anon_map(self->env.page_size);
	ASSERT_NE(NULL, self->src);
	ASSERT_EQ(0, ct_mem_create(&self->m, 2 * self->env.page_size, false, 0));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct ct_uffd u;

		close(sv[0]);
		if (ct_uffd_open(&u, &self->env, how, FEATURES, why, sizeof(why)))
			_exit(2);
		if (ct_register(u.fd, self->m.addr, self->env.page_size,
				UFFDIO_REGISTER_MODE_MISSING, NULL))
			_exit(3);
		if (ct_send_fd(sv[1], u.fd))
			_exit(4);
		_exit(0);
	}
	close(sv[1]);
	p = (struct pollfd){ .fd = sv[0], .events = POLLIN };
	ASSERT_EQ(1, poll(&p, 1, CT_DEADLINE_MS));
	self->fd = ct_recv_fd(sv[0]);
	close(sv[0]);
	ASSERT_EQ(0, ct_waitpid_deadline(pid, &status, CT_DEADLINE_MS));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(dead)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->src)
		munmap(self->src, self->env.page_size);
	ct_mem_destroy(&self->m);
}

/* REGISTER/UNREGISTER on a dead process's uffd fail with ENOMEM: the monitor skips
 * such uffds on enable/disable (spec 5.2, 5.6.5). */
TEST_F(dead, register_unregister_enomem)
{
	size_t ps = self->env.page_size;

	EXPECT_EQ(-ENOMEM, ct_register(self->fd, self->m.addr + ps, ps,
				       UFFDIO_REGISTER_MODE_MISSING, NULL));
	EXPECT_EQ(-ENOMEM, ct_unregister(self->fd, self->m.addr, ps));
}

/* COPY/ZEROPAGE on a dead process's uffd fail with ESRCH and leave the count field
 * untouched: ESRCH is the "owner gone" signal of the fault path and dead checker. */
TEST_F(dead, copy_zeropage_esrch)
{
	const int64_t sentinel = 0x5a5a;
	size_t ps = self->env.page_size;
	int64_t f;

	CT_REQUIRE_KERNEL(&self->env, 4, 14, "UFFDIO_ZEROPAGE on shmem");
	f = sentinel;
	EXPECT_EQ(-ESRCH, ct_copy(self->fd, self->m.addr, self->src, ps, 0, &f));
	EXPECT_EQ(sentinel, f);
	f = sentinel;
	EXPECT_EQ(-ESRCH, ct_zeropage(self->fd, self->m.addr, ps, UFFDIO_ZEROPAGE_MODE_DONTWAKE,
				      &f));
	EXPECT_EQ(sentinel, f);
	/* The shared page stays a hole: nothing was filled. */
	EXPECT_EQ(-1, lseek(self->m.memfd, 0, SEEK_DATA));
}

/* WAKE on a dead process's uffd succeeds and the uffd polls quietly: a dead uffd
 * left in epoll does not make the monitor spin (spec 5.4). */
TEST_F(dead, wake_ok_poll_quiet)
{
	EXPECT_EQ(0, ct_wake(self->fd, self->m.addr, self->env.page_size));
	EXPECT_EQ(0, ct_uffd_wait_readable(self->fd, CT_NEGATIVE_MS));
}

struct pipe_read {
	int fd;
	void *buf;
	size_t len;
};

static long pipe_read_fn(void *p)
{
	struct pipe_read *x = p;

	return read(x->fd, x->buf, x->len);
}

/* With UFFD_USER_MODE_ONLY, read(2) into a missing registered page fails with EFAULT
 * and produces no event (spec 5.1): why the design must not set the flag. */
TEST(user_mode_only_kernel_access_efault)
{
	static const char data[] = "kernel-mode data";
	struct ct_env env;
	struct ct_uffd u;
	struct ct_mem m;
	struct ct_async a;
	struct uffd_msg msg;
	struct pipe_read arg;
	int pfd[2];

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 5, 11, "UFFD_USER_MODE_ONLY");
	CT_UFFD_OPEN_OR_SKIP(&u, &env, CT_VIA_ANY | CT_USER_MODE_ONLY, FEATURES);
	ASSERT_EQ(0, ct_mem_create(&m, env.page_size, false, 0));
	ASSERT_EQ(0, ct_register(u.fd, m.addr, m.len, UFFDIO_REGISTER_MODE_MISSING, NULL));
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ((ssize_t)sizeof(data), write(pfd[1], data, sizeof(data)));
	arg = (struct pipe_read){ .fd = pfd[0], .buf = m.addr, .len = sizeof(data) };
	ASSERT_EQ(0, ct_async_start(&a, pipe_read_fn, &arg));
	if (!ct_async_done_within(&a, CT_DEADLINE_MS)) {
		/* The kernel delivered the fault after all: resolve it, then fail. */
		if (ct_uffd_next_msg(u.fd, &msg, CT_DEADLINE_MS) == 0)
			ct_zeropage(u.fd, m.addr, env.page_size, 0, NULL);
		ct_async_join(&a);
		ASSERT_TRUE(false) TH_LOG("read(2) blocked on a USER_MODE_ONLY uffd");
	}
	EXPECT_EQ(-1, a.ret);
	EXPECT_EQ(EFAULT, a.err);
	EXPECT_EQ(0, ct_uffd_wait_readable(u.fd, 0)) TH_LOG("an event was queued");
	close(pfd[0]);
	close(pfd[1]);
	ct_mem_destroy(&m);
	ct_uffd_close(&u);
}

/* Without UFFD_USER_MODE_ONLY a kernel-mode access (read(2) into guest memory) is
 * delivered as a fault with flags=WRITE, and read(2) completes after COPY: device
 * processes write guest memory from syscalls (spec 5.1, exp2 "4"). */
TEST(kernel_access_fault_delivered)
{
	static const char data[] = "kernel-mode data";
	struct ct_env env;
	struct ct_uffd u;
	struct ct_mem m;
	struct ct_async a;
	struct uffd_msg msg;
	struct pipe_read arg;
	char *src;
	int pfd[2];

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 4, 11, "MISSING faults on shmem");
	CT_UFFD_OPEN_OR_SKIP(&u, &env, CT_VIA_ANY, FEATURES);
	ASSERT_FALSE(u.user_mode_only);
	ASSERT_EQ(0, ct_mem_create(&m, env.page_size, true, 0));
	src = ct_anon_map(env.page_size);
	ASSERT_NE(NULL, src);
	ct_fill(src, env.page_size, 3);
	ASSERT_EQ(0, ct_register(u.fd, m.addr, m.len, UFFDIO_REGISTER_MODE_MISSING, NULL));
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ((ssize_t)sizeof(data), write(pfd[1], data, sizeof(data)));
	arg = (struct pipe_read){ .fd = pfd[0], .buf = m.addr, .len = sizeof(data) };
	ASSERT_EQ(0, ct_async_start(&a, pipe_read_fn, &arg));
	ASSERT_EQ(0, ct_uffd_next_msg(u.fd, &msg, CT_DEADLINE_MS));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	EXPECT_EQ((uintptr_t)m.addr, msg.arg.pagefault.address);
	EXPECT_EQ(UFFD_PAGEFAULT_FLAG_WRITE, msg.arg.pagefault.flags);
	ASSERT_EQ(0, ct_copy(u.fd, m.addr, src, env.page_size, 0, NULL));
	ASSERT_TRUE(ct_async_done_within(&a, CT_DEADLINE_MS));
	EXPECT_EQ((long)sizeof(data), a.ret);
	EXPECT_EQ(0, memcmp(m.alias, data, sizeof(data)));
	EXPECT_EQ(0, memcmp(m.alias + sizeof(data), src + sizeof(data),
			    env.page_size - sizeof(data)));
	close(pfd[0]);
	close(pfd[1]);
	munmap(src, env.page_size);
	ct_mem_destroy(&m);
	ct_uffd_close(&u);
}

/* Without UFFD_FEATURE_EVENT_FORK, a fork()ed child's mapping is not registered: its
 * missing page reads as fresh zeroes and no event reaches the parent's uffd (spec
 * 5.6.4): the monitor must register each new process itself. */
TEST(fork_drops_registration)
{
	struct ct_env env;
	struct ct_uffd u;
	struct ct_mem m;
	int status = 0, r;
	pid_t pid;

	ct_env_init(&env);
	CT_REQUIRE_KERNEL(&env, 4, 11, "MISSING faults on shmem");
	CT_UFFD_OPEN_OR_SKIP(&u, &env, CT_VIA_ANY | CT_USER_MODE_OK, FEATURES);
	ASSERT_EQ(0, ct_mem_create(&m, 2 * env.page_size, false, 0));
	ASSERT_EQ(0, ct_register(u.fd, m.addr, m.len, UFFDIO_REGISTER_MODE_MISSING, NULL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(ct_is_zero(m.addr + env.page_size, env.page_size) ? 0 : 1);
	r = ct_waitpid_deadline(pid, &status, CT_DEADLINE_MS);
	if (r == -ETIMEDOUT) {
		/* The child blocked in a fault: serve it so nothing stays stuck. */
		ct_zeropage(u.fd, m.addr + env.page_size, env.page_size, 0, NULL);
	}
	ASSERT_EQ(0, r) TH_LOG("the child blocked on its page access");
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, ct_uffd_wait_readable(u.fd, 0)) TH_LOG("the child's access made an event");
	ct_mem_destroy(&m);
	ct_uffd_close(&u);
}

TEST_HARNESS_MAIN
