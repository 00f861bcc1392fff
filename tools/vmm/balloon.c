// SPDX-License-Identifier: MIT
/*
 * balloon.c - the balloon thread: discards guest RAM runs handed over by vCPUs.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/balloon.h"

static const char *const mode_names[] = {
	[MINIVM_BALLOON_REMOVE] = "remove",
	[MINIVM_BALLOON_DONTNEED] = "dontneed",
	[MINIVM_BALLOON_PUNCH_HOLE] = "punch-hole",
};

const char *minivm_balloon_mode_name(enum minivm_balloon_mode mode)
{
	return (unsigned int)mode < 3 ? mode_names[mode] : "?";
}

int minivm_balloon_mode_parse(const char *name, enum minivm_balloon_mode *mode)
{
	unsigned int i;

	for (i = 0; i < 3; i++) {
		if (!strcmp(name, mode_names[i])) {
			*mode = i;
			return 0;
		}
	}
	return -EINVAL;
}

static int discard(struct minivm_balloon *b, uint64_t gpa, uint64_t len)
{
	const struct minivm_ram_region *r = minivm_ram_find(b->ram, gpa, len);
	char *hva;

	if (!r)
		return -EINVAL;
	hva = (char *)r->hva + (gpa - r->gpa);
	switch (b->mode) {
	case MINIVM_BALLOON_REMOVE:
		return madvise(hva, len, MADV_REMOVE) < 0 ? -errno : 0;
	case MINIVM_BALLOON_DONTNEED:
		return madvise(hva, len, MADV_DONTNEED) < 0 ? -errno : 0;
	case MINIVM_BALLOON_PUNCH_HOLE:
		return fallocate(r->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, gpa - r->gpa,
				 len) < 0
			       ? -errno
			       : 0;
	}
	return -EINVAL;
}

static void *balloon_main(void *arg)
{
	struct minivm_balloon *b = arg;
	int ret;

	pthread_mutex_lock(&b->lock);
	for (;;) {
		while (!b->quit && !b->pending)
			pthread_cond_wait(&b->cond, &b->lock);
		if (b->quit)
			break;
		b->pending = false;
		pthread_mutex_unlock(&b->lock);

		if (b->op == MVM_BALLOON_INFLATE)
			ret = discard(b, b->gpa, b->len);
		else
			ret = 0; /* deflate: the guest's next touch zero-fills */

		pthread_mutex_lock(&b->lock);
		if (!ret && b->op == MVM_BALLOON_INFLATE)
			b->inflated_pages += b->len / MVM_GUEST_PAGE_SIZE;
		else if (!ret)
			b->deflated_pages += b->len / MVM_GUEST_PAGE_SIZE;
		b->result = ret;
		b->done = true;
		pthread_cond_broadcast(&b->cond);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

int minivm_balloon_start(struct minivm_balloon *b, const struct minivm_ram *ram,
			 enum minivm_balloon_mode mode)
{
	int ret;

	memset(b, 0, sizeof(*b));
	b->ram = ram;
	b->mode = mode;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	ret = -pthread_create(&b->thread, NULL, balloon_main, b);
	if (!ret)
		b->started = true;
	return ret;
}

void minivm_balloon_stop(struct minivm_balloon *b)
{
	if (!b->started)
		return;
	pthread_mutex_lock(&b->lock);
	b->quit = true;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
	b->started = false;
}

int minivm_balloon_request(struct minivm_balloon *b, uint32_t op, uint64_t gpa, uint64_t len)
{
	int ret;

	if ((op != MVM_BALLOON_INFLATE && op != MVM_BALLOON_DEFLATE) || !len ||
	    (gpa | len) & (MVM_GUEST_PAGE_SIZE - 1) || !minivm_ram_find(b->ram, gpa, len))
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	while (b->busy && !b->quit)
		pthread_cond_wait(&b->cond, &b->lock);
	if (b->quit) {
		pthread_mutex_unlock(&b->lock);
		return -ESHUTDOWN;
	}
	b->busy = true;
	b->op = op;
	b->gpa = gpa;
	b->len = len;
	b->done = false;
	b->pending = true;
	pthread_cond_broadcast(&b->cond);
	while (!b->done && !b->quit)
		pthread_cond_wait(&b->cond, &b->lock);
	ret = b->done ? b->result : -ESHUTDOWN;
	b->busy = false;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	return ret;
}
