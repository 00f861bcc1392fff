// SPDX-License-Identifier: GPL-2.0-only
/*
 * controller_lifecycle_test.c - the monitor's life and death: the monitor killed
 * (every call fails fast), the VMM killed (the monitor exits, no orphan), exit while
 * Active (the VMM keeps every page), device processes registering while enabled and
 * dying during swap-in, malformed messages (error reply, nothing changes), the swap
 * file (unnamed, gone with the monitor), the monitor's privileges, Failed with
 * its recovery after a real ENOSPC (a full small tmpfs; needs CAP_SYS_ADMIN), and
 * an Enable that cannot create the swap file (answered, recoverable).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include <vmmswap/controller.h>
#include <vmmswap/protocol.h>
#include <vmmswap/status.h>
#include <vmmswap/test_hooks.h>

#include "lib/ctl_util.h"

FIXTURE(life)
{
	struct cu_guest g;
	struct cu_expect e;
	struct vms_controller *ctl;
	char dir[64];
};

FIXTURE_SETUP(life)
{
	strcpy(self->dir, "/tmp/vms_life_XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	CU_SETUP(&self->g, self->dir, VMS_CTL_TEST_HOLD_JOBS, NULL, &self->ctl);
	cu_write_crosvm_data(&self->g, &self->e);
}

FIXTURE_TEARDOWN(life)
{
	cu_teardown(&self->g, &self->ctl);
	rmdir(self->dir);
}

TEST_F(life, monitor_killed_calls_fail_fast)
{
	struct vms_swap_status st;
	struct vms_reply r;
	pid_t mon = vms_controller_monitor_pid(self->ctl);
	uint64_t t0;

	ASSERT_EQ(0, kill(mon, SIGKILL));
	ASSERT_EQ(0, cu_wait_pid_exit(mon, CU_DEADLINE_MS));
	t0 = cu_now_ms();
	ASSERT_EQ(-EPIPE, vms_controller_status(self->ctl, &st));
	ASSERT_EQ(-EPIPE, vms_controller_trim(self->ctl, &r));
	ASSERT_EQ(VMS_REPLY_FAILED, r.result);
	ASSERT_EQ(-EPIPE, r.err);
	ASSERT_EQ(-EPIPE, vms_controller_swap_out(self->ctl, &r));
	ASSERT_EQ(-EPIPE, vms_controller_disable(self->ctl, true, &r));
	ASSERT_EQ(-EPIPE, vms_controller_enable(self->ctl, &r));
	ASSERT_NE(0, vms_controller_exit(self->ctl));
	self->ctl = NULL;
	ASSERT_LT(cu_now_ms() - t0, 2000);
}

TEST_F(life, monitor_killed_while_enabled_fails_fast)
{
	struct vms_swap_status st;
	pid_t mon = vms_controller_monitor_pid(self->ctl);
	uint64_t t0;

	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, true));
	ASSERT_EQ(0, kill(mon, SIGKILL));
	t0 = cu_now_ms();
	ASSERT_EQ(-EPIPE, vms_controller_status(self->ctl, &st));
	ASSERT_NE(0, vms_controller_exit(self->ctl));
	self->ctl = NULL;
	ASSERT_LT(cu_now_ms() - t0, 2000);
}

/* The VMM dies without Exit: its monitor must not outlive it. */
TEST(vmm_killed_monitor_exits)
{
	struct cu_guest g;
	int p[2], st;
	pid_t vmm, mon;

	ASSERT_EQ(0, prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)); /* adopt the monitor */
	ASSERT_EQ(0, pipe(p));
	vmm = fork();
	if (vmm == 0) {
		struct vms_controller *ctl;
		struct vms_reply r;
		pid_t m = -1;
		int ret;

		close(p[0]);
		if (cu_guest_create(&g))
			_exit(2);
		memset(cu_page(&g, 0, 0), 1, 4096);
		ret = cu_launch(&g, NULL, 0, &ctl);
		if (!ret && vms_controller_enable(ctl, &r) == 0)
			m = vms_controller_monitor_pid(ctl);
		if (ret)
			m = ret; /* <= 0: an error to report */
		if (write(p[1], &m, sizeof(m)) != sizeof(m))
			_exit(3);
		for (;;)
			pause();
	}
	ASSERT_GT(vmm, 0);
	close(p[1]);
	ASSERT_EQ(sizeof(mon), read(p[0], &mon, sizeof(mon)));
	if (cu_uffd_unavailable(mon)) {
		kill(vmm, SIGKILL);
		waitpid(vmm, &st, 0);
		SKIP(return, "userfaultfd unavailable");
	}
	ASSERT_GT(mon, 0);
	ASSERT_EQ(0, kill(vmm, SIGKILL));
	ASSERT_EQ(vmm, waitpid(vmm, &st, 0));
	ASSERT_EQ(0, cu_wait_pid_exit(mon, 5000));
	ASSERT_EQ(mon, waitpid(mon, &st, 0));
}

