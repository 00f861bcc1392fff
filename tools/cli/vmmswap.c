// SPDX-License-Identifier: MIT
/*
 * vmmswap - the control CLI for minivmm: crosvm's `swap` verbs with crosvm's output,
 * plus verbs that drive the guest, the device processes and the balloon.
 *
 * Usage: vmmswap --help
 *
 * The CLI checks the syntax, turns the command into one request on the VMM's
 * control socket (vm/control.h), waits for the reply and prints it: for the swap
 * verbs exactly what `crosvm swap` prints, otherwise one human line, or with --json
 * the reply's JSON object. Exit status: 0 done (also "ignored in this state", which
 * is reported on stderr), 1 error, 2 a verification found a mismatch, 64 usage.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vmmswap/status.h>

#include "vmm/control.h"

#define EXIT_ERROR    1
#define EXIT_MISMATCH 2
#define EXIT_USAGE    64

#define MAX_KEYS 4

/* One CLI verb: the words that name it, its numeric arguments and the request. */
struct verb {
	const char *w1, *w2; /* e.g. "swap", "enable"; w2 NULL for one-word verbs */
	const char *wire;    /* request verb */
	const char *op;	     /* op= value, or NULL */
	const char *keys[MAX_KEYS];
	int nreq;	  /* required numeric arguments (keys[0..nreq)) */
	int nopt;	  /* optional ones after them */
	const char *args; /* for usage messages */
	const char *help;
};

/* clang-format off: one verb per entry reads better than one field per line */
static const struct verb verbs[] = {
	{ "swap",
	  "enable",
	  "swap",
	  "enable",
	  { 0 },
	  0,
	  0,
	  "SOCKET",
	  "pause vCPUs, freeze devices, move memory to staging" },
	{ "swap",
	  "trim",
	  "swap",
	  "trim",
	  { 0 },
	  0,
	  0,
	  "SOCKET",
	  "drop zero and unchanged staged pages (Pending only)" },
	{ "swap",
	  "out",
	  "swap",
	  "out",
	  { 0 },
	  0,
	  0,
	  "SOCKET",
	  "write staged pages to the swap file" },
	{ "swap",
	  "disable",
	  "swap",
	  "disable",
	  { 0 },
	  0,
	  0,
	  "[--slow-file-cleanup] SOCKET",
	  "swap everything back in, then Ready" },
	{ "swap",
	  "status",
	  "swap",
	  "status",
	  { 0 },
	  0,
	  0,
	  "SOCKET",
	  "print crosvm's one-line status JSON" },
	{ "wait",
	  NULL,
	  NULL,
	  NULL,
	  { 0 },
	  0,
	  0,
	  "STATE SOCKET",
	  "wait until the swap state is STATE (--timeout)" },
	{ "ping", NULL, "ping", NULL, { 0 }, 0, 0, "SOCKET", "check that the VMM answers" },
	{ "info",
	  NULL,
	  "info",
	  NULL,
	  { 0 },
	  0,
	  0,
	  "SOCKET",
	  "layout: regions, vCPUs, devices, balloon" },
	{ "fill",
	  NULL,
	  "guest",
	  "fill",
	  { "start", "count", "seed" },
	  3,
	  0,
	  "START COUNT SEED SOCKET",
	  "guest writes pattern(SEED, page) over the pages" },
	{ "verify",
	  NULL,
	  "guest",
	  "verify",
	  { "start", "count", "seed" },
	  3,
	  0,
	  "START COUNT SEED SOCKET",
	  "guest compares with pattern(SEED); exit 2 on mismatch" },
	{ "verify-zero",
	  NULL,
	  "guest",
	  "verify-zero",
	  { "start", "count" },
	  2,
	  0,
	  "START COUNT SOCKET",
	  "guest checks that the pages read zero" },
	{ "touch",
	  "read",
	  "guest",
	  "read-touch",
	  { "start", "count" },
	  2,
	  0,
	  "START COUNT SOCKET",
	  "guest reads one word per page" },
	{ "touch",
	  "write",
	  "guest",
	  "write-touch",
	  { "start", "count" },
	  2,
	  0,
	  "START COUNT SOCKET",
	  "guest rewrites one word per page (same value)" },
	{ "checksum",
	  NULL,
	  "guest",
	  "checksum",
	  { "start", "count" },
	  2,
	  0,
	  "START COUNT SOCKET",
	  "guest checksums every word of the pages" },
	{ "writer",
	  "start",
	  "guest",
	  "writer-start",
	  { "start", "count", "seed" },
	  3,
	  0,
	  "START COUNT SEED SOCKET",
	  "continuous writer: passes SEED, SEED+1, ..." },
	{ "writer",
	  "stop",
	  "guest",
	  "writer-stop",
	  { 0 },
	  0,
	  0,
	  "SOCKET",
	  "stop it; reports the last complete pass's seed" },
	{ "writer",
	  "status",
	  "guest",
	  "writer-status",
	  { 0 },
	  0,
	  0,
	  "SOCKET",
	  "passes the writer has completed so far" },
	{ "inflate",
	  NULL,
	  "guest",
	  "inflate",
	  { "start", "count" },
	  2,
	  0,
	  "START COUNT SOCKET",
	  "guest gives the pages to the balloon (discarded)" },
	{ "deflate",
	  NULL,
	  "guest",
	  "deflate",
	  { "start", "count" },
	  2,
	  0,
	  "START COUNT SOCKET",
	  "guest takes them back, checks they read zero" },
	{ "dma",
	  "fill",
	  "dma",
	  "fill",
	  { "dev", "start", "count", "seed" },
	  4,
	  0,
	  "DEV START COUNT SEED SOCKET",
	  "device process DEV writes pattern(SEED)" },
	{ "dma",
	  "verify",
	  "dma",
	  "verify",
	  { "dev", "start", "count", "seed" },
	  4,
	  0,
	  "DEV START COUNT SEED SOCKET",
	  "device process DEV compares with pattern(SEED)" },
	{ "dma",
	  "copy",
	  "dma",
	  "copy",
	  { "dev", "src", "dst", "count" },
	  4,
	  0,
	  "DEV SRC DST COUNT SOCKET",
	  "device process DEV copies COUNT pages SRC -> DST" },
	{ "dma",
	  "ping",
	  "dma",
	  "ping",
	  { "dev" },
	  1,
	  0,
	  "DEV SOCKET",
	  "device process DEV answers" },
	{ "device",
	  "exit",
	  "device",
	  "exit",
	  { "dev", "status" },
	  1,
	  1,
	  "DEV [STATUS] SOCKET",
	  "device process DEV exits (status, default 0)" },
	{ "device",
	  "crash",
	  "device",
	  "crash",
	  { "dev" },
	  1,
	  0,
	  "DEV SOCKET",
	  "device process DEV dies by SIGABRT" },
	{ "stop",
	  NULL,
	  "stop",
	  NULL,
	  { "status" },
	  0,
	  1,
	  "[STATUS] SOCKET",
	  "halt the guest; minivmm exits with STATUS" },
};
/* clang-format on */

