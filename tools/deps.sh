#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Install what vmmswap needs from Debian's archive and extract the few kernel files
# it builds against into build/deps/. Idempotent: when everything is present it does
# nothing but a few dpkg-query calls and a stamp check.
#
# Nothing extracted here is ever committed: build/ is in .gitignore.
#
# Usage: tools/deps.sh [--extra PKG...]   (extra packages, e.g. for the kernel matrix)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
deps="$top/build/deps"
ksrc_pkg=linux-source-6.12
tarball=/usr/src/linux-source-6.12.tar.xz
pkgs=(gcc make xz-utils libcap-dev libseccomp-dev python3-pytest "$ksrc_pkg")
if [ "${1:-}" = "--extra" ]; then
	shift
	pkgs+=("$@")
fi

say() { printf 'deps: %s\n' "$*" >&2; }

missing=()
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		say "missing Debian packages: ${missing[*]}"
		say "run 'make deps' as root (or: apt-get install ${missing[*]})"
		exit 1
	fi
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Only refresh the package lists when an install from the current ones fails.
	if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
		say "apt-get install failed with the current lists; running apt-get update"
		apt-get update -q >&2
		apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
	fi
fi

# The kernel files we take from the 6.12 source, and where they land:
#   kselftest/      kselftest.h, kselftest_harness.h (GPL-2.0, build-time only)
#   uapi/linux/     userfaultfd.h (6.12: UFFDIO_MOVE, UFFDIO_POISON, WP_ASYNC, ...)
#   runner/         run_kselftest.sh and kselftest/ (for 'selftests install')
stamp="$deps/.extracted"
want="$(stat -c '%s %Y' "$tarball") v2"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	exit 0
fi

say "extracting kselftest headers and uapi headers from $tarball"
rm -rf "$deps"
mkdir -p "$deps/src"
t=linux-source-6.12
tar -xJf "$tarball" -C "$deps/src" --strip-components=1 \
	"$t/tools/testing/selftests/kselftest.h" \
	"$t/tools/testing/selftests/kselftest_harness.h" \
	"$t/tools/testing/selftests/run_kselftest.sh" \
	"$t/tools/testing/selftests/kselftest" \
	"$t/tools/include/uapi/linux/userfaultfd.h"
mkdir -p "$deps/kselftest" "$deps/uapi/linux" "$deps/runner"
cp "$deps/src/tools/testing/selftests/kselftest.h" \
	"$deps/src/tools/testing/selftests/kselftest_harness.h" "$deps/kselftest/"
cp "$deps/src/tools/include/uapi/linux/userfaultfd.h" "$deps/uapi/linux/"
cp -r "$deps/src/tools/testing/selftests/run_kselftest.sh" \
	"$deps/src/tools/testing/selftests/kselftest" "$deps/runner/"
rm -rf "$deps/src"
echo "$want" >"$stamp"
say "done"
