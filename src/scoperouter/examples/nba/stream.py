"""The game-day update stream: what Phase 2 loaders write and announce during one day.

Deterministic from the season (``random.Random(seed + 1)``). In order of time:

* 08:00 the morning injury report (today),
* 08:20-08:35 stat corrections to last night's games (one only touches ``plus_minus``),
* 08:40 a correction to a game five days back (reaches later dates: lookback),
* 08:50 a team box-score correction (possessions -> pace),
* 10:00-17:30 betting-line moves through the day (one moneyline-only move), prop updates,
* 12:00 the midday injury report as a legacy date-level ``raw_data_loaded`` message,
* 13:30 a broadcast change on the scoreboard (an ignored field), 14:00 standings (no reader),
* 18:00-18:07 a burst of injury updates before tip-off with ``priority: critical``,
* 18:30 a late line move.

Each :class:`Update` is applied by :func:`apply_update`, a Phase 2 loader that writes the
rows and announces what really changed with :mod:`scoperouter.sdk.change_detection`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from scoperouter.examples.nba.processors import GAMEBOOK, INJURY, LINES, PROPS, SCOREBOARD, TEAM_BOX
from scoperouter.examples.nba.season import (
    INJURY_REASONS,
    INJURY_STATUSES,
    Season,
    as_float,
    as_int,
)
from scoperouter.examples.nba.warehouse import Warehouse
from scoperouter.sdk.change_detection import completion_event, diff_rows

#: the NBA registry's event keys (routes.yaml declares no plural: name + s, SPEC's "players")
PLURALS = {"player": "players", "team": "teams", "game": "games"}

Priority = Literal["normal", "critical"]
STANDINGS = "bdl_standings"


@dataclass(frozen=True)
class Update:
    """One Phase 2 load: set ``fields`` on the rows keyed ``key`` of ``source`` on ``day``."""

    at: float  # seconds since midnight UTC of the game date
    label: str
    source: str
    day: date
    rows: tuple[tuple[str, tuple[tuple[str, object], ...]], ...]  # key -> fields to set
    entity_type: str | None  # player | team | game; None = announced at date level
    priority: Priority = "normal"
    legacy: bool = False  # announce as a legacy raw_data_loaded message

    @property
    def event_id(self) -> str:
        return f"raw-{int(self.at):05d}-{self.source.rsplit('.', 1)[-1]}"


def produced_at(game_date: date, at: float) -> datetime:
    return datetime.combine(game_date, time(0, 0), tzinfo=UTC) + timedelta(seconds=at)


def _fields(**kw: object) -> tuple[tuple[str, object], ...]:
    return tuple(sorted(kw.items()))


def game_day_stream(season: Season, wh: Warehouse) -> tuple[Update, ...]:
    """The day's updates, time-ordered. Reads the overnight warehouse to make real changes."""
    rng = random.Random(season.seed + 1)
    today = season.game_date
    yesterday = today - timedelta(days=1)
    back5 = today - timedelta(days=5)
    games_today = season.games_on(today)
    teams_today = sorted({t for g in games_today for t in (g.home, g.away)})
    players_today = sorted(p for t in teams_today for p in season.rosters[t])
    inj_today = wh.rows(INJURY, today)
    out: list[Update] = []

    def new_status(p: str) -> tuple[tuple[str, object], ...]:
        old = inj_today.get(p, {}).get("injury_status")
        status = rng.choice([s for s in INJURY_STATUSES if s != old])
        inj_today[p] = {"injury_status": status}
        return _fields(
            injury_status=status,
            injury_reason=rng.choice(INJURY_REASONS),
            team=season.player_team[p],
        )

    h = 3600.0
    morning = rng.sample(players_today, 12)
    out.append(
        Update(
            8 * h,
            "morning injury report",
            INJURY,
            today,
            tuple((p, new_status(p)) for p in sorted(morning)),
            "player",
        )
    )

    def played(day: date) -> list[tuple[str, dict[str, object]]]:
        rows = wh.rows(GAMEBOOK, day)
        return [(p, r) for p, r in sorted(rows.items()) if as_int(r["minutes"] or 0) > 0]

    last_night = played(yesterday)
    for i, (p, r) in enumerate(rng.sample(last_night, 3)):
        pts = as_int(r["points"]) + rng.choice((-2, -1, 1, 2, 3))
        reb = as_int(r["rebounds"]) + rng.choice((0, 1))
        out.append(
            Update(
                8 * h + 1200 + 300 * i,
                f"stat correction {p}",
                GAMEBOOK,
                yesterday,
                ((p, _fields(points=max(0, pts), rebounds=reb)),),
                "player",
            )
        )
    p, r = rng.choice(last_night)
    out.append(
        Update(
            8 * h + 2100,
            f"plus/minus correction {p}",
            GAMEBOOK,
            yesterday,
            ((p, _fields(plus_minus=as_int(r["plus_minus"]) + 1)),),
            "player",
        )
    )
    p, r = rng.choice(played(back5))
    out.append(
        Update(
            8 * h + 2400,
            f"correction five days back {p}",
            GAMEBOOK,
            back5,
            ((p, _fields(points=as_int(r["points"]) + 3)),),
            "player",
        )
    )
    tb = wh.rows(TEAM_BOX, yesterday)
    team = rng.choice(sorted(tb))
    out.append(
        Update(
            8 * h + 3000,
            f"team box correction {team}",
            TEAM_BOX,
            yesterday,
            (
                (
                    team,
                    _fields(
                        possessions=as_int(tb[team]["possessions"]) + 2,
                        opp_points=as_int(tb[team]["opp_points"]) + 2,
                    ),
                ),
            ),
            "team",
        )
    )

    lines = {gid: dict(r) for gid, r in wh.rows(LINES, today).items()}

    def line_move(at: float, k: int, moneyline_only: bool = False) -> Update:
        rows = []
        for gid in sorted(rng.sample(sorted(lines), k)):
            cur = lines[gid]
            if moneyline_only:
                cur["moneyline_home"] = as_int(cur["moneyline_home"]) + rng.choice((-10, 10))
                rows.append((gid, _fields(moneyline_home=cur["moneyline_home"])))
                continue
            cur["spread_home"] = as_float(cur["spread_home"]) + rng.choice((-1.0, -0.5, 0.5, 1.0))
            cur["total"] = as_float(cur["total"]) + rng.choice((-1.5, -0.5, 0.5, 1.0))
            rows.append((gid, _fields(spread_home=cur["spread_home"], total=cur["total"])))
        label = "moneyline move" if moneyline_only else f"line move ({k} games)"
        return Update(at, label, LINES, today, tuple(rows), "game")

    props = {p: dict(r) for p, r in wh.rows(PROPS, today).items()}

    def prop_move(at: float, k: int) -> Update:
        rows = []
        for p in sorted(rng.sample(sorted(props), k)):
            props[p]["points_line"] = as_float(props[p]["points_line"]) + rng.choice(
                (-1.0, -0.5, 0.5, 1.0)
            )
            rows.append((p, _fields(points_line=props[p]["points_line"])))
        return Update(at, f"player props ({k} players)", PROPS, today, tuple(rows), "player")

    out += [line_move(10 * h, 2), prop_move(10.5 * h, 4), line_move(11.5 * h, 1)]
    midday = rng.sample(players_today, 5)
    out.append(
        Update(
            12 * h,
            "midday injury report (legacy, date level)",
            INJURY,
            today,
            tuple((p, new_status(p)) for p in sorted(midday)),
            None,
            legacy=True,
        )
    )
    out += [line_move(12.5 * h, 2, moneyline_only=True), line_move(13 * h, 3)]
    g = games_today[0]
    out.append(
        Update(
            13.5 * h,
            "broadcast change",
            SCOREBOARD,
            today,
            ((g.game_id, _fields(broadcast="ESPN2")),),
            "game",
        )
    )
    out.append(Update(14 * h, "standings (no reader)", STANDINGS, today, (), None, legacy=True))
    out += [
        line_move(14.5 * h, 1),
        prop_move(15 * h, 3),
        line_move(16 * h, 2),
        line_move(17.5 * h, 1),
    ]
    burst = rng.sample(players_today, 10)
    for i, p in enumerate(burst):
        out.append(
            Update(
                18 * h + 45 * i,
                f"pre-tip injury {p}",
                INJURY,
                today,
                ((p, new_status(p)),),
                "player",
                priority="critical",
            )
        )
    out.append(line_move(18.5 * h, 2))
    return tuple(sorted(out, key=lambda u: u.at))


