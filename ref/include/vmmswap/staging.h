/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/staging.h - the staging memory: a named memfd as large as guest memory.
 *
 * Page pgoff of the page-state index space lives at byte offset pgoff * page size.
 * It is a memfd (not anonymous memory) so that it is accounted like guest memory
 * and can be freed by punching holes. The memfd is mapped once, MAP_SHARED; the
 * mapping is used as the source of UFFDIO_COPY and for comparisons. Data moves
 * in and out in the kernel, fd to fd (copy_file_range from the guest memfd,
 * sendfile to the swap file): no page tables to build for either side, and a
 * full-page write skips the zeroing a page fault would do on allocation. Frees
 * are fallocate(PUNCH_HOLE), which is what MADV_REMOVE does on a shmem mapping.
 *
 * The module keeps no per-page state (the page handler does) and no lock: writing,
 * reading and freeing disjoint pages from several threads is safe.
 */
#ifndef VMMSWAP_STAGING_H
#define VMMSWAP_STAGING_H

#include <stdint.h>

#include <vmmswap/pagesize.h>

struct vms_staging {
	int memfd;
	uint8_t *map; /* whole memfd, MAP_SHARED, read/write */
	uint64_t npages;
};

/* Create the memfd ("vmmswap-staging") of npages pages and map it. */
int vms_staging_init(struct vms_staging *st, uint64_t npages);
void vms_staging_destroy(struct vms_staging *st);

/* Copy npages pages from src into staging at pgoff (pwrite, short writes retried). */
int vms_staging_write(struct vms_staging *st, uint64_t pgoff, const void *src, uint64_t npages);
/*
 * Copy npages pages from src_fd at byte offset src_off into staging at pgoff, in
 * the kernel (copy_file_range). -EOPNOTSUPP (nothing copied): no in-kernel copy
 * between these files; use vms_staging_write().
 */
int vms_staging_copy_fd(struct vms_staging *st, uint64_t pgoff, int src_fd, uint64_t src_off,
			uint64_t npages);
/* Free [pgoff, pgoff+npages): the pages read as zero afterwards. */
int vms_staging_free(struct vms_staging *st, uint64_t pgoff, uint64_t npages);

/* Address of page pgoff in the staging mapping. */
static inline uint8_t *vms_staging_page(const struct vms_staging *st, uint64_t pgoff)
{
	return st->map + vms_pgoff_to_addr(pgoff);
}

#endif /* VMMSWAP_STAGING_H */
