# SPDX-License-Identifier: MIT
"""The reference adapter: drives build/<variant>/tools/minivmm and the vmmswap CLI.

Every swap command, status and guest / DMA / device command is one run of the CLI
(`vmmswap swap enable SOCKET`, `vmmswap swap status SOCKET`, ...), exactly as a
user or crosvm's own `crosvm swap ...` would. Environment:
  VMTESTS_BUILD      build directory holding tools/ (default: build/default of the repo)
  VMTESTS_TRANSPORT  "cli" (default) or "socket": talk minivmm's control protocol
                     (tools/vmm/control.h) directly, which skips the CLI (debugging).
"""

import errno
import json
import os
import signal
import socket
import subprocess
import time

from vmm import (VM, Adapter, GuestResult, Layout, Reply, Status, Unsupported, VmmError,
                 pid_alive)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAGIC = "vmmswap/1"
CALL_TIMEOUT = 120.0  # one command (a 256 MiB verify through faults included)
BALLOON = {"remove": "remove", "dontneed": "dontneed", "punch_hole": "punch-hole"}


def build_dir():
    # A relative VMTESTS_BUILD (e.g. build/san) is relative to the repository, not
    # to whatever directory a VM happens to be started from.
    return os.path.join(REPO, os.environ.get("VMTESTS_BUILD", os.path.join("build", "default")))


def mem_spec(regions_mib):
    """Region 0 at 16 MiB, the next ones from 4 GiB up, 16 MiB apart (gaps)."""
    parts, gpa = [], 16 << 20
    for i, mib in enumerate(regions_mib):
        if i == 1:
            gpa = 4 << 30
        parts.append(f"{mib}M@{gpa:#x}")
        gpa += (mib + 16) << 20
    return ",".join(parts)


class _Reply:
    """One parsed control reply: result word, human line, JSON object."""

    def __init__(self, text):
        head, _, rest = text.partition("\n")
        if not head.startswith(MAGIC + " "):
            raise VmmError(f"not a minivmm reply: {text!r}")
        self.result = head[len(MAGIC) + 1:].strip()
        self.human, _, js = rest.partition("\n")
        try:
            self.json = json.loads(js) if js.strip() else {}
        except ValueError as e:
            raise VmmError(f"bad JSON in reply: {text!r}") from e
        self.text = text


