// SPDX-License-Identifier: GPL-2.0-only
/*
 * contract.c - helpers for the kernel-contract selftests (see contract.h).
 */
#include "contract.h"

#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/capability.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

uint64_t ct_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = ct_now_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

void ct_env_init(struct ct_env *env)
{
	struct utsname u;
	cap_t caps;
	char buf[32];

	memset(env, 0, sizeof(*env));
	env->page_size = (size_t)sysconf(_SC_PAGESIZE);
	if (uname(&u) == 0 && sscanf(u.release, "%u.%u", &env->kmajor, &env->kminor) != 2)
		env->kmajor = env->kminor = 0;
	env->root = geteuid() == 0;
	caps = cap_get_proc();
	if (caps) {
		cap_flag_value_t v = CAP_CLEAR;

		if (cap_get_flag(caps, CAP_SYS_PTRACE, CAP_EFFECTIVE, &v) == 0)
			env->cap_sys_ptrace = v == CAP_SET;
		cap_free(caps);
	}
	env->dev_uffd = access(CT_DEV_UFFD, R_OK | W_OK) == 0;
	env->unpriv_sysctl = -1;
	if (ct_read_file("/proc/sys/vm/unprivileged_userfaultfd", buf, sizeof(buf)) == 0)
		env->unpriv_sysctl = atoi(buf);
	env->any_kernel = getenv(CT_ENV_ANY_KERNEL) && !strcmp(getenv(CT_ENV_ANY_KERNEL), "1");
}

bool ct_kernel_at_least(const struct ct_env *env, unsigned int major, unsigned int minor)
{
	if (env->any_kernel)
		return true;
	return env->kmajor > major || (env->kmajor == major && env->kminor >= minor);
}

int ct_uffd_raw(const struct ct_env *env, unsigned int how, unsigned int *via_out,
		bool *umo_out, char *why, size_t whylen)
{
	int oflags = O_CLOEXEC | ((how & CT_BLOCKING) ? 0 : O_NONBLOCK);
	char dev_why[128] = "device path not allowed";
	int fd;

	if (how & CT_VIA_DEVICE) {
		if (!ct_kernel_at_least(env, 6, 1)) {
			snprintf(dev_why, sizeof(dev_why), "/dev/userfaultfd needs Linux 6.1");
		} else if (!env->dev_uffd) {
			snprintf(dev_why, sizeof(dev_why),
				 "no read-write access to " CT_DEV_UFFD);
		} else {
			int dev = open(CT_DEV_UFFD, O_RDWR | O_CLOEXEC);

			if (dev < 0) {
				snprintf(dev_why, sizeof(dev_why), "open " CT_DEV_UFFD ": %s",
					 strerror(errno));
			} else {
				int f = oflags;

				if (how & CT_USER_MODE_ONLY)
					f |= UFFD_USER_MODE_ONLY;
				fd = ioctl(dev, USERFAULTFD_IOC_NEW, f);
				if (fd < 0)
					snprintf(dev_why, sizeof(dev_why),
						 "USERFAULTFD_IOC_NEW: %s", strerror(errno));
				close(dev);
				if (fd >= 0) {
					*via_out = CT_VIA_DEVICE;
					*umo_out = how & CT_USER_MODE_ONLY;
					return fd;
				}
			}
		}
	}
	if (how & CT_VIA_SYSCALL) {
		bool kernel_ok = env->cap_sys_ptrace || env->unpriv_sysctl == 1;
		bool umo = how & CT_USER_MODE_ONLY;

		if (!umo && !kernel_ok) {
			if (!(how & CT_USER_MODE_OK)) {
				snprintf(why, whylen,
					 "%s; userfaultfd(2) with kernel-mode faults needs "
					 "CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1",
					 dev_why);
				return -EPERM;
			}
			umo = true;
		}
		fd = (int)syscall(__NR_userfaultfd, oflags | (umo ? UFFD_USER_MODE_ONLY : 0));
		if (fd >= 0) {
			*via_out = CT_VIA_SYSCALL;
			*umo_out = umo;
			return fd;
		}
		snprintf(why, whylen, "%s; userfaultfd(2): %s", dev_why, strerror(errno));
		return -errno;
	}
	snprintf(why, whylen, "%s", dev_why);
	return -EPERM;
}

