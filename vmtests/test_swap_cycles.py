# SPDX-License-Identifier: MIT
"""Full swap cycles: guest memory survives enable, trim, out and disable, across
cycles, across region boundaries, with several vCPUs faulting at once, and a
re-enable moves only what was faulted in since (spec 8, invariants 1, 2, 4-8, 11, 12).
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from swaplib import (PAGE_SIZE, Memory, check, enable, trim, swap_out, disable,
                     new_seed, swap_files, METRICS)


def test_memory_survives_each_step_of_a_cycle(start_vm):
    """A guest fills half its memory with data and writes zeros over a quarter
    page range; the rest is never touched. After each of enable, trim, out and
    disable it reads back one more slice, and at the end everything."""
    vm = start_vm(regions_mib=(8,))  # 2048 pages
    mem = Memory(vm)
    mem.fill(0, 1024)
    check(vm.touch(1024, 256, write=True), "write zeros over [1024, 1280)")

    resident = vm.status().m("resident_pages")
    assert resident == 1280, f"the guest populated 1280 pages (no shmem THP assumed): {resident}"
    st = enable(vm)
    assert st.transition_pages == 1280, f"enable moved the populated pages: {st.raw}"
    assert st.m("staging_pages") == 1280, st.raw
    assert st.m("resident_pages") == 0, f"nothing resident right after enable: {st.raw}"
    mem.verify("after enable", 0, 128)
    st = vm.status()
    assert st.m("copied_from_staging_pages") == 128, st.raw

    st = trim(vm)
    assert st.transition_pages == 256, f"trim drops exactly the 256 zero pages: {st.raw}"
    assert st.m("staging_pages") == 1280 - 128 - 256, st.raw
    mem.verify("after trim", 128, 128)

    st = swap_out(vm)
    assert st.m("staging_pages") == 0, st.raw
    assert st.m("swap_pages") == 1024 - 256, st.raw
    assert st.transition_pages == 1024 - 256, st.raw
    files = swap_files(vm)
    if files is not None:
        assert len(files) == 1, f"one swap file, held by the monitor only: {files}"
        assert files[0][1] <= 768 * PAGE_SIZE, f"compacted: data only in the first 768 pages: {files}"
    mem.verify("after out", 256, 128)
    mem.verify("trimmed zero pages after out", 1024, 256)
    st = vm.status()
    assert st.m("copied_from_file_pages") == 128, st.raw
    assert st.m("swap_pages") == 1024 - 384, st.raw

    st = disable(vm)
    assert st.transition_pages == 1024 - 384, f"swap-in brought back the rest: {st.raw}"
    for k in METRICS[1:]:
        assert st.m(k) == 0, f"{k} in Ready: {st.raw}"
    files = swap_files(vm)
    if files is not None:
        assert all(size == 0 for size, _ in files), f"fast disable truncates the file: {files}"
    mem.verify("after disable")


def test_three_full_cycles_with_writes_between(start_vm):
    """Three times: the guest overwrites a moving window, then enable, trim, out,
    read part of it back while Active, disable, and check all of memory."""
    vm = start_vm(regions_mib=(8,))
    mem = Memory(vm)
    n = vm.total_pages
    mem.fill(0, n // 2)
    for cycle in range(3):
        mem.fill(cycle * n // 8, n // 4)
        enable(vm)
        trim(vm)
        swap_out(vm)
        mem.verify(f"cycle {cycle}: Active", cycle * n // 8, n // 8)
        mem.fill((cycle + 4) * n // 8, 16)  # writes while Active go to new pages
        disable(vm)
        mem.verify(f"cycle {cycle}: after disable")


def test_two_regions_pages_on_both_sides_of_the_boundary(start_vm):
    """Two regions with a gap: pages on both sides of the boundary go to the file in
    one run of slots; the background swap-in must split that run at the region end
    (crosvm b/324344124 lost pages there)."""
    vm = start_vm(regions_mib=(4, 4))
    mem = Memory(vm)
    b = vm.region_start(1)
    mem.fill(b - 16, 32)
    mem.fill(0, 16)
    mem.fill(vm.total_pages - 16, 16)
    st = enable(vm)
    assert st.m("staging_pages") == 64, st.raw
    st = swap_out(vm)
    assert st.m("swap_pages") == 64, st.raw
    mem.verify("Active, first region only", 0, 16)
    st = disable(vm)
    assert st.transition_pages == 48, st.raw
    mem.verify("after disable, across the boundary", b - 16, 32)
    mem.verify("after disable")

    # Once more, with the boundary pages faulted in while Active by one verify.
    seed = mem.fill(b - 8, 16)
    enable(vm)
    swap_out(vm)
    check(vm.verify(seed, b - 8, 16), "one verify across the region gap")
    disable(vm)
    mem.verify("second cycle")


@pytest.mark.parametrize("vcpus", [1, 2, 4])
def test_vcpus_fault_the_same_pages_at_once(start_vm, vcpus):
    """N vCPUs read all of a swapped-out memory at the same time, each from a
    different start: every page is copied from the file exactly once, and every
    vCPU sees the right bytes."""
    vm = start_vm(regions_mib=(16,), vcpus=vcpus)
    mem = Memory(vm)
    n = vm.total_pages
    seed = mem.fill(0, n)
    enable(vm)
    swap_out(vm)

    def read_all(i):
        s = i * n // vcpus
        parts = [(s, n - s)] + ([(0, s)] if s else [])
        return [(p, c, vm.verify(seed, p, c, vcpu=i)) for p, c in parts]

    with ThreadPoolExecutor(max_workers=vcpus) as ex:
        results = list(ex.map(read_all, range(vcpus)))
    for i, parts in enumerate(results):
        for p, c, r in parts:
            check(r, f"vCPU {i} reading [{p}, {p + c}) while others fault")
    st = vm.status()
    assert st.m("copied_from_file_pages") == n, f"one copy per page: {st.raw}"
    assert st.m("copied_from_staging_pages") == 0 and st.m("zeroed_pages") == 0, st.raw
    assert st.m("swap_pages") == 0, st.raw
    disable(vm)
    mem.verify_parallel("after disable", vcpus)


def test_reenable_while_pending_moves_only_pages_faulted_since(start_vm):
    """Enable, touch 100 staged pages and 20 never-written ones, enable again: only
    those 120 move, and staged pages are neither moved again nor duplicated."""
    vm = start_vm(regions_mib=(8,))
    mem = Memory(vm)
    mem.fill(0, 1024)
    st = enable(vm)
    assert st.m("staging_pages") == 1024, st.raw
    check(vm.touch(0, 100), "read 100 staged pages")
    check(vm.touch(1500, 20), "read 20 never-written pages")
    st = vm.status()
    assert st.m("copied_from_staging_pages") == 100 and st.m("zeroed_pages") == 20, st.raw
    st = enable(vm)
    assert st.transition_pages == 120, f"re-enable moves only the faulted pages: {st.raw}"
    assert st.m("staging_pages") + st.m("swap_pages") == 1024 + 20, st.raw
    for k in ("copied_from_staging_pages", "zeroed_pages", "copied_from_file_pages",
              "redundant_pages"):
        assert st.m(k) == 0, f"{k} resets on enable: {st.raw}"
    mem.verify("after re-enable")
    disable(vm)
    mem.verify("after disable")


def test_reenable_while_active_then_trim_finds_clean_pages(start_vm):
    """Swap out, read 100 pages back and rewrite 10 of them, enable again: 100 pages
    move; trim finds the 90 unchanged ones identical to their copy in the file."""
    vm = start_vm(regions_mib=(8,))
    mem = Memory(vm)
    mem.fill(0, 1024)
    enable(vm)
    st = swap_out(vm)
    assert st.m("swap_pages") == 1024, st.raw
    check(vm.touch(0, 100), "read 100 swapped pages")
    mem.fill(0, 10)
    st = vm.status()
    assert st.m("copied_from_file_pages") == 100 and st.m("swap_pages") == 924, st.raw
    st = enable(vm)
    assert st.transition_pages == 100, f"re-enable moves only the faulted pages: {st.raw}"
    assert st.m("staging_pages") == 100 and st.m("swap_pages") == 924, st.raw
    st = trim(vm)
    assert st.transition_pages == 90, f"90 clean pages: {st.raw}"
    assert st.m("staging_pages") == 10 and st.m("swap_pages") == 1014, st.raw
    st = swap_out(vm)
    assert st.transition_pages == 10, f"only the 10 rewritten pages are written: {st.raw}"
    assert st.m("staging_pages") == 0 and st.m("swap_pages") == 1024, st.raw
    mem.verify("Active after the second swap-out")
    disable(vm)
    mem.verify("after disable")
    seed = new_seed()
    check(vm.fill(seed, 0, 8), "guest still writes after the cycle")


def test_disable_with_slow_file_cleanup(start_vm):
    """disable --slow-file-cleanup brings everything back like a fast disable; the
    swap file may be released gradually (crosvm: 64 MiB per 5 s) but never grows,
    and the next enable starts from an empty file."""
    vm = start_vm(regions_mib=(8,))
    mem = Memory(vm)
    mem.fill(0, 1536)
    enable(vm)
    swap_out(vm)
    before = swap_files(vm)
    st = disable(vm, slow=True)
    assert st.transition_pages == 1536, st.raw
    mem.verify("after a slow-cleanup disable")
    after = swap_files(vm)
    if before is not None and after:
        assert max(s for s, _ in after) <= max(s for s, _ in before), (before, after)
    mem.fill(0, 64)
    resident = vm.status().m("resident_pages")  # the verify populated every page
    st = enable(vm)
    assert st.m("swap_pages") == 0 and st.m("staging_pages") == resident, st.raw
    disable(vm)
    mem.verify("after the next cycle")
