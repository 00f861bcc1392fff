#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""validate.py - check LAVA job definitions written by tools/lava/jobs.py.

Usage: tools/lava/validate.py [--structural] JOB.yaml...
       tools/lava/validate.py --replay JOB.yaml CONSOLE.log > RESULTS

The first form validates each job with LAVA's own schema (lava_common.schemas,
from Debian's lava-common) when it can be imported, else (or with --structural)
with a structural check of what the jobs rely on: the keys and values LAVA's
schema requires, timeouts within the job's timeout, the deploy/boot/test actions
for the qemu device type, monitor regular expressions that compile and have the
groups LAVA reads. It prints one line per job and "validator: lava_common" or
"validator: structural"; exit status 1 when a job is invalid.

--replay runs the job's monitors over a recorded serial console the way LAVA's
lava-test-monitor does (start string, then test results until the end string)
and prints the test cases as LAVA's log records, for tools/lava/results.py.
"""
import re
import signal
import sys

import yaml

NAME = re.compile(r"^[-_a-zA-Z0-9.]+$")
RESULTS = ("pass", "fail", "skip", "unknown")
# lava_common.schemas.CONTEXT_VARIABLES, the ones of a qemu job
CONTEXT = {"arch", "boot_console", "boot_root", "cpu", "extra_options", "guestfs_driveid",
           "guestfs_interface", "guestfs_size", "machine", "memory", "model", "monitor",
           "netdevice", "no_kvm", "serial", "vga"}
UNITS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


class Invalid(Exception):
    pass


def need(cond, what):
    if not cond:
        raise Invalid(what)


def seconds(t, where):
    need(isinstance(t, dict) and len(t) in (1, 2), "%s: a timeout is one of days/hours/minutes/seconds" % where)
    units = [k for k in t if k in UNITS]
    need(len(units) == 1 and set(t) <= set(units) | {"skip"}, "%s: bad timeout keys %s" % (where, sorted(t)))
    v = t[units[0]]
    need(isinstance(v, int) and not isinstance(v, bool) and v >= 1, "%s: timeout must be an integer >= 1" % where)
    return v * UNITS[units[0]]


def regex(s, where, groups=()):
    need(isinstance(s, str) and s, "%s: not a string" % where)
    try:
        r = re.compile(s, re.DOTALL)
    except re.error as e:
        raise Invalid("%s: %s" % (where, e))
    for g in groups:
        need(g in r.groupindex, "%s: no (?P<%s>...) group" % (where, g))
    return r


def structural(job):
    need(isinstance(job, dict), "not a mapping")
    allowed = {"job_name", "device_type", "timeouts", "visibility", "context", "metadata",
               "priority", "tags", "secrets", "environment", "protocols", "notify",
               "reboot_to_fastboot", "actions"}
    need(set(job) <= allowed, "unknown keys %s" % sorted(set(job) - allowed))
    name = job.get("job_name")
    need(isinstance(name, str) and 1 <= len(name) <= 200, "job_name: 1 to 200 characters")
    need(job.get("device_type") == "qemu", "device_type must be qemu")
    need(job.get("visibility") in ("public", "personal") or isinstance(job.get("visibility"), dict),
         "visibility: public, personal or {group: [...]}")
    need(job.get("priority", "medium") in ("high", "medium", "low"), "priority")
    ctx = job.get("context", {})
    need(isinstance(ctx, dict) and set(ctx) <= CONTEXT, "context: unknown variables %s" % sorted(set(ctx) - CONTEXT))
    need(ctx.get("arch") in ("amd64", "x86_64"), "context: arch amd64 (CallQemuAction needs it)")
    for k, v in ctx.items():
        need(isinstance(v, (int, str)) or (isinstance(v, list) and all(isinstance(x, (int, str)) for x in v)),
             "context: %s: int, str or a list of them" % k)
    md = job.get("metadata", {})
    need(isinstance(md, dict) and all(isinstance(k, str) for k in md), "metadata: a mapping of strings")
    t = job.get("timeouts")
    need(isinstance(t, dict) and "job" in t, "timeouts: job is required")
    need(set(t) <= {"job", "action", "actions", "connection", "connections", "queue"}, "timeouts: unknown keys")
    limit = seconds(t["job"], "timeouts.job")
    for k in ("action", "connection"):
        if k in t:
            need(seconds(t[k], "timeouts." + k) <= limit, "timeouts.%s: larger than the job timeout" % k)
    for k in ("actions", "connections"):
        for a, v in (t.get(k) or {}).items():
            need(seconds(v, "timeouts.%s.%s" % (k, a)) <= limit, "timeouts.%s.%s: larger than the job timeout" % (k, a))
    acts = job.get("actions")
    need(isinstance(acts, list) and acts, "actions: a non-empty list")
    kinds = []
    for i, a in enumerate(acts):
        need(isinstance(a, dict) and len(a) == 1, "actions[%d]: one key" % i)
        kind, p = next(iter(a.items()))
        need(kind in ("deploy", "boot", "test", "command") and isinstance(p, dict), "actions[%d]: %s" % (i, kind))
        if "timeout" in p:
            need(seconds(p["timeout"], "actions[%d].timeout" % i) <= limit,
                 "actions[%d]: timeout larger than the job timeout" % i)
        kinds.append(kind)
        where = "actions[%d].%s" % (i, kind)
        if kind == "deploy":
            need(p.get("to") == "tmpfs", where + ": to: tmpfs")
            imgs = p.get("images")
            need(isinstance(imgs, dict) and imgs, where + ": images")
            for label in ("kernel", "initrd"):
                img = imgs.get(label)
                need(isinstance(img, dict), "%s: images.%s" % (where, label))
                need(re.match(r"^(https?|file)://", str(img.get("url", ""))), "%s.%s: url" % (where, label))
                need(re.fullmatch(r"[0-9a-f]{64}", str(img.get("sha256sum", ""))), "%s.%s: sha256sum" % (where, label))
                need("{%s}" % label in str(img.get("image_arg", "")), "%s.%s: image_arg uses {%s}" % (where, label, label))
                extra = set(img) - {"url", "sha256sum", "md5sum", "sha512sum", "image_arg", "compression", "headers", "format"}
                need(not extra, "%s.%s: unknown keys %s" % (where, label, sorted(extra)))
        elif kind == "boot":
            need(p.get("method") == "qemu", where + ": method: qemu")
            need(p.get("media", "tmpfs") == "tmpfs", where + ": media: tmpfs")
            need("prompts" not in p and "auto_login" not in p, where + ": the initramfs has no shell")
        elif kind == "test":
            mons = p.get("monitors")
            need(isinstance(mons, list) and mons, where + ": monitors")
            for j, m in enumerate(mons):
                mw = "%s.monitors[%d]" % (where, j)
                need(isinstance(m, dict) and set(m) <= {"name", "start", "end", "pattern", "fixupdict"}, mw + ": keys")
                need(NAME.match(str(m.get("name", ""))), mw + ": name")
                regex(m.get("start"), mw + ".start")
                regex(m.get("end"), mw + ".end")
                regex(m.get("pattern"), mw + ".pattern", ("result", "test_case_id"))
                fx = m.get("fixupdict", {})
                need(isinstance(fx, dict) and all(v in RESULTS for v in fx.values()), mw + ".fixupdict")
    need(kinds[:3] == ["deploy", "boot", "test"], "actions: deploy, boot, test")


def replay(job, text):
    """LAVA's TestMonitorAction over a whole console: results as log records."""
    pos = 0
    for a in job["actions"]:
        p = a.get("test")
        if not p:
            continue
        for m in p["monitors"]:
            start = re.compile(m["start"], re.DOTALL).search(text, pos)
            if not start:
                print("# replay: start of %s not found" % m["name"], file=sys.stderr)
                return
            pos = start.end()
            end = re.compile(m["end"], re.DOTALL)
            pat = re.compile(m["pattern"], re.DOTALL)
            fix = m.get("fixupdict") or {}
            while True:
                e, r = end.search(text, pos), pat.search(text, pos)
                if r and (not e or r.start() < e.start()):
                    g = r.groupdict()
                    res = fix.get(g["result"], g["result"])
                    case = re.sub(r"\W+", "_", g["test_case_id"].strip().lower())
                    rec = {"lvl": "results", "msg": {"definition": m["name"].replace(" ", "-").lower(),
                                                     "case": case, "result": res}}
                    print(yaml.safe_dump(rec, default_flow_style=True, width=10**6).strip())
                    pos = r.end()
                elif e:
                    pos = e.end()
                    break
                else:
                    print("# replay: end of %s not found" % m["name"], file=sys.stderr)
                    return


def main(argv):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = argv[1:]
    if args[:1] == ["--replay"] and len(args) == 3:
        with open(args[1]) as f:
            job = yaml.safe_load(f)
        with open(args[2], errors="replace") as f:
            # the console as a DUT prints it (LAVA reads CR LF line ends)
            text = f.read().replace("\r\n", "\n").replace("\n", "\r\n")
        replay(job, text)
        return 0
    force = args[:1] == ["--structural"]
    files = args[1:] if force else args
    if not files:
        sys.stderr.write(__doc__)
        return 2
    lava_validate = None
    if not force:
        try:
            from lava_common.schemas import validate as lava_validate
        except ImportError:
            pass
    bad = 0
    for path in files:
        try:
            with open(path) as f:
                job = yaml.safe_load(f)
            if lava_validate:
                lava_validate(job, strict=True)
            structural(job)  # always: it also checks what LAVA's schema leaves open
            print("ok %s" % path)
        except Exception as e:  # yaml, voluptuous and our own errors alike
            print("not ok %s: %s" % (path, e))
            bad += 1
    print("validator: %s" % ("lava_common" if lava_validate else "structural"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
