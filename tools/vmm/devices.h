/* SPDX-License-Identifier: MIT */
/*
 * vmm/devices.h - minivmm's device processes: children forked after guest RAM is
 * mapped that share it (MAP_SHARED, same addresses) and do "DMA" into it.
 *
 * Contract:
 *  - minivm_devices_spawn() forks n children. Each one first registers its own
 *    userfaultfd with the swap monitor (vms_controller_device_forked(), when a
 *    controller is given) and touches guest RAM only if that succeeded; it dies with
 *    the VMM (PR_SET_PDEATHSIG) and exits when its socket to the VMM closes.
 *  - Each child has a worker thread that runs one DMA command at a time (fill, copy,
 *    verify a range of RAM page indexes); the child's main thread keeps reading the
 *    socket, so 'exit' and 'crash' act at once even while a DMA runs.
 *  - minivm_device_request() is serialised per device; minivm_devices_reap() is called
 *    by the VMM's main loop on SIGCHLD and is the only place that reaps them.
 */
#ifndef MINIVM_DEVICES_H
#define MINIVM_DEVICES_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmm/ram.h"

#define MINIVM_MAX_DEVICES 8

struct vms_controller;

enum minivm_dev_op {
	MINIVM_DEV_PING = 1,
	MINIVM_DEV_FILL = 2,   /* a = start, b = count, c = seed */
	MINIVM_DEV_COPY = 3,   /* a = src, b = dst, c = count (ranges must not overlap) */
	MINIVM_DEV_VERIFY = 4, /* a = start, b = count, c = seed */
	MINIVM_DEV_EXIT = 5,   /* a = exit status; no reply */
	MINIVM_DEV_CRASH = 6,  /* die by SIGABRT; no reply */
};

struct minivm_dev_msg {
	uint32_t op;
	uint32_t pad;
	uint64_t a, b, c;
};

struct minivm_dev_reply {
	int32_t err; /* 0 or a negative errno */
	uint32_t pad;
	uint64_t pages;
	uint64_t mismatched_pages;
	uint64_t bad_page;
	uint64_t elapsed_us;
};

struct minivm_device {
	int id;
	pid_t pid;
	int sock; /* VMM's end */
	pthread_mutex_t lock;
	bool alive;  /* cleared by minivm_devices_reap() (atomic access) */
	int wstatus; /* valid once !alive */
};

/* Fork n device processes (after guest RAM is mapped, before vCPU threads exist). */
int minivm_devices_spawn(struct minivm_device *devs, int n, const struct minivm_ram *ram,
			 struct vms_controller *ctl);

/* Send a DMA/ping command and wait (bounded) for the reply. -ESRCH if it is dead. */
int minivm_device_request(struct minivm_device *d, const struct minivm_dev_msg *m,
			  struct minivm_dev_reply *r, int timeout_ms);

/* Tell the device to exit (status) or crash, then wait up to timeout_ms for its death. */
int minivm_device_kill(struct minivm_device *d, bool crash, int status, int timeout_ms);

bool minivm_device_alive(struct minivm_device *d);

/* Reap the devices that died (non-blocking). Returns how many were reaped. */
int minivm_devices_reap(struct minivm_device *devs, int n);

/* Close the sockets (devices exit), wait up to timeout_ms, then SIGKILL and reap. */
void minivm_devices_stop(struct minivm_device *devs, int n, int timeout_ms);

#endif /* MINIVM_DEVICES_H */
