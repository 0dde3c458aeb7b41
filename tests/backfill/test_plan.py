"""The pure backfill planner: selection, dates (with the lookback dates past the end,
capped at as-of) and dependency intervals, read from the repository's routes.yaml."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

import pytest
from backfill_support import REPO

from scoperouter.backfill.plan import (
    BackfillPlan,
    Dep,
    PlanError,
    Request,
    plan_backfill,
    registry_digest,
    select,
)
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config, load_config_text
from scoperouter.processor_registry.relations import InMemoryRelations

D1, D2, AS_OF = date(2025, 11, 1), date(2025, 11, 10), date(2026, 6, 30)


@cache
def reg() -> CompiledRegistry:
    return load_config(REPO / "routes.yaml", with_relations=False).registry


EXPORTER_SEASON = "    lookback: {days: 365}\n"
EXPORTER_GAMES = "    lookback: {occurrences: 10, via: player_games}\n"


@cache
def occurrences_reg() -> CompiledRegistry:
    """routes.yaml with the player export's lookback its last 10 games (occurrences), as it
    was before it read the season: the planner's occurrence rules need one such lookback."""
    text = (REPO / "routes.yaml").read_text(encoding="utf-8")
    head, sep, tail = text.partition("  player_prediction_exporter:\n")
    assert sep and tail.count(EXPORTER_SEASON) >= 1
    tail = tail.replace(EXPORTER_SEASON, EXPORTER_GAMES, 1)
    return load_config_text(head + sep + tail, with_relations=False).registry


def plan(
    req: Request,
    as_of: date = AS_OF,
    relations: InMemoryRelations | None = None,
    registry: CompiledRegistry | None = None,
) -> BackfillPlan:
    return plan_backfill(registry or reg(), req, as_of=as_of, relations=relations)


def run(p: BackfillPlan, name: str, day: date) -> tuple[Dep, ...]:
    return p.runs[p.index[f"{name}@{day.isoformat()}"]].deps


@pytest.mark.parametrize(
    ("req", "want"),
    [
        (Request(D1, D2, processors=("player_game_summary",)), ["player_game_summary"]),
        (Request(D1, D2, from_=("prediction_coordinator",)),
         ["prediction_coordinator", "daily_predictions_exporter", "player_prediction_exporter"]),
        (Request(D1, D2, phases=(5, 6)),
         ["prediction_coordinator", "daily_predictions_exporter", "player_prediction_exporter"]),
        (Request(D1, D2, from_=("player_shot_zone_analysis",), phases=(4, 4)),
         ["player_shot_zone_analysis", "player_composite_factors", "player_daily_cache",
          "ml_feature_store"]),
    ],
)  # fmt: skip
def test_selection(req: Request, want: list[str]) -> None:
    """--processors is exact, --from adds everything downstream, --phases filters; topo order."""
    got = select(reg(), req)
    assert sorted(got) == sorted(want)
    order = {n: i for i, n in enumerate(reg().topo_order)}
    assert list(got) == sorted(got, key=order.__getitem__)


@pytest.mark.parametrize(
    ("req", "error"),
    [
        (Request(D1, D2, processors=("nope",)), "unknown processor"),
        (
            Request(D1, D2, processors=("player_game_summary",), from_=("league_rankings",)),
            "exclusive",
        ),
        (Request(D1, D2, phases=(9, 9)), "no processor"),
        (Request(D2, D1), "before --start"),
        (Request(AS_OF + timedelta(days=1), AS_OF + timedelta(days=2)), "after the as-of"),
        # a typo'd year (1025 for 2025) must not plan millions of runs: at most 3,660 days
        (Request(date(1025, 11, 1), D2), "3660"),
        (Request(AS_OF - timedelta(days=3660), AS_OF), "3660"),  # 3,661 dates
        # a short range whose lookback dates reach 3,661 dates up to as-of (occurrences, no
        # relation data): a typo'd year in both --start and --end planned millions of runs
        (Request(AS_OF - timedelta(days=3660), AS_OF - timedelta(days=3659)), "3660"),
        # a typo'd year 0001: with this registry's occurrences lookback, the span it reaches
        (Request(date(1, 1, 1), date(1, 1, 2)), "3660"),
    ],
)
def test_bad_requests_are_plan_errors(req: Request, error: str) -> None:
    """A selection or range that cannot be planned is a PlanError naming why."""
    with pytest.raises(PlanError, match=error):
        plan(req, registry=occurrences_reg())


