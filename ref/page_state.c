// SPDX-License-Identifier: MIT
/*
 * page_state.c - bitmaps with a summary level and the packed per-page file state
 * (see vmmswap/page_state.h).
 */
#include <errno.h>
#include <stdlib.h>

#include <vmmswap/page_state.h>

static uint64_t nwords(uint64_t nbits)
{
	return (nbits + 63) / 64;
}

uint64_t vms_bitmap_bytes(uint64_t nbits)
{
	return (nwords(nbits) + nwords(nwords(nbits))) * sizeof(uint64_t);
}

int vms_bitmap_init(struct vms_bitmap *bm, uint64_t nbits)
{
	/* At least one word each so that the scans never see a NULL array. */
	bm->words = calloc(nwords(nbits) ? nwords(nbits) : 1, sizeof(uint64_t));
	bm->summary = calloc(nwords(nwords(nbits)) ? nwords(nwords(nbits)) : 1, sizeof(uint64_t));
	bm->nbits = nbits;
	bm->count = 0;
	if (!bm->words || !bm->summary) {
		vms_bitmap_destroy(bm);
		return -ENOMEM;
	}
	return 0;
}

void vms_bitmap_destroy(struct vms_bitmap *bm)
{
	free(bm->words);
	free(bm->summary);
	bm->words = NULL;
	bm->summary = NULL;
	bm->nbits = 0;
	bm->count = 0;
}

static void sync_summary(struct vms_bitmap *bm, uint64_t w)
{
	uint64_t sbit = 1ULL << (w % 64);

	if (bm->words[w])
		bm->summary[w / 64] |= sbit;
	else
		bm->summary[w / 64] &= ~sbit;
}

bool vms_bitmap_set(struct vms_bitmap *bm, uint64_t bit)
{
	uint64_t w = bit / 64, m = 1ULL << (bit % 64);

	if (bm->words[w] & m)
		return true;
	bm->words[w] |= m;
	bm->summary[w / 64] |= 1ULL << (w % 64);
	bm->count++;
	return false;
}

bool vms_bitmap_clear(struct vms_bitmap *bm, uint64_t bit)
{
	uint64_t w = bit / 64, m = 1ULL << (bit % 64);

	if (!(bm->words[w] & m))
		return false;
	bm->words[w] &= ~m;
	sync_summary(bm, w);
	bm->count--;
	return true;
}

/* Mask of the bits [lo, hi) of one word, 0 <= lo < hi <= 64. */
static uint64_t word_mask(unsigned int lo, unsigned int hi)
{
	uint64_t m = hi == 64 ? ~0ULL : (1ULL << hi) - 1;

	return m & ~((1ULL << lo) - 1);
}

static void change_range(struct vms_bitmap *bm, uint64_t start, uint64_t end, bool set)
{
	while (start < end) {
		uint64_t w = start / 64;
		unsigned int lo = start % 64;
		unsigned int hi = (end - w * 64) >= 64 ? 64 : (unsigned int)(end - w * 64);
		uint64_t m = word_mask(lo, hi);
		uint64_t old = bm->words[w];

		if (set) {
			bm->words[w] |= m;
			bm->count += (uint64_t)__builtin_popcountll(m & ~old);
		} else {
			bm->words[w] &= ~m;
			bm->count -= (uint64_t)__builtin_popcountll(m & old);
		}
		sync_summary(bm, w);
		start = w * 64 + hi;
	}
}

void vms_bitmap_set_range(struct vms_bitmap *bm, uint64_t start, uint64_t end)
{
	change_range(bm, start, end, true);
}

void vms_bitmap_clear_range(struct vms_bitmap *bm, uint64_t start, uint64_t end)
{
	change_range(bm, start, end, false);
}

/* Lowest w' >= w with a non-zero word, via the summary, or nw if none. */
static uint64_t next_nonzero_word(const struct vms_bitmap *bm, uint64_t w, uint64_t nw)
{
	while (w < nw) {
		uint64_t s = bm->summary[w / 64] & ~((1ULL << (w % 64)) - 1);

		if (s)
			return (w & ~63ULL) + (uint64_t)__builtin_ctzll(s);
		w = (w | 63) + 1;
	}
	return nw;
}

