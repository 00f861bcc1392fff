#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# kernel_mutation.sh - seeded kernel regressions: does the kernel-contract suite
# notice when the kernel breaks a userfaultfd/shmem behaviour the design relies on,
# and does the kernel's own mm/uffd-unit-tests? 'make kernel-mutation' runs this.
#
# Each fixtures/mutations/kernel/NNN-name.patch is a small unified diff against
# Debian's linux-source-6.12 (paths a/mm/userfaultfd.c ...); its first lines say
# which regression it mimics and which of our tests should catch it.
#
#   1. extract /usr/src/linux-source-6.12.tar.xz once into build/kernel-mutation/linux
#   2. configure a small kernel: tinyconfig + tools/kernel_mutation/config
#   3. build it (the unmutated baseline) and run tools/kernel_matrix.sh on it
#   4. for each patch: apply, rebuild incrementally, revert (always: also on
#      failure or interrupt), run the matrix on the mutant's image (while the next
#      mutant builds)
#   5. compare each mutant's results with the baseline's: a mutant is caught by a
#      suite when a test (or a whole program) of that suite that passed on the
#      baseline does not pass on the mutant (failed, crashed, timed out, not run),
#      or when the mutant kernel did not boot.
#
# The matrix runs with KM_OUT=build/kernel-mutation/km (so build/kernel-matrix/ is
# left alone), one guest at a time; the parsed per-kernel results (results/1.tsv,
# written by tools/kernel_matrix/parse.awk) are kept in build/kernel-mutation/runs/.
#
# Usage: tools/kernel_mutation.sh [options] [PATCH...]
#   PATCH...            patches to run (default: fixtures/mutations/kernel/*.patch)
#   --reuse-baseline    reuse runs/baseline.tsv when the baseline image is unchanged
#   --timeout S         time limit per kernel (passed to kernel_matrix.sh), default 300
#   --accel A           passed to kernel_matrix.sh, default tcg (auto's KVM probe boot
#                       can take its whole 60 s limit on this host, for every mutant)
#   --jobs N            make -jN for the kernel builds, default 2
# Output: one row per mutant, both scores, the time taken; also written to
# build/kernel-mutation/report.txt and report.tsv.
# Exit status: 0 when every mutant ran (caught or not), 1 when a build or the
# baseline failed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=build/kernel-mutation
src=$out/linux
tarball=/usr/src/linux-source-6.12.tar.xz
frag=tools/kernel_mutation/config
km=$out/km
reuse=0
timeout=300
accel=tcg
jobs=2
patches=()

usage() {
	sed -n '3,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case "$1" in
	--reuse-baseline) reuse=1; shift ;;
	--timeout) timeout=$2; shift 2 ;;
	--accel) accel=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	-h | --help) usage ;;
	-*) echo "kernel_mutation: unknown option '$1'" >&2; usage ;;
	*) patches+=("$1"); shift ;;
	esac
