#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# 'make stress': run the racy page-handler and controller selftest programs many
# times while busy loops keep every CPU loaded (a race that needs the event-loop
# thread to be preempted at the wrong moment shows up under load, not on an idle
# machine), and report the failures per program. Not part of 'make check'.
#
# Usage: tools/stress.sh [--runs N] [--variant default|san|tsan] [--load N] [PROGRAM...]
#   --runs N      runs per program (default 500)
#   --variant V   build variant whose binaries to run (default: default)
#   --load N      busy loops beside the runs (default: online CPUs + 1)
#   PROGRAM       selftest program names (default: the racy ones below)
# The log of every failed run is kept in build/stress/PROGRAM.RUN.log. Ends with
# "N passed, N failed" (one per run) and exits 1 if any run failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

runs=500 variant=default load=$(($(nproc) + 1))
progs=()
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) runs=$2; shift 2 ;;
	--variant) variant=$2; shift 2 ;;
	--load) load=$2; shift 2 ;;
	-*) echo "stress.sh: unknown option '$1' (see the header of $0)" >&2; exit 2 ;;
	*) progs+=("$1"); shift ;;
	esac
done
[ ${#progs[@]} -gt 0 ] || progs=(page_handler_swap_test page_handler_race_test
	page_handler_remove_test page_handler_fault_test controller_concurrency_test
	controller_cleanup_test)
case "$runs" in '' | *[!0-9]*) echo "stress.sh: --runs needs a number" >&2; exit 2 ;; esac

bindir=build/$variant/selftests
for p in "${progs[@]}"; do
	[ -x "$bindir/$p" ] || { echo "stress.sh: $bindir/$p is not built (run make first)" >&2; exit 2; }
done
logdir=build/stress
mkdir -p "$logdir/bin"
# Run a snapshot, so that a rebuild during the runs cannot make one fail.
for p in "${progs[@]}"; do
	cp "$bindir/$p" "$logdir/bin/$p" || exit 2
done
bindir=$logdir/bin
timeout_s=$(sed -n 's/^timeout=//p' selftests/settings 2>/dev/null)
timeout_s=${timeout_s:-300}

loaders=()
stop_load() {
	[ ${#loaders[@]} -eq 0 ] || kill "${loaders[@]}" 2>/dev/null
	wait 2>/dev/null
}
trap stop_load EXIT
for ((i = 0; i < load; i++)); do
	(while :; do :; done) &
	loaders+=($!)
done
echo "# stress: ${#progs[@]} programs x $runs runs, variant $variant, $load busy loops"

passed=0 failed=0
start=$(date +%s)
for p in "${progs[@]}"; do
	f=0 t0=$(date +%s)
	for ((r = 1; r <= runs; r++)); do
		log=$logdir/$p.$r.log
		if timeout "$timeout_s" "$bindir/$p" >"$log" 2>&1; then
			rm -f "$log"
			passed=$((passed + 1))
			continue
		fi
		f=$((f + 1))
		failed=$((failed + 1))
		echo "# $p run $r failed: $(grep -m1 -E 'Expected|not ok' "$log")"
	done
	echo "# $p: $f failed of $runs runs ($(($(date +%s) - t0)) s)"
done
stop_load
trap - EXIT
echo "# stress: $(($(date +%s) - start)) s; logs of failed runs in $logdir/"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
