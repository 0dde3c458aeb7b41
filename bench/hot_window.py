"""One window that every event joins and that never fires (issue 16: "caused_by grows
without bound in a hot window"), on a state store: the ingest CPU per event of each
slice of ``--slice`` events. Flat slices: a window's row stays bounded (``caused_by``
capped at ``CAUSED_BY_CAP`` ids plus a count); rising slices: each batch rewrites every
cause id the window ever had.

Usage::

    python bench/hot_window.py [--events 20000] [--batch 20] [--slice 2000]
        [--location sqlite:///path | postgresql://...] [--json]

Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from scoperouter.router.window_state import CAUSED_BY_CAP  # noqa: E402
from scoperouter.state import StoreOptions, open_state_store  # noqa: E402
from scoperouter.state.model import Admission, Contribution, IngestBatch  # noqa: E402

T0 = 1_700_000_000.0
DAY = date(2025, 11, 19)


def admission(eid: str) -> Admission:
    """One event joining the hot window (quiet and max_wait far away: it never fires)."""
    c = Contribution(
        "hot", DAY, eid, None, False, "player", ("p1",), "entity_scope",
        1e9, 1e9, 100, "player",
    )  # fmt: skip
    return Admission(eid, (c,))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--slice", type=int, default=2000)
    ap.add_argument("--location", help="a state store location (default: a fresh SQLite file)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    location = args.location or str(Path(tempfile.mkdtemp(prefix="hot-")) / "state.db")
    store = open_state_store(location, StoreOptions(owner="bench"), sync="normal")
    slices: list[float] = []
    t, done = time.thread_time(), 0
    for k in range(0, args.events, args.batch):
        ids = [f"e{i:07d}" for i in range(k, min(k + args.batch, args.events))]
        store.ingest(IngestBatch(admissions=tuple(admission(e) for e in ids)), T0 + k / 1000)
        done += len(ids)
        if done % args.slice == 0:
            now = time.thread_time()
            slices.append(round((now - t) * 1e6 / args.slice, 1))
            t = now
    [w] = store.open_windows()
    store.close()
    out = {
        "events": args.events,
        "batch": args.batch,
        "us_per_event_by_slice": slices,
        "last_over_first": round(slices[-1] / slices[0], 2),
        "stored_ids": len(w.caused_by),
        "counted_beyond": getattr(w, "caused_more", 0),  # 0 before the cap
        "cap": CAUSED_BY_CAP,
    }
    if args.json:
        print(json.dumps(out))
        return
    print(f"ingest CPU per event, each {args.slice} events (us): {slices}")
    print(f"last slice / first: {out['last_over_first']}x; the window row holds "
          f"{out['stored_ids']} ids and counts {out['counted_beyond']} more")  # fmt: skip


if __name__ == "__main__":
    main()