done
[ ${#patches[@]} -gt 0 ] || patches=(fixtures/mutations/kernel/*.patch)

say() { printf 'kernel-mutation: %s\n' "$*" >&2; }
t0=$(date +%s)
mkdir -p "$out/images" "$out/runs" "$out/logs"

# ---- 1. the source, once ----
if [ ! -f "$src/.extracted" ]; then
	[ -r "$tarball" ] || { say "$tarball is missing (apt-get install linux-source-6.12)"; exit 1; }
	say "extracting $tarball into $src"
	rm -rf "$src"
	mkdir -p "$src"
	tar -xJf "$tarball" -C "$src" --strip-components=1
	touch "$src/.extracted"
fi
for p in flex bison bc; do
	command -v "$p" >/dev/null || { say "$p is missing: apt-get install flex bison bc libelf-dev"; exit 1; }
done

# ---- the applied patch: always reverted ----
applied=$out/applied
revert() {
	if [ -s "$applied" ]; then
		local p
		p=$(cat "$applied")
		say "reverting $(basename "$p")"
		patch -d "$src" -p1 -R -s --no-backup-if-mismatch <"$p" >&2 || say "could not revert $p: fix $src by hand"
		: >"$applied"
	fi
}
revert # a run that was killed before it could revert
trap revert EXIT
trap 'exit 130' INT TERM

# ---- 2. the configuration ----
if [ ! -f "$src/.config" ] || [ "$frag" -nt "$src/.config" ]; then
	say "configuring: tinyconfig + $frag"
	make -s -C "$src" tinyconfig >/dev/null
	"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$frag" >"$out/logs/config.log" 2>&1
	make -s -C "$src" olddefconfig >/dev/null
	missing=$(grep -E '^CONFIG_[A-Z0-9_]+=y' "$frag" | while IFS= read -r l; do
		grep -qx "$l" "$src/.config" || echo "${l%=y}"; done)
	[ -z "$missing" ] || say "not set in .config (dependencies): $(echo $missing)"
fi

# build NAME: make bzImage (-j$jobs), copy it to images/NAME.bzImage; prints the
# build time
build() {
	local name=$1 b0=$SECONDS
	# fixed build stamps: the same source gives the same image (--reuse-baseline)
	if ! make -C "$src" -j"$jobs" KBUILD_BUILD_TIMESTAMP=2024-01-01 KBUILD_BUILD_VERSION=1 \
		KBUILD_BUILD_USER=kmut KBUILD_BUILD_HOST=kmut bzImage >"$out/logs/$name.build.log" 2>&1; then
		say "build of $name failed: $(grep -m1 -E 'error|Error' "$out/logs/$name.build.log" || true) (see $out/logs/$name.build.log)"
		return 1
	fi
	cp "$src/arch/x86/boot/bzImage" "$out/images/$name.bzImage"
	echo $((SECONDS - b0))
}

# matrix NAME: run the kernel matrix on images/NAME.bzImage, keep runs/NAME.tsv
matrix() {
	local name=$1 r0=$SECONDS
	mkdir -p "$km"
	# the programs and the kernel's uffd-unit-tests come from 'make kernel-matrix-progs'
	# and the last kernel-matrix run (copied with their times: not rebuilt)
	cp -p build/kernel-matrix/init "$km/init"
	[ ! -x build/kernel-matrix/uffd-unit-tests ] || [ -e "$km/uffd-unit-tests" ] ||
		cp -p build/kernel-matrix/uffd-unit-tests "$km/"
	KM_OUT=$km tools/kernel_matrix.sh --kernels "$out/images/$name.bzImage" --jobs 1 \
		--accel "$accel" --timeout "$timeout" >"$out/logs/$name.matrix.txt" 2>&1 || true
	if [ -s "$km/results/1.tsv" ]; then
		cp "$km/results/1.tsv" "$out/runs/$name.tsv"
		cp "$(awk -F'\t' '$1 == "meta" && $2 == "log" { print $3 }' "$km/results/1.tsv")" \
			"$out/logs/$name.serial.log" 2>/dev/null || true
	else
		printf 'meta\tboot\tfail\nmeta\treason\tno results\n' >"$out/runs/$name.tsv"
	fi
	echo $((SECONDS - r0))
}

# ---- 3. the baseline ----
[ -x build/kernel-matrix/init ] || { say "build/kernel-matrix/init is missing: run 'make kernel-matrix-progs'"; exit 1; }
say "building the baseline kernel"
old=$(md5sum "$out/images/baseline.bzImage" 2>/dev/null || true)
bt=$(build baseline) || exit 1
if [ "$reuse" = 1 ] && [ -s "$out/runs/baseline.tsv" ] &&
	[ "$old" = "$(md5sum "$out/images/baseline.bzImage")" ]; then
	say "baseline built in ${bt}s, reusing $out/runs/baseline.tsv"
else
	say "baseline built in ${bt}s, running the matrix on it"
	rt=$(matrix baseline)
	say "baseline matrix: ${rt}s"
fi
if ! awk -F'\t' '$1 == "meta" && $2 == "boot" && $3 == "ok" { ok = 1 } END { exit !ok }' \
	"$out/runs/baseline.tsv"; then
	say "the baseline kernel did not boot: see $out/logs/baseline.matrix.txt"
	exit 1
fi

# compare BASE MUTANT GROUP: prints "caught<TAB>what" or "missed<TAB>"
compare() {
	awk -F'\t' -v grp="$3" '
	FNR == 1 { file++ }
	$1 == "meta" && $2 == "boot" && file == 2 { boot = $3 }
	$1 == "meta" && $2 == "reason" && file == 2 { reason = $3 }
	$1 == "test" && $2 == grp { k = $3 "\t" $4; if (file == 1) { if ($5 == "pass") base[k] = 1; order[++n] = k } else mut[k] = $5 }
	$1 == "prog" && $2 == grp { k = $3; if (file == 1) { if ($4 == "pass") pbase[k] = 1; porder[++pn] = k } else { pmut[k] = $4; preason[k] = $5 } }
	END {
		if (boot != "ok") { printf "caught\tdid not boot%s\n", reason != "" ? ": " reason : ""; exit }
		# every test that passed on the baseline and does not pass on the mutant
		for (j = 1; j <= n; j++) {
			if (!base[order[j]] || mut[order[j]] == "pass")
				continue
			split(order[j], f, "\t")
			s = f[1] ":" f[2] (mut[order[j]] == "" ? " (not run)" : mut[order[j]] == "skip" ? " (skip)" : "")
			what = what (what == "" ? "" : ", ") s
			bad[f[1]] = 1
		}
		# a program that passed and now failed as a whole (crash, time limit) with no
		# failed test of its own to show for it
		for (i = 1; i <= pn; i++) {
			p = porder[i]
			if (pbase[p] && pmut[p] != "pass" && !bad[p])
				what = what (what == "" ? "" : ", ") p " " (pmut[p] == "" ? "not run" : pmut[p]) (preason[p] != "" ? " (" preason[p] ")" : "")
		}
		if (what == "") { print "missed\t"; exit }
		printf "caught\t%s\n", what
	}' "$1" "$2"
}

# ---- 4. the mutants ----
# Pipelined: mutant N+1 is applied, built (make -j1: an incremental build is mostly
# the single-threaded link) and reverted while the matrix of mutant N runs in its
# guest (one at a time), so the host runs at most two busy threads.
rows=$out/report.tsv
printf 'mutant\tours\tours_tests\tuffd_unit_tests\tuut_tests\tdmesg\tbuild_s\trun_s\n' >"$rows"
names=() mpid=""
for p in "${patches[@]}"; do
	name=$(basename "$p" .patch)
	rm -f "$out/runs/$name.tsv" "$out/runs/$name.time" "$out/runs/$name.build"
	say "$name: applying"
	if ! patch -d "$src" -p1 -s --dry-run <"$p" >/dev/null; then
		say "$name: does not apply to $src"
		echo "does not apply" >"$out/runs/$name.build"
		names+=("$name")
		continue
	fi
	echo "$top/$p" >"$applied"
	patch -d "$src" -p1 -s --no-backup-if-mismatch <"$p" >&2
	j=$jobs
	[ -z "$mpid" ] || j=1
	if ! bt=$(jobs=$j build "$name"); then
		revert
		echo "build failed" >"$out/runs/$name.build"
		names+=("$name")
		continue
	fi
	revert
	echo "$bt" >"$out/runs/$name.build"
	names+=("$name")
	[ -z "$mpid" ] || wait "$mpid" || true
	say "$name: built in ${bt}s, running the matrix"
	(matrix "$name" >"$out/runs/$name.time") &
	mpid=$!
done
[ -z "$mpid" ] || wait "$mpid" || true

for name in "${names[@]}"; do
	bt=$(cat "$out/runs/$name.build")
	if [ ! -s "$out/runs/$name.tsv" ]; then
		printf '%s\terror\t%s\t-\t-\t-\t0\t0\n' "$name" "$bt" >>"$rows"
		continue
	fi
	rt=$(cat "$out/runs/$name.time" 2>/dev/null || echo 0)
	IFS=$'\t' read -r ours ours_what < <(compare "$out/runs/baseline.tsv" "$out/runs/$name.tsv" contract)
	IFS=$'\t' read -r uut uut_what < <(compare "$out/runs/baseline.tsv" "$out/runs/$name.tsv" upstream)
	IFS=$'\t' read -r dm dm_what < <(compare "$out/runs/baseline.tsv" "$out/runs/$name.tsv" kernel)
	[ "$dm" = caught ] && dm="warn" || dm="-"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$ours" "$ours_what" "$uut" "$uut_what" \
		"$dm" "$bt" "$rt" >>"$rows"
done

# ---- 5. the report ----
awk -F'\t' -v total=$(($(date +%s) - t0)) '
# the first N of a ", " list (the whole lists are in report.tsv)
function brief(s, n,   a, k, r, i) {
	k = split(s, a, ", ")
	if (k <= n)
		return s
	r = a[1]
	for (i = 2; i <= n; i++)
		r = r ", " a[i]
	return r sprintf(" (+%d more)", k - n)
}
NR == 1 { next }
{
	m++
	if ($2 == "caught") ours++
	if ($4 == "caught") uut++
	printf "%-44s ours: %-6s %s\n", $1, $2, brief($3, 4)
	printf "%-44s uffd-unit-tests: %-6s %s\n", "", $4, brief($5, 3)
	if ($6 == "warn") printf "%-44s dmesg: kernel warning in the guest\n", ""
	printf "%-44s build %ss, matrix %ss\n", "", $7, $8
	build += $7; run += $8
}
END {
	printf "\nours caught %d of %d, uffd-unit-tests caught %d of %d\n", ours, m, uut, m
	printf "time: %d s in all; mutants: %d s of builds, %d s of matrix runs (overlapped)\n", total, build, run
}' "$rows" | tee "$out/report.txt"
