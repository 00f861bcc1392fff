# SPDX-License-Identifier: MIT
"""Fixtures for the KVM guest scenarios.

  start_vm(layout=None, **layout_fields) -> VM
      start a VM through the adapter; each VM gets a fresh swap directory and
      work directory under the test's tmp_path. Every VM is killed at teardown,
      and teardown fails the test if any of its processes or any file in its swap
      directory is left behind.
  adapter      the Adapter in use (--vmm-adapter), session scoped; its probe()
               decides whether the kvm scenarios skip.
  soak_opts    the soak options (--soak-long, --soak-steps, --soak-seed).

On a failure the report gets, per VM, its log and its last status (the way
Firecracker's test_uffd dumps the page-fault handler's log).
"""

import importlib
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vmm import Layout, pid_alive  # noqa: E402

DEFAULT_ADAPTER = "minivmm_adapter:MiniVmmAdapter"


def pytest_addoption(parser):
    g = parser.getgroup("vmtests")
    g.addoption("--vmm-adapter", default=os.environ.get("VMTESTS_ADAPTER", DEFAULT_ADAPTER),
                help="MODULE:CLASS of the VMM adapter (default %(default)s; "
                     "env VMTESTS_ADAPTER)")
    g.addoption("--soak-long", action="store_true",
                help="run the long randomized soak (marked slow)")
    g.addoption("--soak-steps", type=int, default=None,
                help="steps of the long soak (default 200) or, with -k soak_short, "
                     "of the short one")
    g.addoption("--soak-seed", default=None,
                help="replay a soak with this seed (printed when a soak fails)")


def pytest_configure(config):
    config.addinivalue_line("markers", "kvm: starts KVM guests (needs /dev/kvm and "
                            "userfaultfd; skipped otherwise)")
    config.addinivalue_line("markers", "slow: long-running; excluded by the default "
                            "test command")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "start_vm" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kvm)


def _load_adapter(spec):
    mod, _, cls = spec.partition(":")
    if not cls:
        raise pytest.UsageError(f"--vmm-adapter wants MODULE:CLASS, got {spec!r}")
    return getattr(importlib.import_module(mod), cls)()


@pytest.fixture(scope="session")
def adapter(request):
    a = _load_adapter(request.config.getoption("--vmm-adapter"))
    reason = a.probe()
    if reason:
        pytest.skip(f"{a.name}: {reason}")
    return a


@pytest.fixture(scope="session")
def soak_opts(request):
    c = request.config
    return {"long": c.getoption("--soak-long"), "steps": c.getoption("--soak-steps"),
            "seed": c.getoption("--soak-seed")}



@pytest.fixture
def start_vm(request, adapter, tmp_path):
    vms = []
    request.node._vmtests_vms = vms

    def start(layout=None, swap_dir=None, **fields):
        layout = layout or Layout(**fields)
        n = len(vms)
        work_dir = tmp_path / f"vm{n}"
        work_dir.mkdir()
        if swap_dir is None:
            swap_dir = tmp_path / f"swap{n}"
            swap_dir.mkdir()
        vm = adapter.start(layout, str(swap_dir), str(work_dir))
        vm.name = f"vm{n}"
        vm.swap_dir = str(swap_dir)
        vms.append(vm)
        return vm

    yield start

    problems = []
    for vm in vms:
        pids = []
        try:
            pids = list(vm.pids())
        except Exception as e:  # noqa: BLE001  (report, keep tearing down)
            problems.append(f"{vm.name}: pids(): {e}")
        try:
            vm.kill()
        except Exception as e:  # noqa: BLE001
            problems.append(f"{vm.name}: kill(): {e}")
        left = [p for p in pids if pid_alive(p)]
        if left:
            for p in left:
                try:
                    os.kill(p, 9)
                except OSError:
                    pass
            problems.append(f"{vm.name}: processes left running after teardown: {left}")
        files = os.listdir(vm.swap_dir) if os.path.isdir(vm.swap_dir) else []
        if files:
            problems.append(f"{vm.name}: files left in the swap directory: {files}")
    assert not problems, "; ".join(problems)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    for vm in getattr(item, "_vmtests_vms", ()):
        try:
            st = vm.status().raw
        except Exception as e:  # noqa: BLE001
            st = f"(no status: {e})"
        try:
            log = vm.log()
        except Exception as e:  # noqa: BLE001
            log = f"(no log: {e})"
        layout = getattr(vm, "layout", None)
        head = f"{layout.describe()}\n" if layout else ""
        rep.sections.append((f"{vm.name} last status", head + st))
        rep.sections.append((f"{vm.name} VMM log", log[-20000:] or "(empty)"))
        if hasattr(rep.longrepr, "addsection"):
            rep.longrepr.addsection(f"{vm.name} last status", head + st)
            rep.longrepr.addsection(f"{vm.name} VMM log (tail)", log[-6000:] or "(empty)")
