// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvm_uffd_test - the kernel contract between KVM and userfaultfd that vmm-swap
 * stands on: a vCPU touching guest RAM that is missing from a uffd-registered memfd
 * blocks in the kernel until userspace fills the page, and a MADV_REMOVE makes the
 * next guest access fault again.
 *
 * The guest runs in ring 3, in 64-bit mode, set up by libminivm (tools/vm/).
 * Guest-physical layout:
 *   [0, 2 MiB)                  low RAM (plain memfd): system area, guest code
 *   [16 MiB, 16 MiB + 64 KiB)    data RAM: memfd MAP_SHARED, registered MISSING
 *   MMIO_REPORT / MMIO_DONE     doorbells (no RAM behind them)
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/contract.h"
#include <vm/kvm_vm.h>

#define PAGE	    4096UL
#define LOW_GPA	    0x0UL
#define LOW_SIZE    (2UL << 20)
#define STACK_TOP   0x1ff000UL
#define DATA_GPA    (16UL << 20)
#define DATA_PAGES  16
#define DATA_SIZE   (DATA_PAGES * PAGE)
#define MMIO_REPORT MINIVM_MMIO_BASE
#define MMIO_DONE   (MMIO_REPORT + 8)
#define MAGIC	    0x5a5a000000000000UL
#define WAIT_MS	    10000 /* bound for every wait on another thread */

/*
 * Guest code (ring 3, position independent), copied into guest RAM at MINIVM_CODE_GPA:
 * read the first qword of each of rsi pages from rdi on, report each value with an
 * MMIO write to (rdx), then write the page count to 8(rdx) to say "done".
 */
asm(".pushsection .rodata\n"
    "guest_read_pages:\n"
    "	mov %rsi, %rcx\n"
    "1:	mov (%rdi), %rax\n"
    "	mov %rax, (%rdx)\n"
    "	add $4096, %rdi\n"
    "	dec %rcx\n"
    "	jnz 1b\n"
    "	mov %rsi, 8(%rdx)\n"
    "	ud2\n"
    "guest_read_pages_end:\n"
    ".popsection\n");
extern const char guest_read_pages[], guest_read_pages_end[];

/* The fault handler thread's state; counters are read by the test with atomics. */
struct handler {
	int uffd;
	int stop_efd;			 /* written by the test to stop the thread */
	int remove_efd;			 /* written by the thread after it handled a REMOVE event */
	uint64_t base;			 /* host address of data RAM */
	unsigned int faults[DATA_PAGES]; /* PAGEFAULT events per page */
	unsigned int removes;
	uint64_t remove_start, remove_end;
	int error; /* first error, as a negative errno */
	pthread_t thread;
};

/* What a fill of page i puts in its first qword: which page, which fill. */
static uint64_t page_value(unsigned int page, unsigned int nth_fill)
{
	return MAGIC | (uint64_t)page << 16 | nth_fill;
}

