/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/test_hooks.h - every test-only seam of the library, in one place, so
 * that production code that includes it stands out. None of these changes what a
 * VMM gets by default; each exists so that a test can force an outcome (a failing
 * write, a job held in its "in progress" state, a fault or a REMOVE at the exact
 * point where a job works without the state lock) deterministically.
 */
#ifndef VMMSWAP_TEST_HOOKS_H
#define VMMSWAP_TEST_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include <vmmswap/types.h>

struct vms_controller;
struct vms_page_handler;
struct vms_swap_file;
struct uffdio_api;
struct uffdio_register;

/* ---- controller (vms_controller_opts.flags) ---- */

/*
 * Test hooks (selftests only): HOLD_JOBS makes every trim / swap-out / swap-in wait
 * before its first chunk until vms_controller_test_release_job() or an
 * abort, so the "in progress" states can be observed; FAIL_SWAP_OUT makes the first
 * swap-file write of every swap-out fail with -ENOSPC. SANDBOX_PROBE makes the
 * monitor attempt a syscall outside its seccomp allowlist (socket()) when it
 * answers Info, so a test can see the sandbox kill it.
 */
#define VMS_CTL_TEST_HOLD_JOBS	   0x100u
#define VMS_CTL_TEST_FAIL_SWAP_OUT 0x200u
#define VMS_CTL_TEST_SANDBOX_PROBE 0x400u

/* The controller's end of the command socket (to send raw messages). */
int vms_controller_command_fd(const struct vms_controller *ctl);
/* With VMS_CTL_TEST_HOLD_JOBS: let the held (or the next) job run. */
int vms_controller_test_release_job(struct vms_controller *ctl);

/* ---- page handler ---- */

/*
 * Race points: where a job or a fault has read or copied without the
 * state lock and is about to commit what it saw (or, for MOVE_COMMIT, is in the
 * middle of committing). A hook set with vms_ph_set_race_hook() runs there, on
 * the thread doing the work, with [pgoff, pgoff + npages) the pages concerned
 * (pgoffs: page indices over the regions concatenated in creation order). A test
 * uses it to make another thread fault or remove exactly then. Locks held when
 * the hook runs: the job lock at every point but FAULT_READ; the state lock at
 * MOVE_COMMIT only, so a hook must not call into ph itself there (it may start
 * another thread that does, and wait with vms_ph_lock_waiters()).
 */
enum vms_ph_race_point {
	VMS_PH_AT_MOVE_COPIED,	    /* a move window is in staging, not marked yet */
	VMS_PH_AT_MOVE_COMMIT,	    /* marked staged, guest pages not punched yet */
	VMS_PH_AT_TRIM_READ,	    /* CLEARED slots read, not compared or committed */
	VMS_PH_AT_SWAP_OUT_WRITTEN, /* a run is in the file, not committed */
	VMS_PH_AT_SWAP_IN_READ,	    /* a run's slots are read, not copied */
	VMS_PH_AT_FAULT_READ,	    /* a fault chose a slot, before reading it */
	VMS_PH_AT_FAULT_READ_DONE,  /* it read the slot, before looking again */
	VMS_PH_RACE_POINTS
};

typedef void (*vms_ph_race_hook)(void *arg, enum vms_ph_race_point at, uint64_t pgoff,
				 uint64_t npages);

/* Test-only: set (or with NULL clear) the race hook; safe while ph is in use. */
void vms_ph_set_race_hook(struct vms_page_handler *ph, vms_ph_race_hook hook, void *arg);

/*
 * Test-only: threads that found the state lock taken and are waiting for it (or
 * about to), right now. Lets a test tell "blocked behind the lock" from "running".
 */
unsigned int vms_ph_lock_waiters(struct vms_page_handler *ph);

/* Test-only: the next swap-file write fails with -err (see swap_file.h). */
void vms_ph_inject_write_error(struct vms_page_handler *ph, int err);

/*
 * Test-only: verify the page handler's invariants (the list is at the top of
 * ref/page_handler_check.c): the page-state bitmaps and the per-page slot words
 * agree, every slot a page holds is in use and owned by that page only, every
 * slot in use is owned, the swap file's high-water mark and size cover them, a
 * staged or swapped page is not resident in guest memory, a staged page's bytes
 * are in staging, and the metrics snapshot agrees with all of it. Takes the job
 * lock, then the state lock, so it sees the handler between two jobs: never call
 * it with the job lock held (from a race hook at any point but FAULT_READ and
 * FAULT_READ_DONE). Returns 0; -EPROTO with the first violation described in why
 * (NUL-terminated, truncated to len; why may be NULL if len is 0); or another
 * negative errno (also described) if it could not look.
 */
int vms_ph_check(struct vms_page_handler *ph, char *why, size_t len);

/* ---- swap file ---- */

/* Test-only: the next write fails with -err after a partial write (0: off). */
void vms_swap_file_inject_write_error(struct vms_swap_file *sf, int err);

/* ---- userfaultfd layer ---- */

/*
 * Test-only: stand in for the kernel's answer to the handshake and to a
 * registration. Once UFFDIO_API (UFFDIO_REGISTER) succeeded, api (reg), if set,
 * runs on the struct the kernel filled in, before vms_uffd_api()
 * (vms_uffd_register()) reads it, and may change what the kernel offered: its
 * features and ioctls (the range's ioctls). So a test can play a newer kernel
 * that offers bits this build does not know (crosvm b/315578762: a kernel that
 * added one broke every swap enable) or one that withholds a bit the library
 * needs, which no real kernel lets it do. Process-wide, because the uffd layer
 * keeps no context to hang it on; NULL clears it. h must stay valid while it is
 * set; set it while no other thread is inside the uffd layer. Unset, it costs a
 * load and a not-taken branch per handshake or registration.
 */
struct vms_uffd_answer_hooks {
	void (*api)(void *arg, struct uffdio_api *answer);
	void (*reg)(void *arg, struct uffdio_register *answer);
	void *arg;
};

void vms_uffd_set_answer_hooks(const struct vms_uffd_answer_hooks *h);

#endif /* VMMSWAP_TEST_HOOKS_H */
