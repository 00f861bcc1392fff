// SPDX-License-Identifier: GPL-2.0-only
/*
 * controller_test.c - crosvm's controller tests (spec 7.1) against the C controller:
 * launch a real monitor, drive enable / swap-out / trim / disable / exit, and check
 * the transition records (crosvm's exact page counts) and every page's contents.
 * Plus registration of device processes that died (register/unregister skip them,
 * also one that dies while the Enable is queued) and kernel-mode accesses to
 * swapped pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include <vmmswap/controller.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/status.h>

#include "lib/ctl_util.h"

FIXTURE(ctl)
{
	struct cu_guest g;
	struct cu_expect e;
	struct vms_controller *ctl;
};

FIXTURE_SETUP(ctl)
{
	CU_SETUP(&self->g, NULL, 0, NULL, &self->ctl);
}

FIXTURE_TEARDOWN(ctl)
{
	cu_teardown(&self->g, &self->ctl);
}

/* The last transition record must be 'pages' ('what' names it in the log). */
static int moved_expect(const struct vms_swap_status *st, const char *what, uint64_t pages)
{
	if (st->state_transition.pages != pages) {
		cu_log("%s %llu pages, want %llu", what,
		       (unsigned long long)st->state_transition.pages, (unsigned long long)pages);
		return -ERANGE;
	}
	return 0;
}

/* Enable, expecting acceptance, state Pending and a move of 'pages' pages. */
static int enable_expect(struct vms_controller *ctl, uint64_t pages)
{
	struct vms_swap_status st;
	struct vms_reply r;
	int ret = vms_controller_enable(ctl, &r);

	if (ret)
		return ret;
	if (r.result != VMS_REPLY_ACCEPTED || r.new_state != VMS_SWAP_PENDING)
		return -EPROTO;
	ret = vms_controller_status(ctl, &st);
	if (ret)
		return ret;
	if (st.state != VMS_SWAP_PENDING) {
		cu_log("state %d", st.state);
		return -EPROTO;
	}
	return moved_expect(&st, "moved", pages);
}

/*
 * After a request (its result ret, its reply r): it was accepted, the controller
 * reaches 'state' (its status in *st unless st is NULL) and the transition record
 * is 'pages'.
 */
static int done_expect(struct vms_controller *ctl, int ret, const struct vms_reply *r,
		       int state, const char *what, uint64_t pages, struct vms_swap_status *st)
{
	struct vms_swap_status s;

	ret = cu_accepted(ret, r);
	if (ret)
		return ret;
	ret = cu_wait_state(ctl, state, CU_DEADLINE_MS, &s);
	if (ret)
		return ret;
	if (st)
		*st = s;
	return moved_expect(&s, what, pages);
}

/* Swap out and wait for Active; the swap-out record must be 'pages'. */
static int out_expect(struct vms_controller *ctl, uint64_t pages)
{
	struct vms_swap_status st;
	struct vms_reply r;
	int ret = vms_controller_swap_out(ctl, &r);

	ret = done_expect(ctl, ret, &r, VMS_SWAP_ACTIVE, "swapped out", pages, &st);
	if (ret)
		return ret;
	if (st.metrics.staging_pages != 0 || st.metrics.swap_pages < pages)
		return -EPROTO;
	return 0;
}

static int trim_expect(struct vms_controller *ctl, uint64_t pages)
{
	struct vms_reply r;

	return done_expect(ctl, vms_controller_trim(ctl, &r), &r, VMS_SWAP_PENDING, "trimmed",
			   pages, NULL);
}

static int disable_expect(struct vms_controller *ctl, uint64_t pages)
{
	struct vms_reply r;

	return done_expect(ctl, vms_controller_disable(ctl, false, &r), &r, VMS_SWAP_READY,
			   "swapped in", pages, NULL);
}

/* Exit the controller, then check every page in the VMM (mapping and memfd). */
static int exit_and_check(struct vms_controller **ctl, struct cu_guest *g, struct cu_expect *e)
{
	int ret = vms_controller_exit(*ctl);

	*ctl = NULL;
	if (ret)
		return ret;
	if (cu_check_memfd(g, e) >= 0 || cu_check(g, e) >= 0)
		return -EIO;
	return 0;
}

