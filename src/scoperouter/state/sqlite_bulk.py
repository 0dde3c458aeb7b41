"""Multi-row statements of the SQLite store's ingest: the lookup of the batch's ids in
``sr_seen``, fired triggers and ``Done`` marks in one statement per table and batch instead
of one per row (the staging of new seen ids: :mod:`scoperouter.state.sqlite_seen`).

Invariant: each function has the effect and the result of its one-row statement run once
per row, in order (the caller holds the transaction). A batch's rows go in one statement
of exactly their count (chunks of :data:`MAX_ROWS` past it; a single mark or staged id
takes the one-row statement), so the texts are at most ``MAX_ROWS`` per kind and all stay
prepared (the store opens its connection with a statement cache larger than their sum).

No statement returns a row per row it writes: sqlite3 steps a statement once per result
row and gives up the GIL around every step, so ``RETURNING`` on an n-row batch meant n
hand-offs of the GIL to the busy event loop and back. The new seen ids are the batch's
minus those a ``SELECT`` finds already there (usually none: one step); the outbox ids
are the ``len(rows)`` ids ending at the insert's ``lastrowid``; a ``Done`` run is one
``UPDATE`` per (attempts, time) -- a ``DoneMany`` -- or one ``VALUES`` join when there are
many such pairs, each changing all its rows or none, and goes again with ``RETURNING``
only when some of its rows are not pending or leased.

Measured on the store alone: at 20 rows per batch the outbox insert goes from ~5 to ~3 us
per row, a ``Done`` mark from ~4.2 to ~2.8; one statement of 20 rows instead of 16 + 4
single ones saves another ~2.5 us per event of the state thread (tools/micro.py B=20:
48 -> 45.5); no per-row result steps ~2 more (B=24: 40.1 -> 38.1), and in ``serve`` at
saturation the state thread's CPU per event 50.1 -> 48.7 us (tools/prof.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any, TypeVar, cast

from scoperouter.state.model import Done, Mark
from scoperouter.state.shared_sql import SQLITE

MAX_ROWS = 64  # rows per statement at most (outbox rows: 4 parameters each, 3 shared)
STATEMENT_CACHE = 640  # the store's sqlite3 statement cache: 8 kinds x MAX_ROWS + the rest
_R = TypeVar("_R")

_OUTBOX_COLS = (
    "INSERT INTO sr_outbox(trigger_id, processor, body, mode, status, claims, created_at, "
    "available_at, lease_owner, lease_until) VALUES "
)
# the SET of shared_sql_text's one-row "done" statement, its values from the VALUES list
_DONE_SET = (
    "status = 'done', attempts = v.column2, finished_at = v.column3, lease_owner = NULL, "
    "lease_until = NULL, error = NULL"
)

OutboxRow = tuple[str, str, bytes]
"""(trigger_id, processor, body) of a fired trigger's outbox row"""


