// SPDX-License-Identifier: GPL-2.0-only
/*
 * freezer_test.c - the process freezer used around enable (ref/freezer.c): every
 * thread of every descendant stopped before vms_freeze() returns (crosvm
 * b/331740397), command names with spaces and ')' (crosvm parsed up to the first
 * ')'), forks racing the freeze (b/324158729), explicit pid lists, the excluded
 * subtree (the monitor), and a bounded failure that resumes what it stopped.
 * States are cross-checked through /proc/PID/task/TID/status, a different file
 * and format from the stat line the freezer parses.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include <vmmswap/freezer.h>

#include "lib/ctl_util.h"

/* The state letter from /proc/PID/task/TID/status ("State:\tT (stopped)"). */
static char status_state(pid_t pid, pid_t tid)
{
	char path[96], line[256];
	char st = '?';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	f = fopen(path, "r");
	if (!f)
		return 'X';
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "State:", 6) == 0) {
			st = line[7];
			break;
		}
	fclose(f);
	return st;
}

/* Number of threads of pid not stopped (per the status file). */
static int running_threads(pid_t pid)
{
	char path[64];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char s;

		if (de->d_name[0] == '.')
			continue;
		s = status_state(pid, atoi(de->d_name));
		if (s != 'T' && s != 't' && s != 'X' && s != 'Z')
			n++;
	}
	closedir(d);
	return n;
}

/* Wait (bounded) until pid has at least one running thread again. */
static int wait_running(pid_t pid, int deadline_ms)
{
	uint64_t end = cu_now_ms() + (uint64_t)deadline_ms;

	while (running_threads(pid) == 0) {
		if (cu_now_ms() > end)
			return -ETIMEDOUT;
		usleep(1000); /* bounded polling, not synchronisation */
	}
	return 0;
}

TEST(stat_parse_uses_last_paren)
{
	static const char s1[] = "42 (a) b) (c) R 7 42 42 0 -1";
	static const char s2[] = "43 (x y) S 1 43 43";
	static const char s3[] = "44 ()) T 2 0";
	static const char s4[] = "45 (no close S 1";
	static const char s5[] = "46 (ok)";
	char st;
	pid_t pp;

	ASSERT_EQ(0, vms_proc_parse_stat(s1, sizeof(s1) - 1, &st, &pp));
	ASSERT_EQ('R', st);
	ASSERT_EQ(7, pp);
	ASSERT_EQ(0, vms_proc_parse_stat(s2, sizeof(s2) - 1, &st, &pp));
	ASSERT_EQ('S', st);
	ASSERT_EQ(1, pp);
	ASSERT_EQ(0, vms_proc_parse_stat(s3, sizeof(s3) - 1, &st, &pp));
	ASSERT_EQ('T', st);
	ASSERT_EQ(2, pp);
	ASSERT_EQ(-EINVAL, vms_proc_parse_stat(s4, sizeof(s4) - 1, &st, &pp));
	ASSERT_EQ(-EINVAL, vms_proc_parse_stat(s5, sizeof(s5) - 1, &st, &pp));
}

/* A child whose threads spin incrementing their own counter in shared memory. */
#define NTHREADS 6
struct spin_shared {
	atomic_ulong count[NTHREADS];
	atomic_int started;
};

static void *spin(void *arg)
{
	atomic_ulong *c = arg;

	for (;;)
		atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
	return NULL;
}

static pid_t fork_spinner(struct spin_shared *sh, int ready_wr)
{
	pid_t pid = fork();

	if (pid == 0) {
		pthread_t t;

		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		/* A command name that fools a first-')' parser into reading 'R'/'T'. */
		prctl(PR_SET_NAME, "w) T (x) R", 0, 0, 0);
		for (int i = 1; i < NTHREADS; i++)
			if (pthread_create(&t, NULL, spin, &sh->count[i]))
				_exit(2);
		if (write(ready_wr, "r", 1) != 1)
			_exit(3);
		spin(&sh->count[0]);
	}
	return pid;
}

TEST(every_thread_stopped_before_return)
{
	struct spin_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct vms_freeze_opts o = { 0 };
	struct vms_freezer fz;
	unsigned long snap[NTHREADS];
	int p[2], st;
	pid_t pid;
	char b;

	ASSERT_NE(MAP_FAILED, sh);
	ASSERT_EQ(0, pipe(p));
	pid = fork_spinner(sh, p[1]);
	ASSERT_GT(pid, 0);
	ASSERT_EQ(0, cu_read_byte(p[0], CU_DEADLINE_MS, &b));
	for (int round = 0; round < 20; round++) {
		ASSERT_EQ(0, vms_freeze(&fz, &o));
		ASSERT_EQ(1, fz.n);
		ASSERT_EQ(pid, fz.pids[0]);
		ASSERT_EQ(0, running_threads(pid));
		/* Nothing moves while frozen: every counter is still after a while. */
		for (int i = 0; i < NTHREADS; i++)
			snap[i] = atomic_load(&sh->count[i]);
		for (int spins = 0; spins < 200000; spins++)
			for (int i = 0; i < NTHREADS; i++)
				ASSERT_EQ(snap[i], atomic_load(&sh->count[i]));
		vms_thaw(&fz);
		ASSERT_EQ(0, wait_running(pid, CU_DEADLINE_MS));
	}
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	munmap(sh, sizeof(*sh));
}

