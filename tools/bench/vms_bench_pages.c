// SPDX-License-Identifier: MIT
/*
 * vms_bench_pages - page-handler throughput and latency, each beside the limit set
 * by the raw kernel operation it wraps, measured in the same process:
 *  - fault service latency (p50/p99) from staging, from the swap file and zero,
 *    beside a raw UFFDIO_COPY round trip (fault -> event read -> copy -> wake)
 *    driven by the same event loop;
 *  - move to staging GiB/s beside memcpy GiB/s between hot buffers and memcpy
 *    into new pages (the move must allocate every staging page);
 *  - swap-out / swap-in MB/s beside raw pwrite / pread of the same size, in 2 MiB
 *    requests, in the same directory (best of three). Those two only copy
 *    (hot buffer, page cache hot), so each figure is also set beside the bare
 *    physical operation it performs: swap-out beside sendfile from a memfd plus
 *    punching the memfd (staged pages are written and freed), swap-in beside
 *    pread 2 MiB + UFFDIO_COPY (guest pages must be allocated and filled);
 *  - trim GiB/s beside a plain zero scan of the same bytes.
 * Targets (on the lines that print one; the others are for information): fault
 * p50 <= 1.15x raw; move >= 0.5x memcpy into new pages; swap-out/in >= 0.8x the
 * bare physical operation.
 *
 * Usage: vms_bench_pages [-s MiB] [-f fault_pages] [-d dir]
 * Prints one line per figure; exits 0 (also when userfaultfd is unavailable: it
 * says so and measures nothing), 1 on an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

#include <vmmswap/clock.h>
#include <vmmswap/fault_server.h>
#include <vmmswap/page_handler.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/uffd.h>

static int fail(const char *what, int err)
{
	fprintf(stderr, "vms_bench_pages: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

/* Guest memory: a memfd mapped twice, once registered with the uffd. */
struct guest {
	int memfd;
	uint64_t len;
	uint8_t *mem;	/* registered */
	uint8_t *alias; /* not registered */
	struct vms_uffd u;
};

static int guest_create(struct guest *g, uint64_t len)
{
	int ret;

	memset(g, 0, sizeof(*g));
	g->len = len;
	g->u.fd = -1;
	g->memfd = memfd_create("bench-guest", MFD_CLOEXEC);
	if (g->memfd < 0 || ftruncate(g->memfd, (off_t)len))
		return -errno;
	g->mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
	g->alias = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
	if (g->mem == MAP_FAILED || g->alias == MAP_FAILED)
		return -errno;
	ret = vms_uffd_create(&g->u, UFFD_FEATURE_EVENT_REMOVE, 0);
	if (ret)
		return ret;
	return vms_uffd_register(g->u.fd, (uint64_t)(uintptr_t)g->mem, len,
				 UFFDIO_REGISTER_MODE_MISSING, VMS_UFFD_MISSING_IOCTLS, NULL);
}

static void guest_destroy(struct guest *g)
{
	vms_uffd_close(&g->u);
	munmap(g->mem, g->len);
	munmap(g->alias, g->len);
	close(g->memfd);
}

static int handler_create(struct guest *g, const char *dir, struct vms_page_handler **ph)
{
	struct vms_ph_region r = { .addr = (uint64_t)(uintptr_t)g->mem,
				   .len = g->len,
				   .memfd = g->memfd };
	struct vms_ph_config cfg = { .regions = &r, .nregions = 1, .swap_dir = dir };

	return vms_ph_create(&cfg, ph);
}

static void fill(struct guest *g, bool half_zero)
{
	uint64_t ps = vms_page_size(), p;

	for (p = 0; p < g->len / ps; p++) {
		uint64_t *w = (uint64_t *)(g->alias + p * ps);
		uint64_t i;

		if (half_zero && (p & 1)) {
			memset(w, 0, ps);
			continue;
		}
		for (i = 0; i < ps / 8; i++)
			w[i] = p * 0x9e3779b97f4a7c15ULL + i;
	}
}

/* ---- fault latency ---- */

struct loop {
	struct guest *g;
	struct vms_page_handler *ph; /* NULL: raw UFFDIO_COPY from 'src' */
	const uint8_t *src;
	int stop_fd;
	int err;
};

