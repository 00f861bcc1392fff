// SPDX-License-Identifier: GPL-2.0-only
/*
 * controller_cleanup_test.c - disable with slow_file_cleanup (spec 2.9) and the
 * fault-around option of the monitor.
 *
 *  - the file truncator alone, ticked by an eventfd: one step per tick, observed via
 *    fstat st_blocks of a dup of the file; stop truncates at once;
 *  - the truncator on its own timer, with a short interval;
 *  - through the monitor (Info reports the swap file's size and the cleanup):
 *    without the option the space is released at once; with it the file keeps its
 *    blocks after the swap-in and shrinks over ticks to 0; a plain Disable during the
 *    cleanup releases it at once; Enable during the cleanup works and keeps every
 *    page; Exit during the cleanup exits promptly;
 *  - fault_around_pages reaches the page handler (Info and fault-around metrics);
 *  - the fault_cpu hint pins the monitor's fault-serving thread.
 *
 * No sleep is used as synchronisation: waits are on a condition (the truncator's
 * tick count) or bounded polls of Status / Info.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include <vmmswap/controller.h>
#include <vmmswap/file_truncator.h>
#include <vmmswap/page_handler.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/status.h>

#include "lib/ctl_util.h"

#define MIB (1ULL << 20)

/* An unnamed file in /tmp with 'len' bytes of real (non-sparse) data. */
static int data_file(uint64_t len)
{
	static char buf[1 << 16];
	int fd = open("/tmp", O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	memset(buf, 0x5a, sizeof(buf));
	for (uint64_t off = 0; off < len; off += sizeof(buf))
		if (pwrite(fd, buf, sizeof(buf), (off_t)off) != (ssize_t)sizeof(buf)) {
			close(fd);
			return -EIO;
		}
	return fd;
}

static uint64_t alloc_bytes(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? ~0ULL : (uint64_t)st.st_blocks * 512;
}

static uint64_t size_bytes(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? ~0ULL : (uint64_t)st.st_size;
}

static int tick(int efd)
{
	uint64_t one = 1;

	return write(efd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

TEST(truncator_steps_per_tick)
{
	struct vms_truncator_opts o = { .step_bytes = 4 * MIB, .tick_fd = -1 };
	struct vms_truncator_info ti;
	struct vms_truncator *t;
	int fd = data_file(10 * MIB), probe, efd, back;
	uint64_t a0, a1;

	ASSERT_LE(0, fd);
	probe = dup(fd);
	ASSERT_LE(0, probe);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	o.tick_fd = efd;
	a0 = alloc_bytes(probe);
	ASSERT_GE(a0, 10 * MIB);
	ASSERT_EQ(0, vms_truncator_start(fd, &o, &t));
	/* Nothing happens before the first tick. */
	vms_truncator_info(t, &ti);
	EXPECT_EQ(10 * MIB, ti.size);
	EXPECT_EQ(0, ti.ticks);
	EXPECT_FALSE(ti.done);
	EXPECT_EQ(10 * MIB, size_bytes(probe));

	ASSERT_EQ(0, tick(efd));
	ASSERT_EQ(0, vms_truncator_wait(t, 1, CU_DEADLINE_MS));
	vms_truncator_info(t, &ti);
	EXPECT_EQ(1, ti.ticks);
	EXPECT_EQ(6 * MIB, ti.size);
	EXPECT_EQ(6 * MIB, size_bytes(probe));
	a1 = alloc_bytes(probe);
	EXPECT_LT(a1, a0);
	EXPECT_EQ(a1, ti.alloc);

	ASSERT_EQ(0, tick(efd));
	ASSERT_EQ(0, vms_truncator_wait(t, 2, CU_DEADLINE_MS));
	EXPECT_EQ(2 * MIB, size_bytes(probe));
	EXPECT_LT(alloc_bytes(probe), a1);

	ASSERT_EQ(0, tick(efd));
	ASSERT_EQ(0, vms_truncator_wait(t, 3, CU_DEADLINE_MS));
	vms_truncator_info(t, &ti);
	EXPECT_EQ(0, ti.size);
	EXPECT_TRUE(ti.done);
	EXPECT_EQ(0, ti.err);
	EXPECT_EQ(0, size_bytes(probe));
	EXPECT_EQ(0, alloc_bytes(probe));

	ASSERT_EQ(0, vms_truncator_stop(t, &back));
	EXPECT_LE(0, back);
	if (back >= 0)
		close(back);
	close(probe);
	close(efd);
}

TEST(truncator_stop_releases_at_once)
{
	struct vms_truncator_opts o = { .step_bytes = MIB, .tick_fd = -1 };
	struct vms_truncator *t;
	int fd = data_file(8 * MIB), probe, efd;

	ASSERT_LE(0, fd);
	probe = dup(fd);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, probe);
	ASSERT_LE(0, efd);
	o.tick_fd = efd;
	ASSERT_EQ(0, vms_truncator_start(fd, &o, &t));
	ASSERT_EQ(0, tick(efd));
	ASSERT_EQ(0, vms_truncator_wait(t, 1, CU_DEADLINE_MS));
	EXPECT_EQ(7 * MIB, size_bytes(probe));
	/* The kill path: the rest goes at once, the fd is closed. */
	ASSERT_EQ(0, vms_truncator_stop(t, NULL));
	EXPECT_EQ(0, size_bytes(probe));
	EXPECT_EQ(0, alloc_bytes(probe));
	close(probe);
	close(efd);
}

TEST(truncator_own_timer)
{
	struct vms_truncator_opts o = { .step_bytes = MIB, .interval_ms = 2, .tick_fd = -1 };
	struct vms_truncator_info ti;
	struct vms_truncator *t;
	int fd = data_file(4 * MIB), probe;

	ASSERT_LE(0, fd);
	probe = dup(fd);
	ASSERT_LE(0, probe);
	ASSERT_EQ(0, vms_truncator_start(fd, &o, &t));
	ASSERT_EQ(0, vms_truncator_wait(t, 4, CU_DEADLINE_MS));
	vms_truncator_info(t, &ti);
	EXPECT_TRUE(ti.done);
	EXPECT_EQ(4, ti.ticks);
	EXPECT_EQ(0, size_bytes(probe));
	ASSERT_EQ(0, vms_truncator_stop(t, NULL));
	close(probe);
}

/* ---- through the monitor ---- */

FIXTURE(cleanup)
{
	struct cu_guest g;
	struct cu_expect e;
	struct vms_controller *ctl;
};

FIXTURE_VARIANT(cleanup)
{
	unsigned int interval_ms;
	uint64_t step;
};

/* The timer never fires during the test: the state right after the disable. */
FIXTURE_VARIANT_ADD(cleanup, held)
{
	.interval_ms = 3600 * 1000,
	.step = 256 * 1024,
};

FIXTURE_SETUP(cleanup)
{
	struct vms_controller_opts x = {
		.cleanup_interval_ms = variant->interval_ms,
		.cleanup_step_bytes = variant->step,
	};

	CU_SETUP(&self->g, NULL, 0, &x, &self->ctl);
	cu_write_crosvm_data(&self->g, &self->e);
}

FIXTURE_TEARDOWN(cleanup)
{
	cu_teardown(&self->g, &self->ctl);
}

static int disable_wait(struct vms_controller *ctl, bool slow)
{
	struct vms_reply r;
	int ret = cu_accepted(vms_controller_disable(ctl, slow, &r), &r);

	return ret ? ret : cu_wait_state(ctl, VMS_SWAP_READY, CU_DEADLINE_MS, NULL);
}

TEST_F(cleanup, fast_disable_releases_at_once)
{
	struct vms_monitor_info mi;

	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, false));
	ASSERT_EQ(0, vms_controller_info(self->ctl, &mi));
	EXPECT_GE(mi.swap_file_alloc, (uint64_t)2 * CU_DATA_PAGES_PER_REGION * vms_page_size());
	ASSERT_EQ(0, disable_wait(self->ctl, false));
	ASSERT_EQ(0, vms_controller_info(self->ctl, &mi));
	EXPECT_EQ(0, mi.swap_file_size);
	EXPECT_EQ(0, mi.swap_file_alloc);
	EXPECT_EQ(0, mi.flags & VMS_INFO_CLEANUP_RUNNING);
	EXPECT_EQ(-1, cu_check(&self->g, &self->e));
}

