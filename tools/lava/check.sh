#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# lava/check.sh - the LAVA jobs' test in 'make check' (seconds; no qemu, no kernel,
# no lava-dispatcher needed):
#   1. jobs: tools/lava/jobs.py writes the jobs for a made-up artefacts list (a
#      kernel image, an unavailable kernel, a host-only kernel) and an install tree
#      with the programs of the recorded run; tools/lava/validate.py checks them with
#      LAVA's schema (lava_common, from Debian's lava-common, installed on demand
#      when possible) and always with its structural check; with lava-dispatcher
#      installed, 'lava-run --validate' also builds their pipeline;
#   2. results: the recorded LAVA job log fixtures/lava/debian-6.1.output.yaml
#      (lava-run on this machine, 'make lava-matrix KERNELS=debian-6.1') goes through
#      tools/lava/results.py and the kernel matrix's parser and report: its rows and
#      statuses must be those of 'make kernel-matrix' on the same kernel
#      (fixtures/lava/debian-6.1.expected), LAVA's own test cases in it must agree
#      with the parser (as lava-run's log and as a lab's output.yaml list), and so
#      must the monitors of the jobs of step 1, replayed over its console.
# Usage: tools/lava/check.sh [--structural]   (--structural: never use lava_common)
# Exit status 0 when it passes, 1 on a failure, 4 (skip) without PyYAML for
# /usr/bin/python3. The last line says what was checked.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
py=/usr/bin/python3
fx=fixtures/lava
rec=$fx/debian-6.1.output.yaml
structural=()
[ "${1:-}" != --structural ] || structural=(--structural)

fail() {
	echo "lava-check: FAIL: $*"
	exit 1
}

if ! $py -c 'import yaml; yaml.safe_load' 2>/dev/null; then
	echo "lava-check: SKIP: /usr/bin/python3 has no PyYAML (apt-get install python3-yaml)"
	exit 4
