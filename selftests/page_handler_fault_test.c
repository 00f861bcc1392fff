// SPDX-License-Identifier: GPL-2.0-only
/*
 * page_handler_fault_test - serving page faults: zero fill, from staging, from the
 * swap file, duplicated and concurrent faults, kernel-mode accesses, and a fault
 * that meets a pending REMOVE (spec 3.3, 7.2).
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

/* Pages written through the alias (a device view), then staged by a move. */
static int stage_tags(struct hu_ctx *c, size_t region, uint64_t first, uint64_t n)
{
	uint64_t moved = 0;
	int ret;

	hu_tag_pages(c, region, first, n, 0);
	ret = vms_ph_move_all_to_staging(c->ph, &moved);
	return ret ? ret : hu_check(c);
}

/* Unaligned addresses are rounded to their page (crosvm's zero test). */
TEST_F(ph, zero_fault_fills_zero_pages)
{
	const uint64_t pages[] = { 3 };
	uint64_t ps = vms_page_size(), base;
	struct vms_ph_metrics m;
	uint64_t p;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	base = self->c.g.regions[0].addr;
	ASSERT_EQ(0, vms_ph_fault(self->c.ph, self->c.u.fd, base));
	ASSERT_EQ(0, vms_ph_fault(self->c.ph, self->c.u.fd, base + ps + 1));
	ASSERT_EQ(0, vms_ph_fault(self->c.ph, self->c.u.fd, base + 3 * ps - 1));
	/* Filled without a loop running: a missing page would hang here. */
	for (p = 0; p < 3; p++)
		ASSERT_EQ(0, hu_page_tag(hu_page(&self->c.g, 0, p)));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(3, m.zeroed_pages);
	ASSERT_EQ(0, m.redundant_pages);
	ASSERT_EQ(3, m.resident_pages);
}

TEST_F(ph, fault_outside_every_region_fails)
{
	const uint64_t pages[] = { 3 };
	uint64_t base;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	base = self->c.g.regions[0].addr;
	ASSERT_EQ(-EFAULT, vms_ph_fault(self->c.ph, self->c.u.fd, base - 1));
	ASSERT_EQ(-EFAULT, vms_ph_fault(self->c.ph, self->c.u.fd, base + 3 * vms_page_size()));
	ASSERT_EQ(0, hu_metrics(self->c.ph).zeroed_pages);
	/* Still usable. */
	ASSERT_EQ(0, vms_ph_fault(self->c.ph, self->c.u.fd, base));
	ASSERT_EQ(0, hu_page_tag(hu_page(&self->c.g, 0, 0)));
}

/* Two faults for one page: the second finds it filled, wakes and counts redundant. */
TEST_F(ph, duplicated_fault_on_same_page_is_redundant)
{
	const uint64_t pages[] = { 3 };
	struct vms_ph_metrics m;
	uint64_t base;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	base = self->c.g.regions[0].addr;
	ASSERT_EQ(0, vms_ph_fault(self->c.ph, self->c.u.fd, base));
	ASSERT_EQ(0, vms_ph_fault(self->c.ph, self->c.u.fd, base + 1));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(1, m.zeroed_pages);
	ASSERT_EQ(1, m.redundant_pages);
	ASSERT_EQ(0, hu_page_tag(hu_page(&self->c.g, 0, 0)));
}

TEST_F(ph, fault_from_staging_restores_contents)
{
	const uint64_t pages[] = { 8 };
	struct vms_ph_metrics m;
	uint64_t p;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	ASSERT_EQ(0, stage_tags(&self->c, 0, 2, 4));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(4, m.staging_pages);
	ASSERT_EQ(0, m.resident_pages);
	for (p = 0; p < 8; p++)
		ASSERT_EQ(p >= 2 && p < 6 ? hu_tag(0, p, 0) : 0,
			  hu_page_tag(hu_page(&self->c.g, 0, p)));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(4, m.copied_from_staging_pages);
	ASSERT_EQ(4, m.zeroed_pages);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(8, m.resident_pages);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

TEST_F(ph, fault_from_swap_file_restores_contents)
{
	const uint64_t pages[] = { 8 };
	struct vms_ph_metrics m;
	uint64_t p, n;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	ASSERT_EQ(0, stage_tags(&self->c, 0, 1, 6));
	ASSERT_EQ(0, vms_ph_swap_out(self->c.ph, 512, &n));
	ASSERT_EQ(6, n);
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(6, m.swap_pages);
	for (p = 0; p < 8; p++)
		ASSERT_EQ(p >= 1 && p < 7 ? hu_tag(0, p, 0) : 0,
			  hu_page_tag(hu_page(&self->c.g, 0, p)));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(6, m.copied_from_file_pages);
	ASSERT_EQ(0, m.swap_pages); /* CLEARED slots are not counted */
	ASSERT_EQ(6, m.swap_file_slots); /* but kept for trim */
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/*
 * Both threads are blocked on the same staged page before the loop starts, so two
 * events are queued: one copy serves both, the other is redundant (woken).
 */
TEST_F(ph, two_threads_faulting_same_page_get_one_copy)
{
	const uint64_t pages[] = { 4 };
	struct hu_reader r[2] = { 0 };
	struct hu_thread t[2];
	struct vms_ph_metrics m;
	uint64_t faults;
	int i;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	ASSERT_EQ(0, stage_tags(&self->c, 0, 1, 1));
	for (i = 0; i < 2; i++) {
		r[i].page = hu_page(&self->c.g, 0, 1);
		ASSERT_EQ(0, hu_thread_start(&t[i], hu_read_page, &r[i]));
		ASSERT_EQ(0, hu_wait_blocked(hu_reader_tid(&r[i]), HU_DEADLINE_MS));
	}
	ASSERT_EQ(0, hu_loop_start(&self->c.loop, self->c.ph, self->c.u.fd));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, hu_thread_join(&t[i], HU_DEADLINE_MS));
		ASSERT_EQ(hu_tag(0, 1, 0), r[i].tag);
	}
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(1, m.copied_from_staging_pages);
	ASSERT_EQ(0, m.zeroed_pages);
	/*
	 * The copy's wake also releases a fault the loop has not read yet, and
	 * the kernel then drops that queued message. So every fault message the
	 * loop did read beyond the first is redundant, and nothing else is.
	 */
	faults = hu_loop_count(&self->c.loop.fs.faults);
	ASSERT_LE(1, faults);
	ASSERT_GE(2, faults);
	ASSERT_EQ(faults - 1, m.redundant_pages);
	if (faults == 1)
		TH_LOG("second fault message was absorbed by the first copy's wake");
}

