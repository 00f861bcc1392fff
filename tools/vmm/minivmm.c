// SPDX-License-Identifier: MIT
/*
 * minivmm - a minimal VMM whose guest memory is swapped by libvmmswap.
 *
 * It maps guest RAM (memfd MAP_SHARED regions with gaps), launches the swap monitor
 * (vms_controller_launch) before forking anything, forks the device processes (each
 * registers its own uffd), then creates the KVM VM and runs the guest program from
 * fixtures/ on N vCPU threads. A control socket serves the vmmswap CLI: crosvm's swap
 * verbs plus guest, DMA, balloon and device commands (protocol: vm/control.h).
 *
 * Usage: minivmm --help
 *
 * Exit status: the guest's halt status ('stop [STATUS]'), 0 on SIGINT/SIGTERM, 1 on a
 * setup or VMM error, 2 if the guest crashed (exception or unexpected exit).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vmmswap/controller.h>
#include <vmmswap/page_handler.h>
#include <vmmswap/status.h>
#include <vmmswap/uffd.h>

#include "vmm/balloon.h"
#include "vmm/control.h"
#include "vmm/devices.h"
#include "vmm/guest_abi.h"
#include "vm/kvm_vm.h"
#include "vmm/ram.h"
#include "vmm/vcpus.h"

#define DEFAULT_MEM	  "32M@16M,32M@4G"
#define DEFAULT_SOCKET	  "minivmm.sock"
#define DEVICE_TIMEOUT_MS 60000
#define SHUTDOWN_WAIT_MS  10000
#define MAX_CONNECTIONS	  32
#define REPLY_MAX	  8192
#define MAX_ARGS	  16
/*
 * Off by default: the vmtests scenarios assert crosvm's exact per-page fault
 * counts (copied_from_staging_pages == pages touched), which fault-around changes
 * by design. Sequential guests profit from --fault-around 64 (see page_handler.h).
 */
#define DEFAULT_FAULT_AROUND 0

struct vmm_opts {
	const char *mem;
	int vcpus;
	int devices;
	const char *swap_dir;
	const char *socket;
	const char *guest;
	enum minivm_balloon_mode balloon_mode;
	int fault_around; /* the monitor's fault-around limit in pages (0: off) */
	bool no_swap;
	bool verbose;
};

struct vmm {
	struct vmm_opts o;
	struct minivm_ram ram;
	void *boot; /* the boot region: [0, MVM_GUEST_BOOT_SIZE) */
	int boot_fd;
	struct minivm vm;
	struct minivm_vcpus vcpus;
	bool vcpus_started;
	struct minivm_balloon balloon;
	struct minivm_device devs[MINIVM_MAX_DEVICES];
	int nr_devs;
	struct vms_controller *ctl;
	pthread_mutex_t enable_lock; /* pause + enable + resume as one step */
	int listen_fd;
	int shutdown_efd; /* written to make the main loop stop */
	int exit_code;	  /* set once, by whoever asks for the shutdown first */
	bool exit_code_set;
	pthread_mutex_t lock; /* exit_code, nr_conns */
	pthread_cond_t cond;
	int nr_conns;
	struct timespec start;
};

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "minivmm: %s\n", buf);
}

/* Ask the main loop to shut down with this exit code (first caller wins). */
static void request_shutdown(struct vmm *m, int code)
{
	uint64_t one = 1;

	pthread_mutex_lock(&m->lock);
	if (!m->exit_code_set) {
		m->exit_code = code;
		m->exit_code_set = true;
	}
	pthread_mutex_unlock(&m->lock);
	if (write(m->shutdown_efd, &one, sizeof(one)) < 0)
		logf_("cannot wake the main loop: %s", strerror(errno));
}

/* ---- reply building ---- */

struct sb {
	char buf[REPLY_MAX];
	size_t len;
	bool overflow;
};

static void sb_printf(struct sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(s->buf + s->len, sizeof(s->buf) - s->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(s->buf) - s->len)
		s->overflow = true;
	else
		s->len += n;
}

/* A reply under construction: result word, human line, JSON fields after "result". */
struct reply {
	const char *result; /* ok, ignored, error, mismatch */
	struct sb human;
	struct sb json; /* ,"key":value ... (the leading comma included) */
};

