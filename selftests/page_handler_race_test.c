// SPDX-License-Identifier: GPL-2.0-only
/*
 * page_handler_race_test - every place where the page handler reads or copies
 * without the state lock and commits under it, with a fault or a balloon REMOVE
 * forced into exactly that gap through a test-only race point
 * (vms_ph_set_race_hook): the move (copy, then mark and punch), trim (slot
 * compare), swap-out (file write), swap-in (file read) and the fault path (slot
 * read). Each test checks every page's contents afterwards and again after a full
 * swap cycle, so a page left in a wrong state shows up as wrong bytes.
 *
 * A fault here is a direct vms_ph_fault() call: that is what the event loop does
 * with a fault message it read earlier, which is how a fault reaches a page the
 * hooked job is working on even while every guest thread is frozen. A REMOVE is
 * vms_ph_remove() plus the punch the kernel does for MADV_REMOVE, in both orders
 * (the kernel punches once the event is read, which may be before or after the
 * monitor applies it).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <vmmswap/pagesize.h>

#include "kselftest_harness.h"
#include "lib/handler_util.h"

#define NPAGES 16
#define TARGET 5 /* the page raced on */

HU_FIXTURE(ph)

struct race {
	struct hu_ctx *c;
	enum vms_ph_race_point at;
	uint64_t page;	       /* region 0 page index == pgoff (one region) */
	int (*op)(void *arg);  /* run on another thread at the race point */
	int fired;	       /* atomic */
	int started;	       /* hu_race_start(): 1 ran through, 0 waited for the lock */
	struct hu_race hr;
	uint64_t want[NPAGES]; /* the model: each page's tag */
};

static void race_hook(void *arg, enum vms_ph_race_point at, uint64_t pgoff, uint64_t npages)
{
	struct race *x = arg;

	if (at != x->at || x->page < pgoff || x->page >= pgoff + npages)
		return;
	if (__atomic_exchange_n(&x->fired, 1, __ATOMIC_SEQ_CST))
		return;
	x->started = hu_race_start(&x->hr, x->c->ph, x->op, x);
}

static uint64_t target_addr(const struct race *x)
{
	return (uint64_t)(uintptr_t)hu_page(&x->c->g, 0, x->page);
}

/* The zap the kernel does for MADV_REMOVE on a shmem mapping. */
static int zap_page(const struct hu_ctx *c, uint64_t page)
{
	const struct hu_guest *g = &c->g;
	off_t off = (off_t)(g->regions[0].memfd_off + vms_pgoff_to_addr(page));

	if (fallocate(g->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
		      (off_t)vms_page_size()) < 0)
		return -errno;
	return 0;
}

static int zap(const struct race *x)
{
	return zap_page(x->c, x->page);
}

static int op_fault(void *arg)
{
	struct race *x = arg;

	return vms_ph_fault(x->c->ph, x->c->u.fd, target_addr(x));
}

/* A fault, then the guest writes new data into the page it got back. */
static int op_fault_write(void *arg)
{
	struct race *x = arg;
	int ret = op_fault(x);

	if (ret)
		return ret;
	x->want[x->page] = hu_tag(0, x->page, 7);
	hu_fill(hu_alias_page(&x->c->g, 0, x->page), x->want[x->page]);
	return 0;
}

static int op_remove(void *arg)
{
	struct race *x = arg;
	uint64_t a = target_addr(x);
	int ret = vms_ph_remove(x->c->ph, a, a + vms_page_size());

	x->want[x->page] = 0;
	return ret ? ret : zap(x);
}

static int op_zap_remove(void *arg)
{
	struct race *x = arg;
	uint64_t a = target_addr(x);
	int ret = zap(x);

	x->want[x->page] = 0;
	return ret ? ret : vms_ph_remove(x->c->ph, a, a + vms_page_size());
}

/* A REMOVE, then a swap-out that writes another page into the freed slot. */
static int op_remove_swap_out(void *arg)
{
	struct race *x = arg;
	int ret = op_remove(x);

	return ret ? ret : hu_swap_out_all(x->c->ph, 512);
}

static int op_swap_in(void *arg)
{
	struct race *x = arg;

	return hu_swap_in_all(x->c, 512);
}

