"""The demo's audited metrics: a ground-truth minimum, both single-update latencies, and
why the date-level baseline re-runs lookback dates."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from nba_support import variant

from demo_support import RecordedDay
from scoperouter.examples.nba.harness import (
    Comparison,
    GameDay,
    compare,
    run_date_level,
    truth,
)
from scoperouter.examples.nba.minimum import MinimumWork, _count_changes, minimum_work
from scoperouter.examples.nba.processors import BY_NAME, OUTPUT_SOURCES
from scoperouter.examples.nba.single import SingleUpdate, single_update
from scoperouter.examples.nba.warehouse import diff_dumps

# An explicit budget for a loaded 2-core machine: short game days run several times (up to 7 s idle),
# 4-8x that under load.
pytestmark = pytest.mark.timeout(600)

SEED = 2025
D1, D2 = date(2025, 11, 18), date(2025, 11, 19)


@pytest.fixture(scope="module")
def day(short_day_2025: RecordedDay) -> GameDay:
    """A short season's game day with the repository's registry (the session's, shared with
    tests/execution_log/test_run_history.py: tests/demo_support.py)."""
    assert short_day_2025.day.season.seed == SEED
    return short_day_2025.day


@pytest.fixture(scope="module")
def base(day: GameDay, short_day_2025: RecordedDay) -> Comparison:
    """The day compared date level (its date-level run, made once) and routed."""
    return compare(day, baseline=short_day_2025.baseline)


def _slow_windows(data: dict[str, Any]) -> None:
    data["defaults"]["window"] = {"quiet": "5m", "max_wait": "20m"}


def _dump(table: str, rows: dict[tuple[str, str], int]) -> dict[str, Any]:
    return {table: {k: (v,) for k, v in rows.items()}}


PGS = BY_NAME["player_game_summary"].publishes
DAILY = BY_NAME["daily_predictions_exporter"].publishes
A, B = "2025-11-18", "2025-11-19"


@pytest.mark.parametrize(
    ("table", "before", "after", "expected"),
    [
        (PGS, {(B, "a"): 1, (B, "b"): 2}, {(B, "a"): 1, (B, "b"): 2}, {}),
        (PGS, {(B, "a"): 1, (B, "b"): 2}, {(B, "a"): 1, (B, "b"): 3}, {"player_game_summary": 1}),
        (PGS, {(A, "a"): 1}, {(A, "a"): 2, (B, "a"): 1}, {"player_game_summary": 2}),
        # date granularity: every row of each changed date, appeared/removed rows included
        (DAILY, {(B, "a"): 1, (B, "b"): 2, (A, "c"): 1}, {(B, "a"): 1, (B, "b"): 9, (A, "c"): 1},
         {"daily_predictions_exporter": 2}),
        (DAILY, {(B, "a"): 1, (A, "c"): 1}, {(B, "a"): 1, (B, "b"): 1, (A, "d"): 1},
         {"daily_predictions_exporter": 4}),
    ],
)  # fmt: skip
def test_count_changes_rule(
    table: str,
    before: dict[tuple[str, str], int],
    after: dict[tuple[str, str], int],
    expected: dict[str, int],
) -> None:
    """Entity tables count each differing row; date tables count every row of a changed date."""
    got: Counter[str] = Counter()
    _count_changes(_dump(table, before), _dump(table, after), got)
    assert dict(got) == expected


@pytest.mark.parametrize(
    ("per_update", "per_day", "totals"),
    [
        ({}, {}, (0, 0, 0, 0)),
        ({"player_game_summary": 5, "daily_predictions_exporter": 600},
         {"player_game_summary": 3, "daily_predictions_exporter": 300}, (605, 5, 303, 3)),
    ],
)  # fmt: skip
def test_minimum_work_totals(
    per_update: dict[str, int], per_day: dict[str, int], totals: tuple[int, int, int, int]
) -> None:
    """rows() sums per processor, optionally per day and without date-granularity ones."""
    m = MinimumWork(per_update, per_day)
    assert (
        m.rows(),
        m.rows(entity_processors_only=True),
        m.rows(per_day=True),
        m.rows(per_day=True, entity_processors_only=True),
    ) == totals


def test_minimum_is_ground_truth(day: GameDay, base: Comparison) -> None:
    """The end-of-day minimum equals the rows that differ between the overnight state and
    the (identical) final warehouses; every row that changed by the end of the day changed
    after some update, so per update >= per day, processor by processor."""
    m = base.minimum
    assert base.outputs_identical
    diff = diff_dumps(day.overnight.dump(OUTPUT_SOURCES), base.routed_wh.dump(OUTPUT_SOURCES))
    entity_rows = sum(
        len(keys)
        for src, keys in diff.items()
        if next(p for p in BY_NAME.values() if p.publishes == src).granularity != "date"
    )
    assert entity_rows == m.rows(per_day=True, entity_processors_only=True) > 0
    assert set(m.per_day) <= set(m.per_update)
    for name, n in m.per_day.items():
        assert m.per_update[name] >= n, name
    assert m.rows(per_day=True) < m.rows()


def test_minimum_is_per_update(day: GameDay, base: Comparison) -> None:
    """A stream of one update that changes nothing downstream has a zero minimum; the full
    stream's minimum counts every update separately (more than the first update alone)."""
    first = day.updates[0]
    one = minimum_work(replace(day, updates=(first,)))
    full = base.minimum  # minimum_work(day), computed once for the module (harness.py)
    assert 0 < one.rows() < full.rows()
    quiet = minimum_work(replace(day, updates=()))
    assert quiet.rows() == quiet.rows(per_day=True) == 0


