// SPDX-License-Identifier: MIT
/*
 * vcpus.c - vCPU threads running the guest's command loop, the command handoff
 * through the mailbox, and pausing for swap enable.
 *
 * Locking: one mutex and one condition variable for all vCPUs. Every state change is
 * broadcast; waiters re-check their own condition. The mailbox is written by the VMM
 * only while the guest is parked in MVM_DB_WAIT (or for 'stop', a single volatile
 * word), so the guest never sees a half-written command.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vmm/vcpus.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void kick_handler(int sig)
{
	(void)sig; /* only there to make KVM_RUN return with EINTR */
}

const char *minivm_vcpu_state_name(enum minivm_vcpu_state s)
{
	static const char *const names[] = {
		[MINIVM_VCPU_IDLE] = "idle",	     [MINIVM_VCPU_QUEUED] = "queued",
		[MINIVM_VCPU_RUNNING] = "running",   [MINIVM_VCPU_BACKGROUND] = "writer",
		[MINIVM_VCPU_STOPPING] = "stopping", [MINIVM_VCPU_DEAD] = "dead",
	};

	return (unsigned int)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* Called with g->lock held: make every vCPU inside KVM_RUN come out. */
static void kick_all(struct minivm_vcpus *g)
{
	int i;

	for (i = 0; i < g->nr; i++) {
		struct minivm_vcpu_thread *v = &g->v[i];

		if (!v->started)
			continue;
		minivm_vcpu_request_exit(&v->vcpu, true);
		if (v->in_guest)
			pthread_kill(v->thread, SIGUSR1);
	}
}

static void read_results(struct minivm_vcpu_thread *v, uint64_t status)
{
	const struct mvm_mailbox *mb = v->mb;

	v->res.status = (int)status;
	v->res.pages_done = mb->pages_done;
	v->res.mismatched_pages = mb->mismatched_pages;
	v->res.bad_page = mb->bad_page;
	v->res.bad_word = mb->bad_word;
	v->res.expected = mb->expected;
	v->res.actual = mb->actual;
	v->res.checksum = mb->checksum;
	v->res.passes = mb->passes;
	v->res.last_seed = mb->last_seed;
	v->res.elapsed_us = (now_ns() - v->queued_ns) / 1000;
}

/* Called with g->lock held. */
static void mark_dead(struct minivm_vcpu_thread *v)
{
	v->state = MINIVM_VCPU_DEAD;
	pthread_cond_broadcast(&v->g->cond);
}

/*
 * The guest asks for its next command. Block until one is queued (and we are not
 * paused); false if the VMM is stopping.
 */
static bool wait_command(struct minivm_vcpu_thread *v)
{
	struct minivm_vcpus *g = v->g;
	struct mvm_mailbox *mb = v->mb;

	pthread_mutex_lock(&g->lock);
	while (!g->quit && (v->state != MINIVM_VCPU_QUEUED || g->paused))
		pthread_cond_wait(&g->cond, &g->lock);
	if (g->quit) {
		pthread_mutex_unlock(&g->lock);
		return false;
	}
	mb->seq = ++v->seq;
	mb->cmd = v->cmd;
	mb->flags = 0;
	mb->start = v->start;
	mb->count = v->count;
	mb->seed = v->seed;
	mb->stop = 0;
	v->state = MINIVM_VCPU_RUNNING;
	minivm_vcpu_mmio_reply(&v->vcpu, v->seq);
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	return true;
}

/* Handle one MMIO exit; false when this vCPU must stop. */
static bool handle_mmio(struct minivm_vcpu_thread *v, const struct minivm_exit *e)
{
	struct minivm_vcpus *g = v->g;
	struct mvm_mailbox *mb = v->mb;
	char why[96];

	if (!e->mmio.is_write && e->mmio.addr == MVM_DB_WAIT && e->mmio.len == 8)
		return wait_command(v);
	if (!e->mmio.is_write)
		goto bad;

	switch (e->mmio.addr) {
	case MVM_DB_DONE:
		pthread_mutex_lock(&g->lock);
		read_results(v, e->mmio.data);
		v->state = MINIVM_VCPU_IDLE;
		pthread_cond_broadcast(&g->cond);
		pthread_mutex_unlock(&g->lock);
		return true;
	case MVM_DB_STARTED:
		pthread_mutex_lock(&g->lock);
		if (v->state == MINIVM_VCPU_RUNNING) {
			read_results(v, 0);
			v->state = MINIVM_VCPU_BACKGROUND;
		}
		pthread_cond_broadcast(&g->cond);
		pthread_mutex_unlock(&g->lock);
		return true;
	case MVM_DB_BALLOON:
		mb->bl_status = g->hooks.balloon ? g->hooks.balloon(g->hooks.arg, mb->bl_op,
								    mb->bl_gpa, mb->bl_len)
						 : -EOPNOTSUPP;
		return true;
	case MVM_DB_HALT:
		pthread_mutex_lock(&g->lock);
		read_results(v, 0);
		mark_dead(v);
		pthread_mutex_unlock(&g->lock);
		if (g->hooks.halted)
			g->hooks.halted(g->hooks.arg, v->vcpu.id, e->mmio.data);
		return false;
	}
bad:
	snprintf(why, sizeof(why), "unexpected MMIO %s at %#llx (len %u)",
		 e->mmio.is_write ? "write" : "read", (unsigned long long)e->mmio.addr,
		 e->mmio.len);
	if (g->hooks.crashed)
		g->hooks.crashed(g->hooks.arg, v->vcpu.id, why);
	return false;
}

static void crash(struct minivm_vcpu_thread *v, const char *why)
{
	struct minivm_vcpus *g = v->g;

	pthread_mutex_lock(&g->lock);
	mark_dead(v);
	pthread_mutex_unlock(&g->lock);
	if (g->hooks.crashed)
		g->hooks.crashed(g->hooks.arg, v->vcpu.id, why);
}

static void *vcpu_main(void *arg)
{
	struct minivm_vcpu_thread *v = arg;
	struct minivm_vcpus *g = v->g;
	struct minivm_exit e;
	char why[160];
	int ret;

	for (;;) {
		pthread_mutex_lock(&g->lock);
		while (g->paused && !g->quit)
			pthread_cond_wait(&g->cond, &g->lock);
		if (g->quit) {
			pthread_mutex_unlock(&g->lock);
			break;
		}
		/* A kick meant for an earlier pause must not cut this run short. */
		minivm_vcpu_request_exit(&v->vcpu, false);
		v->in_guest = true;
		pthread_mutex_unlock(&g->lock);

		ret = minivm_vcpu_run(&v->vcpu, &e);

		pthread_mutex_lock(&g->lock);
		v->in_guest = false;
		pthread_cond_broadcast(&g->cond);
		pthread_mutex_unlock(&g->lock);

		if (ret < 0) {
			snprintf(why, sizeof(why), "KVM_RUN failed: %s", strerror(-ret));
			crash(v, why);
			break;
		}
		if (e.reason == MINIVM_EXIT_INTR)
			continue;
		if (e.reason == MINIVM_EXIT_MMIO) {
			if (!handle_mmio(v, &e)) {
				pthread_mutex_lock(&g->lock);
				if (v->state != MINIVM_VCPU_DEAD && !g->quit)
					mark_dead(v);
				pthread_mutex_unlock(&g->lock);
				break;
			}
			continue;
		}
		if (e.reason == MINIVM_EXIT_EXCEPTION)
			snprintf(why, sizeof(why),
				 "guest exception %u (error code %#llx) at rip %#llx cs %#llx cr2 "
				 "%#llx",
				 e.exception.vector, (unsigned long long)e.exception.error_code,
				 (unsigned long long)e.exception.rip,
				 (unsigned long long)e.exception.cs,
				 (unsigned long long)e.exception.cr2);
		else
			snprintf(why, sizeof(why), "unexpected exit %s (KVM reason %u)",
				 minivm_exit_name(e.reason), e.kvm_reason);
		crash(v, why);
		break;
	}
	return NULL;
}

int minivm_vcpus_start(struct minivm_vcpus *g, struct minivm *vm, int nr,
		       const struct minivm_vcpus_hooks *hooks)
{
	struct sigaction sa;
	int i, ret;

	if (nr < 1 || nr > MVM_GUEST_MAX_VCPUS)
		return -EINVAL;
	memset(g, 0, sizeof(*g));
	g->vm = vm;
	g->hooks = *hooks;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler; /* no SA_RESTART: KVM_RUN must return EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		return -errno;

	for (i = 0; i < nr; i++) {
		struct minivm_vcpu_thread *v = &g->v[i];
		uint64_t stack_top = MVM_GUEST_STACK_GPA + (i + 1) * MVM_GUEST_STACK_SIZE;
		uint64_t mb_gpa = MVM_GUEST_MAILBOX_GPA + i * MVM_GUEST_PAGE_SIZE;

		v->g = g;
		v->mb = minivm_gpa_to_hva(vm, mb_gpa, MVM_GUEST_PAGE_SIZE);
		if (!v->mb) {
			ret = -EFAULT;
			goto err;
		}
		memset(v->mb, 0, MVM_GUEST_PAGE_SIZE);
		ret = minivm_vcpu_create(vm, i, &v->vcpu);
		if (ret)
			goto err;
		g->nr = i + 1;
		ret = minivm_vcpu_enter_long_mode(&v->vcpu, MVM_GUEST_LOAD_GPA, stack_top, true);
		if (!ret)
			ret = minivm_vcpu_set_args(&v->vcpu, i, mb_gpa, MVM_GUEST_INFO_GPA, 0);
		if (ret)
			goto err;
	}
	for (i = 0; i < nr; i++) {
		ret = -pthread_create(&g->v[i].thread, NULL, vcpu_main, &g->v[i]);
		if (ret)
			goto err;
		g->v[i].started = true;
	}
	return 0;
err:
	minivm_vcpus_stop(g);
	return ret;
}

void minivm_vcpus_stop(struct minivm_vcpus *g)
{
	int i;

	pthread_mutex_lock(&g->lock);
	g->quit = true;
	kick_all(g);
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	for (i = 0; i < g->nr; i++) {
		if (g->v[i].started)
			pthread_join(g->v[i].thread, NULL);
		g->v[i].started = false;
		minivm_vcpu_destroy(&g->v[i].vcpu);
	}
	g->nr = 0;
}

/* Wait (lock held) while v is busy with the current command. */
static int wait_done(struct minivm_vcpus *g, struct minivm_vcpu_thread *v,
		     struct minivm_gresult *res)
{
	while (!g->quit && (v->state == MINIVM_VCPU_QUEUED || v->state == MINIVM_VCPU_RUNNING ||
			    v->state == MINIVM_VCPU_STOPPING))
		pthread_cond_wait(&g->cond, &g->lock);
	if (v->state == MINIVM_VCPU_DEAD)
		return -ESRCH;
	if (g->quit)
		return -ESHUTDOWN;
	*res = v->res;
	return 0;
}

int minivm_vcpus_command(struct minivm_vcpus *g, int id, uint32_t cmd, uint64_t start,
			 uint64_t count, uint64_t seed, struct minivm_gresult *res)
{
	struct minivm_vcpu_thread *v;
	int ret;

	if (id < 0 || id >= g->nr)
		return -EINVAL;
	v = &g->v[id];
	pthread_mutex_lock(&g->lock);
	if (g->quit)
		ret = -ESHUTDOWN;
	else if (v->state == MINIVM_VCPU_DEAD)
		ret = -ESRCH;
	else if (v->state != MINIVM_VCPU_IDLE)
		ret = -EBUSY;
	else
		ret = 0;
	if (!ret) {
		v->cmd = cmd;
		v->start = start;
		v->count = count;
		v->seed = seed;
		v->queued_ns = now_ns();
		memset(&v->res, 0, sizeof(v->res));
		v->state = MINIVM_VCPU_QUEUED;
		pthread_cond_broadcast(&g->cond);
		ret = wait_done(g, v, res);
	}
	pthread_mutex_unlock(&g->lock);
	return ret;
}

int minivm_vcpus_writer_stop(struct minivm_vcpus *g, int id, struct minivm_gresult *res)
{
	struct minivm_vcpu_thread *v;
	int ret;

	if (id < 0 || id >= g->nr)
		return -EINVAL;
	v = &g->v[id];
	pthread_mutex_lock(&g->lock);
	if (v->state != MINIVM_VCPU_BACKGROUND) {
		ret = v->state == MINIVM_VCPU_DEAD ? -ESRCH : -ENOENT;
	} else {
		v->state = MINIVM_VCPU_STOPPING;
		__atomic_store_n(&v->mb->stop, 1, __ATOMIC_SEQ_CST);
		ret = wait_done(g, v, res);
	}
	pthread_mutex_unlock(&g->lock);
	return ret;
}

int minivm_vcpus_writer_passes(struct minivm_vcpus *g, int id, uint64_t *passes)
{
	int ret = 0;

	if (id < 0 || id >= g->nr)
		return -EINVAL;
	pthread_mutex_lock(&g->lock);
	if (g->v[id].state != MINIVM_VCPU_BACKGROUND)
		ret = -ENOENT;
	else
		*passes = __atomic_load_n(&g->v[id].mb->passes, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&g->lock);
	return ret;
}

int minivm_vcpus_pause(struct minivm_vcpus *g)
{
	int i;
	bool busy;

	pthread_mutex_lock(&g->lock);
	g->paused++;
	kick_all(g);
	do {
		busy = false;
		for (i = 0; i < g->nr; i++)
			busy |= g->v[i].in_guest;
		if (busy)
			pthread_cond_wait(&g->cond, &g->lock);
	} while (busy);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

void minivm_vcpus_resume(struct minivm_vcpus *g)
{
	pthread_mutex_lock(&g->lock);
	if (g->paused > 0)
		g->paused--;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}
