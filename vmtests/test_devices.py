# SPDX-License-Identifier: MIT
"""Device processes and the VMM's lifecycle: DMA running across an enable loses no
write (the freeze stops every thread), devices that exit or crash while swap is
enabled, and a VMM stopped while Active leaves no process and no file behind
(spec 8, invariants 13-15, 19, 22)."""

import os
import threading
import time

import pytest

from swaplib import Memory, check, disable, enable, new_seed, swap_out
from vmm import pid_alive


def test_dma_running_during_enable_loses_no_write(start_vm):
    """A device's worker thread fills all of a 64 MiB memory while the VMM enables
    swap. The freeze must stop that thread before a page is copied to staging:
    a write that lands between the copy and the discard would be lost, and the
    page would read its previous contents. A round counts as overlapping when
    the DMA wrote some pages before the move and faulted the others in after it."""
    vm = start_vm(regions_mib=(64,), devices=1)
    mem = Memory(vm)
    n = vm.total_pages
    mem.fill(0, n)
    overlapped = 0
    for rnd in range(10):
        seed = new_seed()
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", vm.dma_fill(0, seed, 0, n)))
        t.start()
        enable(vm)
        t.join()
        check(out["r"], f"round {rnd}: DMA fill across enable")
        mem.set(0, n, seed)
        faulted = vm.status().m("copied_from_staging_pages")
        mem.verify(f"round {rnd}: after a DMA ran across enable")
        check(vm.dma_verify(0, seed, 0, n), f"round {rnd}: the device reads it back")
        disable(vm)
        if 0 < faulted < n:
            overlapped += 1
            if overlapped >= 3:
                break
    if not overlapped:
        pytest.skip("no round had the DMA running across the move to staging")


def test_device_reads_swapped_memory_through_its_own_uffd(start_vm):
    """Pages swapped out are faulted in by the device process's own accesses."""
    vm = start_vm(regions_mib=(8,), devices=2)
    mem = Memory(vm)
    seed = mem.fill(0, 1024)
    enable(vm)
    swap_out(vm)
    check(vm.dma_verify(1, seed, 0, 512), "device 1 reads swapped pages")
    mem.dma_copy(0, 1024, 1536, 256)  # device 0 reads never-written pages: zero
    st = vm.status()
    assert st.m("copied_from_file_pages") == 512, st.raw
    assert st.m("zeroed_pages") == 512, f"256 read + 256 written by the copy: {st.raw}"
    mem.dma_fill(0, 256, 128)  # a device writes swapped pages: fault, then overwrite
    mem.verify("Active, after device reads and writes")
    disable(vm)
    mem.verify("after disable")


@pytest.mark.parametrize("crash", [False, True], ids=["exit", "crash"])
def test_device_process_dies_while_swap_is_enabled(start_vm, crash):
    """A device process exits (or is killed by a signal) while Active. Status,
    enable, trim, out and disable keep working for everyone else, the other device
    keeps faulting, and no guest data is lost."""
    vm = start_vm(regions_mib=(8,), devices=2)
    mem = Memory(vm)
    mem.fill(0, 1536)
    enable(vm)
    swap_out(vm)
    mem.dma_fill(0, 0, 64)  # device 0 touched guest memory through its uffd
    vm.device_exit(0, crash=crash)
    st = vm.status()
    assert st.state == "Active", st.raw
    mem.verify("Active, after device 0 died", 0, 512)
    check(vm.dma_verify(1, mem.want[600], 600, 100), "device 1 still faults")
    enable(vm)
    swap_out(vm)
    disable(vm)
    mem.verify("after disable")
    enable(vm)  # registration of the next enable skips the dead process
    mem.dma_fill(1, 1000, 100)
    disable(vm)
    mem.verify("after another cycle")


@pytest.mark.parametrize("state", ["Pending", "Active"])
def test_vmm_stopped_while_enabled_leaves_nothing(start_vm, state):
    """Stop the VMM while swap is enabled: it exits cleanly, the monitor and the
    device processes are gone, and the swap file (an unnamed O_TMPFILE in the swap
    directory) is gone with them."""
    vm = start_vm(regions_mib=(8,), devices=1)
    mem = Memory(vm)
    mem.fill(0, 1024)
    enable(vm)
    if state == "Active":
        swap_out(vm)
    pids = list(vm.pids())
    mon = vm.monitor_pid()
    if mon:
        held = _files_in(mon, vm.swap_dir)
        assert held, f"the monitor (pid {mon}) holds no file in the swap directory"
    rc = vm.stop()
    assert rc == 0, f"VMM exit status {rc} when stopped while {state}"
    alive = [p for p in pids if pid_alive(p)]
    assert not alive, f"processes left after stop while {state}: {alive}"
    assert os.listdir(vm.swap_dir) == [], "files left in the swap directory"


def test_vmm_killed_while_active_takes_the_monitor_with_it(start_vm):
    """SIGKILL the VMM while Active: the monitor and devices must not survive it."""
    vm = start_vm(regions_mib=(8,), devices=1)
    mem = Memory(vm)
    mem.fill(0, 1024)
    enable(vm)
    swap_out(vm)
    pids = list(vm.pids())
    vm.kill_vmm()
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)  # polling against a deadline
    alive = [p for p in pids if pid_alive(p)]
    assert not alive, f"processes left 10 s after the VMM was killed: {alive}"



def _files_in(pid, directory):
    """Targets of pid's fds that live in directory (O_TMPFILE ones included)."""
    d = os.path.realpath(directory)
    found = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if t.startswith(d + "/"):
            found.append(t)
    return found
