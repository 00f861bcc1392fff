#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# 'make mutation': how many seeded bugs does the test suite catch? Each patch in
# fixtures/mutations/ref/ is one bug of a kind crosvm or another userfaultfd
# handler really had (or this project's own history found), seeded into the
# reference library. For each patch, one after the other, this script
#   1. applies it to a scratch copy of the tree (build/mutation/src: every tracked
#      and untracked, not ignored file of the working tree, with build/deps linked
#      to the real one, so nothing is downloaded again),
#   2. builds the default variant there (incrementally),
#   3. runs the selftest programs the patch names on its "Caught-by:" line, and
#      only if none of them fails, every other selftest program of the build (and,
#      with --vmtests, the KVM guest scenarios and the demo),
#   4. takes the patch out again (git apply -R).
# A mutant is caught when any test fails, crashes or times out. One row per mutant
# (name, caught/missed, by which programs, seconds), then "caught N of M". The
# unmutated tree is built and its whole suite run first; a program that fails
# there catches nothing. Logs: build/mutation/logs/NAME.*.txt; the table also in
# build/mutation/results.txt. The scratch tree stays between runs, so that each
# build is incremental (rm -rf build/mutation starts afresh). Not part of 'make
# check', which only runs --check.
#
# Usage: tools/mutation.sh [--vmtests] [--timeout SECONDS] [PATTERN...]
#        tools/mutation.sh --check
#   PATTERN          only the patches whose file name contains one of them
#   --vmtests        for a mutant the selftests miss, also run vmtests/ and the demo
#   --timeout S      per-program time limit in the scratch runs (default 120)
#   --check          only check that every patch still applies to the working tree
#                    (git apply --check), naming each one that does not
# Patch format: a unified diff against the current tree; the lines before the diff
# (git apply skips them) are "Mimics: <the real bug, in one line>",
# "Caught-by: <program> [(<test>)] ..." and the SPDX line (fixtures/mutations/README.md).
# Exit status: 0 when every mutant was measured, caught or not (this is a
# measurement); 1 when a patch does not apply or does not build, or the
# unmutated tree does not build; 2 on a usage error.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

patchdir=fixtures/mutations/ref
work=build/mutation
src=$work/src
logs=$work/logs
vmtests=0 check_only=0 prog_timeout=120
patterns=()
while [ $# -gt 0 ]; do
	case "$1" in
	--vmtests) vmtests=1; shift ;;
	--check) check_only=1; shift ;;
	--timeout) prog_timeout=$2; shift 2 ;;
	-*) echo "mutation.sh: unknown option '$1' (see the header of $0)" >&2; exit 2 ;;
	*) patterns+=("$1"); shift ;;
	esac
done
case "$prog_timeout" in '' | *[!0-9]*) echo "mutation.sh: --timeout needs seconds" >&2; exit 2 ;; esac

