// SPDX-License-Identifier: MIT
/*
 * ram.c - guest RAM regions: parsing the layout, memfd mapping, page index math.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/ram.h"

#define PG MVM_GUEST_PAGE_SIZE

static int parse_size(const char *s, char **end, uint64_t *out)
{
	unsigned long long v;

	errno = 0;
	v = strtoull(s, end, 0);
	if (errno || *end == s || *s == '-')
		return -EINVAL;
	switch (**end) {
	case 'G':
	case 'g':
		v <<= 10;
		/* fallthrough */
	case 'M':
	case 'm':
		v <<= 10;
		/* fallthrough */
	case 'K':
	case 'k':
		v <<= 10;
		(*end)++;
	}
	*out = v;
	return 0;
}

int minivm_ram_parse(const char *spec, struct minivm_ram *ram, char *err, size_t errlen)
{
	const char *s = spec;
	char *end;
	int i;

	memset(ram, 0, sizeof(*ram));
	while (*s) {
		struct minivm_ram_region *r = &ram->r[ram->nr];

		if (ram->nr == MINIVM_RAM_MAX_REGIONS) {
			snprintf(err, errlen, "at most %d regions", MINIVM_RAM_MAX_REGIONS);
			return -EINVAL;
		}
		if (parse_size(s, &end, &r->size) || *end != '@' ||
		    parse_size(end + 1, &end, &r->gpa) || (*end && *end != ',')) {
			snprintf(err, errlen, "bad region '%s' (want SIZE@GPA, e.g. 64M@4G)", s);
			return -EINVAL;
		}
		if (!r->size || (r->size | r->gpa) & (PG - 1)) {
			snprintf(err, errlen,
				 "region %d: size and gpa must be non-zero 4 KiB multiples",
				 ram->nr);
			return -EINVAL;
		}
		if (r->gpa < MVM_GUEST_BOOT_SIZE || r->gpa + r->size < r->gpa ||
		    (r->gpa < MVM_GUEST_MMIO_BASE + 0x100000 &&
		     r->gpa + r->size > MVM_GUEST_MMIO_BASE) ||
		    r->gpa + r->size > (64ULL << 30)) {
			snprintf(err, errlen,
				 "region %d: must lie in [2 MiB, 64 GiB) and avoid the MMIO window "
				 "at %#llx",
				 ram->nr, MVM_GUEST_MMIO_BASE);
			return -EINVAL;
		}
		for (i = 0; i < ram->nr; i++) {
			if (r->gpa < ram->r[i].gpa + ram->r[i].size) {
				snprintf(err, errlen,
					 "region %d overlaps or precedes region %d (sort by gpa)",
					 ram->nr, i);
				return -EINVAL;
			}
		}
		r->memfd = -1;
		ram->total_pages += r->size / PG;
		ram->nr++;
		s = *end ? end + 1 : end;
	}
	if (!ram->nr) {
		snprintf(err, errlen, "no RAM regions");
		return -EINVAL;
	}
	return 0;
}

int minivm_ram_map(struct minivm_ram *ram)
{
	int i, ret;

	for (i = 0; i < ram->nr; i++) {
		struct minivm_ram_region *r = &ram->r[i];
		char name[32];

		snprintf(name, sizeof(name), "guest-ram-%d", i);
		r->memfd = memfd_create(name, MFD_CLOEXEC);
		if (r->memfd < 0)
			goto err;
		if (ftruncate(r->memfd, r->size) < 0)
			goto err;
		r->hva = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
		if (r->hva == MAP_FAILED) {
			r->hva = NULL;
			goto err;
		}
	}
	return 0;
err:
	ret = -errno;
	minivm_ram_unmap(ram);
	return ret;
}

void minivm_ram_unmap(struct minivm_ram *ram)
{
	int i;

	for (i = 0; i < ram->nr; i++) {
		struct minivm_ram_region *r = &ram->r[i];

		if (r->hva)
			munmap(r->hva, r->size);
		if (r->memfd >= 0)
			close(r->memfd);
		r->hva = NULL;
		r->memfd = -1;
	}
}

void *minivm_ram_page(const struct minivm_ram *ram, uint64_t page)
{
	int i;

	for (i = 0; i < ram->nr; i++) {
		uint64_t pages = ram->r[i].size / PG;

		if (page < pages)
			return (char *)ram->r[i].hva + page * PG;
		page -= pages;
	}
	return NULL;
}

int minivm_ram_range_ok(const struct minivm_ram *ram, uint64_t start, uint64_t count)
{
	return count && start < ram->total_pages && count <= ram->total_pages - start;
}

const struct minivm_ram_region *minivm_ram_find(const struct minivm_ram *ram, uint64_t gpa,
						uint64_t len)
{
	int i;

	for (i = 0; i < ram->nr; i++) {
		const struct minivm_ram_region *r = &ram->r[i];

		if (gpa >= r->gpa && len <= r->size && gpa - r->gpa <= r->size - len)
			return r;
	}
	return NULL;
}
