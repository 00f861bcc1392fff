// SPDX-License-Identifier: GPL-2.0-only
/*
 * page_transitions_test - the page-state transition table of ref/page_transitions.c
 * (drawn in ref/pictures/page_states.svg, explained in contract 3.1, ref/CONTRACT.md)
 * is what the page handler does: for every row, a one-page guest is brought into
 * the row's "from" kind, the row's event is made to happen through the page
 * handler's API, and the kind it ends in, and the metric the row names, are
 * observed. With one page the kind is visible in the metrics: R resident_pages, S
 * staging_pages, F PRESENT swap_pages, F CLEARED a slot in use (swap_file_slots)
 * that is not PRESENT.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <vmmswap/page_transitions.h>
#include <vmmswap/pagesize.h>

#include "kselftest_harness.h"
#include "lib/handler_util.h"

/* The kind the one page is in, from the metrics; -1 for a combination that has none. */
static int kind_of(struct vms_page_handler *ph)
{
	struct vms_ph_metrics m = hu_metrics(ph);

	if (m.staging_pages == UINT64_MAX)
		return -1; /* the handler's own check failed */
	if (m.staging_pages)
		return m.resident_pages || m.swap_pages ? -1
		       : m.swap_file_slots	       ? VMS_PK_STAGED_CLEARED
						       : VMS_PK_STAGED;
	if (m.swap_pages)
		return m.resident_pages ? -1 : VMS_PK_SWAPPED;
	if (m.resident_pages)
		return m.swap_file_slots ? VMS_PK_RESIDENT_CLEARED : VMS_PK_RESIDENT;
	return m.swap_file_slots ? -1 : VMS_PK_EMPTY;
}

static uint8_t *page(struct hu_ctx *c)
{
	return hu_page(&c->g, 0, 0);
}

/* Write the page through the unregistered view: tagged bytes, or zeros. */
static void write_page(struct hu_ctx *c, bool zero)
{
	if (zero)
		memset(hu_alias_page(&c->g, 0, 0), 0, vms_page_size());
	else
		hu_tag_pages(c, 0, 0, 1, 1);
}

static int fault(struct hu_ctx *c)
{
	return vms_ph_fault(c->ph, c->u.fd, (uint64_t)(uintptr_t)page(c));
}

/* A balloon REMOVE: the monitor's part, then the punch the kernel does. */
static int remove_page(struct hu_ctx *c)
{
	uint64_t a = (uint64_t)(uintptr_t)page(c);
	int ret = vms_ph_remove(c->ph, a, a + vms_page_size());

	if (!ret && fallocate(c->g.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)c->g.regions[0].memfd_off, (off_t)vms_page_size()) < 0)
		ret = -errno;
	return ret;
}

static int trim(struct hu_ctx *c)
{
	struct vms_ph_trim t;
	int ret = 0;

	vms_ph_trim_init(&t);
	while (!t.done && !ret)
		ret = vms_ph_trim(c->ph, &t, VMS_PH_TRIM_BATCH_PAGES, NULL);
	return ret;
}

/*
 * Bring the page into kind k. zero: its bytes are zeros (for the zero trim); the
 * slot of a staged+slot page then holds the earlier, tagged bytes.
 */
static int reach(struct hu_ctx *c, int k, bool zero)
{
	int ret = 0;

	switch (k) {
	case VMS_PK_EMPTY:
		return 0;
	case VMS_PK_RESIDENT:
		write_page(c, zero);
		return 0;
	case VMS_PK_STAGED:
		ret = reach(c, VMS_PK_RESIDENT, zero);
		return ret ?: vms_ph_move_all_to_staging(c->ph, NULL);
	case VMS_PK_SWAPPED:
		ret = reach(c, VMS_PK_STAGED, false);
		return ret ?: hu_swap_out_all(c->ph, 512);
	case VMS_PK_RESIDENT_CLEARED:
		ret = reach(c, VMS_PK_SWAPPED, false);
		return ret ?: fault(c);
	case VMS_PK_STAGED_CLEARED:
		ret = reach(c, VMS_PK_RESIDENT_CLEARED, false);
		if (!ret && zero)
			write_page(c, true);
		return ret ?: vms_ph_move_all_to_staging(c->ph, NULL);
	}
	return -EINVAL;
}

