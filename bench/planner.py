"""Planner benchmark: events/s on one core, registry growth, and a 1,000-entity event.

    python bench/planner.py [--seconds 1.0]

Uses the repository's routes.yaml (the NBA registry) with relation data generated here:
30 teams x 15 players, a 150-day season where every team plays every other day (15
games a day), team_opponent and player_games derived from the schedule. Prints:

* events/s and decisions/s for a realistic event mix (planner only, and normalise+plan);
* per-event cost as the registry grows 10x and 100x with synthetic processors on
  unrelated sources (same events, so the same inputs are touched);
* the cost of one event naming 1,000 games, expanded two hops (game -> teams -> players)
  on a stress day of 1,000 games.

Targets (issue #3): >= 20,000 events/s for typical events; 100x registry <= 2x per event;
1,000-entity two-hop event < 5 ms.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from scoperouter.messages.models import Event
from scoperouter.messages.normalize import normalize_event, parse_event_bytes
from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.processor_registry.relations import InMemoryRelations, Row
from scoperouter.router.planner import Planner

REPO = Path(__file__).resolve().parent.parent
SEASON_START = date(2025, 10, 21)
DAYS = 150
DAY = SEASON_START + timedelta(days=60)
AS_OF = DAY + timedelta(days=1)


def relations_for(reg: CompiledRegistry, rows: dict[str, list[Row]]) -> InMemoryRelations:
    rels = reg.relations
    return InMemoryRelations(
        {n: rows.get(n, []) for n, r in rels.items() if not r.inverse},
        inverses={n: r.base for n, r in rels.items() if r.inverse},
        types={n: (r.from_type, r.to_type) for n, r in rels.items()},
    )


def nba_rows() -> tuple[dict[str, list[Row]], dict[date, list[str]], dict[str, list[str]]]:
    teams = [f"T{i:02d}" for i in range(30)]
    roster = {t: [f"{t.lower()}p{j:02d}" for j in range(15)] for t in teams}
    rows: dict[str, list[Row]] = {
        "team_players": [],
        "game_teams": [],
        "team_opponent": [],
        "player_games": [],
    }
    for t, ps in roster.items():
        rows["team_players"] += [(None, t, p) for p in ps]
    games_on: dict[date, list[str]] = {}
    gid = 0
    for k in range(DAYS):
        d = SEASON_START + timedelta(days=k)
        order = teams[k % 30 :] + teams[: k % 30]
        games_on[d] = []
        for i in range(0, 30, 2):
            a, b = order[i], order[i + 1]
            gid += 1
            g = f"00225{gid:05d}"
            games_on[d].append(g)
            rows["game_teams"] += [(d, g, a), (d, g, b)]
            rows["team_opponent"] += [(d, a, b), (d, b, a)]
            rows["player_games"] += [(d, p, g) for p in roster[a] + roster[b]]
    return rows, games_on, roster


def event_mix(reg: CompiledRegistry, games: list[str], roster: dict[str, list[str]]) -> list[Event]:
    """A realistic burst: injury updates, prop moves, box scores, game lines, cascades."""
    players = [p for ps in roster.values() for p in ps]
    teams = sorted(roster)
    gd = DAY.isoformat()
    raws: list[dict[str, Any]] = []
    for i in range(40):
        p = players[(i * 37) % len(players)]
        raws.append(
            {
                "event_id": f"inj-{i}",
                "source": "nba_raw.nbac_injury_report",
                "game_date": gd,
                "affected_entities": {"players": [p]},
                "changed_fields": ["injury_status"],
                "priority": "critical" if i % 5 == 0 else "normal",
            }
        )
        raws.append(
            {
                "event_id": f"props-{i}",
                "source": "nba_raw.odds_api_player_points_props",
                "game_date": gd,
                "affected_entities": {
                    "players": [players[(i * 11 + j) % len(players)] for j in range(3)]
                },
                "changed_fields": ["points_line"],
            }
        )
        raws.append(
            {
                "event_id": f"lines-{i}",
                "source": "nba_raw.odds_api_game_lines",
                "game_date": gd,
                "affected_entities": {"games": [games[i % len(games)]]},
                "changed_fields": ["spread"],
            }
        )
        raws.append(
            {
                "event_id": f"box-{i}",
                "source": "nba_raw.bdl_player_boxscores",
                "game_date": gd,
                "affected_entities": {
                    "players": [players[(i * 7 + j) % len(players)] for j in range(5)]
                },
                "changed_fields": ["points", "minutes"],
            }
        )
        raws.append(
            {
                "event_type": "analytics_complete",
                "analytics_table": "player_game_summary",
                "game_date": gd,
                "execution_id": f"pgs-{i}",
                "success": True,
                "entities_changed": {"players": [players[(i * 13) % len(players)]]},
            }
        )
        raws.append(
            {
                "event_id": f"tdz-{i}",
                "source": "nba_precompute.team_defense_zone_analysis",
                "game_date": gd,
                "affected_entities": {"teams": [teams[i % 30]]},
            }
        )
        raws.append(
            {
                "event_type": "raw_data_loaded",
                "source_table": "bdl_standings",
                "game_date": gd,
                "execution_id": f"stand-{i}",
                "success": True,
            }
        )
        raws.append(
            {
                "event_id": f"sched-{i}",
                "source": "nba_raw.nbac_schedule",
                "game_date": gd,
                "changed_fields": ["broadcast"],
            }
        )
    return [normalize_event(r, reg) for r in raws]


def grown(doc: dict[str, Any], factor: int) -> CompiledRegistry:
    """The registry with (factor - 1) x as many synthetic processors on unrelated sources."""
    d = json.loads(json.dumps(doc))
    n = len(doc["processors"]) * (factor - 1)
    for i in range(n):
        d["processors"][f"synthetic_{i:05d}"] = {
            "phase": 3 + i % 3,
            "granularity": ("player", "team", "game", "date")[i % 4],
            "inputs": [
                {"source": f"synthetic_raw.table_{i:05d}"},
                {"source": f"synthetic_raw.table_{(i + 1) % n:05d}", "fields": ["a"]},
            ],
            "publishes": f"synthetic_out.table_{i:05d}",
        }
    return compile_registry(RoutesSpec.model_validate(d))


def per_call(fn: Callable[[], object], seconds: float) -> float:
    """Seconds per call (best of 3 rounds of ~seconds/3 each)."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > 0.05:
            break
        n *= 2
    reps = max(1, int(n * (seconds / 3) / dt))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = ap.parse_args()

    doc = yaml.safe_load((REPO / "routes.yaml").read_text())
    base = compile_registry(RoutesSpec.model_validate(doc))
    rows, games_on, roster = nba_rows()
    rel = relations_for(base, rows)
    events = event_mix(base, games_on[DAY], roster)
    planner = Planner(base)
    n_proc = len(base.processor_names)

    def run_mix(p: Planner, r: InMemoryRelations = rel) -> None:
        for e in events:
            p.plan(r, e, AS_OF)

    t = per_call(lambda: run_mix(planner), args.seconds) / len(events)
    print(
        f"NBA registry: {n_proc} processors; relation data 30 teams x 15 players, {DAYS} days x 15 games"
    )
    print(f"event mix: {len(events)} events ({len(events) // 8} each of 8 kinds)")
    print(
        f"  planner only      : {1 / t:>10,.0f} events/s  {n_proc / t:>12,.0f} decisions/s  {t * 1e6:7.1f} us/event"
    )
    payloads = [json.dumps(e.model_dump(mode="json")).encode() for e in events]

    def parse_and_plan() -> None:
        for b in payloads:
            planner.plan(rel, parse_event_bytes(b, base), AS_OF)

    t_np = per_call(parse_and_plan, args.seconds) / len(events)
    print(f"  parse+normalise+plan: {1 / t_np:>8,.0f} events/s  {t_np * 1e6:7.1f} us/event")

    print("registry growth (synthetic processors on unrelated sources; same events):")
    runners: dict[int, Callable[[], None]] = {1: lambda: run_mix(planner)}
    sizes = {1: n_proc}
    for factor in (10, 100):
        reg = grown(doc, factor)
        sizes[factor] = len(reg.processor_names)
        p2, r2 = Planner(reg), relations_for(reg, rows)
        ev2 = [normalize_event(e.model_dump(mode="json"), reg) for e in events]

        def mix2(p: Planner = p2, r: InMemoryRelations = r2, evs: list[Event] = ev2) -> None:
            for e in evs:
                p.plan(r, e, AS_OF)

        runners[factor] = mix2
    # interleaved rounds, best of each: the machine is shared, so noise hits all sizes alike
    costs = {f: float("inf") for f in runners}
    for _ in range(3):
        for f, fn in runners.items():
            costs[f] = min(costs[f], per_call(fn, args.seconds / 3) / len(events))
    t = min(t, costs[1])
    for factor in (10, 100):
        print(
            f"  {factor:>3}x ({sizes[factor]:>5} processors): {costs[factor] * 1e6:7.1f} us/event  "
            f"ratio {costs[factor] / costs[1]:5.2f}x  (each plan still returns {sizes[factor]} decisions)"
        )

    # 1,000-entity event, two hops: game -> game_teams -> team_players, on a 1,000-game stress day.
    stress_day = DAY + timedelta(days=400)
    srows = {k: list(v) for k, v in rows.items()}
    stress_games = [f"S{i:04d}" for i in range(1000)]
    for i, g in enumerate(stress_games):
        a, b = f"ST{2 * i:04d}", f"ST{2 * i + 1:04d}"
        srows["game_teams"] += [(stress_day, g, a), (stress_day, g, b)]
        for t_ in (a, b):
            srows["team_players"] += [(stress_day, t_, f"{t_.lower()}p{j:02d}") for j in range(15)]
    srel = relations_for(base, srows)
    big = normalize_event(
        {
            "event_id": "big",
            "source": "nba_raw.odds_api_game_lines",
            "game_date": stress_day.isoformat(),
            "affected_entities": {"games": stress_games},
            "changed_fields": ["spread"],
        },
        base,
    )
    big_players = normalize_event(
        {
            "event_id": "bigp",
            "source": "nba_analytics.player_game_summary",
            "game_date": DAY.isoformat(),
            "affected_entities": {"players": [p for ps in roster.values() for p in ps]},
        },
        base,
    )
    t_big = per_call(lambda: planner.plan(srel, big, stress_day), args.seconds)
    out = planner.plan(srel, big, stress_day)
    mapped = [d for d in out if d.action == "run"]
    print("1,000-entity event (1,000 games -> 2,000 teams -> 30,000 players, two hops):")
    print(
        f"  {t_big * 1e3:6.2f} ms/event   decisions: "
        + ", ".join(f"{d.processor}={d.reason}" for d in mapped)
    )
    print("event size (games, expanded two hops on the stress day):")
    for n in (1, 10, 100, 1000):
        ev_n = normalize_event(
            {
                "event_id": f"n{n}",
                "source": "nba_raw.odds_api_game_lines",
                "game_date": stress_day.isoformat(),
                "affected_entities": {"games": stress_games[:n]},
                "changed_fields": ["spread"],
            },
            base,
        )

        def one(e: Event = ev_n) -> None:
            planner.plan(srel, e, stress_day)

        t_n = per_call(one, args.seconds / 4)
        print(f"  {n:>5} games: {t_n * 1e6:9.1f} us/event")
    # worst case: the ids must all be collected and sorted (entity scope, no threshold)
    wide = json.loads(json.dumps(doc))
    wide["processors"]["upcoming_player_game_context"]["max_entities"] = 100_000
    wide_reg = compile_registry(RoutesSpec.model_validate(wide))
    wide_planner = Planner(wide_reg)
    wide_rel = relations_for(wide_reg, srows)
    big_w = normalize_event(big.model_dump(mode="json"), wide_reg)
    t_wide = per_call(lambda: wide_planner.plan(wide_rel, big_w, stress_day), args.seconds)
    n_ids = len(
        next(
            d
            for d in wide_planner.plan(wide_rel, big_w, stress_day)
            if d.processor == "upcoming_player_game_context"
        ).entity_ids
        or ()
    )
    print(
        f"  1000 games, max_entities 100000 (entity scope, {n_ids} ids collected and sorted): "
        f"{t_wide * 1e3:.2f} ms/event"
    )
    t_bp = per_call(lambda: planner.plan(rel, big_players, AS_OF), args.seconds)
    print(
        # (routes.yaml's lookbacks are all days since player_shot_zone_analysis' 10 games
        # became its season: the label no longer says games)
        f"450-player event (every processor, routes.yaml's lookbacks): {t_bp * 1e3:6.2f} ms/event"
    )

    print("summary:")
    print(
        f"  typical events/s           : {1 / t:,.0f}  (target >= 20,000)  {'OK' if 1 / t >= 20000 else 'MISSED'}"
    )
    r100 = costs[100] / costs[1]
    print(
        f"  100x registry cost ratio   : {r100:.2f}x (target <= 2x)  {'OK' if r100 <= 2 else 'MISSED'}"
    )
    print(f"  10x registry cost ratio    : {costs[10] / costs[1]:.2f}x")
    print(f"  base cost                  : {costs[1] * 1e6:.1f} us/event")
    print(
        f"  1,000-entity two-hop event : {t_big * 1e3:.2f} ms (target < 5 ms)  {'OK' if t_big < 0.005 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
