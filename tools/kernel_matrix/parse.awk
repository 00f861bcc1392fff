# SPDX-License-Identifier: MIT
#
# kernel_matrix/parse.awk - read one kernel's serial console log (or the host
# runner's output) and turn it into results, one tab-separated record per line:
#
#   meta  KEY   VALUE                         boot, reason, kernel, end, plan, noise
#   prog  GROUP PROGRAM STATUS REASON         one per program (top-level TAP line)
#   test  GROUP PROGRAM TEST STATUS REASON    one per test inside a program
#   note  GROUP PROGRAM TEST TEXT             a value a test logged (TH_LOG)
#
# STATUS is pass, fail or skip. GROUP is "contract" for the vmmswap collection,
# "upstream" for the kernel's own mm selftests and "kernel" for the guest's kernel
# log check. With -v tap=FILE the KTAP document found between the runner's marker
# lines is written to FILE, without the console's carriage returns and without any
# kernel message that was printed into the middle of it.
#
# Usage: awk -f parse.awk [-v tap=FILE] [-v qemu=STATUS] SERIAL_LOG
#   qemu: how the guest ended, as the driver saw it (exit, timeout, error, host)
#
# Understands two nested formats: the kselftest harness's own TAP ("# ok N name"),
# and the "Testing NAME... done|skipped [reason: R]|failed [reason: R]" lines of
# the kernel's uffd-unit-tests.

function out(s) { print s }

function clean(s) {
	gsub(/\t/, " ", s)
	sub(/[ ]+$/, "", s)
	if (length(s) > 160)
		s = substr(s, 1, 157) "..."
	return s
}

function group_of(coll) {
	if (coll == "vmmswap")
		return "contract"
	if (coll == "kernel")
		return "kernel"
	return "upstream"
}

function emit_test(name, status, reason) {
	out("test\t" cur_group "\t" cur_prog "\t" name "\t" status "\t" clean(reason))
	nsub++
	if (status == "fail")
		nsubfail++
}

# A program's output ended (its top-level line, or the end of the log): a test that
# was started but never reported is a failure of that test.
function close_pending(why) {
	if (h_running != "") {
		emit_test(h_running, "fail", why)
		h_running = ""
	}
	if (u_pending != "") {
		emit_test(u_pending, "fail", why)
		u_pending = ""
	}
}

function begin_prog(coll, name) {
	in_prog = 1
	cur_coll = coll
	cur_group = group_of(coll)
	cur_prog = name
	nsub = nsubfail = 0
	h_running = h_diag = u_pending = ""
	sub_planned = -1
	sub_seen = 0
}

# A nested harness result: "ok N name # SKIP reason" / "not ok N name # reason".
function harness_result(line,    st, rest, name, reason, p) {
	st = "pass"
	if (line ~ /^not ok /) {
		st = "fail"
		rest = substr(line, 8)
	} else {
		rest = substr(line, 4)
	}
	sub(/^[0-9]+[ ]*(- )?/, "", rest)
	name = rest
	reason = ""
	p = index(rest, " # ")
	if (p) {
		name = substr(rest, 1, p - 1)
		reason = substr(rest, p + 3)
	}
	if (st == "pass" && reason ~ /^(SKIP|skip)/) {
		st = "skip"
		sub(/^(SKIP|skip)[ ]*/, "", reason)
	} else if (st == "pass" && reason ~ /^(XFAIL|xfail)/) {
		reason = "expected failure: " reason
	} else if (st == "fail" && reason == "") {
		reason = h_diag
	}
	sub(/^global\./, "", name)
	emit_test(name, st, reason)
	sub_seen++
	h_running = h_diag = ""
}

