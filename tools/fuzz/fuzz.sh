#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Run the fuzz targets of tools/fuzz/ (see tools/fuzz/fuzz.h), one after the other.
#
#   tools/fuzz/fuzz.sh --build build/fuzz [--runs N] [TARGET...]     ('make fuzz')
#       libFuzzer: N executions per target (default 1000000), starting from the
#       seed corpus in fixtures/fuzz/TARGET/ (read only); what it learns goes to
#       build/fuzz/corpus/TARGET/, a crash input to build/fuzz/artifacts/TARGET/.
#       Prints executions and crashes per target; exit 1 if any target crashed.
#   tools/fuzz/fuzz.sh --replay --build build/san [TARGET...]        ('make fuzz-replay')
#       every file of fixtures/fuzz/TARGET/ once through the target built with
#       replay_main.c; exit 1 on any crash or sanitizer report, 4 (SKIP) with a
#       reason when the targets are not built.
#
# A crash input, once the bug is fixed, is kept as a regression input:
# fixtures/fuzz/TARGET/crash-WHAT (see fixtures/fuzz/README.md).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1

build=
runs=1000000
replay=0
targets=()
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--replay) replay=1; shift ;;
	-*) echo "fuzz.sh: unknown option '$1' (see the header of $0)" >&2; exit 2 ;;
	*) targets+=("$1"); shift ;;
	esac
done
[ -n "$build" ] || { echo "fuzz.sh: --build DIR is required" >&2; exit 2; }
if [ ${#targets[@]} = 0 ]; then
	for f in tools/fuzz/*.c; do
		t=$(basename "$f" .c)
		[ "$t" = replay_main ] || targets+=("$t")
	done
fi

# The longest input worth trying, per target: a little more than the largest valid
# message, so "one byte too long" and truncation are reachable.
max_len() {
	case "$1" in
	proto_cmd) echo 64 ;;	  # fd count + kinds + a 16-byte command
	proto_reply) echo 192 ;;  # a 160-byte reply
	status_json) echo 512 ;;  # VMS_SWAP_STATUS_JSON_MAX
	ctl_request) echo 1024 ;; # up to 16 key=value pairs; the CLI's requests are < 512
	ctl_reply) echo 1024 ;;	  # a verb byte + one reply
	cli_args) echo 512 ;;	  # up to 24 NUL-separated arguments
	*) echo 4096 ;;
	esac
}

if [ "$replay" = 1 ]; then
	total=0
	for t in "${targets[@]}"; do
		bin="$build/fuzz/$t"
		if [ ! -x "$bin" ]; then
			echo "$bin is not built (make SAN=1 fuzz-progs)"
			exit 4
		fi
		[ -d "fixtures/fuzz/$t" ] || { echo "fuzz-replay: no corpus fixtures/fuzz/$t/"; exit 1; }
		# Files, not the directory: a libFuzzer build would fuzz a directory.
		out=$("$bin" "fixtures/fuzz/$t"/* 2>&1)
		rc=$?
		if [ "$rc" != 0 ]; then
			printf '%s\n' "$out" | tail -n 40
			echo "fuzz-replay: $t: crashed (exit $rc) on the input named above"
			exit 1
		fi
		n=$(ls "fixtures/fuzz/$t" | wc -l)
		total=$((total + n))
		printf '%s\n' "$out" | tail -n 1
	done
	echo "fuzz-replay: ${#targets[@]} targets, $total inputs, no crash"
	exit 0
fi

status=0
summary=()
for t in "${targets[@]}"; do
	bin="$build/fuzz/$t"
	[ -x "$bin" ] || { echo "fuzz: $bin is not built" >&2; exit 1; }
	work="$build/corpus/$t"
	art="$build/artifacts/$t"
	log="$build/logs/$t.log"
	mkdir -p "$work" "$art" "$(dirname "$log")"
	before=$(ls "$art" | wc -l)
	dict=()
	[ -f "fixtures/fuzz/$t.dict" ] && dict=(-dict="fixtures/fuzz/$t.dict")
	echo "fuzz: $t: $runs runs, max_len $(max_len "$t") (log: $log)"
	"$bin" -runs="$runs" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" \
		"$work" "fixtures/fuzz/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	# After a crash there are no final stats: the last status line has the count.
	[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]\+\)[[:space:]].*/\1/p' "$log" | tail -n 1)
	crashes=$(($(ls "$art" | wc -l) - before))
	[ "$rc" = 0 ] || [ "$crashes" -gt 0 ] || crashes=1
	line="$t: ${execs:-?} executions, $crashes crashes, corpus $(ls "$work" | wc -l) inputs"
	if [ "$rc" != 0 ]; then
		status=1
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*fuzz check failed)' "$log" | head -n 5
		line="$line; crash input: $(ls -t "$art" | head -n 1 | sed "s|^|$art/|")"
	fi
	echo "fuzz: $line"
	summary+=("$line")
done
echo
printf '%s\n' "${summary[@]}"
exit "$status"