/*
 * crosvm spec 9.1: when the monitor cannot create the page handler (here: the swap
 * directory is gone), Enable still gets an answer, FAILED with the reason, at
 * once; nothing changed (Ready, every page resident); and the next Enable works
 * once the directory is back.
 */
TEST_F(life, enable_without_swap_dir_fails_and_the_next_one_works)
{
	struct vms_swap_status st;
	struct vms_reply r;
	uint64_t t0;

	cu_quiet_log();
	ASSERT_EQ(0, rmdir(self->dir));
	t0 = cu_now_ms();
	ASSERT_EQ(0, vms_controller_enable(self->ctl, &r));
	ASSERT_LT(cu_now_ms() - t0, 5000);
	ASSERT_EQ(VMS_REPLY_FAILED, r.result);
	ASSERT_EQ(-ENOENT, r.err);
	ASSERT_EQ(VMS_SWAP_READY, r.new_state);
	ASSERT_EQ(0, vms_controller_status(self->ctl, &st));
	ASSERT_EQ(VMS_SWAP_READY, st.state);
	ASSERT_EQ(2 * CU_DATA_PAGES_PER_REGION, st.metrics.resident_pages);
	ASSERT_EQ(-1, cu_check_memfd(&self->g, &self->e));
	ASSERT_EQ(0, mkdir(self->dir, 0700));
	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, true));
	ASSERT_EQ(0, vms_controller_exit(self->ctl));
	self->ctl = NULL;
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
}

TEST_F(life, exit_while_active_keeps_contents)
{
	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, true));
	ASSERT_EQ(0, vms_controller_exit(self->ctl));
	self->ctl = NULL;
	ASSERT_EQ(-1, cu_check_memfd(&self->g, &self->e));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
}

/* A device forked while swap is enabled registers and reads everything right. */
static pid_t fork_reader(struct vms_controller *ctl, const struct cu_guest *g,
			 const struct cu_expect *e, int *go_wr)
{
	int go[2];
	pid_t pid;

	if (pipe(go))
		return -1;
	pid = fork();
	if (pid == 0) {
		char b;

		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		close(go[1]);
		if (vms_controller_device_forked(ctl, CU_DEADLINE_MS))
			_exit(10);
		vms_controller_forget(ctl);
		if (cu_check(g, e) >= 0)
			_exit(11);
		if (read(go[0], &b, 1) < 0)
			_exit(12);
		/* Touch everything again after the parent's step. */
		_exit(cu_check(g, e) >= 0 ? 13 : 0);
	}
	close(go[0]);
	*go_wr = go[1];
	return pid;
}

TEST_F(life, device_registers_while_enabled)
{
	struct vms_reply r;
	int go, st;
	pid_t pid;

	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, true));
	pid = fork_reader(self->ctl, &self->g, &self->e, &go);
	ASSERT_GT(pid, 0);
	close(go);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	ASSERT_EQ(0, cu_accepted(vms_controller_disable(self->ctl, false, &r), &r));
	ASSERT_EQ(0, vms_controller_test_release_job(self->ctl));
	ASSERT_EQ(0, cu_wait_state(self->ctl, VMS_SWAP_READY, CU_DEADLINE_MS, NULL));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
}

TEST_F(life, device_killed_during_swap_in)
{
	struct vms_reply r;
	int go, st;
	pid_t pid;

	pid = fork_reader(self->ctl, &self->g, &self->e, &go);
	ASSERT_GT(pid, 0);
	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, true));
	ASSERT_EQ(0, cu_accepted(vms_controller_disable(self->ctl, false, &r), &r));
	ASSERT_EQ(VMS_SWAP_SWAP_IN_IN_PROGRESS, cu_state(self->ctl));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	close(go);
	ASSERT_EQ(0, vms_controller_test_release_job(self->ctl));
	ASSERT_EQ(0, cu_wait_state(self->ctl, VMS_SWAP_READY, CU_DEADLINE_MS, NULL));
	ASSERT_EQ(-1, cu_check_memfd(&self->g, &self->e));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
	/* And swap works again without it. */
	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, true));
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
}