TEST_F(cleanup, slow_disable_keeps_then_plain_disable_releases)
{
	struct vms_monitor_info mi;
	struct vms_reply r;
	uint64_t before;

	cu_quiet_log(); /* the IGNORED disables below warn */
	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, false));
	ASSERT_EQ(0, vms_controller_info(self->ctl, &mi));
	before = mi.swap_file_alloc;
	ASSERT_LT(0, before);
	ASSERT_EQ(0, disable_wait(self->ctl, true));
	/* Swapped in, but the space is not released yet. */
	ASSERT_EQ(0, vms_controller_info(self->ctl, &mi));
	EXPECT_TRUE(mi.flags & VMS_INFO_CLEANUP_RUNNING);
	EXPECT_EQ(before, mi.swap_file_alloc);
	EXPECT_LT(0, mi.swap_file_size);
	EXPECT_EQ(0, mi.cleanup_steps);
	EXPECT_EQ(-1, cu_check(&self->g, &self->e));
	/* Another slow disable changes nothing. */
	ASSERT_EQ(0, vms_controller_disable(self->ctl, true, &r));
	EXPECT_EQ(VMS_REPLY_IGNORED, r.result);
	ASSERT_EQ(0, vms_controller_info(self->ctl, &mi));
	EXPECT_TRUE(mi.flags & VMS_INFO_CLEANUP_RUNNING);
	/* A plain one releases the rest at once (crosvm's kill path). */
	ASSERT_EQ(0, vms_controller_disable(self->ctl, false, &r));
	EXPECT_EQ(VMS_REPLY_ACCEPTED, r.result);
	EXPECT_EQ(VMS_SWAP_READY, r.new_state);
	ASSERT_EQ(0, vms_controller_info(self->ctl, &mi));
	EXPECT_EQ(0, mi.flags & VMS_INFO_CLEANUP_RUNNING);
	EXPECT_EQ(0, mi.swap_file_alloc);
	/* Now it is ignored again, as in Ready. */
	ASSERT_EQ(0, vms_controller_disable(self->ctl, false, &r));
	EXPECT_EQ(VMS_REPLY_IGNORED, r.result);
}

