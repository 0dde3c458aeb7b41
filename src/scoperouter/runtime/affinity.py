"""Which CPUs ``serve``'s threads run on (the ``cpus`` setting).

Invariant: :func:`choose` is pure (the setting, the CPUs the process may use and the one
it runs on in; the CPUs to keep it on, or None for "leave it as it is", out) and never
widens the set the process was given; :func:`apply` only narrows the affinity of the
process's threads that exist when it is called (threads started later inherit it from
their creator) and reports what it did as a value -- it raises only for a list naming a
CPU the process may not use.

Why one CPU by default: the daemon's Python work is serialised by the GIL, so its threads
(event loop, state, log, outbox, the Pub/Sub client's) hand work to each other rather
than run side by side. Spread over CPUs, each hand-off wakes a thread on another CPU (an
inter-processor interrupt; in a VM an exit to the hypervisor) and moves the objects it
touches between the CPUs' caches. Kept on one CPU the same work costs less:
``bench/daemon.py`` on 2 cores, CPU per event at HTTP saturation -12 to -15% and per
Pub/Sub message about -7%, with the same or higher throughput (the bare baselines gain
nothing from it and are left to the scheduler). ``all`` leaves placement to the
scheduler, e.g. on a host where that CPU is busy with other work.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_LIST = re.compile(r"[0-9]+(?:-[0-9]+)?(?:,[0-9]+(?:-[0-9]+)?)*")


def parse_cpus(value: object) -> str:
    """The ``cpus`` setting: ``auto``, ``all`` or a CPU list (``0``, ``2,3``, ``0-3``),
    returned as given (stripped); ValueError otherwise."""
    text = str(value).strip()
    if text in ("auto", "all"):
        return text
    if not _LIST.fullmatch(text):
        raise ValueError(f"expected auto, all or a CPU list like 0 or 2-3, got {text!r}")
    cpu_list(text)  # ranges in order
    return text


def cpu_list(text: str) -> frozenset[int]:
    """The CPUs of a list like ``0,2-3`` (ValueError for a range that runs backwards)."""
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if last < first:
            raise ValueError(f"CPU range {part!r} runs backwards")
        out.update(range(first, last + 1))
    return frozenset(out)


def format_cpus(cpus: Iterable[int]) -> str:
    """``0-3,6``: runs of consecutive CPUs as ranges (the kernel's list format)."""
    runs: list[str] = []
    ordered = sorted(cpus)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        runs.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(runs)


def choose(setting: str, allowed: frozenset[int], current: int | None) -> frozenset[int] | None:
    """The CPUs to keep the daemon on, or None to leave it where it may run.

    * ``all``: None.
    * ``auto``: one CPU when the process may use two or more -- the one it runs on
      (``current``) when that is allowed, else the lowest allowed; None with one.
    * a list: those CPUs; ValueError naming the ones the process may not use.
    """
    if setting == "all":
        return None
    if setting == "auto":
        if len(allowed) < 2:
            return None
        return frozenset((current if current in allowed else min(allowed),))
    wanted = cpu_list(setting)
    outside = wanted - allowed
    if outside:
        raise ValueError(
            f"cpus {setting!r}: CPU {format_cpus(outside)} is not available to this process "
            f"(it may use {format_cpus(allowed)})"
        )
    return None if wanted == allowed else wanted


@dataclass(frozen=True, slots=True)
class Placement:
    """What :func:`apply` did: the CPUs the process may use now and before, and why."""

    setting: str
    before: frozenset[int]
    after: frozenset[int]
    note: str  # "pinned", "unchanged" or why nothing could be set

    def describe(self) -> str:
        return (
            f"cpus {self.setting}: {self.note}, threads on CPU {format_cpus(self.after)} "
            f"(of {format_cpus(self.before)})"
        )


def _current_cpu() -> int | None:
    """The CPU this thread last ran on (``/proc/thread-self/stat`` field 39), None if
    unknown."""
    try:
        stat = Path("/proc/thread-self/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[36])
    except (OSError, IndexError, ValueError):
        return None


def apply(setting: str) -> Placement:
    """Narrow every thread of this process to :func:`choose`'s CPUs (Linux; elsewhere
    nothing changes, said in the note). ValueError for a list naming CPUs outside."""
    get = getattr(os, "sched_getaffinity", None)
    put = getattr(os, "sched_setaffinity", None)
    if get is None or put is None:
        return Placement(setting, frozenset(), frozenset(), "no CPU affinity on this platform")
    allowed = frozenset(get(0))
    wanted = choose(setting, allowed, _current_cpu())
    if wanted is None:
        return Placement(setting, allowed, allowed, "unchanged")
    tasks = [int(t) for t in _task_ids()] or [0]
    for tid in tasks:
        try:
            put(tid, wanted)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
        except OSError as exc:  # e.g. a cpuset changed under us: leave it be
            return Placement(setting, allowed, frozenset(get(0)), f"not pinned ({exc})")
    return Placement(setting, allowed, frozenset(get(0)), "pinned")


def _task_ids() -> list[str]:
    try:
        return os.listdir("/proc/self/task")
    except OSError:
        return []