static void reply_error(struct reply *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_error(struct reply *r, int err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Our messages never contain quotes or backslashes, but keep the JSON valid. */
	for (i = 0; msg[i]; i++) {
		if (msg[i] == '"' || msg[i] == '\\' || (unsigned char)msg[i] < 0x20)
			msg[i] = '\'';
	}
	r->result = "error";
	r->human.len = 0;
	r->human.overflow = false;
	r->json.len = 0;
	r->json.overflow = false;
	sb_printf(&r->human, "%s", msg);
	sb_printf(&r->json, ",\"errno\":%d,\"error\":\"%s\",\"message\":\"%s\"", err, strerror(err),
		  msg);
}

/* ---- request parsing: "vmmswap/1 VERB key=value ..." ---- */

struct req {
	char *verb;
	int n;
	char *key[MAX_ARGS];
	char *val[MAX_ARGS];
	bool used[MAX_ARGS];
};

static int req_parse(char *text, struct req *q)
{
	char *save, *tok;

	memset(q, 0, sizeof(*q));
	tok = strtok_r(text, " ", &save);
	if (!tok || strcmp(tok, MINIVM_CTL_MAGIC))
		return -EPROTO;
	q->verb = strtok_r(NULL, " ", &save);
	if (!q->verb)
		return -EINVAL;
	while ((tok = strtok_r(NULL, " ", &save))) {
		char *eq = strchr(tok, '=');

		if (q->n == MAX_ARGS || !eq || eq == tok)
			return -EINVAL;
		*eq = '\0';
		q->key[q->n] = tok;
		q->val[q->n] = eq + 1;
		q->n++;
	}
	return 0;
}

static const char *req_str(struct req *q, const char *key)
{
	int i;

	for (i = 0; i < q->n; i++) {
		if (!strcmp(q->key[i], key)) {
			q->used[i] = true;
			return q->val[i];
		}
	}
	return NULL;
}

/* A number argument: 0 found, 1 absent (*out = def), -EINVAL malformed. */
static int req_u64(struct req *q, const char *key, uint64_t def, uint64_t *out)
{
	const char *s = req_str(q, key);
	unsigned long long v;
	char *end;

	*out = def;
	if (!s)
		return 1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

/* The first argument nobody asked for, or NULL. */
static const char *req_unused(const struct req *q)
{
	int i;

	for (i = 0; i < q->n; i++) {
		if (!q->used[i])
			return q->key[i];
	}
	return NULL;
}

/* Parse a required number; fills an error reply and returns false on failure. */
static bool need_u64(struct req *q, struct reply *r, const char *key, uint64_t *out)
{
	int ret = req_u64(q, key, 0, out);

	if (ret == 1)
		reply_error(r, EINVAL, "missing argument %s=", key);
	else if (ret < 0)
		reply_error(r, EINVAL, "bad number for %s=", key);
	return ret == 0;
}

static bool opt_u64(struct req *q, struct reply *r, const char *key, uint64_t def, uint64_t *out)
{
	if (req_u64(q, key, def, out) < 0) {
		reply_error(r, EINVAL, "bad number for %s=", key);
		return false;
	}
	return true;
}

static bool args_done(struct req *q, struct reply *r)
{
	const char *extra = req_unused(q);

	if (extra)
		reply_error(r, EINVAL, "unknown argument '%s' for '%s'", extra, q->verb);
	return !extra;
}

static bool check_range(struct vmm *m, struct reply *r, uint64_t start, uint64_t count)
{
	if (minivm_ram_range_ok(&m->ram, start, count))
		return true;
	reply_error(r, ERANGE, "pages [%llu, +%llu) outside guest RAM (0..%llu pages)",
		    (unsigned long long)start, (unsigned long long)count,
		    (unsigned long long)m->ram.total_pages);
	return false;
}

/* ---- swap verbs ---- */

static int swap_status(struct vmm *m, struct vms_swap_status *st, char *json, size_t len)
{
	int ret = vms_controller_status(m->ctl, st);

	if (ret)
		return ret;
	ret = vms_swap_status_json(st, json, len);
	return ret < 0 ? ret : 0;
}

static void do_swap(struct vmm *m, struct req *q, struct reply *r)
{
	const char *op = req_str(q, "op");
	struct vms_reply vr = { 0 };
	uint64_t slow = 0;
	char desc[128];
	int ret;

	if (!op) {
		reply_error(r, EINVAL, "missing argument op=");
		return;
	}
	if (!strcmp(op, "disable") && !opt_u64(q, r, "slow_file_cleanup", 0, &slow))
		return;
	if (!args_done(q, r))
		return;
	if (strcmp(op, "enable") && strcmp(op, "trim") && strcmp(op, "out") &&
	    strcmp(op, "disable") && strcmp(op, "status")) {
		reply_error(r, EINVAL, "unknown swap command '%s'", op);
		return;
	}
	if (!m->ctl) {
		/* crosvm answers every swap request with ENOTSUP when started without --swap. */
		reply_error(r, ENOTSUP, "swap is not enabled in this VMM (started with --no-swap)");
		return;
	}

	if (!strcmp(op, "status")) {
		struct vms_swap_status st;
		char json[VMS_SWAP_STATUS_JSON_MAX];

		ret = swap_status(m, &st, json, sizeof(json));
		if (ret) {
			reply_error(r, -ret, "swap status failed: %s", strerror(-ret));
			return;
		}
		sb_printf(&r->human, "%s", json);
		sb_printf(&r->json, ",\"op\":\"status\",\"status\":%s", json);
		return;
	}

	if (!strcmp(op, "enable")) {
		/* As crosvm: vCPUs paused, devices frozen (by the controller), then the move. */
		pthread_mutex_lock(&m->enable_lock);
		ret = minivm_vcpus_pause(&m->vcpus);
		if (!ret) {
			ret = vms_controller_enable(m->ctl, &vr);
			minivm_vcpus_resume(&m->vcpus);
		}
		pthread_mutex_unlock(&m->enable_lock);
	} else if (!strcmp(op, "trim")) {
		ret = vms_controller_trim(m->ctl, &vr);
	} else if (!strcmp(op, "out")) {
		ret = vms_controller_swap_out(m->ctl, &vr);
	} else {
		ret = vms_controller_disable(m->ctl, slow != 0, &vr);
	}
	if (ret && vr.result != VMS_REPLY_FAILED) {
		vr.result = VMS_REPLY_FAILED;
		vr.err = ret;
	}
	if (vms_reply_describe(&vr, desc, sizeof(desc)) < 0)
		snprintf(desc, sizeof(desc), "?");

	if (vr.result == VMS_REPLY_FAILED) {
		int err = vr.err < 0 ? -vr.err : EIO;

		reply_error(r, err, "swap %s failed: %s", op, strerror(err));
		sb_printf(&r->json, ",\"op\":\"%s\"", op);
		if (!ret)
			sb_printf(&r->json, ",\"state\":\"%s\",\"new_state\":\"%s\"",
				  vms_swap_state_name(vr.state) ?: "?",
				  vms_swap_state_name(vr.new_state) ?: "?");
		return;
	}
	if (vr.result == VMS_REPLY_IGNORED)
		r->result = "ignored";
	sb_printf(&r->human, "swap %s: %s", op, desc);
	sb_printf(&r->json, ",\"op\":\"%s\",\"reply\":\"%s\",\"state\":\"%s\",\"new_state\":\"%s\"",
		  op, vr.result == VMS_REPLY_IGNORED ? "ignored" : "accepted",
		  vms_swap_state_name(vr.state) ?: "?", vms_swap_state_name(vr.new_state) ?: "?");
}

/* ---- guest verbs ---- */

static const struct {
	const char *name;
	uint32_t cmd;
	bool range, seed;
} guest_ops[] = {
	{ "ping", MVM_GCMD_PING, false, false },
	{ "fill", MVM_GCMD_FILL, true, true },
	{ "verify", MVM_GCMD_VERIFY, true, true },
	{ "verify-zero", MVM_GCMD_VERIFY_ZERO, true, false },
	{ "read-touch", MVM_GCMD_READ_TOUCH, true, false },
	{ "write-touch", MVM_GCMD_WRITE_TOUCH, true, false },
	{ "checksum", MVM_GCMD_CHECKSUM, true, false },
	{ "writer-start", MVM_GCMD_WRITER, true, true },
	{ "inflate", MVM_GCMD_INFLATE, true, false },
	{ "deflate", MVM_GCMD_DEFLATE, true, false },
};

static const char *guest_err_name(int status)
{
	switch (status) {
	case MVM_GERR_OK:
		return "ok";
	case MVM_GERR_RANGE:
		return "range";
	case MVM_GERR_MISMATCH:
		return "mismatch";
	case MVM_GERR_BALLOON:
		return "balloon";
	case MVM_GERR_CMD:
		return "command";
	}
	return "?";
}

static void guest_result(struct reply *r, const char *op, int vcpu, uint64_t start, uint64_t count,
			 uint64_t seed, const struct minivm_gresult *g)
{
	sb_printf(&r->json,
		  ",\"op\":\"%s\",\"vcpu\":%d,\"start\":%llu,\"count\":%llu,\"seed\":%llu,"
		  "\"guest_status\":\"%s\",\"pages\":%llu,\"mismatched_pages\":%llu",
		  op, vcpu, (unsigned long long)start, (unsigned long long)count,
		  (unsigned long long)seed, guest_err_name(g->status),
		  (unsigned long long)g->pages_done, (unsigned long long)g->mismatched_pages);
	if (g->mismatched_pages)
		sb_printf(
			&r->json,
			",\"first_mismatch\":{\"page\":%llu,\"word\":%llu,\"expected\":\"0x%llx\","
			"\"actual\":\"0x%llx\"}",
			(unsigned long long)g->bad_page, (unsigned long long)g->bad_word,
			(unsigned long long)g->expected, (unsigned long long)g->actual);
	else
		sb_printf(&r->json, ",\"first_mismatch\":null");
	sb_printf(&r->json,
		  ",\"checksum\":\"0x%llx\",\"passes\":%llu,\"last_seed\":%llu,"
		  "\"elapsed_us\":%llu",
		  (unsigned long long)g->checksum, (unsigned long long)g->passes,
		  (unsigned long long)g->last_seed, (unsigned long long)g->elapsed_us);

	if (g->status == MVM_GERR_MISMATCH) {
		r->result = "mismatch";
		sb_printf(&r->human,
			  "%s: MISMATCH in %llu of %llu pages; first at page %llu word %llu: "
			  "expected %#llx, found %#llx",
			  op, (unsigned long long)g->mismatched_pages, (unsigned long long)count,
			  (unsigned long long)g->bad_page, (unsigned long long)g->bad_word,
			  (unsigned long long)g->expected, (unsigned long long)g->actual);
	} else if (g->status != MVM_GERR_OK) {
		int err = g->status == MVM_GERR_BALLOON ? EIO : EINVAL;
		char json[REPLY_MAX];

		/* Keep the result fields, but mark the reply as an error. */
		snprintf(json, sizeof(json), "%.*s", (int)r->json.len, r->json.buf);
		reply_error(r, err, "%s: the guest reported error '%s'", op,
			    guest_err_name(g->status));
		sb_printf(&r->json, "%s", json);
	} else if (!strcmp(op, "checksum") || !strcmp(op, "read-touch") ||
		   !strcmp(op, "write-touch")) {
		sb_printf(&r->human, "%s: %llu pages, checksum %#llx", op,
			  (unsigned long long)g->pages_done, (unsigned long long)g->checksum);
	} else if (!strcmp(op, "writer-start")) {
		sb_printf(&r->human, "writer running on vCPU %d", vcpu);
	} else if (!strcmp(op, "writer-stop")) {
		sb_printf(&r->human, "writer stopped after %llu passes; last seed %llu",
			  (unsigned long long)g->passes, (unsigned long long)g->last_seed);
	} else {
		sb_printf(&r->human, "%s: ok, %llu pages in %.3f ms", op,
			  (unsigned long long)g->pages_done, g->elapsed_us / 1000.0);
	}
}

static void do_guest(struct vmm *m, struct req *q, struct reply *r)
{
	const char *op = req_str(q, "op");
	uint64_t vcpu, start = 0, count = 0, seed = 0, passes;
	struct minivm_gresult g;
	unsigned int i;
	int ret;

	if (!op) {
		reply_error(r, EINVAL, "missing argument op=");
		return;
	}
	if (!opt_u64(q, r, "vcpu", 0, &vcpu))
		return;
	if (vcpu >= (uint64_t)m->o.vcpus) {
		reply_error(r, EINVAL, "no vCPU %llu (the guest has %d)", (unsigned long long)vcpu,
			    m->o.vcpus);
		return;
	}

	if (!strcmp(op, "writer-stop") || !strcmp(op, "writer-status")) {
		if (!args_done(q, r))
			return;
		if (!strcmp(op, "writer-status")) {
			ret = minivm_vcpus_writer_passes(&m->vcpus, vcpu, &passes);
			if (ret) {
				reply_error(r, -ret, "no writer runs on vCPU %llu",
					    (unsigned long long)vcpu);
				return;
			}
			sb_printf(&r->human, "writer on vCPU %llu: %llu passes",
				  (unsigned long long)vcpu, (unsigned long long)passes);
			sb_printf(&r->json,
				  ",\"op\":\"writer-status\",\"vcpu\":%llu,\"passes\":%llu",
				  (unsigned long long)vcpu, (unsigned long long)passes);
			return;
		}
		ret = minivm_vcpus_writer_stop(&m->vcpus, vcpu, &g);
		if (ret) {
			reply_error(r, -ret,
				    ret == -ENOENT ? "no writer runs on vCPU %llu"
						   : "vCPU %llu: %s",
				    (unsigned long long)vcpu, strerror(-ret));
			return;
		}
		guest_result(r, op, vcpu, 0, 0, 0, &g);
		return;
	}

	for (i = 0; i < sizeof(guest_ops) / sizeof(guest_ops[0]); i++) {
		if (!strcmp(op, guest_ops[i].name))
			break;
	}
	if (i == sizeof(guest_ops) / sizeof(guest_ops[0])) {
		reply_error(r, EINVAL, "unknown guest command '%s'", op);
		return;
	}
	if (guest_ops[i].range &&
	    (!need_u64(q, r, "start", &start) || !need_u64(q, r, "count", &count)))
		return;
	if (guest_ops[i].seed && !need_u64(q, r, "seed", &seed))
		return;
	if (!args_done(q, r))
		return;
	if (guest_ops[i].range && !check_range(m, r, start, count))
		return;

	ret = minivm_vcpus_command(&m->vcpus, vcpu, guest_ops[i].cmd, start, count, seed, &g);
	if (ret) {
		reply_error(r, -ret, "vCPU %llu: %s", (unsigned long long)vcpu,
			    ret == -EBUSY   ? "busy with another command (or a writer)"
			    : ret == -ESRCH ? "dead (halted or crashed)"
					    : strerror(-ret));
		return;
	}
	guest_result(r, op, vcpu, start, count, seed, &g);
}

/* ---- devices ---- */

static bool need_device(struct vmm *m, struct req *q, struct reply *r, struct minivm_device **d)
{
	uint64_t id;

	if (!need_u64(q, r, "dev", &id))
		return false;
	if (id >= (uint64_t)m->nr_devs) {
		reply_error(r, EINVAL, "no device %llu (the VMM has %d)", (unsigned long long)id,
			    m->nr_devs);
		return false;
	}
	*d = &m->devs[id];
	return true;
}

static void do_dma(struct vmm *m, struct req *q, struct reply *r)
{
	const char *op = req_str(q, "op");
	struct minivm_dev_msg msg = { 0 };
	struct minivm_dev_reply dr;
	struct minivm_device *d;
	int ret;

	if (!op) {
		reply_error(r, EINVAL, "missing argument op=");
		return;
	}
	if (!need_device(m, q, r, &d))
		return;
	if (!strcmp(op, "fill") || !strcmp(op, "verify")) {
		msg.op = !strcmp(op, "fill") ? MINIVM_DEV_FILL : MINIVM_DEV_VERIFY;
		if (!need_u64(q, r, "start", &msg.a) || !need_u64(q, r, "count", &msg.b) ||
		    !need_u64(q, r, "seed", &msg.c) || !args_done(q, r) ||
		    !check_range(m, r, msg.a, msg.b))
			return;
	} else if (!strcmp(op, "copy")) {
		msg.op = MINIVM_DEV_COPY;
		if (!need_u64(q, r, "src", &msg.a) || !need_u64(q, r, "dst", &msg.b) ||
		    !need_u64(q, r, "count", &msg.c) || !args_done(q, r) ||
		    !check_range(m, r, msg.a, msg.c) || !check_range(m, r, msg.b, msg.c))
			return;
		if (msg.a < msg.b + msg.c && msg.b < msg.a + msg.c) {
			reply_error(r, EINVAL, "copy ranges overlap");
			return;
		}
	} else if (!strcmp(op, "ping")) {
		msg.op = MINIVM_DEV_PING;
		if (!args_done(q, r))
			return;
	} else {
		reply_error(r, EINVAL, "unknown dma command '%s'", op);
		return;
	}

	ret = minivm_device_request(d, &msg, &dr, DEVICE_TIMEOUT_MS);
	if (!ret)
		ret = dr.err;
	if (ret) {
		reply_error(r, -ret, "device %d: %s", d->id,
			    ret == -ESRCH ? "not running" : strerror(-ret));
		return;
	}
	sb_printf(&r->json,
		  ",\"op\":\"%s\",\"dev\":%d,\"pid\":%d,\"pages\":%llu,\"mismatched_pages\":%llu,"
		  "\"first_bad_page\":%lld,\"elapsed_us\":%llu",
		  op, d->id, (int)d->pid, (unsigned long long)dr.pages,
		  (unsigned long long)dr.mismatched_pages,
		  dr.mismatched_pages ? (long long)dr.bad_page : -1LL,
		  (unsigned long long)dr.elapsed_us);
	if (dr.mismatched_pages) {
		r->result = "mismatch";
		sb_printf(&r->human, "dma %s: MISMATCH in %llu of %llu pages; first at page %llu",
			  op, (unsigned long long)dr.mismatched_pages, (unsigned long long)dr.pages,
			  (unsigned long long)dr.bad_page);
	} else {
		sb_printf(&r->human, "dma %s (device %d): ok, %llu pages in %.3f ms", op, d->id,
			  (unsigned long long)dr.pages, dr.elapsed_us / 1000.0);
	}
}

static void do_device(struct vmm *m, struct req *q, struct reply *r)
{
	const char *op = req_str(q, "op");
	struct minivm_device *d;
	uint64_t status = 0;
	bool crash;
	int ret;

	if (!op) {
		reply_error(r, EINVAL, "missing argument op=");
		return;
	}
	if (!need_device(m, q, r, &d) || !opt_u64(q, r, "status", 0, &status) || !args_done(q, r))
		return;
	if (strcmp(op, "exit") && strcmp(op, "crash")) {
		reply_error(r, EINVAL, "unknown device command '%s'", op);
		return;
	}
	if (status > 255) {
		reply_error(r, EINVAL, "exit status must be 0..255");
		return;
	}
	crash = !strcmp(op, "crash");
	ret = minivm_device_kill(d, crash, (int)status, 10000);
	if (ret) {
		reply_error(r, -ret, "device %d: %s", d->id,
			    ret == -ESRCH ? "not running" : strerror(-ret));
		return;
	}
	sb_printf(&r->human, "device %d (pid %d) %s", d->id, (int)d->pid,
		  crash ? "crashed" : "exited");
	sb_printf(&r->json, ",\"op\":\"%s\",\"dev\":%d,\"pid\":%d,\"wait_status\":%d", op, d->id,
		  (int)d->pid, d->wstatus);
}

/* ---- info, ping, stop ---- */

static void do_info(struct vmm *m, struct req *q, struct reply *r)
{
	uint64_t first = 0;
	int i;

	if (!args_done(q, r))
		return;
	sb_printf(&r->json, ",\"pid\":%d,\"monitor_pid\":%d,\"swap\":%s,\"socket\":\"%s\"",
		  (int)getpid(), m->ctl ? (int)vms_controller_monitor_pid(m->ctl) : 0,
		  m->ctl ? "true" : "false", m->o.socket);
	sb_printf(&r->json, ",\"page_size\":%llu,\"total_pages\":%llu,\"regions\":[",
		  MVM_GUEST_PAGE_SIZE, (unsigned long long)m->ram.total_pages);
	for (i = 0; i < m->ram.nr; i++) {
		const struct minivm_ram_region *rg = &m->ram.r[i];

		sb_printf(&r->json,
			  "%s{\"gpa\":%llu,\"size\":%llu,\"first_page\":%llu,\"pages\":%llu}",
			  i ? "," : "", (unsigned long long)rg->gpa, (unsigned long long)rg->size,
			  (unsigned long long)first,
			  (unsigned long long)(rg->size / MVM_GUEST_PAGE_SIZE));
		first += rg->size / MVM_GUEST_PAGE_SIZE;
	}
	sb_printf(&r->json, "],\"vcpus\":[");
	pthread_mutex_lock(&m->vcpus.lock);
	for (i = 0; i < m->vcpus.nr; i++)
		sb_printf(&r->json, "%s{\"id\":%d,\"state\":\"%s\"}", i ? "," : "", i,
			  minivm_vcpu_state_name(m->vcpus.v[i].state));
	pthread_mutex_unlock(&m->vcpus.lock);
	sb_printf(&r->json, "],\"devices\":[");
	for (i = 0; i < m->nr_devs; i++) {
		bool alive = minivm_device_alive(&m->devs[i]);

		sb_printf(&r->json, "%s{\"id\":%d,\"pid\":%d,\"alive\":%s", i ? "," : "", i,
			  (int)m->devs[i].pid, alive ? "true" : "false");
		if (!alive && WIFEXITED(m->devs[i].wstatus))
			sb_printf(&r->json, ",\"exit_status\":%d}",
				  WEXITSTATUS(m->devs[i].wstatus));
		else if (!alive && WIFSIGNALED(m->devs[i].wstatus))
			sb_printf(&r->json, ",\"signal\":%d}", WTERMSIG(m->devs[i].wstatus));
		else
			sb_printf(&r->json, "}");
	}
	pthread_mutex_lock(&m->balloon.lock);
	sb_printf(&r->json,
		  "],\"balloon\":{\"mode\":\"%s\",\"inflated_pages\":%llu,\"deflated_pages\":%llu}",
		  minivm_balloon_mode_name(m->balloon.mode),
		  (unsigned long long)m->balloon.inflated_pages,
		  (unsigned long long)m->balloon.deflated_pages);
	pthread_mutex_unlock(&m->balloon.lock);
	sb_printf(&r->human, "minivmm pid %d: %d vCPUs, %d devices, %llu RAM pages in %d regions",
		  (int)getpid(), m->vcpus.nr, m->nr_devs, (unsigned long long)m->ram.total_pages,
		  m->ram.nr);
}

static void do_stop(struct vmm *m, struct req *q, struct reply *r)
{
	struct minivm_gresult g;
	uint64_t status;

	if (!opt_u64(q, r, "status", 0, &status) || !args_done(q, r))
		return;
	if (status > 255) {
		reply_error(r, EINVAL, "exit status must be 0..255");
		return;
	}
	/* Let the guest halt itself with the status if vCPU 0 is free; else just stop. */
	minivm_vcpus_command(&m->vcpus, 0, MVM_GCMD_HALT, 0, 0, status, &g);
	request_shutdown(m, (int)status); /* no-op if the halt already asked for it */
	sb_printf(&r->human, "stopping (exit status %llu)", (unsigned long long)status);
	sb_printf(&r->json, ",\"op\":\"stop\",\"status\":%llu", (unsigned long long)status);
}

static void dispatch(struct vmm *m, char *text, struct reply *r)
{
	struct req q;
	int ret;

	r->result = "ok";
	ret = req_parse(text, &q);
	if (ret == -EPROTO) {
		reply_error(r, EPROTO, "not a %s request", MINIVM_CTL_MAGIC);
		return;
	}
	if (ret) {
		reply_error(r, EINVAL, "malformed request (want VERB key=value ...)");
		return;
	}
	if (!strcmp(q.verb, "swap"))
		do_swap(m, &q, r);
	else if (!strcmp(q.verb, "guest"))
		do_guest(m, &q, r);
	else if (!strcmp(q.verb, "dma"))
		do_dma(m, &q, r);
	else if (!strcmp(q.verb, "device"))
		do_device(m, &q, r);
	else if (!strcmp(q.verb, "info"))
		do_info(m, &q, r);
	else if (!strcmp(q.verb, "ping")) {
		if (args_done(&q, r))
			sb_printf(&r->human, "pong");
	} else if (!strcmp(q.verb, "stop"))
		do_stop(m, &q, r);
	else
		reply_error(r, EINVAL, "unknown verb '%s'", q.verb);
}

/* ---- connections ---- */

#define OUT_MAX (2 * REPLY_MAX + 64)

/*
 * One request as received (text: len bytes and a NUL) into its reply text in out
 * (OUT_MAX bytes), using r (zeroed) on the way; returns the reply's length. No I/O
 * of its own: tools/fuzz/ctl_request.c feeds it arbitrary requests.
 */
static int serve_request(struct vmm *m, char *text, size_t len, struct reply *r, char *out)
{
	if (strlen(text) != len || memchr(text, '\n', len)) {
		r->result = "error";
		reply_error(r, EINVAL, "request contains NUL or newline");
	} else {
		if (m->o.verbose)
			logf_("control: %s", text);
		dispatch(m, text, r);
	}
	if (r->human.overflow || r->json.overflow)
		reply_error(r, EMSGSIZE, "reply too long");
	return snprintf(out, OUT_MAX, "%s %s\n%.*s\n{\"result\":\"%s\"%.*s}", MINIVM_CTL_MAGIC,
			r->result, (int)r->human.len, r->human.buf, r->result, (int)r->json.len,
			r->json.buf);
}

struct conn {
	struct vmm *m;
	int fd;
};

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct vmm *m = c->m;
	char *text = malloc(MINIVM_CTL_MSG_MAX);
	struct reply *r = calloc(1, sizeof(*r));
	char *out = malloc(OUT_MAX);
	size_t len;
	int ret, n;

	if (!text || !r || !out)
		goto done;
	ret = minivm_ctl_recv(c->fd, text, MINIVM_CTL_MSG_MAX, &len, 10000);
	if (ret) {
		if (m->o.verbose)
			logf_("control: no request: %s", strerror(-ret));
		goto done;
	}
	n = serve_request(m, text, len, r, out);
	ret = minivm_ctl_send(c->fd, out, n);
	if (ret && m->o.verbose)
		logf_("control: reply not sent: %s", strerror(-ret));
done:
	free(text);
	free(r);
	free(out);
	close(c->fd);
	pthread_mutex_lock(&m->lock);
	m->nr_conns--;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	free(c);
	return NULL;
}

static void accept_one(struct vmm *m)
{
	pthread_attr_t attr;
	struct conn *c;
	unsigned int uid = 0;
	pthread_t t;
	int fd, ret;

	ret = minivm_ctl_accept(m->listen_fd, &fd, &uid);
	if (ret == -EPERM) {
		logf_("control: refused a connection from uid %u", uid);
		return;
	}
	if (ret) {
		if (ret != -EAGAIN && ret != -EINTR && ret != -ECONNABORTED)
			logf_("control: accept: %s", strerror(-ret));
		return;
	}
	pthread_mutex_lock(&m->lock);
	if (m->nr_conns >= MAX_CONNECTIONS) {
		pthread_mutex_unlock(&m->lock);
		logf_("control: too many connections, dropping one");
		close(fd);
		return;
	}
	m->nr_conns++;
	pthread_mutex_unlock(&m->lock);

	c = malloc(sizeof(*c));
	ret = c ? 0 : ENOMEM;
	if (c) {
		c->m = m;
		c->fd = fd;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		ret = pthread_create(&t, &attr, conn_main, c);
		pthread_attr_destroy(&attr);
	}
	if (ret) {
		logf_("control: cannot start a connection thread: %s", strerror(ret));
		free(c);
		close(fd);
		pthread_mutex_lock(&m->lock);
		m->nr_conns--;
		pthread_mutex_unlock(&m->lock);
	}
}

/* ---- vCPU hooks ---- */

static int hook_balloon(void *arg, uint32_t op, uint64_t gpa, uint64_t len)
{
	struct vmm *m = arg;

	return minivm_balloon_request(&m->balloon, op, gpa, len);
}

static void hook_halted(void *arg, int vcpu, uint64_t status)
{
	struct vmm *m = arg;

	logf_("guest halted on vCPU %d with status %llu", vcpu, (unsigned long long)status);
	request_shutdown(m, (int)(status & 0xff));
}

static void hook_crashed(void *arg, int vcpu, const char *why)
{
	struct vmm *m = arg;

	logf_("vCPU %d crashed: %s", vcpu, why);
	request_shutdown(m, 2);
}

/* ---- setup ---- */

static int load_guest(struct vmm *m)
{
	FILE *f = fopen(m->o.guest, "rb");
	char *dst = (char *)m->boot + MVM_GUEST_LOAD_GPA;
	size_t n;
	int err;

	if (!f) {
		err = errno;
		logf_("cannot open guest program %s: %s", m->o.guest, strerror(err));
		return -err;
	}
	n = fread(dst, 1, MVM_GUEST_LOAD_MAX, f);
	err = ferror(f) ? EIO : 0;
	if (!err && (n == 0 || fgetc(f) != EOF))
		err = EFBIG;
	fclose(f);
	if (err) {
		logf_("guest program %s: %s", m->o.guest,
		      err == EFBIG ? "empty or larger than the load area" : strerror(err));
		return -err;
	}
	return 0;
}

static void write_info(struct vmm *m)
{
	struct mvm_guest_info *info = (void *)((char *)m->boot + MVM_GUEST_INFO_GPA);
	int i;

	memset(info, 0, sizeof(*info));
	info->magic = MVM_GUEST_INFO_MAGIC;
	info->nr_vcpus = m->o.vcpus;
	info->nr_regions = m->ram.nr;
	info->total_pages = m->ram.total_pages;
	for (i = 0; i < m->ram.nr; i++) {
		info->regions[i].gpa = m->ram.r[i].gpa;
		info->regions[i].pages = m->ram.r[i].size / MVM_GUEST_PAGE_SIZE;
	}
}

static int map_boot(struct vmm *m)
{
	m->boot_fd = memfd_create("guest-boot", MFD_CLOEXEC);
	if (m->boot_fd < 0)
		return -errno;
	if (ftruncate(m->boot_fd, MVM_GUEST_BOOT_SIZE) < 0)
		return -errno;
	m->boot =
		mmap(NULL, MVM_GUEST_BOOT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, m->boot_fd, 0);
	if (m->boot == MAP_FAILED) {
		m->boot = NULL;
		return -errno;
	}
	return 0;
}

static int launch_swap(struct vmm *m)
{
	struct vms_region regions[MINIVM_RAM_MAX_REGIONS];
	struct vms_controller_opts co = { 0 };
	int i, ret;

	for (i = 0; i < m->ram.nr; i++) {
		regions[i].addr = (uintptr_t)m->ram.r[i].hva;
		regions[i].len = m->ram.r[i].size;
		regions[i].memfd = m->ram.r[i].memfd;
		regions[i].memfd_off = 0;
	}
	co.regions = regions;
	co.nregions = m->ram.nr;
	co.swap_dir = m->o.swap_dir;
	co.fault_around_pages = (unsigned int)m->o.fault_around;
	ret = vms_controller_launch(&co, &m->ctl);
	if (ret) {
		m->ctl = NULL;
		logf_("cannot launch the swap monitor: %s%s", strerror(-ret),
		      vms_uffd_unavailable(ret) ? " (userfaultfd unavailable? try --no-swap)" : "");
	}
	return ret;
}

static int setup_vm(struct vmm *m)
{
	uint64_t top = MVM_GUEST_MMIO_BASE + MINIVM_HUGE_PAGE_SIZE, map_size;
	int i, ret;

	for (i = 0; i < m->ram.nr; i++) {
		if (m->ram.r[i].gpa + m->ram.r[i].size > top)
			top = m->ram.r[i].gpa + m->ram.r[i].size;
	}
	map_size = (top + (1ULL << 30) - 1) & ~((1ULL << 30) - 1);

	ret = minivm_create(&m->vm);
	if (ret)
		return ret;
	ret = minivm_add_region(&m->vm, 0, m->boot, MVM_GUEST_BOOT_SIZE);
	for (i = 0; ret >= 0 && i < m->ram.nr; i++)
		ret = minivm_add_region(&m->vm, m->ram.r[i].gpa, m->ram.r[i].hva, m->ram.r[i].size);
	if (ret < 0)
		return ret;
	if (MVM_GUEST_SYS_GPA + minivm_sys_area_size(map_size) > MVM_GUEST_INFO_GPA)
		return -E2BIG;
	return minivm_setup_long_mode(&m->vm, MVM_GUEST_SYS_GPA, map_size, MVM_GUEST_EXC_GPA);
}

/* ---- main loop and teardown ---- */

/* Has the monitor exited? Looks without reaping it: the controller does that. */
static bool monitor_died(struct vmm *m)
{
	siginfo_t si = { 0 };
	pid_t pid;

	if (!m->ctl)
		return false;
	pid = vms_controller_monitor_pid(m->ctl);
	if (pid <= 0 || waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return false;
	return si.si_pid == pid;
}

/* Reap and log dead devices; true if the VM must stop (the monitor died). */
static bool handle_sigchld(struct vmm *m)
{
	bool was_alive[MINIVM_MAX_DEVICES];
	int i;

	for (i = 0; i < m->nr_devs; i++)
		was_alive[i] = minivm_device_alive(&m->devs[i]);
	minivm_devices_reap(m->devs, m->nr_devs);
	for (i = 0; i < m->nr_devs; i++) {
		if (was_alive[i] && !minivm_device_alive(&m->devs[i]))
			logf_("device %d (pid %d) ended, wait status %#x", i, (int)m->devs[i].pid,
			      m->devs[i].wstatus);
	}
	if (!monitor_died(m))
		return false;
	/*
	 * As crosvm does: without the monitor, pages it had removed would read as zero.
	 * Stop the VM rather than run it on memory that can no longer be trusted.
	 */
	logf_("the swap monitor died: stopping the VM");
	request_shutdown(m, 1);
	return true;
}

static int main_loop(struct vmm *m, int sfd)
{
	struct pollfd pfd[3] = {
		{ .fd = m->listen_fd, .events = POLLIN },
		{ .fd = sfd, .events = POLLIN },
		{ .fd = m->shutdown_efd, .events = POLLIN },
	};
	struct signalfd_siginfo si;
	int ret;

	for (;;) {
		ret = poll(pfd, 3, -1);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		if (pfd[2].revents)
			return 0;
		if (pfd[1].revents) {
			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGCHLD) {
				if (handle_sigchld(m))
					return 0;
				continue;
			}
			logf_("signal %u: shutting down", si.ssi_signo);
			request_shutdown(m, 0);
			return 0;
		}
		if (pfd[0].revents)
			accept_one(m);
	}
}

static void wait_connections(struct vmm *m)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += SHUTDOWN_WAIT_MS / 1000;
	pthread_mutex_lock(&m->lock);
	while (m->nr_conns > 0) {
		if (pthread_cond_timedwait(&m->cond, &m->lock, &ts) == ETIMEDOUT) {
			logf_("%d control connections still busy at exit", m->nr_conns);
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
}

/* ---- options ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: minivmm [OPTIONS]\n"
		"Run a small KVM guest whose RAM is swapped by libvmmswap, controlled through\n"
		"a Unix socket by the vmmswap CLI.\n"
		"\n"
		"  -m, --mem SPEC          guest RAM regions SIZE@GPA[,SIZE@GPA...] (K/M/G\n"
		"                          suffixes, gaps allowed; default %s)\n"
		"  -c, --vcpus N           vCPU threads, 1..%d (default 2)\n"
		"  -d, --devices N         device processes, 0..%d (default 1)\n"
		"  -w, --swap-dir DIR      directory for the swap file (default $TMPDIR or /tmp)\n"
		"  -s, --socket PATH       control socket (default ./%s)\n"
		"  -g, --guest FILE        guest program (default: fixtures/guest.bin of this "
		"build)\n"
		"  -b, --balloon-mode M    remove (default), dontneed or punch-hole\n"
		"      --no-swap           do not launch libvmmswap (swap verbs fail with "
		"ENOTSUP)\n"
		"      --fault-around N    monitor fault-around limit in pages, 0 (off, the "
		"default) .. 512\n"
		"  -v, --verbose           log every control request\n"
		"  -h, --help              this text\n"
		"\n"
		"When ready it prints one line 'minivmm: ready pid=... socket=...' on stdout.\n"
		"Exit status: the guest's halt status (vmmswap stop [STATUS]), 0 on SIGINT or\n"
		"SIGTERM, 1 on a VMM error, 2 if the guest crashed.\n",
		DEFAULT_MEM, MVM_GUEST_MAX_VCPUS, MINIVM_MAX_DEVICES, DEFAULT_SOCKET);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static char default_guest[PATH_MAX + 32];

/* build/<variant>/tools/minivmm -> build/<variant>/fixtures/guest.bin */
static const char *find_default_guest(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return "fixtures/guest.bin";
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(default_guest, sizeof(default_guest), "%s/../fixtures/guest.bin", exe);
	return default_guest;
}

static int parse_opts(int argc, char **argv, struct vmm_opts *o)
{
	static const struct option longopts[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'c' },
		{ "devices", required_argument, NULL, 'd' },
		{ "swap-dir", required_argument, NULL, 'w' },
		{ "socket", required_argument, NULL, 's' },
		{ "guest", required_argument, NULL, 'g' },
		{ "balloon-mode", required_argument, NULL, 'b' },
		{ "no-swap", no_argument, NULL, 'N' },
		{ "fault-around", required_argument, NULL, 'F' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->mem = DEFAULT_MEM;
	o->vcpus = 2;
	o->devices = 1;
	o->swap_dir = getenv("TMPDIR") ?: "/tmp";
	o->socket = DEFAULT_SOCKET;
	o->guest = NULL;
	o->balloon_mode = MINIVM_BALLOON_REMOVE;
	o->fault_around = DEFAULT_FAULT_AROUND;

	while ((c = getopt_long(argc, argv, "m:c:d:w:s:g:b:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->mem = optarg;
			break;
		case 'c':
			if (parse_int(optarg, 1, MVM_GUEST_MAX_VCPUS, &o->vcpus)) {
				fprintf(stderr, "minivmm: --vcpus wants 1..%d\n",
					MVM_GUEST_MAX_VCPUS);
				return -EINVAL;
			}
			break;
		case 'd':
			if (parse_int(optarg, 0, MINIVM_MAX_DEVICES, &o->devices)) {
				fprintf(stderr, "minivmm: --devices wants 0..%d\n",
					MINIVM_MAX_DEVICES);
				return -EINVAL;
			}
			break;
		case 'w':
			o->swap_dir = optarg;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'g':
			o->guest = optarg;
			break;
		case 'b':
			if (minivm_balloon_mode_parse(optarg, &o->balloon_mode)) {
				fprintf(stderr, "minivmm: --balloon-mode wants remove, dontneed or "
						"punch-hole\n");
				return -EINVAL;
			}
			break;
		case 'N':
			o->no_swap = true;
			break;
		case 'F':
			if (parse_int(optarg, 0, VMS_PH_MAX_FAULT_AROUND_PAGES, &o->fault_around)) {
				fprintf(stderr, "minivmm: --fault-around wants 0..%d\n",
					VMS_PH_MAX_FAULT_AROUND_PAGES);
				return -EINVAL;
			}
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "Try 'minivmm --help'.\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "minivmm: unexpected argument '%s'; try 'minivmm --help'\n",
			argv[optind]);
		return -EINVAL;
	}
	if (!o->guest)
		o->guest = find_default_guest();
	return 0;
}

int main(int argc, char **argv)
{
	static struct vmm vmm; /* large (vCPU table); static keeps it off the stack */
	struct minivm_vcpus_hooks hooks;
	struct vmm *m = &vmm;
	char err[160];
	sigset_t mask;
	int sfd = -1, ret, code = 1, i;

	if (parse_opts(argc, argv, &m->o))
		return 1;
	m->listen_fd = -1;
	m->boot_fd = -1;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->enable_lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (minivm_ram_parse(m->o.mem, &m->ram, err, sizeof(err))) {
		fprintf(stderr, "minivmm: --mem: %s\n", err);
		return 1;
	}
	ret = minivm_kvm_available();
	if (ret) {
		logf_("/dev/kvm is not usable: %s", strerror(-ret));
		return 1;
	}
	ret = map_boot(m);
	if (!ret)
		ret = minivm_ram_map(&m->ram);
	if (ret) {
		logf_("cannot map guest memory: %s", strerror(-ret));
		goto out;
	}
	ret = load_guest(m);
	if (ret)
		goto out;
	write_info(m);

	/* The monitor first: every later process must be forked after it (spec 1.1). */
	if (!m->o.no_swap) {
		ret = launch_swap(m);
		if (ret)
			goto out;
	}

	/* Signals go to the main loop; children get the default mask back. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGCHLD);
	ret = pthread_sigmask(SIG_BLOCK, &mask, NULL);
	if (ret) {
		ret = -ret;
		goto out;
	}
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	m->shutdown_efd = eventfd(0, EFD_CLOEXEC);
	if (sfd < 0 || m->shutdown_efd < 0) {
		ret = -errno;
		logf_("signalfd/eventfd: %s", strerror(-ret));
		goto out;
	}

	ret = minivm_devices_spawn(m->devs, m->o.devices, &m->ram, m->ctl);
	m->nr_devs = m->o.devices;
	if (ret) {
		logf_("cannot fork device processes: %s", strerror(-ret));
		goto out;
	}
	/* A device that failed to register must not be mistaken for a running one. */
	for (i = 0; i < m->nr_devs; i++) {
		struct minivm_dev_msg ping = { .op = MINIVM_DEV_PING };
		struct minivm_dev_reply pr;

		ret = minivm_device_request(&m->devs[i], &ping, &pr, DEVICE_TIMEOUT_MS + 5000);
		if (ret) {
			logf_("device %d did not come up: %s", i, strerror(-ret));
			goto out;
		}
	}

	ret = setup_vm(m);
	if (ret) {
		logf_("cannot set up the VM: %s", strerror(-ret));
		goto out;
	}
	ret = minivm_balloon_start(&m->balloon, &m->ram, m->o.balloon_mode);
	if (ret)
		goto out;
	hooks = (struct minivm_vcpus_hooks){
		.balloon = hook_balloon,
		.halted = hook_halted,
		.crashed = hook_crashed,
		.arg = m,
	};
	ret = minivm_vcpus_start(&m->vcpus, &m->vm, m->o.vcpus, &hooks);
	if (ret) {
		logf_("cannot start vCPUs: %s", strerror(-ret));
		goto out;
	}
	m->vcpus_started = true;

	ret = minivm_ctl_listen(m->o.socket, &m->listen_fd);
	if (ret) {
		logf_("control socket %s: %s", m->o.socket, strerror(-ret));
		goto out;
	}
	printf("minivmm: ready pid=%d socket=%s monitor_pid=%d vcpus=%d devices=%d pages=%llu "
	       "swap=%s\n",
	       (int)getpid(), m->o.socket, m->ctl ? (int)vms_controller_monitor_pid(m->ctl) : 0,
	       m->o.vcpus, m->nr_devs, (unsigned long long)m->ram.total_pages,
	       m->ctl ? "on" : "off");
	fflush(stdout);

	ret = main_loop(m, sfd);
	if (ret)
		logf_("main loop: %s", strerror(-ret));
	pthread_mutex_lock(&m->lock);
	code = ret ? 1 : m->exit_code;
	pthread_mutex_unlock(&m->lock);
	ret = 0;
out:
	if (m->listen_fd >= 0) {
		close(m->listen_fd);
		unlink(m->o.socket);
	}
	/*
	 * vCPUs and devices first: that fails the guest and DMA requests still waiting
	 * in connection threads, so those finish before what they use goes away.
	 */
	if (m->vcpus_started)
		minivm_vcpus_stop(&m->vcpus);
	if (m->nr_devs)
		minivm_devices_stop(m->devs, m->nr_devs, 5000);
	wait_connections(m);
	minivm_balloon_stop(&m->balloon);
	if (m->ctl) {
		int xret = vms_controller_exit(m->ctl);

		if (xret)
			logf_("swap monitor exit: %s", strerror(-xret));
		m->ctl = NULL;
	}
	minivm_destroy(&m->vm);
	minivm_ram_unmap(&m->ram);
	if (m->boot)
		munmap(m->boot, MVM_GUEST_BOOT_SIZE);
	if (m->boot_fd >= 0)
		close(m->boot_fd);
	if (sfd >= 0)
		close(sfd);
	return ret ? 1 : code;
}
