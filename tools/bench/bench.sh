#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench.sh - run every benchmark of the plain build ('make bench' calls this after
# building). Each benchmark prints its figures beside the raw kernel operation that
# bounds it. Add new benchmarks to BENCHES; extra arguments go to every one of them.
#   tools/bench/bench.sh [--variant default] [benchmark args...]
#   VMS_BENCH_DIR=/path selects the directory for swap files (default $TMPDIR or /tmp).
set -eu

variant=default
if [ "${1:-}" = "--variant" ]; then
	variant=$2
	shift 2
fi
bin="build/$variant/tools"
dir="${VMS_BENCH_DIR:-${TMPDIR:-/tmp}}"

BENCHES="vms_bench_pages"
BENCHES="$BENCHES vms_bench_guest" # guest-level demand paging (issue 7)
BENCHES="$BENCHES vms_bench_freeze" # freezer stop/resume latency, N processes x M threads (issue 4)

rc=0
for b in $BENCHES; do
	if [ ! -x "$bin/$b" ]; then
		echo "bench.sh: $bin/$b is missing (run make first)" >&2
		rc=1
		continue
	fi
	echo "== $b"
	case $b in
	vms_bench_pages) "$bin/$b" -d "$dir" "$@" || rc=1 ;;
	*) "$bin/$b" "$@" || rc=1 ;;
	esac
done
exit $rc
