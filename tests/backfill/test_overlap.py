"""Which backfills must not run at once: one rewrites what the other's runs read or write
(repository routes.yaml), and POST /backfills refuses the second with 409."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from backfill_support import repo_reach as reach
from backfill_support import repo_registry as reg

from scoperouter.backfill.executor import RunOutcome
from scoperouter.backfill.http_api import BackfillApi
from scoperouter.backfill.overlap import conflict, reach_back
from scoperouter.backfill.plan import BackfillPlan, Request, plan_backfill

AS_OF = date(2025, 11, 30)


def plan(a: int, b: int, *procs: str) -> BackfillPlan:
    return plan_backfill(reg(), Request(date(2025, 11, a), date(2025, 11, b), procs), as_of=AS_OF)


@pytest.mark.parametrize(
    ("a", "b", "reach"),
    [
        ("league_rankings", "league_rankings", 0),
        ("league_rankings", "player_game_summary", 0),
        ("league_rankings", "team_offense_game_summary", 0),  # through player_game_summary
        ("player_composite_factors", "upcoming_player_game_context", 30),
        ("ml_feature_store", "upcoming_team_game_context", 366 + 30),  # via composite factors
        ("player_daily_cache", "team_defense_game_summary", 365 + 730),  # via upcoming context
        ("player_composite_factors", "player_game_summary", 730 + 30),  # via upcoming context
        ("team_defense_zone_analysis", "team_defense_game_summary", 365),
        # the export's season, the feature store's year, the daily cache's season, the
        # upcoming context's reads since 2025-10-22
        ("player_prediction_exporter", "player_game_summary", 365 + 366 + 365 + 730),
    ],
)
def test_reach_back_sums_the_days_lookbacks_along_the_longest_path(
    a: str, b: str, reach: int | None
) -> None:
    """A processor reads an ancestor back by the sum of the days lookbacks on the way."""
    assert reach_back(reg())[a][b] == reach


def test_unrelated_processors_have_no_reach() -> None:
    """Processors that do not read each other are not in each other's reach."""
    r = reach_back(reg())
    assert "team_defense_game_summary" not in r["league_rankings"]
    assert "league_rankings" not in r["team_defense_game_summary"]


@pytest.mark.parametrize(
    ("new", "other", "want"),
    [
        # the same processor on the same dates: both write them
        (plan(1, 2, "league_rankings"), plan(2, 3, "league_rankings"),
         ("league_rankings", "league_rankings")),
        (plan(1, 2, "league_rankings"), plan(3, 4, "league_rankings"), None),
        # league_rankings reads player_game_summary on the same date, in either order
        (plan(1, 2, "league_rankings"), plan(1, 1, "player_game_summary"),
         ("league_rankings", "player_game_summary")),
        (plan(1, 1, "player_game_summary"), plan(1, 2, "league_rankings"),
         ("player_game_summary", "league_rankings")),
        (plan(1, 2, "league_rankings"), plan(3, 3, "player_game_summary"), None),
        # a 14-day lookback reads the other's earlier dates
        (plan(20, 21, "player_composite_factors"), plan(10, 10, "upcoming_team_game_context"),
         ("player_composite_factors", "upcoming_team_game_context")),
        # unrelated processors, the same dates
        (plan(1, 2, "league_rankings"), plan(1, 2, "team_defense_game_summary"), None),
    ],
)  # fmt: skip
def test_conflict(new: BackfillPlan, other: BackfillPlan, want: tuple[str, str] | None) -> None:
    """Plans conflict exactly when one's runs read or write dates the other rewrites."""
    assert conflict(reach(), new, other) == want


class Gated:
    """Runs wait for ``release``; records what ran."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls: list[tuple[str, date]] = []

    async def execute(
        self, processor: str, day: date, *, backfill_id: str, attempt: int
    ) -> RunOutcome:
        await self.release.wait()
        self.calls.append((processor, day))
        return RunOutcome(True, rows=1)


async def test_a_backfill_overlapping_a_running_one_is_refused(tmp_path: Path) -> None:
    """POST of a backfill that reads what a running one rewrites: 409 naming it, nothing run."""
    gate = Gated()
    api = BackfillApi(reg(), lambda: None, tmp_path, lambda _b: gate, as_of=lambda: AS_OF)
    first = {"start": "2025-11-01", "end": "2025-11-02", "processors": ["player_game_summary"]}
    code, got = await api.start(first)
    assert code == 202
    bid = got["backfill_id"]
    reader = {"start": "2025-11-02", "end": "2025-11-03", "processors": ["league_rankings"]}
    code, refused = await api.start(reader)
    assert code == 409, refused
    assert refused["error"] == "overlapping_backfill" and refused["backfill_id"] == bid
    unrelated = {"start": "2025-11-01", "end": "2025-11-02",
                 "processors": ["team_defense_game_summary"]}  # fmt: skip
    code, _ = await api.start(unrelated)
    assert code == 202
    gate.release.set()
    await api.tasks[bid]
    code, _ = await api.start(reader)  # once the first has ended
    assert code == 202
    await asyncio.gather(*api.tasks.values())
    await api.close()
    assert sorted(gate.calls) == sorted(
        [(p, date(2025, 11, d)) for p in ("player_game_summary", "team_defense_game_summary")
         for d in (1, 2)] + [("league_rankings", date(2025, 11, d)) for d in (2, 3)]
    )  # fmt: skip


def test_a_stored_plan_with_a_processor_the_registry_lacks_is_compared_by_name() -> None:
    """A running backfill planned with another routes.yaml: its unknown processor is no KeyError."""
    other = plan(1, 2, "player_game_summary")
    retired = replace(
        other, processors=("retired_summary",), last_day={"retired_summary": date(2025, 11, 2)}
    )
    assert conflict(reach(), plan(1, 2, "league_rankings"), retired) is None
    assert conflict(reach(), plan(1, 2, "league_rankings"), other) is not None
