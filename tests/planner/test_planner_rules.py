"""Every planner rule of SPEC section 2, table-driven on a small registry and on routes.yaml."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from planner_support import NBA_RELATIONS, NBA_ROWS, D, event, registry_from, relations_for

from scoperouter.processor_registry.loader import load_config
from scoperouter.router.decisions import REASON_ORDER, Decision
from scoperouter.router.planner import plan

ROUTES = Path(__file__).resolve().parents[2] / "routes.yaml"
AS_OF = D + timedelta(days=30)


def d(n: int) -> date:
    return D + timedelta(days=n)


MINI = registry_from(
    {
        "version": 1,
        **NBA_RELATIONS,
        "defaults": {"max_entities": 3},
        "processors": {
            "p_player": {
                "phase": 3,
                "granularity": "player",
                "inputs": [
                    {"source": "raw.a", "fields": ["x", "y"]},
                    {"source": "raw.b", "ignore_fields": ["noise"]},
                    {"source": "raw.c", "map": {"game": ["game_teams", "team_players"]}},
                ],
            },
            "p_team": {
                "phase": 3,
                "granularity": "team",
                "inputs": [{"source": "raw.a"}, {"source": "raw.c"}],
            },
            "p_date": {"phase": 3, "granularity": "date", "inputs": [{"source": "raw.a"}]},
            "p_other": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.z"}]},
            "p_days": {
                "phase": 4,
                "granularity": "player",
                "inputs": [{"source": "raw.a"}],
                "lookback": {"days": 3},
            },
            "p_games": {
                "phase": 4,
                "granularity": "player",
                "inputs": [{"source": "raw.a"}],
                "lookback": {"games": 2, "via": "player_games"},
            },
            "p_game_days": {
                "phase": 4,
                "granularity": "player",
                "inputs": [{"source": "raw.c", "map": {"game": ["game_teams", "team_players"]}}],
                "lookback": {"days": 2},
                "max_entities": 10,
            },
            "p_date_games": {
                "phase": 4,
                "granularity": "date",
                "inputs": [{"source": "raw.a"}],
                "lookback": {"games": 1, "via": "player_games"},
            },
        },
    }
)
MINI_ROWS: dict[str, list[tuple[date | None, str, str]]] = {
    "team_players": [
        (None, "T1", "p1"),
        (None, "T1", "p2"),
        (None, "T2", "p3"),
        (D, "T2", "p4"),
        (None, "T3", "p5"),
        # a dated row on d(1) too: without one, d(1) would be past team_players' dated span
        # (its data not loaded), undated rows or not, and every hop through it empty_mapping
        (d(1), "T7", "q1"),
    ],
    "game_teams": [(D, "G1", "T1"), (D, "G1", "T2"), (D, "G9", "T9"), (d(1), "G2", "T3")],
    "player_games": [
        (D, "p1", "G1"),
        (d(2), "p1", "G3"),
        (d(5), "p1", "G4"),
        (d(9), "p1", "G5"),
        (d(1), "p5", "G2"),
        (d(4), "p5", "G6"),
        (D, "p3", "G1"),
        (d(3), "p3", "G7"),
    ],
}
MINI_REL = relations_for(MINI, MINI_ROWS)
# dates after D, up to AS_OF, on which player_games has no rows at all
UNKNOWN_DAYS = (d(6), d(7), d(8), *(d(k) for k in range(10, 31)))
A = {"source": "raw.a"}


def decision(decisions: tuple[Decision, ...], name: str) -> Decision:
    [found] = [x for x in decisions if x.processor == name]
    return found


# (event fields, processor, as_of, expected (action, scope, ids, dates, reason))
CASES: list[tuple[str, dict[str, Any], str, date, tuple[Any, ...]]] = [
    ("not_an_input", A, "p_other", AS_OF, ("skip", None, None, (), "not_an_input")),
    (
        "unknown source",
        {"source": "raw.nobody"},
        "p_player",
        AS_OF,
        ("skip", None, None, (), "unknown_source"),
    ),
    (
        "unknown source wins over failed",
        {"source": "raw.nobody", "status": "failed"},
        "p_player",
        AS_OF,
        ("skip", None, None, (), "unknown_source"),
    ),
    (
        "upstream_failed",
        {**A, "status": "failed"},
        "p_player",
        AS_OF,
        ("skip", None, None, (), "upstream_failed"),
    ),
    (
        "legacy failure",
        {**A, "success": False},
        "p_team",
        AS_OF,
        ("skip", None, None, (), "upstream_failed"),
    ),
    ("no_data", {**A, "status": "no_data"}, "p_player", AS_OF, ("skip", None, None, (), "no_data")),
    (
        "skip_downstream",
        {**A, "skip_downstream": True},
        "p_team",
        AS_OF,
        ("skip", None, None, (), "skip_downstream"),
    ),
    (
        "fields miss",
        {**A, "changed_fields": ["z"]},
        "p_player",
        AS_OF,
        ("skip", None, None, (), "irrelevant_fields"),
    ),
    (
        "fields hit",
        {**A, "changed_fields": ["z", "y"], "affected_entities": {"players": ["p1"]}},
        "p_player",
        AS_OF,
        ("run", "entities", ("p1",), (D,), "entity_scope"),
    ),
    (
        "ignore all",
        {"source": "raw.b", "changed_fields": ["noise"]},
        "p_player",
        AS_OF,
        ("skip", None, None, (), "irrelevant_fields"),
    ),
    (
        "ignore some",
        {
            "source": "raw.b",
            "changed_fields": ["noise", "pts"],
            "affected_entities": {"player": ["p2"]},
        },
        "p_player",
        AS_OF,
        ("run", "entities", ("p2",), (D,), "entity_scope"),
    ),
    (
        "empty fields relevant",
        {**A, "changed_fields": [], "affected_entities": {"players": ["p1"]}},
        "p_player",
        AS_OF,
        ("run", "entities", ("p1",), (D,), "entity_scope"),
    ),
    (
        "backfill",
        {**A, "start_date": "2025-11-19", "end_date": "2025-11-21"},
        "p_team",
        AS_OF,
        ("run", "date", None, (D, d(1), d(2)), "backfill"),
    ),
    (
        "backfill no lookback no cap",
        {**A, "start_date": "2025-11-19", "end_date": "2025-11-20"},
        "p_days",
        D,
        ("run", "date", None, (D, d(1)), "backfill"),
    ),
    (
        "date_granularity",
        {**A, "affected_entities": {"players": ["p1"]}},
        "p_date",
        AS_OF,
        ("run", "date", None, (D,), "date_granularity"),
    ),
    (
        "no_entities_in_event",
        A,
        "p_player",
        AS_OF,
        ("run", "date", None, (D,), "no_entities_in_event"),
    ),
    (
        "all lists empty",
        {**A, "affected_entities": {"players": []}},
        "p_player",
        AS_OF,
        ("run", "date", None, (D,), "no_entities_in_event"),
    ),
    (
        "undeclared type",
        {**A, "affected_entities": {"venues": ["v1"]}},
        "p_player",
        AS_OF,
        ("run", "date", None, (D,), "unmapped_entity_type"),
    ),
    (
        "case-sensitive key",
        {**A, "affected_entities": {"Players": ["p1"]}},
        "p_player",
        AS_OF,
        ("run", "date", None, (D,), "unmapped_entity_type"),
    ),
    (
        "no path",
        {**A, "affected_entities": {"games": ["G1"]}},
        "p_player",
        AS_OF,
        ("run", "date", None, (D,), "unmapped_entity_type"),
    ),
    (
        "single relation (inverse)",
        {**A, "affected_entities": {"players": ["p1", "p3"]}},
        "p_team",
        AS_OF,
        ("run", "entities", ("T1", "T2"), (D,), "entity_scope"),
    ),
    (
        "single relation",
        {"source": "raw.c", "affected_entities": {"game": ["G1"]}},
        "p_team",
        AS_OF,
        ("run", "entities", ("T1", "T2"), (D,), "entity_scope"),
    ),
    (
        "explicit two-hop map",
        {"source": "raw.c", "affected_entities": {"games": ["G1"]}},
        "p_player",
        AS_OF,
        ("run", "date", None, (D,), "fallback_threshold"),
    ),
    (
        "identity beats map",
        {"source": "raw.c", "affected_entities": {"players": ["p9"]}},
        "p_player",
        AS_OF,
        ("run", "entities", ("p9",), (D,), "entity_scope"),
    ),
    (
        "dated row holds on its date only",
        {"source": "raw.c", "game_date": "2025-11-20", "affected_entities": {"game": ["G2"]}},
        "p_player",
        AS_OF,
        ("run", "entities", ("p5",), (d(1),), "entity_scope"),
    ),
    (
        "empty_mapping unknown id",
        {**A, "affected_entities": {"players": ["p1", "ghost"]}},
        "p_team",
        AS_OF,
        ("run", "date", None, (D,), "empty_mapping"),
    ),
    (
        "empty_mapping at second hop",
        {"source": "raw.c", "affected_entities": {"games": ["G9"]}},
        "p_player",
        AS_OF,
        ("run", "date", None, (D,), "empty_mapping"),
    ),
    (
        # d(1) is loaded (game_teams and team_players have rows dated then), d(2) is not:
        # whoever joins a roster on d(2) is unknown, so the full date
        "later date not loaded",
        {"source": "raw.c", "affected_entities": {"games": ["G1"]}},
        "p_game_days",
        AS_OF,
        ("run", "date", None, (D, d(1), d(2)), "unknown_relation_date"),
    ),
    (
        "later dates loaded",
        {"source": "raw.c", "affected_entities": {"games": ["G1"]}},
        "p_game_days",
        d(1),
        ("run", "entities", ("p1", "p2", "p3", "p4"), (D, d(1)), "entity_scope"),
    ),
    (
        "relation on other date",
        {**A, "game_date": "2025-11-20", "affected_entities": {"players": ["p4"]}},
        "p_team",
        AS_OF,
        ("run", "date", None, (d(1),), "empty_mapping"),
    ),
    (
        "threshold inclusive",
        {**A, "affected_entities": {"players": ["p1", "p2", "p3"]}},
        "p_player",
        AS_OF,
        ("run", "entities", ("p1", "p2", "p3"), (D,), "entity_scope"),
    ),
    (
        "fallback_threshold",
        {**A, "affected_entities": {"players": ["p1", "p2", "p3", "p4"]}},
        "p_player",
        AS_OF,
        ("run", "date", None, (D,), "fallback_threshold"),
    ),
    (
        "types united",
        {
            "source": "raw.c",
            "affected_entities": {"players": ["p1"], "player": ["p1", "p7"], "games": ["G2"]},
            "game_date": "2025-11-20",
        },
        "p_player",
        AS_OF,
        ("run", "entities", ("p1", "p5", "p7"), (d(1),), "entity_scope"),
    ),
    (
        "united past threshold",
        {
            "source": "raw.c",
            "affected_entities": {"players": ["p1", "p8", "p9"], "games": ["G2"]},
            "game_date": "2025-11-20",
        },
        "p_player",
        AS_OF,
        ("run", "date", None, (d(1),), "fallback_threshold"),
    ),
    (
        "lookback days",
        {**A, "affected_entities": {"players": ["p1"]}},
        "p_days",
        AS_OF,
        ("run", "entities", ("p1",), (D, d(1), d(2), d(3)), "entity_scope"),
    ),
    (
        "lookback days capped",
        {**A, "affected_entities": {"players": ["p1"]}},
        "p_days",
        d(1),
        ("run", "entities", ("p1",), (D, d(1)), "entity_scope"),
    ),
    (
        "cap only on added dates",
        {**A, "affected_entities": {"players": ["p1"]}},
        "p_days",
        d(-5),
        ("run", "entities", ("p1",), (D,), "entity_scope"),
    ),
    (
        "lookback days at date scope",
        A,
        "p_days",
        AS_OF,
        ("run", "date", None, (D, d(1), d(2), d(3)), "no_entities_in_event"),
    ),
    (
        "lookback games",
        {**A, "affected_entities": {"players": ["p1", "p5"]}},
        "p_games",
        AS_OF,
        ("run", "entities", ("p1", "p5"), (D, d(1), d(2), d(4), d(5)), "entity_scope"),
    ),
    (
        "lookback games capped",
        {**A, "affected_entities": {"players": ["p1"]}},
        "p_games",
        d(4),
        ("run", "entities", ("p1",), (D, d(2)), "entity_scope"),
    ),
    (
        "games at date scope: entities with a via row on D",
        A,
        "p_games",
        AS_OF,
        # p3 has one known game after D (fewer than 2), so every later date without any
        # player_games rows (d6-d8, d10-d30: missing data) up to as-of is covered too
        ("run", "date", None, (D, d(2), d(3), d(5), *UNKNOWN_DAYS), "no_entities_in_event"),
    ),
    (
        "games, date granularity",
        A,
        "p_date_games",
        AS_OF,
        ("run", "date", None, (D, d(2), d(3)), "date_granularity"),
    ),
    # date scope keeps the later games of the ids the event names (p5 plays d1 and d4)
    (
        "games, date granularity keeps named ids' games",
        {**A, "affected_entities": {"players": ["p5"]}},
        "p_date_games",
        AS_OF,
        ("run", "date", None, (D, d(1), d(2), d(3)), "date_granularity"),
    ),
    (
        "games at empty_mapping: ids that did map keep their games",
        {**A, "affected_entities": {"teams": ["T3", "T9"]}},
        "p_games",
        AS_OF,
        ("run", "date", None, (D, d(1), d(2), d(3), d(4), d(5), *UNKNOWN_DAYS), "empty_mapping"),
    ),
    (
        # p2 has no player_games row at all: its games are unknown, so every date up to
        # as-of is covered (d9 too, which player_games covers without naming p2)
        "games at fallback: mapped ids too",
        {**A, "affected_entities": {"players": ["p1", "p2", "p3", "p5"]}},
        "p_games",
        AS_OF,
        ("run", "date", None, tuple(d(k) for k in range(31)), "fallback_threshold"),
    ),
]


@pytest.mark.parametrize(
    ("fields", "processor", "as_of", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(
    fields: dict[str, Any], processor: str, as_of: date, expected: tuple[Any, ...]
) -> None:
    """One rule of SPEC section 2 gives the expected action, scope, ids, dates and reason."""
    got = decision(plan(MINI, MINI_REL, event(MINI, **fields), as_of), processor)
    assert (got.action, got.scope, got.entity_ids, got.dates, got.reason) == expected
    if got.scope == "entities":
        assert got.entity_type == MINI.processors[processor].granularity


def test_every_reason_code_is_exercised() -> None:
    """The table above reaches every reason code of the contract."""
    seen = {decision(plan(MINI, MINI_REL, event(MINI, **c[1]), c[3]), c[2]).reason for c in CASES}
    assert seen == set(REASON_ORDER)


# Reason precedence: the first applicable reason in REASON_ORDER wins.
PRECEDENCE: list[tuple[dict[str, Any], str, str]] = [
    (
        {"source": "raw.nobody", "status": "failed", "skip_downstream": True},
        "p_player",
        "unknown_source",
    ),
    ({**A, "status": "failed", "skip_downstream": True}, "p_other", "not_an_input"),
    (
        {**A, "status": "failed", "skip_downstream": True, "changed_fields": ["zz"]},
        "p_player",
        "upstream_failed",
    ),
    ({**A, "status": "no_data", "skip_downstream": True}, "p_player", "no_data"),
    ({**A, "skip_downstream": True, "changed_fields": ["zz"]}, "p_player", "skip_downstream"),
    (
        {**A, "changed_fields": ["zz"], "start_date": "2025-11-01", "end_date": "2025-11-02"},
        "p_player",
        "irrelevant_fields",
    ),
    ({**A, "start_date": "2025-11-01", "end_date": "2025-11-02"}, "p_date", "backfill"),
    ({**A}, "p_date", "date_granularity"),
    ({**A, "affected_entities": {"venues": []}}, "p_player", "no_entities_in_event"),
    (
        {**A, "affected_entities": {"venues": ["v"], "players": ["ghost"]}},
        "p_team",
        "unmapped_entity_type",
    ),
    (
        {**A, "affected_entities": {"players": ["ghost", "p1", "p2", "p3", "p5"]}},
        "p_team",
        "empty_mapping",
    ),
    (
        {**A, "affected_entities": {"players": ["p1", "p2", "p3", "p5"], "teams": ["T2"]}},
        "p_team",
        "entity_scope",
    ),
    (
        {**A, "affected_entities": {"players": ["p1", "p2", "p3", "p5"], "teams": ["T7", "T8"]}},
        "p_team",
        "fallback_threshold",
    ),
]


@pytest.mark.parametrize(("fields", "processor", "reason"), PRECEDENCE)
def test_reason_precedence(fields: dict[str, Any], processor: str, reason: str) -> None:
    """When several reasons apply, the first in the contract's order wins."""
    assert decision(plan(MINI, MINI_REL, event(MINI, **fields), AS_OF), processor).reason == reason


