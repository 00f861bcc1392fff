// SPDX-License-Identifier: GPL-2.0-only
/*
 * ctl_util.c - helpers for the controller / monitor selftests (ctl_util.h).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <vmmswap/clock.h>
#include <vmmswap/uffd.h>
#include <vmmswap/log.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/protocol.h>

#include "ctl_util.h"

uint64_t cu_now_ms(void)
{
	return (uint64_t)vms_now_ms();
}

int cu_guest_create(struct cu_guest *g)
{
	uint64_t ps = vms_page_size();

	memset(g, 0, sizeof(*g));
	g->region_len = CU_REGION_PAGES * ps;
	g->memfd = memfd_create("cu guest", MFD_CLOEXEC);
	if (g->memfd < 0)
		return -errno;
	if (ftruncate(g->memfd, (off_t)(CU_NREGIONS * g->region_len)))
		goto err;
	/* [gap][region 0][gap][region 1][gap] */
	g->resv_len = CU_NREGIONS * g->region_len + (CU_NREGIONS + 1) * ps;
	g->resv = mmap(NULL, g->resv_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->resv == MAP_FAILED)
		goto err;
	for (int r = 0; r < CU_NREGIONS; r++) {
		uint8_t *want = g->resv + ps + r * (g->region_len + ps);
		void *p = mmap(want, g->region_len, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_FIXED, g->memfd, (off_t)(r * g->region_len));

		if (p == MAP_FAILED)
			goto err;
		g->base[r] = p;
		g->regions[r] = (struct vms_region){ .addr = (uint64_t)(uintptr_t)p,
						     .len = g->region_len,
						     .memfd = g->memfd,
						     .memfd_off = r * g->region_len };
	}
	return 0;
err:
	{
		int ret = -errno;

		cu_guest_destroy(g);
		return ret;
	}
}

void cu_guest_destroy(struct cu_guest *g)
{
	if (g->resv && g->resv != MAP_FAILED)
		munmap(g->resv, g->resv_len);
	if (g->memfd > 0)
		close(g->memfd);
	memset(g, 0, sizeof(*g));
}

uint8_t *cu_page(const struct cu_guest *g, int region, uint64_t page)
{
	return g->base[region] + page * vms_page_size();
}

void cu_fill_page(uint8_t *p, uint8_t v)
{
	memset(p, v, vms_page_size());
}

bool cu_page_is(const uint8_t *p, uint8_t v)
{
	for (uint64_t i = 0; i < vms_page_size(); i++)
		if (p[i] != v)
			return false;
	return true;
}

void cu_set(const struct cu_guest *g, struct cu_expect *e, int region, uint64_t page,
	    uint8_t v)
{
	cu_fill_page(cu_page(g, region, page), v);
	cu_expect_page(e, region, page, v);
}

void cu_write_crosvm_data(const struct cu_guest *g, struct cu_expect *e)
{
	memset(e, 0, sizeof(*e));
	for (int r = 0; r < CU_NREGIONS; r++) {
		uint8_t b = (uint8_t)(4 * r);

		cu_set(g, e, r, 0, b + 1);
		cu_set(g, e, r, 1, b + 2);
		cu_set(g, e, r, 10, b + 3);
		for (uint64_t p = 20; p < 20 + 768; p++)
			cu_set(g, e, r, p, b + 4);
		cu_expect_page(e, r, 2, 0); /* never written: reads as zero */
	}
}

int64_t cu_check(const struct cu_guest *g, const struct cu_expect *e)
{
	for (int r = 0; r < CU_NREGIONS; r++)
		for (uint64_t p = 0; p < CU_REGION_PAGES; p++)
			if (e->check[r][p] && !cu_page_is(cu_page(g, r, p), e->v[r][p])) {
				cu_log("region %d page %llu: byte 0 is %u, want %u", r,
				       (unsigned long long)p, *cu_page(g, r, p), e->v[r][p]);
				return ((int64_t)r << 32) | (int64_t)p;
			}
	return -1;
}

