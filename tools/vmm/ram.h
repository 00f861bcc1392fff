/* SPDX-License-Identifier: MIT */
/*
 * vmm/ram.h - minivmm's guest RAM: memfd MAP_SHARED regions at guest-physical
 * addresses, with gaps allowed between them, and the "RAM page index" that numbers
 * their pages consecutively (region order) for guest commands, DMA and the balloon.
 *
 * Contract: regions are sorted by gpa, page aligned, non-overlapping, at most
 * MINIVM_RAM_MAX_REGIONS; the table is immutable after minivm_ram_map(), so any thread
 * (and any forked device process) may read it without locking.
 */
#ifndef MINIVM_RAM_H
#define MINIVM_RAM_H

#include <stdint.h>

#include "vmm/guest_abi.h"

#define MINIVM_RAM_MAX_REGIONS MVM_GUEST_MAX_REGIONS

struct minivm_ram_region {
	uint64_t gpa;
	uint64_t size;
	void *hva;
	int memfd;
};

struct minivm_ram {
	int nr;
	uint64_t total_pages;
	struct minivm_ram_region r[MINIVM_RAM_MAX_REGIONS];
};

/*
 * Parse "SIZE@GPA[,SIZE@GPA...]" (sizes with K/M/G suffixes, numbers in any C base)
 * into ram (not mapped yet). -EINVAL with a message in err for bad input.
 */
int minivm_ram_parse(const char *spec, struct minivm_ram *ram, char *err, size_t errlen);

/* Create and map every region's memfd. On error nothing stays mapped. */
int minivm_ram_map(struct minivm_ram *ram);
void minivm_ram_unmap(struct minivm_ram *ram);

/* Host address of RAM page 'page', or NULL if out of range. */
void *minivm_ram_page(const struct minivm_ram *ram, uint64_t page);

/* Is [start, start + count) a non-empty range of valid RAM page indexes? */
int minivm_ram_range_ok(const struct minivm_ram *ram, uint64_t start, uint64_t count);

/*
 * The region holding guest-physical [gpa, gpa + len) entirely, or NULL (a range in
 * the boot region, in a gap or across regions is not RAM the balloon may take).
 */
const struct minivm_ram_region *minivm_ram_find(const struct minivm_ram *ram, uint64_t gpa,
						uint64_t len);

#endif /* MINIVM_RAM_H */
