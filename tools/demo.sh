#!/bin/bash
# SPDX-License-Identifier: MIT
#
# demo.sh - the main job: boot a minivmm guest, fill its memory, take it through
# enable -> trim -> out -> balloon inflate -> verify -> disable -> verify, and print
# a short report (state after each step, pages moved, time taken, verification
# results) and the final status JSON. Exit status 0 only if every check passed.
#
# Usage: tools/demo.sh [--variant default|san|tsan] [--mem SPEC] [--vcpus N] [--keep]
#   --variant  which build/<variant>/ to run (make demo passes its own)
#   --mem      guest RAM layout for minivmm (default 64M@16M,64M@4G)
#   --keep     keep the work directory (VMM log) for inspection
set -u

variant=default
mem=64M@16M,64M@4G
vcpus=2
keep=0
while [ $# -gt 0 ]; do
	case "$1" in
	--variant) variant=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--vcpus) vcpus=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "demo.sh: unknown argument '$1'" >&2; exit 64 ;;
	esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/$variant/tools
vmm=$bin/minivmm
cli=$bin/vmmswap
for f in "$vmm" "$cli" "$root/build/$variant/fixtures/guest.bin"; do
	if [ ! -x "$f" ] && [ ! -f "$f" ]; then
		echo "demo.sh: $f is missing; run 'make' (or 'make SAN=1') first" >&2
		exit 1
	fi
done
if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	echo "demo.sh: /dev/kvm is not accessible: cannot boot a guest" >&2
	exit 1
fi

work=$(mktemp -d /tmp/vmmswap-demo.XXXXXX)
sock=$work/vmm.sock
log=$work/minivmm.log
vmm_pid=
failures=0

