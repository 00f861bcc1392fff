// SPDX-License-Identifier: MIT
/*
 * devices.c - device processes: fork, uffd registration, the DMA worker thread, and
 * the VMM side of their command socket.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vmmswap/controller.h>

#include "vmm/devices.h"

#define WORDS_PER_PAGE (MVM_GUEST_PAGE_SIZE / 8)

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

/* ---- the child ---- */

struct dev_child {
	const struct minivm_ram *ram;
	int sock;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool has_work;
	struct minivm_dev_msg work;
};

static void dma_fill(const struct minivm_ram *ram, uint64_t start, uint64_t count, uint64_t seed)
{
	uint64_t p, w;

	for (p = start; p < start + count; p++) {
		uint64_t *words = minivm_ram_page(ram, p);

		for (w = 0; w < WORDS_PER_PAGE; w++)
			words[w] = mvm_pattern(seed, p, w);
	}
}

static void dma_verify(const struct minivm_ram *ram, const struct minivm_dev_msg *m,
		       struct minivm_dev_reply *r)
{
	uint64_t p, w;

	for (p = m->a; p < m->a + m->b; p++) {
		const uint64_t *words = minivm_ram_page(ram, p);

		for (w = 0; w < WORDS_PER_PAGE; w++) {
			if (words[w] != mvm_pattern(m->c, p, w)) {
				if (!r->mismatched_pages)
					r->bad_page = p;
				r->mismatched_pages++;
				break;
			}
		}
	}
}

static void run_dma(struct dev_child *c, const struct minivm_dev_msg *m, struct minivm_dev_reply *r)
{
	const struct minivm_ram *ram = c->ram;
	uint64_t t0 = now_us(), p;

	memset(r, 0, sizeof(*r));
	switch (m->op) {
	case MINIVM_DEV_PING:
		break;
	case MINIVM_DEV_FILL:
		if (!minivm_ram_range_ok(ram, m->a, m->b)) {
			r->err = -ERANGE;
			break;
		}
		dma_fill(ram, m->a, m->b, m->c);
		r->pages = m->b;
		break;
	case MINIVM_DEV_VERIFY:
		if (!minivm_ram_range_ok(ram, m->a, m->b)) {
			r->err = -ERANGE;
			break;
		}
		dma_verify(ram, m, r);
		r->pages = m->b;
		break;
	case MINIVM_DEV_COPY:
		if (!minivm_ram_range_ok(ram, m->a, m->c) ||
		    !minivm_ram_range_ok(ram, m->b, m->c) ||
		    (m->a < m->b + m->c && m->b < m->a + m->c)) {
			r->err = -ERANGE;
			break;
		}
		for (p = 0; p < m->c; p++)
			memcpy(minivm_ram_page(ram, m->b + p), minivm_ram_page(ram, m->a + p),
			       MVM_GUEST_PAGE_SIZE);
		r->pages = m->c;
		break;
	default:
		r->err = -EINVAL;
	}
	r->elapsed_us = now_us() - t0;
}

static void *dev_worker(void *arg)
{
	struct dev_child *c = arg;
	struct minivm_dev_reply r;
	struct minivm_dev_msg m;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		while (!c->has_work)
			pthread_cond_wait(&c->cond, &c->lock);
		m = c->work;
		pthread_mutex_unlock(&c->lock);

		run_dma(c, &m, &r);
		/*
		 * Free the slot before replying: the VMM sends its next command only after
		 * this reply, and that command must not find the slot still taken.
		 */
		pthread_mutex_lock(&c->lock);
		c->has_work = false;
		pthread_mutex_unlock(&c->lock);
		if (send(c->sock, &r, sizeof(r), MSG_NOSIGNAL) < 0)
			_exit(1);
	}
	return NULL;
}

static void crash_now(void)
{
	signal(SIGABRT, SIG_DFL);
	raise(SIGABRT);
	raise(SIGKILL);
}

static __attribute__((noreturn)) void device_main(int id, int sock, const struct minivm_ram *ram,
						  struct vms_controller *ctl, pid_t vmm)
{
	struct dev_child c = { .ram = ram, .sock = sock };
	struct minivm_dev_reply busy = { .err = -EBUSY };
	struct minivm_dev_msg m;
	pthread_t worker;
	char name[16];
	ssize_t n;
	int ret;

	sigset_t all;

	/* The VMM blocks signals for its signalfd; a device wants the defaults. */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* Die with the VMM; the check closes the race with a VMM that died already. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != vmm)
		_exit(1);
	snprintf(name, sizeof(name), "vmm-device-%d", id & 0xff);
	prctl(PR_SET_NAME, name);

	/* Before anything touches guest RAM: without a registered uffd it reads zeroes. */
	if (ctl) {
		ret = vms_controller_device_forked(ctl, 0);
		if (ret) {
			fprintf(stderr, "minivmm: device %d: registration failed: %s\n", id,
				strerror(-ret));
			_exit(1);
		}
		vms_controller_forget(ctl);
	}

	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cond, NULL);
	if (pthread_create(&worker, NULL, dev_worker, &c))
		_exit(1);

	for (;;) {
		n = recv(sock, &m, sizeof(m), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0); /* the VMM closed our socket (or died) */
		if (n != sizeof(m)) {
			struct minivm_dev_reply bad = { .err = -EPROTO };

			send(sock, &bad, sizeof(bad), MSG_NOSIGNAL);
			continue;
		}
		if (m.op == MINIVM_DEV_EXIT)
			_exit((int)m.a & 0xff);
		if (m.op == MINIVM_DEV_CRASH)
			crash_now();
		pthread_mutex_lock(&c.lock);
		if (c.has_work) {
			pthread_mutex_unlock(&c.lock);
			send(sock, &busy, sizeof(busy), MSG_NOSIGNAL);
			continue;
		}
		c.work = m;
		c.has_work = true;
		pthread_cond_signal(&c.cond);
		pthread_mutex_unlock(&c.lock);
	}
}