int ct_uffd_api(int fd, uint64_t features, uint64_t *offered_out, uint64_t *ioctls_out)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };

	if (ioctl(fd, UFFDIO_API, &api))
		return -errno;
	if (offered_out)
		*offered_out = api.features;
	if (ioctls_out)
		*ioctls_out = api.ioctls;
	return 0;
}

int ct_uffd_offered(const struct ct_env *env, unsigned int how, uint64_t *features_out,
		    uint64_t *ioctls_out, char *why, size_t whylen)
{
	unsigned int via;
	bool umo;
	int fd, r;

	fd = ct_uffd_raw(env, how, &via, &umo, why, whylen);
	if (fd < 0)
		return CT_SKIP;
	r = ct_uffd_api(fd, 0, features_out, ioctls_out);
	close(fd);
	if (r)
		snprintf(why, whylen, "UFFDIO_API(0): %s", strerror(-r));
	return r;
}

int ct_uffd_open(struct ct_uffd *u, const struct ct_env *env, unsigned int how,
		 uint64_t features, char *why, size_t whylen)
{
	uint64_t offered = 0;
	int fd, r;

	memset(u, 0, sizeof(*u));
	u->fd = -1;
	fd = ct_uffd_raw(env, how, &u->via, &u->user_mode_only, why, whylen);
	if (fd < 0)
		return CT_SKIP;
	r = ct_uffd_api(fd, features, &u->offered, &u->ioctls);
	if (r == 0) {
		u->fd = fd;
		u->features = features;
		return 0;
	}
	close(fd);
	if (r == -EPERM && (features & UFFD_FEATURE_EVENT_FORK)) {
		snprintf(why, whylen, "UFFD_FEATURE_EVENT_FORK needs CAP_SYS_PTRACE");
		return CT_SKIP;
	}
	if (r != -EINVAL)
		goto fail;
	/* Which of the requested features is not offered? */
	if (ct_uffd_offered(env, how, &offered, NULL, why, whylen))
		goto fail;
	if (features & ~offered)
		return ct_features_missing(env, features & ~offered, why, whylen);
fail:
	snprintf(why, whylen, "UFFDIO_API(0x%llx): %s", (unsigned long long)features,
		 strerror(-r));
	return r;
}