class MiniVmm(VM):
    def __init__(self, adapter, layout, swap_dir, work_dir):
        self.adapter = adapter
        self.layout = layout
        self.swap_dir = swap_dir
        self.work_dir = work_dir
        self.sock = os.path.join(work_dir, "ctl.sock")
        self.out_path = os.path.join(work_dir, "minivmm.out")
        self.log_path = os.path.join(work_dir, "minivmm.log")
        self.cli_log = []  # (argv, rc, output) of recent CLI runs, for failure reports
        self.leftovers = []
        self.proc = None
        self.exit_code = None
        self._monitor = None
        self._devices = []
        self._start()

    # ---- process ------------------------------------------------------------
    def _start(self):
        exe = os.path.join(build_dir(), "tools", "minivmm")
        argv = [exe, "--mem", mem_spec(self.layout.regions_mib),
                "--vcpus", str(self.layout.vcpus), "--devices", str(self.layout.devices),
                "--swap-dir", self.swap_dir, "--socket", self.sock,
                "--balloon-mode", BALLOON[self.layout.balloon], "--verbose"]
        self.argv = argv
        with open(self.out_path, "wb") as out, open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=log,
                                         stdin=subprocess.DEVNULL, cwd=self.work_dir)
        deadline = time.monotonic() + 60
        delay = 0.002
        while True:
            with open(self.out_path, "r", errors="replace") as f:
                ready = [ln for ln in f if ln.startswith("minivmm: ready")]
            if ready:
                break
            if self.proc.poll() is not None:
                raise VmmError(f"minivmm exited with {self.proc.returncode} before it was "
                               f"ready: {' '.join(argv)}\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise VmmError(f"minivmm not ready within 60 s\n{self.log()}")
            time.sleep(delay)  # polling for the ready line, against a deadline
            delay = min(2 * delay, 0.05)
        fields = dict(kv.split("=", 1) for kv in ready[0].split()[2:] if "=" in kv)
        self._monitor = int(fields.get("monitor_pid", 0)) or None
        info = self._call("info").json
        self.region_pages = [r["pages"] for r in info["regions"]]
        self._devices = [d.get("pid") for d in info.get("devices", []) if d.get("pid")]
        if self.total_pages != sum(m << 8 for m in self.layout.regions_mib):
            raise VmmError(f"minivmm has {self.total_pages} pages, asked for "
                           f"{self.layout.regions_mib} MiB")

    def pids(self):
        return [p for p in [self.proc.pid, self._monitor] + self._devices if p]

    def monitor_pid(self):
        return self._monitor

    def log(self):
        parts = []
        for path in (self.out_path, self.log_path):
            try:
                with open(path, "r", errors="replace") as f:
                    parts.append(f.read())
            except OSError:
                pass
        text = "".join(parts)
        if self.cli_log:
            text += "\n--- last CLI calls ---\n" + "\n".join(
                f"$ {' '.join(a)}  -> {rc}\n{o.rstrip()}" for a, rc, o in self.cli_log[-15:])
        return text

    def stop(self, timeout=30.0):
        if self.proc.poll() is None:
            try:
                self._call("stop")
            except VmmError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise VmmError(f"minivmm did not exit within {timeout}s of 'stop'")
        self.exit_code = self.proc.returncode
        self._wait_children(10.0)
        return self.exit_code

    def kill_vmm(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill_vmm()
        self._wait_children(10.0)

    def _wait_children(self, timeout):
        """The monitor and devices die with the VMM; SIGKILL and record any that do
        not within the timeout."""
        others = [p for p in self.pids() if p != self.proc.pid]
        deadline = time.monotonic() + timeout
        while any(pid_alive(p) for p in others) and time.monotonic() < deadline:
            time.sleep(0.01)  # polling against a deadline
        for p in others:
            if pid_alive(p):
                self.leftovers.append(p)
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass

    # ---- transport ------------------------------------------------------------
    def _call(self, verb, **kw):
        """Send one request; returns _Reply. Transport errors raise VmmError."""
        if self.adapter.transport == "socket":
            return self._call_socket(verb, kw)
        return self._call_cli(verb, kw)

    def _call_socket(self, verb, kw):
        req = " ".join([MAGIC, verb] + [f"{k}={v}" for k, v in kw.items()])
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.settimeout(CALL_TIMEOUT)
            s.connect(self.sock)
            s.send(req.encode())
            data = s.recv(1 << 16)
        except OSError as e:
            raise VmmError(f"{req}: {e}\n(VMM exit status {self.proc.poll()})") from e
        finally:
            s.close()
        return _Reply(data.decode(errors="replace"))

    def _call_cli(self, verb, kw):
        argv = self.adapter.cli_argv(verb, kw, self.sock)
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=CALL_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            raise VmmError(f"{' '.join(argv)}: no answer within {CALL_TIMEOUT}s") from e
        out = r.stdout + r.stderr
        self.cli_log.append((argv, r.returncode, out))
        del self.cli_log[:-50]
        return self.adapter.parse_cli(verb, kw, r.returncode, r.stdout, r.stderr, argv)

    # ---- swap ---------------------------------------------------------------------
    def swap(self, command, slow_file_cleanup=False):
        kw = {"op": command}
        if command == "disable" and slow_file_cleanup:
            kw["slow_file_cleanup"] = 1
        r = self._call("swap", **kw)
        j = r.json
        result = {"ok": "accepted", "ignored": "ignored"}.get(r.result, "failed")
        if r.result not in ("ok", "ignored", "error"):
            raise VmmError(f"swap {command}: unexpected reply {r.text!r}")
        return Reply(result, j.get("state"), j.get("new_state"), r.human or r.text)

    def status(self):
        r = self._call("swap", op="status")
        if r.result != "ok":
            raise VmmError(f"swap status: {r.text!r}")
        return Status(r.human)

    # ---- guest ---------------------------------------------------------------------
    def _guest(self, op, vcpu, **kw):
        r = self._call("guest", op=op, vcpu=vcpu, **kw)
        return _guest_result(r)

    def fill(self, seed, start, count, vcpu=0):
        return self._guest("fill", vcpu, start=start, count=count, seed=seed)

    def verify(self, seed, start, count, vcpu=0):
        if seed == 0:
            return self._guest("verify-zero", vcpu, start=start, count=count)
        return self._guest("verify", vcpu, start=start, count=count, seed=seed)

    def touch(self, start, count, write=False, vcpu=0):
        return self._guest("write-touch" if write else "read-touch", vcpu,
                           start=start, count=count)

    def inflate(self, start, count, vcpu=0):
        return self._guest("inflate", vcpu, start=start, count=count)

    def deflate(self, start, count, vcpu=0):
        return self._guest("deflate", vcpu, start=start, count=count)

    def writer_start(self, seed, start, count, vcpu):
        return self._guest("writer-start", vcpu, start=start, count=count, seed=seed)

    def writer_stop(self, vcpu):
        return self._guest("writer-stop", vcpu)

    # ---- devices -------------------------------------------------------------------
    def _dma(self, **kw):
        return _guest_result(self._call("dma", **kw))

    def dma_fill(self, device, seed, start, count):
        return self._dma(op="fill", dev=device, start=start, count=count, seed=seed)

    def dma_verify(self, device, seed, start, count):
        if seed == 0:
            raise Unsupported("minivmm's DMA verify has no zero pattern")
        return self._dma(op="verify", dev=device, start=start, count=count, seed=seed)

    def dma_copy(self, device, src, dst, count):
        return self._dma(op="copy", dev=device, src=src, dst=dst, count=count)

    def device_exit(self, device, crash=False):
        r = self._call("device", op="crash" if crash else "exit", dev=device)
        if r.result != "ok":
            raise VmmError(f"device {device} {'crash' if crash else 'exit'}: {r.text!r}")
        return r.json


def _guest_result(r):
    j = r.json
    fm = j.get("first_mismatch") or {}
    res = GuestResult(
        ok=r.result == "ok", text=r.human or r.text,
        error="" if r.result == "ok" else
        ("mismatch" if r.result == "mismatch" else j.get("guest_status") or r.result),
        pages_done=j.get("pages", 0), mismatched_pages=j.get("mismatched_pages", 0),
        bad_page=fm.get("page", j.get("first_bad_page")), bad_word=fm.get("word"),
        expected=_int(fm.get("expected")), actual=_int(fm.get("actual")),
        checksum=_int(j.get("checksum")), last_seed=j.get("last_seed"))
    if r.result not in ("ok", "mismatch", "error"):
        raise VmmError(f"unexpected reply {r.text!r}")
    if r.result == "error" and "guest_status" not in j:
        # Not the guest's verdict: the VMM could not run the command at all.
        raise VmmError(f"command failed in the VMM: {r.text.strip()}")
    return res


def _int(v):
    if v is None:
        return None
    return int(v, 0) if isinstance(v, str) else int(v)



class MiniVmmAdapter(Adapter):
    name = "minivmm"

    def __init__(self):
        self.transport = os.environ.get("VMTESTS_TRANSPORT", "cli")
        self.tools = os.path.join(build_dir(), "tools")
        self.cli = os.path.join(self.tools, "vmmswap")

    def probe(self):
        for exe in ("minivmm",) + (("vmmswap",) if self.transport == "cli" else ()):
            if not os.access(os.path.join(self.tools, exe), os.X_OK):
                return (f"{self.tools}/{exe} is not built (run 'make' first)")
        if not os.path.exists("/dev/kvm"):
            return "no /dev/kvm on this machine"
        try:
            os.close(os.open("/dev/kvm", os.O_RDWR))
        except OSError as e:
            return f"/dev/kvm is not usable: {e.strerror}"
        return _probe_uffd()

    def start(self, layout, swap_dir, work_dir):
        if layout.balloon not in BALLOON:
            raise Unsupported(f"balloon mode {layout.balloon}")
        return MiniVmm(self, layout, swap_dir, work_dir)

    # ---- the CLI ------------------------------------------------------------------
    def cli_argv(self, verb, kw, sock):
        """vmmswap's argv for one control request (see `vmmswap --help`)."""
        kw = dict(kw)
        op = kw.pop("op", None)
        if verb == "swap" and op == "status":
            return [self.cli, "swap", "status", sock]  # crosvm's exact output
        argv = [self.cli, "--json"]
        if verb == "swap":
            argv += ["swap", op]
            if kw.pop("slow_file_cleanup", 0):
                argv.append("--slow-file-cleanup")
        elif verb == "guest":
            argv += ["--vcpu", str(kw.pop("vcpu", 0))]
            words = {"read-touch": ["touch", "read"], "write-touch": ["touch", "write"],
                     "writer-start": ["writer", "start"], "writer-stop": ["writer", "stop"]}
            argv += words.get(op, [op])
            argv += [str(kw.pop(k)) for k in ("start", "count", "seed") if k in kw]
        elif verb == "dma":
            argv += ["dma", op, str(kw.pop("dev"))]
            order = ("src", "dst", "count") if op == "copy" else ("start", "count", "seed")
            argv += [str(kw.pop(k)) for k in order if k in kw]
        elif verb == "device":
            argv += ["device", op, str(kw.pop("dev"))]
        elif verb in ("info", "stop", "ping"):
            argv.append(verb)
        else:
            raise VmmError(f"no CLI verb for {verb} {op}")
        if kw:
            raise VmmError(f"CLI mapping left {kw} for {verb} {op}")
        return argv + [sock]

    def parse_cli(self, verb, kw, rc, stdout, stderr, argv):
        if verb == "swap" and kw.get("op") == "status":
            if rc != 0:
                raise VmmError(f"{' '.join(argv)}: exit {rc}: {stderr.strip()}")
            return _Reply(f"{MAGIC} ok\n{stdout.strip()}\n{{}}")
        line = stdout.strip().splitlines()[-1] if stdout.strip() else ""
        try:
            j = json.loads(line)
            result = j["result"]
        except (ValueError, KeyError, TypeError):
            raise VmmError(f"{' '.join(argv)}: exit {rc}, no JSON reply: "
                           f"{stdout.strip()!r} {stderr.strip()!r}") from None
        expect_rc = {"ok": 0, "ignored": 0, "mismatch": 2, "error": 1}.get(result)
        if rc != expect_rc:
            raise VmmError(f"{' '.join(argv)}: exit {rc} with result {result}")
        human = j.get("message") or stderr.strip()
        return _Reply(f"{MAGIC} {result}\n{human}\n{json.dumps(j)}")


def _probe_uffd():
    """userfaultfd is usable by this process: the syscall, or /dev/userfaultfd."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    nr = 323  # x86_64 __NR_userfaultfd
    if os.uname().machine != "x86_64":
        return None  # let the VMM report it
    fd = libc.syscall(nr, os.O_CLOEXEC | os.O_NONBLOCK)
    if fd >= 0:
        os.close(fd)
        return None
    err = ctypes.get_errno()
    if os.path.exists("/dev/userfaultfd") and os.access("/dev/userfaultfd", os.R_OK | os.W_OK):
        return None
    return f"userfaultfd is not available to this process: {os.strerror(err)} " \
           f"({errno.errorcode.get(err, err)}); see vm.unprivileged_userfaultfd"


__all__ = ["MiniVmmAdapter", "Layout"]
