"""Folding a dispatch outcome into the decision row it executes, in memory, before either is
written (the SQLite execution log's flush): most events then write two rows, not three.

Invariant: a folded row reads back (:func:`.reader.stored_log_rows`) as exactly the
decision row and the dispatch row it replaces. An outcome is folded only when nothing would
be lost: its trigger has one causing event and a ``fired_at``, it was logged with its
decisions known (``complete``), and the one run decision row of that event, processor and
date is buffered in the same flush, linked to that trigger, not folded yet, and agrees with
the outcome's dispatch row on every column they share. The folded row is the decision row
(``kind = 'decision'``) with the dispatch-only columns set (``dispatched_at``,
``dispatch_status``, ``attempts``, ``latency_ms``, ``error``) and ``fired_at`` (the dispatch
row's ``decided_at``); the dispatch row's id and ``caused_by`` are derived from the rest
(:func:`~.rows.dispatch_row` builds them from the trigger id, status, attempts,
``dispatched_at`` and the one causing event), so an outcome that may fold has its row built
only if it does not. A repeated outcome (same trigger, status, attempts and
``dispatched_at``) of one folded is dropped: in the same flush here (and an outcome that
repeats a dispatch row kept earlier in the flush is never folded: the first of repeats is
the one stored, folded or not), in a later one by :func:`repeats_folded` (as the unique dispatch index drops a repeated dispatch row); a
later, different outcome of the trigger (a retry, then ``ok``; the same status and attempt
count at another time: a redriven trigger failing again) keeps a row of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from scoperouter.execution_log.api import LOG_TABLE
from scoperouter.execution_log.base import PendingOutcome
from scoperouter.execution_log.row_values import ids_json, iso, iso_epoch
from scoperouter.execution_log.rows import (
    DECISION_COLUMNS,
    LOG_COLUMNS,
    IdList,
)
from scoperouter.processor_registry.compiled import DATE_GRANULARITY

# folded rows by the trigger's fired_at and id: what the fill of an outcome logged after a
# restart and the repeated-outcome check look up; keys arrive in time order
FOLDED_INDEX = (
    f"CREATE INDEX IF NOT EXISTS ix_log_folded ON {LOG_TABLE} (fired_at, trigger_id) "
    "WHERE fired_at IS NOT NULL"
)
_REPEAT_SQL = (
    f"SELECT 1 FROM {LOG_TABLE} INDEXED BY ix_log_folded WHERE fired_at = ? AND trigger_id = ? "
    "AND dispatch_status = ? AND attempts = ? AND dispatched_at = ? AND fired_at IS NOT NULL "
    "LIMIT 1"
)

FOLD_COLUMNS: tuple[str, ...] = (
    "dispatched_at",
    "dispatch_status",
    "attempts",
    "latency_ms",
    "error",
    "fired_at",
)
"""What a folded row holds beyond :data:`DECISION_COLUMNS` (``fired_at``: SQLite only)."""
FOLDED_COLUMNS: tuple[str, ...] = DECISION_COLUMNS + FOLD_COLUMNS
"""A folded row's columns, in the order :func:`fold` builds it."""

# the columns a decision row and a dispatch row of the same trigger must agree on to fold
# (:func:`fold` compares them one by one, the dispatch row's values as
# :func:`~.rows.dispatch_row` computes them, without building that row)
_SHARED = (
    "trigger_id",
    "correlation_id",
    "phase",
    "scope",
    "entity_type",
    "entities_requested",
    "entities_universe",
    "reason",
    "granularity",
    "entity_ids",
    "priority",
)
_D_TRIGGER, _D_CORR, _D_PHASE, _D_SCOPE, _D_ETYPE, _D_REQUESTED, _D_UNIVERSE = (
    DECISION_COLUMNS.index(c) for c in _SHARED[:7]
)
_D_REASON, _D_GRAN, _D_IDS, _D_PRIORITY = (DECISION_COLUMNS.index(c) for c in _SHARED[7:])
# a trigger's fields the fold reads, from its ``__dict__`` in one C call (a pydantic model
# keeps its fields there; its attribute reads take the interpreter's generic path, ~4x the
# cost of a dict lookup)
_trigger_fields = itemgetter(
    "trigger_id",
    "caused_by",
    "processor",
    "scope",
    "entity_type",
    "entity_ids",
    "reason",
    "correlation_id",
    "priority",
    "fired_at",
)
_D_EV, _D_PROC, _D_DATE, _D_ACTION = (
    DECISION_COLUMNS.index(c) for c in ("event_id", "processor", "game_date", "action")
)
_X_EV, _X_AT, _X_TRIGGER, _X_STATUS, _X_ATTEMPTS, _X_CAUSED, _X_DISPATCHED = (
    LOG_COLUMNS.index(c)
    for c in (
        "event_id",
        "decided_at",
        "trigger_id",
        "dispatch_status",
        "attempts",
        "caused_by",
        "dispatched_at",
    )
)


