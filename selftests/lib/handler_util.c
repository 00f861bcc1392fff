// SPDX-License-Identifier: GPL-2.0-only
/*
 * handler_util.c - page-handler selftest helpers (see handler_util.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <vmmswap/clock.h>
#include <vmmswap/pagesize.h>

#include "handler_util.h"

uint64_t hu_now_ms(void)
{
	return (uint64_t)vms_now_ms();
}

/* ---- guest memory ---- */

int hu_guest_create(struct hu_guest *g, const uint64_t *region_pages, size_t nregions,
		    unsigned int flags)
{
	uint64_t ps = vms_page_size(), thp = vms_thp_size(), gap, align, off = 0, cur;
	size_t i;
	int ret;

	memset(g, 0, sizeof(*g));
	g->memfd = -1;
	if (!nregions || nregions > HU_MAX_REGIONS)
		return -EINVAL;
	for (i = 0; i < nregions; i++)
		g->len += region_pages[i] * ps;
	g->nregions = nregions;
	g->memfd = memfd_create("hu-guest", MFD_CLOEXEC);
	if (g->memfd < 0)
		return -errno;
	if (ftruncate(g->memfd, (off_t)g->len) < 0)
		goto err_errno;
	g->alias = mmap(NULL, g->len, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
	if (g->alias == MAP_FAILED) {
		g->alias = NULL;
		goto err_errno;
	}
	gap = (flags & HU_GAP) ? ps : 0;
	align = (flags & HU_THP_ALIGN) ? thp : ps;
	/* Room for every region, its gap and its alignment slack. */
	g->resv_len = g->len + nregions * (gap + align) + align;
	g->resv = mmap(NULL, g->resv_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (g->resv == MAP_FAILED) {
		g->resv = NULL;
		goto err_errno;
	}
	/* Lay the regions out upwards, or downwards with HU_REVERSED. */
	cur = (uint64_t)(uintptr_t)g->resv;
	if (flags & HU_REVERSED)
		cur += g->resv_len;
	for (i = 0; i < nregions; i++) {
		uint64_t len = region_pages[i] * ps, addr;
		void *p;

		if (flags & HU_REVERSED) {
			addr = (cur - len) & ~(align - 1);
			cur = addr - gap;
		} else {
			addr = (cur + align - 1) & ~(align - 1);
			cur = addr + len + gap;
		}
		p = mmap((void *)(uintptr_t)addr, len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, g->memfd, (off_t)off);
		if (p == MAP_FAILED)
			goto err_errno;
		g->base[i] = p;
		g->regions[i] = (struct vms_ph_region){
			.addr = addr, .len = len, .memfd = g->memfd, .memfd_off = off
		};
		off += len;
	}
	return 0;
err_errno:
	ret = -errno;
	hu_guest_destroy(g);
	return ret;
}

void hu_guest_destroy(struct hu_guest *g)
{
	if (g->resv)
		munmap(g->resv, g->resv_len);
	if (g->alias)
		munmap(g->alias, g->len);
	if (g->memfd >= 0)
		close(g->memfd);
	memset(g, 0, sizeof(*g));
	g->memfd = -1;
}

uint8_t *hu_page(const struct hu_guest *g, size_t region, uint64_t page)
{
	return g->base[region] + vms_pgoff_to_addr(page);
}

uint8_t *hu_alias_page(const struct hu_guest *g, size_t region, uint64_t page)
{
	return g->alias + g->regions[region].memfd_off + vms_pgoff_to_addr(page);
}

/* ---- uffd and handler ---- */

bool hu_uffd_unavailable(int err)
{
	return vms_uffd_unavailable(err);
}

int hu_uffd_create(struct vms_uffd *u)
{
	return vms_uffd_create(u, UFFD_FEATURE_EVENT_REMOVE, 0);
}

int hu_uffd_register(const struct vms_uffd *u, const struct hu_guest *g)
{
	size_t i;
	int ret;

	for (i = 0; i < g->nregions; i++) {
		ret = vms_uffd_register(u->fd, g->regions[i].addr, g->regions[i].len,
					UFFDIO_REGISTER_MODE_MISSING, VMS_UFFD_MISSING_IOCTLS,
					NULL);
		if (ret)
			return ret;
	}
	return 0;
}

int hu_handler_create(const struct hu_guest *g, const char *dir,
		      struct vms_page_handler **ph)
{
	struct vms_ph_config cfg = {
		.regions = g->regions,
		.nregions = g->nregions,
		.swap_dir = dir,
	};

	if (!cfg.swap_dir)
		cfg.swap_dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	return vms_ph_create(&cfg, ph);
}

/* ---- event loop ---- */

static void loop_error(struct hu_loop *l, int err)
{
	int zero = 0;

	__atomic_compare_exchange_n(&l->err, &zero, err, false, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
}

static void *loop_main(void *arg)
{
	struct hu_loop *l = arg;
	int ret;

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = l->uffd, .events = POLLIN },
			{ .fd = l->stop_fd, .events = POLLIN },
		};

		if (poll(pfd, 2, vms_fs_has_kept(&l->fs) ? 1 : -1) < 0 && errno != EINTR) {
			loop_error(l, -errno);
			break;
		}
		if (pfd[1].revents)
			break;
		ret = vms_fs_serve(&l->fs, NULL);
		if (ret)
			loop_error(l, ret);
		if (l->fs.first_err)
			loop_error(l, l->fs.first_err);
	}
	return NULL;
}

