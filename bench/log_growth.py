"""Benchmark: the SQLite execution log's events table as it grows -- the CPU of one flush
per row into a table already holding N events, for each way of keeping an event once:

* ``log``: as the log creates the table now, a unique index on (date, id)
  (``execution_log/sqlite_schema.py``, since stop 45);
* ``id_key``: the ``event_id`` primary key of logs created before stop 45;
* ``none``: no key at all (the floor: what keeping events once costs).

    python bench/log_growth.py [--sizes 100000,1000000,3000000] [--flush-rows 10000]
        [--dates 30]

The table gets the log's pragmas (WAL, ``synchronous=NORMAL``, a 64 MiB cache) and is
filled with production-shaped ids in random order (``bench/daemon.py``'s ``event_id``),
date after date as time passes: the events are spread over ``--dates`` dates, oldest
first, and each probe -- one transaction of ``--flush-rows`` new events (10,000: about a
second of a saturated ``serve``) -- goes to the newest date, as a day's events do. With
``--dates 1`` every event has the same date and the (date, id) index is no better than the
id key. Measured by the thread's own CPU clock. The log's other tables are left out: their
keys grow in time order. Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # daemon.py's production-shaped event ids
from daemon import event_id  # noqa: E402

from scoperouter.execution_log.api import EVENTS_TABLE  # noqa: E402
from scoperouter.execution_log.sqlite_schema import EVENT_COLUMNS, SCHEMA, _migrate  # noqa: E402

LAYOUTS = ("log", "id_key", "none")
INSERT = (
    f"INSERT OR IGNORE INTO {EVENTS_TABLE}({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
)
EVENT_JSON = '{"event_id":"x","source":"nba_raw.nbac_injury_report","pad":"' + "x" * 200 + '"}'
FIRST_DAY = date(2025, 10, 21)


def rows(a: int, b: int, day: date) -> list[tuple[str, ...]]:
    """Events ``a`` to ``b - 1`` of ``day``: an id, a JSON body of about 270 bytes, short
    fields."""
    out = []
    for i in range(a, b):
        row = dict.fromkeys(EVENT_COLUMNS, "2026-12-06")
        row["event_id"], row["event_json"] = event_id(i, "growth"), EVENT_JSON
        row["game_date"] = day.isoformat()
        out.append(tuple(row[c] for c in EVENT_COLUMNS))
    return out


def create(conn: sqlite3.Connection, layout: str) -> None:
    """The events table of ``layout`` (see the module doc)."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-65536")
    if layout == "id_key":
        cols = ", ".join(
            f"{c} TEXT" + (" PRIMARY KEY" if c == "event_id" else "") for c in EVENT_COLUMNS
        )
        conn.execute(f"CREATE TABLE {EVENTS_TABLE} ({cols})")
    conn.executescript(SCHEMA)
    if layout != "none":
        _migrate(conn)  # the log's opening: ix_events_once where there is no id key


def grow(
    path: Path, sizes: list[int], flush_rows: int, layout: str, dates: int = 30
) -> list[dict[str, float]]:
    """Fill the table to each of ``sizes`` (spread over ``dates`` dates of the largest size,
    oldest first) and time one flush of ``flush_rows`` new events of the newest date after
    each."""
    per_day = -(-max(sizes) // dates)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        create(conn, layout)
        n, out = 0, []
        for size in sizes:
            while n < size:
                day = FIRST_DAY + timedelta(days=n // per_day)
                m = min(size, n + 50_000, (n // per_day + 1) * per_day)
                conn.execute("BEGIN")
                conn.executemany(INSERT, rows(n, m, day))
                conn.execute("COMMIT")
                n = m
            newest = FIRST_DAY + timedelta(days=max(0, n - 1) // per_day)
            probe = rows(n, n + flush_rows, newest)
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
    ap.add_argument("--dates", type=int, default=30)
    args = ap.parse_args(argv)
    try:
        sizes = sorted(int(s) for s in args.sizes.split(","))
    except ValueError:
        ap.error("--sizes: comma-separated whole numbers")
    if not sizes or sizes[0] < 0 or args.flush_rows < 1 or args.dates < 1:
        ap.error("--sizes must be >= 0, --flush-rows and --dates >= 1")
    for layout in LAYOUTS:
        with tempfile.TemporaryDirectory() as tmp:
            for r in grow(Path(tmp) / "log.sqlite", sizes, args.flush_rows, layout, args.dates):
                print(
                    f"{layout}: {r['events']:>9,} events over {args.dates} dates, a flush "
                    f"{r['us_per_row']} us per row",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
