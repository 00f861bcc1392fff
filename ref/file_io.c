// SPDX-License-Identifier: MIT
/*
 * file_io.c - whole-buffer pread/pwrite (see vmmswap/file_io.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

#include <vmmswap/file_io.h>

/* One loop for both directions: short transfers and EINTR are retried alike. */
static int xfer_all(int fd, uint8_t *p, uint64_t len, uint64_t off, bool to_file)
{
	while (len) {
		ssize_t n =
			to_file ? pwrite(fd, p, len, (off_t)off) : pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

int vms_pwrite_all(int fd, const void *buf, uint64_t len, uint64_t off)
{
	/* pwrite() does not write to the buffer; the cast only serves the shared loop. */
	return xfer_all(fd, (uint8_t *)buf, len, off, true);
}

int vms_pread_all(int fd, void *buf, uint64_t len, uint64_t off)
{
	return xfer_all(fd, buf, len, off, false);
}
