// SPDX-License-Identifier: MIT
/*
 * kernel_matrix/init.c - PID 1 of the kernel-matrix initramfs, and the same test
 * runner on the host.
 *
 * As PID 1 (inside a qemu guest) it mounts devtmpfs, proc, sysfs and tmpfs, sends
 * its output to the serial console, runs every program named in
 * /kselftest/kselftest-list.txt and powers the machine off. With --run DIR it runs
 * the programs of an install tree DIR on the running kernel instead.
 *
 * The output is one KTAP / TAP 13 document in the layout of the kernel's
 * run_kselftest.sh: a "# selftests: COLLECTION: NAME" header, the program's own
 * output with every line prefixed by "# ", and one "ok" / "not ok" line per
 * program (exit status 4 is "# SKIP", a timeout "# TIMEOUT N seconds"). Two marker
 * lines outside the document delimit it in a serial log full of other text:
 *   kmatrix: begin RELEASE
 *   kmatrix: end STATUS
 *
 * Kernel command line options read in the guest (from /proc/cmdline):
 *   kmatrix.timeout=SECONDS   per-program time limit (default: settings, else 300)
 *   kmatrix.hugepages=N       write N to /proc/sys/vm/nr_hugepages first
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#define MAX_TESTS    128
#define LINE_MAX_LEN 4096
#define KSFT_SKIP_RC 4
#define GUEST_DIR    "/kselftest"

struct entry {
	char collection[128];
	char name[128];
};

static bool as_init;
static unsigned int opt_timeout; /* 0: from the collection's settings file */
static long opt_hugepages = -1;

static void out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

/* The value of "key=" in the kernel command line, copied to buf; false if absent. */
static bool cmdline_opt(const char *key, char *buf, size_t len)
{
	char line[LINE_MAX_LEN], *tok, *save = NULL;
	FILE *f = fopen("/proc/cmdline", "re");
	size_t klen = strlen(key);
	bool found = false;

	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
		if (!strncmp(tok, key, klen) && tok[klen] == '=') {
			snprintf(buf, len, "%s", tok + klen + 1);
			found = true;
		}
	}
	return found;
}

