// SPDX-License-Identifier: GPL-2.0-only
/*
 * minivmm_test - the minimal VMM refuses bad requests without changing the VM, and
 * its control CLI reports what happened: wrong-state swap commands, a busy vCPU, a
 * dead device process, a foreign uid, a killed VMM. Runs the built minivmm and
 * vmmswap of this build variant on a small real KVM guest; the full scenarios live
 * in vmtests/.
 */
#include <inttypes.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "vmm_run.h"
#include <vmm/control.h>
#include <vm/kvm_vm.h>

#define PAGES	     2048 /* 4M@16M + 4M@4G */
#define READY_MS     30000
#define STOP_WAIT_MS 20000

FIXTURE(vmm)
{
	char dir[64];
	char sock[128];
	char log[128];
	pid_t pid;
	bool swap;
};

/* Start minivmm; 0 once it printed its ready line, else a negative errno. */
static int start_vmm(FIXTURE_DATA(vmm) * self, bool swap)
{
	char path[PATH_MAX], line[512];
	size_t len = 0;
	int out[2], logfd;
	char *argv[16];
	int n = 0;

	if (vmm_tool_path("minivmm", path, sizeof(path)))
		return -ENOENT;
	argv[n++] = path;
	argv[n++] = "--mem";
	argv[n++] = "4M@16M,4M@4G";
	argv[n++] = "--vcpus";
	argv[n++] = "2";
	argv[n++] = "--devices";
	argv[n++] = "1";
	argv[n++] = "--socket";
	argv[n++] = self->sock;
	argv[n++] = "--swap-dir";
	argv[n++] = self->dir;
	if (!swap)
		argv[n++] = "--no-swap";
	argv[n] = NULL;

	if (pipe2(out, O_CLOEXEC))
		return -errno;
	logfd = open(self->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (logfd < 0)
		return -errno;
	self->pid = fork();
	if (self->pid < 0)
		return -errno;
	if (self->pid == 0) {
		dup2(out[1], 1);
		dup2(logfd, 2);
		execv(path, argv);
		_exit(127);
	}
	close(out[1]);
	close(logfd);
	for (;;) {
		struct pollfd pfd = {.fd = out[0], .events = POLLIN};
		ssize_t r;

		if (poll(&pfd, 1, READY_MS) <= 0)
			break;
		r = read(out[0], line + len, sizeof(line) - 1 - len);
		if (r <= 0)
			break;
		len += r;
		line[len] = '\0';
		if (strstr(line, "minivmm: ready")) {
			close(out[0]);
			return 0;
		}
	}
	close(out[0]);
	return -EIO;
}

/* Wait up to ms for the VMM to exit; its exit status, or -ETIMEDOUT. */
static int wait_vmm(FIXTURE_DATA(vmm) * self, int ms)
{
	int status, waited;

	for (waited = 0; waited < ms; waited += 10) {
		pid_t p = waitpid(self->pid, &status, WNOHANG);

		if (p == self->pid) {
			self->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static void dump_log(FIXTURE_DATA(vmm) * self)
{
	char buf[4096];
	int fd = open(self->log, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		fprintf(stderr, "# minivmm log:\n%s", buf);
	}
	close(fd);
}

static void remove_dir(FIXTURE_DATA(vmm) * self)
{
	if (!self->dir[0])
		return;
	unlink(self->sock);
	unlink(self->log);
	rmdir(self->dir);
	self->dir[0] = '\0';
}

FIXTURE_SETUP(vmm)
{
	char path[PATH_MAX];
	int ret;

	self->pid = 0;
	self->dir[0] = '\0';
	/* Skip before creating anything: a skipped test leaves nothing behind. */
	if (vmm_tool_path("minivmm", path, sizeof(path)) ||
	    vmm_tool_path("vmmswap", path, sizeof(path)))
		SKIP(return, "vmm/vmmswap are not built next to this test");
	ret = minivm_kvm_available();
	if (ret)
		SKIP(return, "/dev/kvm not usable: %s", strerror(-ret));

	strcpy(self->dir, "/tmp/minivmm_test.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->sock, sizeof(self->sock), "%s/sock", self->dir);
	snprintf(self->log, sizeof(self->log), "%s/log", self->dir);

	self->swap = true;
	ret = start_vmm(self, true);
	if (ret) {
		/* No userfaultfd for this user: the refusal tests still make sense. */
		wait_vmm(self, STOP_WAIT_MS);
		self->swap = false;
		ret = start_vmm(self, false);
	}
	if (ret) {
		dump_log(self);
		if (self->pid > 0 && wait_vmm(self, STOP_WAIT_MS) < 0) {
			kill(self->pid, SIGKILL);
			waitpid(self->pid, NULL, 0);
		}
		remove_dir(self);
	}
	ASSERT_EQ(0, ret);
}

/* Sanitizer reports of the VMM (and its children) land in its log: none allowed. */
static bool log_has_sanitizer_report(FIXTURE_DATA(vmm) * self)
{
	static char buf[65536];
	int fd = open(self->log, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "Sanitizer") || strstr(buf, "runtime error");
}

FIXTURE_TEARDOWN(vmm)
{
	if (!self->dir[0])
		return; /* skipped, or setup cleaned up after itself */
	if (self->pid > 0) {
		kill(self->pid, SIGTERM);
		if (wait_vmm(self, STOP_WAIT_MS) < 0) {
			kill(self->pid, SIGKILL);
			waitpid(self->pid, NULL, 0);
		}
	}
	if (log_has_sanitizer_report(self)) {
		dump_log(self);
		EXPECT_FALSE(true) TH_LOG("sanitizer report in the minivmm log");
	}
	remove_dir(self);
}

/* Send a raw request; the reply's result word ("ok", "error", ...). */
static int raw(FIXTURE_DATA(vmm) * self, const char *req, char *result, size_t len)
{
	char buf[MINIVM_CTL_MSG_MAX];
	const char *res, *human, *json;
	int ret;

	ret = minivm_ctl_call(self->sock, req, buf, sizeof(buf), 20000);
	if (!ret)
		ret = minivm_ctl_parse_reply(buf, &res, &human, &json);
	if (!ret)
		snprintf(result, len, "%s", res);
	return ret;
}

/* A malformed or impossible request gets an error reply and changes nothing. */
TEST_F_TIMEOUT(vmm, bad_requests_are_refused_and_change_nothing, 120)
{
	static const char *const bad[] = {
		"vmmswap/1",
		"vmmswap/1 bogus",
		"vmmswap/1 guest",
		"vmmswap/1 guest op=explode start=0 count=1",
		"vmmswap/1 guest op=fill start=0 count=1",
		"vmmswap/1 guest op=fill start=0 count=1 seed=x",
		"vmmswap/1 guest op=fill start=0 count=1 seed=-1",
		"vmmswap/1 guest op=fill start=0 count=4096 seed=1",
		"vmmswap/1 guest op=fill start=18446744073709551615 count=2 seed=1",
		"vmmswap/1 guest op=fill start=0 count=0 seed=1",
		"vmmswap/1 guest op=fill start=0 count=1 seed=1 vcpu=9",
		"vmmswap/1 guest op=fill start=0 count=1 seed=1 colour=red",
		"vmmswap/1 guest op=fill start=0 count=1 seed=1 start=5",
		"vmmswap/1 guest op=fill start=0 count=1 =1",
		"vmmswap/1 guest op=inflate start=0 count=4096",
		"vmmswap/1 guest op=writer-stop",
		"vmmswap/1 swap op=explode",
		"vmmswap/1 swap op=enable extra=1",
		"vmmswap/1 swap",
		"vmmswap/1 dma op=fill dev=5 start=0 count=1 seed=1",
		"vmmswap/1 dma op=copy dev=0 src=0 dst=1 count=2",
		"vmmswap/1 dma op=fill dev=0 start=2047 count=2 seed=1",
		"vmmswap/1 device op=exit dev=0 status=300",
		"vmmswap/1 device op=melt dev=0",
		"vmmswap/1 stop status=999",
		"VMMSWAP/2 stop",
		"stop",
	};
	struct vmm_run r;
	char result[32];
	unsigned int i;

	ASSERT_EQ(0, vmm_cli(&r, "fill", "0", "2048", "5", self->sock, NULL));
	ASSERT_EQ(0, r.status) TH_LOG("fill: %s", r.err);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(0, raw(self, bad[i], result, sizeof(result))) TH_LOG("%s", bad[i]);
		EXPECT_STREQ("error", result) TH_LOG("request '%s' was not refused", bad[i]);
	}

	/* Still alive, memory and devices untouched, swap still Ready. */
	ASSERT_EQ(0, vmm_cli(&r, "verify", "0", "2048", "5", self->sock, NULL));
	EXPECT_EQ(0, r.status) TH_LOG("verify: %s%s", r.out, r.err);
	ASSERT_EQ(0, vmm_cli(&r, "--json", "info", self->sock, NULL));
	EXPECT_NE(NULL, strstr(r.out, "\"alive\":true"));
	EXPECT_NE(NULL, strstr(r.out, "\"inflated_pages\":0"));
	if (self->swap) {
		ASSERT_EQ(0, vmm_cli(&r, "swap", "status", self->sock, NULL));
		EXPECT_NE(NULL, strstr(r.out, "{\"state\":\"Ready\""));
	}
}

/* Requests that are too long or carry a newline are refused, the VMM survives. */
TEST_F(vmm, oversized_and_multiline_requests_are_refused)
{
	char *big = malloc(MINIVM_CTL_MSG_MAX + 16);
	char result[32];
	struct vmm_run r;

	ASSERT_NE(NULL, big);
	memset(big, 'a', MINIVM_CTL_MSG_MAX + 15);
	memcpy(big, "vmmswap/1 ping x=", 17);
	big[MINIVM_CTL_MSG_MAX + 15] = '\0';
	/* Too big to send as one message: the client refuses, nothing reaches the VMM. */
	EXPECT_GT(0, raw(self, big, result, sizeof(result)));
	free(big);

	ASSERT_EQ(0, raw(self, "vmmswap/1 ping\nvmmswap/1 stop", result, sizeof(result)));
	EXPECT_STREQ("error", result);
	ASSERT_EQ(0, vmm_cli(&r, "ping", self->sock, NULL));
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ("pong\n", r.out);
}

/*
 * crosvm's SwapStatus as `crosvm swap status` prints it (serde_json, compact,
 * fields in declaration order), spelled out here on its own rather than with the
 * library's parser, so that a bug in ref/status.c cannot hide itself. 0 when json
 * is exactly that object; the state's name in state, the nine numbers in v.
 */
static int crosvm_status(const char *json, char state[32], uint64_t v[9])
{
	int end = -1;
	int n = sscanf(json,
		       "{\"state\":\"%31[A-Za-z]\",\"metrics\":{\"resident_pages\":%" SCNu64
		       ",\"copied_from_file_pages\":%" SCNu64
		       ",\"copied_from_staging_pages\":%" SCNu64 ",\"zeroed_pages\":%" SCNu64
		       ",\"redundant_pages\":%" SCNu64 ",\"staging_pages\":%" SCNu64
		       ",\"swap_pages\":%" SCNu64 "},\"state_transition\":{\"pages\":%" SCNu64
		       ",\"time_ms\":%" SCNu64 "}}%n",
		       state, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &end);

	return n == 10 && end > 0 && json[end] == '\0' ? 0 : -1;
}

/* The crosvm verbs keep crosvm's output; ignored commands are reported on stderr. */
TEST_F(vmm, swap_verbs_print_like_crosvm_and_report_ignored)
{
	char state[32];
	uint64_t v[9];
	struct vmm_run r;

	if (!self->swap)
		SKIP(return, "swap unavailable here (no userfaultfd)");

	ASSERT_EQ(0, vmm_cli(&r, "swap", "status", self->sock, NULL));
	ASSERT_EQ(0, r.status);
	ASSERT_NE(NULL, strchr(r.out, '\n'));
	EXPECT_EQ('\0', strchr(r.out, '\n')[1]) TH_LOG("more than one line: %s", r.out);
	*strchr(r.out, '\n') = '\0';
	ASSERT_EQ(0, crosvm_status(r.out, state, v)) TH_LOG("not crosvm's JSON: %s", r.out);
	EXPECT_STREQ("Ready", state);

	/* Trim and out are not valid in Ready: exit 0 as crosvm, but say so. */
	ASSERT_EQ(0, vmm_cli(&r, "swap", "trim", self->sock, NULL));
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ("", r.out);
	EXPECT_NE(NULL, strstr(r.err, "ignored in state Ready")) TH_LOG("stderr: %s", r.err);
	ASSERT_EQ(0, vmm_cli(&r, "--json", "swap", "out", self->sock, NULL));
	EXPECT_EQ(0, r.status);
	EXPECT_NE(NULL, strstr(r.out, "\"result\":\"ignored\""));
	EXPECT_NE(NULL, strstr(r.out, "\"state\":\"Ready\""));

	/* A real cycle prints nothing on success, and --wait-state waits. */
	ASSERT_EQ(0, vmm_cli(&r, "fill", "0", "2048", "9", self->sock, NULL));
	ASSERT_EQ(0, vmm_cli(&r, "swap", "enable", self->sock, NULL));
	EXPECT_EQ(0, r.status) TH_LOG("enable: %s", r.err);
	EXPECT_STREQ("", r.out);
	ASSERT_EQ(0, vmm_cli(&r, "--wait-state", "Active", "swap", "out", self->sock, NULL));
	EXPECT_EQ(0, r.status) TH_LOG("out: %s", r.err);
	ASSERT_EQ(0, vmm_cli(&r, "swap", "disable", "--slow-file-cleanup", self->sock, NULL));
	EXPECT_EQ(0, r.status);
	ASSERT_EQ(0, vmm_cli(&r, "--timeout", "30", "wait", "Ready", self->sock, NULL));
	EXPECT_EQ(0, r.status) TH_LOG("wait: %s", r.err);
	ASSERT_EQ(0, vmm_cli(&r, "verify", "0", "2048", "9", self->sock, NULL));
	EXPECT_EQ(0, r.status) TH_LOG("verify: %s", r.out);
}

/* A mismatch is exit 2 with the first bad page named; the data is not "fixed". */
TEST_F(vmm, verify_mismatch_exits_2)
{
	struct vmm_run r;

	ASSERT_EQ(0, vmm_cli(&r, "fill", "0", "16", "1", self->sock, NULL));
	ASSERT_EQ(0, vmm_cli(&r, "verify", "0", "16", "2", self->sock, NULL));
	EXPECT_EQ(2, r.status);
	EXPECT_NE(NULL, strstr(r.out, "MISMATCH in 16 of 16 pages; first at page 0"));
	ASSERT_EQ(0, vmm_cli(&r, "verify", "0", "16", "1", self->sock, NULL));
	EXPECT_EQ(0, r.status);
}

/* One command per vCPU: a second one is refused while the writer runs. */
TEST_F(vmm, busy_vcpu_refuses_a_second_command)
{
	struct vmm_run r;
	char seed[32];
	const char *p;

	ASSERT_EQ(0, vmm_cli(&r, "--vcpu", "1", "writer", "start", "0", "64", "100", self->sock,
			     NULL));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_EQ(0, vmm_cli(&r, "--vcpu", "1", "fill", "0", "1", "1", self->sock, NULL));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "busy"));
	/* vCPU 0 is free meanwhile. */
	ASSERT_EQ(0, vmm_cli(&r, "fill", "100", "1", "1", self->sock, NULL));
	EXPECT_EQ(0, r.status);

	ASSERT_EQ(0, vmm_cli(&r, "--json", "--vcpu", "1", "writer", "stop", self->sock, NULL));
	ASSERT_EQ(0, r.status);
	p = strstr(r.out, "\"last_seed\":");
	ASSERT_NE(NULL, p);
	snprintf(seed, sizeof(seed), "%ld", strtol(p + 12, NULL, 10));
	ASSERT_EQ(0, vmm_cli(&r, "verify", "0", "64", seed, self->sock, NULL));
	EXPECT_EQ(0, r.status) TH_LOG("writer's last pass (seed %s): %s", seed, r.out);
	ASSERT_EQ(0, vmm_cli(&r, "--vcpu", "1", "writer", "stop", self->sock, NULL));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "no writer"));
}

