/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/controller.h - the API a VMM calls to use vmm-swap.
 *
 * The picture: the VMM maps guest RAM (memfd, MAP_SHARED) and, before it forks any
 * helper, calls vms_controller_launch(). That creates the VMM's own userfaultfd and
 * forks the monitor process, which owns every uffd, the page handler, the staging
 * memory and the swap file (an O_TMPFILE in the swap directory, gone with the
 * monitor). Every process forked later that maps guest memory (a "device process")
 * calls vms_controller_device_forked() first thing after fork. The VMM then drives
 * enable / trim / swap-out / disable / status and finally vms_controller_exit().
 *
 * Replies: unlike crosvm every command gets a reply saying accepted, ignored in the
 * current state (naming the state) or failed (with an errno).
 *
 * Return values: every command function returns 0 when the monitor handled the
 * command and replied (then look at *reply: it may still say IGNORED or FAILED), or a
 * negative errno when it did not: -EPIPE / -ECONNRESET the monitor is gone, -ETIMEDOUT
 * no reply within the reply timeout, -EBUSY / -ETIMEDOUT / -ESRCH the freeze before
 * enable failed (command not sent), -EINVAL bad argument. In those cases *reply (if
 * given) is filled with result VMS_REPLY_FAILED and the same errno, so a caller may
 * look at either. reply may be NULL everywhere.
 *
 * Threads: the command functions may be called from any thread of the VMM process.
 * Enable, trim, swap-out, disable and exit are serialised against each other by a
 * mutex; status never takes it and is answered by the monitor in every state, also
 * while an enable, trim, swap-out or swap-in is running. Every call has its own
 * reply channel, so a hung call never makes another one read a wrong reply.
 *
 * Signals and children: the monitor is a child of the VMM. The VMM must not reap it
 * (exclude vms_controller_monitor_pid() from any waitpid(-1) loop) and should ignore
 * CLD_STOPPED / CLD_CONTINUED of its children, which the freezer causes.
 *
 * Lifecycle: the monitor exits when the VMM process dies (PR_SET_PDEATHSIG checked
 * against a pidfd of the VMM, so the death of the launching thread alone does not
 * count). If the monitor dies, every call fails within the reply timeout at the
 * latest (normally at once, with -EPIPE/-ECONNRESET).
 *
 * The whole behaviour, command by command and state by state: ref/CONTRACT.md.
 */
#ifndef VMMSWAP_CONTROLLER_H
#define VMMSWAP_CONTROLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <vmmswap/status.h>
#include <vmmswap/types.h>

struct vms_controller_opts {
	const struct vms_region *regions;
	size_t nregions;	   /* 1 .. VMS_CTL_MAX_REGIONS */
	const char *swap_dir;	   /* directory for the O_TMPFILE swap file; must support it */
	unsigned int move_threads; /* threads copying to staging on enable; 0: default */
	int reply_timeout_ms;	   /* max wait for any reply; 0: VMS_CTL_DEFAULT_TIMEOUT_MS */
	unsigned int flags;	   /* VMS_CTL_* */
	/*
	 * The page handler's adaptive fault-around limit in pages (see
	 * vms_ph_set_fault_around()): 0 or 1 off, at most VMS_PH_MAX_FAULT_AROUND_PAGES.
	 */
	unsigned int fault_around_pages;
	/*
	 * slow_file_cleanup pacing: shrink the swap file by cleanup_step_bytes every
	 * cleanup_interval_ms. 0: crosvm's 64 MiB every 5000 ms. Tests shorten them.
	 */
	unsigned int cleanup_interval_ms;
	uint64_t cleanup_step_bytes;
	/*
	 * With VMS_CTL_FAULT_CPU: the CPU the VMM's only vCPU thread is pinned to. The
	 * monitor then runs its fault-serving thread on that CPU too, so a fault wakes
	 * the server on the CPU the vCPU just left idle (no cross-CPU wake-up), and the
	 * vCPU resumes there. With several vCPUs sharing one uffd it does not help
	 * (the server would preempt the vCPUs of its CPU). Background jobs keep the
	 * monitor's original affinity. A CPU the monitor may not use is logged and
	 * ignored.
	 */
	int fault_cpu;
};

#define VMS_CTL_DEFAULT_TIMEOUT_MS 60000
/* How long vms_controller_device_forked() waits by default for the registration. */
#define VMS_CTL_DEVICE_TIMEOUT_MS 60000

struct vms_controller;

