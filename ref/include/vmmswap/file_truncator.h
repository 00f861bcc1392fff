/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/file_truncator.h - release a swap file's space gradually.
 *
 * Why: after a disable the swap file may hold gigabytes. Releasing them in one
 * ftruncate() causes a burst of filesystem metadata work (and discards) that competes
 * with whatever the host does next; disable with slow_file_cleanup spreads it out.
 *
 * Contract:
 *  - vms_truncator_start() takes ownership of an fd of the file (on success only) and
 *    starts one thread, the "truncator thread". On every tick it shrinks the file by
 *    step_bytes (st_size - step, at least 0) with ftruncate(); once the size is 0 the
 *    thread ends by itself. The first tick comes one interval after the start, so
 *    right after the start the file still has its full size.
 *  - Ticks come from a CLOCK_MONOTONIC timerfd repeating every interval_ms (crosvm:
 *    5 s, 64 MiB), or, when opts.tick_fd >= 0, from that fd: each time it is readable
 *    the thread reads 8 bytes from it (an eventfd written by a test, say) and takes
 *    exactly one step. The thread never owns tick_fd; it must outlive the truncator.
 *  - vms_truncator_stop() is the "kill" path: it stops the thread (waiting for at most
 *    the step in progress), truncates the file to 0 at once, and closes the fd or hands
 *    it back. It returns the first error the thread met or the final truncate's.
 *    Always frees t.
 *  - vms_truncator_info() and vms_truncator_wait() may be called from any thread
 *    while t exists; they take t's mutex, which the truncator thread holds only to
 *    publish a step's result (never across the ftruncate()).
 *  - Errors: 0 or a negative errno. A step that fails ends the thread and is
 *    remembered (info.err, and stop's result); the file then keeps its size until
 *    stop.
 *
 * Ownership in the monitor: the loop thread creates, queries and stops the truncator;
 * only the truncator thread truncates the file while it runs.
 */
#ifndef VMMSWAP_FILE_TRUNCATOR_H
#define VMMSWAP_FILE_TRUNCATOR_H

#include <stdbool.h>
#include <stdint.h>

#define VMS_TRUNC_DEFAULT_STEP_BYTES  (64ULL << 20)
#define VMS_TRUNC_DEFAULT_INTERVAL_MS 5000u

struct vms_truncator_opts {
	uint64_t step_bytes;	  /* 0: VMS_TRUNC_DEFAULT_STEP_BYTES */
	unsigned int interval_ms; /* 0: VMS_TRUNC_DEFAULT_INTERVAL_MS; unused with tick_fd */
	int tick_fd;		  /* -1: own timer; else one step per readable 8-byte read */
};

struct vms_truncator_info {
	uint64_t size;	/* st_size after the last step (at the start: the start size) */
	uint64_t alloc; /* likewise, allocated bytes (st_blocks * 512) */
	uint64_t ticks; /* steps taken */
	bool done;	/* the thread ended: size 0 reached, or an error */
	int err;	/* the first error, or 0 */
};

struct vms_truncator;

/* opts may be NULL (defaults, own timer). fd is taken over only when 0 is returned. */
int vms_truncator_start(int fd, const struct vms_truncator_opts *opts, struct vms_truncator **out);

/*
 * Stop now, truncate to 0, then close the fd (fd_out NULL) or hand it back in
 * *fd_out. t NULL: nothing to do, 0 (and *fd_out = -1).
 */
int vms_truncator_stop(struct vms_truncator *t, int *fd_out);

void vms_truncator_info(struct vms_truncator *t, struct vms_truncator_info *info);

/*
 * Wait until at least 'ticks' steps were taken or the thread ended, at most
 * timeout_ms (< 0: forever). 0 or -ETIMEDOUT. For tests and tools.
 */
int vms_truncator_wait(struct vms_truncator *t, uint64_t ticks, int timeout_ms);

#endif /* VMMSWAP_FILE_TRUNCATOR_H */