/* A device process that exited is reported as such; the VMM keeps running. */
TEST_F(vmm, dead_device_is_reported)
{
	struct vmm_run r;

	ASSERT_EQ(0, vmm_cli(&r, "dma", "fill", "0", "0", "32", "4", self->sock, NULL));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_EQ(0, vmm_cli(&r, "verify", "0", "32", "4", self->sock, NULL));
	EXPECT_EQ(0, r.status) TH_LOG("the guest does not see the DMA: %s", r.out);

	ASSERT_EQ(0, vmm_cli(&r, "device", "exit", "0", "3", self->sock, NULL));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_EQ(0, vmm_cli(&r, "dma", "ping", "0", self->sock, NULL));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "not running"));
	ASSERT_EQ(0, vmm_cli(&r, "device", "crash", "0", self->sock, NULL));
	EXPECT_EQ(1, r.status);
	ASSERT_EQ(0, vmm_cli(&r, "--json", "info", self->sock, NULL));
	EXPECT_NE(NULL, strstr(r.out, "\"alive\":false,\"exit_status\":3"));
	ASSERT_EQ(0, vmm_cli(&r, "verify", "0", "32", "4", self->sock, NULL));
	EXPECT_EQ(0, r.status);
	if (self->swap) {
		ASSERT_EQ(0, vmm_cli(&r, "swap", "enable", self->sock, NULL));
		EXPECT_EQ(0, r.status) TH_LOG("enable with a dead device: %s", r.err);
	}
}