/* Fork a device that registers with timeout_ms; its exit code is -error (0: ok). */
static int device_register_result(struct vms_controller *ctl, int timeout_ms, uint64_t *ms)
{
	uint64_t t0 = cu_now_ms();
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		_exit(-vms_controller_device_forked(ctl, timeout_ms) & 0xff);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -ECHILD;
	*ms = cu_now_ms() - t0;
	return -WEXITSTATUS(st);
}

TEST_F(life, device_registration_is_bounded)
{
	pid_t mon = vms_controller_monitor_pid(self->ctl);
	struct vms_swap_status st;
	uint64_t ms;

	/* A hung monitor: the device gives up after its timeout. */
	ASSERT_EQ(0, kill(mon, SIGSTOP));
	ASSERT_EQ(-ETIMEDOUT, device_register_result(self->ctl, 300, &ms));
	ASSERT_LT(ms, 5000);
	ASSERT_EQ(0, kill(mon, SIGCONT));
	/* The monitor drops the dead device's late registration and carries on. */
	ASSERT_EQ(0, device_register_result(self->ctl, CU_DEADLINE_MS, &ms));
	ASSERT_EQ(0, vms_controller_status(self->ctl, &st));
	ASSERT_EQ(VMS_SWAP_READY, st.state);
	/* A dead monitor: the device learns it at once. */
	ASSERT_EQ(0, kill(mon, SIGKILL));
	ASSERT_EQ(0, cu_wait_pid_exit(mon, CU_DEADLINE_MS));
	ASSERT_EQ(-EPIPE, device_register_result(self->ctl, CU_DEADLINE_MS, &ms));
	ASSERT_LT(ms, 2000);
}

/* Send raw bytes plus a reply socket; return the reply's err (or a transport error). */
static int raw_exchange(struct vms_controller *ctl, const void *buf, size_t len,
			bool with_reply, struct vms_reply *r)
{
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	ret = vms_proto_send_raw(vms_controller_command_fd(ctl), buf, len, &sv[1],
				 with_reply ? 1 : 0);
	close(sv[1]);
	if (!ret && with_reply)
		ret = vms_proto_recv_reply(sv[0], CU_DEADLINE_MS, r, NULL);
	close(sv[0]);
	return ret;
}

TEST_F(life, malformed_messages_get_errors_and_change_nothing)
{
	struct vms_msg_cmd good = { .magic = VMS_PROTO_MAGIC, .version = VMS_PROTO_VERSION,
				    .cmd = VMS_CMD_SWAP_OUT };
	struct vms_msg_cmd m;
	struct vms_swap_status before, after;
	struct vms_reply r;
	char big[64] = { 0 };

	ASSERT_EQ(0, cu_accepted(vms_controller_enable(self->ctl, &r), &r));
	ASSERT_EQ(0, vms_controller_status(self->ctl, &before));
	ASSERT_EQ(VMS_SWAP_PENDING, before.state);

	m = good;
	m.magic ^= 1;
	ASSERT_EQ(0, raw_exchange(self->ctl, &m, sizeof(m), true, &r));
	ASSERT_EQ(VMS_REPLY_FAILED, r.result);
	ASSERT_EQ(-EBADMSG, r.err);
	m = good;
	m.version = 99;
	ASSERT_EQ(0, raw_exchange(self->ctl, &m, sizeof(m), true, &r));
	ASSERT_EQ(-EPROTONOSUPPORT, r.err);
	m = good;
	m.cmd = 77;
	ASSERT_EQ(0, raw_exchange(self->ctl, &m, sizeof(m), true, &r));
	ASSERT_EQ(-EOPNOTSUPP, r.err);
	m = good;
	m.flags = VMS_CMD_F_SLOW_FILE_CLEANUP; /* only valid for Disable */
	ASSERT_EQ(0, raw_exchange(self->ctl, &m, sizeof(m), true, &r));
	ASSERT_EQ(-EINVAL, r.err);
	m = good;
	m.reserved = 1;
	ASSERT_EQ(0, raw_exchange(self->ctl, &m, sizeof(m), true, &r));
	ASSERT_EQ(-EINVAL, r.err);
	m = good;
	m.cmd = VMS_CMD_PROCESS_FORKED; /* without its uffd and pidfd */
	ASSERT_EQ(0, raw_exchange(self->ctl, &m, sizeof(m), true, &r));
	ASSERT_EQ(-EINVAL, r.err);
	ASSERT_EQ(0, raw_exchange(self->ctl, &good, 3, true, &r)); /* short */
	ASSERT_EQ(-EBADMSG, r.err);
	memcpy(big, &good, sizeof(good));
	ASSERT_EQ(0, raw_exchange(self->ctl, big, sizeof(big), true, &r)); /* long */
	ASSERT_EQ(-EBADMSG, r.err);
	/* No reply socket at all: nothing to answer on, nothing happens. */
	ASSERT_EQ(0, raw_exchange(self->ctl, &good, sizeof(good), false, &r));
	/*
	 * An empty message reads like end-of-file on SOCK_SEQPACKET, but the senders
	 * are still there: the monitor must not take it for "everyone gone" and exit
	 * (any device process could stop it that way). Found by the proto_cmd fuzzer.
	 */
	ASSERT_EQ(0, send(vms_controller_command_fd(self->ctl), "", 0, MSG_NOSIGNAL));

	ASSERT_EQ(0, vms_controller_status(self->ctl, &after));
	ASSERT_EQ(VMS_SWAP_PENDING, after.state);
	ASSERT_EQ(before.metrics.staging_pages, after.metrics.staging_pages);
	ASSERT_EQ(0, after.metrics.swap_pages);
	ASSERT_EQ(-1, cu_check(&self->g, &self->e));
}