static int happen(struct hu_ctx *c, int event)
{
	uint64_t n;

	switch (event) {
	case VMS_PE_MOVE:
		return vms_ph_move_all_to_staging(c->ph, NULL);
	case VMS_PE_FAULT:
		return fault(c);
	case VMS_PE_REMOVE:
		return remove_page(c);
	case VMS_PE_TRIM_ZERO:
	case VMS_PE_TRIM_CLEAN:
		return trim(c);
	case VMS_PE_SWAP_OUT:
		return vms_ph_swap_out(c->ph, 512, &n);
	case VMS_PE_SWAP_IN:
		return hu_swap_in_all(c, 512);
	}
	return -EINVAL;
}

static uint64_t counter(const struct vms_ph_metrics *m, const char *name)
{
	if (!name)
		return 0;
	if (!strcmp(name, "copied_from_staging_pages"))
		return m->copied_from_staging_pages;
	if (!strcmp(name, "copied_from_file_pages"))
		return m->copied_from_file_pages;
	if (!strcmp(name, "zeroed_pages"))
		return m->zeroed_pages;
	if (!strcmp(name, "redundant_pages"))
		return m->redundant_pages;
	return UINT64_MAX; /* a metric this test does not know: fails below */
}

FIXTURE(pt)
{
	struct hu_ctx c;
	bool live;
};

FIXTURE_SETUP(pt)
{
	hu_ctx_preinit(&self->c);
	self->live = false;
}

FIXTURE_TEARDOWN(pt)
{
	if (self->live)
		EXPECT_EQ(0, hu_ctx_destroy(&self->c));
}

/* A fresh one-page guest, uffd and handler. */
static int fresh(struct _test_data_pt *self)
{
	static const uint64_t pages[] = { 1 };
	int ret;

	if (self->live)
		hu_ctx_destroy(&self->c);
	hu_ctx_preinit(&self->c);
	ret = hu_ctx_uffd(&self->c);
	if (!ret)
		ret = hu_ctx_init(&self->c, pages, 1, 0, NULL, false);
	self->live = true;
	return ret;
}

TEST_F(pt, every_row_is_what_the_page_handler_does)
{
	const struct vms_page_transition *t;
	size_t n, i;

	t = vms_page_transitions(&n);
	for (i = 0; i < n; i++) {
		const struct vms_page_transition *r = &t[i];
		bool zero = r->event == VMS_PE_TRIM_ZERO;
		struct vms_ph_metrics before, after;
		int ret = fresh(self);
		char row[160];

		if (hu_uffd_unavailable(ret))
			SKIP(return, "userfaultfd unavailable: %s", strerror(-ret));
		ASSERT_EQ(0, ret);
		snprintf(row, sizeof(row), "row %zu: %s %s -> %s (%s)", i,
			 vms_page_kind_info(r->from)->name, vms_page_event_name(r->event),
			 vms_page_kind_info(r->to)->name, r->where);
		if (r->from == VMS_PK_UNTRACKED) {
			/* Enable: a new handler over the page as it is now. */
			struct vms_page_handler *ph;

			if (r->to == VMS_PK_RESIDENT)
				write_page(&self->c, false);
			ASSERT_EQ(0, hu_handler_create(&self->c.g, NULL, &ph));
			ret = kind_of(ph);
			vms_ph_destroy(ph);
			ASSERT_EQ(r->to, ret) TH_LOG("%s", row);
			continue;
		}
		ASSERT_EQ(0, reach(&self->c, r->from, zero)) TH_LOG("%s", row);
		ASSERT_EQ(r->from, kind_of(self->c.ph)) TH_LOG("%s", row);
		if (r->event == VMS_PE_DISABLE) {
			/* The state may go only when nothing needs bringing back. */
			before = hu_metrics(self->c.ph);
			ASSERT_EQ(0, before.staging_pages + before.swap_pages) TH_LOG("%s", row);
			ASSERT_EQ(VMS_PK_UNTRACKED, r->to) TH_LOG("%s", row);
			continue;
		}
		before = hu_metrics(self->c.ph);
		ASSERT_EQ(0, happen(&self->c, r->event)) TH_LOG("%s", row);
		after = hu_metrics(self->c.ph);
		ASSERT_EQ(r->to, kind_of(self->c.ph)) TH_LOG("%s", row);
		if (r->counts)
			ASSERT_EQ(counter(&before, r->counts) + 1, counter(&after, r->counts))
				TH_LOG("%s: %s", row, r->counts);
	}
}

TEST_HARNESS_MAIN
