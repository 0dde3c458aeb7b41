"""Benchmark: the SQLite execution log's events table as it grows -- the CPU of one flush
per row, into a table already holding N events, with the table's ``event_id`` primary key
(as the log creates it) and without it (what dropping the key would cost).

    python bench/log_growth.py [--sizes 100000,1000000,3000000] [--flush-rows 10000]

The table is created by the log's own schema (``execution_log/sqlite_schema.py``), with the
log's pragmas (WAL, ``synchronous=NORMAL``, a 64 MiB cache), and filled with
production-shaped ids in random order (``bench/daemon.py``'s ``event_id``); each probe is
one transaction of ``--flush-rows`` new events (10,000: about a second of a saturated
``serve``), measured by the thread's own CPU clock. The other tables of the log are left
out: their keys grow in time order. Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # daemon.py's production-shaped event ids
from daemon import event_id  # noqa: E402

from scoperouter.execution_log.api import EVENTS_TABLE  # noqa: E402
from scoperouter.execution_log.sqlite_schema import EVENT_COLUMNS, SCHEMA  # noqa: E402

INSERT = (
    f"INSERT OR IGNORE INTO {EVENTS_TABLE}({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
)
EVENT_JSON = '{"event_id":"x","source":"nba_raw.nbac_injury_report","pad":"' + "x" * 200 + '"}'


def rows(a: int, b: int) -> list[tuple[str, ...]]:
    """Events ``a`` to ``b - 1``: an id, a JSON body of about 270 bytes, short fields."""
    out = []
    for i in range(a, b):
        row = dict.fromkeys(EVENT_COLUMNS, "2026-12-06")
        row["event_id"], row["event_json"] = event_id(i, "growth"), EVENT_JSON
        out.append(tuple(row[c] for c in EVENT_COLUMNS))
    return out


def grow(path: Path, sizes: list[int], flush_rows: int, keyed: bool) -> list[dict[str, float]]:
    """Fill the table to each of ``sizes`` and time one flush of ``flush_rows`` after each."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")
        conn.executescript(SCHEMA)
        if not keyed:
            conn.execute(f"DROP TABLE {EVENTS_TABLE}")
            cols = ", ".join(f"{c} TEXT" for c in EVENT_COLUMNS)
            conn.execute(f"CREATE TABLE {EVENTS_TABLE} ({cols})")
        n, out = 0, []
        for size in sizes:
            while n < size:
                m = min(size, n + 50_000)
                conn.execute("BEGIN")
                conn.executemany(INSERT, rows(n, m))
                conn.execute("COMMIT")
                n = m
            probe = rows(n, n + flush_rows)
            t = time.thread_time()
            conn.execute("BEGIN")
            conn.executemany(INSERT, probe)
            conn.execute("COMMIT")
            cpu = time.thread_time() - t
            n += flush_rows
            out.append({"events": size, "us_per_row": round(cpu / flush_rows * 1e6, 2)})
        return out
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="100000,1000000,3000000")
    ap.add_argument("--flush-rows", type=int, default=10_000)
    args = ap.parse_args(argv)
    try:
        sizes = sorted(int(s) for s in args.sizes.split(","))
    except ValueError:
        ap.error("--sizes: comma-separated whole numbers")
    if not sizes or sizes[0] < 0 or args.flush_rows < 1:
        ap.error("--sizes must be >= 0 and --flush-rows >= 1")
    for keyed in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            for r in grow(Path(tmp) / "log.sqlite", sizes, args.flush_rows, keyed):
                what = "event_id key (as the log)" if keyed else "no key"
                print(f"{what}: {r['events']:>9,} events, a flush {r['us_per_row']} us per row")
    return 0


if __name__ == "__main__":
    sys.exit(main())
