// SPDX-License-Identifier: MIT
/*
 * ctl_reply - fuzz target for the vmmswap CLI's side of the control socket: the
 * bytes whatever listens on the socket path answers (a VMM, or anything else), through
 * minivm_ctl_recv(), the magic check of minivm_ctl_call(), minivm_ctl_parse_reply()
 * (tools/vmm/control.c) and what tools/cli/vmmswap.c does with the parts: print_swap()
 * with the errno it takes from the JSON, print_other(), and the status JSON that
 * wait_state() parses. Their output goes to /dev/null.
 *
 * Input: byte 0 picks the verb the reply answers (and bit 7 --json); the rest is the
 * reply datagram.
 *
 * Asserts: minivm_ctl_recv() takes a reply whole into a buffer of exactly its size
 * plus the NUL and refuses it with -EMSGSIZE into one byte less; nothing reads
 * outside the reply buffer; a reply that parses is split into three parts inside
 * the buffer, the result word and human part with no newline, the JSON starting
 * with '{'; the CLI's exit status is 0, 1 or 2.
 */
#include <sys/socket.h>

#define main vmmswap_main
#include "cli/vmmswap.c"
#undef main

#include "fuzz/fuzz.h"

static struct {
	bool ready;
	int vmm, cli; /* the two ends of one control connection */
	struct answer *a;
	FILE *null;
} fz;

static void fz_setup(void)
{
	int sv[2];

	FUZZ_CHECK(!socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), "socketpair: %s",
		   strerror(errno));
	fz.vmm = sv[0];
	fz.cli = sv[1];
	fz.a = malloc(sizeof(*fz.a));
	fz.null = fopen("/dev/null", "we");
	FUZZ_CHECK(fz.a && fz.null, "setup: %s", strerror(errno));
	fz.ready = true;
}

static void send_reply(const uint8_t *data, size_t size)
{
	int ret = minivm_ctl_send(fz.vmm, (const char *)data, size);

	FUZZ_CHECK(!ret, "send: %d", ret);
}

/* minivm_ctl_recv() into heap buffers of exactly the reply's size, and one short. */
static void recv_sizes(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	size_t len;
	int ret;

	FUZZ_CHECK(buf, "out of memory");
	send_reply(data, size);
	ret = minivm_ctl_recv(fz.cli, buf, size + 1, &len, 0);
	if (size < 1) {
		FUZZ_CHECK(ret == -EINVAL, "1-byte buffer: %d", ret);
		/* The empty datagram is still queued: read it as the CLI would. */
		ret = minivm_ctl_recv(fz.cli, fz.a->buf, sizeof(fz.a->buf), &len, 0);
		FUZZ_CHECK(ret == -ECONNRESET, "empty reply: %d", ret);
	} else {
		FUZZ_CHECK(!ret && len == size && !memcmp(buf, data, size) && !buf[size],
			   "exact buffer: %d", ret);
	}
	if (size >= 2) {
		send_reply(data, size);
		ret = minivm_ctl_recv(fz.cli, buf, size, &len, 0);
		FUZZ_CHECK(ret == -EMSGSIZE, "short buffer: %d", ret);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cli c = { .vcpu = -1, .timeout_s = 60, .socket = "fuzz.sock" };
	struct answer *a;
	const struct verb *v;
	struct vms_swap_status st;
	FILE *out, *err;
	size_t len;
	int ret;

	if (!fz.ready)
		fz_setup();
	a = fz.a;
	if (size < 1 || size - 1 > MINIVM_CTL_MSG_MAX - 1)
		return 0;
	v = &verbs[(data[0] & 0x7f) % NR_VERBS];
	c.json = data[0] & 0x80;
	data++;
	size--;
	recv_sizes(data, size);

	/* minivm_ctl_call(): receive into the CLI's buffer, check the magic. */
	if (!size)
		return 0;
	send_reply(data, size);
	ret = minivm_ctl_recv(fz.cli, a->buf, sizeof(a->buf), &len, 0);
	FUZZ_CHECK(!ret && len == size, "receive: %d", ret);
	if (strncmp(a->buf, MINIVM_CTL_MAGIC " ", strlen(MINIVM_CTL_MAGIC) + 1))
		return 0;
	/* call(): split it. */
	if (minivm_ctl_parse_reply(a->buf, &a->result, &a->human, &a->json))
		return 0;
	FUZZ_CHECK(a->result > a->buf && a->human > a->result && a->json > a->human &&
			   a->json < a->buf + len && !strchr(a->result, '\n') &&
			   !strchr(a->human, '\n') && *a->json == '{',
		   "reply split wrongly");

	/* main() and wait_state(), stdout and stderr to /dev/null (glibc: assignable). */
	out = stdout;
	err = stderr;
	stdout = stderr = fz.null;
	if (!v->wire)
		ret = vms_swap_status_parse_json(a->human, &st) ? EXIT_ERROR : 0;
	else if (!strcmp(v->w1, "swap"))
		ret = print_swap(&c, v, a);
	else
		ret = print_other(&c, a);
	stdout = out;
	stderr = err;
	FUZZ_CHECK(ret == 0 || ret == EXIT_ERROR || ret == EXIT_MISMATCH, "exit status %d", ret);
	return 0;
}
