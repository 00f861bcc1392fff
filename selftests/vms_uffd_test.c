// SPDX-License-Identifier: GPL-2.0-only
/*
 * vms_uffd_test - unit tests of libvmmswap's userfaultfd layer (ref/uffd.c).
 *
 * The decoding tests run anywhere; the rest use a real uffd on a real memfd and
 * SKIP when the caller may not create one (no /dev/userfaultfd access and no
 * CAP_SYS_PTRACE with vm.unprivileged_userfaultfd=0).
 *
 * What the kernel itself does (the FORK, REMAP and UNMAP events, batched reads,
 * registration errors) is checked with raw ioctls by the kernel-contract tests
 * (uffd_events_test, uffd_register_test, ...), which the kernel matrix runs; the
 * tests here check what the library makes of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include <vmmswap/test_hooks.h>
#include <vmmswap/uffd.h>

#define NPAGES 8

static long psize(void)
{
	return sysconf(_SC_PAGESIZE);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Wait (bounded) until fd is readable. Returns 1 if readable, 0 on timeout. */
static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

/* Read events until one of type 'event' arrives (bounded). */
static int read_until(int fd, uint8_t event, struct uffd_msg *out)
{
	double deadline = now_s() + 10;
	struct uffd_msg msgs[16];
	size_t n, i;

	while (now_s() < deadline) {
		if (!wait_readable(fd, 100))
			continue;
		if (vms_uffd_read_events(fd, msgs, 16, &n))
			return -1;
		for (i = 0; i < n; i++) {
			if (msgs[i].event == event) {
				*out = msgs[i];
				return 0;
			}
		}
	}
	return -1;
}

FIXTURE(uffd)
{
	struct vms_uffd u;
	int memfd;
	char *area;
	long ps;
	size_t len;
};

FIXTURE_SETUP(uffd)
{
	uint64_t feat = UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_MISSING_SHMEM;
	int ret;

	self->u.fd = -1;
	self->area = MAP_FAILED;
	self->ps = psize();
	self->len = NPAGES * self->ps;
	ret = vms_uffd_create(&self->u, feat, 0);
	if (ret == -EPERM || ret == -EACCES)
		SKIP(return, "cannot create a userfaultfd: %s (needs /dev/userfaultfd access "
			     "or CAP_SYS_PTRACE)", strerror(-ret));
	ASSERT_EQ(0, ret);
	self->memfd = memfd_create("vms_uffd_test", MFD_CLOEXEC);
	ASSERT_LE(0, self->memfd);
	ASSERT_EQ(0, ftruncate(self->memfd, self->len));
	self->area = mmap(NULL, self->len, PROT_READ | PROT_WRITE, MAP_SHARED, self->memfd, 0);
	ASSERT_NE(MAP_FAILED, self->area);
	ASSERT_EQ(0, vms_uffd_register(self->u.fd, (uintptr_t)self->area, self->len,
				       UFFDIO_REGISTER_MODE_MISSING, VMS_UFFD_MISSING_IOCTLS,
				       NULL));
}

FIXTURE_TEARDOWN(uffd)
{
	/* Close first: that releases any thread still waiting in a fault. */
	vms_uffd_close(&self->u);
	if (self->area != MAP_FAILED)
		munmap(self->area, self->len);
}

/* Success: the whole length is reported done. */
TEST(decode_success_reports_full_length)
{
	uint64_t done = 1;

	EXPECT_EQ(0, vms_uffd_decode_fill(0, 0, 8192, 8192, &done));
	EXPECT_EQ(8192, done);
}

/* "Nothing done" has two encodings: the -EAGAIN stored by kernels >= 6.15 ... */
TEST(decode_eagain_negative_field_is_nothing_done)
{
	uint64_t done = 1;

	EXPECT_EQ(-EAGAIN, vms_uffd_decode_fill(-1, EAGAIN, -EAGAIN, 4096, &done));
	EXPECT_EQ(0, done);
}

/* ... and the untouched (pre-set 0) field of older kernels' early check. */
TEST(decode_eagain_zero_field_is_nothing_done)
{
	uint64_t done = 1;

	EXPECT_EQ(-EAGAIN, vms_uffd_decode_fill(-1, EAGAIN, 0, 4096, &done));
	EXPECT_EQ(0, done);
}