patches=()
for p in "$patchdir"/*.patch; do
	[ -e "$p" ] || continue
	if [ ${#patterns[@]} -gt 0 ]; then
		keep=0
		for pat in "${patterns[@]}"; do
			case "$(basename "$p")" in *"$pat"*) keep=1 ;; esac
		done
		[ "$keep" = 1 ] || continue
	fi
	patches+=("$p")
done
if [ ${#patches[@]} = 0 ]; then
	echo "mutation.sh: no patches in $patchdir${patterns:+ matching ${patterns[*]}}" >&2
	exit 2
fi

# --check ('make check'): every patch must still apply to the working tree.
if [ "$check_only" = 1 ]; then
	bad=0
	for p in "${patches[@]}"; do
		if ! err=$(git apply --check "$p" 2>&1); then
			echo "mutation patch $(basename "$p") no longer applies to the tree:"
			printf '%s\n' "$err" | sed 's/^/    /'
			bad=$((bad + 1))
		fi
	done
	if [ "$bad" != 0 ]; then
		echo "$bad of ${#patches[@]} mutation patches do not apply: refresh them (fixtures/mutations/README.md)"
		exit 1
	fi
	echo "all ${#patches[@]} mutation patches apply"
	exit 0
fi

# git must not take the scratch tree for a part of this repository: there, git
# apply works on plain files, with paths relative to the scratch tree.
export GIT_CEILING_DIRECTORIES=$top/$work
now() { date +%s; }
t_start=$(now)

# ---- the scratch tree: the working tree's files, synced (a changed file gets a
# new mtime, so make rebuilds what depends on it) ----
mkdir -p "$src/build" "$logs"
[ -e "$src/build/deps" ] || ln -s "$top/build/deps" "$src/build/deps"
list=$(mktemp)
trap 'rm -f "$list"' EXIT
git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
	[ -f "$f" ] && [ ! -L "$f" ] && printf '%s\n' "$f"
done | sort >"$list"
while IFS= read -r f; do
	if ! cmp -s "$f" "$src/$f"; then
		mkdir -p "$src/$(dirname "$f")"
		cp "$f" "$src/$f"
	fi
done <"$list"
# Files gone from the working tree go from the scratch tree too.
(cd "$src" && find . -path ./build -prune -o -type f -print | sed 's|^\./||' | sort) |
	comm -23 - "$list" | while IFS= read -r f; do rm -f "$src/$f"; done
# A selftest whose source is gone (renamed, removed) must not run from an old build.
for b in "$src"/build/default/selftests/*_test; do
	[ -e "$b" ] || continue
	[ -e "$src/selftests/$(basename "$b").c" ] || rm -f "$b" "$b.o" "$b.d"
done
# The programs' time limit in the scratch runs (a mutant that hangs costs this).
echo "timeout=$prog_timeout" >"$src/selftests/settings"

# Build the default variant in the scratch tree; $1: log file. .SECONDARY keeps the
# intermediate objects, so the next build is incremental.
build() {
	make -C "$src" -j"$(nproc)" --no-print-directory --eval='.SECONDARY:' all >"$1" 2>&1
}

# Run check.sh in the scratch tree on the programs matching regex $1 (plus the
# vmtests when $2 is "vm"); log to $3. Prints the failed labels, one per line.
run_suite() {
	local filter=$1 vm=$2 log=$3 flags=(--variant default --no-unpriv)
	[ "$vm" = vm ] || flags+=(--no-vmtests)
	(cd "$src" && VMS_CHECK_FILTER=$filter tools/check.sh "${flags[@]}") >"$log" 2>&1
	sed -n 's/^# failed: //p' "$log"
}

echo "mutation: building the unmutated tree in $src"
if ! build "$logs/unmutated.build.txt"; then
	tail -n 30 "$logs/unmutated.build.txt"
	echo "mutation: the unmutated tree does not build (log: $logs/unmutated.build.txt)"
	exit 1
fi
all_progs=()
for p in "$src"/build/default/selftests/*_test; do
	[ -x "$p" ] && all_progs+=("$(basename "$p")")
done
if [ ${#all_progs[@]} = 0 ]; then
	echo "mutation: no selftest programs were built"
	exit 1
fi

# The baseline: programs that fail unmutated cannot catch anything.
echo "mutation: running the unmutated suite (${#all_progs[@]} programs)"
mapfile -t base_fail < <(run_suite "^($(IFS='|'; echo "${all_progs[*]}"))\$" \
	"$([ "$vmtests" = 1 ] && echo vm)" "$logs/unmutated.suite.txt")
if [ ${#base_fail[@]} -gt 0 ]; then
	echo "mutation: WARNING: these fail without a mutant and are not counted: ${base_fail[*]}"
fi
tail -n 1 "$logs/unmutated.suite.txt"

# Run the suite as run_suite does; 'by' gets the failed labels that did not fail
# in the baseline too.
catch_with() {
	local l b ok failed=()
	mapfile -t failed < <(run_suite "$@")
	by=()
	for l in "${failed[@]}"; do
		ok=1
		for b in "${base_fail[@]}"; do [ "$l" = "$b" ] && ok=0; done
		[ "$ok" = 0 ] || by+=("$l")
	done
}

results=$work/results.txt
: >"$results"
printf '%-50s %-7s %5s  %s\n' mutant result secs "caught by" | tee -a "$results"
caught=0 total=0 errors=0
missed_list=()
for patch in "${patches[@]}"; do
	name=$(basename "$patch" .patch)
	t0=$(now)
	total=$((total + 1))
	if ! git -C "$src" apply --check "$top/$patch" >"$logs/$name.apply.txt" 2>&1; then
		printf '%-50s %-7s %5s  %s\n' "$name" ERROR 0 "does not apply (see $logs/$name.apply.txt)" |
			tee -a "$results"
		errors=$((errors + 1))
		continue
	fi
	git -C "$src" apply "$top/$patch"
	if ! build "$logs/$name.build.txt"; then
		printf '%-50s %-7s %5s  %s\n' "$name" ERROR $(($(now) - t0)) \
			"does not build (see $logs/$name.build.txt)" | tee -a "$results"
		errors=$((errors + 1))
		git -C "$src" apply -R "$top/$patch" || { echo "mutation: cannot take $name out" >&2; exit 1; }
		continue
	fi
	# The programs the patch names, then every other one.
	expected=()
	for w in $(sed -n 's/^Caught-by://p' "$patch" | grep -oE '\b[a-z0-9_]+_test\b'); do
		[ -x "$src/build/default/selftests/$w" ] && expected+=("$w")
	done
	others=()
	for p in "${all_progs[@]}"; do
		case " ${expected[*]} " in *" $p "*) ;; *) others+=("$p") ;; esac
	done
	by=() how=
	if [ ${#expected[@]} -gt 0 ]; then
		catch_with "^($(IFS='|'; echo "${expected[*]}"))\$" no "$logs/$name.expected.txt"
		[ ${#by[@]} = 0 ] || how=expected
	fi
	if [ ${#by[@]} = 0 ] && [ ${#others[@]} -gt 0 ]; then
		catch_with "^($(IFS='|'; echo "${others[*]}"))\$" no "$logs/$name.others.txt"
		[ ${#by[@]} = 0 ] || how=others
	fi
	if [ ${#by[@]} = 0 ] && [ "$vmtests" = 1 ]; then
		# No program at all (the filter matches none): only the vmtests and the demo.
		catch_with '^$' vm "$logs/$name.vmtests.txt"
		[ ${#by[@]} = 0 ] || how=vmtests
	fi
	if ! git -C "$src" apply -R "$top/$patch"; then
		echo "mutation: cannot take $name out of $src" >&2
		exit 1
	fi
	secs=$(($(now) - t0))
	if [ ${#by[@]} -gt 0 ]; then
		caught=$((caught + 1))
		label=$(printf '%s\n' "${by[@]}" | sed 's/^default://' | paste -sd, -)
		[ "$how" = expected ] || label="$label (not by the expected: ${expected[*]:-none})"
		printf '%-50s %-7s %5s  %s\n' "$name" caught "$secs" "$label" | tee -a "$results"
	else
		printf '%-50s %-7s %5s  %s\n' "$name" MISSED "$secs" "-" | tee -a "$results"
		missed_list+=("$name: $(sed -n 's/^Mimics: //p' "$patch")")
	fi
done

# Leave the scratch build unmutated (the last mutant's objects are still in it).
build "$logs/restored.build.txt" || echo "mutation: the restored scratch tree does not build"
{
	echo
	for m in "${missed_list[@]}"; do echo "missed $m"; done
	[ "$errors" = 0 ] || echo "$errors patches did not apply or build"
	echo "caught $caught of $total in $(($(now) - t_start)) s"
} | tee -a "$results"
[ "$errors" = 0 ]
