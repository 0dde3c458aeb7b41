"""The words ``scoperouter report`` uses to explain itself: its headline and the meaning of
every column of its processor table, shared by the text and the HTML output so that both
read on their own and say the same thing (definitions in docs/report.md)."""

from __future__ import annotations

from scoperouter.execution_log.analysis import Report

# (text label, HTML label, meaning), in table order after the processor name
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("ph", "phase", "phase, from routes.yaml"),
    ("", "granularity", "the processor's entity type, or date (never entity-level)"),
    ("runs/d", "runs/day", "runs per day observed (dispatched triggers, failed ones included)"),
    ("ent", "entity runs", "runs at entity scope"),
    ("date", "date runs", "runs at date scope"),
    ("avg ent", "avg entities/run", "entity rows processed per run, on average"),
    (
        "waste%",
        "waste % (as run)",
        "share of the rows processed as routed whose output did not change",
    ),
    (
        "date-lvl%",
        "waste % (date level)",
        "the same if every run had been a full-date run (the pipeline today)",
    ),
    (
        "h/wk",
        "wasted h/week (date level)",
        "hours a week full-date runs waste (per-entity seconds only)",
    ),
    ("saved h", "saved h", "hours of processing routing saved over the log (per-entity seconds)"),
    ("payback", "payback (weeks)", "weeks for entity-level's engineering hours to repay h/wk"),
    (
        "recommendation",
        "recommendation",
        "entity-level when the rule holds (waste, hours and payback), else date-level",
    ),
)


def headline(report: Report) -> str:
    """Routed work against the same runs at date level, in the demo's words: the demo's
    "routed" entity rows, and its "vs an orchestrator running the date-level DAG once per
    update" ratio (the log cannot know the extra runs fan-in adds to "date level (today)").
    Both sides are over the same runs: the measured runs whose full-date size is known."""
    routed = sum(p.baseline_runs_processed for p in report.processors)
    date_level = sum(p.date_level_rows for p in report.processors)
    runs = sum(p.runs for p in report.processors)
    measured = sum(p.measured_runs for p in report.processors)
    compared = sum(p.baseline_runs for p in report.processors)
    saved = sum(p.saved_hours for p in report.processors)
    if measured <= 0:
        return "work: not measurable (no run with known entity rows)"
    if compared <= 0:
        return "work: not comparable with date level (no measured run's full-date size is known)"
    if date_level <= 0:
        return "work: not measurable (no run with known entity rows)"
    # the rows are the compared runs' only: the runs they were counted over, named so
    if compared == measured:
        counted = (
            f"{runs:,} runs" if measured == runs else f"{measured:,} measured runs (of {runs:,})"
        )
    else:
        total = "" if measured == runs else f", {runs:,} in all"
        counted = (
            f"{compared:,} runs with a known date-level size (of {measured:,} measured{total})"
        )
    less = f"{date_level / routed:.1f}x less work routed" if routed > 0 else "none of it routed"
    return (
        f"work: routed {routed:,} entity rows in {counted}; the same runs at date level "
        f"{date_level:,}: {less}, {saved:.2f} h of processing saved"
    )
