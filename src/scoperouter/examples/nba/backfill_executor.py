"""Backfill runs on the reference pipeline: one (processor, date) run = the reference
processor at date scope on the warehouse, committed with a journal row.

Invariant: a run's rows and its journal row (``_backfill_journal``: backfill id,
processor, date, attempt, pid) commit in one SQLite transaction, so the journal is an
exact record of which runs wrote -- the resume test counts it.

The warehouse can live in a file (:func:`save_warehouse` / :func:`open_warehouse`) so a
backfill in another process (``scoperouter backfill --executor reference``) can run on it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from scoperouter.backfill.executor import RunOutcome
from scoperouter.examples.nba.processors import BY_NAME, PROCESSORS, run
from scoperouter.examples.nba.warehouse import RAW_TABLES, Warehouse

Fail = Callable[[str, date, int], bool]  # (processor, day, attempt) -> inject a failure

_JOURNAL = (
    "CREATE TABLE IF NOT EXISTS _backfill_journal (backfill_id TEXT, processor TEXT, "
    "day TEXT, attempt INTEGER, pid INTEGER)"
)


class ReferenceExecutor:
    """Runs reference processors in-process (synchronously: the warehouse is one SQLite
    connection). ``fail`` injects failures before a run writes anything."""

    def __init__(self, wh: Warehouse, *, fail: Fail | None = None) -> None:
        self.wh = wh
        self.fail = fail
        wh.conn.execute(_JOURNAL)
        wh.conn.commit()

    async def execute(
        self, processor: str, day: date, *, backfill_id: str, attempt: int
    ) -> RunOutcome:
        proc = BY_NAME.get(processor)
        if proc is None:
            return RunOutcome(False, error=f"no reference processor {processor!r}")
        if self.fail is not None and self.fail(processor, day, attempt):
            return RunOutcome(False, error="injected failure")
        t0 = time.perf_counter()
        try:
            res = run(self.wh, proc, day, None)
            self.wh.conn.execute(
                "INSERT INTO _backfill_journal VALUES (?, ?, ?, ?, ?)",
                (backfill_id, processor, day.isoformat(), attempt, os.getpid()),
            )
            self.wh.conn.commit()
        except Exception as exc:
            self.wh.conn.rollback()
            return RunOutcome(False, error=f"{type(exc).__name__}: {exc}"[:500])
        return RunOutcome(True, rows=res.rows, seconds=time.perf_counter() - t0)


def journal(wh: Warehouse) -> list[tuple[str, str, str, int, int]]:
    wh.conn.execute(_JOURNAL)
    return [
        (str(a), str(b), str(c), int(d), int(e))
        for a, b, c, d, e in wh.conn.execute("SELECT * FROM _backfill_journal ORDER BY rowid")
    ]


def save_warehouse(wh: Warehouse, path: Path) -> None:
    """Write ``wh`` (tables and rosters) to a SQLite file."""
    wh.conn.commit()
    if path.exists():
        path.unlink()
    dst = sqlite3.connect(str(path))
    wh.conn.backup(dst)
    dst.execute("CREATE TABLE IF NOT EXISTS _rosters (team TEXT, players TEXT)")
    dst.executemany(
        "INSERT INTO _rosters VALUES (?, ?)",
        ((t, json.dumps(list(ps))) for t, ps in sorted(wh.rosters.items())),
    )
    dst.commit()
    dst.close()


def open_warehouse(path: Path) -> Warehouse:
    """A warehouse over the file :func:`save_warehouse` wrote (changes commit to it)."""
    conn = sqlite3.connect(str(path))
    rosters = {str(t): tuple(json.loads(ps)) for t, ps in conn.execute("SELECT * FROM _rosters")}
    return Warehouse((*RAW_TABLES, *(p.table for p in PROCESSORS)), rosters, conn=conn)


def corrupt_phase3(wh: Warehouse, days: tuple[date, ...], start: date, end: date) -> None:
    """Make Phase 3 wrong on [start, end] (a numeric column doubled plus one) and cascade
    it through phases 4-6 on every date of ``days``: a bad deploy that ran for a while."""
    from scoperouter.examples.nba.processors import ORDER

    for name in ORDER:
        p = BY_NAME[name]
        if p.phase == 3:
            col = next(c for c in p.table.columns if c not in _NOT_NUMERIC)
            wh.conn.execute(
                f'UPDATE "{p.table.table}" SET "{col}" = COALESCE("{col}", 0) * 2 + 1 '
                "WHERE game_date BETWEEN ? AND ?",
                (start.isoformat(), end.isoformat()),
            )
    for name in ORDER:
        p = BY_NAME[name]
        if p.phase > 3:
            for d in days:
                wh.replace(p.publishes, d, None, p.compute(wh, d, None))
    wh.conn.commit()


_NOT_NUMERIC = frozenset(
    {"status", "opponent", "home", "player_status", "injury_status", "dnp_reason", "injury_reason"}
)


def main(argv: list[str] | None = None) -> int:
    """``build FILE [--corrupt START END]`` writes the default season's warehouse (its
    relation data is the repository's data/relations); ``check FILE`` counts the rows that
    differ from a full recompute from the raw tables."""
    import argparse

    from scoperouter.examples.nba.processors import OUTPUT_SOURCES, build_all, new_warehouse
    from scoperouter.examples.nba.season import generate_season
    from scoperouter.examples.nba.warehouse import diff_dumps

    ap = argparse.ArgumentParser(prog="python -m scoperouter.examples.nba.backfill_executor")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the default season's warehouse to FILE")
    b.add_argument("file", type=Path)
    b.add_argument("--corrupt", nargs=2, type=date.fromisoformat, metavar=("START", "END"))
    c = sub.add_parser("check", help="rows of FILE that differ from a full recompute")
    c.add_argument("file", type=Path)
    args = ap.parse_args(argv)
    season = generate_season()
    if args.cmd == "build":
        wh = new_warehouse(season.rosters)
        wh.load_season(season)
        build_all(wh, season.dates())
        if args.corrupt:
            corrupt_phase3(wh, season.dates(), *args.corrupt)
        save_warehouse(wh, args.file)
        print(f"{args.file}: season {season.season_start} .. {season.game_date}")
        return 0
    wh = open_warehouse(args.file)
    fresh = wh.copy()
    build_all(fresh, season.dates())
    diff = diff_dumps(fresh.dump(OUTPUT_SOURCES), wh.dump(OUTPUT_SOURCES))
    for source, keys in diff.items():
        print(f"{source}: {len(keys)} wrong rows")
    print("identical to a full recompute" if not diff else f"{len(diff)} tables differ")
    return 0 if not diff else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
