/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/freezer.h - stop every task of a set of processes and resume them.
 *
 * Used by the controller around enable, in the VMM process. vms_freeze():
 *  1. lists the processes (every descendant of the caller except 'exclude' and its
 *     subtree, found by a /proc scan of parent pids, so children of any thread count;
 *     or an explicit list);
 *  2. SIGSTOPs each one not stopped yet, and waits until every thread of every one
 *     is stopped: state 'T' or 't' in /proc/PID/task/TID/stat, or gone ('Z', 'X',
 *     vanished). A process that exits meanwhile is simply dropped;
 *  3. lists again; when new processes appeared (a fork raced with the freeze) it
 *     stops those too and repeats, until the list is stable;
 *  4. gives up after timeout_ms with -ETIMEDOUT (a task stuck in 'D', endless
 *     forking), resuming everything it stopped.
 * This is what crosvm b/331740397 needs: no thread of a frozen process is still
 * running (a kernel write into guest memory completing after the copy).
 * vms_thaw() SIGCONTs every process the freeze stopped, ignoring errors.
 * The caller's own threads are never stopped. Not thread-safe per struct.
 */
#ifndef VMMSWAP_FREEZER_H
#define VMMSWAP_FREEZER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VMS_FREEZE_DEFAULT_TIMEOUT_MS 5000

struct vms_freezer {
	pid_t *pids; /* stopped by us, sorted */
	size_t n, cap;
	unsigned int rounds; /* listing rounds the last freeze needed (>= 1) */
};

struct vms_freeze_opts {
	const pid_t *pids; /* NULL: descendants of getpid() */
	size_t npids;
	pid_t exclude;	/* with pids == NULL: skip this process and its subtree (0: none) */
	int timeout_ms; /* 0: VMS_FREEZE_DEFAULT_TIMEOUT_MS */
};

/* On error nothing stays stopped and fz is empty. */
int vms_freeze(struct vms_freezer *fz, const struct vms_freeze_opts *o);
/* Resume and forget; safe on a zeroed or already thawed struct. */
void vms_thaw(struct vms_freezer *fz);

/* Every descendant of root (not root), excluding 'exclude' and its subtree; sorted. */
int vms_proc_descendants(pid_t root, pid_t exclude, pid_t **out, size_t *n);

/*
 * The state letter and parent pid from the text of a /proc/.../stat file: the command
 * name sits in parentheses and may itself hold spaces and ')', so the fields start
 * after the *last* ')'. -EINVAL when the text has no such shape. ppid may be NULL.
 */
int vms_proc_parse_stat(const char *buf, size_t len, char *state, pid_t *ppid);

#endif /* VMMSWAP_FREEZER_H */