#define NR_VERBS (int)(sizeof(verbs) / sizeof(verbs[0]))

struct cli {
	bool json;
	bool slow_file_cleanup;
	long vcpu; /* -1: not given */
	double timeout_s;
	const char *wait_state;
	const char *socket;
};

/*
 * The command line, decided by parse_cmdline() without any I/O: either help, a usage
 * error (a message for main to print) or what to run.
 */
struct cmdline {
	struct cli c;
	bool help;		    /* -h, --help */
	const struct verb *v;	    /* the verb to run */
	const char *state;	    /* 'wait': its STATE argument */
	int want;		    /* 'wait' STATE or --wait-state, as a number */
	char req[512];		    /* every other verb: the request */
	const char *efmt, *ea, *eb; /* a usage error: format and its two strings */
	char name[32];		    /* the verb's words, for one of those messages */
};

/* Record a usage error for main to print; returns EXIT_USAGE. */
static int usage_error(struct cmdline *cl, const char *fmt, const char *a, const char *b)
{
	cl->efmt = fmt;
	cl->ea = a;
	cl->eb = b;
	return EXIT_USAGE;
}

static void print_usage_error(const struct cmdline *cl)
{
	fprintf(stderr, "vmmswap: ");
	fprintf(stderr, cl->efmt, cl->ea, cl->eb);
	fprintf(stderr, "\nTry 'vmmswap --help'.\n");
}

