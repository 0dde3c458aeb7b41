"""The fan-in barrier: a due trigger waits while its upstream processors have open work
for its date, so that no run reads half-updated inputs.

Invariant: pure. :func:`classify` turns what the caller measured (which upstreams are
busy, the time) into a table input; the outcome is read from :data:`TRANSITIONS`
(docs/ledger.md prints it; a test checks they agree). :class:`BarrierBook` only stores
held windows and their deadlines; it reads no clock and does no I/O.

Production does this per game date by hand: Firestore documents
``phase3_completion/{game_date}`` with an expected processor list, triggering when all
complete or "critical + majority" complete, with tiered timeouts
(``orchestration/cloud_functions/phase3_to_phase4/main.py:4-9,94-110,216-247,1358``,
``orchestration/cloud_functions/phase4_to_phase5/main.py:89-101``). Here the expected list
is what is really in flight: the processor's upstreams (transitively, from the registry's
DAG) with an open window, a held trigger or a trigger without completion on that date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, NamedTuple

from scoperouter.processor_registry.model_loop import BarrierSpec
from scoperouter.processor_registry.models import parse_duration
from scoperouter.router.window_state import WindowState

Phase = Literal["free", "held"]
Input = Literal["clear", "busy", "timeout_run", "timeout_short", "timeout_hold", "flush"]
Effect = Literal["fire", "hold", "release", "wait"]


@dataclass(frozen=True, slots=True)
class Transition:
    next: Phase
    effect: Effect
    rule: str


TRANSITIONS: dict[tuple[Phase, Input], Transition] = {
    ("free", "clear"): Transition(
        "free", "fire", "no upstream has open work on the date: fires as without a barrier"
    ),
    ("free", "busy"): Transition(
        "held", "hold", "an upstream has open work on the date: held (decisions still merge)"
    ),
    ("held", "clear"): Transition(
        "free", "release", "every upstream is done: fires on fully updated inputs"
    ),
    ("held", "busy"): Transition("held", "wait", "an upstream is still busy: keeps waiting"),
    ("held", "timeout_run"): Transition(
        "free",
        "release",
        "`barrier.timeout` passed, `on_timeout: run`, `min_complete` met (or unset): fires",
    ),
    ("held", "timeout_short"): Transition(
        "held", "wait", "timed out but `min_complete` not met: waits until it is"
    ),
    ("held", "timeout_hold"): Transition(
        "held", "wait", "`on_timeout: hold`: waits until every upstream is done"
    ),
    ("held", "flush"): Transition("free", "release", "shutdown / end of stream: fires"),
}


class Held(NamedTuple):
    """A window held at the barrier."""

    window: WindowState
    held_at: float
    deadline: float | None  # held_at + barrier.timeout (None: no timeout)
    waited_for: frozenset[str]  # upstreams busy when it was first held
    timed_out: bool = False  # its timeout passed (it waits on ``on_timeout`` / ``min_complete``)


def min_complete_met(spec: BarrierSpec, waited_for: frozenset[str], busy: frozenset[str]) -> bool:
    """Critical upstreams done and at least ``share`` of the awaited upstreams done."""
    mc = spec.min_complete
    if mc is None:
        return True
    if any(c in busy for c in mc.critical):
        return False
    if not waited_for:
        return True
    done = len(waited_for - busy)
    return done >= mc.share * len(waited_for) - 1e-9


def classify(spec: BarrierSpec, held: Held | None, busy: frozenset[str], now: float) -> Input:
    """The table input for a due window (``held`` None) or a held one, at ``now``."""
    if not busy:
        return "clear"
    if held is None or not (held.timed_out or (held.deadline is not None and now >= held.deadline)):
        return "busy"
    if spec.on_timeout == "hold":
        return "timeout_hold"
    return "timeout_run" if min_complete_met(spec, held.waited_for, busy) else "timeout_short"


def hold(
    w: WindowState, spec: BarrierSpec, busy: frozenset[str], now: float, prev: Held | None
) -> Held:
    """The held value for ``w`` (keeps the first hold's time, deadline and awaited set)."""
    if prev is not None:
        return prev._replace(window=w)
    deadline = now + parse_duration(spec.timeout) if spec.timeout is not None else None
    return Held(w, now, deadline, busy)


def rehold(h: Held, spec: BarrierSpec | None) -> Held:
    """``h`` with its deadline recomputed under ``spec`` (``held_at`` + the current
    ``barrier.timeout``, None without one): a restart under a changed registry follows it.
    A changed deadline clears ``timed_out`` (the next tick sets it again if it passed)."""
    if spec is None:
        return h  # the barrier is gone: the next tick releases it
    deadline = h.held_at + parse_duration(spec.timeout) if spec.timeout is not None else None
    if deadline == h.deadline:
        return h
    return h._replace(deadline=deadline, timed_out=False)


class BarrierBook:
    """Held windows by ``(processor, date)``."""

    def __init__(self) -> None:
        self.held: dict[tuple[str, date], Held] = {}
        # a held window taken back into the window book by a new decision keeps its hold
        self.parked: dict[tuple[str, date], Held] = {}
        self.released = 0
        self.timeouts = 0
        self.holds = 0

    def next_deadline(self) -> float | None:
        dls = [h.deadline for h in self.held.values() if h.deadline is not None and not h.timed_out]
        return min(dls) if dls else None

    def oldest_held_at(self) -> float | None:
        """When the longest-held window still held (or parked with its hold) was first held,
        None when there is none. A copy of the values is taken first: the metrics scrape
        calls it from another thread than the one holding and releasing windows."""
        held = [*self.held.values(), *self.parked.values()]
        return min((h.held_at for h in held), default=None)

    def __len__(self) -> int:
        return len(self.held)


def transition_table_markdown() -> str:
    """:data:`TRANSITIONS` as the Markdown table docs/ledger.md embeds."""
    lines = ["| held | input | becomes | effect | rule |", "|---|---|---|---|---|"]
    for (phase, inp), tr in TRANSITIONS.items():
        lines.append(f"| {phase} | {inp} | {tr.next} | {tr.effect} | {tr.rule} |")
    return "\n".join(lines)