def test_routed_ratios(base: Comparison) -> None:
    """The ratios divide routed rows by the ground-truth minimum."""
    m = base.minimum
    assert base.routed_vs_minimum == pytest.approx(base.routed.entity_rows / m.rows())
    date_procs = {n for n, p in BY_NAME.items() if p.granularity == "date"}
    entity_rows = sum(v[1] for n, v in base.routed.by_processor.items() if n not in date_procs)
    assert base.routed_vs_minimum_entity_processors == pytest.approx(
        entity_rows / m.rows(entity_processors_only=True)
    )
    assert base.routed_vs_day_minimum == pytest.approx(
        base.routed.entity_rows / m.rows(per_day=True)
    )


@pytest.mark.slow  # a second whole comparison (CI's slow step)
def test_minimum_independent_of_router_windows(day: GameDay, base: Comparison) -> None:
    """Changing the router's windows changes the routed work but not the minimum."""
    slow = compare(replace(day, registry=variant(_slow_windows)))
    assert slow.outputs_identical
    assert (slow.routed.processor_runs, slow.routed.changed_rows) != (
        base.routed.processor_runs,
        base.routed.changed_rows,
    )
    assert slow.minimum == base.minimum


def test_single_update_both_latencies(day: GameDay) -> None:
    """Every-consumer-done is never earlier than every-phase-reached; routed beats date level."""
    s = single_update(day)
    assert isinstance(s, SingleUpdate)
    assert 0 < s.routed_s <= s.routed_all_s < s.date_level_all_s
    assert 0 < s.date_level_s <= s.date_level_all_s
    assert s.routed_slowest in BY_NAME and s.date_level_slowest in BY_NAME


@pytest.mark.slow  # a second whole comparison (CI's slow step)
def test_baseline_needs_lookback_reruns(day: GameDay, base: Comparison) -> None:
    """Without re-running lookback dates the date-level baseline is cheaper but wrong."""
    stats, wh = run_date_level(day, rerun_lookback=False)
    assert stats.entity_rows < base.date_level.entity_rows
    assert truth(day, wh)
    assert not truth(day, base.date_wh)


def test_dag_date_level_baseline(day: GameDay, base: Comparison) -> None:
    """The once-per-update DAG baseline runs every reachable (processor, date) whole: more
    than the per-update minimum, less than today's per-message cascade; no update, no rows."""
    m = base.minimum
    assert m.rows() < m.dag_date_level_rows < base.date_level.entity_rows
    assert minimum_work(replace(day, updates=())).dag_date_level_rows == 0
    standings = [u for u in day.updates if u.source not in day.registry.by_source]
    assert standings, "the stream has an update no processor reads"
    assert minimum_work(replace(day, updates=tuple(standings))).dag_date_level_rows == 0
