#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# kernel_matrix.sh - run the kernel-contract selftests (and the kernel's own
# mm/uffd-unit-tests) on several kernels and print a matrix: one row per test, one
# column per kernel. 'make kernel-matrix' builds the programs and runs this.
#
# Each kernel boots under qemu-system-x86_64 (TCG; KVM when it works) with a small
# initramfs: a static init (tools/kernel_matrix/init.c) and a kselftest install
# tree. The init prints KTAP on the serial console and powers off; the log is parsed
# by tools/kernel_matrix/parse.awk and the matrix drawn by report.awk.
#
# Kernels (--kernels, or KERNELS= for make), in column order:
#   running       the running kernel: /boot/vmlinuz-$(uname -r) under qemu when that
#                 image is readable, else the same tree run directly on this host
#                 with the kernel's run_kselftest.sh
#   host          the tree run on this host (as above), whatever /boot holds
#   debian-X.Y    the newest linux-image-X.Y...-cloud-amd64 in the apt lists,
#                 fetched with 'apt-get download' and unpacked with dpkg-deb into
#                 build/kernel-matrix/kernels/ (never installed)
#   deb:PACKAGE   that Debian kernel package
#   PATH          a bzImage / vmlinuz file
#
# Options:
#   --kernels "LIST"     default: "running debian-6.1 debian-6.12"
#   --timeout S          time limit per kernel (boot + all programs), default 300
#   --test-timeout S     time limit per program inside a guest, default 200
#   --accel auto|tcg|kvm default auto: KVM if /dev/kvm works, else TCG
#   --mem SIZE --smp N   guest size, default 512M and 1 vCPU (under TCG on a busy
#                        host, 2 vCPUs made uffd-unit-tests several times slower)
#   --jobs N             guests booted at the same time, default 2
#   --hugepages N        reserve N huge pages in the guest (uffd-unit-tests' hugetlb
#                        cases), default 0 (they skip, as on most hosts)
#   --install-only       build the install tree and its tarball, boot nothing
#   --artefacts-only     build the install tree and the initramfs, fetch the kernels,
#                        boot nothing; write build/kernel-matrix/artefacts.tsv (one
#                        line per kernel: spec, label, kind, image, note; "#append"
#                        and "#qemu" lines: the guest's command line and qemu size).
#                        tools/lava/run.sh turns it into LAVA jobs.
#   --report-only        parse the logs of the last run again and redraw the matrix
# Output in build/kernel-matrix/ (or $KM_OUT): logs/*.serial.log, tap/*.tap, results/*.tsv,
# matrix.txt, matrix.md, matrix.json, kselftest_install/ and kselftest_install.tar.gz.
# Exit status 1 when a test failed or a kernel did not boot.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
km=${KM_OUT:-build/kernel-matrix}
libexec=tools/kernel_matrix
tarball=/usr/src/linux-source-6.12.tar.xz
contract_tests=(uffd_api_test uffd_missing_test uffd_modes_test uffd_process_test
		uffd_remove_test uffd_register_test uffd_wake_test uffd_events_test
		uffd_wp_test memfd_seek_test shmem_thp_test hugetlb_uffd_test)

kernels="running debian-6.1 debian-6.12"
kernel_timeout=300
test_timeout=200
accel=auto
mem=512M
smp=1
jobs=2
hugepages=0
mode=run

usage() {
	sed -n '3,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--kernels) kernels=$2; shift 2 ;;
	--timeout) kernel_timeout=$2; shift 2 ;;
	--test-timeout) test_timeout=$2; shift 2 ;;
	--accel) accel=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	--hugepages) hugepages=$2; shift 2 ;;
	--install-only) mode=install; shift ;;
	--artefacts-only) mode=artefacts; shift ;;
	--report-only) mode=report; shift ;;
	-h | --help) usage ;;
	*) echo "kernel_matrix: unknown option '$1'" >&2; usage ;;
	esac
done

say() { printf 'kernel-matrix: %s\n' "$*" >&2; }
t0=$(date +%s)