/* A partial fill reports the bytes done, so the caller resumes after them. */
TEST(decode_partial_progress)
{
	uint64_t done = 0;

	EXPECT_EQ(-EAGAIN, vms_uffd_decode_fill(-1, EAGAIN, 4096, 16384, &done));
	EXPECT_EQ(4096, done);
	EXPECT_EQ(-EEXIST, vms_uffd_decode_fill(-1, EEXIST, -EEXIST, 4096, &done));
	EXPECT_EQ(0, done);
	EXPECT_EQ(-ESRCH, vms_uffd_decode_fill(-1, ESRCH, 0, 4096, &done));
	EXPECT_EQ(0, done);
}

/* A bogus count beyond the request is clamped; a failure without errno is -EIO. */
TEST(decode_never_reports_more_than_asked)
{
	uint64_t done = 0;

	EXPECT_EQ(-EAGAIN, vms_uffd_decode_fill(-1, EAGAIN, 1 << 20, 4096, &done));
	EXPECT_EQ(4096, done);
	EXPECT_EQ(-EIO, vms_uffd_decode_fill(-1, 0, 0, 4096, &done));
}

/* Each errno the swap design handles maps to its action. */
TEST(classify_errnos)
{
	EXPECT_EQ(VMS_UFFD_ERR_NONE, vms_uffd_classify(0));
	EXPECT_EQ(VMS_UFFD_ERR_RETRY_AFTER_EVENTS, vms_uffd_classify(-EAGAIN));
	EXPECT_EQ(VMS_UFFD_ERR_ALREADY_FILLED, vms_uffd_classify(-EEXIST));
	EXPECT_EQ(VMS_UFFD_ERR_OWNER_GONE, vms_uffd_classify(-ESRCH));
	EXPECT_EQ(VMS_UFFD_ERR_OWNER_GONE, vms_uffd_classify(ENOMEM));
	EXPECT_EQ(VMS_UFFD_ERR_FATAL, vms_uffd_classify(-ENOENT));
	EXPECT_STREQ("retry-after-events", vms_uffd_errclass_name(vms_uffd_classify(-EAGAIN)));
	EXPECT_STREQ("REMOVE", vms_uffd_event_name(UFFD_EVENT_REMOVE));
	EXPECT_STREQ("UNKNOWN", vms_uffd_event_name(0x7f));
}

/* Creation through each path honours the flags and yields CLOEXEC|NONBLOCK fds. */
TEST(create_each_path_nonblocking_cloexec)
{
	static const unsigned int paths[] = { VMS_UFFD_NO_SYSCALL, VMS_UFFD_NO_DEVICE };
	static const enum vms_uffd_origin want[] = { VMS_UFFD_FROM_DEVICE,
						     VMS_UFFD_FROM_SYSCALL };
	int tried = 0;

	for (int i = 0; i < 2; i++) {
		struct vms_uffd u;
		int ret = vms_uffd_create(&u, UFFD_FEATURE_EVENT_REMOVE, paths[i]);

		if (ret == -EPERM || ret == -EACCES || ret == -ENOENT) {
			TH_LOG("path %d unavailable: %s", i, strerror(-ret));
			continue;
		}
		ASSERT_EQ(0, ret);
		tried++;
		EXPECT_EQ(want[i], u.origin);
		EXPECT_TRUE(fcntl(u.fd, F_GETFL) & O_NONBLOCK);
		EXPECT_TRUE(fcntl(u.fd, F_GETFD) & FD_CLOEXEC);
		EXPECT_EQ(UFFD_FEATURE_EVENT_REMOVE, u.features);
		EXPECT_TRUE(u.offered_features & UFFD_FEATURE_EVENT_REMOVE);
		EXPECT_TRUE(u.ioctls & VMS_UFFD_IOCTL_BIT(_UFFDIO_REGISTER));
		vms_uffd_close(&u);
		EXPECT_EQ(-1, u.fd);
	}
	if (!tried)
		SKIP(return, "neither /dev/userfaultfd nor userfaultfd(2) is usable here");
}

/* With both paths excluded nothing is created. */
TEST(create_with_no_path_fails)
{
	int fd = -1;

	EXPECT_EQ(-ENOSYS, vms_uffd_new(VMS_UFFD_NO_DEVICE | VMS_UFFD_NO_SYSCALL, &fd, NULL));
	EXPECT_EQ(-1, fd);
}

