# SPDX-License-Identifier: MIT
"""Helpers the scenarios share: a model of what every guest page must contain, and
assertions that say, on failure, which page, which step and what was seen.

Everything here goes through the VM interface of vmm.py, so it works with any
adapter."""

import itertools

from vmm import PAGE_SIZE, STATES, METRICS, VmmError  # noqa: F401  (re-exported)

TRANSIENT = ("TrimInProgress", "SwapOutInProgress", "SwapInInProgress")
SETTLED = ("Ready", "Pending", "Active", "Failed")

_seeds = itertools.count(0x5eed0001)


def new_seed():
    """A fresh fill seed (never 0: 0 means 'zero page' in the model)."""
    return next(_seeds)


def mib_pages(mib):
    return mib * (1 << 20) // PAGE_SIZE


def check(result, what):
    """Assert a guest command succeeded; the message says what and why not."""
    assert result.ok, f"{what}: {result.describe()}"
    return result


def accepted(reply, what=None):
    assert reply.accepted, f"{what or 'swap command'}: expected accepted, got {reply}"
    return reply


def ignored(reply, state=None, what=None):
    assert reply.ignored, f"{what or 'swap command'}: expected ignored, got {reply}"
    if state is not None and reply.state is not None:
        assert reply.state == state, f"{what}: ignored in {reply.state}, expected {state}"
    return reply


class Memory:
    """The expected contents of every RAM page: the seed of its last fill, or 0
    for a page that must read zero (never written, or given to the balloon)."""

    def __init__(self, vm):
        self.vm = vm
        self.want = [0] * vm.total_pages

    # -- writes, through the guest or a device, recorded in the model ---------
    def fill(self, start, count, seed=None, vcpu=0):
        seed = seed or new_seed()
        check(self.vm.fill(seed, start, count, vcpu=vcpu),
              f"guest fill [{start}, {start + count}) seed {seed:#x}")
        self.set(start, count, seed)
        return seed

    def dma_fill(self, device, start, count, seed=None):
        seed = seed or new_seed()
        check(self.vm.dma_fill(device, seed, start, count),
              f"device {device} DMA fill [{start}, {start + count}) seed {seed:#x}")
        self.set(start, count, seed)
        return seed

    def dma_copy(self, device, src, dst, count):
        """Device copy; only for a source range that holds one seed (the pattern
        depends on the page index, so copied data only verifies as zero)."""
        assert all(w == 0 for w in self.want[src:src + count]), "copy zero pages only"
        check(self.vm.dma_copy(device, src, dst, count),
              f"device {device} DMA copy [{src}, +{count}) -> [{dst}, +{count})")
        self.set(dst, count, 0)

    def inflate(self, start, count, vcpu=0):
        check(self.vm.inflate(start, count, vcpu=vcpu),
              f"balloon inflate [{start}, {start + count})")
        self.set(start, count, 0)

    def deflate(self, start, count, vcpu=0):
        check(self.vm.deflate(start, count, vcpu=vcpu),
              f"balloon deflate [{start}, {start + count}) (pages must read zero)")

    def set(self, start, count, seed):
        self.want[start:start + count] = [seed] * count

    # -- checks ------------------------------------------------------------------
    def runs(self, start=0, count=None):
        """(seed, start, count) for each run of equal expected contents."""
        end = self.vm.total_pages if count is None else start + count
        p = start
        while p < end:
            q = p + 1
            while q < end and self.want[q] == self.want[p]:
                q += 1
            yield self.want[p], p, q - p
            p = q

    def verify(self, when, start=0, count=None, vcpu=0):
        """Every page of the range holds what the model says; else fail with the
        first bad page and the story step `when`."""
        for seed, s, n in self.runs(start, count):
            r = self.vm.verify(seed, s, n, vcpu=vcpu)
            what = "zero" if seed == 0 else f"seed {seed:#x}"
            assert r.ok, (f"{when}: pages [{s}, {s + n}) should hold {what}: "
                          f"{r.describe()}")

    def verify_parallel(self, when, vcpus):
        """Verify everything, the runs spread over several vCPUs at once (one
        thread per vCPU; a vCPU runs one command at a time)."""
        from concurrent.futures import ThreadPoolExecutor
        runs = list(self.runs())
        per_vcpu = [runs[i::vcpus] for i in range(vcpus)]

        def work(i):
            return [(seed, s, n, self.vm.verify(seed, s, n, vcpu=i))
                    for seed, s, n in per_vcpu[i]]

        with ThreadPoolExecutor(max_workers=vcpus) as ex:
            results = [r for part in ex.map(work, range(vcpus)) for r in part]
        for seed, s, n, r in sorted(results, key=lambda x: x[1]):
            what = "zero" if seed == 0 else f"seed {seed:#x}"
            assert r.ok, f"{when}: pages [{s}, {s + n}) should hold {what}: {r.describe()}"

    def data_pages(self):
        return sum(1 for w in self.want if w)