/* read(2)/write(2) touch staged pages from kernel mode: served like user faults. */
TEST_F(ph, kernel_mode_access_to_staged_pages_is_served)
{
	const uint64_t pages[] = { 4 };
	uint64_t ps = vms_page_size();
	uint8_t *expect = malloc(ps), *got = malloc(ps);
	char msg[16] = "kernel-mode-ok!";
	int pfd[2];

	ASSERT_NE(NULL, expect);
	ASSERT_NE(NULL, got);
	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, true));
	ASSERT_EQ(0, stage_tags(&self->c, 0, 0, 2));
	ASSERT_EQ(0, pipe(pfd));
	/* The kernel writes 16 bytes into the middle of staged page 0. */
	ASSERT_EQ(16, write(pfd[1], msg, 16));
	ASSERT_EQ(16, read(pfd[0], hu_page(&self->c.g, 0, 0) + 100, 16));
	hu_fill(expect, hu_tag(0, 0, 0));
	memcpy(expect + 100, msg, 16);
	ASSERT_EQ(0, memcmp(expect, hu_page(&self->c.g, 0, 0), ps));
	/* The kernel reads staged page 1. */
	ASSERT_EQ((ssize_t)ps, write(pfd[1], hu_page(&self->c.g, 0, 1), ps));
	ASSERT_EQ((ssize_t)ps, read(pfd[0], got, ps));
	ASSERT_EQ(hu_tag(0, 1, 0), hu_page_tag(got));
	ASSERT_EQ(2, hu_metrics(self->c.ph).copied_from_staging_pages);
	close(pfd[0]);
	close(pfd[1]);
	free(expect);
	free(got);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

/*
 * While a REMOVE is queued on the uffd the fill ioctls fail with EAGAIN: the
 * handler returns -EAGAIN and changes nothing, and the same fault succeeds once
 * the events were read (crosvm panics here, spec 9.4).
 */
TEST_F(ph, fault_with_pending_remove_returns_eagain_state_unchanged)
{
	const uint64_t pages[] = { 4 };
	struct hu_remover rm;
	struct hu_thread t;
	struct vms_ph_metrics m;

	ASSERT_EQ(0, hu_ctx_init(&self->c, pages, 1, 0, NULL, false));
	ASSERT_EQ(0, stage_tags(&self->c, 0, 0, 2));
	/* Make page 3 resident, then queue a REMOVE for it with nobody reading yet
	 * (deliberately: the loop starts below and releases the remover). */
	ASSERT_EQ(0, vms_ph_fault(self->c.ph, self->c.u.fd, self->c.g.regions[0].addr +
							    3 * vms_page_size()));
	rm = (struct hu_remover){ .addr = hu_page(&self->c.g, 0, 3), .len = vms_page_size() };
	ASSERT_EQ(0, hu_thread_start(&t, hu_do_remove, &rm));
	ASSERT_EQ(0, hu_wait_readable(self->c.u.fd, HU_DEADLINE_MS));

	ASSERT_EQ(-EAGAIN, vms_ph_fault(self->c.ph, self->c.u.fd, self->c.g.regions[0].addr));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(2, m.staging_pages);
	ASSERT_EQ(0, m.copied_from_staging_pages);

	ASSERT_EQ(0, hu_loop_start(&self->c.loop, self->c.ph, self->c.u.fd));
	ASSERT_EQ(0, hu_thread_join(&t, HU_DEADLINE_MS));
	ASSERT_EQ(0, rm.ret);
	ASSERT_EQ(hu_tag(0, 0, 0), hu_page_tag(hu_page(&self->c.g, 0, 0)));
	ASSERT_EQ(hu_tag(0, 1, 0), hu_page_tag(hu_page(&self->c.g, 0, 1)));
	ASSERT_EQ(0, hu_page_tag(hu_page(&self->c.g, 0, 3)));
	m = hu_metrics(self->c.ph);
	ASSERT_EQ(2, m.copied_from_staging_pages);
	ASSERT_EQ(0, m.staging_pages);
	ASSERT_EQ(0, hu_loop_stop(&self->c.loop));
}

TEST_HARNESS_MAIN