/* An unknown requested feature is refused by the kernel and no fd is leaked. */
TEST(create_unknown_feature_fails_without_leak)
{
	struct vms_uffd u = { .fd = -1 };
	int probe, ret, next;

	ret = vms_uffd_probe(0, NULL, NULL);
	if (ret == -EPERM || ret == -EACCES)
		SKIP(return, "cannot create a userfaultfd: %s", strerror(-ret));
	probe = dup(0);
	ASSERT_LE(0, probe);
	close(probe);
	EXPECT_EQ(-EINVAL, vms_uffd_create(&u, 1ULL << 63, 0));
	EXPECT_EQ(-1, u.fd);
	next = dup(0);
	EXPECT_EQ(probe, next); /* the lowest free fd is the same: nothing leaked */
	close(next);
}

/* The probe reports what the design needs on this kernel. */
TEST(probe_reports_offered_features)
{
	uint64_t feat = 0, ioctls = 0;
	int ret = vms_uffd_probe(0, &feat, &ioctls);

	if (ret == -EPERM || ret == -EACCES)
		SKIP(return, "cannot create a userfaultfd: %s", strerror(-ret));
	ASSERT_EQ(0, ret);
	EXPECT_TRUE(feat & UFFD_FEATURE_EVENT_REMOVE);
	EXPECT_TRUE(ioctls & VMS_UFFD_IOCTL_BIT(_UFFDIO_API));
}

/*
 * A newer kernel's answer, played through the answer hooks (test_hooks.h): bits
 * this build does not know are ORed in, known ones taken out.
 */
#define UNKNOWN_FEATURE (1ULL << 47)
#define UNKNOWN_API_IOCTL (1ULL << 40)
#define UNKNOWN_RANGE_IOCTL (1ULL << 41)

struct answer {
	uint64_t add_features, drop_features;
	uint64_t add_ioctls, drop_ioctls;	    /* UFFDIO_API's */
	uint64_t add_range_ioctls, drop_range_ioctls; /* UFFDIO_REGISTER's */
	int api_calls, reg_calls;
};

static void answer_api(void *arg, struct uffdio_api *api)
{
	struct answer *a = arg;

	api->features = (api->features | a->add_features) & ~a->drop_features;
	api->ioctls = (api->ioctls | a->add_ioctls) & ~a->drop_ioctls;
	a->api_calls++;
}

static void answer_reg(void *arg, struct uffdio_register *reg)
{
	struct answer *a = arg;

	reg->ioctls = (reg->ioctls | a->add_range_ioctls) & ~a->drop_range_ioctls;
	a->reg_calls++;
}

/* The bits of mask that no entry of names has. */
static uint64_t unknown_bits(const struct vms_uffd_bit_name *names, uint64_t mask)
{
	for (; names->name; names++)
		mask &= ~names->bit;
	return mask;
}

/* The lowest free fd: the same before and after a failed call means nothing leaked. */
static int lowest_free_fd(void)
{
	int fd = dup(0);

	if (fd >= 0)
		close(fd);
	return fd;
}

/*
 * crosvm b/315578762: a kernel that offers features and ioctls this build does
 * not know is accepted, the unknown bits are reported, and the uffd works.
 */