def classify(vm, seed, start, count):
    """For pages that may legitimately hold either their old bytes or zero:
    returns (old, zero, other) page counts. 'other' must always be 0."""
    mism_old = vm.verify(seed, start, count).mismatched_pages
    mism_zero = vm.verify(0, start, count).mismatched_pages
    old = count - mism_old
    zero = count - mism_zero
    return old, zero, count - old - zero


def settle(vm, timeout=60.0):
    """Wait until no background job runs."""
    return vm.wait_state(SETTLED, timeout)


def enable(vm):
    """Enable and check the reply: the move is finished when it returns."""
    r = vm.swap("enable")
    assert r.accepted, f"enable: {r}"
    st = vm.status()
    assert st.state == "Pending", f"state after enable is {st.state}: {st.raw}"
    return st


def trim(vm):
    accepted(vm.swap("trim"), "trim")
    return vm.wait_state("Pending")


def swap_out(vm):
    accepted(vm.swap("out"), "out")
    return vm.wait_state("Active")


def disable(vm, slow=False):
    accepted(vm.swap("disable", slow_file_cleanup=slow), "disable")
    return vm.wait_state("Ready")


def metrics(st):
    return {k: st["metrics"][k] for k in METRICS}


def during(vm, command, state, action):
    """Send `command` and, if the VM is then in the background state `state`, run
    action(). Returns (caught, result): caught is True when the state still held
    after the action returned, i.e. the action ran entirely inside that state.
    The action runs either way when the state was reached (so its effects are
    always checked); result is None when the state was already over."""
    accepted(vm.swap(command), command)
    if vm.status().state != state:
        return False, None
    result = action()
    return vm.status().state == state, result


def prepare_state(vm, mem, state):
    """Bring a VM whose memory is filled into `state`'s precondition and return
    the command that starts `state` (or None for a settled state, then reached).
      Pending            enable
      Active             enable, out
      TrimInProgress     enable, out, read everything back, enable: every staged
                         page has an identical copy in the file, so the trim must
                         compare every page (the slowest trim there is); -> 'trim'
      SwapOutInProgress  enable -> 'out'
      SwapInInProgress   enable, out -> 'disable'
    """
    if state == "Ready":
        return None
    enable(vm)
    if state == "Pending":
        return None
    if state == "SwapOutInProgress":
        return "out"
    swap_out(vm)
    if state == "Active":
        return None
    if state == "SwapInInProgress":
        return "disable"
    assert state == "TrimInProgress", state
    check(vm.touch(0, vm.total_pages), "read everything back from the file")
    enable(vm)
    return "trim"


def swap_files(vm):
    """[(size, data_end)] of the files the monitor holds open in the swap directory
    (the unnamed O_TMPFILE swap file), found through /proc/<monitor>/fd; data_end is
    where the data stops (SEEK_HOLE from 0). None when the VMM names no monitor."""
    import os
    pid = vm.monitor_pid()
    if not pid:
        return None
    d = os.path.realpath(vm.swap_dir)
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        path = f"/proc/{pid}/fd/{fd}"
        try:
            if not os.readlink(path).startswith(d + "/"):
                continue
            f = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            size = os.fstat(f).st_size
            end = os.lseek(f, 0, os.SEEK_HOLE) if size else 0
        finally:
            os.close(f)
        found.append((size, end))
    return found
