"""prediction_coordinator's own read of the injury report: production's worker reads the
player's status and every teammate's on the date (predictions/shared/injury_integration.py:
241-255, :432-443): OUT teammates give the usage boost, DOUBTFUL ones the opportunity score,
both written into the prediction row (predictions/worker/worker.py:1454-1468, :2136-2146).

Most injury updates also reach the teammates' predictions through the cascade (the feature
store sums the OUT/DOUBTFUL teammates' usage, feature 47), so the demo's day loses nothing
without the coordinator's injury input. A player going from OUT to DOUBTFUL moves no
teammate's feature row (he is in the OUT/DOUBTFUL set before and after) but moves every
teammate's prediction: only the coordinator's injury input, with its teammates'
``also_map``, re-runs them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from nba_support import input_of, registry, relations_for, variant

from scoperouter.examples.nba.harness import GameDay, ModeStats, compare, prepare, run_date_level
from scoperouter.examples.nba.processors import INJURY, build_all
from scoperouter.examples.nba.refbase import MLFS, PRED, UPGC
from scoperouter.examples.nba.season import DEFAULT_GAME_DATE, generate_season
from scoperouter.examples.nba.stream import Update, apply_update
from scoperouter.examples.nba.warehouse import Warehouse

REG = registry()
COORD = "prediction_coordinator"
HISTORY_DAYS = 10
ALSO_MAP = {"player": ["player_team", "team_players"]}


def _drop_input(data: dict[str, Any]) -> None:
    """The gap as it was: the coordinator reads the injury report only through the cascade."""
    procs = data["processors"][COORD]
    procs["inputs"] = [i for i in procs["inputs"] if i["source"] != INJURY]


def _drop_also_map(data: dict[str, Any]) -> None:
    """The input maps the named player by identity only (his own status)."""
    assert input_of(data, COORD, INJURY).pop("also_map") == ALSO_MAP


def _status(who: str, team: str, status: str) -> tuple[tuple[str, tuple[tuple[str, str], ...]]]:
    return ((who, (("injury_status", status), ("injury_reason", "Ankle"), ("team", team))),)


@pytest.fixture(scope="module")
def out_to_doubtful() -> tuple[GameDay, tuple[ModeStats, Warehouse], str, list[str]]:
    """A game day whose updates mark a player X of a team playing that day OUT (08:00), then
    DOUBTFUL (10:00); its date-level baseline; X and his teammates."""
    season = generate_season(
        2025, DEFAULT_GAME_DATE, season_start=DEFAULT_GAME_DATE - timedelta(days=HISTORY_DAYS)
    )
    today = season.game_date
    team = sorted({t for g in season.games_on(today) for t in (g.home, g.away)})[0]
    x = season.rosters[team][0]
    updates = (
        Update(8 * 3600.0, f"injury {x} out", INJURY, today, _status(x, team, "out"), "player"),
        Update(10 * 3600.0, f"injury {x} doubtful", INJURY, today,
               _status(x, team, "doubtful"), "player"),
    )  # fmt: skip
    day = prepare(season, REG, relations_for(REG, season))
    day = GameDay(day.season, day.overnight, updates, day.registry, day.relations)
    return day, run_date_level(day), x, [q for q in season.rosters[team] if q != x]


def test_out_to_doubtful_moves_teammates_predictions_not_their_features(
    out_to_doubtful: tuple[GameDay, tuple[ModeStats, Warehouse], str, list[str]],
) -> None:
    """The reference: X's second update leaves every teammate's feature and context row as
    it was and changes every teammate's prediction (one OUT teammate fewer: boost and
    opportunity score)."""
    day, _, _x, mates = out_to_doubtful
    wh, today = day.overnight.copy(), day.game_date
    out, doubtful = sorted(day.updates, key=lambda u: u.at)
    apply_update(wh, out, today)
    build_all(wh, (today,))
    before = {t: wh.rows(t, today, mates) for t in (MLFS, UPGC, PRED)}
    apply_update(wh, doubtful, today)
    build_all(wh, (today,))
    after = {t: wh.rows(t, today, mates) for t in (MLFS, UPGC, PRED)}
    assert after[MLFS] == before[MLFS] and after[UPGC] == before[UPGC]
    moved = [q for q in mates if after[PRED][q] != before[PRED][q]]
    assert sorted(moved) == sorted(after[PRED]) and len(moved) > 1


@pytest.mark.parametrize(
    ("mutate", "missed"),
    [
        pytest.param(None, False, id="routes.yaml"),
        pytest.param(_drop_also_map, True, id="without-also_map"),
        pytest.param(_drop_input, True, id="without-the-input"),
    ],
)
def test_teammates_predictions_need_the_coordinators_injury_input(
    out_to_doubtful: tuple[GameDay, tuple[ModeStats, Warehouse], str, list[str]],
    mutate: Any,
    missed: bool,
) -> None:
    """Routed with routes.yaml the day ends as date level; without the coordinator's
    injury input, or with it by identity only, the teammates' predictions keep X's OUT."""
    day, baseline, x, mates = out_to_doubtful
    reg = day.registry if mutate is None else variant(mutate)
    c = compare(GameDay(day.season, day.overnight, day.updates, reg, day.relations),
                baseline=baseline)  # fmt: skip
    if not missed:
        assert c.outputs_identical, c.differing
        return
    wrong = {pid for _, pid in c.differing.get(PRED, [])}
    assert wrong and wrong <= set(mates) and x not in wrong
