#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The vmmswap test runner behind 'make check'. It runs every kselftest program of
# the given build variants, prints their TAP, then (san build) the fuzz corpus replay,
# then the pytest KVM scenarios and the main job (tools/demo.sh) for each variant, and ends with one line: "N passed, N failed, N skipped". Exit status 1 on any failure.
#
# Usage: tools/check.sh [--variant NAME]... [--no-unpriv] [--no-vmtests]
#   --variant NAME   default, san or tsan (repeatable; default: default and san)
#   --no-unpriv      skip the pass that runs the selftests again as user nobody
#   --no-vmtests     skip the pytest scenarios in vmtests/ and the demo run
# Environment: VMS_CHECK_FILTER=REGEX runs only the programs whose name matches.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

variants=()
unpriv=1
vmtests=1
while [ $# -gt 0 ]; do
	case "$1" in
	--variant) variants+=("$2"); shift 2 ;;
	--no-unpriv) unpriv=0; shift ;;
	--no-vmtests) vmtests=0; shift ;;
	*) echo "check.sh: unknown option '$1' (see the header of $0)" >&2; exit 2 ;;
	esac
done
[ ${#variants[@]} -gt 0 ] || variants=(default san)

# The per-program timeout comes from the kselftest settings file.
timeout_s=$(sed -n 's/^timeout=//p' selftests/settings 2>/dev/null)
timeout_s=${timeout_s:-300}

passed=0 failed=0 skipped=0
failures=()

# Count the results of one TAP stream in $1 (a file); $2 is the program's exit
# status and $3 its label. A crash or timeout without a "not ok" line counts as one
# failure, and so does a plan that was not completed.
tally() {
	local tap=$1 rc=$2 label=$3 p f s planned ran
	p=$(grep -cE '^ok [0-9]+' "$tap" | head -1)
	s=$(grep -cE '^ok [0-9]+ .*# (SKIP|skip)' "$tap" | head -1)
	f=$(grep -cE '^not ok [0-9]+' "$tap" | head -1)
	p=$((p - s))
	planned=$(sed -n 's/^1\.\.\([0-9]\+\)$/\1/p' "$tap" | head -1)
	ran=$((p + s + f))
	if [ "$rc" != 0 ] && [ "$rc" != 4 ] && [ "$f" = 0 ]; then
		f=1
		echo "not ok - $label exited with status $rc"
	elif [ -n "$planned" ] && [ "$ran" -lt "$planned" ]; then
		f=$((f + planned - ran))
		echo "not ok - $label ran $ran of $planned planned tests"
	fi
	passed=$((passed + p)) skipped=$((skipped + s)) failed=$((failed + f))
	[ "$f" = 0 ] || failures+=("$label")
}

# run_programs VARIANT [RUNAS-PREFIX...]
run_programs() {
	local variant=$1 label prog name rc out
	shift
	local dir="build/$variant/selftests" results="build/$variant/results"
	mkdir -p "$results"
	for prog in "$dir"/*_test; do
		[ -x "$prog" ] || continue
		name=$(basename "$prog")
		[ -z "${VMS_CHECK_FILTER:-}" ] || [[ $name =~ $VMS_CHECK_FILTER ]] || continue
		label="$variant${1:+/unpriv}:$name"
		out="$results/$name${1:+.unpriv}.tap"
		echo "# ===== $label"
		timeout --kill-after=10 "$timeout_s" "$@" "$prog" >"$out" 2>&1
		rc=$?
		cat "$out"
		tally "$out" "$rc" "$label"
	done
}

for v in "${variants[@]}"; do
	if ! ls "build/$v/selftests/"*_test >/dev/null 2>&1; then
		echo "check.sh: no selftests built in build/$v (run make first)" >&2
		exit 1
	fi
	run_programs "$v"
done

# Run the plain build once more as an unprivileged user: every test that needs a
# privilege must SKIP with its reason, none may fail or hang.
if [ "$unpriv" = 1 ] && [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	if setpriv --reuid=65534 --regid=65534 --clear-groups test -x \
		"build/${variants[0]}/selftests/vms_uffd_test" 2>/dev/null; then
		run_programs "${variants[0]}" setpriv --reuid=65534 --regid=65534 --clear-groups
	else
		echo "# unprivileged pass skipped: user nobody cannot reach $top/build"
	fi
fi

# Every fuzz corpus input and kept crash input (fixtures/fuzz/) once through its
# target (tools/fuzz/fuzz.sh --replay), as one test, with the ASan+UBSan build only.
run_fuzz_replay() {
	local variant=$1 rc
	local out="build/$variant/results/fuzz_replay.txt"
	[ -z "${VMS_CHECK_FILTER:-}" ] || [[ fuzz_replay =~ $VMS_CHECK_FILTER ]] || return 0
	echo "# ===== $variant:fuzz_replay"
	mkdir -p "build/$variant/results"
	timeout --kill-after=10 "$timeout_s" tools/fuzz/fuzz.sh --replay --build "build/$variant" \
		>"$out" 2>&1
	rc=$?
	if [ "$rc" = 0 ]; then
		tail -n 1 "$out"
		echo "ok - $variant:fuzz_replay"
		passed=$((passed + 1))
	elif [ "$rc" = 4 ]; then
		echo "ok - $variant:fuzz_replay # SKIP $(tail -n 1 "$out")"
		skipped=$((skipped + 1))
	else
		cat "$out"
		echo "not ok - $variant:fuzz_replay"
		failed=$((failed + 1))
		failures+=("$variant:fuzz_replay")
	fi
}

for v in "${variants[@]}"; do
	[ "$v" != san ] || run_fuzz_replay "$v"
done

# The seeded bugs of 'make mutation' (fixtures/mutations/) must keep applying to
# the tree as it changes: one test, naming every patch that no longer applies.
run_mutation_patches() {
	local out="build/mutation-patches.txt"
	[ -z "${VMS_CHECK_FILTER:-}" ] || [[ mutation_patches =~ $VMS_CHECK_FILTER ]] || return 0
	ls fixtures/mutations/ref/*.patch >/dev/null 2>&1 || return 0
	echo "# ===== mutation_patches"
	if tools/mutation.sh --check >"$out" 2>&1; then
		tail -n 1 "$out"
		echo "ok - mutation_patches"
		passed=$((passed + 1))
	else
		cat "$out"
		echo "not ok - mutation_patches"
		failed=$((failed + 1))
		failures+=("mutation_patches")
	fi
}
run_mutation_patches

# The LAVA jobs of 'make lava-jobs' (tools/lava/check.sh, seconds): generated jobs
# validated, a recorded LAVA log turned into the kernel matrix. One test.
run_lava_jobs() {
	local out="build/lava-check.txt" rc
	[ -z "${VMS_CHECK_FILTER:-}" ] || [[ lava_jobs =~ $VMS_CHECK_FILTER ]] || return 0
	echo "# ===== lava_jobs"
	mkdir -p build
	timeout --kill-after=10 "$timeout_s" tools/lava/check.sh >"$out" 2>&1
	rc=$?
	if [ "$rc" = 0 ]; then
		tail -n 1 "$out"
		echo "ok - lava_jobs"
		passed=$((passed + 1))
	elif [ "$rc" = 4 ]; then
		echo "ok - lava_jobs # SKIP $(tail -n 1 "$out")"
		skipped=$((skipped + 1))
	else
		cat "$out"
		echo "not ok - lava_jobs"
		failed=$((failed + 1))
		failures+=("lava_jobs")
	fi
}
run_lava_jobs

# The pictures' committed Graphviz sources (ref/pictures/*.dot) must be what the
# tools print now, and every "spec N.M" citation must name a section of
# ref/CONTRACT.md (tools/docs/docs.sh --check): one test.
run_docs_check() {
	local out="build/docs-check.txt"
	[ -z "${VMS_CHECK_FILTER:-}" ] || [[ docs_up_to_date =~ $VMS_CHECK_FILTER ]] || return 0
	echo "# ===== docs_up_to_date"
	if tools/docs/docs.sh --check --build "build/${variants[0]}" >"$out" 2>&1; then
		tail -n 1 "$out"
		echo "ok - docs_up_to_date"
		passed=$((passed + 1))
	else
		cat "$out"
		echo "not ok - docs_up_to_date"
		failed=$((failed + 1))
		failures+=("docs_up_to_date")
	fi
}
run_docs_check

# The KVM guest scenarios (pytest drives C programs; only the non-slow set here),
# once per build variant, so the sanitizers also watch the VMM and the monitor.
run_vmtests() {
	local variant=$1 rc t f e s
	local xml="build/$variant/vmtests-junit.xml"
	echo "# ===== $variant:vmtests (pytest)"
	VMTESTS_BUILD="build/$variant" /usr/bin/python3 -m pytest -q -m "not slow" \
		--junitxml="$xml" vmtests
	rc=$?
	if [ "$rc" = 0 ] || [ "$rc" = 1 ]; then
		read -r t f e s < <(/usr/bin/python3 - "$xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
s = r if r.tag == "testsuite" else r.find("testsuite")
print(s.get("tests"), s.get("failures"), s.get("errors"), s.get("skipped"))
EOF
		)
		passed=$((passed + t - f - e - s)) failed=$((failed + f + e)) skipped=$((skipped + s))
		[ $((f + e)) = 0 ] || failures+=("$variant:vmtests")
	elif [ "$rc" != 5 ]; then
		failed=$((failed + 1))
		failures+=("$variant:vmtests (pytest exit $rc)")
	fi
}

# The main job ('make demo') as one end-to-end test: it verifies every page itself
# and fails on a mismatch or on a sanitizer report in the VMM's log.
run_demo() {
	local variant=$1
	local out="build/$variant/results/demo.txt"
	echo "# ===== $variant:demo"
	if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		echo "ok - $variant:demo # SKIP /dev/kvm is not usable"
		skipped=$((skipped + 1))
		return
	fi
	if timeout --kill-after=10 "$timeout_s" tools/demo.sh --variant "$variant" >"$out" 2>&1; then
		tail -n 3 "$out"
		echo "ok - $variant:demo"
		passed=$((passed + 1))
	else
		cat "$out"
		echo "not ok - $variant:demo"
		failed=$((failed + 1))
		failures+=("$variant:demo")
	fi
}

if [ "$vmtests" = 1 ] && ls vmtests/test_*.py >/dev/null 2>&1; then
	for v in "${variants[@]}"; do
		run_vmtests "$v"
		run_demo "$v"
	done
fi

echo
[ ${#failures[@]} = 0 ] || printf '# failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