uint64_t vms_bitmap_next_set(const struct vms_bitmap *bm, uint64_t from, uint64_t limit)
{
	uint64_t nw, w;

	if (limit > bm->nbits)
		limit = bm->nbits;
	if (from >= limit)
		return limit;
	nw = nwords(limit);
	w = from / 64;
	{
		uint64_t v = bm->words[w] & ~((1ULL << (from % 64)) - 1);

		if (v) {
			uint64_t bit = w * 64 + (uint64_t)__builtin_ctzll(v);

			return bit < limit ? bit : limit;
		}
	}
	w = next_nonzero_word(bm, w + 1, nw);
	if (w >= nw)
		return limit;
	w = w * 64 + (uint64_t)__builtin_ctzll(bm->words[w]);
	return w < limit ? w : limit;
}

uint64_t vms_bitmap_next_clear(const struct vms_bitmap *bm, uint64_t from, uint64_t limit)
{
	if (limit > bm->nbits)
		limit = bm->nbits;
	while (from < limit) {
		uint64_t w = from / 64;
		uint64_t v = ~bm->words[w] & ~((1ULL << (from % 64)) - 1);

		if (v) {
			uint64_t bit = w * 64 + (uint64_t)__builtin_ctzll(v);

			return bit < limit ? bit : limit;
		}
		from = (w + 1) * 64;
	}
	return limit;
}

uint64_t vms_page_state_bytes(uint64_t npages)
{
	return npages * sizeof(uint32_t) + 3 * vms_bitmap_bytes(npages);
}

int vms_page_state_init(struct vms_page_state *ps, uint64_t npages)
{
	int ret;

	*ps = (struct vms_page_state){ .npages = npages };
	if (npages > VMS_MAX_PAGES)
		return -E2BIG;
	ps->file = calloc(npages ? npages : 1, sizeof(uint32_t));
	if (!ps->file)
		return -ENOMEM;
	ret = vms_bitmap_init(&ps->staged, npages);
	if (!ret)
		ret = vms_bitmap_init(&ps->present, npages);
	if (!ret)
		ret = vms_bitmap_init(&ps->slotted, npages);
	if (ret)
		vms_page_state_destroy(ps);
	return ret;
}

void vms_page_state_destroy(struct vms_page_state *ps)
{
	free(ps->file);
	ps->file = NULL;
	vms_bitmap_destroy(&ps->staged);
	vms_bitmap_destroy(&ps->present);
	vms_bitmap_destroy(&ps->slotted);
	ps->npages = 0;
}

bool vms_ps_set_staged(struct vms_page_state *ps, uint64_t pgoff)
{
	return vms_bitmap_set(&ps->staged, pgoff);
}

bool vms_ps_clear_staged(struct vms_page_state *ps, uint64_t pgoff)
{
	return vms_bitmap_clear(&ps->staged, pgoff);
}

void vms_ps_set_present(struct vms_page_state *ps, uint64_t pgoff, uint32_t slot)
{
	ps->file[pgoff] = (1U << 31) | (slot + 1);
	vms_bitmap_set(&ps->present, pgoff);
	vms_bitmap_set(&ps->slotted, pgoff);
}

void vms_ps_set_cleared(struct vms_page_state *ps, uint64_t pgoff)
{
	ps->file[pgoff] &= ~(1U << 31);
	vms_bitmap_clear(&ps->present, pgoff);
}

uint32_t vms_ps_set_none(struct vms_page_state *ps, uint64_t pgoff)
{
	uint32_t slot = vms_ps_slot(ps, pgoff);

	ps->file[pgoff] = 0;
	vms_bitmap_clear(&ps->present, pgoff);
	vms_bitmap_clear(&ps->slotted, pgoff);
	return slot;
}
