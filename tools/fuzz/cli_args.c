// SPDX-License-Identifier: MIT
/*
 * cli_args - fuzz target for the vmmswap CLI's command line (tools/cli/vmmswap.c:
 * parse_cmdline, parse_opts): argument vectors from users and scripts, which the CLI
 * turns into the request it sends across to the VMM.
 *
 * Input: up to 24 arguments after argv[0], separated by NUL bytes.
 *
 * Asserts: parsing never exits and never prints; the result is --help, a usage error
 * whose message formats from valid strings, 'wait' with a known state, or a request
 * of the control protocol's shape - "vmmswap/1 WIRE" and single-space separated
 * key=value pairs, each key the verb's own (op, its number keys, vcpu,
 * slow_file_cleanup) at most once, op the verb's op, every other value a decimal
 * number (vcpu at most 1024) - that fits its buffer, with a socket path; the option
 * checks hold (--slow-file-cleanup only for swap disable, --vcpu only for guest
 * verbs, --wait-state only for swap verbs and a known state); --timeout is not NaN
 * and timeout_ms() turns it into an int without overflow.
 */
#include <limits.h>
#include <stdio.h>

#define main vmmswap_main
#include "cli/vmmswap.c"
#undef main

#include "fuzz/fuzz.h"

#define MAX_ARGS 24

static bool printed;

static ssize_t note_write(void *cookie, const char *buf, size_t size)
{
	(void)cookie;
	(void)buf;
	printed = true;
	return (ssize_t)size;
}

