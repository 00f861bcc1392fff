/* SPDX-License-Identifier: MIT */
/*
 * vmm/vcpus.h - minivmm's vCPU threads and the guest command channel.
 *
 * Contract:
 *  - minivm_vcpus_start() creates N vCPUs, enters each in ring 3 at the guest
 *    program's entry and runs each on its own thread. The guest's command loop then
 *    waits in an MMIO read (MVM_DB_WAIT) that this module blocks until a command is
 *    queued for that vCPU (guest_abi.h).
 *  - minivm_vcpus_command() runs one guest command on one vCPU and waits for its
 *    result; a vCPU runs one command at a time (-EBUSY otherwise). MVM_GCMD_WRITER
 *    returns once the writer runs; minivm_vcpus_writer_stop() ends it.
 *  - minivm_vcpus_pause() returns when no vCPU is inside KVM_RUN and none will enter
 *    it until minivm_vcpus_resume(): what the VMM needs around a swap enable. Pauses
 *    nest (a counter).
 *  - Balloon doorbells call hooks->balloon on the vCPU thread, which must hand the
 *    work to another thread; halts and guest crashes are reported through hooks.
 *  - Any thread may call these functions; one mutex guards all vCPU state.
 */
#ifndef MINIVM_VCPUS_H
#define MINIVM_VCPUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/guest_abi.h"
#include "vm/kvm_vm.h"

struct minivm_vcpus_hooks {
	/* A balloon run from the guest: 0 or a negative errno (goes to bl_status). */
	int (*balloon)(void *arg, uint32_t op, uint64_t gpa, uint64_t len);
	/* The guest halted with a status (MVM_GCMD_HALT). */
	void (*halted)(void *arg, int vcpu, uint64_t status);
	/* A vCPU died: a guest exception or an exit the VMM cannot handle. */
	void (*crashed)(void *arg, int vcpu, const char *why);
	void *arg;
};

/* Result of one guest command: the mailbox result fields and the guest's status. */
struct minivm_gresult {
	int status; /* enum mvm_guest_err */
	uint64_t pages_done;
	uint64_t mismatched_pages;
	uint64_t bad_page, bad_word, expected, actual;
	uint64_t checksum;
	uint64_t passes, last_seed;
	uint64_t elapsed_us; /* from queueing to completion */
};

enum minivm_vcpu_state {
	MINIVM_VCPU_IDLE,	/* waiting for a command */
	MINIVM_VCPU_QUEUED,	/* a command waits for the guest to pick it up */
	MINIVM_VCPU_RUNNING,	/* the guest runs it */
	MINIVM_VCPU_BACKGROUND, /* the writer runs; no requester waits */
	MINIVM_VCPU_STOPPING,	/* the writer was asked to stop */
	MINIVM_VCPU_DEAD,	/* halted or crashed */
};

struct minivm_vcpu_thread {
	struct minivm_vcpu vcpu;
	struct mvm_mailbox *mb; /* host view of this vCPU's mailbox */
	pthread_t thread;
	bool started;
	bool in_guest; /* inside KVM_RUN */
	enum minivm_vcpu_state state;
	uint64_t seq;
	uint32_t cmd;
	uint64_t start, count, seed;
	uint64_t queued_ns;
	struct minivm_gresult res;
	struct minivm_vcpus *g;
};

struct minivm_vcpus {
	struct minivm *vm;
	int nr;
	struct minivm_vcpus_hooks hooks;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int paused; /* pause depth */
	bool quit;
	struct minivm_vcpu_thread v[MVM_GUEST_MAX_VCPUS];
};

/*
 * Create nr vCPUs in vm (long mode set up, guest loaded) and start their threads.
 * SIGUSR1 is used to kick vCPU threads out of KVM_RUN; a no-op handler is installed.
 */
int minivm_vcpus_start(struct minivm_vcpus *g, struct minivm *vm, int nr,
		       const struct minivm_vcpus_hooks *hooks);

/* Stop every vCPU thread (from any thread but a vCPU's), join them, destroy the vCPUs. */
void minivm_vcpus_stop(struct minivm_vcpus *g);

/*
 * Run a guest command on vCPU id and wait for it. -EINVAL bad id, -EBUSY the vCPU
 * is busy, -ESRCH the vCPU is dead, -ESHUTDOWN the VMM is stopping.
 */
int minivm_vcpus_command(struct minivm_vcpus *g, int id, uint32_t cmd, uint64_t start,
			 uint64_t count, uint64_t seed, struct minivm_gresult *res);

/* Stop the writer on vCPU id and wait for its result; -ENOENT if none runs. */
int minivm_vcpus_writer_stop(struct minivm_vcpus *g, int id, struct minivm_gresult *res);

/* Writer progress (completed passes) without stopping it; -ENOENT if none runs. */
int minivm_vcpus_writer_passes(struct minivm_vcpus *g, int id, uint64_t *passes);

int minivm_vcpus_pause(struct minivm_vcpus *g);
void minivm_vcpus_resume(struct minivm_vcpus *g);

/* "idle", "running", ... for reports. */
const char *minivm_vcpu_state_name(enum minivm_vcpu_state s);

#endif /* MINIVM_VCPUS_H */
