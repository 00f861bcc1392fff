// SPDX-License-Identifier: MIT
/*
 * vms_bench_freeze - how long the freezer (ref/freezer.c) takes to stop and to resume
 * N child processes of M busy threads each: the pause an enable adds to the device
 * processes before and after the move.
 *
 *   vms_bench_freeze [-p N] [-t M] [-r ROUNDS] [-i]  (defaults 8 x 4, 20 rounds)
 *
 * The threads spin (the worst case: each must be scheduled to stop), or with -i
 * sleep in pause() (idle devices, the common case).
 * stop:   vms_freeze() until it returns (every thread seen in state T);
 * resume: vms_thaw() plus the time until every thread left state T.
 * Prints min / median / max in microseconds. Unknown arguments are ignored, so that
 * tools/bench/bench.sh can pass the same arguments to every benchmark.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vmmswap/freezer.h>

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int idle;

static void *busy(void *arg)
{
	if (idle)
		for (;;)
			pause();
	volatile unsigned long *c = arg;

	for (;;)
		(*c)++;
	return NULL;
}

/* Threads of pid still in state T (stopped). */
static int stopped_threads(pid_t pid)
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
		char buf[512], st;
		FILE *f;
		size_t len;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/stat", pid, de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		if (!vms_proc_parse_stat(buf, len, &st, NULL) && (st == 'T' || st == 't'))
			n++;
	}
	closedir(d);
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void report(const char *what, uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	printf("%-7s min %7llu us  median %7llu us  max %7llu us\n", what, (unsigned long long)v[0],
	       (unsigned long long)v[n / 2], (unsigned long long)v[n - 1]);
}

int main(int argc, char **argv)
{
	int nproc = 8, nthr = 4, rounds = 20, ret = 0;
	uint64_t *stop, *resume;
	pid_t *pids;

	for (int i = 1; i + 1 < argc; i++) {
		if (!strcmp(argv[i], "-p"))
			nproc = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-t"))
			nthr = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-r"))
			rounds = atoi(argv[++i]);
	}
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-i"))
			idle = 1;
	if (nproc < 1 || nthr < 1 || rounds < 1) {
		fprintf(stderr, "usage: %s [-p N] [-t M] [-r ROUNDS]\n", argv[0]);
		return 2;
	}
	pids = calloc((size_t)nproc, sizeof(*pids));
	stop = calloc((size_t)rounds, sizeof(*stop));
	resume = calloc((size_t)rounds, sizeof(*resume));
	if (!pids || !stop || !resume)
		return 1;
	for (int p = 0; p < nproc; p++) {
		pids[p] = fork();
		if (pids[p] < 0) {
			perror("fork");
			return 1;
		}
		if (pids[p] == 0) {
			static unsigned long counters[64];
			pthread_t t;

			prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			for (int k = 1; k < nthr; k++)
				if (pthread_create(&t, NULL, busy, &counters[k % 64]))
					_exit(1);
			busy(&counters[0]);
		}
	}
	for (int r = 0; r < rounds && !ret; r++) {
		struct vms_freeze_opts o = { .timeout_ms = 10000 };
		struct vms_freezer fz;
		uint64_t t0 = now_us(), t1;
		bool again = true;

		ret = vms_freeze(&fz, &o);
		if (ret) {
			fprintf(stderr, "vms_freeze: %s\n", strerror(-ret));
			break;
		}
		t1 = now_us();
		stop[r] = t1 - t0;
		vms_thaw(&fz);
		while (again) {
			again = false;
			for (int p = 0; p < nproc && !again; p++)
				again = stopped_threads(pids[p]) > 0;
		}
		resume[r] = now_us() - t1;
	}
	for (int p = 0; p < nproc; p++) {
		kill(pids[p], SIGKILL);
		waitpid(pids[p], NULL, 0);
	}
	if (ret)
		return 1;
	printf("freezer: %d processes x %d %s threads, %d rounds\n", nproc, nthr,
	       idle ? "idle" : "busy", rounds);
	report("stop", stop, rounds);
	report("resume", resume, rounds);
	return 0;
}
