"""player_daily_cache's roster expansion (player_daily_cache_processor.py:477-545): besides
the date's upcoming_player_game_context rows, production caches every player with a
player_game_summary row in the 30 days before the date on a team that has context rows on
the date, who has none himself. Whether such a player R gets a row depends on his
TEAMMATES' context rows, so routes.yaml's player_daily_cache input carries
``also_map: {player: [player_team, team_players]}``; by identity only it would miss R.

The reference models the expansion (phase4._daily_cache_players), but in it the expansion is
empty: its context holds every rostered player of a team that plays. Production's leaves
out the OUT/DOUBTFUL players on the game day (daily mode, upcoming_player_game_context/
queries/shared_ctes.py:319-321). With that filter patched in, a game added to the game day
(its teams' context rows first written by a run of the upcoming context, whose completion
names the players it wrote, R not among them) shows it: routes.yaml makes R's cache row;
without the also_map it never does. No context completion of the demo names a column the
cache reads, so there the also_map routes no row more (CACHE_ALSO_MAP_COST; checked on
the session's demo run in test_nba_demo.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any, cast

import pytest
from nba_support import (
    drop_cache_context_also_map,
    input_of,
    registry,
    relations_for,
    short_day,
    variant,
)

from scoperouter.examples.nba.harness import (
    GameDay,
    ModeStats,
    compare,
    prepare,
    run_date_level,
)
from scoperouter.examples.nba.phase4 import _daily_cache_players
from scoperouter.examples.nba.processors import BY_NAME, INJURY, RefProcessor
from scoperouter.examples.nba.refbase import (
    OUT_STATUSES,
    PDC,
    PDC_ROSTER_DAYS,
    PGS,
    SCHEDULE,
    UPGC,
    Ids,
)
from scoperouter.examples.nba.season import DEFAULT_GAME_DATE, generate_season
from scoperouter.examples.nba.stream import Update
from scoperouter.examples.nba.warehouse import RowDict, Warehouse

REG = registry()
CACHE = "player_daily_cache"
CONTEXT = "upcoming_player_game_context"
HISTORY_DAYS = 10  # every team plays in it, so every rostered player has box-score rows
NEW_GAME = "0022599999"  # an id the season's relation rows do not know


@pytest.fixture(scope="module")
def day() -> GameDay:
    return short_day(2025, REG)


def test_reference_expansion_is_empty(day: GameDay) -> None:
    """Every date: the cache's players are exactly the context's (the reference's context
    holds every rostered player of a team that plays), so the expansion adds no one."""
    wh = day.overnight
    for d in day.season.dates():
        assert set(_daily_cache_players(wh, d, None)) == set(wh.rows(UPGC, d)), d


def _without_context_row(day: GameDay) -> tuple[Warehouse, str, list[str]]:
    """A copy of the overnight warehouse where one rostered player R of a team playing on the
    game day has no context row (as production's daily mode leaves out an OUT player), the
    cache rebuilt for that date; R and his teammates."""
    wh, today = day.overnight.copy(), day.game_date
    ctx = wh.rows(UPGC, today)
    r = sorted(ctx)[0]
    team = str(ctx[r]["team"])
    wh.replace(UPGC, today, [r], {})
    proc = BY_NAME[CACHE]
    wh.replace(PDC, today, None, proc.compute(wh, today, None))
    return wh, r, [q for q in wh.rosters[team] if q != r]


def test_expansion_caches_a_roster_player_without_context(day: GameDay) -> None:
    """A player with no context row, on a team with context rows, with box scores in the 30
    days before: cached, with no context columns (:523-530), his own form and his team's
    pace, and no line (production's cache reads none); a run for him alone writes that row,
    a run for his teammates does not."""
    wh, r, mates = _without_context_row(day)
    today, proc = day.game_date, BY_NAME[CACHE]
    assert wh.window_sums(PGS, [r], today - timedelta(days=1), 0, (),
                          since=today - timedelta(days=PDC_ROSTER_DAYS))  # fmt: skip
    row = wh.rows(PDC, today)[r]
    assert "points_line" not in row and row["team_pace_last_10"] is not None
    assert row["games_played_season"] == day.overnight.rows(PDC, today)[r]["games_played_season"]
    assert proc.compute(wh, today, frozenset({r})) == {r: row}
    assert r not in proc.compute(wh, today, frozenset(mates))


# ---------------------------------------------- a game added to the game day, end to end
def _daily_mode(orig: RefProcessor) -> RefProcessor:
    """The context as production's daily mode builds it: without the players the injury
    report has OUT/DOUBTFUL on the date (queries/shared_ctes.py:319-321)."""

    def compute(wh: Warehouse, d: date, ids: Ids) -> dict[str, RowDict]:
        rows = orig.compute(wh, d, ids)
        status = {p: x.get("injury_status") for p, x in wh.rows(INJURY, d, rows).items()}
        return {p: x for p, x in rows.items() if status.get(p) not in OUT_STATUSES}

    return RefProcessor(orig.name, orig.phase, orig.granularity, orig.entity_type, orig.table,
                        orig.reads, compute)  # fmt: skip


@contextmanager
def _production_context() -> Iterator[None]:
    """The reference pipeline with the context in production's daily mode, for the block."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(cast(dict[str, Any], BY_NAME), CONTEXT, _daily_mode(BY_NAME[CONTEXT]))
        yield


@pytest.fixture(scope="module")
def new_game_day() -> tuple[GameDay, tuple[ModeStats, Warehouse], str]:
    """A game day whose updates are an OUT status for a player R of a team idle that day
    (08:00), then a game added to the schedule between R's team and another idle team
    (09:00); its overnight warehouse and date-level baseline built with the context in
    production's daily mode; R."""
    with _production_context():
        season = generate_season(
            2025, DEFAULT_GAME_DATE, season_start=DEFAULT_GAME_DATE - timedelta(days=HISTORY_DAYS)
        )
        today = season.game_date
        playing = {t for g in season.games_on(today) for t in (g.home, g.away)}
        home, away = sorted(set(season.rosters) - playing)[:2]
        r = season.rosters[home][0]
        updates = (
            Update(8 * 3600.0, f"injury {r}", INJURY, today,
                   ((r, (("injury_status", "out"), ("injury_reason", "Illness"), ("team", home))),),
                   "player"),
            Update(9 * 3600.0, f"game added {away} at {home}", SCHEDULE, today,
                   ((NEW_GAME, (("arena", f"{home} Arena"), ("away", away), ("broadcast", "ESPN"),
                                ("home", home), ("start_time", "19:30"))),),
                   "game"),
        )  # fmt: skip
        day = prepare(season, REG, relations_for(REG, season))
        day = GameDay(day.season, day.overnight, updates, day.registry, day.relations)
        return day, run_date_level(day), r


@pytest.mark.parametrize("also_map", [True, False], ids=["routes.yaml", "without-also_map"])
def test_new_game_reaches_roster_players_only_with_the_also_map(
    new_game_day: tuple[GameDay, tuple[ModeStats, Warehouse], str], also_map: bool
) -> None:
    """The added game's context rows are first written by a run of the upcoming context; its
    completion names the players it wrote, not the OUT player R. The date-level cache caches
    R (roster expansion); routes.yaml, with the teammates' also_map on the cache's context
    input, misses nothing; without it the cache runs for the named players only and misses
    exactly R's row."""
    day, baseline, r = new_game_day

    assert "player" in day.registry.processors[CACHE].inputs[UPGC].also_paths
    reg = day.registry if also_map else variant(drop_cache_context_also_map)
    with _production_context():
        c = compare(GameDay(day.season, day.overnight, day.updates, reg, day.relations),
                    baseline=baseline)  # fmt: skip
    assert r in baseline[1].rows(PDC, day.game_date)
    assert r not in baseline[1].rows(UPGC, day.game_date)
    if also_map:
        assert c.outputs_identical, c.differing
    else:
        assert c.differing == {PDC: [(day.game_date.isoformat(), r)]}


def _drop_reference_fields(data: dict[str, Any]) -> None:
    """The cache's context input with production's column names only."""
    inp = input_of(data, CACHE, UPGC)
    inp["fields"] = [f for f in inp["fields"] if f not in ("games_last_14", "minutes_last_14")]


def test_new_game_needs_a_reference_column_in_the_fields(
    new_game_day: tuple[GameDay, tuple[ModeStats, Warehouse], str],
) -> None:
    """The reference's context rows carry none of production's fatigue column names, so a
    completion naming a new row's columns reaches the cache only through the reference's
    stand-ins in ``fields`` (``games_last_14``, ``minutes_last_14``, which the reference cache
    copies): without them the context's input skips it (irrelevant_fields) and the cache
    misses the new game's players, not only R."""
    day, baseline, r = new_game_day
    with _production_context():
        c = compare(GameDay(day.season, day.overnight, day.updates,
                            variant(_drop_reference_fields), day.relations),
                    baseline=baseline)  # fmt: skip
    missed = c.differing.get(PDC, [])
    assert (day.game_date.isoformat(), r) in missed and len(missed) > 1