def test_a_lookback_before_the_first_date_of_the_calendar_is_a_plan_error() -> None:
    """A typo'd year 0001 whose days lookback reaches before 0001-01-01 is a PlanError (an
    OverflowError answered 500 by POST /backfills and a traceback by the CLI)."""
    with pytest.raises(PlanError, match="outside the calendar"):
        plan(Request(date(1, 1, 1), date(1, 1, 2)))


def test_the_range_limit_counts_the_dates_up_to_as_of() -> None:
    """3,660 dates up to the as-of date plan (an end past as-of plans nothing after it)."""
    p = plan(Request(AS_OF - timedelta(days=3659), AS_OF + timedelta(days=400),
                     processors=("player_game_summary",)))  # fmt: skip
    assert len(p.runs) == 3660


def test_the_range_limit_counts_the_lookback_dates() -> None:
    """A short range whose lookback dates reach exactly 3,660 dates up to as-of still plans."""
    start = AS_OF - timedelta(days=3659)
    p = plan(Request(start, start, processors=PGS_EXPORTER), registry=occurrences_reg())
    assert p.last_day["player_prediction_exporter"] == AS_OF  # occurrences, no relation data
    assert len(p.runs) == 1 + 3660


CHAIN = ("player_game_summary", "upcoming_player_game_context", "player_composite_factors")
PGS_PCF = ("player_game_summary", "player_composite_factors")
PGS_EXPORTER = ("player_game_summary", "player_prediction_exporter")


@pytest.mark.parametrize(
    ("processors", "processor", "last"),
    [
        ((), "player_game_summary", D2),  # no upstream in the selection: the range only
        # days: 365 (the star teammates' season) after D2, capped at the as-of date
        ((), "upcoming_player_game_context", AS_OF),
        ((), "player_shot_zone_analysis", AS_OF),  # days: 365 (the season), capped at as-of
        ((), "player_prediction_exporter", AS_OF),  # occurrences, no relation data: as-of
        ((), "player_composite_factors", AS_OF),  # reads player_shot_zone_analysis
        (CHAIN, "player_composite_factors", AS_OF),  # reads upgc, which reaches the as-of
        (PGS_PCF, "player_composite_factors", D2 + timedelta(days=30)),  # days: 30 after D2
    ],
)
def test_lookback_dates_past_the_end(
    processors: tuple[str, ...], processor: str, last: date
) -> None:
    """A processor runs up to the last date whose lookback reads a re-run upstream date."""
    p = plan(Request(D1, D2, processors=processors))
    assert p.last_day[processor] == last
    days = [r.day for r in p.runs if r.processor == processor]
    assert days == [D1 + timedelta(days=i) for i in range((last - D1).days + 1)]


@pytest.mark.parametrize(
    ("req", "processor", "last"),
    [
        # player_game_summary (phase 3) changed on D1..D2, re-run outside this backfill:
        # the shot zones of the later dates read it (a player's last 20 played games)
        (Request(D1, D2, from_=("player_game_summary",), phases=(4, 6)),
         "player_shot_zone_analysis", AS_OF),
        # the 14-day composite factors, through the excluded upcoming context (days: 365)
        (Request(D1, D2, from_=("player_game_summary",), phases=(4, 6)),
         "player_composite_factors", AS_OF),
        # no lookback: the range only
        (Request(D1, D2, from_=("player_game_summary",), phases=(4, 6)), "league_rankings", D2),
        # a --from root the phases keep: as before
        (Request(D1, D2, from_=("player_shot_zone_analysis",), phases=(4, 4)),
         "player_shot_zone_analysis", D2),
    ],
)  # fmt: skip
def test_from_roots_the_phases_leave_out_still_reach_the_lookback_dates(
    req: Request, processor: str, last: date
) -> None:
    """--from P --phases A-B: P's closure outside the phases counts as re-run, so lookback dates stay."""
    p = plan(req)
    assert "player_game_summary" not in p.processors
    assert p.last_day[processor] == last
    assert all(d.upstream != "player_game_summary" for r in p.runs for d in r.deps)


