# SPDX-License-Identifier: MIT
"""The balloon: pages the guest gives up read zero afterwards, in every swap state,
their staged or swapped copies are dropped, and nothing ever brings the old bytes
back (spec 8, invariants 3 and 20; spec 10).

Each inflate is a virtio-balloon style discard by the VMM (MADV_REMOVE on its own
mapping, from a thread that is not the vCPU's), so the monitor sees
UFFD_EVENT_REMOVE. The last two stories document, for the wrong discard methods
MADV_DONTNEED and fallocate(PUNCH_HOLE), what any implementation must still do.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from swaplib import (Memory, check, classify, disable, during, enable, prepare_state,
                     settle, swap_out)

SETTLED_STATES = ["Ready", "Pending", "Active"]
BACKGROUND_STATES = ["TrimInProgress", "SwapOutInProgress", "SwapInInProgress"]


@pytest.mark.parametrize("state", SETTLED_STATES)
def test_inflate_in_settled_state(start_vm, state):
    """Inflate 64 data pages and 16 never-touched pages while in `state`: the counts
    of staged / swapped pages drop by exactly the data pages, the balloon pages read
    zero while enabled and after disable, every other page keeps its data."""
    vm = start_vm(regions_mib=(8,))
    mem = Memory(vm)
    n = vm.total_pages
    mem.fill(0, n - 256)  # the last 256 pages are never touched
    prepare_state(vm, mem, state)
    before = vm.status()
    assert before.state == state, before.raw
    mem.inflate(100, 32)  # deflated (read) while still enabled
    mem.inflate(1000, 32)  # left alone until after disable
    mem.inflate(n - 64, 16)  # never touched
    after = vm.status()
    counter = {"Ready": None, "Pending": "staging_pages", "Active": "swap_pages"}[state]
    if counter:
        assert after.m(counter) == before.m(counter) - 64, (
            f"{counter} drops by the 64 inflated data pages: before {before.raw}, "
            f"after {after.raw}")
        mem.deflate(100, 32)
        mem.verify(f"{state}: after inflate", 0, 1000)
        disable(vm)
    mem.deflate(1000, 32)
    mem.deflate(n - 64, 16)
    mem.verify(f"inflated in {state}, after disable")


@pytest.mark.parametrize("state", BACKGROUND_STATES)
def test_inflate_during_background_job(start_vm, state):
    """Inflate two ranges (one early, one late in the job's page order) while a
    trim, swap-out or swap-in runs: after the job the inflated pages are neither
    staged nor swapped, read zero, and all other pages keep their data. Memory is
    made large enough for the job to outlast the inflate; the story is retried with
    more memory if the job was too quick to catch."""
    caught = False
    for mib in (64, 256):
        vm = start_vm(regions_mib=(mib,))
        mem = Memory(vm)
        n = vm.total_pages
        mem.fill(0, n)
        command = prepare_state(vm, mem, state)
        early, late = (64, 64), (n - 4096, 64)

        def inflate():
            mem.inflate(*late)
            mem.inflate(*early)

        caught, _ = during(vm, command, state, inflate)
        if mem.want[late[0]] != 0:  # the job was over before we could inflate
            mem.inflate(*late)
            mem.inflate(*early)
        st = settle(vm)
        staged_or_swapped = st.m("staging_pages") + st.m("swap_pages")
        if st.state == "Ready":
            assert staged_or_swapped == 0, st.raw
        else:
            assert staged_or_swapped == n - 128, (
                f"after {state}: the 128 inflated pages are neither staged nor swapped: "
                f"{st.raw}")
            disable(vm)
        mem.deflate(*late)
        mem.deflate(*early)
        mem.verify(f"inflated during {state} ({mib} MiB), after disable")
        vm.stop()
        if caught:
            break
    if not caught:
        pytest.skip(f"{state} ended before an inflate could run inside it, even with "
                    f"256 MiB (the data checks above passed)")


def test_inflate_range_spanning_both_regions(start_vm):
    """One inflate over the last pages of region 0 and the first of region 1 (two
    guest-physical runs, split at the gap), while Active."""
    vm = start_vm(regions_mib=(4, 4))
    mem = Memory(vm)
    b = vm.region_start(1)
    mem.fill(0, vm.total_pages)
    enable(vm)
    before = swap_out(vm)
    mem.inflate(b - 8, 16)
    st = vm.status()
    assert st.m("swap_pages") == before.m("swap_pages") - 16, st.raw
    mem.verify("Active, after an inflate across the boundary", b - 64, 128)
    disable(vm)
    mem.deflate(b - 8, 16)
    mem.verify("after disable")


def test_inflate_single_page_between_staged_neighbours(start_vm):
    vm = start_vm(regions_mib=(8,))
    mem = Memory(vm)
    mem.fill(0, 512)
    before = enable(vm)
    mem.inflate(255, 1)
    st = vm.status()
    assert st.m("staging_pages") == before.m("staging_pages") - 1, st.raw
    mem.verify("neighbours of the inflated page", 250, 10)
    disable(vm)
    mem.deflate(255, 1)
    mem.verify("after disable")


def test_inflate_pages_never_touched(start_vm):
    """Pages the guest never wrote: an inflate changes no count and they still read
    zero (and fault as zero pages) afterwards."""
    vm = start_vm(regions_mib=(8,))
    mem = Memory(vm)
    mem.fill(0, 256)
    before = enable(vm)
    mem.inflate(1024, 512)
    st = vm.status()
    assert st.m("staging_pages") == before.m("staging_pages"), st.raw
    mem.deflate(1024, 512)
    st = vm.status()
    assert st.m("zeroed_pages") == 512, st.raw
    disable(vm)
    mem.verify("after disable")


@pytest.mark.parametrize("state", ["Pending", "Active"])
def test_inflate_racing_with_vcpu_touching_the_same_pages(start_vm, state):
    """vCPU 0 inflates a range while vCPU 1 reads the same pages. While they race,
    each page may read old data or zero; once the inflate is done every page reads
    zero: a fault served after the REMOVE must never bring back the old bytes
    (the order inversion Firecracker's handler documents)."""
    vm = start_vm(regions_mib=(8,), vcpus=2)
    mem = Memory(vm)
    n = vm.total_pages
    mem.fill(0, n)
    rng = (512, 256)
    for rnd in range(8):
        seed = mem.fill(*rng)
        if state == "Pending":
            enable(vm)
        else:
            enable(vm)
            swap_out(vm)
        with ThreadPoolExecutor(max_workers=2) as ex:
            reader = ex.submit(vm.verify, seed, *rng, vcpu=1)
            inflater = ex.submit(mem.inflate, *rng, 0)
            inflater.result()
            r = reader.result()
        # While racing a page reads old or zero; the first one that did not read old
        # data must have read zero (not garbage, not another page's bytes).
        assert r.ok or r.actual == 0, f"round {rnd}: racing read saw {r.describe()}"
        check(vm.verify(0, *rng, vcpu=1), f"round {rnd}: after the inflate, in {state}")
        mem.verify(f"round {rnd}: the rest of memory", 0, rng[0])
        disable(vm)
        check(vm.verify(0, *rng, vcpu=1), f"round {rnd}: after disable")
    mem.verify("the end")


def test_dontneed_balloon_what_an_implementation_must_do(start_vm):
    """Balloon mode MADV_DONTNEED (wrong for shmem guest RAM). The kernel still sends
    UFFD_EVENT_REMOVE but keeps the page cache. What any implementation must do:
      - a resident page keeps its data (the kernel's doing: nothing is freed);
      - a staged or swapped page reads either its old data or zero, never anything
        else, and never one after the other: the pages that read zero after
        disable are exactly the ones whose staged/swapped copy the implementation
        dropped (staging_pages/swap_pages fell by that many);
      - every other page keeps its data, and the monitor keeps working."""
    vm = start_vm(regions_mib=(8,), balloon="dontneed")
    mem = Memory(vm)
    seed = mem.fill(0, vm.total_pages)
    check(vm.inflate(0, 64), "inflate resident pages (Ready)")
    check(vm.verify(seed, 0, 64), "resident pages keep their data after DONTNEED")
    before = enable(vm)
    check(vm.inflate(256, 64), "inflate staged pages (Pending)")
    mid = vm.status()
    dropped_staged = before.m("staging_pages") - mid.m("staging_pages")
    swap_out(vm)
    before = vm.status()
    check(vm.inflate(512, 64), "inflate swapped pages (Active)")
    after = vm.status()
    dropped_swapped = before.m("swap_pages") - after.m("swap_pages")
    disable(vm)
    for (start, dropped, what) in ((256, dropped_staged, "staged"),
                                   (512, dropped_swapped, "swapped")):
        old, zero, other = classify(vm, seed, start, 64)
        assert other == 0, f"{what} pages inflated with DONTNEED read garbage"
        assert zero == dropped, (f"{what} pages: {zero} read zero but the implementation "
                                 f"dropped {dropped} copies")
    mem.verify("pages never inflated", 64, 192)
    mem.verify("pages never inflated", 320, 192)
    mem.verify("pages never inflated", 576, vm.total_pages - 576)


def test_punch_hole_balloon_what_an_implementation_must_do(start_vm):
    """Balloon mode fallocate(PUNCH_HOLE) on the memfd: it frees the page cache but
    sends no uffd event. What any implementation must do:
      - a resident page reads zero afterwards (the kernel freed it);
      - a staged or swapped page is unknown to the kernel's punch, the monitor gets
        no event: its count stays, and it reads its old data (stale, which a
        virtio-balloon allows), both while enabled and after disable."""
    vm = start_vm(regions_mib=(8,), balloon="punch_hole")
    mem = Memory(vm)
    seed = mem.fill(0, vm.total_pages)
    check(vm.inflate(0, 64), "punch resident pages (Ready)")
    check(vm.verify(0, 0, 64), "resident pages read zero after a punch")
    before = enable(vm)
    check(vm.inflate(256, 64), "punch staged pages (Pending)")
    st = vm.status()
    assert st.m("staging_pages") == before.m("staging_pages"), f"no event: {st.raw}"
    check(vm.verify(seed, 256, 32), "staged pages keep their (stale) data")
    before = swap_out(vm)
    check(vm.inflate(512, 64), "punch swapped pages (Active)")
    st = vm.status()
    assert st.m("swap_pages") == before.m("swap_pages"), f"no event: {st.raw}"
    check(vm.verify(seed, 512, 32), "swapped pages keep their (stale) data")
    # A page faulted back in is resident again: a punch now frees it for real.
    check(vm.touch(700, 8), "read 8 swapped pages back")
    check(vm.inflate(700, 8), "punch them")
    check(vm.verify(0, 700, 8), "resident again, so the punch zeroed them")
    disable(vm)
    check(vm.verify(seed, 288, 32), "staged, punched, after disable: stale data")
    check(vm.verify(seed, 544, 32), "swapped, punched, after disable: stale data")
    check(vm.verify(0, 0, 64), "still zero")
    check(vm.verify(0, 700, 8), "still zero")
    check(vm.verify(seed, 64, 192), "never punched")
    check(vm.verify(seed, 708, vm.total_pages - 708), "never punched")
