// SPDX-License-Identifier: MIT
/*
 * swap_file.c - slot allocation and I/O on the unnamed swap file (see
 * vmmswap/swap_file.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <vmmswap/file_io.h>
#include <vmmswap/log.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/swap_file.h>
#include <vmmswap/test_hooks.h>

int vms_swap_file_open(struct vms_swap_file *sf, const char *dir, uint64_t max_slots)
{
	int ret;

	*sf = (struct vms_swap_file){ .fd = -1, .max_slots = max_slots };
	if (max_slots > (uint64_t)VMS_MAX_SLOT + 1)
		return -E2BIG;
	sf->fd = open(dir, O_TMPFILE | O_EXCL | O_RDWR | O_CLOEXEC, 0);
	if (sf->fd < 0) {
		ret = -errno;
		vms_log(VMS_LOG_ERROR, "swap file: O_TMPFILE in %s: %d", dir, ret);
		return ret;
	}
	ret = vms_bitmap_init(&sf->used, max_slots);
	if (ret) {
		close(sf->fd);
		sf->fd = -1;
		return ret;
	}
	if (max_slots) {
		/* Address space only; without it swap-in falls back to pread. */
		void *p =
			mmap(NULL, vms_pages_to_bytes(max_slots), PROT_READ, MAP_SHARED, sf->fd, 0);

		sf->map = p == MAP_FAILED ? NULL : p;
	}
	return 0;
}

void vms_swap_file_close(struct vms_swap_file *sf)
{
	if (sf->map)
		munmap((void *)sf->map, vms_pages_to_bytes(sf->max_slots));
	sf->map = NULL;
	if (sf->fd >= 0)
		close(sf->fd);
	sf->fd = -1;
	vms_bitmap_destroy(&sf->used);
}

int vms_swap_file_alloc(struct vms_swap_file *sf, uint32_t *slot)
{
	/* The lowest free slot keeps the data compact below the hwm. */
	uint64_t s = vms_bitmap_next_clear(&sf->used, sf->free_hint, sf->max_slots);

	if (s >= sf->max_slots)
		return -ENOSPC;
	vms_bitmap_set(&sf->used, s);
	sf->free_hint = s + 1;
	if (s >= sf->hwm)
		sf->hwm = s + 1;
	*slot = (uint32_t)s;
	return 0;
}

void vms_swap_file_free(struct vms_swap_file *sf, uint32_t slot)
{
	if (!vms_bitmap_clear(&sf->used, slot)) {
		vms_log(VMS_LOG_WARN, "swap file: slot %u freed twice", slot);
		return;
	}
	if (slot < sf->free_hint)
		sf->free_hint = slot;
	if (slot + 1ULL == sf->hwm) {
		/* Lower the hwm past every free slot at the top. */
		uint64_t h = slot;

		while (h > 0 && !vms_bitmap_test(&sf->used, h - 1)) {
			/* Skip whole empty words at once. */
			if (h % 64 == 0 && h >= 64 && !sf->used.words[h / 64 - 1])
				h -= 64;
			else
				h--;
		}
		sf->hwm = h;
	}
}

static bool take_injected(struct vms_swap_file *sf, int *err)
{
	int e = __atomic_exchange_n(&sf->inject_errno, 0, __ATOMIC_RELAXED);

	*err = e;
	return e != 0;
}

int vms_swap_file_write(struct vms_swap_file *sf, uint32_t slot, const void *buf, uint64_t nslots)
{
	uint64_t off = vms_pgoff_to_addr(slot), len = vms_pages_to_bytes(nslots);
	int err;

	if (take_injected(sf, &err)) {
		/* Write some, then fail: a partial write that tears a page. */
		(void)vms_pwrite_all(sf->fd, buf, len / 2 - vms_page_size() / 2, off);
		return -err;
	}
	err = vms_pwrite_all(sf->fd, buf, len, off);
	if (err)
		return err;
	if (slot + nslots > __atomic_load_n(&sf->file_slots, __ATOMIC_RELAXED))
		__atomic_store_n(&sf->file_slots, slot + nslots, __ATOMIC_RELAXED);
	return 0;
}