def test_one_decision_per_processor_sorted() -> None:
    """plan returns exactly one decision per processor, sorted by name, dates sorted."""
    out = plan(MINI, MINI_REL, event(MINI, **A, affected_entities={"players": ["p1"]}), AS_OF)
    assert [x.processor for x in out] == sorted(MINI.processors)
    assert all(list(x.dates) == sorted(set(x.dates)) for x in out)
    assert all(x.model_dump() == Decision.model_validate(x.model_dump()).model_dump() for x in out)


def test_skip_shape() -> None:
    """Skip decisions have null scope, type and ids and no dates; date scope has null type and ids."""
    for x in plan(MINI, MINI_REL, event(MINI, **A), AS_OF):
        js = x.to_json()
        if x.action == "skip":
            assert (js["scope"], js["entity_type"], js["entity_ids"], js["dates"]) == (
                None,
                None,
                None,
                [],
            )
        elif x.scope == "date":
            assert (js["entity_type"], js["entity_ids"]) == (None, None)


# ------------------------------------------------------------------ routes.yaml (SPEC section 1)
@pytest.fixture(scope="module")
def nba() -> Any:
    reg = load_config(ROUTES, with_relations=False).registry
    # a game of two other teams on every later date up to AS_OF: the lookbacks' later dates
    # are loaded (a date without any game_teams or team_opponent row is unknown, so an
    # entity-scope decision reaching it would run the full date, unknown_relation_date)
    later = [D + timedelta(days=k) for k in range(1, 31)]
    rows = {
        **NBA_ROWS,
        "game_teams": [*NBA_ROWS["game_teams"], *((x, "G0", "NYK") for x in later)],
        "team_opponent": [*NBA_ROWS["team_opponent"], *((x, "NYK", "BKN") for x in later)],
    }
    return reg, relations_for(reg, rows)


