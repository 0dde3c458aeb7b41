"""The rows of ``sr_windows`` as :class:`~scoperouter.state.model.WindowState` values, for
both stores (SQLite keeps ids as JSON text and the day as ISO text, PostgreSQL as
``text[]`` and ``date``), and the SQLite statements that write one row whole.

Invariant: a window written by a store's ``*_params`` and read back by its ``*_window``
is the same value (tests/state/test_state_contract.py round-trips every field); nothing
here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from scoperouter.state.core import ids_from_json, ids_json
from scoperouter.state.merge import union_causes
from scoperouter.state.model import WindowState

# ---------------------------------------------------------------------- SQLite
SQLITE_WINDOW_COLS = (
    "processor, day, opened_at, last_at, deadline, entity_ids, entity_type, date_reason, "
    "caused_by, correlation_id, priority, quiet_s, max_wait_s, max_entities, caused_more, live"
)


def sqlite_window(row: Sequence[Any]) -> WindowState:
    return WindowState(
        processor=row[0],
        day=date.fromisoformat(row[1]),
        opened_at=row[2],
        last_at=row[3],
        entity_ids=ids_from_json(row[5]),
        entity_type=row[6],
        date_reason=row[7],
        caused_by=ids_from_json(row[8]) or frozenset(),
        correlation_id=row[9],
        priority="critical" if row[10] == "critical" else "normal",
        quiet_s=row[11],
        max_wait_s=row[12],
        max_entities=row[13],
        caused_more=row[14],
        live=bool(row[15]),
    )


def sqlite_window_params(w: WindowState) -> tuple[Any, ...]:
    return (
        w.processor,
        w.day.isoformat(),
        w.opened_at,
        w.last_at,
        w.deadline,
        ids_json(w.entity_ids),
        w.entity_type,
        w.date_reason,
        ids_json(w.caused_by),
        w.correlation_id,
        w.priority,
        w.quiet_s,
        w.max_wait_s,
        w.max_entities,
        w.caused_more,
        int(w.live),
    )


# a window row written whole (every column of SQLITE_WINDOW_COLS): replacing the key's row
# (ingest, hand-over) or, into an empty store, a new one (import)
_SQLITE_WINDOW_VALUES = "VALUES (" + ", ".join("?" * len(SQLITE_WINDOW_COLS.split(","))) + ")"
SQLITE_PUT_WINDOW = (
    f"INSERT OR REPLACE INTO sr_windows({SQLITE_WINDOW_COLS}) {_SQLITE_WINDOW_VALUES}"
)
SQLITE_NEW_WINDOW = f"INSERT INTO sr_windows({SQLITE_WINDOW_COLS}) {_SQLITE_WINDOW_VALUES}"


# ---------------------------------------------------------------------- PostgreSQL
PG_WINDOW_COLS = (
    "processor, day, opened_at, last_at, entity_ids, entity_type, date_reason, "
    "caused_by, correlation_id, priority, quiet_s, max_wait_s, max_entities, caused_more, live"
)


def pg_ids(value: list[str] | None) -> frozenset[str] | None:
    """An ``entity_ids`` column value (``text[]``) as a window's ids (None: full date)."""
    return None if value is None else frozenset(value)


def pg_window(row: Sequence[Any]) -> WindowState:
    return WindowState(
        processor=row[0],
        day=row[1],
        opened_at=row[2],
        last_at=row[3],
        entity_ids=pg_ids(row[4]),
        entity_type=row[5],
        date_reason=row[6],
        caused_by=frozenset(row[7] or ()),
        correlation_id=row[8],
        priority="critical" if row[9] == "critical" else "normal",
        quiet_s=row[10],
        max_wait_s=row[11],
        max_entities=row[12],
        caused_more=row[13],
        live=bool(row[14]),
    )


def pg_with_stored(w: WindowState, ids: frozenset[str], more: int) -> WindowState:
    """Fired window ``w`` (this batch's causes) with its stored row's causes added back."""
    causes, total = union_causes(w.caused_by, w.caused_more, ids, more)
    return replace(w, caused_by=causes, caused_more=total)


def pg_update_params(w: WindowState, continues: bool) -> dict[str, Any]:
    """``postgres._UPDATE``'s parameters: ``continues`` appends ``w``'s causes to the stored row's
    (the row is re-capped in SQL, ids in code-point order as Python sorts them)."""
    return {
        "opened_at": w.opened_at,
        "last_at": w.last_at,
        "deadline": w.deadline,
        "entity_ids": None if w.entity_ids is None else sorted(w.entity_ids),
        "entity_type": w.entity_type,
        "date_reason": w.date_reason,
        "correlation_id": w.correlation_id,
        "priority": w.priority,
        "quiet_s": w.quiet_s,
        "max_wait_s": w.max_wait_s,
        "max_entities": w.max_entities,
        "cont": continues,
        "causes": sorted(w.caused_by),
        "more": w.caused_more,
        "live": w.live,
        "processor": w.processor,
        "day": w.day,
    }
