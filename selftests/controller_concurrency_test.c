// SPDX-License-Identifier: GPL-2.0-only
/*
 * controller_concurrency_test.c - swap under concurrent activity:
 *  - a device process whose worker thread keeps writing guest memory while the VMM
 *    enables, swaps out and disables (crosvm b/331740397: a thread still running
 *    during the move loses writes): after each step the frozen device's pages are a
 *    consistent snapshot, and at the end no write is lost;
 *  - Status polled from another thread in a tight loop while enable, swap-out and
 *    swap-in run (crosvm once deadlocked enable against status);
 *  - balloon REMOVEs racing faults and the background swap-in on the VMM's uffd
 *    (EAGAIN), including one queued just as the swap-in job starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include <vmmswap/controller.h>
#include <vmmswap/freezer.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/status.h>

#include "lib/ctl_util.h"
#include "lib/handler_util.h"

FIXTURE(conc)
{
	struct cu_guest g;
	struct cu_expect e;
	struct vms_controller *ctl;
};

FIXTURE_SETUP(conc)
{
	CU_SETUP(&self->g, NULL, 0, NULL, &self->ctl);
	cu_write_crosvm_data(&self->g, &self->e);
}

FIXTURE_TEARDOWN(conc)
{
	cu_teardown(&self->g, &self->ctl);
}

/* ---- device worker ---- */

#define WPAGES 64 /* region 1, pages 900 .. 963: outside crosvm's data */
#define WFIRST 900

struct ledger {
	atomic_ulong gen[WPAGES]; /* last generation completely written to page k */
	atomic_int stop;
	atomic_ulong writes;
};

static uint64_t *wpage(const struct cu_guest *g, int k)
{
	return (uint64_t *)cu_page(g, 1, WFIRST + k);
}

struct worker_arg {
	const struct cu_guest *g;
	struct ledger *l;
};

static void *worker(void *p)
{
	struct worker_arg *a = p;
	size_t words = vms_page_size() / sizeof(uint64_t);

	for (unsigned long round = 1; !atomic_load(&a->l->stop); round++) {
		for (int k = 0; k < WPAGES; k++) {
			volatile uint64_t *w = wpage(a->g, k);

			/* Ascending stores: a frozen page is a prefix of the new value. */
			for (size_t i = 0; i < words; i++)
				w[i] = round;
			atomic_store_explicit(&a->l->gen[k], round, memory_order_release);
			atomic_fetch_add(&a->l->writes, 1);
		}
	}
	return NULL;
}

/*
 * Page k holds gen g = ledger, or is the one page being written: a prefix of g + 1
 * then g. Returns the number of pages in flux (at most 1 is right), or -1 when some
 * page holds anything else (a lost or torn write).
 */
static int check_snapshot(const struct cu_guest *g, struct ledger *l)
{
	size_t words = vms_page_size() / sizeof(uint64_t);
	int flux = 0;

	for (int k = 0; k < WPAGES; k++) {
		uint64_t gen = atomic_load(&l->gen[k]), *w = wpage(g, k);
		size_t i = 0;

		while (i < words && w[i] == gen + 1)
			i++;
		if (i)
			flux++;
		for (; i < words; i++)
			if (w[i] != gen) {
				cu_log("page %d word %zu: %llu, ledger %llu", k, i,
				       (unsigned long long)w[i], (unsigned long long)gen);
				return -1;
			}
	}
	return flux;
}