static void set_error(struct handler *h, int err)
{
	int zero = 0;

	__atomic_compare_exchange_n(&h->error, &zero, err, false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
}

/* Fill the faulting page with UFFDIO_COPY; EAGAIN means events are pending first. */
static int handle_fault(struct handler *h, uint64_t addr)
{
	uint64_t page_addr = addr & ~(PAGE - 1);
	unsigned int i = (page_addr - h->base) / PAGE;
	unsigned int n;
	uint64_t buf[PAGE / 8] = {0};
	int ret;

	if (page_addr < h->base || i >= DATA_PAGES)
		return -ERANGE;
	n = __atomic_add_fetch(&h->faults[i], 1, __ATOMIC_SEQ_CST);
	buf[0] = page_value(i, n);
	/* Raw ioctls: a library bug must not read as a kernel regression. */
	ret = ct_copy(h->uffd, (void *)(uintptr_t)page_addr, buf, PAGE, 0, NULL);
	if (ret == -EEXIST)
		ret = ct_wake(h->uffd, (void *)(uintptr_t)page_addr, PAGE);
	return ret;
}

static int handle_events(struct handler *h)
{
	struct uffd_msg msgs[16];
	size_t n, k;
	int ret;

	ret = (int)read(h->uffd, msgs, sizeof(msgs));
	if (ret < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (ret % sizeof(msgs[0]))
		return -EIO;
	n = (size_t)ret / sizeof(msgs[0]);
	for (k = 0; k < n; k++) {
		struct uffd_msg *m = &msgs[k];

		switch (m->event) {
		case UFFD_EVENT_PAGEFAULT:
			ret = handle_fault(h, m->arg.pagefault.address);
			break;
		case UFFD_EVENT_REMOVE:
			h->remove_start = m->arg.remove.start;
			h->remove_end = m->arg.remove.end;
			__atomic_add_fetch(&h->removes, 1, __ATOMIC_SEQ_CST);
			ret = eventfd_write(h->remove_efd, 1) < 0 ? -errno : 0;
			break;
		default:
			ret = -EPROTO;
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void *handler_main(void *arg)
{
	struct handler *h = arg;
	struct pollfd pfd[2] = {
		{.fd = h->uffd, .events = POLLIN},
		{.fd = h->stop_efd, .events = POLLIN},
	};
	int ret;

	for (;;) {
		/* The timeout only bounds a wedged test; the test stops us via stop_efd. */
		ret = poll(pfd, 2, WAIT_MS);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			set_error(h, ret < 0 ? -errno : -ETIMEDOUT);
			return NULL;
		}
		if (pfd[1].revents)
			return NULL;
		if (pfd[0].revents & (POLLERR | POLLHUP)) {
			set_error(h, -EIO);
			return NULL;
		}
		ret = handle_events(h);
		if (ret < 0) {
			set_error(h, ret);
			return NULL;
		}
	}
}

/* Wait (bounded) until an eventfd is readable and consume it. */
static int wait_eventfd(int efd)
{
	struct pollfd pfd = {.fd = efd, .events = POLLIN};
	eventfd_t v;
	int ret;

	do {
		ret = poll(&pfd, 1, WAIT_MS);
	} while (ret < 0 && errno == EINTR);
	if (ret <= 0)
		return ret < 0 ? -errno : -ETIMEDOUT;
	return eventfd_read(efd, &v) < 0 ? -errno : 0;
}

static int map_memfd(const char *name, size_t size, int *fd_out, void **mem_out)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	void *mem;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size) < 0)
		goto err;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		goto err;
	*fd_out = fd;
	*mem_out = mem;
	return 0;
err:
	close(fd);
	return -errno;
}

FIXTURE (kvm_uffd) {
	struct minivm vm;
	struct minivm_vcpu vcpu;
	int low_fd, data_fd;
	void *low, *data;
	struct ct_env env;
	struct ct_uffd uffd;
	struct handler h;
	bool handler_running;
};

FIXTURE_SETUP (kvm_uffd) {
	/* KVM must see guest-memory faults: no UFFD_USER_MODE_ONLY here. */
	uint64_t features = UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE;
	int ret;

	ret = minivm_kvm_available();
	if (ret < 0)
		SKIP(return, "/dev/kvm not usable: %s", strerror(-ret));
	ct_env_init(&self->env);
	self->uffd.fd = -1;
	CT_REQUIRE_KERNEL(&self->env, 4, 11, "KVM faults on uffd-registered shmem");
	/* No CT_USER_MODE_OK: KVM's accesses to guest memory are kernel-mode faults. */
	CT_UFFD_OPEN_OR_SKIP(&self->uffd, &self->env, CT_VIA_ANY, features);

	ASSERT_EQ(0, map_memfd("guest-low", LOW_SIZE, &self->low_fd, &self->low));
	ASSERT_EQ(0, map_memfd("guest-data", DATA_SIZE, &self->data_fd, &self->data));
	ASSERT_EQ(0,
		  ct_register(self->uffd.fd, self->data, DATA_SIZE, UFFDIO_REGISTER_MODE_MISSING,
			      NULL));

	ASSERT_EQ(0, minivm_create(&self->vm));
	ASSERT_LE(0, minivm_add_region(&self->vm, LOW_GPA, self->low, LOW_SIZE));
	ASSERT_LE(0, minivm_add_region(&self->vm, DATA_GPA, self->data, DATA_SIZE));
	ASSERT_EQ(0, minivm_setup_long_mode(&self->vm, MINIVM_SYS_GPA, MINIVM_MAP_SIZE, MINIVM_EXC_GPA));
	ASSERT_EQ(0, minivm_load(&self->vm, MINIVM_CODE_GPA, guest_read_pages,
				 guest_read_pages_end - guest_read_pages));
	ASSERT_EQ(0, minivm_vcpu_create(&self->vm, 0, &self->vcpu));

	self->h.uffd = self->uffd.fd;
	self->h.base = (uintptr_t)self->data;
	self->h.stop_efd = eventfd(0, EFD_CLOEXEC);
	self->h.remove_efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, self->h.stop_efd);
	ASSERT_LE(0, self->h.remove_efd);
	ASSERT_EQ(0, pthread_create(&self->h.thread, NULL, handler_main, &self->h));
	self->handler_running = true;
}

FIXTURE_TEARDOWN (kvm_uffd) {
	if (self->handler_running) {
		eventfd_write(self->h.stop_efd, 1);
		pthread_join(self->h.thread, NULL);
	}
	close(self->h.stop_efd);
	close(self->h.remove_efd);
	minivm_vcpu_destroy(&self->vcpu);
	minivm_destroy(&self->vm);
	ct_uffd_close(&self->uffd);
	munmap(self->data, DATA_SIZE);
	munmap(self->low, LOW_SIZE);
	close(self->data_fd);
	close(self->low_fd);
}

