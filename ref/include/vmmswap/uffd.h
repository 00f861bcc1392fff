/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/uffd.h - the userfaultfd layer: creation, the API handshake, registration,
 * the fill ioctls with partial progress, batched event reading and errno classes.
 *
 * Contract:
 *  - No policy: every function does one kernel operation (plus the retries the
 *    kernel's interface needs) and returns 0 or a negative errno. Nothing here
 *    exits, aborts, logs or keeps global state (but for the test-only answer
 *    hooks of test_hooks.h, unset unless a test sets them).
 *  - The fill operations (copy, zeropage, continue, poison, move) report in *done
 *    how many bytes the kernel actually filled, also when they fail, decoding the
 *    kernel's output field: a positive count, or 0 / a negative errno for "nothing
 *    done" (kernels before 6.15 leave the field unwritten on an early -EAGAIN; later
 *    ones store -EAGAIN there). A partial fill never reports more than was done.
 *  - Unknown bits in the kernel's returned feature and ioctl masks are kept, never
 *    rejected: newer kernels add bits (crosvm broke on 6.6 that way, b/315578762).
 *    Only the known bits the caller needs are required: the requested features
 *    and VMS_UFFD_API_IOCTLS from the handshake, need_ioctls from a registration.
 *  - Every fd is created O_CLOEXEC | O_NONBLOCK: a blocking uffd reports POLLERR to
 *    poll/epoll, which would make an event loop spin.
 */
#ifndef VMMSWAP_UFFD_H
#define VMMSWAP_UFFD_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/userfaultfd.h>

/* Bit for an ioctl in the 'ioctls' masks returned by UFFDIO_API / UFFDIO_REGISTER. */
#define VMS_UFFD_IOCTL_BIT(nr) (1ULL << (nr))

/* The ioctls the layer itself uses on a uffd: the handshake must offer them. */
#define VMS_UFFD_API_IOCTLS \
	(VMS_UFFD_IOCTL_BIT(_UFFDIO_REGISTER) | VMS_UFFD_IOCTL_BIT(_UFFDIO_UNREGISTER))

/* The ioctls the swap design needs on a MISSING-mode range. */
#define VMS_UFFD_MISSING_IOCTLS                                                    \
	(VMS_UFFD_IOCTL_BIT(_UFFDIO_COPY) | VMS_UFFD_IOCTL_BIT(_UFFDIO_ZEROPAGE) | \
	 VMS_UFFD_IOCTL_BIT(_UFFDIO_WAKE))

/* How a uffd was created. */
enum vms_uffd_origin {
	VMS_UFFD_FROM_DEVICE = 1,  /* ioctl(/dev/userfaultfd, USERFAULTFD_IOC_NEW), >= 6.1 */
	VMS_UFFD_FROM_SYSCALL = 2, /* userfaultfd(2) */
};

/* Flags for vms_uffd_new() / vms_uffd_create(). */
#define VMS_UFFD_USER_MODE_ONLY 0x1u /* kernel-mode accesses fail with EFAULT, no event */
#define VMS_UFFD_NO_DEVICE	0x2u /* do not try /dev/userfaultfd */
#define VMS_UFFD_NO_SYSCALL	0x4u /* do not fall back to userfaultfd(2) */

struct vms_uffd {
	int fd;
	enum vms_uffd_origin origin;
	uint64_t features;	   /* features enabled on this uffd (what was requested) */
	uint64_t offered_features; /* every feature the kernel offers, unknown bits kept */
	uint64_t ioctls;	   /* ioctls the kernel offers on the uffd itself */
};

/*
 * Create a uffd without the API handshake: /dev/userfaultfd first, then the syscall,
 * as allowed by flags. -EACCES/-EPERM/-ENOENT from the device fall through to the
 * syscall; the error of the last path tried is returned.
 */
int vms_uffd_new(unsigned int flags, int *fd_out, enum vms_uffd_origin *origin_out);

/*
 * err (from vms_uffd_new, vms_uffd_create or vms_controller_launch) says that this
 * process may not use userfaultfd at all: no access to /dev/userfaultfd, no
 * privilege for the syscall, or no userfaultfd in this kernel. Callers that can
 * do without (tests) skip; anything else is a real error.
 */
static inline bool vms_uffd_unavailable(int err)
{
	return err == -EPERM || err == -EACCES || err == -ENOENT || err == -ENOSYS;
}

/*
 * UFFDIO_API on a fresh uffd, requesting exactly 'features'. Fills the offered
 * features and ioctls, unknown bits included (either pointer may be NULL).
 * -EINVAL: the kernel refused a requested feature, or the handshake was already
 * done on this fd. -EOPNOTSUPP: the kernel accepted, but its answer lacks a
 * requested feature or a bit of VMS_UFFD_API_IOCTLS (nothing is filled).
 */
