// SPDX-License-Identifier: MIT
/*
 * freezer.c - SIGSTOP a process set and wait until every thread is stopped
 * (freezer.h). All /proc parsing is in vms_proc_parse_stat().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vmmswap/clock.h>
#include <vmmswap/freezer.h>
#include <vmmswap/log.h>

int vms_proc_parse_stat(const char *buf, size_t len, char *state, pid_t *ppid)
{
	const char *p = NULL, *end = buf + len;
	long pp;
	char *e;

	/* comm is at most 16 bytes but may contain ')': use the last one. */
	for (const char *q = buf; q < end; q++)
		if (*q == ')')
			p = q;
	if (!p || !memchr(buf, '(', (size_t)(p - buf)))
		return -EINVAL;
	p++;
	if (p + 2 > end || *p != ' ')
		return -EINVAL;
	p++;
	if (*p < 'A' || *p > 'z')
		return -EINVAL;
	*state = *p++;
	if (!ppid)
		return 0;
	if (p >= end || *p != ' ')
		return -EINVAL;
	errno = 0;
	pp = strtol(p + 1, &e, 10);
	if (errno || e == p + 1 || e > end || pp < 0)
		return -EINVAL;
	*ppid = (pid_t)pp;
	return 0;
}

/* Read a small /proc file into buf (NUL terminated). Returns length or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	do {
		n = read(fd, buf, len - 1);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

static int push_pid(pid_t **v, size_t *n, size_t *cap, pid_t pid)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 32;
		pid_t *nv = realloc(*v, c * sizeof(**v));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = pid;
	return 0;
}

int vms_proc_descendants(pid_t root, pid_t exclude, pid_t **out, size_t *nout)
{
	pid_t *all = NULL, *par = NULL, *res = NULL;
	size_t n = 0, cap = 0, np = 0, capp = 0, nr = 0, capr = 0;
	struct dirent *de;
	int ret = 0;
	DIR *d;

	*out = NULL;
	*nout = 0;
	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[64], buf[512], st;
		pid_t pid, ppid;
		ssize_t len;
		char *e;

		pid = (pid_t)strtol(de->d_name, &e, 10);
		if (*e || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		len = read_small(path, buf, sizeof(buf));
		if (len < 0)
			continue; /* exited meanwhile */
		if (vms_proc_parse_stat(buf, (size_t)len, &st, &ppid))
			continue;
		if (push_pid(&all, &n, &cap, pid) || push_pid(&par, &np, &capp, ppid)) {
			ret = -ENOMEM;
			goto out;
		}
	}
	/* Breadth-first from root over the (pid, ppid) pairs. */
	if (push_pid(&res, &nr, &capr, root)) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nr; i++) {
		for (size_t j = 0; j < n; j++) {
			if (par[j] != res[i] || all[j] == exclude || all[j] == root)
				continue;
			if (push_pid(&res, &nr, &capr, all[j])) {
				ret = -ENOMEM;
				goto out;
			}
		}
	}
	memmove(res, res + 1, (nr - 1) * sizeof(*res));
	nr--;
	qsort(res, nr, sizeof(*res), cmp_pid);
	*out = res;
	*nout = nr;
	res = NULL;
out:
	closedir(d);
	free(all);
	free(par);
	free(res);
	return ret;
}

static bool have_pid(const struct vms_freezer *fz, pid_t pid)
{
	return fz->n && bsearch(&pid, fz->pids, fz->n, sizeof(pid), cmp_pid) != NULL;
}

/*
 * 1: every thread of pid is stopped (or gone), 0: some still runs, -errno.
 * *bad gets the state of a running thread for the log.
 */