# ---- the report from existing results ----
# assemble RESULTS: parse the column's log again, then add the driver's records.
assemble() {
	local res=$1 log tap end
	log=$(awk -F'\t' '$2 == "log" { print $3 }' "$res.meta")
	tap=$(awk -F'\t' '$2 == "tap" { print $3 }' "$res.meta")
	end=$(awk -F'\t' '$2 == "qemu" { print $3 }' "$res.meta")
	{
		awk -f "$libexec/parse.awk" -v tap="$tap" -v qemu="$end" "$log"
		cat "$res.meta"
	} >"$res"
}

report() {
	local files=() f rc=0
	while read -r f; do
		[ "$mode" != report ] || [ ! -s "$f.meta" ] || assemble "$f"
		[ -s "$f" ] || printf 'meta\tboot\tfail\nmeta\treason\tno results: the run of this kernel failed\n' >"$f"
		files+=("$f")
	done <"$km/results/order"
	awk -f "$libexec/report.awk" -v md="$km/matrix.md" -v json="$km/matrix.json" \
		"${files[@]}" >"$km/matrix.txt" || rc=$?
	cat "$km/matrix.txt"
	echo
	say "wrote $km/matrix.txt, $km/matrix.md and $km/matrix.json ($(($(date +%s) - t0)) s)"
	return $rc
}

if [ "$mode" = report ]; then
	report
	exit
fi

# ---- the install tree: run_kselftest.sh layout ----
# kselftest_install/
#   run_kselftest.sh, kselftest/          from the 6.12 source (build/deps/runner)
#   kmatrix-run                           the guest's runner (one KTAP document for
#                                         all collections: kmatrix-run --run DIR)
#   kselftest-list.txt                    COLLECTION:PROGRAM, in run order
#   vmmswap/<contract tests>, settings    our programs (build/static)
#   mm/uffd-unit-tests, settings          the kernel's own, built here (if it builds)
inst=$km/kselftest_install
uut_reason=""

build_uffd_unit_tests() {
	local src=$km/ksrc t=linux-source-6.12 sel=tools/testing/selftests
	local out=$km/uffd-unit-tests
	if [ -x "$out" ] && [ "$out" -nt "$tarball" ]; then
		return 0
	fi
	if [ ! -r "$tarball" ]; then
		uut_reason="$tarball is missing (apt-get install linux-source-6.12)"
		return 1
	fi
	say "extracting mm/uffd-unit-tests from $tarball"
	rm -rf "$src"
	mkdir -p "$src"
	if ! tar -xJf "$tarball" -C "$src" --strip-components=1 \
		"$t/$sel/mm/uffd-unit-tests.c" "$t/$sel/mm/uffd-common.c" \
		"$t/$sel/mm/uffd-common.h" "$t/$sel/mm/vm_util.c" "$t/$sel/mm/vm_util.h" \
		"$t/$sel/kselftest.h" "$t/mm/gup_test.h" "$t/include/uapi/linux/fs.h"; then
		uut_reason="could not extract its sources from $tarball"
		return 1
	fi
	# The host's uapi headers may predate 6.12: userfaultfd.h and fs.h come from the
	# source (the rest of <linux/...> from the host).
	mkdir -p "$src/uapi/linux"
	cp "$src/include/uapi/linux/fs.h" build/deps/uapi/linux/userfaultfd.h "$src/uapi/linux/"
	say "building uffd-unit-tests (static)"
	if ! (cd "$src/$sel/mm" &&
		${CC:-gcc} -static -O2 -Wall -U_FORTIFY_SOURCE -isystem "$top/$src/uapi" \
			-o "$top/$out.tmp" uffd-unit-tests.c uffd-common.c vm_util.c \
			-lrt -lpthread -lm) >"$km/uffd-unit-tests.build.log" 2>&1; then
		uut_reason="build failed: $(grep -m1 'error' "$km/uffd-unit-tests.build.log" || echo see $km/uffd-unit-tests.build.log)"
		return 1
	fi
	mv "$out.tmp" "$out"
}