static void race_init(struct race *x, struct hu_ctx *c, enum vms_ph_race_point at,
		      int (*op)(void *))
{
	uint64_t p;

	*x = (struct race){ .c = c, .at = at, .page = TARGET, .op = op };
	for (p = 0; p < NPAGES; p++)
		x->want[p] = hu_tag(0, p, 0);
}

/* Guest memory with every page tagged as in the model, the hook armed. */
static int setup(struct race *x)
{
	const uint64_t pages[] = { NPAGES };
	uint64_t p;
	int ret = hu_ctx_init(x->c, pages, 1, 0, NULL, true);

	if (ret)
		return ret;
	for (p = 0; p < NPAGES; p++)
		hu_fill(hu_alias_page(&x->c->g, 0, p), x->want[p]);
	vms_ph_set_race_hook(x->c->ph, race_hook, x);
	return 0;
}

/* The first page whose contents differ from the model, or -1. */
static int first_wrong(const struct race *x)
{
	uint64_t p;

	for (p = 0; p < NPAGES; p++)
		if (hu_page_tag(hu_page(&x->c->g, 0, p)) != x->want[p])
			return (int)p;
	return -1;
}

/* A whole swap cycle: the model must survive it too. */
static int cycle(struct race *x)
{
	int ret = vms_ph_move_all_to_staging(x->c->ph, NULL);

	if (!ret)
		ret = hu_check(x->c);
	if (!ret)
		ret = hu_swap_out_all(x->c->ph, 512);
	if (!ret)
		ret = hu_swap_in_all(x->c, 512);
	return ret;
}

/*
 * The race fired once; its op succeeded; the state it left is consistent, and
 * the contents are right, then and after a cycle.
 */
#define CHECK_RACE(x, expect_started)                                                    \
	do {                                                                             \
		ASSERT_EQ(1, (x)->fired);                                                \
		ASSERT_EQ(0, hu_race_join(&(x)->hr));                                    \
		vms_ph_set_race_hook((x)->c->ph, NULL, NULL);                            \
		ASSERT_EQ(0, hu_check((x)->c));                                          \
		ASSERT_EQ(-1, first_wrong(x));                                           \
		ASSERT_EQ(expect_started, (x)->started);                                 \
		ASSERT_EQ(0, cycle(x));                                                  \
		ASSERT_EQ(-1, first_wrong(x));                                           \
		ASSERT_EQ(0, hu_loop_stop(&(x)->c->loop));                               \
	} while (0)

/* ---- move: copy to staging (unlocked), then mark staged and punch (locked) ---- */

/*
 * The race of issue 11: a fault reaches a page the move has marked staged but not
 * punched yet. The page is still resident, so the fill fails with EEXIST; the
 * fault must not then drop the staged copy, or the punch leaves the page with no
 * copy anywhere and it reads as zero. The commit holds the state lock across the
 * punch, so the fault waits and then fills from staging.
 */
TEST_F(ph, move_fault_between_mark_and_punch_serves_the_staged_copy)
{
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_MOVE_COMMIT, op_fault);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	CHECK_RACE(&x, 0);
	ASSERT_EQ(0, hu_metrics(self->c.ph).zeroed_pages);
}

/* A fault while the window is being copied finds the page resident: nothing to do. */
TEST_F(ph, move_fault_during_copy_leaves_the_page_to_the_move)
{
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_MOVE_COPIED, op_fault);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	CHECK_RACE(&x, 1);
}

/*
 * A balloon REMOVE applied after the move copied the page: the copy in staging is
 * stale and must not be marked, or the page would read its old bytes instead of
 * zero.
 */
TEST_F(ph, move_remove_during_copy_reads_zero)
{
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_MOVE_COPIED, op_remove);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(NPAGES - 1, hu_metrics(self->c.ph).staging_pages);
	CHECK_RACE(&x, 1);
}

TEST_F(ph, move_zap_then_remove_during_copy_reads_zero)
{
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_MOVE_COPIED, op_zap_remove);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	CHECK_RACE(&x, 1);
}

TEST_F(ph, move_remove_between_mark_and_punch_reads_zero)
{
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_MOVE_COMMIT, op_remove);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	CHECK_RACE(&x, 0);
}