TRIGGER_TABLE = {
    "nbac_gamebook_player_stats": {"player_game_summary"},
    "bdl_player_boxscores": {"player_game_summary", "team_offense_game_summary"},
    "nbac_scoreboard_v2": {"team_offense_game_summary", "team_defense_game_summary"},
    "nbac_injury_report": {"player_game_summary"},
    "odds_api_player_points_props": {"player_game_summary"},
    "bdl_standings": set(),
}


@pytest.mark.parametrize("table", sorted(TRIGGER_TABLE))
def test_phase2_trigger_table(nba: Any, table: str) -> None:
    """Today's Phase 2->3 legacy messages reach at least the processors of today's table."""
    reg, rel = nba
    raw = {
        "event_type": "raw_data_loaded",
        "source_table": table,
        "game_date": "2025-11-19",
        "record_count": 450,
        "execution_id": f"x-{table}",
        "correlation_id": "c",
        "timestamp": "2025-11-19T18:00:00Z",
        "phase": 2,
        "success": True,
        "error_message": None,
    }
    from scoperouter.messages.normalize import normalize_event

    out = plan(reg, rel, normalize_event(raw, reg), AS_OF)
    runs = {x.processor for x in out if x.action == "run"}
    assert TRIGGER_TABLE[table] <= runs
    if not TRIGGER_TABLE[table]:
        assert {x.reason for x in out} == {"not_an_input"}
    assert all(x.scope == "date" for x in out if x.action == "run")


