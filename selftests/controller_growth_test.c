// SPDX-License-Identifier: GPL-2.0-only
/*
 * controller_growth_test - repeated swap cycles leak nothing: after many enable /
 * swap-out / disable cycles (with the guest's pages checked after each), the open
 * fds of the VMM process and of the monitor, and the monitor's anonymous resident
 * memory (its heap: guest memory and staging are shmem, not anonymous), are what
 * they were after the first few cycles.
 *
 * VMS_GROWTH_CYCLES=N runs N cycles instead of the default (the figure for 1,000
 * cycles is a manual run: `VMS_GROWTH_CYCLES=1000 .../controller_growth_test`).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "kselftest_harness.h"
#include "lib/ctl_util.h"

#define WARMUP_CYCLES 5
#define DEFAULT_CYCLES 40
/* Heap the allocator may keep after a peak (arenas, caches): not a leak. */
#define RSS_SLACK_KB 128

/* Open fds of process pid, or -errno. */
static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - (pid == getpid()); /* the DIR's own fd */
}

/* RssAnon of process pid in KiB, or -errno. */
static long rss_anon_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

struct usage {
	int vmm_fds, mon_fds;
	long mon_rss_kb;
};

static int measure(pid_t mon, struct usage *u)
{
	u->vmm_fds = count_fds(getpid());
	u->mon_fds = count_fds(mon);
	u->mon_rss_kb = rss_anon_kb(mon);
	if (u->vmm_fds < 0 || u->mon_fds < 0 || u->mon_rss_kb < 0)
		return -EIO;
	return 0;
}

FIXTURE(growth)
{
	char dir[64];
	struct cu_guest g;
	struct cu_expect e;
	struct vms_controller *ctl;
};

FIXTURE_SETUP(growth)
{
	strcpy(self->dir, "/tmp/vms_growth_XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	CU_SETUP(&self->g, self->dir, 0, NULL, &self->ctl);
	cu_write_crosvm_data(&self->g, &self->e);
}

FIXTURE_TEARDOWN(growth)
{
	cu_teardown(&self->g, &self->ctl);
	rmdir(self->dir);
}

/* One cycle: enable, swap out (Active), disable (Ready); every page still right. */
static int cycle(struct vms_controller *ctl, const struct cu_guest *g,
		 const struct cu_expect *e)
{
	struct vms_reply r;
	int ret = cu_enable_swap_out(ctl, false);

	if (!ret)
		ret = cu_accepted(vms_controller_disable(ctl, false, &r), &r);
	if (!ret)
		ret = cu_wait_state(ctl, VMS_SWAP_READY, CU_DEADLINE_MS, NULL);
	if (!ret && cu_check(g, e) != -1)
		ret = -EIO;
	return ret;
}

/* Long enough for VMS_GROWTH_CYCLES=1000 (the default run takes seconds). */
TEST_F_TIMEOUT(growth, swap_cycles_leak_no_fds_and_no_monitor_memory, 900)
{
	const char *env = getenv("VMS_GROWTH_CYCLES");
	int cycles = env ? atoi(env) : DEFAULT_CYCLES;
	pid_t mon = vms_controller_monitor_pid(self->ctl);
	struct usage before, after;
	int i;

	ASSERT_LT(WARMUP_CYCLES, cycles);
	for (i = 0; i < WARMUP_CYCLES; i++)
		ASSERT_EQ(0, cycle(self->ctl, &self->g, &self->e)) TH_LOG("cycle %d", i);
	ASSERT_EQ(0, measure(mon, &before));
	for (; i < cycles; i++)
		ASSERT_EQ(0, cycle(self->ctl, &self->g, &self->e)) TH_LOG("cycle %d", i);
	ASSERT_EQ(0, measure(mon, &after));
	TH_LOG("after %d and %d cycles: VMM fds %d -> %d, monitor fds %d -> %d, monitor "
	       "RssAnon %ld -> %ld kB",
	       WARMUP_CYCLES, cycles, before.vmm_fds, after.vmm_fds, before.mon_fds,
	       after.mon_fds, before.mon_rss_kb, after.mon_rss_kb);
	ASSERT_EQ(before.vmm_fds, after.vmm_fds);
	ASSERT_EQ(before.mon_fds, after.mon_fds);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/* The sanitizers' quarantine and shadow grow on their own; LSan checks leaks. */
	TH_LOG("RssAnon not compared under a sanitizer");
#else
	ASSERT_LE(after.mon_rss_kb, before.mon_rss_kb + RSS_SLACK_KB);
#endif
}

TEST_HARNESS_MAIN
