// SPDX-License-Identifier: GPL-2.0-only
/*
 * cli_test - the vmmswap CLI's argument handling and its failure reports, without a
 * VMM: usage errors exit 64 before anything is sent; a missing, stale or foreign
 * socket exits 1 with a message that says which; nothing is ever printed on stdout
 * in those cases (scripts parse stdout).
 */
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "kselftest_harness.h"
#include "vmm_run.h"

#define EXIT_USAGE 64

FIXTURE(cli)
{
	char dir[64];
	char sock[128];
};

FIXTURE_SETUP(cli)
{
	char path[PATH_MAX];

	if (vmm_tool_path("vmmswap", path, sizeof(path)))
		SKIP(return, "vmmswap is not built next to this test (%.200s)", path);
	strcpy(self->dir, "/tmp/cli_test.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->sock, sizeof(self->sock), "%s/sock", self->dir);
}

FIXTURE_TEARDOWN(cli)
{
	unlink(self->sock);
	rmdir(self->dir);
}

/* The help text documents every verb family and exits 0 on stdout. */
TEST_F(cli, help_lists_every_verb)
{
	static const char *const words[] = {
		"swap enable", "swap trim",    "swap out", "swap disable", "--slow-file-cleanup",
		"swap status", "wait",	       "fill",	   "verify",	   "touch",
		"writer",      "inflate",      "deflate",  "dma fill",	   "dma copy",
		"device exit", "device crash", "stop",	   "--wait-state", "--json",
		"--timeout",
	};
	struct vmm_run r;
	unsigned int i;

	ASSERT_EQ(0, vmm_cli(&r, "--help", NULL));
	EXPECT_EQ(0, r.status);
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		EXPECT_NE(NULL, strstr(r.out, words[i])) TH_LOG("help lacks '%s'", words[i]);
}

/* Every malformed command line: exit 64, a message on stderr, nothing on stdout. */
TEST_F(cli, usage_errors_exit_64_without_contacting_the_vmm)
{
	const char *s = self->sock;
	const char *const cases[][8] = {
		{NULL},
		{"swap", NULL},
		{"swap", s, NULL},
		{"swap", "bogus", s, NULL},
		{"frobnicate", s, NULL},
		{"fill", "1", "2", s, NULL},
		{"fill", "x", "1", "2", s, NULL},
		{"fill", "1", "2", "3", "4", s, NULL},
		{"fill", "--", "-1", "1", "2", s, NULL},
		{"fill", "--", " -1", "1", "2", s, NULL}, /* strtoull skips the space */
		{"fill", " 1", "1", "2", s, NULL},
		{"ping", "--timeout", "5e20", s, NULL},
		{"ping", "--timeout", "nan", s, NULL},
		{"verify", "0x10", "1", "zz", s, NULL},
		{"swap", "enable", "--slow-file-cleanup", s, NULL},
		{"swap", "status", "--vcpu", "1", s, NULL},
		{"fill", "0", "1", "2", "--vcpu", "x", s},
		{"wait", "Sleeping", s, NULL},
		{"wait", s, NULL},
		{"swap", "out", "--wait-state", "Nowhere", s, NULL},
		{"ping", "--timeout", "-3", s, NULL},
		{"ping", "--no-such-option", s, NULL},
		{"dma", "fill", "0", "1", "2", s, NULL},
		{"device", "exit", s, NULL},
		{"stop", "1", "2", s, NULL},
	};
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmm_run r;
		const char *const *c = cases[i];

		ASSERT_EQ(0, vmm_cli(&r, c[0], c[1], c[2], c[3], c[4], c[5], c[6], NULL));
		EXPECT_EQ(EXIT_USAGE, r.status)
		TH_LOG("case %u (%s %s): exit %d, stderr %s", i, c[0] ?: "", c[1] ?: "", r.status,
		       r.err);
		EXPECT_STREQ("", r.out) TH_LOG("case %u printed on stdout", i);
		EXPECT_NE(NULL, strstr(r.err, "vmmswap: ")) TH_LOG("case %u: no message", i);
	}
}