TEST_F(conc, device_worker_writes_survive_enable)
{
	struct ledger *l = mmap(NULL, sizeof(*l), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct vms_freezer fz;
	struct vms_reply r;
	int ready[2], go[2], st;
	unsigned long w0;
	int flux;
	pid_t dev;
	char b;

	ASSERT_NE(MAP_FAILED, l);
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	dev = fork();
	if (dev == 0) {
		struct worker_arg a = { &self->g, l };
		pthread_t t;

		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		close(ready[0]);
		close(go[1]);
		if (vms_controller_device_forked(self->ctl, CU_DEADLINE_MS))
			_exit(10);
		vms_controller_forget(self->ctl);
		if (pthread_create(&t, NULL, worker, &a))
			_exit(11);
		if (write(ready[1], "r", 1) != 1)
			_exit(12);
		if (read(go[0], &b, 1) < 0)
			_exit(13);
		atomic_store(&l->stop, 1);
		pthread_join(t, NULL);
		_exit(check_snapshot(&self->g, l) == 0 ? 0 : 14);
	}
	ASSERT_GT(dev, 0);
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ(0, cu_read_byte(ready[0], CU_DEADLINE_MS, &b));
	for (int round = 0; round < 6; round++) {
		/* Let the worker make progress (it faults pages back in from staging). */
		w0 = atomic_load(&l->writes);
		for (uint64_t end = cu_now_ms() + CU_DEADLINE_MS;
		     atomic_load(&l->writes) < w0 + 2 * WPAGES;)
			ASSERT_LT(cu_now_ms(), end);
		ASSERT_EQ(0, cu_accepted(vms_controller_enable(self->ctl, &r), &r));
		ASSERT_EQ(0, vms_freeze(&fz, &(struct vms_freeze_opts){ .pids = &dev,
									   .npids = 1 }));
		flux = check_snapshot(&self->g, l);
		vms_thaw(&fz);
		ASSERT_GE(flux, 0); /* no write lost */
		ASSERT_LE(flux, 1); /* at most the page the worker was writing */
		if (round % 2) {
			ASSERT_EQ(0, cu_accepted(vms_controller_swap_out(self->ctl, &r), &r));
			ASSERT_EQ(0, cu_wait_state(self->ctl, VMS_SWAP_ACTIVE, CU_DEADLINE_MS,
						   NULL));
		}
		if (round % 3 == 2) {
			ASSERT_EQ(0, cu_accepted(vms_controller_disable(self->ctl, false, &r), &r));
			ASSERT_EQ(0, cu_wait_state(self->ctl, VMS_SWAP_READY, CU_DEADLINE_MS,
						   NULL));
		}
	}
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(dev, waitpid(dev, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	ASSERT_EQ(0, check_snapshot(&self->g, l));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	ASSERT_EQ(0, vms_controller_exit(self->ctl));
	self->ctl = NULL;
	ASSERT_EQ(0, check_snapshot(&self->g, l));
	munmap(l, sizeof(*l));
}

/* ---- status poller ---- */

struct poller {
	struct vms_controller *ctl;
	atomic_int stop;
	unsigned long polls, bad;
	int err;
	unsigned int seen; /* bit per state */
};

static void *poll_status(void *p)
{
	struct poller *s = p;
	char json[VMS_SWAP_STATUS_JSON_MAX];

	while (!atomic_load(&s->stop)) {
		struct vms_swap_status st;
		int ret = vms_controller_status(s->ctl, &st);

		if (ret) {
			s->err = ret;
			break;
		}
		if (vms_swap_status_json(&st, json, sizeof(json)) <= 0)
			s->bad++;
		else
			s->seen |= 1u << st.state;
		s->polls++;
	}
	return NULL;
}

TEST_F(conc, status_polled_during_enable_and_swap_in)
{
	struct poller s = { .ctl = self->ctl };
	struct vms_reply r;
	pthread_t t;

	/* Fill every page so that each operation has some work. */
	for (int reg = 0; reg < CU_NREGIONS; reg++)
		for (uint64_t p = 0; p < CU_REGION_PAGES; p++)
			cu_set(&self->g, &self->e, reg, p, (uint8_t)(p * 7 + reg + 1));
	ASSERT_EQ(0, pthread_create(&t, NULL, poll_status, &s));
	for (int round = 0; round < 4; round++) {
		ASSERT_EQ(0, cu_accepted(vms_controller_enable(self->ctl, &r), &r));
		ASSERT_EQ(0, cu_accepted(vms_controller_swap_out(self->ctl, &r), &r));
		ASSERT_EQ(0, cu_wait_state(self->ctl, VMS_SWAP_ACTIVE, CU_DEADLINE_MS, NULL));
		ASSERT_EQ(0, cu_accepted(vms_controller_disable(self->ctl, false, &r), &r));
		ASSERT_EQ(0, cu_wait_state(self->ctl, VMS_SWAP_READY, CU_DEADLINE_MS, NULL));
		ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	}
	atomic_store(&s.stop, 1);
	ASSERT_EQ(0, pthread_join(t, NULL));
	TH_LOG("%lu status polls, states seen %#x", s.polls, s.seen);
	ASSERT_EQ(0, s.err);
	ASSERT_EQ(0, s.bad);
	ASSERT_GT(s.polls, 0);
	ASSERT_EQ(0, vms_controller_exit(self->ctl));
	self->ctl = NULL;
	ASSERT_EQ(-1, cu_check_memfd(&self->g, &self->e));
}

/* ---- balloon-style removes racing faults and swap-in on the same uffd ---- */

struct remover {
	uint8_t *addr;
	size_t len;
	int ret;
	int done_fd;
	atomic_int tid; /* set before the madvise */
};

static void *do_remove(void *p)
{
	struct remover *rm = p;
	uint64_t one = 1;

	/* Blocks until the monitor has read the REMOVE event. */
	rm->ret = madvise(rm->addr, rm->len, MADV_REMOVE) ? -errno : 0;
	if (write(rm->done_fd, &one, sizeof(one)) != sizeof(one))
		rm->ret = -EIO;
	return NULL;
}

/*
 * MADV_REMOVE from a VMM thread while other VMM threads fault and the background
 * swap-in fills through the VMM's uffd: the kernel answers fills with EAGAIN while
 * the REMOVE is in flight (spec 5.6); the monitor must drain, apply and retry.
 * Removed pages read zero (REMOVE means discard), all others keep their contents.
 */
TEST_F(conc, remove_races_faults_and_swap_in)
{
	struct vms_reply r;
	int efd = eventfd(0, EFD_CLOEXEC);

	ASSERT_GE(efd, 0);
	for (int round = 0; round < 6; round++) {
		struct remover rm;
		pthread_t t;
		uint64_t first = 20 + (uint64_t)round * 100, v;

		ASSERT_EQ(0, cu_accepted(vms_controller_enable(self->ctl, &r), &r));
		if (round % 2) {
			ASSERT_EQ(0, cu_accepted(vms_controller_swap_out(self->ctl, &r), &r));
			ASSERT_EQ(0, cu_wait_state(self->ctl, VMS_SWAP_ACTIVE, CU_DEADLINE_MS,
						   NULL));
		}
		if (round >= 3)
			ASSERT_EQ(0, cu_accepted(vms_controller_disable(self->ctl, false, &r), &r));
		rm = (struct remover){ .addr = cu_page(&self->g, round % 2, first),
				       .len = 64 * vms_page_size(), .done_fd = efd };
		ASSERT_EQ(0, pthread_create(&t, NULL, do_remove, &rm));
		/* Fault while the remove is in flight (same process, same uffd). */
		for (uint64_t p = 0; p < CU_REGION_PAGES; p += 3) {
			volatile uint8_t x = *cu_page(&self->g, (round + 1) % 2, p);
			(void)x;
		}
		ASSERT_EQ(1, poll(&(struct pollfd){ .fd = efd, .events = POLLIN }, 1,
				  CU_DEADLINE_MS)); /* the remove returned, bounded */
		ASSERT_EQ(sizeof(v), read(efd, &v, sizeof(v)));
		ASSERT_EQ(0, pthread_join(t, NULL));
		ASSERT_EQ(0, rm.ret);
		for (uint64_t p = first; p < first + 64; p++)
			cu_expect_page(&self->e, round % 2, p, 0);
		if (round >= 3)
			ASSERT_EQ(0, cu_wait_state(self->ctl, VMS_SWAP_READY, CU_DEADLINE_MS,
						   NULL));
		TH_LOG("round %d", round);
		ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	}
	close(efd);
	ASSERT_EQ(0, vms_controller_exit(self->ctl));
	self->ctl = NULL;
	ASSERT_EQ(-1, cu_check_memfd(&self->g, &self->e));
}

/* A thread that reads one byte of a page (a fault) and records it. */
struct toucher {
	volatile uint8_t *addr;
	uint8_t seen;
	pid_t tid;
	atomic_int started;
};

static void *touch(void *p)
{
	struct toucher *t = p;

	t->tid = gettid();
	atomic_store(&t->started, 1);
	t->seen = *t->addr;
	return NULL;
}

static void *remove_tid(void *p)
{
	struct remover *rm = p;

	atomic_store(&rm->tid, gettid());
	do_remove(p);
	return NULL;
}

/*
 * The kernel hands out a page fault before a REMOVE queued after it. With the monitor
 * stopped, queue a fault on a staged page, then a REMOVE of it; resume the monitor.
 * Once the remove returned the page must read zero: a fault served before the remove
 * was applied would copy the old bytes back after the punch.
 */
TEST_F(conc, queued_remove_wins_over_earlier_fault)
{
	pid_t mon = vms_controller_monitor_pid(self->ctl);
	int efd = eventfd(0, EFD_CLOEXEC);
	struct vms_reply r;

	ASSERT_GE(efd, 0);
	for (int round = 0; round < 4; round++) {
		uint8_t *page = cu_page(&self->g, 0, 20 + (uint64_t)round);
		struct toucher t = { .addr = page };
		struct remover rm = { .addr = page, .len = vms_page_size(), .done_fd = efd };
		pthread_t ta, tb;
		uint64_t v;
		pid_t rtid;

		ASSERT_EQ(0, cu_accepted(vms_controller_enable(self->ctl, &r), &r));
		if (round % 2) {
			ASSERT_EQ(0, cu_accepted(vms_controller_swap_out(self->ctl, &r), &r));
			ASSERT_EQ(0, cu_wait_state(self->ctl, VMS_SWAP_ACTIVE, CU_DEADLINE_MS,
						   NULL));
		}
		ASSERT_EQ(0, kill(mon, SIGSTOP));
		ASSERT_EQ(0, pthread_create(&ta, NULL, touch, &t));
		while (!atomic_load(&t.started))
			;
		ASSERT_EQ(0, hu_wait_blocked(t.tid, CU_DEADLINE_MS));
		ASSERT_EQ(0, pthread_create(&tb, NULL, remove_tid, &rm));
		for (uint64_t end = cu_now_ms() + CU_DEADLINE_MS; !(rtid = atomic_load(&rm.tid));)
			ASSERT_LT(cu_now_ms(), end);
		ASSERT_EQ(0, hu_wait_blocked(rtid, CU_DEADLINE_MS));
		ASSERT_EQ(0, kill(mon, SIGCONT));
		ASSERT_EQ(1, poll(&(struct pollfd){ .fd = efd, .events = POLLIN }, 1,
				  CU_DEADLINE_MS));
		ASSERT_EQ(sizeof(v), read(efd, &v, sizeof(v)));
		ASSERT_EQ(0, pthread_join(tb, NULL));
		ASSERT_EQ(0, pthread_join(ta, NULL));
		ASSERT_EQ(0, rm.ret);
		ASSERT_TRUE(t.seen == 0 || t.seen == 4); /* old or zero while racing */
		cu_expect_page(&self->e, 0, 20 + (uint64_t)round, 0);
		ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	}
	close(efd);
}

/* Wait until pid's main thread is stopped (state T), at most CU_DEADLINE_MS. */
static int wait_stopped(pid_t pid)
{
	char path[64], buf[512], *p;
	uint64_t end = cu_now_ms() + CU_DEADLINE_MS;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	while (cu_now_ms() < end) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

		if (fd >= 0)
			close(fd);
		if (n <= 0)
			return -ESRCH;
		buf[n] = '\0';
		p = strrchr(buf, ')');
		if (p && p[1] == ' ' && p[2] == 'T')
			return 0;
		usleep(500);
	}
	return -ETIMEDOUT;
}

#define EAGAIN_ROUNDS 32

/* One CPU this process may run on (the lowest), as a one-CPU set. */
static cpu_set_t first_cpu(void)
{
	cpu_set_t all, one;

	CPU_ZERO(&one);
	if (sched_getaffinity(0, sizeof(all), &all))
		CPU_ZERO(&all);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all)) {
			CPU_SET(c, &one);
			return one;
		}
	CPU_SET(0, &one);
	return one;
}