def test_as_of_caps_every_date() -> None:
    """No run is planned after as-of, and the range's end is capped too."""
    cap = D2 + timedelta(days=3)
    p = plan(Request(D1, D2 + timedelta(days=10)), as_of=cap)
    assert max(r.day for r in p.runs) == cap


@pytest.mark.parametrize(
    ("processor", "day", "want"),
    [
        # same date only: team offense runs before player game summary (svc:703-726)
        ("player_game_summary", D1 + timedelta(days=3),
         {Dep("team_offense_game_summary", D1 + timedelta(days=3), D1 + timedelta(days=3))}),
        # days: 14, clipped at the start
        ("player_composite_factors", D1 + timedelta(days=5),
         {Dep(u, D1, D1 + timedelta(days=5)) for u in (
             "player_game_summary", "player_shot_zone_analysis", "team_defense_zone_analysis",
             "upcoming_player_game_context", "upcoming_team_game_context")}),
        # occurrences without relation data: from the start of the range
        ("team_defense_zone_analysis", D2, {Dep("team_defense_game_summary", D1, D2)}),
        # past the end: the upstream's planned dates end at D2
        ("upcoming_player_game_context", D2 + timedelta(days=20),
         {Dep("player_game_summary", D1, D2), Dep("team_defense_game_summary", D1, D2),
          Dep("team_offense_game_summary", D1, D2)}),
    ],
)  # fmt: skip
def test_dependency_intervals(processor: str, day: date, want: set[Dep]) -> None:
    """Each run needs its selected upstreams on the dates its lookback reads, clipped."""
    assert set(run(plan(Request(D1, D2)), processor, day)) == want


def test_occurrence_windows_follow_relation_data() -> None:
    """With via rows, an occurrences lookback reads back to the N-th previous game of the
    entities playing that day, and reaches forward to their N-th next game."""
    games = [D1 + timedelta(days=2 * i) for i in range(40)]  # lebron plays every other day
    other = [d + timedelta(days=1) for d in games]  # tatum on the days between
    rows = [(d, "lebronjames", f"g{i}") for i, d in enumerate(games)]
    rows += [(d, "jaysontatum", f"h{i}") for i, d in enumerate(other)]
    rel = InMemoryRelations(
        {"player_games": rows},
        inverses={"game_players": "player_games"},
        types={"player_games": ("player", "game"), "game_players": ("game", "player")},
    )
    req = Request(
        games[0], games[20], processors=("player_game_summary", "player_prediction_exporter")
    )
    p = plan(req, relations=rel, registry=occurrences_reg())
    assert run(p, "player_prediction_exporter", games[18]) == (
        Dep("player_game_summary", games[8], games[18]),  # 10 games back
    )
    assert p.last_day["player_prediction_exporter"] == games[20 + 10]


def test_runs_are_in_a_valid_order_and_digest_is_stable() -> None:
    """Plan order satisfies every edge; the registry digest is deterministic."""
    p = plan(Request(D1, D2))
    pos = p.index
    for i, r in enumerate(p.runs):
        for d in r.deps:
            day = d.lo
            while day <= d.hi:
                assert pos[f"{d.upstream}@{day.isoformat()}"] < i
                day += timedelta(days=1)
    assert registry_digest(reg()) == registry_digest(reg())
    assert Request(D1, D2).key("x") != Request(D1, D2, phases=(3, 6)).key("x")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (Request(D1, D2, processors=("league_rankings", "player_game_summary")),
         Request(D1, D2, processors=("player_game_summary", "league_rankings"))),
        (Request(D1, D2, processors=("league_rankings",)),
         Request(D1, D2, processors=("league_rankings", "league_rankings"))),
        (Request(D1, D2, from_=("player_game_summary", "league_rankings")),
         Request(D1, D2, from_=("league_rankings", "player_game_summary"))),
    ],
)  # fmt: skip
def test_the_same_selection_in_another_order_is_the_same_backfill(a: Request, b: Request) -> None:
    """The resume key names the selection as a set: `--processors B A` finds the backfill of
    `--processors A B` (its lock, its done runs) instead of re-running it all beside it."""
    assert a.key("x") == b.key("x")
    assert a.key("x") != Request(D1, D2).key("x")
