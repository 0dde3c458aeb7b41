"""Benchmark: CPU of the execution log's thread per event, as ``serve`` hands it work.

    python bench/log_thread.py [--events 20000] [--batch 64] [--rate 0] [--ok-rows]
        [--serve-gc] [--ids random|sequential] [--json]

``--ids``: the events' ids, shaped like production's and in random order (the default
since stop 45), or ``sat-<i>`` as before; with random ids the events table's key index
costs more as the log grows (``docs/performance.md``).

Drives the daemon's :class:`~scoperouter.runtime.log_bridge.LogBridge` over a
:class:`~scoperouter.execution_log.SqliteExecutionLog` the way the router does: one hand-off
per ingest batch (the events ``bench/daemon.py`` sends, planned against the test registry:
one run decision each) and the dispatch outcome of each event's trigger from the event
loop. ``--rate 0`` hands batches over as fast as the bridge takes them (saturation);
``--rate R`` paces single-event batches at R events/s (each followed by its outcome),
like a quiet daemon. ``--ok-rows`` hands the outcomes over as ``serve``'s dispatcher does:
one :meth:`~scoperouter.runtime.log_bridge.LogBridge.dispatched_ok` per batch, its
triggers fired at the batch's decision time (one shared ``datetime``, as the router's);
without it, one :meth:`~scoperouter.runtime.log_bridge.LogBridge.dispatch` per outcome and
a ``fired_at`` per trigger. ``--serve-gc`` collects garbage as ``serve`` does once started
(the heap so far frozen, the youngest generation collected every ``GC_GEN0_THRESHOLD``
allocations): without it the default thresholds collect often, and the live queue and
buffers make those collections a large, variable share of the figure. Reports the log thread's CPU (its own clock) per event, the
whole run's wall time, the log's bytes per event at rest, its rows per event (a
trigger's outcome folded into its decision row: 1) and the log thread's CPU per event by
stage: building decision rows, taking outcomes, writing (flush), and the bridge's rest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "runtime"))  # the test registry/relations generator
sys.path.insert(0, str(REPO / "bench"))  # daemon.py's production-shaped event ids
from daemon import event_id as daemon_event_id  # noqa: E402
from runtime_support import GAME_DAY, TEAMS, players_of, write_registry  # noqa: E402

from scoperouter.execution_log import SqliteExecutionLog  # noqa: E402
from scoperouter.messages.models import Event, Trigger  # noqa: E402
from scoperouter.processor_registry.loader import load_config  # noqa: E402
from scoperouter.router.planner import plan  # noqa: E402
from scoperouter.runtime.daemon import GC_GEN0_THRESHOLD  # noqa: E402
from scoperouter.runtime.log_bridge import LogBridge  # noqa: E402

PLAYERS = [p for t in TEAMS for p in players_of(t)]
T = TypeVar("T")


class MeasuredBridge(LogBridge):
    """The bridge whose log thread reads its own CPU clock when it exits."""

    cpu_s = 0.0

    def _run(self) -> None:
        try:
            super()._run()
        finally:
            self.cpu_s = time.thread_time()


class MeasuredLog(SqliteExecutionLog):
    """The log timing its stages on the caller's CPU clock: building decision rows
    (``record_batch``), taking outcomes (``record_dispatches``) and writing (``flush``; a
    flush run from inside a record call counts as flush only)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.stage_s = {"decisions": 0.0, "outcomes": 0.0, "flush": 0.0}
        self._nested = 0.0  # CPU of the timed calls finished so far (their callers subtract it)

    def _timed(self, stage: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        t0, before = time.thread_time(), self._nested
        try:
            return fn(*args, **kw)
        finally:
            dt = time.thread_time() - t0
            self.stage_s[stage] += dt - (self._nested - before)
            self._nested = before + dt

    def record_batch(self, *args: Any, **kw: Any) -> list[str]:
        return self._timed("decisions", super().record_batch, *args, **kw)

    def record_dispatches(self, outcomes: Any) -> None:
        self._timed("outcomes", super().record_dispatches, outcomes)

    def flush(self) -> None:
        self._timed("flush", super().flush)


def event_ids(kind: str) -> Callable[[int], str]:
    """Event ``i``'s id: ``random``, shaped like production's and in random order
    (``bench/daemon.py``'s ``event_id``: the pipeline's run ids, ``uuid4`` prefixes), or
    ``sequential`` (``sat-<i>``, this script's ids before stop 45: each new id lands near
    the right edge of the events table's key index, so that index's cost did not grow with
    the log)."""
    if kind == "sequential":
        return lambda i: f"sat-{i}"
    return lambda i: daemon_event_id(i, "log")


def event_and_trigger(
    reg: Any, rel: Any, i: int, event_id: str, fired_at: datetime
) -> tuple[Event, list[Any], str, Trigger]:
    """Event ``i`` as the daemon benchmark sends it (one run decision: player_game_summary),
    its decisions, its JSON and the trigger its run fires (``fired_at``)."""
    ev = Event.model_validate(
        {
            "event_id": event_id,
            "source": "nba_raw.nbac_injury_report",  # one run: player_game_summary
            "game_date": GAME_DAY.isoformat(),
            "affected_entities": {"players": [PLAYERS[i % len(PLAYERS)]]},
            "changed_fields": ["injury_reason"],
        }
    )
    ds = plan(reg, rel, ev, GAME_DAY)
    run_ = next(d for d in ds if d.action == "run")
    trig = Trigger(
        trigger_id=f"t-{i:024x}",
        processor=run_.processor,
        game_date=GAME_DAY,
        start_date=GAME_DAY,
        end_date=GAME_DAY,
        scope=run_.scope or "date",
        entity_type=run_.entity_type,
        entity_ids=run_.entity_ids,
        reason=run_.reason,
        caused_by=(ev.event_id,),
        fired_at=fired_at,
    )
    return ev, list(ds), ev.model_dump_json(exclude_defaults=True), trig


async def run(
    events: int,
    batch: int,
    rate: float,
    ok_rows: bool = False,
    serve_gc: bool = False,
    ids: str = "random",
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(write_registry(Path(tmp) / "cfg"))
        reg, rel = cfg.registry, cfg.relations
        thresholds = gc.get_threshold()
        if serve_gc:  # what serve's freeze_heap does once started (runtime/daemon_run.py)
            gc.collect()
            gc.freeze()
            gc.set_threshold(GC_GEN0_THRESHOLD, *thresholds[1:])
        log = MeasuredLog(Path(tmp) / "state" / "execution_log.sqlite")
        bridge = MeasuredBridge(log, reg)
        step = batch if not rate else 1
        id_of = event_ids(ids)
        stamps: dict[int, datetime] = {}

        def fired(i: int) -> datetime:  # --ok-rows: a batch's triggers share their fired_at
            if not ok_rows:
                return datetime.now(UTC)
            return stamps.setdefault(i - i % step, datetime.now(UTC))

        items = [event_and_trigger(reg, rel, i, id_of(i), fired(i)) for i in range(events)]
        start = time.perf_counter()
        for k in range(0, events, step):
            chunk = items[k : k + step]
            await bridge.room()
            now = time.time()
            at = chunk[0][3].fired_at if ok_rows else datetime.fromtimestamp(now, UTC)
            bridge.batch([(ev, ds, None, js) for ev, ds, js, _t in chunk], at, GAME_DAY, rel)
            await asyncio.sleep(0)  # the event loop turns: the triggers are dispatched
            if ok_rows:  # (row id, trigger, body, attempts before, created)
                bridge.dispatched_ok([(k, t, None, 0, now) for *_, t in chunk], time.time())
            else:
                for _ev, _ds, _js, trig in chunk:
                    bridge.dispatch(trig, "ok", 1, 0.003, now, None)
            if rate:
                await asyncio.sleep(max(0.0, start + (k + 1) / rate - time.perf_counter()))
            else:
                await asyncio.sleep(0)
        sent = time.perf_counter() - start
        bridge.shutdown(timeout=None)
        if serve_gc:
            gc.unfreeze()
            gc.set_threshold(*thresholds)
        cpu = bridge.cpu_s
        stages = {k: round(v * 1000 / events, 4) for k, v in log.stage_s.items()}
        stages["bridge"] = round(cpu * 1000 / events - sum(stages.values()), 4)
        log.close()
        with contextlib.closing(sqlite3.connect(log.path)) as conn:
            rows = conn.execute("SELECT count(*) FROM pipeline_execution_log").fetchone()[0]
        size = sum(p.stat().st_size for p in (Path(tmp) / "state").glob("execution_log.sqlite*"))
    return {
        "events": events,
        "ids": ids,
        "log_thread_ms_per_event": round(cpu * 1000 / events, 4),
        "wall_s": round(sent, 2),
        "bytes_per_event": round(size / events),
        "log_rows_per_event": round(rows / events, 3),
        "stage_ms_per_event": stages,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--ok-rows", action="store_true", help="hand outcomes over as serve does")
    ap.add_argument(
        "--serve-gc", action="store_true", help="collect garbage as serve does (freeze_heap)"
    )
    ap.add_argument(
        "--ids",
        choices=("random", "sequential"),
        default="random",
        help="event ids shaped like production's, in random order (default), or sat-<i>",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = asyncio.run(
        run(args.events, args.batch, args.rate, args.ok_rows, args.serve_gc, args.ids)
    )
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