def apply_update(wh: Warehouse, upd: Update, game_date: date) -> dict[str, Any] | None:
    """Write the update (a Phase 2 load) and return the message the loader publishes.

    Entity updates publish a canonical event naming only what changed (None when nothing
    did); legacy loads publish ``raw_data_loaded`` for the whole date.
    """
    ts = produced_at(game_date, upd.at)
    if upd.source not in wh.defs:  # a table nobody in the pipeline stores (standings)
        return _legacy(upd, ts, 0)
    keys = [k for k, _ in upd.rows]
    before = wh.rows(upd.source, upd.day, keys)
    after = {k: {**before.get(k, {}), **dict(f)} for k, f in upd.rows}
    wh.replace(upd.source, upd.day, keys, after)
    changes = diff_rows(before, after)
    if upd.legacy:
        return _legacy(upd, ts, len(wh.keys_on(upd.source, upd.day)))
    assert upd.entity_type is not None
    return completion_event(
        source=upd.source,
        game_date=upd.day,
        entity_type=upd.entity_type,
        entity_plural=PLURALS[upd.entity_type],
        changes=changes,
        event_id=upd.event_id,
        priority=upd.priority,
        correlation_id=f"c-{upd.event_id}",
        produced_at=ts,
    )


def _legacy(upd: Update, ts: datetime, count: int) -> dict[str, Any]:
    return {
        "event_type": "raw_data_loaded",
        "source_table": upd.source.rsplit(".", 1)[-1],
        "game_date": upd.day.isoformat(),
        "record_count": count,
        "execution_id": upd.event_id,
        "correlation_id": f"c-{upd.event_id}",
        "timestamp": ts.isoformat().replace("+00:00", "Z"),
        "phase": 2,
        "success": True,
        "error_message": None,
    }
