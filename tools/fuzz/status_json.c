// SPDX-License-Identifier: MIT
/*
 * status_json - fuzz target for crosvm's status JSON (ref/status.c), which crosses
 * process boundaries twice: minivmm renders it into its control replies
 * (vms_swap_status_json) and the vmmswap CLI, like any tool, parses it back from
 * whatever the VMM sent (vms_swap_status_parse_json, in 'wait' and --wait-state).
 *
 * Input: the first 80 bytes (zero padded) are a struct vms_swap_status; the whole
 * input, NUL terminated, is also a candidate JSON text.
 *
 * Asserts: (1) every struct with a known state renders into less than
 * VMS_SWAP_STATUS_JSON_MAX bytes and parses back to the same struct; a buffer one
 * byte short gives -ENOSPC and still a NUL-terminated prefix; an unknown state gives
 * -EINVAL. (2) parsing arbitrary bytes never reads past their end, and any text
 * that parses is the canonical rendering of what it parsed to.
 */
#include <vmmswap/status.h>

#include "fuzz/fuzz.h"

static bool same_status(const struct vms_swap_status *a, const struct vms_swap_status *b)
{
	const struct vms_swap_metrics *x = &a->metrics, *y = &b->metrics;

	return a->state == b->state && x->resident_pages == y->resident_pages &&
	       x->copied_from_file_pages == y->copied_from_file_pages &&
	       x->copied_from_staging_pages == y->copied_from_staging_pages &&
	       x->zeroed_pages == y->zeroed_pages && x->redundant_pages == y->redundant_pages &&
	       x->staging_pages == y->staging_pages && x->swap_pages == y->swap_pages &&
	       a->state_transition.pages == b->state_transition.pages &&
	       a->state_transition.time_ms == b->state_transition.time_ms;
}

static void round_trip(const uint8_t *data, size_t size)
{
	struct vms_swap_status st = { 0 }, back;
	char json[VMS_SWAP_STATUS_JSON_MAX];
	char *exact;
	int n, ret;

	memcpy(&st, data, size < sizeof(st) ? size : sizeof(st));
	if (!vms_swap_state_name(st.state)) {
		ret = vms_swap_status_json(&st, json, sizeof(json));
		FUZZ_CHECK(ret == -EINVAL, "state %d rendered: %d", st.state, ret);
		st.state = (int32_t)((uint32_t)st.state % VMS_SWAP_NR_STATES);
	}
	n = vms_swap_status_json(&st, json, sizeof(json));
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(json) && (size_t)n == strlen(json), "rendered %d",
		   n);
	ret = vms_swap_status_parse_json(json, &back);
	FUZZ_CHECK(!ret, "own JSON rejected: %d: %s", ret, json);
	FUZZ_CHECK(same_status(&st, &back), "round trip changed the status: %s", json);

	/* Exact-size heap buffers, so ASan sees a write past the end. */
	exact = malloc((size_t)n + 1);
	FUZZ_CHECK(exact, "out of memory");
	ret = vms_swap_status_json(&st, exact, (size_t)n + 1);
	FUZZ_CHECK(ret == n && !strcmp(exact, json), "exact buffer: %d", ret);
	ret = vms_swap_status_json(&st, exact, (size_t)n);
	FUZZ_CHECK(ret == -ENOSPC && strlen(exact) == (size_t)n - 1 &&
			   !strncmp(exact, json, (size_t)n - 1),
		   "short buffer: %d", ret);
	free(exact);
}

static void parse_bytes(const uint8_t *data, size_t size)
{
	struct vms_swap_status st;
	char json[VMS_SWAP_STATUS_JSON_MAX];
	char *text = malloc(size + 1);
	int ret, n;

	FUZZ_CHECK(text, "out of memory");
	memcpy(text, data, size);
	text[size] = '\0';
	ret = vms_swap_status_parse_json(text, &st);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL, "parse: %d", ret);
	if (!ret) {
		n = vms_swap_status_json(&st, json, sizeof(json));
		FUZZ_CHECK(n > 0 && !strcmp(json, text), "accepted a non-canonical text: %s", text);
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	round_trip(data, size);
	parse_bytes(data, size);
	return 0;
}
