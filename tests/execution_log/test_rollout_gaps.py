"""Go where going live would miss updates (review 6): a date reached only through a
lookback's upper bound is not covered (R1), an input source the log never saw an event of
blocks go (R2), and a processor routes.yaml no longer names is not judged (R3)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scoperouter.cli import main
from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.reader import EventRecord
from scoperouter.execution_log.simulate import record_stream
from scoperouter.messages.models import Event
from scoperouter.processor_registry.loader import load_config
from scoperouter.router.planner import plan

D0 = date(2025, 11, 1)
PROC = "summary"
GAMEBOOK = "nba_raw.gamebook"
OTHER = "nba_raw.other"


def day(k: int) -> date:
    return D0 + timedelta(days=k)


def at(k: int) -> datetime:
    """The wall time an event of day k was decided (the next afternoon)."""
    return datetime(D0.year, D0.month, D0.day, 15, tzinfo=UTC) + timedelta(days=k + 1)


ROUTES = """\
version: 1
entities:
  player: {}
relations:
  player_games: {from: player, to: player}
relation_data:
  csv: {dir: relations}
sources:
  nba_raw.gamebook: {entity: player}
  nba_raw.other: {entity: player}
  nba_raw.boxscore: {entity: player}
defaults:
  mode: shadow
  window: {quiet: 0s, max_wait: 0s}
  target: {outbox: {}}
report:
  shadow_days: 1
  engineering_hours: 0.001
  wasted_hours_per_week: 0.0001
  payback_weeks: 40
  waste_pct: 1
processors:
  summary:
    phase: 3
    granularity: player
    LOOKBACK
    inputs:
      - source: nba_raw.gamebook
        fields: [points]
      EXTRA
    publishes: nba_analytics.summary
  other_proc:
    phase: 3
    granularity: player
    inputs:
      - source: nba_raw.other
"""
# lebronjames plays on days 0, 7 and 14; ten others play every day (every date is known)
RELATIONS = (
    "date,from,to\n"
    + "".join(f"{day(k)},lebronjames,lebronjames\n" for k in (0, 7, 14))
    + "".join(f"{day(k)},p{k}_{j},p{k}_{j}\n" for k in range(15) for j in range(10))
)


def routes(lookback: str = "", extra: str = "") -> str:
    return ROUTES.replace("LOOKBACK", lookback).replace("EXTRA", extra)


def gamebook(k: int, changed: str = "points") -> Event:
    """A gamebook change of lebronjames on day k."""
    return Event.model_validate(
        {
            "event_id": f"g{k}-{changed}",
            "source": GAMEBOOK,
            "game_date": day(k),
            "affected_entities": {"players": ["lebronjames"]},
            "changed_fields": [changed],
        }
    )


def other(k: int, source: str = OTHER) -> Event:
    return Event.model_validate(
        {
            "event_id": f"o{k}-{source}",
            "source": source,
            "game_date": day(k),
            "affected_entities": {"players": ["p0_0"]},
        }
    )


def history(days: list[int], proc: str = PROC) -> list[dict[str, Any]]:
    """Production's date-level runs of ``proc``: one run of 600 s on each day."""
    return [
        {
            "processor_name": "X",
            "run_id": f"{proc}-{k}",
            "status": "success",
            "duration_seconds": 600.0,
            "records_processed": 450,
            "data_date": day(k).isoformat(),
            "output_table": proc,
            "output_dataset": "nba_analytics",
        }
        for k in days
    ]


def shadow(
    tmp: Path,
    text: str,
    stream: list[tuple[Event, datetime, date]],
    hist: list[dict[str, Any]],
) -> list[str]:
    """``(event, decided_at, as_of)`` recorded into a shadow log; the report's arguments."""
    (tmp / "relations").mkdir(parents=True)
    (tmp / "relations" / "player_games.csv").write_text(RELATIONS, encoding="utf-8")
    (tmp / "routes.yaml").write_text(text, encoding="utf-8")
    cfg = load_config(tmp / "routes.yaml")
    with SqliteExecutionLog(tmp / "log.sqlite") as lg:
        for ev, t, as_of in stream:
            record_stream(lg, cfg.registry, cfg.relations, [(ev, t)], as_of=as_of, status="shadow")
    (tmp / "h.json").write_text(json.dumps(hist), encoding="utf-8")
    log, cfg_path, hist_path = tmp / "log.sqlite", tmp / "routes.yaml", tmp / "h.json"
    return ["--log", str(log), "--config", str(cfg_path), "--run-history", str(hist_path)]


def rollout(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["report", "--json", *args]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)["rollout"]
    return out


def others(days: range) -> list[tuple[Event, datetime, date]]:
    """Another processor's source every day: the log's game-date range spans them."""
    return [(other(k), at(k), day(k + 1)) for k in days]


