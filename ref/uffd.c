// SPDX-License-Identifier: MIT
/*
 * uffd.c - the userfaultfd layer (see vmmswap/uffd.h for the contract).
 *
 * Every function here maps to one kernel operation; errno decoding lives here and
 * nowhere else.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vmmswap/test_hooks.h>
#include <vmmswap/uffd.h>

/* Test-only (vms_uffd_set_answer_hooks()): NULL unless a test set it. */
static const struct vms_uffd_answer_hooks *answer_hooks;

void vms_uffd_set_answer_hooks(const struct vms_uffd_answer_hooks *h)
{
	__atomic_store_n(&answer_hooks, h, __ATOMIC_RELEASE);
}

static const struct vms_uffd_answer_hooks *test_answer(void)
{
	return __atomic_load_n(&answer_hooks, __ATOMIC_ACQUIRE);
}

int vms_uffd_new(unsigned int flags, int *fd_out, enum vms_uffd_origin *origin_out)
{
	int uflags = O_CLOEXEC | O_NONBLOCK;
	int err = -ENOSYS;
	int fd;

	if (flags & VMS_UFFD_USER_MODE_ONLY)
		uflags |= UFFD_USER_MODE_ONLY;

	if (!(flags & VMS_UFFD_NO_DEVICE)) {
		/* The device needs only permission on the node, not CAP_SYS_PTRACE. */
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, uflags);
			err = fd < 0 ? -errno : 0;
			close(dev);
			if (fd >= 0) {
				*fd_out = fd;
				if (origin_out)
					*origin_out = VMS_UFFD_FROM_DEVICE;
				return 0;
			}
		} else {
			err = -errno;
		}
	}
	if (flags & VMS_UFFD_NO_SYSCALL)
		return err;

	fd = syscall(SYS_userfaultfd, uflags);
	if (fd < 0)
		return -errno;
	*fd_out = fd;
	if (origin_out)
		*origin_out = VMS_UFFD_FROM_SYSCALL;
	return 0;
}

int vms_uffd_api(int fd, uint64_t features, uint64_t *offered_out, uint64_t *ioctls_out)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	const struct vms_uffd_answer_hooks *h;

	if (ioctl(fd, UFFDIO_API, &api) < 0)
		return -errno;
	h = test_answer();
	if (__builtin_expect(h != NULL, 0) && h->api)
		h->api(h->arg, &api);
	/*
	 * Require only what we asked for and what this layer uses: a kernel that
	 * accepted the request offers all of it. Every other bit, known to this
	 * build or not, is kept and never a reason to fail (crosvm b/315578762: the
	 * crate refused bits a newer kernel added, and swap could not be enabled).
	 */
	if ((api.features & features) != features ||
	    (api.ioctls & VMS_UFFD_API_IOCTLS) != VMS_UFFD_API_IOCTLS)
		return -EOPNOTSUPP;
	if (offered_out)
		*offered_out = api.features;
	if (ioctls_out)
		*ioctls_out = api.ioctls;
	return 0;
}

int vms_uffd_create(struct vms_uffd *uffd, uint64_t features, unsigned int flags)
{
	int fd, ret;
	enum vms_uffd_origin origin;
	uint64_t offered = 0, ioctls = 0;

	ret = vms_uffd_new(flags, &fd, &origin);
	if (ret)
		return ret;
	ret = vms_uffd_api(fd, features, &offered, &ioctls);
	if (ret) {
		close(fd);
		return ret;
	}
	uffd->fd = fd;
	uffd->origin = origin;
	uffd->features = features;
	uffd->offered_features = offered;
	uffd->ioctls = ioctls;
	return 0;
}

void vms_uffd_close(struct vms_uffd *uffd)
{
	if (uffd->fd >= 0)
		close(uffd->fd);
	uffd->fd = -1;
}

int vms_uffd_probe(unsigned int flags, uint64_t *offered_out, uint64_t *ioctls_out)
{
	struct vms_uffd u;
	int ret = vms_uffd_create(&u, 0, flags);

	if (ret)
		return ret;
	if (offered_out)
		*offered_out = u.offered_features;
	if (ioctls_out)
		*ioctls_out = u.ioctls;
	vms_uffd_close(&u);
	return 0;
}