static void usage(FILE *f)
{
	int i;

	fprintf(f, "Usage: vmmswap [OPTIONS] VERB ARGS... SOCKET\n"
		   "Control a minivmm VM through its control socket (the last argument, or\n"
		   "--socket). Pages are RAM page indexes: the pages of all guest RAM regions\n"
		   "numbered from 0 in region order (see 'info'). Numbers may be hex (0x...).\n"
		   "\nVerbs:\n");
	for (i = 0; i < NR_VERBS; i++) {
		char name[64];

		snprintf(name, sizeof(name), "%s%s%s %s", verbs[i].w1, verbs[i].w2 ? " " : "",
			 verbs[i].w2 ?: "", verbs[i].args);
		fprintf(f, "  %-40s %s\n", name, verbs[i].help);
	}
	fprintf(f,
		"\nOptions (anywhere on the line):\n"
		"  --json                 print the VMM's reply as one JSON object\n"
		"  --vcpu N               run a guest command on vCPU N (default 0)\n"
		"  --slow-file-cleanup    swap disable: release the swap file gradually\n"
		"  --wait-state STATE     after a swap verb, wait until the state is STATE\n"
		"                         (Ready, Pending, TrimInProgress, SwapOutInProgress,\n"
		"                         Active, SwapInInProgress, Failed)\n"
		"  --timeout SEC          bound on every wait (default 60; 0 = none)\n"
		"  --socket PATH          the control socket, instead of the last argument\n"
		"  -h, --help             this text\n"
		"\nOutput: swap enable/trim/out/disable print nothing on success and swap status\n"
		"prints crosvm's one-line JSON, as `crosvm swap` does; a command the monitor\n"
		"ignored in the current state is reported on stderr. Exit status: 0 done or\n"
		"ignored, 1 error, 2 verification mismatch, 64 usage error.\n");
}

static bool parse_num(const char *s, unsigned long long *out)
{
	char *end;

	/* Only digits first: strtoull would skip spaces and then accept a sign. */
	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return !errno && !*end;
}

/* Explain a transport failure; the VMM never saw (or never answered) the request. */
static void explain_connect(const char *path, int err, double timeout_s)
{
	switch (-err) {
	case ENOENT:
		fprintf(stderr, "vmmswap: %s: no such socket (is minivmm running?)\n", path);
		break;
	case ECONNREFUSED:
		fprintf(stderr,
			"vmmswap: %s: nobody is listening (stale socket: did the VMM die?)\n",
			path);
		break;
	case ENOTSOCK:
	case EPROTOTYPE:
	case EPROTO:
		fprintf(stderr, "vmmswap: %s: not a minivmm control socket\n", path);
		break;
	case ECONNRESET:
	case EPIPE:
		fprintf(stderr,
			"vmmswap: %s: the VMM closed the connection without a reply "
			"(refused, or it died)\n",
			path);
		break;
	case ETIMEDOUT:
		fprintf(stderr, "vmmswap: %s: no reply within %g s\n", path, timeout_s);
		break;
	default:
		fprintf(stderr, "vmmswap: %s: %s\n", path, strerror(-err));
	}
}

static int timeout_ms(const struct cli *c)
{
	return c->timeout_s > 0 ? (int)(c->timeout_s * 1000) : -1;
}

struct answer {
	char buf[MINIVM_CTL_MSG_MAX];
	const char *result, *human, *json;
};

static int call(const struct cli *c, const char *request, struct answer *a)
{
	int ret = minivm_ctl_call(c->socket, request, a->buf, sizeof(a->buf), timeout_ms(c));

	if (!ret)
		ret = minivm_ctl_parse_reply(a->buf, &a->result, &a->human, &a->json);
	if (ret)
		explain_connect(c->socket, ret, c->timeout_s);
	return ret;
}

/* Find "key":<digits> in a flat reply JSON (our own replies only). */
static long json_long(const char *json, const char *key, long def)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p ? strtol(p + strlen(pat), NULL, 10) : def;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Poll the swap status until it is 'state' (want: its number, parse_cmdline() checked it). */
static int wait_state(const struct cli *c, const char *state, int want)
{
	double deadline = now_s() + c->timeout_s;
	char current[32] = "?";
	struct answer *a = malloc(sizeof(*a));
	struct vms_swap_status st;
	int ret = EXIT_ERROR;

	if (!a)
		return EXIT_ERROR;
	for (;;) {
		if (call(c, MINIVM_CTL_MAGIC " swap op=status", a))
			break;
		if (strcmp(a->result, "ok")) {
			fprintf(stderr, "vmmswap: wait: %s\n", a->human);
			break;
		}
		if (vms_swap_status_parse_json(a->human, &st)) {
			fprintf(stderr, "vmmswap: wait: cannot parse status '%s'\n", a->human);
			break;
		}
		snprintf(current, sizeof(current), "%s", vms_swap_state_name(st.state) ?: "?");
		if (st.state == want) {
			if (c->json)
				printf("%s\n", a->human);
			ret = 0;
			break;
		}
		if (c->timeout_s > 0 && now_s() > deadline) {
			fprintf(stderr,
				"vmmswap: timed out after %g s waiting for %s (state is %s)\n",
				c->timeout_s, state, current);
			break;
		}
		usleep(10000);
	}
	free(a);
	return ret;
}