# ---------------------------------------------------------------------------- R1
@pytest.mark.parametrize(
    ("lookback", "changed", "uncovered"),
    [
        pytest.param(
            "lookback: {games: 2, via: player_games}",
            "points",
            [1, 2, 3, 4, 5],
            id="games-lookback-run-covers-the-dates-it-ran-only",
        ),
        pytest.param(
            "lookback: {games: 2, via: player_games}",
            "rebounds",
            [1, 2, 3, 4, 5],
            id="games-lookback-skip-covers-the-planners-dates-only",
        ),
        pytest.param("lookback: {days: 5}", "points", [], id="days-lookback-ran-every-date"),
        pytest.param("lookback: {days: 2}", "points", [3, 4, 5], id="days-lookback-ran-two-more"),
        pytest.param("lookback: {days: 2}", "rebounds", [3, 4, 5], id="days-lookback-skip"),
        pytest.param("", "points", [1, 2, 3, 4, 5], id="no-lookback"),
    ],
)
def test_a_late_correction_covers_only_the_dates_the_planner_decided(
    lookback: str,
    changed: str,
    uncovered: list[int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A day-0 correction decided on day 5 covers the dates its decision named, not up to as_of."""
    stream = [(gamebook(0, changed), at(5), day(5)), *others(range(6))]
    args = shadow(tmp_path, routes(lookback), stream, history(list(range(6))))
    p = {x["processor"]: x for x in rollout(args, capsys)["processors"]}[PROC]
    assert p["uncovered_days"] == [day(k).isoformat() for k in uncovered], p
    assert p["decision"] == ("no-go" if uncovered else "go"), p["why"]


@pytest.mark.parametrize(
    ("lookback", "as_of"),
    [
        ("lookback: {games: 2, via: player_games}", 5),
        ("lookback: {games: 2, via: player_games}", 14),
        ("lookback: {days: 3}", 5),
        ("lookback: {days: 3}", 1),
        ("", 5),
    ],
)
def test_skip_dates_are_the_planners(lookback: str, as_of: int, tmp_path: Path) -> None:
    """A skipped event covers the dates the planner would have run for it, at its as_of."""
    from scoperouter.execution_log.rollout_coverage import skip_dates

    (tmp_path / "relations").mkdir()
    (tmp_path / "relations" / "player_games.csv").write_text(RELATIONS, encoding="utf-8")
    (tmp_path / "routes.yaml").write_text(routes(lookback), encoding="utf-8")
    cfg = load_config(tmp_path / "routes.yaml")
    relevant, skipped = gamebook(0), gamebook(0, "rebounds")
    (run,) = [
        d for d in plan(cfg.registry, cfg.relations, relevant, day(as_of)) if d.action == "run"
    ]
    rec = EventRecord(skipped, at(as_of), day(as_of))
    got = skip_dates(cfg.registry, cfg.relations, rec)
    assert got == {PROC: tuple(run.dates)}


# ---------------------------------------------------------------------------- R2
BOXSCORE_INPUT = "- source: nba_raw.boxscore"


@pytest.mark.parametrize(
    ("boxscore_events", "decision", "says"),
    [
        pytest.param(False, "no-go", "no event of input nba_raw.boxscore", id="source-unseen"),
        pytest.param(True, "go", "routed runs", id="both-sources-seen"),
    ],
)
def test_an_input_source_without_events_blocks_go(
    boxscore_events: bool,
    decision: str,
    says: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An input whose topic the router never received blocks go and is named in why."""
    stream = [(gamebook(k), at(k), day(k + 1)) for k in range(3)]
    if boxscore_events:
        stream.append((other(0, "nba_raw.boxscore"), at(0), day(1)))
    args = shadow(tmp_path, routes(extra=BOXSCORE_INPUT), stream, history([0, 1, 2]))
    ro = rollout(args, capsys)
    p = {x["processor"]: x for x in ro["processors"]}[PROC]
    assert p["decision"] == decision, p["why"]
    assert says in p["why"]
    assert (ro["next_live"] == PROC) == (decision == "go")


# ---------------------------------------------------------------------------- R3
def test_a_processor_not_in_routes_is_listed_not_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name only the log has (renamed during shadow) is never go nor next to move live."""
    stream = [(gamebook(k), at(k), day(k + 1)) for k in range(3)]
    args = shadow(tmp_path, routes(), stream, history([0, 1, 2]))
    text = (tmp_path / "routes.yaml").read_text(encoding="utf-8")
    (tmp_path / "routes.yaml").write_text(text.replace("  summary:", "  renamed:"), "utf-8")
    ro = rollout(args, capsys)
    p = {x["processor"]: x for x in ro["processors"]}
    assert p[PROC]["decision"] == "not-in-routes"
    assert "not in routes.yaml" in p[PROC]["why"]
    assert ro["next_live"] != PROC
    assert all(PROC not in m["processors"] for m in ro["by_mode"].values())
    assert p["renamed"]["decision"] == "no-go"
