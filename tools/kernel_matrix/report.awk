# SPDX-License-Identifier: MIT
#
# kernel_matrix/report.awk - combine the per-kernel results of parse.awk into the
# matrix: one row per test, one column per kernel. Prints the text table and writes
# the Markdown and JSON forms. A row whose status (pass / fail / skip) is not the
# same on every kernel that booted is a difference and is marked "*" (text),
# bold (Markdown) and "differs": true (JSON). Kernels that did not boot, and "n/a"
# cells (the guest kernel log check on a host column), are left out of the comparison.
#
# Usage: awk -f report.awk [-v md=FILE] [-v json=FILE] [-v width=N] RESULTS...
#   Each RESULTS file is one kernel (parse.awk output, plus "meta label",
#   "meta source", "meta duration" and "meta tap" lines from the driver), in
#   column order. Exit status 1 when a test failed or a kernel did not boot.

function jstr(s) {
	gsub(/\\/, "\\\\", s)
	gsub(/"/, "\\\"", s)
	gsub(/\t/, " ", s)
	gsub(/[\001-\037]/, " ", s)
	return "\"" s "\""
}

function mdesc(s) {
	gsub(/\|/, "\\|", s)
	gsub(/</, "\\&lt;", s)
	return s
}

function pad(s, w) {
	return sprintf("%-" w "s", s)
}

function cut(s, w) {
	return length(s) > w ? substr(s, 1, w - 3) "..." : s
}

# The status of row r on kernel k, and its reason.
function cell_status(k, r) {
	if ((k, r) in st)
		return st[k, r]
	if (boot[k] != "ok")
		return "no boot"
	if (rgroup[r] == "kernel" && src[k] == "host")
		return "n/a"	# the host's kernel log is not ours to judge
	return "not run"
}

function note_of(k, r,    nkey) {
	nkey = k SUBSEP rowkey[r]
	return (nkey in notes) ? notes[nkey] : ""
}

function cell_text(k, r,    s) {
	s = cell_status(k, r)
	if ((k, r) in why && why[k, r] != "")
		s = s ": " why[k, r]
	return s
}

FNR == 1 {
	nk++
	kfile[nk] = FILENAME
	label[nk] = FILENAME
	boot[nk] = "ok"
	endst[nk] = ""
	reason[nk] = ""
	src[nk] = ""
	dur[nk] = ""
	tapf[nk] = ""
	rel[nk] = ""
	npass[nk] = nfail[nk] = nskip[nk] = 0
}

{
	n = split($0, f, "\t")
}

f[1] == "meta" {
	if (f[2] == "label") label[nk] = f[3]
	else if (f[2] == "source") src[nk] = f[3]
	else if (f[2] == "duration") dur[nk] = f[3]
	else if (f[2] == "tap") tapf[nk] = f[3]
	else if (f[2] == "kernel") rel[nk] = f[3]
	else if (f[2] == "boot") boot[nk] = f[3]
	else if (f[2] == "end") endst[nk] = f[3]
	else if (f[2] == "reason") reason[nk] = f[3]
	next
}

f[1] == "note" {
	key = f[2] SUBSEP f[3] SUBSEP f[4]
	nkey = nk SUBSEP key
	if (nkey in notes)
		notes[nkey] = notes[nkey] "; " f[5]
	else
		notes[nkey] = f[5]
	next
}

f[1] == "test" {
	key = f[2] SUBSEP f[3] SUBSEP f[4]
	if (!(key in seen)) {
		seen[key] = ++nrows
		rowkey[nrows] = key
		rgroup[nrows] = f[2]
		rname[nrows] = f[4] == "(program)" ? f[3] : f[3] "/" f[4]
	}
	r = seen[key]
	st[nk, r] = f[5]
	why[nk, r] = f[6]
	if (f[5] == "pass") npass[nk]++
	else if (f[5] == "fail") nfail[nk]++
	else if (f[5] == "skip") nskip[nk]++
}