int vms_uffd_api(int fd, uint64_t features, uint64_t *offered_out, uint64_t *ioctls_out);

/* vms_uffd_new() + vms_uffd_api(). On error nothing is left open. */
int vms_uffd_create(struct vms_uffd *uffd, uint64_t features, unsigned int flags);

/* Close the uffd (fd set to -1). Safe on a closed or zeroed struct with fd = -1. */
void vms_uffd_close(struct vms_uffd *uffd);

/*
 * Ask the kernel what it offers, using a throw-away uffd handshaked with no
 * features. The creation path is chosen as in vms_uffd_new().
 */
int vms_uffd_probe(unsigned int flags, uint64_t *offered_out, uint64_t *ioctls_out);

/*
 * Register [start, start+len) with 'mode' (UFFDIO_REGISTER_MODE_*). If the range's
 * returned ioctls lack any bit of 'need_ioctls', the range is unregistered again and
 * -EOPNOTSUPP is returned, so a failed call changes nothing. ioctls_out may be NULL.
 */
int vms_uffd_register(int fd, uint64_t start, uint64_t len, uint64_t mode, uint64_t need_ioctls,
		      uint64_t *ioctls_out);
int vms_uffd_unregister(int fd, uint64_t start, uint64_t len);

/*
 * The fill operations. Return 0 when all of len was done, else a negative errno
 * with *done (never NULL) holding the bytes that were filled before it stopped.
 * 'mode' is the ioctl's mode field (e.g. UFFDIO_COPY_MODE_DONTWAKE).
 */
int vms_uffd_copy(int fd, uint64_t dst, const void *src, uint64_t len, uint64_t mode,
		  uint64_t *done);
int vms_uffd_zeropage(int fd, uint64_t dst, uint64_t len, uint64_t mode, uint64_t *done);
int vms_uffd_continue(int fd, uint64_t dst, uint64_t len, uint64_t mode, uint64_t *done);
int vms_uffd_poison(int fd, uint64_t dst, uint64_t len, uint64_t mode, uint64_t *done);
int vms_uffd_move(int fd, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode, uint64_t *done);

/* UFFDIO_WAKE and UFFDIO_WRITEPROTECT (mode: UFFDIO_WRITEPROTECT_MODE_WP or 0). */
int vms_uffd_wake(int fd, uint64_t start, uint64_t len);
int vms_uffd_writeprotect(int fd, uint64_t start, uint64_t len, uint64_t mode);

/*
 * Decode the result of a fill ioctl: 'ret' and 'err' are the ioctl's return value and
 * errno, 'field' the output field (copy, zeropage, mapped, updated or move) that the
 * caller pre-set to 0, 'len' the length asked for. Returns 0 or -errno and sets *done.
 * Exposed for the unit tests; the fill functions above use it.
 */
int vms_uffd_decode_fill(int ret, int err, int64_t field, uint64_t len, uint64_t *done);

/*
 * Read up to 'max' pending events with one read(2) per call (the kernel returns as
 * many whole messages as fit). *n is the number read; 0 with a return of 0 means no
 * event is pending. Other errors are returned as -errno.
 */
int vms_uffd_read_events(int fd, struct uffd_msg *msgs, size_t max, size_t *n);

/* What the caller should do after a fill/register operation failed with -err. */
enum vms_uffd_errclass {
	VMS_UFFD_ERR_NONE = 0,		 /* err == 0 */
	VMS_UFFD_ERR_RETRY_AFTER_EVENTS, /* EAGAIN: a REMOVE/fork/remap is pending: read
					   * events on this uffd, then retry the rest */
	VMS_UFFD_ERR_ALREADY_FILLED,	 /* EEXIST: someone filled it: wake the waiters */
	VMS_UFFD_ERR_OWNER_GONE,	 /* ESRCH (fill) / ENOMEM (register): the process that
				   * owns the uffd exited: drop the uffd */
	VMS_UFFD_ERR_FATAL,		 /* anything else */
};

/* Classify a negative (or positive) errno from the fill or register functions. */
enum vms_uffd_errclass vms_uffd_classify(int err);
const char *vms_uffd_errclass_name(enum vms_uffd_errclass c);

/* Names for reports: "PAGEFAULT", "REMOVE", ...; "UNKNOWN" for others. */
const char *vms_uffd_event_name(uint8_t event);

/* The feature bits known to this build, with names, for reports. */
struct vms_uffd_bit_name {
	uint64_t bit;
	const char *name;
};
extern const struct vms_uffd_bit_name vms_uffd_feature_names[];
extern const struct vms_uffd_bit_name vms_uffd_ioctl_names[];

#endif /* VMMSWAP_UFFD_H */
