/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/status.h - the swap status a VMM reports: state, metrics and the record of
 * the last state transition, as a C struct with crosvm's layout and as crosvm's exact
 * one-line JSON.
 *
 * Contract:
 *  - struct vms_swap_status has the C layout of crosvm's #[repr(C)] SwapStatus:
 *    { int32 state; 4 bytes padding; u64 x 7 metrics; u64 pages; u64 time_ms },
 *    80 bytes. The state values are crosvm's (Ready = 0 ... SwapInInProgress = 6).
 *  - vms_swap_status_json() renders exactly what `crosvm swap status` prints, minus
 *    the trailing newline: compact, keys in declaration order, e.g.
 *    {"state":"Pending","metrics":{"resident_pages":0,...,"swap_pages":0},
 *     "state_transition":{"pages":1542,"time_ms":17}}
 *  - Everything here is pure (no I/O, no globals) and thread-safe.
 * What each field means: contract 1.6, 2.7, 3.9 (ref/CONTRACT.md).
 */
#ifndef VMMSWAP_STATUS_H
#define VMMSWAP_STATUS_H

#include <stddef.h>
#include <stdint.h>

enum vms_swap_state {
	VMS_SWAP_READY = 0,
	VMS_SWAP_FAILED = 1,
	VMS_SWAP_PENDING = 2,
	VMS_SWAP_TRIM_IN_PROGRESS = 3,
	VMS_SWAP_SWAP_OUT_IN_PROGRESS = 4,
	VMS_SWAP_ACTIVE = 5,
	VMS_SWAP_SWAP_IN_IN_PROGRESS = 6,
};
#define VMS_SWAP_NR_STATES 7

/* Metrics in crosvm's order and with its semantics (spec 3.9). */
struct vms_swap_metrics {
	uint64_t resident_pages;
	uint64_t copied_from_file_pages;
	uint64_t copied_from_staging_pages;
	uint64_t zeroed_pages;
	uint64_t redundant_pages;
	uint64_t staging_pages;
	uint64_t swap_pages;
};

/* The last (or running) transition: pages handled and milliseconds (spec 2.7). */
struct vms_swap_transition {
	uint64_t pages;
	uint64_t time_ms;
};

struct vms_swap_status {
	int32_t state; /* enum vms_swap_state */
	struct vms_swap_metrics metrics;
	struct vms_swap_transition state_transition;
};

_Static_assert(sizeof(struct vms_swap_status) == 80, "crosvm SwapStatus layout");
_Static_assert(offsetof(struct vms_swap_status, metrics) == 8, "crosvm SwapStatus layout");
_Static_assert(offsetof(struct vms_swap_status, state_transition) == 64,
	       "crosvm SwapStatus layout");

/* Longest JSON vms_swap_status_json() can produce, including the NUL. */
#define VMS_SWAP_STATUS_JSON_MAX 512

/* crosvm's spelling ("Ready", "TrimInProgress", ...); NULL for an unknown value. */
const char *vms_swap_state_name(int state);

/* Parse a crosvm spelling. 0 and *state set, or -EINVAL. */
int vms_swap_state_parse(const char *name, int *state);

/*
 * Render the one-line JSON into buf (NUL terminated, no newline). Returns the length
 * (excluding the NUL), -ENOSPC if buf is too small (VMS_SWAP_STATUS_JSON_MAX always
 * fits) or -EINVAL for an unknown state.
 */
int vms_swap_status_json(const struct vms_swap_status *st, char *buf, size_t len);

/*
 * Parse exactly the shape vms_swap_status_json() produces (keys in that order,
 * no whitespace). 0, or -EINVAL for anything else. For tools and tests.
 */
int vms_swap_status_parse_json(const char *json, struct vms_swap_status *st);

#endif /* VMMSWAP_STATUS_H */
