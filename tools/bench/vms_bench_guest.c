// SPDX-License-Identifier: MIT
/*
 * vms_bench_guest - how fast a real guest runs while its memory is swapped, beside
 * the kernel's KVM demand_paging_test (the peer) and a host thread touching the same
 * memory through a raw UFFDIO_COPY loop (the limit), all in one run.
 *
 * The guest: libminivm, long mode, ring 3 (ring 0 is emulated on PVM hosts). Each
 * vCPU writes one qword per 4 KiB page over its slice of guest RAM (the slices
 * split RAM evenly), then reports with an MMIO write. A control block per vCPU in
 * boot RAM (never swapped) holds the pass limit, a stop flag and the live count of
 * pages touched, so the host can watch the guest's progress while it runs.
 *
 * Figures, for 1 and 2 vCPUs:
 *  - pages/s with faults served from staging, from the swap file and as zero pages,
 *    by the page handler serving the VMM's own uffd in-process ("inproc", with the
 *    default fault-path configuration, see below), and by the monitor process
 *    through the controller ("monitor", the monitor's own fault loop as shipped,
 *    fault-around off; "monitor staging [around N]": the staging pass again with
 *    the controller's fault_around_pages = N, minivmm's default; with 1 vCPU also
 *    "[co-located]", fault-around off: vCPU 0 pinned to CPU 0 and the monitor told
 *    so through the VMS_CTL_FAULT_CPU hint);
 *  - the enable pause (vCPUs stopped while resident pages move to staging) per GiB;
 *  - disable: time until every page is back while the guest keeps running, and the
 *    guest's own progress meanwhile beside its speed on resident memory;
 *  - the no-uffd baseline (first touch of fresh memory, then resident memory);
 *  - the peer: demand_paging_test -u MISSING -s shmem, same total size split over
 *    the same vCPU count (best of two runs), built by tools/bench/peer_build.sh;
 *  - the limit: host threads (one per vCPU) writing the same amount of uffd memory,
 *    served by a raw poll/read/UFFDIO_COPY loop (or UFFDIO_ZEROPAGE for "limit-0"),
 *    the better of unpinned and co-located placement;
 *  - the fault-path variants, staging pass, each lever alone and all together
 *    ("all", the default): event batch, pinning (sep: own CPU, same: the vCPU's CPU,
 *    auto: same with one vCPU), servers per uffd, fault-around limit. Variants
 *    without fault-around cover the first 64 MiB (their rate is bound per fault).
 * A staging variant is the best of up to three passes taking 1 s together (the
 * host is noisy). The table is printed and saved as JSON (build/bench-guest.json).
 *
 * Usage: vms_bench_guest [-s MiB] [-v max_vcpus] [-d swap_dir] [-j json]
 *                        [-P peer_binary|none] [-c variant] [-q]
 *   -c: the default configuration (a variant name); -q: no variants.
 *   The swap directory defaults to $VMS_BENCH_DIR, $TMPDIR, /tmp.
 * Exits 0 (also when KVM or userfaultfd is unusable: it says so), 1 on an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <vm/kvm_vm.h>
#include <vmmswap/clock.h>
#include <vmmswap/controller.h>
#include <vmmswap/fault_server.h>
#include <vmmswap/log.h>
#include <vmmswap/page_handler.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/status.h>
#include <vmmswap/uffd.h>

#define PAGE		    4096ULL
#define CTL_GPA		    0x180000ULL /* one page per vCPU */
#define STACK_TOP	    0x1f0000ULL /* 16 KiB per vCPU, downwards */
#define RAM_GPA		    (1ULL << 30)
#define MMIO_DONE	    MINIVM_MMIO_BASE /* + 8 * vCPU */
#define MAX_VCPUS	    2
#define MAX_SERVERS	    4
#define EVENT_BATCH	    VMS_FS_MAX_BATCH
#define WAIT_MS		    60000
#define VARIANT_SHORT_PAGES 16384 /* 64 MiB: variants without fault-around */

/* Per-vCPU control block in boot RAM; the guest code below uses these offsets. */
struct guest_ctl {
	volatile uint64_t max_passes; /* 0: until stop */
	volatile uint64_t stop;
	volatile uint64_t touched; /* pages written, live */
	volatile uint64_t passes;
};

/*
 * Guest code (ring 3, position independent). rdi = first page (gpa), rsi = pages,
 * rdx = control block, rcx = doorbell. Writes one qword per page, counting pages,
 * checks the stop flag per page, and after max_passes passes (or a stop) writes
 * the touched count to the doorbell.
 */
asm(".pushsection .rodata\n"
    "guest_touch:\n"
    "1:	mov %rdi, %r8\n"
    "	mov %rsi, %r9\n"
    "2:	mov %r9, (%r8)\n"
    "	add $4096, %r8\n"
    "	incq 16(%rdx)\n"
    "	cmpq $0, 8(%rdx)\n"
    "	jne 3f\n"
    "	dec %r9\n"
    "	jnz 2b\n"
    "	incq 24(%rdx)\n"
    "	mov 24(%rdx), %rax\n"
    "	cmp (%rdx), %rax\n"
    "	jne 1b\n"
    "3:	mov 16(%rdx), %rax\n"
    "	mov %rax, (%rcx)\n"
    "	ud2\n"
    "guest_touch_end:\n"
    ".popsection\n");
extern const char guest_touch[], guest_touch_end[];

static int ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (int)n;
}

