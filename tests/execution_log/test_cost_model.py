"""``report`` cost model: overhead + per-entity least squares, measured full-date baselines,
and failed dispatches that processed nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from logsupport import DAY, game_day_events

from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.analysis import (
    DEFAULT_SECONDS_PER_ENTITY,
    ProcessorInfo,
    ProcessorReport,
    build_report,
    fit_cost,
)
from scoperouter.execution_log.reader import CompletionRow, read_log
from scoperouter.execution_log.simulate import record_stream
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.models import ReportSpec
from scoperouter.processor_registry.relations import InMemoryRelations

OVERHEAD = 0.5
PER_ENTITY = 1 / 15


def _c(records: int, seconds: float) -> CompletionRow:
    return CompletionRow("p", DAY, None, records, None, seconds, None)


def _line(
    records: list[int], overhead: float = OVERHEAD, per: float = PER_ENTITY
) -> list[CompletionRow]:
    return [_c(n, overhead + per * n) for n in records]


@pytest.mark.parametrize(
    ("comps", "fallback", "want"),
    [
        (_line([1, 1, 5, 12, 400]), None, (OVERHEAD, PER_ENTITY, "measured")),
        (_line([3, 9]), 0.2, (OVERHEAD, PER_ENTITY, "measured")),
        (_line([1, 1, 1]), None, (0.0, DEFAULT_SECONDS_PER_ENTITY, "default")),  # one record count
        (_line([7]), 0.25, (0.0, 0.25, "routes.yaml")),
        (
            [*_line([1, 2]), _c(50, 0.0)],
            None,
            (OVERHEAD, PER_ENTITY, "measured"),
        ),  # duration 0 ignored
        (
            [_c(1, 3.0), _c(10, 2.0), _c(20, 1.0)],
            None,
            (2.0, 0.0, "measured"),
        ),  # slope < 0 -> all overhead
        (
            [_c(10, 0.5), _c(20, 2.0), _c(30, 3.5)],
            None,
            (0.0, 150 / 1400, "measured"),
        ),  # intercept < 0 -> origin
    ],
)
def test_fit_cost(
    comps: list[CompletionRow], fallback: float | None, want: tuple[float, float, str]
) -> None:
    """Overhead and seconds per entity come from least squares (clamped >= 0) with two or more
    distinct record counts, else from the fallback rate with no overhead."""
    got = fit_cost(comps, fallback)
    assert got.overhead_s == pytest.approx(want[0])
    assert got.seconds_per_entity == pytest.approx(want[1])
    assert got.source.startswith(want[2])
    assert got.overhead_s >= 0 and got.seconds_per_entity >= 0


def _info(registry: CompiledRegistry) -> dict[str, ProcessorInfo]:
    return {
        n: ProcessorInfo(p.phase, p.granularity, p.spec.engineering_hours)
        for n, p in registry.processors.items()
    }


def _record(
    path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    full_date: int | None = None,
) -> list[Trigger]:
    """The synthetic day, each run costing 0.5 s + n / 15 s; date runs report ``full_date`` rows."""

    def completion(t: Trigger) -> tuple[int, int | None, float]:
        if t.scope == "entities" and t.entity_ids:
            n = len(t.entity_ids)
        else:
            n = full_date if full_date is not None else (30 if "team" in t.processor else 450)
        return n, max(1, n // 2), OVERHEAD + PER_ENTITY * n

    with SqliteExecutionLog(path) as log:
        return record_stream(
            log, registry, relations, game_day_events(), as_of=DAY, completion=completion
        )


def _by(path: Path, registry: CompiledRegistry) -> dict[str, ProcessorReport]:
    thresholds = ReportSpec(seconds_per_entity=123.0)  # must not be used where completions vary
    return {
        p.processor: p
        for p in build_report(
            read_log(path), thresholds=thresholds, processors=_info(registry)
        ).processors
    }


def test_overhead_is_not_a_per_entity_cost(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """A fixed per-run overhead is fitted apart, so wasted and saved hours use the true
    per-entity rate (not total seconds / total records)."""
    fired = _record(tmp_path / "l.sqlite", registry, relations)
    by = _by(tmp_path / "l.sqlite", registry)
    checked = 0
    for name in {t.processor for t in fired}:
        counts = {len(t.entity_ids) if t.entity_ids else -1 for t in fired if t.processor == name}
        if len(counts) < 2:
            continue
        p = by[name]
        assert p.overhead_s == pytest.approx(OVERHEAD)
        assert p.seconds_per_entity == pytest.approx(PER_ENTITY)
        rows = p.entity_rows_processed - p.entity_rows_needed
        assert p.wasted_hours_per_week == pytest.approx(rows * PER_ENTITY / 3600 * 7)
        checked += 1
    assert checked >= 3


def test_full_date_baseline_is_measured(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """Entity runs on a date where the processor also ran full-date are compared with the rows
    that full-date run really processed, not the entity universe."""
    measured = 397
    fired = _record(tmp_path / "l.sqlite", registry, relations, full_date=measured)
    by = _by(tmp_path / "l.sqlite", registry)
    full_dates = {(t.processor, t.game_date) for t in fired if t.scope == "date"}
    affected = 0
    for name in {t.processor for t in fired if t.scope == "entities"}:
        if registry.processors[name].is_date_granularity:
            continue
        want_rows = 0
        for t in fired:
            if t.processor != name or t.scope != "entities":
                continue
            assert t.entity_ids is not None and t.game_date is not None
            assert t.entity_type is not None
            universe = relations.universe(t.entity_type, t.game_date)
            assert universe is not None
            base = measured if (name, t.game_date) in full_dates else universe
            affected += (name, t.game_date) in full_dates
            want_rows += max(0, base - len(t.entity_ids))
        assert by[name].saved_hours == pytest.approx(
            want_rows * by[name].seconds_per_entity / 3600
        ), name
    assert affected > 0


def test_failed_dispatches_process_nothing(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """Dead-lettered and failed triggers count as failed runs only: processed rows, average
    entities, waste and saved hours are those of the runs that happened."""
    ok_path, mixed_path = tmp_path / "ok.sqlite", tmp_path / "mixed.sqlite"
    _record(ok_path, registry, relations)
    fired = _record(mixed_path, registry, relations)
    with SqliteExecutionLog(mixed_path) as log:
        for i, t in enumerate(fired):  # each trigger again, under a new id, never delivered
            lost = t.model_copy(update={"trigger_id": f"lost-{i}"})
            log.record_dispatch(
                lost,
                status=("failed", "dead_letter")[i % 2],
                attempts=5,
                latency_ms=1.0,
                dispatched_at=t.fired_at or datetime.now(UTC),
            )
    ok, mixed = _by(ok_path, registry), _by(mixed_path, registry)
    assert sum(p.failed_runs for p in mixed.values()) == len(fired)
    for name, p in ok.items():
        m = mixed[name]
        assert m.runs == 2 * p.runs
        for key in (
            "entity_rows_processed",
            "entity_rows_needed",
            "measured_runs",
            "avg_entities_per_run",
            "waste_pct",
            "wasted_hours_per_week",
            "date_level_waste_pct",
            "saved_hours",
        ):
            assert getattr(m, key) == getattr(p, key), (name, key)
