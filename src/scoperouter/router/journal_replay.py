"""Rebuild the routing engine from a snapshot and the journal of its inputs (the snapshot +
journal store of ``runtime/store.py``, which the closed loop keeps its state in).

Invariant: one replay for every reader -- the daemon's restart
(:class:`scoperouter.runtime.durable_windows.DurableWindows`) and the one-time import into
a per-window state store (:mod:`scoperouter.state.legacy`) -- so both see the engine the
writer had: its open windows, the windows held at a barrier and the ledger. The snapshot
and the journal are replayed under the registry that wrote them (a window whose ``quiet``
shrank since would otherwise fire during the replay, and a replay's triggers are not sent:
they were committed with the journal row that fired them), and with the dispatch modes that
wrote them (:data:`MODES_META`: a decision journaled while its processor fired live sets
its window's ``live`` bit again; a trigger that fired in shadow opens no ledger entry
again), then handed to the current registry and modes. Pure: no clock, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.router.completion_ref import ref_from_dict
from scoperouter.router.decisions import Decision
from scoperouter.router.engine import Modes, RoutingEngine
from scoperouter.router.window_state import WindowState

if TYPE_CHECKING:  # scoperouter.state imports this module (state.legacy)
    from scoperouter.state.model import FireModes

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


MODES_META = "journal_modes"
"""The store's meta key holding the dispatch modes (:class:`FireModes`, :func:`modes_json`)
the snapshot and the journal were written under: a restart replays the journal with them,
so a decision that joined a window while its processor fired live sets the window's
``live`` bit again (it fires live after its processor became shadow: its update reached
scoperouter only), a trigger that fired live keeps its ledger entry after its processor
became shadow (it is still delivered: its run closes the entry) and one that fired in
shadow opens none after it became live (it is never sent: no run would close it)."""

UNTRACKED_META = "journal_untracked"
"""What versions before :data:`MODES_META` kept instead: the processors of routes.yaml in
shadow mode then, a JSON list (read when the store has no :data:`MODES_META`)."""


def modes_json(modes: FireModes) -> str:
    """``modes`` as :data:`MODES_META` holds it."""
    d = {"shadow": sorted(modes.shadow), "live": sorted(modes.live), "others": modes.others}
    return json.dumps(d, separators=(",", ":"))


def _names(value: object) -> frozenset[str] | None:
    return frozenset(map(str, value)) if isinstance(value, list) else None


def written_modes(
    text: str | None, untracked: str | None, current: FireModes, writer: CompiledRegistry
) -> FireModes:
    """The dispatch modes :data:`MODES_META` (``text``) names. A store written before it
    was kept: its :data:`UNTRACKED_META` (``untracked``) names the processors of the
    writer's registry then in shadow mode, the others of it live, any other processor as
    ``current`` says; without either (or unreadable), ``current``, the modes now: such a
    store's pending rows carry no mode and are sent by their processor's mode now
    (:func:`~scoperouter.runtime.modes.row_mode`), so the ledger tracks the same ones the
    dispatcher sends live (a guess from the writer's registry would keep entries for rows
    settled as shadow after a flip to shadow, and open none for rows sent live after a flip
    to live), and a window fires in its processor's mode now, as it did."""
    from scoperouter.state.model import FireModes

    for raw in (text, untracked):
        if raw is None:
            continue
        try:
            got = json.loads(raw)
        except ValueError:
            continue
        if raw is text and isinstance(got, dict):
            shadow, live = _names(got.get("shadow")), _names(got.get("live"))
            others = got.get("others")
            if shadow is not None and live is not None and others in ("live", "shadow"):
                return FireModes(shadow, live, "shadow" if others == "shadow" else "live")
        elif raw is untracked and _names(got) is not None:
            shadow = _names(got) or frozenset()
            return FireModes(shadow, frozenset(writer.processors) - shadow, current.others)
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
    """Feed the journaled inputs to ``engine`` in order; returns how many rows there were.
    Raises ValueError naming the row (its place in ``rows``, from 1) when one is malformed."""
    n = 0
    for op, now, a, b in rows:
        n += 1
        try:
            if op == "add":
                if a is None or b is None:
                    raise ValueError("an add without its event and decision")
                ev, d = Event.model_validate_json(a), Decision.model_validate_json(b)
                engine.apply(ev, [d], now)
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
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ValueError(f"journal row {n} ({op}): {_first_line(exc)}") from exc
    return n


def _first_line(exc: Exception) -> str:
    """``exc``'s message on one line (pydantic's run over several)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def rebuild(
    current: CompiledRegistry,
    writer: CompiledRegistry,
    snapshot: dict[str, Any] | None,
    rows: Iterable[JournalRow],
    *,
    loop: bool,
    modes: Modes | None = None,
    written_modes: Modes | None = None,
) -> tuple[RoutingEngine, int]:
    """The engine ``snapshot`` plus ``rows`` rebuild under ``writer`` (the registry that
    wrote them) and the dispatch modes of that time (``written_modes``, None: ``modes``),
    handed to ``current`` and ``modes``; and the number of journal rows replayed."""
    then = modes if written_modes is None else written_modes
    engine = (
        RoutingEngine.restore(writer, snapshot, loop=loop, modes=then)
        if snapshot is not None
        else RoutingEngine(writer, loop=loop, modes=then)
    )
    replayed = replay_journal(engine, rows)
    if writer is not current:
        engine = engine.under(current, loop=loop)
    engine.modes = modes  # the windows joined and fired from now on
    return engine, replayed


def open_windows(engine: RoutingEngine) -> list[WindowState]:
    """Every window ``engine`` still has to send, by key: the open ones and those held at a
    barrier."""
    held = engine.loop.barrier.held if engine.loop is not None else {}
    out = {(w.processor, w.day): w for w in engine.book.states()}
    out.update((key, h.window) for key, h in held.items())
    return [out[k] for k in sorted(out)]