static void guest_setup(void)
{
	static const struct {
		const char *src, *dir, *type;
		unsigned long flags;
	} mounts[] = {
		{ "devtmpfs", "/dev", "devtmpfs", MS_NOSUID },
		{ "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC },
		{ "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC },
		{ "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV },
		{ "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV },
		{ "debugfs", "/sys/kernel/debug", "debugfs", 0 },
	};
	char buf[64];
	int fd;

	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		mkdir(mounts[i].dir, 0755);
		mount(mounts[i].src, mounts[i].dir, mounts[i].type, mounts[i].flags, NULL);
	}
	/* The kernel could not open /dev/console before devtmpfs was mounted. */
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		fd = open("/dev/ttyS0", O_RDWR | O_NOCTTY);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	setenv("PATH", "/bin:/sbin", 1);
	setenv("HOME", "/", 1);
	if (cmdline_opt("kmatrix.timeout", buf, sizeof(buf)))
		opt_timeout = (unsigned int)strtoul(buf, NULL, 10);
	if (cmdline_opt("kmatrix.hugepages", buf, sizeof(buf)))
		opt_hugepages = strtol(buf, NULL, 10);
	if (opt_hugepages >= 0) {
		snprintf(buf, sizeof(buf), "%ld", opt_hugepages);
		write_str("/proc/sys/vm/nr_hugepages", buf);
	}
}

static int read_list(const char *dir, struct entry *e, int max)
{
	char path[512], line[512];
	FILE *f;
	int n = 0;

	if (snprintf(path, sizeof(path), "%s/kselftest-list.txt", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (n < max && fgets(line, sizeof(line), f)) {
		char *colon, *nl = strchr(line, '\n');

		if (nl)
			*nl = 0;
		colon = strchr(line, ':');
		if (line[0] == '#' || !colon)
			continue;
		*colon = 0;
		if (strlen(line) >= sizeof(e[n].collection) ||
		    strlen(colon + 1) >= sizeof(e[n].name))
			continue;
		strcpy(e[n].collection, line);
		strcpy(e[n].name, colon + 1);
		n++;
	}
	fclose(f);
	return n;
}

/* timeout= from DIR/COLLECTION/settings, as run_kselftest.sh reads it. */
static unsigned int settings_timeout(const char *dir, const char *collection)
{
	char path[512], line[128];
	unsigned int t = 300;
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/%s/settings", dir, collection) >= (int)sizeof(path))
		return t;
	f = fopen(path, "re");
	if (!f)
		return t;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "timeout=", 8))
			t = (unsigned int)strtoul(line + 8, NULL, 10);
	fclose(f);
	return t;
}

/* Copy the child's output to stdout, each line prefixed by "# ". */
struct prefixer {
	char buf[LINE_MAX_LEN];
	size_t len;
};

static void prefix_flush(struct prefixer *p)
{
	if (p->len) {
		out("# %.*s\n", (int)p->len, p->buf);
		p->len = 0;
	}
}

static void prefix_feed(struct prefixer *p, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = data[i];

		if (c == '\n') {
			out("# %.*s\n", (int)p->len, p->buf);
			p->len = 0;
			continue;
		}
		if (c == '\r')
			continue;
		if (p->len == sizeof(p->buf))
			prefix_flush(p);
		p->buf[p->len++] = c;
	}
}

/* Run one program; returns its wait status, or -1 when it timed out (and was killed). */
static int run_one(const char *dir, const struct entry *e, unsigned int timeout_s)
{
	char cwd[512], prog[512];
	struct prefixer pre = { .len = 0 };
	uint64_t deadline = now_ms() + (uint64_t)timeout_s * 1000;
	int pfd[2], status = 0;
	bool timed_out = false, eof = false;
	pid_t pid;

	if (snprintf(cwd, sizeof(cwd), "%s/%s", dir, e->collection) >= (int)sizeof(cwd) ||
	    snprintf(prog, sizeof(prog), "./%s", e->name) >= (int)sizeof(prog))
		return -2;
	if (pipe2(pfd, O_CLOEXEC))
		return -2;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -2;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		if (null >= 0)
			dup2(null, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		if (chdir(cwd) == 0)
			execl(prog, prog, (char *)NULL);
		dprintf(2, "cannot run %s/%s: %s\n", cwd, e->name, strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	close(pfd[1]);
	while (!eof) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		uint64_t now = now_ms();
		char buf[1024];
		ssize_t n;
		int r;

		if (now >= deadline) {
			timed_out = true;
			break;
		}
		r = poll(&p, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		n = read(pfd[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			eof = true;
		else
			prefix_feed(&pre, buf, (size_t)n);
	}
	if (timed_out)
		kill(-pid, SIGKILL);
	prefix_flush(&pre);
	close(pfd[0]);
	/* Output closed: the program (or a child holding the pipe) is done; reap it. */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	kill(-pid, SIGKILL); /* stray children of the program's group */
	return timed_out ? -1 : status;
}

/* Kernel log lines that show a kernel bug (guest only: the log is ours alone). */
static int check_kernel_log(void)
{
	static const char *const bad[] = { "WARNING:",		 "BUG:",	"Oops",
					   "general protection", "Call Trace:", "kernel BUG",
					   "RCU stall",		 "hung_task",	"soft lockup" };
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	char rec[LINE_MAX_LEN];
	int hits = 0;

	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		char *msg;

		if (n < 0 && errno == EPIPE)
			continue; /* overwritten records: go on */
		if (n <= 0)
			break;
		rec[n] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (strstr(msg, bad[i])) {
				char *nl = strchr(msg, '\n');

				if (nl)
					*nl = 0;
				if (hits++ < 40)
					out("# kernel: %s\n", msg);
				break;
			}
		}
	}
	close(fd);
	return hits;
}

static void finish(const char *status)
{
	out("kmatrix: end %s\n", status);
	if (!as_init)
		return;
	sync();
	reboot(RB_POWER_OFF);
	/* Not reached unless power-off failed; PID 1 must not exit. */
	for (;;)
		pause();
}

static void usage(void)
{
	fprintf(stderr, "usage: kernel_matrix_init --run DIR [--timeout SECONDS]\n"
			"       (or run as PID 1 of the kernel-matrix initramfs)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static struct entry list[MAX_TESTS];
	const char *dir = GUEST_DIR;
	struct utsname u;
	int n, total;

	as_init = getpid() == 1;
	if (as_init) {
		guest_setup();
	} else {
		dir = NULL;
		for (int i = 1; i < argc; i++) {
			if (!strcmp(argv[i], "--run") && i + 1 < argc)
				dir = argv[++i];
			else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
				opt_timeout = (unsigned int)strtoul(argv[++i], NULL, 10);
			else
				usage();
		}
		if (!dir)
			usage();
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "unknown");
	out("kmatrix: begin %s\n", u.release);
	n = read_list(dir, list, MAX_TESTS);
	if (n < 0) {
		out("kmatrix: cannot read %s/kselftest-list.txt: %s\n", dir, strerror(-n));
		finish("error");
		return 1;
	}
	total = n + (as_init ? 1 : 0);
	out("TAP version 13\n1..%d\n", total);
	for (int i = 0; i < n; i++) {
		unsigned int t =
			opt_timeout ? opt_timeout : settings_timeout(dir, list[i].collection);
		uint64_t start = now_ms();
		int st;

		out("# selftests: %s: %s\n", list[i].collection, list[i].name);
		st = run_one(dir, &list[i], t);
		out("# kmatrix: %s took %llu ms\n", list[i].name,
		    (unsigned long long)(now_ms() - start));
		if (st == -1)
			out("not ok %d selftests: %s: %s # TIMEOUT %u seconds\n", i + 1,
			    list[i].collection, list[i].name, t);
		else if (st == -2)
			out("not ok %d selftests: %s: %s # exit=fork-failed\n", i + 1,
			    list[i].collection, list[i].name);
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			out("ok %d selftests: %s: %s\n", i + 1, list[i].collection, list[i].name);
		else if (WIFEXITED(st) && WEXITSTATUS(st) == KSFT_SKIP_RC)
			out("ok %d selftests: %s: %s # SKIP\n", i + 1, list[i].collection,
			    list[i].name);
		else if (WIFEXITED(st))
			out("not ok %d selftests: %s: %s # exit=%d\n", i + 1, list[i].collection,
			    list[i].name, WEXITSTATUS(st));
		else
			out("not ok %d selftests: %s: %s # exit=signal %d\n", i + 1,
			    list[i].collection, list[i].name, WTERMSIG(st));
	}
	if (as_init) {
		int hits;

		out("# selftests: kernel: dmesg\n");
		hits = check_kernel_log();
		if (hits < 0)
			out("ok %d selftests: kernel: dmesg # SKIP cannot read /dev/kmsg\n", total);
		else if (hits)
			out("not ok %d selftests: kernel: dmesg # %d kernel log lines show a bug\n",
			    total, hits);
		else
			out("ok %d selftests: kernel: dmesg\n", total);
	}
	finish("done");
	return 0;
}