TEST_F(cleanup, enable_during_cleanup_keeps_contents)
{
	struct vms_monitor_info mi;

	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, false));
	ASSERT_EQ(0, disable_wait(self->ctl, true));
	ASSERT_EQ(0, vms_controller_info(self->ctl, &mi));
	ASSERT_TRUE(mi.flags & VMS_INFO_CLEANUP_RUNNING);
	/* Change some pages while disabled, then enable over the cleanup. */
	cu_set(&self->g, &self->e, 0, 1, 0x77);
	cu_set(&self->g, &self->e, 1, 500, 0x78);
	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, false));
	ASSERT_EQ(0, vms_controller_info(self->ctl, &mi));
	EXPECT_EQ(0, mi.flags & VMS_INFO_CLEANUP_RUNNING);
	/* Every page faults in from the new swap file. */
	EXPECT_EQ(-1, cu_check(&self->g, &self->e));
	ASSERT_EQ(0, disable_wait(self->ctl, true));
	EXPECT_EQ(-1, cu_check(&self->g, &self->e));
}

TEST_F(cleanup, exit_during_cleanup)
{
	struct vms_monitor_info mi;
	pid_t mon = vms_controller_monitor_pid(self->ctl);
	uint64_t t0;

	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, false));
	ASSERT_EQ(0, disable_wait(self->ctl, true));
	ASSERT_EQ(0, vms_controller_info(self->ctl, &mi));
	ASSERT_TRUE(mi.flags & VMS_INFO_CLEANUP_RUNNING);
	t0 = cu_now_ms();
	ASSERT_EQ(0, vms_controller_exit(self->ctl));
	self->ctl = NULL;
	/* The truncator thread (timer: an hour) did not hold the exit up. */
	EXPECT_LT(cu_now_ms() - t0, (uint64_t)CU_DEADLINE_MS);
	EXPECT_EQ(-1, kill(mon, 0));
	EXPECT_EQ(-1, cu_check(&self->g, &self->e));
}

/* A short interval: the file shrinks step by step to 0 while Ready. */
FIXTURE(cleanup_ticks)
{
	struct cu_guest g;
	struct cu_expect e;
	struct vms_controller *ctl;
};

FIXTURE_SETUP(cleanup_ticks)
{
	struct vms_controller_opts x = {
		.cleanup_interval_ms = 5,
		.cleanup_step_bytes = 256 * 1024,
	};

	CU_SETUP(&self->g, NULL, 0, &x, &self->ctl);
	cu_write_crosvm_data(&self->g, &self->e);
}

FIXTURE_TEARDOWN(cleanup_ticks)
{
	cu_teardown(&self->g, &self->ctl);
}

TEST_F(cleanup_ticks, shrinks_gradually_to_zero)
{
	uint64_t end = cu_now_ms() + CU_DEADLINE_MS, last = ~0ULL, want_steps;
	struct vms_monitor_info mi;
	unsigned int polls = 0;

	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, false));
	ASSERT_EQ(0, vms_controller_info(self->ctl, &mi));
	/* Steps needed to take the whole file down (it is 1542 pages, ~6 MiB). */
	want_steps = (mi.swap_file_size + 256 * 1024 - 1) / (256 * 1024);
	ASSERT_LT(2, want_steps);
	ASSERT_EQ(0, disable_wait(self->ctl, true));
	for (;; polls++) {
		ASSERT_EQ(0, vms_controller_info(self->ctl, &mi));
		/* Never grows back; shrinks only by whole steps. */
		ASSERT_LE(mi.swap_file_size, last);
		last = mi.swap_file_size;
		if (!(mi.flags & VMS_INFO_CLEANUP_RUNNING))
			break;
		ASSERT_LT(cu_now_ms(), end);
		usleep(1000); /* poll pacing, not synchronisation */
	}
	EXPECT_EQ(0, mi.flags & VMS_INFO_CLEANUP_FAILED);
	EXPECT_EQ(0, mi.swap_file_size);
	EXPECT_EQ(0, mi.swap_file_alloc);
	EXPECT_EQ(want_steps, mi.cleanup_steps);
	EXPECT_EQ(-1, cu_check(&self->g, &self->e));
}