def chunks(n: int) -> list[int]:
    """Sizes covering ``n`` rows in order: full chunks of :data:`MAX_ROWS`, then the rest
    in one."""
    out = [MAX_ROWS] * (n // MAX_ROWS)
    n %= MAX_ROWS
    return [*out, n] if n else out


def parts(rows: Sequence[_R]) -> Iterator[Sequence[_R]]:
    """``rows`` cut in order into the chunks of :func:`chunks`."""
    at = 0
    for size in chunks(len(rows)):
        yield rows[at : at + size]
        at += size


def _marks(n: int) -> str:
    return ", ".join(["?"] * n)


@cache
def seen_known(n: int) -> str:
    """The ``SELECT`` of those of ``n`` ids that ``sr_seen`` holds."""
    return f"SELECT event_id FROM sr_seen WHERE event_id IN ({_marks(n)})"


@cache
def _outbox_many(n: int) -> str:
    """``n`` outbox rows: their time, owner and lease end bound once (``?1``-``?3``), then
    (trigger_id, processor, body, mode) per row."""
    return _OUTBOX_COLS + ", ".join(
        f"(?{k}, ?{k + 1}, ?{k + 2}, ?{k + 3}, 'leased', 1, ?1, ?1, ?2, ?3)"
        for k in range(4, 4 + 4 * n, 4)
    )


@cache
def _done_many(n: int, returning: bool) -> str:
    """``n`` Done marks in one ``UPDATE``: with ``returning``, the ids of the rows it
    changed; without, it changes either all ``n`` rows or none (the count of the marks'
    rows still pending or leased, a subquery evaluated once, must be ``n``: the ids are
    bound a second time after the ``VALUES``)."""
    sql = (
        "UPDATE sr_outbox SET "
        + _DONE_SET
        + " FROM (VALUES "
        + ", ".join(["(?, ?, ?)"] * n)
        + ") AS v WHERE sr_outbox.id = v.column1 AND sr_outbox.status IN ('pending', 'leased')"
    )
    if returning:
        return sql + " RETURNING sr_outbox.id"
    return (
        sql + f" AND (SELECT count(*) FROM sr_outbox WHERE id IN ({_marks(n)}) "
        f"AND status IN ('pending', 'leased')) = {n}"
    )


def insert_outbox(
    db: sqlite3.Connection,
    rows: Sequence[OutboxRow],
    modes: Sequence[str | None],
    now: float,
    owner: str,
    until: float,
) -> list[int]:
    """Insert fired triggers created and available at ``now``, leased to ``owner`` until
    ``until``, each with its dispatch mode (``modes``, parallel to ``rows``); their outbox
    ids, in ``rows`` order: ``AUTOINCREMENT`` numbers a multi-row
    insert's rows one after the other (each the largest id ever used + 1; the caller's
    transaction is the only writer), so they are the ids ending at the statement's
    ``lastrowid``. The values the rows share are bound once per statement."""
    ids: list[int] = []
    at = 0
    for part in parts(rows):
        params: list[Any] = [now, owner, until]
        for r, mode in zip(part, modes[at : at + len(part)], strict=True):
            params += r
            params.append(mode)
        at += len(part)
        last = db.execute(_outbox_many(len(part)), params).lastrowid
        assert last is not None
        ids += range(last - len(part) + 1, last + 1)
    return ids


@cache
def _done_alike(n: int) -> str:
    """``n`` Done marks of one ``attempts`` and one time (``?1``, ``?2``; the ids after
    them) in one ``UPDATE`` by id that changes every listed row or none: a row neither
    pending nor leased would get a status its ``CHECK`` constraint refuses, which aborts
    the statement (SQLite backs out its changes; the transaction goes on)."""
    return (
        "UPDATE sr_outbox SET status = CASE WHEN status IN ('pending', 'leased') THEN 'done' "
        "ELSE 'not pending or leased' END, "
        + _DONE_SET.replace("status = 'done', ", "")
        .replace("v.column2", "?1")
        .replace("v.column3", "?2")
        + f" WHERE id IN ({_marks(n)})"
    )


def _done_all_alike(db: sqlite3.Connection, part: Sequence[Done]) -> list[bool] | None:
    """Marks of one ``attempts`` and time in one statement (:func:`_done_alike`); per
    mark, True when it changed its row, or None when the statement changed nothing (a row
    done or dead already). It changed every row (the usual case) or, when some do not
    exist, every one that does. Two thirds of the CPU of the ``VALUES`` join and its guard
    subquery (which looks every row up once more), in one statement (a savepoint around a
    plain ``UPDATE`` took two more, each a hand-off of the GIL on the state thread)."""
    n = len(part)
    ids = [m.item_id for m in part]
    try:
        changed = db.execute(_done_alike(n), [part[0].attempts, part[0].at, *ids]).rowcount
    except sqlite3.IntegrityError:  # the CHECK constraint: the statement backed out
        return None
    if changed == n:
        return [True] * n
    there = {r[0] for r in db.execute(_outbox_ids(n), ids).fetchall()}
    return [i in there for i in ids]


@cache
def _outbox_ids(n: int) -> str:
    return f"SELECT id FROM sr_outbox WHERE id IN ({_marks(n)})"


def _done_values(
    db: sqlite3.Connection, part: Sequence[Done], all_or_none: bool = True
) -> list[bool]:
    """Marks in one ``VALUES`` join (:func:`_done_many`), all or nothing; when nothing
    changed (or at once, without ``all_or_none``: a row is known not to change), with
    ``RETURNING`` (per changed row one step)."""
    n = len(part)
    params: list[Any] = []
    for m in part:
        params += (m.item_id, m.attempts, m.at)
    ids = [m.item_id for m in part]
    if all_or_none and db.execute(_done_many(n, False), [*params, *ids]).rowcount:
        return [True] * n
    done = {r[0] for r in db.execute(_done_many(n, True), params).fetchall()}
    return [m.item_id in done for m in part]


ALIKE_ROWS = 8  # Done marks per (attempts, time), on average, that take the alike path


def mark_done(db: sqlite3.Connection, marks: Sequence[Done]) -> list[bool]:
    """Apply ``Done`` marks of distinct rows; per mark, True when it changed its row (it
    was pending or leased). The marks of one ``attempts`` and time (a ``DoneMany``'s: a
    batch delivered at once) go together in :func:`_done_all_alike`, when there are few
    such groups (:data:`ALIKE_ROWS` marks each on average); else all in
    :func:`_done_values`. Distinct rows: the order the marks are applied in changes
    nothing."""
    groups: dict[tuple[int, float], list[int]] = {}
    for k, m in enumerate(marks):
        groups.setdefault((m.attempts, m.at), []).append(k)
    changed: list[bool] = []
    if len(groups) * ALIKE_ROWS > len(marks):  # many small groups: one VALUES join
        for part in parts(marks):
            if len(part) == 1:
                changed.append(SQLITE.mark(db, part[0], ""))
            else:
                changed += _done_values(db, part)
        return changed
    changed = [False] * len(marks)
    for where in groups.values():
        for at in parts(where):
            part = [marks[k] for k in at]
            if len(part) == 1:
                got = [SQLITE.mark(db, part[0], "")]
            else:
                alike = _done_all_alike(db, part)
                got = alike if alike is not None else _done_values(db, part, False)
            for k, c in zip(at, got, strict=True):
                changed[k] = c
    return changed


def apply_marks(db: sqlite3.Connection, marks: Sequence[Mark], owner: str) -> list[bool]:
    """Apply dispatch marks in order, as :meth:`Sql.mark` one by one would: each run of
    ``Done`` marks of distinct rows goes through :func:`mark_done`; per mark, True when it
    changed its row."""
    if all(type(m) is Done for m in marks):
        done = cast("Sequence[Done]", marks)
        if len({m.item_id for m in done}) == len(done):
            return mark_done(db, done)  # one run (the usual case: a batch's deliveries)
    out: list[bool] = []
    run: list[Done] = []
    ids: set[int] = set()
    for m in marks:
        if type(m) is Done and m.item_id not in ids:
            run.append(m)
            ids.add(m.item_id)
            continue
        if run:
            out += mark_done(db, run)
            run, ids = [], set()
        if type(m) is Done:  # the same row again: it starts the next run
            run.append(m)
            ids.add(m.item_id)
        else:
            out.append(SQLITE.mark(db, m, owner))
    if run:
        out += mark_done(db, run)
    return out