static int pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu % ncpus(), &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static int map_memfd(const char *name, uint64_t len, int *fd, uint8_t **mem, uint8_t **alias)
{
	void *m;

	*fd = memfd_create(name, MFD_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (ftruncate(*fd, (off_t)len))
		goto err;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (m == MAP_FAILED)
		goto err;
	*mem = m;
	if (!alias)
		return 0;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (m == MAP_FAILED) {
		munmap(*mem, len);
		goto err;
	}
	*alias = m;
	return 0;
err:
	close(*fd);
	*fd = -1;
	return -errno;
}

/* ---- the fault-path configuration (every lever switchable) ---- */

enum pin_mode {
	PIN_NONE = 0, /* the scheduler decides */
	PIN_SEP = 1,  /* vCPU i on CPU i, servers on the CPUs after the vCPUs' */
	PIN_SAME = 2, /* server j on the CPU of vCPU j (co-located) */
	PIN_AUTO = 3, /* PIN_SAME with one vCPU, else PIN_NONE (see server_cpu()) */
};

struct fp_cfg {
	const char *name;
	unsigned int servers; /* fault-serving threads on the one uffd; 0: one per vCPU */
	unsigned int batch;   /* events per read() */
	enum pin_mode pin;
	unsigned int around; /* fault-around pages (0: off) */
};

static const char *pin_name(enum pin_mode p)
{
	return p == PIN_SEP ? "sep" : p == PIN_SAME ? "same" : p == PIN_AUTO ? "auto" : "none";
}

/*
 * With one uffd for all vCPUs, a server cannot choose whose faults it serves: a
 * server co-located with vCPU 0 also serves vCPU 1, from the wrong CPU, and
 * preempts vCPU 0 meanwhile. So "auto" co-locates only when there is one vCPU.
 */
static enum pin_mode pin_eff(const struct fp_cfg *c, unsigned int nv)
{
	if (c->pin == PIN_AUTO)
		return nv == 1 ? PIN_SAME : PIN_NONE;
	return c->pin;
}

static int vcpu_cpu(const struct fp_cfg *c, unsigned int nv, unsigned int i)
{
	return pin_eff(c, nv) == PIN_NONE ? -1 : (int)i;
}

static int server_cpu(const struct fp_cfg *c, unsigned int nv, unsigned int j)
{
	if (pin_eff(c, nv) == PIN_SEP)
		return (int)(nv + j);
	if (pin_eff(c, nv) == PIN_SAME)
		return (int)(j % nv);
	return -1;
}

/* ---- the VM ---- */

struct env {
	struct minivm vm;
	struct minivm_vcpu vcpu[MAX_VCPUS];
	unsigned int nv;
	int boot_fd, ram_fd;
	uint8_t *boot;
	uint8_t *ram;	/* what the guest uses (uffd-registered in the swap scenarios) */
	uint8_t *alias; /* the same memfd, never registered: host fills */
	uint64_t len;
	uint64_t pass_pages; /* pages a pass covers, from the start of RAM; 0: all */
};

static struct guest_ctl *env_ctl(struct env *e, unsigned int i)
{
	return (struct guest_ctl *)(e->boot + CTL_GPA + i * PAGE);
}

static void env_destroy(struct env *e)
{
	unsigned int i;

	for (i = 0; i < e->nv; i++)
		minivm_vcpu_destroy(&e->vcpu[i]);
	minivm_destroy(&e->vm);
	if (e->ram)
		munmap(e->ram, e->len);
	if (e->alias)
		munmap(e->alias, e->len);
	if (e->boot)
		munmap(e->boot, MINIVM_BOOT_SIZE);
	if (e->ram_fd >= 0)
		close(e->ram_fd);
	if (e->boot_fd >= 0)
		close(e->boot_fd);
	memset(e, 0, sizeof(*e));
	e->boot_fd = e->ram_fd = -1;
}

static int env_create(struct env *e, unsigned int nv, uint64_t len)
{
	int ret;

	memset(e, 0, sizeof(*e));
	e->boot_fd = e->ram_fd = -1;
	e->len = len;
	if (MINIVM_SYS_GPA + minivm_sys_area_size(MINIVM_MAP_SIZE) > MINIVM_CODE_GPA)
		return -E2BIG;
	ret = map_memfd("bench-guest-boot", MINIVM_BOOT_SIZE, &e->boot_fd, &e->boot, NULL);
	if (!ret)
		ret = map_memfd("bench-guest-ram", len, &e->ram_fd, &e->ram, &e->alias);
	if (!ret)
		ret = minivm_create(&e->vm);
	if (ret)
		goto err;
	ret = minivm_add_region(&e->vm, 0, e->boot, MINIVM_BOOT_SIZE);
	if (ret >= 0)
		ret = minivm_add_region(&e->vm, RAM_GPA, e->ram, len);
	if (ret >= 0)
		ret = minivm_setup_long_mode(&e->vm, MINIVM_SYS_GPA, MINIVM_MAP_SIZE,
					     MINIVM_EXC_GPA);
	if (!ret)
		ret = minivm_load(&e->vm, MINIVM_CODE_GPA, guest_touch,
				  (size_t)(guest_touch_end - guest_touch));
	for (; !ret && e->nv < nv; e->nv++)
		ret = minivm_vcpu_create(&e->vm, (int)e->nv, &e->vcpu[e->nv]);
	if (ret)
		goto err;
	return 0;
err:
	env_destroy(e);
	return ret;
}

/* ---- a guest pass: every vCPU over its slice ---- */

struct vcpu_job {
	struct env *e;
	unsigned int idx;
	int cpu;
	pthread_barrier_t *bar;
	uint64_t start_ns, end_ns;
	int err;
	pthread_t th;
};

struct pass {
	struct env *e;
	struct vcpu_job job[MAX_VCPUS];
	pthread_barrier_t bar;
	uint64_t t0;
	unsigned int started;
};

static uint64_t pass_pages(const struct env *e)
{
	return e->pass_pages ? e->pass_pages : e->len / PAGE;
}

static void slice(const struct env *e, unsigned int i, uint64_t *first, uint64_t *n)
{
	uint64_t pages = pass_pages(e), per = pages / e->nv;

	*first = i * per;
	*n = i + 1 == e->nv ? pages - i * per : per;
}

static void *vcpu_main(void *arg)
{
	struct vcpu_job *j = arg;
	struct minivm_vcpu *v = &j->e->vcpu[j->idx];
	uint64_t first, n, mmio = MMIO_DONE + 8 * j->idx;
	struct minivm_exit x;
	int ret;

	slice(j->e, j->idx, &first, &n);
	ret = pin_self(j->cpu);
	if (!ret)
		ret = minivm_vcpu_enter_long_mode(v, MINIVM_CODE_GPA, STACK_TOP - j->idx * 0x4000,
						  true);
	if (!ret)
		ret = minivm_vcpu_set_args(v, RAM_GPA + first * PAGE, n, CTL_GPA + j->idx * PAGE,
					   mmio);
	pthread_barrier_wait(j->bar);
	j->start_ns = vms_now_ns();
	while (!ret) {
		ret = minivm_vcpu_run(v, &x);
		if (ret)
			break;
		if (x.reason == MINIVM_EXIT_INTR)
			continue;
		if (x.reason == MINIVM_EXIT_MMIO && x.mmio.is_write && x.mmio.addr == mmio)
			break;
		if (x.reason == MINIVM_EXIT_EXCEPTION)
			fprintf(stderr,
				"vms_bench_guest: vCPU %u: exception %u at %#llx cr2 %#llx\n",
				j->idx, x.exception.vector, (unsigned long long)x.exception.rip,
				(unsigned long long)x.exception.cr2);
		else
			fprintf(stderr, "vms_bench_guest: vCPU %u: unexpected exit %s\n", j->idx,
				minivm_exit_name(x.reason));
		ret = -EPROTO;
	}
	j->end_ns = vms_now_ns();
	j->err = ret;
	return NULL;
}

/* Start every vCPU; max_passes 0 runs until pass_stop(). */
static int pass_start(struct pass *p, struct env *e, const struct fp_cfg *c, uint64_t max_passes)
{
	unsigned int i;
	int ret;

	memset(p, 0, sizeof(*p));
	p->e = e;
	for (i = 0; i < e->nv; i++) {
		struct guest_ctl *ctl = env_ctl(e, i);

		ctl->max_passes = max_passes;
		ctl->stop = 0;
		ctl->touched = 0;
		ctl->passes = 0;
	}
	ret = -pthread_barrier_init(&p->bar, NULL, e->nv + 1);
	if (ret)
		return ret;
	for (i = 0; i < e->nv; i++) {
		struct vcpu_job *j = &p->job[i];

		j->e = e;
		j->idx = i;
		j->cpu = vcpu_cpu(c, e->nv, i);
		j->bar = &p->bar;
		ret = -pthread_create(&j->th, NULL, vcpu_main, j);
		if (ret) {
			/* Cannot happen with a barrier waiting; give up loudly. */
			fprintf(stderr, "vms_bench_guest: pthread_create: %s\n", strerror(-ret));
			exit(1);
		}
		p->started++;
	}
	pthread_barrier_wait(&p->bar);
	p->t0 = vms_now_ns();
	return 0;
}

static uint64_t pass_touched(struct pass *p)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < p->e->nv; i++)
		sum += env_ctl(p->e, i)->touched;
	return sum;
}

