/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vmm_run.h - helpers for the tests that run the built minivmm and vmmswap
 * binaries (cli_test, minivmm_test): find them next to the test binary, run one
 * with its stdout and stderr captured, start and stop a VMM.
 *
 * Header-only (static functions) because selftests/lib/ belongs to the library
 * tests; the binaries are located from /proc/self/exe, so every build variant tests
 * its own tools: build/<variant>/selftests/X -> build/<variant>/tools/.
 */
#ifndef VMM_RUN_H
#define VMM_RUN_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VMM_RUN_OUT_MAX 8192

/* build/<variant>/tools/NAME for the variant this test was built in. */
static inline int vmm_tool_path(const char *name, char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return -errno;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	if ((size_t)snprintf(buf, len, "%s/../tools/%s", exe, name) >= len)
		return -ENAMETOOLONG;
	return access(buf, X_OK) ? -errno : 0;
}

struct vmm_run {
	int status; /* exit status, or 128 + signal */
	char out[VMM_RUN_OUT_MAX];
	char err[VMM_RUN_OUT_MAX];
};

static inline void vmm_drain(int fd, char *buf, size_t *len)
{
	ssize_t n = read(fd, buf + *len, VMM_RUN_OUT_MAX - 1 - *len);

	if (n > 0)
		*len += n;
	buf[*len] = '\0';
}

/* Run argv (argv[0] a path) with a bound of timeout_ms; capture stdout and stderr. */
static inline int vmm_run_argv(char *const argv[], int timeout_ms, struct vmm_run *r)
{
	int out[2], err[2], status;
	size_t olen = 0, elen = 0;
	struct pollfd pfd[2];
	pid_t pid;
	int open_fds = 2;

	memset(r, 0, sizeof(*r));
	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	pfd[0] = (struct pollfd){.fd = out[0], .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = err[0], .events = POLLIN};
	while (open_fds) {
		int ret = poll(pfd, 2, timeout_ms);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		if (pfd[0].revents) {
			size_t before = olen;

			vmm_drain(out[0], r->out, &olen);
			if (olen == before) {
				pfd[0].fd = -1;
				open_fds--;
			}
		}
		if (pfd[1].revents) {
			size_t before = elen;

			vmm_drain(err[0], r->err, &elen);
			if (elen == before) {
				pfd[1].fd = -1;
				open_fds--;
			}
		}
	}
	close(out[0]);
	close(err[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return 0;
}

/* Run the vmmswap CLI with the given arguments (NULL terminated). */
static inline int vmm_cli(struct vmm_run *r, ...)
{
	char path[PATH_MAX];
	char *argv[32];
	va_list ap;
	int n = 1, ret;

	ret = vmm_tool_path("vmmswap", path, sizeof(path));
	if (ret)
		return ret;
	argv[0] = path;
	va_start(ap, r);
	while (n < 31 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	return vmm_run_argv(argv, 60000, r);
}

#endif /* VMM_RUN_H */