def fold(
    rows: list[tuple[Any, ...]],
    log: Sequence[tuple[Any, ...] | PendingOutcome],
    ids: IdList,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """``rows`` (decision rows in ``DECISION_COLUMNS`` order, already linked) with the
    outcomes of ``log`` folded in where the module's conditions hold, and the dispatch rows
    left, in order (``log`` holds dispatch rows, never folded, and pending outcomes of
    single-cause triggers with a fired_at, logged with their decisions known: built with
    ``ids`` when not folded). Folded rows are ``FOLDED_COLUMNS`` long."""
    where: dict[tuple[Any, Any, Any], int] | None = None
    folded: set[tuple[Any, ...]] = set()  # (trigger id, status, attempts, dispatched_at)
    out_rows = rows
    left: list[tuple[Any, ...]] = []
    rowed: set[tuple[Any, ...]] = set()  # outcomes of the rows kept so far
    at_last: Any = None  # the last dispatch time and fired_at formatted, and their text
    fired_last: Any = None
    at_iso = fired_iso = None
    for x in log:
        if isinstance(x, tuple):  # a row: kept unless it repeats an outcome folded here
            k = (x[_X_TRIGGER], x[_X_STATUS], x[_X_ATTEMPTS], x[_X_DISPATCHED])
            if k not in folded:
                left.append(x)
                rowed.add(k)
            continue
        tid, caused, proc, scope, etype, eids, reason, corr, prio, fired = _trigger_fields(
            x.trigger.__dict__
        )
        at = x.dispatched_at
        if at is not at_last:
            at_last = at
            at_iso = iso_epoch(at) if isinstance(at, float) else iso(at)
        key4 = (tid, x.status, x.attempts, at_iso)
        if key4 in folded:  # a repeat of an outcome folded in this flush
            continue
        if key4 in rowed:  # repeats a row kept above: never folded (the first one stays)
            left.append(x.row(ids))
            continue
        if where is None:  # the linked run decisions, by event, processor and date
            out_rows = list(rows)
            where = {
                (r[_D_EV], r[_D_PROC], r[_D_DATE]): i
                for i, r in enumerate(rows)
                if r[_D_TRIGGER] is not None and r[_D_ACTION] == "run"
            }
        key = (caused[0], proc, x.day)
        i = where.get(key)
        if i is not None:
            r = out_rows[i]
            gran, universe = x.granularity, x.universe
            # every column shared with the dispatch row (rows.dispatch_row's values)
            if (
                r[_D_TRIGGER] == tid
                and r[_D_UNIVERSE] == universe
                and r[_D_PHASE] == x.phase
                and r[_D_GRAN] == gran
                and r[_D_SCOPE] == scope
                and r[_D_REASON] == reason
                and r[_D_CORR] == corr
                and r[_D_PRIORITY] == prio
                and r[_D_ETYPE]
                == (etype or (gran if gran is not None and gran != DATE_GRANULARITY else None))
                and r[_D_REQUESTED] == (len(eids or ()) if scope == "entities" else universe)
                and r[_D_IDS] == (ids(eids) if eids is not None else None)
            ):
                if fired is not fired_last:
                    fired_last = fired
                    fired_iso = iso(fired)
                out_rows[i] = (*r, at_iso, x.status, x.attempts, x.latency_ms, x.error, fired_iso)
                del where[key]  # folded once
                folded.add(key4)
                continue
        left.append(x.row(ids))
    return out_rows, left


def repeats_folded(conn: sqlite3.Connection, x: tuple[Any, ...]) -> bool:
    """Whether dispatch row ``x`` (``LOG_COLUMNS`` order, ids as JSON text) repeats an outcome
    folded by an earlier flush (only an outcome of a single-cause trigger with a fired_at
    can)."""
    at, ev = x[_X_AT], x[_X_EV]
    if at is None or not isinstance(ev, str) or x[_X_CAUSED] != ids_json([ev]):
        return False
    args = (at, x[_X_TRIGGER], x[_X_STATUS], x[_X_ATTEMPTS], x[_X_DISPATCHED])
    return conn.execute(_REPEAT_SQL, args).fetchone() is not None


def runs_of_width(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """``rows`` cut into runs of consecutive rows of the same length (order kept)."""
    out: list[list[tuple[Any, ...]]] = []
    width = -1
    for r in rows:
        if len(r) != width:
            width = len(r)
            out.append([])
        out[-1].append(r)
    return out
