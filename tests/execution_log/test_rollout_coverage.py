"""Uncovered days (review defect 3): a game date on which the pipeline's run history shows a
processor ran, but the router neither routed it nor logged a skip of it saying why (its
topic not subscribed, an event of another source only), is not work saved: moving the
processor live would stop that work. Such a day blocks go and is named in the report."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scoperouter.cli import main
from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.rollout_coverage import skip_reason
from scoperouter.execution_log.simulate import record_stream
from scoperouter.messages.models import Event
from scoperouter.processor_registry.loader import load_config
from scoperouter.router.planner import Planner

ROUTES = """\
version: 1
entities:
  player: {}
  team: {}
relations:
  team_players: {from: team, to: player}
  player_team: {inverse_of: team_players}
relation_data:
  csv: {dir: relations}
sources:
  nba_raw.nbac_gamebook_player_stats: {entity: player}
  nba_raw.nbac_team_boxscore: {entity: team}
defaults:
  mode: shadow
  window: {quiet: 0s, max_wait: 0s}
  target: {outbox: {}}
report:
  shadow_days: 1
  engineering_hours: 4
  wasted_hours_per_week: 0.0001
  payback_weeks: 40
processors:
  player_game_summary:
    phase: 3
    granularity: player
    inputs:
      - source: nba_raw.nbac_gamebook_player_stats
        fields: [points, minutes]
    publishes: nba_analytics.player_game_summary
  team_offense_game_summary:
    phase: 3
    granularity: team
    inputs:
      - source: nba_raw.nbac_team_boxscore
      - source: nba_raw.nbac_gamebook_player_stats
    publishes: nba_analytics.team_offense_game_summary
  player_points_model:
    phase: 4
    granularity: player
    inputs:
      - source: nba_analytics.player_game_summary
    publishes: nba_precompute.player_points_model
"""
RELATIONS = (
    "date,from,to\n,LAL,lebronjames\n,LAL,anthonydavis\n,BOS,jaysontatum\n,BOS,jaylenbrown\n"
)
PGS = "player_game_summary"
GAMEBOOK = "nba_raw.nbac_gamebook_player_stats"
BOXSCORE = "nba_raw.nbac_team_boxscore"
D0 = date(2025, 11, 18)
T0 = datetime(2025, 11, 19, 15, 0, tzinfo=UTC)


def day(k: int) -> date:
    return D0 + timedelta(days=k)


def gamebook(k: int, changed: str = "points") -> dict[str, Any]:
    """A gamebook completion for date k naming one player, changing ``changed``."""
    return {
        "source": GAMEBOOK,
        "game_date": day(k),
        "affected_entities": {"players": ["lebronjames"]},
        "changed_fields": [changed],
    }


def boxscore(k: int) -> dict[str, Any]:
    """A team boxscore completion for date k (player_game_summary does not read it)."""
    return {"source": BOXSCORE, "game_date": day(k), "affected_entities": {"teams": ["BOS"]}}


def history(days: list[int], runs: int = 3, proc: str = PGS) -> list[dict[str, Any]]:
    """A processor's date-level runs: ``runs`` finished runs of 30 s on each day."""
    return [
        {
            "processor_name": "".join(w.capitalize() for w in proc.split("_")) + "Processor",
            "run_id": f"{proc}-{k}-{i}",
            "status": "success",
            "duration_seconds": 30.0,
            "records_processed": 450,
            "data_date": day(k).isoformat(),
            "output_table": proc,
            "output_dataset": "nba_analytics",
        }
        for k in days
        for i in range(runs)
    ]


def shadow_log(
    tmp: Path, events: list[dict[str, Any]], hist: list[dict[str, Any]], routes: str = ROUTES
) -> list[str]:
    """The events through the planner and windows into a shadow log; the report's arguments."""
    (tmp / "relations").mkdir(parents=True)
    (tmp / "relations" / "team_players.csv").write_text(RELATIONS, encoding="utf-8")
    path = tmp / "routes.yaml"
    path.write_text(routes, encoding="utf-8")
    cfg = load_config(path)
    stream = [
        (Event.model_validate({"event_id": f"e-{i}", **e}), T0 + timedelta(minutes=i))
        for i, e in enumerate(events)
    ]
    log = tmp / "log.sqlite"
    with SqliteExecutionLog(log) as lg:
        record_stream(lg, cfg.registry, cfg.relations, stream, as_of=day(1), status="shadow")
    hist_path = tmp / "processor_run_history.json"
    hist_path.write_text(json.dumps(hist), encoding="utf-8")
    return ["--log", str(log), "--config", str(path), "--run-history", str(hist_path)]


