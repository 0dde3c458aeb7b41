"""The execution log's retention is measured back from the wall clock bounded by monotonic
time, as the state store's housekeeping (``housekeeping.retention_clock``): a wall clock
stepped forward past the retention prunes none of the rows logged moments ago."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from logsupport import DAY

from scoperouter.execution_log import SqliteExecutionLog, read_log
from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan
from scoperouter.runtime.housekeeping import retention_clock

T, HOUR = 1_763_575_500.0, 3600.0  # 2025-11-19T18:05Z


@pytest.mark.parametrize(
    ("case", "wall_after", "mono_after", "kept"),
    [
        ("in_step", T + 60, 60.0, True),
        ("stepped_forward_past_the_retention", T + 3 * HOUR, 5.0, True),
        ("a_retention_of_monotonic_time_later", T + 3 * HOUR, 2 * HOUR, False),
    ],
)
def test_a_forward_clock_step_prunes_no_fresh_row(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    case: str,
    wall_after: float,
    mono_after: float,
    kept: bool,
) -> None:
    """Events logged at T; the wall clock and monotonic time move; one prune: kept or not."""
    wall, mono = [T], [0.0]
    clock = retention_clock(HOUR, wall=lambda: wall[0], monotonic=lambda: mono[0])
    path = tmp_path / "l.sqlite"
    with SqliteExecutionLog(path, retention_s=HOUR, prune_interval_s=1e9, clock=clock) as log:
        e = Event.model_validate(
            {"event_id": "e1", "source": "nba_raw.nbac_injury_report", "game_date": DAY,
             "affected_entities": {"players": ["t01p03"]}, "changed_fields": ["injury_status"]}
        )  # fmt: skip
        at = datetime.fromtimestamp(T, UTC)
        log.record_decisions(e, plan(registry, relations, e, DAY), at, registry=registry,
                             relations=relations)  # fmt: skip
        log.flush()
        wall[0], mono[0] = wall_after, mono_after
        log.prune()
    assert bool(read_log(path).decisions) is kept
