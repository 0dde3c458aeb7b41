"""A small synthetic game day for the execution-log tests: relations for the NBA registry
(30 teams x 15 players, 15 games a day) and a stream of events that exercises every
scope (entity, fallback, no entities, date granularity, lookback)."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations, Row

DAY = date(2025, 11, 19)
T0 = datetime(2025, 11, 19, 15, 0, tzinfo=UTC)
TEAMS = tuple(f"T{i:02d}" for i in range(30))
PLAYERS = {t: tuple(f"{t.lower()}p{j:02d}" for j in range(15)) for t in TEAMS}


def game_id(day: date, i: int) -> str:
    return f"00{day:%m%d}{i:02d}"


def relation_rows(days: int = 20) -> dict[str, list[Row]]:
    """Rosters on every date; 15 games a day for ``days`` days ending 3 days after DAY."""
    rows: dict[str, list[Row]] = {
        "team_players": [],
        "game_teams": [],
        "team_opponent": [],
        "player_games": [],
        "league_teams": [(None, a, b) for a in TEAMS for b in TEAMS],
    }
    for t in TEAMS:
        rows["team_players"].extend((None, t, p) for p in PLAYERS[t])
    for k in range(days):
        day = DAY + timedelta(days=3 - k)
        shift = k % 29 + 1
        order = (
            [TEAMS[(i * shift) % 30] for i in range(30)] if shift % 2 or shift % 3 else list(TEAMS)
        )
        if len(set(order)) != 30:
            order = list(TEAMS)
        for i in range(15):
            home, away = order[2 * i], order[2 * i + 1]
            g = game_id(day, i)
            rows["game_teams"] += [(day, g, home), (day, g, away)]
            rows["team_opponent"] += [(day, home, away), (day, away, home)]
            for p in PLAYERS[home] + PLAYERS[away]:
                rows["player_games"].append((day, p, g))
    return rows


def relations_for(registry: CompiledRegistry) -> InMemoryRelations:
    """The relation rows as the registry's relation store (inverses wired in)."""
    rows = relation_rows()
    rels = registry.relations
    return InMemoryRelations(
        rows,
        inverses={n: r.base for n, r in rels.items() if r.inverse},
        types={n: (r.from_type, r.to_type) for n, r in rels.items()},
    )


def _ev(i: int, source: str, minutes: float, **kw: object) -> tuple[Event, datetime]:
    data: dict[str, object] = {
        "event_id": f"e-{i:03d}",
        "source": source,
        "game_date": DAY,
        "correlation_id": f"c-{i // 3}",
    }
    data.update(kw)
    return Event.model_validate(data), T0 + timedelta(minutes=minutes)


def game_day_events() -> list[tuple[Event, datetime]]:
    """About 40 events over a game day, in decided_at order."""
    ev: list[tuple[Event, datetime]] = []
    i = 0

    def add(source: str, minutes: float, **kw: object) -> None:
        nonlocal i
        ev.append(_ev(i, source, minutes, **kw))
        i += 1

    add(
        "nba_raw.nbac_injury_report",
        0,
        affected_entities={"players": ["t01p03"]},
        changed_fields=["injury_status"],
        priority="critical",
    )
    add(
        "nba_raw.nbac_injury_report",
        0.1,
        affected_entities={"players": ["t02p01", "t02p02", "t05p07"]},
        changed_fields=["injury_status"],
    )
    add(
        "nba_raw.odds_api_player_points_props",
        10,
        affected_entities={"players": [PLAYERS[t][0] for t in TEAMS[:20]]},
        changed_fields=["points_line"],
    )
    add(
        "nba_raw.odds_api_game_lines",
        20,
        affected_entities={"games": [game_id(DAY, 0)]},
        changed_fields=["moneyline"],
    )
    add(
        "nba_raw.odds_api_game_lines",
        20.2,
        affected_entities={"games": [game_id(DAY, 1)]},
        changed_fields=["spread"],
    )
    add("nba_raw.nbac_schedule", 60)
    for k in range(6):  # a burst of single-player prop moves, coalesced by the windows
        add(
            "nba_raw.odds_api_player_points_props",
            90 + k * 0.05,
            affected_entities={"players": [PLAYERS[TEAMS[k]][k]]},
            changed_fields=["over_price"],
        )
    add(
        "nba_raw.nbac_gamebook_player_stats",
        120,
        game_date=DAY - timedelta(days=1),
        affected_entities={"players": [p for t in TEAMS[:12] for p in PLAYERS[t]]},
        changed_fields=["points"],
    )
    add(
        "nba_raw.nbac_scoreboard_v2",
        125,
        game_date=DAY - timedelta(days=1),
        affected_entities={"games": [game_id(DAY - timedelta(days=1), 2)]},
        changed_fields=["status"],
    )
    add(
        "nba_analytics.player_game_summary",
        130,
        affected_entities={"players": ["t01p03", "t02p01"]},
    )
    add(
        "nba_analytics.player_game_summary",
        131,
        game_date=DAY - timedelta(days=1),
        affected_entities={"players": ["t03p03"]},
    )
    add(
        "nba_analytics.team_defense_game_summary",
        135,
        game_date=DAY - timedelta(days=2),
        affected_entities={"teams": ["T04", "T05"]},
    )
    add("nba_analytics.upcoming_team_game_context", 140, affected_entities={"teams": ["T06"]})
    add(
        "nba_precompute.player_composite_factors",
        150,
        affected_entities={"players": ["t07p01", "t07p02"]},
    )
    add("nba_predictions.ml_feature_store_v2", 160, affected_entities={"players": ["t07p01"]})
    add(
        "nba_predictions.player_prop_predictions",
        170,
        affected_entities={"players": ["t07p01", "t08p00"]},
    )
    add("nba_raw.bdl_standings", 180)
    add("nba_raw.nbac_injury_report", 200, status="failed")
    return ev