/* Wait for the vCPUs; *ns = until the last one finished. */
static int pass_wait(struct pass *p, uint64_t *ns)
{
	uint64_t end = 0, start = UINT64_MAX;
	unsigned int i;
	int ret = 0;

	/* Timed by the vCPU threads: the main thread may run late on a busy host. */
	for (i = 0; i < p->started; i++) {
		pthread_join(p->job[i].th, NULL);
		if (p->job[i].start_ns < start)
			start = p->job[i].start_ns;
		if (p->job[i].err && !ret)
			ret = p->job[i].err;
		if (p->job[i].end_ns > end)
			end = p->job[i].end_ns;
	}
	pthread_barrier_destroy(&p->bar);
	if (ns)
		*ns = end > start ? end - start : 1;
	return ret;
}

static void pass_stop(struct pass *p)
{
	unsigned int i;

	for (i = 0; i < p->e->nv; i++)
		env_ctl(p->e, i)->stop = 1;
}

/* One pass over all of guest RAM: pages/s. */
static int guest_pass(struct env *e, const struct fp_cfg *c, double *pps)
{
	struct pass p;
	uint64_t ns;
	int ret;

	ret = pass_start(&p, e, c, 1);
	if (ret)
		return ret;
	ret = pass_wait(&p, &ns);
	if (!ret && pass_touched(&p) != pass_pages(e))
		ret = -EPROTO;
	*pps = ret ? 0 : (double)pass_pages(e) * 1e9 / (double)ns;
	return ret;
}

/* ---- fault-serving threads on one uffd ---- */

struct server {
	int uffd;
	struct vms_page_handler *ph; /* NULL: raw UFFDIO_COPY/ZEROPAGE (the limit) */
	const uint8_t *src;	     /* raw: source of page i is src + i * PAGE; NULL: zeropage */
	uint64_t base, len;
	unsigned int batch;
	int stop_fd;
	int err;
	unsigned int nth;
	pthread_t th[MAX_SERVERS];
	int cpu[MAX_SERVERS];
	uint64_t faults, reads; /* atomics */
};

struct server_arg {
	struct server *s;
	unsigned int idx;
};

static struct server_arg server_args[MAX_SERVERS];

static void server_error(struct server *s, int err)
{
	int zero = 0;

	__atomic_compare_exchange_n(&s->err, &zero, err, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/*
 * The raw fill (the limit): one ioctl, EEXIST (another thread was first) is fine.
 * It runs in the library's fault server like the page handler does, so the raw
 * and the real rows differ only in what serves a fault.
 */
static int raw_fill(void *arg, int uffd, uint64_t addr)
{
	struct server *s = arg;
	uint64_t page = addr & ~(PAGE - 1);

	(void)uffd;
	int ret;

	if (s->src) {
		struct uffdio_copy c = { .dst = page,
					 .src = (uint64_t)(uintptr_t)(s->src + (page - s->base)),
					 .len = PAGE };

		ret = ioctl(s->uffd, UFFDIO_COPY, &c);
	} else {
		struct uffdio_zeropage z = { .range = { .start = page, .len = PAGE } };

		ret = ioctl(s->uffd, UFFDIO_ZEROPAGE, &z);
	}
	if (ret && errno == EEXIST) {
		struct uffdio_range r = { .start = page, .len = PAGE };

		ret = ioctl(s->uffd, UFFDIO_WAKE, &r);
	}
	return ret ? -errno : 0;
}

static void *server_main(void *arg)
{
	struct server_arg *a = arg;
	struct server *s = a->s;
	struct vms_fault_server_opts o = { .batch = s->batch };
	struct vms_fault_server fs;
	int ret;

	ret = pin_self(s->cpu[a->idx]);
	if (ret) {
		server_error(s, ret);
		return NULL;
	}
	if (!s->ph) {
		o.fault = raw_fill;
		o.arg = s;
	}
	/* The monitor's own loop: vmmswap/fault_server.h. */
	vms_fs_init(&fs, s->ph, s->uffd, &o);
	for (;;) {
		struct pollfd pfd[2] = { { .fd = s->uffd, .events = POLLIN },
					 { .fd = s->stop_fd, .events = POLLIN } };
		uint64_t reads = fs.reads, faults = fs.faults;

		ret = poll(pfd, 2, vms_fs_has_kept(&fs) ? 1 : WAIT_MS);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0) {
			server_error(s, -errno);
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLERR | POLLHUP)) {
			server_error(s, -EIO);
			break;
		}
		ret = vms_fs_serve(&fs, NULL);
		if (ret || fs.first_err)
			server_error(s, ret ?: fs.first_err);
		__atomic_add_fetch(&s->reads, fs.reads - reads, __ATOMIC_RELAXED);
		__atomic_add_fetch(&s->faults, fs.faults - faults, __ATOMIC_RELAXED);
	}
	vms_fs_destroy(&fs);
	return NULL;
}

static int server_start(struct server *s, const struct fp_cfg *c, unsigned int nv)
{
	unsigned int j;
	int ret;

	s->err = 0;
	s->faults = s->reads = 0;
	s->batch = c->batch ? (c->batch > EVENT_BATCH ? EVENT_BATCH : c->batch) : 1;
	s->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (s->stop_fd < 0)
		return -errno;
	s->nth = 0;
	if (s->ph) {
		ret = vms_ph_set_fault_around(s->ph, c->around);
		if (ret)
			return ret;
	}
	for (j = 0; j < (c->servers ? c->servers : nv) && j < MAX_SERVERS; j++) {
		s->cpu[j] = server_cpu(c, nv, j);
		server_args[j] = (struct server_arg){ s, j };
		ret = -pthread_create(&s->th[j], NULL, server_main, &server_args[j]);
		if (ret)
			return ret;
		s->nth++;
	}
	return 0;
}

static int server_stop(struct server *s)
{
	unsigned int j;

	if (eventfd_write(s->stop_fd, 1))
		server_error(s, -errno);
	for (j = 0; j < s->nth; j++)
		pthread_join(s->th[j], NULL);
	s->nth = 0;
	close(s->stop_fd);
	s->stop_fd = -1;
	return s->err;
}

/* ---- results ---- */

struct row {
	char metric[96];
	char unit[16];
	double ours;
	char vs[24];  /* "peer", "limit", "resident", ... or "" */
	double other; /* 0: none */
};

static struct row rows[128];
static unsigned int nrows;

static void add_row(const char *metric, const char *unit, double ours, const char *vs, double other)
{
	struct row *r;

	if (nrows == sizeof(rows) / sizeof(rows[0]))
		return;
	r = &rows[nrows++];
	snprintf(r->metric, sizeof(r->metric), "%s", metric);
	snprintf(r->unit, sizeof(r->unit), "%s", unit);
	snprintf(r->vs, sizeof(r->vs), "%s", vs ? vs : "");
	r->ours = ours;
	r->other = vs ? other : 0;
}