/*
 * The fault during the copy again, now with a second region moved after the first:
 * the fault must leave nothing behind that the next region's move acts on. (A move
 * that marks the window staged before copying it lets that fault fill the page and
 * queue its staging page for freeing; the commit marks the page staged again, the
 * second region's move frees the queued staging page, and the page reads zero.)
 */
TEST_F(ph, move_fault_during_copy_then_next_region_keeps_the_page)
{
	const uint64_t pages[] = { NPAGES, NPAGES };
	struct race x;
	uint64_t p;

	race_init(&x, &self->c, VMS_PH_AT_MOVE_COPIED, op_fault);
	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 2, 0, NULL, true));
	for (p = 0; p < NPAGES; p++) {
		hu_fill(hu_alias_page(&self->c.g, 0, p), x.want[p]);
		hu_fill(hu_alias_page(&self->c.g, 1, p), hu_tag(1, p, 0));
	}
	vms_ph_set_race_hook(self->c.ph, race_hook, &x); /* region 1 has other pgoffs */
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(2 * NPAGES, hu_metrics(self->c.ph).staging_pages);
	CHECK_RACE(&x, 1);
	for (p = 0; p < NPAGES; p++)
		ASSERT_EQ(hu_tag(1, p, 0), hu_page_tag(hu_page(&self->c.g, 1, p)));
}

/* ---- trim: compare staged pages with their CLEARED slots (unlocked) ---- */

/* Every page staged with a CLEARED slot holding the same bytes: all trimmable. */
static int trimmable(struct race *x)
{
	int ret = vms_ph_move_all_to_staging(x->c->ph, NULL);

	if (!ret)
		ret = hu_swap_out_all(x->c->ph, 512);
	if (!ret)
		ret = hu_swap_in_all(x->c, 512);
	if (!ret)
		ret = vms_ph_move_all_to_staging(x->c->ph, NULL);
	return ret ? ret : hu_check(x->c);
}

static int trim_all(struct race *x, uint64_t *trimmed)
{
	struct vms_ph_trim t;
	uint64_t n;
	int ret = 0;

	vms_ph_trim_init(&t);
	*trimmed = 0;
	while (!t.done && !ret) {
		ret = vms_ph_trim(x->c->ph, &t, NPAGES, &n);
		*trimmed += n;
	}
	return ret;
}

TEST_F(ph, trim_fault_and_write_during_compare_keeps_the_new_bytes)
{
	uint64_t trimmed;
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_TRIM_READ, NULL);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, trimmable(&x));
	x.op = op_fault_write;
	ASSERT_EQ(0, trim_all(&x, &trimmed));
	ASSERT_EQ(NPAGES - 1, trimmed);
	CHECK_RACE(&x, 1);
}

TEST_F(ph, trim_remove_during_compare_reads_zero)
{
	uint64_t trimmed;
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_TRIM_READ, NULL);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, trimmable(&x));
	x.op = op_remove;
	ASSERT_EQ(0, trim_all(&x, &trimmed));
	ASSERT_EQ(NPAGES - 1, trimmed);
	CHECK_RACE(&x, 1);
}

/* ---- swap-out: write staged pages to the file (unlocked) ---- */

TEST_F(ph, swap_out_fault_and_write_during_write_keeps_the_new_bytes)
{
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_SWAP_OUT_WRITTEN, op_fault_write);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	ASSERT_EQ(NPAGES - 1, hu_metrics(self->c.ph).swap_pages);
	CHECK_RACE(&x, 1);
}

TEST_F(ph, swap_out_remove_during_write_reads_zero)
{
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_SWAP_OUT_WRITTEN, op_remove);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	ASSERT_EQ(NPAGES - 1, hu_metrics(self->c.ph).swap_pages);
	CHECK_RACE(&x, 1);
}

#define RUN 4 /* the swap-out chunk of the next test */

/* A fault on every page of the first run [0, RUN). */
static int op_fault_run(void *arg)
{
	struct race *x = arg;
	uint64_t p;
	int ret = 0;

	for (p = 0; p < RUN && !ret; p++)
		ret = vms_ph_fault(x->c->ph, x->c->u.fd,
				   (uint64_t)(uintptr_t)hu_page(&x->c->g, 0, p));
	return ret;
}

