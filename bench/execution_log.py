"""Benchmark: write 100,000 execution-log rows to SQLite (target: under 5 s).

    python bench/execution_log.py [--rows 100000] [--path FILE] [--json]

Decision rows (one per processor per date) from realistic events planned against the NBA
registry, plus one dispatch row per 10 decisions; times ``record_decisions`` /
``record_dispatch`` and the final ``close()`` (everything on disk), not the planning.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config
from scoperouter.processor_registry.relations import InMemoryRelations, Row
from scoperouter.router.decisions import Decision
from scoperouter.router.planner import plan

REPO = Path(__file__).resolve().parent.parent
DAY = date(2025, 11, 19)
TEAMS = [f"T{i:02d}" for i in range(30)]


def relations(registry: CompiledRegistry) -> InMemoryRelations:
    rows: dict[str, list[Row]] = {
        "team_players": [],
        "game_teams": [],
        "team_opponent": [],
        "player_games": [],
    }
    for t in TEAMS:
        rows["team_players"] += [(None, t, f"{t.lower()}p{j:02d}") for j in range(15)]
    for k in range(12):
        d = DAY - timedelta(days=k)
        for i in range(15):
            home, away = TEAMS[(2 * i + k) % 30], TEAMS[(2 * i + 1 + k) % 30]
            g = f"g{k:02d}{i:02d}"
            rows["game_teams"] += [(d, g, home), (d, g, away)]
            rows["team_opponent"] += [(d, home, away), (d, away, home)]
            rows["player_games"] += [
                (d, f"{t.lower()}p{j:02d}", g) for t in (home, away) for j in range(15)
            ]
    rels = registry.relations
    return InMemoryRelations(
        rows,
        inverses={n: r.base for n, r in rels.items() if r.inverse},
        types={n: (r.from_type, r.to_type) for n, r in rels.items()},
    )


TEMPLATES: list[dict[str, object]] = [
    {
        "source": "nba_raw.nbac_injury_report",
        "affected_entities": {"players": ["t01p03"]},
        "changed_fields": ["injury_status"],
    },
    {
        "source": "nba_raw.odds_api_player_points_props",
        "affected_entities": {"players": [f"t0{i}p01" for i in range(8)]},
    },
    {"source": "nba_raw.nbac_schedule"},
    {
        "source": "nba_analytics.player_game_summary",
        "affected_entities": {"players": ["t02p02", "t03p04"]},
    },
    {"source": "nba_analytics.team_defense_game_summary", "affected_entities": {"teams": ["T04"]}},
    {"source": "nba_raw.bdl_standings"},
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--path", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    cfg = load_config(REPO / "routes.yaml", with_relations=False)
    reg, rel = cfg.registry, relations(cfg.registry)
    planned: list[tuple[Event, tuple[Decision, ...]]] = []
    for i, tpl in enumerate(TEMPLATES):
        ev = Event.model_validate({"event_id": f"tpl-{i}", "game_date": DAY, **tpl})
        planned.append((ev, plan(reg, rel, ev, DAY)))
    # rows written per event: skips have none (counted on the event row)
    rows_per = [sum(max(1, len(d.dates)) for d in ds if d.action != "skip") for _e, ds in planned]

    with tempfile.TemporaryDirectory() as tmp:
        path = args.path or Path(tmp) / "execution_log.sqlite"
        log = SqliteExecutionLog(path)
        t0 = datetime(2025, 11, 19, 15, 0, tzinfo=UTC)
        written = 0
        n = 0
        start = time.perf_counter()
        while written < args.rows:
            k = n % len(planned)
            ev, ds = planned[k]
            ev = ev.model_copy(update={"event_id": f"e-{n}"})
            at = t0 + timedelta(milliseconds=250 * n)
            log.record_decisions(ev, ds, at, registry=reg, relations=rel, as_of=DAY)
            written += rows_per[k]
            runs = [d for d in ds if d.action == "run"]
            if n % 10 == 0 and runs:
                d = runs[0]
                trig = Trigger(
                    trigger_id=f"t-{n}",
                    processor=d.processor,
                    game_date=d.dates[0],
                    start_date=d.dates[0],
                    end_date=d.dates[0],
                    scope=d.scope or "date",
                    entity_type=d.entity_type,
                    entity_ids=d.entity_ids,
                    reason=d.reason,
                    caused_by=(ev.event_id,),
                    fired_at=at,
                )
                log.record_dispatch(trig, status="ok", attempts=1, latency_ms=3.0, dispatched_at=at)
                written += 1
            n += 1
        log.close()
        elapsed = time.perf_counter() - start
        size = path.stat().st_size
    result = {
        "rows": written,
        "events": n,
        "seconds": round(elapsed, 3),
        "rows_per_second": round(written / elapsed),
        "file_mb": round(size / 1e6, 1),
        "bytes_per_event": round(size / n),
        "target_seconds": 5.0,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"wrote {written} execution-log rows ({n} events) to SQLite in {elapsed:.2f} s "
            f"({written / elapsed:,.0f} rows/s, {size / 1e6:.1f} MB, {size / n:,.0f} bytes/event); "
            "target < 5 s"
        )
    return 0 if elapsed < 5.0 else 1


if __name__ == "__main__":
    sys.exit(main())
