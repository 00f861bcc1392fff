#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""jobs.py - write one LAVA job definition per kernel of the kernel matrix.

Usage: tools/lava/jobs.py [--artefacts TSV] [--install DIR] [--out DIR]
                          [--url URL] [--kvm]
       tools/lava/jobs.py --device JOB.yaml DEVICE.yaml

Reads build/kernel-matrix/artefacts.tsv (tools/kernel_matrix.sh --artefacts-only:
the kernels of KERNELS=, the guest command line, the qemu size) and the kselftest
install tree that the initramfs holds, copies the artefacts into OUT/artefacts/
(initramfs.cpio.gz, N-LABEL.vmlinuz, and kselftest.tar.gz: the install tree for
KernelCI's kselftest test definition) and writes OUT/N-LABEL.yaml for every kernel
that boots under qemu, plus OUT/jobs.tsv (index, label, job file or "-", note).

The jobs are for LAVA's "qemu" device type: deploy to tmpfs (the kernel and the
initramfs, with their sha256), boot method qemu without a shell, and a test action
of pattern monitors that turn the KTAP on the serial console into LAVA test cases:
one suite per program ("COLLECTION.PROGRAM", one case per kselftest case) and one
suite per collection ("COLLECTION", one case per program). Timeouts come from the
kselftest settings (timeout= of each collection in the install tree).