/* A decimal number as %llu prints it; *v its value. */
static bool decimal(const char *s, size_t len, unsigned long long *v)
{
	char tmp[32];
	char *end;

	if (!len || len >= sizeof(tmp) || (s[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	errno = 0;
	*v = strtoull(tmp, &end, 10);
	return !errno && !*end;
}

static void check_request(const struct cmdline *cl)
{
	const struct verb *v = cl->v;
	const char *p = cl->req, *sp;
	bool seen[MAX_KEYS + 3] = { false };
	char head[64];
	size_t hl;

	FUZZ_CHECK(v->wire && cl->c.socket, "no request verb or socket");
	FUZZ_CHECK(strlen(cl->req) < sizeof(cl->req) - 1, "request may be truncated: %s", p);
	hl = (size_t)snprintf(head, sizeof(head), "%s %s", MINIVM_CTL_MAGIC, v->wire);
	FUZZ_CHECK(!strncmp(p, head, hl) && (p[hl] == ' ' || !p[hl]), "request head: %s", p);
	for (p += hl; *p; p = sp) {
		const char *eq, *val;
		size_t klen, vlen;
		int k = -1;

		FUZZ_CHECK(*p == ' ' && p[1] && p[1] != ' ', "spacing: %s", cl->req);
		p++;
		sp = strchr(p, ' ') ?: p + strlen(p);
		eq = memchr(p, '=', (size_t)(sp - p));
		FUZZ_CHECK(eq && eq > p, "not key=value: %s", cl->req);
		klen = (size_t)(eq - p);
		val = eq + 1;
		vlen = (size_t)(sp - val);
		if (klen == 2 && !strncmp(p, "op", 2)) {
			k = MAX_KEYS;
			FUZZ_CHECK(v->op && strlen(v->op) == vlen && !strncmp(val, v->op, vlen),
				   "op: %s", cl->req);
		} else {
			unsigned long long n;

			FUZZ_CHECK(decimal(val, vlen, &n), "value not a number: %s", cl->req);
			if (klen == 4 && !strncmp(p, "vcpu", 4)) {
				k = MAX_KEYS + 1;
				FUZZ_CHECK(!strcmp(v->wire, "guest") && n <= 1024 &&
						   (long)n == cl->c.vcpu,
					   "vcpu: %s", cl->req);
			} else if (klen == 17 && !strncmp(p, "slow_file_cleanup", 17)) {
				k = MAX_KEYS + 2;
				FUZZ_CHECK(n == 1 && !strcmp(v->w1, "swap") && v->op &&
						   !strcmp(v->op, "disable"),
					   "slow_file_cleanup: %s", cl->req);
			}
			for (int i = 0; k < 0 && i < v->nreq + v->nopt; i++) {
				if (strlen(v->keys[i]) == klen && !strncmp(p, v->keys[i], klen))
					k = i;
			}
		}
		FUZZ_CHECK(k >= 0 && !seen[k], "unknown or repeated key: %s", cl->req);
		seen[k] = true;
	}
	for (int i = 0; i < v->nreq; i++)
		FUZZ_CHECK(seen[i], "required %s missing: %s", v->keys[i], cl->req);
	FUZZ_CHECK(!v->op || seen[MAX_KEYS], "op missing: %s", cl->req);
	FUZZ_CHECK(cl->c.vcpu < 0 || seen[MAX_KEYS + 1], "--vcpu lost: %s", cl->req);
	FUZZ_CHECK(!cl->c.slow_file_cleanup || seen[MAX_KEYS + 2], "--slow-file-cleanup lost");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const cookie_io_functions_t io = { .write = note_write };
	static FILE *sink;
	char *argv[MAX_ARGS + 2], *args[MAX_ARGS + 2], *arg, msg[512];
	struct cmdline cl;
	FILE *out, *err;
	int argc = 1, ret, state, ms;
	size_t i, start;

	if (!sink) {
		sink = fopencookie(NULL, "w", io);
		FUZZ_CHECK(sink, "fopencookie: %s", strerror(errno));
		setvbuf(sink, NULL, _IONBF, 0);
	}
	/* Each argument in a heap block of exactly its size, so ASan sees overreads. */
	argv[0] = "vmmswap";
	for (i = 0, start = 0; i <= size && argc <= MAX_ARGS; i++) {
		if (i < size && data[i])
			continue;
		if (i < size || i > start) { /* a final argument needs no NUL */
			arg = malloc(i - start + 1);
			FUZZ_CHECK(arg, "out of memory");
			memcpy(arg, data + start, i - start);
			arg[i - start] = '\0';
			args[argc] = arg;
			argv[argc++] = arg;
		}
		start = i + 1;
	}
	argv[argc] = NULL;

	/* Anything printed sets "printed" (glibc: stdout and stderr are assignable). */
	out = stdout;
	err = stderr;
	stdout = stderr = sink;
	printed = false;
	ret = parse_cmdline(argc, argv, &cl);
	stdout = out;
	stderr = err;
	FUZZ_CHECK(!printed, "parse_cmdline printed");
	FUZZ_CHECK(ret == 0 || ret == EXIT_USAGE, "result %d", ret);

	if (ret == EXIT_USAGE) {
		FUZZ_CHECK(cl.efmt && cl.ea && cl.eb, "usage error without its strings");
		snprintf(msg, sizeof(msg), cl.efmt, cl.ea, cl.eb);
		goto out;
	}
	if (cl.help)
		goto out;
	/* What call() and wait_state() do with --timeout: an int of milliseconds. */
	ms = timeout_ms(&cl.c);
	FUZZ_CHECK(cl.c.timeout_s >= 0 && cl.c.timeout_s <= INT_MAX / 1000 && ms >= -1,
		   "timeout %g s, %d ms", cl.c.timeout_s, ms);
	if (!cl.v->wire) {
		FUZZ_CHECK(!strcmp(cl.v->w1, "wait") && cl.c.socket && cl.state &&
				   !vms_swap_state_parse(cl.state, &state) && state == cl.want,
			   "wait: state '%s'", cl.state ?: "(null)");
	} else {
		check_request(&cl);
		if (cl.c.wait_state)
			FUZZ_CHECK(!strcmp(cl.v->w1, "swap") &&
					   !vms_swap_state_parse(cl.c.wait_state, &state) &&
					   state == cl.want,
				   "--wait-state '%s'", cl.c.wait_state);
	}
out:
	for (int k = 1; k < argc; k++)
		free(args[k]);
	return 0;
}