cleanup() {
	if [ -n "$vmm_pid" ] && kill -0 "$vmm_pid" 2>/dev/null; then
		kill -TERM "$vmm_pid" 2>/dev/null
		wait "$vmm_pid" 2>/dev/null
	fi
	if [ $keep = 1 ] || [ $failures != 0 ]; then
		echo "(work directory kept: $work)"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

die() {
	echo "demo.sh: $*" >&2
	echo "---- minivmm log ----" >&2
	cat "$log" >&2
	failures=$((failures + 1))
	exit 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# jget KEY JSON: the first numeric or string value of "KEY" in a flat JSON text.
jget() {
	local v
	v=$(printf '%s' "$2" | grep -o "\"$1\":\"\{0,1\}[^,}\"]*" | head -n1)
	v=${v#*:}
	printf '%s' "${v#\"}"
}

ctl() { "$cli" --timeout 120 "$@" "$sock"; }

status_json() { ctl swap status || die "swap status failed"; }

# ---- boot ----
"$vmm" --mem "$mem" --vcpus "$vcpus" --devices 1 --socket "$sock" --swap-dir "$work" \
	>"$log" 2>&1 &
vmm_pid=$!
for _ in $(seq 200); do
	grep -q '^minivmm: ready' "$log" 2>/dev/null && break
	kill -0 "$vmm_pid" 2>/dev/null || die "minivmm exited during boot"
	sleep 0.05
done
grep -q '^minivmm: ready' "$log" || die "minivmm did not become ready"
info=$(ctl --json info) || die "info failed"
pages=$(jget total_pages "$info")
nregions=$(printf '%s' "$info" | grep -o '"gpa"' | wc -l)
region0=$(printf '%s' "$info" | grep -o '"pages":[0-9]*' | head -n1 | cut -d: -f2)

# The balloon takes 1024 pages straddling the boundary between the first two regions
# (or the middle of a single region), so inflation works on both sides of the gap.
bl_start=$((region0 - 512))
[ $bl_start -lt 0 ] && bl_start=0
bl_count=1024
[ $((bl_start + bl_count)) -gt "$pages" ] && bl_count=$((pages - bl_start))
bl_end=$((bl_start + bl_count))
seed=20260822

echo "vmmswap demo: minivmm pid $vmm_pid, $vcpus vCPUs, 1 device process," \
	"$pages guest pages ($((pages * 4 / 1024)) MiB) in $nregions regions [$mem]"
echo
printf '%-30s %-18s %10s %9s  %s\n' "step" "state after" "pages" "time" "notes (pages: moved by the step)"
printf '%-30s %-18s %10s %9s  %s\n' "----" "-----------" "-----" "----" "-----"

row() { printf '%-30s %-18s %10s %9s  %s\n' "$1" "$2" "$3" "$4" "$5"; }

# guest_cmd LABEL EXPECT VERB ARGS...: run a guest command with --json, check result.
guest_cmd() {
	local label=$1 expect=$2 out t0 t1 res mism
	shift 2
	t0=$(now_ms)
	out=$(ctl --json "$@")
	t1=$(now_ms)
	res=$(jget result "$out")
	mism=$(jget mismatched_pages "$out")
	st=$(jget state "$(status_json)")
	if [ "$res" = "$expect" ] && [ "$1" = fill ]; then
		row "$label" "$st" "$(jget pages "$out")" "$((t1 - t0)) ms" "pattern(seed $seed) written"
	elif [ "$res" = "$expect" ] && [ "$1" = touch ]; then
		row "$label" "$st" "$(jget pages "$out")" "$((t1 - t0)) ms" "resident, all zero"
	elif [ "$res" = "$expect" ]; then
		row "$label" "$st" "$(jget pages "$out")" "$((t1 - t0)) ms" "${mism:-0} mismatched pages: OK"
	else
		row "$label" "$st" "$(jget pages "$out")" "$((t1 - t0)) ms" "FAILED: $out"
		failures=$((failures + 1))
	fi
}

# swap_step LABEL VERB WAIT_STATE NOTE_KEY: run a swap verb, wait, report the transition.
swap_step() {
	local label=$1 verb=$2 want=$3 t0 t1 js
	t0=$(now_ms)
	ctl swap "$verb" || die "swap $verb failed"
	ctl --wait-state "$want" swap status >/dev/null || die "state $want not reached"
	t1=$(now_ms)
	js=$(status_json)
	row "$label" "$(jget state "$js")" "$(jget pages "$js")" "$((t1 - t0)) ms" \
		"monitor: $(jget time_ms "$js") ms; staging $(jget staging_pages "$js"), swap $(jget swap_pages "$js"), resident $(jget resident_pages "$js")"
}

# The last pages stay zero but resident (write-touched), so trim has work to show.
zero_count=$((pages / 16))
data_end=$((pages - zero_count))
[ $data_end -lt $bl_end ] && { data_end=$pages; zero_count=0; }
guest_cmd "fill memory (guest)" ok fill 0 "$data_end" "$seed"
[ $zero_count -gt 0 ] && guest_cmd "write-touch zero pages" ok touch write "$data_end" "$zero_count"
js=$(status_json)
row "status" "$(jget state "$js")" "$(jget resident_pages "$js")" "-" "resident pages before enable"

swap_step "swap enable" enable Pending
swap_step "swap trim" trim Pending # pages: zero (or unchanged) pages dropped
swap_step "swap out" out Active

t0=$(now_ms)
before=$(jget swap_pages "$(status_json)")
out=$(ctl --json inflate "$bl_start" "$bl_count") || die "inflate failed: $out"
t1=$(now_ms)
js=$(status_json)
after=$(jget swap_pages "$js")
note="pages [$bl_start, $bl_end) discarded by MADV_REMOVE; swap_pages $before -> $after"
if [ $((before - after)) -ne "$bl_count" ]; then
	note="$note: EXPECTED a drop of $bl_count"
	failures=$((failures + 1))
fi
row "balloon inflate" "$(jget state "$js")" "$bl_count" "$((t1 - t0)) ms" "$note"

# Verify the low pages now (each first touch faults them in from the swap file) and
# leave the high ones to the background swap-in of disable.
guest_cmd "verify low (demand paging)" ok verify 0 "$bl_start" "$seed"
js=$(status_json)
row "status" "$(jget state "$js")" "$(jget copied_from_file_pages "$js")" "-" \
	"pages faulted in from the swap file; $(jget swap_pages "$js") still in it"

swap_step "swap disable" disable Ready

guest_cmd "verify low after disable" ok verify 0 "$bl_start" "$seed"
guest_cmd "verify high after disable" ok verify "$bl_end" "$((data_end - bl_end))" "$seed"
[ $zero_count -gt 0 ] && guest_cmd "verify-zero trimmed pages" ok verify-zero "$data_end" "$zero_count"
guest_cmd "deflate (ballooned read 0)" ok deflate "$bl_start" "$bl_count"

final=$(status_json)
ctl stop >/dev/null || die "stop failed"
wait "$vmm_pid"
code=$?
vmm_pid=
echo
echo "final status: $final"
if [ $code -ne 0 ]; then
	echo "minivmm exited with status $code"
	failures=$((failures + 1))
fi
if grep -qiE 'AddressSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer|runtime error|LeakSanitizer' "$log"; then
	echo "sanitizer reports in the VMM log:"
	cat "$log"
	failures=$((failures + 1))
fi
echo
if [ $failures -eq 0 ]; then
	echo "RESULT: PASS - every verification matched; ballooned pages read zero"
else
	echo "RESULT: FAIL ($failures problems)"
	exit 1
fi
