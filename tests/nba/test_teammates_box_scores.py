"""A box-score correction of one player reaches his teammates' rows where the reference reads
teammates' box scores, as production does: ``upcoming_player_game_context``'s
``star_teammates_out`` (the team's stars by their season's points and minutes,
upcoming_player_game_context/team_context.py:749-791) and ``ml_feature_store``'s
``teammate_usage_available`` (the injured teammates' usage in games of more than 10 minutes,
feature_extractor.py:1444-1456). The demo's stream corrects points by a few (no star flips)
and moves usage only through a team's totals (every teammate named), so these cases make
the corrections that matter: a routes.yaml copy without the player_game_summary input's
``also_map`` of either reader loses exactly that processor's updates, and the upcoming
context's lost star counts those of its readers of ``star_teammates_out`` too (the feature
store's feature 37 and the composite factors' usage context, as production reads it:
ml_feature_store_processor.py:1982, usage_spike_factor.py:85)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from nba_support import input_of, registry, relations_for, variant

from scoperouter.examples.nba.harness import GameDay, ModeStats, compare, prepare, run_date_level
from scoperouter.examples.nba.phase3 import _stars
from scoperouter.examples.nba.processors import BY_NAME, GAMEBOOK, INJURY
from scoperouter.examples.nba.refbase import OUT_STATUSES, PGS
from scoperouter.examples.nba.season import DEFAULT_GAME_DATE, generate_season
from scoperouter.examples.nba.stream import Update
from scoperouter.examples.nba.warehouse import Warehouse

REG = registry()
MATES = ("upcoming_player_game_context", "ml_feature_store")
STAR_READERS = ("player_composite_factors", "ml_feature_store")  # star_teammates_out
HISTORY_DAYS = 24  # a dozen games a team: enough for star status (>= 10 played games)


def _played(wh: Warehouse, player: str, today: date, days: int) -> list[tuple[date, int]]:
    """(date, minutes) of the player's played gamebook rows in the ``days`` before today."""
    out = []
    for back in range(1, days + 1):
        d = today - timedelta(days=back)
        row = wh.rows(GAMEBOOK, d, [player]).get(player)
        if row and int(str(row["minutes"] or 0)) > 0:
            out.append((d, int(str(row["minutes"]))))
    return out


def _corrections(day: GameDay) -> tuple[Update, ...]:
    """Two gamebook corrections of players OUT/DOUBTFUL on the game day, of two teams that
    play then: one makes a non-star a star (points +100 in his last game of the 10 days before),
    one takes a game of more than 10 minutes down to 9 (usage unchanged, it drops out of the
    injured teammate's usage average)."""
    wh, today = day.overnight, day.game_date
    playing = {t for g in day.season.games_on(today) for t in (g.home, g.away)}
    hurt = sorted(
        (str(x["team"]), p)
        for p, x in wh.rows(INJURY, today).items()
        if x["injury_status"] in OUT_STATUSES and x["team"] in playing
    )
    star_pick = next(
        (t, p, games[0][0])
        for t, p in hurt
        for games in (_played(wh, p, today, HISTORY_DAYS),)
        if len(games) >= 10 and games[0][0] >= today - timedelta(days=10)
        and p not in _stars(wh, today, {t})
    )  # fmt: skip
    usage_pick = next(
        (p, d)
        for t, p in hurt
        if t != star_pick[0]
        for d, minutes in _played(wh, p, today, 30)[:1]
        if minutes > 10 and len(_played(wh, p, today, 30)) > 1
    )
    _team, star, star_day = star_pick
    points = int(str(wh.rows(GAMEBOOK, star_day, [star])[star]["points"]))
    user, usage_day = usage_pick
    return (
        Update(8 * 3600.0, f"points correction {star}", GAMEBOOK, star_day,
               ((star, (("points", points + 100),)),), "player"),
        Update(8 * 3600.0 + 600, f"minutes correction {user}", GAMEBOOK, usage_day,
               ((user, (("minutes", 9),)),), "player"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def mates_day() -> tuple[GameDay, tuple[ModeStats, Warehouse]]:
    """A game day whose only updates are the two corrections, and its date-level baseline."""
    season = generate_season(
        2025, DEFAULT_GAME_DATE, season_start=DEFAULT_GAME_DATE - timedelta(days=HISTORY_DAYS)
    )
    day = prepare(season, REG, relations_for(REG, season))
    day = GameDay(day.season, day.overnight, _corrections(day), day.registry, day.relations)
    return day, run_date_level(day)


@pytest.mark.parametrize(
    "dropped",
    [(), (MATES[0],), (MATES[1],), MATES],
    ids=["routes.yaml", "no-also_map-upgc", "no-also_map-mlfs", "no-also_map"],
)
def test_box_score_corrections_need_the_teammates_also_map(
    mates_day: tuple[GameDay, tuple[ModeStats, Warehouse]], dropped: tuple[str, ...]
) -> None:
    """Without the player_game_summary input's also_map of a teammates' reader, exactly that
    processor's output (and the upcoming context's star count's readers) differs from date
    level; routes.yaml as it is loses nothing."""
    day, baseline = mates_day

    def drop(data: dict[str, object]) -> None:
        for proc in dropped:
            del input_of(data, proc, PGS)["also_map"]

    c = compare(GameDay(day.season, day.overnight, day.updates, variant(drop), day.relations),
                baseline=baseline)  # fmt: skip
    stale = set(dropped) | (set(STAR_READERS) if MATES[0] in dropped else set())
    assert set(c.differing) == {BY_NAME[p].publishes for p in stale}
    assert (c.outputs_identical, c.missed_updates > 0) == (not dropped, bool(dropped))