int vms_uffd_register(int fd, uint64_t start, uint64_t len, uint64_t mode, uint64_t need_ioctls,
		      uint64_t *ioctls_out)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = len },
		.mode = mode,
	};
	const struct vms_uffd_answer_hooks *h;

	if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0)
		return -errno;
	h = test_answer();
	if (__builtin_expect(h != NULL, 0) && h->reg)
		h->reg(h->arg, &reg);
	/* Unknown bits of the range's ioctls are kept, as in vms_uffd_api(). */
	if ((reg.ioctls & need_ioctls) != need_ioctls) {
		/* Undo, so that a refused registration leaves nothing behind. */
		vms_uffd_unregister(fd, start, len);
		return -EOPNOTSUPP;
	}
	if (ioctls_out)
		*ioctls_out = reg.ioctls;
	return 0;
}

int vms_uffd_unregister(int fd, uint64_t start, uint64_t len)
{
	struct uffdio_range range = { .start = start, .len = len };

	if (ioctl(fd, UFFDIO_UNREGISTER, &range) < 0)
		return -errno;
	return 0;
}

int vms_uffd_decode_fill(int ret, int err, int64_t field, uint64_t len, uint64_t *done)
{
	if (ret >= 0) {
		*done = len;
		return 0;
	}
	/*
	 * On failure the field holds the bytes filled before the error (> 0), or
	 * "nothing": the negative errno (kernels >= 6.15 on every path), or the 0
	 * we pre-set when the kernel returned before writing it (older kernels on
	 * the early mmap_changing check, and ESRCH for a dead process). Never trust
	 * a count beyond what was asked for.
	 */
	*done = field > 0 ? (uint64_t)field : 0;
	if (*done > len)
		*done = len;
	return err > 0 ? -err : -EIO;
}

/* Run a fill ioctl whose output field is 'field', and decode it. */
static int fill_ioctl(int fd, unsigned long req, void *arg, __s64 *field, uint64_t len,
		      uint64_t *done)
{
	int ret;

	*field = 0;
	ret = ioctl(fd, req, arg);
	return vms_uffd_decode_fill(ret, ret < 0 ? errno : 0, *field, len, done);
}

int vms_uffd_copy(int fd, uint64_t dst, const void *src, uint64_t len, uint64_t mode,
		  uint64_t *done)
{
	struct uffdio_copy c = {
		.dst = dst,
		.src = (uint64_t)(uintptr_t)src,
		.len = len,
		.mode = mode,
	};

	return fill_ioctl(fd, UFFDIO_COPY, &c, &c.copy, len, done);
}

int vms_uffd_zeropage(int fd, uint64_t dst, uint64_t len, uint64_t mode, uint64_t *done)
{
	struct uffdio_zeropage z = { .range = { .start = dst, .len = len }, .mode = mode };

	return fill_ioctl(fd, UFFDIO_ZEROPAGE, &z, &z.zeropage, len, done);
}

int vms_uffd_continue(int fd, uint64_t dst, uint64_t len, uint64_t mode, uint64_t *done)
{
	struct uffdio_continue c = { .range = { .start = dst, .len = len }, .mode = mode };

	return fill_ioctl(fd, UFFDIO_CONTINUE, &c, &c.mapped, len, done);
}

int vms_uffd_poison(int fd, uint64_t dst, uint64_t len, uint64_t mode, uint64_t *done)
{
	struct uffdio_poison p = { .range = { .start = dst, .len = len }, .mode = mode };

	return fill_ioctl(fd, UFFDIO_POISON, &p, &p.updated, len, done);
}

int vms_uffd_move(int fd, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode, uint64_t *done)
{
	struct uffdio_move m = { .dst = dst, .src = src, .len = len, .mode = mode };

	return fill_ioctl(fd, UFFDIO_MOVE, &m, &m.move, len, done);
}

int vms_uffd_wake(int fd, uint64_t start, uint64_t len)
{
	struct uffdio_range range = { .start = start, .len = len };

	if (ioctl(fd, UFFDIO_WAKE, &range) < 0)
		return -errno;
	return 0;
}

int vms_uffd_writeprotect(int fd, uint64_t start, uint64_t len, uint64_t mode)
{
	struct uffdio_writeprotect wp = { .range = { .start = start, .len = len }, .mode = mode };

	if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp) < 0)
		return -errno;
	return 0;
}

int vms_uffd_read_events(int fd, struct uffd_msg *msgs, size_t max, size_t *n)
{
	ssize_t got;

	*n = 0;
	if (max == 0)
		return 0;
	do {
		got = read(fd, msgs, max * sizeof(*msgs));
	} while (got < 0 && errno == EINTR);
	if (got < 0)
		return errno == EAGAIN ? 0 : -errno;
	/* The kernel only ever returns whole messages. */
	if (got % sizeof(*msgs))
		return -EIO;
	*n = (size_t)got / sizeof(*msgs);
	return 0;
}

