// SPDX-License-Identifier: GPL-2.0-only
/*
 * caps_test - vms_caps (tools/caps/vms_caps.c), the capability report, names every bit
 * the kernel offers, and shows the bits it has no name for instead of dropping
 * them: in the features and ioctls of the handshake and in the ioctls of each
 * registration mode, as text and as JSON. A newer kernel is played through the
 * uffd layer's answer hooks (vmmswap/test_hooks.h), which only work inside the
 * process, so the tool's own source is compiled into this test with its main()
 * renamed (vms_caps.c is MIT, compatible with this file's GPL-2.0) and run here
 * with its stdout captured.
 */
#define main vms_caps_main
#include "../tools/caps/vms_caps.c"
#undef main

#include <sys/mman.h>

#include "kselftest_harness.h"
#include <vmmswap/test_hooks.h>

#define UNKNOWN_FEATURE	    (1ULL << 47)
#define UNKNOWN_API_IOCTL   (1ULL << 40)
#define UNKNOWN_RANGE_IOCTL (1ULL << 41)
#define OUT_MAX		    16384

static void add_api(void *arg, struct uffdio_api *api)
{
	(void)arg;
	api->features |= UNKNOWN_FEATURE;
	api->ioctls |= UNKNOWN_API_IOCTL;
}

static void add_reg(void *arg, struct uffdio_register *reg)
{
	(void)arg;
	reg->ioctls |= UNKNOWN_RANGE_IOCTL;
}

static const struct vms_uffd_answer_hooks newer_kernel = { .api = add_api, .reg = add_reg };

/* Run vms_caps with one argument (or none) and capture what it prints. */
static int run_caps(const char *arg, char *out, size_t len)
{
	char prog[] = "vms_caps", a[16];
	char *argv[] = { prog, a, NULL };
	int fd, saved, status;
	ssize_t n;

	snprintf(a, sizeof(a), "%s", arg ? arg : "");
	fd = memfd_create("caps_test", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	if (saved < 0 || dup2(fd, STDOUT_FILENO) < 0) {
		close(fd);
		return -errno;
	}
	status = vms_caps_main(arg ? 2 : 1, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	n = pread(fd, out, len - 1, 0);
	close(fd);
	if (n < 0)
		return -errno;
	out[n] = '\0';
	return status;
}

/* The line of text that starts with (after blanks) prefix, or NULL. */
static const char *line_of(const char *text, const char *prefix, char *buf, size_t len)
{
	const char *p = text;

	while (p && *p) {
		const char *s = p + strspn(p, " "), *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (!strncmp(s, prefix, strlen(prefix))) {
			snprintf(buf, len, "%.*s", (int)n, p);
			return buf;
		}
		p = e ? e + 1 : NULL;
	}
	return NULL;
}

FIXTURE(caps)
{
	char out[OUT_MAX];
	char line[512];
};

FIXTURE_SETUP(caps)
{
	int ret = vms_uffd_probe(0, NULL, NULL);

	if (ret)
		ret = vms_uffd_probe(VMS_UFFD_USER_MODE_ONLY, NULL, NULL);
	if (ret)
		SKIP(return, "no userfaultfd can be created here: %s", strerror(-ret));
}

FIXTURE_TEARDOWN(caps)
{
	vms_uffd_set_answer_hooks(NULL);
}

/* Against the real kernel: the lines the tests below read, with the names in them. */
TEST_F(caps, text_report_names_what_the_kernel_offers)
{
	ASSERT_EQ(0, run_caps(NULL, self->out, sizeof(self->out)));
	ASSERT_NE(NULL, line_of(self->out, "features offered", self->line, sizeof(self->line)))
		TH_LOG("%s", self->out);
	EXPECT_NE(NULL, strstr(self->line, "UFFD_FEATURE_EVENT_REMOVE")) TH_LOG("%s", self->line);
	ASSERT_NE(NULL, line_of(self->out, "ioctls on the uffd", self->line, sizeof(self->line)));
	EXPECT_NE(NULL, strstr(self->line, "UFFDIO_REGISTER")) TH_LOG("%s", self->line);
	ASSERT_NE(NULL, line_of(self->out, "MISSING", self->line, sizeof(self->line)));
	EXPECT_NE(NULL, strstr(self->line, "UFFDIO_COPY")) TH_LOG("%s", self->line);
}

/* A newer kernel: the unknown bits are shown, next to the named ones. */
TEST_F(caps, text_report_shows_unknown_bits)
{
	char want[64];

	vms_uffd_set_answer_hooks(&newer_kernel);
	ASSERT_EQ(0, run_caps(NULL, self->out, sizeof(self->out)));
	vms_uffd_set_answer_hooks(NULL);

	ASSERT_NE(NULL, line_of(self->out, "features offered", self->line, sizeof(self->line)))
		TH_LOG("%s", self->out);
	snprintf(want, sizeof(want), "unknown:0x%llx", (unsigned long long)UNKNOWN_FEATURE);
	EXPECT_NE(NULL, strstr(self->line, want)) TH_LOG("%s", self->line);
	EXPECT_NE(NULL, strstr(self->line, "UFFD_FEATURE_EVENT_REMOVE")) TH_LOG("%s", self->line);

	ASSERT_NE(NULL, line_of(self->out, "ioctls on the uffd", self->line, sizeof(self->line)));
	snprintf(want, sizeof(want), "unknown:0x%llx", (unsigned long long)UNKNOWN_API_IOCTL);
	EXPECT_NE(NULL, strstr(self->line, want)) TH_LOG("%s", self->line);
	EXPECT_NE(NULL, strstr(self->line, "UFFDIO_REGISTER")) TH_LOG("%s", self->line);

	ASSERT_NE(NULL, line_of(self->out, "MISSING", self->line, sizeof(self->line)));
	snprintf(want, sizeof(want), "unknown:0x%llx", (unsigned long long)UNKNOWN_RANGE_IOCTL);
	EXPECT_NE(NULL, strstr(self->line, want)) TH_LOG("%s", self->line);
	EXPECT_NE(NULL, strstr(self->line, "UFFDIO_COPY")) TH_LOG("%s", self->line);
}

TEST_F(caps, json_report_shows_unknown_bits)
{
	char want[128];

	vms_uffd_set_answer_hooks(&newer_kernel);
	ASSERT_EQ(0, run_caps("--json", self->out, sizeof(self->out)));
	vms_uffd_set_answer_hooks(NULL);

	snprintf(want, sizeof(want), "\"unknown\": \"0x%llx\"", (unsigned long long)UNKNOWN_FEATURE);
	EXPECT_NE(NULL, strstr(self->out, want)) TH_LOG("%s", self->out);
	snprintf(want, sizeof(want), "\"unknown\": \"0x%llx\"",
		 (unsigned long long)UNKNOWN_API_IOCTL);
	EXPECT_NE(NULL, strstr(self->out, want)) TH_LOG("%s", self->out);
	snprintf(want, sizeof(want), "\"MISSING\": {\"error\": null, \"ioctls\": {\"raw\": \"0x");
	ASSERT_NE(NULL, strstr(self->out, want)) TH_LOG("%s", self->out);
	snprintf(want, sizeof(want), "\"unknown\": \"0x%llx\"",
		 (unsigned long long)UNKNOWN_RANGE_IOCTL);
	EXPECT_NE(NULL, strstr(strstr(self->out, "\"MISSING\""), want)) TH_LOG("%s", self->out);
}

TEST_HARNESS_MAIN