#define CT_FEATURE(f, maj, min, cfg, loses) \
	{ UFFD_FEATURE_##f, "UFFD_FEATURE_" #f, maj, min, cfg, loses }

/*
 * Every uffd feature: the upstream release that introduced it, the Kconfig option
 * without which the kernel does not offer it (beyond CONFIG_USERFAULTFD), and what
 * the swap design loses without it. A test requesting a feature the kernel does not
 * offer SKIPs below that release and FAILs at or above it (ct_features_missing()).
 */
static const struct ct_feature ct_features[] = {
	CT_FEATURE(PAGEFAULT_FLAG_WP, 5, 7, "CONFIG_HAVE_ARCH_USERFAULTFD_WP",
		   "write-protect faults: no dirty tracking of guest memory"),
	CT_FEATURE(EVENT_FORK, 4, 11, NULL,
		   "FORK events: a forked process's guest memory is no longer registered"),
	CT_FEATURE(EVENT_REMAP, 4, 11, NULL,
		   "REMAP events: guest memory moved by mremap() is no longer registered"),
	CT_FEATURE(EVENT_REMOVE, 4, 11, NULL,
		   "REMOVE events: balloon discards go unseen, so stale swapped data is "
		   "handed back instead of zeroes"),
	CT_FEATURE(MISSING_HUGETLBFS, 4, 11, NULL,
		   "MISSING faults on hugetlbfs: hugetlb guest memory cannot be swapped"),
	CT_FEATURE(MISSING_SHMEM, 4, 11, NULL,
		   "MISSING faults on shmem: memfd guest memory cannot be swapped at all"),
	CT_FEATURE(EVENT_UNMAP, 4, 11, NULL,
		   "UNMAP events: an munmap() of guest memory goes unseen"),
	CT_FEATURE(SIGBUS, 4, 14, NULL,
		   "SIGBUS mode: faults cannot be turned into signals"),
	CT_FEATURE(THREAD_ID, 4, 14, NULL,
		   "the faulting thread's id in fault messages"),
	CT_FEATURE(MINOR_HUGETLBFS, 5, 13, "CONFIG_HAVE_ARCH_USERFAULTFD_MINOR",
		   "MINOR faults on hugetlbfs: no page-cache-backed restore of hugetlb memory"),
	CT_FEATURE(MINOR_SHMEM, 5, 14, "CONFIG_HAVE_ARCH_USERFAULTFD_MINOR",
		   "MINOR faults on shmem: no page-cache-backed restore (UFFDIO_CONTINUE)"),
	CT_FEATURE(EXACT_ADDRESS, 5, 18, NULL,
		   "exact (unmasked) fault addresses"),
	CT_FEATURE(WP_HUGETLBFS_SHMEM, 5, 19, "CONFIG_PTE_MARKER_UFFD_WP",
		   "write-protect on memfd guest memory: no dirty tracking during swap-out"),
	CT_FEATURE(WP_UNPOPULATED, 6, 4, "CONFIG_PTE_MARKER_UFFD_WP",
		   "write-protect of never-touched anonymous memory: its first write is "
		   "missed by dirty tracking"),
	CT_FEATURE(POISON, 6, 6, NULL,
		   "UFFDIO_POISON: a page that cannot be restored reads as zeroes instead of "
		   "raising SIGBUS"),
	CT_FEATURE(WP_ASYNC, 6, 7, "CONFIG_PTE_MARKER_UFFD_WP",
		   "asynchronous write-protect: dirty tracking needs a fault per write"),
	CT_FEATURE(MOVE, 6, 8, NULL,
		   "UFFDIO_MOVE: no zero-copy swap-in from anonymous staging memory"),
};

const struct ct_feature *ct_feature_info(uint64_t bit)
{
	for (size_t i = 0; i < sizeof(ct_features) / sizeof(ct_features[0]); i++)
		if (ct_features[i].bit == bit)
			return &ct_features[i];
	return NULL;
}

static void why_append(char *why, size_t whylen, size_t *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void why_append(char *why, size_t whylen, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*n >= whylen)
		return;
	va_start(ap, fmt);
	r = vsnprintf(why + *n, whylen - *n, fmt, ap);
	va_end(ap);
	if (r > 0)
		*n += (size_t)r;
}

int ct_features_missing(const struct ct_env *env, uint64_t missing, char *why,
			size_t whylen)
{
	size_t nskip = 0, nfail = 0;
	char skip[256] = "";

	why[0] = 0;
	for (unsigned int b = 0; b < 64; b++) {
		const struct ct_feature *f;

		if (!(missing & (1ULL << b)))
			continue;
		f = ct_feature_info(1ULL << b);
		if (env->any_kernel) {
			if (f)
				why_append(skip, sizeof(skip), &nskip, "%s%s",
					   nskip ? ", " : "", f->name);
			else
				why_append(skip, sizeof(skip), &nskip, "%sfeature 0x%llx",
					   nskip ? ", " : "", 1ULL << b);
		} else if (!f) {
			why_append(why, whylen, &nfail,
				   "%suffd feature 0x%llx is not in ct_features[] (contract.c)",
				   nfail ? "; " : "", 1ULL << b);
		} else if (!ct_kernel_at_least(env, f->major, f->minor)) {
			why_append(skip, sizeof(skip), &nskip,
				   "%s%s needs Linux %u.%u, running %u.%u", nskip ? "; " : "",
				   f->name, f->major, f->minor, env->kmajor, env->kminor);
		} else {
			why_append(why, whylen, &nfail,
				   "%sLinux %u.%u does not offer %s (upstream since %u.%u%s%s): "
				   "the design loses %s",
				   nfail ? "; " : "", env->kmajor, env->kminor, f->name,
				   f->major, f->minor, f->config ? ", needs " : "",
				   f->config ? f->config : "", f->loses);
		}
	}
	if (nfail)
		return -EOPNOTSUPP;
	if (env->any_kernel)
		snprintf(why, whylen, "kernel %u.%u does not offer %s (" CT_ENV_ANY_KERNEL
			 "=1: skipped)", env->kmajor, env->kminor, skip);
	else
		snprintf(why, whylen, "%s", skip);
	return CT_SKIP;
}

void ct_uffd_close(struct ct_uffd *u)
{
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
}

int ct_register(int fd, void *addr, size_t len, uint64_t mode, uint64_t *ioctls_out)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = mode,
	};

	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		return -errno;
	if (ioctls_out)
		*ioctls_out = reg.ioctls;
	return 0;
}