URL (default $LAVA_ARTEFACT_URL, else file://OUT/artefacts) is where a lab finds
the files of OUT/artefacts/; see tools/lava/README.md. The jobs ask for TCG
(context no_kvm: true) unless --kvm is given. --device writes the device
configuration that lava-run needs on this machine for one of the jobs.
"""
import argparse
import hashlib
import os
import re
import shutil
import sys
import tarfile

import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# One nested kselftest-harness result, as the runner prints it: "# ok 3 NAME",
# "# ok 3 NAME # SKIP reason", "# not ok 3 NAME". The lookahead puts "SKIP",
# "not ok" or "ok" into the result group, wherever it stands in the line.
TAP_RESULT = (
    r"(?=(?:ok [0-9]+ [^\r\n#]*# (?=SKIP))?(?P<result>SKIP|not ok|ok))"
    r"(?:not )?ok [0-9]+ %s(?P<test_case_id>[^\r\n#]*?) *(?:#[^\r\n]*)?\r*\n"
)
NESTED_TAP = r"(?m)^# " + TAP_RESULT % ""
# The program's own result line: "ok 4 selftests: vmmswap: uffd_wp_test # SKIP".
TOP_TAP = r"(?m)^" + TAP_RESULT % r"selftests: [^:\r\n]+: "
# mm/uffd-unit-tests: "Testing NAME... done|skipped [reason: R]|failed [reason: R]",
# the result possibly on a later line of the program's output.
UNIT_RESULT = (
    r"(?m)^# Testing (?P<test_case_id>[^\r\n]*?)\.\.\. ?"
    r"(?:[^\r\n]*\r*\n# (?!Testing ))*?(?P<result>done|skipped|failed)"
)
TAP_FIXUP = {"ok": "pass", "not ok": "fail", "SKIP": "skip"}
UNIT_FIXUP = {"done": "pass", "skipped": "skip", "failed": "fail"}
BOOT_S = 180  # kernel boot under TCG, until the runner's first program
MARGIN_S = 60


def read_artefacts(path):
    meta, kernels = {}, []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("#"):
                k, _, v = line[1:].partition("\t")
                meta[k] = v
                continue
            spec, label, kind, image, note = (line.split("\t") + [""] * 5)[:5]
            kernels.append(
                {"spec": spec, "label": label, "kind": kind, "image": image, "note": note}
            )
    return meta, kernels


def settings_timeout(path, default):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("timeout="):
                    return int(line.split("=", 1)[1])
    except OSError:
        pass
    return default


def read_programs(install):
    """(collection, program, timeout) in run order; the guest's init adds kernel:dmesg."""
    default = settings_timeout(os.path.join(TOP, "selftests", "settings"), 45)
    progs = []
    with open(os.path.join(install, "kselftest-list.txt")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or ":" not in line:
                continue
            coll, prog = line.split(":", 1)
            t = settings_timeout(os.path.join(install, coll, "settings"), default)
            progs.append((coll, prog, t))
    progs.append(("kernel", "dmesg", 10))
    return progs


def monitors(progs):
    out = []
    for i, (coll, prog, _) in enumerate(progs):
        last = i == len(progs) - 1
        unit = prog == "uffd-unit-tests"
        header = rx("# selftests: %s: %s" % (coll, prog)) + r"\r*\n"
        if coll != "kernel":
            out.append(
                {
                    "name": "%s.%s" % (coll, prog),
                    "start": header,
                    "end": r"(?=# kmatrix: %s took )" % rx(prog),
                    "pattern": UNIT_RESULT if unit else NESTED_TAP,
                    "fixupdict": UNIT_FIXUP if unit else TAP_FIXUP,
                }
            )
            start = r"# kmatrix: %s took [0-9]+ ms\r*\n" % rx(prog)
        else:
            start = header
        out.append(
            {
                "name": coll,
                "start": start,
                "end": r"(?=kmatrix: end)" if last else r"(?=# selftests: |kmatrix: end)",
                "pattern": TOP_TAP,
                "fixupdict": TAP_FIXUP,
            }
        )
    return out


def rx(s):
    """s as a regular expression that matches it literally (readable: no escaped blanks)."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", s)


class Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def mem_mb(size):
    m = re.fullmatch(r"([0-9]+)([KMG]?)i?B?", size.strip(), re.I)
    if not m:
        return 512
    n, unit = int(m.group(1)), m.group(2).upper()
    return {"K": n // 1024, "M": n, "G": n * 1024, "": n // (1 << 20)}[unit]


def safe(s):
    return re.sub(r"[^A-Za-z0-9._+-]", "_", s)


def job(index, k, meta, progs, url, kvm, kimg, initrd):
    qemu = meta.get("qemu", "-m 512M -smp 1").split()
    memory = mem_mb(qemu[qemu.index("-m") + 1]) if "-m" in qemu else 512
    smp = qemu[qemu.index("-smp") + 1] if "-smp" in qemu else "1"
    append = meta.get("append", "console=ttyS0 panic=-1 loglevel=1")
    tmax = max(t for _, _, t in progs)
    test_s = BOOT_S + sum(t for _, _, t in progs) + MARGIN_S
    gap_s = tmax + MARGIN_S
    deploy_s = 300
    context = {"arch": "amd64", "memory": memory}
    if not kvm:
        context["no_kvm"] = True
    context["extra_options"] = ["-cpu max", "-smp %s" % smp, "-no-reboot"]
    return {
        "device_type": "qemu",
        "job_name": "vmmswap kernel-contract selftests on %s" % k["label"],
        "visibility": "public",
        "priority": "medium",
        "context": context,
        "metadata": {
            "vmmswap.kernel": k["label"],
            "vmmswap.kernel-spec": k["spec"],
            "vmmswap.column": str(index),
            "vmmswap.kselftest-timeout": str(tmax),
            "vmmswap.generator": "tools/lava/jobs.py",
        },
        "timeouts": {
            "job": {"seconds": deploy_s + gap_s + test_s + MARGIN_S},
            "connection": {"seconds": gap_s},
        },
        "actions": [
            {
                "deploy": {
                    "to": "tmpfs",
                    "timeout": {"seconds": deploy_s},
                    "images": {
                        "kernel": {
                            "url": "%s/%s" % (url, kimg),
                            "sha256sum": sha256(os.path.join(ARTEFACTS, kimg)),
                            "image_arg": '-kernel {kernel} -append "%s"' % append,
                        },
                        "initrd": {
                            "url": "%s/%s" % (url, initrd),
                            "sha256sum": sha256(os.path.join(ARTEFACTS, initrd)),
                            "image_arg": "-initrd {initrd}",
                        },
                    },
                }
            },
            {
                "boot": {
                    "method": "qemu",
                    "media": "tmpfs",
                    # Also the longest silence a monitor waits for (LAVA's qemu
                    # connection takes its expect timeout from the boot action).
                    "timeout": {"seconds": gap_s},
                }
            },
            {"test": {"timeout": {"seconds": test_s}, "monitors": monitors(progs)}},
        ],
    }


def device(context):
    """The device configuration that LAVA's qemu.jinja2 (lava-server) renders for a
    job with this context on amd64, for lava-run on this machine (lava-run takes the
    rendered form; a lab renders it from the device dictionary itself)."""
    options = []
    if not context.get("no_kvm"):
        options += ["-cpu host", "-enable-kvm"]
    options += [
        "-nographic",
        "-net nic,model=virtio,macaddr=52:54:00:12:34:58 -net user",
        "-m %s" % context.get("memory", 512),
        "-monitor none",
    ]
    qemu = {
        "parameters": {
            "command": "qemu-system-x86_64",
            "boot_options": {"root": "/dev/sda1", "console": "ttyS0,115200", "boot_order": "c"},
            "options": options,
        }
    }
    if context.get("extra_options"):
        qemu["parameters"]["extra"] = list(context["extra_options"])
    return {
        "available_architectures": ["amd64", "x86_64"],
        "constants": {
            "posix": {
                "lava_test_sh_cmd": "/bin/sh",
                "lava_test_results_dir": "/lava-%s",
                "lava_test_shell_file": "~/.bashrc",
            },
            "shutdown-message": "The system is going down for reboot NOW",
            "kernel-start-message": "Linux version [0-9]",
            "default-shell-prompt": "lava-test: # ",
            # pexpect reads at most this much at once; LAVA searches the last 4000
            # characters only, so a larger read could hide a result line.
            "spawn_maxread": "2000",
            "failure_retry": 1,
            "boot_retry": 1,
        },
        "parameters": {"pass": None},
        "actions": {
            "deploy": {
                "connections": {"serial": None, "lxc": None},
                "methods": {
                    "nfs": None,
                    "lxc": None,
                    "image": {
                        "parameters": {
                            "guest": {"size": 512, "interface": "ide", "driveid": "lavatest"}
                        }
                    },
                },
            },
            "boot": {
                "connections": {"serial": None, "ssh": None, "lxc": None},
                "methods": {"qemu": qemu},
            },
        },
        "timeouts": {
            "actions": {
                "boot-qemu-image": {"minutes": 2},
                "boot-image-retry": {"minutes": 2},
                "http-download": {"minutes": 5},
                "download-retry": {"minutes": 5},
                "power-off": {"seconds": 10},
            },
            "connections": {"lava-test-shell": {"seconds": 10}},
        },
    }


def write_device(job_file, out):
    with open(job_file) as f:
        context = (yaml.safe_load(f) or {}).get("context", {})
    with open(out, "w") as f:
        f.write(
            "# LAVA device configuration for lava-run: qemu.jinja2 rendered for the\n"
            "# context of %s (written by tools/lava/jobs.py --device)\n" % job_file
        )
        yaml.dump(device(context), f, Dumper=Dumper, sort_keys=False, default_flow_style=False)


def main():
    global ARTEFACTS
    km = os.path.join(TOP, "build", "kernel-matrix")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--artefacts", default=os.path.join(km, "artefacts.tsv"))
    ap.add_argument("--install", default=os.path.join(km, "kselftest_install"))
    ap.add_argument("--initramfs", default=os.path.join(km, "initramfs.cpio.gz"))
    ap.add_argument("--out", default=os.path.join(TOP, "build", "lava"))
    ap.add_argument("--url", default=os.environ.get("LAVA_ARTEFACT_URL", ""))
    ap.add_argument("--kvm", action="store_true", help="let the lab use KVM (no no_kvm)")
    ap.add_argument("--device", nargs=2, metavar=("JOB", "OUT"),
                    help="only write the local device configuration for JOB to OUT")
    a = ap.parse_args()
    if a.device:
        write_device(*a.device)
        return 0

    out = os.path.abspath(a.out)
    ARTEFACTS = os.path.join(out, "artefacts")
    url = (a.url or "file://" + ARTEFACTS).rstrip("/")
    meta, kernels = read_artefacts(a.artefacts)
    progs = read_programs(a.install)
    os.makedirs(ARTEFACTS, exist_ok=True)
    for f in os.listdir(out):
        if re.fullmatch(r"[0-9]+-.*\.yaml", f):
            os.remove(os.path.join(out, f))
    for f in os.listdir(ARTEFACTS):
        os.remove(os.path.join(ARTEFACTS, f))
    initrd = "initramfs.cpio.gz"
    shutil.copyfile(a.initramfs, os.path.join(ARTEFACTS, initrd))
    # The same install tree, flat, as KernelCI's kselftest test definition fetches it
    # (TESTPROG_URL; run_kselftest.sh at the top, like the kernel's 'make gen_tar').
    with tarfile.open(os.path.join(ARTEFACTS, "kselftest.tar.gz"), "w:gz", compresslevel=6) as t:
        for f in sorted(os.listdir(a.install)):
            t.add(os.path.join(a.install, f), arcname=f)
    index = []
    for i, k in enumerate(kernels, 1):
        name = "%d-%s" % (i, safe(k["label"]))
        if k["kind"] != "qemu":
            why = k["note"] if k["kind"] == "unavailable" else "no kernel image to deploy (%s)" % k["note"]
            index.append((i, k["label"], "-", why))
            print("lava-jobs: %s: no job: %s" % (k["spec"], why), file=sys.stderr)
            continue
        kimg = name + ".vmlinuz"
        shutil.copyfile(os.path.join(TOP, k["image"]), os.path.join(ARTEFACTS, kimg))
        path = os.path.join(out, name + ".yaml")
        with open(path, "w") as f:
            f.write(
                "# SPDX-License-Identifier: MIT\n"
                "# LAVA job: the vmmswap kernel-contract selftests on %s (%s).\n"
                "# Written by 'make lava-jobs' (tools/lava/jobs.py); artefacts from %s/.\n"
                % (k["label"], k["spec"], url)
            )
            yaml.dump(
                job(i, k, meta, progs, url, a.kvm, kimg, initrd),
                f,
                Dumper=Dumper,
                sort_keys=False,
                default_flow_style=False,
                width=1000,
            )
        index.append((i, k["label"], os.path.relpath(path, TOP), k["note"]))
        print("lava-jobs: %s: %s" % (k["spec"], os.path.relpath(path, TOP)), file=sys.stderr)
    with open(os.path.join(out, "jobs.tsv"), "w") as f:
        for row in index:
            f.write("%s\t%s\t%s\t%s\n" % row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
