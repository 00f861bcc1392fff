// SPDX-License-Identifier: MIT
/*
 * monitor_sandbox.c - the monitor's seccomp allowlist (as crosvm runs its monitor
 * in a jail with a policy). Installed at the end of setup, after the capabilities
 * are dropped and no_new_privs is set, on the loop thread before any other thread
 * exists, so every later thread (jobs, move workers, the truncator) inherits it.
 * A syscall outside the list kills the whole monitor with SIGSYS; the VMM then sees
 * a dead monitor (every call fails fast, guest memory stays as it is).
 *
 * The list is what the monitor does after setup and nothing else:
 *  - the event loop: epoll_wait/epoll_pwait, epoll_ctl (uffds and pidfds of device
 *    processes come and go), read (eventfds, signalfd, uffd events), recvmsg with
 *    SCM_RIGHTS (commands), sendmsg (replies), poll/ppoll (pidfd checks), close;
 *  - userfaultfd: ioctl, limited to the UFFDIO_* requests the page handler and the
 *    registration use;
 *  - the page handler: memfd_create (staging), openat (the O_TMPFILE swap file),
 *    fallocate (punching guest memory and staging), copy_file_range (move),
 *    sendfile and lseek (swap-out), pread64/pwrite64, ftruncate (file shrink),
 *    fadvise64 (readahead), fstat/newfstatat/statx, fcntl (F_DUPFD_CLOEXEC), mmap/
 *    munmap/madvise/mprotect/mremap/brk (mappings of memfds and the swap file,
 *    malloc), readlinkat (what kind of fd a message carried: /proc/self/fd);
 *  - threads: clone/clone3, set_robust_list, rseq, futex, exit, madvise of a dead
 *    thread's stack, sched_getaffinity/sched_setaffinity (the fault_cpu pin),
 *    sched_yield, rt_sigprocmask, rt_sigaction, prctl (thread names),
 *    gettid/getpid/getppid, getrandom, tgkill (abort());
 *  - the slow file cleanup's truncator: timerfd_create/settime/gettime, eventfd2;
 *  - time: clock_gettime, clock_nanosleep/nanosleep (the swap-in retry pause and
 *    the truncator's pacing);
 *  - leaving: exit_group, rt_sigreturn, restart_syscall; write (logs on stderr).
 * Sanitizer builds add what their runtimes call (sigaltstack, getrlimit, ...).
 */
#include <errno.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <linux/userfaultfd.h>

#include <vmmswap/log.h>

#include "monitor_internal.h"

/* Grouped by purpose, several to a line. */
/* clang-format off */
static const int allowed[] = {
	/* event loop and messages */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(read),
	SCMP_SYS(write), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(close),
	/* page handler: staging, swap file, guest memfds */
	SCMP_SYS(memfd_create), SCMP_SYS(openat), SCMP_SYS(fallocate),
	SCMP_SYS(copy_file_range), SCMP_SYS(sendfile), SCMP_SYS(lseek), SCMP_SYS(pread64),
	SCMP_SYS(pwrite64), SCMP_SYS(ftruncate), SCMP_SYS(fadvise64), SCMP_SYS(fstat),
	SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(fcntl), SCMP_SYS(readlinkat),
	SCMP_SYS(readlink),
	/* memory */
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(madvise), SCMP_SYS(mprotect),
	SCMP_SYS(mremap), SCMP_SYS(brk),
	/* threads */
	SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
	SCMP_SYS(futex), SCMP_SYS(exit), SCMP_SYS(sched_getaffinity),
	SCMP_SYS(sched_setaffinity), SCMP_SYS(sched_yield), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(prctl), SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(getppid),
	SCMP_SYS(rt_sigaction), SCMP_SYS(tgkill), SCMP_SYS(getrandom),
	/* the file truncator's pacing timer and tick eventfd */
	SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime),
	SCMP_SYS(eventfd2),
	/* time */
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
	SCMP_SYS(gettimeofday),
	/* leaving */
	SCMP_SYS(exit_group), SCMP_SYS(rt_sigreturn), SCMP_SYS(restart_syscall),
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/* the sanitizer runtimes (thread setup, reports) */
	SCMP_SYS(sigaltstack), SCMP_SYS(getrlimit), SCMP_SYS(prlimit64), SCMP_SYS(open),
	SCMP_SYS(rt_sigaction), SCMP_SYS(sched_getparam), SCMP_SYS(getrusage),
	SCMP_SYS(uname), SCMP_SYS(pipe2), SCMP_SYS(wait4), SCMP_SYS(kill), SCMP_SYS(tgkill),
	SCMP_SYS(getdents64), SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3),
	SCMP_SYS(mincore), SCMP_SYS(munlock), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(personality), SCMP_SYS(arch_prctl),
#endif
};
/* clang-format on */

/* The ioctls of a uffd the monitor makes (never UFFDIO_API: uffds come made). */
static const unsigned long uffd_ioctls[] = {
	UFFDIO_REGISTER, UFFDIO_UNREGISTER, UFFDIO_COPY, UFFDIO_ZEROPAGE, UFFDIO_WAKE,
	UFFDIO_WRITEPROTECT, UFFDIO_CONTINUE,
};

static int add_rules(scmp_filter_ctx ctx)
{
	size_t i;
	int ret;

	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
		if (ret && ret != -EEXIST)
			return ret;
	}
	for (i = 0; i < sizeof(uffd_ioctls) / sizeof(uffd_ioctls[0]); i++) {
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				       SCMP_A1_64(SCMP_CMP_EQ, uffd_ioctls[i]));
		if (ret)
			return ret;
	}
	return 0;
}

int vms_mon_sandbox(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int ret;

	if (!ctx)
		return -ENOMEM;
	ret = add_rules(ctx);
	if (!ret)
		ret = seccomp_load(ctx);
	seccomp_release(ctx);
	if (ret)
		vms_log(VMS_LOG_ERROR, "monitor: installing the seccomp allowlist: %d", ret);
	return ret;
}
