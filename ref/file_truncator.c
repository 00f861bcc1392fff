// SPDX-License-Identifier: MIT
/*
 * file_truncator.c - gradual release of a swap file's space (file_truncator.h).
 *
 * Threads: the creator (the monitor's loop thread) owns struct vms_truncator and is
 * the only one to call stop; the truncator thread owns the fd while it runs (it is
 * the only one to ftruncate it until it is joined). 'lock' protects 'info' only.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <vmmswap/file_truncator.h>
#include <vmmswap/log.h>

struct vms_truncator {
	int fd;	      /* the file */
	int timer_fd; /* our timerfd, or -1 */
	int tick_fd;  /* what the thread polls for ticks: timer_fd or opts.tick_fd */
	int stop_fd;  /* eventfd: written once by stop */
	uint64_t step;
	pthread_t thread;
	bool has_thread; /* creator only */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vms_truncator_info info; /* under lock */
};

static void publish(struct vms_truncator *t, uint64_t size, bool step, bool done, int err)
{
	struct stat st;
	uint64_t alloc = 0;

	/* Outside the lock: fstat may wait for the filesystem. */
	if (!fstat(t->fd, &st))
		alloc = (uint64_t)st.st_blocks * 512;
	pthread_mutex_lock(&t->lock);
	t->info.size = size;
	t->info.alloc = alloc;
	if (step)
		t->info.ticks++;
	if (done)
		t->info.done = true;
	if (err && !t->info.err)
		t->info.err = err;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* One step: shrink by t->step. Returns the new size, or a negative errno. */
static int64_t step_once(struct vms_truncator *t)
{
	struct stat st;
	uint64_t len;

	if (fstat(t->fd, &st))
		return -errno;
	len = (uint64_t)st.st_size;
	len = len > t->step ? len - t->step : 0;
	if (ftruncate(t->fd, (off_t)len))
		return -errno;
	return (int64_t)len;
}

static void *truncator_main(void *arg)
{
	struct vms_truncator *t = arg;
	uint64_t size;

	pthread_mutex_lock(&t->lock);
	size = t->info.size;
	pthread_mutex_unlock(&t->lock);
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = t->stop_fd, .events = POLLIN },
			{ .fd = t->tick_fd, .events = POLLIN },
		};
		uint64_t v;
		int64_t len;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			publish(t, size, false, true, -errno);
			return NULL;
		}
		if (p[0].revents)
			return NULL; /* stop: the caller truncates to 0 */
		if (!p[1].revents)
			continue;
		/* A timerfd counts missed expirations; we still take one step per wake. */
		if (read(t->tick_fd, &v, sizeof(v)) != sizeof(v))
			continue; /* spurious (EAGAIN) */
		len = step_once(t);
		if (len < 0) {
			vms_log(VMS_LOG_ERROR, "file truncator: %d", (int)len);
			publish(t, size, false, true, (int)len);
			return NULL;
		}
		size = (uint64_t)len;
		publish(t, size, true, len == 0, 0);
		if (!len)
			return NULL;
	}
}

int vms_truncator_start(int fd, const struct vms_truncator_opts *opts, struct vms_truncator **out)
{
	struct vms_truncator_opts o = { .tick_fd = -1 };
	struct vms_truncator *t;
	pthread_condattr_t ca;
	struct stat st;
	int ret;

	*out = NULL;
	if (opts)
		o = *opts;
	if (fd < 0)
		return -EBADF;
	if (fstat(fd, &st))
		return -errno;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->fd = fd;
	t->timer_fd = -1;
	t->step = o.step_bytes ?: VMS_TRUNC_DEFAULT_STEP_BYTES;
	t->info.size = (uint64_t)st.st_size;
	t->info.alloc = (uint64_t)st.st_blocks * 512;
	t->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->stop_fd < 0) {
		ret = -errno;
		goto err_free;
	}
	if (o.tick_fd >= 0) {
		t->tick_fd = o.tick_fd;
	} else {
		unsigned int ms = o.interval_ms ?: VMS_TRUNC_DEFAULT_INTERVAL_MS;
		struct itimerspec its = {
			.it_interval = { ms / 1000, (long)(ms % 1000) * 1000000 },
			.it_value = { ms / 1000, (long)(ms % 1000) * 1000000 },
		};

		t->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (t->timer_fd < 0 || timerfd_settime(t->timer_fd, 0, &its, NULL)) {
			ret = -errno;
			goto err_fds;
		}
		t->tick_fd = t->timer_fd;
	}
	pthread_mutex_init(&t->lock, NULL);
	/* vms_truncator_wait() computes its deadline on CLOCK_MONOTONIC. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!st.st_size) {
		/* Nothing to release: no thread. */
		t->info.done = true;
		*out = t;
		return 0;
	}
	ret = -pthread_create(&t->thread, NULL, truncator_main, t);
	if (ret) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		goto err_fds;
	}
	t->has_thread = true;
	*out = t;
	return 0;
err_fds:
	if (t->timer_fd >= 0)
		close(t->timer_fd);
	close(t->stop_fd);
err_free:
	free(t);
	return ret;
}

int vms_truncator_stop(struct vms_truncator *t, int *fd_out)
{
	uint64_t one = 1;
	int ret;

	if (fd_out)
		*fd_out = -1;
	if (!t)
		return 0;
	if (t->has_thread) {
		if (write(t->stop_fd, &one, sizeof(one)) != sizeof(one))
			vms_log(VMS_LOG_ERROR, "file truncator: cannot signal stop");
		pthread_join(t->thread, NULL);
	}
	ret = t->info.err;
	if (ftruncate(t->fd, 0) && !ret)
		ret = -errno;
	if (fd_out)
		*fd_out = t->fd;
	else
		close(t->fd);
	if (t->timer_fd >= 0)
		close(t->timer_fd);
	close(t->stop_fd);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
	return ret;
}

void vms_truncator_info(struct vms_truncator *t, struct vms_truncator_info *info)
{
	pthread_mutex_lock(&t->lock);
	*info = t->info;
	pthread_mutex_unlock(&t->lock);
}

int vms_truncator_wait(struct vms_truncator *t, uint64_t ticks, int timeout_ms)
{
	struct timespec dl;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	if (timeout_ms >= 0) {
		dl.tv_sec += timeout_ms / 1000;
		dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&t->lock);
	while (!ret && t->info.ticks < ticks && !t->info.done) {
		if (timeout_ms < 0)
			pthread_cond_wait(&t->cond, &t->lock);
		else if (pthread_cond_timedwait(&t->cond, &t->lock, &dl) == ETIMEDOUT)
			ret = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}