int ct_unregister(int fd, void *addr, size_t len)
{
	struct uffdio_range r = { .start = (uintptr_t)addr, .len = len };

	return ioctl(fd, UFFDIO_UNREGISTER, &r) ? -errno : 0;
}

int ct_copy(int fd, void *dst, const void *src, size_t len, uint64_t mode, int64_t *field)
{
	struct uffdio_copy c = {
		.dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = len, .mode = mode,
		.copy = field ? *field : 0,
	};
	int r = ioctl(fd, UFFDIO_COPY, &c) ? -errno : 0;

	if (field)
		*field = c.copy;
	return r;
}

int ct_zeropage(int fd, void *dst, size_t len, uint64_t mode, int64_t *field)
{
	struct uffdio_zeropage z = {
		.range = { .start = (uintptr_t)dst, .len = len }, .mode = mode,
		.zeropage = field ? *field : 0,
	};
	int r = ioctl(fd, UFFDIO_ZEROPAGE, &z) ? -errno : 0;

	if (field)
		*field = z.zeropage;
	return r;
}

int ct_continue(int fd, void *dst, size_t len, uint64_t mode, int64_t *field)
{
	struct uffdio_continue c = {
		.range = { .start = (uintptr_t)dst, .len = len }, .mode = mode,
		.mapped = field ? *field : 0,
	};
	int r = ioctl(fd, UFFDIO_CONTINUE, &c) ? -errno : 0;

	if (field)
		*field = c.mapped;
	return r;
}

int ct_poison(int fd, void *dst, size_t len, uint64_t mode, int64_t *field)
{
	struct uffdio_poison p = {
		.range = { .start = (uintptr_t)dst, .len = len }, .mode = mode,
		.updated = field ? *field : 0,
	};
	int r = ioctl(fd, UFFDIO_POISON, &p) ? -errno : 0;

	if (field)
		*field = p.updated;
	return r;
}

int ct_move(int fd, void *dst, void *src, size_t len, uint64_t mode, int64_t *field)
{
	struct uffdio_move m = {
		.dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = len, .mode = mode,
		.move = field ? *field : 0,
	};
	int r = ioctl(fd, UFFDIO_MOVE, &m) ? -errno : 0;

	if (field)
		*field = m.move;
	return r;
}

int ct_wake(int fd, void *addr, size_t len)
{
	struct uffdio_range r = { .start = (uintptr_t)addr, .len = len };

	return ioctl(fd, UFFDIO_WAKE, &r) ? -errno : 0;
}

int ct_writeprotect(int fd, void *addr, size_t len, uint64_t mode)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)addr, .len = len }, .mode = mode,
	};

	return ioctl(fd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

int ct_uffd_wait_readable(int fd, int timeout_ms)
{
	uint64_t deadline = ct_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = poll(&p, 1, remaining_ms(deadline));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		if (p.revents & (POLLERR | POLLNVAL))
			return -EIO;
		return 1;
	}
}

