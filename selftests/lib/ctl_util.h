/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ctl_util.h - helpers for the controller / monitor selftests: a two-region guest
 * (one memfd, MAP_SHARED, an unmapped gap between the regions), crosvm's test data
 * layout (spec 7.1), launching the controller with SKIP detection, and waiting for a
 * state by bounded polling of Status.
 *
 * Nothing here uses the harness's ASSERT_* (some helpers run on other threads or in
 * child processes); everything returns 0 / -errno or a bool, except CU_SETUP(),
 * a macro for FIXTURE_SETUP bodies.
 */
#ifndef VMMSWAP_SELFTESTS_CTL_UTIL_H
#define VMMSWAP_SELFTESTS_CTL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include <vmmswap/controller.h>
#include <vmmswap/status.h>
#include <vmmswap/test_hooks.h>

/* A diagnostic line in TAP comment form, usable outside TEST bodies. */
#define cu_log(fmt, ...) fprintf(stderr, "# " fmt "\n", ##__VA_ARGS__)

#define CU_REGION_PAGES 1024 /* 4 MiB with 4 KiB pages: room for crosvm's layout */
#define CU_NREGIONS 2
#define CU_DEADLINE_MS 20000

struct cu_guest {
	int memfd;
	uint64_t region_len;
	uint8_t *resv; /* reservation holding both regions and the gaps */
	uint64_t resv_len;
	uint8_t *base[CU_NREGIONS];
	struct vms_region regions[CU_NREGIONS];
};

int cu_guest_create(struct cu_guest *g);
void cu_guest_destroy(struct cu_guest *g);
uint8_t *cu_page(const struct cu_guest *g, int region, uint64_t page);

/* Fill a whole page with the byte v / check that it holds only v. */
void cu_fill_page(uint8_t *p, uint8_t v);
bool cu_page_is(const uint8_t *p, uint8_t v);

/*
 * crosvm's controller-test data (tests/main.rs): in region r, page 0 = 1 + 4r,
 * page 1 = 2 + 4r, page 10 = 3 + 4r, pages 20 .. 20+767 (3 MiB) = 4 + 4r: 771
 * pages per region. expected[] lets tests change pages and keep the checker right.
 */
#define CU_DATA_PAGES_PER_REGION 771
struct cu_expect {
	uint8_t v[CU_NREGIONS][CU_REGION_PAGES];
	bool check[CU_NREGIONS][CU_REGION_PAGES]; /* cu_check() reads only these */
};
void cu_write_crosvm_data(const struct cu_guest *g, struct cu_expect *e);
void cu_set(const struct cu_guest *g, struct cu_expect *e, int region, uint64_t page,
	    uint8_t v);
/* Also check (i.e. read, and so fault in) this page: expected v. */
static inline void cu_expect_page(struct cu_expect *e, int region, uint64_t page, uint8_t v)
{
	e->v[region][page] = v;
	e->check[region][page] = true;
}
/* -1 when every checked page holds its expected byte, else the first bad (region << 32 | page). */
int64_t cu_check(const struct cu_guest *g, const struct cu_expect *e);
/* The same through pread on the memfd (does not fault). */
int64_t cu_check_memfd(const struct cu_guest *g, const struct cu_expect *e);

/*
 * Launch a controller over g with the swap file in dir (NULL: /tmp). Returns 0 or
 * -errno; cu_uffd_unavailable(err) says whether a test should SKIP.
 */
int cu_launch(const struct cu_guest *g, const char *dir, unsigned int flags,
	      struct vms_controller **ctl);
bool cu_uffd_unavailable(int err);
/* The same, taking fault_around_pages, the cleanup pacing and fault_cpu from extra. */
int cu_launch_opts(const struct cu_guest *g, const char *dir, unsigned int flags,
		   const struct vms_controller_opts *extra, struct vms_controller **ctl);

/*
 * The controller fixtures' setup: create the guest *g, then launch a controller over
 * it into *ctl with cu_launch_opts() (extra may be NULL); the test SKIPs without a
 * usable userfaultfd. It expands harness macros: use it after including
 * kselftest_harness.h. cu_teardown() undoes it (and is safe after a SKIP).
 */
#define CU_SETUP(g, dir, flags, extra, ctl)                                          \
	do {                                                                         \
		int __cu_r;                                                          \
									             \
		*(ctl) = NULL;                                                       \
		ASSERT_EQ(0, cu_guest_create(g));                                    \
		__cu_r = cu_launch_opts(g, dir, flags, extra, ctl);                  \
		if (cu_uffd_unavailable(__cu_r))                                     \
			SKIP(return, "userfaultfd unavailable: %s", strerror(-__cu_r)); \
		ASSERT_EQ(0, __cu_r);                                                \
	} while (0)
/* Exit the controller if *ctl is still set (then clear it), destroy the guest. */
void cu_teardown(struct cu_guest *g, struct vms_controller **ctl);

/* A request's result: its error, else 0 if the reply is Accepted, else -EPROTO. */
int cu_accepted(int ret, const struct vms_reply *r);
/*
 * Enable and swap out, both accepted, then wait for Active. 'held': the controller
 * runs with VMS_CTL_TEST_HOLD_JOBS, so release the swap-out job before waiting.
 */
int cu_enable_swap_out(struct vms_controller *ctl, bool held);

/* Poll Status until the state is 'state' (0) or the deadline passes (-ETIMEDOUT). */
int cu_wait_state(struct vms_controller *ctl, int state, int deadline_ms,
		  struct vms_swap_status *st);
/* The current state, or a negative errno. */
int cu_state(struct vms_controller *ctl);

uint64_t cu_now_ms(void);
/* Wait for a process to exit (pidfd), at most deadline_ms. 0, -ETIMEDOUT, -errno. */
int cu_wait_pid_exit(pid_t pid, int deadline_ms);
/* Read exactly one byte from fd within deadline_ms. */
int cu_read_byte(int fd, int deadline_ms, char *b);

/* Quiet the library's log below 'level' (tests that provoke warnings). */
void cu_quiet_log(void);

#endif /* VMMSWAP_SELFTESTS_CTL_UTIL_H */
