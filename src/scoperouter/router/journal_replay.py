"""Rebuild the routing engine from a snapshot and the journal of its inputs (the snapshot +
journal store of ``runtime/store.py``, which the closed loop keeps its state in).

Invariant: one replay for every reader -- the daemon's restart
(:class:`scoperouter.runtime.durable_windows.DurableWindows`) and the one-time import into
a per-window state store (:mod:`scoperouter.state.legacy`) -- so both see the engine the
writer had: its open windows, the windows held at a barrier and the ledger. The snapshot
and the journal are replayed under the registry that wrote them (a window whose ``quiet``
shrank since would otherwise fire during the replay, and a replay's triggers are not sent:
they were committed with the journal row that fired them), then handed to the current one.
Pure: no clock, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.router.completion_ref import ref_from_dict
from scoperouter.router.decisions import Decision
from scoperouter.router.engine import RoutingEngine
from scoperouter.router.window_state import WindowState

JournalRow = tuple[str, float, str | None, str | None]
"""``(op, now, event, decision)``: ``add`` carries the event and decision JSON, ``complete``
the completion reference, ``request`` the operator request, ``alias`` the message id and
the trigger id; ``due`` and ``flush`` only their time."""

LOOP_OPS = frozenset({"complete", "request", "alias"})
"""Journal ops only the closed loop writes."""

REGISTRY_META = "journal_registry"
"""The store's meta key holding the registry (:func:`replay_spec_json`) that wrote the
snapshot and the journal: a restart replays them under it, not under a routes.yaml changed
meanwhile."""


UNTRACKED_META = "journal_untracked"
"""The store's meta key holding the processors whose triggers the ledger did not track when
the snapshot and the journal were written (shadow mode then: they fired in shadow, never
sent), a JSON list: a restart replays the journal with them, so a trigger that fired live
keeps its ledger entry after its processor became shadow (it is still delivered: its run
closes the entry) and one that fired in shadow opens none after it became live (it is
never sent: no run would close it)."""


def untracked_json(untracked: frozenset[str]) -> str:
    """``untracked`` as :data:`UNTRACKED_META` holds it."""
    return json.dumps(sorted(untracked), separators=(",", ":"))


def written_untracked(text: str | None, current: frozenset[str]) -> frozenset[str]:
    """The untracked processors :data:`UNTRACKED_META` names; for a store written before it
    was kept (or unreadable), ``current``, the untracked processors now: such a store's
    pending rows carry no mode and are sent by their processor's mode now
    (:func:`~scoperouter.runtime.modes.row_mode`), so the ledger tracks the same ones the
    dispatcher sends live (a guess from the writer's registry would keep entries for rows
    settled as shadow after a flip to shadow, and open none for rows sent live after a flip
    to live)."""
    if text is not None:
        try:
            got = json.loads(text)
        except ValueError:
            got = None
        if isinstance(got, list):
            return frozenset(map(str, got))
    return current


def replay_spec_json(registry: CompiledRegistry) -> str:
    """What replaying the journal needs of ``registry``, as JSON: the spec without targets
    and server settings (URLs and secrets stay out of the state store)."""
    d = registry.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    d.pop("server", None)
    d.get("defaults", {}).pop("target", None)
    for p in d.get("processors", {}).values():
        p.pop("target", None)
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def replay_registry(text: str) -> CompiledRegistry:
    """The registry :func:`replay_spec_json` wrote (raises when it no longer loads)."""
    return compile_registry(RoutesSpec.model_validate_json(text))


def replay_journal(engine: RoutingEngine, rows: Iterable[JournalRow]) -> int:
    """Feed the journaled inputs to ``engine`` in order; returns how many rows there were."""
    n = 0
    for op, now, a, b in rows:
        n += 1
        if op == "add":
            assert a is not None and b is not None
            engine.apply(Event.model_validate_json(a), [Decision.model_validate_json(b)], now)
        elif op == "due":
            engine.tick(now)
        elif op == "flush":
            engine.flush(now)
        elif op == "complete" and a is not None:
            engine.complete(ref_from_dict(json.loads(a)), now)
        elif op == "request" and a is not None and engine.loop is not None:
            engine.loop.request(json.loads(a), now)
        elif op == "alias" and a is not None and b is not None:
            engine.alias(a, b, now)
    return n


def rebuild(
    current: CompiledRegistry,
    writer: CompiledRegistry,
    snapshot: dict[str, Any] | None,
    rows: Iterable[JournalRow],
    *,
    loop: bool,
    untracked: frozenset[str] = frozenset(),
    written_untracked: frozenset[str] | None = None,
) -> tuple[RoutingEngine, int]:
    """The engine ``snapshot`` plus ``rows`` rebuild under ``writer`` (the registry that
    wrote them) and the ledger's untracked processors of that time (``written_untracked``,
    None: ``untracked``), handed to ``current`` and ``untracked``; and the number of
    journal rows replayed."""
    then = untracked if written_untracked is None else written_untracked
    engine = (
        RoutingEngine.restore(writer, snapshot, loop=loop, untracked=then)
        if snapshot is not None
        else RoutingEngine(writer, loop=loop, untracked=then)
    )
    replayed = replay_journal(engine, rows)
    if writer is not current:
        engine = engine.under(current, loop=loop)
    engine.untracked = untracked  # the triggers fired from now on
    return engine, replayed


def open_windows(engine: RoutingEngine) -> list[WindowState]:
    """Every window ``engine`` still has to send, by key: the open ones and those held at a
    barrier."""
    held = engine.loop.barrier.held if engine.loop is not None else {}
    out = {(w.processor, w.day): w for w in engine.book.states()}
    out.update((key, h.window) for key, h in held.items())
    return [out[k] for k in sorted(out)]
