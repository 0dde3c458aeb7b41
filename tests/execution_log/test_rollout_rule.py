"""Go / no-go per processor (issue 19): each threshold of routes.yaml ``report:`` can block
the move live on its own, and the reason names the failing figure and threshold."""

from __future__ import annotations

import math

import pytest

from scoperouter.execution_log.analysis import ProcessorReport
from scoperouter.execution_log.rollout import RolloutProcessor, _go
from scoperouter.processor_registry.models import ReportSpec

TH = ReportSpec(shadow_days=14, wasted_hours_per_week=2, payback_weeks=8, waste_pct=30)


def case(
    days: int = 14,
    saved: float = 3.0,
    payback: float = 5.0,
    waste: float | None = 50.0,
    mode: str = "shadow",
    granularity: str = "player",
    runs: int = 10,
    uncovered: tuple[str, ...] = (),
) -> tuple[RolloutProcessor, ProcessorReport]:
    rp = RolloutProcessor(
        "p",
        mode,
        days_observed=days,
        runs=runs,
        date_level_runs=3,
        uncovered_days=list(uncovered),
        saved_hours_per_week=saved,
        payback_weeks=payback,
        baseline="run_history",
    )
    pr = ProcessorReport("p", 3, granularity, date_level_waste_pct=waste)
    return rp, pr


@pytest.mark.parametrize(
    ("kw", "decision", "says"),
    [
        ({}, "go", "14 day(s) observed >= 14"),
        ({"days": 13}, "no-go", "13 day(s) observed < 14"),
        ({"saved": 2.0}, "no-go", "2.00 h saved/week <= 2"),
        ({"payback": 8.0}, "no-go", "payback 8.0 >= 8 weeks"),
        ({"payback": math.inf}, "no-go", "payback never >= 8 weeks"),
        ({"waste": 30.0}, "no-go", "date-level waste 30% <= 30%"),
        ({"waste": 10.0, "granularity": "date"}, "go", "[run_history]"),
        ({"mode": "live"}, "live", "already live"),
        ({"runs": 0}, "no-go", "no routed run"),
        ({"uncovered": ("2025-11-19",)}, "no-go", "1 day(s) uncovered"),
        (
            {"uncovered": ("2025-11-17", "2025-11-18", "2025-11-19", "2025-11-20")},
            "no-go",
            "4 day(s) uncovered (production ran it; the router neither routed it nor logged a "
            "skip of it): 2025-11-17, 2025-11-18, 2025-11-19 and 1 more",
        ),
        ({"mode": "unknown", "runs": 0}, "no-go", "no routed run"),
    ],
)
def test_each_threshold_blocks_on_its_own(kw: dict[str, object], decision: str, says: str) -> None:
    """Strict comparisons; shadow_days inclusive; no run or an uncovered day blocks; live is not re-judged."""
    rp, pr = case(**kw)  # type: ignore[arg-type]
    got, why = _go(rp, pr, TH)
    assert got == decision
    assert says in why
