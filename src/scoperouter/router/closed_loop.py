"""The closed loop around the windows: the trigger ledger and the fan-in barrier, as the
engine drives them (sans-I/O).

Invariant: every trigger the engine fires enters the ledger (attempt 1) and stays open
until a completion names it; a window of a processor with a ``barrier`` fires only when no
upstream of it has open work on its date (or its barrier timeout says run). Rules live in
:mod:`scoperouter.router.ledger` and :mod:`scoperouter.router.barrier`; this module only
wires them to the window book. No clock, no I/O: times are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.router import barrier as bar
from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger import Entry
from scoperouter.router.ledger_book import LedgerBook, Redispatch
from scoperouter.router.loop_params import LoopOverrides, LoopParams, loop_params
from scoperouter.router.window_state import (
    WindowState,
    to_trigger,
    window_from_json,
    window_to_json,
)
from scoperouter.router.windows import WindowBook

SNAPSHOT_VERSION = 1
Key = tuple[str, date]
REQUEST_OPS = frozenset({"redrive"})
"""The operator requests a loop applies (``loop-requests.jsonl``)."""


def request_problem(req: object) -> str | None:
    """Why ``req`` is no operator request :meth:`ClosedLoop.request` can apply (``{"id": str,
    "op": "redrive", "trigger_ids": [str, ...]}``), None when it is one."""
    if not isinstance(req, dict):
        return f"a request must be an object, not {type(req).__name__}"
    if not isinstance(req.get("id"), str):
        return "its id must be a string"
    if req.get("op") not in REQUEST_OPS:
        return f"unknown op {req.get('op')!r}"
    ids = req.get("trigger_ids")
    if not isinstance(ids, list) or not all(isinstance(t, str) for t in ids):
        return "its trigger_ids must be a list of strings"
    return None


class Gated:
    """A trigger the loop lets through: the window's trigger, when, which attempt, and
    what the barrier did (``held_s`` seconds held, ``via``: fire | release | timeout)."""

    __slots__ = ("at", "attempt", "held_s", "via", "window")

    def __init__(
        self, window: WindowState | None, at: float, attempt: int, held_s: float, via: str
    ) -> None:
        self.window, self.at, self.attempt, self.held_s, self.via = window, at, attempt, held_s, via


class ClosedLoop:
    """Ledger + barrier for one registry. Drive it from the engine's thread."""

    def __init__(
        self, registry: CompiledRegistry, book: WindowBook, overrides: LoopOverrides | None = None
    ) -> None:
        self.registry = registry
        self.book = book
        self.overrides = overrides
        self._params: dict[str, LoopParams] = {}
        self._ancestors: dict[str, frozenset[str]] = {}
        self.ledger = LedgerBook(self.params)
        self.barrier = bar.BarrierBook()
        self.requests_done: set[str] = set()  # operator requests applied (applied once)

    # ------------------------------------------------------------------ settings
    def params(self, processor: str) -> LoopParams:
        got = self._params.get(processor)
        if got is None:
            got = self._params[processor] = loop_params(self.registry, processor, self.overrides)
        return got

    def _granularity(self, processor: str) -> str:
        """The processor's granularity now ("" when it is no longer in the registry)."""
        p = self.registry.processors.get(processor)
        return "" if p is None else p.granularity

    def ancestors(self, processor: str) -> frozenset[str]:
        """Every processor upstream of ``processor`` in the registry's DAG (transitive)."""
        got = self._ancestors.get(processor)
        if got is None:
            seen: set[str] = set()
            todo = list(self.registry.upstream_of.get(processor, ()))
            while todo:
                p = todo.pop()
                if p not in seen and p != processor:
                    seen.add(p)
                    todo.extend(self.registry.upstream_of.get(p, ()))
            got = self._ancestors[processor] = frozenset(seen)
        return got

    def busy_upstreams(
        self, processor: str, day: date, firing: set[Key] | frozenset[Key] = frozenset()
    ) -> frozenset[str]:
        """Upstreams with open work on ``day``: an open or held window, an open trigger,
        or a window in ``firing`` (the batch being fired)."""
        book, held, ledger = self.book, self.barrier.held, self.ledger
        return frozenset(
            a
            for a in self.ancestors(processor)
            if book.get((a, day)) is not None
            or (a, day) in held
            or ledger.busy(a, day)
            or (a, day) in firing
        )

    # ------------------------------------------------------------------ engine hooks
    def unpark(self, processor: str, day: date) -> None:
        """A decision for a held window: hand the window back to the book so it merges
        (it keeps its hold: time, deadline, awaited upstreams)."""
        key = (processor, day)
        h = self.barrier.held.pop(key, None)
        if h is not None:
            self.barrier.parked[key] = h
            self.book.put(h.window)

    def gate(self, states: Iterable[tuple[float, WindowState]]) -> list[Gated]:
        """Windows the book fired (each at its time): through, or held at the barrier."""
        out: list[Gated] = []
        states = list(states)
        # windows firing together count as busy for each other (an upstream that fires in
        # the same batch is about to change the inputs)
        batch = {(w.processor, w.day) for _at, w in states}
        for at, w in states:
            key = (w.processor, w.day)
            spec = self.params(w.processor).barrier
            prev = self.barrier.parked.pop(key, None)
            if spec is None:
                out.append(Gated(w, at, 1, 0.0, "fire"))
                continue
            busy = self.busy_upstreams(w.processor, w.day, batch)
            tr = bar.TRANSITIONS[
                ("free" if prev is None else "held", bar.classify(spec, prev, busy, at))
            ]
            if tr.effect in ("hold", "wait"):
                self.barrier.held[key] = bar.hold(w, spec, busy, at, prev)
                self.barrier.holds += 1
            else:
                out.append(Gated(w, at, 1, 0.0 if prev is None else at - prev.held_at, tr.effect))
        return out

    def tick(self, now: float) -> tuple[list[Redispatch], list[Gated]]:
        """Ledger timers due by ``now`` and held windows that may go now."""
        redispatch = self.ledger.due(now, self._may_send)
        redispatch += self.ledger.send_deferred(self._may_send, now)
        released: list[Gated] = []
        # upstream first, so that a window released now holds its downstream back
        rank = {p: i for i, p in enumerate(self.registry.topo_order)}
        releasing: set[Key] = set()
        for key in sorted(self.barrier.held, key=lambda k: (rank.get(k[0], -1), k)):
            h = self.barrier.held[key]
            spec = self.params(key[0]).barrier
            if spec is None:  # the registry dropped the barrier: let it go
                del self.barrier.held[key]
                released.append(Gated(h.window, now, 1, now - h.held_at, "release"))
                continue
            busy = self.busy_upstreams(key[0], key[1], releasing)
            inp = bar.classify(spec, h, busy, now)
            tr = bar.TRANSITIONS[("held", inp)]
            if tr.effect == "release":
                del self.barrier.held[key]
                self.barrier.released += 1
                releasing.add(key)
                if inp == "timeout_run":
                    self.barrier.timeouts += 1
                released.append(
                    Gated(
                        h.window,
                        now,
                        1,
                        now - h.held_at,
                        "timeout" if inp == "timeout_run" else "release",
                    )
                )
            elif inp in ("timeout_short", "timeout_hold") and not h.timed_out:
                self.barrier.held[key] = h._replace(timed_out=True)
                self.barrier.holds += 1
        return redispatch, released

    def _may_send(self, t: Trigger) -> bool:
        """A re-dispatch passes the barrier too: not while an upstream is busy."""
        return self.params(t.processor).barrier is None or not self.busy_upstreams(
            t.processor, t.game_date
        )

    def flush(self, now: float) -> list[Gated]:
        out = [
            Gated(h.window, now, 1, now - h.held_at, "flush")
            for _k, h in sorted(self.barrier.held.items())
        ]
        self.barrier.held.clear()
        return out

    def complete(self, ref: CompletionRef, now: float) -> Entry | None:
        entry, _ = self.ledger.complete(ref, now)
        return entry

    def redrive(self, trigger_ids: Iterable[str], now: float) -> list[Redispatch]:
        return self.ledger.redrive(trigger_ids, now)

    def request(self, req: dict[str, Any], now: float) -> list[Redispatch]:
        """Apply an operator request once (``{"id", "op": "redrive", "trigger_ids"}``); one
        of another shape (:func:`request_problem`, e.g. a journal row written before
        requests were checked) is ignored: it changes nothing, its id is not recorded."""
        if request_problem(req) is not None:
            return []
        rid = req["id"]
        if rid in self.requests_done:
            return []
        self.requests_done.add(rid)
        return self.ledger.redrive(req["trigger_ids"], now)

    def next_deadline(self) -> float | None:
        """The earliest ledger or barrier timer. Held windows are also re-checked at every
        tick (a completion can release them): :meth:`has_held` tells the driver."""
        dls = [
            d for d in (self.ledger.next_deadline(), self.barrier.next_deadline()) if d is not None
        ]
        return min(dls) if dls else None

    @property
    def version(self) -> int:
        """Moves whenever the loop's state changed (drivers journal a tick when it does)."""
        b = self.barrier
        return self.ledger.changes + b.holds + b.released + len(self.requests_done)

    @property
    def has_held(self) -> bool:
        return bool(self.barrier.held) or bool(self.ledger.deferred)

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        held = []
        for (_p, _d), h in sorted({**self.barrier.held, **self.barrier.parked}.items()):
            held.append(
                {
                    "window": window_to_json(h.window),
                    "held_at": h.held_at,
                    "deadline": h.deadline,
                    "waited_for": sorted(h.waited_for),
                    "timed_out": h.timed_out,
                    "parked": (h.window.processor, h.window.day) in self.barrier.parked,
                }
            )
        return {
            "version": SNAPSHOT_VERSION,
            "ledger": self.ledger.snapshot(),
            "held": held,
            "requests_done": sorted(self.requests_done),
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Load :meth:`snapshot` (into a fresh loop). Raises ValueError when malformed.
        Timers follow this loop's registry, not the one that wrote the snapshot: open
        triggers' deadlines and backoffs (:func:`~.ledger.retimed`) and held windows'
        deadlines (:func:`~.barrier.rehold`) are recomputed from the current settings; a
        trigger not succeeded whose ids its processor no longer takes (a rollback to
        ``granularity: date``) is re-run as the full-date trigger (``LedgerBook.restore``)."""
        if not isinstance(snap, dict) or snap.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported loop snapshot (expected version {SNAPSHOT_VERSION})")
        self.ledger = LedgerBook.restore(self.params, snap.get("ledger", {}), self._granularity)
        self.requests_done = set(map(str, snap.get("requests_done", [])))
        try:
            for item in snap.get("held", []):
                w = window_from_json(
                    item["window"], self.book.params(str(item["window"]["processor"]))
                )
                h = bar.Held(
                    w,
                    float(item["held_at"]),
                    None if item.get("deadline") is None else float(item["deadline"]),
                    frozenset(map(str, item.get("waited_for", []))),
                    bool(item.get("timed_out", False)),
                )
                # the deadline follows the registry restored under (barrier.rehold)
                h = bar.rehold(h, self.params(w.processor).barrier)
                target = self.barrier.parked if item.get("parked") else self.barrier.held
                target[(w.processor, w.day)] = h
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed loop snapshot: {exc}") from exc


__all__ = ["ClosedLoop", "Gated", "to_trigger"]
