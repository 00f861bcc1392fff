# SPDX-License-Identifier: MIT
"""A seeded randomized soak: a random sequence of swap commands (without waiting for
their background jobs, so trims, swap-outs and swap-ins get aborted and overlap
with everything else), guest writes on several vCPUs, device DMA, touches and
balloon inflate / deflate. After every step all of guest memory is verified against
the model, and every reply is checked against the state it met (spec 2.3).

The short soak runs in the default test command. The long one:
    /usr/bin/python3 -m pytest vmtests -k soak_long --soak-long [--soak-steps 200]
A failure prints the seed; replay it with --soak-seed SEED (same --soak-steps).
"""

import os
import random
import threading
import time

import pytest

from swaplib import Memory, METRICS, STATES, check, settle

SHORT_STEPS = 25
LONG_STEPS = 200
CHUNK = 256  # pages; ranges are mostly whole chunks, so verification stays cheap
REGIONS_MIB = (32, 32)  # large enough for background jobs to overlap the next step


class Soak:
    def __init__(self, vm, seed, steps):
        self.vm = vm
        self.seed = seed
        self.steps = steps
        self.rng = random.Random(seed)
        self.mem = Memory(vm)
        self.inflated = []  # ranges inflated and not written since
        self.history = []
        self.next_seed = (seed << 20) + 1
        self.vcpus = vm.layout.vcpus
        self.devices = vm.layout.devices
        self.replies = {"accepted": 0, "ignored": 0}
        self.states_met = set()

    # ---- random pieces ---------------------------------------------------------
    def fresh_seed(self):
        self.next_seed += 1
        return self.next_seed

    def rand_range(self):
        n = self.vm.total_pages
        r = self.rng.random()
        if r < 0.15:
            return self.rng.randrange(n), 1
        if r < 0.3:
            start = self.rng.randrange(n - 8)
            return start, self.rng.randint(2, 8)
        chunks = n // CHUNK
        c0 = self.rng.randrange(chunks)
        c1 = min(chunks, c0 + self.rng.randint(1, max(1, chunks // 4)))
        return c0 * CHUNK, (c1 - c0) * CHUNK

    def note(self, text):
        self.history.append(text)

    # ---- operations --------------------------------------------------------------
    def op_swap(self):
        self.swap_checked(self.rng.choice(["enable", "enable", "trim", "out", "out",
                                           "disable"]))

    def swap_checked(self, cmd):
        r = self.vm.swap(cmd)
        self.note(f"swap {cmd} -> {r.result} (in {r.state}, now {r.new_state})")
        assert r.result in ("accepted", "ignored"), f"swap {cmd} failed: {r}"
        self.replies[r.result] += 1
        if r.state:
            self.states_met.add(r.state)
            if cmd in ("trim", "out"):
                assert r.accepted == (r.state == "Pending"), \
                    f"{cmd} met {r.state} and was {r.result}"
            elif cmd == "enable":
                assert r.accepted, f"enable in {r.state} was {r.result}"
            elif cmd == "disable" and r.state == "Ready":
                assert r.ignored, f"disable in Ready was {r.result}"
        return r

    def op_swap_burst(self):
        """enable, then a background job, then guest / device / balloon activity and
        another command while that job most likely still runs (aborts, ignored
        commands, faults and removes racing the job)."""
        self.swap_checked("enable")
        self.swap_checked(self.rng.choice(["out", "out", "trim", "disable"]))
        for _ in range(self.rng.randint(0, 2)):
            self.rng.choice([self.op_fill, self.op_dma, self.op_inflate, self.op_touch])()
        self.swap_checked(self.rng.choice(["enable", "disable", "trim", "out"]))

    def op_settle(self):
        st = settle(self.vm)
        self.note(f"settled in {st.state}")

    def op_fill(self):
        start, count = self.rand_range()
        vcpu = self.rng.randrange(self.vcpus)
        seed = self.mem.fill(start, count, seed=self.fresh_seed(), vcpu=vcpu)
        self.drop_inflated(start, count)
        self.note(f"fill [{start}, +{count}) seed {seed:#x} on vCPU {vcpu}")

    def op_dma(self):
        if not self.devices:
            return self.op_fill()
        start, count = self.rand_range()
        dev = self.rng.randrange(self.devices)
        seed = self.mem.dma_fill(dev, start, count, seed=self.fresh_seed())
        self.drop_inflated(start, count)
        self.note(f"dma fill [{start}, +{count}) seed {seed:#x} on device {dev}")

    def op_touch(self):
        start, count = self.rand_range()
        write = self.rng.random() < 0.5
        check(self.vm.touch(start, count, write=write, vcpu=self.rng.randrange(self.vcpus)),
              f"{'write' if write else 'read'}-touch [{start}, +{count})")
        self.note(f"{'write' if write else 'read'}-touch [{start}, +{count})")

    def op_inflate(self):
        start, count = self.rand_range()
        self.mem.inflate(start, count, vcpu=self.rng.randrange(self.vcpus))
        self.inflated.append((start, count))
        self.note(f"inflate [{start}, +{count})")

    def op_deflate(self):
        if not self.inflated:
            return self.op_inflate()
        start, count = self.inflated.pop(self.rng.randrange(len(self.inflated)))
        self.mem.deflate(start, count, vcpu=self.rng.randrange(self.vcpus))
        self.note(f"deflate [{start}, +{count})")

    def op_fill_during_swap(self):
        """A guest write and a swap command at the same time."""
        start, count = self.rand_range()
        seed = self.fresh_seed()
        cmd = self.rng.choice(["enable", "out", "disable", "trim"])
        err = []

        def writer():
            try:
                self.mem.fill(start, count, seed=seed, vcpu=self.vcpus - 1)
            except BaseException as e:  # noqa: BLE001  (re-raised below)
                err.append(e)

        t = threading.Thread(target=writer)
        t.start()
        r = self.vm.swap(cmd)
        t.join()
        if err:
            raise err[0]
        self.drop_inflated(start, count)
        assert r.result in ("accepted", "ignored"), f"swap {cmd} failed: {r}"
        self.note(f"fill [{start}, +{count}) seed {seed:#x} racing swap {cmd} -> {r.result}")

    def drop_inflated(self, start, count):
        self.inflated = [(s, c) for s, c in self.inflated
                         if s + c <= start or start + count <= s]

    OPS = [("op_swap", 24), ("op_swap_burst", 14), ("op_settle", 6), ("op_fill", 18),
           ("op_dma", 10), ("op_touch", 10), ("op_inflate", 10), ("op_deflate", 8),
           ("op_fill_during_swap", 8)]

    # ---- the run -------------------------------------------------------------------
    def check_all(self, step):
        st = self.vm.status()
        assert st.state in STATES, st.raw
        assert list(st["metrics"]) == list(METRICS), st.raw
        self.states_met.add(st.state)
        self.mem.verify_parallel(f"step {step}", self.vcpus)

    def run(self):
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        self.mem.fill(0, self.vm.total_pages // 2, seed=self.fresh_seed())
        for step in range(self.steps):
            op = self.rng.choices(names, weights)[0]
            getattr(self, op)()
            self.check_all(step)
        st = settle(self.vm)
        if st.state != "Ready":
            r = self.vm.swap("disable")
            assert r.result in ("accepted", "ignored"), r
            self.vm.wait_state("Ready")
        self.check_all("final (Ready)")


def _run_soak(start_vm, request, soak_opts, steps):
    seed = int(soak_opts["seed"], 0) if soak_opts["seed"] else \
        int.from_bytes(os.urandom(4), "little")
    request.node.user_properties.append(("soak_seed", seed))
    print(f"soak seed {seed} steps {steps} (replay: --soak-seed {seed} --soak-steps {steps})")
    vm = start_vm(regions_mib=REGIONS_MIB, vcpus=2, devices=1)
    soak = Soak(vm, seed, steps)
    t0 = time.monotonic()
    try:
        soak.run()
    except BaseException as e:
        tail = "\n  ".join(soak.history[-15:])
        raise AssertionError(
            f"soak failed at step {len(soak.history)} with seed {seed}; replay with "
            f"--soak-seed {seed} --soak-steps {steps}\n  last steps:\n  {tail}\n{e}") from e
    print(f"soak seed {seed}: {steps} steps in {time.monotonic() - t0:.1f} s; replies "
          f"{soak.replies}; states met {sorted(soak.states_met)}")
    return soak


def test_soak_short(start_vm, request, soak_opts):
    steps = soak_opts["steps"] if soak_opts["steps"] and not soak_opts["long"] else SHORT_STEPS
    _run_soak(start_vm, request, soak_opts, steps)


@pytest.mark.slow
def test_soak_long(start_vm, request, soak_opts):
    if not soak_opts["long"]:
        pytest.skip("the long soak runs only with --soak-long")
    _run_soak(start_vm, request, soak_opts, soak_opts["steps"] or LONG_STEPS)