/* The socket is 0600; another uid cannot even connect. */
TEST_F(vmm, foreign_uid_is_refused)
{
	struct stat st;
	pid_t child;
	int status;

	ASSERT_EQ(0, stat(self->sock, &st));
	EXPECT_TRUE(S_ISSOCK(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 0777);
	if (geteuid() != 0)
		SKIP(return, "needs root to switch to another uid");

	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		char buf[256];

		if (setgid(65534) || setuid(65534))
			_exit(100);
		_exit(minivm_ctl_call(self->sock, "vmmswap/1 stop", buf, sizeof(buf), 5000) ==
				      -EACCES
			      ? 0
			      : 1);
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The stop never arrived. */
	EXPECT_EQ(0, kill(self->pid, 0));
}

/* A second VMM cannot steal a live socket. */
TEST_F(vmm, live_socket_is_not_replaced)
{
	char path[PATH_MAX];
	char *argv[] = {path, "--no-swap", "--devices", "0", "--socket", self->sock, NULL};
	struct vmm_run r;

	ASSERT_EQ(0, vmm_tool_path("minivmm", path, sizeof(path)));
	ASSERT_EQ(0, vmm_run_argv(argv, 30000, &r));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "Address already in use")) TH_LOG("%s", r.err);
	ASSERT_EQ(0, vmm_cli(&r, "ping", self->sock, NULL));
	EXPECT_EQ(0, r.status);
}

