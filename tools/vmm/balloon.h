/* SPDX-License-Identifier: MIT */
/*
 * vmm/balloon.h - minivmm's balloon: discards guest RAM the guest gave up, the way
 * crosvm's main-process balloon path does, on a thread of its own.
 *
 * Contract:
 *  - minivm_balloon_request() hands one guest-physical run to the balloon thread and
 *    waits for it. The run must lie inside one RAM region (-EINVAL otherwise: the
 *    boot region and gaps are never discarded).
 *  - Inflate discards the run from the VMM's own mapping. MINIVM_BALLOON_REMOVE
 *    (default) uses MADV_REMOVE: the monitor sees UFFD_EVENT_REMOVE and forgets the
 *    pages. MINIVM_BALLOON_DONTNEED and MINIVM_BALLOON_PUNCH_HOLE exist to show why
 *    they are wrong for shmem guest RAM: MADV_DONTNEED sends REMOVE but leaves the
 *    data in the page cache; fallocate(PUNCH_HOLE) frees it but sends no event.
 *  - Deflate does nothing (the guest's next touch is a zero-fill fault), as in crosvm.
 *  - The discard runs on the balloon thread, never on the vCPU thread that touches
 *    the pages next: MADV_REMOVE blocks until the monitor has read the event.
 */
#ifndef MINIVM_BALLOON_H
#define MINIVM_BALLOON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/ram.h"

enum minivm_balloon_mode {
	MINIVM_BALLOON_REMOVE = 0,
	MINIVM_BALLOON_DONTNEED = 1,
	MINIVM_BALLOON_PUNCH_HOLE = 2,
};

struct minivm_balloon {
	const struct minivm_ram *ram;
	enum minivm_balloon_mode mode;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool quit;
	/* The one request in flight (requests are serialised by 'busy'). */
	bool busy, pending, done;
	uint32_t op;
	uint64_t gpa, len;
	int result;
	/* Totals, for reports. */
	uint64_t inflated_pages, deflated_pages;
};

int minivm_balloon_start(struct minivm_balloon *b, const struct minivm_ram *ram,
			 enum minivm_balloon_mode mode);
void minivm_balloon_stop(struct minivm_balloon *b);

/* op is enum mvm_balloon_op. 0, -EINVAL bad op or run, -ESHUTDOWN, or the discard's error. */
int minivm_balloon_request(struct minivm_balloon *b, uint32_t op, uint64_t gpa, uint64_t len);

/* "remove", "dontneed", "punch-hole"; parse returns -EINVAL for anything else. */
const char *minivm_balloon_mode_name(enum minivm_balloon_mode mode);
int minivm_balloon_mode_parse(const char *name, enum minivm_balloon_mode *mode);

#endif /* MINIVM_BALLOON_H */