/* Measured figures, per vCPU count (index nv - 1). */
struct figures {
	double base_alloc, base_resident;
	double zero, staging, file; /* default fault path */
	double pause_ms_per_gib, pause_ms;
	double disable_ms, disable_progress, disable_resident;
	double limit_copy, limit_zero;
	double peer;
	char peer_why[128];
	double var_base;     /* staging pages/s with every lever off */
	double around_share; /* % of the staging pass's pages filled by fault-around */
	double mon_zero, mon_staging, mon_file, mon_pause_ms_per_gib;
	double mon_staging_around, mon_around_share, mon_staging_coloc;
	bool have_mon, have_mon_around, have_mon_coloc;
};

static struct figures fig[MAX_VCPUS];

/* ---- no-uffd baseline ---- */

static int run_baseline(unsigned int nv, uint64_t len, const struct fp_cfg *c)
{
	struct env e;
	int ret;

	ret = env_create(&e, nv, len);
	if (ret)
		return ret;
	ret = guest_pass(&e, c, &fig[nv - 1].base_alloc);
	if (!ret)
		ret = guest_pass(&e, c, &fig[nv - 1].base_resident);
	env_destroy(&e);
	return ret;
}

/* ---- the limit: host threads touching uffd memory, raw fill loop ---- */

struct toucher {
	uint8_t *mem;
	uint64_t pages;
	int cpu;
	pthread_barrier_t *bar;
	uint64_t start_ns, end_ns;
};

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;
	uint64_t i;

	pin_self(t->cpu);
	pthread_barrier_wait(t->bar);
	t->start_ns = vms_now_ns();
	for (i = 0; i < t->pages; i++)
		*(volatile uint64_t *)(t->mem + i * PAGE) = i;
	t->end_ns = vms_now_ns();
	return NULL;
}

static int run_limit(unsigned int nv, uint64_t len, const struct fp_cfg *c, bool zero, double *pps)
{
	uint8_t *dst = NULL, *src = NULL;
	struct toucher t[MAX_VCPUS];
	pthread_t th[MAX_VCPUS];
	struct server s = { .uffd = -1, .stop_fd = -1 };
	struct vms_uffd u = { .fd = -1 };
	pthread_barrier_t bar;
	int dfd = -1, sfd = -1, ret;
	uint64_t pages = len / PAGE, t0 = UINT64_MAX, end = 0, i;
	unsigned int k;

	ret = map_memfd("limit-dst", len, &dfd, &dst, NULL);
	if (!ret && !zero)
		ret = map_memfd("limit-src", len, &sfd, &src, NULL);
	if (ret)
		goto out;
	for (i = 0; src && i < pages; i++)
		memset(src + i * PAGE, (int)(i | 1), PAGE);
	ret = vms_uffd_create(&u, UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE, 0);
	if (!ret)
		ret = vms_uffd_register(u.fd, (uint64_t)(uintptr_t)dst, len,
					UFFDIO_REGISTER_MODE_MISSING, VMS_UFFD_MISSING_IOCTLS,
					NULL);
	if (ret)
		goto out;
	s.uffd = u.fd;
	s.src = src;
	s.base = (uint64_t)(uintptr_t)dst;
	s.len = len;
	ret = server_start(&s, c, nv);
	if (ret)
		goto out_server;
	ret = -pthread_barrier_init(&bar, NULL, nv + 1);
	if (ret)
		goto out_server;
	for (k = 0; k < nv; k++) {
		t[k] = (struct toucher){ .mem = dst + k * (pages / nv) * PAGE,
					 .pages = k + 1 == nv ? pages - k * (pages / nv)
							      : pages / nv,
					 .cpu = vcpu_cpu(c, nv, k),
					 .bar = &bar };
		ret = -pthread_create(&th[k], NULL, toucher_main, &t[k]);
		if (ret) {
			fprintf(stderr, "vms_bench_guest: pthread_create: %s\n", strerror(-ret));
			exit(1);
		}
	}
	pthread_barrier_wait(&bar);
	for (k = 0; k < nv; k++) {
		pthread_join(th[k], NULL);
		if (t[k].start_ns < t0)
			t0 = t[k].start_ns;
		if (t[k].end_ns > end)
			end = t[k].end_ns;
	}
	pthread_barrier_destroy(&bar);
	*pps = (double)pages * 1e9 / (double)(end - t0);
out_server:
	if (s.stop_fd >= 0) {
		int err = server_stop(&s);

		if (!ret)
			ret = err;
	}
out:
	vms_uffd_close(&u);
	if (dst)
		munmap(dst, len);
	if (src)
		munmap(src, len);
	if (dfd >= 0)
		close(dfd);
	if (sfd >= 0)
		close(sfd);
	return ret;
}

/* ---- the in-process page handler on the VMM's own uffd ---- */

struct swapenv {
	struct env e;
	struct vms_uffd u;
	struct vms_page_handler *ph;
	struct server s;
	const char *dir;
};

static void swapenv_destroy(struct swapenv *w)
{
	if (w->s.stop_fd >= 0)
		server_stop(&w->s);
	vms_ph_destroy(w->ph);
	vms_uffd_close(&w->u);
	env_destroy(&w->e);
}

static int swapenv_create(struct swapenv *w, unsigned int nv, uint64_t len, const char *dir)
{
	struct vms_ph_region r;
	struct vms_ph_config cfg = { .regions = &r, .nregions = 1, .swap_dir = dir };
	int ret;

	memset(w, 0, sizeof(*w));
	w->u.fd = -1;
	w->s.stop_fd = -1;
	ret = env_create(&w->e, nv, len);
	if (ret)
		return ret;
	/* KVM faults on guest RAM from the kernel: no UFFD_USER_MODE_ONLY. */
	ret = vms_uffd_create(&w->u, UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE, 0);
	if (!ret)
		ret = vms_uffd_register(w->u.fd, (uint64_t)(uintptr_t)w->e.ram, len,
					UFFDIO_REGISTER_MODE_MISSING, VMS_UFFD_MISSING_IOCTLS,
					NULL);
	if (ret)
		goto err;
	r = (struct vms_ph_region){ .addr = (uint64_t)(uintptr_t)w->e.ram,
				    .len = len,
				    .memfd = w->e.ram_fd };
	ret = vms_ph_create(&cfg, &w->ph);
	if (ret)
		goto err;
	w->s.uffd = w->u.fd;
	w->s.ph = w->ph;
	w->s.base = r.addr;
	w->s.len = len;
	return 0;
err:
	swapenv_destroy(w);
	return ret;
}

static void host_fill(struct env *e)
{
	uint64_t i;

	for (i = 0; i < e->len / PAGE; i++)
		memset(e->alias + i * PAGE, (int)(i | 1), PAGE);
}

/* Enable: vCPUs are idle (between passes); move every resident page to staging. */
static int enable(struct swapenv *w, double *ms, double *ms_per_gib)
{
	uint64_t moved = 0, t0 = vms_now_ns(), ns;
	int ret;

	ret = vms_ph_move_all_to_staging(w->ph, &moved);
	ns = vms_now_ns() - t0;
	if (ret)
		return ret;
	if (moved != w->e.len / PAGE) {
		fprintf(stderr, "vms_bench_guest: enable moved %llu of %llu pages\n",
			(unsigned long long)moved, (unsigned long long)(w->e.len / PAGE));
		return -EPROTO;
	}
	if (ms)
		*ms = (double)ns / 1e6;
	if (ms_per_gib)
		*ms_per_gib = (double)ns / 1e6 / ((double)(moved * PAGE) / (double)(1ULL << 30));
	return 0;
}

