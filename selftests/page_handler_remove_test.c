// SPDX-License-Identifier: GPL-2.0-only
/*
 * page_handler_remove_test - UFFD_EVENT_REMOVE (a balloon's MADV_REMOVE) in every
 * page state, across regions, and racing page faults (spec 3.4, 5.6, 9.4), with
 * the event loop's two rules forced: a batch's REMOVEs before its faults, and a
 * fault refused with EAGAIN kept until the next read.
 * Every removed page must read as zero afterwards and free its staging page and
 * swap slot; pages outside the range keep their contents.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vmmswap/pagesize.h>

#include "kselftest_harness.h"
#include "lib/handler_util.h"

HU_FIXTURE(ph)

static int remove_pages(struct hu_ctx *c, size_t region, uint64_t first, uint64_t n)
{
	return madvise(hu_page(&c->g, region, first), n * vms_page_size(), MADV_REMOVE) ?
		       -errno : 0;
}

/*
 * Remove, then wait until the loop applied it (the madvise returns on the read),
 * and check the handler's invariants.
 */
static int remove_applied(struct hu_ctx *c, size_t region, uint64_t first, uint64_t n)
{
	uint64_t before = hu_loop_count(&c->loop.fs.removes);
	int ret = remove_pages(c, region, first, n);

	if (!ret)
		ret = hu_loop_wait_removes(&c->loop, before + 1, HU_DEADLINE_MS);
	return ret ? ret : hu_check(c);
}