fi
# LAVA's own schema: Debian's lava-common (two small packages), when root can install it.
if [ ${#structural[@]} = 0 ] && ! $py -c 'import lava_common.schemas' 2>/dev/null &&
	[ "$(id -u)" = 0 ]; then
	timeout 120 tools/deps.sh --extra lava-common >/dev/null 2>&1 ||
		echo "lava-check: lava-common could not be installed: structural check only"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- 2a: the recorded log through the kernel matrix's parser ----
$py tools/lava/results.py console "$rec" >"$tmp/console.log" || fail "results.py console"
IFS=$'\t' read -r end _ why < <($py tools/lava/results.py end "$rec")
[ "$end" = exit ] && [ -z "$why" ] || fail "the recorded job did not end well: $end $why"
awk -f tools/kernel_matrix/parse.awk -v qemu="$end" "$tmp/console.log" >"$tmp/parsed.tsv" ||
	fail "parse.awk"
grep -qx $'meta\tend\tdone' "$tmp/parsed.tsv" || fail "no 'kmatrix: end done' in the console"
awk -F'\t' '$1 == "test" { print $2 "\t" $3 "\t" $4 "\t" $5 }' "$tmp/parsed.tsv" >"$tmp/rows"
grep -v '^#' "$fx/debian-6.1.expected" >"$tmp/expected"
diff -u "$tmp/expected" "$tmp/rows" >"$tmp/rows.diff" ||
	{ cat "$tmp/rows.diff"; fail "rows or statuses differ from 'make kernel-matrix' ($fx/debian-6.1.expected)"; }
nrows=$(wc -l <"$tmp/rows")
awk -f tools/kernel_matrix/report.awk "$tmp/parsed.tsv" >"$tmp/matrix.txt" ||
	fail "report.awk found a failure: $(head -3 "$tmp/matrix.txt")"
grep -q ': completed$' "$tmp/matrix.txt" || fail "the report does not say completed"

# ---- 2b: LAVA's own test cases agree with the parser ----
$py tools/lava/results.py compare "$rec" "$tmp/parsed.tsv" >"$tmp/compare.txt" ||
	{ cat "$tmp/compare.txt"; fail "LAVA's test cases differ from the parser"; }
ncases=$($py tools/lava/results.py cases "$rec" | wc -l)
# the same log as a lab serves it ('lavacli jobs logs --raw': a YAML list)
sed -n 's/^{/- {/p' "$rec" >"$tmp/output-list.yaml"
$py tools/lava/results.py compare "$tmp/output-list.yaml" "$tmp/parsed.tsv" >"$tmp/compare2.txt" ||
	{ cat "$tmp/compare2.txt"; fail "the log as a YAML list reads differently"; }

# ---- 1: jobs for a made-up matrix with the recorded run's programs ----
mkdir -p "$tmp/inst" "$tmp/out"
printf 'kernel image\n' >"$tmp/vmlinuz"
printf 'initramfs\n' >"$tmp/initramfs.cpio.gz"
sed -n 's/^# selftests: \([^:]*\): \(.*\)$/\1:\2/p' "$tmp/console.log" | grep -v '^kernel:' \
	>"$tmp/inst/kselftest-list.txt"
for c in $(cut -d: -f1 "$tmp/inst/kselftest-list.txt" | sort -u); do
	mkdir -p "$tmp/inst/$c"
	cp selftests/settings "$tmp/inst/$c/settings"
done
{
	printf '#append\tconsole=ttyS0 panic=-1 loglevel=1 kmatrix.timeout=300\n#qemu\t-m 512M -smp 1\n'
	printf 'running\t6.18.0-test (host)\thost\t\tno readable /boot/vmlinuz-6.18.0-test: run on this host\n'
	printf 'debian-6.1\t6.1.0-test-cloud-amd64\tqemu\t%s\tDebian package, qemu\n' "$tmp/vmlinuz"
	printf 'debian-9.9\tdebian-9.9\tunavailable\t\tno linux-image-9.9...-cloud-amd64 in the apt lists\n'
} >"$tmp/artefacts.tsv"
$py tools/lava/jobs.py --artefacts "$tmp/artefacts.tsv" --install "$tmp/inst" \
	--initramfs "$tmp/initramfs.cpio.gz" --out "$tmp/out" --url https://lava.example/vmmswap/ \
	2>"$tmp/jobs.err" || { cat "$tmp/jobs.err"; fail "jobs.py"; }
job=$tmp/out/2-6.1.0-test-cloud-amd64.yaml
[ "$(ls "$tmp/out"/*.yaml | wc -l)" = 1 ] && [ -s "$job" ] || fail "expected one job: $(ls "$tmp/out")"
[ "$(cut -f1,3 "$tmp/out/jobs.tsv" | sed 's/\t.*yaml$/\tJOB/' | tr '\t\n' ': ')" = "1:- 2:JOB 3:- " ] ||
	fail "jobs.tsv: no job for the host and the unavailable kernel, one for the image: $(cat "$tmp/out/jobs.tsv")"
grep -q 'url: https://lava.example/vmmswap/2-6.1.0-test-cloud-amd64.vmlinuz$' "$job" ||
	fail "the kernel's URL does not use --url"
$py tools/lava/validate.py "${structural[@]}" "$tmp/out"/*.yaml >"$tmp/validate.txt" ||
	{ cat "$tmp/validate.txt"; fail "invalid job"; }
validator=$(sed -n 's/^validator: //p' "$tmp/validate.txt")
$py tools/lava/validate.py --replay "$job" "$tmp/console.log" >"$tmp/replay.yaml" 2>"$tmp/replay.err" ||
	fail "replay"
[ ! -s "$tmp/replay.err" ] || { cat "$tmp/replay.err"; fail "the monitors do not follow the console"; }
$py tools/lava/results.py compare "$tmp/replay.yaml" "$tmp/parsed.tsv" >"$tmp/compare3.txt" ||
	{ cat "$tmp/compare3.txt"; fail "the jobs' monitors read the console differently"; }

# lava-run builds the job's pipeline against the local qemu device (file:// URLs).
pipeline=""
if [ "$validator" = lava_common ] && lava-run --help >/dev/null 2>&1 &&
	command -v qemu-system-x86_64 >/dev/null && [ "$(id -u)" = 0 ]; then
	$py tools/lava/jobs.py --artefacts "$tmp/artefacts.tsv" --install "$tmp/inst" \
		--initramfs "$tmp/initramfs.cpio.gz" --out "$tmp/file" 2>/dev/null || fail "jobs.py (file://)"
	fjob=$tmp/file/2-6.1.0-test-cloud-amd64.yaml
	$py tools/lava/jobs.py --device "$fjob" "$tmp/device.yaml"
	printf 'dispatcher_ip: 127.0.0.1\n' >"$tmp/dispatcher.yaml"
	timeout 60 lava-run --validate --job-id "vmmswap-check-$$" --output-dir "$tmp/run" \
		--device "$tmp/device.yaml" --dispatcher "$tmp/dispatcher.yaml" "$fjob" \
		>"$tmp/lava-run.out" 2>&1 || { tail -5 "$tmp/lava-run.out"; fail "lava-run --validate"; }
	pipeline=", lava-run --validate"
fi

echo "lava-check: jobs valid ($validator$pipeline), recorded LAVA log: $ncases LAVA test cases" \
	"agree with the KTAP parser, $nrows rows as 'make kernel-matrix'"