/*
 * Create the VMM's uffd, open the swap directory, fork the monitor and wait (bounded)
 * until it reports Ready. Call it after guest memory is mapped and before forking
 * any device process, from a thread that lives as long as the VMM (normally the main
 * thread). The regions are copied; the memfds are dup'ed into the monitor.
 * -ENOSYS / -EPERM / -EACCES: userfaultfd is not available to this process.
 */
int vms_controller_launch(const struct vms_controller_opts *opts, struct vms_controller **out);

/*
 * Enable: freeze the processes chosen by vms_controller_set_freeze() (default: every
 * descendant of the VMM except the monitor, every thread stopped), let the monitor
 * move every resident guest page to staging, resume the frozen processes, and return
 * once the move is done. The VMM must pause its own vCPUs (and any thread that writes
 * guest memory) around this call. Accepted: new_state Pending. Failed: new_state
 * Failed (guest contents intact; a later enable or disable recovers).
 */
int vms_controller_enable(struct vms_controller *ctl, struct vms_reply *reply);

/* Start dropping zero and unchanged staged pages (Pending only; runs in background). */
int vms_controller_trim(struct vms_controller *ctl, struct vms_reply *reply);

/* Start writing staged pages to the swap file (Pending only; background). */
int vms_controller_swap_out(struct vms_controller *ctl, struct vms_reply *reply);

/*
 * Start bringing everything back in (background swap-in, then Ready).
 * The swap file's space: without slow_file_cleanup it is released as soon as the
 * swap-in completes. With it (crosvm's option; latest wins while the swap-in runs)
 * the file is kept and shrunk in the background by cleanup_step_bytes every
 * cleanup_interval_ms until empty (file_truncator.h). While that runs (state Ready):
 * a Disable without slow_file_cleanup releases the rest at once and is ACCEPTED
 * (a Disable with it is IGNORED, as in Ready otherwise); an Enable stops it and
 * releases the rest before it creates the new swap file; Exit releases it.
 */
int vms_controller_disable(struct vms_controller *ctl, bool slow_file_cleanup,
			   struct vms_reply *reply);

/* A consistent snapshot of the state, metrics and transition record. */
int vms_controller_status(struct vms_controller *ctl, struct vms_swap_status *st);

int vms_controller_info(struct vms_controller *ctl, struct vms_monitor_info *info);

/*
 * Stop the monitor and free ctl (always, whatever the result). If swap is enabled the
 * monitor first brings every page back in, so the VMM keeps all guest contents; then
 * it exits and is reaped here (bounded wait; after the reply timeout it is killed and
 * -ETIMEDOUT returned). Call it before unmapping guest memory.
 */
int vms_controller_exit(struct vms_controller *ctl);

/*
 * Device process, first thing after fork(), before touching guest memory: create a
 * uffd in this process, send it to the monitor (SOCK_SEQPACKET, SCM_RIGHTS) and
 * block until the monitor has registered the guest regions on it (or taken note of
 * it while swap is disabled), at most timeout_ms (0: VMS_CTL_DEVICE_TIMEOUT_MS).
 * Uses no lock and no allocation, so it is safe after fork() of a threaded VMM.
 * On failure (-ETIMEDOUT, -EPIPE, the monitor's error, uffd creation errors) the
 * process must not touch guest memory: guest contents could be lost.
 * A device process may call only this and vms_controller_forget() on its copy.
 */
int vms_controller_device_forked(struct vms_controller *ctl, int timeout_ms);

/*
 * Freeze set for enable:
 *  - VMS_FREEZE_DESCENDANTS (default): every descendant process of the VMM (children,
 *    their children, ...) except the monitor; pids/npids ignored.
 *  - VMS_FREEZE_PIDS: exactly the npids processes in pids (copied) and nothing else.
 *  - VMS_FREEZE_NONE: nothing (the VMM quiesces its devices itself).
 */
enum vms_freeze_mode {
	VMS_FREEZE_DESCENDANTS = 0,
	VMS_FREEZE_PIDS = 1,
	VMS_FREEZE_NONE = 2,
};
int vms_controller_set_freeze(struct vms_controller *ctl, enum vms_freeze_mode mode,
			      const pid_t *pids, size_t npids);

/* The monitor's pid (for excluding it from waitpid(-1) loops and for tests). */
pid_t vms_controller_monitor_pid(const struct vms_controller *ctl);

/*
 * In a forked child (device process) or any process that must drop its copy: close
 * this process's fds of ctl and free it, without talking to the monitor.
 */
void vms_controller_forget(struct vms_controller *ctl);

/* "accepted", "ignored in state TrimInProgress", "failed: No space left on device". */
int vms_reply_describe(const struct vms_reply *reply, char *buf, size_t len);

#endif /* VMMSWAP_CONTROLLER_H */
