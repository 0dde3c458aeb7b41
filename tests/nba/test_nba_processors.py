"""Reference processors: agreement with routes.yaml, and entity scope = full date restricted."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from nba_support import registry, short_day
from production_reads import IDENTITY, IDENTITY_OF, METADATA, MONITORING_ONLY, PRODUCTION_READS

from scoperouter.examples.nba import phase3, refbase
from scoperouter.examples.nba.harness import GameDay
from scoperouter.examples.nba.processors import BY_NAME, PROCESSORS, new_warehouse, run
from scoperouter.examples.nba.warehouse import Warehouse
from scoperouter.messages.normalize import normalize_event
from scoperouter.router.planner import plan

REG = registry()


@pytest.fixture(scope="module")
def day() -> GameDay:
    return short_day(3, REG)


def test_every_registry_processor_has_a_reference() -> None:
    """routes.yaml and the reference pipeline name the same processors."""
    assert sorted(REG.processor_names) == sorted(BY_NAME)


# Inputs production reads (cited in routes.yaml) that the reference warehouse does not store:
# alternates and fallbacks of stored tables. Routing them is production's business only.
NOT_STORED = {
    "nba_raw.nbac_player_boxscores",
    "nba_raw.bigdataball_play_by_play",
    "nba_raw.bettingpros_player_points_props",
    "nba_raw.espn_team_rosters",
    "nba_raw.espn_scoreboard",
}


# Inputs production's trigger tables run a processor on although its SQL never reads them:
# routed for fidelity to production, read by neither (lineage reports them unused_input).
TRIGGER_ONLY = {
    # data_processors/analytics/main_analytics_service.py:754
    ("upcoming_team_game_context", "nba_raw.nbac_scoreboard_v2"),
    # data_processors/precompute/main_precompute_service.py:79
    ("player_shot_zone_analysis", "nba_analytics.team_offense_game_summary"),
}


# Inputs production's code reads that the reference processor does not model: routed so that
# no update production consumes is missed, read by no reference code (lineage: unused_input).
NOT_MODELLED = {
    # the gamebook picks upcoming_player_game_context's mode and players on a played date and
    # feeds its async variant's history (upcoming_player_game_context_processor.py:614-633,
    # queries/shared_ctes.py:277-293, async_upcoming_player_game_context_processor.py:432-457)
    ("upcoming_player_game_context", "nba_raw.nbac_gamebook_player_stats"),
    # missed updates of production's (tests/nba/production_tables.py): graded lines, features
    # 55-56 (feature_extractor.py:1705); the Kalshi line of each prediction
    # (predictions/coordinator/player_loader.py:895); the fatigue and the opponent's defense
    # tier the export shows (tonight_player_exporter.py:232, :536)
    ("ml_feature_store", "nba_predictions.prediction_accuracy"),
    ("prediction_coordinator", "nba_raw.kalshi_player_props"),
    ("player_prediction_exporter", "nba_precompute.player_composite_factors"),
    ("player_prediction_exporter", "nba_precompute.team_defense_zone_analysis"),
    # the completeness check (shared/utils/completeness_checker.py): the schedule's Final games
    # are the expected games (:304-332, :387-508), the gamebook's DNP games are counted out of
    # them for the daily cache (:627-656); its counts go into the rows, and a row not ready is
    # not written (tests/nba/production_tables.py, HAND_FOUND)
    ("team_defense_zone_analysis", "nba_raw.nbac_schedule"),
    ("player_shot_zone_analysis", "nba_raw.nbac_schedule"),
    ("player_composite_factors", "nba_raw.nbac_schedule"),
    ("player_daily_cache", "nba_raw.nbac_schedule"),
    ("player_daily_cache", "nba_raw.nbac_gamebook_player_stats"),
    ("ml_feature_store", "nba_raw.nbac_schedule"),
}


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_processor_agrees_with_registry(name: str) -> None:
    """Phase, granularity and publishes match; the processor reads exactly its inputs (but
    the production-only sources the warehouse does not store, trigger-only edges and reads it
    does not model), each input's fields filter covers (and ignore_fields excludes) every
    column read."""
    ref, proc = BY_NAME[name], REG.processors[name]
    assert (ref.phase, ref.granularity, ref.publishes) == (
        proc.phase,
        proc.granularity,
        proc.publishes,
    )
    unread = {src for proc_name, src in TRIGGER_ONLY | NOT_MODELLED if proc_name == name}
    assert set(ref.reads) == set(proc.inputs) - NOT_STORED - unread
    assert NOT_STORED.isdisjoint(new_warehouse({}).defs)
    for source, cols in ref.reads.items():
        assert source in proc.inputs, f"{name} reads {source}, not an input"
        ci = proc.inputs[source]
        if ci.fields is not None:
            assert cols <= ci.fields, f"{name} reads {sorted(cols - ci.fields)} of {source}"
        if ci.ignore_fields is not None:
            assert not cols & ci.ignore_fields, f"{name} reads ignored fields of {source}"


def test_registry_field_names_are_real_columns() -> None:
    """Every ``fields`` / ``ignore_fields`` name in routes.yaml is a column of the source
    table, the reference warehouse's or production's (``ignore_fields: [moneyline]`` on a table
    whose columns are ``moneyline_home`` and ``moneyline_away`` silently ignored nothing)."""
    tables = new_warehouse({}).defs
    wrong = []
    for name in REG.processor_names:
        for source, ci in REG.processors[name].inputs.items():
            if source not in tables:
                continue  # a source the reference warehouse does not store
            names = (ci.fields or frozenset()) | (ci.ignore_fields or frozenset())
            known = set(tables[source].all_columns) | _production_reads(name, source)
            wrong += [(name, source, f) for f in sorted(names - known)]
    assert not wrong


def _production_reads(processor: str, source: str) -> set[str]:
    cols = PRODUCTION_READS.get((processor, source), {}).values()
    return {c for group in cols for c in group.split()}


@pytest.mark.parametrize(("processor", "source"), sorted(PRODUCTION_READS))
def test_fields_cover_production_reads(processor: str, source: str) -> None:
    """The input's ``fields`` lists every column production's code reads of it, under
    production's name: an event changing only that column is not skipped."""
    fields = REG.processors[processor].inputs[source].fields
    assert fields is not None
    assert not _production_reads(processor, source) - fields


