"""Benchmark: what moving the execution log into a process of its own would cost at the
hand-off -- the one lever left for ``serve``'s saturation throughput that keeps the log's
work off the router's interpreter lock (docs/performance.md, "What the open targets would
take").

    python bench/log_handoff.py [--events 20000] [--batch 24] [--rounds 3] [--json]

The router hands the log thread, per ingest batch, what ``LogBridge.batch`` takes (each
event, its decisions, its JSON) and, per delivery, what ``LogBridge.dispatched_ok`` takes
(row id, trigger, ...): Python objects, which a second process could only receive
serialised. This script builds ``bench/log_thread.py``'s events (the test registry, one run
decision each, one trigger each), then measures on one thread's CPU clock (``time.
thread_time``) ``pickle.dumps`` of every batch's hand-off (the router's side, under its
lock) and ``pickle.loads`` of it (the log process's side), per event, min / median / max
over ``--rounds``, and the bytes per event a pipe would carry. The pipe's own writes and
reads, and the log's work itself, come on top.

Invariant: the hand-off pickled is exactly what the daemon hands the log thread (the same
tuple shapes), so the figure is a lower bound of the split's cost. Prints figures only;
nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "runtime"))  # the test registry/relations generator
sys.path.insert(0, str(REPO / "bench"))  # log_thread.py's events
from log_thread import event_and_trigger, event_ids  # noqa: E402
from runtime_support import write_registry  # noqa: E402

from scoperouter.processor_registry.loader import load_config  # noqa: E402

# a batch's hand-off: LogBridge.batch's (event, decisions, trigger id, JSON) per event, then
# LogBridge.dispatched_ok's (row id, trigger, body, attempts before, created) per trigger
Handoff = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def handoffs(events: int, batch: int) -> list[Handoff]:
    """The hand-offs of ``events`` events in batches of ``batch``."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(write_registry(Path(tmp) / "cfg"))
    reg, rel = cfg.registry, cfg.relations
    id_of, fired = event_ids("random"), datetime.now(UTC)
    out: list[Handoff] = []
    for k in range(0, events, batch):
        made = [
            event_and_trigger(reg, rel, i, id_of(i), fired)
            for i in range(k, min(k + batch, events))
        ]
        decided = [(ev, tuple(ds), None, js) for ev, ds, js, _t in made]
        delivered = [(i, t, None, 0, 0.0) for i, (*_rest, t) in enumerate(made, k)]
        out.append((decided, delivered))
    return out


def one_round(items: list[Handoff]) -> dict[str, float]:
    """CPU ms per event to pickle, then unpickle, every hand-off; bytes per event."""
    n = sum(len(d) for d, _ in items)
    t0 = time.thread_time()
    blobs = [pickle.dumps(h, pickle.HIGHEST_PROTOCOL) for h in items]
    t1 = time.thread_time()
    got = 0
    for b in blobs:  # taken and dropped one at a time, as a log process would
        got += len(pickle.loads(b)[0])
    t2 = time.thread_time()
    assert got == n  # what was sent arrives
    return {
        "dumps_ms_per_event": 1000 * (t1 - t0) / n,
        "loads_ms_per_event": 1000 * (t2 - t1) / n,
        "bytes_per_event": sum(map(len, blobs)) / n,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if min(args.events, args.batch, args.rounds) < 1:
        ap.error("--events, --batch and --rounds must be at least 1")
    items = handoffs(args.events, args.batch)
    rounds = [one_round(items) for _ in range(args.rounds)]
    summary = {
        k: {
            "min": round(min(r[k] for r in rounds), 4),
            "median": round(statistics.median(r[k] for r in rounds), 4),
            "max": round(max(r[k] for r in rounds), 4),
        }
        for k in rounds[0]
    }
    if args.json:
        print(json.dumps({"events": args.events, "batch": args.batch, **summary}))
    else:
        for k, v in summary.items():
            print(f"{k}: {v['median']} (min {v['min']}, max {v['max']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
