#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""results.py - turn a LAVA job's log and results into the kernel matrix's input.

Usage:
  tools/lava/results.py console LOG            the DUT's serial console, as text
  tools/lava/results.py end LOG                how the job ended ("exit" or "timeout"),
                                               its length in seconds and LAVA's error
                                               (if any), separated by tabs
  tools/lava/results.py cases FILE             LAVA's test cases: suite, case, result
  tools/lava/results.py compare FILE PARSED    check LAVA's test cases against the
                                               records parse.awk made of the console

LOG is a LAVA job log: what lava-run prints (one YAML mapping per line), or a lab's
output.yaml ('lavacli jobs logs --raw ID'; the same mappings as a YAML list). FILE
is such a log, or a lab's test results ('lavacli results --yaml ID').

The matrix itself is never computed here: the console goes through the kernel
matrix's own parser (tools/kernel_matrix/parse.awk), as for a guest booted by
tools/kernel_matrix.sh. 'compare' shows that LAVA's own reading of the same output
(the monitors of tools/lava/jobs.py) gives the same status for every case.
"""
import re
import signal
import sys

import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def records(path):
    """The log's records ({dt, lvl, msg}) or the results' entries, in order."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    try:
        data = yaml.load(text, Loader=Loader)
    except yaml.YAMLError:
        data = None
    if isinstance(data, list):
        return [r for r in data if isinstance(r, dict)]
    # lava-run's own output: one flow mapping per line (and perhaps other text).
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("- {"):
            line = line[2:]
        if not line.startswith("{"):
            continue
        try:
            r = yaml.load(line, Loader=Loader)
        except yaml.YAMLError:
            continue
        if isinstance(r, dict):
            out.append(r)
    return out


def console(recs):
    # The DUT's lines: "target" while an action reads the console, "feedback" when
    # LAVA reads what is left after the test action (here: the runner's end marker).
    # LAVA's ShellLogger drops CRs and escape characters and writes '"' as '\"'.
    for r in recs:
        if r.get("lvl") in ("target", "feedback") and isinstance(r.get("msg"), str):
            yield r["msg"].replace('\\"', '"')


def end(recs):
    state, why = "exit", ""
    for r in recs:
        msg = r.get("msg")
        if r.get("lvl") == "results" and isinstance(msg, dict):
            if msg.get("definition") == "lava" and msg.get("case") == "job":
                if msg.get("result") != "pass":
                    why = str(msg.get("error_msg") or msg.get("error_type") or "job failed")
        if r.get("lvl") in ("error", "warning") and isinstance(msg, str):
            if re.search(r"timed out|has timed out", msg):
                state = "timeout"
    if re.search(r"timed out", why):
        state = "timeout"
    return state, duration(recs), why


def duration(recs):
    """Seconds from the log's first record to its last (from their "dt" times)."""
    import datetime

    times = []
    for r in recs:
        try:
            times.append(datetime.datetime.fromisoformat(str(r.get("dt"))))
        except ValueError:
            pass
    return int((max(times) - min(times)).total_seconds()) if times else "?"


def cases(recs):
    """(suite, case, result) of every test case but LAVA's own ("lava" suite)."""
    for r in recs:
        if r.get("lvl") == "results" and isinstance(r.get("msg"), dict):
            m = r["msg"]
            suite, case, result = m.get("definition"), m.get("case"), m.get("result")
        elif "suite" in r and "name" in r:  # lavacli results --yaml
            suite, case, result = r.get("suite"), r.get("name"), r.get("result")
        else:
            continue
        suite = re.sub(r"^[0-9]+_", "", str(suite))
        if suite == "lava":
            continue
        yield suite, str(case), str(result)


def case_id(name):
    """A test name as LAVA's monitor makes a case of it."""
    return re.sub(r"\W+", "_", name.strip().lower())


def compare(recs, parsed):
    # Keys: (PROGRAM, case) for a kselftest case (LAVA suite COLLECTION.PROGRAM),
    # ("", program) for a program's own result (LAVA suite COLLECTION).
    want = {}  # key -> (status, what)
    with open(parsed) as f:
        for line in f:
            r = line.rstrip("\n").split("\t")
            if r[0] == "prog" and len(r) >= 4:
                want[("", case_id(r[2]))] = (r[3], r[2])
            elif r[0] == "test" and len(r) >= 5 and r[3] != "(program)":
                want[(r[2].lower(), case_id(r[3]))] = (r[4], "%s/%s" % (r[2], r[3]))
    got = {}
    for suite, case, result in cases(recs):
        prog = suite.split(".", 1)[1] if "." in suite else ""
        key = (prog, case)
        if key not in want and case.startswith("global_"):
            key = (prog, case[len("global_"):])
        got[key] = (result, "%s/%s" % (suite, case))
    bad = []
    for key, (status, what) in sorted(want.items()):
        if key not in got:
            bad.append("%s: no LAVA test case (parser: %s)" % (what, status))
        elif got[key][0] != status:
            bad.append("%s: LAVA %s (%s), parser %s" % (what, got[key][0], got[key][1], status))
    for key in sorted(set(got) - set(want)):
        bad.append("LAVA test case %s (%s) has no parser result" % (got[key][1], got[key][0]))
    return len(got), len(want), bad


def main(argv):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if len(argv) < 3 or argv[1] not in ("console", "end", "cases", "compare"):
        sys.stderr.write(__doc__)
        return 2
    recs = records(argv[2])
    if argv[1] == "console":
        for line in console(recs):
            print(line)
    elif argv[1] == "end":
        print("%s\t%s\t%s" % end(recs))
    elif argv[1] == "cases":
        for row in cases(recs):
            print("\t".join(row))
    else:
        if len(argv) < 4:
            sys.stderr.write(__doc__)
            return 2
        ngot, nwant, bad = compare(recs, argv[3])
        for b in bad:
            print("lava: differs: %s" % b)
        if bad:
            print("lava: %d of %d results differ between LAVA's test cases and the KTAP parser"
                  % (len(bad), nwant))
            return 1
        print("lava: all %d LAVA test cases agree with the KTAP parser's %d results"
              % (ngot, nwant))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