int ct_uffd_read_msg(int fd, struct uffd_msg *msg)
{
	for (;;) {
		ssize_t n = read(fd, msg, sizeof(*msg));

		if (n == (ssize_t)sizeof(*msg))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		return -EIO;
	}
}

int ct_uffd_next_msg(int fd, struct uffd_msg *msg, int timeout_ms)
{
	uint64_t deadline = ct_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		int r = ct_uffd_wait_readable(fd, remaining_ms(deadline));

		if (r < 0)
			return r;
		if (r == 0)
			return -ETIMEDOUT;
		r = ct_uffd_read_msg(fd, msg);
		if (r != -EAGAIN)
			return r;
		/* A fault can be woken (and dequeued) between poll and read. */
		if (!remaining_ms(deadline))
			return -ETIMEDOUT;
	}
}

int ct_mem_create(struct ct_mem *m, size_t len, bool alias, size_t align)
{
	int err;

	memset(m, 0, sizeof(*m));
	m->memfd = memfd_create("vmmswap-contract", MFD_CLOEXEC);
	if (m->memfd < 0)
		return -errno;
	m->len = len;
	if (ftruncate(m->memfd, (off_t)len))
		goto fail;
	if (align) {
		uintptr_t a;

		/* Reserve len + align, then map the memfd at an aligned address inside. */
		m->raw_len = len + align;
		m->raw = mmap(NULL, m->raw_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m->raw == MAP_FAILED) {
			m->raw = NULL;
			goto fail;
		}
		a = ((uintptr_t)m->raw + align - 1) & ~(uintptr_t)(align - 1);
		m->addr = mmap((void *)a, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			       m->memfd, 0);
	} else {
		m->addr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->memfd, 0);
	}
	if (m->addr == MAP_FAILED) {
		m->addr = NULL;
		goto fail;
	}
	if (alias) {
		m->alias = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->memfd, 0);
		if (m->alias == MAP_FAILED) {
			m->alias = NULL;
			goto fail;
		}
	}
	return 0;
fail:
	err = -errno;
	ct_mem_destroy(m);
	return err;
}

void ct_mem_destroy(struct ct_mem *m)
{
	if (m->alias)
		munmap(m->alias, m->len);
	if (m->raw)
		munmap(m->raw, m->raw_len);
	else if (m->addr)
		munmap(m->addr, m->len);
	if (m->memfd > 0)
		close(m->memfd);
	memset(m, 0, sizeof(*m));
	m->memfd = -1;
}

void *ct_anon_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static unsigned char pattern_byte(size_t off, unsigned int seed)
{
	uint32_t x = (uint32_t)off * 2654435761u + seed * 40503u + 1;

	x ^= x >> 13;
	return (unsigned char)(x | 1); /* never zero: a zero page never matches */
}

void ct_fill(void *p, size_t len, unsigned int seed)
{
	unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		b[i] = pattern_byte(i, seed);
}

long ct_check(const void *p, size_t len, unsigned int seed)
{
	const volatile unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != pattern_byte(i, seed))
			return (long)i;
	return -1;
}