/* A child that keeps forking grandchildren (each blocks on a pipe) until told. */
TEST(fork_during_freeze_is_retried)
{
	struct vms_freeze_opts o = { 0 };
	struct vms_freezer fz;
	pid_t pid, *d;
	size_t nd;
	int p[2], st;
	unsigned int max_rounds = 0;
	char b;

	ASSERT_EQ(0, pipe(p));
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		close(p[0]);
		if (write(p[1], "r", 1) != 1)
			_exit(2);
		for (int i = 0; i < 200; i++) {
			pid_t c = fork();

			if (c == 0) {
				/* Die with the child, whatever happens to the test. */
				prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
				if (getppid() == 1)
					_exit(0);
				for (;;)
					pause();
			}
			if (c < 0)
				break;
		}
		for (;;)
			pause();
	}
	ASSERT_GT(pid, 0);
	close(p[1]);
	ASSERT_EQ(0, cu_read_byte(p[0], CU_DEADLINE_MS, &b));
	for (int round = 0; round < 5; round++) {
		ASSERT_EQ(0, vms_freeze(&fz, &o));
		if (fz.rounds > max_rounds)
			max_rounds = fz.rounds;
		/* Whatever exists now is frozen: the listing was stable. */
		ASSERT_EQ(0, vms_proc_descendants(getpid(), 0, &d, &nd));
		ASSERT_EQ(nd, fz.n);
		for (size_t i = 0; i < nd; i++) {
			ASSERT_EQ(d[i], fz.pids[i]);
			ASSERT_EQ(0, running_threads(d[i]));
		}
		free(d);
		vms_thaw(&fz);
	}
	TH_LOG("most listing rounds in one freeze: %u", max_rounds);
	/* Kill the whole tree: the grandchildren are in our process group. */
	ASSERT_EQ(0, vms_proc_descendants(getpid(), 0, &d, &nd));
	for (size_t i = 0; i < nd; i++)
		kill(d[i], SIGKILL);
	free(d);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
}

static pid_t fork_sleeper(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		for (;;)
			pause();
	}
	return pid;
}

TEST(explicit_list_and_excluded_subtree)
{
	struct vms_freezer fz;
	pid_t a, b, *d;
	size_t nd;
	int st;

	a = fork_sleeper();
	b = fork_sleeper();
	ASSERT_GT(a, 0);
	ASSERT_GT(b, 0);
	/* Explicit list: only a. */
	ASSERT_EQ(0, vms_freeze(&fz, &(struct vms_freeze_opts){ .pids = &a, .npids = 1 }));
	ASSERT_EQ(1, fz.n);
	ASSERT_EQ(0, running_threads(a));
	ASSERT_GT(running_threads(b), 0); /* (TSan adds a thread) */
	vms_thaw(&fz);
	ASSERT_EQ(0, wait_running(a, CU_DEADLINE_MS));
	/* Descendants without b (the "monitor"). */
	ASSERT_EQ(0, vms_proc_descendants(getpid(), b, &d, &nd));
	ASSERT_EQ(1, nd);
	ASSERT_EQ(a, d[0]);
	free(d);
	ASSERT_EQ(0, vms_freeze(&fz, &(struct vms_freeze_opts){ .exclude = b }));
	ASSERT_EQ(1, fz.n);
	ASSERT_EQ(0, running_threads(a));
	ASSERT_GT(running_threads(b), 0); /* (TSan adds a thread) */
	vms_thaw(&fz);
	kill(a, SIGKILL);
	kill(b, SIGKILL);
	waitpid(a, &st, 0);
	waitpid(b, &st, 0);
}

/* Runs on its own stack in the parent's memory: raw syscalls only. */
static int vfork_child(void *arg)
{
	int *fds = arg;
	char b = 'r';

	if (syscall(SYS_write, fds[0], &b, 1) != 1 || syscall(SYS_read, fds[1], &b, 1) < 0)
		syscall(SYS_exit, 1);
	syscall(SYS_exit, 0);
	return 0;
}

/*
 * A task that cannot stop: a vfork() parent waits (state D) for its child, which we
 * stop too. The freeze must give up in bounded time and resume everything.
 */
TEST(unstoppable_task_times_out_and_resumes)
{
	struct vms_freeze_opts o = { .timeout_ms = 300 };
	struct vms_freezer fz;
	pid_t pid, *d;
	size_t nd;
	uint64_t t0;
	int p[2], q[2], st, ret;
	char b;

	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, pipe(q));
	pid = fork();
	if (pid == 0) {
		static char stack[64 << 10] __attribute__((aligned(16)));
		int fds[2] = { p[1], q[0] };

		close(p[0]);
		close(q[1]);
		/* vfork() semantics without libc's vfork (sanitizers turn it into fork). */
		if (clone(vfork_child, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD,
			  fds) < 0)
			_exit(1);
		_exit(0);
	}
	ASSERT_GT(pid, 0);
	close(p[1]);
	close(q[0]);
	ASSERT_EQ(0, cu_read_byte(p[0], CU_DEADLINE_MS, &b));
	t0 = cu_now_ms();
	ret = vms_freeze(&fz, &o);
	ASSERT_EQ(-ETIMEDOUT, ret);
	ASSERT_LT(cu_now_ms() - t0, 5000);
	ASSERT_EQ(0, fz.n);
	/* Nothing stays stopped. */
	ASSERT_EQ(0, vms_proc_descendants(getpid(), 0, &d, &nd));
	for (size_t i = 0; i < nd; i++)
		ASSERT_EQ(0, wait_running(d[i], CU_DEADLINE_MS));
	free(d);
	close(q[1]);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_EQ(0, st);
}

TEST_HARNESS_MAIN