make_install_tree() {
	local t
	rm -rf "$inst"
	mkdir -p "$inst/vmmswap"
	cp -r build/deps/runner/run_kselftest.sh build/deps/runner/kselftest "$inst/"
	cp "$km/init" "$inst/kmatrix-run"
	: >"$inst/kselftest-list.txt"
	for t in "${contract_tests[@]}"; do
		if [ ! -x "build/static/selftests/$t" ]; then
			say "build/static/selftests/$t is missing: run 'make kernel-matrix' (or make STATIC=1)"
			exit 1
		fi
		cp "build/static/selftests/$t" "$inst/vmmswap/"
		echo "vmmswap:$t" >>"$inst/kselftest-list.txt"
	done
	echo "timeout=$test_timeout" >"$inst/vmmswap/settings"
	if build_uffd_unit_tests; then
		mkdir -p "$inst/mm"
		cp "$km/uffd-unit-tests" "$inst/mm/"
		echo "timeout=$test_timeout" >"$inst/mm/settings"
		echo "mm:uffd-unit-tests" >>"$inst/kselftest-list.txt"
	else
		say "uffd-unit-tests skipped: $uut_reason"
	fi
	tar -czf "$km/kselftest_install.tar.gz" -C "$km" kselftest_install
}

make_initramfs() {
	local root=$km/rootfs
	rm -rf "$root"
	mkdir -p "$root/dev" "$root/proc" "$root/sys" "$root/tmp"
	cp "$km/init" "$root/init"
	cp -r "$inst" "$root/kselftest"
	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
		gzip -1 >"$km/initramfs.cpio.gz"
}