bool ct_is_zero(const void *p, size_t len)
{
	const volatile unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

static void *async_main(void *arg)
{
	struct ct_async *a = arg;
	uint64_t one = 1;

	__atomic_store_n(&a->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	if (write(a->start_efd, &one, sizeof(one)) != sizeof(one))
		a->err = errno;
	errno = 0;
	a->ret = a->fn(a->arg);
	a->err = errno;
	if (write(a->done_efd, &one, sizeof(one)) != sizeof(one))
		a->err = errno;
	return NULL;
}

int ct_async_start(struct ct_async *a, long (*fn)(void *arg), void *arg)
{
	struct pollfd p;
	int r;

	memset(a, 0, sizeof(*a));
	a->fn = fn;
	a->arg = arg;
	a->done_efd = eventfd(0, EFD_CLOEXEC);
	a->start_efd = eventfd(0, EFD_CLOEXEC);
	if (a->done_efd < 0 || a->start_efd < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&a->thread, NULL, async_main, a);
	if (r)
		goto fail;
	a->started = true;
	p = (struct pollfd){ .fd = a->start_efd, .events = POLLIN };
	if (poll(&p, 1, CT_DEADLINE_MS) != 1)
		return -ETIMEDOUT;
	return 0;
fail:
	if (a->done_efd >= 0)
		close(a->done_efd);
	if (a->start_efd >= 0)
		close(a->start_efd);
	a->done_efd = a->start_efd = -1;
	return r;
}

bool ct_async_done_within(struct ct_async *a, int timeout_ms)
{
	uint64_t deadline = ct_now_ms() + (uint64_t)timeout_ms;

	if (!a->started)
		return false;
	if (a->joined)
		return true;
	for (;;) {
		struct pollfd p = { .fd = a->done_efd, .events = POLLIN };
		int n = poll(&p, 1, remaining_ms(deadline));

		if (n < 0 && errno == EINTR)
			continue;
		if (n != 1)
			return false;
		ct_async_join(a);
		return true;
	}
}

void ct_async_join(struct ct_async *a)
{
	if (!a->started || a->joined)
		return;
	pthread_join(a->thread, NULL);
	a->joined = true;
	close(a->done_efd);
	close(a->start_efd);
	a->done_efd = a->start_efd = -1;
}

int ct_async_wait_sleeping(struct ct_async *a, int timeout_ms)
{
	uint64_t deadline = ct_now_ms() + (uint64_t)timeout_ms;
	char path[64], buf[512];

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat",
		 (int)__atomic_load_n(&a->tid, __ATOMIC_ACQUIRE));
	for (;;) {
		char *rp;
		int r = ct_read_file(path, buf, sizeof(buf));

		if (r)
			return r;
		rp = strrchr(buf, ')');
		if (rp && rp[1] == ' ' && (rp[2] == 'S' || rp[2] == 'D'))
			return 0;
		if (!remaining_ms(deadline))
			return -ETIMEDOUT;
		/* Bounded polling: yield briefly, the state changes asynchronously. */
		poll(NULL, 0, 1);
	}
}

long ct_madvise_fn(void *arg)
{
	struct ct_madv *m = arg;

	return madvise(m->addr, m->len, m->advice);
}

long ct_touch_fn(void *arg)
{
	struct ct_touch *t = arg;

	if (t->write) {
		for (size_t i = 0; i < t->len; i++)
			t->addr[i] = t->val;
		return 0;
	}
	t->first = t->addr[0];
	if (t->expect_pattern == 1)
		return ct_check((const void *)t->addr, t->len, t->seed) < 0 ? 0 : 1;
	if (t->expect_pattern == 0)
		return ct_is_zero((const void *)t->addr, t->len) ? 0 : 1;
	for (size_t i = 0; i < t->len; i++)
		(void)t->addr[i];
	return 0;
}

static void reader_note_err(struct ct_reader *r, int err)
{
	pthread_mutex_lock(&r->lock);
	if (!r->err)
		r->err = err;
	pthread_mutex_unlock(&r->lock);
}

static void *reader_main(void *arg)
{
	struct ct_reader *r = arg;
	uint64_t pending[64];
	int npending = 0;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = r->uffd, .events = POLLIN },
			{ .fd = r->stop_efd, .events = POLLIN },
		};
		int n = poll(p, 2, npending ? 1 : -1);
		int keep = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			reader_note_err(r, -errno);
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents & (POLLERR | POLLNVAL | POLLHUP)) {
			reader_note_err(r, -EIO);
			break;
		}
		for (;;) {
			struct uffd_msg msg;
			int rc = ct_uffd_read_msg(r->uffd, &msg);

			if (rc == -EAGAIN)
				break;
			if (rc) {
				reader_note_err(r, rc);
				return NULL;
			}
			pthread_mutex_lock(&r->lock);
			if (r->count < CT_QLEN) {
				r->q[(r->head + r->count) % CT_QLEN] = msg;
				r->count++;
			} else {
				r->lost++;
			}
			if (msg.event == UFFD_EVENT_PAGEFAULT)
				r->nr_faults++;
			else if (msg.event == UFFD_EVENT_REMOVE)
				r->nr_removes++;
			pthread_cond_broadcast(&r->cond);
			pthread_mutex_unlock(&r->lock);
			if (msg.event == UFFD_EVENT_PAGEFAULT && r->serve == CT_SERVE_ZERO &&
			    npending < 64)
				pending[npending++] = msg.arg.pagefault.address &
						      ~(uint64_t)(r->page_size - 1);
		}
		for (int i = 0; i < npending; i++) {
			void *page = (void *)(uintptr_t)pending[i];
			int rc = ct_zeropage(r->uffd, page, r->page_size, 0, NULL);

			if (rc == -EEXIST)
				rc = ct_wake(r->uffd, page, r->page_size);
			if (rc == -EAGAIN) {
				/* A REMOVE is in flight: retry once events are drained. */
				pending[keep++] = pending[i];
				continue;
			}
			if (rc)
				reader_note_err(r, rc);
			else
				r->nr_served++; /* only this thread touches it until the join */
		}
		npending = keep;
	}
	return NULL;
}

