// SPDX-License-Identifier: GPL-2.0-only
/*
 * kernel_matrix_parse_test - the kernel matrix's log parser and report
 * (tools/kernel_matrix/parse.awk, report.awk) on serial console logs recorded
 * from real guests (fixtures/kernel-matrix/):
 *   debian-6.1.serial.log            a complete run, full boot log on the console
 *   debian-6.12-timeout.serial.log   uffd-unit-tests killed by its time limit
 *   panic-no-root.serial.log         a kernel that panicked before the runner
 * plus logs derived from them here: cut short (the host's time limit) and with
 * kernel messages printed into the middle of the KTAP document.
 *
 * Runs from the top of the tree (as tools/check.sh does) or finds it from
 * /proc/self/exe (build/VARIANT/selftests/PROGRAM); SKIPs without awk.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"

#define FIX_DIR	   "fixtures/kernel-matrix"
#define PARSE_AWK  "tools/kernel_matrix/parse.awk"
#define REPORT_AWK "tools/kernel_matrix/report.awk"
#define LOG_61	   FIX_DIR "/debian-6.1.serial.log"
#define LOG_612	   FIX_DIR "/debian-6.12-timeout.serial.log"
#define LOG_PANIC  FIX_DIR "/panic-no-root.serial.log"

/* Go to the top of the source tree; false if it cannot be found. */
static bool find_top(void)
{
	char exe[PATH_MAX];
	ssize_t n;

	if (access(PARSE_AWK, R_OK) == 0 && access(LOG_61, R_OK) == 0)
		return true;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = 0;
	for (int up = 0; up < 4; up++) {
		char *slash = strrchr(exe, '/');

		if (!slash)
			return false;
		*slash = 0;
	}
	return chdir(exe) == 0 && access(PARSE_AWK, R_OK) == 0 && access(LOG_61, R_OK) == 0;
}

static bool have_awk(void)
{
	return system("awk 'BEGIN { exit 0 }' </dev/null >/dev/null 2>&1") == 0;
}

/* Run argv with stdout to out_path; returns the exit status or -1. */
static int run(char *const argv[], const char *out_path)
{
	int status, fd;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long len;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t)len + 1);
	if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[len] = 0;
	fclose(f);
	return buf;
}

/* True when text holds 'line' as a whole line. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0))
			return true;
	return false;
}

static int count_prefix(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	int count = 0;

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, prefix, n))
			count++;
	return count;
}

FIXTURE(km)
{
	char dir[64];
	char res[PATH_MAX], tap[PATH_MAX];
	char *out;  /* parse.awk output */
	char *ktap; /* the KTAP document it extracted */
};