TEST_F(ctl, controller_enable)
{
	cu_write_crosvm_data(&self->g, &self->e);
	ASSERT_EQ(0, enable_expect(self->ctl, 2 * CU_DATA_PAGES_PER_REGION));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	/* The faulted pages plus the two zero-filled page-2s are resident again. */
	ASSERT_EQ(0, enable_expect(self->ctl, 2 * CU_DATA_PAGES_PER_REGION + 2));
	cu_set(&self->g, &self->e, 0, 1, 9);
	cu_set(&self->g, &self->e, 0, 2, 10);
	ASSERT_EQ(0, enable_expect(self->ctl, 2));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	ASSERT_EQ(0, enable_expect(self->ctl, 2 * CU_DATA_PAGES_PER_REGION + 2));
	ASSERT_EQ(0, exit_and_check(&self->ctl, &self->g, &self->e));
}

TEST_F(ctl, controller_swap_out)
{
	cu_write_crosvm_data(&self->g, &self->e);
	ASSERT_EQ(0, enable_expect(self->ctl, 1542));
	ASSERT_EQ(0, out_expect(self->ctl, 1542));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	ASSERT_EQ(0, enable_expect(self->ctl, 1544));
	ASSERT_EQ(0, out_expect(self->ctl, 1544));
	cu_set(&self->g, &self->e, 0, 1, 9);
	cu_set(&self->g, &self->e, 0, 2, 10);
	/* Only the re-faulted pages move; the untouched swapped ones stay in the file. */
	ASSERT_EQ(0, enable_expect(self->ctl, 2));
	ASSERT_EQ(0, out_expect(self->ctl, 2));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	ASSERT_EQ(0, enable_expect(self->ctl, 1544));
	ASSERT_EQ(0, out_expect(self->ctl, 1544));
	ASSERT_EQ(0, exit_and_check(&self->ctl, &self->g, &self->e));
}

TEST_F(ctl, controller_trim)
{
	cu_write_crosvm_data(&self->g, &self->e);
	for (int r = 0; r < CU_NREGIONS; r++)
		cu_set(&self->g, &self->e, r, 2, 0); /* resident, all zero */
	ASSERT_EQ(0, enable_expect(self->ctl, 1544));
	ASSERT_EQ(0, trim_expect(self->ctl, 2)); /* the two zero pages */
	ASSERT_EQ(0, out_expect(self->ctl, 1542));
	for (int r = 0; r < CU_NREGIONS; r++)
		cu_expect_page(&self->e, r, 3, 0); /* never written */
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	cu_set(&self->g, &self->e, 0, 1, 9);
	cu_set(&self->g, &self->e, 0, 3, 10);
	ASSERT_EQ(0, enable_expect(self->ctl, 1546));
	/* 1541 pages identical to their slot + 3 zero pages. */
	ASSERT_EQ(0, trim_expect(self->ctl, 1544));
	ASSERT_EQ(0, out_expect(self->ctl, 2));
	ASSERT_EQ(0, exit_and_check(&self->ctl, &self->g, &self->e));
}

TEST_F(ctl, controller_disable)
{
	cu_write_crosvm_data(&self->g, &self->e);
	for (int r = 0; r < CU_NREGIONS; r++) {
		cu_set(&self->g, &self->e, r, 2, 0);
		cu_expect_page(&self->e, r, 3, 0);
	}
	ASSERT_EQ(0, enable_expect(self->ctl, 1544));
	ASSERT_EQ(0, disable_expect(self->ctl, 1544));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	ASSERT_EQ(0, enable_expect(self->ctl, 1546));
	ASSERT_EQ(0, trim_expect(self->ctl, 4)); /* a fresh handler: nothing clean */
	ASSERT_EQ(0, out_expect(self->ctl, 1542));
	ASSERT_EQ(0, disable_expect(self->ctl, 1542));
	ASSERT_EQ(-1, cu_check_memfd(&self->g, &self->e));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	ASSERT_EQ(0, exit_and_check(&self->ctl, &self->g, &self->e));
}