def test_fields_list_no_identity_or_write_metadata() -> None:
    """No ``fields`` list names a row's identity columns, write metadata (``processed_at``
    would make every rewrite relevant) or a column production reads only for monitoring."""
    monitoring = {(p, s, c) for p, s, c, _ in MONITORING_ONLY}
    wrong = [
        (name, source, f)
        for name in REG.processor_names
        for source, ci in REG.processors[name].inputs.items()
        for f in sorted(ci.fields or ())
        if f in IDENTITY | METADATA or (source, f) in IDENTITY_OF or (name, source, f) in monitoring
    ]
    assert not wrong


# SPEC section 1's table, then production's ANALYTICS_TRIGGER_GROUPS
# (data_processors/analytics/main_analytics_service.py:703-760) where it says more.
# Not covered: nbac_scoreboard_v2 and nbac_schedule -> UpcomingTeamGameContextProcessor
# (:754, :756): only the schedule is read by it (dependency_validator.py:30).
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("nba_raw.nbac_gamebook_player_stats", {"player_game_summary"}),
        ("nba_raw.bdl_player_boxscores", {"player_game_summary", "team_offense_game_summary"}),
        ("nba_raw.nbac_scoreboard_v2", {"team_offense_game_summary", "team_defense_game_summary"}),
        ("nba_raw.nbac_injury_report", {"player_game_summary"}),
        ("nba_raw.odds_api_player_points_props", {"player_game_summary"}),
        ("nba_raw.bdl_standings", set()),
        # production (main_analytics_service.py:707-760)
        ("nba_raw.nbac_gamebook_player_stats",
         {"team_offense_game_summary", "team_defense_game_summary", "player_game_summary"}),
        ("nba_raw.nbac_player_boxscores",
         {"team_offense_game_summary", "team_defense_game_summary", "player_game_summary"}),
        ("nba_raw.nbac_team_boxscore", {"team_defense_game_summary", "team_offense_game_summary"}),
        ("nba_raw.nbac_schedule", {"upcoming_team_game_context"}),
        ("nba_raw.odds_api_player_points_props", {"upcoming_player_game_context"}),
    ],
)  # fmt: skip
def test_phase2_trigger_table_covered(source: str, expected: set[str]) -> None:
    """Today's hard-coded Phase 2->3 tables (SPEC's and production's) are subsets of the
    registry's consumers."""
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


