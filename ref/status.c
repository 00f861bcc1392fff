// SPDX-License-Identifier: MIT
/*
 * status.c - crosvm's swap status: state names and the one-line JSON (status.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <vmmswap/status.h>

static const char *const state_names[VMS_SWAP_NR_STATES] = {
	[VMS_SWAP_READY] = "Ready",
	[VMS_SWAP_FAILED] = "Failed",
	[VMS_SWAP_PENDING] = "Pending",
	[VMS_SWAP_TRIM_IN_PROGRESS] = "TrimInProgress",
	[VMS_SWAP_SWAP_OUT_IN_PROGRESS] = "SwapOutInProgress",
	[VMS_SWAP_ACTIVE] = "Active",
	[VMS_SWAP_SWAP_IN_IN_PROGRESS] = "SwapInInProgress",
};

const char *vms_swap_state_name(int state)
{
	if (state < 0 || state >= VMS_SWAP_NR_STATES)
		return NULL;
	return state_names[state];
}

int vms_swap_state_parse(const char *name, int *state)
{
	for (int i = 0; i < VMS_SWAP_NR_STATES; i++) {
		if (name && strcmp(name, state_names[i]) == 0) {
			*state = i;
			return 0;
		}
	}
	return -EINVAL;
}

#define JSON_FMT                                                                                   \
	"{\"state\":\"%s\",\"metrics\":{\"resident_pages\":%" PRIu64                               \
	",\"copied_from_file_pages\":%" PRIu64 ",\"copied_from_staging_pages\":%" PRIu64           \
	",\"zeroed_pages\":%" PRIu64 ",\"redundant_pages\":%" PRIu64 ",\"staging_pages\":%" PRIu64 \
	",\"swap_pages\":%" PRIu64 "},\"state_transition\":{\"pages\":%" PRIu64                    \
	",\"time_ms\":%" PRIu64 "}}"

int vms_swap_status_json(const struct vms_swap_status *st, char *buf, size_t len)
{
	const struct vms_swap_metrics *m = &st->metrics;
	const char *name = vms_swap_state_name(st->state);
	int n;

	if (!name)
		return -EINVAL;
	n = snprintf(buf, len, JSON_FMT, name, m->resident_pages, m->copied_from_file_pages,
		     m->copied_from_staging_pages, m->zeroed_pages, m->redundant_pages,
		     m->staging_pages, m->swap_pages, st->state_transition.pages,
		     st->state_transition.time_ms);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= len)
		return -ENOSPC;
	return n;
}

/* Match the literal lit at *p and advance. */
static int expect(const char **p, const char *lit)
{
	size_t l = strlen(lit);

	if (strncmp(*p, lit, l) != 0)
		return -EINVAL;
	*p += l;
	return 0;
}

/* An unsigned decimal without sign, leading zeros or overflow. */
static int parse_u64(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;

	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (x > (UINT64_MAX - d) / 10)
			return -EINVAL;
		x = x * 10 + d;
	}
	*v = x;
	*p = s;
	return 0;
}

int vms_swap_status_parse_json(const char *json, struct vms_swap_status *st)
{
	static const char *const keys[] = {
		",\"metrics\":{\"resident_pages\":",
		",\"copied_from_file_pages\":",
		",\"copied_from_staging_pages\":",
		",\"zeroed_pages\":",
		",\"redundant_pages\":",
		",\"staging_pages\":",
		",\"swap_pages\":",
		"},\"state_transition\":{\"pages\":",
		",\"time_ms\":",
	};
	uint64_t *fields[] = {
		&st->metrics.resident_pages,
		&st->metrics.copied_from_file_pages,
		&st->metrics.copied_from_staging_pages,
		&st->metrics.zeroed_pages,
		&st->metrics.redundant_pages,
		&st->metrics.staging_pages,
		&st->metrics.swap_pages,
		&st->state_transition.pages,
		&st->state_transition.time_ms,
	};
	const char *p = json, *q;
	char name[32];
	int state;

	if (!json || expect(&p, "{\"state\":\""))
		return -EINVAL;
	q = strchr(p, '"');
	if (!q || (size_t)(q - p) >= sizeof(name))
		return -EINVAL;
	memcpy(name, p, (size_t)(q - p));
	name[q - p] = '\0';
	if (vms_swap_state_parse(name, &state))
		return -EINVAL;
	p = q + 1;
	memset(st, 0, sizeof(*st));
	st->state = state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (expect(&p, keys[i]) || parse_u64(&p, fields[i]))
			return -EINVAL;
	}
	if (expect(&p, "}}") || *p != '\0')
		return -EINVAL;
	return 0;
}