TEST_F(uffd, handshake_accepts_unknown_feature_and_ioctl_bits)
{
	struct answer a = { .add_features = UNKNOWN_FEATURE, .add_ioctls = UNKNOWN_API_IOCTL,
			    .add_range_ioctls = UNKNOWN_RANGE_IOCTL };
	const struct vms_uffd_answer_hooks h = { .api = answer_api, .reg = answer_reg, .arg = &a };
	uint64_t feat = UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_MISSING_SHMEM, offered = 0;
	uint64_t ioctls = 0, range = 0, done = 0;
	struct vms_uffd u = { .fd = -1 };
	char *p;
	int ret;

	/* Unknown to this build indeed. */
	ASSERT_EQ(UNKNOWN_FEATURE, unknown_bits(vms_uffd_feature_names, UNKNOWN_FEATURE));
	ASSERT_EQ(UNKNOWN_API_IOCTL | UNKNOWN_RANGE_IOCTL,
		  unknown_bits(vms_uffd_ioctl_names, UNKNOWN_API_IOCTL | UNKNOWN_RANGE_IOCTL));
	vms_uffd_set_answer_hooks(&h);
	ret = vms_uffd_create(&u, feat, 0);
	EXPECT_EQ(0, vms_uffd_probe(0, &offered, &ioctls));
	vms_uffd_set_answer_hooks(NULL);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(2, a.api_calls);
	EXPECT_EQ(feat, u.features);
	EXPECT_TRUE(u.offered_features & UNKNOWN_FEATURE);
	EXPECT_EQ(feat, u.offered_features & feat);
	EXPECT_TRUE(u.ioctls & UNKNOWN_API_IOCTL);
	EXPECT_EQ(VMS_UFFD_API_IOCTLS, u.ioctls & VMS_UFFD_API_IOCTLS);
	EXPECT_TRUE(offered & UNKNOWN_FEATURE);
	EXPECT_TRUE(ioctls & UNKNOWN_API_IOCTL);

	/*
	 * A registration whose answer has an unknown bit too, then a fill through
	 * it: a mapping of its own (the fixture's area is registered already).
	 */
	p = mmap(NULL, self->ps, PROT_READ | PROT_WRITE, MAP_SHARED, self->memfd, 0);
	ASSERT_NE(MAP_FAILED, p);
	vms_uffd_set_answer_hooks(&h);
	ret = vms_uffd_register(u.fd, (uintptr_t)p, self->ps, UFFDIO_REGISTER_MODE_MISSING,
				VMS_UFFD_MISSING_IOCTLS, &range);
	vms_uffd_set_answer_hooks(NULL);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(1, a.reg_calls);
	EXPECT_TRUE(range & UNKNOWN_RANGE_IOCTL);
	EXPECT_EQ(VMS_UFFD_MISSING_IOCTLS, range & VMS_UFFD_MISSING_IOCTLS);
	EXPECT_EQ(0, vms_uffd_zeropage(u.fd, (uintptr_t)p, self->ps, 0, &done));
	EXPECT_EQ(self->ps, done);
	EXPECT_EQ(0, p[0]);
	munmap(p, self->ps);
	vms_uffd_close(&u);
}

/* The known bits the caller needs are still required: a requested feature ... */
TEST(handshake_requires_every_requested_feature)
{
	struct answer a = { .add_features = UNKNOWN_FEATURE,
			    .drop_features = UFFD_FEATURE_EVENT_REMOVE };
	const struct vms_uffd_answer_hooks h = { .api = answer_api, .arg = &a };
	struct vms_uffd u = { .fd = -1 };
	int fd, ret, ret0;

	ret = vms_uffd_probe(0, NULL, NULL);
	if (ret == -EPERM || ret == -EACCES)
		SKIP(return, "cannot create a userfaultfd: %s", strerror(-ret));
	fd = lowest_free_fd();
	vms_uffd_set_answer_hooks(&h);
	ret = vms_uffd_create(&u, UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_MISSING_SHMEM, 0);
	/* One that was not requested may be missing. */
	ret0 = vms_uffd_probe(0, NULL, NULL);
	vms_uffd_set_answer_hooks(NULL);
	EXPECT_EQ(-EOPNOTSUPP, ret);
	EXPECT_EQ(-1, u.fd);
	EXPECT_EQ(fd, lowest_free_fd());
	EXPECT_EQ(0, ret0);
	EXPECT_EQ(2, a.api_calls);
}

/* ... and UFFDIO_REGISTER and UFFDIO_UNREGISTER on the uffd, whatever else is offered. */
TEST(handshake_requires_register_and_unregister)
{
	static const uint64_t need[] = { VMS_UFFD_IOCTL_BIT(_UFFDIO_REGISTER),
					 VMS_UFFD_IOCTL_BIT(_UFFDIO_UNREGISTER) };
	struct vms_uffd u = { .fd = -1 };
	int fd, ret;
	size_t i;

	ret = vms_uffd_probe(0, NULL, NULL);
	if (ret == -EPERM || ret == -EACCES)
		SKIP(return, "cannot create a userfaultfd: %s", strerror(-ret));
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		struct answer a = { .add_ioctls = UNKNOWN_API_IOCTL, .drop_ioctls = need[i] };
		const struct vms_uffd_answer_hooks h = { .api = answer_api, .arg = &a };

		fd = lowest_free_fd();
		vms_uffd_set_answer_hooks(&h);
		ret = vms_uffd_create(&u, 0, 0);
		vms_uffd_set_answer_hooks(NULL);
		EXPECT_EQ(-EOPNOTSUPP, ret)
			TH_LOG("ioctl bit %#llx withheld", (unsigned long long)need[i]);
		EXPECT_EQ(-1, u.fd);
		EXPECT_EQ(fd, lowest_free_fd());
	}
}