int vms_swap_file_write_fd(struct vms_swap_file *sf, uint32_t slot, int src_fd, uint64_t src_off,
			   uint64_t nslots)
{
	uint64_t off = vms_pgoff_to_addr(slot), len = vms_pages_to_bytes(nslots);
	off_t in = (off_t)src_off;
	int err = 0;

	if (take_injected(sf, &err))
		len = len / 2 - vms_page_size() / 2; /* tear a page, as vms_swap_file_write */
	/* sendfile writes at the file position; only swap-out writes, one at a time. */
	if (lseek(sf->fd, (off_t)off, SEEK_SET) < 0)
		return err ? -err : -errno;
	while (len) {
		ssize_t n = sendfile(sf->fd, src_fd, &in, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (err)
				break;
			if ((errno == EINVAL || errno == ENOSYS) && in == (off_t)src_off)
				return -EOPNOTSUPP; /* nothing written: the caller copies */
			return -errno;
		}
		if (n == 0)
			return err ? -err : -EIO;
		len -= (uint64_t)n;
	}
	if (err)
		return -err;
	if (slot + nslots > __atomic_load_n(&sf->file_slots, __ATOMIC_RELAXED))
		__atomic_store_n(&sf->file_slots, slot + nslots, __ATOMIC_RELAXED);
	return 0;
}

int vms_swap_file_read(struct vms_swap_file *sf, uint32_t slot, void *buf, uint64_t nslots)
{
	/* -EIO at the end of the file: a slot in use always lies inside it. */
	return vms_pread_all(sf->fd, buf, vms_pages_to_bytes(nslots), vms_pgoff_to_addr(slot));
}

void vms_swap_file_prefetch(struct vms_swap_file *sf, uint32_t slot, uint64_t nslots)
{
	/* Only a hint: an error just means no readahead. */
	(void)posix_fadvise(sf->fd, (off_t)vms_pgoff_to_addr(slot),
			    (off_t)vms_pages_to_bytes(nslots), POSIX_FADV_WILLNEED);
}

int vms_swap_file_populate(struct vms_swap_file *sf, uint32_t slot, uint64_t nslots)
{
#ifdef MADV_POPULATE_READ
	if (!sf->map)
		return -EOPNOTSUPP;
	if (madvise((void *)vms_swap_file_slot_map(sf, slot), vms_pages_to_bytes(nslots),
		    MADV_POPULATE_READ) < 0)
		return errno == EINVAL ? -EOPNOTSUPP : -errno;
	return 0;
#else
	(void)sf;
	(void)slot;
	(void)nslots;
	return -EOPNOTSUPP;
#endif
}

void vms_swap_file_unmap(struct vms_swap_file *sf, uint32_t slot, uint64_t nslots)
{
	/* Only page tables: a failure just keeps them until the next munmap. */
	if (sf->map)
		(void)madvise((void *)vms_swap_file_slot_map(sf, slot), vms_pages_to_bytes(nslots),
			      MADV_DONTNEED);
}

int vms_swap_file_shrink(struct vms_swap_file *sf, uint64_t hwm)
{
	if (__atomic_load_n(&sf->file_slots, __ATOMIC_RELAXED) <= hwm)
		return 0;
	if (ftruncate(sf->fd, (off_t)vms_pgoff_to_addr(hwm)) < 0)
		return -errno;
	__atomic_store_n(&sf->file_slots, hwm, __ATOMIC_RELAXED);
	return 0;
}

void vms_swap_file_inject_write_error(struct vms_swap_file *sf, int err)
{
	__atomic_store_n(&sf->inject_errno, err < 0 ? -err : err, __ATOMIC_RELAXED);
}