/* Print the reply of a swap verb the way `crosvm swap` does. */
static int print_swap(const struct cli *c, const struct verb *v, const struct answer *a)
{
	bool status = !strcmp(v->op, "status");

	if (!strcmp(a->result, "ok") || !strcmp(a->result, "ignored")) {
		if (c->json)
			printf("%s\n", a->json);
		else if (status)
			printf("%s\n", a->human);
		if (!strcmp(a->result, "ignored"))
			fprintf(stderr, "vmmswap: %s\n", a->human);
		return 0;
	}
	if (c->json) {
		printf("%s\n", a->json);
	} else {
		long err = json_long(a->json, "errno", EIO);

		/* crosvm: "unexpected response: error: <strerror> (os error N)". */
		fprintf(stderr, "unexpected response: error: %s (os error %ld)\n", strerror(err),
			err);
		fprintf(stderr, "vmmswap: %s\n", a->human);
	}
	return EXIT_ERROR;
}

static int print_other(const struct cli *c, const struct answer *a)
{
	bool ok = !strcmp(a->result, "ok"), mismatch = !strcmp(a->result, "mismatch");

	if (c->json)
		printf("%s\n", a->json);
	else if (ok && *a->human)
		printf("%s\n", a->human);
	else if (mismatch)
		printf("%s\n", a->human);
	else if (!ok)
		fprintf(stderr, "vmmswap: %s\n", a->human);
	return ok ? 0 : mismatch ? EXIT_MISMATCH : EXIT_ERROR;
}

static int parse_opts(int argc, char **argv, struct cmdline *cl)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "vcpu", required_argument, NULL, 'c' },
		{ "slow-file-cleanup", no_argument, NULL, 'S' },
		{ "wait-state", required_argument, NULL, 'W' },
		{ "timeout", required_argument, NULL, 't' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli *c = &cl->c;
	unsigned long long n;
	char *end;
	int opt;

	c->vcpu = -1;
	c->timeout_s = 60;
	opterr = 0;
	optind = 0; /* a full getopt reset, so parsing can be repeated (tools/fuzz/) */
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			c->json = true;
			break;
		case 'c':
			if (!parse_num(optarg, &n) || n > 1024)
				return usage_error(cl, "--vcpu wants a vCPU number, not '%s'%s",
						   optarg, "");
			c->vcpu = (long)n;
			break;
		case 'S':
			c->slow_file_cleanup = true;
			break;
		case 'W':
			c->wait_state = optarg;
			break;
		case 't':
			errno = 0;
			c->timeout_s = strtod(optarg, &end);
			/* Not NaN, and its milliseconds fit timeout_ms()'s int. */
			if (errno || end == optarg || *end || !(c->timeout_s >= 0) ||
			    c->timeout_s > INT_MAX / 1000)
				return usage_error(cl, "--timeout wants seconds, not '%s'%s",
						   optarg, "");
			break;
		case 's':
			c->socket = optarg;
			break;
		case 'h':
			cl->help = true;
			return 0;
		default:
			return usage_error(cl, "unknown or incomplete option '%s'%s",
					   argv[optind - 1] ?: "?", "");
		}
	}
	return 0;
}

/*
 * Options and positional arguments: 0 with cl->help or cl->v (and cl->req) set, or
 * EXIT_USAGE with the message in cl->efmt. No I/O, no exit: tools/fuzz/cli_args.c
 * calls it on arbitrary argument vectors (getopt may permute argv).
 */