/* A range answer with unknown bits but without a needed ioctl is refused and undone. */
TEST_F(uffd, register_requires_needed_ioctls_despite_unknown_bits)
{
	struct answer a = { .add_range_ioctls = UNKNOWN_RANGE_IOCTL,
			    .drop_range_ioctls = VMS_UFFD_IOCTL_BIT(_UFFDIO_ZEROPAGE) };
	const struct vms_uffd_answer_hooks h = { .reg = answer_reg, .arg = &a };
	struct vms_uffd other;
	uint64_t range = 0;
	char *p;
	int ret;

	p = mmap(NULL, self->ps, PROT_READ | PROT_WRITE, MAP_SHARED, self->memfd, 0);
	ASSERT_NE(MAP_FAILED, p);
	vms_uffd_set_answer_hooks(&h);
	ret = vms_uffd_register(self->u.fd, (uintptr_t)p, self->ps, UFFDIO_REGISTER_MODE_MISSING,
				VMS_UFFD_MISSING_IOCTLS, &range);
	vms_uffd_set_answer_hooks(NULL);
	EXPECT_EQ(-EOPNOTSUPP, ret);
	EXPECT_EQ(0, range);
	EXPECT_EQ(1, a.reg_calls);
	/* Undone: another uffd may register the range. */
	ASSERT_EQ(0, vms_uffd_create(&other, 0, 0));
	EXPECT_EQ(0, vms_uffd_register(other.fd, (uintptr_t)p, self->ps,
				       UFFDIO_REGISTER_MODE_MISSING, VMS_UFFD_MISSING_IOCTLS, NULL));
	vms_uffd_close(&other);
	munmap(p, self->ps);
}