def rollout(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["report", "--json", *args]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)["rollout"]
    return out


@pytest.mark.parametrize(
    ("events", "hist_days", "decision", "uncovered", "says"),
    [
        pytest.param(
            [boxscore(1)] * 3,
            [1],
            "no-go",
            [1],
            ["no routed run", "1 day(s) uncovered", "2025-11-19"],
            id="never-routed",
        ),
        pytest.param(
            [gamebook(0), boxscore(1)],
            [0, 1],
            "no-go",
            [1],
            ["1 day(s) uncovered", "2025-11-19"],
            id="routed-one-day-not-the-other",
        ),
        pytest.param(
            [gamebook(0), *(boxscore(k) for k in range(1, 6))],
            list(range(6)),
            "no-go",
            [1, 2, 3, 4, 5],
            ["5 day(s) uncovered", "2025-11-19, 2025-11-20, 2025-11-21 and 2 more"],
            id="many-uncovered-days-first-three-named",
        ),
        pytest.param(
            [gamebook(0), gamebook(1, changed="rebounds")],
            [0, 1],
            "go",
            [],
            ["1 day(s) observed"],
            id="irrelevant-fields-skip-explains-the-day",
        ),
        pytest.param(
            [gamebook(0), boxscore(0)],
            [0],
            "go",
            [],
            ["1 day(s) observed"],
            id="every-history-day-routed",
        ),
    ],
)
def test_uncovered_days_block_go(
    events: list[dict[str, Any]],
    hist_days: list[int],
    decision: str,
    uncovered: list[int],
    says: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A history day without a routed run or an explaining skip is uncovered: no go, named."""
    ro = rollout(shadow_log(tmp_path, events, history(hist_days)), capsys)
    p = {x["processor"]: x for x in ro["processors"]}[PGS]
    assert p["decision"] == decision, p
    assert p["uncovered_days"] == [day(k).isoformat() for k in uncovered]
    for s in says:
        assert s in p["why"], p["why"]
    assert (ro["next_live"] == PGS) == (decision == "go")
    if uncovered:  # production's runs of an uncovered day are not counted as saved
        assert p["date_level_runs"] == 3 * len(hist_days)


def summary_done(k: int) -> dict[str, Any]:
    """player_game_summary's own completion for date k (what its routed run published)."""
    return {
        "source": "nba_analytics.player_game_summary",
        "game_date": day(k),
        "affected_entities": {"players": ["lebronjames"]},
    }


@pytest.mark.parametrize(
    ("events", "uncovered"),
    [
        pytest.param([gamebook(0), summary_done(0), gamebook(1)], [], id="upstream-routed"),
        pytest.param([gamebook(0), summary_done(0), boxscore(1)], [1], id="upstream-not-routed"),
    ],
)
def test_a_routed_upstream_covers_its_downstream(
    events: list[dict[str, Any]],
    uncovered: list[int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A date its routed upstream published nothing for is covered (nothing to run), else not."""
    hist = history([0, 1]) + history([0, 1], proc="player_points_model")
    ro = rollout(shadow_log(tmp_path, events, hist), capsys)
    p = {x["processor"]: x for x in ro["processors"]}["player_points_model"]
    assert p["runs"] > 0
    assert p["uncovered_days"] == [day(k).isoformat() for k in uncovered]


def test_uncovered_day_saves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An uncovered day's recorded hours are not saved hours; an explained skip's day is."""
    args = shadow_log(tmp_path / "a", [gamebook(0), boxscore(1)], history([0, 1]))
    gap = {x["processor"]: x for x in rollout(args, capsys)["processors"]}[PGS]
    args = shadow_log(
        tmp_path / "b", [gamebook(0), gamebook(1, changed="rebounds")], history([0, 1])
    )
    skip = {x["processor"]: x for x in rollout(args, capsys)["processors"]}[PGS]
    assert gap["date_level_hours"] == skip["date_level_hours"] == pytest.approx(180 / 3600)
    # the explained day saves its whole recorded 90 s; the uncovered day nothing
    assert skip["saved_hours"] - gap["saved_hours"] == pytest.approx(90 / 3600, rel=1e-3)


def test_uncovered_days_named_in_text_and_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text and HTML reports say which days are uncovered, and name no next processor."""
    args = shadow_log(tmp_path, [boxscore(1)] * 3, history([1]))
    html = tmp_path / "report.html"
    capsys.readouterr()
    assert main(["report", *args, "--html", str(html)]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith(f"  - {PGS} "))
    assert "no-go" in line and "1 day(s) uncovered" in line and "2025-11-19" in line, line
    assert "next to move live: none" in text
    page = html.read_text(encoding="utf-8")
    assert "1 day(s) uncovered" in page and "2025-11-19" in page


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"status": "failed"}, "upstream_failed"),
        ({"status": "no_data"}, "no_data"),
        ({"skip_downstream": True}, "skip_downstream"),
        ({"changed_fields": ["rebounds"]}, "irrelevant_fields"),
        ({"changed_fields": ["points", "rebounds"]}, None),
        ({}, None),
    ],
)
def test_skip_reason_agrees_with_the_planner(
    event: dict[str, Any], reason: str | None, tmp_path: Path
) -> None:
    """The report re-derives a processor's skip of a logged event as the planner decided it."""
    (tmp_path / "relations").mkdir()
    (tmp_path / "relations" / "team_players.csv").write_text(RELATIONS, encoding="utf-8")
    (tmp_path / "routes.yaml").write_text(ROUTES, encoding="utf-8")
    cfg = load_config(tmp_path / "routes.yaml")
    ev = Event.model_validate({"event_id": "e", **gamebook(1), **event})
    planned = {d.processor: d for d in Planner(cfg.registry).plan(cfg.relations, ev, day(1))}
    (inp,) = (ci for ci in cfg.registry.by_source[GAMEBOOK] if ci.processor == PGS)
    got = skip_reason(inp, ev)
    assert got == reason
    assert planned[PGS].action == ("skip" if reason else "run")
    if reason:
        assert planned[PGS].reason == reason


AHEAD_ROUTES = """\
version: 1
entities:
  player: {}
processors:
  by_game_date:
    phase: 3
    granularity: player
    inputs:
      - source: raw.injuries
        ahead: {days: 1}
  by_game_date_lookback:
    phase: 3
    granularity: player
    lookback: {days: 2}
    inputs:
      - source: raw.injuries
        ahead: {days: 1}
  by_report_date:
    phase: 3
    granularity: player
    inputs:
      - source: raw.injuries
"""


@pytest.mark.parametrize(
    ("processor", "as_of", "replan", "want"),
    [
        ("by_report_date", day(0), True, [day(0)]),
        ("by_game_date", day(0), True, [day(0), day(1)]),  # the ahead day, past as-of
        ("by_game_date_lookback", day(0), True, [day(0), day(1)]),
        ("by_game_date_lookback", day(3), True, [day(0), day(1), day(2), day(3)]),
        ("by_game_date", day(0), False, [day(0), day(1)]),
        # without the relation data to re-plan: the own and ahead dates, no lookback date
        ("by_game_date_lookback", day(3), False, [day(0), day(1)]),
    ],
)
def test_skip_dates_cover_ahead_days(
    tmp_path: Path, processor: str, as_of: date, replan: bool, want: list[date]
) -> None:
    """A skip through an input with ahead looked at the ahead days (the planner's dates)."""
    from scoperouter.execution_log.reader import EventRecord
    from scoperouter.execution_log.rollout_coverage import skip_dates

    (tmp_path / "routes.yaml").write_text(AHEAD_ROUTES)
    cfg = load_config(tmp_path / "routes.yaml", with_relations=False)
    ev = Event(event_id="e1", source="raw.injuries", game_date=day(0), status="no_data")
    rec = EventRecord(ev, T0, as_of, ())
    got = skip_dates(cfg.registry, cfg.relations if replan else None, rec)
    assert list(got[processor]) == want
