/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/swap_file.h - the swap file: page-sized slots in an unnamed file.
 *
 * Contract:
 *  - The file is opened with O_TMPFILE | O_EXCL, mode 0, in a given directory: it
 *    has no name, cannot be linked later and disappears when closed.
 *  - Compacted: slots are handed out lowest-free-first, so data only ever lives
 *    below the high-water mark (hwm = 1 + the highest slot in use) and freed slots
 *    are reused before the file grows. vms_swap_file_shrink() truncates the file to
 *    the hwm after the top slots were freed.
 *  - Every write to the file happens in this module (write, shrink).
 *  - Metadata: one bit per slot (in use) plus a summary bit per 64 slots, allocated
 *    for max_slots up front but touched only up to the hwm: at most 33 KiB per GiB of
 *    guest memory that has ever been swapped (4 KiB pages).
 *  - Not thread-safe for allocation: the page handler allocates and frees slots
 *    under its mutex. read/write/prefetch touch only the fd and may run outside that
 *    mutex, on slots the caller owns.
 *  - The file is also mapped read-only (MAP_SHARED, max_slots pages, most of it past
 *    EOF until the file grows), so that swap-in can fill guest pages straight from
 *    the page cache with one copy instead of pread into a buffer and copying that.
 *    Only slots below the file size may be touched through the mapping: beyond
 *    EOF a user access raises SIGBUS (a kernel copy fails with EFAULT).
 *  - Fault injection for tests: vms_swap_file_inject_write_error() makes the next
 *    write (only the next) write half its buffer minus half a page (so one page
 *    is torn) and then fail with the given errno, as a disk filling up would.
 */
#ifndef VMMSWAP_SWAP_FILE_H
#define VMMSWAP_SWAP_FILE_H

#include <stdint.h>

#include <vmmswap/page_state.h>
#include <vmmswap/pagesize.h>

struct vms_swap_file {
	int fd;
	const uint8_t *map;	/* read-only view of max_slots slots; NULL if mmap failed */
	struct vms_bitmap used; /* slot in use (allocated) */
	uint64_t max_slots;
	uint64_t hwm;	     /* every used slot is < hwm */
	uint64_t free_hint;  /* no free slot below this */
	uint64_t file_slots; /* slots the file size covers (as last truncated) */
	int inject_errno;    /* atomic; test-only, see above */
};

/* Create the unnamed file in dir. max_slots: the guest page count. */
int vms_swap_file_open(struct vms_swap_file *sf, const char *dir, uint64_t max_slots);
void vms_swap_file_close(struct vms_swap_file *sf);

/* Take the lowest free slot. -ENOSPC if all max_slots are in use. */
int vms_swap_file_alloc(struct vms_swap_file *sf, uint32_t *slot);
/* Return a slot; the hwm drops if it was the top one. */
void vms_swap_file_free(struct vms_swap_file *sf, uint32_t slot);
static inline uint64_t vms_swap_file_used(const struct vms_swap_file *sf)
{
	return sf->used.count;
}

/* Write / read nslots consecutive slots from / into buf (short I/O retried). */
int vms_swap_file_write(struct vms_swap_file *sf, uint32_t slot, const void *buf, uint64_t nslots);
int vms_swap_file_read(struct vms_swap_file *sf, uint32_t slot, void *buf, uint64_t nslots);
/*
 * Write nslots slots from src_fd at byte offset src_off, in the kernel (sendfile):
 * no mapping of the source and no page-table work, which also makes freeing the
 * source afterwards cheaper. Moves the file position (nothing else uses it).
 * -EOPNOTSUPP (nothing written): the source cannot be spliced; use
 * vms_swap_file_write(). Fault injection as for vms_swap_file_write().
 */
int vms_swap_file_write_fd(struct vms_swap_file *sf, uint32_t slot, int src_fd, uint64_t src_off,
			   uint64_t nslots);
/* Start reading nslots slots into the page cache (posix_fadvise WILLNEED). */
void vms_swap_file_prefetch(struct vms_swap_file *sf, uint32_t slot, uint64_t nslots);
/*
 * Read nslots slots into the page cache and map them in sf->map now (outside any
 * lock), so that a later copy from vms_swap_file_slot_map() finds them resident.
 * -EOPNOTSUPP: no mapping or no MADV_POPULATE_READ (kernel < 5.14): use read.
 */
int vms_swap_file_populate(struct vms_swap_file *sf, uint32_t slot, uint64_t nslots);
/* Drop our page-table entries for nslots slots (the page cache keeps the data). */
void vms_swap_file_unmap(struct vms_swap_file *sf, uint32_t slot, uint64_t nslots);

static inline const uint8_t *vms_swap_file_slot_map(const struct vms_swap_file *sf, uint32_t slot)
{
	return sf->map + vms_pgoff_to_addr(slot);
}

/*
 * Truncate the file to hwm slots if it is larger. hwm is the value the caller read
 * under its lock; slots above it must be unused (no allocation may run meanwhile).
 */
int vms_swap_file_shrink(struct vms_swap_file *sf, uint64_t hwm);

#endif /* VMMSWAP_SWAP_FILE_H */
