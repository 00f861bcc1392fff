#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# lava/run.sh - the kernel matrix as LAVA jobs: write one LAVA job definition per
# kernel of the matrix ('make lava-jobs'), or also run each of them here with
# Debian's LAVA dispatcher (lava-run) and draw the same matrix as
# 'make kernel-matrix' from LAVA's logs ('make lava-matrix').
#
# The artefacts are those of the kernel matrix: tools/kernel_matrix.sh
# --artefacts-only builds the install tree and the initramfs and fetches the
# kernels; tools/lava/jobs.py writes the jobs (deploy to tmpfs, boot qemu, pattern
# monitors for the KTAP). Each job runs alone under lava-run (one qemu at a time),
# with a local device configuration (LAVA's qemu device type rendered for the job's
# context) and a dispatcher configuration. The DUT's console is taken from LAVA's
# job log (tools/lava/results.py console) and read by the kernel matrix's own
# parser (tools/kernel_matrix/parse.awk); report.awk draws the matrix. LAVA's own
# test cases (from the monitors) are checked against the parser's results
# (tools/lava/results.py compare): any difference fails the run.
#
# Usage: tools/lava/run.sh [--jobs-only | --report-only] [--kernels "LIST"] [--url URL]
#                          [kernel_matrix.sh options: --test-timeout S --mem SIZE
#                           --smp N --hugepages N]
#   --jobs-only   write the jobs (build/lava/N-KERNEL.yaml, artefacts/) and stop
#   --report-only convert the LAVA logs of the last run again and redraw the matrix
#   --kernels     as for 'make kernel-matrix' (default "running debian-6.1
#                 debian-6.12"); a kernel without an image (the running kernel
#                 when /boot has none) gets no job
#   --url URL     where a lab finds build/lava/artefacts/ (default
#                 $LAVA_ARTEFACT_URL, else file://$PWD/build/lava/artefacts)
#   --kvm         jobs without no_kvm (a lab with KVM); here the jobs use TCG
# Installs qemu-system-x86, cpio, python3-yaml and (not for --jobs-only)
# lava-dispatcher through tools/deps.sh --extra. Output in build/lava/: the jobs,
# runs/N-KERNEL/ (lava-run's output.yaml, device.yaml, compare.txt), logs/,
# tap/, results/, matrix.txt, matrix.md and matrix.json. Exit status 1 when a
# test failed, a kernel did not boot, or LAVA's test cases differ from the parser's.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=build/lava
libexec=tools/kernel_matrix
py=/usr/bin/python3
kernels="running debian-6.1 debian-6.12"
mode=run
url=${LAVA_ARTEFACT_URL:-}
kvm=()
km_flags=()

usage() {
	sed -n '3,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--jobs-only) mode="jobs"; shift ;;
	--report-only) mode=report; shift ;;
	--kernels) kernels=$2; shift 2 ;;
	--url) url=$2; shift 2 ;;
	--kvm) kvm=(--kvm); shift ;;
	--test-timeout | --mem | --smp | --hugepages) km_flags+=("$1" "$2"); shift 2 ;;
	--timeout | --jobs | --accel) shift 2 ;; # kernel_matrix.sh's own run: not used here
	-h | --help) usage ;;
	*) echo "lava: unknown option '$1'" >&2; usage ;;
	esac
done

say() { printf 'lava: %s\n' "$*" >&2; }
t0=$(date +%s)

extra=(qemu-system-x86 cpio python3-yaml)
[ "$mode" != run ] || extra+=(lava-dispatcher)
tools/deps.sh --extra "${extra[@]}"

if [ "$mode" != report ]; then
	tools/kernel_matrix.sh --artefacts-only --kernels "$kernels" "${km_flags[@]}"
	mkdir -p "$out"
	$py tools/lava/jobs.py --out "$out" ${url:+--url "$url"} "${kvm[@]}"
fi
if [ "$mode" = jobs ]; then
	# results of earlier runs belong to earlier jobs
	rm -rf "$out/runs" "$out/logs" "$out/tap" "$out/results" "$out"/matrix.*
	say "jobs in $out/ (index: $out/jobs.tsv), artefacts in $out/artefacts/ ($(($(date +%s) - t0)) s)"
	exit 0
fi

if [ "$mode" = run ] && [ "$(id -u)" != 0 ]; then
	say "lava-run must run as root"
	exit 1
fi
# convert LABEL NAME RESULTS: LAVA's log of run NAME -> the console log, its KTAP and
# the parser's records (RESULTS, as tools/kernel_matrix.sh writes them); LAVA's own
# test cases are compared with the parser's results.
convert() {
	local label=$1 name=$2 res=$3 run=$out/runs/$2 end dur why
	local log=$out/logs/$name.serial.log tap=$out/tap/$name.tap
	$py tools/lava/results.py console "$run/output.yaml" >"$log"
	IFS=$'\t' read -r end dur why < <($py tools/lava/results.py end "$run/output.yaml")
	[ ! -s "$run/duration" ] || dur=$(cat "$run/duration")
	[ -z "$why" ] || say "$label: LAVA: $why"
	{
		awk -f "$libexec/parse.awk" -v tap="$tap" -v qemu="$end" "$log"
		printf 'meta\tlabel\t%s\nmeta\tsource\t%s\nmeta\tduration\t%s\n' \
			"$label" "$(cat "$run/source" 2>/dev/null || echo lava)" "$dur"
		printf 'meta\ttap\t%s\nmeta\tlog\t%s\nmeta\tqemu\t%s\n' "$tap" "$log" "$end"
		[ -z "$why" ] || printf 'meta\tlava\t%s\n' "$why"
	} >"$res"
	if $py tools/lava/results.py compare "$run/output.yaml" "$res" >"$run/compare.txt"; then
		say "$label: $(tail -n 1 "$run/compare.txt" | sed 's/^lava: //')"
	else
		cat "$run/compare.txt" >&2
		compare_rc=1
	fi
	say "$label: $(awk -F'\t' '$1 == "test" { n[$5]++ }
		END { printf "%d pass, %d fail, %d skip", n["pass"], n["fail"], n["skip"] }' "$res")" \
		"($dur s)"
}