@pytest.mark.parametrize(
    ("processor", "source"),
    [
        # player_game_summary_processor.py:331 (usage rate; team runs first, main_analytics_service.py:703-726)
        ("player_game_summary", "nba_analytics.team_offense_game_summary"),
        # upcoming_player_game_context: loaders/game_data_loaders.py:458, :221; team_context.py:67, :312
        ("upcoming_player_game_context", "nba_raw.nbac_injury_report"),
        ("upcoming_player_game_context", "nba_analytics.player_game_summary"),
        ("upcoming_player_game_context", "nba_analytics.team_offense_game_summary"),
        ("upcoming_player_game_context", "nba_analytics.team_defense_game_summary"),
        # ml_feature_store/feature_extractor.py:675, :233, :1020, :1439
        ("ml_feature_store", "nba_analytics.player_game_summary"),
        ("ml_feature_store", "nba_analytics.upcoming_player_game_context"),
        ("ml_feature_store", "nba_raw.odds_api_player_points_props"),
        ("ml_feature_store", "nba_raw.nbac_injury_report"),
        # player_composite_factors_processor.py:540-551
        ("player_composite_factors", "nba_analytics.player_game_summary"),
        # predictions/coordinator/player_loader.py:662, :830
        ("prediction_coordinator", "nba_raw.odds_api_player_points_props"),
        ("prediction_coordinator", "nba_analytics.upcoming_player_game_context"),
    ],
)  # fmt: skip
def test_production_edges(processor: str, source: str) -> None:
    """The edges production's code reads (cited) are in the registry, and the reference
    processor reads them too."""
    assert source in REG.processors[processor].inputs
    assert source in BY_NAME[processor].reads


@pytest.mark.parametrize(
    ("processor", "days", "games"),
    [
        ("player_shot_zone_analysis", None, refbase.PSZA_TREND_GAMES),
        ("team_defense_zone_analysis", None, refbase.TDZA_GAMES),
        # league averages over 30 days (team_defense_zone_analysis_processor.py:95, :464)
        ("team_defense_zone_analysis", 30, None),
        # the schedule's 30 days before (upcoming_team_game_context/calculators/source_fallback.py:67)
        ("upcoming_team_game_context", 30, None),
        ("upcoming_player_game_context", refbase.UPGC_HISTORY_DAYS, None),
        ("upcoming_player_game_context", refbase.UPGC_SEASON_DAYS, None),  # star teammates
        ("player_composite_factors", refbase.PCF_HISTORY_DAYS, None),
        ("player_daily_cache", refbase.PDC_SEASON_DAYS, None),
        ("ml_feature_store", refbase.MLFS_SEASON_DAYS, None),
        ("player_prediction_exporter", None, refbase.PEXP_LAST_GAMES),
    ],
)
def test_lookbacks_cover_production_windows(
    processor: str, days: int | None, games: int | None
) -> None:
    """Each lookback is at least as long as production's window (constants cited in refbase)."""
    lb = REG.processors[processor].lookback
    assert lb is not None
    if days is not None:
        assert lb.days is not None and lb.days >= days
    if games is not None:  # N games, or the season's days (a player's played games, the
        # later of 15 games and 30 days: routes.yaml says why for each)
        assert (lb.count is not None and lb.count >= games) or (lb.days or 0) >= 365


def _team_summary_event(day: GameDay, source: str, team: str) -> dict[str, object]:
    d = day.game_date - timedelta(days=1)
    return {"event_id": "e-team", "source": source, "game_date": d.isoformat(),
            "affected_entities": {"teams": [team]}, "changed_fields": ["pace", "points_allowed"]}  # fmt: skip


@pytest.mark.parametrize(
    "source", ["nba_analytics.team_offense_game_summary", "nba_analytics.team_defense_game_summary"]
)
def test_team_form_reaches_every_later_opponent(day: GameDay, source: str) -> None:
    """A team's last-10 form (upcoming_player_game_context/team_context.py:67, :312) reaches
    whoever faces it on a later date: no relation of the event's date names those players, so
    the registry routes it at date scope, over the lookback, never to the event date's
    opponent only (the equivalence stream cannot show it: the legacy midday injury report
    re-runs the whole date later)."""
    team = sorted(day.season.rosters)[0]
    ev = normalize_event(_team_summary_event(day, source, team), REG)
    got = {d.processor: d for d in plan(REG, day.relations, ev, day.game_date)}
    upgc = got["upcoming_player_game_context"]
    assert (upgc.action, upgc.scope, upgc.reason) == ("run", "date", "fallback_threshold")
    assert upgc.dates == (ev.game_date, day.game_date)


