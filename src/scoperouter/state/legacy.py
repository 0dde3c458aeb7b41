"""Import the state of the snapshot + journal store (``runtime/store.py``) into a
:class:`~scoperouter.state.api.StateStore`, once, at the first start after an upgrade.

Invariant: the windows imported are exactly the ones the old daemon would have restored
(its snapshot, then every journaled ``add``/``due``/``flush`` replayed on the pure
:class:`~scoperouter.router.windows.WindowBook`, triggers re-fired by the replay ignored:
they were committed with the journal row that fired them); seen ids keep their time,
pending triggers stay pending with their attempts, dead letters are kept. The target store
takes the import only while it is empty, so running it again changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.models import parse_duration
from scoperouter.router.decisions import Decision
from scoperouter.router.windows import WindowBook
from scoperouter.state.model import DeadLetterIn, WindowState


@dataclass(frozen=True, slots=True)
class PendingTrigger:
    trigger_id: str
    processor: str
    body: bytes
    attempts: int
    created_at: float


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
        row = db.execute("SELECT snapshot FROM window_snapshot WHERE id = 1").fetchone()
        book = WindowBook.restore(registry, json.loads(row[0])) if row else WindowBook(registry)
        for op, now, event, decision in db.execute(
            "SELECT op, now, event, decision FROM window_journal ORDER BY seq"
        ):
            if op == "add":
                book.add(
                    Event.model_validate_json(event), Decision.model_validate_json(decision), now
                )
            elif op == "due":
                book.due(now)
            elif op == "flush":
                book.flush(now)
        seen = tuple(db.execute("SELECT event_id, seen_at FROM seen ORDER BY event_id"))
        pending = tuple(
            PendingTrigger(t, p, b.encode() if isinstance(b, str) else bytes(b), a, c)
            for t, p, b, a, c in db.execute(
                "SELECT trigger_id, processor, body, attempts, created_at FROM triggers "
                "WHERE status = 'pending' ORDER BY id"
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
    return LegacyState(seen, _windows(book, registry), pending, letters)


def _windows(book: WindowBook, registry: CompiledRegistry) -> tuple[WindowState, ...]:
    d = registry.spec.defaults
    out = []
    for item in book.snapshot()["windows"]:  # type: ignore[attr-defined]
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