/* A registration lacking a needed ioctl is undone: the range stays free for others. */
TEST_F(uffd, register_missing_ioctl_is_undone)
{
	struct vms_uffd other;
	char *p;

	p = mmap(NULL, self->ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	/* Anonymous memory has no UFFDIO_CONTINUE in MISSING mode. */
	EXPECT_EQ(-EOPNOTSUPP,
		  vms_uffd_register(self->u.fd, (uintptr_t)p, self->ps,
				    UFFDIO_REGISTER_MODE_MISSING,
				    VMS_UFFD_IOCTL_BIT(_UFFDIO_CONTINUE), NULL));
	/* A range registered on one uffd cannot be registered on another (EBUSY). */
	ASSERT_EQ(0, vms_uffd_create(&other, 0, 0));
	EXPECT_EQ(0, vms_uffd_register(other.fd, (uintptr_t)p, self->ps,
				       UFFDIO_REGISTER_MODE_MISSING, 0, NULL));
	vms_uffd_close(&other);
	munmap(p, self->ps);
}

/* Bad ranges are refused with the kernel's errno. */
TEST_F(uffd, register_unaligned_range_fails)
{
	EXPECT_EQ(-EINVAL, vms_uffd_register(self->u.fd, (uintptr_t)self->area + 1, self->ps,
					     UFFDIO_REGISTER_MODE_MISSING, 0, NULL));
	EXPECT_EQ(-EINVAL, vms_uffd_unregister(self->u.fd, (uintptr_t)self->area, 1));
}

/* COPY and ZEROPAGE fill missing pages and report the full length. */
TEST_F(uffd, copy_and_zeropage_fill)
{
	char *src = malloc(self->ps);
	uint64_t done = 0;

	ASSERT_NE(NULL, src);
	memset(src, 0x5a, self->ps);
	ASSERT_EQ(0, vms_uffd_copy(self->u.fd, (uintptr_t)self->area, src, self->ps, 0, &done));
	EXPECT_EQ(self->ps, done);
	ASSERT_EQ(0, vms_uffd_zeropage(self->u.fd, (uintptr_t)self->area + self->ps, self->ps,
				       0, &done));
	EXPECT_EQ(self->ps, done);
	EXPECT_EQ(0x5a, self->area[0]);
	EXPECT_EQ(0x5a, self->area[self->ps - 1]);
	EXPECT_EQ(0, self->area[self->ps]);
	free(src);
}

/* COPY over [missing, present] stops after the first page with EAGAIN, then EEXIST. */
TEST_F(uffd, copy_partial_progress_then_eexist)
{
	char *src = calloc(2, self->ps);
	uint64_t done = 0;
	int ret;

	ASSERT_NE(NULL, src);
	ASSERT_EQ(0, vms_uffd_zeropage(self->u.fd, (uintptr_t)self->area + self->ps, self->ps,
				       0, &done));
	ret = vms_uffd_copy(self->u.fd, (uintptr_t)self->area, src, 2 * self->ps, 0, &done);
	EXPECT_EQ(-EAGAIN, ret);
	EXPECT_EQ(self->ps, done);
	ret = vms_uffd_copy(self->u.fd, (uintptr_t)self->area + done, src + done,
			    2 * self->ps - done, 0, &done);
	EXPECT_EQ(-EEXIST, ret);
	EXPECT_EQ(0, done);
	EXPECT_EQ(VMS_UFFD_ERR_ALREADY_FILLED, vms_uffd_classify(ret));
	free(src);
}

struct remover {
	char *addr;
	size_t len;
	int advice;
	atomic_int finished;
};

static void *remove_thread(void *arg)
{
	struct remover *r = arg;

	madvise(r->addr, r->len, r->advice);
	r->finished = 1;
	return NULL;
}

/* While a REMOVE is unread, fills fail with EAGAIN and "nothing done". */
TEST_F(uffd, fill_during_pending_remove_is_eagain_nothing_done)
{
	struct remover r = { .addr = self->area + self->ps, .len = self->ps,
			     .advice = MADV_REMOVE };
	struct uffd_msg msg;
	pthread_t t;
	uint64_t done = 1;
	char *src = calloc(1, self->ps);

	ASSERT_NE(NULL, src);
	ASSERT_EQ(0, pthread_create(&t, NULL, remove_thread, &r));
	ASSERT_TRUE(wait_readable(self->u.fd, 10000));
	EXPECT_EQ(-EAGAIN, vms_uffd_copy(self->u.fd, (uintptr_t)self->area, src, self->ps, 0,
					 &done));
	EXPECT_EQ(0, done);
	done = 1;
	EXPECT_EQ(-EAGAIN, vms_uffd_zeropage(self->u.fd, (uintptr_t)self->area, self->ps, 0,
					     &done));
	EXPECT_EQ(0, done);
	ASSERT_EQ(0, read_until(self->u.fd, UFFD_EVENT_REMOVE, &msg));
	EXPECT_EQ((uintptr_t)self->area + self->ps, msg.arg.remove.start);
	EXPECT_EQ((uintptr_t)self->area + 2 * self->ps, msg.arg.remove.end);
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(1, r.finished);
	EXPECT_EQ(0, vms_uffd_copy(self->u.fd, (uintptr_t)self->area, src, self->ps, 0, &done));
	free(src);
}

struct toucher {
	volatile char *addr;
	atomic_int tid;
	char seen;
};

static void *touch_thread(void *arg)
{
	struct toucher *t = arg;

	t->tid = gettid();
	t->seen = t->addr[0];
	return NULL;
}

/* Is thread 'tid' asleep (blocked in the fault, the only place it can sleep)? */
static int thread_sleeping(int tid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the comm may contain ')' */
	return p && p[1] == ' ' && p[2] == 'S';
}

/* One read returns every pending fault message, up to the buffer size. */
TEST_F(uffd, read_events_in_batches)
{
	struct toucher tt[3] = { { .addr = self->area }, { .addr = self->area + self->ps },
				 { .addr = self->area + 2 * self->ps } };
	pthread_t th[3];
	struct uffd_msg msgs[8];
	uint64_t done;
	size_t n = 0;
	double deadline = now_s() + 10;
	int i, asleep = 0;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, touch_thread, &tt[i]));
	while (asleep < 3 && now_s() < deadline) {
		for (asleep = 0, i = 0; i < 3; i++)
			asleep += tt[i].tid && thread_sleeping(tt[i].tid);
	}
	ASSERT_EQ(3, asleep);
	/* A buffer of one takes exactly one message ... */
	ASSERT_EQ(0, vms_uffd_read_events(self->u.fd, msgs, 1, &n));
	EXPECT_EQ(1, n);
	/* ... and a larger one takes the rest in one read. */
	ASSERT_EQ(0, vms_uffd_read_events(self->u.fd, msgs + 1, 7, &n));
	EXPECT_EQ(2, n);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(UFFD_EVENT_PAGEFAULT, msgs[i].event);
	ASSERT_EQ(0, vms_uffd_zeropage(self->u.fd, (uintptr_t)self->area, 3 * self->ps, 0,
				       &done));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, pthread_join(th[i], NULL));
	/* Nothing left: an empty non-blocking read is not an error. */
	ASSERT_EQ(0, vms_uffd_read_events(self->u.fd, msgs, 8, &n));
	EXPECT_EQ(0, n);
}

TEST_HARNESS_MAIN
