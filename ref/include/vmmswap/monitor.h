/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/monitor.h - the monitor process: one event loop over the command socket,
 * every uffd (and the pidfd of every device process), the background-job eventfd,
 * a pidfd of the VMM and a signalfd; plus one background thread at a time running
 * the move to staging, trim, swap-out or swap-in.
 *
 * Who owns what:
 *  - The loop thread owns everything in struct vms_monitor: the state, the uffd list,
 *    the command queue, the page handler pointer (creating and destroying it), and all
 *    fds. It serves page faults and removes, answers Status at once in every state,
 *    and runs the state table (state_machine.h) for the other commands.
 *  - The job thread gets the page handler (thread-safe, see page_handler.h), a dup of
 *    one uffd (swap-in) and two atomics (abort flag, progress). It never touches the
 *    state; it signals the eventfd when its body returns, and the loop joins it.
 *  - Page faults therefore do not wait behind the disk I/O of trim or swap-out. One
 *    exception: while a swap-in runs, reading uffd events waits for the current
 *    swap-in chunk (<= 2 MiB), because a REMOVE must be applied before any copy can
 *    run after the remover resumed (see vms_mon_handle_uffd() in monitor_uffd_list.c).
 *  - Within one uffd, every pending event is read and every REMOVE applied before
 *    any fault is served (the kernel hands out faults ahead of older REMOVEs). A
 *    read() that returns fewer events than the buffer holds already emptied the
 *    queue, so the loop goes back to epoll instead of reading again.
 *  - Slow file cleanup (Ready only): a file truncator (file_truncator.h) with its own
 *    thread owns a dup of the last swap file and shrinks it; the loop thread starts
 *    it when a swap-in with slow_file_cleanup completes, and stops it (releasing
 *    the rest at once) on Enable, on a Disable without the option, and on exit.
 *  - Info (VMS_CMD_INFO) is answered at once like Status.
 *  - With a fault_cpu hint the loop thread (which serves the faults) is pinned to
 *    that CPU; job threads are created with the monitor's original affinity. The
 *    truncator thread inherits the pin (it wakes once per interval, while Ready).
 *
 * Commands that need the loop to wait (the enable move, an abort) park the command
 * queue: later commands wait their turn in arrival order; Status and ProcessForked
 * never wait. A command arriving while 32 are queued is answered -EBUSY.
 *
 * Exit paths: Exit (after swapping everything in when enabled); EOF on the command
 * socket (every sender gone: the same as Exit); the VMM's death (pidfd readable, or
 * the PR_SET_PDEATHSIG signal with the VMM really gone): at once.
 */
#ifndef VMMSWAP_MONITOR_H
#define VMMSWAP_MONITOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <vmmswap/types.h>

struct vms_monitor_config {
	const struct vms_region *regions;
	size_t nregions;
	int cmd_fd;	      /* the monitor's end of the command socket */
	int main_uffd;	      /* the VMM's uffd (created in the VMM before the fork) */
	pid_t vmm_pid;	      /* the parent; the monitor exits when it dies */
	const char *swap_dir; /* passed to the page handler (O_TMPFILE) */
	unsigned int move_threads;
	unsigned int fault_around_pages;  /* vms_ph_config.fault_around of every enable */
	unsigned int cleanup_interval_ms; /* slow file cleanup pacing; 0: default */
	uint64_t cleanup_step_bytes;	  /* likewise */
	int fault_cpu;			  /* pin the fault-serving (loop) thread there; -1: no */
	unsigned int flags;		  /* VMS_CTL_* */
	int test_gate_fd; /* VMS_CTL_TEST_HOLD_JOBS: read end of the release pipe, or -1 */
};

/*
 * Run in the freshly forked monitor process: sets up the process (name, death
 * signal, no_new_privs, capabilities, closes every fd it does not need), then loops
 * until it must exit. Returns 0 on an orderly exit or a negative errno; the caller
 * then _exit()s.
 */
int vms_monitor_run(const struct vms_monitor_config *cfg);

#endif /* VMMSWAP_MONITOR_H */