int hu_loop_start(struct hu_loop *l, struct vms_page_handler *ph, int uffd)
{
	int ret;

	memset(l, 0, sizeof(*l));
	l->ph = ph;
	l->uffd = uffd;
	vms_fs_init(&l->fs, ph, uffd, NULL);
	l->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (l->stop_fd < 0)
		return -errno;
	ret = pthread_create(&l->thread, NULL, loop_main, l);
	if (ret) {
		close(l->stop_fd);
		return -ret;
	}
	l->started = true;
	return 0;
}

int hu_loop_stop(struct hu_loop *l)
{
	uint64_t one = 1;
	int ret;

	if (!l->started)
		return __atomic_load_n(&l->err, __ATOMIC_RELAXED);
	if (write(l->stop_fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	pthread_join(l->thread, NULL);
	close(l->stop_fd);
	vms_fs_destroy(&l->fs);
	l->started = false;
	ret = __atomic_load_n(&l->err, __ATOMIC_RELAXED);
	/* No fault in flight any more: the state the loop left must be consistent. */
	return ret ? ret : hu_check_ph(l->ph);
}

/* ---- patterns ---- */

static uint64_t pattern_word(uint64_t tag, uint64_t i)
{
	uint64_t x = tag * 0x9e3779b97f4a7c15ULL + i * 0xbf58476d1ce4e5b9ULL;

	x ^= x >> 31;
	return x | 1; /* never zero: a zero word means "not this pattern" */
}

void hu_fill(void *page, uint64_t tag)
{
	uint64_t *w = page, i, n = vms_page_size() / sizeof(*w);

	/* Word 0 is the tag itself, so hu_page_tag() can find it. */
	w[0] = tag;
	for (i = 1; i < n; i++)
		w[i] = tag ? pattern_word(tag, i) : 0;
}

uint64_t hu_page_tag(const void *page)
{
	const volatile uint64_t *w = page;
	uint64_t i, n = vms_page_size() / sizeof(*w), tag = w[0];

	for (i = 1; i < n; i++)
		if (w[i] != (tag ? pattern_word(tag, i) : 0))
			return HU_TAG_BAD;
	return tag;
}

/* ---- threads ---- */

static void *thread_tramp(void *arg)
{
	struct hu_thread *t = arg;
	uint64_t one = 1;

	t->ret = t->fn(t->arg);
	if (write(t->done_fd, &one, sizeof(one)) != sizeof(one))
		abort();
	return NULL;
}

int hu_thread_start(struct hu_thread *t, void *(*fn)(void *), void *arg)
{
	int ret;

	t->fn = fn;
	t->arg = arg;
	t->ret = NULL;
	t->done_fd = eventfd(0, EFD_CLOEXEC);
	if (t->done_fd < 0)
		return -errno;
	ret = pthread_create(&t->t, NULL, thread_tramp, t);
	if (ret) {
		close(t->done_fd);
		return -ret;
	}
	return 0;
}

int hu_thread_join(struct hu_thread *t, int deadline_ms)
{
	int ret = hu_wait_readable(t->done_fd, deadline_ms);

	if (ret)
		return ret;
	pthread_join(t->t, NULL);
	close(t->done_fd);
	return 0;
}

static void *race_tramp(void *arg)
{
	struct hu_race *r = arg;

	r->ret = r->op(r->arg);
	__atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

int hu_race_start(struct hu_race *r, struct vms_page_handler *ph, int (*op)(void *), void *arg)
{
	uint64_t end = hu_now_ms() + HU_DEADLINE_MS;
	int ret;

	r->op = op;
	r->arg = arg;
	r->ret = 0;
	r->done = 0;
	ret = hu_thread_start(&r->t, race_tramp, r);
	if (ret)
		return ret;
	/* Condition polling, not a sleep: both conditions are states, not times. */
	for (;;) {
		if (__atomic_load_n(&r->done, __ATOMIC_SEQ_CST))
			return 1;
		if (vms_ph_lock_waiters(ph))
			return 0;
		if (hu_now_ms() > end)
			return -ETIMEDOUT;
		sched_yield();
	}
}

int hu_race_join(struct hu_race *r)
{
	int ret = hu_thread_join(&r->t, HU_DEADLINE_MS);

	return ret ? ret : r->ret;
}

void *hu_read_page(void *arg)
{
	struct hu_reader *r = arg;

	__atomic_store_n(&r->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	r->tag = hu_page_tag(r->page);
	return NULL;
}

pid_t hu_reader_tid(struct hu_reader *r)
{
	pid_t tid;

	while (!(tid = __atomic_load_n(&r->tid, __ATOMIC_ACQUIRE)))
		sched_yield();
	return tid;
}

void *hu_do_remove(void *arg)
{
	struct hu_remover *rm = arg;

	rm->ret = madvise(rm->addr, rm->len, MADV_REMOVE) ? -errno : 0;
	return NULL;
}

int hu_wait_readable(int fd, int deadline_ms)
{
	uint64_t end = hu_now_ms() + (uint64_t)deadline_ms;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = hu_now_ms();
		int r;

		if (now >= end)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)(end - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static bool stat_sleeping(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the name may contain ')' */
	return p && p[1] == ' ' && (p[2] == 'S' || p[2] == 'D');
}

int hu_wait_blocked(pid_t tid, int deadline_ms)
{
	return hu_wait_task_blocked(getpid(), tid, deadline_ms);
}

int hu_wait_task_blocked(pid_t pid, pid_t tid, int deadline_ms)
{
	uint64_t end = hu_now_ms() + (uint64_t)deadline_ms;
	char path[64], buf[512];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", (int)pid, (int)tid);
	while (hu_now_ms() < end) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = -1;

		if (fd >= 0) {
			n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
		}
		if (n > 0) {
			buf[n] = '\0';
			if (strstr(buf, "userfault"))
				return 0;
			if (!strcmp(buf, "0") && stat_sleeping(pid, tid))
				return 0; /* wchan hidden: sleeping is the best we can see */
		}
		sched_yield();
	}
	return -ETIMEDOUT;
}

/* ---- test context ---- */

void hu_ctx_preinit(struct hu_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->g.memfd = -1;
	c->u.fd = -1;
}

int hu_ctx_uffd(struct hu_ctx *c)
{
	return hu_uffd_create(&c->u);
}

int hu_ctx_init(struct hu_ctx *c, const uint64_t *region_pages, size_t nregions,
		unsigned int flags, const char *dir, bool loop)
{
	int ret;

	ret = hu_guest_create(&c->g, region_pages, nregions, flags);
	if (!ret)
		ret = hu_uffd_register(&c->u, &c->g);
	if (!ret)
		ret = hu_handler_create(&c->g, dir, &c->ph);
	if (!ret && loop)
		ret = hu_loop_start(&c->loop, c->ph, c->u.fd);
	return ret;
}

int hu_ctx_destroy(struct hu_ctx *c)
{
	int ret = hu_loop_stop(&c->loop);

	/* Also when there was no loop, or the test stopped it before its last step. */
	if (!ret)
		ret = hu_check(c);
	vms_ph_destroy(c->ph);
	c->ph = NULL;
	vms_uffd_close(&c->u);
	hu_guest_destroy(&c->g);
	return ret;
}

int hu_loop_wait_removes(const struct hu_loop *l, uint64_t n, int deadline_ms)
{
	uint64_t end = hu_now_ms() + (uint64_t)deadline_ms;

	while (__atomic_load_n(&l->fs.removes, __ATOMIC_ACQUIRE) < n) {
		if (hu_now_ms() >= end)
			return -ETIMEDOUT;
		sched_yield();
	}
	return 0;
}

/* ---- shared test steps ---- */

int hu_check_ph(struct vms_page_handler *ph)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char last[256]; /* a test polling the metrics repeats the same reason */
	char why[sizeof(last)];
	int ret;

	if (!ph)
		return 0;
	ret = vms_ph_check(ph, why, sizeof(why));
	if (!ret)
		return 0;
	pthread_mutex_lock(&lock);
	if (strcmp(why, last)) {
		fprintf(stderr, "# vms_ph_check: %s\n", why);
		strcpy(last, why);
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

int hu_check(struct hu_ctx *c)
{
	return hu_check_ph(c->ph);
}

struct vms_ph_metrics hu_metrics(struct vms_page_handler *ph)
{
	struct vms_ph_metrics m;

	/* Every look at the metrics is also a look at the invariants. */
	if (hu_check_ph(ph) || vms_ph_metrics(ph, &m))
		memset(&m, 0xff, sizeof(m));
	return m;
}

void hu_tag_pages(struct hu_ctx *c, size_t region, uint64_t first, uint64_t n,
		  unsigned int gen)
{
	uint64_t p;

	for (p = first; p < first + n; p++)
		hu_fill(hu_alias_page(&c->g, region, p), hu_tag(region, p, gen));
}

int hu_swap_out_all(struct vms_page_handler *ph, uint64_t chunk)
{
	uint64_t n;
	int ret;

	do
		ret = vms_ph_swap_out(ph, chunk, &n);
	while (!ret && n);
	return ret ? ret : hu_check_ph(ph);
}

int hu_swap_in_all(struct hu_ctx *c, uint64_t chunk)
{
	uint64_t end = hu_now_ms() + HU_DEADLINE_MS, n;
	struct vms_ph_metrics m;
	int ret;

	for (;;) {
		ret = vms_ph_swap_in(c->ph, c->u.fd, chunk, &n);
		if (ret == -EAGAIN && hu_now_ms() < end) {
			sched_yield();
			continue;
		}
		if (ret)
			return ret;
		if (n)
			continue;
		/* "Nothing filled" must mean "nothing left": a caller stops here. */
		ret = hu_check(c);
		if (ret)
			return ret;
		m = hu_metrics(c->ph);
		return m.staging_pages || m.swap_pages ? -EPROTO : 0;
	}
}