static int swap_out_all(struct swapenv *w)
{
	uint64_t n;
	int ret;

	do {
		ret = vms_ph_swap_out(w->ph, UINT64_MAX, &n);
	} while (!ret && n);
	return ret;
}

static int swap_in_all(struct swapenv *w)
{
	uint64_t n;
	int ret;

	for (;;) {
		ret = vms_ph_swap_in(w->ph, w->u.fd, UINT64_MAX, &n);
		if (ret == -EAGAIN)
			continue; /* the server thread reads the events */
		if (ret || !n)
			return ret;
	}
}

/* Check that the handler served every page of the pass the expected way. */
static uint64_t last_around; /* fault_around_pages of the last pass checked */

static int check_served(struct swapenv *w, const char *what, uint64_t expect_staging,
			uint64_t expect_file, uint64_t expect_zero)
{
	struct vms_ph_metrics m;
	int ret = vms_ph_metrics(w->ph, &m);

	if (ret)
		return ret;
	last_around = m.fault_around_pages;
	if (m.copied_from_staging_pages == expect_staging &&
	    m.copied_from_file_pages == expect_file && m.zeroed_pages == expect_zero)
		return 0;
	fprintf(stderr,
		"vms_bench_guest: %s: served staging %llu file %llu zero %llu, expected "
		"%llu/%llu/%llu\n",
		what, (unsigned long long)m.copied_from_staging_pages,
		(unsigned long long)m.copied_from_file_pages, (unsigned long long)m.zeroed_pages,
		(unsigned long long)expect_staging, (unsigned long long)expect_file,
		(unsigned long long)expect_zero);
	return -EPROTO;
}

static int inproc_staging_once(struct swapenv *w, const struct fp_cfg *c, double *pps)
{
	uint64_t pages;
	int ret;

	/* Without fault-around the rate is bound per fault: 64 MiB measure it well. */
	w->e.pass_pages = c->around ? 0 : VARIANT_SHORT_PAGES;
	if (w->e.pass_pages > w->e.len / PAGE)
		w->e.pass_pages = 0;
	pages = pass_pages(&w->e);
	host_fill(&w->e);
	ret = enable(w, NULL, NULL);
	if (!ret)
		ret = server_start(&w->s, c, w->e.nv);
	if (!ret)
		ret = guest_pass(&w->e, c, pps);
	if (w->s.stop_fd >= 0) {
		int err = server_stop(&w->s);

		ret = ret ? ret : err;
	}
	if (!ret)
		ret = check_served(w, c->name, pages, 0, 0);
	w->e.pass_pages = 0;
	return ret;
}

/*
 * Staging pass with one fault-path configuration: pages/s, the best of up to
 * REPEATS passes while they took less than REPEAT_NS together (this host is
 * noisy; slow passes are long enough to average the noise out themselves).
 */
#define REPEATS	  3
#define REPEAT_NS 1000000000ULL
static int inproc_staging(struct swapenv *w, const struct fp_cfg *c, double *pps)
{
	uint64_t t0 = vms_now_ns();
	unsigned int i;
	double one;
	int ret = 0;

	*pps = 0;
	for (i = 0; i < REPEATS && !ret && vms_now_ns() - t0 < REPEAT_NS; i++) {
		ret = inproc_staging_once(w, c, &one);
		if (!ret && one > *pps)
			*pps = one;
	}
	return ret;
}

/* The default fault path over every scenario. */
static int run_inproc(unsigned int nv, uint64_t len, const char *dir, const struct fp_cfg *c)
{
	struct figures *f = &fig[nv - 1];
	uint64_t pages = len / PAGE, touched, t0, ns;
	struct swapenv w;
	struct pass p;
	int ret, err;

	ret = swapenv_create(&w, nv, len, dir);
	if (ret)
		return ret;
	ret = server_start(&w.s, c, nv);
	if (ret)
		goto out;
	/* Zero: fresh memory, nothing staged or swapped. */
	ret = guest_pass(&w.e, c, &f->zero);
	if (!ret)
		ret = check_served(&w, "zero", 0, 0, pages);
	/* Populate, then enable (the pause) and fault everything back from staging. */
	if (!ret) {
		host_fill(&w.e);
		ret = enable(&w, &f->pause_ms, &f->pause_ms_per_gib);
	}
	if (!ret)
		ret = guest_pass(&w.e, c, &f->staging);
	if (!ret)
		ret = check_served(&w, "staging", pages, 0, 0);
	if (!ret)
		f->around_share = (double)last_around * 100.0 / (double)pages;
	/* Swap file: enable, write everything out, fault it back. */
	if (!ret)
		ret = enable(&w, NULL, NULL);
	if (!ret)
		ret = swap_out_all(&w);
	if (!ret)
		ret = guest_pass(&w.e, c, &f->file);
	if (!ret)
		ret = check_served(&w, "file", 0, pages, 0);
	/* Resident speed with the uffd registered (no faults). */
	if (!ret)
		ret = guest_pass(&w.e, c, &f->disable_resident);
	/* Disable while the guest keeps running over its memory. */
	if (!ret)
		ret = enable(&w, NULL, NULL);
	if (!ret)
		ret = swap_out_all(&w);
	if (!ret)
		ret = pass_start(&p, &w.e, c, 0);
	if (!ret) {
		t0 = vms_now_ns();
		touched = pass_touched(&p);
		ret = swap_in_all(&w);
		ns = vms_now_ns() - t0;
		touched = pass_touched(&p) - touched;
		pass_stop(&p);
		err = pass_wait(&p, NULL);
		ret = ret ? ret : err;
		f->disable_ms = (double)ns / 1e6;
		f->disable_progress = (double)touched * 1e9 / (double)ns;
	}
out:
	err = w.s.stop_fd >= 0 ? server_stop(&w.s) : 0;
	ret = ret ? ret : err;
	swapenv_destroy(&w);
	return ret;
}

/* ---- the monitor process, through the controller ---- */

static int wait_state(struct vms_controller *ctl, int want, struct vms_swap_status *st)
{
	uint64_t deadline = vms_now_ns() + WAIT_MS * 1000000ULL;
	int ret;

	for (;;) {
		ret = vms_controller_status(ctl, st);
		if (ret)
			return ret;
		if (st->state == want)
			return 0;
		if (st->state == VMS_SWAP_FAILED || vms_now_ns() > deadline) {
			fprintf(stderr, "vms_bench_guest: monitor in state %s, want %s\n",
				vms_swap_state_name(st->state), vms_swap_state_name(want));
			return -EPROTO;
		}
		usleep(1000);
	}
}

static int ctl_cmd(int ret, const struct vms_reply *r, const char *what)
{
	char buf[128];

	if (!ret && r->result == VMS_REPLY_ACCEPTED)
		return 0;
	if (!ret)
		vms_reply_describe(r, buf, sizeof(buf));
	fprintf(stderr, "vms_bench_guest: monitor %s: %s\n", what, ret ? strerror(-ret) : buf);
	return ret ? ret : -EPROTO;
}