def completion(t: Trigger) -> tuple[int, int | None, float]:
    """What a processor would report: entity runs change 3 of 4 ids, date runs about 1 in 10."""
    n = len(t.entity_ids) if t.entity_ids else (450 if "team" not in t.processor else 30)
    changed = max(1, n - n // 4) if t.scope == "entities" else max(1, n // 10)
    return n, changed, round(n * 0.05, 3)


def write_config(routes: Path, directory: Path) -> Path:
    """A copy of ``routes`` whose relation data are this module's rows, as CSV in ``directory``."""
    rel_dir = directory / "relations"
    rel_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in relation_rows().items():
        with (rel_dir / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["date", "from", "to"])
            for d, a, b in rows:
                w.writerow([d.isoformat() if d else "", a, b])
    text = re.sub(
        r"csv: \{dir: [^}]*\}", "csv: {dir: relations}", routes.read_text(encoding="utf-8")
    )
    out = directory / "routes.yaml"
    out.write_text(text, encoding="utf-8")
    return out


def row_ids(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Each row's own id (``decision_id``, ``completion_id``, else ``event_id``): what a test
    names rows by, where the writer's ``insertId`` may carry more (an event's date)."""
    keys = ("decision_id", "completion_id", "event_id")
    return [str(next(r[k] for k in keys if k in r)) for r in rows]


class FakeInsertClient:
    """``insert_rows_json`` as the BigQuery writer calls it, its arguments handed to
    :meth:`insert` as plain lists: a test's client answers there (row errors, or raises)."""

    def insert_rows_json(
        self,
        table: Any,
        json_rows: Sequence[dict[str, Any]],
        *,
        row_ids: Sequence[str] | None = None,
    ) -> Sequence[dict[str, Any]]:
        return self.insert(str(table), list(json_rows), list(row_ids or ()))

    def insert(self, table: str, rows: list[dict[str, Any]], ids: list[str]) -> list[Any]:
        raise NotImplementedError


def one_processor_registry(
    directory: Path, *, players: int, extra: str = "", lookback: str = ""
) -> Path:
    """``directory/routes.yaml``: one player processor ``psum`` reading ``raw.stats``
    (windows of 0s, max_entities 100), ``players`` players on two teams in
    ``directory/relations``; ``extra``: more top-level YAML (a ``report:`` section),
    ``lookback``: its lookback's YAML (``{days: 2}``)."""
    (directory / "relations").mkdir()
    rows = "".join(f",T{i % 2},p{i}\n" for i in range(players))
    (directory / "relations" / "team_players.csv").write_text("date,from,to\n" + rows)
    routes = directory / "routes.yaml"
    routes.write_text(
        "version: 1\n"
        "entities: {player: {}, team: {}}\n"
        "relations:\n  team_players: {from: team, to: player}\n"
        "relation_data:\n  csv: {dir: relations}\n"
        "defaults:\n  max_entities: 100\n  window: {quiet: 0s, max_wait: 0s}\n"
        f"{extra}"
        "processors:\n  psum:\n    phase: 3\n    granularity: player\n"
        "    inputs: [{source: raw.stats}]\n    publishes: analytics.psum\n"
        + (f"    lookback: {lookback}\n" if lookback else "")
    )
    return routes
