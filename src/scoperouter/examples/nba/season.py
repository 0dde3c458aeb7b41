"""A deterministic synthetic NBA season: rosters, schedule and raw (Phase 2) data.

Everything comes from ``random.Random(seed)``: the same seed and dates give the same
season, byte for byte. The season runs from ``season_start`` to ``game_date + days_after``
(schedule only after ``game_date``). Dates before ``game_date`` have box scores; the game
day itself has the schedule, the morning injury report, player props and game lines.

Relation rows for ``routes.yaml`` are derived from the same season
(:func:`relation_rows`, :func:`write_relations`). The teams, rosters and schedule are drawn
by :mod:`~scoperouter.examples.nba.league`.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from scoperouter.examples.nba.league import ROSTER_SIZE, Game, make_rosters, make_schedule

DEFAULT_SEED = 2025
DEFAULT_GAME_DATE = date(2025, 11, 19)
DEFAULT_SEASON_START = date(2025, 10, 21)
DEFAULT_DAYS_AFTER = 3

INJURY_REASONS = ("Ankle sprain", "Knee soreness", "Hamstring strain", "Illness", "Back spasms",
                  "Rest", "Hip contusion", "Calf tightness", "Wrist sprain", "Concussion protocol")  # fmt: skip
INJURY_STATUSES = ("out", "doubtful", "questionable", "probable")
BROADCASTS = ("ESPN", "TNT", "NBA TV", "League Pass", "Prime Video")


def as_int(x: object) -> int:
    """An integer cell (None counts as 0)."""
    if x is None:
        return 0
    if isinstance(x, int | float | str):
        return int(x)
    raise TypeError(f"not a number: {x!r}")


def as_float(x: object) -> float:
    """A numeric cell as float (None counts as 0.0)."""
    if x is None:
        return 0.0
    if isinstance(x, int | float | str):
        return float(x)
    raise TypeError(f"not a number: {x!r}")


@dataclass
class Season:
    """A generated season: static data plus the raw tables as plain rows."""

    seed: int
    game_date: date
    season_start: date
    season_end: date
    rosters: dict[str, tuple[str, ...]]  # team -> players (index = depth chart)
    player_team: dict[str, str]
    games: tuple[Game, ...]
    # raw tables: source name -> list of row dicts (every row has game_date)
    raw: dict[str, list[dict[str, object]]] = field(default_factory=dict)

    @property
    def players(self) -> tuple[str, ...]:
        return tuple(sorted(self.player_team))

    def games_on(self, day: date) -> tuple[Game, ...]:
        return tuple(g for g in self.games if g.day == day)

    def dates(self) -> tuple[date, ...]:
        """Every date from the season start up to the game date (the pipeline's dates)."""
        n = (self.game_date - self.season_start).days
        return tuple(self.season_start + timedelta(days=i) for i in range(n + 1))


def _box_rows(
    rng: random.Random, g: Game, team: str, roster: tuple[str, ...]
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    dnp = set(rng.sample(range(9, ROSTER_SIZE), 3))
    for i, p in enumerate(roster):
        base: dict[str, object] = {
            "game_date": g.day,
            "game_id": g.game_id,
            "player": p,
            "team": team,
        }
        if i in dnp:
            rows.append(
                {
                    **base,
                    "minutes": 0,
                    "points": 0,
                    "rebounds": 0,
                    "assists": 0,
                    "steals": 0,
                    "blocks": 0,
                    "turnovers": 0,
                    "fg_made": 0,
                    "fg_attempted": 0,
                    "three_made": 0,
                    "plus_minus": 0,
                    "dnp_reason": rng.choice(("Coach's decision", "Injury/Illness")),
                }
            )
            continue
        minutes = max(4, int(rng.gauss(34 - 1.8 * i, 4)))
        fga = max(1, int(minutes * rng.uniform(0.2, 0.45)))
        fgm = int(fga * rng.uniform(0.35, 0.6))
        threes = rng.randint(0, max(0, fgm // 2))
        ftm = rng.randint(0, 5)
        rows.append(
            {
                **base,
                "minutes": minutes,
                "points": 2 * fgm + threes + ftm,
                "rebounds": rng.randint(0, minutes // 3),
                "assists": rng.randint(0, minutes // 4),
                "steals": rng.randint(0, 3),
                "blocks": rng.randint(0, 2),
                "turnovers": rng.randint(0, 4),
                "fg_made": fgm,
                "fg_attempted": fga,
                "three_made": threes,
                "plus_minus": rng.randint(-20, 20),
                "dnp_reason": None,
            }
        )
    return rows


def generate_season(
    seed: int = DEFAULT_SEED,
    game_date: date = DEFAULT_GAME_DATE,
    *,
    season_start: date = DEFAULT_SEASON_START,
    days_after: int = DEFAULT_DAYS_AFTER,
) -> Season:
    """The season for ``seed`` around ``game_date`` (deterministic)."""
    if season_start > game_date:
        raise ValueError("season_start must not be after game_date")
    rng = random.Random(seed)
    rosters = make_rosters(rng)
    player_team = {p: t for t, ps in rosters.items() for p in ps}
    end = game_date + timedelta(days=days_after)
    games = make_schedule(rng, season_start, end)
    raw: dict[str, list[dict[str, object]]] = {s: [] for s in RAW_SOURCES}
    for g in games:
        if g.day > game_date:
            continue
        raw["nba_raw.nbac_schedule"].append(
            {
                "game_date": g.day,
                "game_id": g.game_id,
                "home": g.home,
                "away": g.away,
                "start_time": rng.choice(("19:00", "19:30", "20:00", "22:00")),
                "broadcast": rng.choice(BROADCASTS),
                "arena": f"{g.home} Arena",
            }
        )
        final = g.day < game_date
        raw["nba_raw.nbac_scoreboard_v2"].append(
            {
                "game_date": g.day,
                "game_id": g.game_id,
                "home": g.home,
                "away": g.away,
                "status": "final" if final else "scheduled",
                "periods": (5 if rng.random() < 0.1 else 4) if final else 0,
                "broadcast": rng.choice(BROADCASTS),
                "arena": f"{g.home} Arena",
            }
        )
        spread = rng.choice((-1, 1)) * rng.randint(1, 26) / 2
        raw["nba_raw.odds_api_game_lines"].append(
            {
                "game_date": g.day,
                "game_id": g.game_id,
                "spread_home": spread,
                "total": rng.randint(430, 480) / 2,
                "moneyline_home": -110 + rng.randint(-200, 200),
                "moneyline_away": -110 + rng.randint(-200, 200),
            }
        )
        boxes: dict[str, list[dict[str, object]]] = {}
        for team in (g.home, g.away):
            roster = rosters[team]
            for p in roster:
                raw["nba_raw.odds_api_player_points_props"].append(
                    {
                        "game_date": g.day,
                        "player": p,
                        "game_id": g.game_id,
                        "points_line": rng.randint(9, 60) / 2,
                        "over_price": -110 + rng.randint(-15, 15),
                        "under_price": -110 + rng.randint(-15, 15),
                    }
                )
            for p in rng.sample(roster, rng.randint(1, 4)):
                raw["nba_raw.nbac_injury_report"].append(
                    {
                        "game_date": g.day,
                        "player": p,
                        "team": team,
                        "injury_status": rng.choice(INJURY_STATUSES),
                        "injury_reason": rng.choice(INJURY_REASONS),
                    }
                )
            if not final:
                continue
            box = _box_rows(rng, g, team, roster)
            raw["nba_raw.nbac_gamebook_player_stats"].extend(box)
            raw["nba_raw.bdl_player_boxscores"].extend(
                {k: v for k, v in r.items() if k not in ("plus_minus", "dnp_reason")} for r in box
            )
            for r in box:
                fga = as_int(r["fg_attempted"])
                three = min(fga, as_int(r["three_made"]) * 2 + rng.randint(0, 3))
                paint = rng.randint(0, fga - three)
                raw["nba_raw.nbac_play_by_play"].append(
                    {
                        "game_date": g.day,
                        "game_id": g.game_id,
                        "player": r["player"],
                        "team": team,
                        "paint_fga": paint,
                        "mid_fga": fga - three - paint,
                        "three_fga": three,
                    }
                )
            boxes[team] = box
        for team, opp in ((g.home, g.away), (g.away, g.home)):
            if team not in boxes:
                continue
            own, theirs = boxes[team], boxes[opp]
            raw["nba_raw.nbac_team_boxscore"].append(
                {
                    "game_date": g.day,
                    "game_id": g.game_id,
                    "team": team,
                    "possessions": rng.randint(92, 108),
                    "def_rebounds": sum(as_int(r["rebounds"]) for r in own) * 3 // 4,
                    "steals": sum(as_int(r["steals"]) for r in own),
                    "blocks": sum(as_int(r["blocks"]) for r in own),
                    "opp_points": sum(as_int(r["points"]) for r in theirs),
                    "opp_fg_made": sum(as_int(r["fg_made"]) for r in theirs),
                    "opp_fg_attempted": sum(as_int(r["fg_attempted"]) for r in theirs),
                    "opp_three_made": sum(as_int(r["three_made"]) for r in theirs),
                }
            )
    return Season(
        seed=seed,
        game_date=game_date,
        season_start=season_start,
        season_end=end,
        rosters=rosters,
        player_team=player_team,
        games=games,
        raw=raw,
    )


RAW_SOURCES: tuple[str, ...] = (
    "nba_raw.nbac_gamebook_player_stats",
    "nba_raw.bdl_player_boxscores",
    "nba_raw.nbac_play_by_play",
    "nba_raw.odds_api_player_points_props",
    "nba_raw.odds_api_game_lines",
    "nba_raw.nbac_schedule",
    "nba_raw.nbac_injury_report",
    "nba_raw.nbac_team_boxscore",
    "nba_raw.nbac_scoreboard_v2",
)

RELATIONS: tuple[str, ...] = (
    "team_players", "game_teams", "team_opponent", "player_games", "league_teams",
)  # fmt: skip

RelRow = tuple[date | None, str, str]


def relation_rows(season: Season) -> dict[str, list[RelRow]]:
    """Rows of every base relation in ``routes.yaml`` (sorted, deterministic).

    ``team_players`` is undated (rosters are stable over the window), and so is
    ``league_teams`` (every team to every team); games, opponents and a player's games are
    dated.
    """
    out: dict[str, list[RelRow]] = {r: [] for r in RELATIONS}
    for team in sorted(season.rosters):
        out["team_players"].extend((None, team, p) for p in sorted(season.rosters[team]))
        out["league_teams"].extend((None, team, other) for other in sorted(season.rosters))
    for g in season.games:
        out["game_teams"] += [(g.day, g.game_id, g.home), (g.day, g.game_id, g.away)]
        out["team_opponent"] += [(g.day, g.home, g.away), (g.day, g.away, g.home)]
        for team in (g.home, g.away):
            out["player_games"].extend((g.day, p, g.game_id) for p in season.rosters[team])
    for name, rows in out.items():
        out[name] = sorted(rows, key=lambda r: (r[0] or date.min, r[1], r[2]))
    return out


def write_relations(season: Season, directory: Path) -> dict[str, Path]:
    """Write ``<directory>/<relation>.csv`` (header ``date,from,to``) for every relation."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, rows in relation_rows(season).items():
        path = directory / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["date", "from", "to"])
            for d, src, dst in rows:
                w.writerow([d.isoformat() if d else "", src, dst])
        paths[name] = path
    return paths


def write_relations_for_seed(
    seed: int, directory: Path, game_date: date = DEFAULT_GAME_DATE
) -> dict[str, Path]:
    """Generate the season for ``seed`` and write its relation CSVs to ``directory``."""
    return write_relations(generate_season(seed, game_date), directory)