/* Enable (timed: vCPUs are idle meanwhile) and check the pages moved. */
static int mon_enable(struct vms_controller *ctl, uint64_t expect, double *ms_per_gib)
{
	struct vms_swap_status st;
	struct vms_reply r;
	uint64_t t0 = vms_now_ns(), ns;
	int ret;

	ret = ctl_cmd(vms_controller_enable(ctl, &r), &r, "enable");
	ns = vms_now_ns() - t0;
	if (!ret)
		ret = vms_controller_status(ctl, &st);
	if (!ret && st.state_transition.pages != expect) {
		fprintf(stderr, "vms_bench_guest: monitor moved %llu pages, want %llu\n",
			(unsigned long long)st.state_transition.pages, (unsigned long long)expect);
		ret = -EPROTO;
	}
	if (!ret && ms_per_gib)
		*ms_per_gib = (double)ns / 1e6 / ((double)(expect * PAGE) / (double)(1ULL << 30));
	return ret;
}

static int mon_disable(struct vms_controller *ctl)
{
	struct vms_swap_status st;
	struct vms_reply r;
	int ret = ctl_cmd(vms_controller_disable(ctl, false, &r), &r, "disable");

	return ret ? ret : wait_state(ctl, VMS_SWAP_READY, &st);
}

/* Which way the monitor served the pass's pages (metrics of the current enable). */
static int mon_check(struct vms_controller *ctl, const char *what, uint64_t staging, uint64_t file,
		     uint64_t zero)
{
	struct vms_swap_status st;
	int ret = vms_controller_status(ctl, &st);

	if (ret)
		return ret;
	if (st.metrics.copied_from_staging_pages == staging &&
	    st.metrics.copied_from_file_pages == file && st.metrics.zeroed_pages == zero)
		return 0;
	fprintf(stderr,
		"vms_bench_guest: monitor %s: served staging %llu file %llu zero %llu, "
		"expected %llu/%llu/%llu\n",
		what, (unsigned long long)st.metrics.copied_from_staging_pages,
		(unsigned long long)st.metrics.copied_from_file_pages,
		(unsigned long long)st.metrics.zeroed_pages, (unsigned long long)staging,
		(unsigned long long)file, (unsigned long long)zero);
	return -EPROTO;
}

/* The monitor's fault-around limit for the "[around N]" row (minivmm's default). */
#define MON_AROUND 64

/*
 * The same passes with the faults served by the monitor process (its own event
 * loop and page handler, as shipped): zero, staging, swap file, enable pause.
 * around > 0 or coloc: only the staging pass, with that fault-around limit, and with
 * coloc vCPU 0 and the monitor's fault-serving thread on CPU 0 (one vCPU only).
 * Returns 1 (and says why) when the controller cannot launch here.
 */
static int run_monitor(unsigned int nv, uint64_t len, const char *dir, const struct fp_cfg *c,
		       unsigned int around, bool coloc)
{
	struct fp_cfg pinned = *c;
	struct figures *f = &fig[nv - 1];
	uint64_t pages = len / PAGE;
	struct vms_controller *ctl = NULL;
	struct vms_swap_status st;
	struct vms_reply r;
	struct vms_region reg;
	struct vms_controller_opts o;
	struct env e;
	double pps;
	int ret, err;

	ret = env_create(&e, nv, len);
	if (ret)
		return ret;
	reg = (struct vms_region){ .addr = (uint64_t)(uintptr_t)e.ram,
				   .len = len,
				   .memfd = e.ram_fd };
	o = (struct vms_controller_opts){ .regions = &reg,
					  .nregions = 1,
					  .swap_dir = dir,
					  .flags = VMS_CTL_NO_FREEZE,
					  .fault_around_pages = around };
	if (coloc) {
		pinned.pin = PIN_SAME; /* vCPU i on CPU i */
		c = &pinned;
		o.flags |= VMS_CTL_FAULT_CPU;
		o.fault_cpu = 0;
	}
	ret = vms_controller_launch(&o, &ctl);
	if (ret) {
		printf("monitor (%u vCPU) skipped: launch: %s\n", nv, strerror(-ret));
		env_destroy(&e);
		return 1;
	}
	if (around || coloc) {
		struct vms_monitor_info mi;

		host_fill(&e);
		ret = guest_pass(&e, c, &pps);
		if (!ret)
			ret = mon_enable(ctl, pages, NULL);
		if (!ret)
			ret = guest_pass(&e, c,
					 coloc ? &f->mon_staging_coloc : &f->mon_staging_around);
		if (!ret)
			ret = mon_check(ctl, "staging (fault-around)", pages, 0, 0);
		if (!ret)
			ret = vms_controller_info(ctl, &mi);
		if (!ret && !coloc)
			f->mon_around_share =
				(double)mi.fault_around_filled * 100.0 / (double)pages;
		if (!ret)
			ret = mon_disable(ctl);
		err = vms_controller_exit(ctl);
		ret = ret ? ret : err;
		env_destroy(&e);
		if (coloc)
			f->have_mon_coloc = !ret;
		else
			f->have_mon_around = !ret;
		return ret;
	}
	/* Zero: enable over memory never written (nothing moves). */
	ret = mon_enable(ctl, 0, NULL);
	if (!ret)
		ret = guest_pass(&e, c, &f->mon_zero);
	if (!ret)
		ret = mon_check(ctl, "zero", 0, 0, pages);
	if (!ret)
		ret = mon_disable(ctl);
	/* Staging, with the enable pause. */
	if (!ret) {
		host_fill(&e);
		ret = guest_pass(&e, c, &pps);
	}
	if (!ret)
		ret = mon_enable(ctl, pages, &f->mon_pause_ms_per_gib);
	if (!ret)
		ret = guest_pass(&e, c, &f->mon_staging);
	if (!ret)
		ret = mon_check(ctl, "staging", pages, 0, 0);
	if (!ret)
		ret = mon_disable(ctl);
	/* Swap file. */
	if (!ret)
		ret = mon_enable(ctl, pages, NULL);
	if (!ret)
		ret = ctl_cmd(vms_controller_swap_out(ctl, &r), &r, "swap-out");
	if (!ret)
		ret = wait_state(ctl, VMS_SWAP_ACTIVE, &st);
	if (!ret)
		ret = guest_pass(&e, c, &f->mon_file);
	if (!ret)
		ret = mon_check(ctl, "file", 0, pages, 0);
	if (!ret)
		ret = mon_disable(ctl);
	err = vms_controller_exit(ctl);
	ret = ret ? ret : err;
	env_destroy(&e);
	f->have_mon = !ret;
	return ret;
}

/* ---- the peer ---- */