/* A VMM killed by SIGKILL leaves a stale socket; the CLI says so, exit 1. */
TEST_F(vmm, killed_vmm_is_reported)
{
	struct vmm_run r;

	ASSERT_EQ(0, kill(self->pid, SIGKILL));
	ASSERT_EQ(128 + SIGKILL, wait_vmm(self, STOP_WAIT_MS));
	ASSERT_EQ(0, vmm_cli(&r, "swap", "status", self->sock, NULL));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "nobody is listening"));
	EXPECT_STREQ("", r.out);
}

/* stop STATUS: the guest halts with STATUS and minivmm exits with it. */
TEST_F(vmm, stop_exits_with_the_guest_status)
{
	struct vmm_run r;

	ASSERT_EQ(0, vmm_cli(&r, "stop", "7", self->sock, NULL));
	ASSERT_EQ(0, r.status);
	EXPECT_EQ(7, wait_vmm(self, STOP_WAIT_MS));
	EXPECT_NE(0, access(self->sock, F_OK)) TH_LOG("socket left behind");
}

/*
 * The monitor dying stops the VM (exit 1), as crosvm does: pages the monitor had
 * removed would otherwise read as zero in a guest that keeps running.
 */
TEST_F(vmm, monitor_death_stops_the_vm)
{
	struct vmm_run r;
	const char *p;
	pid_t monitor;

	if (!self->swap)
		SKIP(return, "swap unavailable here (no userfaultfd)");
	ASSERT_EQ(0, vmm_cli(&r, "--json", "info", self->sock, NULL));
	p = strstr(r.out, "\"monitor_pid\":");
	ASSERT_NE(NULL, p);
	monitor = strtol(p + 14, NULL, 10);
	ASSERT_LT(0, monitor);
	ASSERT_EQ(0, kill(monitor, SIGKILL));
	EXPECT_EQ(1, wait_vmm(self, STOP_WAIT_MS));
	ASSERT_EQ(0, vmm_cli(&r, "swap", "status", self->sock, NULL));
	EXPECT_EQ(1, r.status);
}

TEST_HARNESS_MAIN
