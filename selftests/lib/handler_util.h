/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * handler_util.h - helpers for the page-handler selftests: guest memory laid out
 * as memfd regions, a uffd, an event-loop thread that drives the page handler the
 * way the monitor will, per-page content patterns and small thread helpers.
 *
 * Every helper takes its state explicitly; nothing uses the harness's ASSERT_*
 * (some run on helper threads); they return 0 / -errno.
 *
 * Hazard: a thread that MADV_REMOVEs a uffd-registered range blocks until someone
 * reads the REMOVE event. Start the event loop (hu_loop_start) before any such
 * madvise, except in a test that deliberately queues events before reading them.
 */
#ifndef VMMSWAP_SELFTESTS_HANDLER_UTIL_H
#define VMMSWAP_SELFTESTS_HANDLER_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <vmmswap/page_handler.h>
#include <vmmswap/uffd.h>

#define HU_MAX_REGIONS 4
#define HU_DEADLINE_MS 10000

/* hu_guest_create() layout flags. */
#define HU_GAP 0x1u /* an unmapped page between regions (address space only) */
#define HU_REVERSED 0x2u /* region i+1 below region i in the address space */
#define HU_THP_ALIGN 0x4u /* regions start on THP-aligned addresses */

/*
 * Guest memory: one memfd; region i is memfd range [off_i, off_i + len_i) (the
 * regions are consecutive in the memfd), mapped MAP_SHARED at base[i]. 'alias' maps
 * the whole memfd once more, unregistered: a "device" view that never faults.
 */
struct hu_guest {
	int memfd;
	uint64_t len; /* memfd size */
	size_t nregions;
	struct vms_ph_region regions[HU_MAX_REGIONS];
	uint8_t *base[HU_MAX_REGIONS];
	uint8_t *alias;
	uint8_t *resv; /* address-space reservation holding the region mappings */
	uint64_t resv_len;
};

int hu_guest_create(struct hu_guest *g, const uint64_t *region_pages, size_t nregions,
		    unsigned int flags);
void hu_guest_destroy(struct hu_guest *g);
/* Address of page 'page' of region 'region' (registered view / alias view). */
uint8_t *hu_page(const struct hu_guest *g, size_t region, uint64_t page);
uint8_t *hu_alias_page(const struct hu_guest *g, size_t region, uint64_t page);

/*
 * Create a uffd with UFFD_FEATURE_EVENT_REMOVE (kernel-mode faults allowed) and
 * register every region in MISSING mode. -EPERM/-EACCES/-ENOENT/-ENOSYS: no usable
 * userfaultfd here; the caller SKIPs (hu_uffd_unavailable()).
 */
int hu_uffd_create(struct vms_uffd *u);
int hu_uffd_register(const struct vms_uffd *u, const struct hu_guest *g);
bool hu_uffd_unavailable(int err);

/* A page handler over g's regions with its swap file in dir (NULL: $TMPDIR, /tmp). */
int hu_handler_create(const struct hu_guest *g, const char *dir,
		      struct vms_page_handler **ph);

/*
 * The event loop: reads events in batches; in each batch first every REMOVE ->
 * vms_ph_remove, then every PAGEFAULT -> vms_ph_fault (see page_handler.h for why
 * that order). A fault that returns -EAGAIN is kept and retried only once the
 * uffd has no pending event (so the removes queued before it were applied); while
 * some are kept the loop polls with a 1 ms timeout, because the kernel's
 * "mmap changing" flag drops only when the remover resumes after the read.
 */
struct hu_loop {
	pthread_t thread;
	struct vms_page_handler *ph;
	int uffd;
	int stop_fd; /* eventfd */
	bool started;
	/* Atomics, updated by the loop thread. */
	uint64_t faults;
	uint64_t removes;
	uint64_t removes_applied; /* vms_ph_remove() returned */
	uint64_t eagain; /* faults that returned -EAGAIN (then retried) */
	int err; /* first unexpected error, 0 if none */
};

int hu_loop_start(struct hu_loop *l, struct vms_page_handler *ph, int uffd);
/* Stop and join; returns the loop's first error (0 if none). Idempotent. */
int hu_loop_stop(struct hu_loop *l);
/*
 * A madvise(MADV_REMOVE) returns once the loop has *read* the event; wait until it
 * has also applied n removes in total before looking at the handler's state.
 */
int hu_loop_wait_removes(const struct hu_loop *l, uint64_t n, int deadline_ms);
static inline uint64_t hu_loop_count(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/*
 * Page contents: tag != 0 gives a page whose every 8-byte word depends on the tag
 * and the word's index. hu_page_tag() returns the tag of a page filled that way, 0
 * for an all-zero page and HU_TAG_BAD for anything else (torn, stale mix, ...).
 */
#define HU_TAG_BAD UINT64_MAX
void hu_fill(void *page, uint64_t tag);
uint64_t hu_page_tag(const void *page);
/* A distinct tag for (region, page, generation). */
static inline uint64_t hu_tag(size_t region, uint64_t page, unsigned int gen)
{
	return ((uint64_t)(region + 1) << 40) | ((uint64_t)gen << 32) | (page + 1);
}

/* Threads with a deadline: run fn(arg) on a new thread; join within deadline_ms. */
struct hu_thread {
	pthread_t t;
	void *(*fn)(void *);
	void *arg;
	int done_fd; /* eventfd written when fn returned */
	void *ret;
};

int hu_thread_start(struct hu_thread *t, void *(*fn)(void *), void *arg);
/* 0 when the thread finished and was joined; -ETIMEDOUT when it still runs. */
int hu_thread_join(struct hu_thread *t, int deadline_ms);

/* Wait until thread tid sleeps in a userfault (wchan), or at least sleeps. */
int hu_wait_blocked(pid_t tid, int deadline_ms);
/* Wait until fd is readable (POLLIN). */
int hu_wait_readable(int fd, int deadline_ms);

uint64_t hu_now_ms(void);

/* Everything a handler test needs, created in order and torn down in reverse. */
struct hu_ctx {
	struct hu_guest g;
	struct vms_uffd u;
	struct vms_page_handler *ph;
	struct hu_loop loop;
};

/* Set the fields so that hu_ctx_destroy() is safe before anything was created. */
void hu_ctx_preinit(struct hu_ctx *c);
/* Create the uffd only: lets a fixture SKIP early (hu_uffd_unavailable()). */
int hu_ctx_uffd(struct hu_ctx *c);
/* Guest memory, registration, handler (swap file in dir) and, if 'loop', the loop. */
int hu_ctx_init(struct hu_ctx *c, const uint64_t *region_pages, size_t nregions,
		unsigned int flags, const char *dir, bool loop);
void hu_ctx_destroy(struct hu_ctx *c);

#endif /* VMMSWAP_SELFTESTS_HANDLER_UTIL_H */