[ "$mode" = report ] || rm -rf "$out/runs"
rm -rf "$out/logs" "$out/tap" "$out/results"
mkdir -p "$out/runs" "$out/logs" "$out/tap" "$out/results"
: >"$out/results/order"
printf 'dispatcher_ip: 127.0.0.1\n' >"$out/dispatcher.yaml"
compare_rc=0
# jobs.tsv: column, label, job file or "-", note (in KERNELS order)
while IFS=$'\t' read -r n label job note; do
	res=$out/results/$n.tsv
	if [ "$job" = - ]; then
		if [[ $note == "no kernel image to deploy"* ]]; then
			say "$label: no LAVA job: $note"
			continue
		fi
		say "$label: unavailable: $note"
		printf 'meta\tlabel\t%s\nmeta\tsource\tlava\nmeta\tboot\tfail\nmeta\treason\t%s\n' \
			"$label" "$note" >"$res"
		echo "$res" >>"$out/results/order"
		continue
	fi
	name=$(basename "$job" .yaml)
	run=$out/runs/$name
	echo "$res" >>"$out/results/order"
	if [ "$mode" = report ]; then
		if [ ! -s "$run/output.yaml" ]; then
			say "$label: no LAVA log in $run"
			printf 'meta\tlabel\t%s\nmeta\tsource\tlava\nmeta\tboot\tfail\nmeta\treason\tno LAVA log (%s)\n' \
				"$label" "$run/output.yaml" >"$res"
			continue
		fi
		convert "$label" "$name" "$res" </dev/null
		continue
	fi
	mkdir -p "$run"
	$py tools/lava/jobs.py --device "$job" "$run/device.yaml"
	say "$label: lava-run $job (TCG: minutes)"
	start=$(date +%s)
	rc=0
	lava-run --job-id "vmmswap-$name" --output-dir "$run" --device "$run/device.yaml" \
		--dispatcher "$out/dispatcher.yaml" "$job" </dev/null >"$run/lava-run.stdout" \
		2>"$run/output.yaml" || rc=$?
	echo $(($(date +%s) - start)) >"$run/duration"
	echo "lava qemu$([ ${#kvm[@]} = 0 ] && echo " tcg" || true)" >"$run/source"
	[ "$rc" = 0 ] || say "$label: lava-run exit status $rc (log: $run/output.yaml)"
	convert "$label" "$name" "$res" </dev/null
done <"$out/jobs.tsv"

files=()
while read -r f; do files+=("$f"); done <"$out/results/order"
if [ ${#files[@]} = 0 ]; then
	say "no LAVA job to run for KERNELS=\"$kernels\""
	exit 1
fi
rc=0
awk -f "$libexec/report.awk" -v md="$out/matrix.md" -v json="$out/matrix.json" \
	"${files[@]}" >"$out/matrix.txt" || rc=$?
cat "$out/matrix.txt"
echo
say "wrote $out/matrix.txt, $out/matrix.md and $out/matrix.json ($(($(date +%s) - t0)) s)"
# The same kernels in the last 'make kernel-matrix' run: same rows, same statuses?
if [ -s build/kernel-matrix/results/order ]; then
	while read -r f; do
		grep -qx $'meta\tboot\tok' "$f" || continue
		label=$(awk -F'\t' '$1 == "meta" && $2 == "label" { print $3 }' "$f")
		direct=""
		while read -r g; do
			[ -s "$g" ] && [ "$(awk -F'\t' '$1 == "meta" && $2 == "label" { print $3 }' "$g")" = "$label" ] &&
				direct=$g
		done <build/kernel-matrix/results/order
		[ -n "$direct" ] || continue
		rows() { awk -F'\t' '$1 == "test" { print $2 "\t" $3 "\t" $4 "\t" $5 }' "$1" | sort; }
		if diff <(rows "$direct") <(rows "$f") >"$out/results/$(basename "$f" .tsv).vs-kernel-matrix.diff"; then
			say "$label: the same $(rows "$f" | wc -l) rows and statuses as the last 'make kernel-matrix' ($direct)"
		else
			say "$label: rows or statuses differ from the last 'make kernel-matrix' ($direct):"
			sed 's/^/  /' "$out/results/$(basename "$f" .tsv).vs-kernel-matrix.diff" >&2
		fi
	done <"$out/results/order"
fi
[ "$compare_rc" = 0 ] || { say "LAVA's test cases differ from the KTAP parser (see $out/runs/*/compare.txt)"; rc=1; }
exit $rc