# ---- kernels ----
# resolve SPEC: sets k_label, k_kind (qemu|host|unavailable), k_image, k_note
resolve_kernel() {
	local spec=$1 pkg deb dir ver
	k_image="" k_note="" k_kind=qemu
	case "$spec" in
	running | host)
		k_label=$(uname -r)
		if [ "$spec" = running ] && [ -r "/boot/vmlinuz-$k_label" ]; then
			k_image=/boot/vmlinuz-$k_label
			k_note="running kernel's image, qemu"
		else
			k_kind=host
			k_label="$k_label (host)"
			if [ "$spec" = running ]; then
				k_note="no readable /boot/vmlinuz-$(uname -r): run on this host"
			else
				k_note="run on this host"
			fi
		fi
		return 0
		;;
	debian-*)
		ver=${spec#debian-}
		pkg=$(apt-cache search --names-only \
			"^linux-image-${ver//./\\.}\.[0-9]+[-+][^ ]*cloud-amd64\$" 2>/dev/null |
			awk '{print $1}' | sort -V | tail -n 1)
		if [ -z "$pkg" ]; then
			k_kind=unavailable k_label=$spec
			k_note="no linux-image-$ver...-cloud-amd64 in the apt lists (apt-get update?)"
			return 0
		fi
		;;
	deb:*) pkg=${spec#deb:} ;;
	*)
		k_label=$(basename "$spec")
		if [ -r "$spec" ]; then
			k_image=$spec k_note="kernel image $spec"
		else
			k_kind=unavailable k_note="cannot read $spec"
		fi
		return 0
		;;
	esac
	k_label=${pkg#linux-image-}
	dir=$km/kernels/$pkg
	if ! ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1; then
		mkdir -p "$km/debs"
		deb=$(find "$km/debs" -name "${pkg}_*.deb" | head -n 1)
		if [ -z "$deb" ]; then
			say "apt-get download $pkg"
			# _apt cannot write into the build tree: download in a world-writable
			# temporary directory, then move the package here.
			local tmp
			tmp=$(mktemp -d)
			chmod 777 "$tmp"
			if ! (cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1); then
				rm -rf "$tmp"
				k_kind=unavailable k_note="apt-get download $pkg failed"
				return 0
			fi
			mv "$tmp"/*.deb "$km/debs/"
			rm -rf "$tmp"
			deb=$(find "$km/debs" -name "${pkg}_*.deb" | head -n 1)
		fi
		say "unpacking $(basename "$deb")"
		rm -rf "$dir"
		mkdir -p "$dir"
		dpkg-deb -x "$deb" "$dir"
		rm -rf "${dir:?}/lib" "${dir:?}/usr" # modules and docs: the tests need none
	fi
	k_image=$(find "$dir/boot" -name "vmlinuz-*" | head -n 1)
	k_note="Debian package $pkg, qemu"
}

# The guest kernel's command line (also written into artefacts.tsv for the LAVA jobs).
kernel_append() {
	local append="console=ttyS0 panic=-1 loglevel=1 kmatrix.timeout=$test_timeout"
	[ "$hugepages" = 0 ] || append="$append kmatrix.hugepages=$hugepages"
	echo "$append"
}

# run_qemu IMAGE LOG ACCEL [LIMIT]: boot, wait for power-off or the time limit.
# Prints how it ended: exit, timeout, kvm-failed, or (with a LIMIT: a KVM probe)
# began once the runner has started.
run_qemu() {
	local image=$1 log=$2 acc=$3 limit=${4:-$kernel_timeout} pid deadline end=exit
	local errlog=$2.qemu-stderr probe=${4:+1}
	local append
	append=$(kernel_append)
	local args=(-m "$mem" -smp "$smp" -kernel "$image" -initrd "$km/initramfs.cpio.gz"
		-append "$append" -display none -monitor none -nodefaults -no-reboot
		-serial "file:$log")
	if [ "$acc" = kvm ]; then
		args+=(-accel kvm -cpu host)
	else
		args+=(-accel tcg -cpu max)
	fi
	: >"$log"
	qemu-system-x86_64 "${args[@]}" </dev/null >"$errlog" 2>&1 &
	pid=$!
	deadline=$(($(date +%s) + limit))
	while kill -0 "$pid" 2>/dev/null; do
		if [ -n "$probe" ] && grep -q 'kmatrix: begin' "$log"; then
			end=began
			break
		fi
		if [ "$(date +%s)" -ge "$deadline" ]; then
			end=timeout
			break
		fi
		if [ "$acc" = kvm ] && ! grep -q 'kmatrix: begin' "$log" &&
			grep -qiE 'KVM internal error|emulation failure|Assertion' "$errlog"; then
			end=kvm-failed
			break
		fi
		sleep 1
	done
	if [ "$end" != exit ]; then
		kill "$pid" 2>/dev/null || true
		sleep 1
		kill -9 "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	# KVM that initialises but cannot run this guest: qemu dies or stops early.
	if [ "$acc" = kvm ] && [ "$end" != began ] && ! grep -q 'kmatrix: begin' "$log" &&
		grep -qiE 'KVM internal error|emulation failure|Assertion|error' "$errlog"; then
		end=kvm-failed
	fi
	echo "$end"
}

# --accel auto: KVM when /dev/kvm is usable and a guest really runs under it.
choose_accel() {
	local image=$1 r
	[ "$accel" = auto ] || { echo "$accel"; return; }
	if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		echo tcg
		return
	fi
	r=$(run_qemu "$image" "$km/logs/kvm-probe.log" kvm 60)
	if [ "$r" = began ]; then
		echo kvm
	else
		say "KVM does not run the guest here ($r, see $km/logs/kvm-probe.log.qemu-stderr): using TCG"
		echo tcg
	fi
}

# resolve every kernel first (downloads), then run them: K_* arrays by column.
K_SPEC=() K_LABEL=() K_KIND=() K_IMAGE=() K_NOTE=() K_RES=()

# run_kernel INDEX ACCEL: one column; writes K_RES[INDEX].
run_kernel() {
	local i=$1 acc=$2 safe log tap res start end how
	safe=$(printf '%s' "$((i + 1))-${K_LABEL[i]}" | tr -c 'A-Za-z0-9._+-' '_')
	log=$km/logs/$safe.serial.log
	tap=$km/tap/$safe.tap
	res=${K_RES[i]}
	start=$(date +%s)
	case "${K_KIND[i]}" in
	unavailable)
		say "${K_SPEC[i]}: unavailable: ${K_NOTE[i]}"
		printf 'kmatrix: kernel unavailable: %s\n' "${K_NOTE[i]}" >"$log"
		end=unavailable how="-"
		;;
	host)
		# The guest's runner, run as a program: the same KTAP as in a guest.
		say "${K_LABEL[i]}: running the install tree on this host (${K_NOTE[i]})"
		end=host
		timeout --kill-after=10 "$kernel_timeout" "$km/init" --run "$inst" \
			--timeout "$test_timeout" >"$log" 2>&1 || end=timeout
		how="host"
		;;
	qemu)
		say "${K_LABEL[i]}: booting ${K_IMAGE[i]} under qemu ($acc, -smp $smp, limit ${kernel_timeout}s)"
		end=$(run_qemu "${K_IMAGE[i]}" "$log" "$acc")
		how="qemu $acc"
		;;
	esac
	{
		printf 'meta\tlabel\t%s\nmeta\tsource\t%s\nmeta\tduration\t%s\n' \
			"${K_LABEL[i]}" "$how" "$(($(date +%s) - start))"
		printf 'meta\ttap\t%s\nmeta\tlog\t%s\nmeta\tqemu\t%s\n' "$tap" "$log" "$end"
		[ "${K_KIND[i]}" != unavailable ] || printf 'meta\treason\t%s\n' "${K_NOTE[i]}"
		[ -z "$uut_reason" ] ||
			printf 'test\tupstream\tuffd-unit-tests\t(program)\tskip\tnot built: %s\n' \
				"$uut_reason"
	} >"$res.meta"
	assemble "$res"
	say "${K_LABEL[i]}: $(awk -F'\t' '$1 == "test" { n[$5]++ }
		END { printf "%d pass, %d fail, %d skip", n["pass"], n["fail"], n["skip"] }' "$res")" \
		"($(($(date +%s) - start)) s)"
}

for p in qemu-system-x86_64 cpio dpkg-deb apt-get; do
	command -v "$p" >/dev/null || { say "$p is missing: tools/deps.sh --extra qemu-system-x86 cpio"; exit 1; }
done
[ -x "$km/init" ] || { say "$km/init is missing: run 'make kernel-matrix'"; exit 1; }

make_install_tree
if [ "$mode" = install ]; then
	say "install tree in $inst, tarball $km/kselftest_install.tar.gz"
	exit 0
fi
make_initramfs
if [ "$mode" = artefacts ]; then
	{
		printf '#append\t%s\n#qemu\t-m %s -smp %s\n' "$(kernel_append)" "$mem" "$smp"
		for spec in $kernels; do
			resolve_kernel "$spec"
			printf '%s\t%s\t%s\t%s\t%s\n' "$spec" "$k_label" "$k_kind" "$k_image" "$k_note"
		done
	} >"$km/artefacts.tsv"
	say "install tree, $km/initramfs.cpio.gz and the kernels: $km/artefacts.tsv"
	exit 0
fi
rm -rf "$km/logs" "$km/tap" "$km/results"
mkdir -p "$km/logs" "$km/tap" "$km/results"
: >"$km/results/order"
n=0
for spec in $kernels; do
	resolve_kernel "$spec"
	K_SPEC[n]=$spec K_LABEL[n]=$k_label K_KIND[n]=$k_kind K_IMAGE[n]=$k_image K_NOTE[n]=$k_note
	K_RES[n]=$km/results/$((n + 1)).tsv
	echo "${K_RES[n]}" >>"$km/results/order"
	n=$((n + 1))
done

# The host and unavailable columns first (alone: the host run is timing-sensitive),
# then the guests, --jobs at a time.
acc=""
for ((i = 0; i < n; i++)); do
	case "${K_KIND[i]}" in
	qemu) [ -n "$acc" ] || acc=$(choose_accel "${K_IMAGE[i]}") ;;
	*) run_kernel "$i" - ;;
	esac
done
running=0
for ((i = 0; i < n; i++)); do
	[ "${K_KIND[i]}" = qemu ] || continue
	if [ "$running" -ge "$jobs" ]; then
		wait -n || true
		running=$((running - 1))
	fi
	run_kernel "$i" "$acc" &
	running=$((running + 1))
done
wait
report
