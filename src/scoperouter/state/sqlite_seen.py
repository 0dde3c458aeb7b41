"""Seen event ids of the SQLite store: a small append-only staging table in front of
``sr_seen``, folded into it in sorted order every :data:`FOLD_AT` ids.

Invariant: an event id is seen iff it is in ``sr_seen`` or in ``sr_seen_recent`` (never in
both: an id is staged only when neither holds it, and a fold moves every staged row and
empties the staging table in one transaction); :attr:`RecentSeen.ids` is the staging
table's rows (id -> seen_at) as of the last commit, so it never holds :data:`FOLD_AT` ids
or more between transactions, and it is rebuilt from the table at open (after a crash too).

Why: production event ids are random (a run id, ``str(uuid.uuid4())[:8]``,
data_processors/raw/processor_base.py:369), so inserting each batch's ids into
``sr_seen`` (``WITHOUT ROWID``, keyed by the id) dirtied one B-tree leaf page per id,
and every commit wrote those pages to the WAL, which the checkpointer copied again. The
staging table is a rowid table with no index on the id: a batch's ids go on its last
page, and a fold dirties each of ``sr_seen``'s pages once per :data:`FOLD_AT` ids.
Lookups check the in-memory copy of the staging rows, then ``sr_seen``.

Measured (tools/micro.py, the state thread alone, batches of 24, random ids; WAL frames
per commit with checkpoints held off): at 30k seen ids 43 frames and ~55 us/event before,
16 frames and ~43 us/event staged (sorted ids: 21 frames, ~42 us before). A fold writes
each ``sr_seen`` page it touches, about ``min(FOLD_AT, leaf pages)`` per fold: next to a
day of 300k seen ids (~3300 leaves) a fold every 4096 ids left ~29 frames per commit and
~52 us/event (before: 45 frames, ~58), every 16384 ~19 frames and ~45 us/event. A fold
never writes more pages than the ids it moves (before: at least one per id), but in one
longer commit (~25 ms at 30k seen ids, ~45 ms at 300k); the staged ids stay in memory
(~2 MB at 16384).

The caller holds the transaction of :meth:`RecentSeen.admit` and :meth:`RecentSeen.prune`
and calls :meth:`RecentSeen.committed` once it committed; a transaction rolled back
leaves :attr:`RecentSeen.ids` as it was (the next ``admit`` or ``prune`` drops the change
it had staged).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import cache
from typing import Any

from scoperouter.state.sqlite_bulk import parts, seen_known

FOLD_AT = 16384  # staged ids that trigger a fold (~2 MB in memory; see the module docstring)

_RECENT_ONE = "INSERT INTO sr_seen_recent(event_id, seen_at) VALUES (?, ?)"
_FOLD = (
    "INSERT INTO sr_seen(event_id, seen_at) SELECT event_id, seen_at FROM sr_seen_recent "
    "WHERE true ORDER BY event_id ON CONFLICT DO NOTHING"
)
_EMPTY = "DELETE FROM sr_seen_recent"
_PRUNE = "DELETE FROM sr_seen_recent WHERE seen_at < ?"


@cache
def _recent_many(n: int) -> str:
    return "INSERT INTO sr_seen_recent(event_id, seen_at) VALUES " + ", ".join(["(?, ?)"] * n)


@cache
def _stage_unseen(n: int) -> str:
    """Stage those of ``n`` ids (the parameters after the time) that ``sr_seen`` does not
    hold, in their order."""
    return (
        "INSERT INTO sr_seen_recent(event_id, seen_at) SELECT v.column1, ?1 FROM (VALUES "
        + ", ".join(["(?)"] * n)
        + ") AS v WHERE NOT EXISTS (SELECT 1 FROM sr_seen WHERE sr_seen.event_id = v.column1)"
    )


def known_seen(db: sqlite3.Connection, event_ids: Sequence[str]) -> set[str]:
    """Those of ``event_ids`` that ``sr_seen`` holds (one ``SELECT`` per chunk)."""
    known: set[str] = set()
    for part in parts(event_ids):
        known.update(r[0] for r in db.execute(seen_known(len(part)), part).fetchall())
    return known


def stage(db: sqlite3.Connection, event_ids: Sequence[str], now: float) -> None:
    """Append ``event_ids`` to the staging table as seen at ``now``."""
    for part in parts(event_ids):
        if len(part) == 1:
            db.execute(_RECENT_ONE, (part[0], now))
            continue
        params: list[Any] = []
        for eid in part:
            params += (eid, now)
        db.execute(_recent_many(len(part)), params)


def stage_unseen(db: sqlite3.Connection, event_ids: Sequence[str], now: float) -> list[str]:
    """Append those of ``event_ids`` (distinct) that ``sr_seen`` does not hold to the
    staging table as seen at ``now``; those ids, in order. One statement per chunk: when it
    stages every id (the usual case) nothing is read back; else the ids ``sr_seen`` holds
    are looked up (the insert left ``sr_seen`` as it was)."""
    new: list[str] = []
    for part in parts(event_ids):
        n = int(db.execute(_stage_unseen(len(part)), (now, *part)).rowcount)
        if n == len(part):
            new += part
        elif n:
            known = known_seen(db, part)
            new += [e for e in part if e not in known]
    return new


def fold(db: sqlite3.Connection) -> None:
    """Move every staged row into ``sr_seen`` in id order and empty the staging table
    (the caller holds the transaction)."""
    db.execute(_FOLD)
    db.execute(_EMPTY)


class RecentSeen:
    """The staging table's rows in memory, and the steps that keep them equal."""

    __slots__ = ("_change", "fold_at", "ids")

    def __init__(self, db: sqlite3.Connection, fold_at: int = FOLD_AT) -> None:
        if fold_at < 1:
            raise ValueError("fold_at must be at least 1")
        self.fold_at = fold_at
        self.ids: dict[str, float] = {}
        # the change staged by the open transaction: (new ids, their time, folded,
        # prune horizon); applied by committed()
        self._change: tuple[Sequence[str], float, bool, float | None] | None = None
        self.reload(db)

    def reload(self, db: sqlite3.Connection) -> None:
        """Read the staging table's rows again (at open, or when another connection
        committed to the file since this one's last transaction: its staged ids count)."""
        rows = db.execute("SELECT event_id, seen_at FROM sr_seen_recent").fetchall()
        self.ids = {r[0]: float(r[1]) for r in rows}
        self._change = None

    def over(self) -> bool:
        """True when the staging table is due a fold (opened with ``fold_at`` ids or more)."""
        return len(self.ids) >= self.fold_at

    def fold_now(self, db: sqlite3.Connection) -> None:
        """Fold in the caller's transaction (at open, when :meth:`over`)."""
        fold(db)
        self._change = ((), 0.0, True, None)

    def admit(self, db: sqlite3.Connection, event_ids: Sequence[str], now: float) -> set[str]:
        """Remember ``event_ids`` (distinct) as seen at ``now``; the ids not seen before.
        Folds once the staging table would hold :attr:`fold_at` ids."""
        ids = self.ids
        fresh = [e for e in event_ids if e not in ids]
        new = stage_unseen(db, fresh, now) if fresh else fresh
        folded = len(ids) + len(new) >= self.fold_at
        if folded:
            fold(db)
        self._change = (new, now, folded, None)
        return set(new)

    def seen_at(self, event_id: str) -> float | None:
        """The staged time of ``event_id`` (None: look in ``sr_seen``)."""
        return self.ids.get(event_id)

    def prune(self, db: sqlite3.Connection, horizon: float) -> int:
        """Delete staged ids seen before ``horizon``; how many."""
        n = int(db.execute(_PRUNE, (horizon,)).rowcount)
        self._change = ((), 0.0, False, horizon if n else None)
        return n

    def committed(self) -> None:
        """The transaction of the last ``admit``/``prune``/``fold_now`` committed: apply
        its change to :attr:`ids`."""
        change, self._change = self._change, None
        if change is None:
            return
        new, now, folded, horizon = change
        if folded:
            self.ids.clear()
        elif new:
            self.ids.update(dict.fromkeys(new, now))
        if horizon is not None:
            self.ids = {k: v for k, v in self.ids.items() if v >= horizon}
