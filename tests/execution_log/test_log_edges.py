"""Edges of the execution log and its readers: a log of skips only, ``--since`` with lookback
decisions, retention at a folded outcome newer than the cutoff."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from logsupport import DAY, T0

from scoperouter.cli import main
from scoperouter.execution_log import SqliteExecutionLog, read_log
from scoperouter.execution_log.simulate import record_stream
from scoperouter.execution_log.whatif import what_if
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan


def test_what_if_since_does_not_report_lookback_decisions_as_mismatches(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """report --since --what-if on an unchanged config: lookback decisions after --since are no mismatch."""
    path = tmp_path / "l.sqlite"
    early = Event.model_validate(
        {"event_id": "e-early", "source": "nba_raw.nbac_schedule",
         "game_date": (DAY - timedelta(days=2)).isoformat()}
    )  # fmt: skip
    late = Event.model_validate(
        {"event_id": "e-late", "source": "nba_raw.nbac_schedule", "game_date": DAY.isoformat()}
    )
    with SqliteExecutionLog(path) as log:
        record_stream(
            log, registry, relations, [(early, T0), (late, T0 + timedelta(minutes=5))], as_of=DAY
        )
    whole = read_log(path)
    assert {d.game_date for d in whole.decisions if d.event_id == "e-early"} >= {
        DAY - timedelta(days=1),
        DAY,
    }  # the lookback reached the later dates
    assert (
        what_if(registry, relations, whole, {"max_entities": "100"})["current_matches_log"][
            "mismatches"
        ]
        == 0
    )
    data = read_log(path, since=DAY - timedelta(days=1))
    got = what_if(registry, relations, data, {"max_entities": "100"})["current_matches_log"]
    assert got["mismatches"] == 0, got["examples"]


def test_a_log_of_skipped_events_only_is_not_empty(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A log whose events were all skipped is not empty: report shows its decisions."""
    path = tmp_path / "l.sqlite"
    with SqliteExecutionLog(path) as log:
        for i, src in enumerate(["nba_raw.not_in_routes", "nba_raw.bdl_standings"]):
            e = Event.model_validate({"event_id": f"u{i}", "source": src, "game_date": DAY})
            log.record_decisions(
                e, plan(registry, relations, e, DAY), T0, registry=registry, relations=relations
            )
    data = read_log(path)
    assert data.decision_count > 0
    assert not data.empty
    assert main(["report", "--log", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert not out.get("empty")
    assert [u["source"] for u in out["unknown_sources"]] == ["nba_raw.not_in_routes"]
    assert out["summary"]["decisions"] == data.decision_count


@pytest.mark.parametrize("fold", [True, False], ids=["folded", "unfolded"])
def test_retention_keeps_a_dispatch_newer_than_the_cutoff(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations, fold: bool
) -> None:
    """Retention keeps an outcome newer than the cutoff whether or not it was folded."""
    path = tmp_path / "l.sqlite"
    e = Event.model_validate(
        {"event_id": "e1", "source": "nba_raw.nbac_injury_report", "game_date": DAY,
         "affected_entities": {"players": ["t01p03"]}, "changed_fields": ["injury_status"]}
    )  # fmt: skip
    fired = T0 + timedelta(hours=2)
    t = Trigger(
        trigger_id="t-1", processor="player_game_summary", game_date=DAY, start_date=DAY,
        end_date=DAY, scope="entities", entity_type="player", entity_ids=("t01p03",),
        reason="entity_scope", caused_by=("e1",), fired_at=fired,
    )  # fmt: skip
    with SqliteExecutionLog(path, retention_s=3600, prune_interval_s=1e9) as log:
        log.record_decisions(
            e, plan(registry, relations, e, DAY), T0, registry=registry, relations=relations
        )
        if not fold:
            log.flush()
        log.record_dispatch(
            t, status="ok", attempts=1, latency_ms=1.0, dispatched_at=fired + timedelta(seconds=1)
        )
        log.flush()
        before = read_log(path)
        log.prune(now=(T0 + timedelta(hours=1, minutes=30)).timestamp())  # cutoff T0 + 30 min
    after = read_log(path)
    assert after.decisions == ()
    assert after.events == ()
    assert after.dispatches == before.dispatches
    assert [(x.trigger_id, x.decided_at) for x in after.dispatches] == [("t-1", fired)]
    # the kept outcome is still recognised as a repeat (no second row when it comes again)
    with SqliteExecutionLog(path) as log:
        log.record_dispatch(
            t, status="ok", attempts=1, latency_ms=1.0, dispatched_at=fired + timedelta(seconds=1)
        )
    assert read_log(path).dispatches == before.dispatches
