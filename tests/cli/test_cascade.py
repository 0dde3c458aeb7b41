"""``explain --cascade``: the downstream wave, hop by hop, built from the planner."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from scoperouter.cli import main
from scoperouter.messages.models import Event
from scoperouter.processor_registry.loader import LoadedConfig, load_config
from scoperouter.router.cascade import EVENT_ORIGIN, cascade
from scoperouter.router.planner import plan

REPO = Path(__file__).resolve().parents[2]
DAY = date(2025, 11, 19)


@pytest.fixture(scope="module")
def nba() -> LoadedConfig:
    return load_config(REPO / "routes.yaml")


def _reachable(cfg: LoadedConfig, source: str) -> set[str]:
    """Brute force: processors reachable from ``source`` through inputs and publishes."""
    seen: set[str] = set()
    sources = {source}
    while sources:
        nxt: set[str] = set()
        for p in cfg.registry.processors.values():
            if p.name not in seen and sources & set(p.inputs):
                seen.add(p.name)
                if p.publishes:
                    nxt.add(p.publishes)
        sources = nxt
    return seen


INPUTS = sorted(
    {
        s
        for p in load_config(
            REPO / "routes.yaml", with_relations=False
        ).registry.processors.values()
        for s in p.inputs
    }
)


@pytest.mark.parametrize("source", INPUTS)
def test_date_level_event_reaches_the_dag_closure(nba: LoadedConfig, source: str) -> None:
    """A date-level event (no entities, no changed fields: every input relevant) reaches
    exactly the processors downstream of its source in the publishes graph."""
    ev = Event(event_id="e", source=source, game_date=DAY)
    wave = cascade(nba.registry, nba.relations, ev, DAY)
    assert set(wave.reached()) == _reachable(nba, source)
    assert set(wave.not_reached()) == set(nba.registry.processor_names) - _reachable(nba, source)


def test_hops_follow_publishes(nba: LoadedConfig) -> None:
    """Hop 1 is the planner's runs for the event; every later run was reached by a processor
    of the hop before that publishes a source it reads."""
    ev = Event(
        event_id="e",
        source="nba_raw.nbac_injury_report",
        game_date=DAY,
        affected_entities={"players": ("lebronjames",)},
        changed_fields=("injury_status",),
    )
    wave = cascade(nba.registry, nba.relations, ev, DAY)
    first = {
        d.processor: d for d in plan(nba.registry, nba.relations, ev, DAY) if d.action == "run"
    }
    assert {s.decision.processor: s.decision for s in wave.hops[0].steps} == first
    assert all(s.via == (EVENT_ORIGIN,) for s in wave.hops[0].steps)
    for prev, hop in zip(wave.hops, wave.hops[1:], strict=False):
        ran = {s.decision.processor for s in prev.steps}
        for step in hop.steps:
            proc = nba.registry.processors[step.decision.processor]
            assert step.via and set(step.via) <= ran
            for up in step.via:
                assert nba.registry.processors[up].publishes in proc.inputs
        assert set(hop.sources) == {nba.registry.processors[p].publishes for p in ran} - {None}
    assert len(wave.hops) >= 5  # raw -> phase 3 -> ... -> exporters


def test_skip_downstream_and_failed_events_reach_nothing(nba: LoadedConfig) -> None:
    """An event that routes nothing has an empty wave."""
    for ev in (
        Event(
            event_id="s", source="nba_raw.nbac_injury_report", game_date=DAY, skip_downstream=True
        ),
        Event(event_id="f", source="nba_raw.nbac_injury_report", game_date=DAY, status="failed"),
    ):
        wave = cascade(nba.registry, nba.relations, ev, DAY)
        assert wave.hops == () and wave.reached() == ()


def test_backfill_stays_a_backfill_downstream(nba: LoadedConfig) -> None:
    """A backfill's runs publish a backfill range: every hop runs at date scope over it."""
    ev = Event(
        event_id="b",
        source="nba_raw.nbac_gamebook_player_stats",
        start_date=date(2025, 11, 1),
        end_date=date(2025, 11, 3),
    )
    wave = cascade(nba.registry, nba.relations, ev, DAY)
    steps = list(wave.steps())
    assert len(wave.hops) > 1
    assert {s.decision.reason for s in steps} == {"backfill"}
    assert {s.decision.dates for s in steps} == {
        (date(2025, 11, 1), date(2025, 11, 2), date(2025, 11, 3))
    }


def test_explain_cascade_text_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """explain --cascade prints the wave after the table; --json adds it under "cascade"
    and keeps "decisions" as it was."""
    f = tmp_path / "e.json"
    f.write_text(
        json.dumps(
            {
                "event_id": "e-1",
                "source": "nba_raw.nbac_injury_report",
                "game_date": "2025-11-19",
                "affected_entities": {"players": ["lebronjames"]},
                "changed_fields": ["injury_status"],
            }
        )
    )
    args = ["explain", str(f), "--config", str(REPO / "routes.yaml"), "--as-of", "2025-11-19"]
    assert main([*args, "--cascade"]) == 0
    text = capsys.readouterr().out
    assert "cascade (dry run" in text and "HOP  PROCESSOR" in text and "not reached: " in text
    assert "team_defense_zone_analysis" in text.split("not reached: ")[1]
    assert main([*args, "--cascade", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert main([*args, "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert out["decisions"] == plain["decisions"] and "cascade" not in plain
    hops = out["cascade"]["hops"]
    assert hops[0]["hop"] == 1 and hops[0]["sources"] == ["nba_raw.nbac_injury_report"]
    first = hops[0]["decisions"][0]
    assert set(first) == {
        "hop",
        "processor",
        "action",
        "scope",
        "entity_type",
        "entity_ids",
        "dates",
        "reason",
        "via",
    }
    assert sorted(out["cascade"]["reached"] + out["cascade"]["not_reached"]) == sorted(
        d["processor"] for d in plain["decisions"]
    )
