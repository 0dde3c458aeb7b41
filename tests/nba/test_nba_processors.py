"""Reference processors: agreement with routes.yaml, and entity scope = full date restricted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from nba_support import registry, short_day

from scoperouter.examples.nba.harness import GameDay
from scoperouter.examples.nba.processors import BY_NAME, PROCESSORS, new_warehouse, run

REG = registry()


@pytest.fixture(scope="module")
def day() -> GameDay:
    return short_day(3, REG)


def test_every_registry_processor_has_a_reference() -> None:
    """routes.yaml and the reference pipeline name the same processors."""
    assert sorted(REG.processor_names) == sorted(BY_NAME)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_processor_agrees_with_registry(name: str) -> None:
    """Phase, granularity and publishes match; every source read is an input whose fields
    filter covers (and ignore_fields excludes) every column read."""
    ref, proc = BY_NAME[name], REG.processors[name]
    assert (ref.phase, ref.granularity, ref.publishes) == (
        proc.phase,
        proc.granularity,
        proc.publishes,
    )
    for source, cols in ref.reads.items():
        assert source in proc.inputs, f"{name} reads {source}, not an input"
        ci = proc.inputs[source]
        if ci.fields is not None:
            assert cols <= ci.fields, f"{name} reads {sorted(cols - ci.fields)} of {source}"
        if ci.ignore_fields is not None:
            assert not cols & ci.ignore_fields, f"{name} reads ignored fields of {source}"


def test_registry_field_names_are_real_columns() -> None:
    """Every ``fields`` / ``ignore_fields`` name in routes.yaml is a column of the source
    table (``ignore_fields: [moneyline]`` on a table whose columns are ``moneyline_home`` and
    ``moneyline_away`` silently ignored nothing)."""
    tables = new_warehouse({}).defs
    wrong = []
    for name in REG.processor_names:
        for source, ci in REG.processors[name].inputs.items():
            if source not in tables:
                continue  # a source the reference warehouse does not store
            names = (ci.fields or frozenset()) | (ci.ignore_fields or frozenset())
            wrong += [(name, source, f) for f in sorted(names - set(tables[source].all_columns))]
    assert not wrong


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("nba_raw.nbac_gamebook_player_stats", {"player_game_summary"}),
        ("nba_raw.bdl_player_boxscores", {"player_game_summary", "team_offense_game_summary"}),
        ("nba_raw.nbac_scoreboard_v2", {"team_offense_game_summary", "team_defense_game_summary"}),
        ("nba_raw.nbac_injury_report", {"player_game_summary"}),
        ("nba_raw.odds_api_player_points_props", {"player_game_summary"}),
        ("nba_raw.bdl_standings", set()),
    ],
)
def test_phase2_trigger_table_covered(source: str, expected: set[str]) -> None:
    """Today's hard-coded Phase 2->3 table is a subset of the registry's consumers."""
    consumers = {ci.processor for ci in REG.by_source.get(source, ())}
    assert expected <= consumers
    if not expected:
        assert not consumers


def _cases() -> list[tuple[str, int]]:
    return [(p.name, back) for p in PROCESSORS for back in (0, 1)]


@pytest.mark.parametrize(("name", "days_back"), _cases())
def test_entity_scope_equals_full_date_restricted(day: GameDay, name: str, days_back: int) -> None:
    """compute(ids) returns exactly the full-date rows of those ids (entity-level is safe)."""
    ref = BY_NAME[name]
    d = day.game_date - timedelta(days=days_back)
    full = ref.compute(day.overnight, d, None)
    assert full or ref.granularity == "date"
    ids = frozenset(sorted(full)[::7]) | {"nosuchplayer", "XXX"}
    scoped = ref.compute(day.overnight, d, ids)
    if ref.granularity == "date":
        assert scoped == full
    else:
        assert scoped == {k: v for k, v in full.items() if k in ids}


@pytest.mark.parametrize(
    "name", ["player_game_summary", "team_defense_game_summary", "ml_feature_store"]
)
def test_run_replaces_only_the_scope(day: GameDay, name: str) -> None:
    """An entity-scoped run rewrites its entities' rows and leaves every other row alone."""
    wh = day.overnight.copy()
    ref = BY_NAME[name]
    d = day.game_date - timedelta(days=1)
    rows = wh.rows(ref.publishes, d)
    inside, outside = sorted(rows)[:2]
    col = ref.table.columns[-1]
    tampered = {k: {**rows[k], col: "tampered"} for k in (inside, outside)}
    wh.replace(ref.publishes, d, [inside, outside], tampered)
    res = run(wh, ref, d, frozenset({inside}))
    after = wh.rows(ref.publishes, d)
    assert after[inside] == rows[inside]
    assert after[outside][col] == "tampered"
    assert res.changes.entities == (inside,) and res.changes.fields == (col,)
    assert res.rows == 1
