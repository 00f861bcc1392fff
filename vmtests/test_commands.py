# SPDX-License-Identifier: MIT
"""Commands in every state: a command that is not valid in the current state is
reported as ignored and changes nothing; the status JSON has crosvm's exact shape in
every state; a swap-out into a full filesystem ends in Failed, from which disable
and enable recover with the contents intact (spec 1.6, 2.3, 8: invariants 9, 16, 21).
"""

import os
import re
import subprocess
import time

import pytest

from swaplib import (Memory, check, disable, during, enable, ignored, prepare_state,
                     settle)
from vmm import METRICS, STATES

_N = r"(?:0|[1-9][0-9]*)"
STATUS_RE = re.compile(
    r'\{"state":"(' + "|".join(STATES) + r')","metrics":\{'
    + ",".join(f'"{m}":{_N}' for m in METRICS)
    + r'\},"state_transition":\{"pages":' + _N + r',"time_ms":' + _N + r'\}\}')


def assert_schema(st, where):
    assert STATUS_RE.fullmatch(st.raw), f"{where}: status is not crosvm's shape: {st.raw!r}"


def watch(vm, command):
    """Send command and poll status as fast as possible until a settled state;
    returns every status seen (the command's own background state included when
    it lasted long enough to be seen)."""
    r = vm.swap(command)
    assert r.accepted, f"{command}: {r}"
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st = vm.status()
        seen.append(st)
        if st.state in ("Ready", "Pending", "Active", "Failed"):
            return seen
    raise AssertionError(f"{command}: no settled state within 60 s: {seen[-1].raw}")


def test_status_schema_in_every_state(start_vm):
    vm = start_vm(regions_mib=(64,))
    mem = Memory(vm)
    st = vm.status()
    assert_schema(st, "at start")
    assert st.state == "Ready" and st["state_transition"] == {"pages": 0, "time_ms": 0}, st.raw
    assert all(st.m(k) == 0 for k in METRICS[1:]), st.raw
    mem.fill(0, vm.total_pages)
    seen = {"Ready": st}
    st = enable(vm)
    seen["Pending"] = st
    for s in watch(vm, "out"):
        seen.setdefault(s.state, s)
    check(vm.touch(0, vm.total_pages), "read everything back")
    enable(vm)
    for s in watch(vm, "trim"):
        seen.setdefault(s.state, s)
    for s in watch(vm, "out"):
        seen.setdefault(s.state, s)
    for s in watch(vm, "disable"):
        seen.setdefault(s.state, s)
    for state, s in seen.items():
        assert_schema(s, state)
    missing = {"Ready", "Pending", "Active"} - set(seen)
    assert not missing, f"never saw {missing}"
    transient = {"TrimInProgress", "SwapOutInProgress", "SwapInInProgress"} - set(seen)
    mem.verify("after the tour of states")
    if transient:
        pytest.skip(f"schema held in {sorted(seen)}; too quick to see {sorted(transient)}")


@pytest.mark.parametrize("state", ["Ready", "Active", "TrimInProgress",
                                   "SwapOutInProgress", "SwapInInProgress"])
def test_commands_invalid_in_state_are_ignored(start_vm, state):
    """trim and out are valid only in Pending, disable not in Ready: elsewhere the
    reply is 'ignored' (naming the state), the state does not change and no guest
    data is touched. Background states are caught by making the job long (more
    memory on a retry)."""
    background = "Progress" in state
    for mib in ((64, 256) if background else (8,)):
        vm = start_vm(regions_mib=(mib,))
        mem = Memory(vm)
        mem.fill(0, vm.total_pages - 64)
        invalid = ["trim", "out"] + (["disable"] if state == "Ready" else [])
        command = prepare_state(vm, mem, state)

        def try_all():
            for c in invalid:
                r = vm.swap(c)
                if vm.status().state != state:
                    return False  # the background job ended meanwhile: inconclusive
                ignored(r, state, f"{c} in {state}")
            return True

        if command is None:
            before = vm.status()
            assert before.state == state, before.raw
            caught = try_all()
            assert caught
            after = vm.status()
            assert after.raw == before.raw, (f"ignored commands changed the status: "
                                             f"{before.raw} -> {after.raw}")
        else:
            caught, ok = during(vm, command, state, try_all)
            caught = caught and ok
        st = settle(vm)
        assert_schema(st, f"after ignored commands in {state}")
        if st.state != "Ready":
            disable(vm)
        mem.verify(f"after commands ignored in {state} ({mib} MiB)")
        vm.stop()
        if caught:
            return
    pytest.skip(f"{state} ended before the commands could be sent inside it, even "
                f"with 256 MiB (the data checks passed)")


def test_swap_out_into_full_filesystem_fails_then_recovers(start_vm, tmp_path):
    """The swap directory is a 1 MiB tmpfs and the guest has 8 MiB of data: the
    swap-out fails, the state is Failed (transition zeroed, status still crosvm's
    shape), trim and out are ignored, every page still reads right; disable
    brings everything back and a later enable + trim + disable works."""
    small = tmp_path / "small-swap"
    small.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs",
                        str(small)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a small tmpfs for the swap directory: {e}")
    vm = None
    try:
        vm = start_vm(regions_mib=(8,), swap_dir=str(small))
        mem = Memory(vm)
        mem.fill(0, vm.total_pages)
        enable(vm)
        r = vm.swap("out")
        assert r.accepted, f"out: {r}"
        st = vm.wait_state(("Failed", "Active"))
        assert st.state == "Failed", f"8 MiB into a 1 MiB tmpfs: {st.raw}"
        assert_schema(st, "Failed")
        assert st["state_transition"]["pages"] == 0, st.raw
        for c in ("trim", "out"):
            ignored(vm.swap(c), "Failed", f"{c} in Failed")
        mem.verify("Failed", 0, 256)
        disable(vm)
        mem.verify("Ready after Failed")
        enable(vm)
        r = vm.swap("trim")
        assert r.accepted, f"trim after recovery: {r}"
        settle(vm)
        disable(vm)
        mem.verify("after enable + trim + disable")
        vm.stop()
    finally:
        if vm is not None:
            vm.kill()  # the monitor holds the swap file open on the tmpfs
        _umount(small)


def _umount(path):
    deadline = time.monotonic() + 10
    while os.path.ismount(path):
        r = subprocess.run(["umount", str(path)], capture_output=True)
        if r.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # something still holds it: retry against a deadline