enum vms_uffd_errclass vms_uffd_classify(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return VMS_UFFD_ERR_NONE;
	case EAGAIN:
		return VMS_UFFD_ERR_RETRY_AFTER_EVENTS;
	case EEXIST:
		return VMS_UFFD_ERR_ALREADY_FILLED;
	case ESRCH:
	case ENOMEM:
		return VMS_UFFD_ERR_OWNER_GONE;
	default:
		return VMS_UFFD_ERR_FATAL;
	}
}

const char *vms_uffd_errclass_name(enum vms_uffd_errclass c)
{
	switch (c) {
	case VMS_UFFD_ERR_NONE:
		return "none";
	case VMS_UFFD_ERR_RETRY_AFTER_EVENTS:
		return "retry-after-events";
	case VMS_UFFD_ERR_ALREADY_FILLED:
		return "already-filled";
	case VMS_UFFD_ERR_OWNER_GONE:
		return "owner-gone";
	case VMS_UFFD_ERR_FATAL:
		break;
	}
	return "fatal";
}

const char *vms_uffd_event_name(uint8_t event)
{
	switch (event) {
	case UFFD_EVENT_PAGEFAULT:
		return "PAGEFAULT";
	case UFFD_EVENT_FORK:
		return "FORK";
	case UFFD_EVENT_REMAP:
		return "REMAP";
	case UFFD_EVENT_REMOVE:
		return "REMOVE";
	case UFFD_EVENT_UNMAP:
		return "UNMAP";
	}
	return "UNKNOWN";
}

/* clang-format off */
#define BIT_NAME(b) { b, #b }
/* clang-format on */

const struct vms_uffd_bit_name vms_uffd_feature_names[] = {
	BIT_NAME(UFFD_FEATURE_PAGEFAULT_FLAG_WP),
	BIT_NAME(UFFD_FEATURE_EVENT_FORK),
	BIT_NAME(UFFD_FEATURE_EVENT_REMAP),
	BIT_NAME(UFFD_FEATURE_EVENT_REMOVE),
	BIT_NAME(UFFD_FEATURE_MISSING_HUGETLBFS),
	BIT_NAME(UFFD_FEATURE_MISSING_SHMEM),
	BIT_NAME(UFFD_FEATURE_EVENT_UNMAP),
	BIT_NAME(UFFD_FEATURE_SIGBUS),
	BIT_NAME(UFFD_FEATURE_THREAD_ID),
	BIT_NAME(UFFD_FEATURE_MINOR_HUGETLBFS),
	BIT_NAME(UFFD_FEATURE_MINOR_SHMEM),
	BIT_NAME(UFFD_FEATURE_EXACT_ADDRESS),
	BIT_NAME(UFFD_FEATURE_WP_HUGETLBFS_SHMEM),
	BIT_NAME(UFFD_FEATURE_WP_UNPOPULATED),
	BIT_NAME(UFFD_FEATURE_POISON),
	BIT_NAME(UFFD_FEATURE_WP_ASYNC),
	BIT_NAME(UFFD_FEATURE_MOVE),
	{ 0, NULL },
};

const struct vms_uffd_bit_name vms_uffd_ioctl_names[] = {
	{ VMS_UFFD_IOCTL_BIT(_UFFDIO_REGISTER), "UFFDIO_REGISTER" },
	{ VMS_UFFD_IOCTL_BIT(_UFFDIO_UNREGISTER), "UFFDIO_UNREGISTER" },
	{ VMS_UFFD_IOCTL_BIT(_UFFDIO_WAKE), "UFFDIO_WAKE" },
	{ VMS_UFFD_IOCTL_BIT(_UFFDIO_COPY), "UFFDIO_COPY" },
	{ VMS_UFFD_IOCTL_BIT(_UFFDIO_ZEROPAGE), "UFFDIO_ZEROPAGE" },
	{ VMS_UFFD_IOCTL_BIT(_UFFDIO_MOVE), "UFFDIO_MOVE" },
	{ VMS_UFFD_IOCTL_BIT(_UFFDIO_WRITEPROTECT), "UFFDIO_WRITEPROTECT" },
	{ VMS_UFFD_IOCTL_BIT(_UFFDIO_CONTINUE), "UFFDIO_CONTINUE" },
	{ VMS_UFFD_IOCTL_BIT(_UFFDIO_POISON), "UFFDIO_POISON" },
	{ VMS_UFFD_IOCTL_BIT(_UFFDIO_API), "UFFDIO_API" },
	{ 0, NULL },
};
