/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/memfd_data.h - where a memfd holds data, found with lseek(SEEK_DATA /
 * SEEK_HOLE).
 *
 * Contract: a page of shmem is "data" once the kernel allocated it (written, or
 * filled by UFFDIO_COPY / UFFDIO_ZEROPAGE) and a hole after MADV_REMOVE or a punch.
 * These are the only functions that walk a memfd's extents; they return 0 or a
 * negative errno and change nothing.
 */
#ifndef VMMSWAP_MEMFD_DATA_H
#define VMMSWAP_MEMFD_DATA_H

#include <stdint.h>

/*
 * The first data extent of fd at or after off, clipped to end (byte offsets):
 * returns 1 and sets [*start, *stop), 0 when there is no data before end.
 */
int vms_memfd_next_data(int fd, uint64_t off, uint64_t end, uint64_t *start, uint64_t *stop);

/* Add to *pages the number of pages with data in [off, off + len). */
int vms_memfd_count_data_pages(int fd, uint64_t off, uint64_t len, uint64_t *pages);

#endif /* VMMSWAP_MEMFD_DATA_H */