# The upcoming context's columns that production's feature store, coordinator and composite
# factors read (feature_extractor.py:237, :619-623; player_loader.py:338-344;
# player_composite_factors_processor.py:351): the reference context produces them and names
# them in its run's changed fields, and its readers' rows move with them.
def _star_out(wh: Warehouse, d: date) -> tuple[str, str]:
    """A STAR player of a team playing on ``d`` who is not OUT/DOUBTFUL, and a teammate."""
    ctx = wh.rows(refbase.UPGC, d)
    teams = sorted({str(x["team"]) for x in ctx.values()})
    stars = phase3._stars(wh, d, teams)
    inj = wh.rows(refbase.INJURY, d)
    star = next(
        s
        for s in sorted(stars)
        if s in ctx and inj.get(s, {}).get("injury_status") not in refbase.OUT_STATUSES
    )
    mate = next(q for q in sorted(wh.rosters[wh.player_team[star]]) if q != star and q in ctx)
    return star, mate


@pytest.mark.parametrize("column", ["player_status", "star_teammates_out", "game_total"])
def test_upcoming_context_names_the_read_columns(
    day: GameDay, column: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A raw change the context's column follows (an injury, a star out, a total) changes it
    on the reference's rerun and is in the run's changed fields."""
    wh = day.overnight.copy()
    d = day.game_date
    if column == "star_teammates_out":
        # the short season has no player with a STAR's 10 games: any player who played is one
        monkeypatch.setattr(phase3, "UPGC_STAR_MIN_GAMES", 1)
        monkeypatch.setattr(phase3, "UPGC_STAR_POINTS", 0)
        star, p = _star_out(wh, d)
        run(wh, BY_NAME["upcoming_player_game_context"], d, frozenset({p}))  # those stars
    ctx = wh.rows(refbase.UPGC, d)
    change: dict[str, object]
    row: dict[str, object]
    if column == "star_teammates_out":
        raw, key, row = refbase.INJURY, star, {"team": wh.player_team[star]}
        change = {"injury_status": "out", "injury_reason": "test"}
    elif column == "player_status":
        p = next(q for q in sorted(ctx) if ctx[q]["player_status"] is None)
        raw, key, row = refbase.INJURY, p, {"team": wh.player_team[p]}
        change = {"injury_status": "out", "injury_reason": "test"}
    else:
        p = sorted(ctx)[0]
        raw, key = refbase.LINES, str(ctx[p]["game_id"])
        row = wh.rows(raw, d)[key]
        change = {"total": float(str(row["total"])) + 7.0}
    wh.replace(raw, d, [key], {key: {**row, **change}})
    res = run(wh, BY_NAME["upcoming_player_game_context"], d, frozenset({p}))
    assert res.changes.entities == (p,)
    assert column in res.changes.fields
    assert wh.rows(refbase.UPGC, d)[p][column] != ctx[p][column]


@pytest.mark.parametrize(
    ("column", "value", "reader", "output"),
    [
        ("player_status", "questionable", "ml_feature_store", "injury_risk"),  # feature 10
        ("player_status", "out", "prediction_coordinator", "predicted_points"),
        ("star_teammates_out", 2, "ml_feature_store", "star_teammates_out"),  # feature 37
        ("star_teammates_out", 2, "player_composite_factors", "star_teammates_out"),
        ("game_total", 251.5, "ml_feature_store", "game_total"),  # feature 38
    ],
)
def test_context_reads_move_the_readers_rows(
    day: GameDay, column: str, value: object, reader: str, output: str
) -> None:
    """A change of the context's column alone changes the reading processor's row for that
    player (the column its run reports): the reference reads it as production does."""
    wh = day.overnight.copy()
    d = day.game_date
    ctx = wh.rows(refbase.UPGC, d)
    ref = BY_NAME[reader]
    before = wh.rows(ref.publishes, d)
    p = next(
        q
        for q in sorted(before)
        if q in ctx and ctx[q][column] != value and before[q].get("predicted_points") != 0
    )
    wh.replace(refbase.UPGC, d, [p], {p: {**ctx[p], column: value}})
    res = run(wh, ref, d, frozenset({p}))
    assert res.changes.entities == (p,)
    assert output in res.changes.fields