/* crosvm's handle_page_remove_success. */
TEST_F(ph, remove_of_resident_page_reads_zero)
{
	const uint64_t pages[] = { 3 };
	uint8_t *p0;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	p0 = hu_page(&self->c.g, 0, 0);
	hu_fill(p0, hu_tag(0, 0, 1));
	ASSERT_EQ(hu_tag(0, 0, 1), hu_page_tag(p0));
	ASSERT_EQ(0, remove_pages(&self->c, 0, 0, 1));
	ASSERT_EQ(0, hu_page_tag(p0));
	ASSERT_EQ(1, hu_loop_count(&self->c.loop.fs.removes));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/* crosvm's handle_page_remove_invalid_address, plus ranges outside the regions. */
TEST_F(ph, remove_with_misaligned_or_foreign_range_fails)
{
	const uint64_t pages[] = { 3 };
	uint64_t ps = vms_page_size(), base;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	hu_tag_pages(&self->c, 0, 0, 3, 0);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	base = self->c.g.regions[0].addr;
	ASSERT_EQ(-EINVAL, vms_ph_remove(self->c.ph, base + 1, base + ps));
	ASSERT_EQ(-EINVAL, vms_ph_remove(self->c.ph, base, base + ps + 1));
	ASSERT_EQ(-EFAULT, vms_ph_remove(self->c.ph, base - ps, base + ps));
	ASSERT_EQ(-EFAULT, vms_ph_remove(self->c.ph, base + 2 * ps, base + 4 * ps));
	/* A rejected range changed nothing. */
	ASSERT_EQ(3, hu_metrics(self->c.ph).staging_pages);
	ASSERT_EQ(0, vms_ph_remove(self->c.ph, base, base + 3 * ps));
	ASSERT_EQ(0, hu_metrics(self->c.ph).staging_pages);
	ASSERT_EQ(0, hu_page_tag(hu_page(&self->c.g, 0, 0)));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

TEST_F(ph, remove_of_staged_page_reads_zero)
{
	const uint64_t pages[] = { 4 };
	struct vms_ph_metrics m;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	hu_tag_pages(&self->c, 0, 0, 4, 0);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, remove_applied(&self->c, 0, 1, 2));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(2, m.staging_pages);
	ASSERT_EQ(hu_tag(0, 0, 0), hu_page_tag(hu_page(&self->c.g, 0, 0)));
	ASSERT_EQ(0, hu_page_tag(hu_page(&self->c.g, 0, 1)));
	ASSERT_EQ(0, hu_page_tag(hu_page(&self->c.g, 0, 2)));
	ASSERT_EQ(hu_tag(0, 3, 0), hu_page_tag(hu_page(&self->c.g, 0, 3)));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(2, m.copied_from_staging_pages);
	ASSERT_EQ(2, m.zeroed_pages);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

TEST_F(ph, remove_of_swapped_page_reads_zero)
{
	const uint64_t pages[] = { 4 };
	struct vms_ph_metrics m;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	hu_tag_pages(&self->c, 0, 0, 4, 0);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	ASSERT_EQ(0, remove_applied(&self->c, 0, 2, 2));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(2, m.swap_pages);
	ASSERT_EQ(2, m.swap_file_slots); /* the top slots were freed: the file shrank */
	ASSERT_EQ(hu_tag(0, 0, 0), hu_page_tag(hu_page(&self->c.g, 0, 0)));
	ASSERT_EQ(hu_tag(0, 1, 0), hu_page_tag(hu_page(&self->c.g, 0, 1)));
	ASSERT_EQ(0, hu_page_tag(hu_page(&self->c.g, 0, 2)));
	ASSERT_EQ(0, hu_page_tag(hu_page(&self->c.g, 0, 3)));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(2, m.copied_from_file_pages);
	ASSERT_EQ(2, m.zeroed_pages);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/* Staged with a CLEARED slot: swapped out, faulted back, rewritten, staged again. */
TEST_F(ph, remove_of_staged_and_cleared_page_reads_zero)
{
	const uint64_t pages[] = { 4 };
	struct vms_ph_trim t;
	struct vms_ph_metrics m;
	uint64_t p;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	hu_tag_pages(&self->c, 0, 0, 4, 0);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	for (p = 0; p < 4; p++) {
		ASSERT_EQ(hu_tag(0, p, 0), hu_page_tag(hu_page(&self->c.g, 0, p)));
		hu_fill(hu_page(&self->c.g, 0, p), hu_tag(0, p, 1));
	}
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(4, m.staging_pages);
	ASSERT_EQ(0, m.swap_pages);
	ASSERT_EQ(4, m.swap_file_slots);
	ASSERT_EQ(0, remove_applied(&self->c, 0, 0, 4));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(0, m.swap_file_slots); /* CLEARED slots freed too */
	vms_ph_trim_init(&t);
	ASSERT_EQ(0, vms_ph_trim(self->c.ph, &t, 1024, NULL));
	ASSERT_EQ(0, t.clean_pages);
	for (p = 0; p < 4; p++)
		ASSERT_EQ(0, hu_page_tag(hu_page(&self->c.g, 0, p)));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

TEST_F(ph, remove_of_empty_page_reads_zero)
{
	const uint64_t pages[] = { 4 };

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	ASSERT_EQ(0, remove_pages(&self->c, 0, 0, 4));
	ASSERT_EQ(0, hu_page_tag(hu_page(&self->c.g, 0, 1)));
	ASSERT_EQ(1, hu_metrics(self->c.ph).zeroed_pages);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/* One madvise over two adjacent regions; vms_ph_remove over both in one call. */
TEST_F(ph, remove_spanning_two_regions_forgets_both)
{
	const uint64_t pages[] = { 4, 4 };
	uint64_t ps = vms_page_size(), p;
	struct vms_ph_metrics m;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 2, 0, NULL, true));
	ASSERT_EQ(self->c.g.regions[0].addr + 4 * ps, self->c.g.regions[1].addr);
	hu_tag_pages(&self->c, 0, 0, 4, 0);
	hu_tag_pages(&self->c, 1, 0, 4, 0);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	/* Region 0 pages 2,3 swapped; region 1 pages 0,1 staged. */
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	for (p = 0; p < 4; p++) {
		ASSERT_EQ(hu_tag(1, p, 0), hu_page_tag(hu_page(&self->c.g, 1, p)));
		hu_fill(hu_page(&self->c.g, 1, p), hu_tag(1, p, 1));
	}
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(4, m.swap_pages);
	ASSERT_EQ(4, m.staging_pages);

	ASSERT_EQ(0, madvise(hu_page(&self->c.g, 0, 2), 4 * ps, MADV_REMOVE));
	/* One REMOVE per VMA; the two mappings may have been merged into one VMA, so
	 * wait for the state itself (bounded). */
	ASSERT_EQ(0, hu_loop_wait_removes(&self->c.loop, 1, HU_DEADLINE_MS));
	for (uint64_t end = hu_now_ms() + HU_DEADLINE_MS; hu_now_ms() < end;) {
		m = hu_metrics(self->c.ph);
		if (m.swap_pages == 2 && m.staging_pages == 2)
			break;
		sched_yield();
	}
	ASSERT_EQ(2, m.swap_pages);
	ASSERT_EQ(2, m.staging_pages);
	ASSERT_EQ(0, vms_ph_remove(self->c.ph, self->c.g.regions[0].addr + 3 * ps,
				   self->c.g.regions[1].addr + 3 * ps));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(2, m.swap_pages);
	ASSERT_EQ(1, m.staging_pages);
	for (p = 0; p < 4; p++) {
		ASSERT_EQ(p < 2 ? hu_tag(0, p, 0) : 0, hu_page_tag(hu_page(&self->c.g, 0, p)));
		ASSERT_EQ(p == 3 ? hu_tag(1, p, 1) : 0, hu_page_tag(hu_page(&self->c.g, 1, p)));
	}
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/*
 * A REMOVE is queued, then a fault on the same page. The kernel hands out the
 * fault first; the REMOVE still wins: the reader sees zero, never the staged data.
 */
TEST_F(ph, remove_wins_over_fault_queued_after_it)
{
	const uint64_t pages[] = { 4 };
	struct hu_remover rm;
	struct hu_reader rd = { 0 };
	struct hu_thread trm, trd;
	struct vms_ph_metrics m;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	hu_tag_pages(&self->c, 0, 0, 4, 0);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	/* Queue both events before anyone reads (the loop starts below). */
	rm = (struct hu_remover){ .addr = hu_page(&self->c.g, 0, 1), .len = vms_page_size() };
	ASSERT_EQ(0, hu_thread_start(&trm, hu_do_remove, &rm));
	ASSERT_EQ(0, hu_wait_readable(self->c.u.fd, HU_DEADLINE_MS));
	rd.page = hu_page(&self->c.g, 0, 1);
	ASSERT_EQ(0, hu_thread_start(&trd, hu_read_page, &rd));
	ASSERT_EQ(0, hu_wait_blocked(hu_reader_tid(&rd), HU_DEADLINE_MS));

	ASSERT_EQ(0, hu_loop_start(&self->c.loop, self->c.ph, self->c.u.fd));
	ASSERT_EQ(0, hu_thread_join(&trm, HU_DEADLINE_MS));
	ASSERT_EQ(0, hu_thread_join(&trd, HU_DEADLINE_MS));
	ASSERT_EQ(0, rm.ret);
	ASSERT_EQ(0, rd.tag);
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(0, m.copied_from_staging_pages);
	ASSERT_EQ(3, m.staging_pages);
	TH_LOG("faults deferred by EAGAIN: %llu",
	       (unsigned long long)hu_loop_count(&self->c.loop.fs.eagain));
	ASSERT_EQ(hu_tag(0, 2, 0), hu_page_tag(hu_page(&self->c.g, 0, 2)));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/* The fault of the next test: served only once the remover's madvise returned. */
struct late_fault {
	struct hu_ctx *c;
	struct hu_thread *remover;
	int waited; /* hu_wait_readable() on the remover's done_fd */
};

static int fault_after_the_remover(void *arg, int uffd, uint64_t addr)
{
	struct late_fault *lf = arg;

	lf->waited = hu_wait_readable(lf->remover->done_fd, HU_DEADLINE_MS);
	return vms_ph_fault(lf->c->ph, uffd, addr);
}

/*
 * The same two events, and now the remover runs to its end (the kernel has
 * punched the page) before the fault is served, so no EAGAIN stands in the way
 * of the fill: only the order of the event loop keeps the old bytes out. Every
 * REMOVE of a batch must be applied before any fault of that batch is served.
 */
TEST_F(ph, remove_read_with_a_fault_is_applied_before_the_fault_is_served)
{
	const uint64_t pages[] = { 4 };
	struct vms_fault_server_opts o = { .fault = fault_after_the_remover };
	struct late_fault lf = { .c = &self->c };
	struct hu_reader rd = { 0 };
	struct vms_fault_server fs;
	struct hu_thread trm, trd;
	struct hu_remover rm;
	uint64_t end;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	hu_tag_pages(&self->c, 0, 0, 4, 0);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	rm = (struct hu_remover){ .addr = hu_page(&self->c.g, 0, 1), .len = vms_page_size() };
	ASSERT_EQ(0, hu_thread_start(&trm, hu_do_remove, &rm));
	ASSERT_EQ(0, hu_wait_readable(self->c.u.fd, HU_DEADLINE_MS));
	rd.page = hu_page(&self->c.g, 0, 1);
	ASSERT_EQ(0, hu_thread_start(&trd, hu_read_page, &rd));
	ASSERT_EQ(0, hu_wait_blocked(hu_reader_tid(&rd), HU_DEADLINE_MS));

	/* An event loop of our own: the library's rule with the late fault. */
	lf.remover = &trm;
	o.arg = &lf;
	vms_fs_init(&fs, self->c.ph, self->c.u.fd, &o);
	for (end = hu_now_ms() + HU_DEADLINE_MS; hu_now_ms() < end;) {
		ASSERT_EQ(0, vms_fs_serve(&fs, NULL));
		if (!hu_wait_readable(trd.done_fd, 1))
			break;
	}
	vms_fs_destroy(&fs);
	ASSERT_EQ(0, hu_thread_join(&trm, HU_DEADLINE_MS));
	ASSERT_EQ(0, hu_thread_join(&trd, HU_DEADLINE_MS));
	ASSERT_EQ(0, lf.waited);
	ASSERT_EQ(0, rm.ret);
	ASSERT_EQ(0, rd.tag);
	ASSERT_EQ(0, hu_page_tag(hu_page(&self->c.g, 0, 1)));
	ASSERT_EQ(0, hu_metrics(self->c.ph).copied_from_staging_pages);
	ASSERT_EQ(3, hu_metrics(self->c.ph).staging_pages);
}

/* The fault of the next test: its first fill meets a REMOVE queued just before. */
struct refused_fault {
	struct hu_ctx *c;
	struct vms_fault_server *fs;
	struct hu_remover rm;
	struct hu_thread trm;
	bool started;
	int calls;
	int early; /* calls again before the REMOVE was applied */
	int err;
};

static int fault_behind_a_remove(void *arg, int uffd, uint64_t addr)
{
	struct refused_fault *rf = arg;

	rf->calls++;
	if (!rf->started) {
		/* Queue a REMOVE of page 3 (nobody reads it yet): this fill gets EAGAIN. */
		rf->started = true;
		rf->rm = (struct hu_remover){ .addr = hu_page(&rf->c->g, 0, 3),
					      .len = vms_page_size() };
		rf->err = hu_thread_start(&rf->trm, hu_do_remove, &rf->rm);
		if (!rf->err)
			rf->err = hu_wait_readable(uffd, HU_DEADLINE_MS);
	} else if (!hu_loop_count(&rf->fs->removes) && ++rf->early >= 100) {
		return -EIO; /* retried on and on without reading the REMOVE: stop it */
	}
	return vms_ph_fault(rf->c->ph, uffd, addr);
}

/*
 * A fault whose fill gets EAGAIN because a REMOVE arrived after the uffd was
 * drained must be kept, and retried only after the next read took that REMOVE:
 * not dropped as an error (the faulting thread would hang; crosvm dies here,
 * spec 9.4), and not retried at once in a loop that never reads the REMOVE (the
 * remover, and so the EAGAIN, would never end).
 */
TEST_F(ph, fault_refused_by_a_later_remove_is_kept_and_retried_after_it)
{
	const uint64_t pages[] = { 4 };
	struct vms_fault_server_opts o = { .fault = fault_behind_a_remove };
	struct refused_fault rf = { .c = &self->c };
	struct hu_reader rd = { 0 };
	struct vms_fault_server fs;
	struct hu_thread trd;
	uint64_t end;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	hu_tag_pages(&self->c, 0, 0, 4, 0);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	rd.page = hu_page(&self->c.g, 0, 0);
	ASSERT_EQ(0, hu_thread_start(&trd, hu_read_page, &rd));
	ASSERT_EQ(0, hu_wait_blocked(hu_reader_tid(&rd), HU_DEADLINE_MS));

	rf.fs = &fs;
	o.arg = &rf;
	vms_fs_init(&fs, self->c.ph, self->c.u.fd, &o);
	for (end = hu_now_ms() + HU_DEADLINE_MS; hu_now_ms() < end;) {
		ASSERT_EQ(0, vms_fs_serve(&fs, NULL));
		if (hu_loop_count(&fs.errors) || !hu_wait_readable(trd.done_fd, 1))
			break;
	}
	ASSERT_EQ(0, hu_loop_count(&fs.errors));
	ASSERT_EQ(0, hu_thread_join(&trd, HU_DEADLINE_MS));
	ASSERT_TRUE(rf.started);
	ASSERT_EQ(0, hu_thread_join(&rf.trm, HU_DEADLINE_MS));
	ASSERT_EQ(0, rf.err);
	ASSERT_EQ(0, rf.rm.ret);
	ASSERT_EQ(0, rf.early);
	ASSERT_EQ(0, hu_loop_count(&fs.errors));
	ASSERT_LE(1, hu_loop_count(&fs.eagain));
	ASSERT_EQ(1, hu_loop_count(&fs.removes));
	vms_fs_destroy(&fs);
	ASSERT_EQ(hu_tag(0, 0, 0), rd.tag);
	ASSERT_EQ(0, hu_page_tag(hu_alias_page(&self->c.g, 0, 3))); /* punched */
	ASSERT_EQ(2, hu_metrics(self->c.ph).staging_pages); /* 1 and 2 */
}

#define STORM_PAGES 256
#define STORM_ROUNDS 50

struct storm {
	struct hu_ctx *c;
	uint8_t removed[STORM_PAGES]; /* atomic: page p was removed at least once */
	int ret;
	int bad; /* reader: pages that showed stale data */
	int torn; /* reader: reads that raced a discard */
	bool stop; /* atomic */
};

static void *storm_remover(void *arg)
{
	struct storm *s = arg;
	uint64_t p;
	int r;

	/* Page by page from the top while the reader faults from the bottom, then whole
	 * range storms. */
	for (p = STORM_PAGES; p-- > 0;) {
		if (remove_pages(s->c, 0, p, 1)) {
			s->ret = -errno;
			return NULL;
		}
		__atomic_store_n(&s->removed[p], 1, __ATOMIC_RELEASE);
	}
	for (r = 0; r < STORM_ROUNDS; r++)
		if (remove_pages(s->c, 0, 0, STORM_PAGES)) {
			s->ret = -errno;
			return NULL;
		}
	return NULL;
}

static void *storm_reader(void *arg)
{
	struct storm *s = arg;
	uint64_t p;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		for (p = 0; p < STORM_PAGES; p++) {
			bool was_removed = __atomic_load_n(&s->removed[p], __ATOMIC_ACQUIRE);
			uint64_t tag = hu_page_tag(hu_page(&s->c->g, 0, p));

			/* A read racing the first discard of p may see it half old, half
			 * zero (the kernel zaps mid-read): torn, counted, allowed. Once p
			 * was removed, only zeros may show. */
			if (tag == HU_TAG_BAD && !was_removed)
				s->torn++;
			else if (tag != 0 && (was_removed || tag != hu_tag(0, p, 0)))
				s->bad++;
		}
	}
	return NULL;
}

/*
 * MADV_REMOVE storms on one thread while another faults on the same uffd: fills
 * hit EAGAIN and are retried after the removes; nothing hangs, and once a page
 * was removed it never shows its old data again (crosvm dies here, spec 9.4).
 */
TEST_F(ph, remove_storm_during_faults_never_shows_stale_data)
{
	const uint64_t pages[] = { STORM_PAGES };
	struct storm *s = calloc(1, sizeof(*s));
	struct hu_thread tr, tf;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	hu_tag_pages(&self->c, 0, 0, STORM_PAGES, 0);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	s->c = &self->c;
	ASSERT_EQ(0, hu_thread_start(&tf, storm_reader, s));
	ASSERT_EQ(0, hu_thread_start(&tr, storm_remover, s));
	ASSERT_EQ(0, hu_thread_join(&tr, 4 * HU_DEADLINE_MS));
	__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
	ASSERT_EQ(0, hu_thread_join(&tf, HU_DEADLINE_MS));
	ASSERT_EQ(0, s->ret);
	ASSERT_EQ(0, s->bad);
	ASSERT_EQ(0, hu_metrics(self->c.ph).staging_pages);
	ASSERT_EQ(0, hu_page_tag(hu_page(&self->c.g, 0, 7)));
	TH_LOG("torn reads %d, faults %llu, removes %llu, EAGAIN retries %llu", s->torn,
	       (unsigned long long)hu_loop_count(&self->c.loop.fs.faults),
	       (unsigned long long)hu_loop_count(&self->c.loop.fs.removes),
	       (unsigned long long)hu_loop_count(&self->c.loop.fs.eagain));
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
	free(s);
}

TEST_HARNESS_MAIN
