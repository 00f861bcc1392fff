#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The pictures of ref/pictures/, drawn from the code's own tables, and the check
# that keeps them and the contract's section numbers honest.
#
#   tools/docs/docs.sh [--build DIR]          'make docs': write ref/pictures/NAME.dot from
#                                        the tools and render NAME.svg and NAME.png
#                                        (installs Debian's graphviz when 'dot' is
#                                        missing)
#   tools/docs/docs.sh --check [--build DIR]  'make check' (item docs_up_to_date): the
#                                        committed .dot sources equal what the tools
#                                        print now, and every "spec N.M" / "contract
#                                        N.M" citation in ref/ selftests/ tools/
#                                        vmtests/ fixtures/ (and every "§N.M" or
#                                        "section N.M" in ref/*.md) names a section
#                                        of ref/CONTRACT.md
#                                        (a cited invariant or step must exist too).
#                                        Needs no graphviz. Exit 1 on any difference.
# DIR is the build variant holding tools/vms_sm_dump and tools/vms_page_dump
# (default build/default).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1

build=build/default
check=0
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--check) check=1; shift ;;
	*) echo "docs.sh: unknown option '$1' (see the header of $0)" >&2; exit 2 ;;
	esac
done

pics=ref/pictures
# picture name and the command that prints its Graphviz source
pictures=("state_machine:$build/tools/vms_sm_dump --dot"
	"page_states:$build/tools/vms_page_dump --dot")

say() { printf 'docs: %s\n' "$*" >&2; }

# Every citation of the contract must name a section (and item) that exists.
check_citations() {
	/usr/bin/python3 - "$@" <<'EOF'
import re, subprocess, sys

contract = "ref/CONTRACT.md"
text = open(contract, encoding="utf-8").read().splitlines()
sections, items, cur = set(), {}, None
for line in text:
    m = re.match(r"#{1,6}\s+(\d+(?:\.\d+)*)\.?\s", line)
    if m:
        cur = m.group(1)
        sections.add(cur)
        items.setdefault(cur, set())
        continue
    m = re.match(r"\s*(\d+)\.\s", line)
    if m and cur:
        items[cur].add(int(m.group(1)))

roots = ["ref", "selftests", "tools", "vmtests", "fixtures"]
try:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"] + roots,
                           capture_output=True, text=True, check=True).stdout.split()
except (OSError, subprocess.CalledProcessError):  # not a git work tree
    import os
    files = [os.path.join(d, f) for r in roots for d, _, fs in os.walk(r) for f in fs]
num = r"\d+(?:\.\d+)*"
cite = re.compile(r"\b(?:spec|contract)\s+(?:section\s+)?(" + num + r"(?:,\s*" + num +
                  r"(?![\d.]))*)((?:\s+step\s+\d+)?)((?:[,:]\s*invariants?\s+\d+(?:-\d+)?"
                  r"(?:(?:,\s*|\s+and\s+)\d+(?:-\d+)?)*)?)")
para = re.compile(r"(?:§|\bsections?\s+)(" + num + r")(?![\d.]*\s+(?:to|of)\b)")
bad, count = [], 0

def need(where, sec, what=None, n=None):
    if sec not in sections:
        bad.append(f"{where}: section {sec} is not in {contract}")
    elif n is not None and n not in items[sec]:
        bad.append(f"{where}: section {sec} has no {what} {n}")

for f in files:
    try:
        raw = open(f, encoding="utf-8").read()
    except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
        continue
    # Join comment continuation lines: "(spec\n * 5.6.4)" is one citation.
    flat = re.sub(r"\n\s*(?:\*(?!/)|#|//)?\s*", " ", raw)
    for m in cite.finditer(flat):
        count += 1
        where = f"{f}: '{m.group(0)}'"
        secs = [s.strip() for s in m.group(1).split(",")]
        for s in secs:
            need(where, s)
        if m.group(2).strip():
            need(where, secs[-1], "step", int(m.group(2).split()[-1]))
        if m.group(3):
            for part in re.findall(r"\d+(?:-\d+)?", m.group(3)):
                lo, _, hi = part.partition("-")
                for n in range(int(lo), int(hi or lo) + 1):
                    need(where, "8", "invariant", n)
    if f.startswith("ref/") and f.endswith(".md"):
        for m in para.finditer(raw):
            count += 1
            need(f"{f}: '{m.group(0)}'", m.group(1))
for b in bad:
    print("docs: " + b)
print(f"docs: {count} citations checked against {len(sections)} sections of {contract}")
sys.exit(1 if bad else 0)
EOF
}

if [ "$check" = 1 ]; then
	rc=0
	for p in "${pictures[@]}"; do
		name=${p%%:*} cmd=${p#*:}
		if ! now=$($cmd); then
			say "cannot run '$cmd' (build it: make)"
			rc=1
			continue
		fi
		if ! diff -u "$pics/$name.dot" <(printf '%s\n' "$now") >/dev/null 2>&1; then
			say "$pics/$name.dot differs from what '$cmd' prints now: run 'make docs'"
			diff -u "$pics/$name.dot" <(printf '%s\n' "$now") | head -20 >&2
			rc=1
		fi
	done
	check_citations || rc=1
	[ "$rc" = 0 ] && echo "docs: ${#pictures[@]} pictures up to date"
	exit "$rc"
fi

# Graphviz from Debian, only when 'dot' is missing (as tools/deps.sh installs).
if ! command -v dot >/dev/null; then
	if [ "$(id -u)" != 0 ]; then
		say "graphviz is missing: run 'make docs' as root (or: apt-get install graphviz)"
		exit 1
	fi
	say "installing graphviz"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q --no-install-recommends graphviz >&2; then
		say "apt-get install failed with the current lists; running apt-get update"
		apt-get update -q >&2 && apt-get install -y -q --no-install-recommends graphviz >&2 ||
			exit 1
	fi
fi

mkdir -p "$pics"
for p in "${pictures[@]}"; do
	name=${p%%:*} cmd=${p#*:}
	$cmd >"$pics/$name.dot.new" || { rm -f "$pics/$name.dot.new"; exit 1; }
	mv "$pics/$name.dot.new" "$pics/$name.dot"
	dot -Tsvg -o "$pics/$name.svg" "$pics/$name.dot" || exit 1
	dot -Tpng -Gdpi=110 -o "$pics/$name.png" "$pics/$name.dot" || exit 1
	say "$pics/$name.dot, .svg, .png"
done
check_citations
