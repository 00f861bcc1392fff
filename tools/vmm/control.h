/* SPDX-License-Identifier: MIT */
/*
 * vmm/control.h - minivmm's control socket: transport and framing, shared by the VMM
 * (server) and the vmmswap CLI (client).
 *
 * Contract:
 *  - A Unix SOCK_SEQPACKET socket at a path; one connection carries one request
 *    message and one reply message, then closes. SEQPACKET keeps each message whole.
 *  - The socket file has mode 0600 and the server accepts only peers with its own uid
 *    (or root), checked with SO_PEERCRED on every connection.
 *  - Request text: "vmmswap/1 VERB [key=value ...]" (single spaces, no newline).
 *  - Reply text: "vmmswap/1 RESULT\nHUMAN\nJSON" where RESULT is ok, ignored, error or
 *    mismatch, HUMAN is one line for people (may be empty) and JSON is one JSON object
 *    that always has "result". Anything else is not our protocol.
 *  - Functions return 0 or a negative errno and print nothing.
 */
#ifndef MINIVM_CONTROL_H
#define MINIVM_CONTROL_H

#include <stddef.h>

#define MINIVM_CTL_MAGIC   "vmmswap/1"
#define MINIVM_CTL_MSG_MAX 65536

/*
 * Create the listening socket at path (mode 0600). A stale socket file nobody listens
 * on is replaced; a live one gives -EADDRINUSE, any other file -EEXIST.
 */
int minivm_ctl_listen(const char *path, int *fd_out);

/*
 * Accept one connection and check the peer's uid: -EPERM (connection closed) for a
 * foreign peer. *uid_out gets the peer uid in either case.
 */
int minivm_ctl_accept(int lfd, int *fd_out, unsigned int *uid_out);

/* One message on a connected socket; recv waits at most timeout_ms (<0: forever). */
int minivm_ctl_send(int fd, const char *msg, size_t len);
int minivm_ctl_recv(int fd, char *buf, size_t size, size_t *len_out, int timeout_ms);

/*
 * Client: connect to path, send request, wait for the reply (at most timeout_ms; <0
 * forever) into buf (NUL terminated). -ENOENT no such socket, -ECONNREFUSED nobody
 * listening (stale socket), -ENOTSOCK / -EPROTOTYPE not a SEQPACKET socket,
 * -ETIMEDOUT no reply, -EPROTO a reply that is not ours.
 */
int minivm_ctl_call(const char *path, const char *request, char *buf, size_t size, int timeout_ms);

/* Split a reply in place into its result word, human line and JSON. 0 or -EPROTO. */
int minivm_ctl_parse_reply(char *reply, const char **result, const char **human, const char **json);

#endif /* MINIVM_CONTROL_H */