# A line of a program's output, without the runner's "# " prefix.
function nested(line,    m, name, rest) {
	if (line ~ /^1\.\.[0-9]+/) {
		sub_planned = substr(line, 4) + 0
		return
	}
	if (line ~ /^(not )?ok [0-9]+/) {
		harness_result(line)
		return
	}
	if (line ~ /^#  RUN /) {
		name = line
		sub(/^#  RUN[ ]+/, "", name)
		sub(/ \.\.\.$/, "", name)
		sub(/^global\./, "", name)
		h_running = name
		h_diag = ""
		return
	}
	# The harness's first diagnostic of a failing test ("file:line:test:Expected ...").
	if (h_running != "" && h_diag == "" && line ~ /^# .*:[0-9]+:.*(Expected|ASSERT|assert)/) {
		h_diag = line
		sub(/^# [^:]*:[0-9]+:[^:]*:/, "", h_diag)
		return
	}
	# Any other harness log line of the running test: a value it observed.
	if (h_running != "" && line ~ /^# [^ :]+:[0-9]+:[^:]+:/) {
		m = line
		sub(/^# [^:]*:[0-9]+:[^:]*:/, "", m)
		out("note\t" cur_group "\t" cur_prog "\t" h_running "\t" clean(m))
		return
	}
	# uffd-unit-tests: "Testing NAME... RESULT", RESULT possibly on a later line.
	if (line ~ /^Testing .*\.\.\. ?/) {
		if (u_pending != "")
			emit_test(u_pending, "fail", "no result before the next test")
		m = index(line, "... ")
		if (!m)
			m = index(line, "...")
		name = substr(line, 9, m - 9)
		rest = substr(line, m + 3)
		sub(/^ /, "", rest)
		u_pending = name
		unit_result(rest)
		return
	}
	if (u_pending != "")
		unit_result(line)
}

function unit_result(rest,    reason) {
	if (rest ~ /^done/) {
		emit_test(u_pending, "pass", "")
	} else if (rest ~ /^skipped/ || rest ~ /^failed/) {
		reason = rest
		sub(/^[a-z]+ \[reason: /, "", reason)
		sub(/\][ ]*$/, "", reason)
		emit_test(u_pending, rest ~ /^skipped/ ? "skip" : "fail", reason)
	} else {
		return
	}
	u_pending = ""
}

# Top level: "ok N selftests: COLL: NAME [# SKIP|# TIMEOUT ...|# exit=...]".
function top_result(line,    st, rest, reason, p, coll, name) {
	st = (line ~ /^not ok /) ? "fail" : "pass"
	rest = line
	sub(/^(not )?ok [0-9]+ /, "", rest)
	reason = ""
	p = index(rest, " # ")
	if (p) {
		reason = substr(rest, p + 3)
		rest = substr(rest, 1, p - 1)
	}
	if (st == "pass" && reason ~ /^SKIP/) {
		st = "skip"
		sub(/^SKIP[ ]*/, "", reason)
		if (reason == "")
			reason = skip_diag
	}
	sub(/^selftests: /, "", rest)
	p = index(rest, ": ")
	coll = p ? substr(rest, 1, p - 1) : "vmmswap"
	name = p ? substr(rest, p + 2) : rest
	if (!in_prog || name != cur_prog)
		begin_prog(coll, name)
	if (st == "fail" && reason ~ /^TIMEOUT/)
		close_pending("timed out: " reason)
	else if (st == "fail")
		close_pending("program ended during the test (" reason ")")
	else
		close_pending("no result reported")
	if (cur_group == "kernel" && kernel_diag != "" && st == "fail")
		reason = reason "; first: " kernel_diag
	if (st == "fail" && nsubfail == 0 && nsub > 0)
		emit_test("(program)", "fail", reason)
	else if (st == "fail" && sub_planned > sub_seen && nsub > 0)
		emit_test("(program)", "fail", "ran " sub_seen " of " sub_planned " tests (" reason ")")
	if (nsub == 0)
		emit_test("(program)", st, reason)
	out("prog\t" cur_group "\t" cur_prog "\t" st "\t" clean(reason))
	nprogs++
	in_prog = 0
}

BEGIN {
	state = "boot"		# boot -> tap -> end
	nprogs = 0
	noise = 0
	plan = -1
	in_prog = 0
	kernel = ""
	panic = ""
	last_boot = ""
}

{
	sub(/\r+$/, "")
	gsub(/\r/, "")
}

state == "boot" {
	if (match($0, /kmatrix: begin /)) {
		kernel = substr($0, RSTART + RLENGTH)
		state = "tap"
		next
	}
	if ($0 ~ /Kernel panic/ && panic == "") {
		panic = $0
		sub(/^.*Kernel panic - /, "", panic)
		sub(/^\[[ 0-9.]+\] /, "", panic)
	}
	if ($0 != "")
		last_boot = $0
	next
}

state == "tap" {
	if ($0 ~ /^kmatrix: end/) {
		if (in_prog)
			close_pending("no result line for the program")
		end_status = $0
		sub(/^kmatrix: end /, "", end_status)
		state = "end"
		next
	}
	if ($0 ~ /^TAP version / || $0 ~ /^1\.\.[0-9]+$/ || $0 ~ /^(not )?ok [0-9]+/ ||
	    $0 ~ /^#/) {
		if (tap != "")
			print $0 > tap
	} else {
		# A kernel message printed into the middle of the document.
		noise++
		if ($0 ~ /Kernel panic/ && panic == "") {
			panic = $0
			sub(/^.*Kernel panic - /, "", panic)
		}
		next
	}
	if ($0 ~ /^1\.\.[0-9]+$/ && plan < 0) {
		plan = substr($0, 4) + 0
		next
	}
	if ($0 ~ /^TAP version /)
		next
	if ($0 ~ /^(not )?ok [0-9]+/) {
		top_result($0)
		next
	}
	if ($0 ~ /^# selftests: [^:]+: /) {
		line = $0
		sub(/^# selftests: /, "", line)
		p = index(line, ": ")
		begin_prog(substr(line, 1, p - 1), substr(line, p + 2))
		skip_diag = ""
		kernel_diag = ""
		next
	}
	if (in_prog && $0 ~ /^# /) {
		line = substr($0, 3)
		if (cur_group == "kernel" && line ~ /^kernel: / && kernel_diag == "")
			kernel_diag = substr(line, 9)
		if (line ~ /^# *SKIP/ && skip_diag == "") {
			skip_diag = line
			sub(/^# *SKIP[ ]*/, "", skip_diag)
		}
		nested(line)
	}
	next
}

END {
	if (tap != "")
		close(tap)
	out("meta\tkernel\t" kernel)
	if (state == "boot") {
		out("meta\tboot\tfail")
		if (panic != "")
			reason = "kernel panic: " panic
		else if (qemu == "timeout")
			reason = "no output from the test runner before the time limit"
		else if (qemu != "" && qemu != "exit")
			reason = "qemu " qemu " before the test runner started"
		else
			reason = "the test runner never started"
		if (panic == "" && last_boot != "")
			reason = reason " (last console line: " clean(last_boot) ")"
		out("meta\treason\t" clean(reason))
	} else {
		out("meta\tboot\tok")
		if (state == "tap") {
			if (in_prog)
				close_pending(qemu == "timeout" ? "guest time limit reached" : "the guest stopped during the test")
			if (qemu == "timeout")
				reason = "time limit reached"
			else if (panic != "")
				reason = "kernel panic: " panic
			else
				reason = "the guest stopped early"
			out("meta\tend\tincomplete")
			out("meta\treason\tran " nprogs " of " plan " programs: " clean(reason))
		} else {
			out("meta\tend\t" end_status)
		}
	}
	out("meta\tplan\t" plan)
	out("meta\tprograms\t" nprogs)
	out("meta\tnoise\t" noise)
}
