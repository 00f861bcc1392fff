/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/fault_server.h - the event-loop rule of page_handler.h, in one place:
 * serve what is pending on one uffd.
 *
 * vms_fs_serve() reads the uffd's events in batches until it is drained. Every
 * REMOVE is applied as soon as its batch is read, so each one is applied before
 * any fault of its batch or of a later one is served (the kernel hands out
 * pending faults ahead of older REMOVEs, and reading a REMOVE lets the remover
 * punch the page: a fault served before the REMOVE is applied could put the old
 * bytes back after the punch). Only once the uffd is drained are the faults
 * served: the new ones and those kept from earlier calls. A fault that gets
 * -EAGAIN (a REMOVE or another non-cooperative event is pending, or was just read
 * and its remover has not run again) is kept for the next call; while some are
 * kept, the caller must call again soon (poll the uffd with a short timeout,
 * see vms_fs_has_kept()), because the kernel's "mmap changing" flag drops only
 * when the remover resumes, which produces no event.
 *
 * Who serves: by default the page handler (vms_ph_fault / vms_ph_remove). With no
 * page handler (NULL: the monitor after disable, for faults queued before the
 * unregister) a fault only wakes its thread and a REMOVE is ignored. A benchmark
 * may put its own fill and remove in the options, so that a raw baseline runs the
 * same loop as the real path.
 *
 * Threads: one thread serves a given server at a time (the caller's event loop);
 * the counters may be read from any thread with __atomic loads.
 * Why the order matters: contract 3.10 and 5.6.3 (ref/CONTRACT.md), ref/TOUR.md race 2.
 */
#ifndef VMMSWAP_FAULT_SERVER_H
#define VMMSWAP_FAULT_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/userfaultfd.h>

struct vms_page_handler;

/* Most events one read() takes. */
#define VMS_FS_MAX_BATCH 64

struct vms_fault_server_opts {
	unsigned int batch; /* events per read(), 1..VMS_FS_MAX_BATCH; 0: the maximum */
	/* Serve a fault / apply a remove; NULL: the page handler's. 0 or -errno. */
	int (*fault)(void *arg, int uffd, uint64_t addr);
	int (*remove)(void *arg, uint64_t start, uint64_t end);
	/* Any other event (fork, remap, unmap); NULL: logged and ignored. */
	void (*other)(void *arg, const struct uffd_msg *msg);
	void *arg;
};

struct vms_fault_server {
	struct vms_page_handler *ph;
	int uffd;
	struct vms_fault_server_opts o;
	/* Faults to serve (kept after -EAGAIN, or collected), and a spare buffer so
	 * that serving allocates nothing in the steady state. */
	uint64_t *kept, *spare;
	size_t nkept, ckept, cspare;
	/*
	 * Counters (atomic): read() calls, events read, fault messages (a retry is
	 * not a new one), removes applied (counted once vms_ph_remove returned),
	 * serves that got -EAGAIN, and fault or remove errors.
	 */
	uint64_t reads, events, faults, removes, eagain, errors;
	int first_err; /* the first fault or remove error, 0 if none */
};

/* o may be NULL (defaults). Allocates nothing until the first fault. */
void vms_fs_init(struct vms_fault_server *s, struct vms_page_handler *ph, int uffd,
		 const struct vms_fault_server_opts *o);
void vms_fs_destroy(struct vms_fault_server *s);

/* Switch the page handler (enable / disable); the kept faults stay. */
static inline void vms_fs_set_handler(struct vms_fault_server *s, struct vms_page_handler *ph)
{
	s->ph = ph;
}

/*
 * Serve what is pending (see above). gate, if not NULL, is held while events are
 * read and removes applied (the monitor's swap-in chunks hold it, so no REMOVE is
 * read while a chunk could copy the page it removes). Returns 0; -ESRCH when the
 * uffd's process has exited (the faults not served are dropped); -ENOMEM when a
 * fault could not be kept (it is lost: its thread stays blocked, logged); or the
 * read error. Errors of single faults and removes are counted, not returned: the
 * page handler logged them and the faulting thread stays blocked.
 */
int vms_fs_serve(struct vms_fault_server *s, pthread_mutex_t *gate);

/* Faults wait for a retry: call vms_fs_serve() again soon, even with no event. */
static inline bool vms_fs_has_kept(const struct vms_fault_server *s)
{
	return s->nkept != 0;
}

#endif /* VMMSWAP_FAULT_SERVER_H */