/*
 * A unix socket of 'type' bound at path and, if 'listening', listening (backlog 1);
 * -1 with errno on failure.
 */
static int bound_socket(const char *path, int type, bool listening)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, type, 0), err;

	if (fd < 0)
		return -1;
	strcpy(sa.sun_path, path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || (listening && listen(fd, 1))) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* No socket file: exit 1 and say so; crosvm-style verbs behave the same. */
TEST_F(cli, missing_socket_is_reported)
{
	struct vmm_run r;

	ASSERT_EQ(0, vmm_cli(&r, "swap", "status", self->sock, NULL));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "no such socket"));
	EXPECT_STREQ("", r.out);
	ASSERT_EQ(0, vmm_cli(&r, "fill", "0", "1", "2", self->sock, NULL));
	EXPECT_EQ(1, r.status);
}

/* A socket file nobody listens on (the VMM died): exit 1, "nobody is listening". */
TEST_F(cli, stale_socket_is_reported)
{
	struct vmm_run r;
	int fd = bound_socket(self->sock, SOCK_SEQPACKET, false);

	ASSERT_LE(0, fd) TH_LOG("socket at %s: %s", self->sock, strerror(errno));
	close(fd);
	ASSERT_EQ(0, vmm_cli(&r, "swap", "enable", self->sock, NULL));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "nobody is listening"));
}

/* A regular file or a stream socket is not a control socket. */
TEST_F(cli, foreign_files_are_refused)
{
	struct vmm_run r;
	int fd;

	fd = open(self->sock, O_CREAT | O_WRONLY, 0600);
	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, vmm_cli(&r, "swap", "status", self->sock, NULL));
	EXPECT_EQ(1, r.status);
	EXPECT_STREQ("", r.out);
	unlink(self->sock);

	fd = bound_socket(self->sock, SOCK_STREAM, true);
	ASSERT_LE(0, fd) TH_LOG("socket at %s: %s", self->sock, strerror(errno));
	ASSERT_EQ(0, vmm_cli(&r, "swap", "status", self->sock, NULL));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "not a minivmm control socket"));
	close(fd);
}

/* A SEQPACKET server that answers something else: the CLI must not trust it. */
static void *garbage_server(void *arg)
{
	int lfd = *(int *)arg, fd;
	char buf[256];

	fd = accept(lfd, NULL, NULL);
	if (fd >= 0) {
		if (recv(fd, buf, sizeof(buf), 0) > 0)
			send(fd, "HTTP/1.0 200 OK\n\n{}", 19, MSG_NOSIGNAL);
		close(fd);
	}
	return NULL;
}

TEST_F(cli, foreign_protocol_is_refused)
{
	struct vmm_run r;
	pthread_t t;
	int fd = bound_socket(self->sock, SOCK_SEQPACKET, true);

	ASSERT_LE(0, fd) TH_LOG("socket at %s: %s", self->sock, strerror(errno));
	ASSERT_EQ(0, pthread_create(&t, NULL, garbage_server, &fd));
	ASSERT_EQ(0, vmm_cli(&r, "swap", "status", self->sock, NULL));
	pthread_join(t, NULL);
	close(fd);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "not a minivmm control socket"));
	EXPECT_STREQ("", r.out);
}

/* A server that never answers: the CLI gives up after --timeout, exit 1. */
TEST_F(cli, silent_server_times_out)
{
	struct vmm_run r;
	/* The backlog accepts; nobody answers. */
	int fd = bound_socket(self->sock, SOCK_SEQPACKET, true);

	ASSERT_LE(0, fd) TH_LOG("socket at %s: %s", self->sock, strerror(errno));
	ASSERT_EQ(0, vmm_cli(&r, "--timeout", "0.3", "ping", self->sock, NULL));
	close(fd);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "no reply within"));
}

TEST_HARNESS_MAIN
