/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/pagesize.h - the host page size, the THP size and page/address math.
 *
 * Contract:
 *  - The page size is the kernel's base page size (sysconf), cached on first use;
 *    it is a power of two on every Linux architecture, so the math is shifts.
 *  - This header is the only place that shifts by the page shift. A "pgoff" is a
 *    page number (an index), an "addr" is a byte address or offset; convert with
 *    the helpers below, never by hand.
 *  - vms_thp_size() reads /sys/kernel/mm/transparent_hugepage/hpage_pmd_size once,
 *    falling back to 2 MiB when it is missing or not a power-of-two multiple of the
 *    page size.
 * All functions are thread-safe.
 */
#ifndef VMMSWAP_PAGESIZE_H
#define VMMSWAP_PAGESIZE_H

#include <stdbool.h>
#include <stdint.h>

#define VMS_THP_SIZE_FALLBACK (2ULL << 20)

unsigned int vms_page_shift(void);
uint64_t vms_thp_size(void);

static inline uint64_t vms_page_size(void)
{
	return 1ULL << vms_page_shift();
}

/* Page number containing addr (rounds down). */
static inline uint64_t vms_addr_to_pgoff(uint64_t addr)
{
	return addr >> vms_page_shift();
}

/* First byte of page pgoff. */
static inline uint64_t vms_pgoff_to_addr(uint64_t pgoff)
{
	return pgoff << vms_page_shift();
}

/* Byte count of n pages, and page count of a byte length (rounded down / up). */
static inline uint64_t vms_pages_to_bytes(uint64_t npages)
{
	return npages << vms_page_shift();
}

static inline uint64_t vms_bytes_to_pages(uint64_t bytes)
{
	return bytes >> vms_page_shift();
}

static inline uint64_t vms_bytes_to_pages_up(uint64_t bytes)
{
	return (bytes + vms_page_size() - 1) >> vms_page_shift();
}

static inline bool vms_is_page_aligned(uint64_t addr)
{
	return (addr & (vms_page_size() - 1)) == 0;
}

static inline uint64_t vms_page_align_down(uint64_t addr)
{
	return addr & ~(vms_page_size() - 1);
}

#endif /* VMMSWAP_PAGESIZE_H */