int ct_reader_start(struct ct_reader *r, int uffd, enum ct_serve serve, size_t page_size)
{
	pthread_condattr_t ca;
	int rc;

	memset(r, 0, sizeof(*r));
	r->uffd = uffd;
	r->serve = serve;
	r->page_size = page_size;
	r->stop_efd = eventfd(0, EFD_CLOEXEC);
	if (r->stop_efd < 0)
		return -errno;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&r->thread, NULL, reader_main, r);
	if (rc) {
		close(r->stop_efd);
		r->stop_efd = -1;
		return -rc;
	}
	r->started = true;
	return 0;
}

int ct_reader_wait(struct ct_reader *r, uint8_t event, struct uffd_msg *msg, int timeout_ms)
{
	struct timespec ts;
	int ret = -ETIMEDOUT;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&r->lock);
	for (;;) {
		for (unsigned int i = 0; i < r->count; i++) {
			unsigned int idx = (r->head + i) % CT_QLEN;

			if (event && r->q[idx].event != event)
				continue;
			*msg = r->q[idx];
			/* Close the gap, keeping the order of the others. */
			for (unsigned int j = i; j > 0; j--)
				r->q[(r->head + j) % CT_QLEN] = r->q[(r->head + j - 1) % CT_QLEN];
			r->head = (r->head + 1) % CT_QLEN;
			r->count--;
			ret = 0;
			goto out;
		}
		if (pthread_cond_timedwait(&r->cond, &r->lock, &ts))
			break;
	}
out:
	pthread_mutex_unlock(&r->lock);
	return ret;
}

unsigned long ct_reader_nr_faults(struct ct_reader *r)
{
	unsigned long n;

	pthread_mutex_lock(&r->lock);
	n = r->nr_faults;
	pthread_mutex_unlock(&r->lock);
	return n;
}

int ct_reader_stop(struct ct_reader *r)
{
	uint64_t one = 1;

	if (!r->started)
		return r->err;
	if (write(r->stop_efd, &one, sizeof(one)) != sizeof(one))
		return -errno; /* cannot happen with an eventfd; leave the thread, not hang */
	pthread_join(r->thread, NULL);
	r->started = false;
	close(r->stop_efd);
	r->stop_efd = -1;
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	return r->err;
}

int ct_send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;

	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &mh, 0) == 1 ? 0 : -errno;
}

int ct_recv_fd(int sock)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
		return -EIO;
	c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EIO;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

int ct_waitpid_deadline(pid_t pid, int *status, int timeout_ms)
{
	uint64_t deadline = ct_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (!remaining_ms(deadline)) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			return -ETIMEDOUT;
		}
		/* Bounded polling for the child's exit. */
		poll(NULL, 0, 2);
	}
}

int ct_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	return 0;
}

int ct_write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	err = errno;
	close(fd);
	if (n < 0)
		return -err;
	return (size_t)n == strlen(val) ? 0 : -EIO;
}