/*
 * Every page of the run being written is faulted in meanwhile, so that run swaps
 * nothing out: the call must go on to the next run rather than report 0 pages,
 * which tells the caller that nothing is staged any more.
 */
TEST_F(ph, swap_out_run_emptied_by_faults_does_not_report_the_end)
{
	struct race x;
	uint64_t n = 0;

	race_init(&x, &self->c, VMS_PH_AT_SWAP_OUT_WRITTEN, op_fault_run);
	x.page = 0;
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, vms_ph_swap_out(self->c.ph, RUN, &n));
	ASSERT_EQ(RUN, n); /* the second run */
	ASSERT_EQ(NPAGES - 2 * RUN, hu_metrics(self->c.ph).staging_pages);
	ASSERT_EQ(0, hu_swap_out_all(self->c.ph, 512));
	ASSERT_EQ(NPAGES - RUN, hu_metrics(self->c.ph).swap_pages);
	CHECK_RACE(&x, 1);
}

/* ---- swap-in: read a run of slots (unlocked), copy what is still swapped ---- */

static int swapped_out(struct race *x)
{
	int ret = vms_ph_move_all_to_staging(x->c->ph, NULL);

	if (!ret)
		ret = hu_check(x->c);
	return ret ? ret : hu_swap_out_all(x->c->ph, 512);
}

TEST_F(ph, swap_in_fault_and_write_during_read_keeps_the_new_bytes)
{
	struct vms_ph_metrics m;
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_SWAP_IN_READ, op_fault_write);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, swapped_out(&x));
	ASSERT_EQ(0, hu_swap_in_all(&self->c, 512));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(NPAGES - 1, m.swap_in_pages);
	ASSERT_EQ(1, m.copied_from_file_pages);
	CHECK_RACE(&x, 1);
}

TEST_F(ph, swap_in_remove_during_read_reads_zero)
{
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_SWAP_IN_READ, op_remove);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, swapped_out(&x));
	ASSERT_EQ(0, hu_swap_in_all(&self->c, 512));
	ASSERT_EQ(NPAGES - 1, hu_metrics(self->c.ph).swap_in_pages);
	CHECK_RACE(&x, 1);
}

/* ---- fault: read the page's slot (unlocked), copy if it is still the slot ---- */

static int fault_target(struct race *x)
{
	return vms_ph_fault(x->c->ph, x->c->u.fd, target_addr(x));
}

TEST_F(ph, fault_remove_during_slot_read_reads_zero)
{
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_FAULT_READ, op_remove);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, swapped_out(&x));
	ASSERT_EQ(0, fault_target(&x));
	ASSERT_EQ(0, hu_metrics(self->c.ph).copied_from_file_pages);
	CHECK_RACE(&x, 1);
}

/*
 * The slot is freed by a REMOVE and at once reused by swap-out for another page:
 * the bytes the fault read belong to that page and must not be served.
 */
TEST_F(ph, fault_slot_reused_during_read_serves_zero_not_another_page)
{
	const uint64_t other = NPAGES - 1;
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_FAULT_READ, op_remove_swap_out);
	ASSERT_EQ(0, setup(&x));
	/* All but 'other' in slots 0..; 'other' staged without a slot. */
	ASSERT_EQ(0, zap_page(&self->c, other));
	ASSERT_EQ(0, swapped_out(&x));
	hu_fill(hu_alias_page(&self->c.g, 0, other), x.want[other]);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(1, hu_metrics(self->c.ph).staging_pages);
	ASSERT_EQ(0, fault_target(&x));
	/* The reuse happened: 'other' went to the freed slot, nothing grew. */
	ASSERT_EQ(NPAGES - 1, hu_metrics(self->c.ph).swap_pages);
	ASSERT_EQ(NPAGES - 1, hu_metrics(self->c.ph).swap_file_slots);
	CHECK_RACE(&x, 1);
}

/*
 * The slot is freed by a REMOVE and the file shrunk below it by a swap-out before
 * the fault reads it: the short read is the race, not an I/O error, and the page
 * (removed) reads zero.
 */
