// SPDX-License-Identifier: MIT
/*
 * control.c - the control socket's transport: listen with safe permissions, accept
 * with a peer-uid check, one-message request/reply with timeouts.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmm/control.h"

static int make_addr(const char *path, struct sockaddr_un *sa)
{
	size_t len = strlen(path);

	if (!len)
		return -EINVAL;
	if (len >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len + 1);
	return 0;
}

/* Connect a SEQPACKET socket to path; the fd, or a negative errno. */
static int connect_path(const char *path)
{
	struct sockaddr_un sa;
	int fd, ret;

	ret = make_addr(path, &sa);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/* Is there a live listener at path? Removes the file if it is a stale socket. */
static int check_existing(const char *path)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = connect_path(path);
	if (fd >= 0) {
		close(fd);
		return -EADDRINUSE;
	}
	if (fd != -ECONNREFUSED)
		return -EADDRINUSE; /* some other kind of socket: not ours to remove */
	return unlink(path) < 0 ? -errno : 0;
}

int minivm_ctl_listen(const char *path, int *fd_out)
{
	struct sockaddr_un sa;
	mode_t old_mask;
	int fd, ret;

	ret = make_addr(path, &sa);
	if (ret)
		return ret;
	ret = check_existing(path);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* The umask makes the file 0600 from the start: no window with wider access. */
	old_mask = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_mask);
	if (ret < 0 || chmod(path, 0600) < 0 || listen(fd, 16) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*fd_out = fd;
	return 0;
}

int minivm_ctl_accept(int lfd, int *fd_out, unsigned int *uid_out)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd, ret;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*uid_out = cred.uid;
	if (cred.uid != geteuid() && cred.uid != 0) {
		close(fd);
		return -EPERM;
	}
	*fd_out = fd;
	return 0;
}

int minivm_ctl_send(int fd, const char *msg, size_t len)
{
	ssize_t n;

	if (len > MINIVM_CTL_MSG_MAX)
		return -EMSGSIZE;
	do {
		n = send(fd, msg, len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int minivm_ctl_recv(int fd, char *buf, size_t size, size_t *len_out, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int ret;

	if (size < 2)
		return -EINVAL;
	for (;;) {
		int wait = timeout_ms < 0 ? -1 : (int)(deadline - now_ms());

		if (timeout_ms >= 0 && wait < 0)
			wait = 0;
		ret = poll(&pfd, 1, wait);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		if (ret == 0)
			return -ETIMEDOUT;
		n = recv(fd, buf, size - 1, MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET; /* the peer closed without answering */
		if ((size_t)n > size - 1)
			return -EMSGSIZE;
		buf[n] = '\0';
		*len_out = n;
		return 0;
	}
}

int minivm_ctl_call(const char *path, const char *request, char *buf, size_t size, int timeout_ms)
{
	size_t len;
	int fd, ret;

	fd = connect_path(path);
	if (fd < 0)
		return fd;
	ret = minivm_ctl_send(fd, request, strlen(request));
	if (!ret)
		ret = minivm_ctl_recv(fd, buf, size, &len, timeout_ms);
	close(fd);
	if (ret)
		return ret;
	if (strncmp(buf, MINIVM_CTL_MAGIC " ", strlen(MINIVM_CTL_MAGIC) + 1))
		return -EPROTO;
	return 0;
}

int minivm_ctl_parse_reply(char *reply, const char **result, const char **human, const char **json)
{
	char *nl1, *nl2;

	if (strncmp(reply, MINIVM_CTL_MAGIC " ", strlen(MINIVM_CTL_MAGIC) + 1))
		return -EPROTO;
	nl1 = strchr(reply, '\n');
	if (!nl1)
		return -EPROTO;
	nl2 = strchr(nl1 + 1, '\n');
	if (!nl2 || nl2[1] != '{')
		return -EPROTO;
	*nl1 = '\0';
	*nl2 = '\0';
	*result = reply + strlen(MINIVM_CTL_MAGIC) + 1;
	*human = nl1 + 1;
	*json = nl2 + 1;
	return 0;
}
