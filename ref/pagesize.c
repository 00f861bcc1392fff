// SPDX-License-Identifier: MIT
/*
 * pagesize.c - cached page shift and THP size (see vmmswap/pagesize.h).
 *
 * Both values are computed at most a few times (idempotently: every thread computes
 * the same value) and published with relaxed atomics, so no lock is needed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <vmmswap/pagesize.h>

static unsigned int cached_shift; /* 0: not computed yet */
static uint64_t cached_thp;

unsigned int vms_page_shift(void)
{
	unsigned int shift = __atomic_load_n(&cached_shift, __ATOMIC_RELAXED);
	long ps;

	if (shift)
		return shift;
	ps = sysconf(_SC_PAGESIZE);
	if (ps <= 0 || (ps & (ps - 1)))
		ps = 4096; /* cannot happen on Linux; keep the math defined */
	shift = (unsigned int)__builtin_ctzl((unsigned long)ps);
	__atomic_store_n(&cached_shift, shift, __ATOMIC_RELAXED);
	return shift;
}

uint64_t vms_thp_size(void)
{
	uint64_t thp = __atomic_load_n(&cached_thp, __ATOMIC_RELAXED);
	char buf[32];
	ssize_t n;
	int fd;

	if (thp)
		return thp;
	thp = VMS_THP_SIZE_FALLBACK;
	fd = open("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			unsigned long long v;

			buf[n] = '\0';
			v = strtoull(buf, NULL, 10);
			if (v >= vms_page_size() && !(v & (v - 1)))
				thp = v;
		}
	}
	__atomic_store_n(&cached_thp, thp, __ATOMIC_RELAXED);
	return thp;
}
