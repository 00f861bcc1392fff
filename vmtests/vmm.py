# SPDX-License-Identifier: MIT
"""The one interface through which every scenario reaches a VMM.

A scenario never starts a process or parses a VMM's output itself: it asks an
*adapter* for a VM with a given Layout and then talks to that VM only through the
methods of class VM below. To judge another VMM (crosvm, ...) with the same
scenarios, write one adapter module (see README.md) and run pytest with
``--vmm-adapter=module:Class``.

Vocabulary:
  RAM page index  the swappable guest pages of all regions, in region order,
                  numbered from 0 (a range may span the gap between two regions).
  seed            a guest fill writes pattern(seed, page, word) into every 8-byte
                  word of every page of the range; pattern is never 0, so a page that
                  lost its data can never pass a verify.
  reply           what the VMM said to a swap command: "accepted", "ignored" (not
                  valid in the current state, nothing changed) or "failed".
"""

import abc
import dataclasses
import json
import time

PAGE_SIZE = 4096

# crosvm's state spellings (spec 1.6), in the order of their C ABI values.
STATES = ("Ready", "Failed", "Pending", "TrimInProgress", "SwapOutInProgress",
          "Active", "SwapInInProgress")
# crosvm's metric names, in declaration order.
METRICS = ("resident_pages", "copied_from_file_pages", "copied_from_staging_pages",
           "zeroed_pages", "redundant_pages", "staging_pages", "swap_pages")
SWAP_COMMANDS = ("enable", "trim", "out", "disable")
BALLOON_MODES = ("remove", "dontneed", "punch_hole")


class VmmError(Exception):
    """The VMM or the transport failed (not a guest verification result)."""


class Unsupported(Exception):
    """The adapter's VMM cannot do what the scenario asks; the scenario skips."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """What a scenario asks for. Sizes are in MiB of swappable guest RAM per region;
    consecutive regions are separated by a gap in guest-physical space."""
    regions_mib: tuple = (8,)
    vcpus: int = 1
    devices: int = 0  # device processes, each with a DMA worker thread
    balloon: str = "remove"  # how an inflate releases memory: BALLOON_MODES

    def describe(self):
        return (f"regions={'+'.join(str(r) for r in self.regions_mib)}MiB "
                f"vcpus={self.vcpus} devices={self.devices} balloon={self.balloon}")


@dataclasses.dataclass
class Reply:
    """The VMM's answer to a swap command."""
    result: str  # "accepted" | "ignored" | "failed"
    state: str = None  # the state the command met, when the VMM says
    new_state: str = None  # the state after the command, when the VMM says
    text: str = ""  # what the VMM printed, for messages

    @property
    def accepted(self):
        return self.result == "accepted"

    @property
    def ignored(self):
        return self.result == "ignored"


@dataclasses.dataclass
class GuestResult:
    """Result of one guest command. ok is False when the guest reported an error."""
    ok: bool
    error: str = ""  # "", "range", "mismatch", "balloon", "cmd", or the VMM's words
    pages_done: int = 0
    mismatched_pages: int = 0
    bad_page: int = None  # first mismatch: RAM page index,
    bad_word: int = None  # 8-byte word in that page,
    expected: int = None  # and the two values
    actual: int = None
    checksum: int = None
    last_seed: int = None  # writers: seed of the last complete pass
    text: str = ""

    def describe(self):
        if self.ok:
            return "ok"
        if self.error == "mismatch":
            exp = f"{self.expected:#x}" if self.expected is not None else "?"
            act = f"{self.actual:#x}" if self.actual is not None else "?"
            return (f"{self.mismatched_pages} page(s) differ, first at page "
                    f"{self.bad_page} word {self.bad_word}: expected {exp}, got {act}")
        return f"guest error {self.error or '?'}: {self.text.strip()}"


class Status(dict):
    """Parsed status JSON (a dict with 'state', 'metrics', 'state_transition'),
    plus the exact text the VMM printed in .raw."""

    def __init__(self, raw):
        self.raw = raw.strip()
        try:
            super().__init__(json.loads(self.raw))
        except ValueError as e:
            raise VmmError(f"status is not JSON: {self.raw!r}") from e

    @property
    def state(self):
        return self["state"]

    def m(self, name):
        return self["metrics"][name]

    @property
    def transition_pages(self):
        return self["state_transition"]["pages"]