int ct_hugepages_init(struct ct_hugepages *h, unsigned long size_kb, char *why, size_t whylen)
{
	memset(h, 0, sizeof(*h));
	h->size_kb = size_kb;
	snprintf(h->dir, sizeof(h->dir), CT_HUGEPAGES_DIR "/hugepages-%lukB", size_kb);
	if (access(CT_HUGEPAGES_DIR, F_OK)) {
		snprintf(why, whylen, "no hugetlb support (no %s: CONFIG_HUGETLBFS, "
			 "CONFIG_HUGETLB_PAGE)", CT_HUGEPAGES_DIR);
		return CT_SKIP;
	}
	if (access(h->dir, F_OK)) {
		snprintf(why, whylen, "no %lu kB huge pages (no %s)", size_kb, h->dir);
		return CT_SKIP;
	}
	return 0;
}

long ct_hugepages_read(const struct ct_hugepages *h, const char *name)
{
	char path[160], buf[32];
	int r;

	snprintf(path, sizeof(path), "%s/%s", h->dir, name);
	r = ct_read_file(path, buf, sizeof(buf));
	return r ? r : strtol(buf, NULL, 10);
}

static int hugepages_write_nr(const struct ct_hugepages *h, long nr)
{
	char path[160], buf[32];

	snprintf(path, sizeof(path), "%s/nr_hugepages", h->dir);
	snprintf(buf, sizeof(buf), "%ld", nr);
	return ct_write_file(path, buf);
}

int ct_hugepages_reserve(struct ct_hugepages *h, const struct ct_env *env, long need,
			 char *why, size_t whylen)
{
	long nr = ct_hugepages_read(h, "nr_hugepages");
	long avail = ct_hugepages_read(h, "free_hugepages");
	long resv = ct_hugepages_read(h, "resv_hugepages");
	long target;
	int r;

	if (nr < 0 || avail < 0 || resv < 0) {
		snprintf(why, whylen, "cannot read the counters in %s", h->dir);
		return nr < 0 ? (int)nr : avail < 0 ? (int)avail : (int)resv;
	}
	avail -= resv;	/* reserved pages are promised to other mappings */
	if (avail >= need)
		return 0;
	if (!env->root) {
		snprintf(why, whylen, "needs %ld free %lu kB huge pages, %ld free; raising "
			 "%s/nr_hugepages needs root", need, h->size_kb, avail, h->dir);
		return CT_SKIP;
	}
	target = nr + need - avail;
	h->saved = nr;
	h->changed = true;	/* from here on, restore even if the write fails halfway */
	r = hugepages_write_nr(h, target);
	avail = ct_hugepages_read(h, "free_hugepages") - ct_hugepages_read(h, "resv_hugepages");
	if (r || avail < need) {
		snprintf(why, whylen, "raising %s/nr_hugepages from %ld to %ld: %s, %ld free "
			 "(memory too fragmented?)", h->dir, nr, target,
			 r ? strerror(-r) : "too few allocated", avail);
		r = ct_hugepages_restore(h);
		return r ? r : CT_SKIP;
	}
	return 0;
}

int ct_hugepages_restore(struct ct_hugepages *h)
{
	int r;

	if (!h->changed)
		return 0;
	r = hugepages_write_nr(h, h->saved);
	if (!r)
		h->changed = false;
	return r;
}

int ct_sysfs_choice(const char *path, char *out, size_t len)
{
	char buf[256], *a, *b;
	int r = ct_read_file(path, buf, sizeof(buf));

	if (r)
		return r;
	a = strchr(buf, '[');
	b = a ? strchr(a, ']') : NULL;
	if (!a || !b || (size_t)(b - a - 1) >= len)
		return -EINVAL;
	memcpy(out, a + 1, (size_t)(b - a - 1));
	out[b - a - 1] = 0;
	return 0;
}

long ct_smaps_field_kb(void *addr, const char *field)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool in = false;
	long total = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (in && !strncmp(line, field, strlen(field))) {
			total = atol(line + strlen(field));
			break;
		}
	}
	fclose(f);
	return total;
}
