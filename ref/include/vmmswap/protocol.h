/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/protocol.h - the messages between the controller (VMM and device
 * processes) and the monitor, and how fds travel with them.
 *
 * Transport: one SOCK_SEQPACKET socketpair, the "command socket". The VMM and every
 * device process hold dups of one end (SEQPACKET keeps each message atomic, so many
 * senders can share it); the monitor holds the other end and only receives on it.
 * Every command carries, by SCM_RIGHTS, the sending end of a fresh private
 * SEQPACKET socketpair (the "reply socket"); the monitor answers there, exactly once,
 * and closes it. So replies never mix between callers, and a dead monitor shows up
 * as EOF on the reply socket.
 *
 * Wire format: fixed-size little structs in host byte order (both ends are the same
 * binary on the same host); a magic and a version in front. Fds per command:
 *   every command: fds[0] = reply socket;
 *   VMS_CMD_PROCESS_FORKED: fds[1] = the device's uffd, fds[2] = a pidfd of the
 *   device process (the monitor watches it to drop the uffd when the process dies).
 *
 * Validation on receipt (vms_proto_recv_cmd): length, magic, version, command,
 * flags valid for that command, reserved fields zero, exact fd count, no truncated
 * control data, and the kind of each fd (socket, userfaultfd, pidfd). A message that
 * fails gets an error reply (if it brought a usable reply socket) and changes nothing.
 */
#ifndef VMMSWAP_PROTOCOL_H
#define VMMSWAP_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include <vmmswap/status.h>
#include <vmmswap/types.h>

#define VMS_PROTO_MAGIC	  0x57534d56u /* "VMSW" */
#define VMS_PROTO_VERSION 1
#define VMS_PROTO_MAX_FDS 3

enum vms_cmd {
	VMS_CMD_ENABLE = 1,
	VMS_CMD_TRIM = 2,
	VMS_CMD_SWAP_OUT = 3,
	VMS_CMD_DISABLE = 4,
	VMS_CMD_STATUS = 5,
	VMS_CMD_EXIT = 6,
	VMS_CMD_PROCESS_FORKED = 7,
	VMS_CMD_INFO = 8, /* reply carries struct vms_monitor_info */
};
#define VMS_CMD_MAX 9

/* vms_msg_cmd.flags */
#define VMS_CMD_F_SLOW_FILE_CLEANUP 0x1u /* VMS_CMD_DISABLE only */

struct vms_msg_cmd {
	uint32_t magic;
	uint16_t version;
	uint16_t cmd; /* enum vms_cmd */
	uint32_t flags;
	uint32_t reserved; /* 0 */
};

struct vms_msg_reply {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved; /* 0 */
	struct vms_reply reply;
	struct vms_swap_status status; /* VMS_CMD_STATUS; zeros otherwise */
	struct vms_monitor_info info;  /* VMS_CMD_INFO; zeros otherwise */
};

/* "Enable", "Trim", ..., "ProcessForked", "Info"; NULL for an unknown command. */
const char *vms_cmd_name(int cmd);

/* Number of fds a command must carry (0 for an unknown command). */
size_t vms_cmd_nfds(int cmd);

/*
 * Send a command with its fds, waiting at most timeout_ms (< 0: forever) for room.
 * -EPIPE / -ECONNREFUSED / -ECONNRESET: the monitor's end is closed.
 */
int vms_proto_send_cmd(int sock, int cmd, uint32_t flags, const int *fds, size_t nfds,
		       int timeout_ms);
/* Send arbitrary bytes and fds (tests: malformed messages). */
int vms_proto_send_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds);

/*
 * Receive one command without blocking. Returns:
 *   0: a valid command in *msg, its fds in fds[0 .. *nfds) (O_CLOEXEC, owned by
 *      the caller);
 *   -EAGAIN: nothing queued; -EPIPE: every sending end is closed (an empty
 *   message while senders remain is -EBADMSG);
 *   another negative errno: a malformed message (-EBADMSG size/magic/truncation,
 *      -EPROTONOSUPPORT version, -EOPNOTSUPP unknown command, -EINVAL flags, fd
 *      count or fd kind); *msg holds what was read, fds the fds that came (caller
 *      owns and closes them) and *reply_fd, if >= 0, is fds[0] when it is a socket
 *      usable for the error reply.
 */
int vms_proto_recv_cmd(int sock, struct vms_msg_cmd *msg, int *fds, size_t *nfds, int *reply_fd);

/* Send the reply (never blocks; -EAGAIN if the reply socket is full). */
int vms_proto_send_reply(int sock, const struct vms_reply *reply,
			 const struct vms_swap_status *status);

/* The same with the reply to VMS_CMD_INFO. */
int vms_proto_send_info_reply(int sock, const struct vms_reply *reply,
			      const struct vms_monitor_info *info);

/*
 * Wait at most timeout_ms (< 0: forever) for the reply and validate it.
 * -EPIPE: the monitor closed the reply socket without answering (it died);
 * -ETIMEDOUT; -EBADMSG: malformed.
 */
int vms_proto_recv_reply(int sock, int timeout_ms, struct vms_reply *reply,
			 struct vms_swap_status *status);
/* The same, also copying out the info part (info may be NULL). */
int vms_proto_recv_reply_info(int sock, int timeout_ms, struct vms_reply *reply,
			      struct vms_swap_status *status, struct vms_monitor_info *info);

/* What kind of file fd is (from /proc/self/fd): */
enum vms_fd_kind {
	VMS_FD_OTHER = 0,
	VMS_FD_SOCKET,
	VMS_FD_UFFD,
	VMS_FD_PIDFD,
};
enum vms_fd_kind vms_proto_fd_kind(int fd);

#endif /* VMMSWAP_PROTOCOL_H */