class VM(abc.ABC):
    """A running guest. Guest commands block until the guest reported completion;
    they may be called from several Python threads at once (one per vCPU)."""

    layout: Layout
    region_pages: list  # RAM pages per region
    name = "vm"

    @property
    def total_pages(self):
        return sum(self.region_pages)

    def region_start(self, i):
        """RAM page index of the first page of region i."""
        return sum(self.region_pages[:i])

    # ---- swap control -------------------------------------------------------
    @abc.abstractmethod
    def swap(self, command, slow_file_cleanup=False):
        """Send one of SWAP_COMMANDS; returns a Reply. 'enable' returns once the
        move to staging finished; the others once the VMM replied."""

    @abc.abstractmethod
    def status(self):
        """The status, parsed (a Status)."""

    def wait_state(self, state, timeout=60.0):
        """Block until the reported state is `state` (or one of a tuple); return
        that Status. Raise VmmError at the deadline. Adapters may override this
        with the VMM's own wait; the default polls status."""
        want = (state,) if isinstance(state, str) else tuple(state)
        deadline = time.monotonic() + timeout
        delay = 0.002
        st = None
        while True:
            st = self.status()
            if st.state in want:
                return st
            if time.monotonic() > deadline:
                raise VmmError(f"state {st.state} after {timeout}s, waiting for "
                               f"{'/'.join(want)}; last status {st.raw}")
            time.sleep(delay)  # a poll interval inside a deadline, not a fixed wait
            delay = min(delay * 2, 0.05)

    # ---- guest commands (RAM page indexes) ---------------------------------
    @abc.abstractmethod
    def fill(self, seed, start, count, vcpu=0):
        """Guest writes pattern(seed) over the range. GuestResult."""

    @abc.abstractmethod
    def verify(self, seed, start, count, vcpu=0):
        """Guest compares the range with pattern(seed); seed 0 means "all zero"."""

    @abc.abstractmethod
    def touch(self, start, count, write=False, vcpu=0):
        """Guest reads (or rewrites unchanged) one word per page."""

    @abc.abstractmethod
    def inflate(self, start, count, vcpu=0):
        """Guest gives the pages to the balloon; the VMM releases them."""

    @abc.abstractmethod
    def deflate(self, start, count, vcpu=0):
        """Guest takes the pages back and checks that they read zero."""

    @abc.abstractmethod
    def writer_start(self, seed, start, count, vcpu):
        """A vCPU fills the range again and again (seed, seed+1, ...) until
        writer_stop; returns when the writer runs."""

    @abc.abstractmethod
    def writer_stop(self, vcpu):
        """Stop that writer after its current pass. GuestResult with last_seed."""

    # ---- device processes ---------------------------------------------------
    @abc.abstractmethod
    def dma_fill(self, device, seed, start, count):
        """Device `device`'s worker thread writes pattern(seed) over the range."""

    @abc.abstractmethod
    def dma_verify(self, device, seed, start, count):
        """Device `device`'s worker thread compares the range with pattern(seed)
        (seed != 0). The device faults through its own userfaultfd."""

    @abc.abstractmethod
    def dma_copy(self, device, src, dst, count):
        """Device worker copies pages [src, src+count) to [dst, dst+count)
        (the ranges do not overlap)."""

    @abc.abstractmethod
    def device_exit(self, device, crash=False):
        """Make the device process exit (or die of a signal); returns once it is
        gone."""

    # ---- lifecycle and observation -------------------------------------------
    @abc.abstractmethod
    def stop(self, timeout=30.0):
        """Stop the VM; returns its exit status. Idempotent."""

    @abc.abstractmethod
    def kill(self):
        """Teardown: make sure nothing of this VM is left running. Idempotent."""

    @abc.abstractmethod
    def kill_vmm(self):
        """SIGKILL the VMM's main process only (not its children) and reap it:
        the crash the monitor and devices must not outlive."""

    @abc.abstractmethod
    def pids(self):
        """Every process of this VM that must be gone after stop/kill."""

    @abc.abstractmethod
    def log(self):
        """The VMM's log so far (text), for failure reports."""

    def monitor_pid(self):
        """The swap monitor's pid, or None when the VMM does not say."""
        return None


class Adapter(abc.ABC):
    """Starts VMs of one VMM implementation."""

    name = "adapter"

    @abc.abstractmethod
    def probe(self):
        """None if VMs can run here, else the reason to skip (e.g. no /dev/kvm)."""

    @abc.abstractmethod
    def start(self, layout, swap_dir, work_dir):
        """Start a VM; swap_dir is a fresh empty directory for the swap file,
        work_dir a fresh directory for sockets and logs. Returns a VM once the
        guest accepts commands."""


def pid_alive(pid):
    """True if pid exists and is not a zombie (for leftover-process checks)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"
