"""Import the state of the snapshot + journal store (``runtime/store.py``) into a
:class:`~scoperouter.state.api.StateStore`, once, at the first start after an upgrade or
when the closed loop is turned off (:mod:`scoperouter.runtime.state_open`).

Invariant: the windows imported are exactly the ones the old daemon would have restored
and still had to send (its snapshot, then its journal replayed by the daemon's own replay,
:func:`scoperouter.router.journal_replay.rebuild`: under the registry that wrote it, with the
closed loop when the file holds its state; the open windows and those held at a barrier,
triggers re-fired by the replay ignored: they were committed with the journal row that
fired them); seen ids keep their time,
pending triggers stay pending with their attempts, the mode they fired in and the time
they are due (a row backing off keeps its wait), dead triggers stay dead with their dead
letter, dead letters are kept. What only the closed loop's ledger holds comes along as
outbox rows: a re-dispatch it scheduled (``backoff``) as a pending row due then, a
trigger it dead-lettered as a dead row (``scoperouter outbox redrive`` sends it again);
triggers it waits on for a completion are counted (:attr:`LegacyState.awaiting`): without
the loop nothing waits for them. The target store takes the import only while it is empty
(``import_legacy``), so running it again changes nothing; the SQLite store also takes it
on top of its own state (``carry_over``: windows of one key joined).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.models import parse_duration
from scoperouter.router.engine import RoutingEngine
from scoperouter.router.journal_replay import (
    LOOP_OPS,
    MODES_META,
    REGISTRY_META,
    UNTRACKED_META,
    JournalRow,
    open_windows,
    rebuild,
    replay_registry,
    replay_spec_json,
    written_modes,
)
from scoperouter.router.window_state import window_to_json
from scoperouter.state.core import trigger_body
from scoperouter.state.letter_refs import trigger_ref
from scoperouter.state.model import DeadLetterIn, FireModes, WindowState
from scoperouter.state.sqlite_schema import table_columns

logger = logging.getLogger("scoperouter.state")


@dataclass(frozen=True, slots=True)
class PendingTrigger:
    trigger_id: str
    processor: str
    body: bytes
    attempts: int
    created_at: float
    mode: str | None = None  # the mode it fired in (None: a file written before it was kept)
    available_at: float = 0.0  # when it may be sent (a row backing off, a re-dispatch)


@dataclass(frozen=True, slots=True)
class DeadTrigger:
    """A trigger given up on (the outbox's dead row, or the closed loop's dead letter), with
    its dead letter (its ``ref`` is set when the row is written: ``<trigger_id>#<row>``)."""

    trigger_id: str
    processor: str
    body: bytes
    attempts: int
    created_at: float
    finished_at: float
    error: str | None
    mode: str | None
    letter: DeadLetterIn | None


@dataclass(frozen=True, slots=True)
class LegacyState:
    seen: tuple[tuple[str, float], ...]
    windows: tuple[WindowState, ...]
    pending: tuple[PendingTrigger, ...]
    dead_letters: tuple[DeadLetterIn, ...]
    dead: tuple[DeadTrigger, ...] = ()
    # triggers sent that the closed loop's ledger still waits on for a completion: not
    # carried (no store without the loop waits for completions), counted
    awaiting: int = 0

    @property
    def unfinished(self) -> bool:
        """Work a daemon must still do: open windows, triggers to send, or a ledger
        waiting on completions (the store must not be left behind with it)."""
        return bool(self.windows or self.pending or self.awaiting)

    @property
    def empty(self) -> bool:
        """Nothing at all to take over (not even a seen id or a dead letter)."""
        return not (self.seen or self.dead_letters or self.dead or self.unfinished)

    def counts(self) -> dict[str, int]:
        """What it holds, by kind (log lines, errors)."""
        return {
            "windows": len(self.windows),
            "pending": len(self.pending),
            "dead": len(self.dead),
            "dead_letters": len(self.dead_letters) + sum(1 for d in self.dead if d.letter),
            "seen": len(self.seen),
            "awaiting": self.awaiting,
        }


@dataclass(frozen=True, slots=True)
class Carried:
    """What a store took of a :class:`LegacyState` (``carry_over``, ``import_legacy``)."""

    windows: int = 0  # windows written
    joined: int = 0  # of them, joined to a window of their key the store held
    pending: int = 0  # triggers written pending
    dead: int = 0  # triggers written dead (with their dead letter)
    letters: int = 0  # other dead letters written
    seen: int = 0  # seen ids written (the store knew the others)
    known: int = 0  # triggers the store held already (a repeated hand-over): not written


class RowSink(Protocol):
    """A store's statements :func:`carry_rows` writes with (in the store's transaction)."""

    def add_seen(self, event_id: str, at: float) -> bool:
        """Remember ``event_id`` as seen at ``at`` unless known; True when written."""
        ...

    def trigger_ids(self, dead: bool) -> set[str]:
        """The trigger ids of the rows still to send (``dead``: of the dead rows)."""
        ...

    def add_pending(self, t: PendingTrigger, due: float) -> None: ...

    def add_dead(self, d: DeadTrigger) -> int:
        """Write a dead row (without its letter); its row id."""
        ...

    def add_letter(self, d: DeadLetterIn) -> bool:
        """Store a dead letter; False when ``(kind, ref)`` is stored already."""
        ...

    def has_unnamed(self, d: DeadLetterIn) -> bool:
        """True when a letter without a ref of ``d``'s kind, reason and time is stored."""
        ...


def carry_rows(
    state: LegacyState, now: float, sink: RowSink, staged: Container[str] = ()
) -> tuple[int, int, int, int, int]:
    """Write the rows of ``state`` (not its windows) through ``sink``: seen ids the store
    does not know (nor ``staged``) with their time; a trigger to send whose id no row to
    send of the store had before pending, due at its time (``now`` at the earliest); a
    dead one whose id no dead row had dead, with its dead letter naming the new row
    (``<trigger_id>#<row>``); the other dead letters once each (by ``(kind, ref)``; one
    without a ref by its reason and time). A second run with the same state writes
    nothing. Returns ``(pending, dead, letters, seen, known)``, known: triggers the store
    held already."""
    seen = sum(1 for eid, at in state.seen if eid not in staged and sink.add_seen(eid, at))
    sending, dead = sink.trigger_ids(False), sink.trigger_ids(True)
    pending = dead_rows = known = 0
    for t in state.pending:
        if t.trigger_id in sending:
            known += 1
            continue
        sink.add_pending(t, max(now, t.available_at))
        pending += 1
    for d in state.dead:
        if d.trigger_id in dead:
            known += 1
            continue
        row = sink.add_dead(d)
        if d.letter is not None:
            sink.add_letter(replace(d.letter, ref=trigger_ref(d.trigger_id, row)))
        dead_rows += 1
    letters = sum(
        1
        for x in state.dead_letters
        if not (x.ref is None and sink.has_unnamed(x)) and sink.add_letter(x)
    )
    return pending, dead_rows, letters, seen, known


LOOP_DEAD_REASON = "loop_dead_letter"
"""The reason of the dead letter of a trigger the closed loop dead-lettered, carried as a
dead outbox row when the loop is turned off."""


def read_legacy(path: str | Path, registry: CompiledRegistry) -> LegacyState:
    """The old store's state at ``path`` (opened read-only)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        engine = _rebuild(db, registry)
        seen = tuple(db.execute("SELECT event_id, seen_at FROM seen ORDER BY event_id"))
        cols = table_columns(db, "triggers")
        mode = "mode" if "mode" in cols else "NULL"
        due = "available_at" if "available_at" in cols else "0"
        rows = db.execute(
            f"SELECT id, trigger_id, processor, body, attempts, created_at, {mode}, {due}, "
            "status, dispatched_at, error FROM triggers WHERE status IN ('pending', 'dead') "
            "ORDER BY id"
        ).fetchall()
        owed = "topic_record" if "topic_record" in table_columns(db, "dead_letters") else "NULL"
        letters = [
            DeadLetterIn(*r)
            for r in db.execute(
                f"SELECT kind, ref, reason, detail, payload, at, {owed} FROM dead_letters "
                "ORDER BY id"
            )
        ]
    finally:
        db.close()
    pending, dead, kept = outbox_work(rows, letters)
    again, given_up, awaiting = _ledger(
        engine, {t.trigger_id for t in pending}, {d.trigger_id for d in dead}
    )
    return LegacyState(
        seen,
        _windows(engine, registry),
        (*pending, *again),
        kept,
        (*dead, *given_up),
        awaiting,
    )


OutboxRowIn = tuple[
    int, str, str, str | bytes, int, float, str | None, float, str, float | None, str | None
]
"""An outbox row as :func:`outbox_work` reads it: ``(id, trigger_id, processor, body,
attempts, created_at, mode, available_at, status, finished_at, error)``."""


def outbox_work(
    rows: Iterable[OutboxRowIn], letters: Sequence[DeadLetterIn]
) -> tuple[list[PendingTrigger], list[DeadTrigger], tuple[DeadLetterIn, ...]]:
    """A store's outbox rows still to send (any status but ``dead``) and dead, each dead
    one with its dead letter (``trigger``, ref ``<trigger_id>#<id>``); and the letters no
    dead row took."""
    pending: list[PendingTrigger] = []
    dead: list[DeadTrigger] = []
    by_ref = {d.ref: d for d in letters if d.kind == "trigger" and d.ref is not None}
    attached: set[str] = set()  # written with their row, under its new id
    for rid, t, p, b, a, c, m, due, status, done_at, err in rows:
        body = b.encode() if isinstance(b, str) else bytes(b)
        if status != "dead":
            pending.append(PendingTrigger(t, p, body, a, c, m, due))
            continue
        ref = trigger_ref(t, rid)
        letter = by_ref.get(ref)
        if letter is not None:
            attached.add(ref)
        finished = done_at if done_at is not None else c
        dead.append(DeadTrigger(t, p, body, a, c, finished, err, m, letter))
    kept = tuple(d for d in letters if d.kind != "trigger" or d.ref not in attached)
    return pending, dead, kept


def _ledger(
    engine: RoutingEngine, pending: set[str], dead: set[str]
) -> tuple[list[PendingTrigger], list[DeadTrigger], int]:
    """What only the closed loop's ledger holds, as outbox rows: each re-dispatch it
    scheduled (``backoff``: live, due at its time), each trigger it dead-lettered that is
    not a dead row already; and the triggers it waits on for a completion (sent: not
    pending)."""
    loop = engine.loop
    if loop is None:
        return [], [], 0
    again: list[PendingTrigger] = []
    given_up: list[DeadTrigger] = []
    awaiting = 0
    for e in loop.ledger.entries():
        t = e.trigger
        if e.phase == "backoff" and e.due_at is not None and t.trigger_id not in pending:
            stamped = t.model_copy(update={"fired_at": datetime.fromtimestamp(e.due_at, UTC)})
            body = trigger_body(stamped)
            again.append(
                PendingTrigger(t.trigger_id, t.processor, body, 0, e.due_at, "live", e.due_at)
            )
        elif e.phase == "dead" and t.trigger_id not in dead:
            body = trigger_body(t)
            at = e.history[-1].at if e.history else e.opened_at
            why = f"{e.outcome or 'failed'}: {e.error}" if e.error else e.outcome
            letter = DeadLetterIn("trigger", None, LOOP_DEAD_REASON, why, body, at)
            given_up.append(
                DeadTrigger(t.trigger_id, t.processor, body, e.attempt, e.opened_at, at,
                            e.error, "live", letter)
            )  # fmt: skip
        elif e.phase == "dispatched" and t.trigger_id not in pending:
            awaiting += 1
    return again, given_up, awaiting


def _rebuild(db: sqlite3.Connection, registry: CompiledRegistry) -> RoutingEngine:
    """The old daemon's engine after a restart (:func:`journal_replay.rebuild`): under the
    registry and the dispatch modes that wrote the journal when the file names them (a
    window a decision joined while its processor fired live stays live), with the closed
    loop when the file holds its state (so a window held at a barrier stays a window to
    import)."""
    row = db.execute("SELECT snapshot FROM window_snapshot WHERE id = 1").fetchone()
    snap = json.loads(row[0]) if row else None
    rows: list[JournalRow] = list(
        db.execute("SELECT op, now, event, decision FROM window_journal ORDER BY seq")
    )
    writer = registry
    written = _meta(db, REGISTRY_META)
    if written is not None and written != replay_spec_json(registry):
        try:
            writer = replay_registry(written)
        except Exception:
            logger.exception("the old journal's registry no longer loads: replayed as is")
    loop = (snap is not None and "loop" in snap) or any(r[0] in LOOP_OPS for r in rows)
    # no modes now (nothing fires here): the writer's, when the file names them
    then = _meta(db, MODES_META)
    modes = (
        None
        if then is None and _meta(db, UNTRACKED_META) is None
        else written_modes(then, _meta(db, UNTRACKED_META), FireModes(), writer)
    )
    engine, _n = rebuild(registry, writer, snap, rows, loop=loop, written_modes=modes)
    return engine


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    """A value of the old file's ``meta`` table (files written before it have none)."""
    try:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else str(row[0])


def _windows(engine: RoutingEngine, registry: CompiledRegistry) -> tuple[WindowState, ...]:
    d = registry.spec.defaults
    out = []
    for item in map(window_to_json, open_windows(engine)):
        p = registry.processors.get(item["processor"])
        ids = item["entity_ids"]
        out.append(
            WindowState(
                processor=item["processor"],
                day=date.fromisoformat(item["date"]),
                opened_at=item["opened_at"],
                last_at=item["last_at"],
                entity_ids=None if ids is None else frozenset(ids),
                entity_type=item["entity_type"],
                date_reason=item["date_reason"],
                caused_by=frozenset(item["caused_by"]),
                correlation_id=item["correlation_id"],
                priority="critical" if item["priority"] == "critical" else "normal",
                quiet_s=p.quiet_s if p else parse_duration(d.window.quiet),
                max_wait_s=p.max_wait_s if p else parse_duration(d.window.max_wait),
                max_entities=p.max_entities if p else d.max_entities,
                caused_more=int(item.get("caused_by_more", 0)),
                live=item.get("live") is True,
            )
        )
    return tuple(out)
