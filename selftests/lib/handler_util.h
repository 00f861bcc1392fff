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

#include <vmmswap/fault_server.h>
#include <vmmswap/page_handler.h>
#include <vmmswap/test_hooks.h>
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
 * The event loop: the monitor's rule, from the library (vmmswap/fault_server.h):
 * every REMOVE applied before the faults read after it, faults that get -EAGAIN
 * kept and retried once the uffd is drained, polling with a 1 ms timeout while
 * some are kept. Any fault or remove error is the test's error.
 */
struct hu_loop {
	pthread_t thread;
	struct vms_page_handler *ph;
	int uffd;
	int stop_fd; /* eventfd */
	bool started;
	/* Counters (atomics): fs.faults, fs.removes (applied), fs.eagain, ... */
	struct vms_fault_server fs;
	int err; /* first unexpected error, 0 if none */
};

int hu_loop_start(struct hu_loop *l, struct vms_page_handler *ph, int uffd);
/*
 * Stop and join; returns the loop's first error, else hu_check_ph() of its
 * handler (0 if none). Idempotent.
 */
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

/* hu_thread bodies. hu_read_page: read one page's tag (may block in a fault). */
struct hu_reader {
	const uint8_t *page;
	pid_t tid; /* atomic: set when the thread runs, see hu_reader_tid() */
	uint64_t tag; /* hu_page_tag() of the page */
};

void *hu_read_page(void *arg);
/* The reader thread's tid, once it has started. */
pid_t hu_reader_tid(struct hu_reader *r);

/* hu_do_remove: madvise(MADV_REMOVE) of [addr, addr + len) (blocks until the
 * REMOVE event is read when the range is uffd-registered). */
struct hu_remover {
	uint8_t *addr;
	uint64_t len;
	int ret; /* 0 or -errno */
};

void *hu_do_remove(void *arg);

/* Wait until thread tid sleeps in a userfault (wchan), or at least sleeps. */
int hu_wait_blocked(pid_t tid, int deadline_ms);
/* The same for thread tid of another process pid. */
int hu_wait_task_blocked(pid_t pid, pid_t tid, int deadline_ms);
/* Wait until fd is readable (POLLIN). */
int hu_wait_readable(int fd, int deadline_ms);

uint64_t hu_now_ms(void);

/*
 * Racing a page-handler call against a race point (vms_ph_set_race_hook): run
 * op(arg) on a new thread and return once it finished or is waiting for ph's
 * state lock, whichever comes first. At a point where the hooked thread holds the
 * state lock the op waits and runs after the hook returns; elsewhere it runs to
 * the end at once. Either way the interleaving is fixed, with no timing involved.
 * hu_race_start: 1 op finished (r->ret is its result), 0 op waits behind the
 * lock, -ETIMEDOUT neither within HU_DEADLINE_MS. Always hu_race_join() after.
 */
struct hu_race {
	struct hu_thread t;
	int (*op)(void *arg);
	void *arg;
	int ret;
	int done; /* atomic */
};

int hu_race_start(struct hu_race *r, struct vms_page_handler *ph, int (*op)(void *), void *arg);
/* Join the op's thread; its result, or -ETIMEDOUT. */
int hu_race_join(struct hu_race *r);

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
/*
 * Stop the loop and tear everything down. Returns hu_loop_stop()'s error, else
 * hu_check() of the handler before it is destroyed: the fixture's teardown fails
 * the test on either.
 */
int hu_ctx_destroy(struct hu_ctx *c);

/*
 * The fixture every handler test file shares: a struct hu_ctx (self->c) whose uffd
 * setup creates (the test SKIPs without a usable userfaultfd) and teardown
 * destroys. A file that needs more in its fixture declares FIXTURE() itself and
 * calls HU_CTX_SETUP(&self->c) from its FIXTURE_SETUP. Both expand harness macros:
 * use them after including kselftest_harness.h.
 */
#define HU_CTX_SETUP(ctx)                                                            \
	do {                                                                         \
		int __hu_r;                                                          \
									             \
		hu_ctx_preinit(ctx);                                                 \
		__hu_r = hu_ctx_uffd(ctx);                                           \
		if (hu_uffd_unavailable(__hu_r))                                     \
			SKIP(return, "userfaultfd unavailable: %s", strerror(-__hu_r)); \
		ASSERT_EQ(0, __hu_r);                                                \
	} while (0)

#define HU_FIXTURE(name)                                                             \
	FIXTURE(name)                                                                \
	{                                                                            \
		struct hu_ctx c;                                                     \
	};                                                                           \
	FIXTURE_SETUP(name)                                                          \
	{                                                                            \
		HU_CTX_SETUP(&self->c);                                              \
	}                                                                            \
	FIXTURE_TEARDOWN(name)                                                       \
	{                                                                            \
		EXPECT_EQ(0, hu_ctx_destroy(&self->c));                              \
	}

/*
 * The consistency check after every step: vms_ph_check() (test_hooks.h), its
 * reason printed on stderr. 0, -EPROTO or the errno that stopped it. Takes the
 * job lock: not from a race hook that runs with it held. hu_check(c) checks c->ph
 * (0 if there is none yet); the helpers below call it too.
 */
int hu_check_ph(struct vms_page_handler *ph);
int hu_check(struct hu_ctx *c);

/*
 * vms_ph_metrics(), after hu_check_ph(): every field all-ones if either failed
 * (no test expects that), so every test that looks at the metrics after a step
 * also checks the handler's invariants there.
 */
struct vms_ph_metrics hu_metrics(struct vms_page_handler *ph);
/* Write pages [first, first + n) of a region through the alias with hu_tag(.., gen). */
void hu_tag_pages(struct hu_ctx *c, size_t region, uint64_t first, uint64_t n,
		  unsigned int gen);
/*
 * vms_ph_swap_out() in chunks of 'chunk' pages until it reports nothing staged,
 * then hu_check_ph().
 */
int hu_swap_out_all(struct vms_page_handler *ph, uint64_t chunk);
/*
 * vms_ph_swap_in() in chunks until it fills nothing; -EAGAIN (a REMOVE pending,
 * which c's loop will read) is retried until HU_DEADLINE_MS. Also checks the
 * contract of a 0-page chunk: -EPROTO if pages are still staged or swapped then,
 * and hu_check() at the end.
 */
int hu_swap_in_all(struct hu_ctx *c, uint64_t chunk);

#endif /* VMMSWAP_SELFTESTS_HANDLER_UTIL_H */
