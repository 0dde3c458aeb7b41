"""Backfill plans and their progress in one SQLite file (``<state-dir>/backfills.sqlite``).

Invariants:

* A backfill is stored once per resume key (request + registry digest): starting the same
  command again finds it and continues; its plan (runs and edges) is the stored one, never
  re-planned, so a resumed backfill does exactly the rest of the original plan. A backfill
  taken off its key (:meth:`BackfillStore.retire`, ``--rerun``) keeps its record and id;
  the same request then plans a new backfill.
* Every state change of a run is committed before the runner acts on the next one (WAL,
  ``synchronous=FULL``): after a crash, a run stored ``done`` did complete. A run stored
  ``running`` may or may not have; resume runs it again (runs are date-scope replaces,
  idempotent).
* A backfill's status is ``planned`` until a process runs it; only the holder of its run
  lock stores ``running``. Stored ``running`` with the lock free means its process died
  (SIGKILL, OOM kill) or its run ended on an internal error: :meth:`BackfillStore.reconcile`
  stores it ``interrupted`` (its runs in flight back to ``waiting``), so ``running`` is
  never reported for a backfill nothing runs. Every status: ``planned``, ``running``, ``done``, ``failed``, ``stopped`` (its
  process stopped it), ``interrupted``.
* A backfill is stored ``running`` at its start only under the store's start lock
  (:meth:`BackfillStore.starting`), held by one process at a time, so a process checking
  the others it would overlap (:mod:`scoperouter.backfill.claim`) sees every one started
  before it.
* A run's mode (``live``: sent to its target; ``shadow``: done at once, sent nothing) is
  stored with its first attempt, in the transaction that stores it ``running`` (before
  anything is sent), and never changed: every later attempt -- a retry, a resume after a
  stop, a crash or a restart that flipped its processor's mode -- is sent by it. A run not
  attempted yet has none (nor has one stored before the column): it takes its processor's
  mode when it is first attempted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from scoperouter.backfill.plan import BackfillPlan, Dep, PlannedRun, Request
from scoperouter.backfill.schedule import State, Transition
from scoperouter.state.sqlite_schema import add_columns

SCHEMA = """
CREATE TABLE IF NOT EXISTS backfills (
  id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, request TEXT NOT NULL, as_of TEXT NOT NULL,
  processors TEXT NOT NULL, last_day TEXT NOT NULL, created_at REAL NOT NULL,
  status TEXT NOT NULL DEFAULT 'planned', updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS backfill_runs (
  backfill_id TEXT NOT NULL, idx INTEGER NOT NULL, processor TEXT NOT NULL, day TEXT NOT NULL,
  phase INTEGER NOT NULL, deps TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'waiting',
  attempts INTEGER NOT NULL DEFAULT 0, error TEXT, rows INTEGER, seconds REAL,
  completions INTEGER NOT NULL DEFAULT 0, skipped TEXT, mode TEXT,
  PRIMARY KEY (backfill_id, idx)
);
"""


class AlreadyRunning(RuntimeError):
    """Another process holds the backfill's run lock."""


@dataclass(frozen=True)
class StoredRun:
    index: int
    processor: str
    day: date
    state: State
    attempts: int
    error: str | None
    rows: int | None
    seconds: float | None
    completions: int  # how many times it was recorded done (resume proof: never above 1)
    skipped: str | None = None  # done without work, and why ("shadow": sent nothing)
    # the mode of its first attempt ("live" / "shadow"), every later one is sent by; None:
    # not attempted yet (or only before the column): the mode at its next send
    mode: str | None = None


class BackfillStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        # a store created before the columns (its runs' mode NULL)
        add_columns(self.db, "backfill_runs", {"skipped": "skipped TEXT", "mode": "mode TEXT"})

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ plans
    def find(self, key: str) -> str | None:
        row = self.db.execute("SELECT id FROM backfills WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def create(self, key: str, plan: BackfillPlan, now: float) -> str:
        bid = uuid.uuid4().hex[:12]
        with self._tx():
            self.db.execute(
                "INSERT INTO backfills(id, key, request, as_of, processors, last_day, created_at,"
                " updated_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'planned')",
                (
                    bid,
                    key,
                    json.dumps(plan.request.to_json()),
                    plan.as_of.isoformat(),
                    json.dumps(list(plan.processors)),
                    json.dumps({k: v.isoformat() for k, v in plan.last_day.items()}),
                    now,
                    now,
                ),
            )
            self.db.executemany(
                "INSERT INTO backfill_runs(backfill_id, idx, processor, day, phase, deps)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (
                        bid,
                        i,
                        r.processor,
                        r.day.isoformat(),
                        r.phase,
                        json.dumps(
                            [[d.upstream, d.lo.isoformat(), d.hi.isoformat()] for d in r.deps]
                        ),
                    )
                    for i, r in enumerate(plan.runs)
                ),
            )
        return bid

    def retire(self, bid: str, now: float) -> None:
        """Take ``bid`` off its resume key (its record, runs and ``GET`` by id stay): the
        same request plans a new backfill from then on (``--rerun``)."""
        self.db.execute(
            "UPDATE backfills SET key = key || ' retired:' || id, updated_at = ? WHERE id = ?",
            (now, bid),
        )

    def load_plan(self, bid: str) -> BackfillPlan:
        row = self.db.execute(
            "SELECT request, as_of, processors, last_day FROM backfills WHERE id = ?", (bid,)
        ).fetchone()
        if row is None:
            raise KeyError(bid)
        runs = tuple(
            PlannedRun(
                p,
                date.fromisoformat(d),
                ph,
                tuple(
                    Dep(u, date.fromisoformat(lo), date.fromisoformat(hi))
                    for u, lo, hi in json.loads(deps)
                ),
            )
            for p, d, ph, deps in self.db.execute(
                "SELECT processor, day, phase, deps FROM backfill_runs WHERE backfill_id = ?"
                " ORDER BY idx",
                (bid,),
            )
        )
        return BackfillPlan(
            request=Request.from_json(json.loads(row[0])),
            as_of=date.fromisoformat(row[1]),
            processors=tuple(json.loads(row[2])),
            last_day={k: date.fromisoformat(v) for k, v in json.loads(row[3]).items()},
            runs=runs,
            index={r.key: i for i, r in enumerate(runs)},
        )

    def ids(self) -> list[str]:
        return [str(r[0]) for r in self.db.execute("SELECT id FROM backfills ORDER BY created_at")]

    def status(self, bid: str) -> str | None:
        row = self.db.execute("SELECT status FROM backfills WHERE id = ?", (bid,)).fetchone()
        return str(row[0]) if row else None

    def set_status(self, bid: str, status: str, now: float) -> None:
        self.db.execute(
            "UPDATE backfills SET status = ?, updated_at = ? WHERE id = ?", (status, now, bid)
        )

    def reconcile(self, bid: str, now: float) -> str | None:
        """The backfill's status, made truthful first: stored ``running`` while nobody holds
        its run lock, it is stored ``interrupted`` and its runs stored ``running`` go back to
        ``waiting`` (error ``interrupted``, attempts kept), as a stop leaves them. The lock is
        held while this is written, so a process starting the backfill at that instant is
        refused (:class:`AlreadyRunning`) rather than marked interrupted while it runs."""
        st = self.status(bid)
        if st != "running":
            return st
        fd = os.open(self._lock_path(bid), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return "running"  # its process holds the lock: it runs
            with self._tx():
                self.db.execute(
                    "UPDATE backfills SET status = 'interrupted', updated_at = ?"
                    " WHERE id = ? AND status = 'running'",
                    (now, bid),
                )
                self.db.execute(
                    "UPDATE backfill_runs SET state = 'waiting', error = 'interrupted'"
                    " WHERE backfill_id = ? AND state = 'running'",
                    (bid,),
                )
        finally:
            os.close(fd)  # releases the lock
        return self.status(bid)

    def reconcile_all(self, now: float) -> list[str]:
        """:meth:`reconcile` every backfill stored ``running``; the ids found interrupted."""
        stored = [
            str(r[0]) for r in self.db.execute("SELECT id FROM backfills WHERE status = 'running'")
        ]
        return [bid for bid in stored if self.reconcile(bid, now) == "interrupted"]

    def live(self, now: float) -> list[str]:
        """The backfills a live process runs now: stored ``running``, and still so after
        :meth:`reconcile` (a dead process's record is stored ``interrupted`` instead)."""
        stored = [
            str(r[0]) for r in self.db.execute("SELECT id FROM backfills WHERE status = 'running'")
        ]
        return [bid for bid in stored if self.reconcile(bid, now) == "running"]

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        """Hold the store's start lock (``flock`` on ``backfills-start.lock`` next to the
        store; blocking: its holders only check and take a run lock, milliseconds). The OS
        drops it when the holder dies."""
        fd = os.open(self.path.parent / "backfills-start.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    # ------------------------------------------------------------------ progress
    def runs(self, bid: str) -> list[StoredRun]:
        return [
            StoredRun(i, p, date.fromisoformat(d), st, a, e, rows, s, c, sk, m)
            for i, p, d, st, a, e, rows, s, c, sk, m in self.db.execute(
                "SELECT idx, processor, day, state, attempts, error, rows, seconds, completions,"
                " skipped, mode FROM backfill_runs WHERE backfill_id = ? ORDER BY idx",
                (bid,),
            )
        ]

    def apply(
        self,
        bid: str,
        transitions: Iterable[Transition],
        *,
        measured: dict[int, tuple[int | None, float]] | None = None,
        skipped: dict[int, str] | None = None,
        modes: dict[int, str] | None = None,
    ) -> None:
        """Persist state changes in one transaction (``measured``: rows and seconds of
        the runs that completed; ``skipped``: why a run completed without work; ``modes``:
        the mode a run is sent in, kept only by a run that has none yet -- its first)."""
        measured = measured or {}
        skipped = skipped or {}
        modes = modes or {}
        with self._tx():
            for t in transitions:
                rows, secs = measured.get(t.index, (None, None))
                self.db.execute(
                    "UPDATE backfill_runs SET state = ?, attempts = ?, error = ?,"
                    " rows = COALESCE(?, rows), seconds = COALESCE(?, seconds),"
                    " completions = completions + ?, skipped = ?, mode = COALESCE(mode, ?)"
                    " WHERE backfill_id = ? AND idx = ?",
                    (
                        t.state,
                        t.attempts,
                        t.error,
                        rows,
                        secs,
                        1 if t.state == "done" else 0,
                        skipped.get(t.index),
                        modes.get(t.index),
                        bid,
                        t.index,
                    ),
                )

    @contextlib.contextmanager
    def running(self, bid: str) -> Iterator[None]:
        """Hold the backfill's run lock (``flock`` on ``backfill-<id>.lock`` next to the
        store) for as long as it runs: a second process running the same backfill gets
        :class:`AlreadyRunning` instead of doing its runs twice. The OS drops the lock when
        the holder dies (SIGKILL included)."""
        fd = os.open(self._lock_path(bid), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                raise AlreadyRunning(f"backfill {bid} is running in process {holder}") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock

    def locked(self, bid: str) -> bool:
        """Whether a process holds the backfill's run lock (:meth:`running`) now."""
        fd = os.open(self._lock_path(bid), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # releases the lock when it was taken
        return False

    def _lock_path(self, bid: str) -> Path:
        return self.path.parent / f"backfill-{bid}.lock"

    def _tx(self) -> _Tx:
        return _Tx(self.db)


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
