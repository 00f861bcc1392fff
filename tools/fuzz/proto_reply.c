// SPDX-License-Identifier: MIT
/*
 * proto_reply - fuzz target for the reply decoding (ref/protocol.c:
 * vms_proto_recv_reply, vms_proto_recv_reply_info), the boundary where the VMM and
 * each device process take what the monitor process answers on a reply socket; and
 * for what their callers do with a decoded reply: vms_reply_describe(), minivmm's
 * error text (strerror of -err), vms_controller_*'s "r.err ?: -EPROTO" and the
 * status JSON of a Status reply.
 *
 * Input: the reply datagram, byte for byte (struct vms_msg_reply and a little more).
 *
 * Asserts: a reply is accepted exactly when protocol.h's rules hold (exact size,
 * magic, version, a known result, both states known, err 0 or a negative errno not
 * below -4095); accepted, the outputs are the bytes sent; rejected, they are
 * untouched; a decoded reply is described, turned into an errno and rendered
 * without undefined behaviour; both decoders agree.
 */
#include <sys/socket.h>

#include <vmmswap/controller.h>
#include <vmmswap/protocol.h>

#include "fuzz/fuzz.h"

#define MAX_ERRNO 4095 /* the kernel's: -4095 .. -1 are errnos */

static struct {
	bool ready;
	int tx, rx; /* the monitor's end of a reply socket, the controller's */
} g;

static void setup(void)
{
	int sv[2];

	FUZZ_CHECK(!socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), "socketpair: %s",
		   strerror(errno));
	g.tx = sv[0];
	g.rx = sv[1];
	g.ready = true;
}

/* protocol.h and controller.h's rules for a reply, independent of protocol.c. */
static bool valid_reply(const struct vms_msg_reply *m, size_t len)
{
	const struct vms_reply *r = &m->reply;

	return len == sizeof(*m) && m->magic == VMS_PROTO_MAGIC &&
	       m->version == VMS_PROTO_VERSION && r->result >= VMS_REPLY_ACCEPTED &&
	       r->result <= VMS_REPLY_FAILED && r->state >= 0 && r->state < VMS_SWAP_NR_STATES &&
	       r->new_state >= 0 && r->new_state < VMS_SWAP_NR_STATES && r->err <= 0 &&
	       r->err >= -MAX_ERRNO;
}

static void send_reply(const uint8_t *data, size_t size)
{
	ssize_t n = send(g.tx, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);

	FUZZ_CHECK(n == (ssize_t)size, "send of %zu bytes: %zd (%s)", size, n, strerror(errno));
}

/* What the callers do with an accepted reply. */
static void use_reply(const struct vms_reply *r, const struct vms_swap_status *st)
{
	char desc[128], json[VMS_SWAP_STATUS_JSON_MAX];
	int n, err;

	/* minivmm: the human line of a swap verb. */
	n = vms_reply_describe(r, desc, sizeof(desc));
	FUZZ_CHECK(n >= 0 && (size_t)n == strlen(desc), "describe: %d", n);
	/* minivmm: the errno of a failed swap verb. */
	err = r->err < 0 ? -r->err : EIO;
	FUZZ_CHECK(err > 0 && strerror(err), "errno %d", err);
	/* vms_controller_status() and friends: a reply that is not ACCEPTED is an error. */
	err = r->result == VMS_REPLY_ACCEPTED ? 0 : r->err ?: -EPROTO;
	FUZZ_CHECK(err <= 0 && (r->result == VMS_REPLY_ACCEPTED || err < 0), "result %d", err);
	/* minivmm: swap status renders the status, or fails for an unknown state. */
	n = vms_swap_status_json(st, json, sizeof(json));
	FUZZ_CHECK(vms_swap_state_name(st->state) ? n > 0 : n == -EINVAL, "status json: %d", n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vms_msg_reply want = { 0 };
	struct vms_reply r, r2, poison;
	struct vms_swap_status st, st2, st_poison;
	struct vms_monitor_info info, info_poison;
	bool valid;
	int ret, ret2;

	if (!g.ready)
		setup();
	memcpy(&want, data, size < sizeof(want) ? size : sizeof(want));
	valid = valid_reply(&want, size);
	memset(&poison, 0xa5, sizeof(poison));
	memset(&st_poison, 0x5a, sizeof(st_poison));
	memset(&info_poison, 0x3c, sizeof(info_poison));

	/* As vms_controller_info() and the other commands decode it. */
	r = poison;
	st = st_poison;
	info = info_poison;
	send_reply(data, size);
	ret = vms_proto_recv_reply_info(g.rx, 0, &r, &st, &info);
	if (!ret)
		use_reply(&r, &st);
	FUZZ_CHECK(ret == 0 || ret == -EBADMSG || ret == -EPIPE, "undocumented result %d", ret);
	FUZZ_CHECK((ret == -EPIPE) == (size == 0), "result %d for %zu bytes", ret, size);
	FUZZ_CHECK((ret == 0) == valid, "result %d but the reply is %svalid", ret,
		   valid ? "" : "in");
	if (!ret) {
		FUZZ_CHECK(!memcmp(&r, &want.reply, sizeof(r)), "reply differs");
		FUZZ_CHECK(!memcmp(&st, &want.status, sizeof(st)), "status differs");
		FUZZ_CHECK(!memcmp(&info, &want.info, sizeof(info)), "info differs");
	} else {
		FUZZ_CHECK(!memcmp(&r, &poison, sizeof(r)) &&
				   !memcmp(&st, &st_poison, sizeof(st)) &&
				   !memcmp(&info, &info_poison, sizeof(info)),
			   "a rejected reply changed the outputs");
	}

	/* As vms_controller_device_forked() decodes it: no status wanted. */
	send_reply(data, size);
	ret2 = vms_proto_recv_reply(g.rx, 0, &r2, NULL);
	FUZZ_CHECK(ret2 == ret, "the decoders disagree: %d, %d", ret, ret2);
	if (!ret2)
		FUZZ_CHECK(!memcmp(&r2, &r, sizeof(r)), "the decoders disagree on the reply");

	/* As vms_controller_status(): no info part. */
	send_reply(data, size);
	ret2 = vms_proto_recv_reply(g.rx, 0, &r2, &st2);
	FUZZ_CHECK(ret2 == ret, "the decoders disagree: %d, %d", ret, ret2);
	if (!ret2)
		FUZZ_CHECK(!memcmp(&st2, &st, sizeof(st)), "the decoders disagree on the status");
	return 0;
}