/* ---- fault-around through the launch options ---- */

TEST(fault_around_option)
{
	struct vms_controller_opts x = { .fault_around_pages = 64 };
	struct vms_controller *ctl;
	struct vms_monitor_info mi;
	struct vms_swap_status st;
	struct vms_reply r;
	struct cu_expect e;
	struct cu_guest g;
	int ret;

	ASSERT_EQ(0, cu_guest_create(&g));
	x.fault_around_pages = VMS_PH_MAX_FAULT_AROUND_PAGES + 1;
	ASSERT_EQ(-EINVAL, cu_launch_opts(&g, NULL, 0, &x, &ctl));
	x.fault_around_pages = 64;
	ret = cu_launch_opts(&g, NULL, 0, &x, &ctl);
	if (cu_uffd_unavailable(ret)) {
		cu_guest_destroy(&g);
		SKIP(return, "userfaultfd unavailable: %s", strerror(-ret));
	}
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vms_controller_info(ctl, &mi));
	EXPECT_EQ(64, mi.fault_around_pages);
	cu_write_crosvm_data(&g, &e);
	ASSERT_EQ(0, cu_accepted(vms_controller_enable(ctl, &r), &r));
	/* Reading in page order makes a sequential stream over the 3 MiB runs. */
	EXPECT_EQ(-1, cu_check(&g, &e));
	ASSERT_EQ(0, vms_controller_info(ctl, &mi));
	EXPECT_LT(0, mi.fault_around_filled);
	ASSERT_EQ(0, vms_controller_status(ctl, &st));
	EXPECT_EQ(2 * CU_DATA_PAGES_PER_REGION, st.metrics.copied_from_staging_pages);
	EXPECT_EQ(0, vms_controller_exit(ctl));
	cu_guest_destroy(&g);
}

/* The monitor's Cpus_allowed_list ("0", "0-3", ...) into buf. */
static int monitor_cpus(pid_t pid, char *buf, size_t len)
{
	char path[64], line[256];
	FILE *f;
	int ret = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Cpus_allowed_list:", 18)) {
			snprintf(buf, len, "%s", line + 18 + strspn(line + 18, " \t"));
			buf[strcspn(buf, "\n")] = '\0';
			ret = 0;
			break;
		}
	fclose(f);
	return ret;
}

TEST(fault_cpu_hint)
{
	struct vms_controller_opts x = { .fault_cpu = -1 };
	struct vms_controller *ctl;
	struct vms_reply r;
	struct cu_expect e;
	struct cu_guest g;
	char want[16], got[64];
	cpu_set_t cpus;
	int ret, cpu;

	ASSERT_EQ(0, sched_getaffinity(0, sizeof(cpus), &cpus));
	for (cpu = CPU_SETSIZE - 1; cpu > 0 && !CPU_ISSET(cpu, &cpus); cpu--)
		;
	ASSERT_EQ(0, cu_guest_create(&g));
	ASSERT_EQ(-EINVAL, cu_launch_opts(&g, NULL, VMS_CTL_FAULT_CPU, &x, &ctl));
	x.fault_cpu = cpu;
	ret = cu_launch_opts(&g, NULL, VMS_CTL_FAULT_CPU, &x, &ctl);
	if (cu_uffd_unavailable(ret)) {
		cu_guest_destroy(&g);
		SKIP(return, "userfaultfd unavailable: %s", strerror(-ret));
	}
	ASSERT_EQ(0, ret);
	/* The loop thread is the monitor's main thread: its tid is the pid. */
	snprintf(want, sizeof(want), "%d", cpu);
	ASSERT_EQ(0, monitor_cpus(vms_controller_monitor_pid(ctl), got, sizeof(got)));
	EXPECT_STREQ(want, got);
	cu_write_crosvm_data(&g, &e);
	ASSERT_EQ(0, cu_accepted(vms_controller_enable(ctl, &r), &r));
	ASSERT_EQ(0, cu_accepted(vms_controller_swap_out(ctl, &r), &r));
	ASSERT_EQ(0, cu_wait_state(ctl, VMS_SWAP_ACTIVE, CU_DEADLINE_MS, NULL));
	EXPECT_EQ(-1, cu_check(&g, &e));
	ASSERT_EQ(0, disable_wait(ctl, false));
	EXPECT_EQ(-1, cu_check(&g, &e));
	EXPECT_EQ(0, vms_controller_exit(ctl));
	cu_guest_destroy(&g);
}

TEST_HARNESS_MAIN