static int peer_path(const char *opt, char *path, size_t len, char *why, size_t wlen)
{
	char line[512];
	FILE *f;
	int st;

	if (opt && !strcmp(opt, "none")) {
		snprintf(why, wlen, "disabled with -P none");
		return -ENOENT;
	}
	if (opt) {
		snprintf(path, len, "%s", opt);
		return access(path, X_OK) ? -errno : 0;
	}
	f = popen("tools/bench/peer_build.sh demand_paging_test 2>build/peer_build.log", "r");
	if (!f) {
		snprintf(why, wlen, "cannot run tools/bench/peer_build.sh");
		return -errno;
	}
	path[0] = 0;
	while (fgets(line, sizeof(line), f))
		snprintf(path, len, "%.*s", (int)strcspn(line, "\n"), line);
	st = pclose(f);
	if (st || !path[0] || access(path, X_OK)) {
		snprintf(why, wlen, "build failed, see build/peer_build.log");
		return -ENOENT;
	}
	return 0;
}

static int run_peer(const char *bin, unsigned int nv, uint64_t len, double *pps, char *why,
		    size_t wlen)
{
	char cmd[1024], line[512];
	FILE *f;
	int st;

	*pps = 0;
	snprintf(cmd, sizeof(cmd), "%s -u MISSING -s shmem -b %lluM -v %u 2>&1", bin,
		 (unsigned long long)(len / nv >> 20), nv);
	f = popen(cmd, "r");
	if (!f) {
		snprintf(why, wlen, "popen failed");
		return -errno;
	}
	while (fgets(line, sizeof(line), f))
		sscanf(line, "Overall demand paging rate: %lf", pps);
	st = pclose(f);
	if (st || *pps <= 0) {
		snprintf(why, wlen, "demand_paging_test failed (status %d)", st);
		return -EIO;
	}
	return 0;
}

/* ---- output ---- */

static void print_table(FILE *out)
{
	unsigned int i;

	fprintf(out, "%-58s %14s %-9s %14s %7s\n", "metric", "ours", "vs", "other", "ratio");
	for (i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		char other[32] = "-", ratio[16] = "-";

		if (r->other > 0) {
			snprintf(other, sizeof(other), "%.1f", r->other);
			snprintf(ratio, sizeof(ratio), "%.2fx", r->ours / r->other);
		}
		fprintf(out, "%-58s %14.1f %-9s %14s %7s\n", r->metric, r->ours,
			r->vs[0] ? r->vs : "-", other, ratio);
	}
}

static int write_json(const char *path, const char *date, const char *machine, uint64_t mib)
{
	FILE *f = fopen(path, "w");
	unsigned int i;

	if (!f)
		return -errno;
	fprintf(f, "{\n  \"date\": \"%s\",\n  \"machine\": \"%s\",\n  \"guest_mib\": %llu,\n", date,
		machine, (unsigned long long)mib);
	fprintf(f, "  \"rows\": [\n");
	for (i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];

		fprintf(f, "    {\"metric\": \"%s\", \"unit\": \"%s\", \"ours\": %.3f", r->metric,
			r->unit, r->ours);
		if (r->other > 0)
			fprintf(f, ", \"vs\": \"%s\", \"other\": %.3f, \"ratio\": %.4f", r->vs,
				r->other, r->ours / r->other);
		fprintf(f, "}%s\n", i + 1 < nrows ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	if (fclose(f))
		return -errno;
	return 0;
}

static void machine_name(char *buf, size_t len)
{
	char model[256] = "unknown CPU", line[512];
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
			snprintf(model, sizeof(model), "%.*s",
				 (int)strcspn(strchr(line, ':') + 2, "\n"), strchr(line, ':') + 2);
			break;
		}
	}
	if (f)
		fclose(f);
	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "?");
	snprintf(buf, len, "%s, %d CPUs, Linux %s", model, ncpus(), u.release);
}

/* ---- main ---- */