/*
 * Every sender gone (end of file on the command socket, here by shutting down the
 * controller's sending end) counts as Exit: the monitor brings every page back in
 * before it exits, so guest memory keeps all its contents.
 */
TEST_F(life, command_socket_eof_swaps_everything_in_then_exits)
{
	pid_t mon = vms_controller_monitor_pid(self->ctl);
	struct vms_swap_status st;

	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, true));
	ASSERT_EQ(0, vms_controller_status(self->ctl, &st));
	ASSERT_LT(0, st.metrics.swap_pages);
	ASSERT_NE(-1, cu_check_memfd(&self->g, &self->e)); /* pages are out */
	ASSERT_EQ(0, shutdown(vms_controller_command_fd(self->ctl), SHUT_WR));
	ASSERT_EQ(0, cu_wait_pid_exit(mon, CU_DEADLINE_MS));
	ASSERT_EQ(-1, cu_check_memfd(&self->g, &self->e));
}

/*
 * The monitor runs under a seccomp allowlist (monitor_sandbox.c). A syscall outside
 * it (socket(), on the test flag's Info) kills the monitor by SIGSYS, and the VMM
 * sees a dead monitor at once: the Info call fails, so does every later call, and
 * guest memory (swap never enabled) keeps every byte.
 */
TEST(sandbox_kills_the_monitor_on_a_syscall_outside_its_list)
{
	struct vms_controller *ctl = NULL;
	struct vms_monitor_info mi;
	struct vms_swap_status st;
	struct cu_guest g;
	struct cu_expect e;
	siginfo_t si = { 0 };
	pid_t mon;
	int ret;

	ASSERT_EQ(0, cu_guest_create(&g));
	ret = cu_launch(&g, NULL, VMS_CTL_TEST_SANDBOX_PROBE, &ctl);
	if (cu_uffd_unavailable(ret)) {
		cu_teardown(&g, &ctl);
		SKIP(return, "userfaultfd unavailable: %s", strerror(-ret));
	}
	ASSERT_EQ(0, ret);
	cu_write_crosvm_data(&g, &e);
	mon = vms_controller_monitor_pid(ctl);
	ASSERT_EQ(0, vms_controller_status(ctl, &st)); /* allowed: alive */
	ret = vms_controller_info(ctl, &mi);
	EXPECT_TRUE(ret == -EPIPE || ret == -ECONNRESET) TH_LOG("Info: %d", ret);
	ASSERT_EQ(0, waitid(P_PID, (id_t)mon, &si, WEXITED | WNOWAIT));
	EXPECT_EQ(CLD_KILLED, si.si_code);
	EXPECT_EQ(SIGSYS, si.si_status);
	ret = vms_controller_status(ctl, &st);
	EXPECT_TRUE(ret == -EPIPE || ret == -ECONNRESET) TH_LOG("Status: %d", ret);
	EXPECT_EQ(-1, cu_check(&g, &e));
	cu_teardown(&g, &ctl);
}