END {
	ng = split("contract kernel upstream", gname, " ")
	gtitle["contract"] = "vmmswap kernel-contract selftests"
	gtitle["kernel"] = "guest kernel log"
	gtitle["upstream"] = "kernel's own selftests (mm/uffd-unit-tests, Linux 6.12 source)"
	bad = 0
	ndiff = 0
	for (k = 1; k <= nk; k++) {
		kid[k] = sprintf("%c", 64 + k)
		if (boot[k] != "ok" || nfail[k] > 0 || endst[k] == "incomplete")
			bad = 1
	}
	# Differences: compare the status on every kernel that booted.
	for (r = 1; r <= nrows; r++) {
		first = ""
		diff[r] = 0
		for (k = 1; k <= nk; k++) {
			if (boot[k] != "ok")
				continue
			s = cell_status(k, r)
			if (s == "n/a")
				continue
			if (first == "")
				first = s
			else if (s != first)
				diff[r] = 1
		}
		ndiff += diff[r]
		# Same status everywhere, but the values the test logged differ.
		first = ""
		ndiffer[r] = 0
		for (k = 1; k <= nk; k++) {
			if (boot[k] != "ok" || cell_status(k, r) == "n/a" || cell_status(k, r) == "not run")
				continue
			s = note_of(k, r)
			if (first == "")
				first = "=" s
			else if ("=" s != first)
				ndiffer[r] = 1
		}
		nndiff += (ndiffer[r] && !diff[r])
	}

	# ---- text ----
	if (width == "")
		width = 40
	tw = 10
	for (r = 1; r <= nrows; r++)
		if (length(rname[r]) > tw)
			tw = length(rname[r])
	if (tw > 60)
		tw = 60
	for (k = 1; k <= nk; k++) {
		cw[k] = 6
		for (r = 1; r <= nrows; r++) {
			l = length(cut(cell_text(k, r), width))
			if (l > cw[k])
				cw[k] = l
		}
	}
	printf "Kernel matrix: %d kernels, %d tests, %d differ between kernels (marked *)\n\n", nk, nrows, ndiff
	for (k = 1; k <= nk; k++) {
		if (boot[k] == "ok")
			state = (endst[k] == "done") ? "completed" : "INCOMPLETE: " reason[k]
		else
			state = "DID NOT BOOT: " reason[k]
		printf "  %s  %s [%s] pass %d, fail %d, skip %d, %ss: %s\n", kid[k], label[k], src[k],
		       npass[k], nfail[k], nskip[k], dur[k] == "" ? "?" : dur[k], state
	}
	for (g = 1; g <= ng; g++) {
		any = 0
		for (r = 1; r <= nrows; r++)
			if (rgroup[r] == gname[g])
				any = 1
		if (!any)
			continue
		printf "\n%s\n", gtitle[gname[g]]
		line = "  " pad("test", tw)
		for (k = 1; k <= nk; k++)
			line = line " | " pad(kid[k], cw[k])
		print line
		for (r = 1; r <= nrows; r++) {
			if (rgroup[r] != gname[g])
				continue
			line = (diff[r] ? "* " : "  ") pad(cut(rname[r], tw), tw)
			for (k = 1; k <= nk; k++)
				line = line " | " pad(cut(cell_text(k, r), width), cw[k])
			sub(/ +$/, "", line)
			print line
		}
	}
	if (ndiff) {
		printf "\nDifferences between kernels:\n"
		for (r = 1; r <= nrows; r++) {
			if (!diff[r])
				continue
			printf "  %s:", rname[r]
			for (k = 1; k <= nk; k++)
				if (boot[k] == "ok")
					printf " %s=%s", kid[k], cell_status(k, r)
			printf "\n"
		}
	} else {
		printf "\nNo differences between the kernels that booted.\n"
	}
	if (nndiff) {
		printf "\nSame status, different logged values:\n"
		for (r = 1; r <= nrows; r++) {
			if (!ndiffer[r] || diff[r])
				continue
			printf "  %s:\n", rname[r]
			for (k = 1; k <= nk; k++)
				if (boot[k] == "ok" && cell_status(k, r) != "n/a")
					printf "    %s: %s\n", kid[k], note_of(k, r)
		}
	}

	# ---- Markdown ----
	if (md != "") {
		printf "# Kernel matrix\n\n" > md
		printf "%d kernels, %d tests; **%d rows differ** between kernels (marked ≠).\n\n", nk, nrows, ndiff > md
		printf "| | kernel | how | pass | fail | skip | time | state |\n|---|---|---|---|---|---|---|---|\n" > md
		for (k = 1; k <= nk; k++) {
			if (boot[k] == "ok")
				state = (endst[k] == "done") ? "completed" : "**incomplete**: " mdesc(reason[k])
			else
				state = "**did not boot**: " mdesc(reason[k])
			printf "| %s | `%s` | %s | %d | %d | %d | %s s | %s |\n", kid[k], label[k], src[k],
			       npass[k], nfail[k], nskip[k], dur[k], state > md
		}
		for (g = 1; g <= ng; g++) {
			any = 0
			for (r = 1; r <= nrows; r++)
				if (rgroup[r] == gname[g])
					any = 1
			if (!any)
				continue
			printf "\n## %s\n\n| | test |", gtitle[gname[g]] > md
			for (k = 1; k <= nk; k++)
				printf " %s |", kid[k] > md
			printf "\n|---|---|" > md
			for (k = 1; k <= nk; k++)
				printf "---|" > md
			printf "\n" > md
			for (r = 1; r <= nrows; r++) {
				if (rgroup[r] != gname[g])
					continue
				printf "| %s | %s%s%s |", diff[r] ? "≠" : "", diff[r] ? "**" : "",
				       mdesc(rname[r]), diff[r] ? "**" : "" > md
				for (k = 1; k <= nk; k++) {
					s = mdesc(cell_text(k, r))
					if (diff[r])
						s = "**" s "**"
					printf " %s |", s > md
				}
				printf "\n" > md
			}
		}
		if (nndiff) {
			printf "\n## Same status, different logged values\n\n| test | kernel | logged |\n|---|---|---|\n" > md
			for (r = 1; r <= nrows; r++) {
				if (!ndiffer[r] || diff[r])
					continue
				for (k = 1; k <= nk; k++)
					if (boot[k] == "ok" && cell_status(k, r) != "n/a")
						printf "| %s | %s | %s |\n", mdesc(rname[r]), kid[k],
						       mdesc(note_of(k, r)) > md
			}
		}
		close(md)
	}

	# ---- JSON ----
	if (json != "") {
		printf "{\n  \"kernels\": [\n" > json
		for (k = 1; k <= nk; k++) {
			printf "    {\"id\": %s, \"label\": %s, \"release\": %s, \"source\": %s, ", jstr(kid[k]),
			       jstr(label[k]), jstr(rel[k]), jstr(src[k]) > json
			printf "\"boot\": %s, \"end\": %s, \"reason\": %s, \"duration_s\": %s, ",
			       jstr(boot[k]), jstr(endst[k]), jstr(reason[k]),
			       (dur[k] ~ /^[0-9]+$/ ? dur[k] : "null") > json
			printf "\"tap\": %s, \"pass\": %d, \"fail\": %d, \"skip\": %d}%s\n", jstr(tapf[k]),
			       npass[k], nfail[k], nskip[k], (k < nk ? "," : "") > json
		}
		printf "  ],\n  \"differences\": %d,\n  \"tests\": [\n", ndiff > json
		first = 1
		for (g = 1; g <= ng; g++) {
			for (r = 1; r <= nrows; r++) {
				if (rgroup[r] != gname[g])
					continue
				split(rowkey[r], kp, SUBSEP)
				printf "%s    {\"group\": %s, \"program\": %s, \"test\": %s, \"differs\": %s, \"logged_differs\": %s, \"results\": {",
				       first ? "" : ",\n", jstr(kp[1]), jstr(kp[2]), jstr(kp[3]),
				       diff[r] ? "true" : "false", ndiffer[r] ? "true" : "false" > json
				first = 0
				for (k = 1; k <= nk; k++) {
					rs = ((k, r) in why) ? why[k, r] : ""
					printf "%s%s: {\"status\": %s, \"reason\": %s, \"logged\": %s}",
					       (k > 1 ? ", " : ""), jstr(label[k]), jstr(cell_status(k, r)),
					       jstr(rs), jstr(note_of(k, r)) > json
				}
				printf "}}" > json
			}
		}
		printf "\n  ]\n}\n" > json
		close(json)
	}
	exit bad
}