/*
 * The remover of the next test: on the monitor's CPU, at the lowest priority, so
 * that once the monitor has read its REMOVE it runs again (and lets the fills
 * succeed) only after the monitor's threads have had their turn.
 */
static void *remove_low(void *p)
{
	struct sched_param sp = { 0 };
	cpu_set_t one = first_cpu();

	sched_setaffinity(0, sizeof(one), &one);
	sched_setscheduler(0, SCHED_IDLE, &sp);
	return remove_tid(p);
}

/*
 * A balloon REMOVE queued just as the background swap-in starts copying: its
 * fills get EAGAIN until the monitor has read the REMOVE and the remover ran
 * again. The job must wait and retry, not fail (crosvm 9.4): every round ends
 * Ready, the removed pages zero, every other page intact. The monitor is stopped
 * while the REMOVE is queued and the held swap-in job released, so the job's
 * first chunk and the event loop start together when it resumes.
 */
TEST(swap_in_job_retries_fills_refused_by_a_queued_remove)
{
	struct vms_controller *ctl = NULL;
	int efd = eventfd(0, EFD_CLOEXEC), ret;
	struct cu_guest g;
	struct cu_expect e;
	pid_t mon;

	ASSERT_GE(efd, 0);
	ASSERT_EQ(0, cu_guest_create(&g));
	ret = cu_launch(&g, NULL, VMS_CTL_TEST_HOLD_JOBS, &ctl);
	if (cu_uffd_unavailable(ret)) {
		cu_guest_destroy(&g);
		SKIP(return, "userfaultfd unavailable: %s", strerror(-ret));
	}
	ASSERT_EQ(0, ret);
	mon = vms_controller_monitor_pid(ctl);
	/* The monitor's loop thread on one CPU; the job threads it starts inherit it. */
	{
		cpu_set_t one = first_cpu();

		ASSERT_EQ(0, sched_setaffinity(mon, sizeof(one), &one));
	}
	cu_write_crosvm_data(&g, &e);
	for (int round = 0; round < EAGAIN_ROUNDS; round++) {
		uint64_t first = 20 + (uint64_t)(round % 24) * 32, v;
		struct remover rm = { .addr = cu_page(&g, round % 2, first),
				      .len = 16 * vms_page_size(),
				      .done_fd = efd };
		struct vms_reply r;
		pthread_t t;
		pid_t rtid;

		ASSERT_EQ(0, cu_accepted(vms_controller_enable(ctl, &r), &r));
		ASSERT_EQ(0, cu_accepted(vms_controller_disable(ctl, false, &r), &r));
		ASSERT_EQ(0, kill(mon, SIGSTOP));
		ASSERT_EQ(0, wait_stopped(mon));
		ASSERT_EQ(0, pthread_create(&t, NULL, remove_low, &rm));
		for (uint64_t end = cu_now_ms() + CU_DEADLINE_MS; !(rtid = atomic_load(&rm.tid));)
			ASSERT_LT(cu_now_ms(), end);
		ASSERT_EQ(0, hu_wait_blocked(rtid, CU_DEADLINE_MS));
		ASSERT_EQ(0, vms_controller_test_release_job(ctl));
		ASSERT_EQ(0, kill(mon, SIGCONT));
		ASSERT_EQ(1, poll(&(struct pollfd){ .fd = efd, .events = POLLIN }, 1,
				  CU_DEADLINE_MS));
		ASSERT_EQ(sizeof(v), read(efd, &v, sizeof(v)));
		ASSERT_EQ(0, pthread_join(t, NULL));
		ASSERT_EQ(0, rm.ret);
		for (uint64_t p = first; p < first + 16; p++)
			cu_expect_page(&e, round % 2, p, 0);
		ASSERT_EQ(0, cu_wait_state(ctl, VMS_SWAP_READY, CU_DEADLINE_MS, NULL))
			TH_LOG("round %d", round);
		ASSERT_EQ(-1, cu_check(&g, &e));
	}
	close(efd);
	ASSERT_EQ(0, vms_controller_exit(ctl));
	ASSERT_EQ(-1, cu_check_memfd(&g, &e));
	cu_guest_destroy(&g);
}

TEST_HARNESS_MAIN