static int count_dir(const char *dir)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

TEST_F(life, swap_file_is_unnamed_and_dies_with_monitor)
{
	pid_t mon = vms_controller_monitor_pid(self->ctl);

	ASSERT_EQ(0, cu_enable_swap_out(self->ctl, true));
	ASSERT_EQ(0, count_dir(self->dir));
	ASSERT_EQ(0, kill(mon, SIGKILL));
	ASSERT_EQ(0, cu_wait_pid_exit(mon, CU_DEADLINE_MS));
	ASSERT_EQ(0, count_dir(self->dir));
	vms_controller_exit(self->ctl);
	self->ctl = NULL;
}

TEST_F(life, monitor_has_no_caps_and_no_new_privs)
{
	char path[64], line[256];
	bool nnp = false, caps = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", vms_controller_monitor_pid(self->ctl));
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		if (!strcmp(line, "NoNewPrivs:\t1\n"))
			nnp = true;
		if (!strcmp(line, "CapEff:\t0000000000000000\n"))
			caps = true;
	}
	fclose(f);
	ASSERT_TRUE(nnp);
	ASSERT_TRUE(caps);
}

/*
 * Failed and its recovery with a real ENOSPC: the swap file lives on a 256 KiB tmpfs
 * (in a private mount namespace), far smaller than the 1542 staged pages.
 */
TEST(swap_out_into_full_tmpfs_fails_and_recovers)
{
	char dir[] = "/tmp/vms_full_XXXXXX";
	struct vms_controller *ctl;
	struct vms_swap_status st;
	struct cu_expect e;
	struct cu_guest g;
	struct vms_reply r;
	int ret;

	ASSERT_NE(NULL, mkdtemp(dir));
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=256k")) {
		rmdir(dir);
		SKIP(return, "cannot mount a small tmpfs (needs CAP_SYS_ADMIN): %s",
		     strerror(errno));
	}
	ASSERT_EQ(0, cu_guest_create(&g));
	cu_quiet_log();
	ret = cu_launch(&g, dir, 0, &ctl);
	if (cu_uffd_unavailable(ret)) {
		umount(dir);
		rmdir(dir);
		SKIP(return, "userfaultfd unavailable: %s", strerror(-ret));
	}
	ASSERT_EQ(0, ret);
	cu_write_crosvm_data(&g, &e);
	ASSERT_EQ(0, cu_accepted(vms_controller_enable(ctl, &r), &r));
	ASSERT_EQ(0, cu_accepted(vms_controller_swap_out(ctl, &r), &r));
	ASSERT_EQ(0, cu_wait_state(ctl, VMS_SWAP_FAILED, CU_DEADLINE_MS, &st));
	ASSERT_EQ(0, st.state_transition.pages); /* Failed: zeros */
	/* Faults are still served in Failed: every page reads right. */
	ASSERT_EQ(-1, cu_check(&g, &e));
	ASSERT_EQ(0, cu_accepted(vms_controller_enable(ctl, &r), &r)); /* way out 1 */
	ASSERT_EQ(VMS_SWAP_PENDING, r.new_state);
	ASSERT_EQ(0, cu_accepted(vms_controller_swap_out(ctl, &r), &r));
	ASSERT_EQ(0, cu_wait_state(ctl, VMS_SWAP_FAILED, CU_DEADLINE_MS, NULL));
	ASSERT_EQ(0, cu_accepted(vms_controller_disable(ctl, false, &r), &r)); /* way out 2 */
	ASSERT_EQ(0, cu_wait_state(ctl, VMS_SWAP_READY, CU_DEADLINE_MS, NULL));
	ASSERT_EQ(-1, cu_check_memfd(&g, &e));
	ASSERT_EQ(-1, cu_check(&g, &e));
	ASSERT_EQ(0, cu_accepted(vms_controller_enable(ctl, &r), &r)); /* works again */
	ASSERT_EQ(0, vms_controller_exit(ctl));
	ASSERT_EQ(-1, cu_check_memfd(&g, &e));
	cu_guest_destroy(&g);
	umount(dir);
	rmdir(dir);
}

TEST_HARNESS_MAIN