FIXTURE_SETUP(km)
{
	self->out = self->ktap = NULL;
	self->dir[0] = 0;
	if (!find_top())
		SKIP(return, "no %s / %s here (run from the source tree)", PARSE_AWK, FIX_DIR);
	if (!have_awk())
		SKIP(return, "no awk");
	strcpy(self->dir, "/tmp/kmatrix-parse-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->res, sizeof(self->res), "%s/results.tsv", self->dir);
	snprintf(self->tap, sizeof(self->tap), "%s/out.tap", self->dir);
}

FIXTURE_TEARDOWN(km)
{
	char cmd[PATH_MAX + 16];

	free(self->out);
	free(self->ktap);
	if (self->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
		if (system(cmd))
			TH_LOG("could not remove %s", self->dir);
	}
}

/* Parse 'log' (qemu: how the guest ended) into self->out and self->ktap. */
static int parse(FIXTURE_DATA(km) * self, const char *log, const char *qemu)
{
	char tapv[PATH_MAX + 8], qemuv[64];
	char *argv[] = {"awk", "-f", PARSE_AWK, "-v", tapv, "-v", qemuv, (char *)log, NULL};
	int rc;

	snprintf(tapv, sizeof(tapv), "tap=%s", self->tap);
	snprintf(qemuv, sizeof(qemuv), "qemu=%s", qemu);
	unlink(self->tap);
	rc = run(argv, self->res);
	free(self->out);
	free(self->ktap);
	self->out = slurp(self->res);
	self->ktap = slurp(self->tap);
	return rc;
}

/* Write a copy of 'src': its first 'keep' lines (0: all), with 'insert' added after
 * every line that starts with 'after' (NULL: none). Returns the new file's path. */
static const char *derive(FIXTURE_DATA(km) * self, const char *src, const char *name, int keep,
			  const char *after, const char *insert)
{
	static char path[PATH_MAX];
	char line[8192];
	FILE *in = fopen(src, "re"), *out;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", self->dir, name);
	out = fopen(path, "we");
	if (!in || !out) {
		if (in)
			fclose(in);
		if (out)
			fclose(out);
		return NULL;
	}
	while (fgets(line, sizeof(line), in) && (!keep || n < keep)) {
		fputs(line, out);
		n++;
		if (after && !strncmp(line, after, strlen(after)))
			fputs(insert, out);
	}
	fclose(in);
	fclose(out);
	return path;
}

/* Strings closed, escapes complete, brackets nested and closed: a cheap JSON check. */
static bool json_balanced(const char *s)
{
	char stack[64];
	int depth = 0;

	for (; *s; s++) {
		if (*s == '"') {
			for (s++; *s && *s != '"'; s++)
				if (*s == '\\' && !*++s)
					return false;
			if (!*s)
				return false;
		} else if (*s == '{' || *s == '[') {
			if (depth == (int)sizeof(stack))
				return false;
			stack[depth++] = *s == '{' ? '}' : ']';
		} else if (*s == '}' || *s == ']') {
			if (!depth || stack[--depth] != *s)
				return false;
		} else if ((unsigned char)*s < 0x20 && *s != '\n' && *s != ' ') {
			return false;
		}
	}
	return depth == 0;
}

/* Every line of a KTAP document is a version, plan, result or diagnostic line,
 * the top-level results count 1..plan in order, and nothing has a CR. */
static void check_ktap(struct __test_metadata *_metadata, const char *ktap, int plan)
{
	char want[32];
	int next = 1;

	ASSERT_NE(NULL, ktap);
	ASSERT_EQ(0, strncmp(ktap, "TAP version 13\n", 15));
	snprintf(want, sizeof(want), "1..%d", plan);
	EXPECT_TRUE(has_line(ktap, want));
	EXPECT_EQ(NULL, strchr(ktap, '\r'));
	for (const char *p = ktap; *p; p = strchr(p, '\n') + 1) {
		unsigned int num;
		int len = (int)(strchr(p, '\n') - p);

		ASSERT_NE(NULL, strchr(p, '\n'));
		if (!strncmp(p, "TAP version 13", 14) || !strncmp(p, "1..", 3) || p[0] == '#')
			continue;
		if (sscanf(p, "ok %u ", &num) == 1 || sscanf(p, "not ok %u ", &num) == 1) {
			EXPECT_EQ(next, (int)num) TH_LOG("out of order: %.*s", len, p);
			next = (int)num + 1;
			continue;
		}
		EXPECT_TRUE(false) TH_LOG("not a KTAP line: %.*s", len, p);
	}
	EXPECT_EQ(plan + 1, next) TH_LOG("%d top-level results for a plan of %d", next - 1, plan);
}

/* A complete run: every test's row, skips with their reasons, and a clean KTAP
 * document extracted from a console log that starts with the kernel's boot log. */
TEST_F(km, complete_run)
{
	ASSERT_EQ(0, parse(self, LOG_61, "exit"));
	ASSERT_NE(NULL, self->out);
	EXPECT_TRUE(has_line(self->out, "meta\tkernel\t6.1.0-56-cloud-amd64"));
	EXPECT_TRUE(has_line(self->out, "meta\tboot\tok"));
	EXPECT_TRUE(has_line(self->out, "meta\tend\tdone"));
	EXPECT_TRUE(has_line(self->out, "meta\tplan\t9"));
	EXPECT_TRUE(has_line(self->out, "meta\tprograms\t9"));
	/* Version-gated contract tests SKIP with the release that introduced them. */
	EXPECT_TRUE(has_line(self->out, "test\tcontract\tuffd_modes_test\tmove_anon\tskip\t"
					"UFFDIO_MOVE needs Linux 6.8, running 6.1"));
	EXPECT_TRUE(has_line(self->out, "test\tcontract\tuffd_modes_test\tpoison_sigbus\tskip\t"
					"UFFDIO_POISON needs Linux 6.6, running 6.1"));
	EXPECT_TRUE(has_line(self->out,
			     "test\tcontract\tuffd_api_test\tdevice_path_handshake\tpass\t"));
	EXPECT_TRUE(has_line(
		self->out,
		"test\tcontract\tuffd_remove_test\trm.ops_eagain_while_remove_pending\tpass\t"));
	/* The kernel's own tests, from their "Testing ... done|skipped" lines. */
	EXPECT_TRUE(has_line(self->out, "test\tupstream\tuffd-unit-tests\tmove on anon\tskip\t"
					"feature missing"));
	EXPECT_TRUE(has_line(self->out, "test\tupstream\tuffd-unit-tests\tminor on shmem\tpass\t"));
	EXPECT_TRUE(has_line(self->out, "test\tkernel\tdmesg\t(program)\tpass\t"));
	/* Values the tests logged (TH_LOG), kept as notes of their test. */
	EXPECT_TRUE(has_line(self->out,
			     "note\tcontract\tuffd_api_test\tdesign_features_and_ioctls\t"
			     "range ioctls 0x1c"));
	EXPECT_EQ(40, count_prefix(self->out, "test\tcontract\t"));
	EXPECT_EQ(66, count_prefix(self->out, "test\tupstream\t"));
	EXPECT_EQ(9, count_prefix(self->out, "prog\t"));
	EXPECT_EQ(NULL, strstr(self->out, "\tfail\t"));
	check_ktap(_metadata, self->ktap, 9);
	EXPECT_EQ(NULL, strstr(self->ktap, "Linux version")) TH_LOG("boot log in the KTAP");
}

/* A program killed by its time limit: the test it was in fails with the reason, the
 * tests it never reached are absent, and the run itself still completed. */
TEST_F(km, program_timeout)
{
	ASSERT_EQ(0, parse(self, LOG_612, "exit"));
	ASSERT_NE(NULL, self->out);
	EXPECT_TRUE(has_line(self->out, "meta\tkernel\t6.12.117+deb12-cloud-amd64"));
	EXPECT_TRUE(has_line(self->out, "meta\tend\tdone"));
	EXPECT_TRUE(has_line(self->out,
			     "test\tupstream\tuffd-unit-tests\tevents-wp on shmem\tfail\t"
			     "timed out: TIMEOUT 200 seconds"));
	EXPECT_TRUE(
		has_line(self->out, "prog\tupstream\tuffd-unit-tests\tfail\tTIMEOUT 200 seconds"));
	EXPECT_EQ(NULL, strstr(self->out, "poison on anon"));
	EXPECT_TRUE(has_line(self->out, "test\tupstream\tuffd-unit-tests\tmove on anon\tpass\t"));
	check_ktap(_metadata, self->ktap, 9);
}

/* A kernel that never reached the runner is a boot failure, not test failures. */
TEST_F(km, boot_failure)
{
	ASSERT_EQ(0, parse(self, LOG_PANIC, "exit"));
	ASSERT_NE(NULL, self->out);
	EXPECT_TRUE(has_line(self->out, "meta\tboot\tfail"));
	EXPECT_NE(NULL, strstr(self->out, "meta\treason\tkernel panic: not syncing: VFS: Unable "
					  "to mount root fs"));
	EXPECT_EQ(0, count_prefix(self->out, "test\t"));
	EXPECT_EQ(NULL, self->ktap) TH_LOG("a KTAP file without a document");
}

/* The host's time limit cut the guest off inside a test: that test fails with the
 * reason, the run is incomplete, and the KTAP so far is kept. */
TEST_F(km, guest_cut_off)
{
	char *full = slurp(LOG_61), *run;
	const char *log;
	int lines = 0;

	/* Cut just after "#  RUN ... rm.punch_hole_no_event", before its result. */
	ASSERT_NE(NULL, full);
	run = strstr(full, "#  RUN           rm.punch_hole_no_event");
	ASSERT_NE(NULL, run);
	for (char *q = full; q <= run; q++)
		lines += *q == '\n';
	free(full);
	log = derive(self, LOG_61, "cut.log", lines + 1, NULL, NULL);
	ASSERT_NE(NULL, log);
	ASSERT_EQ(0, parse(self, log, "timeout"));
	EXPECT_TRUE(has_line(self->out, "meta\tboot\tok"));
	EXPECT_TRUE(has_line(self->out, "meta\tend\tincomplete"));
	EXPECT_TRUE(has_line(self->out, "test\tcontract\tuffd_remove_test\trm.punch_hole_no_event\t"
					"fail\tguest time limit reached"));
	EXPECT_TRUE(has_line(self->out, "test\tcontract\tuffd_remove_test\t"
					"rm.dontneed_event_data_survives\tpass\t"));
	EXPECT_NE(NULL, strstr(self->out, "meta\treason\tran 4 of 9 programs: time limit reached"));
	EXPECT_EQ(NULL, strstr(self->out, "test\tupstream\t"));
	ASSERT_NE(NULL, self->ktap);
	EXPECT_EQ(0, strncmp(self->ktap, "TAP version 13\n1..9\n", 20));
}

/* Kernel messages printed into the middle of the document (CRLF console lines) are
 * dropped from the KTAP and do not change any result. */
TEST_F(km, kernel_noise_dropped)
{
	static const char noise[] = "[   12.345678] random: crng init done\r\n"
				    "[   12.400000] clocksource: tsc: mark unstable\r\n";
	char *clean_out;
	const char *log;

	ASSERT_EQ(0, parse(self, LOG_61, "exit"));
	clean_out = self->out;
	self->out = NULL;
	log = derive(self, LOG_61, "noisy.log", 0, "# # PASSED", noise);
	ASSERT_NE(NULL, log);
	ASSERT_EQ(0, parse(self, log, "exit"));
	EXPECT_TRUE(has_line(self->out, "meta\tnoise\t14"))
	TH_LOG("%s", strstr(self->out, "meta\tnoise"));
	/* Same results, apart from the noise count. */
	*strstr(self->out, "meta\tnoise") = 0;
	*strstr(clean_out, "meta\tnoise") = 0;
	EXPECT_STREQ(clean_out, self->out);
	free(clean_out);
	check_ktap(_metadata, self->ktap, 9);
	EXPECT_EQ(NULL, strstr(self->ktap, "crng"));
}

/* The report: differences between 6.1 and 6.12 are marked in all three forms, a
 * failed test makes the exit status 1, and the JSON names every kernel. */
TEST_F(km, report_marks_differences)
{
	char r1[PATH_MAX + 8], r2[PATH_MAX + 8], r3[PATH_MAX + 8], mdv[PATH_MAX + 8],
		jsonv[PATH_MAX + 8], txt[PATH_MAX];
	char *argv[] = {"awk", "-f", REPORT_AWK, "-v", mdv, "-v", jsonv, r1, r2, r3, NULL};
	char *text, *md, *json;
	const char *logs[] = {LOG_61, LOG_612, LOG_PANIC};
	char *paths[] = {r1, r2, r3};

	for (int i = 0; i < 3; i++) {
		FILE *f;

		ASSERT_EQ(0, parse(self, logs[i], "exit"));
		snprintf(paths[i], PATH_MAX, "%s/r%d.tsv", self->dir, i);
		f = fopen(paths[i], "we");
		ASSERT_NE(NULL, f);
		fprintf(f, "%smeta\tlabel\tk%d\nmeta\tsource\tqemu tcg\nmeta\tduration\t%d\n",
			self->out, i, 10 * i);
		fclose(f);
	}
	snprintf(mdv, sizeof(mdv), "md=%s/m.md", self->dir);
	snprintf(jsonv, sizeof(jsonv), "json=%s/m.json", self->dir);
	snprintf(txt, sizeof(txt), "%s/m.txt", self->dir);
	EXPECT_EQ(1, run(argv, txt)) TH_LOG("a failure and a boot failure: exit status 1");
	text = slurp(txt);
	md = slurp(mdv + 3);
	json = slurp(jsonv + 5);
	ASSERT_NE(NULL, text);
	ASSERT_NE(NULL, md);
	ASSERT_NE(NULL, json);
	EXPECT_NE(NULL, strstr(text, "DID NOT BOOT: kernel panic"));
	EXPECT_NE(NULL, strstr(text, "* uffd_modes_test/move_anon"));
	EXPECT_NE(NULL, strstr(text, "  uffd_modes_test/minor_shmem_continue"));
	EXPECT_NE(NULL, strstr(text, "uffd_modes_test/move_anon: A=skip B=pass"));
	EXPECT_NE(NULL, strstr(text, "uffd-unit-tests/events-wp on shmem: A=pass B=fail"));
	EXPECT_NE(NULL, strstr(md, "| ≠ | **uffd_modes_test/move_anon** |"));
	/* Same status, different values logged: listed apart from the differences. */
	EXPECT_NE(NULL, strstr(text, "Same status, different logged values:\n"
				     "  uffd_api_test/design_features_and_ioctls:\n"
				     "    A: offered features 0x1fff, ioctls 0x8000000000000003; "
				     "range ioctls 0x1c\n"
				     "    B: offered features 0x1ffff, ioctls 0x8000000000000003; "
				     "range ioctls 0x13c\n"));
	EXPECT_NE(NULL, strstr(json, "\"logged_differs\": true"));
	EXPECT_NE(NULL, strstr(json, "\"test\": \"move_anon\", \"differs\": true"));
	EXPECT_NE(NULL, strstr(json, "\"test\": \"minor_shmem_continue\", \"differs\": false, "
				     "\"logged_differs\": false"));
	EXPECT_NE(NULL, strstr(json, "\"k2\": {\"status\": \"no boot\""));
	EXPECT_NE(NULL, strstr(json, "\"boot\": \"fail\""));
	EXPECT_TRUE(json_balanced(json)) TH_LOG("unbalanced JSON");
	free(text);
	free(md);
	free(json);
}

TEST_HARNESS_MAIN
