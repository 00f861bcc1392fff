// SPDX-License-Identifier: MIT
/*
 * staging.c - the staging memfd (see vmmswap/staging.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmmswap/log.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/file_io.h>
#include <vmmswap/staging.h>

int vms_staging_init(struct vms_staging *st, uint64_t npages)
{
	uint64_t len = vms_pages_to_bytes(npages);
	int ret;

	*st = (struct vms_staging){ .memfd = -1, .npages = npages };
	st->memfd = memfd_create("vmmswap-staging", MFD_CLOEXEC);
	if (st->memfd < 0) {
		ret = -errno;
		vms_log(VMS_LOG_ERROR, "staging: memfd_create: %d", ret);
		return ret;
	}
	if (ftruncate(st->memfd, (off_t)len) < 0) {
		ret = -errno;
		vms_log(VMS_LOG_ERROR, "staging: ftruncate(%llu): %d", (unsigned long long)len,
			ret);
		goto err;
	}
	if (len) {
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, st->memfd, 0);

		if (p == MAP_FAILED) {
			ret = -errno;
			vms_log(VMS_LOG_ERROR, "staging: mmap: %d", ret);
			goto err;
		}
		st->map = p;
	}
	return 0;
err:
	close(st->memfd);
	st->memfd = -1;
	return ret;
}

void vms_staging_destroy(struct vms_staging *st)
{
	if (st->map)
		munmap(st->map, vms_pages_to_bytes(st->npages));
	if (st->memfd >= 0)
		close(st->memfd);
	st->map = NULL;
	st->memfd = -1;
}

int vms_staging_write(struct vms_staging *st, uint64_t pgoff, const void *src, uint64_t npages)
{
	if (pgoff + npages > st->npages)
		return -ERANGE;
	return vms_pwrite_all(st->memfd, src, vms_pages_to_bytes(npages), vms_pgoff_to_addr(pgoff));
}

int vms_staging_copy_fd(struct vms_staging *st, uint64_t pgoff, int src_fd, uint64_t src_off,
			uint64_t npages)
{
	uint64_t len = vms_pages_to_bytes(npages);
	off64_t in = (off64_t)src_off, out = (off64_t)vms_pgoff_to_addr(pgoff);

	if (pgoff + npages > st->npages)
		return -ERANGE;
	while (len) {
		ssize_t n = copy_file_range(src_fd, &in, st->memfd, &out, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* Nothing copied yet and no in-kernel path (other fs, old kernel). */
			if ((errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			     errno == EOPNOTSUPP) &&
			    in == (off64_t)src_off)
				return -EOPNOTSUPP;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the source ended early: it was truncated */
		len -= (uint64_t)n;
	}
	return 0;
}

int vms_staging_free(struct vms_staging *st, uint64_t pgoff, uint64_t npages)
{
	if (pgoff + npages > st->npages)
		return -ERANGE;
	if (!npages)
		return 0;
	if (fallocate(st->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)vms_pgoff_to_addr(pgoff), (off_t)vms_pages_to_bytes(npages)) < 0)
		return -errno;
	return 0;
}