/*
 * Run the guest once over all data pages (ring 3). Returns 0 when it reported every
 * page and said done; seen[] gets the value it read from each page.
 */
static int run_guest_pass(struct __test_metadata *_metadata, struct minivm_vcpu *vcpu,
			  uint64_t seen[DATA_PAGES])
{
	struct minivm_exit e;
	unsigned int reported = 0;
	int ret, i;

	ret = minivm_vcpu_enter_long_mode(vcpu, MINIVM_CODE_GPA, STACK_TOP, true);
	if (!ret)
		ret = minivm_vcpu_set_args(vcpu, DATA_GPA, DATA_PAGES, MMIO_REPORT, 0);
	if (ret)
		return ret;

	/* Every exit is an MMIO write: one per page plus "done". */
	for (i = 0; i < DATA_PAGES + 1; i++) {
		ret = minivm_vcpu_run(vcpu, &e);
		if (ret)
			return ret;
		if (e.reason == MINIVM_EXIT_MMIO && e.mmio.is_write && e.mmio.addr == MMIO_REPORT &&
		    reported < DATA_PAGES) {
			seen[reported++] = e.mmio.data;
			continue;
		}
		if (e.reason == MINIVM_EXIT_MMIO && e.mmio.is_write && e.mmio.addr == MMIO_DONE)
			return reported == DATA_PAGES && e.mmio.data == DATA_PAGES ? 0 : -EPROTO;
		if (e.reason == MINIVM_EXIT_EXCEPTION)
			TH_LOG("guest exception %u at rip %#lx cr2 %#lx", e.exception.vector,
			       (unsigned long)e.exception.rip, (unsigned long)e.exception.cr2);
		else
			TH_LOG("unexpected exit %s (KVM %u) addr %#lx", minivm_exit_name(e.reason),
			       e.kvm_reason, (unsigned long)e.mmio.addr);
		return -EPROTO;
	}
	return -EPROTO;
}

/*
 * A vCPU touching missing uffd-registered guest RAM blocks until UFFDIO_COPY fills
 * it, then sees the data: swap-in on demand relies on exactly this.
 */
TEST_F (kvm_uffd, guest_fault_on_missing_page_is_resolved_by_copy) {
	uint64_t seen[DATA_PAGES];
	unsigned int i;

	ASSERT_EQ(0, run_guest_pass(_metadata, &self->vcpu, seen));
	ASSERT_EQ(0, __atomic_load_n(&self->h.error, __ATOMIC_SEQ_CST));
	for (i = 0; i < DATA_PAGES; i++) {
		EXPECT_EQ(1, __atomic_load_n(&self->h.faults[i], __ATOMIC_SEQ_CST));
		EXPECT_EQ(page_value(i, 1), seen[i]);
	}
}

/*
 * MADV_REMOVE of guest RAM (REMOVE event consumed by the handler) makes the next
 * guest access fault again: the balloon and swap-out drop pages this way and must
 * get the guest's next touch as a fault, not stale data.
 */
TEST_F (kvm_uffd, guest_access_after_madv_remove_faults_again) {
	const unsigned int victim = 5;
	uint64_t seen[DATA_PAGES];
	char *page = (char *)self->data + victim * PAGE;
	unsigned int i;

	ASSERT_EQ(0, run_guest_pass(_metadata, &self->vcpu, seen));
	ASSERT_EQ(page_value(victim, 1), seen[victim]);

	/* Blocks until the handler thread has read the REMOVE event. */
	ASSERT_EQ(0, madvise(page, PAGE, MADV_REMOVE));
	ASSERT_EQ(0, wait_eventfd(self->h.remove_efd));
	ASSERT_EQ(1, __atomic_load_n(&self->h.removes, __ATOMIC_SEQ_CST));
	EXPECT_EQ((uintptr_t)page, self->h.remove_start);
	EXPECT_EQ((uintptr_t)page + PAGE, self->h.remove_end);

	ASSERT_EQ(0, run_guest_pass(_metadata, &self->vcpu, seen));
	ASSERT_EQ(0, __atomic_load_n(&self->h.error, __ATOMIC_SEQ_CST));
	for (i = 0; i < DATA_PAGES; i++) {
		unsigned int fills = i == victim ? 2 : 1;

		EXPECT_EQ(fills, __atomic_load_n(&self->h.faults[i], __ATOMIC_SEQ_CST));
		EXPECT_EQ(page_value(i, fills), seen[i]);
	}
}

TEST_HARNESS_MAIN