/* A device process and the parent's ends of its two pipes. */
struct device {
	pid_t pid;
	int rd; /* the child writes 'R' once registered, else -its error */
	int wr; /* closing it lets the child exit */
};

/*
 * Fork a device process (register, tell the parent, wait for a byte, exit) and wait
 * until it has registered. 0 or -errno.
 */
static int start_device(struct vms_controller *ctl, struct device *d)
{
	int ready[2], go[2], ret;
	char b;

	if (pipe(ready) || pipe(go))
		return -ECHILD;
	d->pid = fork();
	if (d->pid == 0) {
		int dr = vms_controller_device_forked(ctl, CU_DEADLINE_MS);

		b = dr ? (char)(-dr) : 'R';
		close(go[1]);
		close(ready[0]);
		vms_controller_forget(ctl);
		if (write(ready[1], &b, 1) != 1)
			_exit(2);
		if (read(go[0], &b, 1) < 0)
			_exit(3);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	d->rd = ready[0];
	d->wr = go[1];
	if (d->pid < 0)
		return -ECHILD;
	ret = cu_read_byte(d->rd, CU_DEADLINE_MS, &b);
	if (ret)
		return ret;
	if (b != 'R') {
		cu_log("the device did not register: %d", b);
		return -EPROTO;
	}
	return 0;
}

/* Let the device exit (it reads EOF); 0 when it exited with status 0. */
static int stop_device(struct device *d)
{
	int st;
	pid_t w;

	close(d->wr);
	w = waitpid(d->pid, &st, 0);
	close(d->rd);
	if (w != d->pid)
		return -ECHILD;
	if (st) {
		cu_log("the device exited with status %#x", st);
		return -EPROTO;
	}
	return 0;
}

/* crosvm register_region_skip_obsolete_process: a dead device does not fail enable. */
TEST_F(ctl, register_skips_dead_process)
{
	struct device d;

	cu_write_crosvm_data(&self->g, &self->e);
	ASSERT_EQ(0, start_device(self->ctl, &d));
	ASSERT_EQ(0, stop_device(&d));
	ASSERT_EQ(0, enable_expect(self->ctl, 1542));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	ASSERT_EQ(0, disable_expect(self->ctl, 0)); /* everything was faulted back */
	ASSERT_EQ(0, exit_and_check(&self->ctl, &self->g, &self->e));
}

/* crosvm unregister_region_skip_obsolete_process: registered, then it dies. */
TEST_F(ctl, unregister_skips_dead_process)
{
	struct device d;

	cu_write_crosvm_data(&self->g, &self->e);
	ASSERT_EQ(0, start_device(self->ctl, &d));
	ASSERT_EQ(0, enable_expect(self->ctl, 1542)); /* registers the live device */
	ASSERT_EQ(0, stop_device(&d));
	ASSERT_EQ(0, out_expect(self->ctl, 1542));
	ASSERT_EQ(0, disable_expect(self->ctl, 1542));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	ASSERT_EQ(0, exit_and_check(&self->ctl, &self->g, &self->e));
}

/* The state letter of /proc/PID/stat ('?' if unreadable). */
static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

struct enabler {
	struct vms_controller *ctl;
	struct vms_reply r;
	int ret;
};

static void *do_enable(void *arg)
{
	struct enabler *en = arg;

	en->ret = vms_controller_enable(en->ctl, &en->r);
	return NULL;
}

/*
 * The narrow case the pidfd does not cover: a device dies after Enable was sent
 * and before the monitor read it, so the monitor finds it dead only when it
 * registers it (ENOMEM: the mm is gone). The enable must still succeed without
 * it. The monitor is stopped while the Enable waits in its socket and the device
 * is killed; it then reads the Enable before the pidfd's exit event.
 */
TEST_F(ctl, device_dying_while_enable_is_queued_does_not_fail_it)
{
	struct enabler en = { .ctl = self->ctl };
	pid_t mon = vms_controller_monitor_pid(self->ctl);
	uint64_t end;
	struct device d;
	pthread_t t;
	int st, queued = 0;

	cu_write_crosvm_data(&self->g, &self->e);
	ASSERT_EQ(0, start_device(self->ctl, &d));
	ASSERT_EQ(0, kill(mon, SIGSTOP));
	for (end = cu_now_ms() + CU_DEADLINE_MS; proc_state(mon) != 'T' && cu_now_ms() < end;)
		usleep(1000);
	ASSERT_EQ('T', proc_state(mon));
	ASSERT_EQ(0, pthread_create(&t, NULL, do_enable, &en));
	/* The freezer has stopped the device once the Enable is in the socket. */
	for (end = cu_now_ms() + CU_DEADLINE_MS; !queued && cu_now_ms() < end;) {
		ASSERT_EQ(0, ioctl(vms_controller_command_fd(self->ctl), SIOCOUTQ, &queued));
		if (!queued)
			usleep(1000);
	}
	ASSERT_NE(0, queued);
	ASSERT_EQ(0, kill(d.pid, SIGKILL));
	ASSERT_EQ(d.pid, waitpid(d.pid, &st, 0));
	close(d.rd);
	close(d.wr);
	ASSERT_EQ(0, kill(mon, SIGCONT));
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ(0, cu_accepted(en.ret, &en.r));
	ASSERT_EQ(0, disable_expect(self->ctl, 1542));
	ASSERT_EQ(0, exit_and_check(&self->ctl, &self->g, &self->e));
}

/*
 * Kernel-mode accesses to guest memory (a VMM's device writing a guest buffer to
 * a file or reading one into it with a syscall) fault like the guest's own: the
 * monitor must serve them. A VMM uffd created with UFFD_USER_MODE_ONLY would make
 * them fail with EFAULT instead (anchors pain point 14).
 */
TEST_F(ctl, kernel_mode_accesses_to_swapped_pages_are_served)
{
	uint64_t ps = vms_page_size();
	uint8_t *buf = malloc(ps);
	int p[2];

	ASSERT_NE(NULL, buf);
	cu_write_crosvm_data(&self->g, &self->e);
	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, false));
	ASSERT_EQ(0, pipe(p));
	/* The kernel reads a swapped page (region 0, page 1 holds 2)... */
	ASSERT_EQ((ssize_t)ps, write(p[1], cu_page(&self->g, 0, 1), ps));
	ASSERT_EQ((ssize_t)ps, read(p[0], buf, ps));
	ASSERT_TRUE(cu_page_is(buf, 2));
	/* ... and writes into one (region 1, page 20 held 8). */
	memset(buf, 0xab, ps);
	ASSERT_EQ((ssize_t)ps, write(p[1], buf, ps));
	ASSERT_EQ((ssize_t)ps, read(p[0], cu_page(&self->g, 1, 20), ps));
	cu_expect_page(&self->e, 1, 20, 0xab);
	close(p[0]);
	close(p[1]);
	free(buf);
	ASSERT_EQ(0, disable_expect(self->ctl, 1540)); /* all but the two pages */
	ASSERT_EQ(0, exit_and_check(&self->ctl, &self->g, &self->e));
}

TEST_F(ctl, status_json_in_ready)
{
	char json[VMS_SWAP_STATUS_JSON_MAX];
	struct vms_swap_status st, back;

	cu_write_crosvm_data(&self->g, &self->e);
	ASSERT_EQ(0, vms_controller_status(self->ctl, &st));
	ASSERT_EQ(VMS_SWAP_READY, st.state);
	ASSERT_EQ(1542, st.metrics.resident_pages);
	ASSERT_GT(vms_swap_status_json(&st, json, sizeof(json)), 0);
	ASSERT_STREQ("{\"state\":\"Ready\",\"metrics\":{\"resident_pages\":1542,"
		     "\"copied_from_file_pages\":0,\"copied_from_staging_pages\":0,"
		     "\"zeroed_pages\":0,\"redundant_pages\":0,\"staging_pages\":0,"
		     "\"swap_pages\":0},\"state_transition\":{\"pages\":0,\"time_ms\":0}}",
		     json);
	ASSERT_EQ(0, vms_swap_status_parse_json(json, &back));
	ASSERT_EQ(0, memcmp(&st, &back, sizeof(st)));
}

TEST_HARNESS_MAIN