static int all_threads_stopped(pid_t pid, char *bad)
{
	char path[64];
	struct dirent *de;
	int ret = 1;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT || errno == ESRCH ? 1 : -errno;
	while ((de = readdir(d)) && ret == 1) {
		char buf[512], st;
		ssize_t len;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/stat", pid, de->d_name);
		len = read_small(path, buf, sizeof(buf));
		if (len < 0)
			continue; /* the thread exited */
		if (vms_proc_parse_stat(buf, (size_t)len, &st, NULL)) {
			ret = -EINVAL;
			break;
		}
		if (st != 'T' && st != 't' && st != 'Z' && st != 'X') {
			*bad = st;
			ret = 0;
		}
	}
	closedir(d);
	return ret;
}

static void pause_briefly(unsigned int round)
{
	/* Back off from 50 us to 2 ms: stopping takes a scheduler pass or two. */
	long ns = 50000L << (round < 6 ? round : 6);
	struct timespec ts = { 0, ns > 2000000 ? 2000000 : ns };

	nanosleep(&ts, NULL);
}

void vms_thaw(struct vms_freezer *fz)
{
	for (size_t i = 0; i < fz->n; i++)
		kill(fz->pids[i], SIGCONT);
	free(fz->pids);
	fz->pids = NULL;
	fz->n = fz->cap = 0;
}

int vms_freeze(struct vms_freezer *fz, const struct vms_freeze_opts *o)
{
	int64_t deadline =
		vms_now_ms() + (o->timeout_ms > 0 ? o->timeout_ms : VMS_FREEZE_DEFAULT_TIMEOUT_MS);
	pid_t *list = NULL;
	size_t nlist = 0;
	char bad = '?';
	pid_t badpid = 0;
	int ret;

	*fz = (struct vms_freezer){ 0 };
	for (;;) {
		bool grew = false;

		fz->rounds++;
		if (o->pids) {
			list = malloc((o->npids ? o->npids : 1) * sizeof(*list));
			if (!list) {
				ret = -ENOMEM;
				goto fail;
			}
			memcpy(list, o->pids, o->npids * sizeof(*list));
			nlist = o->npids;
			qsort(list, nlist, sizeof(*list), cmp_pid);
		} else {
			ret = vms_proc_descendants(getpid(), o->exclude, &list, &nlist);
			if (ret)
				goto fail;
		}
		for (size_t i = 0; i < nlist; i++) {
			pid_t pid = list[i];

			if (have_pid(fz, pid))
				continue;
			if (kill(pid, SIGSTOP)) {
				if (errno == ESRCH)
					continue; /* exited */
				ret = -errno;
				vms_log(VMS_LOG_ERROR, "freezer: SIGSTOP %d: %d", pid, ret);
				goto fail;
			}
			ret = push_pid(&fz->pids, &fz->n, &fz->cap, pid);
			if (ret) {
				kill(pid, SIGCONT);
				goto fail;
			}
			qsort(fz->pids, fz->n, sizeof(*fz->pids), cmp_pid);
			grew = true;
		}
		free(list);
		list = NULL;
		/* Wait until every thread of every stopped process is in 'T'. */
		for (unsigned int round = 0;; round++) {
			bool all = true;

			for (size_t i = 0; i < fz->n && all; i++) {
				ret = all_threads_stopped(fz->pids[i], &bad);
				if (ret < 0)
					goto fail;
				if (!ret) {
					all = false;
					badpid = fz->pids[i];
				}
			}
			if (all)
				break;
			if (vms_now_ms() > deadline) {
				vms_log(VMS_LOG_ERROR,
					"freezer: process %d still has a thread in state %c",
					badpid, bad);
				ret = -ETIMEDOUT;
				goto fail;
			}
			pause_briefly(round);
		}
		/* Stable: nothing new since the last listing (explicit lists are final). */
		if (!grew || o->pids)
			return 0;
		if (vms_now_ms() > deadline) {
			vms_log(VMS_LOG_ERROR, "freezer: new processes keep appearing");
			ret = -ETIMEDOUT;
			goto fail;
		}
	}
fail:
	free(list);
	vms_thaw(fz);
	return ret;
}
