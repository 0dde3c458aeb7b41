"""Benchmark: CPU of ``serve``'s state thread per event, without the daemon around it.

    python bench/state_thread.py [--events 20000] [--batch 24] [--rounds 3] [--profile N]
        [--json]

Runs :func:`~scoperouter.runtime.shared_ingest.process_shared_batch` -- what the state
thread does with each ingest batch: normalised events in, planning, window contributions,
one SQLite transaction (dedupe, window merge, fired triggers as outbox rows) -- over
``bench/daemon.py``'s events (each fires one trigger), ``--batch`` events per transaction
(24: about what a saturated ``serve`` batches with 64 producers), on a fresh SQLite state
store with ``serve``'s defaults (``sync: full``), with the garbage collector as ``serve``
sets it once started. It leaves out what the daemon adds around it: the hand-off from and
to the event loop, and the dispatcher's ``Done`` marks (written by a later transaction).

Reports the thread's own CPU clock per event (``time.thread_time``: the kernel's work for
its ``fdatasync`` included, the wait for the disk not), min / median / max over
``--rounds``. ``--profile N`` instead prints the N most expensive functions by own time
under ``cProfile`` (which about doubles the cost; read it for shares, not for figures).
Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # daemon.py's events
sys.path.insert(0, str(HERE.parent / "tests" / "runtime"))  # the test registry
from daemon import event  # noqa: E402
from runtime_support import write_registry  # noqa: E402

from scoperouter.processor_registry.loader import load_config  # noqa: E402
from scoperouter.router.planner import planner_for  # noqa: E402
from scoperouter.runtime.daemon import GC_GEN0_THRESHOLD  # noqa: E402
from scoperouter.runtime.ingest import Item  # noqa: E402
from scoperouter.runtime.intake import parse_inbound  # noqa: E402
from scoperouter.runtime.modes import fire_modes  # noqa: E402
from scoperouter.runtime.outcomes import Inbound  # noqa: E402
from scoperouter.runtime.shared_ingest import StateMarks, process_shared_batch  # noqa: E402
from scoperouter.state import open_state_store  # noqa: E402
from scoperouter.state.model import StoreOptions  # noqa: E402


def one_round(events: int, batch: int, tag: str, profile: int = 0) -> dict[str, Any]:
    """One fresh store, ``events`` events in batches of ``batch``: the thread's CPU per event
    (or the profile's text with ``profile``) and what the batches produced."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(write_registry(Path(tmp) / "cfg"))
        reg, rel = cfg.registry, cfg.relations
        store = open_state_store(
            f"sqlite:///{tmp}/state.sqlite",
            # as serve's SharedRouter sets it: each fired trigger stored with its mode
            StoreOptions(
                owner="bench", lease_s=30.0, date_field=reg.date_field, modes=fire_modes(reg)
            ),
        )
        planner = planner_for(reg)
        items = []
        for i in range(events):
            inbound = Inbound(origin="http", data=event(i, tag))
            items.append(Item(inbound, parse_inbound(inbound, reg), None))  # type: ignore[arg-type]
        gc.collect()
        gc.freeze()  # as serve does once started (runtime/daemon_run.py)
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_GEN0_THRESHOLD, *thresholds[1:])
        fired = accepted = 0
        prof = cProfile.Profile() if profile else None
        try:
            t0 = time.thread_time()
            if prof is not None:
                prof.enable()
            for k in range(0, events, batch):
                res, _deadline = process_shared_batch(
                    items[k : k + batch],
                    state=store,
                    planner=planner,
                    registry=reg,
                    relations=rel,
                    as_of=None,
                    now=time.time(),
                    marks=StateMarks(),
                )
                fired += len(res.fired)
                accepted += sum(1 for _i, o in res.outcomes if o.status == "accepted")
            if prof is not None:
                prof.disable()
            cpu = time.thread_time() - t0
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            store.close()
    out: dict[str, Any] = {
        "cpu_ms_per_event": round(cpu / events * 1000, 4),
        "accepted": accepted,
        "fired": fired,
    }
    if prof is not None:
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(profile)
        out["profile"] = text.getvalue()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", type=int, default=0, metavar="N")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.events < 1 or args.batch < 1 or args.rounds < 1:
        ap.error("--events, --batch and --rounds must be at least 1")
    if args.profile:
        print(one_round(args.events, args.batch, "p", args.profile)["profile"])
        return 0
    rounds = [one_round(args.events, args.batch, f"r{i}") for i in range(args.rounds)]
    cpu = [r["cpu_ms_per_event"] for r in rounds]
    report = {
        "events": args.events,
        "batch": args.batch,
        "rounds": args.rounds,
        "state_thread_ms_per_event": {
            "min": min(cpu),
            "median": statistics.median(cpu),
            "max": max(cpu),
        },
        "accepted": [r["accepted"] for r in rounds],
        "fired": [r["fired"] for r in rounds],
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for k, v in report.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