/* ---- the VMM side ---- */

int minivm_devices_spawn(struct minivm_device *devs, int n, const struct minivm_ram *ram,
			 struct vms_controller *ctl)
{
	pid_t vmm = getpid();
	int i, j, sv[2];

	if (n < 0 || n > MINIVM_MAX_DEVICES)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		struct minivm_device *d = &devs[i];

		memset(d, 0, sizeof(*d));
		d->id = i;
		d->sock = -1;
		pthread_mutex_init(&d->lock, NULL);
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			return -errno;
		fflush(NULL);
		d->pid = fork();
		if (d->pid < 0) {
			int err = -errno;

			close(sv[0]);
			close(sv[1]);
			return err;
		}
		if (d->pid == 0) {
			close(sv[0]);
			for (j = 0; j < i; j++)
				close(devs[j].sock);
			device_main(i, sv[1], ram, ctl, vmm);
		}
		close(sv[1]);
		d->sock = sv[0];
		__atomic_store_n(&d->alive, true, __ATOMIC_SEQ_CST);
	}
	return 0;
}

bool minivm_device_alive(struct minivm_device *d)
{
	return __atomic_load_n(&d->alive, __ATOMIC_SEQ_CST);
}

int minivm_device_request(struct minivm_device *d, const struct minivm_dev_msg *m,
			  struct minivm_dev_reply *r, int timeout_ms)
{
	struct pollfd pfd = { .fd = d->sock, .events = POLLIN };
	ssize_t n;
	int ret;

	if (m->op == MINIVM_DEV_EXIT || m->op == MINIVM_DEV_CRASH)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	if (!minivm_device_alive(d) || d->sock < 0) {
		ret = -ESRCH;
		goto out;
	}
	/* Drop a stale reply of an earlier request that timed out. */
	while (recv(d->sock, r, sizeof(*r), MSG_DONTWAIT) > 0)
		;
	if (send(d->sock, m, sizeof(*m), MSG_NOSIGNAL) < 0) {
		ret = errno == EPIPE || errno == ECONNRESET ? -ESRCH : -errno;
		goto out;
	}
	do {
		ret = poll(&pfd, 1, timeout_ms);
	} while (ret < 0 && errno == EINTR);
	if (ret <= 0) {
		ret = ret < 0 ? -errno : -ETIMEDOUT;
		goto out;
	}
	n = recv(d->sock, r, sizeof(*r), 0);
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		ret = -ESRCH; /* it died while working */
	else if (n < 0)
		ret = -errno;
	else
		ret = n == sizeof(*r) ? 0 : -EPROTO;
out:
	pthread_mutex_unlock(&d->lock);
	return ret;
}

int minivm_device_kill(struct minivm_device *d, bool crash, int status, int timeout_ms)
{
	struct minivm_dev_msg m = { .op = crash ? MINIVM_DEV_CRASH : MINIVM_DEV_EXIT,
				    .a = (uint64_t)status };
	int waited;

	if (!minivm_device_alive(d))
		return -ESRCH;
	/* No lock: a DMA request may be waiting on the socket; this message is atomic. */
	if (send(d->sock, &m, sizeof(m), MSG_NOSIGNAL) < 0)
		return -errno;
	for (waited = 0; minivm_device_alive(d) && waited < timeout_ms; waited += 10)
		usleep(10000);
	return minivm_device_alive(d) ? -ETIMEDOUT : 0;
}

int minivm_devices_reap(struct minivm_device *devs, int n)
{
	int i, status, reaped = 0;

	for (i = 0; i < n; i++) {
		if (!minivm_device_alive(&devs[i]))
			continue;
		if (waitpid(devs[i].pid, &status, WNOHANG) == devs[i].pid) {
			devs[i].wstatus = status;
			__atomic_store_n(&devs[i].alive, false, __ATOMIC_SEQ_CST);
			reaped++;
		}
	}
	return reaped;
}

void minivm_devices_stop(struct minivm_device *devs, int n, int timeout_ms)
{
	int i, waited;

	for (i = 0; i < n; i++) {
		if (devs[i].sock >= 0)
			shutdown(devs[i].sock, SHUT_RDWR);
	}
	for (waited = 0; waited < timeout_ms; waited += 10) {
		minivm_devices_reap(devs, n);
		for (i = 0; i < n && !minivm_device_alive(&devs[i]); i++)
			;
		if (i == n)
			break;
		usleep(10000);
	}
	for (i = 0; i < n; i++) {
		if (minivm_device_alive(&devs[i])) {
			kill(devs[i].pid, SIGKILL);
			if (waitpid(devs[i].pid, &devs[i].wstatus, 0) == devs[i].pid)
				__atomic_store_n(&devs[i].alive, false, __ATOMIC_SEQ_CST);
		}
		if (devs[i].sock >= 0)
			close(devs[i].sock);
		devs[i].sock = -1;
	}
}