static int usage(void)
{
	fprintf(stderr, "usage: vms_bench_guest [-s MiB] [-v max_vcpus] [-d swap_dir] "
			"[-j json] [-P peer_binary|none] [-c variant] [-q]\n");
	return 1;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "vms_bench_guest: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

int main(int argc, char **argv)
{
	/* The default fault path and the variants, each lever alone. */
	static const struct fp_cfg variants[] = {
		{ "base", 1, 1, PIN_NONE, 0 },
		{ "batch", 1, EVENT_BATCH, PIN_NONE, 0 },
		{ "pin-sep", 1, 1, PIN_SEP, 0 },
		{ "pin-same", 1, 1, PIN_SAME, 0 },
		{ "server-per-vcpu", 0, 1, PIN_NONE, 0 },
		{ "around-64", 1, 1, PIN_NONE, 64 },
		{ "around-512", 1, 1, PIN_NONE, 512 },
		{ "server-per-vcpu+around-64", 0, 1, PIN_NONE, 64 },
		{ "all", 1, EVENT_BATCH, PIN_AUTO, 64 },
	};
	static const struct fp_cfg colocated = { "colocated", 0, 1, PIN_SAME, 0 };
	const size_t nvariants = sizeof(variants) / sizeof(variants[0]);
	const struct fp_cfg *def = &variants[nvariants - 1], *vbase = &variants[0];
	const char *dir = getenv("VMS_BENCH_DIR"), *json = "build/bench-guest.json";
	const char *peer_opt = NULL;
	char peer_bin[512] = "", peer_why[160] = "", date[64], machine[384], name[128];
	unsigned int maxv = MAX_VCPUS, nv, i;
	uint64_t mib = 256, len;
	bool quick = false;
	time_t now;
	int opt, ret;

	if (!dir)
		dir = getenv("TMPDIR");
	if (!dir)
		dir = "/tmp";
	while ((opt = getopt(argc, argv, "s:v:d:j:P:qf:c:")) != -1) {
		switch (opt) {
		case 's':
			mib = strtoull(optarg, NULL, 0);
			break;
		case 'v':
			maxv = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'd':
			dir = optarg;
			break;
		case 'j':
			json = optarg;
			break;
		case 'P':
			peer_opt = optarg;
			break;
		case 'q':
			quick = true;
			break;
		case 'c':
			for (i = 0; i < nvariants && strcmp(variants[i].name, optarg); i++)
				;
			if (i == nvariants)
				return usage();
			def = &variants[i];
			break;
		case 'f':
			break; /* vms_bench_pages' option, passed to every bench by bench.sh */
		default:
			return usage();
		}
	}
	if (!mib || mib % 2 || maxv < 1 || maxv > MAX_VCPUS)
		return usage();
	len = mib << 20;
	vms_set_log_level(VMS_LOG_ERROR);

	ret = minivm_kvm_available();
	if (ret) {
		printf("vms_bench_guest: /dev/kvm unusable (%s): nothing measured\n",
		       strerror(-ret));
		return 0;
	}
	ret = vms_uffd_probe(0, NULL, NULL);
	if (ret) {
		printf("vms_bench_guest: userfaultfd unusable (%s): nothing measured\n",
		       strerror(-ret));
		return 0;
	}
	now = time(NULL);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	machine_name(machine, sizeof(machine));
	printf("vms_bench_guest: %llu MiB guest RAM, 1..%u vCPUs, ring 3; %s; %s\n",
	       (unsigned long long)mib, maxv, date, machine);
	if (peer_path(peer_opt, peer_bin, sizeof(peer_bin), peer_why, sizeof(peer_why)))
		printf("peer skipped: %s\n", peer_why);

	for (nv = 1; nv <= maxv; nv++) {
		struct figures *f = &fig[nv - 1];
		double vpps[sizeof(variants) / sizeof(variants[0])] = { 0 };
		double pps;

		ret = run_baseline(nv, len, def);
		if (ret)
			return fail("no-uffd baseline", ret);
		/* The limit at its best placement: unpinned or co-located. */
		ret = run_limit(nv, len, vbase, false, &f->limit_copy);
		if (!ret)
			ret = run_limit(nv, len, &colocated, false, &pps);
		if (!ret && pps > f->limit_copy)
			f->limit_copy = pps;
		if (!ret)
			ret = run_limit(nv, len, vbase, true, &f->limit_zero);
		if (!ret)
			ret = run_limit(nv, len, &colocated, true, &pps);
		if (!ret && pps > f->limit_zero)
			f->limit_zero = pps;
		if (ret)
			return fail("host-thread limit", ret);
		ret = run_inproc(nv, len, dir, def);
		if (ret)
			return fail("in-process page handler", ret);
		ret = run_monitor(nv, len, dir, vbase, 0, false);
		if (ret < 0)
			return fail("monitor", ret);
		if (!ret) {
			ret = run_monitor(nv, len, dir, vbase, MON_AROUND, false);
			if (ret < 0)
				return fail("monitor (fault-around)", ret);
		}
		if (!ret && nv == 1) {
			ret = run_monitor(nv, len, dir, vbase, 0, true);
			if (ret < 0)
				return fail("monitor (co-located)", ret);
		}
		/* The peer: best of two runs, like our best-of passes. */
		for (i = 0; peer_bin[0] && i < 2; i++) {
			if (run_peer(peer_bin, nv, len, &pps, f->peer_why, sizeof(f->peer_why))) {
				printf("peer (%u vCPU) skipped: %s\n", nv, f->peer_why);
				break;
			}
			if (pps > f->peer)
				f->peer = pps;
		}
		/* The variants: each lever alone, then all, staging pass. */
		if (!quick) {
			struct swapenv w;

			ret = swapenv_create(&w, nv, len, dir);
			if (ret)
				return fail("variants", ret);
			for (i = 0; i < nvariants && !ret; i++) {
				/* With one vCPU, one server per vCPU repeats another variant. */
				if (nv == 1 && !variants[i].servers && variants[i].batch == 1 &&
				    variants[i].pin == PIN_NONE)
					continue;
				ret = inproc_staging(&w, &variants[i], &vpps[i]);
			}
			swapenv_destroy(&w);
			if (ret)
				return fail("variants", ret);
			f->var_base = vpps[0];
			/* The default configuration ran twice: keep its best. */
			for (i = 0; i < nvariants; i++)
				if (&variants[i] == def && vpps[i] > f->staging)
					f->staging = vpps[i];
		}

		snprintf(name, sizeof(name), "%uv no-uffd first touch", nv);
		add_row(name, "pages/s", f->base_alloc, NULL, 0);
		snprintf(name, sizeof(name), "%uv no-uffd resident", nv);
		add_row(name, "pages/s", f->base_resident, NULL, 0);
		snprintf(name, sizeof(name), "%uv inproc staging [%s]", nv, def->name);
		add_row(name, "pages/s", f->staging, "peer", f->peer);
		add_row(name, "pages/s", f->staging, "limit", f->limit_copy);
		snprintf(name, sizeof(name), "%uv inproc staging: pages by fault-around", nv);
		add_row(name, "%", f->around_share, NULL, 0);
		snprintf(name, sizeof(name), "%uv inproc swap file", nv);
		add_row(name, "pages/s", f->file, "peer", f->peer);
		snprintf(name, sizeof(name), "%uv inproc zero", nv);
		add_row(name, "pages/s", f->zero, "peer", f->peer);
		add_row(name, "pages/s", f->zero, "limit-0", f->limit_zero);
		snprintf(name, sizeof(name), "%uv inproc enable pause", nv);
		add_row(name, "ms/GiB", f->pause_ms_per_gib, NULL, 0);
		snprintf(name, sizeof(name), "%uv inproc disable (swap-in, guest running)", nv);
		add_row(name, "ms", f->disable_ms, NULL, 0);
		snprintf(name, sizeof(name), "%uv guest progress during disable", nv);
		add_row(name, "pages/s", f->disable_progress, "resident", f->disable_resident);
		if (f->have_mon) {
			snprintf(name, sizeof(name), "%uv monitor staging", nv);
			add_row(name, "pages/s", f->mon_staging, "peer", f->peer);
			add_row(name, "pages/s", f->mon_staging, "limit", f->limit_copy);
			if (f->have_mon_around) {
				snprintf(name, sizeof(name), "%uv monitor staging [around %u]", nv,
					 MON_AROUND);
				add_row(name, "pages/s", f->mon_staging_around, "limit",
					f->limit_copy);
				snprintf(name, sizeof(name),
					 "%uv monitor staging: pages by fault-around", nv);
				add_row(name, "%", f->mon_around_share, NULL, 0);
			}
			if (f->have_mon_coloc) {
				snprintf(name, sizeof(name), "%uv monitor staging [co-located]",
					 nv);
				add_row(name, "pages/s", f->mon_staging_coloc, "limit",
					f->limit_copy);
			}
			snprintf(name, sizeof(name), "%uv monitor swap file", nv);
			add_row(name, "pages/s", f->mon_file, "peer", f->peer);
			snprintf(name, sizeof(name), "%uv monitor zero", nv);
			add_row(name, "pages/s", f->mon_zero, "peer", f->peer);
			snprintf(name, sizeof(name), "%uv monitor enable pause", nv);
			add_row(name, "ms/GiB", f->mon_pause_ms_per_gib, NULL, 0);
		}
		for (i = 0; !quick && i < nvariants; i++) {
			const struct fp_cfg *c = &variants[i];

			if (vpps[i] <= 0)
				continue;
			snprintf(name, sizeof(name),
				 "%uv staging [%s: servers %u batch %u pin %s around %u]%s", nv,
				 c->name, c->servers ? c->servers : nv, c->batch,
				 pin_name(pin_eff(c, nv)), c->around,
				 c->around || len / PAGE <= VARIANT_SHORT_PAGES ? "" : " 64M");
			add_row(name, "pages/s", vpps[i], c == vbase ? NULL : "base", vpps[0]);
		}
	}
	if (maxv >= 2 && fig[0].staging > 0) {
		double peer_scale = fig[0].peer > 0 ? fig[1].peer / fig[0].peer : 0;

		snprintf(name, sizeof(name), "scaling 2v/1v inproc staging [%s]", def->name);
		add_row(name, "x", fig[1].staging / fig[0].staging, peer_scale > 0 ? "peer" : NULL,
			peer_scale);
		if (fig[0].var_base > 0)
			add_row("scaling 2v/1v inproc staging [base]", "x",
				fig[1].var_base / fig[0].var_base, peer_scale > 0 ? "peer" : NULL,
				peer_scale);
		if (fig[0].have_mon && fig[1].have_mon)
			add_row("scaling 2v/1v monitor staging", "x",
				fig[1].mon_staging / fig[0].mon_staging,
				peer_scale > 0 ? "peer" : NULL, peer_scale);
	}
	printf("\n");
	print_table(stdout);
	ret = write_json(json, date, machine, mib);
	if (ret)
		return fail(json, ret);
	printf("\nsaved %s\n", json);
	return 0;
}