static int parse_cmdline(int argc, char **argv, struct cmdline *cl)
{
	struct cli *c = &cl->c;
	const struct verb *v = NULL;
	char **pos;
	int npos, i, k, ret;
	size_t len;

	memset(cl, 0, sizeof(*cl));
	ret = parse_opts(argc, argv, cl);
	if (ret || cl->help)
		return ret;
	pos = argv + optind;
	npos = argc - optind;
	if (npos == 0)
		return usage_error(cl, "missing verb%s%s", "", "");

	/* The socket is the last positional argument unless --socket named it. */
	if (!c->socket) {
		if (npos < 2)
			return usage_error(cl, "missing SOCKET after '%s'%s", pos[0], "");
		c->socket = pos[--npos];
	}

	for (i = 0; i < NR_VERBS; i++) {
		if (strcmp(pos[0], verbs[i].w1))
			continue;
		if (!verbs[i].w2 || (npos > 1 && !strcmp(pos[1], verbs[i].w2))) {
			v = &verbs[i];
			break;
		}
	}
	if (!v) {
		for (i = 0; i < NR_VERBS && strcmp(pos[0], verbs[i].w1); i++)
			;
		if (i < NR_VERBS)
			return usage_error(cl, "'%s' needs a sub-command, not '%s'", pos[0],
					   npos > 1 ? pos[1] : "(nothing)");
		return usage_error(cl, "unknown verb '%s'%s", pos[0], "");
	}
	pos += v->w2 ? 2 : 1;
	npos -= v->w2 ? 2 : 1;

	if (c->slow_file_cleanup && (!v->op || strcmp(v->w1, "swap") || strcmp(v->op, "disable")))
		return usage_error(cl, "--slow-file-cleanup only goes with 'swap disable'%s%s", "",
				   "");
	if (c->vcpu >= 0 && (!v->wire || strcmp(v->wire, "guest")))
		return usage_error(cl, "--vcpu only goes with guest commands, not '%s'%s", v->w1,
				   "");
	if (c->wait_state && strcmp(v->w1, "swap"))
		return usage_error(cl, "--wait-state only goes with swap verbs (or use 'wait')%s%s",
				   "", "");

	if (!strcmp(v->w1, "wait")) {
		if (npos != 1)
			return usage_error(cl, "usage: vmmswap wait STATE SOCKET%s%s", "", "");
		if (vms_swap_state_parse(pos[0], &cl->want))
			return usage_error(cl, "unknown state '%s'%s", pos[0],
					   " (Ready, Failed, Pending, TrimInProgress, "
					   "SwapOutInProgress, Active, SwapInInProgress)");
		cl->state = pos[0];
		cl->v = v;
		return 0;
	}

	if (npos < v->nreq || npos > v->nreq + v->nopt) {
		snprintf(cl->name, sizeof(cl->name), "%s%s%s", v->w1, v->w2 ? " " : "",
			 v->w2 ?: "");
		return usage_error(cl, "usage: vmmswap %s %s", cl->name, v->args);
	}

	len = snprintf(cl->req, sizeof(cl->req), "%s %s", MINIVM_CTL_MAGIC, v->wire);
	if (v->op)
		len += snprintf(cl->req + len, sizeof(cl->req) - len, " op=%s", v->op);
	for (k = 0; k < npos; k++) {
		unsigned long long n;

		if (!parse_num(pos[k], &n))
			return usage_error(cl, "%s must be a non-negative number, not '%s'",
					   v->keys[k], pos[k]);
		len += snprintf(cl->req + len, sizeof(cl->req) - len, " %s=%llu", v->keys[k], n);
	}
	if (c->vcpu >= 0)
		len += snprintf(cl->req + len, sizeof(cl->req) - len, " vcpu=%ld", c->vcpu);
	if (c->slow_file_cleanup)
		len += snprintf(cl->req + len, sizeof(cl->req) - len, " slow_file_cleanup=1");
	if (c->wait_state && vms_swap_state_parse(c->wait_state, &cl->want))
		return usage_error(cl, "unknown state '%s'%s", c->wait_state,
				   " (Ready, Failed, Pending, TrimInProgress, "
				   "SwapOutInProgress, Active, SwapInInProgress)");
	cl->v = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct cmdline cl;
	struct answer *a;
	int ret;

	ret = parse_cmdline(argc, argv, &cl);
	if (ret) {
		print_usage_error(&cl);
		return ret;
	}
	if (cl.help) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cl.v->w1, "wait"))
		return wait_state(&cl.c, cl.state, cl.want);

	a = malloc(sizeof(*a));
	if (!a)
		return EXIT_ERROR;
	if (call(&cl.c, cl.req, a)) {
		free(a);
		return EXIT_ERROR;
	}
	if (!strcmp(cl.v->w1, "swap"))
		ret = print_swap(&cl.c, cl.v, a);
	else
		ret = print_other(&cl.c, a);
	free(a);
	if (!ret && cl.c.wait_state) {
		bool json = cl.c.json;

		cl.c.json = false; /* one JSON document per run: the command's reply */
		ret = wait_state(&cl.c, cl.c.wait_state, cl.want);
		cl.c.json = json;
	}
	return ret;
}