/* The raw fill (the limit), served through the same loop as the page handler. */
static int raw_copy(void *arg, int uffd, uint64_t addr)
{
	struct loop *l = arg;
	uint64_t ps = vms_page_size(), done;

	return vms_uffd_copy(uffd, addr & ~(ps - 1), l->src, ps, 0, &done);
}

/* The monitor's own event loop (vmmswap/fault_server.h). */
static void *loop_main(void *arg)
{
	struct loop *l = arg;
	struct vms_fault_server_opts o = { .fault = l->ph ? NULL : raw_copy, .arg = l };
	struct vms_fault_server fs;

	vms_fs_init(&fs, l->ph, l->g->u.fd, &o);
	for (;;) {
		struct pollfd pfd[2] = { { .fd = l->g->u.fd, .events = POLLIN },
					 { .fd = l->stop_fd, .events = POLLIN } };
		int ret;

		if (poll(pfd, 2, vms_fs_has_kept(&fs) ? 1 : -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		ret = vms_fs_serve(&fs, NULL);
		if ((ret || fs.first_err) && !l->err)
			l->err = ret ?: fs.first_err;
	}
	vms_fs_destroy(&fs);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Touch npages pages, one fault each, served by the loop; p50/p99 in ns. */
static int fault_latency(struct guest *g, struct vms_page_handler *ph, uint64_t npages,
			 uint64_t *p50, uint64_t *p99)
{
	uint64_t ps = vms_page_size(), *lat = calloc(npages, sizeof(*lat)), p, one = 1;
	uint8_t *src = calloc(1, ps);
	struct loop l = { .g = g, .ph = ph, .src = src };
	pthread_t t;
	volatile uint8_t sink;

	if (!lat || !src)
		return -ENOMEM;
	memset(src, 0x5a, ps);
	l.stop_fd = eventfd(0, EFD_CLOEXEC);
	if (l.stop_fd < 0 || pthread_create(&t, NULL, loop_main, &l))
		return -errno;
	for (p = 0; p < npages; p++) {
		uint64_t t0 = vms_now_ns();

		sink = g->mem[p * ps];
		lat[p] = vms_now_ns() - t0;
	}
	(void)sink;
	if (write(l.stop_fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	pthread_join(t, NULL);
	close(l.stop_fd);
	qsort(lat, npages, sizeof(*lat), cmp_u64);
	*p50 = lat[npages / 2];
	*p99 = lat[npages * 99 / 100];
	free(lat);
	free(src);
	return l.err;
}

/* ---- raw file I/O ---- */

static int raw_file_io(const char *dir, const uint8_t *buf, uint64_t len, double *w_mbs,
		       double *r_mbs)
{
	uint64_t chunk = VMS_PH_MAX_CHUNK_BYTES, off, t0;
	uint8_t *rbuf = malloc(chunk);
	int fd = open(dir, O_TMPFILE | O_EXCL | O_RDWR | O_CLOEXEC, 0);

	if (fd < 0 || !rbuf)
		return -errno;
	t0 = vms_now_ns();
	for (off = 0; off < len; off += chunk)
		if (pwrite(fd, buf + off, chunk, (off_t)off) != (ssize_t)chunk)
			return -EIO;
	*w_mbs = (double)len / 1e6 / ((double)(vms_now_ns() - t0) / 1e9);
	t0 = vms_now_ns();
	for (off = 0; off < len; off += chunk)
		if (pread(fd, rbuf, chunk, (off_t)off) != (ssize_t)chunk)
			return -EIO;
	*r_mbs = (double)len / 1e6 / ((double)(vms_now_ns() - t0) / 1e9);
	close(fd);
	free(rbuf);
	return 0;
}

/* The swap-in pipeline with no bookkeeping: pread 2 MiB, UFFDIO_COPY it, repeat. */
static int raw_swap_in(const char *dir, const uint8_t *buf, uint64_t len, double *mbs)
{
	uint64_t chunk = VMS_PH_MAX_CHUNK_BYTES, off, t0, done;
	uint8_t *rbuf = malloc(chunk);
	int fd = open(dir, O_TMPFILE | O_EXCL | O_RDWR | O_CLOEXEC, 0), ret;
	struct guest g;

	if (fd < 0 || !rbuf)
		return -errno;
	for (off = 0; off < len; off += chunk)
		if (pwrite(fd, buf + off, chunk, (off_t)off) != (ssize_t)chunk)
			return -EIO;
	ret = guest_create(&g, len);
	if (ret)
		return ret;
	t0 = vms_now_ns();
	for (off = 0; off < len && !ret; off += chunk) {
		if (pread(fd, rbuf, chunk, (off_t)off) != (ssize_t)chunk)
			return -EIO;
		ret = vms_uffd_copy(g.u.fd, (uint64_t)(uintptr_t)g.mem + off, rbuf, chunk, 0,
				    &done);
	}
	*mbs = (double)len / 1e6 / ((double)(vms_now_ns() - t0) / 1e9);
	guest_destroy(&g);
	close(fd);
	free(rbuf);
	return ret;
}

/*
 * Swap-out's physical operation with no bookkeeping: 2 MiB at a time, write pages
 * of a memfd (as staging is) to a new file in dir with sendfile, then punch them
 * out of the memfd. Unlike a pwrite of a hot buffer, it reads pages that are not
 * mapped and frees them, which swap-out must do too.
 */
static int raw_swap_out(const char *dir, const uint8_t *buf, uint64_t len, double *mbs)
{
	uint64_t chunk = VMS_PH_MAX_CHUNK_BYTES, off, t0;
	int fd = open(dir, O_TMPFILE | O_EXCL | O_RDWR | O_CLOEXEC, 0);
	int mfd = memfd_create("bench-staging", MFD_CLOEXEC);

	if (fd < 0 || mfd < 0)
		return -errno;
	for (off = 0; off < len; off += chunk)
		if (pwrite(mfd, buf + off, chunk, (off_t)off) != (ssize_t)chunk)
			return -EIO;
	t0 = vms_now_ns();
	for (off = 0; off < len; off += chunk) {
		off_t in = (off_t)off;

		if (lseek(fd, (off_t)off, SEEK_SET) < 0 ||
		    sendfile(fd, mfd, &in, chunk) != (ssize_t)chunk ||
		    fallocate(mfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			      (off_t)chunk) < 0)
			return -EIO;
	}
	*mbs = (double)len / 1e6 / ((double)(vms_now_ns() - t0) / 1e9);
	close(mfd);
	close(fd);
	return 0;
}

/*
 * One figure beside one limit. A target of 0 or less marks an informative limit
 * (a cheaper operation than the one measured: no page allocation, no freeing);
 * the target line for that figure is the one printed with a target.
 */
static void line(const char *what, double value, const char *unit, double limit, bool lower_better,
		 double target)
{
	double ratio = value / limit;
	bool ok = lower_better ? ratio <= target : ratio >= target;

	if (target <= 0) {
		printf("%-40s %10.2f %-6s limit %10.2f %-6s ratio %5.2f  (information)\n", what,
		       value, unit, limit, unit, ratio);
		return;
	}
	printf("%-40s %10.2f %-6s limit %10.2f %-6s ratio %5.2f  target %s %.2f  %s\n", what, value,
	       unit, limit, unit, ratio, lower_better ? "<=" : ">=", target, ok ? "ok" : "MISSED");
}

int main(int argc, char **argv)
{
	uint64_t mib = 256, fault_pages = 4096, ps = vms_page_size(), len, n, t0, moved = 0;
	uint64_t raw50, raw99, p50, p99;
	uint64_t best50[3] = { UINT64_MAX, UINT64_MAX, UINT64_MAX }, raw_round = 1;
	double ratio[3][3];
	uint64_t best99[3] = { UINT64_MAX, UINT64_MAX, UINT64_MAX };
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	double w_raw = 0, r_raw = 0, so_raw = 0, pipe_mbs = 0, fresh_gibs = 0, secs, memcpy_gibs,
	       scan_gibs;
	struct vms_page_handler *ph;
	struct vms_ph_trim trim;
	struct guest g;
	uint8_t *a, *b;
	int opt, ret;

	while ((opt = getopt(argc, argv, "s:f:d:h")) != -1) {
		switch (opt) {
		case 's':
			mib = strtoull(optarg, NULL, 0);
			break;
		case 'f':
			fault_pages = strtoull(optarg, NULL, 0);
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-s MiB] [-f fault_pages] [-d dir]\n", argv[0]);
			return opt == 'h' ? 0 : 1;
		}
	}
	len = mib << 20;
	if (!mib || fault_pages * ps > len)
		return fail("arguments", EINVAL);
	printf("vms_bench_pages: %llu MiB guest, %llu faults per kind, swap dir %s, "
	       "page %llu, THP %llu\n",
	       (unsigned long long)mib, (unsigned long long)fault_pages, dir,
	       (unsigned long long)ps, (unsigned long long)vms_thp_size());

	/* Fault latency: raw round trip first, then the handler's three sources. */
	ret = guest_create(&g, fault_pages * ps);
	if (ret == -EPERM || ret == -EACCES || ret == -ENOENT || ret == -ENOSYS) {
		printf("userfaultfd unavailable (%s): nothing measured\n", strerror(-ret));
		return 0;
	}
	if (ret)
		return fail("guest", ret);
	guest_destroy(&g);
	/* Three interleaved rounds; the best of each kind (VM wake-up noise is large). */
	raw50 = raw99 = UINT64_MAX;
	for (int round = 0; round < 3; round++) {
		if ((ret = guest_create(&g, fault_pages * ps)))
			return fail("guest", ret);
		ret = fault_latency(&g, NULL, fault_pages, &p50, &p99);
		guest_destroy(&g);
		if (ret)
			return fail("raw fault loop", ret);
		raw_round = p50;
		raw50 = p50 < raw50 ? p50 : raw50;
		raw99 = p99 < raw99 ? p99 : raw99;
		for (int kind = 0; kind < 3; kind++) {
			if ((ret = guest_create(&g, fault_pages * ps)) ||
			    (ret = handler_create(&g, dir, &ph)))
				return fail("guest/handler", ret);
			if (kind > 0) {
				fill(&g, false);
				if ((ret = vms_ph_move_all_to_staging(ph, NULL)))
					return fail("move", ret);
			}
			if (kind == 2) {
				do
					ret = vms_ph_swap_out(ph, 512, &n);
				while (!ret && n);
				if (ret)
					return fail("swap-out", ret);
			}
			ret = fault_latency(&g, ph, fault_pages, &p50, &p99);
			if (ret)
				return fail("fault", ret);
			best50[kind] = p50 < best50[kind] ? p50 : best50[kind];
			best99[kind] = p99 < best99[kind] ? p99 : best99[kind];
			ratio[kind][round] = (double)p50 / (double)raw_round;
			vms_ph_destroy(ph);
			guest_destroy(&g);
		}
	}
	printf("%-28s p50 %7.2f us  p99 %7.2f us  (best of 3 rounds, as below)\n",
	       "fault raw UFFDIO_COPY", raw50 / 1e3, raw99 / 1e3);
	for (int kind = 0; kind < 3; kind++) {
		static const char *const names[] = { "fault zero", "fault from staging",
						     "fault from file" };

		double *r = ratio[kind], med;

		/* The median of the per-round ratios: both sides saw the same noise. */
		med = r[0] > r[1] ? (r[1] > r[2] ? r[1] : (r[0] > r[2] ? r[2] : r[0]))
				  : (r[0] > r[2] ? r[0] : (r[1] > r[2] ? r[2] : r[1]));
		printf("%-28s p50 %7.2f us  p99 %7.2f us  median per-round ratio to raw p50 "
		       "%.2f (target <= 1.15) %s\n",
		       names[kind], best50[kind] / 1e3, best99[kind] / 1e3, med,
		       med <= 1.15 ? "ok" : "MISSED");
	}

	/* memcpy between prefaulted buffers: the move's limit. */
	a = malloc(len);
	b = malloc(len);
	if (!a || !b)
		return fail("malloc", ENOMEM);
	memset(a, 1, len);
	memset(b, 0, len);
	memcpy_gibs = 0;
	for (int i = 0; i < 3; i++) {
		t0 = vms_now_ns();
		/* In THP-sized pieces, like the move's batches. */
		for (uint64_t off = 0; off < len; off += vms_thp_size())
			memcpy(b + off, a + off, vms_thp_size());
		secs = (double)len / (1 << 30) / ((double)(vms_now_ns() - t0) / 1e9);
		memcpy_gibs = secs > memcpy_gibs ? secs : memcpy_gibs;
	}
	{
		uint8_t *fresh =
			mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (fresh == MAP_FAILED)
			return fail("mmap", errno);
		t0 = vms_now_ns();
		for (uint64_t off = 0; off < len; off += vms_thp_size())
			memcpy(fresh + off, a + off, vms_thp_size());
		fresh_gibs = (double)len / (1 << 30) / ((double)(vms_now_ns() - t0) / 1e9);
		munmap(fresh, len);
	}
	for (int i = 0; i < 3; i++) {
		double w = 0, r = 0;

		ret = raw_file_io(dir, a, len, &w, &r);
		if (ret)
			return fail("raw file I/O", ret);
		w_raw = w > w_raw ? w : w_raw;
		r_raw = r > r_raw ? r : r_raw;
	}
	for (int i = 0; i < 3; i++) {
		double m = 0;

		ret = raw_swap_out(dir, a, len, &m);
		if (ret)
			return fail("raw swap-out", ret);
		so_raw = m > so_raw ? m : so_raw;
	}
	ret = raw_swap_in(dir, a, len, &pipe_mbs);
	if (ret)
		return fail("raw swap-in", ret);
	/* A zero scan of the same bytes: trim's limit. */
	memset(b, 0, len);
	t0 = vms_now_ns();
	{
		const uint64_t *w = (const uint64_t *)b;
		uint64_t i, acc = 0;

		for (i = 0; i < len / 8; i++)
			acc |= w[i];
		if (acc)
			return 1;
	}
	scan_gibs = (double)len / (1 << 30) / ((double)(vms_now_ns() - t0) / 1e9);
	free(a);
	free(b);

	/* Move, swap-out, swap-in on the full size. */
	if ((ret = guest_create(&g, len)) || (ret = handler_create(&g, dir, &ph)))
		return fail("guest/handler", ret);
	fill(&g, false);
	t0 = vms_now_ns();
	ret = vms_ph_move_all_to_staging(ph, &moved);
	secs = (double)(vms_now_ns() - t0) / 1e9;
	if (ret || moved != len / ps)
		return fail("move", ret ? ret : EIO);
	line("move vs memcpy, hot buffers", (double)len / (1 << 30) / secs, "GiB/s", memcpy_gibs,
	     false, 0);
	line("move vs memcpy into new pages", (double)len / (1 << 30) / secs, "GiB/s", fresh_gibs,
	     false, 0.5);
	t0 = vms_now_ns();
	do
		ret = vms_ph_swap_out(ph, 512, &n);
	while (!ret && n);
	secs = (double)(vms_now_ns() - t0) / 1e9;
	if (ret)
		return fail("swap-out", ret);
	line("swap-out vs pwrite of a hot buffer", (double)len / 1e6 / secs, "MB/s", w_raw, false,
	     0);
	line("swap-out vs sendfile memfd + punch", (double)len / 1e6 / secs, "MB/s", so_raw, false,
	     0.8);
	t0 = vms_now_ns();
	do
		ret = vms_ph_swap_in(ph, g.u.fd, 512, &n);
	while ((!ret && n) || ret == -EAGAIN);
	secs = (double)(vms_now_ns() - t0) / 1e9;
	if (ret)
		return fail("swap-in", ret);
	line("swap-in vs pread, page cache hot", (double)len / 1e6 / secs, "MB/s", r_raw, false, 0);
	line("swap-in vs pread + UFFDIO_COPY", (double)len / 1e6 / secs, "MB/s", pipe_mbs, false,
	     0.8);
	vms_ph_destroy(ph);
	guest_destroy(&g);

	/* Trim: half the staged pages are zero. */
	if ((ret = guest_create(&g, len)) || (ret = handler_create(&g, dir, &ph)))
		return fail("guest/handler", ret);
	fill(&g, true);
	if ((ret = vms_ph_move_all_to_staging(ph, NULL)))
		return fail("move", ret);
	vms_ph_trim_init(&trim);
	t0 = vms_now_ns();
	while (!trim.done && !ret)
		ret = vms_ph_trim(ph, &trim, VMS_PH_TRIM_BATCH_PAGES, NULL);
	secs = (double)(vms_now_ns() - t0) / 1e9;
	if (ret || trim.zero_pages != len / ps / 2)
		return fail("trim", ret ? ret : EIO);
	line("trim (half zero) vs a zero scan", (double)len / (1 << 30) / secs, "GiB/s", scan_gibs,
	     false, 0);
	vms_ph_destroy(ph);
	guest_destroy(&g);
	return 0;
}