TEST_F(ph, fault_slot_truncated_during_read_is_not_an_error)
{
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_FAULT_READ, op_remove_swap_out);
	x.page = NPAGES - 1; /* the top slot */
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, swapped_out(&x));
	/* Page 0 back in and staged again with its CLEARED slot 0: swap-out reuses it. */
	ASSERT_EQ(x.want[0], hu_page_tag(hu_page(&self->c.g, 0, 0)));
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(0, fault_target(&x));
	ASSERT_EQ(NPAGES - 1, hu_metrics(self->c.ph).swap_file_slots);
	CHECK_RACE(&x, 1);
}

/*
 * As above, but the swap-out that shrinks the file reuses no slot: the page it
 * writes takes a lower free slot. Only the free of the top slot tells the fault
 * that its short read is the race, not an I/O error.
 */
TEST_F(ph, fault_slot_freed_and_truncated_without_reuse_is_not_an_error)
{
	const uint64_t low = 3;
	struct race x;
	uint64_t a;

	race_init(&x, &self->c, VMS_PH_AT_FAULT_READ, op_remove_swap_out);
	x.page = NPAGES - 1; /* the top slot */
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, swapped_out(&x));
	/* Page 'low' removed (its slot free) and written again: staged, no slot. */
	a = (uint64_t)(uintptr_t)hu_page(&self->c.g, 0, low);
	ASSERT_EQ(0, vms_ph_remove(self->c.ph, a, a + vms_page_size()));
	ASSERT_EQ(0, zap_page(&self->c, low));
	x.want[low] = hu_tag(0, low, 3);
	hu_fill(hu_alias_page(&self->c.g, 0, low), x.want[low]);
	ASSERT_EQ(0, vms_ph_move_all_to_staging(self->c.ph, NULL));
	ASSERT_EQ(1, hu_metrics(self->c.ph).staging_pages);
	ASSERT_EQ(0, fault_target(&x));
	/* 'low' went to its old slot, the top slot is gone and the file with it. */
	ASSERT_EQ(NPAGES - 1, hu_metrics(self->c.ph).swap_file_slots);
	CHECK_RACE(&x, 1);
}

/*
 * Found by make stress (a reader saw the previous round's bytes): after the fault
 * read the slot, the page is swapped in, rewritten, staged again, and swap-out
 * reuses its CLEARED slot for the new bytes, so the page is swapped again in the
 * same slot and no slot was freed. The bytes the fault holds are old: it must read
 * the slot again.
 */
static int op_rewrite_same_slot(void *arg)
{
	struct race *x = arg;
	int ret = hu_swap_in_all(x->c, 512);

	if (ret)
		return ret;
	x->want[x->page] = hu_tag(0, x->page, 7);
	hu_fill(hu_alias_page(&x->c->g, 0, x->page), x->want[x->page]);
	ret = vms_ph_move_all_to_staging(x->c->ph, NULL);
	return ret ? ret : hu_swap_out_all(x->c->ph, 512);
}

TEST_F(ph, fault_slot_rewritten_after_read_serves_the_new_bytes)
{
	struct vms_ph_metrics m;
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_FAULT_READ_DONE, op_rewrite_same_slot);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, swapped_out(&x));
	ASSERT_EQ(0, fault_target(&x));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(1, m.copied_from_file_pages);
	ASSERT_EQ(NPAGES, m.swap_file_slots); /* every slot reused, none freed */
	CHECK_RACE(&x, 1);
}

/* Swap-in fills the page while the fault reads its slot: the fault only wakes. */
TEST_F(ph, fault_swap_in_during_slot_read_keeps_the_page)
{
	struct vms_ph_metrics m;
	struct race x;

	race_init(&x, &self->c, VMS_PH_AT_FAULT_READ, op_swap_in);
	ASSERT_EQ(0, setup(&x));
	ASSERT_EQ(0, swapped_out(&x));
	ASSERT_EQ(0, fault_target(&x));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(NPAGES, m.swap_in_pages);
	ASSERT_EQ(0, m.copied_from_file_pages);
	CHECK_RACE(&x, 1);
}

TEST_HARNESS_MAIN
