// SPDX-License-Identifier: MIT
/*
 * ctl_request - fuzz target for minivmm's control requests: the bytes a client of
 * the control socket (the vmmswap CLI, or any process of the VMM's uid) sends,
 * through the transport (tools/vmm/control.c: minivm_ctl_send, minivm_ctl_recv), the
 * framing check, the request parser and every verb's argument handling
 * (tools/vmm/minivmm.c: serve_request -> dispatch -> req_parse, req_u64, do_swap,
 * do_guest, do_dma, ...), and the reply back through the CLI's half
 * (minivm_ctl_recv, minivm_ctl_parse_reply).
 *
 * The VMM here has no guest RAM mapping, no vCPU threads and no swap monitor, and its
 * one device process has exited; it claims one vCPU and 2^20 pages. So each verb
 * parses and checks all its arguments, then stops with an error at its first use of
 * a missing part.
 *
 * Input: the request datagram.
 *
 * Asserts: the request arrives whole; whatever it is, the reply fits the VMM's
 * buffer and one control message, and is our protocol: "vmmswap/1 RESULT\nHUMAN\n
 * JSON" with RESULT one of ok, ignored, error, mismatch, which the CLI's
 * minivm_ctl_parse_reply() splits back into exactly the VMM's three parts; HUMAN is
 * one line, JSON one valid JSON object that starts with {"result":"RESULT" - no
 * matter what the request makes the VMM echo.
 */
#include <sys/eventfd.h>
#include <sys/socket.h>

#define main minivmm_main
#include "vmm/minivmm.c"
#undef main

#include "fuzz/fuzz.h"

static struct {
	bool ready;
	int cli, vmm; /* the two ends of one control connection */
	struct vmm m;
	struct reply r;
	char *text, *out, *answer;
	struct fuzz_fds fds;
} fz;

static void fz_setup(void)
{
	struct vmm *m = &fz.m;
	int sv[2];

	FUZZ_CHECK(!socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), "socketpair: %s",
		   strerror(errno));
	fz.cli = sv[0];
	fz.vmm = sv[1];
	fz.text = malloc(MINIVM_CTL_MSG_MAX);
	fz.out = malloc(OUT_MAX);
	fz.answer = malloc(MINIVM_CTL_MSG_MAX);
	FUZZ_CHECK(fz.text && fz.out && fz.answer, "out of memory");

	m->o.mem = DEFAULT_MEM;
	m->o.vcpus = 1;
	m->o.socket = "fuzz.sock";
	m->ram.total_pages = 1u << 20;
	m->boot_fd = -1;
	m->listen_fd = -1;
	m->shutdown_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); /* for 'stop' */
	FUZZ_CHECK(m->shutdown_efd >= 0, "eventfd: %s", strerror(errno));
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->enable_lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	pthread_mutex_init(&m->vcpus.lock, NULL);
	pthread_cond_init(&m->vcpus.cond, NULL);
	pthread_mutex_init(&m->balloon.lock, NULL);
	m->nr_devs = 1; /* device 0: exited with status 0 */
	m->devs[0].sock = -1;
	pthread_mutex_init(&m->devs[0].lock, NULL);
	fuzz_fds_mark(&fz.fds);
	fz.ready = true;
}

static bool known_result(const char *s)
{
	return !strcmp(s, "ok") || !strcmp(s, "ignored") || !strcmp(s, "error") ||
	       !strcmp(s, "mismatch");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *result, *human, *json;
	char head[64];
	size_t len, alen;
	int ret, n;

	if (!fz.ready)
		fz_setup();
	if (size > MINIVM_CTL_MSG_MAX)
		return 0;

	/* The CLI's side sends, conn_main() receives. */
	ret = minivm_ctl_send(fz.cli, (const char *)data, size);
	FUZZ_CHECK(!ret, "send: %d", ret);
	ret = minivm_ctl_recv(fz.vmm, fz.text, MINIVM_CTL_MSG_MAX, &len, 0);
	if (size == 0) {
		/* An empty datagram reads as a closed connection: no request, no reply. */
		FUZZ_CHECK(ret == -ECONNRESET, "empty request: %d", ret);
		return 0;
	}
	FUZZ_CHECK(!ret && len == size && !memcmp(fz.text, data, size) && !fz.text[len],
		   "request not received whole: %d", ret);

	memset(&fz.r, 0, sizeof(fz.r));
	n = serve_request(&fz.m, fz.text, len, &fz.r, fz.out);
	FUZZ_CHECK(n > 0 && n < OUT_MAX && (size_t)n == strlen(fz.out) && n <= MINIVM_CTL_MSG_MAX,
		   "reply of %d bytes", n);

	/* Back to the CLI, which checks the magic and splits the reply. */
	ret = minivm_ctl_send(fz.vmm, fz.out, (size_t)n);
	FUZZ_CHECK(!ret, "reply not sent: %d", ret);
	ret = minivm_ctl_recv(fz.cli, fz.answer, MINIVM_CTL_MSG_MAX, &alen, 0);
	FUZZ_CHECK(!ret && alen == (size_t)n, "reply not received whole: %d", ret);
	FUZZ_CHECK(!strncmp(fz.answer, MINIVM_CTL_MAGIC " ", strlen(MINIVM_CTL_MAGIC) + 1),
		   "no magic: %s", fz.answer);
	ret = minivm_ctl_parse_reply(fz.answer, &result, &human, &json);
	FUZZ_CHECK(!ret, "the CLI cannot split the reply: %s", fz.out);

	FUZZ_CHECK(known_result(result) && !strcmp(result, fz.r.result), "result '%s'", result);
	FUZZ_CHECK(strlen(human) == fz.r.human.len &&
			   !memcmp(human, fz.r.human.buf, fz.r.human.len),
		   "human line split wrongly: %s", fz.out);
	snprintf(head, sizeof(head), "{\"result\":\"%s\"", result);
	FUZZ_CHECK(!strncmp(json, head, strlen(head)) &&
			   strlen(json) == strlen(head) + fz.r.json.len + 1,
		   "JSON split wrongly: %s", fz.out);
	FUZZ_CHECK(fuzz_json_object(json), "reply JSON is not valid: %s", json);
	fuzz_fds_check(&fz.fds);
	return 0;
}