@pytest.mark.parametrize(
    ("fields", "processor", "scope", "ids"),
    [
        (
            {
                "source": "nba_raw.nbac_injury_report",
                "affected_entities": {"players": ["lebronjames"]},
                "changed_fields": ["injury_status"],
            },
            "upcoming_team_game_context",
            "entities",
            ("LAL",),
        ),
        (
            {"source": "nba_raw.odds_api_game_lines", "affected_entities": {"games": ["G1"]}},
            "upcoming_player_game_context",
            "entities",
            ("anthonydavis", "jaylenbrown", "jaysontatum", "lebronjames"),
        ),
        (
            {"source": "nba_raw.odds_api_game_lines", "affected_entities": {"games": ["G2"]}},
            "upcoming_player_game_context",
            "date",
            None,
        ),
        (
            {
                "source": "nba_precompute.team_defense_zone_analysis",
                "affected_entities": {"teams": ["LAL"]},
            },
            "player_composite_factors",
            "entities",
            ("jaylenbrown", "jaysontatum"),
        ),
        (
            {
                "source": "nba_raw.nbac_gamebook_player_stats",
                "affected_entities": {"players": ["stephencurry"]},
                "changed_fields": ["points"],
            },
            "team_offense_game_summary",
            "entities",
            ("GSW", "PHX"),  # and its opponent: win_flag, margin (togs:689-705, :934-937)
        ),
        (
            # the defense of a team is its opponent's rows (tdgs:680-700): both teams
            {
                "source": "nba_raw.nbac_gamebook_player_stats",
                "affected_entities": {"players": ["stephencurry"]},
                "changed_fields": ["points"],
            },
            "team_defense_game_summary",
            "entities",
            ("GSW", "PHX"),
        ),
    ],
    ids=[
        "injury-to-team",
        "game-lines-to-players",
        "missing-roster",
        "opponent",
        "player-to-team-and-opponent",
        "player-to-both-defenses",
    ],
)
def test_nba_mappings(
    nba: Any, fields: dict[str, Any], processor: str, scope: str, ids: Any
) -> None:
    """The NBA registry maps games, teams and opponents to the right entities."""
    reg, rel = nba
    got = decision(plan(reg, rel, event(reg, **fields), AS_OF), processor)
    assert (got.scope, got.entity_ids) == (scope, ids)
