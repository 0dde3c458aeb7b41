"""The order in which pytest-xdist hands test files to its workers: the costliest first.

With ``--dist loadfile`` a worker runs a whole file; pytest-xdist's default order (most
tests first, ``--loadscope-reorder``) leaves the files of one or two long tests -- a SIGKILL
run, a season, a stateful search -- to the end, where one worker runs them while the other
has nothing left. ``--no-loadscope-reorder`` (pyproject.toml) keeps the collection order,
and ``order`` puts the files measured costliest first (``COSTS``, seconds a file took in a
two-worker run); the many cheap files then even out the end.

Invariant: only the order of files changes, never which tests run or the order of the tests
within a file; a file not in ``COSTS`` keeps its collection order, after the listed ones.

``python tests/xdist_order.py JUNIT.xml`` prints ``COSTS`` afresh from a run's
``--junitxml`` report (files of 5 s or more)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol, TypeVar

# seconds per file (setup included), two workers on a 2-core machine (stop 61's run of
# 094f753, 10 min 41 s; `python tests/xdist_order.py JUNIT.xml`)
COSTS: dict[str, float] = {
    "tests/nba/test_nba_equivalence.py": 73,
    "tests/backfill/test_reference_backfill.py": 64,
    "tests/nba/test_nba_demo.py": 62,
    "tests/planner/test_planner_properties.py": 44,
    "tests/runtime/test_lane_liveness.py": 36,
    "tests/runtime/test_crash.py": 30,
    "tests/runtime/test_transports.py": 30,
    "tests/nba/test_nba_metrics.py": 29,
    "tests/backfill/test_resume.py": 28,
    "tests/lineage/test_reference_lineage.py": 25,
    "tests/backfill/test_replica_backfills.py": 25,
    "tests/backfill/test_daemon_backfill.py": 23,
    "tests/runtime/test_closed_loop_serve.py": 21,
    "tests/runtime/test_rollout_doc.py": 21,
    "tests/planner/test_planner_monotone.py": 18,
    "tests/backfill/test_plan_oracle.py": 18,
    "tests/sdk/test_sdk_migration_doc.py": 18,
    "tests/runtime/test_http.py": 18,
    "tests/nba/test_teammates_box_scores.py": 18,
    "tests/runtime/test_slow_clients.py": 16,
    "tests/runtime/test_outage_state.py": 15,
    "tests/runtime/test_shadow.py": 14,
    "tests/runtime/test_mode_at_fire.py": 14,
    "tests/runtime/test_reload.py": 14,
    "tests/cli/test_route_tests.py": 13,
    "tests/execution_log/test_log_fold.py": 13,
    "tests/state/test_store_window_coverage.py": 12,
    "tests/runtime/test_bench_baseline.py": 12,
    "tests/runtime/test_shared_router.py": 12,
    "tests/sdk/test_sdk_review_detection.py": 11,
    "tests/state/test_fired_trigger.py": 11,
    "tests/runtime/test_pubsub_readiness.py": 11,
    "tests/backfill/test_cli.py": 9,
    "tests/runtime/test_sinks.py": 9,
    "tests/runtime/test_router.py": 8,
    "tests/backfill/test_estimate.py": 8,
    "tests/state/test_sqlite_bulk.py": 7,
    "tests/test_cli_fork.py": 7,
    "tests/loop/test_loop_oracle.py": 7,
    "tests/execution_log/test_run_history.py": 7,
    "tests/execution_log/test_report_chromium.py": 6,
    "tests/nba/test_daily_cache_roster.py": 6,
    "tests/messages/test_fast_event.py": 6,
    "tests/state/test_merge_equivalence.py": 6,
    "tests/execution_log/test_log_retention_bounded.py": 5,
    "tests/runtime/test_outage.py": 5,
    "tests/cli/test_serve_config_refusals.py": 5,
    "tests/planner/test_window_coverage.py": 5,
}


class _Item(Protocol):
    @property
    def nodeid(self) -> str: ...


T = TypeVar("T", bound=_Item)


def file_of(item: _Item) -> str:
    return item.nodeid.split("::", 1)[0]


def order(items: Sequence[T], costs: dict[str, float] = COSTS) -> list[T]:
    """``items`` with the files of ``costs`` first, costliest first; the rest after, as
    collected; the tests of a file in their order."""
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        first.setdefault(file_of(item), i)
    return sorted(items, key=lambda it: (-costs.get(file_of(it), 0.0), first[file_of(it)]))


def costs_from_junit(path: str, floor_s: float = 5.0) -> dict[str, float]:
    """Seconds per test file in a ``--junitxml`` report (setup and teardown included),
    files of ``floor_s`` or more, costliest first."""
    per_file: defaultdict[str, float] = defaultdict(float)
    for case in ET.parse(path).iter("testcase"):
        name = case.get("file") or (case.get("classname") or "").replace(".", "/") + ".py"
        per_file[name] += float(case.get("time") or 0.0)
    ranked = sorted(per_file.items(), key=lambda kv: -kv[1])
    return {f: round(s) for f, s in ranked if s >= floor_s}


if __name__ == "__main__":  # pragma: no cover - a maintenance aid
    for name, seconds in costs_from_junit(sys.argv[1]).items():
        print(f'    "{name}": {seconds},')
