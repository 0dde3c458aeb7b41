"""Import the state of the snapshot + journal store (``runtime/store.py``) into a
:class:`~scoperouter.state.api.StateStore`, once, at the first start after an upgrade.

Invariant: the windows imported are exactly the ones the old daemon would have restored
and still had to send (its snapshot, then its journal replayed by the daemon's own replay,
:func:`scoperouter.router.journal_replay.rebuild`: under the registry that wrote it, with the
closed loop when the file holds its state; the open windows and those held at a barrier,
triggers re-fired by the replay ignored: they were committed with the journal row that
fired them); seen ids keep their time,
pending triggers stay pending with their attempts and the mode they fired in, dead
letters are kept. The target store
takes the import only while it is empty, so running it again changes nothing.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.models import parse_duration
from scoperouter.router.engine import RoutingEngine
from scoperouter.router.journal_replay import (
    LOOP_OPS,
    REGISTRY_META,
    JournalRow,
    open_windows,
    rebuild,
    replay_registry,
    replay_spec_json,
)
from scoperouter.router.window_state import window_to_json
from scoperouter.state.model import DeadLetterIn, WindowState
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


@dataclass(frozen=True, slots=True)
class LegacyState:
    seen: tuple[tuple[str, float], ...]
    windows: tuple[WindowState, ...]
    pending: tuple[PendingTrigger, ...]
    dead_letters: tuple[DeadLetterIn, ...]


def read_legacy(path: str | Path, registry: CompiledRegistry) -> LegacyState:
    """The old store's state at ``path`` (opened read-only)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        engine = _rebuild(db, registry)
        seen = tuple(db.execute("SELECT event_id, seen_at FROM seen ORDER BY event_id"))
        mode = "mode" if "mode" in table_columns(db, "triggers") else "NULL"
        pending = tuple(
            PendingTrigger(t, p, b.encode() if isinstance(b, str) else bytes(b), a, c, m)
            for t, p, b, a, c, m in db.execute(
                f"SELECT trigger_id, processor, body, attempts, created_at, {mode} "
                "FROM triggers WHERE status = 'pending' ORDER BY id"
            )
        )
        letters = tuple(
            DeadLetterIn(*r)
            for r in db.execute(
                "SELECT kind, ref, reason, detail, payload, at FROM dead_letters ORDER BY id"
            )
        )
    finally:
        db.close()
    return LegacyState(seen, _windows(engine, registry), pending, letters)


def _rebuild(db: sqlite3.Connection, registry: CompiledRegistry) -> RoutingEngine:
    """The old daemon's engine after a restart (:func:`journal_replay.rebuild`): under the
    registry that wrote the journal when the file names it, with the closed loop when the
    file holds its state (so a window held at a barrier stays a window to import)."""
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
    engine, _n = rebuild(registry, writer, snap, rows, loop=loop)
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
            )
        )
    return tuple(out)
