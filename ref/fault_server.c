// SPDX-License-Identifier: MIT
/*
 * fault_server.c - the event-loop rule, once (see vmmswap/fault_server.h).
 */
#include <errno.h>
#include <stdlib.h>

#include <vmmswap/fault_server.h>
#include <vmmswap/log.h>
#include <vmmswap/page_handler.h>
#include <vmmswap/pagesize.h>
#include <vmmswap/uffd.h>

void vms_fs_init(struct vms_fault_server *s, struct vms_page_handler *ph, int uffd,
		 const struct vms_fault_server_opts *o)
{
	*s = (struct vms_fault_server){ .ph = ph, .uffd = uffd };
	if (o)
		s->o = *o;
	if (!s->o.batch || s->o.batch > VMS_FS_MAX_BATCH)
		s->o.batch = VMS_FS_MAX_BATCH;
}

void vms_fs_destroy(struct vms_fault_server *s)
{
	free(s->kept);
	free(s->spare);
	s->kept = s->spare = NULL;
	s->nkept = s->ckept = s->cspare = 0;
}

static void count(uint64_t *counter, uint64_t n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

static void note_error(struct vms_fault_server *s, int err)
{
	count(&s->errors, 1);
	if (!s->first_err)
		s->first_err = err;
}

static int keep(struct vms_fault_server *s, uint64_t addr)
{
	if (s->nkept == s->ckept) {
		size_t n = s->ckept ? s->ckept * 2 : 16;
		uint64_t *v = realloc(s->kept, n * sizeof(*v));

		if (!v) {
			vms_log(VMS_LOG_ERROR, "fault server: out of memory keeping a fault");
			return -ENOMEM;
		}
		s->kept = v;
		s->ckept = n;
	}
	s->kept[s->nkept++] = addr;
	return 0;
}

/* A fault message: counted once, however often it is retried. */
static int keep_fault(struct vms_fault_server *s, uint64_t addr)
{
	count(&s->faults, 1);
	return keep(s, addr);
}

static void apply_remove(struct vms_fault_server *s, const struct uffd_msg *m)
{
	uint64_t start = m->arg.remove.start, end = m->arg.remove.end;
	int ret = 0;

	if (s->o.remove)
		ret = s->o.remove(s->o.arg, start, end);
	else if (s->ph)
		ret = vms_ph_remove(s->ph, start, end);
	else
		vms_log(VMS_LOG_DEBUG, "fault server: remove with no page handler");
	if (ret) {
		vms_log(VMS_LOG_ERROR, "fault server: remove [%#llx, %#llx): %d",
			(unsigned long long)start, (unsigned long long)end, ret);
		note_error(s, ret);
	}
	/* Release: a waiter that sees the count also sees the remove's effects. */
	__atomic_add_fetch(&s->removes, 1, __ATOMIC_RELEASE);
}

static int serve_one(struct vms_fault_server *s, uint64_t addr)
{
	if (s->o.fault)
		return s->o.fault(s->o.arg, s->uffd, addr);
	if (s->ph)
		return vms_ph_fault(s->ph, s->uffd, addr);
	/* No handler any more (a fault queued before the unregister): just wake. */
	return vms_uffd_wake(s->uffd, vms_page_align_down(addr), vms_page_size());
}

/* Read until drained: removes applied at once, faults collected. */
static int drain(struct vms_fault_server *s, int *kept_err)
{
	struct uffd_msg msgs[VMS_FS_MAX_BATCH];

	for (;;) {
		size_t n = 0, k;
		int ret = vms_uffd_read_events(s->uffd, msgs, s->o.batch, &n);

		if (ret) {
			vms_log(VMS_LOG_ERROR, "fault server: reading uffd events: %d", ret);
			return ret;
		}
		count(&s->reads, 1);
		if (!n)
			return 0;
		count(&s->events, n);
		for (k = 0; k < n; k++) {
			const struct uffd_msg *m = &msgs[k];

			if (m->event == UFFD_EVENT_REMOVE)
				apply_remove(s, m);
			else if (m->event == UFFD_EVENT_PAGEFAULT)
				*kept_err = keep_fault(s, m->arg.pagefault.address) ?: *kept_err;
			else if (s->o.other)
				s->o.other(s->o.arg, m);
			else
				vms_log(VMS_LOG_WARN, "fault server: unexpected uffd event %s",
					vms_uffd_event_name(m->event));
		}
		/*
		 * One read() returns every message pending at that moment (the kernel
		 * reads on without blocking until the queue is empty or the buffer is
		 * full), so a short batch means drained. Later events wake the poll.
		 */
		if (n < s->o.batch)
			return 0;
	}
}

int vms_fs_serve(struct vms_fault_server *s, pthread_mutex_t *gate)
{
	uint64_t *todo;
	size_t ntodo, ctodo, k;
	int ret, kept_err = 0;

	if (gate)
		pthread_mutex_lock(gate);
	ret = drain(s, &kept_err);
	if (gate)
		pthread_mutex_unlock(gate);
	/* Serve the collected faults; those that get -EAGAIN are kept again. */
	todo = s->kept;
	ntodo = s->nkept;
	ctodo = s->ckept;
	s->kept = s->spare;
	s->ckept = s->cspare;
	s->nkept = 0;
	for (k = 0; k < ntodo; k++) {
		int r = serve_one(s, todo[k]);

		if (r == -EAGAIN) {
			count(&s->eagain, 1);
			kept_err = keep(s, todo[k]) ?: kept_err;
		} else if (r == -ESRCH) {
			ret = ret ?: -ESRCH; /* the process is gone: drop the rest */
			break;
		} else if (r) {
			note_error(s, r);
		}
	}
	s->spare = todo;
	s->cspare = ctodo;
	return ret ?: kept_err;
}
