// SPDX-License-Identifier: MIT
/*
 * memfd_data.c - data extents of a memfd (see vmmswap/memfd_data.h).
 */
#include <errno.h>
#include <unistd.h>

#include <vmmswap/memfd_data.h>
#include <vmmswap/pagesize.h>

int vms_memfd_next_data(int fd, uint64_t off, uint64_t end, uint64_t *start, uint64_t *stop)
{
	off_t d, h;

	if (off >= end)
		return 0;
	d = lseek(fd, (off_t)off, SEEK_DATA);
	if (d < 0)
		return errno == ENXIO ? 0 : -errno; /* ENXIO: no data after off */
	if ((uint64_t)d >= end)
		return 0;
	h = lseek(fd, d, SEEK_HOLE);
	if (h < 0)
		return -errno;
	*start = (uint64_t)d;
	*stop = (uint64_t)h < end ? (uint64_t)h : end;
	return 1;
}

int vms_memfd_count_data_pages(int fd, uint64_t off, uint64_t len, uint64_t *pages)
{
	uint64_t cur = off, end = off + len, start, stop;
	int ret;

	while ((ret = vms_memfd_next_data(fd, cur, end, &start, &stop)) > 0) {
		*pages += vms_bytes_to_pages_up(stop - start);
		cur = stop;
	}
	return ret;
}
