"""One short game day through the closed-loop comparison (picklable, for a process pool)."""

from __future__ import annotations

from typing import Any

from nba_support import short_day

from scoperouter.examples.nba.harness import run_date_level
from scoperouter.examples.nba.loop_demo import compare_loop


def check_loop_seed(seed: int) -> dict[str, Any]:
    """Date level (the reference, no faults) and every closed-loop mode of one seed."""
    day = short_day(seed)
    dstats, reference = run_date_level(day)
    c = compare_loop(day, reference)
    out = c.to_json()
    out["seed"] = seed
    out["date_rows"] = dstats.entity_rows
    return out
