#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Build the kernel's own peers from Debian's linux-source-6.12 into build/peer/,
# never into git: KVM's demand_paging_test (the reference measurement of
# userfaultfd demand paging). Needs 'make headers_install' of the same source first.
# Prints the path of the built binary on success; exits non-zero with a reason on
# failure (callers then skip the peer).
#
# Usage: tools/bench/peer_build.sh demand_paging_test
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
peer="$top/build/peer"
src="$peer/linux"
tarball=/usr/src/linux-source-6.12.tar.xz
what=${1:-demand_paging_test}
[ "$what" = demand_paging_test ] || { echo "peer_build: unknown peer '$what'" >&2; exit 2; }

"$top/tools/deps.sh" --extra rsync >&2
bin="$peer/kvm/demand_paging_test"
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

if [ ! -f "$src/.extracted" ]; then
	echo "peer_build: extracting the kernel source parts the KVM selftests need" >&2
	rm -rf "$src"
	mkdir -p "$src"
	t=linux-source-6.12
	tar -xJf "$tarball" -C "$src" --strip-components=1 --wildcards \
		"$t/Makefile" "$t/Kbuild" "$t/Kconfig" "$t/scripts/*" "$t/include/*" \
		"$t/arch/x86/*" "$t/arch/Kconfig" "$t/tools/*" "$t/usr/*"
	touch "$src/.extracted"
fi
echo "peer_build: make headers_install" >&2
make -s -C "$src" headers_install ARCH=x86_64 INSTALL_HDR_PATH="$src/usr" >&2
echo "peer_build: building demand_paging_test" >&2
make -s -C "$src/tools/testing/selftests/kvm" -j2 OUTPUT="$peer/kvm" "$bin" >&2
echo "$bin"
