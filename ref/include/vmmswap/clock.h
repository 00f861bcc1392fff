/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/clock.h - the one monotonic clock of the library: deadlines, job
 * durations, benchmark timing. CLOCK_MONOTONIC cannot fail with these arguments.
 */
#ifndef VMMSWAP_CLOCK_H
#define VMMSWAP_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t vms_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline int64_t vms_now_ms(void)
{
	return (int64_t)(vms_now_ns() / 1000000);
}

#endif /* VMMSWAP_CLOCK_H */