int64_t cu_check_memfd(const struct cu_guest *g, const struct cu_expect *e)
{
	uint64_t ps = vms_page_size();
	uint8_t buf[65536];

	if (ps > sizeof(buf))
		return 0;
	for (int r = 0; r < CU_NREGIONS; r++)
		for (uint64_t p = 0; p < CU_REGION_PAGES; p++) {
			off_t off = (off_t)(r * g->region_len + p * ps);

			if (pread(g->memfd, buf, ps, off) != (ssize_t)ps ||
			    !cu_page_is(buf, e->v[r][p]))
				return ((int64_t)r << 32) | (int64_t)p;
		}
	return -1;
}

int cu_launch_opts(const struct cu_guest *g, const char *dir, unsigned int flags,
		   const struct vms_controller_opts *extra, struct vms_controller **ctl)
{
	struct vms_controller_opts o = {
		.regions = g->regions,
		.nregions = CU_NREGIONS,
		.swap_dir = dir ? dir : "/tmp",
		.reply_timeout_ms = CU_DEADLINE_MS,
		.flags = flags,
	};

	if (extra) {
		o.fault_around_pages = extra->fault_around_pages;
		o.cleanup_interval_ms = extra->cleanup_interval_ms;
		o.cleanup_step_bytes = extra->cleanup_step_bytes;
		o.fault_cpu = extra->fault_cpu;
	}
	return vms_controller_launch(&o, ctl);
}

int cu_launch(const struct cu_guest *g, const char *dir, unsigned int flags,
	      struct vms_controller **ctl)
{
	return cu_launch_opts(g, dir, flags, NULL, ctl);
}

void cu_teardown(struct cu_guest *g, struct vms_controller **ctl)
{
	if (*ctl)
		vms_controller_exit(*ctl);
	*ctl = NULL;
	cu_guest_destroy(g);
}

int cu_accepted(int ret, const struct vms_reply *r)
{
	if (ret)
		return ret;
	return r->result == VMS_REPLY_ACCEPTED ? 0 : -EPROTO;
}

int cu_enable_swap_out(struct vms_controller *ctl, bool held)
{
	struct vms_reply r;
	int ret = cu_accepted(vms_controller_enable(ctl, &r), &r);

	if (!ret)
		ret = cu_accepted(vms_controller_swap_out(ctl, &r), &r);
	if (!ret && held)
		ret = vms_controller_test_release_job(ctl);
	if (!ret)
		ret = cu_wait_state(ctl, VMS_SWAP_ACTIVE, CU_DEADLINE_MS, NULL);
	return ret;
}

bool cu_uffd_unavailable(int err)
{
	return vms_uffd_unavailable(err);
}

int cu_state(struct vms_controller *ctl)
{
	struct vms_swap_status st;
	int ret = vms_controller_status(ctl, &st);

	return ret ? ret : st.state;
}

int cu_wait_state(struct vms_controller *ctl, int state, int deadline_ms,
		  struct vms_swap_status *st)
{
	uint64_t end = cu_now_ms() + (uint64_t)deadline_ms;
	struct vms_swap_status s;

	for (unsigned int i = 0;; i++) {
		int ret = vms_controller_status(ctl, &s);

		if (ret)
			return ret;
		if (s.state == state) {
			if (st)
				*st = s;
			return 0;
		}
		if (cu_now_ms() > end)
			return -ETIMEDOUT;
		if (i > 100) {
			/* Bounded polling: back off a little after the first 100 tries. */
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
		}
	}
}

int cu_wait_pid_exit(pid_t pid, int deadline_ms)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0), r;
	struct pollfd p;

	if (fd < 0)
		return errno == ESRCH ? 0 : -errno;
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	r = poll(&p, 1, deadline_ms);
	close(fd);
	return r == 1 ? 0 : r == 0 ? -ETIMEDOUT : -errno;
}

int cu_read_byte(int fd, int deadline_ms, char *b)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, deadline_ms);

	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	r = (int)read(fd, b, 1);
	return r == 1 ? 0 : r == 0 ? -EPIPE : -errno;
}

void cu_quiet_log(void)
{
	vms_set_log_level(VMS_LOG_ERROR);
}
